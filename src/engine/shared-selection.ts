/**
 * Shared selections. The eleven XID rules each read DCGM_FI_DEV_XID_ERRORS alone (`== 79`,
 * `== 13 or == 31 …`, `!= 0 != 13 …`): asked one by one, Prometheus walks every GPU's series
 * eleven times a cycle (88,000 series at 1,000 nodes). Instead one query fetches the series that
 * can matter (`DCGM_FI_DEV_XID_ERRORS != 0`: a handful) and each rule is evaluated here over
 * them, with the same PromQL, by the evaluator that is checked against promtool.
 *
 * That is exact only when the filter cannot change a rule's answer. A rule joins a selection only
 * if it reads nothing but the metric (no range, offset, function or other metric) and gives the
 * same answer over probe vectors with and without the filter; otherwise it keeps its own query.
 */
import type { CatalogueEntry } from '../catalogue/types.js';
import type { InstantSample } from '../prom/metrics-source.js';
import {
  compilePromQL,
  createMemorySeriesSource,
  type CompiledPromQL,
  type Expr,
  type Series,
} from '../promql/index.js';

/** A metric fetched once per cycle through a filter that keeps every series its rules can use. */
export interface SharedSelection {
  readonly metric: string;
  /** A PromQL comparison applied by Prometheus, e.g. `!= 0`. */
  readonly filter: string;
}

/** The selections the daemon shares. */
export const SHARED_SELECTIONS: readonly SharedSelection[] = [
  { metric: 'DCGM_FI_DEV_XID_ERRORS', filter: '!= 0' },
];

/** Probe verdicts by filter and rule text: pure, so computed once per process. */
const SAFE = new Map<string, boolean>();

/** Rules answered from one selection's query. */
export interface SharedGroup {
  /** The query Prometheus answers: `metric filter`. */
  readonly query: string;
  readonly metric: string;
  readonly rules: readonly { readonly entry: CatalogueEntry; readonly rule: CompiledPromQL }[];
}

/**
 * Groups the rules that can share a selection (at least two per group, or there is nothing to
 * gain). Rules that cannot keep their own query.
 */
export function planSharedSelections(
  rules: readonly CatalogueEntry[],
  selections: readonly SharedSelection[] = SHARED_SELECTIONS,
): SharedGroup[] {
  const groups: SharedGroup[] = [];
  for (const sel of selections) {
    const filter = compilePromQL(`${sel.metric} ${sel.filter}`);
    const members: { entry: CatalogueEntry; rule: CompiledPromQL }[] = [];
    for (const entry of rules) {
      let rule: CompiledPromQL;
      try {
        rule = compilePromQL(entry.expr);
      } catch {
        continue;
      }
      if (soleMetric(rule.expr) !== sel.metric) continue;
      const key = `${filter.text}\n${rule.text}`;
      let safe = SAFE.get(key);
      if (safe === undefined) SAFE.set(key, (safe = filterIsSafe(rule, filter, sel.metric)));
      if (safe) members.push({ entry, rule });
    }
    if (members.length >= 2)
      groups.push({ query: filter.text, metric: sel.metric, rules: members });
  }
  return groups;
}

/** Each rule's answer, evaluated over the series the selection's query returned. */
export function answerGroup(
  group: SharedGroup,
  samples: readonly InstantSample[],
  atMs: number,
): Map<string, InstantSample[]> {
  const source = createMemorySeriesSource(
    samples.map((s) => instantSeries(group.metric, s.labels, s.value, atMs)),
  );
  return new Map(group.rules.map((m) => [m.entry.name, m.rule.evaluate(source, atMs)]));
}

/**
 * The one metric an expression reads, when it reads it only as a plain instant selector through
 * comparisons, arithmetic, `and`/`or`/`unless` and aggregations; otherwise undefined.
 */
export function soleMetric(expr: Expr): string | undefined {
  const metrics = new Set<string>();
  const walk = (e: Expr): boolean => {
    switch (e.kind) {
      case 'number':
        return true;
      case 'vectorSelector':
        metrics.add(e.metric);
        return e.offsetMs === 0;
      case 'binary':
        return walk(e.lhs) && walk(e.rhs);
      case 'aggregate':
        return e.param === undefined && walk(e.expr);
      case 'paren':
      case 'unary':
        return walk(e.expr);
      case 'call':
      case 'matrixSelector':
      case 'string':
        return false;
    }
  };
  if (!walk(expr) || metrics.size !== 1) return undefined;
  return [...metrics][0];
}

function instantSeries(
  metric: string,
  labels: Readonly<Record<string, string>>,
  value: number,
  atMs: number,
): Series {
  return { labels: { ...labels, __name__: metric }, samples: [{ t: atMs, v: value }] };
}

const PROBE_AT_MS = 1_000_000;

/**
 * True when `rule` answers the same over probe vectors with and without `filter`. The probes
 * hold every number the rule mentions, its neighbours and a spread of others, alone and in
 * pairs on one GPU (two series differing by instance).
 */
function filterIsSafe(rule: CompiledPromQL, filter: CompiledPromQL, metric: string): boolean {
  const mentioned = [...rule.text.matchAll(/-?\d+(?:\.\d+)?(?:e[+-]?\d+)?/gi)].map((m) =>
    Number(m[0]),
  );
  const values = [
    ...new Set([0, -1, 1, 2, 1e9, Number.NaN, ...mentioned.flatMap((v) => [v - 1, v, v + 1])]),
  ];
  const one = (node: string, gpu: string, instance: string, v: number): Series =>
    instantSeries(
      metric,
      { node, gpu, pci_bus_id: `0000:${gpu}`, instance, Hostname: node },
      v,
      PROBE_AT_MS,
    );
  const probes: Series[][] = [
    values.map((v, i) => one(`n${i % 3}`, String(i), 'a', v)),
    values
      .flatMap((v, i) =>
        values.map((w, j) => [one(`n${i}`, String(j), 'a', v), one(`n${i}`, String(j), 'b', w)]),
      )
      .flat(),
  ];
  const key = (s: readonly InstantSample[]): string =>
    JSON.stringify(
      s
        .map((x) => [
          Object.entries(x.labels).sort(),
          Object.is(x.value, Number.NaN) ? 'NaN' : x.value,
        ])
        .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)),
    );
  for (const series of probes) {
    const full = rule.evaluate(createMemorySeriesSource(series), PROBE_AT_MS);
    const kept = filter
      .evaluate(createMemorySeriesSource(series), PROBE_AT_MS)
      .map((s) => instantSeries(metric, s.labels, s.value, PROBE_AT_MS));
    const shared = rule.evaluate(createMemorySeriesSource(kept), PROBE_AT_MS);
    if (key(full) !== key(shared)) return false;
  }
  return true;
}
