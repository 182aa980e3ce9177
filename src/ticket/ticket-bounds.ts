import { createHash } from 'node:crypto';
import { ErrorCode, HealError } from '../core/errors.js';
import type { Ticket, Workflow } from './ticket.js';

/**
 * Fitting a ticket into its annotation budget. Every field is bounded, so no single one (a 10 KB
 * reason, 200 lines of diagnosis output, 100 active conditions, a plug-in's long parameters) can
 * crowd out the others or make the ticket unwritable. Levels are tried in order, each tighter than
 * the one before, and the first whose rendering fits is written:
 *
 * - free text (reason, whySRE, conclusion, messages, supervisor) keeps its head, then a marker
 *   with its original size and a digest: `… [10240 bytes, sha256:0123456789ab]`;
 * - identifiers (condition names, actions, parameters, boot ids) keep their head and a hash, so
 *   distinct values stay distinct;
 * - diagnosis results keep their first and last lines around `… 134 of 150 lines omitted …`, the
 *   entry says how many lines the output had and which Job printed it (`kubectl logs job/<name>`);
 * - old workflow entries fold into the `Action/Status` counters (budgets stay exact), a Running
 *   entry is never folded while any other entry is left;
 * - list entries left out (history, diagnosis) are counted in `omitted`.
 *
 * The last level keeps only what the engine needs to act safely (status, supervisor, times, the
 * Running step, counters, remediations), in printable ASCII, and fits by construction (see
 * ticket.test.ts, which throws adversarial tickets at it); TICKET_TOO_LARGE remains only as a
 * guard.
 *
 * Also: `updateTime` is never before `resolvedTime` (a write that resolves a ticket updates it).
 */

/** How tight one level is. Sizes are UTF-8 bytes. */
interface Level {
  /** reason, whySRE, conclusion. */
  readonly text: number;
  readonly supervisor: number;
  /** Condition names, actions, parameter values, boot ids. */
  readonly ident: number;
  readonly message: number;
  /** Workflow entries kept verbatim before folding stops (Running entries are always kept). */
  readonly keepWorkflows: number;
  /** Parameters of steps that are no longer Running are dropped. */
  readonly dropDoneParams: boolean;
  /** Parameters kept per step. */
  readonly params: number;
  readonly diagnosis: number;
  readonly hint: number;
  readonly result: number;
  readonly conditions: number;
  /** History entries kept: the first (the condition the ticket was opened for) and the latest. */
  readonly history: number;
  readonly remediations: number;
  readonly counters: number;
  /** Marker counters kept (`Diagnosed:<condition>`). */
  readonly markers: number;
  /** Only printable ASCII in free text (bounds what YAML escaping can add). */
  readonly ascii: boolean;
}

const LEVELS: readonly Level[] = [
  {
    text: 512,
    supervisor: 256,
    ident: 128,
    message: 200,
    keepWorkflows: 6,
    dropDoneParams: false,
    params: 8,
    diagnosis: 4,
    hint: 160,
    result: 1200,
    conditions: 64,
    history: 16,
    remediations: 16,
    counters: 64,
    markers: 32,
    ascii: false,
  },
  {
    text: 256,
    supervisor: 256,
    ident: 128,
    message: 120,
    keepWorkflows: 6,
    dropDoneParams: false,
    params: 8,
    diagnosis: 2,
    hint: 100,
    result: 600,
    conditions: 24,
    history: 8,
    remediations: 16,
    counters: 64,
    markers: 32,
    ascii: false,
  },
  {
    text: 160,
    supervisor: 256,
    ident: 128,
    message: 60,
    keepWorkflows: 3,
    dropDoneParams: true,
    params: 8,
    diagnosis: 1,
    hint: 60,
    result: 300,
    conditions: 8,
    history: 4,
    remediations: 10,
    counters: 48,
    markers: 16,
    ascii: false,
  },
  {
    text: 96,
    supervisor: 128,
    ident: 64,
    message: 40,
    keepWorkflows: 0,
    dropDoneParams: true,
    params: 4,
    diagnosis: 0,
    hint: 0,
    result: 0,
    conditions: 2,
    history: 2,
    remediations: 10,
    counters: 12,
    markers: 4,
    ascii: true,
  },
];

/** Longest parameter name. */
const MAX_PARAM_NAME = 32;
/** Longest time string kept as written (longer ones are rewritten as RFC 3339). */
const MAX_TIME = 40;
/** Longest line of a diagnosis excerpt. */
const MAX_LINE = 240;

/** How the codec renders a ticket and folds workflow entry `i` into its counters. */
export interface TicketCodec {
  render(t: Ticket): string;
  fold(t: Ticket, i: number): Ticket;
}

