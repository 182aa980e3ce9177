/**
 * What happened, incident by incident: a fault (or a hand cordon) on a node opens an incident,
 * the engine's steps and the node's ticket follow it, and it ends healed, cleared, with a human,
 * or still open. Times are offsets from the start of the run (ms).
 */
import type { Touch } from './apply.js';
import type { Sighting, TicketChange } from './observe.js';

/** One step as the report lists it (offset time). */
export interface ActionRecord {
  readonly atMs: number;
  readonly node: string;
  readonly sop: string;
  readonly condition: string;
  readonly action: string;
  readonly status: string;
  readonly message?: string;
  /** The daemon replica that took the step, when the run has more than one (see replicas.ts). */
  readonly replica?: number;
}

/** How an incident ended. */
export type IncidentOutcome =
  | 'healed'
  | 'cleared'
  | 'human'
  | 'cleared before action'
  | 'left alone'
  | 'record only'
  | 'dry-run'
  | 'held'
  | 'open'
  | 'not acted on';

/** One incident. */
export interface Incident {
  readonly node: string;
  /** Conditions injected (or found by the engine), or the operator action that opened it. */
  readonly what: string;
  readonly startMs: number;
  /** When the engine's inspection first saw one of its conditions on the node. */
  readonly detectedAtMs: number | null;
  readonly detectedAfterMs: number | null;
  readonly firstAction: { readonly atMs: number; readonly action: string } | null;
  readonly firstActionAfterMs: number | null;
  readonly endMs: number | null;
  /** Fault to ticket resolved/closed (healed, cleared) or to hand-off (human). */
  readonly durationMs: number | null;
  readonly outcome: IncidentOutcome;
  /** Supervisor of a human outcome, or the plan of a dry-run one. */
  readonly detail: string;
  readonly steps: number;
  readonly reboots: number;
  /** Opened by an engine step on a node with no injected fault or operator action. */
  readonly unprompted: boolean;
}

/** Totals over the run. */
export interface Totals {
  readonly incidents: number;
  readonly byOutcome: Readonly<Partial<Record<IncidentOutcome, number>>>;
  readonly medianDetectMs: number | null;
  readonly medianFirstActionMs: number | null;
  readonly maxFirstActionMs: number | null;
  readonly medianHealMs: number | null;
  readonly maxHealMs: number | null;
  readonly steps: number;
  readonly reboots: number;
  readonly nodesTouched: number;
  readonly unprompted: number;
}

/** Inputs of the summary. */
export interface SummaryInput {
  readonly touches: readonly Touch[];
  readonly actions: readonly ActionRecord[];
  readonly tickets: readonly TicketChange[];
  readonly cleared: readonly {
    readonly atMs: number;
    readonly node: string;
    readonly faultId: string;
  }[];
  readonly sightings: readonly Sighting[];
  /** Whether a condition has an SOP (record-only ones do not). */
  readonly actionable: (condition: string) => boolean;
  /** Why automation leaves a node alone at the end (opt-out label, pause), if it does. */
  readonly parked: (node: string) => string | undefined;
  readonly endMs: number;
}

interface Open {
  node: string;
  what: string[];
  startMs: number;
  first: { atMs: number; action: string } | null;
  plan: string | null;
  held: boolean;
  steps: number;
  reboots: number;
  faults: Set<string>;
  operatorOnly: boolean;
  unprompted: boolean;
}

type Item =
  | { readonly at: number; readonly order: 0; readonly touch: Touch }
  | { readonly at: number; readonly order: 1; readonly step: ActionRecord }
  | { readonly at: number; readonly order: 2; readonly ticket: TicketChange }
  | { readonly at: number; readonly order: 3; readonly clear: { node: string; faultId: string } };

