/**
 * Issue 17, first "Done when" line, end to end: the real engine (createEngine + runLoop, the whole
 * ladder, validation on, out-of-band power from the `bmc` config with the real ipmitool and
 * Redfish clients, credentials from the Secret `aegis-bmc` of `monitoring` read under the shipped
 * RBAC) on a real control plane (etcd, kube-apiserver, kube-controller-manager, kwok).
 *
 * Each node's "kubelet" is a loop of this test: while its host has not booted again it reports the
 * node NotReady with the old boot id; once the BMC has powered the host off and on (a new boot id),
 * it reports Ready with the new boot id and hands the node to kwok, which then runs its pods —
 * the validate_node Job's among them, whose log is a real validation output (the entrypoint's
 * format around real tool outputs of test/fixtures/validation/).
 *
 *  1. A NotReady node behind ipmi_sim and one behind the Redfish server on the DMTF mockup: one
 *     power cycle each (counted at the BMC), validation passes, certified, uncordoned, resolved.
 *     A node whose credentials are wrong is handed to a human naming the BMC's refusal.
 *  2. A node whose validation fails (nccl-tests' real "Out of bounds values : 2 FAILED") is not
 *     uncordoned: the ladder reboots it (Job) and validates again, twice, then hands it off.
 *  3. The engine killed at every step of the return path (mid power cycle, power cycle confirmed,
 *     Validate Job created, certificate written, before and after the uncordon) and started
 *     again: still one power cycle and one Validate Job per node, and the node returns to service.
 *
 * One stack for the file; the phases run one after another because kwok serves one log file for
 * every pod (a passing validation output, then a failing one, then a passing one again).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CATALOGUE } from '../../src/catalogue/index.js';
import { SIGNAL_PRESENCE } from '../../src/catalogue/signals.js';
import type { CatalogueEntry } from '../../src/catalogue/types.js';
import { POWER_CYCLE_ANNOTATION } from '../../src/bmc/power-cycle.js';
import type { Config } from '../../src/config/schema.js';
import { systemClock } from '../../src/core/clock.js';
import { ErrorCode, HealError } from '../../src/core/errors.js';
import { createEngine, runLoop } from '../../src/daemon.js';
import { createMemoryLogger } from '../../src/engine/logger.js';
import type { StepEvent } from '../../src/engine/runner.js';
import { CERTIFIED_UNTIL_ANNOTATION, VALIDATION_EXIT } from '../../src/jobs/validation.js';
import type { JobRequest } from '../../src/k8s/cluster.js';
import { createKubeCluster, type KubeCluster } from '../../src/k8s/kube-cluster.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import type { SimWorld } from '../../src/sim/sim-world.js';
import { POWER_CYCLE_EXIT } from '../../src/sop/sop.js';
import type { Ticket } from '../../src/ticket/ticket.js';
import {
  TEST_BRIDGE_OPTIONS,
  createFleetWorld,
  jobsOf,
  nodeEvents,
  shippedPriority,
  testConfig,
  ticketOf,
  workflowLine,
} from '../helpers/k8s-engine.js';
import { KWOK_NODE_LABEL, writePodLog } from '../helpers/k8s-harness.js';
import {
  JOB_TEMPLATES_DIR,
  OPS_NAMESPACE,
  createNode,
  createObject,
  eventually,
  startTestCluster,
  type TestCluster,
  postKubeletStatus,
} from '../k8s/setup.js';
import { startIpmiSim, type IpmiSim } from './ipmi-sim-harness.js';
import { startRedfishServer, type RedfishServer } from './redfish-server.js';

// Node names are the simulated fleet's (its metrics are the engine's source; all healthy).
const A = 'gpu-node-0001'; // ipmi_sim, clean path
const B = 'gpu-node-0002'; // Redfish server, clean path
const W = 'gpu-node-0003'; // ipmi_sim with a wrong password
const F = 'gpu-node-0004'; // second Redfish server, failing validation
const K1 = 'gpu-node-0005'; // ipmi_sim again, crash at every step
const K2 = 'gpu-node-0006'; // Redfish server again, crash at every step
const REF = 'gpu-node-0007'; // a kwok node from the start: where kwok's kubelet port is read

const FIX = join(import.meta.dirname, '..', 'fixtures', 'validation');
const fixture = (p: string): string => readFileSync(join(FIX, p), 'utf8');
const DCGM_PASS = fixture('dcgm/dcgm-3.1.0-8gpu-pass.txt');
const NCCL_PASS = fixture('nccl/nccl-tests-119-all-reduce-tail.txt');
const NCCL_WRONG = fixture('nccl/nccl-tests-37-all-gather-out-of-bounds.txt');
const IB_PASS = fixture('perftest/perftest-273-write-bw-gbits.txt');

/**
 * What deploy/ops/entrypoint.sh `validate 3 all auto` prints around the tools' outputs
 * (validate_run): DCGM's JSON on one line (`tr '\n\t' '  '`), the others' last 120 lines.
 */
