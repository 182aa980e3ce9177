/**
 * Pods of the simulated cluster: the DaemonSet pods every node runs (made on first look, so a
 * 50,000-node fleet costs nothing until someone lists a node's pods), training workloads guarded
 * by a PodDisruptionBudget, evictions that the budget can refuse, graceful deletion, and
 * re-creation (DaemonSet pods come back on the same node, workload pods elsewhere).
 *
 * Deletion follows Kubernetes: the deletionTimestamp is the end of the grace period; the kubelet
 * then stops the containers and the pod goes, unless finalizers hold it (then it stays, its
 * containers stopped, until they are removed) or the node's kubelet is stuck (its containers keep
 * running). Grace 0 (a force delete) removes the object at once unless finalizers hold it.
 * A terminating pod is published as kube-state-metrics shows it (`kube_pod_info`,
 * `kube_pod_deletion_timestamp`, `kube_pod_container_status_running`) until it is gone; healthy
 * pods are not published (no rule reads them, and a large fleet stays cheap).
 *
 * A pod may play the drain's checkpoint protocol (src/engine/drain-checkpoint.ts): asked to
 * checkpoint (the annotation `aegis.io/drain-requested` written on it) it answers with
 * `aegis.io/checkpoint-done` a set time later, and evicted with a grace period it exits as soon as
 * its checkpoint (its preStop) is done; a pod may also end by itself at a set time (a Job's pod
 * that completes).
 */
import { ErrorCode, HealError } from '../core/errors.js';
import { CHECKPOINT_DONE, DRAIN_REQUEST_ID } from '../engine/drain-checkpoint.js';
import type { EvictionResult, PodInfo } from '../k8s/cluster.js';
import type { Fleet, FleetNode } from './fleet-spec.js';
import { POD_RESTART_REMEDIES } from './persistence.js';
import { hexHash } from './random.js';
import type { SeriesStore } from './series-store.js';
import type { SimScheduler } from './sim-scheduler.js';
import { hold, release, type Track } from './track.js';

/** A PodDisruptionBudget over the pods of one workload. */
export interface DisruptionBudget {
  readonly namespace: string;
  readonly name: string;
  /** Pods with all these labels are covered. */
  readonly selector: Readonly<Record<string, string>>;
  readonly minAvailable: number;
}

/** A training workload: one pod per listed node, with a budget. */
export interface WorkloadSpec {
  readonly name: string;
  readonly namespace?: string;
  readonly nodes: readonly string[];
  /** Pods that must stay available (default: all but one). */
  readonly minAvailable?: number;
}

/** Hooks the pod store needs from the cluster. */
export interface PodHost {
  readonly fleet: Fleet;
  readonly scheduler: SimScheduler;
  now(): number;
  /** Nodes a replacement workload pod may land on. */
  isSchedulable(node: string): boolean;
  /** A pod-restart remedy took effect (the plug-in pod came back). */
  onPodRestarted(node: string, remedy: string, atMs: number): void;
  /** Where terminating pods are published as kube-state-metrics series (none: not published). */
  readonly store?: SeriesStore;
}

/** A pod added on its own (a tenant's pod, a system pod): never re-created once gone. */
export interface PodSpec {
  readonly node: string;
  readonly namespace: string;
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly finalizers?: readonly string[];
  /** kube-state-metrics `created_by_kind` / `created_by_name` (default: ReplicaSet, the name). */
  readonly ownerKind?: string;
  readonly owner?: string;
  /** metadata.annotations (only the `aegis.io/` ones are seen by the engine, as on a real cluster). */
  readonly annotations?: Readonly<Record<string, string>>;
  readonly terminationGracePeriodSeconds?: number;
  /**
   * The pod checkpoints when asked: `ackAfterMs` after Aegis writes its drain request on it, it
   * writes `aegis.io/checkpoint-done`; evicted with a grace period, it exits `ackAfterMs` after
   * the eviction (its preStop checkpoints, then the container ends). Absent: it never answers.
   */
  readonly checkpoint?: { readonly ackAfterMs: number };
  /** The pod's work completes at this time (phase Succeeded). */
  readonly completesAtMs?: number;
}

/** Timings of pod life cycles. */
export interface PodTimings {
  /** DaemonSet pod re-created this long after its deletion finished (default 10 s). */
  readonly daemonSetRestartMs?: number;
  /** Evicted workload pod replaced on another node this long after it left (default 60 s). */
  readonly rescheduleMs?: number;
  /** Grace period of an eviction (default 30 s). */
  readonly evictionGraceMs?: number;
}

