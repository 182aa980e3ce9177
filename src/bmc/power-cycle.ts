/**
 * One PowerCycle step: power off through the BMC, wait until the BMC reports Off, treat the
 * node's pods as gone (fencing: only now, since the machine is provably down), power on, wait
 * until the BMC reports On, then until the node shows a new boot id and is Ready.
 *
 * Exactly once across crashes. Before each power command the step writes its progress on the
 * node (annotation POWER_CYCLE_ANNOTATION: `{"seq":N,"phase":"off"|"on","at":…}`), through the
 * same fenced client as every other write. A resumed step (the ticket shows it Running) reads it:
 *   - no mark of this step: nothing was sent; start from the beginning;
 *   - `off`: a power-off may have been sent. If the BMC still reports On, it never took effect
 *     (nothing else powers on a node Aegis powered off), so it is sent again; if Off, go on;
 *   - `on`: the power-off was confirmed and the pods fenced; a power-on may have been sent. The
 *     power-off is never sent again: at most a power-on (a no-op on a machine already on).
 * A node showing a boot id other than the one the step began with, and Ready, has come back: the
 * resumed step succeeds without a command.
 *
 * Two power commands rather than the BMC's one-shot cycle: a one-shot cycle may turn the machine
 * back on before any poll sees it Off, and the pods may be treated as gone only once Off is seen.
 */
import { ErrorCode, errorMessage, isHealError } from '../core/errors.js';
import type { ClusterClient, PodInfo } from '../k8s/cluster.js';
import type { Clock } from '../core/clock.js';
import { POWER_CYCLE_EXIT, type OutOfBandBridge, type Outcome } from '../sop/sop.js';
import type { OutOfBand } from './out-of-band.js';
import { describeTarget } from './select.js';
import type { BmcClient, PowerState } from './types.js';

/** The node annotation holding a PowerCycle step's progress. */
export const POWER_CYCLE_ANNOTATION = 'aegis.io/power-cycle';

/** Progress of one step, as written on the node before each power command. */
export interface PowerCycleMark {
  readonly seq: number;
  readonly phase: 'off' | 'on';
  readonly at: string;
}

/** What a power cycle needs from the engine. */
export interface PowerCycleDeps {
  readonly cluster: Pick<
    ClusterClient,
    'getNode' | 'patchNodeAnnotations' | 'listPodsOnNode' | 'evictPod' | 'deletePod'
  >;
  readonly clock: Clock;
  readonly outOfBand: OutOfBand;
  /** Drains a Ready node first (the bridge's drain: PDBs honoured; `seq` names the request). */
  readonly drain: (node: string, signal: AbortSignal, seq?: number) => Promise<Outcome>;
  /** Told of each power cycle's end (metrics). */
  readonly onEnd?: (protocol: string, outcome: Outcome) => void;
}

/** A power-cycle request (see OutOfBandBridge.powerCycle). */
export interface PowerCycleRequest {
  readonly node: string;
  readonly seq: number;
  readonly resumeSinceMs?: number;
  readonly resumeBootId?: string;
}

/** Reads this step's mark from the node's annotations (undefined: none, another step's, or bad). */
export function readMark(
  annotations: Readonly<Record<string, string>>,
  seq: number,
): PowerCycleMark | undefined {
  const raw = annotations[POWER_CYCLE_ANNOTATION];
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<PowerCycleMark>;
    if (v.seq === seq && (v.phase === 'off' || v.phase === 'on') && typeof v.at === 'string')
      return { seq: v.seq, phase: v.phase, at: v.at };
  } catch {
    // A mark we cannot read is not ours.
  }
  return undefined;
}

