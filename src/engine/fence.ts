import type { Clock } from '../core/clock.js';
import { ErrorCode, HealError } from '../core/errors.js';
import type { ClusterClient, DeviceTaintClient } from '../k8s/cluster.js';

/**
 * Fencing: what stops a replica that has lost its lease (a pause, a partition, a slow API) from
 * acting while another replica leads. Two layers:
 * - every write to the cluster is checked against the lease right before it is sent, and is given
 *   a deadline that ends when the lease could have passed to another replica (`fencedCluster`);
 * - the ticket is the lock: a step is written with this leadership's epoch (the Lease's transition
 *   count when it was taken), and a ticket that names a newer epoch refuses the older leader's
 *   writes (see the runner), so a write already on the wire when the lease passed still loses.
 */
export interface Fence {
  /** This leadership's epoch: the Lease's transition count when this replica took it. */
  epoch(): number;
  /** Milliseconds this replica still safely holds the lease (0 or less: it does not). */
  remainingMs(): number;
}

/** No leader election (a single replica, the simulator): always held, epoch 0. */
export const UNFENCED: Fence = { epoch: () => 0, remainingMs: () => Number.POSITIVE_INFINITY };

/**
 * The fence of one replica's leadership, fed by its lease loop. A renewal sent at `sentAtMs` and
 * granted holds the lease until `sentAtMs + duration`: another replica takes over only once it has
 * seen the lease unchanged for a whole duration, counted from no earlier than that send. The margin
 * covers clock-rate drift and the time a write spends on the wire.
 */
export class LeaseFence implements Fence {
  readonly #clock: Clock;
  readonly #durationMs: number;
  readonly #marginMs: number;
  #epoch = -1;
  #heldUntilMs = Number.NEGATIVE_INFINITY;

  constructor(opts: { clock: Clock; durationMs: number; marginMs: number }) {
    if (opts.marginMs >= opts.durationMs) {
      throw new HealError(
        ErrorCode.ConfigInvalid,
        `leader election: fence margin ${opts.marginMs} ms must be shorter than the lease (${opts.durationMs} ms)`,
      );
    }
    this.#clock = opts.clock;
    this.#durationMs = opts.durationMs;
    this.#marginMs = opts.marginMs;
  }

  /** A renewal sent at `sentAtMs` was granted at `epoch`. */
  granted(epoch: number, sentAtMs: number): void {
    this.#epoch = epoch;
    this.#heldUntilMs = Math.max(
      epoch === this.#epoch ? this.#heldUntilMs : Number.NEGATIVE_INFINITY,
      sentAtMs + this.#durationMs - this.#marginMs,
    );
  }

  /** The lease is lost (or given up): every later write is refused. */
  lost(): void {
    this.#heldUntilMs = Number.NEGATIVE_INFINITY;
  }

  epoch(): number {
    return this.#epoch;
  }

  remainingMs(): number {
    return this.#heldUntilMs - this.#clock.now();
  }
}

/** Throws NOT_LEADER unless the fence is held for at least `minMs` more. */
export function assertHeld(fence: Fence, what: string, minMs = 0): void {
  const left = fence.remainingMs();
  if (left <= minMs) {
    throw new HealError(
      ErrorCode.NotLeader,
      `${what}: refused, this replica no longer holds the leader lease (epoch ${fence.epoch()})`,
    );
  }
}

/**
 * A cluster client whose writes are fenced: each is refused unless the lease is held, and is
 * aborted when the lease could have passed to another replica. Reads and Events pass through.
 */
