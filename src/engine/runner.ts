import type { Clock } from '../core/clock.js';
import { ErrorCode, errorMessage, isHealError } from '../core/errors.js';
import type { NodeInfo } from '../core/types.js';
import { JobKind, type EventClient, type NodeClient, type NodeEvent } from '../k8s/cluster.js';
import { jobName } from '../jobs/job-name.js';
import type { Metrics } from '../metrics/metrics.js';
import {
  Action,
  DISRUPTIVE_ACTIONS,
  type NodeView,
  type Outcome,
  type SopInstance,
  type SopStatus,
  type Step,
} from '../sop/sop.js';
import {
  isAutomationOwned,
  isOpen,
  newTicket,
  TicketStatus,
  type Ticket,
} from '../ticket/ticket.js';
import { updateTicket } from '../ticket/ticket-store.js';
import { carryOver, cordonBegun, cordonEnded } from '../ticket/ticket-past.js';
import { UNFENCED, type Fence } from './fence.js';
import type { Logger } from './logger.js';

/** What the runner needs. */
export interface RunnerDeps {
  readonly cluster: NodeClient & EventClient;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly humanSupervisor: string;
  /** The leader lease's fence: steps are begun under its epoch (the ticket is the lock). */
  readonly fence: Fence;
  readonly repeatOffender: { readonly max: number; readonly windowMs: number };
  /** The node-group profile the step is decided under, recorded in its entry (docs/profiles.md). */
  readonly profile?: string;
  /** Called for every recorded step (the simulator's action log, tests). */
  readonly onStep?: (e: StepEvent) => void;
}

/** One step as it happened. */
export interface StepEvent {
  readonly atMs: number;
  readonly node: string;
  readonly sop: string;
  readonly condition: string;
  readonly action: string;
  readonly status: string;
  readonly message?: string;
}

/**
 * Runs one SOP step on one node, recording it in the ticket before and after it acts, so a
 * daemon killed at any instant resumes from the ticket: a step found `Running` is resumed (its
 * Job followed by its deterministic name), never started again.
 */
export async function runStep(
  deps: RunnerDeps,
  input: { sopId: string; instance: SopInstance; view: NodeView; status: SopStatus; step: Step },
  signal: AbortSignal,
): Promise<Outcome> {
  const { sopId, status } = input;
  const node = input.view.info.name;
  const started = deps.clock.now();
  let step = input.step;
  if (
    DISRUPTIVE_ACTIONS.has(step.action) &&
    step.seq === undefined &&
    isRepeatOffender(deps, input.view.ticket, started)
  ) {
    step = {
      action: Action.HandToHuman,
      reason: 'repeat offender: too many remediations in the window',
      then: 'assign',
    };
  }
  const begun = await recordBegin(deps, node, status, step, signal);
  if (begun.takenOverBy !== undefined) {
    // A human took the ticket between the decision and the write: nothing runs.
    return { status: 'Canceled', message: `ticket taken over by ${begun.takenOverBy}` };
  }
  if (begun.refused !== undefined) {
    // The ticket is the lock: a newer leader wrote it, or another step is running on the node.
    deps.metrics.held.inc({ gate: 'ticket-lock' });
    deps.log.warn('step not begun', { node, action: step.action, reason: begun.refused });
    return { status: 'Canceled', message: begun.refused };
  }
  const view: NodeView = { ...input.view, info: begun.node, ticket: begun.ticket };
  const seqStep = { ...step, seq: begun.seq };
  deps.onStep?.({
    atMs: started,
    node,
    sop: sopId,
    condition: status.condition.condition,
    action: step.action,
    status: 'Running',
  });
  let outcome: Outcome;
  try {
    outcome = await input.instance.execute(view, status, seqStep, signal);
  } catch (err) {
    if (signal.aborted || isHealError(err, ErrorCode.NotLeader)) throw err;
    if (isHealError(err, ErrorCode.K8sUnavailable) || isHealError(err, ErrorCode.K8sConflict)) {
      // Like a crash: the entry stays Running and the next cycle resumes the step with the same
      // sequence number (following its Job), so an API outage never repeats or loses a step.
      deps.metrics.errors.inc({ where: 'step-interrupted' });
      deps.log.warn('step interrupted by API errors; it will resume', {
        node,
        action: step.action,
        err: errorMessage(err),
      });
      return { status: 'Canceled', message: `interrupted: ${errorMessage(err)}` };
    }
    deps.metrics.errors.inc({ where: 'sop-execute' });
    deps.metrics.pluginErrors.inc({ plugin: sopId });
    outcome = { status: 'Failed', message: `SOP ${sopId} threw: ${errorMessage(err)}` };
  }
  await recordEnd(deps, node, seqStep, outcome, signal);
  const endMs = deps.clock.now();
  deps.metrics.sopTotal.inc({ sop: sopId, action: step.action, status: outcome.status });
  deps.metrics.stepSeconds.observe(
    { action: step.action, status: outcome.status },
    (endMs - started) / 1000,
  );
  deps.onStep?.({
    atMs: endMs,
    node,
    sop: sopId,
    condition: status.condition.condition,
    action: step.action,
    status: outcome.status,
    ...(outcome.message === undefined ? {} : { message: outcome.message }),
  });
  await deps.cluster
    .emitEvent(
      {
        node,
        type: outcome.status === 'Succeeded' ? 'Normal' : 'Warning',
        reason: `Aegis${step.action}${outcome.status}`,
        message:
          `${sopId}: ${step.action} ${outcome.status} for ${status.condition.condition}${outcome.message === undefined ? '' : `: ${outcome.message}`}`.slice(
            0,
            1000,
          ),
      },
      signal,
    )
    .catch((err: unknown) => {
      deps.metrics.errors.inc({ where: 'event' });
      deps.log.warn('event not recorded', { node, err: errorMessage(err) });
    });
  return outcome;
}

