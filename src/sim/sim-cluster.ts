/**
 * An in-memory Kubernetes cluster for the simulated fleet: the engine's ClusterClient and
 * LeaseClient, driven by the same Clock as everything else. Nodes carry a resourceVersion that
 * every write bumps; pods, PodDisruptionBudgets and remediation Jobs behave as in a real cluster;
 * every write is recorded; failures can be injected. Node state is mirrored into the
 * kube-state-metrics series of the store, and reboots/power-offs take the node's exporters down.
 */
import type { Clock } from '../core/clock.js';
import { ErrorCode, HealError } from '../core/errors.js';
import { CONTROL_CONFIGMAP, type NodeInfo } from '../core/types.js';
import type {
  ClusterClient,
  DeviceTaintClient,
  DeviceTaintRuleInfo,
  EvictionResult,
  IncidentRecord,
  JobKind,
  JobRequest,
  JobState,
  LeaseClient,
  NodeEvent,
  PodInfo,
} from '../k8s/cluster.js';
import { ApiFailures, type FailRateOptions } from './api-failures.js';
import type { FaultInjector } from './faults.js';
import type { SeriesStore } from './series-store.js';
import { SimJobs, type JobBehaviour } from './sim-jobs.js';
import { SimPods, type DisruptionBudget, type PodTimings, type WorkloadSpec } from './sim-pods.js';
import { SimNodes, type NodeConditionWrite, type PowerState } from './sim-nodes.js';
import type { SimScheduler } from './sim-scheduler.js';

/** A method of the simulated API, for failure injection and the write log. */
export type ClusterMethod = keyof ClusterClient | keyof LeaseClient;

/** One recorded write. `by` tells the engine's calls from operators and the kubelet apart. */
export interface WriteRecord {
  readonly atMs: number;
  readonly method: string;
  readonly target: string;
  readonly detail: string;
  readonly by: 'client' | 'operator' | 'kubelet';
}

/** A recorded Event. */
export interface RecordedEvent extends NodeEvent {
  readonly atMs: number;
}

/** A Job the API server created (a create of an existing name is not one). */
export interface CreatedJob {
  readonly atMs: number;
  readonly name: string;
  readonly kind: JobKind;
  readonly node: string;
}

/**
 * An eviction or a deletion of a pod the API server accepted: the eviction's answer, or the
 * deletion's grace period (0: a force delete). `node` is where the pod ran ('' if never listed).
 */
export type PodOperation =
  | {
      readonly atMs: number;
      readonly kind: 'evict';
      readonly node: string;
      readonly namespace: string;
      readonly name: string;
      readonly result: EvictionResult;
      /** Set when the eviction asked for a grace period of its own. */
      readonly gracePeriodSeconds?: number;
    }
  | {
      readonly atMs: number;
      readonly kind: 'delete';
      readonly node: string;
      readonly namespace: string;
      readonly name: string;
      readonly gracePeriodSeconds: number;
    };

/** Options of SimCluster. */
export interface SimClusterOptions {
  readonly clock: Clock;
  readonly store: SeriesStore;
  readonly faults: FaultInjector;
  readonly scheduler: SimScheduler;
  /** How long a node takes to boot (default 150 s). */
  readonly bootTimeMs?: number;
  readonly jobs?: Partial<Record<JobKind, JobBehaviour>>;
  readonly pods?: PodTimings;
  /** Seed of `failRate` (default 1). */
  readonly seed?: number;
}

interface Lease {
  holder: string;
  renewMs: number;
  durationMs: number;
}

