/**
 * The history of one series that differs from its baseline: change points `{t, v}` (v `null` =
 * the series is absent from t on), plus the holds (faults, Kubernetes state) that produced them.
 * A series nobody touched has no Track at all; that is what keeps the store sparse.
 */
import type { Sample } from '../promql/series.js';
import type { Exporter } from './family.js';

/** One change point. For counters `v` is the offset added to the baseline; for gauges the value. */
export interface Point {
  readonly t: number;
  readonly v: number | null;
}

/** Exporter availability change of one node (false = target down, its series vanish). */
export interface AvailPoint {
  readonly t: number;
  readonly up: boolean;
}

interface Hold {
  readonly id: string;
  readonly v: number | null;
}

/** Mutable override history of one series. */
export interface Track {
  readonly metric: string;
  readonly nodeIndex: number;
  readonly exporter: Exporter;
  readonly counter: boolean;
  /** Counter that survives reboots. */
  readonly persistent: boolean;
  /** Baseline value; `null` for series a fault created (absent before their first point). */
  readonly base: number | null;
  /** Healthy growth per second of a counter. */
  readonly slope: number;
  /** Full labels, only for series that have no baseline family (created by a fault). */
  readonly labels: Readonly<Record<string, string>> | undefined;
  readonly points: Point[];
  readonly holds: Hold[];
  /** Sum of counter `add`s so far. */
  offset: number;
}

/** A fresh track for a series. */
export function newTrack(init: Omit<Track, 'points' | 'holds' | 'offset'>): Track {
  return { ...init, points: [], holds: [], offset: 0 };
}

/** Raw point value in force at `t` (undefined: none yet, the baseline applies). */
function pointAt(points: readonly Point[], t: number): Point | undefined {
  let lo = 0;
  let hi = points.length - 1;
  let found: Point | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const p = points[mid]!;
    if (p.t <= t) {
      found = p;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/** Value of the series at `t`, `null` when absent (ignores exporter availability). */
export function valueAt(track: Track, t: number): number | null {
  const p = pointAt(track.points, t);
  if (!track.counter) return p === undefined ? track.base : p.v;
  if (track.base === null && p === undefined) return null;
  const v = p === undefined ? 0 : p.v;
  return v === null ? null : (track.base ?? 0) + (track.slope * t) / 1000 + v;
}

/** Baseline value of a series with no track at `t`. */
export function baselineAt(base: number, slope: number, t: number): number {
  return slope === 0 ? base : base + (slope * t) / 1000;
}

function effective(track: Track): number | null {
  const top = track.holds[track.holds.length - 1];
  if (top !== undefined) {
    if (top.v === null || !track.counter) return top.v;
    return top.v - (track.base ?? 0);
  }
  return track.counter
    ? track.base === null && track.offset === 0
      ? null
      : track.offset
    : track.base;
}

function record(track: Track, t: number): void {
  const v = effective(track);
  const last = track.points[track.points.length - 1];
  const before =
    last === undefined ? (track.counter ? (track.base === null ? null : 0) : track.base) : last.v;
  if (before === v) return;
  if (last !== undefined && last.t > t) {
    const i = track.points.findIndex((p) => p.t > t);
    track.points.splice(i, 0, { t, v });
    return;
  }
  if (last !== undefined && last.t === t) track.points.pop();
  track.points.push({ t, v });
}

/** Holds a value (`null` = absent) on the series from `t` until released; same id replaces. */
export function hold(track: Track, id: string, v: number | null, t: number): void {
  const i = track.holds.findIndex((h) => h.id === id);
  if (i !== -1) track.holds.splice(i, 1);
  track.holds.push({ id, v });
  record(track, t);
}

/** Releases a hold; the next hold down, or the baseline (counters: their count), applies. */
export function release(track: Track, id: string, t: number): boolean {
  const i = track.holds.findIndex((h) => h.id === id);
  if (i === -1) return false;
  track.holds.splice(i, 1);
  record(track, t);
  return true;
}

/** Adds to a counter from `t` on (a step change point; counters never go back down). */
export function addToCounter(track: Track, delta: number, t: number): void {
  track.offset += delta;
  record(track, t);
}

/** A reboot: a volatile counter starts again from its baseline (what a fault added is gone). */
export function resetCounter(track: Track, t: number): void {
  if (!track.counter || track.offset === 0) return;
  track.offset = 0;
  record(track, t);
}

/** True when the exporter of the series answers at `t`. */
export function isUp(avail: readonly AvailPoint[] | undefined, t: number): boolean {
  if (avail === undefined) return true;
  let up = true;
  for (const a of avail) {
    if (a.t > t) break;
    up = a.up;
  }
  return up;
}

/**
 * Samples of a series in `(start, end]`: one at the window start, one at every change point, one
 * just before the series vanished, and one at the end, so increase()/offset/max_over_time see exact
 * history. With `instant` (a lookback window), a series absent at `end` has no samples at all: a
 * scraping Prometheus would have written a staleness marker. `upMode` turns availability into the
 * value itself (Prometheus' `up`).
 */
export function windowSamples(
  read: (t: number) => number | null,
  points: readonly Point[],
  avail: readonly AvailPoint[] | undefined,
  start: number,
  end: number,
  mode: { readonly upMode: boolean; readonly instant: boolean },
): Sample[] | undefined {
  const at = (t: number): number | null => {
    const up = isUp(avail, t);
    // `up` is 0 while the exporter is down; while it answers, a fault may hold it at 0 (a scrape
    // that fails on an answer Prometheus cannot parse).
    if (mode.upMode) return up ? read(t) : 0;
    return up ? read(t) : null;
  };
  if (mode.instant && at(end) === null) return undefined;
  const first = Math.min(start + 1, end);
  const times = [first];
  for (const p of points) if (p.t > first && p.t < end) times.push(p.t);
  if (avail !== undefined) for (const a of avail) if (a.t > first && a.t < end) times.push(a.t);
  times.sort((a, b) => a - b);
  times.push(end);
  const out: Sample[] = [];
  let lastT = Number.NEGATIVE_INFINITY;
  let present = false;
  for (const t of times) {
    if (t === lastT) continue;
    const v = at(t);
    if (v !== null) {
      out.push({ t, v });
    } else if (present && t - 1 > lastT) {
      const before = at(t - 1);
      if (before !== null) out.push({ t: t - 1, v: before });
    }
    present = v !== null;
    lastT = t;
  }
  return out.length === 0 ? undefined : out;
}