function isRepeatOffender(deps: RunnerDeps, ticket: Ticket | null, nowMs: number): boolean {
  if (ticket === null) return false;
  const recent = ticket.remediations.filter(
    (t) => nowMs - Date.parse(t) < deps.repeatOffender.windowMs,
  );
  return recent.length >= deps.repeatOffender.max;
}

async function recordBegin(
  deps: RunnerDeps,
  node: string,
  status: SopStatus,
  step: Step,
  signal: AbortSignal,
): Promise<{
  node: NodeInfo;
  ticket: Ticket;
  seq: number;
  takenOverBy?: string;
  refused?: string;
}> {
  const nowMs = deps.clock.now();
  let takenOverBy: string | undefined;
  let refused: string | undefined;
  const epoch = deps.fence === UNFENCED ? undefined : deps.fence.epoch();
  const now = new Date(nowMs).toISOString();
  let seq = step.seq ?? 0;
  const cond = status.condition;
  const active = status.node.conditions
    .map((c) => (c.id === '' ? c.condition : `${c.condition}/${c.id}`))
    .sort();
  const res = await updateTicket(
    deps,
    node,
    (current, nodeInfo) => {
      // Ownership is re-checked on every attempt: the write is the point of no return.
      if (current !== null && !isAutomationOwned(current)) {
        takenOverBy = current.supervisor;
        return undefined;
      }
      takenOverBy = undefined;
      refused = ticketLock(current, step, epoch);
      if (refused !== undefined) return undefined;
      let t: Ticket;
      if (current === null || !isOpen(current)) {
        const fresh = newTicket({
          condition: cond.condition,
          reason:
            `aegis detect node ${node} ${cond.condition}, type: ${cond.domain} ${cond.id}, reason: ${cond.msg}`.trim(),
          nowMs,
        });
        // Sequence numbers continue across tickets on a node, so Job names never repeat; the
        // closed ticket is folded into the new one's history in brief (reliability figures).
        t = carryOver(current, fresh);
      } else {
        t = { ...current };
        if (t.condition !== cond.condition && !t.history.includes(cond.condition)) {
          t.history = [...t.history, cond.condition];
        }
      }
      t.conditions = active;
      t.updateTime = now;
      if (epoch !== undefined) t.leaderEpoch = epoch;
      // The approval this step used (or the dismissal a hand-off answers) is consumed, and who
      // decided is written into the step's own entry.
      let decided = '';
      if (
        step.seq === undefined &&
        t.approval !== undefined &&
        t.approval.state !== 'pending' &&
        (t.approval.action === step.action || step.action === Action.HandToHuman)
      ) {
        if (t.approval.state === 'approved')
          decided = `${t.approval.by ?? '?'} at ${t.approval.at ?? '?'}`.slice(0, 200);
        t = { ...t };
        delete t.approval;
      }
      if (
        step.seq !== undefined &&
        t.workflows.some((w) => w.seq === step.seq && w.status === 'Running')
      ) {
        seq = step.seq;
        return t;
      }
      seq = t.nextSeq;
      t.nextSeq = seq + 1;
      t.workflows = [
        ...t.workflows,
        {
          action: step.action,
          status: 'Running',
          time: now,
          seq,
          condition: cond.condition,
          message: step.reason.slice(0, 200),
          ...(decided === '' ? {} : { approvedBy: decided }),
          ...(step.params === undefined ? {} : { params: { ...step.params } }),
          ...(step.then === undefined ? {} : { then: step.then }),
          ...(deps.profile === undefined ? {} : { profile: deps.profile }),
          ...(DISRUPTIVE_ACTIONS.has(step.action) && nodeInfo.bootId !== undefined
            ? { bootId: nodeInfo.bootId }
            : {}),
        },
      ];
      if (step.action === Action.Cordon) {
        t.cordonedByAegis = true;
        t.cordoned = cordonBegun(t, now);
      }
      if (step.action === Action.HandToHuman) {
        t.whySRE = step.reason;
      }
      return t;
    },
    signal,
  );
  if (takenOverBy !== undefined)
    return { node: res.node, ticket: res.ticket as Ticket, seq, takenOverBy };
  if (refused !== undefined) return { node: res.node, ticket: res.ticket as Ticket, seq, refused };
  return { node: res.node, ticket: res.ticket as Ticket, seq };
}

