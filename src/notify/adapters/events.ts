import { findCondition } from '../../catalogue/index.js';
import {
  isAutomationOwned,
  isOpen,
  StepStatus,
  type Ticket,
  type Workflow,
} from '../../ticket/ticket.js';

/**
 * Ticket events: what changed between two versions of a node's ticket, as the external systems
 * want to hear it. Pure (no clock, no I/O): `diffTicket(node, previous, next)`.
 *
 * - `opened`: a ticket appeared (its first step is usually Running in the same write);
 * - `step`: a workflow entry ended (Succeeded, Failed, Canceled) or was recorded Held;
 * - `handoff`: an open ticket went to a human (the runner's hand-off, or a takeover);
 * - `closed`: the ticket was resolved or closed (by the daemon, or `kubectl aegis ack`), or it
 *   disappeared / was replaced by a newer ticket while still open.
 */

export const TICKET_EVENT_KINDS = ['opened', 'step', 'handoff', 'closed'] as const;
export type TicketEventKind = (typeof TICKET_EVENT_KINDS)[number];

export interface TicketEvent {
  readonly kind: TicketEventKind;
  readonly node: string;
  /** The ticket version the event comes from (for a ticket that vanished: its last version). */
  readonly ticket: Ticket;
  /**
   * Idempotency key, stable for this transition of this ticket whatever the number of deliveries:
   * `<node>/<ticket creationTime>/<seq>/<event>` (see `eventKey`).
   */
  readonly key: string;
  /** When the transition happened (RFC 3339), from the ticket. */
  readonly at: string;
  /** The entry that ended (`step` events). */
  readonly step?: Workflow;
  /** The human the ticket went to (`handoff` events). */
  readonly to?: string;
  /** Why a `closed` event has no resolved/closed status behind it. */
  readonly closedBecause?: 'removed' | 'replaced';
}

/** Statuses that end a workflow entry (Held counts: the entry is complete when written). */
function ended(w: Workflow): boolean {
  return w.status !== StepStatus.Running;
}

/** Identity of a workflow entry within its ticket: its seq, or (Held entries) what and when. */
function entryId(w: Workflow): string {
  return w.seq !== undefined
    ? `#${w.seq}`
    : `${w.action}|${w.status}|${w.time ?? ''}|${w.message ?? ''}`;
}

/** The latest sequence number the ticket has handed out (0 before any). */
function lastSeq(t: Ticket): number {
  let max = -1;
  for (const w of t.workflows) if (w.seq !== undefined && w.seq > max) max = w.seq;
  if (max >= 0) return max;
  return t.nextSeq > 0 ? t.nextSeq - 1 : 0;
}

/**
 * The idempotency key of an event: `<node>/<creationTime>/<seq>/<event>`. `<seq>` is the step's
 * sequence number (`step`), the first step's (`opened`), or the latest one handed out (`handoff`,
 * `closed`). Entries without a seq (Held) use `<nextSeq>` and `held-<time in ms>`; a hand-off names
 * its supervisor (`handoff-<name>`), so a second hand-off to someone else is a new event.
 */
export function eventKey(node: string, t: Ticket, seq: number | string, event: string): string {
  return `${node}/${t.creationTime}/${seq}/${event}`;
}

function stepEvent(node: string, t: Ticket, w: Workflow): TicketEvent {
  const at = w.end ?? w.time ?? t.updateTime ?? t.creationTime;
  const key =
    w.seq !== undefined
      ? eventKey(node, t, w.seq, 'step')
      : eventKey(node, t, t.nextSeq, `held-${Date.parse(w.time ?? at)}`);
  return { kind: 'step', node, ticket: t, key, at, step: w };
}

function openedEvent(node: string, t: Ticket): TicketEvent {
  const first = t.workflows.find((w) => w.seq !== undefined)?.seq ?? t.nextSeq;
  return {
    kind: 'opened',
    node,
    ticket: t,
    key: eventKey(node, t, first, 'opened'),
    at: t.creationTime,
  };
}

function handoffEvent(node: string, t: Ticket): TicketEvent {
  return {
    kind: 'handoff',
    node,
    ticket: t,
    key: eventKey(node, t, lastSeq(t), `handoff-${encodeURIComponent(t.supervisor)}`),
    at: t.updateTime ?? t.creationTime,
    to: t.supervisor,
  };
}