/** The text of `ticket` within `maxBytes`, at the first level that fits. */
export function fitTicket(ticket: Ticket, maxBytes: number, codec: TicketCodec): string {
  const base = withTimes(ticket);
  const fits = (text: string): boolean => byteLength(text) <= maxBytes;
  // Entries folded at a looser level are folded at once at the next (the order of folding does
  // not depend on the level); the fewest further folds that fit are found by bisection, so a long
  // ticket costs a few renders, not one per entry.
  let folds = 0;
  let last = '';
  for (const level of LEVELS) {
    const bounded = bound(base, level);
    const at = (k: number): { ticket: Ticket; folded: number } =>
      foldTimes(bounded, k, level, codec);
    const start = at(folds);
    folds = start.folded;
    let text = codec.render(start.ticket);
    if (fits(text)) return text;
    const most = at(Number.MAX_SAFE_INTEGER);
    text = codec.render(most.ticket);
    if (!fits(text)) {
      folds = most.folded;
      last = text;
      continue;
    }
    let lo = folds; // does not fit
    let hi = most.folded; // fits
    let best = text;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      const candidate = codec.render(at(mid).ticket);
      if (fits(candidate)) {
        hi = mid;
        best = candidate;
      } else lo = mid;
    }
    return best;
  }
  throw new HealError(
    ErrorCode.TicketTooLarge,
    `ticket for ${clipIdent(ticket.condition, 64)} is ${byteLength(last)} bytes at its most compact (limit ${maxBytes})`,
  );
}

/** Bytes of `s` in UTF-8. */
export function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * Free text within `max` bytes: itself when it fits, else its head, `…`, and a marker with the
 * original size and digest. Clipping a clipped text keeps the original's marker.
 */
export function clipText(s: string, max: number): string {
  if (byteLength(s) <= max) return s;
  const m = TEXT_MARKER.exec(s);
  const body = m === null ? s : s.slice(0, m.index);
  const marker =
    m === null
      ? ` [${byteLength(s)} bytes, sha256:${digest(s)}]`
      : ` [${m[1]} bytes, sha256:${m[2]}]`;
  const room = max - byteLength(marker) - byteLength(ELLIPSIS);
  return `${cutBytes(body.endsWith(ELLIPSIS) ? body.slice(0, -ELLIPSIS.length) : body, Math.max(0, room))}${ELLIPSIS}${marker}`;
}

/**
 * Multi-line output within `max` bytes: its first and last lines around a line saying how many
 * of `total` were left out. Re-excerpting an excerpt counts against the original total.
 */
export function excerptLines(text: string, max: number, total?: number): string {
  if (byteLength(text) <= max) return text;
  const lines = text.split('\n').filter((l) => !LINES_MARKER.test(l));
  const all = total ?? lines.length;
  const head: string[] = [];
  const tail: string[] = [];
  let used = 0;
  const markerOf = (kept: number): string =>
    `${ELLIPSIS} ${all - kept} of ${all} lines omitted ${ELLIPSIS}`;
  const budget = max - byteLength(markerOf(0)) - 2;
  for (let i = 0, j = lines.length - 1; i <= j;) {
    const fromHead = head.length <= tail.length;
    const line = cutBytes(lines[fromHead ? i : j] ?? '', MAX_LINE);
    const cost = byteLength(line) + 1;
    if (used + cost > budget) break;
    used += cost;
    if (fromHead) {
      head.push(line);
      i++;
    } else {
      tail.unshift(line);
      j--;
    }
  }
  return [...head, markerOf(head.length + tail.length), ...tail].join('\n');
}

const ELLIPSIS = '…';
const TEXT_MARKER = / \[(\d+) bytes, sha256:([0-9a-f]{12})\]$/;
const LINES_MARKER = /^… \d+ of \d+ lines omitted …$/;

/** An identifier within `max` bytes: itself, or its head and a hash of the whole (`head~hash`). */
function clipIdent(s: string, max: number): string {
  if (byteLength(s) <= max) return s;
  const hash = digest(s).slice(0, 8);
  return `${cutBytes(s, Math.max(0, max - hash.length - 1))}~${hash}`;
}

function digest(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 12);
}

/** The longest prefix of `s` within `max` UTF-8 bytes, never splitting a character. */
function cutBytes(s: string, max: number): string {
  if (s.length * 3 <= max || byteLength(s) <= max) return s;
  // A UTF-16 unit is at most 3 bytes: the cut lies between max/3 and max units; bisect it.
  let lo = Math.floor(max / 3);
  let hi = Math.min(s.length, max + 1);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (byteLength(s.slice(0, mid)) <= max) lo = mid;
    else hi = mid;
  }
  const code = s.charCodeAt(lo - 1);
  // Never end on the first half of a surrogate pair.
  return code >= 0xd800 && code <= 0xdbff ? s.slice(0, lo - 1) : s.slice(0, lo);
}

