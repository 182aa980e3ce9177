import type { ApiBridge, NodeView, Outcome, Step } from './sop.js';
import { Action } from './sop.js';

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
      return bridge.drain(name, signal);
    case Action.Diagnose:
      return job('diagnose_node');
    case Action.Remedy:
      return job('remedy_node');
    case Action.Repair:
      return job('repair_node');
    case Action.Healthcheck:
      return job('healthcheck_node');
    case Action.RestartPod:
      return bridge.restartPods(name, params['selector'] ?? '', signal);
    case Action.ForceDeletePods:
      return bridge.forceDeleteTerminatingPods(name, signal);
    case Action.Reboot:
      return drainThen(bridge, name, signal, () => job('restart_node'));
    case Action.Shutdown:
      return drainThen(bridge, name, signal, () => job('shutdown_node'));
    case Action.HandToHuman:
      return { status: 'Succeeded', message: step.reason };
  }
}

/** Drains, then runs `next`. A drain a PDB blocks cancels the step (it is retried later, not counted). */
async function drainThen(
  bridge: ApiBridge,
  node: string,
  signal: AbortSignal,
  next: () => Promise<Outcome>,
): Promise<Outcome> {
  const drained = await bridge.drain(node, signal);
  if (drained.status !== 'Succeeded') {
    return { status: 'Canceled', message: `drain did not complete: ${drained.message ?? ''}` };
  }
  return next();
}