function validationLog(nccl: string): string[] {
  const tail = (out: string): string[] => out.replace(/\n$/, '').split('\n').slice(-120);
  return [
    'aegis-validate: begin dcgm level=3',
    DCGM_PASS.replace(/[\n\t]/g, ' '),
    'aegis-validate: end dcgm rc=0',
    'aegis-validate: begin nccl gpus=8',
    ...tail(nccl),
    'aegis-validate: end nccl rc=0',
    'aegis-validate: begin ib device=mlx5_0',
    ...tail(IB_PASS),
    'aegis-validate: end ib rc=0',
  ];
}

let cluster: TestCluster;
let world: SimWorld;
let sim: IpmiSim;
let rf: RedfishServer;
let rf2: RedfishServer;
let config: Config;
let catalogue: CatalogueEntry[];
let caDir = '';
let kubeletPort = 0;
const kubelets: Kubelet[] = [];
const engines: Running[] = [];
const t0 = Date.now();
const at = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------
// The nodes' kubelets

interface Host {
  readonly on: boolean;
  readonly bootId: string;
}

/** A node's kubelet: hung until its host boots again, then Ready with the new boot id, on kwok. */
interface Kubelet {
  readonly node: string;
  /** Lets it report the boot (default: at once). */
  release(): void;
  stop(): void;
}

function postStatus(node: string, ready: boolean, bootID: string): Promise<void> {
  return postKubeletStatus(cluster, node, { ready, bootID, kubeletPort });
}

