/**
 * The real engine on a real control plane, for the controller-level tests (test/k8s/controller-*):
 * kwok nodes named like a simulated fleet's nodes, that fleet's SimMetrics as the metrics source
 * (faults are injected as exporter series), and `createEngine` + `runLoop` on `createKubeCluster`
 * authenticated with the controller ServiceAccount's token under the shipped RBAC. Config is
 * deploy/aegis/controller-config.yaml with test timings; Job templates are deploy/jobs (or a
 * copy with one edit, see `templatesWith`).
 *
 * A replica's cluster client is wrapped (`observeCluster`) only to watch and to stage races: it
 * counts annotation conflicts, records created Jobs, can let another writer go first, and can
 * "kill" the replica (every later call fails, as for a process that died). It never changes what
 * reaches the API server.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchV1Api, CoreV1Api, type CoreV1Event, type V1Job } from '@kubernetes/client-node';
import { parseDocument } from 'yaml';
import { CATALOGUE } from '../../src/catalogue/index.js';
import { SIGNAL_PRESENCE } from '../../src/catalogue/signals.js';
import type { CatalogueEntry } from '../../src/catalogue/types.js';
import { priorityLookup } from '../../src/cli/commands/run.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { systemClock } from '../../src/core/clock.js';
import { ErrorCode, HealError, isHealError } from '../../src/core/errors.js';
import { TICKET_ANNOTATION } from '../../src/core/types.js';
import { createEngine, runLoop, type Engine } from '../../src/daemon.js';
import { DEFAULT_BRIDGE_OPTIONS, type BridgeOptions } from '../../src/engine/bridge.js';
import type { CycleReport } from '../../src/engine/controller.js';
import { fencedCluster, LeaseFence, UNFENCED } from '../../src/engine/fence.js';
import { createMemoryLogger } from '../../src/engine/logger.js';
import type { StepEvent } from '../../src/engine/runner.js';
import type { PriorityOf } from '../../src/engine/scheduler.js';
import { toLabelValue } from '../../src/jobs/job-name.js';
import {
  ALL_JOB_KINDS,
  type DeviceTaintClient,
  type JobKind,
  type JobRequest,
} from '../../src/k8s/cluster.js';
import { createKubeCluster, type KubeCluster } from '../../src/k8s/kube-cluster.js';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import { createNotifications } from '../../src/notify/notifications.js';
import { parsePriorityTable } from '../../src/priority/priority-table.js';
import { createSimWorld, type SimWorld } from '../../src/sim/sim-world.js';
import { parseTicket, type Ticket } from '../../src/ticket/ticket.js';
import { updateTicket } from '../../src/ticket/ticket-store.js';
import { DEPLOY_AEGIS_DIR } from './apply-manifests.js';
import {
  JOB_TEMPLATES_DIR,
  OPS_NAMESPACE,
  createNode,
  eventually,
  type TestCluster,
} from '../k8s/setup.js';

/** The shipped controller config. */
export const CONTROLLER_CONFIG_FILE = join(DEPLOY_AEGIS_DIR, 'controller-config.yaml');
/** The shipped priority table. */
export const PRIORITY_FILE = join(DEPLOY_AEGIS_DIR, '..', 'priority.conf');
/** Namespace of the controller and its Lease (the ops Jobs run in OPS_NAMESPACE). */
export const MONITORING = 'monitoring';
export { OPS_NAMESPACE };

/**
 * Test timings over the shipped config: act (dry-run off), inspect every 500 ms, settle 3 s after
 * a reboot, a 3 s lease. Everything else is as shipped.
 */
export const TEST_CONFIG_OVERRIDES: Readonly<Record<string, unknown>> = {
  'safety.dryRun': false,
  'inspect.intervalMs': '500ms',
  'sop.settleMs': '3s',
  // A drain the PDB blocks is tried again after this (the product waits 10 minutes).
  'sop.blockedDrain.retryMs': '2s',
  'safety.nodeCooldownMs': '1s',
  'leaderElection.leaseDurationSeconds': 3,
  'leaderElection.renewIntervalMs': '1s',
  'leaderElection.fenceMarginMs': '1s',
  'prometheus.timeoutMs': '5s',
};

