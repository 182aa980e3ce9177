/**
 * Follows each planned fault from injection to visibility (the first cycle whose rule answer
 * names its node) to its first SOP action (the first `Running` step on the node).
 */
import type { StepEvent } from '../engine/runner.js';
import type { InstantSample } from '../prom/metrics-source.js';
import type { PlannedFault } from './fault-plan.js';
import { sampleNode } from './prefetched-source.js';
import { summarize, type Summary } from './stats.js';

/** Latency figures of one run. */
export interface LatencyResult {
  readonly faults: number;
  readonly visible: number;
  readonly acted: number;
  /** Faults whose rule never returned their node during the run. */
  readonly neverVisible: number;
  /** Visible faults with no action by the end of the run. */
  readonly neverActed: number;
  /**
   * Fault visible → first action: whole inspection intervals waited (virtual time) plus the
   * engine wall time of the cycle that acted (an upper bound of the time to its dispatch).
   */
  readonly visibleToActionMs: Summary;
  /** The virtual-time part alone, in inspection intervals (0: acted in the cycle that saw it). */
  readonly visibleToActionCycles: Summary;
  /** Injection → first action: adds the wait for the next cycle (0 to 1 interval). */
  readonly injectToActionMs: Summary;
  /** Conditions injected (cycled through). */
  readonly conditions: readonly string[];
}

interface Track {
  readonly fault: PlannedFault;
  visibleMs?: number;
  actionMs?: number;
}

/** Collects visibility and first actions during a run. */
export class LatencyTracker {
  readonly #byNode = new Map<string, Track>();
  readonly #pending: Track[];
  readonly #cycleWallMs = new Map<number, number>();
  readonly #intervalMs: number;

  constructor(faults: readonly PlannedFault[], intervalMs: number) {
    this.#pending = faults.map((fault) => ({ fault }));
    for (const t of this.#pending) this.#byNode.set(t.fault.node, t);
    this.#intervalMs = intervalMs;
  }

  /** After a cycle at `atMs`: marks faults whose rule answer names their node as visible. */
  observeCycle(
    atMs: number,
    engineWallMs: number,
    answer: (expr: string) => readonly InstantSample[] | undefined,
  ): void {
    this.#cycleWallMs.set(atMs, engineWallMs);
    for (const t of this.#pending) {
      if (t.visibleMs !== undefined || t.fault.atMs > atMs) continue;
      if ((answer(t.fault.expr) ?? []).some((s) => sampleNode(s) === t.fault.node)) {
        t.visibleMs = atMs;
      }
    }
  }

  /** Every step event of the engine (first `Running` per faulty node counts). */
  onStep(e: StepEvent): void {
    if (e.status !== 'Running') return;
    const t = this.#byNode.get(e.node);
    if (t === undefined || t.actionMs !== undefined || e.atMs < t.fault.atMs) return;
    t.actionMs = e.atMs;
  }

  result(): LatencyResult {
    const latency: number[] = [];
    const cycles: number[] = [];
    const fromInject: number[] = [];
    let visible = 0;
    let acted = 0;
    for (const t of this.#pending) {
      if (t.visibleMs === undefined) continue;
      visible++;
      if (t.actionMs === undefined) continue;
      acted++;
      const wall = this.#cycleWallMs.get(t.actionMs) ?? 0;
      latency.push(t.actionMs - t.visibleMs + wall);
      cycles.push((t.actionMs - t.visibleMs) / this.#intervalMs);
      fromInject.push(t.actionMs - t.fault.atMs + wall);
    }
    return {
      faults: this.#pending.length,
      visible,
      acted,
      neverVisible: this.#pending.length - visible,
      neverActed: visible - acted,
      visibleToActionMs: summarize(latency),
      visibleToActionCycles: summarize(cycles),
      injectToActionMs: summarize(fromInject),
      conditions: [...new Set(this.#pending.map((t) => t.fault.condition))],
    };
  }
}