/** Builds the incidents and the totals. */
export function summarize(input: SummaryInput): { incidents: Incident[]; totals: Totals } {
  const items: Item[] = [
    ...input.touches.map((touch): Item => ({ at: touch.atMs, order: 0, touch })),
    ...input.actions.map((step): Item => ({ at: step.atMs, order: 1, step })),
    ...input.tickets.map((ticket): Item => ({ at: ticket.atMs, order: 2, ticket })),
    ...input.cleared.map((c): Item => ({ at: c.atMs, order: 3, clear: c })),
  ];
  items.sort((a, b) => a.at - b.at || a.order - b.order);
  const open = new Map<string, Open>();
  const done: Incident[] = [];
  const close = (o: Open, outcome: IncidentOutcome, endMs: number | null, detail = ''): void => {
    open.delete(o.node);
    const detected = input.sightings.find(
      (s) =>
        s.node === o.node &&
        s.atMs >= o.startMs &&
        (endMs === null || s.atMs <= endMs) &&
        o.what.includes(s.condition),
    );
    done.push({
      node: o.node,
      what: o.what.join(' + '),
      startMs: o.startMs,
      detectedAtMs: detected?.atMs ?? null,
      detectedAfterMs: detected === undefined ? null : detected.atMs - o.startMs,
      firstAction: o.first,
      firstActionAfterMs: o.first === null ? null : o.first.atMs - o.startMs,
      endMs,
      durationMs: endMs === null ? null : endMs - o.startMs,
      outcome,
      detail,
      steps: o.steps,
      reboots: o.reboots,
      unprompted: o.unprompted,
    });
  };
  const start = (node: string, at: number, what: string, patch: Partial<Open> = {}): Open => {
    const o: Open = {
      node,
      what: [what],
      startMs: at,
      first: null,
      plan: null,
      held: false,
      steps: 0,
      reboots: 0,
      faults: new Set(),
      operatorOnly: false,
      unprompted: false,
      ...patch,
    };
    open.set(node, o);
    return o;
  };
  for (const it of items) {
    if (it.order === 0) {
      const t = it.touch;
      let o = open.get(t.node);
      if (t.kind === 'fault') {
        if (o === undefined) o = start(t.node, t.atMs, t.what);
        else if (o.operatorOnly) {
          o.operatorOnly = false;
          o.what = [t.what];
        } else if (!o.what.includes(t.what)) o.what.push(t.what);
        if (t.faultId !== undefined) o.faults.add(t.faultId);
      } else if (t.what === 'cordon' && o === undefined) {
        start(t.node, t.atMs, 'cordoned by hand', { operatorOnly: true });
      }
    } else if (it.order === 1) {
      const s = it.step;
      const real = s.status !== 'Held' && s.status !== 'DryRun';
      let o = open.get(s.node);
      if (o === undefined) {
        // Only a step that starts opens an incident (not the end of one begun before a hand-off).
        if (s.status !== 'Running') continue;
        o = start(s.node, s.atMs, s.condition === '' ? s.action : s.condition, {
          unprompted: true,
        });
      }
      if (s.status === 'Held') o.held = true;
      if (s.status === 'DryRun') o.plan ??= `would ${s.action} at ${clockOf(s.atMs)}`;
      if (!real) continue;
      if (s.status === 'Running') {
        o.steps++;
        o.first ??= { atMs: s.atMs, action: s.action };
      }
      if (s.action === 'Reboot' && s.status === 'Succeeded') o.reboots++;
    } else if (it.order === 2) {
      const t = it.ticket;
      const o = open.get(t.node);
      if (o === undefined || o.operatorOnly) continue;
      if (t.status === 'resolved' || t.status === 'closed')
        close(o, t.status === 'resolved' ? 'healed' : 'cleared', t.atMs);
      else if (t.supervisor !== 'aegis' && t.supervisor !== '')
        close(o, 'human', t.atMs, t.supervisor);
    } else {
      const o = open.get(it.clear.node);
      if (o === undefined) continue;
      o.faults.delete(it.clear.faultId);
      if (o.faults.size === 0 && o.steps === 0 && !o.operatorOnly && o.plan === null) {
        close(
          o,
          o.what.every((w) => !input.actionable(w)) ? 'record only' : 'cleared before action',
          it.at,
        );
      }
    }
  }
  for (const o of [...open.values()]) {
    const parked = input.parked(o.node);
    if (o.steps > 0) close(o, 'open', null);
    else if (o.plan !== null) close(o, 'dry-run', null, o.plan);
    else if (o.operatorOnly || parked !== undefined) close(o, 'left alone', null, parked ?? '');
    else if (o.held) close(o, 'held', null);
    else if (o.what.every((w) => !input.actionable(w))) close(o, 'record only', null);
    else close(o, 'not acted on', null);
  }
  done.sort((a, b) => a.startMs - b.startMs || a.node.localeCompare(b.node));
  return { incidents: done, totals: totals(done, input.actions) };
}

function totals(incidents: readonly Incident[], actions: readonly ActionRecord[]): Totals {
  const byOutcome: Partial<Record<IncidentOutcome, number>> = {};
  for (const i of incidents) byOutcome[i.outcome] = (byOutcome[i.outcome] ?? 0) + 1;
  const first = incidents.flatMap((i) =>
    i.firstActionAfterMs === null ? [] : [i.firstActionAfterMs],
  );
  const heal = incidents.flatMap((i) =>
    i.outcome === 'healed' && i.durationMs !== null ? [i.durationMs] : [],
  );
  const started = actions.filter((a) => a.status === 'Running');
  return {
    incidents: incidents.length,
    byOutcome,
    medianDetectMs: median(
      incidents.flatMap((i) => (i.detectedAfterMs === null ? [] : [i.detectedAfterMs])),
    ),
    medianFirstActionMs: median(first),
    maxFirstActionMs: first.length === 0 ? null : Math.max(...first),
    medianHealMs: median(heal),
    maxHealMs: heal.length === 0 ? null : Math.max(...heal),
    steps: started.length,
    reboots: actions.filter((a) => a.action === 'Reboot' && a.status === 'Succeeded').length,
    nodesTouched: new Set(started.map((a) => a.node)).size,
    unprompted: incidents.filter((i) => i.unprompted).length,
  };
}

function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** `HH:MM:SS` of an offset (`1d 02:00:00` past a day). */
export function clockOf(offsetMs: number): string {
  const total = Math.floor(offsetMs / 1000);
  const days = Math.floor(total / 86_400);
  const rest = total % 86_400;
  const hh = String(Math.floor(rest / 3600)).padStart(2, '0');
  const mm = String(Math.floor((rest % 3600) / 60)).padStart(2, '0');
  const ss = String(rest % 60).padStart(2, '0');
  return `${days > 0 ? `${days}d ` : ''}${hh}:${mm}:${ss}`;
}
