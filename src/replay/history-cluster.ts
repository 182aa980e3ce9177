/**
 * The cluster a replay runs against: in memory, rebuilt from kube-state-metrics history, never
 * connected to any API server. Before each cycle the replay applies the history at that time
 * (`applyHistory`): which nodes exist (`kube_node_info`), their Ready condition
 * (`kube_node_status_condition`), labels and roles (`kube_node_labels`, `kube_node_role`), taints
 * (`kube_node_spec_taint`) and cordons (`kube_node_spec_unschedulable`: a change in history is
 * what a person, or whatever ran then, did; it is applied as an operator's cordon or uncordon).
 *
 * The engine's own writes (cordons, ticket annotations, Events, Jobs, evictions) change only this
 * copy. Its Jobs follow a documented assumption (`JobAssumption`): they succeed (or all fail), a
 * reboot takes the node down for `bootTimeMs` and brings it back with a new boot id, a shutdown
 * keeps it down to the end of the window, and the health check judges the node by the history
 * itself (it passes only when the rules no longer see a fault with an SOP on the node: history
 * cannot show the effect of a remedy that never ran). Pods come from `kube_pod_info` at the time
 * they are listed (read only when a drain or a pod restart needs them); an eviction always
 * succeeds and the pod is gone from then on.
 */
