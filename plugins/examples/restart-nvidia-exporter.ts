/**
 * Example external SOP plug-in. Copy it into the directory named by `sop.pluginDir` in the
 * config; the daemon imports it at start-up and again whenever the directory changes.
 *
 * It serves GpuMetricsHang (dcgm-exporter stopped reporting) by restarting the exporter pod on
 * the node, at most twice per ticket, then hands the ticket to a human. It takes that condition
 * over from the built-in `gpu.exporter-restart` ladder, which a plug-in may do only when its id is
 * listed in the config: `sop.pluginOverrides: [example.restart-dcgm-exporter]`.
 *
 * A plug-in module exports `sop` (or `sops`). It may import only `src/sop/sop.ts`-level types;
 * at run time it receives everything it needs through the bridge.
 */
import type {
  ApiBridge,
  NodeView,
  Outcome,
  Sop,
  SopStatus,
  Step,
  Verdict,
} from '../../src/sop/sop.js';

const SELECTOR = 'app.kubernetes.io/name=dcgm-exporter';
const MAX_RESTARTS = 2;

function restarts(node: NodeView): number {
  return (
    node.ticket?.workflows.filter((w) => w.action === 'RestartPod' && w.status !== 'Running')
      .length ?? 0
  );
}

export const sop: Sop = {
  id: 'example.restart-dcgm-exporter',
  description: 'restart the dcgm-exporter pod (<=2), then hand off',
  handles: ['GpuMetricsHang'],
  createInstance(bridge: ApiBridge) {
    return {
      evaluate(node: NodeView): Verdict {
        if (node.ticket !== null && node.ticket.supervisor !== 'aegis')
          return { kind: 'skip', reason: 'owned by a human' };
        const last = node.ticket?.workflows.at(-1);
        if (last?.status === 'Running') {
          return {
            kind: 'act',
            step: {
              action: 'RestartPod',
              reason: 'resume',
              params: { selector: SELECTOR },
              ...(last.seq === undefined ? {} : { seq: last.seq }),
            },
          };
        }
        if (restarts(node) < MAX_RESTARTS) {
          return {
            kind: 'act',
            step: {
              action: 'RestartPod',
              reason: 'dcgm-exporter stale',
              params: { selector: SELECTOR },
            },
          };
        }
        if (node.ticket?.workflows.some((w) => w.action === 'HandToHuman') ?? false)
          return { kind: 'skip', reason: 'waiting for a human' };
        return {
          kind: 'act',
          step: { action: 'HandToHuman', reason: 'exporter keeps hanging', then: 'assign' },
        };
      },
      async execute(
        node: NodeView,
        _status: SopStatus,
        step: Step,
        signal: AbortSignal,
      ): Promise<Outcome> {
        if (step.action === 'HandToHuman') return { status: 'Succeeded', message: step.reason };
        return bridge.restartPods(node.info.name, SELECTOR, signal);
      },
    };
  },
};
