import type { Clock } from '../core/clock.js';
import { errorMessage, isHealError, ErrorCode } from '../core/errors.js';
import { DEFAULT_SYSTEM_NAMESPACES, namespacePredicate } from '../catalogue/namespaces.js';
import type { ClusterClient, JobState, PodInfo } from '../k8s/cluster.js';
import { jobName } from '../jobs/job-name.js';
import { assertNodeName, validateJobParams } from '../jobs/params.js';
import { CERTIFIED_UNTIL_ANNOTATION } from '../jobs/validation.js';
import type { ApiBridge, Outcome } from '../sop/sop.js';
import type { OutOfBand } from '../bmc/out-of-band.js';
import { outOfBandBridge } from '../bmc/power-cycle.js';
import type { Metrics } from '../metrics/metrics.js';
import { updateTicket } from '../ticket/ticket-store.js';
import { DEFAULT_DRAIN_POLICY, drainNode, type DrainPolicy } from './drain-checkpoint.js';

/**
 * A resumed step whose Job is missing re-creates it only within this window after the step
 * began. The templates keep finished Jobs for 24 h (`ttlSecondsAfterFinished: 86400`) and no Job
 * runs longer than an hour, so inside the window a missing Job was never created (the daemon
 * stopped, or the API failed, between recording the step and creating it); past it, the Job may
 * have run and been collected, and relaunching could reboot a node twice.
 */
const RELAUNCH_WINDOW_MS = 23 * 3_600_000;

/** Consecutive failed polls of a Job before the step is interrupted. */
const MAX_POLL_ERRORS = 5;

/** Timing of bridge operations. */
export interface BridgeOptions {
  readonly drainTimeoutMs: number;
  readonly jobPollMs: number;
  /** Deadline per Job kind, seconds. */
  readonly jobDeadlineSeconds: Readonly<Record<string, number>>;
}

export const DEFAULT_BRIDGE_OPTIONS: BridgeOptions = {
  drainTimeoutMs: 120_000,
  jobPollMs: 2_000,
  jobDeadlineSeconds: {
    restart_node: 1200,
    shutdown_node: 1200,
    healthcheck_node: 1200,
    repair_node: 3600,
    remedy_node: 1200,
    diagnose_node: 1200,
    // DCGM level 3 takes ~30 min, the all-reduce and the loopback minutes (config `validation`).
    validate_node: 7200,
  },
};

/** Parses diagnose logs (`hint:`, `cmd:`, `result:` lines) into records. */
export function parseDiagnosis(
  lines: readonly string[],
): { hint: string; cmd: string; result: string }[] {
  const out: { hint: string; cmd: string; result: string }[] = [];
  let cur: { hint: string; cmd: string; result: string } | undefined;
  for (const line of lines) {
    const m = /^(hint|cmd|result):\s?(.*)$/.exec(line);
    if (m === null) continue;
    const [, key, value = ''] = m;
    if (key === 'hint' || cur === undefined) {
      cur = { hint: '', cmd: '', result: '' };
      out.push(cur);
    }
    if (key === 'hint') cur.hint = value;
    else if (key === 'cmd') cur.cmd = value;
    else cur.result = cur.result === '' ? value : `${cur.result}\n${value}`;
  }
  return out.slice(0, 10);
}

/**
 * Why a terminating pod is not force-deleted, or undefined when it may be: only a pod of a system
 * namespace, past its grace period, without finalizers. A tenant's pod is its owner's to delete,
 * and removing a finalizer (or cutting a grace period short) is a human's decision.
 */
export function whyNotForceDelete(
  pod: PodInfo,
  nowMs: number,
  isSystem: (namespace: string) => boolean,
): string | undefined {
  if (!isSystem(pod.namespace)) return 'tenant namespace';
  if ((pod.finalizers?.length ?? 0) > 0) return 'finalizers';
  if (pod.deletionTimestampMs !== undefined && pod.deletionTimestampMs > nowMs)
    return 'within its grace period';
  return undefined;
}

