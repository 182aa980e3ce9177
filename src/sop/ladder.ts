import {
  countSteps,
  diagnosedKey,
  isAutomationOwned,
  type Ticket,
  type Workflow,
} from '../ticket/ticket.js';
import { performStep } from './perform.js';
import {
  Action,
  DEFAULT_BLOCKED_DRAIN,
  DEFAULT_POD_SELECTORS,
  DISRUPTIVE_ACTIONS,
  POWER_CYCLE_EXIT,
  type ApiBridge,
  type NodeView,
  type OutOfBandBridge,
  type PodTarget,
  type Sop,
  type SopId,
  type SopPolicy,
  type SopStatus,
  type Step,
  type Verdict,
} from './sop.js';
import type { ConditionInstance } from '../core/types.js';
import { decideQuarantine, quarantinedDevices, readQuarantine } from './quarantine.js';

/**
 * A remediation ladder as data: record -> diagnose -> cheap remedy -> reboot -> shutdown -> human.
 * Each rung has a budget counted over the whole ticket (folded entries included), so a change of
 * condition never resets it.
 */
export interface LadderSpec extends LadderRungs {
  readonly id: SopId;
  readonly description: string;
  readonly handles?: readonly string[];
  /**
   * Other rungs for some of the conditions or device ids the SOP serves (the first matching
   * entry wins), each with why: e.g. the BMC's power part is neither cordoned nor shut down.
   */
  readonly except?: readonly LadderException[];
}

