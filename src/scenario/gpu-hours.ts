/**
 * GPU-hours out of scheduling over a run: a node cordoned, NotReady or powered off takes all its
 * GPUs out; a node still schedulable takes out only the GPUs Aegis quarantined on it (the node
 * annotation `aegis.io/gpu-quarantine`). Integrated over virtual time from the cluster's truth,
 * sampled after every cycle and before a fast-forward (the state held between two samples).
 */
import { isControlPlane, type NodeInfo } from '../core/types.js';
import { quarantinedDevices } from '../sop/quarantine.js';

/** GPU-hours out of scheduling, split by why. */
export interface GpuHours {
  /** GPUs of nodes cordoned, NotReady or off. */
  readonly wholeNode: number;
  /** GPUs quarantined one by one on nodes that stayed schedulable. */
  readonly quarantined: number;
  readonly total: number;
}

const HOUR_MS = 3_600_000;

/** Integrates GPUs out of scheduling over time. */
export class GpuHoursMeter {
  readonly #gpusOf: (node: string) => number;
  #lastMs: number | undefined;
  #wholeNow = 0;
  #quarantinedNow = 0;
  #whole = 0;
  #quarantined = 0;

  /** `gpusOf`: the node's GPUs (0 for nodes without any). */
  constructor(gpusOf: (node: string) => number) {
    this.#gpusOf = gpusOf;
  }

  /** Records the fleet as it is at `atMs` (the previous state held until now). */
  sample(nodes: readonly NodeInfo[], atMs: number): void {
    this.#advance(atMs);
    let whole = 0;
    let quarantined = 0;
    for (const n of nodes) {
      if (isControlPlane(n)) continue;
      const gpus = this.#gpusOf(n.name);
      if (gpus === 0) continue;
      if (n.unschedulable || n.ready !== true) whole += gpus;
      else quarantined += Math.min(gpus, quarantinedDevices(n).length);
    }
    this.#wholeNow = whole;
    this.#quarantinedNow = quarantined;
  }

  /** The totals up to `atMs`. */
  result(atMs: number): GpuHours {
    this.#advance(atMs);
    const wholeNode = this.#whole / HOUR_MS;
    const quarantined = this.#quarantined / HOUR_MS;
    return { wholeNode, quarantined, total: wholeNode + quarantined };
  }

  #advance(atMs: number): void {
    if (this.#lastMs !== undefined && atMs > this.#lastMs) {
      this.#whole += this.#wholeNow * (atMs - this.#lastMs);
      this.#quarantined += this.#quarantinedNow * (atMs - this.#lastMs);
    }
    this.#lastMs = Math.max(this.#lastMs ?? atMs, atMs);
  }
}
