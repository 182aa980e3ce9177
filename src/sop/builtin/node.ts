import { countSteps, isOpen, type Ticket, type Workflow } from '../../ticket/ticket.js';
import { VALIDATION_EXIT, validationParams } from '../../jobs/validation.js';
import {
  blockedDrain,
  commonGuards,
  defineLadderSop,
  handOff,
  isCritical,
  outOfBandOf,
  powerCycleRung,
  powerCycleView,
  type LadderSpec,
} from '../ladder.js';
import { performStep } from '../perform.js';
import { Action, type NodeView, type Sop, type Verdict } from '../sop.js';

const HOUR_MS = 3_600_000;
const MAX_HEALTHCHECK_FAILURES = 3;
const MAX_RECOVERY_REBOOTS = 2;

/**
 * NodeNotReady: cordon and ticket; with out-of-band power (`bmc`), NotReady past
 * `bmc.notReadyAfterMs`: power-cycle through the node's BMC, once (a hung kernel, a GPU wedging
 * the PCIe bus, a dead kubelet — a node that cannot run a reboot Job); still NotReady after an
 * hour: free stuck pods, hand off. Last rung: a human, as in the original. A node that does not
 * come back cannot run a reboot Job, and powering it off for good would only hide why it went away.
 */
export const nodeNotReady: Sop = {
  id: 'node.notready',
  description:
    'cordon, ticket; NotReady past bmc.notReadyAfterMs: power-cycle through the BMC (once); still NotReady after 1h: force-delete stuck pods, hand to a human',
  createInstance: (bridge) => {
    const outOfBand = outOfBandOf(bridge);
    return {
      evaluate(node, status): Verdict {
        const guard = commonGuards(node, status);
        if (guard !== undefined) return guard;
        if (!node.info.unschedulable) {
          return { kind: 'act', step: { action: Action.Cordon, reason: 'node not ready' } };
        }
        const oob = powerCycleView(outOfBand, node);
        const downMs = node.nowMs - status.condition.sinceMs;
        if (oob !== undefined && downMs >= oob.notReadyAfterMs) {
          const rung = powerCycleRung(
            node,
            oob,
            `node not ready for ${Math.round(downMs / 60_000)} min`,
          );
          if (rung !== undefined) return rung.kind === 'act' ? (blockedDrain(node) ?? rung) : rung;
        }
        if (downMs < HOUR_MS) {
          return { kind: 'skip', reason: 'waiting for the node to come back' };
        }
        if (node.ticket === null || countSteps(node.ticket, Action.ForceDeletePods) === 0) {
          return {
            kind: 'act',
            step: { action: Action.ForceDeletePods, reason: 'node not ready over 1h' },
          };
        }
        return handOff(node.ticket, 'node not ready over 1h');
      },
      execute: (node, _status, step, signal) =>
        performStep(bridge, node, { ...step, seq: step.seq ?? 0 }, signal),
    };
  },
};

/**
 * The recovery loop: NodeCordon is the only condition left. Healthcheck, then uncordon and
 * resolve (or close, when nothing but checks happened). A node a human cordoned is left alone
 * unless the site allows otherwise. Last rungs follow the original's health-check exit codes:
 * 21/22 (row-remap failure, aggregate SRAM) are a GPU to replace — power off (non-critical
 * nodes); 23/24 (GPU check, NVLink) — reboot (<= 2), then a human; 25 (cannot check: no driver
 * found, a tool missing) — ask again every 5 minutes, then a human, never a reboot; anything
 * else — a human.
 */
export const nodeRecover: Sop = {
  id: 'node.recover',
  description:
    'recovery loop: only NodeCordon left -> healthcheck -> uncordon -> resolve/close ticket',
  createInstance: (bridge) => ({
    evaluate: (node) => evaluateRecovery(node, { requireAegisCordon: true }),
    execute: (node, _status, step, signal) =>
      performStep(bridge, node, { ...step, seq: step.seq ?? 0 }, signal),
  }),
};