/**
 * Printable ASCII (and the excerpt's `…`) only, for the last level: YAML escapes cannot multiply
 * its size. Applied after clipping, so markers describe the original.
 */
function toAscii(s: string): string {
  return s.replace(/[^\x20-\x7e…]/g, '?');
}

/** Times as written unless absurdly long; `updateTime` never before `resolvedTime`. */
function withTimes(t: Ticket): Ticket {
  const time = (s: string): string =>
    s.length <= MAX_TIME ? s : new Date(Date.parse(s)).toISOString();
  const out: Ticket = {
    ...t,
    creationTime: time(t.creationTime),
    remediations: t.remediations.map(time),
  };
  if (t.updateTime !== undefined) out.updateTime = time(t.updateTime);
  if (t.past !== undefined)
    out.past = { ...t.past, since: time(t.past.since), opened: t.past.opened.map(time) };
  if (t.cordoned !== undefined)
    out.cordoned = {
      ...t.cordoned,
      at: time(t.cordoned.at),
      ...(t.cordoned.until === undefined ? {} : { until: time(t.cordoned.until) }),
    };
  if (t.resolvedTime !== undefined) {
    out.resolvedTime = time(t.resolvedTime);
    if (out.updateTime === undefined || Date.parse(out.updateTime) < Date.parse(out.resolvedTime))
      out.updateTime = out.resolvedTime;
  }
  if (t.workflows.some((w) => (w.time?.length ?? 0) > MAX_TIME || (w.end?.length ?? 0) > MAX_TIME))
    out.workflows = t.workflows.map((w) => ({
      ...w,
      ...(w.time === undefined ? {} : { time: time(w.time) }),
      ...(w.end === undefined ? {} : { end: time(w.end) }),
    }));
  return out;
}

/** Every field of `t` within the level's bounds (no folding yet). */
function bound(t: Ticket, level: Level): Ticket {
  const text = (s: string, max: number): string => asciiIf(level, clipText(s, max));
  const ident = (s: string): string => clipIdentOf(s, level);
  const omitted = { ...t.omitted };
  const out: Ticket = {
    ...t,
    condition: ident(t.condition),
    reason: text(t.reason, level.text),
    supervisor: boundSupervisor(t.supervisor, level),
    conditions: boundConditions(t, level).map(ident),
    history: keepEnds(t.history, level.history, omitted, 'history').map(ident),
    workflows: boundWorkflows(t.workflows, level),
    counters: boundCounters(t.counters, level),
    remediations: t.remediations.slice(-level.remediations),
  };
  if (t.past !== undefined)
    out.past = { ...t.past, opened: t.past.opened.slice(-Math.min(level.remediations, 10)) };
  if (t.whySRE !== undefined) out.whySRE = text(t.whySRE, level.text);
  if (t.conclusion !== undefined) out.conclusion = text(t.conclusion, level.text);
  if (t.diagnosis !== undefined) {
    const kept = level.diagnosis === 0 ? [] : t.diagnosis.slice(-level.diagnosis);
    const dropped = t.diagnosis.length - kept.length;
    if (dropped > 0) omitted.diagnosis = (omitted.diagnosis ?? 0) + dropped;
    if (kept.length === 0) delete out.diagnosis;
    else out.diagnosis = kept.map((d) => boundDiagnosis(d, level));
  }
  if (Object.keys(omitted).length > 0) out.omitted = omitted;
  return out;
}

/**
 * A human's name stays a human's: a clipped one ends in a marker, and `?` replaces characters
 * only at the last level, so it never becomes `aegis` or ''.
 */
function boundSupervisor(s: string, level: Level): string {
  return asciiIf(level, clipText(s, level.supervisor));
}

type Diagnosis = NonNullable<Ticket['diagnosis']>[number];

function boundDiagnosis(d: Diagnosis, level: Level): Diagnosis {
  const lines = d.lines ?? d.result.split('\n').length;
  const result = excerptLines(d.result, level.result, lines);
  return {
    ...d,
    hint: clipText(d.hint, level.hint),
    cmd: clipText(d.cmd, level.hint),
    result,
    ...(d.job === undefined ? {} : { job: clipIdent(d.job, level.ident) }),
    ...(result === d.result && d.lines === undefined ? {} : { lines }),
  };
}

/**
 * Active conditions: the ones the ticket serves first (its condition, its steps'), then the rest
 * in order, up to the level's count.
 */
function boundConditions(t: Ticket, level: Level): string[] {
  if (t.conditions.length <= level.conditions) return [...t.conditions];
  const served = new Set([t.condition, ...t.workflows.map((w) => w.condition ?? '')]);
  const nameOf = (key: string): string => key.split('/')[0] ?? key;
  const first = t.conditions.filter((c) => served.has(nameOf(c))).slice(0, level.conditions);
  const chosen = new Set(first);
  for (const c of t.conditions) {
    if (chosen.size >= level.conditions) break;
    chosen.add(c);
  }
  return t.conditions.filter((c) => chosen.has(c));
}