/** The rungs of a ladder. */
export interface LadderRungs {
  /** Cordon first (default true). */
  readonly cordon?: boolean;
  /** Run a diagnose Job once per condition and ticket. */
  readonly diagnose?: boolean;
  readonly remedy?: { readonly action: string; readonly max: number };
  /** Restart a node agent's pod: a configured target (`sop.podSelectors`) or a fixed selector. */
  readonly restartPod?:
    | { readonly target: PodTarget; readonly max: number }
    | { readonly selector: string; readonly max: number };
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

/** Rungs that differ for one condition and/or device id of a ladder. */
export interface LadderException {
  readonly condition?: string;
  readonly id?: string;
  /** Why these rungs (kept beside the data, like the per-SOP comments). */
  readonly why: string;
  readonly rungs: LadderRungs;
}

/** Steps that need time to show their effect before the next rung. */
const SETTLING: ReadonlySet<string> = new Set([
  Action.Remedy,
  Action.Reboot,
  Action.PowerCycle,
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
    createInstance: (bridge) => {
      const oob = outOfBandOf(bridge);
      const quarantineOn = ('quarantine' in bridge ? bridge.quarantine : undefined) !== undefined;
      return {
        evaluate: (node, status) =>
          evaluateLadder(spec, node, status, powerCycleView(oob, node), quarantineOn),
        execute: (node, _status, step, signal) =>
          performStep(bridge, node, { ...step, seq: step.seq ?? 0 }, signal),
      };
    },
  };
}

/** The rungs in force for one condition instance (its `except` entry applied). */
export function rungsFor(spec: LadderSpec, cond: ConditionInstance): LadderSpec {
  const ex = spec.except?.find(
    (e) =>
      (e.condition === undefined || e.condition === cond.condition) &&
      (e.id === undefined || e.id === cond.id),
  );
  return ex === undefined ? spec : { ...spec, ...ex.rungs };
}

/** The selector a RestartPod rung uses under this policy. */
export function podSelector(
  rung: NonNullable<LadderRungs['restartPod']>,
  policy: SopPolicy,
): string {
  if ('selector' in rung) return rung.selector;
  return policy.podSelectors?.[rung.target] ?? DEFAULT_POD_SELECTORS[rung.target];
}

/**
 * Guards every SOP shares: a human owns the ticket, a step left Running by a crash (resume it),
 * a settle period after the last remedy. Returns a verdict when one applies.
 *
 * The settle period holds the ladder of the condition the settling step served, and of any
 * ladder that would apply the same fix (`spec`); a reboot holds every ladder of the node. A
 * remedy for one condition never holds another condition's ladder (a GPFS repair does not delay
 * an Xid 48 reboot). Without `status` (the recovery loop) every settling step holds.
 */
export function commonGuards(
  node: NodeView,
  status?: SopStatus,
  spec?: LadderRungs,
): Verdict | undefined {
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
  const cond = status?.condition.condition;
  const remedy = t?.workflows.findLast(
    (w) => w.status === 'Succeeded' && holdsLadder(w, cond, spec, node.policy),
  );
  if (remedy !== undefined) {
    const endMs = Date.parse(remedy.end ?? remedy.time ?? '');
    if (node.nowMs - endMs < node.policy.settleMs) {
      return { kind: 'skip', reason: `settling after ${remedy.action}` };
    }
    const seen = status?.condition.lastSeenMs;
    if (seen !== undefined && seen <= endMs) {
      return {
        kind: 'skip',
        reason: `${cond ?? ''} not seen since ${remedy.action}; waiting for it to clear`,
      };
    }
  }
  return undefined;
}

/** True when a settling step `w` holds the ladder of `cond` (see commonGuards). */
function holdsLadder(
  w: Workflow,
  cond: string | undefined,
  spec: LadderRungs | undefined,
  policy: SopPolicy,
): boolean {
  if (!SETTLING.has(w.action)) return false;
  if (cond === undefined || w.action === Action.Reboot || w.action === Action.PowerCycle)
    return true;
  if (w.condition === undefined || w.condition === cond) return true;
  if (spec === undefined) return false;
  switch (w.action) {
    case Action.Repair:
      return spec.repair !== undefined;
    case Action.Remedy:
      return spec.remedy !== undefined && spec.remedy.action === w.params?.['action'];
    case Action.RestartPod:
      return (
        spec.restartPod !== undefined &&
        podSelector(spec.restartPod, policy) === w.params?.['selector']
      );
    default:
      return false;
  }
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

/**
 * The gate in front of every disruptive step (reboot, shutdown) whose drain was blocked before
 * in this ticket: a PodDisruptionBudget refusing evictions does not go away by retrying every
 * cycle. Each cancelled attempt counts (folded entries too); after `maxAttempts` of them, or
 * `maxMs` after the first, the ladder hands off saying why; between attempts it waits `retryMs`.
 * Undefined when the disruptive step may go ahead.
 */
export function blockedDrain(node: NodeView): Verdict | undefined {
  const t = node.ticket;
  if (t === null) return undefined;
  const p = { ...DEFAULT_BLOCKED_DRAIN, ...node.policy.blockedDrain };
  let attempts = 0;
  for (const a of DISRUPTIVE_ACTIONS) attempts += countSteps(t, a, 'Canceled');
  if (attempts === 0) return undefined;
  const cancelled = t.workflows.filter(
    (w) => DISRUPTIVE_ACTIONS.has(w.action as Action) && w.status === 'Canceled',
  );
  const first = cancelled[0];
  const last = cancelled.at(-1);
  // Folded attempts began before the oldest one kept (at the latest when the ticket opened).
  const firstMs =
    first === undefined || attempts > cancelled.length
      ? Date.parse(t.creationTime)
      : Date.parse(first.time ?? t.creationTime);
  const overMs = node.nowMs - firstMs;
  if (attempts >= p.maxAttempts || overMs >= p.maxMs) {
    const why = last?.message ?? `${last?.action ?? 'a disruptive step'} cancelled`;
    return handOff(
      t,
      `${why}, for ${attempts} attempt${attempts === 1 ? '' : 's'} over ${Math.round(overMs / 60_000)} min`,
    );
  }
  const lastEndMs = Date.parse(last?.end ?? last?.time ?? t.creationTime);
  if (node.nowMs - lastEndMs < p.retryMs) {
    return {
      kind: 'skip',
      reason: `drain blocked (${attempts} of ${p.maxAttempts} attempts); next one ${Math.round(p.retryMs / 60_000)} min after the last`,
    };
  }
  return undefined;
}

/** Decides the next rung of a ladder. Pure. `oob`: the node's BMC, when out-of-band power is on. */
export function evaluateLadder(
  ladder: LadderSpec,
  node: NodeView,
  status: SopStatus,
  oob?: PowerCycleView,
  quarantineOn = false,
): Verdict {
  const cond = status.condition;
  const spec = rungsFor(ladder, cond);
  const guard = commonGuards(node, status, spec);
  if (guard !== undefined) return guard;
  const t = node.ticket;
  const count = (a: Step['action'], s?: 'Succeeded' | 'Failed'): number =>
    t === null ? 0 : countSteps(t, a, s);
  const act = (step: Step): Verdict => ({ kind: 'act', step });
  const disrupt = (step: Step): Verdict => blockedDrain(node) ?? act(step);

  const window = spec.explainedByRemediationWithinMs;
  if (
    window !== undefined &&
    t !== null &&
    t.remediations.some((r) => node.nowMs - Date.parse(r) < window)
  ) {
    return { kind: 'skip', reason: `${cond.condition} is explained by a recent remediation` };
  }
  const gpu = quarantineRung(node, status, spec, quarantineOn);
  if (gpu !== undefined) return gpu;
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
    const selector = podSelector(spec.restartPod, node.policy);
    return act({ action: Action.RestartPod, reason: `restart ${selector}`, params: { selector } });
  }
  if (spec.repair !== undefined && count(Action.Repair) < spec.repair.max) {
    return act({ action: Action.Repair, reason: 'repair' });
  }
  const aggressive = node.policy.level >= 1;
  const lastReboot = t?.workflows.findLast(
    (w) => w.action === Action.Reboot && w.status !== 'Canceled' && w.status !== 'Held',
  );
  if (aggressive && spec.reboot !== undefined && lastReboot?.status === 'Failed') {
    // The reboot Job did not reboot the node (it hung on the way down, or the Job failed): the
    // BMC can, where the node has one.
    const rung = powerCycleRung(
      node,
      oob,
      `${cond.condition} persists; the reboot Job did not complete (${lastReboot.message ?? 'failed'})`,
    );
    if (rung !== undefined) return rung.kind === 'act' ? disrupt(rung.step) : rung;
  }
  if (
    aggressive &&
    spec.reboot !== undefined &&
    count(Action.Reboot, 'Succeeded') < spec.reboot.max &&
    count(Action.Reboot, 'Failed') < MAX_FAILURES
  ) {
    return disrupt({ action: Action.Reboot, reason: `${cond.condition} persists` });
  }
  if (aggressive && spec.shutdown === true && !isCritical(node) && count(Action.Shutdown) === 0) {
    return disrupt({ action: Action.Shutdown, reason: `${cond.condition}: power off for repair` });
  }
  if (spec.humanAfterMs !== undefined && t !== null) {
    const ageMs = node.nowMs - Date.parse(t.creationTime);
    if (ageMs < spec.humanAfterMs) return { kind: 'skip', reason: 'watching before hand-off' };
  }
  return handOff(t, `${cond.condition}: automated steps exhausted`);
}

/**
 * GPU-level quarantine in place of the node-wide rungs (docs/remediation.md): a fault of one GPU
 * on a node still schedulable takes that GPU out of scheduling (Quarantine, naming the device),
 * diagnoses once where the ladder does, then hands the node to a human to reset or replace the
 * GPU at the next maintenance, leaving its other GPUs in service. Undefined when the fault is
 * node-wide (decideQuarantine) or quarantine is off: the ladder's own rungs follow. Pure.
 */
function quarantineRung(
  node: NodeView,
  status: SopStatus,
  spec: LadderRungs,
  quarantineOn: boolean,
): Verdict | undefined {
  const policy = node.policy.quarantine;
  if (!quarantineOn || policy === undefined || node.info.unschedulable) return undefined;
  const cond = status.condition;
  const done = quarantinedDevices(node.info);
  const d = decideQuarantine(cond, status.node, done, policy);
  if (d.kind === 'node') return undefined;
  if (!done.includes(d.device)) {
    return {
      kind: 'act',
      step: {
        action: Action.Quarantine,
        reason: `${cond.condition}: GPU ${d.device} out of scheduling, node stays schedulable`,
        params: { device: d.device, condition: cond.condition },
      },
    };
  }
  const t = node.ticket;
  if (spec.diagnose === true && !diagnosed(t, cond.condition)) {
    return {
      kind: 'act',
      step: {
        action: Action.Diagnose,
        reason: `diagnose ${cond.condition}`,
        params: { type: cond.condition, id: cond.id },
      },
    };
  }
  if (policy.repairAfterMs !== undefined) {
    // The node-wide repair (the ladder's own rungs: cordon, drain, reboot...) waits this long,
    // so the jobs on the other GPUs can finish or checkpoint first.
    const since = readQuarantine(node.info).devices.find((x) => x.device === d.device)?.since;
    const dueMs = Date.parse(since ?? '') + policy.repairAfterMs;
    if (Number.isNaN(dueMs) || node.nowMs >= dueMs) return undefined;
    return {
      kind: 'skip',
      reason: `GPU ${d.device} quarantined; node-wide repair from ${new Date(dueMs).toISOString()}`,
    };
  }
  return handOff(
    t,
    `GPU ${d.device} quarantined (${cond.condition}); the node stays in service: reset or replace the GPU at the next maintenance`,
  );
}

/**
 * True when this ticket already diagnosed the condition: a Diagnose entry that ran (held or
 * cancelled ones did not), or one folded away (its marker counter). The diagnosis is in the
 * ticket; a second Job would only repeat it.
 */
function diagnosed(t: Ticket | null, condition: string): boolean {
  if (t === null) return false;
  if ((t.counters[diagnosedKey(condition)] ?? 0) > 0) return true;
  return t.workflows.some(
    (w) =>
      w.action === Action.Diagnose &&
      w.condition === condition &&
      w.status !== 'Held' &&
      w.status !== 'Canceled',
  );
}

/** What a ladder knows of the node's BMC: whether it has one (pure, from the bridge), the threshold. */
export interface PowerCycleView {
  /** The BMC (`ipmi://…`), or undefined with `why` when the node has none. */
  readonly bmc?: string;
  readonly why?: string;
  /** A node NotReady this long is power-cycled. */
  readonly notReadyAfterMs: number;
}

/**
 * The bridge's out-of-band side, read once when an SOP instance is created (so `evaluate` never
 * touches the bridge); undefined when out-of-band power is off.
 */
export function outOfBandOf(bridge: ApiBridge): OutOfBandBridge | undefined {
  return 'outOfBand' in bridge ? bridge.outOfBand : undefined;
}

/** The node's BMC as the bridge's out-of-band side sees it; undefined when off. Pure. */
export function powerCycleView(
  oob: OutOfBandBridge | undefined,
  node: NodeView,
): PowerCycleView | undefined {
  if (oob === undefined) return undefined;
  const b = oob.bmcOf(node.info);
  return 'reason' in b
    ? { why: b.reason, notReadyAfterMs: oob.notReadyAfterMs }
    : { bmc: b.describe, notReadyAfterMs: oob.notReadyAfterMs };
}

/** A failed PowerCycle whose BMC may answer later and that sent nothing is tried again after this. */
export const POWER_CYCLE_RETRY_MS = 5 * 60_000;
/** PowerCycle attempts per ticket (successful: one; failed before any power command: two). */
const MAX_POWER_CYCLE_FAILURES = 2;
const RETRYABLE_POWER_CYCLE: ReadonlySet<number> = new Set([
  POWER_CYCLE_EXIT.Unreachable,
  POWER_CYCLE_EXIT.Timeout,
  POWER_CYCLE_EXIT.BmcError,
]);

/**
 * The PowerCycle rung once its trigger holds (NotReady past the threshold, a reboot Job that did
 * not complete): power-cycle once per ticket through the node's BMC. A failed one is tried again,
 * once, after POWER_CYCLE_RETRY_MS, only when no power command was sent and the BMC may answer
 * later (unreachable, timeout, refused); otherwise — wrong credentials, no BMC, a node found
 * powered off, anything after a power command — the ticket goes to a human, naming the BMC's error.
 * Undefined when the rung does not apply (no BMC, level 0, one already succeeded, the node was
 * shut down by a ladder): the ladder goes on without it. Pure.
 */
export function powerCycleRung(
  node: NodeView,
  oob: PowerCycleView | undefined,
  why: string,
): Verdict | undefined {
  if (oob?.bmc === undefined || node.policy.level < 1) return undefined;
  const t = node.ticket;
  if (t !== null) {
    if (countSteps(t, Action.Shutdown, 'Succeeded') > 0) return undefined;
    if (countSteps(t, Action.PowerCycle, 'Succeeded') > 0) return undefined;
  }
  const last = t?.workflows.findLast(
    (w) => w.action === Action.PowerCycle && w.status !== 'Canceled' && w.status !== 'Held',
  );
  if (t !== null && last?.status === 'Failed') {
    const code = last.exitCode ?? 0;
    const failures = countSteps(t, Action.PowerCycle, 'Failed');
    const said = last.message ?? `exit ${code}`;
    if (!RETRYABLE_POWER_CYCLE.has(code) || failures >= MAX_POWER_CYCLE_FAILURES)
      return handOff(t, `power cycle through ${oob.bmc} failed: ${said}`.slice(0, 200));
    const nextMs = Date.parse(last.end ?? last.time ?? '') + POWER_CYCLE_RETRY_MS;
    if (node.nowMs < nextMs)
      return {
        kind: 'skip',
        reason: `holding: ${said}; trying the BMC again at ${new Date(nextMs).toISOString()}`,
      };
    return {
      kind: 'act',
      step: {
        action: Action.PowerCycle,
        reason: `${why}; power cycle again after: ${said}`.slice(0, 200),
      },
    };
  }
  return {
    kind: 'act',
    step: { action: Action.PowerCycle, reason: `${why}: power cycle through ${oob.bmc}` },
  };
}