/** NodeInhibitAll: the opt-out label was just removed; healthcheck before handing the node back. */
export const nodeInhibit: Sop = {
  id: 'node.inhibit',
  description: 'aegis.io/disable just removed: healthcheck -> uncordon',
  createInstance: (bridge) => ({
    evaluate: (node) => evaluateRecovery(node, { requireAegisCordon: false }),
    execute: (node, _status, step, signal) =>
      performStep(bridge, node, { ...step, seq: step.seq ?? 0 }, signal),
  }),
};

/** Decides the next recovery step from the ticket's history. Pure. */
export function evaluateRecovery(node: NodeView, opts: { requireAegisCordon: boolean }): Verdict {
  const guard = commonGuards(node);
  if (guard !== undefined) return guard;
  const t = node.ticket;
  const ours = t !== null && isOpen(t) && t.cordonedByAegis;
  if (!node.info.unschedulable) return { kind: 'skip', reason: 'node is schedulable' };
  if (opts.requireAegisCordon && !ours && !node.policy.uncordonManualCordons) {
    return { kind: 'skip', reason: 'cordoned by hand; left alone' };
  }
  // After a reboot-class repair, validation (when on) stands in for the health check.
  const validated = validationRung(node, t);
  if (validated !== undefined) return validated;
  const last = lastHealthcheck(t);
  if (last?.status === 'Succeeded') {
    return {
      kind: 'act',
      step: { action: Action.Uncordon, reason: 'healthcheck passed', then: resolution(t) },
    };
  }
  if (last?.status === 'Failed' && t !== null && last.exitCode === CANNOT_CHECK) {
    // The check could not run (no driver found yet — a GPU Operator driver container takes
    // minutes to load after a boot — or a host tool missing): not a fault. Ask again later, a
    // bounded number of times, then a human, saying so.
    if (countSteps(t, Action.Healthcheck, 'Failed') >= MAX_HEALTHCHECK_FAILURES) {
      return handOff(
        t,
        `healthcheck could not run (exit ${CANNOT_CHECK}: GPU driver or a host tool missing) ${MAX_HEALTHCHECK_FAILURES} times; check the node by hand`,
      );
    }
    const endMs = Date.parse(last.end ?? last.time ?? '');
    if (node.nowMs - endMs < CANNOT_CHECK_RETRY_MS)
      return { kind: 'skip', reason: 'healthcheck could not run; asking again later' };
    return {
      kind: 'act',
      step: { action: Action.Healthcheck, reason: 'the last healthcheck could not run' },
    };
  }
  if (last?.status === 'Failed' && t !== null) {
    if (countSteps(t, Action.Healthcheck, 'Failed') >= MAX_HEALTHCHECK_FAILURES) {
      return handOff(t, 'healthcheck keeps failing');
    }
    const next = afterFailedHealthcheck(node, t, last.exitCode ?? 1);
    // A reboot or shutdown whose drain was blocked before waits, then hands off (see blockedDrain).
    if (
      next.kind === 'act' &&
      (next.step.action === Action.Reboot || next.step.action === Action.Shutdown)
    )
      return blockedDrain(node) ?? next;
    return next;
  }
  return { kind: 'act', step: { action: Action.Healthcheck, reason: 'verify before uncordon' } };
}

/** Repairs after which the node returns to service only through validation (when on). */
const REBOOT_CLASS: ReadonlySet<string> = new Set<string>([
  Action.Reboot,
  Action.PowerCycle,
  Action.Repair,
]);
/** Validations that could not run (a tool missing) before a human is asked; and their spacing. */
const MAX_VALIDATION_CANNOT_RUN = 3;
const VALIDATION_RETRY_MS = 5 * 60_000;

/**
 * Where the ticket stands with validation: nothing to validate (no reboot-class repair since the
 * last validation, or none at all), a repair to validate (`due`, naming it), or the validation
 * that ran after the last repair. Held and cancelled entries never happened; entries folded into
 * the counters are older than every entry kept.
 */
