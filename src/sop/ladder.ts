import { countSteps, isAutomationOwned, type Ticket } from '../ticket/ticket.js';
import { performStep } from './perform.js';
import {
  Action,
  type NodeView,
  type Sop,
  type SopId,
  type SopStatus,
  type Step,
  type Verdict,
} from './sop.js';

/**
 * A remediation ladder as data: record -> diagnose -> cheap remedy -> reboot -> shutdown -> human.
 * Each rung has a budget counted over the whole ticket (folded entries included), so a change of
 * condition never resets it.
 */
export interface LadderSpec {
  readonly id: SopId;
  readonly description: string;
  readonly handles?: readonly string[];
  /** Cordon first (default true). */
  readonly cordon?: boolean;
  /** Run a diagnose Job once per condition. */
  readonly diagnose?: boolean;
  readonly remedy?: { readonly action: string; readonly max: number };
  readonly restartPod?: { readonly selector: string; readonly max: number };
  readonly repair?: { readonly max: number };
  /** Successful reboots allowed per ticket (level >= 1 only). */
  readonly reboot?: { readonly max: number };
  /** Power off for replacement once the cheaper rungs are spent (level >= 1, non-critical nodes). */
  readonly shutdown?: boolean;
  /** Hand to a human only once the ticket is this old (watch-and-wait conditions). */
  readonly humanAfterMs?: number;
  /** Force-delete pods stuck terminating once, after cordoning. */
  readonly forceDeletePods?: boolean;
  /**
   * The condition is explained by Aegis's own remediation within this window (a node rebooted by
   * us flaps NotReady): skip instead of acting on it (the original's NodeHasRestarted veto).
   */
  readonly explainedByRemediationWithinMs?: number;
  /** Cordon and nothing else: the condition clears by itself (pressure). */
  readonly cordonOnly?: boolean;
}

/** Steps that need time to show their effect before the next rung. */
const SETTLING: ReadonlySet<string> = new Set([
  Action.Remedy,
  Action.Reboot,
  Action.Repair,
  Action.RestartPod,
]);
/** Failed attempts of one rung after which the ladder moves on. */
const MAX_FAILURES = 2;

/** Builds an SOP from a ladder spec. */
export function defineLadderSop(spec: LadderSpec): Sop {
  return {
    id: spec.id,
    description: spec.description,
    ...(spec.handles === undefined ? {} : { handles: spec.handles }),
    createInstance: (bridge) => ({
      evaluate: (node, status) => evaluateLadder(spec, node, status),
      execute: (node, _status, step, signal) =>
        performStep(bridge, node, { ...step, seq: step.seq ?? 0 }, signal),
    }),
  };
}

/**
 * Guards every SOP shares: a human owns the ticket, a step left Running by a crash (resume it),
 * a settle period after the last remedy. Returns a verdict when one applies.
 */
export function commonGuards(node: NodeView, status?: SopStatus): Verdict | undefined {
  const t = node.ticket;
  if (!isAutomationOwned(t)) {
    return { kind: 'skip', reason: `ticket is owned by ${t?.supervisor ?? '?'}` };
  }
  const last = t?.workflows.at(-1);
  if (last?.status === 'Running') {
    return {
      kind: 'act',
      step: {
        action: last.action as Step['action'],
        reason: 'resume the step in progress before the restart',
        ...(last.seq === undefined ? {} : { seq: last.seq }),
        ...(last.params === undefined ? {} : { params: last.params }),
        ...(last.time === undefined ? {} : { resumeSinceMs: Date.parse(last.time) }),
        ...(last.then === undefined ? {} : { then: last.then }),
        ...(last.bootId === undefined ? {} : { resumeBootId: last.bootId }),
      },
    };
  }
  const remedy = t?.workflows.findLast((w) => SETTLING.has(w.action) && w.status === 'Succeeded');
  if (remedy !== undefined) {
    const endMs = Date.parse(remedy.end ?? remedy.time ?? '');
    if (node.nowMs - endMs < node.policy.settleMs) {
      return { kind: 'skip', reason: `settling after ${remedy.action}` };
    }
    const seen = status?.condition.lastSeenMs;
    if (seen !== undefined && seen <= endMs) {
      return {
        kind: 'skip',
        reason: `${status?.condition.condition ?? ''} not seen since ${remedy.action}; waiting for it to clear`,
      };
    }
  }
  return undefined;
}

