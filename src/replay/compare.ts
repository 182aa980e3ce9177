/**
 * What-if: the differences between two replays of the same window under two policies — totals
 * that differ, steps one policy takes and the other does not (matched by node, action, status
 * and condition, in order), and incidents that end differently.
 */
import type { ReplayReport, ReplayTotals } from './replay.js';

/** One step present in one replay and not the other. */
export interface StepDifference {
  readonly only: 'a' | 'b';
  readonly time: string;
  readonly node: string;
  readonly action: string;
  readonly status: string;
  readonly condition: string;
  readonly message?: string;
}

/** An incident both replays have (same node and start) that ended differently. */
export interface OutcomeDifference {
  readonly node: string;
  readonly what: string;
  readonly time: string;
  readonly a: string;
  readonly b: string;
}

/** The differences of two replays (`aegis replay --compare --json` prints it with both). */
export interface ReplayComparison {
  readonly a: string;
  readonly b: string;
  readonly totals: readonly {
    readonly total: keyof ReplayTotals;
    readonly a: number | null;
    readonly b: number | null;
  }[];
  readonly steps: readonly StepDifference[];
  readonly outcomes: readonly OutcomeDifference[];
  /** True when the two policies did exactly the same. */
  readonly same: boolean;
}

const COMPARED: readonly (keyof ReplayTotals)[] = [
  'incidents',
  'steps',
  'holds',
  'nodesCordoned',
  'reboots',
  'handOffs',
  'peakCordoned',
  'breakerTrips',
  'jobs',
  'evictions',
  'medianFirstActionMs',
  'medianHealMs',
];

/** Compares two replays of the same window. */
export function compareReplays(a: ReplayReport, b: ReplayReport): ReplayComparison {
  const totals = COMPARED.flatMap((total) => {
    const x = numberOrNull(a.totals[total]);
    const y = numberOrNull(b.totals[total]);
    return x === y ? [] : [{ total, a: x, b: y }];
  });
  const key = (s: { node: string; action: string; status: string; condition: string }): string =>
    `${s.node}\0${s.action}\0${s.status}\0${s.condition}`;
  const unmatched = (
    mine: ReplayReport['actions'],
    theirs: ReplayReport['actions'],
    only: 'a' | 'b',
  ): StepDifference[] => {
    const left = new Map<string, number>();
    for (const s of theirs) left.set(key(s), (left.get(key(s)) ?? 0) + 1);
    const out: StepDifference[] = [];
    for (const s of mine) {
      const n = left.get(key(s)) ?? 0;
      if (n > 0) {
        left.set(key(s), n - 1);
        continue;
      }
      out.push({
        only,
        time: s.time,
        node: s.node,
        action: s.action,
        status: s.status,
        condition: s.condition,
        ...(s.message === undefined ? {} : { message: s.message }),
      });
    }
    return out;
  };
  const steps = [...unmatched(a.actions, b.actions, 'a'), ...unmatched(b.actions, a.actions, 'b')];
  steps.sort((x, y) => x.time.localeCompare(y.time) || x.only.localeCompare(y.only));
  const outcomes: OutcomeDifference[] = [];
  const inB = new Map(b.incidents.map((i) => [`${i.node}\0${i.time}`, i]));
  for (const i of a.incidents) {
    const j = inB.get(`${i.node}\0${i.time}`);
    if (j === undefined) continue;
    const oa = outcomeText(i.outcome, i.detail);
    const ob = outcomeText(j.outcome, j.detail);
    if (oa !== ob) outcomes.push({ node: i.node, what: i.what, time: i.time, a: oa, b: ob });
  }
  return {
    a: a.config,
    b: b.config,
    totals,
    steps,
    outcomes,
    same: totals.length === 0 && steps.length === 0 && outcomes.length === 0,
  };
}

function numberOrNull(v: unknown): number | null {
  return typeof v === 'number' ? v : null;
}

function outcomeText(outcome: string, detail: string): string {
  return detail === '' ? outcome : `${outcome} (${detail})`;
}
