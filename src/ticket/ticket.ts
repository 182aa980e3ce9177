import { parseDocument, stringify } from 'yaml';
import { z } from 'zod';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import { fitTicket } from './ticket-bounds.js';

/**
 * The ticket written to the node annotation `aegis.io/ticketing`: the original's fields
 * (condition, reason, supervisor, status, workflows, creationTime) plus timestamps and messages
 * per workflow entry, the set of active conditions, and counters that keep budgets exact when old
 * entries are folded away to bound the annotation's size.
 */

/** Supervisor value while automation owns the ticket. Anything else is a human. */
export const AEGIS_SUPERVISOR = 'aegis';

export const TicketStatus = {
  Created: 'created',
  Assigned: 'assigned',
  Resolving: 'resolving',
  Resolved: 'resolved',
  Closed: 'closed',
} as const;
export type TicketStatus = (typeof TicketStatus)[keyof typeof TicketStatus];

export const StepStatus = {
  Running: 'Running',
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  Canceled: 'Canceled',
  Held: 'Held',
} as const;
export type StepStatus = (typeof StepStatus)[keyof typeof StepStatus];

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not an RFC 3339 time');

const WorkflowSchema = z.strictObject({
  action: z.string().min(1),
  status: z.enum(StepStatus),
  time: isoTime.optional(),
  end: isoTime.optional(),
  message: z.string().optional(),
  /** Sequence number of the step within the ticket; Job names derive from it. */
  seq: z.int().nonnegative().optional(),
  /** Condition the step served. */
  condition: z.string().optional(),
  exitCode: z.int().optional(),
  /** Step parameters (remedy action, diagnose type…), so a resumed step re-creates the same Job. */
  params: z.record(z.string(), z.string()).optional(),
  /** Boot id of the node when a disruptive step began (a resumed step verifies a reboot by it). */
  bootId: z.string().optional(),
  /** Approval mode: who approved this step and when (`<who> at <RFC 3339>`). */
  approvedBy: z.string().max(200).optional(),
  /** Ticket transition the step applies when it succeeds (kept so a resumed step still applies it). */
  then: z.enum(['resolve', 'close', 'assign']).optional(),
  /** The node-group behaviour profile the step was decided under (docs/profiles.md), when set. */
  profile: z.string().max(80).optional(),
});
export type Workflow = z.infer<typeof WorkflowSchema>;