function closedEvent(node: string, t: Ticket, because?: 'removed' | 'replaced'): TicketEvent {
  return {
    kind: 'closed',
    node,
    ticket: t,
    key: eventKey(node, t, lastSeq(t), 'closed'),
    at: t.resolvedTime ?? t.updateTime ?? t.creationTime,
    ...(because === undefined ? {} : { closedBecause: because }),
  };
}

/**
 * The events between two versions of a node's ticket, in the order they happened: a replaced or
 * removed open ticket's `closed`, then the new ticket's `opened`, its ended steps (in ticket order),
 * a `handoff`, and `closed`. `previous` null means nothing was known: every transition of `next` is
 * new. Workflow entries folded away by the size bound are never reported twice (only entries present
 * in `next` and not ended in `previous` count).
 */
export function diffTicket(
  node: string,
  previous: Ticket | null,
  next: Ticket | null,
): TicketEvent[] {
  const out: TicketEvent[] = [];
  const same = previous !== null && next !== null && previous.creationTime === next.creationTime;
  if (previous !== null && !same && isOpen(previous))
    out.push(closedEvent(node, previous, next === null ? 'removed' : 'replaced'));
  if (next === null) return out;
  const base = same ? previous : null;
  if (base === null) out.push(openedEvent(node, next));
  const seen = new Set((base?.workflows ?? []).filter(ended).map(entryId));
  for (const w of next.workflows) {
    if (ended(w) && !seen.has(entryId(w))) out.push(stepEvent(node, next, w));
  }
  if (
    isOpen(next) &&
    !isAutomationOwned(next) &&
    (base === null || isAutomationOwned(base) || base.supervisor !== next.supervisor)
  )
    out.push(handoffEvent(node, next));
  if (!isOpen(next) && (base === null || isOpen(base))) out.push(closedEvent(node, next));
  return out;
}

/** The `opened` event of a ticket (catch-up after a restart: the adapter has no id for it yet). */
export function openedEventOf(node: string, ticket: Ticket): TicketEvent {
  return openedEvent(node, ticket);
}

/** Domain of the ticket's condition, from the catalogue ('' for a condition it does not know). */
export function domainOf(condition: string): string {
  return findCondition(condition)?.domain ?? '';
}

/** One line per workflow entry: `#3 Reboot Succeeded (exit 0) 2026-…Z: message`. */
export function stepLine(w: Workflow): string {
  const seq = w.seq === undefined ? '' : `#${w.seq} `;
  const exit = w.exitCode === undefined ? '' : ` (exit ${w.exitCode})`;
  const when = w.end ?? w.time;
  const msg = w.message === undefined || w.message === '' ? '' : `: ${w.message}`;
  return `${seq}${w.action} ${w.status}${exit}${when === undefined ? '' : ` ${when}`}${msg}`;
}

/** The last `n` workflow entries of a ticket, oldest first. */
export function lastSteps(t: Ticket, n: number): readonly Workflow[] {
  return t.workflows.slice(-n);
}

/** A one-line title: `[Aegis] gpu-017: GpuXidError (GPU)`. */
export function eventTitle(e: TicketEvent): string {
  const domain = domainOf(e.ticket.condition);
  return `[Aegis] ${e.node}: ${e.ticket.condition}${domain === '' ? '' : ` (${domain})`}`;
}

/** What happened, in one sentence a person reads in a comment or a chat message. */
export function eventSummary(e: TicketEvent): string {
  const t = e.ticket;
  switch (e.kind) {
    case 'opened': {
      const first = t.workflows[0];
      return `Aegis opened a ticket for node ${e.node}: ${t.reason || t.condition}.${
        first === undefined ? '' : ` First step: ${first.action} (${first.status}).`
      }`;
    }
    case 'step':
      return e.step === undefined ? `Step recorded on node ${e.node}.` : `Step ${stepLine(e.step)}`;
    case 'handoff':
      return `Node ${e.node} handed to ${e.to ?? t.supervisor}${
        t.whySRE === undefined && t.conclusion === undefined
          ? '.'
          : `: ${t.conclusion ?? t.whySRE ?? ''}`
      }`;
    case 'closed':
      if (e.closedBecause === 'removed')
        return `The ticket on node ${e.node} was removed while open (status ${t.status}).`;
      if (e.closedBecause === 'replaced')
        return `The ticket on node ${e.node} was replaced by a newer ticket while open (status ${t.status}).`;
      return `Ticket ${t.status} on node ${e.node}${
        t.conclusion === undefined ? '.' : `: ${t.conclusion}`
      }`;
  }
}