import { ErrorCode, HealError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import type { NodeInfo, Taint } from '../core/types.js';
import type {
  ClusterClient,
  EvictionResult,
  IncidentRecord,
  JobKind,
  JobRequest,
  JobState,
  NodeEvent,
  PodInfo,
} from '../k8s/cluster.js';
import type { InstantSample } from '../prom/metrics-source.js';

/** What the replay assumes of the Jobs the engine launches. */
export interface JobAssumption {
  /** `succeed`: every Job succeeds (health checks judged by history); `fail`: every Job fails. */
  readonly outcome: 'succeed' | 'fail';
  /** How long a rebooted node stays NotReady. */
  readonly bootTimeMs: number;
  /** Pending + running time of each Job kind (others: DEFAULT_JOB_MS). */
  readonly durationMs: Readonly<Partial<Record<JobKind, number>>>;
}

/** The Job timings of the simulator (src/sim/sim-jobs.ts), pending time included. */
export const DEFAULT_JOB_DURATIONS: Readonly<Partial<Record<JobKind, number>>> = {
  restart_node: 180_000,
  shutdown_node: 16_000,
  healthcheck_node: 120_000,
  remedy_node: 60_000,
  repair_node: 600_000,
  diagnose_node: 60_000,
  validate_node: 900_000,
};

/** Time of a Job kind without its own. */
export const DEFAULT_JOB_MS = 60_000;

/** The default assumption. */
export const DEFAULT_JOB_ASSUMPTION: JobAssumption = {
  outcome: 'succeed',
  bootTimeMs: 150_000,
  durationMs: DEFAULT_JOB_DURATIONS,
};

/** History at one time, as the cluster queries answer it (see HISTORY_QUERIES). */
export interface HistoryAt {
  readonly info: readonly InstantSample[];
  readonly ready: readonly InstantSample[];
  readonly unschedulable: readonly InstantSample[];
  readonly labels: readonly InstantSample[];
  readonly roles: readonly InstantSample[];
  readonly taints: readonly InstantSample[];
}

/** The kube-state-metrics queries the cluster is rebuilt from, asked at every step. */
export const HISTORY_QUERIES: Readonly<Record<keyof HistoryAt, string>> = {
  info: 'max by (node) (kube_node_info)',
  ready: 'max by (node, status) (kube_node_status_condition{condition="Ready"} == 1)',
  unschedulable: 'max by (node) (kube_node_spec_unschedulable)',
  labels: 'kube_node_labels',
  roles: 'kube_node_role',
  taints: 'kube_node_spec_taint',
};

/** Something history did to a node between two steps. */
export interface HistoryChange {
  readonly atMs: number;
  readonly node: string;
  readonly what: 'cordon' | 'uncordon' | 'added' | 'removed';
}

/** Reads pods (kube_pod_info) at a time; the replay passes its reader. */
export type PodReader = (expr: string, atMs: number) => Promise<readonly InstantSample[]>;

interface NodeRecord {
  name: string;
  rv: number;
  present: boolean;
  historyReady: boolean | 'Unknown';
  historyUnschedulable: boolean | undefined;
  unschedulable: boolean;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  taints: Taint[];
  boots: number;
  /** Simulated downtime (a reboot Job): NotReady in [from, until). */
  down: { from: number; until: number } | undefined;
}

interface JobRecord {
  readonly request: JobRequest;
  readonly createdMs: number;
  result: JobState | undefined;
}

/** Engine writes, for the report (nothing leaves this object). */
export interface ReplayWrites {
  readonly events: readonly (NodeEvent & { readonly atMs: number })[];
  readonly jobs: readonly {
    readonly atMs: number;
    readonly kind: JobKind;
    readonly node: string;
  }[];
  readonly evictions: number;
  readonly incidents: readonly IncidentRecord[];
}

/** The in-memory cluster of a replay. */
export class HistoryCluster implements ClusterClient {
  readonly #clock: Clock;
  readonly #jobsAssumed: JobAssumption;
  readonly #nodes = new Map<string, NodeRecord>();
  readonly #jobs = new Map<string, JobRecord>();
  readonly #gonePods = new Set<string>();
  readonly #events: (NodeEvent & { atMs: number })[] = [];
  readonly #jobLog: { atMs: number; kind: JobKind; node: string }[] = [];
  readonly #incidents = new Map<string, IncidentRecord>();
  readonly #knownLabels: ReadonlyMap<string, string>;
  readonly #pods: PodReader;
  /** Conditions with an SOP the rules see on a node now (the health check's verdict). */
  readonly #faultsOn: (node: string) => readonly string[];
  #evictions = 0;
  #rv = 1;
  #list: readonly NodeInfo[] | undefined;

  constructor(deps: {
    clock: Clock;
    jobs: JobAssumption;
    /** Label keys the engine reads (control plane, opt-out, topology…): restored from their KSM names. */
    knownLabels: readonly string[];
    pods: PodReader;
    faultsOn: (node: string) => readonly string[];
  }) {
    this.#clock = deps.clock;
    this.#jobsAssumed = deps.jobs;
    this.#knownLabels = new Map(deps.knownLabels.map((k) => [ksmLabelName(k), k]));
    this.#pods = deps.pods;
    this.#faultsOn = deps.faultsOn;
  }

  /** Nodes present now. */
  get size(): number {
    let n = 0;
    for (const r of this.#nodes.values()) if (r.present) n++;
    return n;
  }

  /** Number of nodes present and cordoned now. */
  get cordoned(): number {
    let n = 0;
    for (const r of this.#nodes.values()) if (r.present && r.unschedulable) n++;
    return n;
  }

  /** Whether history (not the replay's reboots) shows the node not Ready now. */
  historyNotReady(node: string): boolean {
    const r = this.#nodes.get(node);
    return r !== undefined && r.present && r.historyReady !== true;
  }

  /** Every node ever seen present. */
  names(): readonly string[] {
    return [...this.#nodes.keys()];
  }

  /** The engine's writes so far. */
  writes(): ReplayWrites {
    return {
      events: [...this.#events],
      jobs: [...this.#jobLog],
      evictions: this.#evictions,
      incidents: [...this.#incidents.values()],
    };
  }

  /**
   * Applies history at `atMs`. The first call sets the initial state (cordons included); later
   * ones apply changes. An answer naming no node at all (a gap in kube-state-metrics) keeps the
   * nodes as they were. Returns what history changed.
   */
  applyHistory(h: HistoryAt, atMs: number): HistoryChange[] {
    const changes: HistoryChange[] = [];
    const names = new Set(h.info.map((s) => s.labels['node'] ?? '').filter((n) => n !== ''));
    if (names.size === 0) return changes;
    const first = this.#nodes.size === 0;
    for (const r of this.#nodes.values()) {
      if (r.present && !names.has(r.name)) {
        r.present = false;
        this.#bump(r);
        changes.push({ atMs, node: r.name, what: 'removed' });
      }
    }
    const by = (samples: readonly InstantSample[]): Map<string, InstantSample[]> => {
      const m = new Map<string, InstantSample[]>();
      for (const s of samples) {
        const n = s.labels['node'];
        if (n === undefined || !names.has(n)) continue;
        const list = m.get(n);
        if (list === undefined) m.set(n, [s]);
        else list.push(s);
      }
      return m;
    };
    const ready = by(h.ready);
    const unsched = by(h.unschedulable);
    const labels = by(h.labels);
    const roles = by(h.roles);
    const taints = by(h.taints);
    for (const name of [...names].sort()) {
      let r = this.#nodes.get(name);
      if (r === undefined) {
        r = {
          name,
          rv: 0,
          present: false,
          historyReady: true,
          historyUnschedulable: undefined,
          unschedulable: false,
          labels: {},
          annotations: {},
          taints: [],
          boots: 0,
          down: undefined,
        };
        this.#nodes.set(name, r);
      }
      if (!r.present) {
        r.present = true;
        this.#bump(r);
        if (!first) changes.push({ atMs, node: name, what: 'added' });
      }
      const status = ready.get(name)?.[0]?.labels['status'];
      const hr: boolean | 'Unknown' =
        status === 'true' ? true : status === 'false' ? false : 'Unknown';
      if (hr !== r.historyReady) {
        r.historyReady = hr;
        this.#bump(r);
      }
      const u = unsched.get(name)?.[0];
      if (u !== undefined) {
        const hu = u.value === 1;
        if (r.historyUnschedulable === undefined) {
          r.unschedulable = hu;
          this.#bump(r);
        } else if (hu !== r.historyUnschedulable && hu !== r.unschedulable) {
          r.unschedulable = hu;
          this.#bump(r);
          changes.push({ atMs, node: name, what: hu ? 'cordon' : 'uncordon' });
        }
        r.historyUnschedulable = hu;
      }
      const l = this.#labelsOf(labels.get(name) ?? [], roles.get(name) ?? []);
      if (JSON.stringify(l) !== JSON.stringify(r.labels)) {
        r.labels = l;
        this.#bump(r);
      }
      const t = (taints.get(name) ?? []).map((s): Taint => ({
        key: s.labels['key'] ?? '',
        ...(s.labels['value'] === undefined || s.labels['value'] === ''
          ? {}
          : { value: s.labels['value'] }),
        effect: (s.labels['effect'] ?? 'NoSchedule') as Taint['effect'],
      }));
      if (JSON.stringify(t) !== JSON.stringify(r.taints)) {
        r.taints = t;
        this.#bump(r);
      }
    }
    return changes;
  }

  #labelsOf(
    labels: readonly InstantSample[],
    roles: readonly InstantSample[],
  ): Record<string, string> {
    const out: Record<string, string> = {};
    for (const s of labels) {
      for (const [k, v] of Object.entries(s.labels)) {
        if (!k.startsWith('label_')) continue;
        out[this.#knownLabels.get(k) ?? k.slice('label_'.length)] = v;
      }
    }
    for (const s of roles) {
      const role = s.labels['role'];
      if (role !== undefined && role !== '') out[`node-role.kubernetes.io/${role}`] = '';
    }
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
  }

  #bump(r: NodeRecord): void {
    r.rv = ++this.#rv;
    this.#list = undefined;
  }

  #info(r: NodeRecord): NodeInfo {
    const now = this.#clock.now();
    const d = r.down;
    const down = d !== undefined && now >= d.from && now < d.until;
    const off = down && d.until === Number.POSITIVE_INFINITY;
    // A reboot's new boot id shows once the node is back.
    const rebooting = d !== undefined && d.until !== Number.POSITIVE_INFINITY && now < d.until;
    const boots = r.boots - (rebooting ? 1 : 0);
    return {
      name: r.name,
      resourceVersion: String(r.rv),
      ready: off ? 'Unknown' : down ? false : r.historyReady,
      unschedulable: r.unschedulable,
      labels: r.labels,
      annotations: r.annotations,
      taints: r.taints,
      bootId: `${r.name}-replay-boot-${String(Math.max(0, boots))}`,
    };
  }

  #get(name: string): NodeRecord {
    const r = this.#nodes.get(name);
    if (r === undefined || !r.present)
      throw new HealError(ErrorCode.K8sNotFound, `node ${name} not found (replayed history)`);
    return r;
  }

  /** Reboot windows change readiness with time: the cached list is valid only between them. */
  #listValidUntil = Number.NEGATIVE_INFINITY;

  listNodes(): Promise<readonly NodeInfo[]> {
    const now = this.#clock.now();
    if (this.#list === undefined || now >= this.#listValidUntil || this.#anyDown(now)) {
      this.#list = [...this.#nodes.values()]
        .filter((r) => r.present)
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((r) => this.#info(r));
      this.#listValidUntil = this.#nextDownEdge(now);
    }
    return Promise.resolve(this.#list);
  }

  #anyDown(now: number): boolean {
    for (const r of this.#nodes.values())
      if (r.down !== undefined && now >= r.down.from && now < r.down.until) return true;
    return false;
  }

  #nextDownEdge(now: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const r of this.#nodes.values()) {
      if (r.down === undefined) continue;
      if (r.down.from > now) next = Math.min(next, r.down.from);
      if (r.down.until > now) next = Math.min(next, r.down.until);
    }
    return next;
  }

  getNode(name: string): Promise<NodeInfo> {
    return Promise.resolve(this.#info(this.#get(name)));
  }

  setUnschedulable(name: string, unschedulable: boolean): Promise<NodeInfo> {
    const r = this.#get(name);
    if (r.unschedulable !== unschedulable) {
      r.unschedulable = unschedulable;
      this.#bump(r);
    }
    return Promise.resolve(this.#info(r));
  }

  patchNodeAnnotations(
    name: string,
    annotations: Readonly<Record<string, string | null>>,
    resourceVersion: string,
  ): Promise<NodeInfo> {
    const r = this.#get(name);
    if (resourceVersion !== String(r.rv))
      return Promise.reject(
        new HealError(
          ErrorCode.K8sConflict,
          `node ${name}: resourceVersion ${resourceVersion} is stale (now ${r.rv})`,
        ),
      );
    r.annotations = merged(r.annotations, annotations);
    this.#bump(r);
    return Promise.resolve(this.#info(r));
  }

  patchNodeLabels(
    name: string,
    labels: Readonly<Record<string, string | null>>,
  ): Promise<NodeInfo> {
    const r = this.#get(name);
    r.labels = merged(r.labels, labels);
    this.#bump(r);
    return Promise.resolve(this.#info(r));
  }

  async listPodsOnNode(node: string): Promise<readonly PodInfo[]> {
    const now = this.#clock.now();
    const sel = `node="${node.replace(/["\\]/g, '\\$&')}"`;
    const [info, labels] = await Promise.all([
      this.#pods(`max by (namespace, pod, created_by_kind) (kube_pod_info{${sel}})`, now),
      this.#pods(
        `kube_pod_labels * on (namespace, pod) group_left () max by (namespace, pod) (kube_pod_info{${sel}})`,
        now,
      ),
    ]);
    const labelsOf = new Map<string, Record<string, string>>();
    for (const s of labels) {
      const key = `${s.labels['namespace'] ?? ''}/${s.labels['pod'] ?? ''}`;
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(s.labels))
        if (k.startsWith('label_')) out[this.#knownLabels.get(k) ?? k.slice('label_'.length)] = v;
      labelsOf.set(key, out);
    }
    const pods: PodInfo[] = [];
    for (const s of info) {
      const namespace = s.labels['namespace'] ?? '';
      const name = s.labels['pod'] ?? '';
      const key = `${namespace}/${name}`;
      if (name === '' || this.#gonePods.has(key)) continue;
      const kind = s.labels['created_by_kind'] ?? '';
      pods.push({
        namespace,
        name,
        node,
        phase: 'Running',
        daemonSet: kind === 'DaemonSet',
        mirror: kind === 'Node',
        labels: labelsOf.get(key) ?? {},
      });
    }
    return pods;
  }

  evictPod(namespace: string, name: string): Promise<EvictionResult> {
    this.#gonePods.add(`${namespace}/${name}`);
    this.#evictions++;
    return Promise.resolve('evicted');
  }

  deletePod(namespace: string, name: string): Promise<void> {
    this.#gonePods.add(`${namespace}/${name}`);
    return Promise.resolve();
  }

  createJob(request: JobRequest): Promise<void> {
    if (this.#jobs.has(request.name)) return Promise.resolve();
    const now = this.#clock.now();
    this.#jobs.set(request.name, { request, createdMs: now, result: undefined });
    this.#jobLog.push({ atMs: now, kind: request.kind, node: request.node });
    const a = this.#jobsAssumed;
    const r = this.#nodes.get(request.node);
    if (a.outcome === 'succeed' && r !== undefined) {
      if (request.kind === 'restart_node') {
        const from = now + 15_000;
        r.down = { from, until: from + a.bootTimeMs };
        r.boots++;
        this.#bump(r);
      } else if (request.kind === 'shutdown_node') {
        r.down = { from: now + 15_000, until: Number.POSITIVE_INFINITY };
        this.#bump(r);
      }
    }
    return Promise.resolve();
  }

  getJob(name: string): Promise<JobState | null> {
    const j = this.#jobs.get(name);
    if (j === undefined) return Promise.resolve(null);
    if (j.result !== undefined) return Promise.resolve(j.result);
    const now = this.#clock.now();
    const a = this.#jobsAssumed;
    const { kind, node } = j.request;
    let endMs = j.createdMs + (a.durationMs[kind] ?? DEFAULT_JOB_MS);
    const down = this.#nodes.get(node)?.down;
    if (kind === 'restart_node' && down !== undefined) endMs = Math.max(endMs, down.until + 5_000);
    if (now < j.createdMs + 5_000) return Promise.resolve({ name, phase: 'Pending' });
    if (now < endMs) return Promise.resolve({ name, phase: 'Running' });
    j.result = this.#outcome(j.request);
    return Promise.resolve(j.result);
  }

  #outcome(req: JobRequest): JobState {
    const name = req.name;
    if (this.#jobsAssumed.outcome === 'fail')
      return { name, phase: 'Failed', exitCode: 1, logs: ['replay: every Job is assumed to fail'] };
    if (req.kind === 'healthcheck_node') {
      const faults = this.#faultsOn(req.node);
      if (faults.length > 0)
        return {
          name,
          phase: 'Failed',
          exitCode: 1,
          logs: [
            ...faults.map((f) => `check failed: ${f} (the replayed history still shows it)`),
            'healthcheck failed with exit code 1',
          ],
        };
      return { name, phase: 'Succeeded', exitCode: 0, logs: ['replay: healthcheck passed'] };
    }
    if (req.kind === 'diagnose_node') {
      const faults = this.#faultsOn(req.node);
      return {
        name,
        phase: 'Succeeded',
        exitCode: 0,
        logs:
          faults.length === 0
            ? ['hint: no anomaly found', 'cmd: dmesg -T | tail -n 50', 'result: ok']
            : faults.flatMap((f) => [`hint: ${f}`, 'cmd: dmesg -T | tail -n 50', `result: ${f}`]),
      };
    }
    return {
      name,
      phase: 'Succeeded',
      exitCode: 0,
      logs: [`replay: ${req.kind} assumed to succeed`],
    };
  }

  deleteJob(name: string): Promise<void> {
    this.#jobs.delete(name);
    return Promise.resolve();
  }

  emitEvent(event: NodeEvent): Promise<void> {
    this.#events.push({ ...event, atMs: this.#clock.now() });
    return Promise.resolve();
  }

  readControl(): Promise<Readonly<Record<string, string>> | null> {
    return Promise.resolve(null);
  }

  writeIncident(record: IncidentRecord): Promise<void> {
    this.#incidents.set(record.name, record);
    return Promise.resolve();
  }
}

/** `base` with `patch` merged in (a null value removes the key). */
function merged(
  base: Readonly<Record<string, string>>,
  patch: Readonly<Record<string, string | null>>,
): Record<string, string> {
  const out = new Map(Object.entries(base));
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) out.delete(k);
    else out.set(k, v);
  }
  return Object.fromEntries(out);
}

/** kube-state-metrics' name for a Kubernetes label key. */
export function ksmLabelName(key: string): string {
  return `label_${key.replace(/[^a-zA-Z0-9_]/g, '_')}`;
}