/**
 * The ticket as the lock of its node: why a step may not begin, or undefined when it may. A
 * ticket written by a newer leader (a higher lease epoch) refuses an older one, whatever that one
 * believes about its lease; and a step begins only when no other step of the ticket is Running
 * (resuming the Running one is allowed), so a re-read after a conflict never adds a second one.
 */
export function ticketLock(
  current: Ticket | null,
  step: Step,
  epoch: number | undefined,
): string | undefined {
  if (current === null) return undefined;
  if (epoch !== undefined && current.leaderEpoch !== undefined && current.leaderEpoch > epoch)
    return `fenced: the ticket was written by a newer leader (epoch ${current.leaderEpoch} > ${epoch})`;
  if (!isOpen(current)) return undefined;
  const running = current.workflows.find((w) => w.status === 'Running' && w.seq !== step.seq);
  if (running !== undefined)
    return `another step is running on the node: ${running.action} #${running.seq ?? '?'}`;
  return undefined;
}

/**
 * Records the end of a step in the ticket, and the diagnosis output in Events on the node.
 *
 * Whatever the output, the write fits (every ticket field is bounded; the ticket keeps an excerpt
 * naming the Job, `AegisDiagnosis` Events carry the output). A write that still fails is tried
 * once more with the bare result (status, end, exit code, transition, remediation; no diagnosis),
 * and if that fails too an `AegisStepNotRecorded` Warning Event says so before the error goes up:
 * the entry stays Running and the next cycle resumes the step by following its Job, which never
 * acts twice. Lost leadership, an aborted cycle and a corrupt ticket (reported, never
 * overwritten; the node is left alone until a human repairs it) go up at once.
 */