const TicketSchema = z.strictObject({
  condition: z.string(),
  reason: z.string().default(''),
  supervisor: z.string().default(AEGIS_SUPERVISOR),
  status: z.enum(TicketStatus),
  creationTime: isoTime,
  updateTime: isoTime.optional(),
  resolvedTime: isoTime.optional(),
  /** Every condition active on the node, `Name` or `Name/id`, as last recorded. */
  conditions: z.array(z.string()).default([]),
  /** Every condition this ticket has served, in order (history survives a condition change). */
  history: z.array(z.string()).default([]),
  workflows: z.array(WorkflowSchema).default([]),
  /** `Action/Status` -> count of folded-away workflow entries. */
  counters: z.record(z.string(), z.int().nonnegative()).default({}),
  nextSeq: z.int().nonnegative().default(0),
  whySRE: z.string().optional(),
  conclusion: z.string().optional(),
  /**
   * Diagnosis records, latest last. `result` is an excerpt when the output was long: `lines` says
   * how many lines it had, `job` names the Job that printed it (`kubectl logs job/<job>`), and the
   * whole output is in `AegisDiagnosis` Events on the node.
   */
  diagnosis: z
    .array(
      z.strictObject({
        hint: z.string(),
        cmd: z.string(),
        result: z.string(),
        job: z.string().optional(),
        lines: z.int().nonnegative().optional(),
      }),
    )
    .optional(),
  /** How many entries of `history` and `diagnosis` were left out to bound the annotation. */
  omitted: z
    .strictObject({
      history: z.int().nonnegative().optional(),
      diagnosis: z.int().nonnegative().optional(),
    })
    .optional(),
  /** End times of recent disruptive remediations, carried across tickets (repeat-offender rule). */
  remediations: z.array(isoTime).default([]),
  /** Set by Aegis when it cordoned the node itself (so it may uncordon it). */
  cordonedByAegis: z.boolean().default(false),
  /**
   * Lease epoch of the leader that last began a step (the ticket is the lock: an older leader's
   * writes are refused). Absent while leader election is off.
   */
  leaderEpoch: z.int().nonnegative().optional(),
  /**
   * Approval of a step held for it (approval mode): the daemon writes `pending` for the step it
   * holds; an operator (`kubectl aegis approve|dismiss NODE`, the console) sets `approved` or
   * `dismissed` with who and when. An approval serves the one step it names (action + seq-less
   * request time); the next disruptive step needs its own.
   */
  approval: z
    .strictObject({
      action: z.string().min(1),
      state: z.enum(['pending', 'approved', 'dismissed']),
      requestedAt: isoTime,
      reason: z.string().max(300).optional(),
      by: z.string().max(120).optional(),
      at: isoTime.optional(),
    })
    .optional(),
  /** Operator actions on the ticket (takeover, release, ack, approve, dismiss, pause…), newest last, bounded. */
  operatorLog: z
    .array(
      z.strictObject({
        action: z.string().min(1).max(40),
        by: z.string().max(120),
        at: isoTime,
        note: z.string().max(200).optional(),
      }),
    )
    .optional(),
  /**
   * The domain incident this node is a member of (src/engine/domains.ts): its record (ConfigMap
   * `name` in the controller's namespace), domain (`leaf/leaf-002`), rule and start; `released`
   * once the domain recovered and the node went back to its own ladder.
   */
  incident: z
    .strictObject({
      name: z.string().min(1).max(63),
      domain: z.string().min(1).max(80),
      rule: z.string().min(1).max(40),
      since: isoTime,
      released: isoTime.optional(),
    })
    .optional(),
  /**
   * When Aegis cordoned the node for this ticket (its Cordon step began) and uncordoned it (the
   * Uncordon step succeeded); `ms`: earlier cordoned spans of this ticket. The GPU-hours lost
   * while cordoned are computed from it (src/engine/reliability.ts).
   */
  cordoned: z
    .strictObject({
      at: isoTime,
      until: isoTime.optional(),
      ms: z.int().nonnegative().optional(),
    })
    .optional(),
  /**
   * The node's earlier tickets in brief, carried into each new ticket (src/ticket/ticket-past.ts),
   * so reliability figures survive restarts and the replacement of closed tickets: how many, when
   * the first was opened, the latest openings (at most PAST_OPENED_MAX), repairs closed by
   * automation and by humans (count, total seconds open), seconds Aegis kept the node cordoned.
   */
  past: z
    .strictObject({
      tickets: z.int().nonnegative(),
      since: isoTime,
      opened: z.array(isoTime).default([]),
      autoRepairs: z.int().nonnegative().optional(),
      autoRepairSeconds: z.int().nonnegative().optional(),
      humanRepairs: z.int().nonnegative().optional(),
      humanRepairSeconds: z.int().nonnegative().optional(),
      cordonedSeconds: z.int().nonnegative().optional(),
    })
    .optional(),
  /** The ticket in an external system (webhook, Jira, ServiceNow), written back by its adapter. */
  external: z
    .array(
      z.strictObject({
        system: z.string().min(1).max(40),
        id: z.string().min(1).max(120),
        url: z.string().max(300).optional(),
      }),
    )
    .optional(),
});
export type Ticket = z.infer<typeof TicketSchema>;

/**
 * Bound of the annotation, in UTF-8 bytes (the original failed every write above 4096). Every
 * field is bounded and old workflow entries fold into counters so a ticket always fits: see
 * ticket-bounds.ts.
 */
export const MAX_TICKET_BYTES = 3500;

/**
 * Tickets already parsed, by annotation text. One ticket is read many times (every cycle that
 * decides for its node, every read-modify-write of a step), and YAML plus the schema cost ~0.7 ms
 * a read: in a storm of 100 faults that was ~0.25 s of the daemon's main thread. Entries are
 * deep-frozen (callers copy before they change, as they must with any ticket), the oldest go first
 * beyond PARSED_TICKETS_MAX (~1.2 KB of text and ~3 KB of objects each). Corrupt text is never kept.
 */
const parsedTickets = new Map<string, Ticket>();
const PARSED_TICKETS_MAX = 1024;

/**
 * Parses an annotation value. Throws TICKET_CORRUPT naming the node and the problem; a corrupt
 * ticket is reported and never overwritten. The result is frozen (shared between readers).
 */