export function fencedCluster(cluster: ClusterClient, fence: Fence): ClusterClient {
  if (fence === UNFENCED) return cluster;
  const guard = (what: string, signal: AbortSignal): AbortSignal => {
    assertHeld(fence, what);
    const left = fence.remainingMs();
    return Number.isFinite(left)
      ? AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, Math.floor(left)))])
      : signal;
  };
  const fenced: ClusterClient = {
    listNodes: (signal) => cluster.listNodes(signal),
    getNode: (name, signal) => cluster.getNode(name, signal),
    setUnschedulable: (name, u, signal) =>
      cluster.setUnschedulable(name, u, guard(`${u ? 'cordon' : 'uncordon'} node ${name}`, signal)),
    patchNodeAnnotations: (name, annotations, rv, signal) =>
      cluster.patchNodeAnnotations(name, annotations, rv, guard(`annotate node ${name}`, signal)),
    patchNodeLabels: (name, labels, signal) =>
      cluster.patchNodeLabels(name, labels, guard(`label node ${name}`, signal)),
    listPodsOnNode: (node, signal) => cluster.listPodsOnNode(node, signal),
    evictPod: (ns, name, signal) =>
      cluster.evictPod(ns, name, guard(`evict pod ${ns}/${name}`, signal)),
    deletePod: (ns, name, grace, signal) =>
      cluster.deletePod(ns, name, grace, guard(`delete pod ${ns}/${name}`, signal)),
    createJob: (request, signal) =>
      cluster.createJob(request, guard(`create job ${request.name}`, signal)),
    getJob: (name, signal) => cluster.getJob(name, signal),
    deleteJob: (name, signal) => cluster.deleteJob(name, guard(`delete job ${name}`, signal)),
    emitEvent: (event, signal) => cluster.emitEvent(event, signal),
  };
  const peek = cluster.peekNode?.bind(cluster);
  const close = cluster.close?.bind(cluster);
  const onNodeChange = cluster.onNodeChange?.bind(cluster);
  const readControl = cluster.readControl?.bind(cluster);
  const writeIncident = cluster.writeIncident?.bind(cluster);
  const evictWithGrace = cluster.evictPodWithGrace?.bind(cluster);
  const annotatePod = cluster.patchPodAnnotations?.bind(cluster);
  return {
    ...fenced,
    ...(evictWithGrace === undefined
      ? {}
      : {
          evictPodWithGrace: (ns, name, grace, signal) =>
            evictWithGrace(ns, name, grace, guard(`evict pod ${ns}/${name}`, signal)),
        }),
    ...(annotatePod === undefined
      ? {}
      : {
          patchPodAnnotations: (ns, name, annotations, signal) =>
            annotatePod(ns, name, annotations, guard(`annotate pod ${ns}/${name}`, signal)),
        }),
    ...(cluster.deviceTaints === undefined
      ? {}
      : { deviceTaints: fencedDeviceTaints(cluster.deviceTaints, guard) }),
    ...(peek === undefined ? {} : { peekNode: peek }),
    ...(close === undefined ? {} : { close }),
    ...(onNodeChange === undefined ? {} : { onNodeChange }),
    ...(readControl === undefined ? {} : { readControl }),
    ...(writeIncident === undefined
      ? {}
      : {
          writeIncident: (record, signal) =>
            writeIncident(record, guard(`write incident ${record.name}`, signal)),
        }),
  };
}

/** Device and node taint writes, fenced like every other write (reads pass through). */
function fencedDeviceTaints(
  api: DeviceTaintClient,
  guard: (what: string, signal: AbortSignal) => AbortSignal,
): DeviceTaintClient {
  return {
    servesDeviceTaintRules: (signal) => api.servesDeviceTaintRules(signal),
    getDeviceTaintRule: (name, signal) => api.getDeviceTaintRule(name, signal),
    createDeviceTaintRule: (rule, signal) =>
      api.createDeviceTaintRule(rule, guard(`create devicetaintrule ${rule.name}`, signal)),
    deleteDeviceTaintRule: (name, signal) =>
      api.deleteDeviceTaintRule(name, guard(`delete devicetaintrule ${name}`, signal)),
    setNodeTaints: (name, taints, rv, signal) =>
      api.setNodeTaints(name, taints, rv, guard(`taint node ${name}`, signal)),
  };
}
