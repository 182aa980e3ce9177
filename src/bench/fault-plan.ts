/**
 * The faults a benchmark injects: 1 % of the nodes, each on its own node, spread over the fleet
 * (so over racks and leaf switches) and over time, cycling through varied catalogue conditions.
 */
import type { CatalogueEntry } from '../catalogue/types.js';
import { LONG_WINDOW_MS, longestRangeMs } from '../engine/inspector.js';

/** One planned fault. */
export interface PlannedFault {
  readonly node: string;
  readonly condition: string;
  /** The rule's PromQL: the fault is visible in the first cycle whose answer names its node. */
  readonly expr: string;
  readonly atMs: number;
}

/**
 * Conditions a latency benchmark can use: a PromQL rule with no `for:` hold (so visible to
 * first action is the engine's latency, not a configured wait), an SOP, an actionable priority
 * (<= 99), no history older than the run (`offset`, `changes()` over hours), and no range of ten
 * minutes or more (those rules are asked every 5–30 s by design).
 */
export function benchConditions(
  catalogue: readonly CatalogueEntry[],
  priorityOf: (condition: string) => number,
): CatalogueEntry[] {
  return catalogue.filter(
    (e) =>
      e.expr !== '' &&
      e.forMs === 0 &&
      e.sop !== null &&
      priorityOf(e.name) <= 99 &&
      !/\boffset\b|\bchanges\(/.test(e.expr) &&
      // Rules over ten minutes to a day of data are asked every 5–30 s by design (their
      // detection waits up to that period; docs/prometheus.md): they would measure the period,
      // not the engine.
      longestRangeMs(e.expr) < LONG_WINDOW_MS,
  );
}

/** Options of `planFaults`. */
export interface FaultPlanOptions {
  /** Node names of the fleet, in fleet order. */
  readonly nodes: readonly string[];
  readonly conditions: readonly CatalogueEntry[];
  readonly count: number;
  /** Faults start at `startMs` and are spread evenly over `spanMs`. */
  readonly startMs: number;
  readonly spanMs: number;
}

/**
 * Deterministic plan: fault i hits node ⌊(i + ½)·N / count⌋ at an instant that is not aligned
 * on the inspection interval (so the wait for the next cycle varies from 0 to one interval).
 */
export function planFaults(options: FaultPlanOptions): PlannedFault[] {
  const { nodes, conditions, count, startMs, spanMs } = options;
  if (conditions.length === 0 || nodes.length === 0) return [];
  const n = Math.min(count, nodes.length);
  const out: PlannedFault[] = [];
  for (let i = 0; i < n; i++) {
    const entry = conditions[i % conditions.length] as CatalogueEntry;
    out.push({
      node: nodes[Math.floor(((i + 0.5) * nodes.length) / n)] as string,
      condition: entry.name,
      expr: entry.expr,
      atMs: startMs + Math.floor(((i + 0.37) * spanMs) / n),
    });
  }
  return out;
}