/** The real ApiBridge over a ClusterClient: every write an SOP may make, and nothing else. */
export function createApiBridge(deps: {
  cluster: ClusterClient;
  clock: Clock;
  options?: BridgeOptions;
  /** Namespaces whose pods may be force-deleted (config `systemNamespaces`). */
  systemNamespaces?: readonly string[];
  /** Out-of-band power through the BMCs (config `bmc`); absent: no PowerCycle. */
  outOfBand?: OutOfBand;
  metrics?: Metrics;
  /** How drains ask pods to checkpoint (config `drain`); default: they do not. */
  drain?: DrainPolicy;
}): ApiBridge {
  const { cluster, clock } = deps;
  const opts = deps.options ?? DEFAULT_BRIDGE_OPTIONS;
  const isSystem = namespacePredicate(deps.systemNamespaces ?? DEFAULT_SYSTEM_NAMESPACES);

  const waitJob = async (
    name: string,
    deadlineMs: number,
    signal: AbortSignal,
  ): Promise<JobState | null> => {
    const until = clock.now() + deadlineMs;
    let errors = 0;
    for (;;) {
      let state: JobState | null;
      try {
        state = await cluster.getJob(name, signal);
        errors = 0;
      } catch (err) {
        // A transient API error while following a Job is retried; after a few in a row the
        // step is interrupted (it stays Running in the ticket and is resumed, never relaunched).
        if (!isHealError(err, ErrorCode.K8sUnavailable) || ++errors > MAX_POLL_ERRORS) throw err;
        await clock.sleep(opts.jobPollMs, signal);
        continue;
      }
      if (state === null || state.phase === 'Succeeded' || state.phase === 'Failed') return state;
      if (clock.now() >= until) return state;
      await clock.sleep(opts.jobPollMs, signal);
    }
  };

  /** Writes `message` on the ticket's Running step `seq` (what a drain is waiting for). */
  const noteStep = async (
    node: string,
    seq: number,
    message: string,
    signal: AbortSignal,
  ): Promise<void> => {
    await updateTicket(
      { cluster, clock },
      node,
      (current) => {
        const entry = current?.workflows.find((w) => w.seq === seq && w.status === 'Running');
        if (current === null || entry === undefined || entry.message === message) return undefined;
        return {
          ...current,
          workflows: current.workflows.map((w) => (w === entry ? { ...w, message } : w)),
        };
      },
      signal,
    );
  };

  const waitGone = async (name: string, signal: AbortSignal): Promise<JobState | null> => {
    for (let i = 0; i < 30; i++) {
      const state = await cluster.getJob(name, signal);
      if (state === null) return null;
      await clock.sleep(Math.max(100, opts.jobPollMs / 2), signal);
    }
    return cluster.getJob(name, signal);
  };

  const bridge: ApiBridge = {
    clock,
    async cordon(node, signal) {
      await cluster.setUnschedulable(node, true, signal);
      return { status: 'Succeeded' };
    },
    async uncordon(node, signal) {
      await cluster.setUnschedulable(node, false, signal);
      return { status: 'Succeeded' };
    },
    drain(node, signal, request) {
      // drain-checkpoint.ts: with the default policy, the plain drain.
      return drainNode(
        {
          cluster,
          clock,
          policy: deps.drain ?? DEFAULT_DRAIN_POLICY,
          drainTimeoutMs: opts.drainTimeoutMs,
          note: (message, s) =>
            request?.seq === undefined
              ? Promise.resolve()
              : noteStep(node, request.seq, message, s),
          count: (result) => deps.metrics?.drainCheckpointPods.inc({ result }),
        },
        node,
        signal,
        request,
      );
    },
    async runJob(request, signal) {
      const name = jobName(request.kind, request.node, request.seq);
      const activeDeadlineSeconds = opts.jobDeadlineSeconds[request.kind] ?? 1200;
      assertNodeName(request.node);
      const upper = Object.fromEntries(
        Object.entries(request.params).map(([k, v]) => [k.toUpperCase(), v]),
      );
      const params = validateJobParams(request.kind, upper);
      const req = { kind: request.kind, name, node: request.node, params, activeDeadlineSeconds };
      let existing = await cluster.getJob(name, signal);
      if (existing !== null && request.resumeSinceMs === undefined) {
        // A fresh step never has a Job yet: one of this name is a leftover of an older ticket
        // (annotation removed by hand). Remove it rather than mistake its result for ours.
        await cluster.deleteJob(name, signal);
        existing = await waitGone(name, signal);
        if (existing !== null)
          return { status: 'Canceled', message: `stale Job ${name} still being deleted` };
      }
      if (existing === null && request.resumeBootId !== undefined) {
        const bootId = (await cluster.getNode(request.node, signal)).bootId;
        if (bootId !== undefined && bootId !== request.resumeBootId) {
          return {
            status: 'Succeeded',
            message: `node booted since the step began (Job ${name} gone); not relaunched`,
          };
        }
      }
      if (existing === null) {
        // A resumed step whose Job is gone long after it began already ran (and was garbage
        // collected): relaunching it could reboot a node twice. Report it instead.
        if (
          request.resumeSinceMs !== undefined &&
          clock.now() - request.resumeSinceMs > RELAUNCH_WINDOW_MS
        ) {
          return {
            status: 'Failed',
            message: `Job ${name} vanished while the daemon was down; not relaunched`,
          };
        }
        await cluster.createJob(req, signal);
      }
      const state = await waitJob(name, activeDeadlineSeconds * 1000 + 60_000, signal);
      return toOutcome(name, state);
    },
    async restartPods(node, selector, signal) {
      const [key, value] = selector.split('=');
      const pods = (await cluster.listPodsOnNode(node, signal)).filter(
        (p) => key !== undefined && p.labels[key] === value,
      );
      if (pods.length === 0)
        return { status: 'Failed', message: `no pod matching ${selector} on the node` };
      for (const p of pods) await cluster.deletePod(p.namespace, p.name, 30, signal);
      return { status: 'Succeeded', message: `restarted ${pods.map((p) => p.name).join(', ')}` };
    },
    async forceDeleteTerminatingPods(node, signal) {
      const now = clock.now();
      const deleted: string[] = [];
      const left: string[] = [];
      for (const p of await cluster.listPodsOnNode(node, signal)) {
        if (p.deletionTimestampMs === undefined) continue;
        const why = whyNotForceDelete(p, now, isSystem);
        if (why !== undefined) {
          left.push(`${p.namespace}/${p.name} (${why})`);
          continue;
        }
        try {
          await cluster.deletePod(p.namespace, p.name, 0, signal);
        } catch (err) {
          if (!isHealError(err, ErrorCode.K8sNotFound)) throw err;
        }
        deleted.push(`${p.namespace}/${p.name}`);
      }
      return {
        status: 'Succeeded',
        message:
          `force-deleted ${deleted.length} system pods past their grace period` +
          (left.length === 0
            ? ''
            : `; left ${left.length} to their owners: ${left.slice(0, 3).join(', ')}` +
              (left.length > 3 ? ', …' : '')),
      };
    },
    async nodeState(node, signal) {
      const n = await cluster.getNode(node, signal);
      return n.bootId === undefined ? { ready: n.ready } : { ready: n.ready, bootId: n.bootId };
    },
    async certify(node, untilMs, signal) {
      const value =
        untilMs === null ? null : new Date(untilMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
      for (let attempt = 0; ; attempt++) {
        const n = await cluster.getNode(node, signal);
        if ((n.annotations[CERTIFIED_UNTIL_ANNOTATION] ?? null) === value) return;
        try {
          await cluster.patchNodeAnnotations(
            node,
            { [CERTIFIED_UNTIL_ANNOTATION]: value },
            n.resourceVersion,
            signal,
          );
          return;
        } catch (err) {
          if (!isHealError(err, ErrorCode.K8sConflict) || attempt >= 4) throw err;
        }
      }
    },
  };
  const oob = deps.outOfBand;
  if (oob === undefined) return bridge;
  return {
    ...bridge,
    outOfBand: outOfBandBridge({
      cluster,
      clock,
      outOfBand: oob,
      drain: (node, signal, seq) => bridge.drain(node, signal, { seq }),
      onEnd: (protocol, o) => deps.metrics?.bmcPowerCycles.inc({ protocol, result: o.status }),
    }),
  };
}

function toOutcome(name: string, state: JobState | null): Outcome {
  if (state === null) return { status: 'Failed', message: `Job ${name} disappeared` };
  const exit = state.exitCode === undefined ? {} : { exitCode: state.exitCode };
  const logs = state.logs === undefined ? {} : { logs: state.logs };
  if (state.phase === 'Succeeded') {
    const diagnosis = parseDiagnosis(state.logs ?? []);
    return {
      status: 'Succeeded',
      message: `Job ${name} succeeded`,
      ...exit,
      ...(diagnosis.length > 0 ? { diagnosis } : {}),
      ...logs,
    };
  }
  if (state.phase === 'Failed') {
    return {
      status: 'Failed',
      message: `Job ${name} failed${state.exitCode === undefined ? '' : ` with exit ${state.exitCode}`}`,
      ...exit,
      ...logs,
    };
  }
  return { status: 'Failed', message: `Job ${name} did not finish in time (${state.phase})` };
}

/** Wraps an error as a failed outcome message (for logs). */
export function failure(err: unknown): Outcome {
  return { status: 'Failed', message: errorMessage(err) };
}
