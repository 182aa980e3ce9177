/**
 * A node's ticket history in brief. A node has one ticket annotation: a new ticket replaces a
 * closed one. What reliability figures need of the tickets before it (how many, when, who closed
 * them and how long they took, how long the node was cordoned) is folded into the new ticket's
 * bounded `past` field when it is opened, so the figures survive restarts and leadership changes
 * (src/engine/reliability.ts computes them). Pure.
 */
import { AEGIS_SUPERVISOR, isOpen, type Ticket } from './ticket.js';

/** Latest ticket openings a ticket keeps (lemon-node windows). */
export const PAST_OPENED_MAX = 10;

/** Who closed a ticket: automation, or a human (an ack, a hand-off closed by its owner). */
export type RepairedBy = 'aegis' | 'human';

/** A closed ticket's repair: who closed it and how long it was open (seconds). */
export function repairOf(t: Ticket): { by: RepairedBy; seconds: number } | undefined {
  if (isOpen(t) || t.resolvedTime === undefined) return undefined;
  const ms = Date.parse(t.resolvedTime) - Date.parse(t.creationTime);
  if (!Number.isFinite(ms)) return undefined;
  const by = t.supervisor === '' || t.supervisor === AEGIS_SUPERVISOR ? 'aegis' : 'human';
  return { by, seconds: Math.max(0, Math.round(ms / 1000)) };
}

/**
 * Milliseconds Aegis kept the node cordoned for this ticket, up to `nowMs`: its earlier spans,
 * and the last from the cordon to the uncordon, else to the ticket's close (a node left cordoned
 * after a human closed the ticket is the human's from then), else to now.
 */
export function cordonedMsOf(t: Ticket, nowMs: number): number {
  const c = t.cordoned;
  if (c === undefined) return 0;
  const at = Date.parse(c.at);
  const end =
    c.until !== undefined
      ? Date.parse(c.until)
      : !isOpen(t) && t.resolvedTime !== undefined
        ? Date.parse(t.resolvedTime)
        : nowMs;
  const span = Number.isFinite(at) && Number.isFinite(end) ? Math.max(0, end - at) : 0;
  return (c.ms ?? 0) + span;
}

/** `past` of a ticket opened after `previous` (its own past with `previous` folded in). */
export function foldPast(previous: Ticket): NonNullable<Ticket['past']> {
  const p = previous.past;
  const out: NonNullable<Ticket['past']> = {
    tickets: (p?.tickets ?? 0) + 1,
    since: p?.since ?? previous.creationTime,
    opened: [...(p?.opened ?? []), previous.creationTime].slice(-PAST_OPENED_MAX),
  };
  const add = (
    key:
      | 'autoRepairs'
      | 'autoRepairSeconds'
      | 'humanRepairs'
      | 'humanRepairSeconds'
      | 'cordonedSeconds',
    v: number,
  ): void => {
    const sum = (p?.[key] ?? 0) + v;
    if (sum > 0) out[key] = sum;
  };
  const r = repairOf(previous);
  add('autoRepairs', r?.by === 'aegis' ? 1 : 0);
  add('autoRepairSeconds', r?.by === 'aegis' ? r.seconds : 0);
  add('humanRepairs', r?.by === 'human' ? 1 : 0);
  add('humanRepairSeconds', r?.by === 'human' ? r.seconds : 0);
  const end = Date.parse(previous.resolvedTime ?? previous.updateTime ?? previous.creationTime);
  add('cordonedSeconds', Math.round(cordonedMsOf(previous, end) / 1000));
  return out;
}

/**
 * A new ticket on a node whose ticket was `previous` (null: none; open tickets are never
 * replaced): sequence numbers, recent remediations and the history in brief carry over.
 */
export function carryOver(previous: Ticket | null, fresh: Ticket): Ticket {
  if (previous === null) return fresh;
  return {
    ...fresh,
    remediations: previous.remediations,
    nextSeq: previous.nextSeq,
    past: foldPast(previous),
  };
}

/** The span of Aegis cordons once a Cordon step begins (a new span after an uncordon). */
export function cordonBegun(t: Ticket, now: string): Ticket['cordoned'] {
  const c = t.cordoned;
  if (c === undefined) return { at: now };
  if (c.until === undefined) return c;
  const span = Math.max(0, Date.parse(c.until) - Date.parse(c.at));
  return { at: now, ms: (c.ms ?? 0) + (Number.isFinite(span) ? span : 0) };
}

/** The span once an Uncordon step succeeded. */
export function cordonEnded(t: Ticket, now: string): Ticket['cordoned'] {
  const c = t.cordoned;
  if (c === undefined || c.until !== undefined) return c;
  return { ...c, until: now };
}