async function startKubelet(
  node: string,
  host: () => Host,
  o: { held?: boolean } = {},
): Promise<Kubelet> {
  const hung = host().bootId;
  await postStatus(node, false, hung);
  let released = o.held !== true;
  let busy = false;
  let back = false;
  const timer = setInterval(() => {
    const h = host();
    if (back || busy || !released || !h.on || h.bootId === hung) return;
    busy = true;
    void (async () => {
      await postStatus(node, true, h.bootId);
      await cluster.adminCore.patchNode({
        name: node,
        body: [
          {
            op: 'add',
            path: `/metadata/labels/${KWOK_NODE_LABEL.replace('/', '~1')}`,
            value: 'fake',
          },
        ],
      });
      back = true;
    })()
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, 200);
  const k: Kubelet = {
    node,
    release: () => {
      released = true;
    },
    stop: () => {
      clearInterval(timer);
    },
  };
  kubelets.push(k);
  return k;
}

const ipmiHost = (): Host => sim.host();
const redfishHost = (server: () => RedfishServer) => (): Host => ({
  on: server().host().power === 'On',
  bootId: server().host().bootId,
});

// ---------------------------------------------------------------------------------------------
// The engine, killable at a chosen call

/** Where to kill: a call of the client, before it is sent or once the API server answered it. */
interface KillPoint {
  readonly name: string;
  readonly node: string;
  readonly phase: 'before' | 'after';
  readonly method: string;
  readonly match: (args: readonly unknown[]) => boolean;
}

interface Running {
  readonly name: string;
  readonly steps: StepEvent[];
  readonly log: ReturnType<typeof createMemoryLogger>;
  /** Resolves when the loop ended: the kill point that ended it, or null (stopped). */
  readonly ended: Promise<KillPoint | null>;
  stop(): Promise<void>;
}

const annotationsOf = (args: readonly unknown[]): Readonly<Record<string, string | null>> =>
  (args[1] ?? {}) as Readonly<Record<string, string | null>>;

function killPoints(node: string): KillPoint[] {
  return [
    {
      name: 'power cycle begun (mark written), power-off not sent',
      node,
      phase: 'after',
      method: 'patchNodeAnnotations',
      match: (a) => {
        const v = annotationsOf(a)[POWER_CYCLE_ANNOTATION];
        return typeof v === 'string' && (JSON.parse(v) as { phase?: string }).phase === 'off';
      },
    },
    {
      name: 'power off confirmed and pods fenced, power-on not sent',
      node,
      phase: 'after',
      method: 'patchNodeAnnotations',
      match: (a) => {
        const v = annotationsOf(a)[POWER_CYCLE_ANNOTATION];
        return typeof v === 'string' && (JSON.parse(v) as { phase?: string }).phase === 'on';
      },
    },
    {
      name: 'power cycle confirmed (mark cleared), not recorded',
      node,
      phase: 'after',
      method: 'patchNodeAnnotations',
      match: (a) => annotationsOf(a)[POWER_CYCLE_ANNOTATION] === null,
    },
    {
      name: 'Validate Job created',
      node,
      phase: 'after',
      method: 'createJob',
      match: (a) => (a[0] as JobRequest).kind === 'validate_node',
    },
    {
      name: 'certificate written, Validate not recorded',
      node,
      phase: 'after',
      method: 'patchNodeAnnotations',
      match: (a) => typeof annotationsOf(a)[CERTIFIED_UNTIL_ANNOTATION] === 'string',
    },
    {
      name: 'before the uncordon',
      node,
      phase: 'before',
      method: 'setUnschedulable',
      match: (a) => a[1] === false,
    },
    {
      name: 'uncordoned, not recorded',
      node,
      phase: 'after',
      method: 'setUnschedulable',
      match: (a) => a[1] === false,
    },
  ];
}

const nodeArg = (method: string, args: readonly unknown[]): unknown =>
  method === 'createJob' ? (args[0] as JobRequest).node : args[0];

/**
 * Starts the engine as src/main.ts does (the controller's token, the shipped RBAC; leader election
 * off: one replica at a time here). Its client dies at the first of `kills` it reaches: the call
 * fails (after reaching the API server, for an `after` point), every later one too, and the loop
 * is aborted with its steps — as for a process killed there.
 */
function startEngine(name: string, kills: KillPoint[] = []): Running {
  const inner = createKubeCluster({
    kubeConfig: {
      server: cluster.stack.server,
      token: cluster.stack.controllerToken,
      caData: cluster.stack.caData,
    },
    leaseNamespace: config.kubernetes.namespace,
    jobNamespace: OPS_NAMESPACE,
    jobTemplatesDir: JOB_TEMPLATES_DIR,
    ...(config.kubernetes.opsImage === undefined ? {} : { opsImage: config.kubernetes.opsImage }),
    clock: systemClock,
    instance: name,
  });
  const ac = new AbortController();
  let dead: KillPoint | null = null;
  const killed = (): HealError => new HealError(ErrorCode.K8sUnavailable, `${name} killed`);
  const reached = (phase: 'before' | 'after', method: string, args: readonly unknown[]): void => {
    if (dead !== null) throw killed();
    const i = kills.findIndex(
      (k) =>
        k.phase === phase &&
        k.method === method &&
        k.node === nodeArg(method, args) &&
        k.match(args),
    );
    if (i === -1) return;
    dead = kills.splice(i, 1)[0] ?? null;
    ac.abort(killed());
    throw killed();
  };
  const sync = new Set<PropertyKey>(['onNodeChange', 'peekNode', 'close']);
  const client = new Proxy(inner, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function' || sync.has(prop)) return v;
      const method = String(prop);
      return async (...args: unknown[]): Promise<unknown> => {
        reached('before', method, args);
        const r: unknown = await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        reached('after', method, args);
        return r;
      };
    },
  }) as KubeCluster;
  const metrics = createMetrics();
  const log = createMemoryLogger();
  const steps: StepEvent[] = [];
  const engine = createEngine({
    cluster: client,
    metricsSource: world.metrics,
    clock: systemClock,
    config,
    catalogue,
    presence: SIGNAL_PRESENCE,
    priorityOf: shippedPriority,
    metrics,
    log,
    bridgeOptions: TEST_BRIDGE_OPTIONS,
    onStep: (e) => steps.push(e),
  });
  const ended = runLoop({
    engine,
    clock: systemClock,
    intervalMs: config.inspect.intervalMs,
    metrics,
    log,
    signal: ac.signal,
  }).then(async () => {
    await inner.close();
    return dead;
  });
  const r: Running = {
    name,
    steps,
    log,
    ended,
    async stop() {
      ac.abort(new Error('stopped'));
      await ended;
    },
  };
  engines.push(r);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Set-up

