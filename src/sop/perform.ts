import type { ApiBridge, NodeView, Outcome, Step } from './sop.js';
import { Action, POWER_CYCLE_EXIT } from './sop.js';
import {
  expectationsOf,
  judgeValidation,
  validationDiagnosis,
  VALIDATION_EXIT,
} from '../jobs/validation.js';

/**
 * How long after a reboot Job failed (it hit its deadline while the node was still booting, or
 * its pod never came back to complete it) the node may take to show a new boot id and be Ready:
 * that node did reboot, and the step is not a failure. Large servers take 15-20 minutes to POST.
 */
export const REBOOT_COMEBACK_MS = 20 * 60_000;
const COMEBACK_POLL_MS = 10_000;

/** Prefix of the message of a disruptive step cancelled because its drain did not complete. */
export const DRAIN_BLOCKED = 'drain blocked';

/**
 * Carries out one ladder step through the bridge. Shared by every built-in SOP and available to
 * plug-ins. `seq` is the step's sequence number in the ticket (deterministic Job names).
 */
export async function performStep(
  bridge: ApiBridge,
  node: NodeView,
  step: Step & { readonly seq: number },
  signal: AbortSignal,
): Promise<Outcome> {
  const name = node.info.name;
  const params = step.params ?? {};
  const job = (kind: Parameters<ApiBridge['runJob']>[0]['kind']): Promise<Outcome> =>
    bridge.runJob(
      {
        kind,
        node: name,
        params,
        seq: step.seq,
        ...(step.resumeSinceMs === undefined ? {} : { resumeSinceMs: step.resumeSinceMs }),
        ...(step.resumeBootId === undefined ? {} : { resumeBootId: step.resumeBootId }),
      },
      signal,
    );
  switch (step.action) {
    case Action.Cordon:
      return bridge.cordon(name, signal);
    case Action.Uncordon:
      return bridge.uncordon(name, signal);
    case Action.Drain:
      return bridge.drain(name, signal, { seq: step.seq });
    case Action.Diagnose:
      return job('diagnose_node');
    case Action.Remedy:
      return job('remedy_node');
    case Action.Repair:
      return job('repair_node');
    case Action.Healthcheck:
      return job('healthcheck_node');
    case Action.Validate:
      return validateNode(bridge, node, params, await job('validate_node'), signal);
    case Action.RestartPod:
      return bridge.restartPods(name, params['selector'] ?? '', signal);
    case Action.ForceDeletePods:
      return bridge.forceDeleteTerminatingPods(name, signal);
    case Action.Reboot: {
      // The boot id the step began with: recorded in the ticket for a resumed step (the node
      // may have rebooted since), read with the Running write for a fresh one.
      const before = step.resumeBootId ?? node.info.bootId;
      return drainThen(bridge, name, step.seq, signal, async () =>
        confirmReboot(bridge, name, before, await job('restart_node'), signal),
      );
    }
    case Action.Shutdown:
      return drainThen(bridge, name, step.seq, signal, () => job('shutdown_node'));
    case Action.PowerCycle:
      // Drains a Ready node itself (a NotReady one cannot be drained: its pods are fenced once
      // the BMC confirms it off).
      if (bridge.outOfBand === undefined)
        return {
          status: 'Failed',
          message: 'out-of-band power is off (bmc.enabled: false)',
          exitCode: POWER_CYCLE_EXIT.NotConfigured,
        };
      return bridge.outOfBand.powerCycle(
        {
          node: name,
          seq: step.seq,
          ...(step.resumeSinceMs === undefined ? {} : { resumeSinceMs: step.resumeSinceMs }),
          ...(step.resumeBootId === undefined ? {} : { resumeBootId: step.resumeBootId }),
        },
        signal,
      );
    case Action.Quarantine:
      if (bridge.quarantine === undefined)
        return {
          status: 'Failed',
          message: 'GPU-level quarantine is off (quarantine.enabled: false)',
        };
      return bridge.quarantine.isolate(
        { node: name, device: params['device'] ?? '', condition: params['condition'] ?? '' },
        signal,
      );
    case Action.HandToHuman:
      return { status: 'Succeeded', message: step.reason };
  }
}

