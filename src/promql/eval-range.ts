/**
 * Functions over range vectors, ported from Prometheus's promql/functions.go. Each one reads the
 * samples `s[lo..hi)` in place (no copying) and returns undefined to drop the series.
 */
import type { KahanState } from './eval-context.js';
import { kahanAdd } from './eval-context.js';
import type { Sample } from './series.js';

/** The window of one range evaluation; `param` is the scalar argument where there is one. */
export interface RangeWindow {
  readonly startMs: number;
  readonly endMs: number;
  readonly rangeMs: number;
  readonly evalMs: number;
  readonly param: number;
}

/** A range function over `s[lo..hi)`, which holds at least one sample. */
export type RangeFn = (
  s: readonly Sample[],
  lo: number,
  hi: number,
  w: RangeWindow,
) => number | undefined;

const at = (s: readonly Sample[], i: number): Sample => s[i] as Sample;

/**
 * Prometheus's extrapolatedRate: the increase over the samples, counter resets added back,
 * extrapolated to the window edges when the first/last sample is within 1.1x the average sample
 * interval of them (else by half an interval), and never below a counter's zero point.
 */
function extrapolatedRate(
  s: readonly Sample[],
  lo: number,
  hi: number,
  w: RangeWindow,
  kind: { readonly isCounter: boolean; readonly isRate: boolean },
): number | undefined {
  if (hi - lo < 2) return undefined;
  const first = at(s, lo);
  const last = at(s, hi - 1);
  let result = last.v - first.v;
  if (kind.isCounter) {
    for (let i = lo + 1; i < hi; i++) {
      const prev = at(s, i - 1).v;
      if (at(s, i).v < prev) result += prev;
    }
  }
  let durationToStart = (first.t - w.startMs) / 1000;
  let durationToEnd = (w.endMs - last.t) / 1000;
  const sampledInterval = (last.t - first.t) / 1000;
  const averageInterval = sampledInterval / (hi - lo - 1);
  const threshold = averageInterval * 1.1;
  if (durationToStart >= threshold) durationToStart = averageInterval / 2;
  if (kind.isCounter && result > 0 && first.v >= 0) {
    // A counter cannot go below zero: do not extrapolate past its zero point.
    const durationToZero = sampledInterval * (first.v / result);
    if (durationToZero < durationToStart) durationToStart = durationToZero;
  }
  if (durationToEnd >= threshold) durationToEnd = averageInterval / 2;
  let factor = (sampledInterval + durationToStart + durationToEnd) / sampledInterval;
  if (kind.isRate) factor /= w.rangeMs / 1000;
  return result * factor;
}

/** irate/idelta: from the last two samples; a counter drop counts as a reset to zero. */
function instantValue(
  s: readonly Sample[],
  lo: number,
  hi: number,
  isRate: boolean,
): number | undefined {
  if (hi - lo < 2) return undefined;
  const prev = at(s, hi - 2);
  const last = at(s, hi - 1);
  const intervalMs = last.t - prev.t;
  if (intervalMs === 0) return undefined;
  const value = isRate && last.v < prev.v ? last.v : last.v - prev.v;
  return isRate ? value / (intervalMs / 1000) : value;
}

/** Least-squares slope and intercept at `interceptMs`, as Prometheus's linearRegression. */
function linearRegression(
  s: readonly Sample[],
  lo: number,
  hi: number,
  interceptMs: number,
): [slope: number, intercept: number] {
  const x: KahanState = [0, 0];
  const y: KahanState = [0, 0];
  const xy: KahanState = [0, 0];
  const x2: KahanState = [0, 0];
  const initY = at(s, lo).v;
  let constY = true;
  for (let i = lo; i < hi; i++) {
    const { t, v } = at(s, i);
    if (i > lo && v !== initY) constY = false;
    const dx = (t - interceptMs) / 1000;
    kahanAdd(x, dx);
    kahanAdd(y, v);
    kahanAdd(xy, dx * v);
    kahanAdd(x2, dx * dx);
  }
  if (constY) return Number.isFinite(initY) || Number.isNaN(initY) ? [0, initY] : [NaN, NaN];
  const n = hi - lo;
  const sumX = x[0] + x[1];
  const sumY = y[0] + y[1];
  const covXY = xy[0] + xy[1] - (sumX * sumY) / n;
  const varX = x2[0] + x2[1] - (sumX * sumX) / n;
  const slope = covXY / varX;
  return [slope, sumY / n - (slope * sumX) / n];
}

/**
 * A running mean as Prometheus computes avg and avg_over_time: a compensated direct sum, switching
 * to an incremental mean once the sum would overflow.
 */
export interface MeanState {
  readonly acc: KahanState;
  mean: number;
  count: number;
  incremental: boolean;
}

/** Starts a mean with its first value. */
export function startMean(first: number): MeanState {
  return { acc: [first, 0], mean: 0, count: 1, incremental: false };
}

