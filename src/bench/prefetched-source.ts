/**
 * A MetricsSource for benchmarks that keeps the metrics source out of the engine's CPU time:
 * before a cycle, `prefetch` evaluates every query the inspector will issue (on the simulator,
 * timed on its own); during the cycle, `query` answers from those results. In `direct` mode it
 * passes queries through (to check that CycleReport.engineMs excludes them) and still records
 * the answers, so fault visibility is known for every cycle.
 *
 * Queries named `onDemand` (the slow rules, asked only every few cycles) are not prefetched: when
 * the engine asks one, it is evaluated then, and its CPU and wall time are kept apart
 * (`takeOnDemand`) so the caller can take them out of the engine's figures. Evaluating every slow
 * rule in every cycle made the simulator's pass several times longer than the engine ever needs.
 */
import type { InstantSample, MetricsSource } from '../prom/metrics-source.js';
import { cpuMsSince, runQueueWaitNs } from './stats.js';

/** Time spent evaluating one cycle's queries on the inner source. */
export interface PrefetchCost {
  readonly cpuMs: number;
  readonly wallMs: number;
  /** Time spent runnable but waiting for a core (on-demand evaluations; Linux only). */
  readonly waitMs?: number;
}

/** Queries evaluated when asked instead of prefetched, and how to evaluate one synchronously. */
export interface OnDemand {
  readonly exprs: ReadonlySet<string>;
  readonly evaluateNow: (expr: string, atMs: number) => readonly InstantSample[];
}

/** Cache of one cycle's answers in front of a real MetricsSource. */
export class PrefetchedSource implements MetricsSource {
  readonly #inner: MetricsSource;
  #answers = new Map<string, readonly InstantSample[]>();
  #atMs = Number.NaN;
  #direct = false;
  #served = 0;
  #misses = 0;
  readonly #onDemand: OnDemand | undefined;
  #onDemandCost: PrefetchCost = { cpuMs: 0, wallMs: 0, waitMs: 0 };

  constructor(inner: MetricsSource, onDemand?: OnDemand) {
    this.#inner = inner;
    this.#onDemand = onDemand;
  }

  /** Evaluates `exprs` at `atMs` on the inner source, one after the other; returns the cost. */
  async prefetch(
    exprs: readonly string[],
    atMs: number,
    signal: AbortSignal,
  ): Promise<PrefetchCost> {
    this.#begin(atMs, false);
    const cpu = process.cpuUsage();
    const wall = performance.now();
    for (const expr of exprs) this.#answers.set(expr, await this.#inner.query(expr, atMs, signal));
    return { cpuMs: cpuMsSince(cpu), wallMs: performance.now() - wall };
  }

  /** The next cycle at `atMs` queries the inner source directly (answers are still recorded). */
  passThrough(atMs: number): void {
    this.#begin(atMs, true);
  }

  async query(expr: string, atMs: number, signal: AbortSignal): Promise<readonly InstantSample[]> {
    this.#served++;
    const hit = atMs === this.#atMs && !this.#direct ? this.#answers.get(expr) : undefined;
    if (hit !== undefined) return hit;
    const onDemand = this.#direct ? undefined : this.#onDemand;
    let answer: readonly InstantSample[];
    if (onDemand?.exprs.has(expr) === true) {
      // Timed in one synchronous call: nothing of the engine's runs in between.
      const cpu = process.cpuUsage();
      const wall = performance.now();
      const wait = runQueueWaitNs();
      answer = onDemand.evaluateNow(expr, atMs);
      const waitEnd = runQueueWaitNs();
      const cost = this.#onDemandCost;
      this.#onDemandCost = {
        cpuMs: cost.cpuMs + cpuMsSince(cpu),
        wallMs: cost.wallMs + performance.now() - wall,
        waitMs:
          (cost.waitMs ?? 0) +
          (wait === undefined || waitEnd === undefined ? 0 : (waitEnd - wait) / 1e6),
      };
    } else {
      if (!this.#direct) this.#misses++;
      answer = await this.#inner.query(expr, atMs, signal);
    }
    if (atMs === this.#atMs) this.#answers.set(expr, answer);
    return answer;
  }

  /** Time spent evaluating on-demand queries since the last call. */
  takeOnDemand(): PrefetchCost {
    const cost = this.#onDemandCost;
    this.#onDemandCost = { cpuMs: 0, wallMs: 0, waitMs: 0 };
    return cost;
  }

  /** The answer to `expr` in the current cycle, if it was evaluated. */
  answer(expr: string): readonly InstantSample[] | undefined {
    return this.#answers.get(expr);
  }

  /** Queries served since the last call (the engine's queries of one cycle). */
  takeServed(): number {
    const n = this.#served;
    this.#served = 0;
    return n;
  }

  /** Queries the cache could not answer in prefetched cycles (0 when the prefetch list is right). */
  get misses(): number {
    return this.#misses;
  }

  #begin(atMs: number, direct: boolean): void {
    this.#answers = new Map();
    this.#atMs = atMs;
    this.#direct = direct;
  }
}

/** The node a sample is about (`node`, or DCGM's `Hostname`), as the inspector reads it. */
export function sampleNode(s: InstantSample): string {
  return s.labels['node'] ?? s.labels['Hostname'] ?? '';
}