async function recordEnd(
  deps: RunnerDeps,
  node: string,
  step: Step & { seq: number },
  outcome: Outcome,
  signal: AbortSignal,
): Promise<void> {
  const nowMs = deps.clock.now();
  const now = new Date(nowMs).toISOString();
  const job = jobOfStep(step, node);
  let resolvedFrom: Ticket | undefined;
  const end = (current: Ticket | null, bare: string | undefined): Ticket | undefined => {
    // Recorded once: an entry no longer Running was ended by a write whose answer was lost.
    if (!(current?.workflows.some((w) => w.seq === step.seq && w.status === 'Running') ?? false))
      return undefined;
    if (current === null) return undefined;
    const message =
      bare === undefined
        ? outcome.message?.slice(0, 200)
        : `${outcome.message?.slice(0, 80) ?? outcome.status} (recorded without details: ${bare})`;
    const t: Ticket = { ...current, updateTime: now };
    t.workflows = t.workflows.map((w) =>
      w.seq === step.seq && w.status === 'Running'
        ? {
            ...w,
            status: outcome.status,
            end: now,
            ...(message === undefined ? {} : { message }),
            ...(outcome.exitCode === undefined ? {} : { exitCode: outcome.exitCode }),
          }
        : w,
    );
    if (outcome.diagnosis !== undefined && bare === undefined)
      t.diagnosis = [
        ...(t.diagnosis ?? []),
        ...outcome.diagnosis.map((d) => ({ ...d, ...(job === undefined ? {} : { job }) })),
      ];
    if (
      outcome.status === 'Succeeded' &&
      DISRUPTIVE_ACTIONS.has(step.action) &&
      step.action !== Action.Drain
    ) {
      t.remediations = [...t.remediations, now].slice(-10);
    }
    if (outcome.status === 'Succeeded') {
      if (step.action === Action.Uncordon) {
        t.cordonedByAegis = false;
        t.cordoned = cordonEnded(t, now);
      }
      if (step.then === 'assign') {
        t.status = TicketStatus.Assigned;
        t.supervisor = deps.humanSupervisor;
        t.conclusion = step.reason;
      } else if (step.then === 'resolve' || step.then === 'close') {
        t.status = step.then === 'resolve' ? TicketStatus.Resolved : TicketStatus.Closed;
        t.resolvedTime = now;
        resolvedFrom = t;
      }
    }
    return t;
  };
  try {
    try {
      await updateTicket(deps, node, (current) => end(current, undefined), signal);
    } catch (err) {
      if (!retriable(err, signal)) throw err;
      deps.metrics.errors.inc({ where: 'ticket' });
      deps.log.warn('step result not recorded; recording it without details', {
        node,
        action: step.action,
        err: errorMessage(err),
      });
      resolvedFrom = undefined;
      await updateTicket(
        deps,
        node,
        (current) => end(current, errorMessage(err).slice(0, 120)),
        signal,
      );
    }
  } catch (err) {
    if (retriable(err, signal) || isHealError(err, ErrorCode.TicketCorrupt)) {
      deps.metrics.errors.inc({ where: 'ticket' });
      await emitQuietly(deps, signal, {
        node,
        type: 'Warning',
        reason: 'AegisStepNotRecorded',
        message: `${step.action} #${step.seq} ended ${outcome.status} but the ticket could not be written (${errorMessage(err)}); the step stays Running in the ticket and is resumed by following its Job, never repeated`,
      });
      if (outcome.diagnosis !== undefined)
        await emitDiagnosis(deps, node, job, outcome.diagnosis, signal);
    }
    throw err;
  }
  if (resolvedFrom !== undefined) {
    const seconds = (nowMs - Date.parse(resolvedFrom.creationTime)) / 1000;
    deps.metrics.selfhealSeconds.observe(
      { condition: resolvedFrom.history[0] ?? resolvedFrom.condition },
      seconds,
    );
  }
  if (outcome.diagnosis !== undefined)
    await emitDiagnosis(deps, node, job, outcome.diagnosis, signal);
}