/** Runs one PowerCycle step. Expected failures are outcomes; API errors and aborts propagate. */
export async function powerCycleNode(
  deps: PowerCycleDeps,
  req: PowerCycleRequest,
  signal: AbortSignal,
): Promise<Outcome> {
  const node0 = await deps.cluster.getNode(req.node, signal);
  const chosen = deps.outOfBand.select(node0);
  if ('reason' in chosen)
    return { status: 'Failed', message: chosen.reason, exitCode: POWER_CYCLE_EXIT.NotConfigured };
  const protocol = chosen.target.protocol;
  // Every end removes this step's mark (best effort: a mark left behind names an ended step's
  // seq, which no later step reads as its own).
  const ended = async (o: Outcome): Promise<Outcome> => {
    try {
      await clearMark(deps, req, signal);
    } catch (err) {
      if (signal.aborted) throw err;
    }
    deps.onEnd?.(protocol, o);
    return o;
  };
  let sent = false;
  try {
    const bmc = await deps.outOfBand.open(chosen.target, signal);
    const where = bmc.describe;
    const before = req.resumeBootId ?? node0.bootId;
    const resumed = req.resumeSinceMs !== undefined;
    if (resumed && isBack(node0, before))
      return await ended({
        status: 'Succeeded',
        message: `node came back with a new boot id while the daemon was down; no power command sent (${where})`,
      });
    let mark = readMark(node0.annotations, req.seq);
    let fenced = '';
    if (mark?.phase !== 'on') {
      const state = await bmc.powerState(signal);
      if (state === 'Off' && mark === undefined)
        return await ended({
          status: 'Failed',
          message: `${where} reports the node powered off already: someone shut it down; not powered on by automation`,
          exitCode: POWER_CYCLE_EXIT.FoundOff,
        });
      if (state === 'On') {
        if (mark === undefined && node0.ready === true) {
          const drained = await deps.drain(req.node, signal, req.seq);
          if (drained.status !== 'Succeeded')
            return await ended({
              status: 'Canceled',
              message: `drain blocked: ${drained.message ?? 'no reason given'}`,
            });
        }
        mark = await writeMark(deps, req, 'off', signal);
        sent = true;
        await bmc.powerOff(signal);
      }
      sent = true;
      const off = await waitPower(
        deps,
        bmc,
        'Off',
        deps.outOfBand.timing.powerOffTimeoutMs,
        signal,
      );
      if (!off)
        return await ended({
          status: 'Failed',
          message: `${where} did not report the node off within ${seconds(deps.outOfBand.timing.powerOffTimeoutMs)}; its pods were left alone (not fenced)`,
          exitCode: POWER_CYCLE_EXIT.Timeout + POWER_CYCLE_EXIT.AfterCommand,
        });
      fenced = await fencePods(deps, req.node, signal);
      mark = await writeMark(deps, req, 'on', signal);
      await bmc.powerOn(signal);
    } else {
      sent = true;
      if ((await bmc.powerState(signal)) === 'Off') await bmc.powerOn(signal);
    }
    const on = await waitPower(deps, bmc, 'On', deps.outOfBand.timing.powerOnTimeoutMs, signal);
    if (!on)
      return await ended({
        status: 'Failed',
        message: `${where} did not report the node on within ${seconds(deps.outOfBand.timing.powerOnTimeoutMs)} after the power-on`,
        exitCode: POWER_CYCLE_EXIT.Timeout + POWER_CYCLE_EXIT.AfterCommand,
      });
    const back = await waitBack(deps, req.node, before, signal);
    if (!back)
      return await ended({
        status: 'Failed',
        message: `power-cycled through ${where}, but the node showed no new boot id (or was not Ready) within ${seconds(deps.outOfBand.timing.bootTimeoutMs)}`,
        exitCode: POWER_CYCLE_EXIT.NotBack + POWER_CYCLE_EXIT.AfterCommand,
      });
    return await ended({
      status: 'Succeeded',
      message: `power-cycled through ${where}: off confirmed${fenced === '' ? '' : `, ${fenced}`}, on confirmed, back with a new boot id`,
    });
  } catch (err) {
    if (signal.aborted) throw err;
    const exit = exitOf(err);
    if (exit === undefined) throw err;
    return await ended({
      status: 'Failed',
      message: `${errorMessage(err)}${sent ? ' (after a power command was sent)' : ' (no power command sent)'}`,
      exitCode: exit + (sent ? POWER_CYCLE_EXIT.AfterCommand : 0),
    });
  }
}

/** The exit code of a BMC error (undefined: not a BMC error, let it propagate). */
function exitOf(err: unknown): number | undefined {
  if (isHealError(err, ErrorCode.BmcUnreachable)) return POWER_CYCLE_EXIT.Unreachable;
  if (isHealError(err, ErrorCode.BmcAuthFailed)) return POWER_CYCLE_EXIT.AuthFailed;
  if (isHealError(err, ErrorCode.BmcTimeout)) return POWER_CYCLE_EXIT.Timeout;
  if (isHealError(err, ErrorCode.BmcError)) return POWER_CYCLE_EXIT.BmcError;
  if (isHealError(err, ErrorCode.BmcNotConfigured)) return POWER_CYCLE_EXIT.NotConfigured;
  return undefined;
}

function isBack(
  node: { readonly bootId?: string | undefined; readonly ready: boolean | 'Unknown' },
  before: string | undefined,
): boolean {
  return (
    before !== undefined &&
    node.bootId !== undefined &&
    node.bootId !== before &&
    node.ready === true
  );
}