interface PodRecord {
  info: PodInfo;
  /** Workload (for re-creation elsewhere) or DaemonSet base name (for re-creation here). */
  readonly owner: string;
  /** kube-state-metrics `created_by_kind`. */
  readonly ownerKind: string;
  /** Re-created when gone (DaemonSet and workload pods; not pods added on their own). */
  readonly recreate: boolean;
  /** The kubelet has stopped the pod's containers. */
  stopped: boolean;
  /** Deleted with grace 0: the object goes as soon as no finalizer holds it. */
  forced: boolean;
  /** Series published while terminating. */
  tracks?: Track[];
  /** How the pod answers a checkpoint request (PodSpec.checkpoint). */
  readonly checkpoint?: { readonly ackAfterMs: number };
}

const PUBLISH_HOLD = 'pod';

const DAEMONSETS: readonly {
  readonly base: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly workersOnly: boolean;
}[] = [
  {
    base: 'nvidia-device-plugin-ds',
    namespace: 'gpu-operator',
    labels: { name: 'nvidia-device-plugin-ds' },
    workersOnly: true,
  },
  {
    base: 'nvidia-dcgm-exporter',
    namespace: 'gpu-operator',
    labels: { 'app.kubernetes.io/name': 'dcgm-exporter' },
    workersOnly: true,
  },
  {
    base: 'rdma-shared-dp-ds',
    namespace: 'kube-system',
    labels: { name: 'rdma-shared-dp-ds' },
    workersOnly: true,
  },
  {
    base: 'node-exporter',
    namespace: 'monitoring',
    labels: { 'app.kubernetes.io/name': 'node-exporter' },
    workersOnly: false,
  },
];

/** The pods of the simulated cluster. */
export class SimPods {
  readonly #host: PodHost;
  readonly #timings: Required<PodTimings>;
  readonly #byNode = new Map<string, PodRecord[]>();
  readonly #budgets: DisruptionBudget[] = [];
  /** Nodes whose kubelet no longer acts: terminations there never complete by themselves. */
  readonly #stuckKubelets = new Set<string>();
  #seq = 0;