/**
 * Drains, then runs `next`. A drain that does not complete (a PodDisruptionBudget refuses an
 * eviction, pods do not go) cancels the step: nothing was disrupted. The ladder counts these
 * cancellations and hands off after a bounded number (see `blockedDrain` in ladder.ts).
 */
async function drainThen(
  bridge: ApiBridge,
  node: string,
  seq: number,
  signal: AbortSignal,
  next: () => Promise<Outcome>,
): Promise<Outcome> {
  const drained = await bridge.drain(node, signal, { seq });
  if (drained.status !== 'Succeeded') {
    return {
      status: 'Canceled',
      message: `${DRAIN_BLOCKED}: ${drained.message ?? 'no reason given'}`,
    };
  }
  return next();
}

/**
 * A reboot Job that failed is judged by the node, not by the Job: when the node shows a boot id
 * other than the one the step began with and is Ready, it rebooted and came back (its Job was
 * only slower than its deadline), so the step Succeeded. While the node is down or booting it is
 * given REBOOT_COMEBACK_MS; a node that is Ready with the same boot id did not reboot (Failed).
 */
export async function confirmReboot(
  bridge: ApiBridge,
  node: string,
  before: string | undefined,
  outcome: Outcome,
  signal: AbortSignal,
): Promise<Outcome> {
  if (outcome.status !== 'Failed' || before === undefined) return outcome;
  const until = bridge.clock.now() + REBOOT_COMEBACK_MS;
  for (;;) {
    const state = await bridge.nodeState(node, signal);
    const rebooted = state.bootId !== undefined && state.bootId !== before;
    if (rebooted && state.ready === true) {
      return {
        status: 'Succeeded',
        message: `the node came back with a new boot id (${outcome.message ?? 'the Job failed'})`,
      };
    }
    if (!rebooted && state.ready === true) return outcome;
    if (bridge.clock.now() >= until) {
      return {
        ...outcome,
        message: `${outcome.message ?? 'the Job failed'}; the node was not back ${REBOOT_COMEBACK_MS / 60_000} min later`,
      };
    }
    await bridge.clock.sleep(COMEBACK_POLL_MS, signal);
  }
}

/**
 * A validation Job's outcome judged (src/jobs/validation.ts): its sections against what the step
 * asked (its params) and the site's floors. A pass certifies the node until now +
 * `validation.certifyForMs` (annotation `aegis.io/certified-until`); a failure removes any
 * certificate. Results go to the ticket as the step's message and one diagnosis record per test.
 */
async function validateNode(
  bridge: ApiBridge,
  node: NodeView,
  params: Readonly<Record<string, string>>,
  job: Outcome,
  signal: AbortSignal,
): Promise<Outcome> {
  if (job.status === 'Canceled') return job;
  const verdict = judgeValidation(job.logs ?? [], expectationsOf(params, node.policy.validation));
  const diagnosis = validationDiagnosis(verdict);
  if (verdict.status !== 'passed') {
    // A Job that failed (deadline, no pod) and printed nothing is one that could not run.
    const cannotRun = verdict.status === 'cannot-run';
    if (!cannotRun) await bridge.certify?.(node.info.name, null, signal);
    return {
      status: 'Failed',
      exitCode: cannotRun ? VALIDATION_EXIT.CannotRun : VALIDATION_EXIT.Failed,
      message:
        job.status === 'Failed' && (job.logs ?? []).length === 0
          ? `${verdict.message} (${job.message ?? 'Job failed'})`
          : verdict.message,
      ...(diagnosis.length > 0 ? { diagnosis } : {}),
    };
  }
  const untilMs = bridge.clock.now() + (node.policy.validation?.certifyForMs ?? 0);
  await bridge.certify?.(node.info.name, untilMs, signal);
  return {
    status: 'Succeeded',
    exitCode: 0,
    message: `certified until ${new Date(untilMs).toISOString()}; ${verdict.message}`,
    ...(diagnosis.length > 0 ? { diagnosis } : {}),
  };
}
