/**
 * A sparse SeriesSource over a simulated fleet. Baseline series are generated on demand from the
 * family table (node × device × variant); only series that changed have a Track with change
 * points, and only nodes whose exporters went down have an availability timeline. `select` is
 * O(series of the metric), or O(series of one node) when a `node`/`Hostname` equality matcher is
 * given.
 */
import { ErrorCode, HealError } from '../core/errors.js';
import { DEFAULT_LOOKBACK_MS } from '../promql/index.js';
import type { LabelMatcher, Sample, Series, SeriesSource } from '../promql/series.js';
import {
  IN_BAND_EXPORTERS,
  exporterOf,
  hasFamily,
  jobOf,
  variantsOf,
  type Exporter,
  type Family,
} from './family.js';
import { buildFamilies } from './families.js';
import type { Fleet, FleetNode } from './fleet-spec.js';
import { compileMatchers, nodeNamesOf, type CompiledSelector } from './label-match.js';
import { FamilyWalk } from './family-walk.js';
import { SeriesLabeller, type LabelSet } from './series-labels.js';
import {
  baselineAt,
  isUp,
  newTrack,
  resetCounter,
  valueAt,
  windowSamples,
  type AvailPoint,
  type Track,
} from './track.js';

/** A series the simulator serves right now, for the exposition. */
export interface CurrentSeries {
  readonly labels: LabelSet;
  readonly value: number;
}

/** Name, type and help of a metric family, for `# HELP` / `# TYPE` lines. */
export interface FamilyInfo {
  readonly name: string;
  readonly type: 'gauge' | 'counter';
  readonly help: string;
  readonly exporter: Exporter;
  /** Set on the `_bucket`/`_sum`/`_count` series of a histogram: its base name. */
  readonly histogram?: string;
}

const KEY_NODE = 1 << 17;
const KEY_DEV = 1 << 10;
const KEY_VAR = 1 << 10;

/** The simulator's time-series database. */
export class SeriesStore implements SeriesSource {
  readonly fleet: Fleet;
  readonly #families: readonly Family[];
  readonly #byName: ReadonlyMap<string, Family>;
  readonly #labeller: SeriesLabeller;
  readonly #tracks = new Map<number, Track>();
  /** Nodes with at least one track, per family index: untouched nodes skip the track lookup. */
  readonly #touched = new Map<number, Set<number>>();
  readonly #extras = new Map<string, Track>();
  readonly #extrasByMetric = new Map<string, Set<Track>>();
  readonly #extrasByNode = new Map<number, Set<Track>>();
  readonly #avail = new Map<number, Map<Exporter, AvailPoint[]>>();
  readonly #lookbackMs: number;

  /**
   * `lookbackMs` must equal the evaluator's instant lookback: a select over exactly that window is an
   * instant selector, and a series absent at its end is stale (no samples), as after a staleness
   * marker; any other window is a range selector and sees the samples before the series vanished.
   */
  constructor(fleet: Fleet, options: { readonly lookbackMs?: number } = {}) {
    this.#lookbackMs = options.lookbackMs ?? DEFAULT_LOOKBACK_MS;
    if (fleet.nodes.length >= KEY_NODE) {
      throw new HealError(
        ErrorCode.InvalidInput,
        `fleet of ${fleet.nodes.length} nodes is too large`,
      );
    }
    this.fleet = fleet;
    this.#families = buildFamilies();
    this.#byName = new Map(this.#families.map((f) => [f.name, f]));
    this.#labeller = new SeriesLabeller(fleet);
  }

