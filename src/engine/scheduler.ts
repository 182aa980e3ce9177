import { Bucket, bucketOf as bucketOfPriority } from '../priority/priority-table.js';
import type { ConditionInstance } from '../core/types.js';

export { Bucket, bucketOf as bucketOfPriority } from '../priority/priority-table.js';

/** Priority lookup in force (from the priority table). Unknown conditions are CanIgnore (999). */
export type PriorityOf = (condition: string) => number;

const RANK: Readonly<Record<Bucket, number>> = {
  NotReady: 0,
  Emergency: 1,
  Cordon: 2,
  CanIgnore: 3,
  MustIgnore: 4,
};

/**
 * Orders a node's active conditions most urgent first: NotReady, then Emergency by priority,
 * then Cordon (the recovery loop runs only when nothing more urgent is left). Ties break on
 * `since` then name, so the order is deterministic (the original's priority-0 collision let
 * Prometheus series order decide). CanIgnore and MustIgnore are left out: recorded, never acted on.
 */
export function actionableInOrder(
  conditions: readonly ConditionInstance[],
  priorityOf: PriorityOf,
): ConditionInstance[] {
  return conditions
    .map((c) => ({ c, p: priorityOf(c.condition) }))
    .filter((x) => RANK[bucketOfPriority(x.p)] <= RANK.Cordon)
    .sort(
      (a, b) =>
        RANK[bucketOfPriority(a.p)] - RANK[bucketOfPriority(b.p)] ||
        a.p - b.p ||
        a.c.sinceMs - b.c.sinceMs ||
        a.c.condition.localeCompare(b.c.condition) ||
        a.c.id.localeCompare(b.c.id),
    )
    .map((x) => x.c);
}

/** Sort key of a node's most urgent condition, for ordering nodes across the fleet. */
export function urgency(c: ConditionInstance, priorityOf: PriorityOf): [number, number, number] {
  const p = priorityOf(c.condition);
  return [RANK[bucketOfPriority(p)], p, c.sinceMs];
}
