/** Text rendering of instant samples, for logs, evidence and tests. */
import type { InstantSample } from '../prom/metrics-source.js';

/** A value as Prometheus prints it (`+Inf`, `-Inf`, `NaN`, shortest round-trip decimal). */
export function formatValue(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** The label set as `name{a="1",b="2"}` (labels sorted by name; `{}` when there are none). */
export function formatLabels(labels: Readonly<Record<string, string>>): string {
  const name = labels.__name__ ?? '';
  const pairs = Object.keys(labels)
    .filter((k) => k !== '__name__')
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return pairs.length === 0 && name !== '' ? name : `${name}{${pairs.join(',')}}`;
}

/** One sample as `name{labels} value`. */
export function formatSample(sample: InstantSample): string {
  return `${formatLabels(sample.labels)} ${formatValue(sample.value)}`;
}