/** Hand-off step (once per ticket). */
export function handOff(t: Ticket | null, reason: string): Verdict {
  if (t !== null && countSteps(t, Action.HandToHuman) > 0) {
    return { kind: 'skip', reason: 'waiting for a human' };
  }
  return { kind: 'act', step: { action: Action.HandToHuman, reason, then: 'assign' } };
}

/** True when the node carries a label that forbids automated shutdown. */
export function isCritical(node: NodeView): boolean {
  return node.policy.criticalLabels.some((k) => k in node.info.labels);
}

/** Decides the next rung of a ladder. Pure. */
export function evaluateLadder(spec: LadderSpec, node: NodeView, status: SopStatus): Verdict {
  const guard = commonGuards(node, status);
  if (guard !== undefined) return guard;
  const t = node.ticket;
  const cond = status.condition;
  const count = (a: Step['action'], s?: 'Succeeded' | 'Failed'): number =>
    t === null ? 0 : countSteps(t, a, s);
  const act = (step: Step): Verdict => ({ kind: 'act', step });

  const window = spec.explainedByRemediationWithinMs;
  if (
    window !== undefined &&
    t !== null &&
    t.remediations.some((r) => node.nowMs - Date.parse(r) < window)
  ) {
    return { kind: 'skip', reason: `${cond.condition} is explained by a recent remediation` };
  }
  if ((spec.cordon ?? true) && !node.info.unschedulable) {
    return act({ action: Action.Cordon, reason: `${cond.condition} ${cond.id}`.trim() });
  }
  if (spec.cordonOnly === true)
    return { kind: 'skip', reason: 'cordoned until the pressure clears' };
  if (t !== null && node.nowMs - Date.parse(t.creationTime) > node.policy.maxTicketAgeMs) {
    return handOff(t, 'ticket older than the automation window');
  }
  if (spec.forceDeletePods === true && count(Action.ForceDeletePods) === 0) {
    return act({ action: Action.ForceDeletePods, reason: 'pods stuck terminating' });
  }
  if (spec.diagnose === true && !diagnosed(t, cond.condition)) {
    const params: Record<string, string> = { type: cond.condition };
    if (cond.id !== '') params['id'] = cond.id;
    return act({ action: Action.Diagnose, reason: `diagnose ${cond.condition}`, params });
  }
  if (spec.remedy !== undefined && count(Action.Remedy) < spec.remedy.max) {
    return act({
      action: Action.Remedy,
      reason: spec.remedy.action,
      params: { action: spec.remedy.action },
    });
  }
  if (spec.restartPod !== undefined && count(Action.RestartPod) < spec.restartPod.max) {
    return act({
      action: Action.RestartPod,
      reason: `restart ${spec.restartPod.selector}`,
      params: { selector: spec.restartPod.selector },
    });
  }
  if (spec.repair !== undefined && count(Action.Repair) < spec.repair.max) {
    return act({ action: Action.Repair, reason: 'repair' });
  }
  const aggressive = node.policy.level >= 1;
  if (
    aggressive &&
    spec.reboot !== undefined &&
    count(Action.Reboot, 'Succeeded') < spec.reboot.max &&
    count(Action.Reboot, 'Failed') < MAX_FAILURES
  ) {
    return act({ action: Action.Reboot, reason: `${cond.condition} persists` });
  }
  if (aggressive && spec.shutdown === true && !isCritical(node) && count(Action.Shutdown) === 0) {
    return act({ action: Action.Shutdown, reason: `${cond.condition}: power off for repair` });
  }
  if (spec.humanAfterMs !== undefined && t !== null) {
    const ageMs = node.nowMs - Date.parse(t.creationTime);
    if (ageMs < spec.humanAfterMs) return { kind: 'skip', reason: 'watching before hand-off' };
  }
  return handOff(t, `${cond.condition}: automated steps exhausted`);
}

function diagnosed(t: Ticket | null, condition: string): boolean {
  return (
    t !== null && t.workflows.some((w) => w.action === Action.Diagnose && w.condition === condition)
  );
}
