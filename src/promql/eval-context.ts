/** Internal value shapes and label helpers shared by the evaluator's parts. */
import { ErrorCode, HealError } from '../core/errors.js';
import type { Expr } from './ast.js';
import type { Sample, SeriesSource } from './series.js';

/** A label set; never mutated once built (series label objects are shared with the source). */
export type Labels = Readonly<Record<string, string>>;

/** One element of an instant vector under construction; the evaluator owns and may mutate it. */
export interface VectorSample {
  labels: Labels;
  value: number;
}

/** An instant vector. */
export type Vector = VectorSample[];

/** What an expression evaluates to: a scalar, or an instant vector. */
export type Value = number | Vector;

/** One evaluation: where data comes from, when, and the recursive evaluator. */
export interface EvalContext {
  readonly source: SeriesSource;
  readonly atMs: number;
  readonly lookbackMs: number;
  readonly evaluate: (expr: Expr) => Value;
}

/** The reserved label holding the metric name. */
export const METRIC_NAME = '__name__';

// Joins label values into keys; Prometheus uses the same byte as its separator.
const SEP = '\xff';

/** Evaluates an expression the parser typed as an instant vector. */
export function evalVector(ctx: EvalContext, expr: Expr): Vector {
  const value = ctx.evaluate(expr);
  if (typeof value === 'number') throw internal('expected an instant vector');
  return value;
}

/** Evaluates an expression the parser typed as a scalar. */
export function evalScalar(ctx: EvalContext, expr: Expr): number {
  const value = ctx.evaluate(expr);
  if (typeof value !== 'number') throw internal('expected a scalar');
  return value;
}

function internal(what: string): HealError {
  return new HealError(ErrorCode.InvalidInput, `PromQL evaluator: ${what} (type check missed it)`);
}

/** The label set without `__name__` (the same object when there is none). */
export function dropMetricName(labels: Labels): Labels {
  if (!(METRIC_NAME in labels)) return labels;
  const out: Record<string, string> = {};
  for (const k in labels) if (k !== METRIC_NAME) out[k] = labels[k] as string;
  return out;
}

/** Key over the values of `names` (absent = empty), for `on(...)` and `by (...)`. */
export function keyOn(labels: Labels, names: readonly string[]): string {
  if (names.length === 1) return labels[names[0] as string] ?? '';
  let key = '';
  for (const n of names) key += (labels[n] ?? '') + SEP;
  return key;
}

/** A copy of `labels` with only `names` (empty values left out). */
export function keepLabels(labels: Labels, names: readonly string[]): Labels {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = labels[n];
    if (v !== undefined && v !== '') out[n] = v;
  }
  return out;
}

/** A copy of `labels` without `__name__`, `names`, and empty values. */
export function withoutLabels(labels: Labels, names: ReadonlySet<string>): Labels {
  const out: Record<string, string> = {};
  for (const k in labels) {
    const v = labels[k] as string;
    if (v !== '' && k !== METRIC_NAME && !names.has(k)) out[k] = v;
  }
  return out;
}

/** Index of the first sample with `t > tMs` (binary search; samples are sorted by time). */
export function upperBound(samples: readonly Sample[], tMs: number): number {
  let lo = 0;
  let hi = samples.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((samples[mid] as Sample).t <= tMs) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A running compensated sum: `[sum, compensation]`; the total is `sum + compensation`. */
export type KahanState = [sum: number, c: number];

/** Neumaier-compensated summation step, as Prometheus's kahansum.Inc; updates `state` in place. */
export function kahanAdd(state: KahanState, inc: number): void {
  const sum = state[0];
  const t = sum + inc;
  if (t === Infinity || t === -Infinity) state[1] = 0;
  else if (Math.abs(sum) >= Math.abs(inc)) state[1] += sum - t + inc;
  else state[1] += inc - t + sum;
  state[0] = t;
}