  /** Every metric family the store serves (baseline families, then fault-created metrics). */
  families(): readonly FamilyInfo[] {
    const out: FamilyInfo[] = this.#families.map((f) => ({
      name: f.name,
      type: f.type,
      help: f.help,
      exporter: f.exporter,
      ...(f.histogram === undefined ? {} : { histogram: f.histogram }),
    }));
    for (const [metric, tracks] of this.#extrasByMetric) {
      if (this.#byName.has(metric)) continue;
      const counter = [...tracks].some((t) => t.counter);
      out.push({
        name: metric,
        type: counter ? 'counter' : 'gauge',
        help: `${metric} (simulated).`,
        exporter: exporterOf(metric),
      });
    }
    return out;
  }

  /** True when the store has a baseline family of that name. */
  hasBaseline(metric: string): boolean {
    return this.#byName.has(metric);
  }

  select(
    metric: string,
    matchers: readonly LabelMatcher[],
    startMs: number,
    endMs: number,
  ): readonly Series[] {
    const selector = compileMatchers(matchers);
    const names = nodeNamesOf(matchers);
    const nodes = names === undefined ? this.fleet.nodes : this.#nodesNamed(names);
    const out: Series[] = [];
    const family = this.#byName.get(metric);
    if (family !== undefined) this.#selectFamily(family, nodes, selector, startMs, endMs, out);
    const extras = this.#extrasByMetric.get(metric);
    if (extras !== undefined) {
      for (const track of extras) {
        if (names !== undefined && !names.has(this.fleet.nodes[track.nodeIndex]?.name ?? ''))
          continue;
        const labels = track.labels ?? {};
        if (!selector.matches(labels)) continue;
        const samples = this.#samples(track, startMs, endMs);
        if (samples !== undefined) out.push({ labels, samples });
      }
    }
    return out;
  }

  #selectFamily(
    family: Family,
    nodes: readonly FleetNode[],
    selector: CompiledSelector,
    start: number,
    end: number,
    out: Series[],
  ): void {
    const walk = new FamilyWalk(family, selector, Math.min(start + 1, end), end);
    const touched = this.#touched.get(family.index);
    const labeller = this.#labeller;
    const seed = this.fleet.seed;
    for (const node of nodes) {
      if (!hasFamily(family, node)) continue;
      const variants = variantsOf(family, node);
      const keep = walk.variantsToVisit(variants);
      if (keep.length === 0) continue;
      const devices = labeller.deviceCount(family.scope, node);
      const byExporter = this.#avail.size === 0 ? undefined : this.#avail.get(node.index);
      const nodeTouched = touched?.has(node.index) === true;
      const upOf = family.upOf;
      const instance = upOf === undefined ? labeller.instance(family.exporter, node) : '';
      for (let d = 0; d < devices; d++) {
        for (const v of keep) {
          const labels =
            upOf === undefined
              ? labeller.build(family, node, d, variants[v], family.job, instance)
              : labeller.labels(family, node, d, v);
          if (!walk.selector.empty && !selector.matches(labels)) continue;
          const track = nodeTouched ? this.#tracks.get(keyOf(family, node, d, v)) : undefined;
          const avail = byExporter?.get(upOf === undefined ? family.exporter : upOf(v));
          if (track === undefined && avail === undefined) {
            const value = family.value(node, d, v, seed);
            const slope = family.slope?.(node, d, v) ?? 0;
            out.push({
              labels,
              samples: slope === 0 ? walk.constant(value) : walk.linear(value, slope),
            });
            continue;
          }
          const base = track?.base ?? family.value(node, d, v, seed);
          const slope = family.slope?.(node, d, v) ?? 0;
          const mode = { upMode: upOf !== undefined, instant: end - start === this.#lookbackMs };
          const samples =
            track === undefined
              ? windowSamples((t) => baselineAt(base, slope, t), [], avail, start, end, mode)
              : windowSamples((t) => valueAt(track, t), track.points, avail, start, end, mode);
          if (samples !== undefined) out.push({ labels, samples });
        }
      }
    }
  }

  #samples(track: Track, start: number, end: number): Sample[] | undefined {
    const avail = this.#avail.get(track.nodeIndex)?.get(track.exporter);
    const mode = { upMode: false, instant: end - start === this.#lookbackMs };
    return windowSamples((t) => valueAt(track, t), track.points, avail, start, end, mode);
  }

  /**
   * Tracks of the node's series named `metric` whose labels include `labels` (baseline series and
   * series created earlier). Creates override tracks on first use; creates no new series.
   */
  match(metric: string, nodeName: string, labels: Readonly<Record<string, string>>): Track[] {
    const node = this.#node(nodeName);
    const out: Track[] = [];
    const family = this.#byName.get(metric);
    if (family !== undefined && hasFamily(family, node)) {
      const devices = this.#labeller.deviceCount(family.scope, node);
      const variants = variantsOf(family, node).length;
      for (let d = 0; d < devices; d++) {
        for (let v = 0; v < variants; v++) {
          if (includes(this.#labeller.labels(family, node, d, v), labels)) {
            out.push(this.#trackOf(family, node, d, v));
          }
        }
      }
    }
    for (const track of this.#extrasByNode.get(node.index) ?? []) {
      if (track.metric === metric && includes(track.labels ?? {}, labels)) out.push(track);
    }
    return out;
  }

  /**
   * A new series of `nodeName` (or the one with exactly these labels): `node`, `job` and
   * `instance` (and `Hostname` for DCGM) are added as the exporter would have them scraped.
   */
  create(
    metric: string,
    nodeName: string,
    labels: Readonly<Record<string, string>>,
    counter: boolean,
  ): Track {
    const node = this.#node(nodeName);
    const exporter = exporterOf(metric);
    const full: LabelSet = { __name__: metric };
    // kube-state-metrics labels pod series by namespace/pod only; everything else carries `node`.
    if (exporter !== 'ksm' || metric.startsWith('kube_node_')) full.node = node.name;
    full.job = jobOf(metric);
    full.instance = this.#labeller.instance(exporter, node);
    if (exporter === 'dcgm') full.Hostname = node.name;
    Object.assign(full, labels);
    const key = extraKey(full);
    const existing = this.#extras.get(key);
    if (existing !== undefined) return existing;
    const track = newTrack({
      metric,
      nodeIndex: node.index,
      exporter,
      counter,
      persistent: false,
      base: null,
      slope: 0,
      labels: full,
    });
    this.#extras.set(key, track);
    addTo(this.#extrasByMetric, metric, track);
    addTo(this.#extrasByNode, node.index, track);
    return track;
  }

  /** Marks `exporter` on the node down (its series vanish, `up` is 0) or back up from `atMs`. */
  setExporterUp(nodeName: string, exporter: Exporter, up: boolean, atMs: number): void {
    const node = this.#node(nodeName);
    let byExporter = this.#avail.get(node.index);
    if (byExporter === undefined) {
      byExporter = new Map();
      this.#avail.set(node.index, byExporter);
    }
    const points = byExporter.get(exporter) ?? [];
    if (isUp(points, atMs) === up) return;
    points.push({ t: atMs, up });
    points.sort((a, b) => a.t - b.t);
    byExporter.set(exporter, points);
  }

  /** A reboot of the node: its volatile counters lose what faults added (exporters restart at 0). */
  resetVolatileCounters(nodeName: string, atMs: number): void {
    const index = this.#node(nodeName).index;
    for (const track of this.#tracks.values()) {
      if (track.nodeIndex === index && !track.persistent) resetCounter(track, atMs);
    }
    for (const track of this.#extrasByNode.get(index) ?? []) resetCounter(track, atMs);
  }

  /** Takes every in-band exporter of the node down or up (power off, reboot, boot). */
  setNodeUp(nodeName: string, up: boolean, atMs: number): void {
    for (const e of IN_BAND_EXPORTERS) this.setExporterUp(nodeName, e, up, atMs);
  }

  /** True when `exporter` of the node answers at `atMs`. */
  isExporterUp(nodeName: string, exporter: Exporter, atMs: number): boolean {
    return isUp(this.#avail.get(this.#node(nodeName).index)?.get(exporter), atMs);
  }

  /** Calls `fn` for every series of `metric` present at `atMs` (optionally of one node only). */
  forEachAt(
    metric: string,
    atMs: number,
    nodeName: string | undefined,
    fn: (s: CurrentSeries) => void,
  ): void {
    const nodes = nodeName === undefined ? this.fleet.nodes : [this.#node(nodeName)];
    const family = this.#byName.get(metric);
    if (family !== undefined) {
      const upMode = family.upOf !== undefined;
      for (const node of nodes) {
        if (!hasFamily(family, node)) continue;
        const byExporter = this.#avail.get(node.index);
        const devices = this.#labeller.deviceCount(family.scope, node);
        const variants = variantsOf(family, node).length;
        for (let d = 0; d < devices; d++) {
          for (let v = 0; v < variants; v++) {
            const up = isUp(byExporter?.get(upMode ? family.upOf(v) : family.exporter), atMs);
            if (!up && !upMode) continue;
            const track = this.#tracks.get(keyOf(family, node, d, v));
            const value = upMode
              ? up
                ? track === undefined
                  ? 1
                  : valueAt(track, atMs)
                : 0
              : track === undefined
                ? baselineAt(
                    family.value(node, d, v, this.fleet.seed),
                    family.slope?.(node, d, v) ?? 0,
                    atMs,
                  )
                : valueAt(track, atMs);
            if (value !== null) fn({ labels: this.#labeller.labels(family, node, d, v), value });
          }
        }
      }
    }
    for (const track of this.#extrasByMetric.get(metric) ?? []) {
      const node = this.fleet.nodes[track.nodeIndex];
      if (node === undefined || (nodeName !== undefined && node.name !== nodeName)) continue;
      if (!isUp(this.#avail.get(track.nodeIndex)?.get(track.exporter), atMs)) continue;
      const value = valueAt(track, atMs);
      if (value !== null) fn({ labels: track.labels ?? {}, value });
    }
  }

  /** Number of override tracks (touched series), for memory checks. */
  get trackCount(): number {
    return this.#tracks.size + this.#extras.size;
  }

  #trackOf(family: Family, node: FleetNode, d: number, v: number): Track {
    const key = keyOf(family, node, d, v);
    let track = this.#tracks.get(key);
    if (track === undefined) {
      track = newTrack({
        metric: family.name,
        nodeIndex: node.index,
        exporter: family.exporter,
        counter: family.type === 'counter',
        persistent: family.persistent === true,
        base: family.value(node, d, v, this.fleet.seed),
        slope: family.slope?.(node, d, v) ?? 0,
        labels: undefined,
      });
      this.#tracks.set(key, track);
      let nodes = this.#touched.get(family.index);
      if (nodes === undefined) {
        nodes = new Set();
        this.#touched.set(family.index, nodes);
      }
      nodes.add(node.index);
    }
    return track;
  }

  #node(name: string): FleetNode {
    const node = this.fleet.node(name);
    if (node === undefined)
      throw new HealError(ErrorCode.InvalidInput, `no simulated node "${name}"`);
    return node;
  }

  #nodesNamed(names: ReadonlySet<string>): FleetNode[] {
    const out: FleetNode[] = [];
    for (const name of names) {
      const node = this.fleet.node(name);
      if (node !== undefined) out.push(node);
    }
    return out;
  }
}

function keyOf(family: Family, node: FleetNode, device: number, variant: number): number {
  return ((family.index * KEY_NODE + node.index) * KEY_DEV + device) * KEY_VAR + variant;
}

function includes(
  labels: Readonly<Record<string, string>>,
  wanted: Readonly<Record<string, string>>,
): boolean {
  for (const key in wanted) if (labels[key] !== wanted[key]) return false;
  return true;
}

function extraKey(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',');
}

function addTo<K>(map: Map<K, Set<Track>>, key: K, track: Track): void {
  let set = map.get(key);
  if (set === undefined) {
    set = new Set();
    map.set(key, set);
  }
  set.add(track);
}
