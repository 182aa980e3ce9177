/** Selector evaluation: instant lookback, range windows, and absent()'s label inference. */
import type { MatrixSelector, VectorSelector } from './ast.js';
import type { EvalContext, Labels, Vector } from './eval-context.js';
import { dropMetricName, METRIC_NAME, upperBound } from './eval-context.js';
import type { RangeFn, RangeWindow } from './eval-range.js';

/**
 * The latest sample of each series in `(t - offset - lookback, t - offset]`; the value, or with
 * `useTimestamps` the sample's timestamp in seconds (for timestamp()).
 */
export function selectInstant(
  ctx: EvalContext,
  sel: VectorSelector,
  opts: { readonly useTimestamps: boolean },
): Vector {
  const endMs = ctx.atMs - sel.offsetMs;
  const startMs = endMs - ctx.lookbackMs;
  const out: Vector = [];
  for (const series of ctx.source.select(sel.metric, sel.matchers, startMs, endMs)) {
    const samples = series.samples;
    const i = upperBound(samples, endMs) - 1;
    const sample = samples[i];
    if (sample === undefined || sample.t <= startMs) continue;
    out.push({ labels: series.labels, value: opts.useTimestamps ? sample.t / 1000 : sample.v });
  }
  return out;
}

/** Applies a range function to each series of a range selector; only last_over_time keeps names. */
export function evalRangeFunction(
  ctx: EvalContext,
  ms: MatrixSelector,
  fn: { readonly apply: RangeFn; readonly param: number; readonly keepName: boolean },
): Vector {
  const sel = ms.selector;
  const endMs = ctx.atMs - sel.offsetMs;
  const startMs = endMs - ms.rangeMs;
  const w: RangeWindow = { startMs, endMs, rangeMs: ms.rangeMs, evalMs: ctx.atMs, param: fn.param };
  const out: Vector = [];
  for (const series of ctx.source.select(sel.metric, sel.matchers, startMs, endMs)) {
    const samples = series.samples;
    const lo = upperBound(samples, startMs);
    const hi = upperBound(samples, endMs);
    if (hi <= lo) continue;
    const value = fn.apply(samples, lo, hi, w);
    if (value === undefined) continue;
    out.push({ labels: fn.keepName ? series.labels : dropMetricName(series.labels), value });
  }
  return out;
}

/** True when any series of the range selector has a sample in its window. */
export function hasAnySample(ctx: EvalContext, ms: MatrixSelector): boolean {
  const sel = ms.selector;
  const endMs = ctx.atMs - sel.offsetMs;
  const startMs = endMs - ms.rangeMs;
  return ctx.source
    .select(sel.metric, sel.matchers, startMs, endMs)
    .some((s) => upperBound(s.samples, endMs) > upperBound(s.samples, startMs));
}

/**
 * Labels absent() and absent_over_time() return: the selector's equality matchers, minus any label
 * matched more than once or by another operator (Prometheus's createLabelsForAbsentFunction).
 */
export function absentLabels(sel: VectorSelector): Labels {
  const out = new Map<string, string>();
  const seen = new Set<string>();
  for (const m of sel.matchers) {
    if (m.name === METRIC_NAME) continue;
    if (m.op === '=' && !seen.has(m.name)) {
      if (m.value !== '') out.set(m.name, m.value);
      seen.add(m.name);
    } else {
      out.delete(m.name);
    }
  }
  return Object.fromEntries(out);
}