/** Bridge timings for tests: a drain gives up after 2 s, Jobs are polled every 200 ms. */
export const TEST_BRIDGE_OPTIONS: BridgeOptions = {
  drainTimeoutMs: 2_000,
  jobPollMs: 200,
  jobDeadlineSeconds: DEFAULT_BRIDGE_OPTIONS.jobDeadlineSeconds,
};

/** Time a condition must stay quiet before it clears, in these tests (catalogue: 10 min for XIDs). */
export const TEST_CLEAR_FOR_MS = 1_000;

/** deploy/aegis/controller-config.yaml through loadConfig, with the test timings and `overrides`. */
export function testConfig(overrides: Readonly<Record<string, unknown>> = {}): Config {
  return loadConfig({
    file: CONTROLLER_CONFIG_FILE,
    env: {},
    overrides: { ...TEST_CONFIG_OVERRIDES, ...overrides },
  });
}

/**
 * The catalogue with `conditions` clearing after TEST_CLEAR_FOR_MS of quiet instead of their
 * real delay (10 min for an XID), so a test can see the recovery loop in seconds. Nothing in the
 * config can shorten it (there is no per-rule override yet).
 */
export function quickClearingCatalogue(conditions: readonly string[]): CatalogueEntry[] {
  const names = new Set(conditions);
  return CATALOGUE.map((e) => (names.has(e.name) ? { ...e, clearForMs: TEST_CLEAR_FOR_MS } : e));
}

/** The shipped deploy/priority.conf as the engine's lookup. */
export function shippedPriority(): PriorityOf {
  const table = parsePriorityTable(readFileSync(PRIORITY_FILE, 'utf8'), {
    source: 'priority.conf',
  });
  return priorityLookup(table);
}

/** A simulated fleet of `nodes` healthy GPU nodes on the wall clock (its series are "now"). */
export function createFleetWorld(nodes: number): SimWorld {
  return createSimWorld({ nodes, seed: 7, catalogue: CATALOGUE, clock: systemClock });
}

/**
 * Creates one kwok node per simulated node (same name, the fleet's labels), as admin, and waits
 * until kwok reports them all Ready (a node not yet Ready would be a NodeNotReady fault).
 */
