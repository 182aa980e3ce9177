/**
 * The operator's writes, as pure plans: from the node as read (its ticket, its annotations) and
 * the caller's identity, the one annotation patch to send, or nothing to do, or a refusal naming
 * why (OPERATOR_REFUSED). The commands send the plan as ONE write guarded by the resourceVersion
 * that was read (docs/operators.md, the operator protocol), so a ticket that changed in between is
 * never overwritten.
 *
 * Every ticket change appends to the ticket's `operatorLog` (newest last, at most
 * OPERATOR_LOG_MAX entries) who did what and when.
 */
import { ErrorCode, HealError } from '../core/errors.js';
import { PAUSE_ANNOTATION, TICKET_ANNOTATION } from '../core/types.js';
import {
  AEGIS_SUPERVISOR,
  TicketStatus,
  isOpen,
  parseTicket,
  serializeTicket,
  type Ticket,
} from '../ticket/ticket.js';
import { isAegis, type Controls, type NodeView } from './model.js';

/** Entries kept in a ticket's operatorLog. */
export const OPERATOR_LOG_MAX = 20;
/** Bounds of the ticket schema (src/ticket/ticket.ts). */
const MAX_BY = 120;
const MAX_NOTE = 200;
/** Longest supervisor name `takeover --as` accepts. */
export const MAX_OWNER = 120;

/** The node actions. */
export type NodeAction =
  'takeover' | 'release' | 'ack' | 'approve' | 'dismiss' | 'pause' | 'resume';

/** One annotation patch, and what to print once it is written. */
export interface NodePlan {
  readonly annotations: Readonly<Record<string, string | null>>;
  readonly done: string;
  /** Printed to stderr (e.g. a pause not recorded in a corrupt ticket). */
  readonly warning?: string;
}

/** Nothing to write (already in the asked state), and what to print. */
export interface NoChange {
  readonly unchanged: string;
}

/** True when the plan writes nothing. */
export function isNoChange(p: object): p is NoChange {
  return 'unchanged' in p;
}

function refuse(node: string, why: string): never {
  throw new HealError(ErrorCode.OperatorRefused, `node ${node}: ${why}`);
}

/** Checks a `takeover --as` name: a human's name, printable, bounded. INVALID_INPUT otherwise. */
export function checkOwner(name: string): string {
  const owner = name.trim();
  if (owner === '') throw new HealError(ErrorCode.InvalidInput, '--as: the owner name is empty');
  if (owner.length > MAX_OWNER)
    throw new HealError(ErrorCode.InvalidInput, `--as: longer than ${MAX_OWNER} characters`);
  if (/[\p{Cc}\p{Cf}]/u.test(owner))
    throw new HealError(ErrorCode.InvalidInput, '--as: control characters are not allowed');
  if (isAegis(owner))
    throw new HealError(
      ErrorCode.InvalidInput,
      `--as: "${owner}" means automation; use kubectl aegis release NODE to hand the node back to Aegis`,
    );
  return owner;
}

/** The ticket with one more operatorLog entry (oldest dropped beyond OPERATOR_LOG_MAX). */
export function withLog(
  ticket: Ticket,
  action: string,
  by: string,
  at: string,
  note?: string,
): Ticket {
  const entry = {
    action,
    by: by.slice(0, MAX_BY),
    at,
    ...(note === undefined ? {} : { note: note.slice(0, MAX_NOTE) }),
  };
  return {
    ...ticket,
    operatorLog: [...(ticket.operatorLog ?? []), entry].slice(-OPERATOR_LOG_MAX),
  };
}

/**
 * The annotation text of a changed ticket, checked to read back as a valid ticket (a write must
 * never leave a ticket the daemon would call corrupt).
 */
export function ticketText(node: string, ticket: Ticket): string {
  const text = serializeTicket(ticket);
  parseTicket(text, node);
  return text;
}

/**
 * Plans one node action. `who` is the caller (SelfSubjectReview), `owner` the `takeover --as`
 * name. Throws OPERATOR_REFUSED when the action does not apply to the node as it is.
 */