async function setSecret(): Promise<void> {
  await createObject(cluster.admin, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'aegis-bmc', namespace: 'monitoring' },
    stringData: {
      username: sim.username,
      password: sim.password,
      'wrong.username': sim.username,
      'wrong.password': 'not-the-password',
      'rf.username': rf.username,
      'rf.password': rf.password,
      'rf2.username': rf2.username,
      'rf2.password': rf2.password,
    },
  });
}

before(async () => {
  [cluster, sim, rf, rf2] = await Promise.all([
    startTestCluster({ kcm: true, kwok: true }),
    startIpmiSim(),
    startRedfishServer(),
    startRedfishServer(),
  ]);
  world = createFleetWorld(7);
  caDir = mkdtempSync(join(tmpdir(), 'aegis-rf-ca-'));
  writeFileSync(join(caDir, 'ca.pem'), rf.ca + rf2.ca);
  const ipmi = `ipmi://127.0.0.1:${sim.port}`;
  config = testConfig({
    // One replica at a time; a killed one's lease would only add its expiry to each restart.
    'leaderElection.enabled': false,
    // The pause after a reboot-class step before the ladder looks again (test tier: 3 s).
    'sop.settleMs': '1s',
    // A fleet of 7 with 4 nodes down at once is not a storm, a domain incident or over budget here.
    'safety.maxCordonedFraction': 1,
    'safety.stormMinNewFaultyNodes': 10,
    'safety.levelLimits': [],
    'safety.maxConcurrent.reboot': 6,
    'domains.enabled': false,
    'bmc.enabled': true,
    'bmc.credentialsSecret': 'aegis-bmc',
    'bmc.nodes': {
      [A]: ipmi,
      [W]: { address: ipmi, credentials: 'wrong' },
      [K1]: ipmi,
      [B]: { address: `redfish://127.0.0.1:${rf.port}`, credentials: 'rf' },
      [K2]: { address: `redfish://127.0.0.1:${rf.port}`, credentials: 'rf' },
      [F]: { address: `redfish://127.0.0.1:${rf2.port}`, credentials: 'rf2' },
    },
    'bmc.notReadyAfterMs': '2s',
    'bmc.powerOffTimeoutMs': '20s',
    'bmc.powerOnTimeoutMs': '20s',
    'bmc.bootTimeoutMs': '60s',
    'bmc.pollMs': '250ms',
    // ipmi_sim does not answer Get Channel Cipher Suites.
    'bmc.ipmi.cipherSuite': sim.cipherSuite,
    'bmc.redfish.caFile': join(caDir, 'ca.pem'),
    'validation.enabled': true,
    'validation.nccl.minBusBandwidthGBps': 90,
  });
  // NotReady raised after 1 s (catalogue: 30 s) and cleared after 1 s Ready (2 min).
  catalogue = CATALOGUE.map((e) =>
    e.name === 'NodeNotReady' ? { ...e, forMs: 1_000, clearForMs: 1_000 } : e,
  );
  await setSecret();
  await createNode(cluster, REF, { kwok: true });
  kubeletPort = await eventually('kwok kubelet port', async () => {
    const n = await cluster.adminCore.readNode({ name: REF });
    const port = n.status?.daemonEndpoints?.kubeletEndpoint?.Port ?? 0;
    return port > 0 ? port : undefined;
  });
  await writePodLog(cluster.stack, validationLog(NCCL_PASS));
});