function validationState(
  t: Ticket | null,
): { kind: 'none' } | { kind: 'due'; after: string } | { kind: 'ran'; entry: Workflow } {
  if (t === null) return { kind: 'none' };
  for (let i = t.workflows.length - 1; i >= 0; i--) {
    const w = t.workflows[i];
    if (w === undefined || w.status === 'Canceled' || w.status === 'Held') continue;
    if (w.action === Action.Validate && (w.status === 'Succeeded' || w.status === 'Failed'))
      return { kind: 'ran', entry: w };
    if (REBOOT_CLASS.has(w.action) && w.status === 'Succeeded')
      return { kind: 'due', after: w.action };
  }
  if ((t.counters[`${Action.Validate}/Succeeded`] ?? 0) > 0) return { kind: 'none' };
  for (const a of REBOOT_CLASS)
    if ((t.counters[`${a}/Succeeded`] ?? 0) > 0) return { kind: 'due', after: a };
  return { kind: 'none' };
}

/**
 * The validation rung of the recovery loop (config `validation`; docs/remediation.md): after a
 * reboot-class repair the node is uncordoned only once a validation Job passed. A failed one
 * returns to the ladder: another reboot while the ticket's reboot budget lasts (level >= 1), then a
 * human, naming what failed. One that could not run (a tool missing) is asked again 5 minutes
 * later, 3 times at most, then a human — never a reboot, nothing says the node is at fault.
 * Undefined when validation is off or there is nothing to validate (the health check decides).
 */
function validationRung(node: NodeView, t: Ticket | null): Verdict | undefined {
  const v = node.policy.validation;
  if (v?.enabled !== true || t === null) return undefined;
  const state = validationState(t);
  if (state.kind === 'none') return undefined;
  if (state.kind === 'due')
    return {
      kind: 'act',
      step: {
        action: Action.Validate,
        reason: `validate before return to service (after ${state.after})`,
        params: validationParams(v),
      },
    };
  const last = state.entry;
  if (last.status === 'Succeeded')
    return {
      kind: 'act',
      step: { action: Action.Uncordon, reason: 'validation passed', then: resolution(t) },
    };
  const said = last.message ?? `exit ${last.exitCode ?? '?'}`;
  if (last.exitCode === VALIDATION_EXIT.CannotRun) {
    const tries = t.workflows.filter(
      (w) =>
        w.action === Action.Validate &&
        w.status === 'Failed' &&
        w.exitCode === VALIDATION_EXIT.CannotRun,
    ).length;
    if (tries >= MAX_VALIDATION_CANNOT_RUN)
      return handOff(t, `validation could not run ${tries} times: ${said}`.slice(0, 200));
    const endMs = Date.parse(last.end ?? last.time ?? '');
    if (node.nowMs - endMs < VALIDATION_RETRY_MS)
      return { kind: 'skip', reason: 'validation could not run; asking again later' };
    return {
      kind: 'act',
      step: {
        action: Action.Validate,
        reason: 'the last validation could not run',
        params: validationParams(v),
      },
    };
  }
  if (node.policy.level >= 1 && countSteps(t, Action.Reboot, 'Succeeded') < MAX_RECOVERY_REBOOTS) {
    const next: Verdict = {
      kind: 'act',
      step: { action: Action.Reboot, reason: said.slice(0, 200) },
    };
    return blockedDrain(node) ?? next;
  }
  return handOff(
    t,
    `${said} (after ${countSteps(t, Action.Reboot, 'Succeeded')} reboots)`.slice(0, 200),
  );
}

/** Healthcheck exit code for "cannot check" (deploy/ops/entrypoint.sh): never a fault. */
export const CANNOT_CHECK = 25;
/** Wait before asking again a healthcheck that could not run. */
const CANNOT_CHECK_RETRY_MS = 5 * 60_000;

