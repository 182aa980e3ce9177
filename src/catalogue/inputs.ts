/**
 * What a rule reads, derived from its PromQL: the exporters (signals) and collectors whose data it
 * needs. A rule is stale on a node when any of them is not reporting for that node, so a rule that
 * joins two exporters (GpuDown: kube-state-metrics' GPU count against dcgm-exporter's GPUs) never
 * reads an outage of either as "healthy".
 */
import { parsePromQL, type Expr } from '../promql/index.js';
import { COLLECTOR_HEALTH, collectorKey, METRICS, metricNamesOf, SIGNALS } from './signals.js';
import type { Signal } from './types.js';

/** The inputs of one rule. */
export interface RuleInputs {
  /** Exporters whose presence the rule needs, in SIGNALS order. */
  readonly signals: readonly Signal[];
  /** Collectors whose failure makes the rule stale (`node-exporter/filesystem`), sorted. */
  readonly collectors: readonly string[];
  /**
   * Exporters the rule reads only in the right operand of `unless` (to see them absent, as
   * GpuMetricsHang and NodeExporterDown do, or as a filter, as CPUPressure's busy GPUs), possibly
   * beside their own history (`max_over_time(x[1d]) unless on(node) x`): their silence can only make
   * the rule return more, never clear it, so it does not make the rule stale.
   */
  readonly exempt: readonly Signal[];
}

const SPEC_BY_NAME = new Map(METRICS.map((m) => [m.name, m]));

/** One metric selection and where in the expression it sits. */
interface Read {
  readonly metric: string;
  /** Inside a range selector (`x[1d]`): history, not the current value. */
  readonly range: boolean;
  /**
   * Inside the right operand of an `unless`: what it selects only removes series from the
   * result, so its absence can only make the rule return more.
   */
  readonly unless: boolean;
}

function walk(e: Expr, unless: boolean, out: Read[]): void {
  switch (e.kind) {
    case 'vectorSelector':
      out.push({ metric: e.metric, range: false, unless });
      return;
    case 'matrixSelector':
      out.push({ metric: e.selector.metric, range: true, unless });
      return;
    case 'aggregate':
      walk(e.expr, unless, out);
      if (e.param !== undefined) walk(e.param, unless, out);
      return;
    case 'call':
      for (const a of e.args) walk(a, unless, out);
      return;
    case 'paren':
    case 'unary':
      walk(e.expr, unless, out);
      return;
    case 'binary':
      // Everything else (arithmetic, comparisons, `and`, `or`) needs both sides' data: a missing
      // operand removes series from the result, which would read as a fault cleared.
      walk(e.lhs, unless, out);
      walk(e.rhs, unless || e.op === 'unless', out);
      return;
    case 'number':
    case 'string':
      return;
  }
}

/**
 * Derives a rule's inputs from its PromQL (the subset in src/promql). Every metric a rule reads
 * maps to its exporter (METRICS) and, where the exporter reports collector health, its collector.
 * An exporter is exempt (see RuleInputs.exempt) when every read of it is in the right operand of an
 * `unless`, or it is read there and otherwise only as history over a range. Metrics Prometheus
 * makes itself (`up`) and unknown names have no presence to check.
 */
export function ruleInputs(expr: string): RuleInputs {
  if (expr === '') return { signals: [], collectors: [], exempt: [] };
  let reads: Read[] = [];
  try {
    walk(parsePromQL(expr), false, reads);
  } catch {
    // Outside the evaluator's subset: every metric read counts as an input (the safe side).
    reads = metricNamesOf(expr).map((metric) => ({ metric, range: false, unless: false }));
  }
  const bySignal = new Map<Signal, Read[]>();
  for (const r of reads) {
    const spec = SPEC_BY_NAME.get(r.metric);
    if (spec === undefined) continue;
    let list = bySignal.get(spec.signal);
    if (list === undefined) bySignal.set(spec.signal, (list = []));
    list.push(r);
  }
  const signals: Signal[] = [];
  const exempt: Signal[] = [];
  const collectors = new Set<string>();
  for (const signal of SIGNALS) {
    const list = bySignal.get(signal);
    if (list === undefined) continue;
    if (list.some((r) => r.unless) && list.every((r) => r.unless || r.range)) {
      exempt.push(signal);
      continue;
    }
    signals.push(signal);
    if (COLLECTOR_HEALTH[signal] === undefined) continue;
    for (const r of list) {
      const c = SPEC_BY_NAME.get(r.metric)?.collector;
      if (c !== undefined) collectors.add(collectorKey(signal, c));
    }
  }
  return { signals, collectors: [...collectors].sort(), exempt };
}
