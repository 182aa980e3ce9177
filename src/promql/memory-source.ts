/** An in-memory SeriesSource for tests and small simulations. */
import { upperBound } from './eval-context.js';
import { toLabelsPredicate } from './matchers.js';
import type { LabelMatcher, Series, SeriesSource } from './series.js';

/**
 * A SeriesSource over a fixed list of series (samples sorted by time), indexed by metric name.
 * Matchers that came from parsePromQL reuse their precompiled regexes.
 */
export function createMemorySeriesSource(series: readonly Series[]): SeriesSource {
  const byName = new Map<string, Series[]>();
  for (const s of series) {
    const name = s.labels.__name__ ?? '';
    const list = byName.get(name) ?? [];
    list.push(s);
    byName.set(name, list);
  }
  return {
    select(metric: string, matchers: readonly LabelMatcher[], startMs: number, endMs: number) {
      const matches = toLabelsPredicate(matchers);
      const out: Series[] = [];
      for (const s of byName.get(metric) ?? []) {
        if (!matches(s.labels)) continue;
        const lo = upperBound(s.samples, startMs);
        const hi = upperBound(s.samples, endMs);
        if (hi > lo) out.push({ labels: s.labels, samples: s.samples.slice(lo, hi) });
      }
      return out;
    },
  };
}