export async function createKwokNodes(cluster: TestCluster, world: SimWorld): Promise<string[]> {
  const names: string[] = [];
  for (const node of world.fleet.nodes) {
    await createNode(cluster, node.name, { kwok: true, labels: { ...node.labels } });
    names.push(node.name);
  }
  await eventually('kwok nodes Ready', async () => {
    const { items } = await cluster.adminCore.listNode();
    const ready = items.filter((n) =>
      n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    return names.every((name) => ready.some((n) => n.metadata?.name === name)) ? true : undefined;
  });
  return names;
}

/**
 * A copy of deploy/jobs in a temp dir with `edit` applied to one template's parsed document
 * (e.g. `spec.suspend: true`). Returns the directory.
 */
export function templatesWith(
  kind: JobKind,
  edit: (doc: ReturnType<typeof parseDocument>) => void,
): string {
  const dir = mkdtempSync(join(tmpdir(), 'aegis-templates-'));
  for (const k of ALL_JOB_KINDS) {
    const text = readFileSync(join(JOB_TEMPLATES_DIR, `${k}.yaml`), 'utf8');
    if (k !== kind) {
      writeFileSync(join(dir, `${k}.yaml`), text);
      continue;
    }
    const doc = parseDocument(text);
    edit(doc);
    writeFileSync(join(dir, `${k}.yaml`), doc.toString());
  }
  return dir;
}

/** Hook of `observeCluster`: runs before an annotation patch is sent, to let another writer go first. */
export interface ClusterProbe {
  beforeAnnotationPatch?: (
    node: string,
    annotations: Readonly<Record<string, string | null>>,
  ) => Promise<void>;
}

/** What the wrapped client saw. */
export interface ClusterStats {
  annotationPatches: number;
  /** Annotation patches the API server refused with 409 (stale resourceVersion). */
  annotationConflicts: number;
  readonly jobsCreated: JobRequest[];
}

/** A replica's client with its observations and its kill switch. */
export interface ObservedCluster {
  readonly client: KubeCluster;
  readonly stats: ClusterStats;
  /** From now on every call fails at once (K8S_UNAVAILABLE), as for a dead process. */
  kill(): void;
}

/** Wraps a client: counts, records, runs the probe's hooks, and can be killed. */
export function observeCluster(inner: KubeCluster, probe: ClusterProbe = {}): ObservedCluster {
  let killed = false;
  const stats: ClusterStats = { annotationPatches: 0, annotationConflicts: 0, jobsCreated: [] };
  const alive = <T>(call: () => Promise<T>): Promise<T> =>
    killed ? Promise.reject(new HealError(ErrorCode.K8sUnavailable, 'replica killed')) : call();
  const client: KubeCluster = {
    listNodes: (signal) => alive(() => inner.listNodes(signal)),
    getNode: (name, signal) => alive(() => inner.getNode(name, signal)),
    setUnschedulable: (name, u, signal) => alive(() => inner.setUnschedulable(name, u, signal)),
    patchNodeLabels: (name, labels, signal) =>
      alive(() => inner.patchNodeLabels(name, labels, signal)),
    listPodsOnNode: (node, signal) => alive(() => inner.listPodsOnNode(node, signal)),
    evictPod: (ns, name, signal) => alive(() => inner.evictPod(ns, name, signal)),
    deletePod: (ns, name, grace, signal) => alive(() => inner.deletePod(ns, name, grace, signal)),
    getJob: (name, signal) => alive(() => inner.getJob(name, signal)),
    deleteJob: (name, signal) => alive(() => inner.deleteJob(name, signal)),
    emitEvent: (event, signal) => alive(() => inner.emitEvent(event, signal)),
    acquireOrRenew: (name, holder, seconds, signal) =>
      alive(() => inner.acquireOrRenew(name, holder, seconds, signal)),
    release: (name, holder, signal) => alive(() => inner.release(name, holder, signal)),
    patchNodeAnnotations: (name, annotations, resourceVersion, signal) =>
      alive(async () => {
        await probe.beforeAnnotationPatch?.(name, annotations);
        stats.annotationPatches++;
        try {
          return await inner.patchNodeAnnotations(name, annotations, resourceVersion, signal);
        } catch (err) {
          if (isHealError(err, ErrorCode.K8sConflict)) stats.annotationConflicts++;
          throw err;
        }
      }),
    createJob: (request, signal) =>
      alive(async () => {
        stats.jobsCreated.push(request);
        await inner.createJob(request, signal);
      }),
    ...(inner.deviceTaints === undefined
      ? {}
      : { deviceTaints: observeTaints(inner.deviceTaints) }),
  };
  function observeTaints(api: DeviceTaintClient): DeviceTaintClient {
    return {
      servesDeviceTaintRules: (signal) => alive(() => api.servesDeviceTaintRules(signal)),
      createDeviceTaintRule: (rule, signal) => alive(() => api.createDeviceTaintRule(rule, signal)),
      getDeviceTaintRule: (name, signal) => alive(() => api.getDeviceTaintRule(name, signal)),
      deleteDeviceTaintRule: (name, signal) => alive(() => api.deleteDeviceTaintRule(name, signal)),
      setNodeTaints: (name, taints, rv, signal) =>
        alive(() => api.setNodeTaints(name, taints, rv, signal)),
    };
  }
  return {
    client,
    stats,
    kill: () => {
      killed = true;
    },
  };
}

/** Options of `startReplica`. */
export interface ReplicaOptions {
  readonly cluster: TestCluster;
  readonly world: SimWorld;
  /** Lease holder identity (and Event reportingInstance). */
  readonly holder: string;
  readonly config: Config;
  readonly catalogue?: readonly CatalogueEntry[];
  readonly jobTemplatesDir?: string;
  readonly probe?: ClusterProbe;
  /**
   * Runs the daemon's notifications as src/main.ts wires them: createNotifications from
   * `config.notify` (Alertmanager, ticket adapters), fed every cycle's snapshot, forgotten on
   * demotion, stopped with the replica. Default: off.
   */
  readonly notifications?: boolean;
}

/** One controller replica: the daemon loop of src/daemon.ts on its own client. */
export interface Replica {
  readonly holder: string;
  readonly observed: ObservedCluster;
  readonly engine: Engine;
  readonly metrics: Metrics;
  readonly steps: StepEvent[];
  readonly cycles: CycleReport[];
  /** Log lines (for diagnostics when a test fails). */
  readonly log: ReturnType<typeof createMemoryLogger>;
  /** Ends the loop as SIGTERM does: in-flight steps aborted, lease released. */
  stop(): Promise<void>;
  /** Dies as `kill -9` does: no call reaches the API from now on, nothing is released. */
  kill(): Promise<void>;
}

/** Builds a replica like runDaemon does (real client with the controller token) and starts its loop. */
export function startReplica(o: ReplicaOptions): Replica {
  const { config, cluster } = o;
  const k = config.kubernetes;
  const kube = createKubeCluster({
    kubeConfig: {
      server: cluster.stack.server,
      token: cluster.stack.controllerToken,
      caData: cluster.stack.caData,
    },
    leaseNamespace: k.namespace,
    jobNamespace: k.jobNamespace,
    jobTemplatesDir: o.jobTemplatesDir ?? JOB_TEMPLATES_DIR,
    ...(k.opsImage === undefined ? {} : { opsImage: k.opsImage }),
    clock: systemClock,
    instance: o.holder,
  });
  const observed = observeCluster(kube, o.probe);
  const metrics = createMetrics();
  const log = createMemoryLogger();
  const steps: StepEvent[] = [];
  const cycles: CycleReport[] = [];
  const le = config.leaderElection;
  const fence = new LeaseFence({
    clock: systemClock,
    durationMs: le.leaseDurationSeconds * 1000,
    marginMs: le.fenceMarginMs,
  });
  let sopOf: (condition: string) => string | undefined = () => undefined;
  const writer = fencedCluster(observed.client, le.enabled ? fence : UNFENCED);
  const notifications =
    o.notifications === true
      ? createNotifications(config, {
          clock: systemClock,
          metrics,
          log,
          sopOf: (c) => sopOf(c),
          writeBack: async (node, mutate) => {
            await updateTicket(
              { cluster: writer, clock: systemClock },
              node,
              (t) => (t === null ? undefined : mutate(t)),
              AbortSignal.timeout(30_000),
            );
          },
        })
      : undefined;
  const engine = createEngine({
    ...(le.enabled ? { fence } : {}),
    ...(notifications?.onSnapshot === undefined ? {} : { onSnapshot: notifications.onSnapshot }),
    cluster: observed.client,
    metricsSource: o.world.metrics,
    clock: systemClock,
    config,
    catalogue: o.catalogue ?? CATALOGUE,
    presence: SIGNAL_PRESENCE,
    priorityOf: shippedPriority,
    metrics,
    log,
    bridgeOptions: TEST_BRIDGE_OPTIONS,
    onStep: (e) => steps.push(e),
  });
  sopOf = (c) => engine.registry().forCondition(c)?.sop.id;
  const ac = new AbortController();
  const notifying = notifications?.run(ac.signal);
  const looping = runLoop({
    engine,
    clock: systemClock,
    intervalMs: config.inspect.intervalMs,
    ...(le.enabled
      ? {
          lease: {
            client: observed.client,
            name: le.leaseName,
            holder: o.holder,
            durationSeconds: le.leaseDurationSeconds,
            renewIntervalMs: le.renewIntervalMs,
            fence,
          },
        }
      : {}),
    metrics,
    log,
    signal: ac.signal,
    onCycle: (r) => cycles.push(r),
    ...(notifications === undefined
      ? {}
      : {
          onDemote: () => {
            notifications.demoted();
          },
        }),
  });
  const done = Promise.all([looping, notifying]).then(() => undefined);
  return {
    holder: o.holder,
    observed,
    engine,
    metrics,
    steps,
    cycles,
    log,
    async stop() {
      ac.abort(new Error('stopped'));
      await done;
    },
    async kill() {
      observed.kill();
      ac.abort(new Error('killed'));
      await done;
    },
  };
}

/** The node's ticket as an admin reads it (null when there is none). */
export async function ticketOf(cluster: TestCluster, node: string): Promise<Ticket | null> {
  const n = await cluster.adminCore.readNode({ name: node });
  const raw = n.metadata?.annotations?.[TICKET_ANNOTATION];
  return raw === undefined ? null : parseTicket(raw, node);
}

/** Jobs of one node (by the templates' `aegis.io/node` label), optionally of one kind. */
export async function jobsOf(cluster: TestCluster, node: string, kind?: JobKind): Promise<V1Job[]> {
  const batch = cluster.admin.makeApiClient(BatchV1Api);
  const selector = [`aegis.io/node=${toLabelValue(node)}`];
  if (kind !== undefined) selector.push(`aegis.io/job-kind=${kind}`);
  const { items } = await batch.listNamespacedJob({
    namespace: OPS_NAMESPACE,
    labelSelector: selector.join(','),
  });
  return items;
}

/** True when the Job has its Complete condition. */
export function isComplete(job: V1Job): boolean {
  return (job.status?.conditions ?? []).some((c) => c.type === 'Complete' && c.status === 'True');
}

/** Events about a node (they live in namespace `default`). */
export async function nodeEvents(cluster: TestCluster, node: string): Promise<CoreV1Event[]> {
  const core = cluster.admin.makeApiClient(CoreV1Api);
  const { items } = await core.listNamespacedEvent({
    namespace: 'default',
    fieldSelector: `involvedObject.kind=Node,involvedObject.name=${node}`,
  });
  return items;
}

/** `Action Status` of every workflow entry of a ticket, in order. */
export function workflowLine(t: Ticket | null): string[] {
  return (t?.workflows ?? []).map((w) => `${w.action} ${w.status}`);
}

/**
 * Waits until the ticket satisfies `ok`; returns it. On a timeout the error carries the ticket's
 * last workflow and the recent log lines of `replicas`.
 */
export async function ticketWhere(
  cluster: TestCluster,
  node: string,
  what: string,
  ok: (t: Ticket) => boolean,
  opts: { timeoutMs?: number; replicas?: readonly (Replica | undefined)[] } = {},
): Promise<Ticket> {
  let last: Ticket | null = null;
  try {
    return await eventually(
      what,
      async () => {
        last = await ticketOf(cluster, node);
        return last !== null && ok(last) ? last : undefined;
      },
      opts.timeoutMs ?? 30_000,
    );
  } catch (err) {
    const logs = (opts.replicas ?? []).flatMap((r) =>
      (r?.log.lines ?? [])
        .slice(-10)
        .map((l) => `${r?.holder ?? ''} ${l.level} ${l.msg} ${JSON.stringify(l.fields ?? {})}`),
    );
    throw new Error(
      [`${node}: ${workflowLine(last).join(' → ') || 'no ticket'}`, ...logs].join('\n'),
      { cause: err },
    );
  }
}