after(async () => {
  for (const k of kubelets) k.stop();
  for (const e of engines) await e.stop();
  sim.stop();
  await Promise.all([rf.close(), rf2.close()]);
  await cluster.stop();
  rmSync(caDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Assertions

async function ticketWhere(
  node: string,
  what: string,
  ok: (t: Ticket) => boolean,
  timeoutMs = 40_000,
): Promise<Ticket> {
  let last: Ticket | null = null;
  try {
    return await eventually(
      `${node}: ${what}`,
      async () => {
        last = await ticketOf(cluster, node);
        return last !== null && ok(last) ? last : undefined;
      },
      timeoutMs,
    );
  } catch (err) {
    const logs = engines
      .at(-1)
      ?.log.lines.slice(-15)
      .map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.fields ?? {})}`);
    const steps = ((last as Ticket | null)?.workflows ?? []).map(
      (w) => `${w.action} ${w.status}${w.message === undefined ? '' : `: ${w.message}`}`,
    );
    throw new Error([`${node}:`, ...steps, ...(logs ?? [])].join('\n'), {
      cause: err,
    });
  }
}

/** Finished steps of a node across every engine of the file, as `Action Status`. */
function path(node: string): string[] {
  return engines.flatMap((e) =>
    e.steps
      .filter((x) => x.node === node && x.status !== 'Running' && x.status !== 'Held')
      .map((x) => `${x.action} ${x.status}`),
  );
}

/**
 * The ticket's steps as `Action Status`, without Held entries: a gate made a step wait (a
 * restarted engine's first cycles hold an uncordon until the metrics are fresh); nothing was done.
 */
const taken = (t: Ticket): string[] => workflowLine(t).filter((l) => !l.endsWith(' Held'));

const resolved = (t: Ticket): boolean => t.status === 'resolved';

/** The node is back in service: schedulable, certified for about 7 days from now. */
async function assertReturned(node: string): Promise<void> {
  const n = await cluster.adminCore.readNode({ name: node });
  assert.notEqual(n.spec?.unschedulable, true, `${node} schedulable`);
  const until = Date.parse(n.metadata?.annotations?.[CERTIFIED_UNTIL_ANNOTATION] ?? '');
  const week = 7 * 24 * 3_600_000;
  assert.ok(Math.abs(until - (Date.now() + week)) < 120_000, `${node} certified for 7 days`);
  assert.equal(n.metadata?.annotations?.[POWER_CYCLE_ANNOTATION], undefined, 'no mark left');
  assert.equal((await jobsOf(cluster, node, 'validate_node')).length, 1, 'one Validate Job');
}

/** The validation results as the ticket records them. */
function assertValidationRecorded(t: Ticket): void {
  const v = t.workflows.filter((w) => w.action === 'Validate');
  assert.deepEqual(
    v.map((w) => w.status),
    ['Succeeded'],
  );
  assert.match(
    v[0]?.message ?? '',
    /^certified until \S+; validation passed: DCGM r3 pass \(17 results, DCGM 3\.1\.0\); NCCL busbw 95\.74 GB\/s at 133169160 B >= 90; IB loopback on ib0: 0\.48 Gb\/s$/,
  );
  assert.deepEqual(
    (t.diagnosis ?? []).filter((d) => d.hint.startsWith('validation ')).map((d) => d.hint),
    ['validation dcgm: passed', 'validation nccl: passed', 'validation ib: passed'],
  );
}

// ---------------------------------------------------------------------------------------------

describe('a NotReady node power-cycled through its BMC and returned to service after validation, by the engine', () => {
  it('ipmi_sim and Redfish: one power cycle each, validated, certified, uncordoned, resolved; a wrong password is handed off naming the refusal', async (t) => {
    const ipmi0 = sim.powerLog().length;
    const rf0 = rf.resets.length;
    await Promise.all(
      [A, B, W, F].map((n) => createNode(cluster, n, { labels: { 'test.aegis.io/bmc': 'yes' } })),
    );
    await startKubelet(A, ipmiHost);
    await startKubelet(W, ipmiHost);
    await startKubelet(
      B,
      redfishHost(() => rf),
    );
    // F's kubelet reports its boot only once A and B are validated (then kwok logs a failure).
    const fKubelet = await startKubelet(
      F,
      redfishHost(() => rf2),
      { held: true },
    );
    startEngine('aegis-1');

    const [ta, tb] = await Promise.all([
      ticketWhere(A, 'resolved', resolved),
      ticketWhere(B, 'resolved', resolved),
    ]);
    t.diagnostic(`A and B back in service at ${at()}`);
    for (const tk of [ta, tb]) {
      assert.deepEqual(taken(tk), [
        'Cordon Succeeded',
        'PowerCycle Succeeded',
        'Validate Succeeded',
        'Uncordon Succeeded',
      ]);
      assertValidationRecorded(tk);
    }
    assert.match(
      ta.workflows[1]?.message ?? '',
      /^power-cycled through ipmi:\/\/127\.0\.0\.1:\d+: off confirmed, 0 pods force-deleted, on confirmed, back with a new boot id$/,
    );
    assert.match(
      tb.workflows[1]?.message ?? '',
      /^power-cycled through redfish https:\/\/127\.0\.0\.1:\d+: off confirmed, 0 pods force-deleted, on confirmed, back with a new boot id$/,
    );
    assert.deepEqual(sim.powerLog().slice(ipmi0), ['0', '1'], 'one power cycle at ipmi_sim');
    assert.deepEqual(rf.resets.slice(rf0), ['ForceOff', 'On'], 'one at the Redfish server');
    for (const n of [A, B]) await assertReturned(n);
    const reasons = new Set((await nodeEvents(cluster, A)).map((e) => e.reason));
    for (const r of [
      'AegisPowerCycleSucceeded',
      'AegisValidateSucceeded',
      'AegisUncordonSucceeded',
    ])
      assert.ok(reasons.has(r), `${r} in ${[...reasons].join(', ')}`);

    // The wrong password: refused before any power command, handed to a human naming the error.
    const tw = await ticketWhere(W, 'handed off', (tk) => tk.status === 'assigned');
    assert.deepEqual(taken(tw), ['Cordon Succeeded', 'PowerCycle Failed', 'HandToHuman Succeeded']);
    assert.equal(tw.workflows[1]?.exitCode, POWER_CYCLE_EXIT.AuthFailed);
    const refusal = /refused the credentials .*RAKP 2 HMAC is invalid/;
    assert.match(tw.whySRE ?? '', /^power cycle through ipmi:\/\/127\.0\.0\.1:\d+ failed: /);
    assert.match(tw.whySRE ?? '', refusal);
    const handOff = (await nodeEvents(cluster, W)).find(
      (e) => e.reason === 'AegisHandToHumanSucceeded',
    );
    assert.match(handOff?.message ?? '', refusal, 'the Event names the BMC error');
    assert.ok(!JSON.stringify(tw).includes('not-the-password'), 'no password in the ticket');
    assert.deepEqual(sim.powerLog().slice(ipmi0), ['0', '1'], 'nothing sent for W');
    const w = await cluster.adminCore.readNode({ name: W });
    assert.equal(w.spec?.unschedulable, true);

    // 2. A failing validation (the real nccl-tests output with 2 values out of bounds).
    await writePodLog(cluster.stack, validationLog(NCCL_WRONG));
    fKubelet.release();
    const tf = await ticketWhere(F, 'handed off', (tk) => tk.status === 'assigned', 60_000);
    t.diagnostic(`F handed off at ${at()}`);
    // The ticket folds its oldest entries away (counters); the engine's step events have them all.
    assert.deepEqual(path(F), [
      'Cordon Succeeded',
      'PowerCycle Succeeded',
      'Validate Failed',
      'Reboot Succeeded',
      'Validate Failed',
      'Reboot Succeeded',
      'Validate Failed',
      'HandToHuman Succeeded',
    ]);
    for (const v of tf.workflows.filter((x) => x.action === 'Validate')) {
      assert.equal(v.exitCode, VALIDATION_EXIT.Failed);
      assert.match(
        v.message ?? '',
        /^validation failed: NCCL all-reduce: wrong results \(2 out of bounds\)$/,
      );
    }
    assert.match(tf.whySRE ?? '', /wrong results \(2 out of bounds\) \(after 2 reboots\)/);
    const f = await cluster.adminCore.readNode({ name: F });
    assert.equal(f.spec?.unschedulable, true, 'never uncordoned');
    assert.equal(f.metadata?.annotations?.[CERTIFIED_UNTIL_ANNOTATION], undefined, 'not certified');
    assert.equal(
      rf2.resets.join(','),
      'ForceOff,On',
      'one power cycle; the next rung is a reboot Job',
    );
    assert.equal((await jobsOf(cluster, F, 'restart_node')).length, 2);
    await engines.at(-1)?.stop();
  });

  it('killed at every step of the return path and started again: one power cycle, one Validate Job, back in service', async (t) => {
    for (const e of engines) await e.stop(); // the first test's, when it failed half-way
    await writePodLog(cluster.stack, validationLog(NCCL_PASS));
    const ipmi0 = sim.powerLog().length;
    const rf0 = rf.resets.length;
    await Promise.all(
      [K1, K2].map((n) => createNode(cluster, n, { labels: { 'test.aegis.io/bmc': 'yes' } })),
    );
    await startKubelet(K1, ipmiHost);
    await startKubelet(
      K2,
      redfishHost(() => rf),
    );
    const kills = [...killPoints(K1), ...killPoints(K2)];
    const fired: string[] = [];
    const back = (async () => {
      await ticketWhere(K1, 'resolved', resolved, 90_000);
      await ticketWhere(K2, 'resolved', resolved, 90_000);
      return 'done' as const;
    })();
    back.catch(() => undefined); // awaited in the race below
    for (let i = 2; ; i++) {
      const e = startEngine(`aegis-${i}`, kills);
      const done = await Promise.race([e.ended, back]);
      if (done === 'done' || done === null) break;
      fired.push(`${done.node}: ${done.name}`);
      t.diagnostic(`killed ${e.name} at ${at()}: ${done.node}: ${done.name}`);
      assert.ok(i < 30, 'too many restarts');
    }
    await engines.at(-1)?.stop();
    t.diagnostic(`K1 and K2 back in service at ${at()} after ${fired.length} kills`);
    assert.deepEqual(kills, [], `every kill point reached (fired: ${fired.join('; ')})`);
    assert.deepEqual(sim.powerLog().slice(ipmi0), ['0', '1'], 'one power cycle at ipmi_sim');
    assert.deepEqual(rf.resets.slice(rf0), ['ForceOff', 'On'], 'one at the Redfish server');
    for (const n of [K1, K2]) {
      const tk = await ticketWhere(n, 'resolved', resolved);
      assert.deepEqual(
        taken(tk),
        ['Cordon Succeeded', 'PowerCycle Succeeded', 'Validate Succeeded', 'Uncordon Succeeded'],
        JSON.stringify(tk.workflows, null, 1),
      );
      assertValidationRecorded(tk);
      await assertReturned(n);
    }
  });
});