export function planNodeAction(
  action: NodeAction,
  view: NodeView,
  who: string,
  nowMs: number,
  owner?: string,
): NodePlan | NoChange {
  const name = view.node.name;
  const now = new Date(nowMs).toISOString();
  if (action === 'pause' || action === 'resume') return planPause(action, view, who, now);
  if (view.corrupt !== undefined) {
    refuse(
      name,
      `the ticket cannot be read (${view.corrupt}); it is never overwritten: repair it, or remove it with kubectl annotate node ${name} ${TICKET_ANNOTATION}-`,
    );
  }
  const t = view.ticket;
  if (t === null) refuse(name, 'has no ticket: Aegis has not acted on this node');
  if (!isOpen(t))
    refuse(
      name,
      `the ticket is already ${t.status}${t.conclusion === undefined ? '' : ` (${t.conclusion})`}`,
    );
  const write = (next: Ticket, done: string): NodePlan => ({
    annotations: { [TICKET_ANNOTATION]: ticketText(name, { ...next, updateTime: now }) },
    done: `node/${name} ${done}`,
  });
  switch (action) {
    case 'takeover': {
      const to = checkOwner(owner ?? who);
      if (t.supervisor === to) return { unchanged: `node/${name} is already owned by ${to}` };
      const from = t.supervisor;
      const next = withLog(
        { ...t, supervisor: to, status: TicketStatus.Assigned },
        'takeover',
        who,
        now,
        `supervisor ${from} -> ${to}`,
      );
      return write(next, `taken over by ${to} (was: ${from})`);
    }
    case 'release': {
      if (isAegis(t.supervisor)) return { unchanged: `node/${name} is already owned by Aegis` };
      const from = t.supervisor;
      const next = withLog(
        {
          ...t,
          supervisor: AEGIS_SUPERVISOR,
          status: t.status === TicketStatus.Assigned ? TicketStatus.Created : t.status,
        },
        'release',
        who,
        now,
        `supervisor ${from} -> ${AEGIS_SUPERVISOR}`,
      );
      return write(next, `released to Aegis (was: ${from})`);
    }
    case 'ack': {
      const running = t.workflows.find((w) => w.status === 'Running');
      if (running !== undefined) {
        refuse(
          name,
          `${running.action}${running.seq === undefined ? '' : ` #${running.seq}`} is running since ${running.time ?? '?'}: wait for it to end before closing the ticket (kubectl aegis pause ${name} stops the next one)`,
        );
      }
      const conclusion = `acknowledged by ${who}`;
      const next = withLog(
        {
          ...t,
          status: TicketStatus.Closed,
          supervisor: who.slice(0, MAX_BY),
          resolvedTime: now,
          conclusion,
        },
        'ack',
        who,
        now,
      );
      return write(next, `ticket closed (${conclusion})`);
    }
    case 'approve':
    case 'dismiss': {
      const a = t.approval;
      if (a === undefined) refuse(name, 'no step is waiting for approval');
      if (a.state !== 'pending') {
        refuse(
          name,
          `no step is waiting for approval: ${a.action} was already ${a.state}${a.by === undefined ? '' : ` by ${a.by}`}${a.at === undefined ? '' : ` at ${a.at}`}`,
        );
      }
      const state = action === 'approve' ? 'approved' : 'dismissed';
      const next = withLog(
        { ...t, approval: { ...a, state, by: who.slice(0, MAX_BY), at: now } },
        action,
        who,
        now,
        `${a.action} requested at ${a.requestedAt}`,
      );
      return write(
        next,
        action === 'approve'
          ? `${a.action} approved by ${who}`
          : `${a.action} dismissed by ${who}: Aegis hands the node to a human`,
      );
    }
  }
}

function planPause(
  action: 'pause' | 'resume',
  view: NodeView,
  who: string,
  now: string,
): NodePlan | NoChange {
  const name = view.node.name;
  const paused = view.node.annotations[PAUSE_ANNOTATION] === 'true';
  if (action === 'pause' && paused) return { unchanged: `node/${name} is already paused` };
  if (action === 'resume' && !paused) return { unchanged: `node/${name} is not paused` };
  const annotations: Record<string, string | null> = {
    [PAUSE_ANNOTATION]: action === 'pause' ? 'true' : null,
  };
  let warning: string | undefined;
  if (view.corrupt !== undefined) {
    warning = `warning: node ${name}: the ticket cannot be read, so this ${action} is not recorded in it`;
  } else if (view.ticket !== null) {
    annotations[TICKET_ANNOTATION] = ticketText(name, {
      ...withLog(view.ticket, action, who, now),
      updateTime: now,
    });
  }
  return {
    annotations,
    done: `node/${name} ${action === 'pause' ? 'paused' : 'resumed'}`,
    ...(warning === undefined ? {} : { warning }),
  };
}

/** The fleet-wide actions on the aegis-control ConfigMap. */
export type FleetAction = 'pause' | 'resume' | 'breaker-reset';

/** The new data of aegis-control, or nothing to do. */
export function planFleetAction(
  action: FleetAction,
  current: Readonly<Record<string, string>> | null,
  controls: Controls,
  who: string,
  nowMs: number,
): { data: Record<string, string>; done: string } | NoChange {
  const now = new Date(nowMs).toISOString();
  const data: Record<string, string> = { ...current };
  switch (action) {
    case 'pause':
      if (controls.paused)
        return {
          unchanged: `automation is already paused${controls.pausedBy === undefined ? '' : ` by ${controls.pausedBy}`}`,
        };
      Object.assign(data, { paused: 'true', pausedBy: who, pausedAt: now });
      return { data, done: `automation paused fleet-wide by ${who}` };
    case 'resume':
      if (!controls.paused) return { unchanged: 'automation is not paused' };
      data['paused'] = 'false';
      delete data['pausedBy'];
      delete data['pausedAt'];
      return { data, done: `automation resumed fleet-wide by ${who}` };
    case 'breaker-reset':
      Object.assign(data, { breakerResetAt: now, breakerResetBy: who });
      return { data, done: `storm breaker reset by ${who} at ${now}` };
  }
}
