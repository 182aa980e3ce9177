/**
 * node-problem-detector's metrics, as its Prometheus exporter serves them on a healthy node (NPD
 * pkg/problemmetrics): at start every permanent rule sets `problem_gauge{type, reason}` to 0 with
 * the rule's problem reason, and every rule's reason gets `problem_counter{reason}` 0. The series
 * are those of the monitors the default mapping reads (src/catalogue/npd.ts).
 */
import { DEFAULT_NPD_MAPPING, NPD_CONDITIONS } from '../../catalogue/npd.js';
import type { FamilyDef, Variants } from '../family.js';
import { NODE, NODE_ALL, ZERO, counter, gauge } from './helpers.js';

/** (type, reason) of every permanent problem the NPD conditions' recipes raise. */
const GAUGE_VARIANTS: Variants = NPD_CONDITIONS.flatMap((e) =>
  e.fault.series.filter((s) => s.metric === 'problem_gauge').map((s) => s.labels),
);
/** Every rule reason: the permanent problems' and the mapped events'. */
const COUNTER_VARIANTS: Variants = [
  ...new Set([
    ...GAUGE_VARIANTS.map((v) => v['reason'] ?? ''),
    ...DEFAULT_NPD_MAPPING.events.map((e) => e.reason),
  ]),
].map((reason) => ({ reason }));

/** NPD runs as a DaemonSet on every node. */
export const NPD_FAMILIES: readonly FamilyDef[] = [
  gauge(
    'problem_gauge',
    'Whether a specific type of problem is affecting the node or not.',
    NODE,
    ZERO,
    { ...NODE_ALL, variants: () => GAUGE_VARIANTS },
  ),
  counter(
    'problem_counter',
    'Number of times a specific type of problem have occurred.',
    NODE,
    ZERO,
    { ...NODE_ALL, variants: () => COUNTER_VARIANTS },
  ),
];