/** The simulated cluster. */
export class SimCluster implements ClusterClient, LeaseClient {
  readonly #clock: Clock;
  readonly #scheduler: SimScheduler;
  readonly #nodes: SimNodes;
  readonly #writes: WriteRecord[] = [];
  readonly #events: RecordedEvent[] = [];
  readonly #jobsCreated: CreatedJob[] = [];
  readonly #podOps: PodOperation[] = [];
  /** The node of every pod a listing returned (`namespace/name`), for the pod operation log. */
  readonly #podNodes = new Map<string, string>();
  readonly #leases = new Map<string, Lease>();
  /** Each lease's transition count (its epoch), kept when the lease is released. */
  readonly #leaseTransitions = new Map<string, number>();
  #control: Record<string, string> | null = null;
  readonly #secrets = new Map<string, Record<string, string>>();
  /** Domain incident records (ConfigMaps aegis-incident-…), by name. */
  readonly #incidents = new Map<string, IncidentRecord>();
  readonly #failures: ApiFailures;
  readonly #rules = new Map<string, DeviceTaintRuleInfo>();
  #servesRules = true;
  readonly #pods: SimPods;
  readonly #jobs: SimJobs;

  constructor(options: SimClusterOptions) {
    const { clock, store, faults, scheduler } = options;
    this.#clock = clock;
    this.#scheduler = scheduler;
    this.#failures = new ApiFailures(options.seed ?? 1);
    this.#nodes = new SimNodes({
      clock,
      store,
      faults,
      scheduler,
      bootTimeMs: options.bootTimeMs ?? 150_000,
      onStatusWrite: (node, detail, atMs) => {
        this.#writes.push({ atMs, method: 'nodeStatus', target: node, detail, by: 'kubelet' });
      },
      onDown: (node, atMs) => {
        this.#pods.evacuate(node, atMs);
      },
    });
    this.#pods = new SimPods(
      {
        fleet: store.fleet,
        scheduler,
        now: () => clock.now(),
        isSchedulable: (n) => this.#nodes.isSchedulable(n),
        onPodRestarted: (n, remedy, t) => faults.onRemedy(n, remedy, t),
        store,
      },
      options.pods,
    );
    this.#jobs = new SimJobs(
      {
        scheduler,
        faults,
        isReady: (n) => this.#nodes.isReady(n),
        reboot: (n, t) => this.#nodes.reboot(n, t),
        powerOff: (n, t) => {
          this.#nodes.powerOff(n, t);
        },
      },
      options.jobs,
    );
  }

  // ------------------------------------------------------------------ NodeClient

  async listNodes(signal: AbortSignal): Promise<readonly NodeInfo[]> {
    await this.#enter('listNodes', signal);
    return this.#nodes.all();
  }

  async getNode(name: string, signal: AbortSignal): Promise<NodeInfo> {
    await this.#enter('getNode', signal);
    return this.#nodes.info(this.#nodes.get(name));
  }

  async setUnschedulable(
    name: string,
    unschedulable: boolean,
    signal: AbortSignal,
  ): Promise<NodeInfo> {
    await this.#enter('setUnschedulable', signal);
    const r = this.#nodes.get(name);
    this.#log('client', 'setUnschedulable', name, String(unschedulable));
    this.#nodes.setUnschedulable(r, unschedulable);
    return this.#nodes.info(r);
  }

  /** The node's record, if `resourceVersion` is its current one (else a conflict, as a 409). */
  #nodeAt(name: string, resourceVersion: string): ReturnType<SimNodes['get']> {
    const r = this.#nodes.get(name);
    if (resourceVersion !== String(r.rv)) {
      throw new HealError(
        ErrorCode.K8sConflict,
        `node ${name}: resourceVersion ${resourceVersion} is stale (now ${r.rv})`,
      );
    }
    return r;
  }

  async patchNodeAnnotations(
    name: string,
    annotations: Readonly<Record<string, string | null>>,
    resourceVersion: string,
    signal: AbortSignal,
  ): Promise<NodeInfo> {
    await this.#enter('patchNodeAnnotations', signal);
    const r = this.#nodeAt(name, resourceVersion);
    this.#log('client', 'patchNodeAnnotations', name, JSON.stringify(annotations));
    this.#nodes.patchAnnotations(r, annotations);
    return this.#nodes.info(r);
  }

  async patchNodeLabels(
    name: string,
    labels: Readonly<Record<string, string | null>>,
    signal: AbortSignal,
  ): Promise<NodeInfo> {
    await this.#enter('patchNodeLabels', signal);
    this.#log('client', 'patchNodeLabels', name, JSON.stringify(labels));
    const r = this.#nodes.get(name);
    this.#nodes.patchLabels(r, labels);
    return this.#nodes.info(r);
  }

  // ------------------------------------------------------------------ device taints

  /** DRA DeviceTaintRules and node taints; `servesDeviceTaintRules` as `serveDeviceTaintRules` set. */
  readonly deviceTaints: DeviceTaintClient = {
    servesDeviceTaintRules: async (signal) => {
      await this.#enter('deviceTaints', signal);
      return this.#servesRules;
    },
    createDeviceTaintRule: async (rule, signal) => {
      await this.#enter('deviceTaints', signal);
      if (!this.#servesRules)
        throw new HealError(ErrorCode.K8sNotFound, 'devicetaintrules: not served');
      if (this.#rules.has(rule.name)) return;
      this.#rules.set(rule.name, rule);
      this.#log('client', 'createDeviceTaintRule', rule.name, `${rule.pool}/${rule.device}`);
    },
    getDeviceTaintRule: async (name, signal) => {
      await this.#enter('deviceTaints', signal);
      return this.#rules.get(name) ?? null;
    },
    deleteDeviceTaintRule: async (name, signal) => {
      await this.#enter('deviceTaints', signal);
      if (this.#rules.delete(name)) this.#log('client', 'deleteDeviceTaintRule', name, 'deleted');
    },
    setNodeTaints: async (name, taints, resourceVersion, signal) => {
      await this.#enter('deviceTaints', signal);
      const r = this.#nodeAt(name, resourceVersion);
      this.#log('client', 'setNodeTaints', name, JSON.stringify(taints));
      this.#nodes.setTaints(r, taints);
      return this.#nodes.info(r);
    },
  };

  /** Whether the simulated apiserver serves DeviceTaintRules (Kubernetes 1.37: yes). */
  serveDeviceTaintRules(served: boolean): void {
    this.#servesRules = served;
  }

  /** Every node object now, read as the simulator's truth (no API call, no injected failure). */
  nodesNow(): readonly NodeInfo[] {
    this.#sync();
    return this.#nodes.all();
  }

  /** The DeviceTaintRules that exist now. */
  deviceTaintRules(): DeviceTaintRuleInfo[] {
    return [...this.#rules.values()];
  }

  // ------------------------------------------------------------------ PodClient

  async listPodsOnNode(node: string, signal: AbortSignal): Promise<readonly PodInfo[]> {
    await this.#enter('listPodsOnNode', signal);
    const pods = this.#nodes.has(node) ? this.#pods.onNode(node) : [];
    for (const p of pods) this.#podNodes.set(`${p.namespace}/${p.name}`, p.node);
    return pods;
  }

  async evictPod(namespace: string, name: string, signal: AbortSignal): Promise<EvictionResult> {
    await this.#enter('evictPod', signal);
    const result = this.#pods.evict(namespace, name);
    this.#log('client', 'evictPod', `${namespace}/${name}`, result);
    this.#podOps.push({
      atMs: this.#clock.now(),
      kind: 'evict',
      node: this.#podNodes.get(`${namespace}/${name}`) ?? '',
      namespace,
      name,
      result,
    });
    return result;
  }

  async evictPodWithGrace(
    namespace: string,
    name: string,
    gracePeriodSeconds: number,
    signal: AbortSignal,
  ): Promise<EvictionResult> {
    await this.#enter('evictPodWithGrace', signal);
    const result = this.#pods.evict(namespace, name, gracePeriodSeconds);
    this.#log(
      'client',
      'evictPod',
      `${namespace}/${name}`,
      `${result} grace=${gracePeriodSeconds}`,
    );
    this.#podOps.push({
      atMs: this.#clock.now(),
      kind: 'evict',
      node: this.#podNodes.get(`${namespace}/${name}`) ?? '',
      namespace,
      name,
      result,
      gracePeriodSeconds,
    });
    return result;
  }

  async patchPodAnnotations(
    namespace: string,
    name: string,
    annotations: Readonly<Record<string, string | null>>,
    signal: AbortSignal,
  ): Promise<PodInfo | null> {
    await this.#enter('patchPodAnnotations', signal);
    const pod = this.#pods.annotate(namespace, name, annotations);
    this.#log(
      'client',
      'patchPodAnnotations',
      `${namespace}/${name}`,
      pod === null ? 'gone' : JSON.stringify(annotations),
    );
    return pod;
  }

  async deletePod(
    namespace: string,
    name: string,
    gracePeriodSeconds: number,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#enter('deletePod', signal);
    this.#log('client', 'deletePod', `${namespace}/${name}`, `grace=${gracePeriodSeconds}`);
    this.#pods.delete(namespace, name, gracePeriodSeconds);
    this.#podOps.push({
      atMs: this.#clock.now(),
      kind: 'delete',
      node: this.#podNodes.get(`${namespace}/${name}`) ?? '',
      namespace,
      name,
      gracePeriodSeconds,
    });
  }

  // ------------------------------------------------------------------ JobClient

  async createJob(request: JobRequest, signal: AbortSignal): Promise<void> {
    await this.#enter('createJob', signal);
    const created = this.#jobs.create(request, this.#clock.now());
    if (created)
      this.#jobsCreated.push({
        atMs: this.#clock.now(),
        name: request.name,
        kind: request.kind,
        node: request.node,
      });
    this.#log(
      'client',
      'createJob',
      request.name,
      created ? `${request.kind} on ${request.node}` : 'exists',
    );
  }

  async getJob(name: string, signal: AbortSignal): Promise<JobState | null> {
    await this.#enter('getJob', signal);
    return this.#jobs.get(name);
  }

  async deleteJob(name: string, signal: AbortSignal): Promise<void> {
    await this.#enter('deleteJob', signal);
    this.#log('client', 'deleteJob', name, this.#jobs.delete(name) ? 'deleted' : 'absent');
  }

  // ------------------------------------------------------------------ EventClient, LeaseClient

  async emitEvent(event: NodeEvent, signal: AbortSignal): Promise<void> {
    await this.#enter('emitEvent', signal);
    this.#events.push({ ...event, atMs: this.#clock.now() });
  }

  async acquireOrRenew(
    name: string,
    holder: string,
    leaseDurationSeconds: number,
    signal: AbortSignal,
  ): Promise<number | null> {
    await this.#enter('acquireOrRenew', signal);
    const now = this.#clock.now();
    const lease = this.#leases.get(name);
    if (lease !== undefined && lease.holder !== holder && now < lease.renewMs + lease.durationMs)
      return null;
    const transitions = this.#leaseTransitions.get(name) ?? -1;
    const epoch = lease?.holder === holder ? transitions : transitions + 1;
    this.#leaseTransitions.set(name, epoch);
    this.#leases.set(name, { holder, renewMs: now, durationMs: leaseDurationSeconds * 1000 });
    return epoch;
  }

  async release(name: string, holder: string, signal: AbortSignal): Promise<void> {
    await this.#enter('release', signal);
    if (this.#leases.get(name)?.holder === holder) this.#leases.delete(name);
  }

  // ------------------------------------------------------------------ test and operator hooks

  /** The next call of `method` throws `error` (default K8S_UNAVAILABLE). */
  failNext(method: ClusterMethod, error?: Error): void {
    this.#failures.failNext(method, error);
  }

  /** A share (0..1) of calls fail, reproducibly. */
  failRate(rate: number, options?: FailRateOptions): void {
    this.#failures.failRate(rate, options);
  }

  /** Every call throws K8S_UNAVAILABLE until `untilMs`. */
  outage(untilMs: number): void {
    this.#failures.outage(untilMs);
  }

  /** Every write so far (engine, operators, kubelet). */
  writes(): readonly WriteRecord[] {
    this.#sync();
    return this.#writes;
  }

  /** Recorded Events, of one node or all. */
  events(node?: string): readonly RecordedEvent[] {
    return node === undefined ? this.#events : this.#events.filter((e) => e.node === node);
  }

  /** Every Job created so far (deleted ones included), of one node or all. */
  jobsCreated(node?: string): readonly CreatedJob[] {
    return node === undefined
      ? this.#jobsCreated
      : this.#jobsCreated.filter((j) => j.node === node);
  }

  /** Every pod eviction and deletion the API accepted, of one node or all. */
  podOperations(node?: string): readonly PodOperation[] {
    return node === undefined ? this.#podOps : this.#podOps.filter((o) => o.node === node);
  }

  /** Reboots of a node so far (Jobs and power cycles). */
  rebootCount(node: string): number {
    this.#sync();
    return this.#nodes.rebootCount(node);
  }

  /** The operator controls ConfigMap (aegis-control), as `kubectl aegis` would leave it. */
  async readControl(signal: AbortSignal): Promise<Readonly<Record<string, string>> | null> {
    await this.#enter('readControl', signal);
    return this.#control === null ? null : { ...this.#control };
  }

  /** Creates or replaces a domain incident's record (a ConfigMap in the controller's namespace). */
  async writeIncident(record: IncidentRecord, signal: AbortSignal): Promise<void> {
    await this.#enter('writeIncident', signal);
    const existed = this.#incidents.has(record.name);
    this.#incidents.set(record.name, {
      name: record.name,
      labels: { ...record.labels },
      data: { ...record.data },
    });
    this.#log(
      'client',
      'writeIncident',
      record.name,
      `${existed ? 'update' : 'create'} ${record.data['status'] ?? ''}`,
    );
  }

  /** The domain incident records as the API holds them, by name. */
  incidentRecords(): ReadonlyMap<string, IncidentRecord> {
    return this.#incidents;
  }

  /** An operator writes the controls ConfigMap (null deletes it). */
  setControl(data: Readonly<Record<string, string>> | null): void {
    this.#control = data === null ? null : { ...data };
    this.#log('operator', 'control', CONTROL_CONFIGMAP, JSON.stringify(data));
  }

  /** Holder of a lease, if held and not expired. */
  leaseHolder(name: string): string | undefined {
    const lease = this.#leases.get(name);
    return lease !== undefined && this.#clock.now() < lease.renewMs + lease.durationMs
      ? lease.holder
      : undefined;
  }

  /** A human cordons the node. */
  cordonByHand(node: string): void {
    this.#sync();
    this.#log('operator', 'cordon', node, 'true');
    this.#nodes.setUnschedulable(this.#nodes.get(node), true);
  }

  /** A human sets or removes (`null`) a label. */
  setLabel(node: string, key: string, value: string | null): void {
    this.#sync();
    this.#log('operator', 'label', node, `${key}=${value ?? '-'}`);
    this.#nodes.patchLabels(this.#nodes.get(node), { [key]: value });
  }

  /** A human sets or removes (`null`) an annotation. */
  setAnnotation(node: string, key: string, value: string | null): void {
    this.#sync();
    this.#log('operator', 'annotate', node, `${key}=${value ?? '-'}`);
    this.#nodes.patchAnnotations(this.#nodes.get(node), { [key]: value });
  }

  /** A human powers a node on (after a shutdown); it boots, which clears reboot-class faults. */
  powerOn(node: string): void {
    this.#sync();
    if (this.#nodes.powerOn(node, this.#clock.now())) this.#log('operator', 'powerOn', node, '');
  }

  /** A node-side detector (node-problem-detector, the Aegis agent) writes a Node condition. */
  setNodeCondition(node: string, condition: NodeConditionWrite): void {
    this.#sync();
    this.#log('kubelet', 'nodeCondition', node, `${condition.type}=${condition.status}`);
    this.#nodes.setCondition(this.#nodes.get(node), condition, this.#clock.now());
  }

  /** How Jobs of a kind behave from now on (everywhere, or on one node); undefined resets. */
  setJobBehaviour(kind: JobKind, behaviour: JobBehaviour | undefined, node?: string): void {
    this.#jobs.setBehaviour(kind, behaviour, node);
  }

  /** Adds a training workload (one pod per node) with its PodDisruptionBudget. */
  addWorkload(spec: WorkloadSpec): DisruptionBudget {
    return this.#pods.addWorkload(spec);
  }

  /**
   * The pods as their owners and the kubelets act on them (a tenant adds or deletes a pod,
   * removes its finalizers; a node's kubelet stops acting), outside the engine's API. Effects due
   * by now are run first.
   */
  tenantPods(): SimPods {
    this.#sync();
    return this.#pods;
  }

  /** An operator creates (or deletes: null) a Secret of the controller's namespace. */
  setSecret(name: string, data: Readonly<Record<string, string>> | null): void {
    if (data === null) this.#secrets.delete(name);
    else this.#secrets.set(name, { ...data });
    this.#log('operator', 'secret', name, data === null ? 'deleted' : 'set');
  }

  /** A Secret of the controller's namespace, by name (null when absent). */
  async readSecret(
    name: string,
    signal: AbortSignal,
  ): Promise<Readonly<Record<string, string>> | null> {
    await this.#enter('readSecret', signal);
    const data = this.#secrets.get(name);
    return data === undefined ? null : { ...data };
  }

  /**
   * The node's BMC powers it off (a hung or NotReady node too); its pods are gone. Recorded as a
   * client write `bmcPowerOff`. False when it was already off.
   */
  bmcPowerOff(node: string): boolean {
    this.#sync();
    if (this.#nodes.get(node).power === 'off') return false;
    this.#log('client', 'bmcPowerOff', node, '');
    this.#nodes.powerOff(node, this.#clock.now());
    return true;
  }

  /** The node's BMC powers it on: it boots with a new boot id. False when it was not off. */
  bmcPowerOn(node: string): boolean {
    this.#sync();
    if (!this.#nodes.powerOnByBmc(node, this.#clock.now())) return false;
    this.#log('client', 'bmcPowerOn', node, '');
    return true;
  }

  /** Power-offs the BMC carried out on the node (each one of a power cycle). */
  bmcPowerOffs(node: string): number {
    return this.#writes.filter((w) => w.method === 'bmcPowerOff' && w.target === node).length;
  }

  /** Power state of a node. */
  powerState(node: string): PowerState {
    this.#sync();
    return this.#nodes.get(node).power;
  }

  /** Runs every simulation effect due by now (callers outside the API, e.g. the metrics side). */
  sync(): void {
    this.#sync();
  }

  // ------------------------------------------------------------------ internals

  /** Every API call: honours the signal, runs due effects, then applies injected failures. */
  async #enter(method: ClusterMethod, signal: AbortSignal): Promise<void> {
    await Promise.resolve();
    signal.throwIfAborted();
    this.#sync();
    this.#failures.check(method, this.#clock.now());
  }

  #sync(): void {
    this.#scheduler.runUntil(this.#clock.now());
  }

  #log(by: WriteRecord['by'], method: string, target: string, detail: string): void {
    this.#writes.push({ atMs: this.#clock.now(), method, target, detail, by });
  }
}
