/**
 * The daemon's replicas in a scenario run. Normally one engine runs the whole scenario; the
 * timeline can end its process and start a fresh one (`restart`), or start a second replica
 * beside it (`leader-overlap`), as two processes that both believe they hold the leader lease.
 *
 * Each replica is what one daemon process is: its own engine (`createEngine`, its own metrics
 * registry), its own fence and its own abort signal, over the same simulated cluster and
 * Prometheus. Nothing passes from one replica to the next but what the cluster holds (tickets,
 * cordons, Jobs), exactly as across a real restart.
 *
 * - Epochs are a Lease's transition count: the first replica leads at epoch 0, every later one at
 *   the next epoch. The fence tells the engine its epoch (written into every ticket step) and how
 *   long it still holds the lease: forever while it leads, nothing once it has stopped.
 * - `restart`: every process ends at once (a crash or a rollout: whatever it had in flight stops
 *   where it is, and a dead process writes nothing more, not even an Event); a fresh replica at the
 *   next epoch leads from the next cycle.
 * - `leader-overlap`: a new replica at epoch N+1 leads beside the old one, which keeps epoch N and
 *   believes it holds the lease until the overlap ends (a paused process, a partition). At the end
 *   the old one learns it lost the lease, as the daemon does on resuming: its fence refuses every
 *   further write, its steps in flight are aborted and it starts no new one. It stays a standby.
 */
import { setMaxListeners } from 'node:events';
import { ErrorCode, HealError } from '../core/errors.js';
import type { Engine } from '../daemon.js';
import type { Fence } from '../engine/fence.js';
import type { ClusterClient, DeviceTaintClient } from '../k8s/cluster.js';
import type { Metrics } from '../metrics/metrics.js';

/** How a replica stopped leading. */
export type ReplicaEnd = 'restart' | 'lost-lease';

/** One daemon process of the run. */
export interface Replica {
  /** 0, 1, 2 … in start order. */
  readonly id: number;
  /** The lease epoch it leads at. */
  readonly epoch: number;
  readonly engine: Engine;
  readonly metrics: Metrics;
  /** Its cycles and steps: aborted when it stops leading. */
  readonly signal: AbortSignal;
  /** The process exists (false once a restart ended it). */
  readonly alive: boolean;
  /** It believes it holds the lease: it cycles, and its fence lets writes through. */
  readonly leading: boolean;
  readonly startedMs: number;
  readonly endedMs: number | undefined;
  readonly ended: ReplicaEnd | undefined;
}

/** What building one replica's engine needs. */
export interface ReplicaParts {
  readonly id: number;
  readonly epoch: number;
  /** The cluster as this process sees it (every call fails once the process has ended). */
  readonly cluster: ClusterClient;
  readonly fence: Fence;
  /** False once the process has ended (its step events are then not reported). */
  alive(): boolean;
}

interface Life {
  alive: boolean;
  leading: boolean;
  endedMs: number | undefined;
  ended: ReplicaEnd | undefined;
}

class SimReplica implements Replica {
  readonly id: number;
  readonly epoch: number;
  readonly engine: Engine;
  readonly metrics: Metrics;
  readonly signal: AbortSignal;
  readonly abort: AbortController;
  readonly startedMs: number;
  readonly life: Life;
  constructor(init: Omit<SimReplica, 'alive' | 'leading' | 'endedMs' | 'ended'>) {
    this.id = init.id;
    this.epoch = init.epoch;
    this.engine = init.engine;
    this.metrics = init.metrics;
    this.signal = init.signal;
    this.abort = init.abort;
    this.startedMs = init.startedMs;
    this.life = init.life;
  }
  get alive(): boolean {
    return this.life.alive;
  }
  get leading(): boolean {
    return this.life.leading;
  }
  get endedMs(): number | undefined {
    return this.life.endedMs;
  }
  get ended(): ReplicaEnd | undefined {
    return this.life.ended;
  }
}

/** The replicas of one run. */
export class Replicas {
  readonly #list: SimReplica[] = [];
  readonly #build: (parts: ReplicaParts) => { engine: Engine; metrics: Metrics };
  readonly #cluster: ClusterClient;
  readonly #runSignal: AbortSignal;
  readonly #now: () => number;
  readonly #maxListeners: number;

  constructor(opts: {
    readonly cluster: ClusterClient;
    readonly runSignal: AbortSignal;
    readonly now: () => number;
    /** Listeners one replica's signal may have (every step in flight and query waits on it). */
    readonly maxListeners: number;
    readonly build: (parts: ReplicaParts) => { engine: Engine; metrics: Metrics };
  }) {
    this.#cluster = opts.cluster;
    this.#runSignal = opts.runSignal;
    this.#now = opts.now;
    this.#maxListeners = opts.maxListeners;
    this.#build = opts.build;
    this.#start();
  }

  /** Every replica, in start order. */
  all(): readonly Replica[] {
    return this.#list;
  }

  /** The replicas that cycle now (oldest first). */
  leading(): readonly Replica[] {
    return this.#list.filter((r) => r.leading);
  }

  /** The newest replica: the one that leads once any overlap is over. */
  get primary(): Replica {
    const last = this.#list[this.#list.length - 1];
    if (last === undefined) throw new Error('no replica');
    return last;
  }