function seconds(ms: number): string {
  return ms >= 120_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`;
}

/** Polls the BMC until it reports `want` or the time is up. */
async function waitPower(
  deps: PowerCycleDeps,
  bmc: BmcClient,
  want: PowerState,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<boolean> {
  const until = deps.clock.now() + timeoutMs;
  for (;;) {
    if ((await bmc.powerState(signal)) === want) return true;
    if (deps.clock.now() >= until) return false;
    await deps.clock.sleep(deps.outOfBand.timing.pollMs, signal);
  }
}

/** Polls the node until it shows a boot id other than `before` and is Ready. */
async function waitBack(
  deps: PowerCycleDeps,
  node: string,
  before: string | undefined,
  signal: AbortSignal,
): Promise<boolean> {
  const until = deps.clock.now() + deps.outOfBand.timing.bootTimeoutMs;
  for (;;) {
    const n = await deps.cluster.getNode(node, signal);
    // Without a boot id to compare (a node that never reported one), Ready after the cycle counts.
    if (before === undefined ? n.ready === true : isBack(n, before)) return true;
    if (deps.clock.now() >= until) return false;
    await deps.clock.sleep(deps.outOfBand.timing.pollMs, signal);
  }
}

/**
 * The node is off, confirmed by its BMC: its pods are gone. Pods already terminating are
 * force-deleted (grace 0) so their controllers replace them elsewhere and their volumes detach;
 * the others are evicted through the Eviction API (PDBs honoured) and then force-deleted. Left:
 * DaemonSet and static pods (they come back with the node) and pods with finalizers (their owners').
 */
async function fencePods(deps: PowerCycleDeps, node: string, signal: AbortSignal): Promise<string> {
  const pods = await deps.cluster.listPodsOnNode(node, signal);
  let deleted = 0;
  const left: string[] = [];
  for (const p of pods) {
    if (p.daemonSet || p.mirror || p.phase === 'Succeeded' || p.phase === 'Failed') continue;
    const id = `${p.namespace}/${p.name}`;
    if ((p.finalizers?.length ?? 0) > 0) {
      left.push(`${id} (finalizers)`);
      continue;
    }
    if (p.deletionTimestampMs === undefined) {
      const r = await deps.cluster.evictPod(p.namespace, p.name, signal);
      if (r === 'gone') continue;
      if (r === 'blocked') {
        left.push(`${id} (PodDisruptionBudget)`);
        continue;
      }
    }
    if (await forceDelete(deps, p, signal)) deleted++;
  }
  return (
    `${deleted} pod${deleted === 1 ? '' : 's'} force-deleted` +
    (left.length === 0
      ? ''
      : `; left ${left.length}: ${left.slice(0, 3).join(', ')}${left.length > 3 ? ', …' : ''}`)
  );
}

async function forceDelete(
  deps: PowerCycleDeps,
  p: PodInfo,
  signal: AbortSignal,
): Promise<boolean> {
  try {
    await deps.cluster.deletePod(p.namespace, p.name, 0, signal);
    return true;
  } catch (err) {
    if (isHealError(err, ErrorCode.K8sNotFound)) return false;
    throw err;
  }
}

/** Writes this step's progress on the node (re-read and retried on a conflict). */
async function writeMark(
  deps: PowerCycleDeps,
  req: PowerCycleRequest,
  phase: 'off' | 'on',
  signal: AbortSignal,
): Promise<PowerCycleMark> {
  const mark: PowerCycleMark = {
    seq: req.seq,
    phase,
    at: new Date(deps.clock.now()).toISOString(),
  };
  await patchAnnotation(deps, req.node, JSON.stringify(mark), signal);
  return mark;
}

/** Removes the mark of this step once it has ended (another step's is left). */
async function clearMark(
  deps: PowerCycleDeps,
  req: PowerCycleRequest,
  signal: AbortSignal,
): Promise<void> {
  const n = await deps.cluster.getNode(req.node, signal);
  if (readMark(n.annotations, req.seq) === undefined) return;
  await patchAnnotation(deps, req.node, null, signal);
}

async function patchAnnotation(
  deps: PowerCycleDeps,
  node: string,
  value: string | null,
  signal: AbortSignal,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const n = await deps.cluster.getNode(node, signal);
    try {
      await deps.cluster.patchNodeAnnotations(
        node,
        { [POWER_CYCLE_ANNOTATION]: value },
        n.resourceVersion,
        signal,
      );
      return;
    } catch (err) {
      if (!isHealError(err, ErrorCode.K8sConflict) || attempt >= 4) throw err;
    }
  }
}

/** The bridge's out-of-band side over a port (see OutOfBandBridge in src/sop/sop.ts). */
export function outOfBandBridge(deps: PowerCycleDeps): OutOfBandBridge {
  return {
    bmcOf(node) {
      const s = deps.outOfBand.select(node);
      return 'reason' in s ? { reason: s.reason } : { describe: describeTarget(s.target) };
    },
    notReadyAfterMs: deps.outOfBand.notReadyAfterMs,
    powerCycle: (request, signal) => powerCycleNode(deps, request, signal),
  };
}