export function parseTicket(raw: string, node: string): Ticket {
  const hit = parsedTickets.get(raw);
  if (hit !== undefined) return hit;
  const ticket = deepFreeze(parseTicketText(raw, node));
  if (parsedTickets.size >= PARSED_TICKETS_MAX) {
    const oldest = parsedTickets.keys().next();
    if (oldest.done !== true) parsedTickets.delete(oldest.value);
  }
  parsedTickets.set(raw, ticket);
  return ticket;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function parseTicketText(raw: string, node: string): Ticket {
  const doc = parseDocument(raw.startsWith('|\n') ? raw.slice(2) : raw);
  if (doc.errors.length > 0) {
    throw new HealError(
      ErrorCode.TicketCorrupt,
      `node ${node}: annotation aegis.io/ticketing is not valid YAML: ${doc.errors[0]?.message ?? ''}`,
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 10 });
  } catch (err) {
    throw new HealError(
      ErrorCode.TicketCorrupt,
      `node ${node}: annotation aegis.io/ticketing cannot be read: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
  const parsed = TicketSchema.safeParse(value);
  if (!parsed.success) {
    throw new HealError(
      ErrorCode.TicketCorrupt,
      `node ${node}: annotation aegis.io/ticketing is not a valid ticket: ${z.prettifyError(parsed.error).replaceAll('\n', '; ')}`,
      { cause: parsed.error },
    );
  }
  return parsed.data;
}

/**
 * Serialises a ticket within MAX_TICKET_BYTES: every field bounded (excerpts keep a digest), old
 * workflow entries folded into counters (budgets stay exact), `updateTime` never before
 * `resolvedTime`. Never fails for size (TICKET_TOO_LARGE is only a guard).
 */
export function serializeTicket(ticket: Ticket): string {
  return fitTicket(ticket, MAX_TICKET_BYTES, { render, fold: foldEntry });
}

function render(ticket: Ticket): string {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ticket)) {
    if (v === undefined) continue;
    if (Array.isArray(v) && v.length === 0 && k !== 'workflows') continue;
    if (k === 'counters' && Object.keys(v as object).length === 0) continue;
    if (k === 'cordonedByAegis' && v === false) continue;
    out[k] = v;
  }
  return stringify(out, { lineWidth: 0 });
}

/** Folds workflow entry `i` into the counters. */
function foldEntry(ticket: Ticket, i: number): Ticket {
  const oldest = ticket.workflows[i];
  if (oldest === undefined) return ticket;
  const rest = ticket.workflows.filter((_, j) => j !== i);
  const key = `${oldest.action}/${oldest.status}`;
  const counters = { ...ticket.counters, [key]: (ticket.counters[key] ?? 0) + 1 };
  // A folded diagnosis still counts as done for its condition (no second diagnose Job).
  const cond = oldest.condition;
  if (oldest.action === 'Diagnose' && !NOT_ATTEMPTED.has(oldest.status) && cond !== undefined)
    counters[diagnosedKey(cond)] = 1;
  return { ...ticket, workflows: rest, counters };
}

/** Counter key marking a condition diagnosed in this ticket once its Diagnose entry is folded. */
export function diagnosedKey(condition: string): string {
  return `Diagnosed:${condition}`;
}

/** Statuses that never count against a budget: the step did not really happen. */
const NOT_ATTEMPTED: ReadonlySet<string> = new Set([StepStatus.Held, StepStatus.Canceled]);

/**
 * Counts workflow entries with this action, folded ones included: of the given status, or, with
 * no status, every attempt (held and canceled entries are not attempts).
 */
export function countSteps(ticket: Ticket, action: string, status?: StepStatus): number {
  const matches = (s: string): boolean =>
    status === undefined ? !NOT_ATTEMPTED.has(s) : s === status;
  let n = 0;
  for (const [key, count] of Object.entries(ticket.counters)) {
    const [a, s = ''] = key.split('/');
    if (a === action && matches(s)) n += count;
  }
  for (const w of ticket.workflows) {
    if (w.action === action && matches(w.status)) n++;
  }
  return n;
}

/** True while the ticket is open (not resolved or closed). */
export function isOpen(ticket: Ticket): boolean {
  return ticket.status !== TicketStatus.Resolved && ticket.status !== TicketStatus.Closed;
}

/** True when automation may act on the node under this ticket. */
export function isAutomationOwned(ticket: Ticket | null): boolean {
  if (ticket === null || !isOpen(ticket)) return true;
  return ticket.supervisor === '' || ticket.supervisor === AEGIS_SUPERVISOR;
}

/** Opens a new ticket. */
export function newTicket(opts: { condition: string; reason: string; nowMs: number }): Ticket {
  return {
    condition: opts.condition,
    reason: opts.reason,
    supervisor: AEGIS_SUPERVISOR,
    status: TicketStatus.Created,
    creationTime: new Date(opts.nowMs).toISOString(),
    conditions: [],
    history: [opts.condition],
    workflows: [],
    counters: {},
    nextSeq: 0,
    remediations: [],
    cordonedByAegis: false,
  };
}
