/**
 * The engine's MetricsSource over history, batched: an instant query of `expr` at a time on the
 * replay's step grid (`fromMs + k * stepMs`) is served from one range query of `expr` covering
 * many steps at once (a chunk), fetched the first time a step of the chunk is asked. A range
 * query evaluates the expression at each step exactly as an instant query at that time would,
 * so the engine sees what it would have seen, at one request per rule per chunk instead of one
 * per rule per cycle.
 *
 * The chunk's length adapts: at most `maxChunkSteps` steps (Prometheus refuses more than 11,000
 * points per series), fewer for a large fleet (about `pointBudget` points per answer, counted
 * as steps × nodes), and halved for one expression whenever its answer is too large or loads
 * too many samples. A query off the grid (or outside the window) is asked as an instant query.
 * Only the chunk in use is kept per expression: memory stays bounded over any window.
 */
import { ErrorCode, HealError, isHealError } from '../core/errors.js';
import type { InstantSample, MetricsSource } from '../prom/metrics-source.js';
import type { HistoryReader } from './range-client.js';

/** Options of RangeSource. */
export interface RangeSourceOptions {
  readonly fromMs: number;
  readonly toMs: number;
  readonly stepMs: number;
  /** Most steps per range query (default 10,000). */
  readonly maxChunkSteps?: number;
  /** Points (steps × nodes) one range answer should hold at most (default 500,000). */
  readonly pointBudget?: number;
  /** Nodes of the fleet (sizes the chunks; default 1). */
  readonly nodes?: number;
}

interface Chunk {
  readonly first: number;
  readonly last: number;
  readonly byStep: ReadonlyMap<number, InstantSample[]>;
  /** Steps whose answer differs from the step before (the chunk's first step always does). */
  readonly changes: readonly number[];
}

const EMPTY: readonly InstantSample[] = [];

/** Cost counters of a replay's reads. */
export interface RangeSourceStats {
  /** Range queries sent. */
  readonly rangeQueries: number;
  /** Instant queries asked off the grid. */
  readonly offGrid: number;
  /** Answers served from a chunk. */
  readonly served: number;
  /** Times a chunk was halved because its answer was too large. */
  readonly shrunk: number;
}

/** Instant queries on the grid served from range queries (see the top of the file). */
export class RangeSource implements MetricsSource {
  readonly #reader: HistoryReader;
  readonly #o: Required<RangeSourceOptions>;
  readonly #lastStep: number;
  readonly #chunks = new Map<string, Chunk>();
  readonly #steps = new Map<string, number>();
  readonly #pending = new Map<string, Promise<Chunk>>();
  #stats = { rangeQueries: 0, offGrid: 0, served: 0, shrunk: 0 };

  constructor(reader: HistoryReader, options: RangeSourceOptions) {
    this.#reader = reader;
    this.#o = {
      maxChunkSteps: 10_000,
      pointBudget: 500_000,
      nodes: 1,
      ...options,
    };
    this.#lastStep = Math.floor((options.toMs - options.fromMs) / options.stepMs);
  }

  /** What the reads cost so far. */
  get stats(): RangeSourceStats {
    return { ...this.#stats };
  }

  async query(expr: string, atMs: number, signal: AbortSignal): Promise<readonly InstantSample[]> {
    const offset = atMs - this.#o.fromMs;
    const step = offset / this.#o.stepMs;
    if (!Number.isInteger(step) || step < 0 || step > this.#lastStep) {
      this.#stats.offGrid++;
      return this.#reader.query(expr, atMs, signal);
    }
    let chunk = this.#chunks.get(expr);
    if (chunk === undefined || step < chunk.first || step > chunk.last) {
      chunk = await this.#load(expr, step, signal);
    }
    this.#stats.served++;
    return chunk.byStep.get(step) ?? EMPTY;
  }

  /**
   * The first step after `step` at which some expression asked so far may answer differently
   * from the step before: a step where a loaded answer changes, or the first step past a loaded
   * chunk (unknown yet). Between `step` and it, every answer is the same as at `step`.
   */
  nextChange(step: number): number {
    let next = this.#lastStep + 1;
    for (const c of this.#chunks.values()) {
      if (step < c.first || step > c.last) return step + 1;
      let lo = 0;
      let hi = c.changes.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((c.changes[mid] ?? 0) <= step) lo = mid + 1;
        else hi = mid;
      }
      next = Math.min(next, c.changes[lo] ?? c.last + 1);
    }
    return next;
  }

  /** Chunk length for `expr` now (its own, once shrunk). */
  #stepsFor(expr: string): number {
    const own = this.#steps.get(expr);
    if (own !== undefined) return own;
    const bySize = Math.floor(this.#o.pointBudget / this.#o.nodes);
    return Math.max(1, Math.min(this.#o.maxChunkSteps, bySize));
  }

  #load(expr: string, first: number, signal: AbortSignal): Promise<Chunk> {
    const key = `${expr}\0${first}`;
    const pending = this.#pending.get(key);
    if (pending !== undefined) return pending;
    const p = this.#fetch(expr, first, signal).finally(() => this.#pending.delete(key));
    this.#pending.set(key, p);
    return p;
  }

  async #fetch(expr: string, first: number, signal: AbortSignal): Promise<Chunk> {
    for (;;) {
      const steps = this.#stepsFor(expr);
      const last = Math.min(this.#lastStep, first + steps - 1);
      const { fromMs, stepMs } = this.#o;
      try {
        this.#stats.rangeQueries++;
        const series = await this.#reader.queryRange(
          expr,
          fromMs + first * stepMs,
          fromMs + last * stepMs,
          stepMs,
          signal,
        );
        const byStep = new Map<number, InstantSample[]>();
        for (const s of series) {
          for (const [t, value] of s.points) {
            const k = Math.round((t - fromMs) / stepMs);
            let list = byStep.get(k);
            if (list === undefined) byStep.set(k, (list = []));
            list.push({ labels: s.labels, value });
          }
        }
        const changes: number[] = [first];
        for (let k = first + 1; k <= last; k++)
          if (!sameAnswer(byStep.get(k), byStep.get(k - 1))) changes.push(k);
        const chunk: Chunk = { first, last, byStep, changes };
        this.#chunks.set(expr, chunk);
        return chunk;
      } catch (err) {
        if (!tooBig(err) || steps <= 1) throw err;
        this.#stats.shrunk++;
        this.#steps.set(expr, Math.max(1, Math.floor(steps / 2)));
      }
    }
  }
}

/**
 * The same answer at two steps: the same series (a range answer's series share one labels
 * object across its steps) in the same order, with the same values.
 */
function sameAnswer(
  a: readonly InstantSample[] | undefined,
  b: readonly InstantSample[] | undefined,
): boolean {
  const x = a ?? EMPTY;
  const y = b ?? EMPTY;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    const p = x[i] as InstantSample;
    const q = y[i] as InstantSample;
    if (p.labels !== q.labels || !Object.is(p.value, q.value)) return false;
  }
  return true;
}

/** An answer too large to read, or a query Prometheus refused for its size: ask fewer steps. */
function tooBig(err: unknown): boolean {
  if (isHealError(err, ErrorCode.PromResponseTooLarge)) return true;
  if (!(err instanceof HealError) || err.code !== ErrorCode.PromBadResponse) return false;
  return /too many samples|exceeded maximum resolution|11,?000 points/i.test(err.message);
}