/** True for a ticket-write failure worth one more try (not lost leadership, not a corrupt ticket). */
function retriable(err: unknown, signal: AbortSignal): boolean {
  return (
    !signal.aborted &&
    !isHealError(err, ErrorCode.NotLeader) &&
    !isHealError(err, ErrorCode.TicketCorrupt)
  );
}

/** The Job a step runs (deterministic name), for the steps that run one. */
function jobOfStep(step: Step & { seq: number }, node: string): string | undefined {
  const kind = JOB_OF_ACTION[step.action];
  return kind === undefined ? undefined : jobName(kind, node, step.seq);
}

const JOB_OF_ACTION: Readonly<Partial<Record<Step['action'], JobKind>>> = {
  [Action.Diagnose]: JobKind.Diagnose,
  [Action.Remedy]: JobKind.Remedy,
  [Action.Repair]: JobKind.Repair,
  [Action.Healthcheck]: JobKind.Healthcheck,
  [Action.Reboot]: JobKind.Restart,
  [Action.Shutdown]: JobKind.Shutdown,
  [Action.Validate]: JobKind.Validate,
};

/** Longest Event message sent (the API client cuts at 1024), and Events per diagnosis. */
const EVENT_MESSAGE_MAX = 1000;
const DIAGNOSIS_EVENTS_MAX = 8;

/**
 * The whole diagnosis output as `AegisDiagnosis` Events on the node, split on line boundaries
 * into messages within the Event bound. Beyond DIAGNOSIS_EVENTS_MAX Events the tail is kept (the
 * ticket's excerpt keeps the head) and the first says how many lines were left out and where
 * they are (`kubectl logs job/<job>` while the Job exists).
 */
async function emitDiagnosis(
  deps: RunnerDeps,
  node: string,
  job: string | undefined,
  diagnosis: NonNullable<Outcome['diagnosis']>,
  signal: AbortSignal,
): Promise<void> {
  const source = job === undefined ? 'diagnosis' : `diagnosis of job/${job}`;
  const lines = diagnosis
    .flatMap((d) => [`# ${d.hint}`, `$ ${d.cmd}`, ...d.result.split('\n')])
    .map((l) => l.slice(0, EVENT_MESSAGE_MAX - source.length - 80));
  const room = EVENT_MESSAGE_MAX - source.length - 80;
  const chunks: string[][] = [];
  let size = Number.POSITIVE_INFINITY;
  for (const line of lines) {
    if (size + line.length + 1 > room) {
      chunks.push([]);
      size = 0;
    }
    chunks.at(-1)?.push(line);
    size += line.length + 1;
  }
  const kept = chunks.slice(-DIAGNOSIS_EVENTS_MAX);
  let sent = true;
  const left = chunks.slice(0, chunks.length - kept.length).reduce((n, c) => n + c.length, 0);
  for (const [i, chunk] of kept.entries()) {
    if (i > 0 && !sent) return;
    const note =
      i === 0 && left > 0
        ? ` (first ${left} of ${lines.length} lines left out${job === undefined ? '' : `: kubectl logs job/${job}`})`
        : '';
    sent = await emitQuietly(deps, signal, {
      node,
      type: 'Normal',
      reason: 'AegisDiagnosis',
      message: `${source} [${i + 1}/${kept.length}]${note}:\n${chunk.join('\n')}`.slice(
        0,
        EVENT_MESSAGE_MAX,
      ),
    });
  }
}

/** Emits an Event; a failure is counted and logged, never thrown. False when it failed. */
async function emitQuietly(
  deps: RunnerDeps,
  signal: AbortSignal,
  event: NodeEvent,
): Promise<boolean> {
  try {
    await deps.cluster.emitEvent(
      { ...event, message: event.message.slice(0, EVENT_MESSAGE_MAX) },
      signal,
    );
    return true;
  } catch (err) {
    deps.metrics.errors.inc({ where: 'event' });
    deps.log.warn('event not recorded', { node: event.node, err: errorMessage(err) });
    return false;
  }
}