/** Exit codes of the healthcheck script (see deploy/ops/entrypoint.sh). */
function afterFailedHealthcheck(node: NodeView, t: Ticket, exitCode: number): Verdict {
  const aggressive = node.policy.level >= 1;
  if (exitCode === 23 || exitCode === 24) {
    if (aggressive && countSteps(t, Action.Reboot, 'Succeeded') < MAX_RECOVERY_REBOOTS) {
      return {
        kind: 'act',
        step: { action: Action.Reboot, reason: `healthcheck exit ${exitCode}` },
      };
    }
    return handOff(t, `healthcheck exit ${exitCode} after reboots`);
  }
  if ((exitCode === 21 || exitCode === 22) && aggressive && !isCritical(node)) {
    if (countSteps(t, Action.Shutdown) === 0) {
      return {
        kind: 'act',
        step: { action: Action.Shutdown, reason: `healthcheck exit ${exitCode}: replace GPU` },
      };
    }
  }
  return handOff(t, `healthcheck failed with exit ${exitCode}`);
}

/**
 * The most recent healthcheck after the last repairing action (a reboot makes it stale). A
 * repairing step that never ran (cancelled, held) changed nothing and leaves the check valid.
 */
function lastHealthcheck(t: Ticket | null): Ticket['workflows'][number] | undefined {
  if (t === null) return undefined;
  for (let i = t.workflows.length - 1; i >= 0; i--) {
    const w = t.workflows[i];
    if (w === undefined) break;
    if (w.action === Action.Healthcheck) return w;
    if (w.status === 'Canceled' || w.status === 'Held') continue;
    if (w.action === Action.Reboot || w.action === Action.Remedy || w.action === Action.Repair) {
      return undefined;
    }
  }
  return undefined;
}

/** Resolved when something was repaired, closed when only checks happened. */
function resolution(t: Ticket | null): 'resolve' | 'close' {
  if (t === null) return 'close';
  const passive = new Set<string>([
    Action.Cordon,
    Action.Healthcheck,
    Action.Diagnose,
    Action.Uncordon,
  ]);
  // Counter keys are `Action/Status` (folded entries); other keys (markers) are not steps.
  const acted =
    t.workflows.some((w) => !passive.has(w.action)) ||
    Object.keys(t.counters).some((k) => k.includes('/') && !passive.has(k.split('/')[0] ?? ''));
  return acted ? 'resolve' : 'close';
}

/** The other Node-domain ladders, as data (for tests and docs). */
export const NODE_LADDER_SPECS: readonly LadderSpec[] = [
  // NodeFrequentDown: a node flapping NotReady. A reboot clears a wedged kubelet or kernel state
  // (the original rebooted, vetoed by a recent reboot of its own). After two reboots it is a
  // power supply, a network path, a BMC or a kernel bug: a human, never a power-off — powering
  // off a flapping node takes it away for good and restarts its pods for nothing (the original's
  // RestartNode handed off after two reboots and never shut such a node down).
  {
    id: 'node.reboot',
    description: 'cordon, ticket, drain, reboot (<=2 successful per ticket), then human',
    reboot: { max: 2 },
    explainedByRemediationWithinMs: 2 * HOUR_MS,
  },
  // The container runtime cannot start containers: restart containerd and kubelet twice, then a
  // human (as the original). Software: nothing disruptive.
  {
    id: 'node.restart-kubelet',
    description: 'cordon, ticket, remedy RestartKubelet (<=2), then human',
    remedy: { action: 'RestartKubelet', max: 2 },
  },
  // Pods stuck terminating: free them once, then a human after 24 h (the original only handed
  // off); a stuck pod is a kubelet or storage problem, nothing a power-off fixes.
  {
    id: 'node.terminating-pods',
    description: 'cordon, ticket, force-delete pods stuck terminating, human after 24h',
    forceDeletePods: true,
    humanAfterMs: 24 * HOUR_MS,
  },
];

/** The other Node-domain ladders. */
export const nodeLadders: readonly Sop[] = NODE_LADDER_SPECS.map(defineLadderSop);
