/**
 * Prometheus text exposition (format 0.0.4) of the simulated fleet, one document per exporter, so a
 * real Prometheus can scrape the simulator (with `honor_labels: true`, since our series carry the
 * `node`, `job` and `instance` labels a Kubernetes scrape config would add). Produced as a stream of
 * chunks: a 10,000-node DCGM document is hundreds of MB and is never held in memory whole.
 */
import type { Exporter } from './family.js';
import type { CurrentSeries, SeriesStore } from './series-store.js';

/** Options of `exposition`. */
export interface ExpositionOptions {
  /** Only this node's series (per-node scrape targets, `?node=`). */
  readonly node?: string;
  /**
   * Only the nodes at fleet positions `index`, `index + of`, … (`?shard=&shards=`): a fleet split
   * over several scrape targets, each scraped at its own offset in the interval as per-node
   * targets are in a real cluster.
   */
  readonly shard?: { readonly index: number; readonly of: number };
  /** Leave out `job` and `instance` (when the scrape config should set them). Default false. */
  readonly withoutTargetLabels?: boolean;
  /** Flush a chunk once it is this long (default 64 KiB). */
  readonly chunkChars?: number;
}

/** The exposition document of `exporter` at `atMs`, as chunks of text. */
export function* exposition(
  store: SeriesStore,
  exporter: Exporter,
  atMs: number,
  options: ExpositionOptions = {},
): Generator<string> {
  const limit = options.chunkChars ?? 65_536;
  let buffer: string[] = [];
  let size = 0;
  let histogram: string | undefined;
  const shard = options.shard;
  const nodes =
    options.node !== undefined
      ? [options.node]
      : store.fleet.nodes
          .filter((_, i) => shard === undefined || i % shard.of === shard.index)
          .map((n) => n.name);
  for (const family of store.families()) {
    if (family.exporter !== exporter) continue;
    if (family.histogram === undefined || family.histogram !== histogram) {
      const name = family.histogram ?? family.name;
      const type = family.histogram === undefined ? family.type : 'histogram';
      buffer.push(`# HELP ${name} ${escapeHelp(family.help)}\n# TYPE ${name} ${type}\n`);
    }
    histogram = family.histogram;
    for (const node of nodes) {
      store.forEachAt(family.name, atMs, node, (s) => {
        const line = formatSample(family.name, s, options.withoutTargetLabels === true);
        buffer.push(line);
        size += line.length;
      });
      if (size >= limit) {
        yield buffer.join('');
        buffer = [];
        size = 0;
      }
    }
  }
  if (buffer.length > 0) yield buffer.join('');
}

/** The whole document as one string (tests, small fleets). */
export function expositionText(
  store: SeriesStore,
  exporter: Exporter,
  atMs: number,
  options: ExpositionOptions = {},
): string {
  return [...exposition(store, exporter, atMs, options)].join('');
}

/** One sample line: `name{a="x",b="y"} value`. */
export function formatSample(
  name: string,
  series: CurrentSeries,
  withoutTargetLabels: boolean,
): string {
  const parts: string[] = [];
  for (const key in series.labels) {
    if (key === '__name__') continue;
    if (withoutTargetLabels && (key === 'job' || key === 'instance')) continue;
    parts.push(`${key}="${escapeLabel(series.labels[key] ?? '')}"`);
  }
  const labels = parts.length === 0 ? '' : `{${parts.join(',')}}`;
  return `${name}${labels} ${formatValue(series.value)}\n`;
}

/** A sample value as Prometheus writes it (`NaN`, `+Inf`, `-Inf`, Go-like floats). */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
