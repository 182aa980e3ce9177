import type { Clock } from '../core/clock.js';
import { ErrorCode, errorMessage, isHealError } from '../core/errors.js';
import type { NodeInfo } from '../core/types.js';
import type { EventClient, NodeClient } from '../k8s/cluster.js';
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
import type { Logger } from './logger.js';

/** What the runner needs. */
export interface RunnerDeps {
  readonly cluster: NodeClient & EventClient;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly humanSupervisor: string;
  readonly repeatOffender: { readonly max: number; readonly windowMs: number };
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
    if (signal.aborted) throw err;
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
): Promise<{ node: NodeInfo; ticket: Ticket; seq: number; takenOverBy?: string }> {
  const nowMs = deps.clock.now();
  let takenOverBy: string | undefined;
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
      let t: Ticket;
      if (current === null || !isOpen(current)) {
        const fresh = newTicket({
          condition: cond.condition,
          reason:
            `aegis detect node ${node} ${cond.condition}, type: ${cond.domain} ${cond.id}, reason: ${cond.msg}`.trim(),
          nowMs,
        });
        // Sequence numbers continue across tickets on a node, so Job names never repeat.
        t = { ...fresh, remediations: current?.remediations ?? [], nextSeq: current?.nextSeq ?? 0 };
      } else {
        t = { ...current };
        if (t.condition !== cond.condition && !t.history.includes(cond.condition)) {
          t.history = [...t.history, cond.condition];
        }
        if (t.condition !== cond.condition) t.condition = cond.condition;
      }
      t.conditions = active;
      t.updateTime = now;
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
          ...(step.params === undefined ? {} : { params: { ...step.params } }),
          ...(step.then === undefined ? {} : { then: step.then }),
          ...(DISRUPTIVE_ACTIONS.has(step.action) && nodeInfo.bootId !== undefined
            ? { bootId: nodeInfo.bootId }
            : {}),
        },
      ];
      if (step.action === Action.Cordon) t.cordonedByAegis = true;
      if (step.action === Action.HandToHuman) {
        t.whySRE = step.reason;
      }
      return t;
    },
    signal,
  );
  if (takenOverBy !== undefined)
    return { node: res.node, ticket: res.ticket as Ticket, seq, takenOverBy };
  return { node: res.node, ticket: res.ticket as Ticket, seq };
}

async function recordEnd(
  deps: RunnerDeps,
  node: string,
  step: Step & { seq: number },
  outcome: Outcome,
  signal: AbortSignal,
): Promise<void> {
  const nowMs = deps.clock.now();
  const now = new Date(nowMs).toISOString();
  let resolvedFrom: Ticket | undefined;
  await updateTicket(
    deps,
    node,
    (current) => {
      if (current === null) return undefined;
      const t: Ticket = { ...current, updateTime: now };
      t.workflows = t.workflows.map((w) =>
        w.seq === step.seq && w.status === 'Running'
          ? {
              ...w,
              status: outcome.status,
              end: now,
              ...(outcome.message === undefined ? {} : { message: outcome.message.slice(0, 200) }),
              ...(outcome.exitCode === undefined ? {} : { exitCode: outcome.exitCode }),
            }
          : w,
      );
      if (outcome.diagnosis !== undefined)
        t.diagnosis = [...(t.diagnosis ?? []), ...outcome.diagnosis].slice(-4);
      if (
        outcome.status === 'Succeeded' &&
        DISRUPTIVE_ACTIONS.has(step.action) &&
        step.action !== Action.Drain
      ) {
        t.remediations = [...t.remediations, now].slice(-10);
      }
      if (outcome.status === 'Succeeded') {
        if (step.action === Action.Uncordon) t.cordonedByAegis = false;
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
    },
    signal,
  );
  if (resolvedFrom !== undefined) {
    const seconds = (nowMs - Date.parse(resolvedFrom.creationTime)) / 1000;
    deps.metrics.selfhealSeconds.observe(
      { condition: resolvedFrom.history[0] ?? resolvedFrom.condition },
      seconds,
    );
  }
}