/** The first entry and the latest ones, `n` in all; the rest are counted in `omitted[key]`. */
function keepEnds(
  list: readonly string[],
  n: number,
  omitted: NonNullable<Ticket['omitted']>,
  key: 'history',
): string[] {
  if (list.length <= n) return [...list];
  omitted[key] = (omitted[key] ?? 0) + list.length - n;
  return n <= 1 ? list.slice(0, n) : [...list.slice(0, 1), ...list.slice(list.length - n + 1)];
}

function boundWorkflows(list: readonly Workflow[], level: Level): Workflow[] {
  return list.map((w) => {
    const out: Workflow = { ...w, action: clipIdentOf(w.action, level) };
    if (w.message !== undefined) out.message = asciiIf(level, clipText(w.message, level.message));
    if (w.condition !== undefined) out.condition = clipIdentOf(w.condition, level);
    if (w.bootId !== undefined) out.bootId = clipIdentOf(w.bootId, level);
    if (w.params !== undefined) {
      if (level.dropDoneParams && w.status !== 'Running') delete out.params;
      else
        out.params = Object.fromEntries(
          Object.entries(w.params)
            .slice(0, level.params)
            .map(([k, v]) => [asciiIf(level, clipIdent(k, MAX_PARAM_NAME)), clipIdentOf(v, level)]),
        );
    }
    return out;
  });
}

function clipIdentOf(s: string, level: Level): string {
  return asciiIf(level, clipIdent(s, level.ident));
}

function asciiIf(level: Level, s: string): string {
  return level.ascii ? toAscii(s) : s;
}

/**
 * Counters with bounded keys. Step keys (`Action/Status`) too long (or not printable ASCII at the
 * last level), and beyond the level's count the longest ones, merge into `Other/<status>`: totals
 * per status stay exact, and the short keys of the built-in actions are the last to merge. Other
 * keys are markers (`Diagnosed:<condition>`): kept while they fit, shortest first, up to the
 * level's count (one left out costs a repeated diagnosis, never a repeated remediation).
 */
function boundCounters(c: Readonly<Record<string, number>>, level: Level): Record<string, number> {
  const entries = Object.entries(c);
  const keyLimit = level.ascii ? 40 : level.ident;
  const fits = (k: string): boolean =>
    byteLength(k) <= keyLimit && (!level.ascii || !/[^\x20-\x7e]/.test(k));
  const steps = entries.filter(([k]) => k.includes('/'));
  const markers = entries.filter(([k]) => !k.includes('/'));
  if (
    entries.every(([k]) => fits(k)) &&
    steps.length <= level.counters &&
    markers.length <= level.markers
  )
    return { ...c };
  const shortest = (list: [string, number][], n: number): Set<string> =>
    new Set(
      list
        .map(([k]) => k)
        .filter(fits)
        .sort((a, b) => a.length - b.length || (a < b ? -1 : 1))
        .slice(0, n),
    );
  const fitting = steps.filter(([k]) => fits(k));
  // Room for the merged keys: one per step status, and one for anything else.
  const room =
    fitting.length + (fitting.length < steps.length ? 6 : 0) <= level.counters
      ? fitting.length
      : Math.max(0, level.counters - 6);
  const keep = shortest(steps, room);
  const out: Record<string, number> = {};
  for (const [k, n] of steps) {
    const status = k.slice(k.lastIndexOf('/') + 1);
    const key = keep.has(k) ? k : `Other/${STATUS_WORD.test(status) ? status : 'Unknown'}`;
    out[key] = (out[key] ?? 0) + n;
  }
  const keptMarkers = shortest(markers, level.markers);
  for (const [k, n] of markers) if (keptMarkers.has(k)) out[k] = n;
  return out;
}

const STATUS_WORD = /^(Running|Succeeded|Failed|Canceled|Held)$/;

/**
 * Folds up to `k` workflow entries into the counters, oldest first: entries that are not Running
 * while more than the level keeps remain; at the last level, every entry that is not Running, then
 * every Running one but the newest. Returns the ticket and how many were folded.
 */
function foldTimes(
  t: Ticket,
  k: number,
  level: Level,
  codec: TicketCodec,
): { ticket: Ticket; folded: number } {
  let current = t;
  let folded = 0;
  while (folded < k) {
    const keep = level.keepWorkflows;
    if (current.workflows.length <= keep) break;
    let i = current.workflows.findIndex((w) => w.status !== 'Running');
    if (i === -1) {
      if (keep > 0 || current.workflows.length <= 1) break;
      i = 0;
    }
    current = codec.fold(current, i);
    folded++;
  }
  if (folded === 0) return { ticket: t, folded };
  return { ticket: { ...current, counters: boundCounters(current.counters, level) }, folded };
}