  /** Steps running in live processes. */
  get inflight(): number {
    let n = 0;
    for (const r of this.#list) if (r.alive) n += r.engine.controller.inflight;
    return n;
  }

  /** Storm breaker trips over every replica. */
  get breakerTrips(): number {
    return this.#list.reduce((n, r) => n + r.engine.controller.gates.breakerTrips, 0);
  }

  /** A leading replica's breaker is open. */
  breakerOpen(nowMs: number): boolean {
    return this.leading().some((r) => r.engine.controller.gates.breakerOpen(nowMs));
  }

  /** Every process ends; a fresh replica leads at the next epoch. */
  restart(): void {
    for (const r of this.#list) if (r.alive) this.#stop(r, 'restart');
    this.#start();
  }

  /** A new replica at the next epoch leads beside the current one. */
  overlapStart(): void {
    this.#start();
  }

  /** The oldest leading replica learns it lost the lease (when another leads too). */
  overlapEnd(): void {
    const leading = this.#list.filter((r) => r.leading);
    const old = leading[0];
    if (old !== undefined && leading.length > 1) this.#stop(old, 'lost-lease');
  }

  /** No new step starts anywhere (the end of the run). */
  stopAll(): void {
    for (const r of this.#list) r.engine.controller.stop();
  }

  /** Resolves when no replica has a step running (ended processes included). */
  async idle(): Promise<void> {
    for (const r of this.#list) await r.engine.controller.idle();
  }

  #start(): void {
    const id = this.#list.length;
    const epoch = id;
    const abort = new AbortController();
    const signal = AbortSignal.any([this.#runSignal, abort.signal]);
    setMaxListeners(this.#maxListeners, signal);
    const life: Life = { alive: true, leading: true, endedMs: undefined, ended: undefined };
    const fence: Fence = {
      epoch: () => epoch,
      remainingMs: () => (life.leading ? Number.POSITIVE_INFINITY : -1),
    };
    const built = this.#build({
      id,
      epoch,
      cluster: processCluster(this.#cluster, () => life.alive),
      fence,
      alive: () => life.alive,
    });
    this.#list.push(
      new SimReplica({
        id,
        epoch,
        engine: built.engine,
        metrics: built.metrics,
        signal,
        abort,
        startedMs: this.#now(),
        life,
      }),
    );
  }

  #stop(r: SimReplica, how: ReplicaEnd): void {
    const life = r.life;
    if (life.leading) {
      life.endedMs = this.#now();
      life.ended = how;
    }
    life.leading = false;
    if (how === 'restart') life.alive = false;
    r.engine.controller.stop();
    r.abort.abort(new Error(how === 'restart' ? 'the process ended' : 'the lease was lost'));
  }
}

/** The cluster as one process sees it: once the process has ended, every call fails. */
export function processCluster(inner: ClusterClient, alive: () => boolean): ClusterClient {
  const gate = (): void => {
    if (!alive()) throw new HealError(ErrorCode.NotLeader, 'this Aegis process has ended');
  };
  return {
    listNodes: async (signal) => {
      gate();
      return inner.listNodes(signal);
    },
    getNode: async (name, signal) => {
      gate();
      return inner.getNode(name, signal);
    },
    setUnschedulable: async (name, unschedulable, signal) => {
      gate();
      return inner.setUnschedulable(name, unschedulable, signal);
    },
    patchNodeAnnotations: async (name, annotations, rv, signal) => {
      gate();
      return inner.patchNodeAnnotations(name, annotations, rv, signal);
    },
    patchNodeLabels: async (name, labels, signal) => {
      gate();
      return inner.patchNodeLabels(name, labels, signal);
    },
    listPodsOnNode: async (node, signal) => {
      gate();
      return inner.listPodsOnNode(node, signal);
    },
    evictPod: async (namespace, name, signal) => {
      gate();
      return inner.evictPod(namespace, name, signal);
    },
    deletePod: async (namespace, name, grace, signal) => {
      gate();
      return inner.deletePod(namespace, name, grace, signal);
    },
    createJob: async (request, signal) => {
      gate();
      return inner.createJob(request, signal);
    },
    getJob: async (name, signal) => {
      gate();
      return inner.getJob(name, signal);
    },
    deleteJob: async (name, signal) => {
      gate();
      return inner.deleteJob(name, signal);
    },
    emitEvent: async (event, signal) => {
      gate();
      return inner.emitEvent(event, signal);
    },
    ...(inner.deviceTaints === undefined
      ? {}
      : { deviceTaints: processTaints(inner.deviceTaints, gate) }),
  };
}

/** Device and node taints as one process sees them (GPU-level quarantine). */
function processTaints(api: DeviceTaintClient, gate: () => void): DeviceTaintClient {
  return {
    servesDeviceTaintRules: async (signal) => {
      gate();
      return api.servesDeviceTaintRules(signal);
    },
    createDeviceTaintRule: async (rule, signal) => {
      gate();
      return api.createDeviceTaintRule(rule, signal);
    },
    getDeviceTaintRule: async (name, signal) => {
      gate();
      return api.getDeviceTaintRule(name, signal);
    },
    deleteDeviceTaintRule: async (name, signal) => {
      gate();
      return api.deleteDeviceTaintRule(name, signal);
    },
    setNodeTaints: async (name, taints, rv, signal) => {
      gate();
      return api.setNodeTaints(name, taints, rv, signal);
    },
  };
}