/** Adds a value to a running mean. */
export function addToMean(m: MeanState, v: number): void {
  m.count++;
  const { acc, count } = m;
  if (!m.incremental) {
    const sum = acc[0];
    const c = acc[1];
    kahanAdd(acc, v);
    if (acc[0] !== Infinity && acc[0] !== -Infinity) return;
    m.incremental = true;
    m.mean = sum / (count - 1);
    acc[1] = c / (count - 1);
  }
  const q = (count - 1) / count;
  acc[0] = q * m.mean;
  acc[1] = q * acc[1];
  kahanAdd(acc, v / count);
  m.mean = acc[0];
}

/** The mean so far. */
export function meanOf(m: MeanState): number {
  return m.incremental ? m.mean + m.acc[1] : m.acc[0] / m.count + m.acc[1] / m.count;
}

function avgOverTime(s: readonly Sample[], lo: number, hi: number): number {
  const m = startMean(at(s, lo).v);
  for (let i = lo + 1; i < hi; i++) addToMean(m, at(s, i).v);
  return meanOf(m);
}

function varianceOverTime(s: readonly Sample[], lo: number, hi: number): number {
  const mean: KahanState = [0, 0];
  const aux: KahanState = [0, 0];
  let count = 0;
  for (let i = lo; i < hi; i++) {
    const v = at(s, i).v;
    count++;
    const delta = v - (mean[0] + mean[1]);
    kahanAdd(mean, delta / count);
    kahanAdd(aux, delta * (v - (mean[0] + mean[1])));
  }
  return (aux[0] + aux[1]) / count;
}

function extreme(s: readonly Sample[], lo: number, hi: number, isMax: boolean): number {
  let best = at(s, lo).v;
  for (let i = lo; i < hi; i++) {
    const v = at(s, i).v;
    if ((isMax ? v > best : v < best) || Number.isNaN(best)) best = v;
  }
  return best;
}

function countChanges(s: readonly Sample[], lo: number, hi: number, resetsOnly: boolean): number {
  let n = 0;
  for (let i = lo + 1; i < hi; i++) {
    const prev = at(s, i - 1).v;
    const cur = at(s, i).v;
    if (resetsOnly ? cur < prev : cur !== prev && !(Number.isNaN(cur) && Number.isNaN(prev))) n++;
  }
  return n;
}

/** The phi-quantile of `values` (sorted in place, NaN first), as Prometheus's quantile(). */
export function quantileOf(q: number, values: number[]): number {
  if (values.length === 0 || Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  values.sort((a, b) => (Number.isNaN(a) ? -1 : Number.isNaN(b) ? 1 : a - b));
  const n = values.length;
  const rank = q * (n - 1);
  const lower = Math.max(0, Math.floor(rank));
  const upper = Math.min(n - 1, lower + 1);
  const weight = rank - Math.floor(rank);
  return (values[lower] as number) * (1 - weight) + (values[upper] as number) * weight;
}

function values(s: readonly Sample[], lo: number, hi: number): number[] {
  const out = new Array<number>(hi - lo);
  for (let i = lo; i < hi; i++) out[i - lo] = at(s, i).v;
  return out;
}

/** Every range function by name (absent_over_time is handled by the caller). */
export const RANGE_FNS: Readonly<Record<string, RangeFn>> = {
  rate: (s, lo, hi, w) => extrapolatedRate(s, lo, hi, w, { isCounter: true, isRate: true }),
  increase: (s, lo, hi, w) => extrapolatedRate(s, lo, hi, w, { isCounter: true, isRate: false }),
  delta: (s, lo, hi, w) => extrapolatedRate(s, lo, hi, w, { isCounter: false, isRate: false }),
  irate: (s, lo, hi) => instantValue(s, lo, hi, true),
  idelta: (s, lo, hi) => instantValue(s, lo, hi, false),
  deriv: (s, lo, hi) => (hi - lo < 2 ? undefined : linearRegression(s, lo, hi, at(s, lo).t)[0]),
  predict_linear: (s, lo, hi, w) => {
    if (hi - lo < 2) return undefined;
    const [slope, intercept] = linearRegression(s, lo, hi, w.evalMs);
    return slope * w.param + intercept;
  },
  changes: (s, lo, hi) => countChanges(s, lo, hi, false),
  resets: (s, lo, hi) => countChanges(s, lo, hi, true),
  avg_over_time: (s, lo, hi) => avgOverTime(s, lo, hi),
  min_over_time: (s, lo, hi) => extreme(s, lo, hi, false),
  max_over_time: (s, lo, hi) => extreme(s, lo, hi, true),
  sum_over_time: (s, lo, hi) => {
    const acc: KahanState = [0, 0];
    for (let i = lo; i < hi; i++) kahanAdd(acc, at(s, i).v);
    return acc[0] === Infinity || acc[0] === -Infinity ? acc[0] : acc[0] + acc[1];
  },
  count_over_time: (_s, lo, hi) => hi - lo,
  last_over_time: (s, _lo, hi) => at(s, hi - 1).v,
  present_over_time: () => 1,
  stddev_over_time: (s, lo, hi) => Math.sqrt(varianceOverTime(s, lo, hi)),
  stdvar_over_time: (s, lo, hi) => varianceOverTime(s, lo, hi),
  quantile_over_time: (s, lo, hi, w) => quantileOf(w.param, values(s, lo, hi)),
};