  constructor(host: PodHost, timings: PodTimings = {}) {
    this.#host = host;
    this.#timings = {
      daemonSetRestartMs: timings.daemonSetRestartMs ?? 10_000,
      rescheduleMs: timings.rescheduleMs ?? 60_000,
      evictionGraceMs: timings.evictionGraceMs ?? 30_000,
    };
  }

  /** Pods on a node, terminating ones included. */
  onNode(node: string): PodInfo[] {
    return this.#records(node).map((r) => r.info);
  }

  /** Adds a workload and its PodDisruptionBudget. */
  addWorkload(spec: WorkloadSpec): DisruptionBudget {
    const namespace = spec.namespace ?? 'training';
    const selector = { app: spec.name };
    spec.nodes.forEach((node, i) => {
      this.#add(node, spec.name, {
        namespace,
        name: `${spec.name}-worker-${i}`,
        labels: { ...selector },
      });
    });
    const budget = {
      namespace,
      name: `${spec.name}-pdb`,
      selector,
      minAvailable: spec.minAvailable ?? Math.max(0, spec.nodes.length - 1),
    };
    this.#budgets.push(budget);
    return budget;
  }

  /**
   * The Eviction API: `blocked` when a budget has no disruption left (HTTP 429). The grace period
   * is the eviction's own when given (DeleteOptions.gracePeriodSeconds), else the default.
   */
  evict(namespace: string, name: string, gracePeriodSeconds?: number): EvictionResult {
    const found = this.#find(namespace, name);
    if (found === undefined || found.info.deletionTimestampMs !== undefined) return 'gone';
    const budget = this.#budgets.find((b) => b.namespace === namespace && covers(b, found.info));
    if (budget !== undefined && this.#healthy(budget) - 1 < budget.minAvailable) return 'blocked';
    const graceMs =
      gracePeriodSeconds === undefined ? this.#timings.evictionGraceMs : gracePeriodSeconds * 1000;
    this.#terminate(found, graceMs);
    const ack = found.checkpoint?.ackAfterMs;
    if (gracePeriodSeconds !== undefined && ack !== undefined && ack < graceMs) {
      // Its preStop checkpoints, then the container exits before the grace period ends.
      const deadline = found.info.deletionTimestampMs;
      this.#host.scheduler.at(this.#host.now() + ack, (t) => {
        if (found.info.deletionTimestampMs !== deadline || this.#stuckKubelets.has(found.info.node))
          return;
        this.#stop(found, t);
        if ((found.info.finalizers?.length ?? 0) === 0) this.#gone(found, t);
      });
    }
    return 'evicted';
  }

  /**
   * Merges annotations into a pod (`null` removes a key); null when there is no such pod. A pod
   * that checkpoints (PodSpec.checkpoint) answers a new drain request after its delay.
   */
  annotate(
    namespace: string,
    name: string,
    annotations: Readonly<Record<string, string | null>>,
  ): PodInfo | null {
    const found = this.#find(namespace, name);
    if (found === undefined) return null;
    this.#setAnnotations(found, annotations);
    const request = annotations[DRAIN_REQUEST_ID];
    const ack = found.checkpoint?.ackAfterMs;
    if (typeof request === 'string' && ack !== undefined) {
      this.#host.scheduler.at(this.#host.now() + ack, (t) => {
        if (found.info.annotations?.[DRAIN_REQUEST_ID] !== request) return; // withdrawn, or newer
        this.#setAnnotations(found, { [CHECKPOINT_DONE]: new Date(t).toISOString() });
      });
    }
    return found.info;
  }

  #setAnnotations(record: PodRecord, changes: Readonly<Record<string, string | null>>): void {
    const { annotations, ...rest } = record.info;
    const kept = Object.entries({ ...annotations, ...changes }).filter(
      (e): e is [string, string] => e[1] !== null,
    );
    record.info = kept.length === 0 ? rest : { ...rest, annotations: Object.fromEntries(kept) };
  }

  /**
   * Deletes a pod with a grace period (a shorter one than a pending deletion's shortens it; 0
   * forces); throws K8S_NOT_FOUND when there is no such pod.
   */
  delete(namespace: string, name: string, gracePeriodSeconds: number): void {
    const found = this.#find(namespace, name);
    if (found === undefined)
      throw new HealError(ErrorCode.K8sNotFound, `pod ${namespace}/${name} not found`);
    const graceMs = gracePeriodSeconds * 1000;
    const deadline = found.info.deletionTimestampMs;
    if (deadline === undefined || this.#host.now() + graceMs < deadline)
      this.#terminate(found, graceMs);
  }

  /** Adds a pod on its own (a tenant's pod, a system pod), running on `spec.node`. */
  addPod(spec: PodSpec): PodInfo {
    const record = this.#record(spec.node, spec.owner ?? spec.name, {
      namespace: spec.namespace,
      name: spec.name,
      labels: spec.labels ?? {},
      ...(spec.finalizers === undefined ? {} : { finalizers: spec.finalizers }),
      ownerKind: spec.ownerKind ?? 'ReplicaSet',
      recreate: false,
      ...(spec.checkpoint === undefined ? {} : { checkpoint: spec.checkpoint }),
    });
    const kept = Object.entries(spec.annotations ?? {}).filter(([k]) => k.startsWith('aegis.io/'));
    record.info = {
      ...record.info,
      ...(kept.length === 0 ? {} : { annotations: Object.fromEntries(kept) }),
      ...(spec.terminationGracePeriodSeconds === undefined
        ? {}
        : { terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds }),
    };
    this.#records(spec.node).push(record);
    const completes = spec.completesAtMs;
    if (completes !== undefined) {
      this.#host.scheduler.at(completes, () => {
        if (record.info.deletionTimestampMs === undefined && record.info.phase === 'Running')
          record.info = { ...record.info, phase: 'Succeeded' };
      });
    }
    return record.info;
  }

  /** Its owner removes the pod's finalizers: a terminating pod whose containers stopped goes. */
  removeFinalizers(namespace: string, name: string): void {
    const found = this.#find(namespace, name);
    if (found === undefined)
      throw new HealError(ErrorCode.K8sNotFound, `pod ${namespace}/${name} not found`);
    const { finalizers, ...info } = found.info;
    if (finalizers === undefined) return;
    found.info = info;
    if (info.deletionTimestampMs !== undefined && (found.stopped || found.forced))
      this.#gone(found, this.#host.now());
  }

  /**
   * The node's kubelet stops acting (hung runtime, unkillable processes): pods being deleted there
   * keep their containers running past their grace period. `false` lets it catch up.
   */
  setKubeletStuck(node: string, stuck: boolean): void {
    if (!stuck) {
      if (this.#stuckKubelets.delete(node)) {
        for (const r of [...this.#records(node)]) this.#kubeletPass(r, this.#host.now());
      }
      return;
    }
    this.#stuckKubelets.add(node);
  }

  /** A node went down for good or rebooted: its workload pods are gone and rescheduled. */
  evacuate(node: string, atMs: number): void {
    // A reboot also ends a kubelet that stopped acting.
    this.#stuckKubelets.delete(node);
    for (const record of [...this.#records(node)]) {
      if (record.info.daemonSet) continue;
      if ((record.info.finalizers?.length ?? 0) > 0) {
        // Deleted, but the object stays until its finalizers are removed; its containers died.
        if (record.info.deletionTimestampMs === undefined)
          record.info = { ...record.info, deletionTimestampMs: atMs };
        this.#stop(record, atMs);
        continue;
      }
      this.#gone(record, atMs);
    }
  }

  /** Every budget. */
  budgets(): readonly DisruptionBudget[] {
    return this.#budgets;
  }

  #terminate(record: PodRecord, graceMs: number): void {
    const now = this.#host.now();
    const deadline = now + graceMs;
    record.info = { ...record.info, deletionTimestampMs: deadline };
    if (graceMs === 0) record.forced = true;
    this.#publish(record, now);
    if (graceMs === 0 && (record.info.finalizers?.length ?? 0) === 0) {
      // A force delete removes the object at once, whatever the kubelet is doing.
      this.#gone(record, now);
      return;
    }
    this.#host.scheduler.at(deadline, (t) => {
      if (record.info.deletionTimestampMs === deadline) this.#kubeletPass(record, t);
    });
  }

  /** The kubelet acts on a pod past its grace period: stops its containers, then it goes. */
  #kubeletPass(record: PodRecord, atMs: number): void {
    const deadline = record.info.deletionTimestampMs;
    if (deadline === undefined || deadline > atMs || this.#stuckKubelets.has(record.info.node))
      return;
    this.#stop(record, atMs);
    if ((record.info.finalizers?.length ?? 0) === 0) this.#gone(record, atMs);
  }

  #stop(record: PodRecord, atMs: number): void {
    if (record.stopped) return;
    record.stopped = true;
    record.info = { ...record.info, phase: 'Failed' };
    this.#publish(record, atMs);
  }

  /** Publishes a terminating pod as kube-state-metrics shows it; `gone` removes its series. */
  #publish(record: PodRecord, atMs: number, gone = false): void {
    const store = this.#host.store;
    const { info } = record;
    if (store === undefined || info.deletionTimestampMs === undefined) return;
    const id = { namespace: info.namespace, pod: info.name };
    record.tracks ??= [
      store.create(
        'kube_pod_info',
        info.node,
        {
          ...id,
          node: info.node,
          created_by_kind: record.ownerKind,
          created_by_name: record.owner,
        },
        false,
      ),
      store.create('kube_pod_deletion_timestamp', info.node, id, false),
      store.create(
        'kube_pod_container_status_running',
        info.node,
        { ...id, container: 'main' },
        false,
      ),
    ];
    const [podInfo, deletion, running] = record.tracks;
    if (podInfo === undefined || deletion === undefined || running === undefined) return;
    if (gone) {
      for (const track of record.tracks) release(track, PUBLISH_HOLD, atMs);
      return;
    }
    hold(podInfo, PUBLISH_HOLD, 1, atMs);
    hold(deletion, PUBLISH_HOLD, Math.floor(info.deletionTimestampMs / 1000), atMs);
    hold(running, PUBLISH_HOLD, record.stopped ? 0 : 1, atMs);
  }

  #gone(record: PodRecord, atMs: number): void {
    const list = this.#byNode.get(record.info.node);
    const i = list?.indexOf(record) ?? -1;
    if (list === undefined || i === -1) return;
    list.splice(i, 1);
    this.#publish(record, atMs, true);
    const { info } = record;
    if (!record.recreate) return;
    if (info.daemonSet) {
      this.#host.scheduler.at(atMs + this.#timings.daemonSetRestartMs, (t) => {
        this.#add(info.node, record.owner, {
          namespace: info.namespace,
          name: this.#podName(record.owner),
          labels: info.labels,
          daemonSet: true,
        });
        const remedy = POD_RESTART_REMEDIES.find((r) => info.labels[r.label] === r.value);
        if (remedy !== undefined) this.#host.onPodRestarted(info.node, remedy.remedy, t);
      });
      return;
    }
    this.#host.scheduler.at(atMs + this.#timings.rescheduleMs, () => {
      const target = this.#placeFor(record.owner, info.node);
      if (target !== undefined)
        this.#add(target, record.owner, {
          namespace: info.namespace,
          name: info.name,
          labels: info.labels,
        });
    });
  }

  #placeFor(owner: string, from: string): string | undefined {
    const nodes = this.#host.fleet.nodes;
    const start = this.#host.fleet.node(from)?.index ?? 0;
    for (let k = 1; k <= nodes.length; k++) {
      const node = nodes[(start + k) % nodes.length];
      if (node === undefined || node.role !== 'worker' || !this.#host.isSchedulable(node.name))
        continue;
      if (this.#records(node.name).some((r) => r.owner === owner)) continue;
      return node.name;
    }
    return undefined;
  }

  #healthy(budget: DisruptionBudget): number {
    let n = 0;
    for (const list of this.#byNode.values()) {
      for (const r of list) {
        if (
          r.info.phase === 'Running' &&
          r.info.deletionTimestampMs === undefined &&
          covers(budget, r.info)
        )
          n++;
      }
    }
    return n;
  }

  #find(namespace: string, name: string): PodRecord | undefined {
    for (const list of this.#byNode.values()) {
      const r = list.find((p) => p.info.namespace === namespace && p.info.name === name);
      if (r !== undefined) return r;
    }
    // DaemonSet pods of nodes nobody listed yet exist too: names are deterministic per node.
    for (const node of this.#host.fleet.nodes) {
      if (this.#byNode.has(node.name) || !name.endsWith(`-${this.#suffix(node, 0)}`)) continue;
      const r = this.#records(node.name).find(
        (p) => p.info.namespace === namespace && p.info.name === name,
      );
      if (r !== undefined) return r;
    }
    return undefined;
  }

  #records(node: string): PodRecord[] {
    let list = this.#byNode.get(node);
    if (list === undefined) {
      const fleetNode = this.#host.fleet.node(node);
      list = [];
      this.#byNode.set(node, list);
      for (const ds of DAEMONSETS) {
        if (fleetNode === undefined || (ds.workersOnly && fleetNode.role !== 'worker')) continue;
        list.push(
          this.#record(node, ds.base, {
            namespace: ds.namespace,
            name: `${ds.base}-${this.#suffix(fleetNode, 0)}`,
            labels: ds.labels,
            daemonSet: true,
            ownerKind: 'DaemonSet',
            recreate: true,
          }),
        );
      }
    }
    return list;
  }

  #add(node: string, owner: string, pod: PodSeed): void {
    this.#records(node).push(
      this.#record(node, owner, {
        ownerKind: pod.daemonSet === true ? 'DaemonSet' : 'Job',
        recreate: true,
        ...pod,
      }),
    );
  }

  #record(
    node: string,
    owner: string,
    pod: PodSeed & {
      readonly ownerKind: string;
      readonly recreate: boolean;
      readonly checkpoint?: { readonly ackAfterMs: number };
    },
  ): PodRecord {
    return {
      owner,
      ownerKind: pod.ownerKind,
      recreate: pod.recreate,
      stopped: false,
      forced: false,
      ...(pod.checkpoint === undefined ? {} : { checkpoint: pod.checkpoint }),
      info: {
        namespace: pod.namespace,
        name: pod.name,
        node,
        phase: 'Running',
        daemonSet: pod.daemonSet === true,
        mirror: false,
        labels: pod.labels,
        ...(pod.finalizers === undefined || pod.finalizers.length === 0
          ? {}
          : { finalizers: [...pod.finalizers] }),
      },
    };
  }

  #podName(base: string): string {
    return `${base}-${hexHash(5, 7, ++this.#seq)}`;
  }

  #suffix(node: FleetNode, generation: number): string {
    return hexHash(5, node.index, generation);
  }
}

interface PodSeed {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly daemonSet?: boolean;
  readonly finalizers?: readonly string[];
}

function covers(budget: DisruptionBudget, pod: PodInfo): boolean {
  for (const [k, v] of Object.entries(budget.selector)) if (pod.labels[k] !== v) return false;
  return true;
}
