/**
 * What the console shows, as plain data: each node's cell (its state among CELL_STATES, its
 * place in the topology), the node view (the explanation `kubectl aegis explain` gives, the
 * ticket's whole timeline, Grafana links) and the queue view (what runs, what waits and why,
 * breaker and budgets). Built from the same functions as `kubectl aegis` (src/kubectl/model.ts).
 */
import { findCondition } from '../catalogue/index.js';
import type { Config } from '../config/schema.js';
import type { NodeInfo } from '../core/types.js';
import { DEFAULT_TOPOLOGY_LABELS, placeOf, type TopologyLabels } from '../engine/topology.js';
import { jobName } from '../jobs/job-name.js';
import { JobKind } from '../k8s/cluster.js';
import {
  explain,
  parseHold,
  summarise,
  viewNode,
  type Explanation,
  type FleetSummary,
  type NodeView,
  type SiteContext,
} from '../kubectl/model.js';
import type { FleetSnapshot } from '../notify/alerts.js';
import { bucketOf } from '../priority/priority-table.js';
import { Action } from '../sop/sop.js';
import { isOpen, type Ticket } from '../ticket/ticket.js';

/** The states of a cell, in the legend's order; the wire carries the index. */
export const CELL_STATES = [
  'healthy',
  'faulty',
  'cordoned-aegis',
  'held',
  'human',
  'cordoned-hand',
  'stale',
  'paused',
  'opted-out',
  'corrupt',
] as const;
export type CellState = (typeof CELL_STATES)[number];

/** Each state's words (the legend, the cell's label) and one-letter glyph. */
export const CELL_TEXT: Readonly<
  Record<CellState, { label: string; glyph: string; help: string }>
> = {
  healthy: { label: 'Healthy', glyph: '', help: 'no open ticket, schedulable' },
  faulty: { label: 'Faulty', glyph: 'F', help: 'open ticket, Aegis is working on it' },
  'cordoned-aegis': {
    label: 'Cordoned by Aegis',
    glyph: 'C',
    help: 'open ticket, cordoned by Aegis',
  },
  held: {
    label: 'Held',
    glyph: 'W',
    help: 'the next step waits: a gate, a budget or an approval',
  },
  human: { label: 'Handed to a human', glyph: 'H', help: 'the ticket is owned by a person' },
  'cordoned-hand': {
    label: 'Cordoned by hand',
    glyph: 'M',
    help: 'cordoned, not by Aegis (or left cordoned after a human closed the ticket)',
  },
  stale: { label: 'Stale data', glyph: '?', help: 'its metrics are stale or missing' },
  paused: { label: 'Paused', glyph: 'P', help: 'aegis.io/pause=true: Aegis takes no step' },
  'opted-out': { label: 'Opted out', glyph: 'X', help: 'labelled aegis.io/disable=true' },
  corrupt: {
    label: 'Ticket unreadable',
    glyph: '!',
    help: 'the ticket annotation cannot be read',
  },
};

/** One node's cell, as sent to the browser: [name, state index, rack, leaf, node group, condition, ready]. */
export type CellRow = readonly [string, number, string, string, string, string, 0 | 1];

/** The cell state of a node. */
export function cellState(view: NodeView, held: boolean, stale: boolean): CellState {
  switch (view.state) {
    case 'TicketCorrupt':
      return 'corrupt';
    case 'OptedOut':
      return 'opted-out';
    case 'Paused':
      return 'paused';
    case 'Human':
      return 'human';
    case 'CordonedByAegis':
      return held ? 'held' : 'cordoned-aegis';
    case 'Faulty':
      return held ? 'held' : 'faulty';
    case 'LeftCordoned':
    case 'CordonedByHand':
      return 'cordoned-hand';
    case 'Healthy':
      return stale ? 'stale' : 'healthy';
  }
}

/** True when the open ticket's next step waits (its last step is Held, or an approval is pending). */
export function isHeld(ticket: Ticket | null): boolean {
  if (ticket === null || !isOpen(ticket)) return false;
  if (ticket.approval?.state === 'pending') return true;
  const last = ticket.workflows.at(-1);
  return last !== undefined && last.status === 'Held';
}

/** What the last cycle of the engine said (holds, breaker, stale signals), by node. */
export interface EngineView {
  readonly atMs: number;
  readonly breakerOpen: boolean;
  readonly holds: ReadonlyMap<string, { gate: string; action: string; reason: string }>;
  readonly stale: ReadonlySet<string>;
}

/** The engine's view from a cycle's snapshot. */
export function engineView(s: FleetSnapshot): EngineView {
  const holds = new Map<string, { gate: string; action: string; reason: string }>();
  for (const n of s.nodes) if (n.hold !== undefined) holds.set(n.name, n.hold);
  return {
    atMs: s.atMs,
    breakerOpen: s.breaker.open,
    holds,
    stale: new Set(s.staleNodes ?? []),
  };
}

/**
 * Rows of the fleet, with a cache of each node's parsed view by resourceVersion (a quiet fleet of
 * 10,000 nodes re-parses nothing).
 */
export class FleetRows {
  readonly #views = new Map<string, { rv: string; view: NodeView }>();
  readonly #keys: TopologyLabels;

  constructor(keys: TopologyLabels = DEFAULT_TOPOLOGY_LABELS) {
    this.#keys = keys;
  }

  /** The node's view (cached while its resourceVersion is the same). */
  view(node: NodeInfo): NodeView {
    const hit = this.#views.get(node.name);
    if (hit !== undefined && hit.rv === node.resourceVersion && hit.rv !== '') return hit.view;
    const view = viewNode(node);
    this.#views.set(node.name, { rv: node.resourceVersion, view });
    return view;
  }

  /** Every node's row, and the views. Forgets nodes that are gone. */
  rows(
    nodes: readonly NodeInfo[],
    engine: EngineView | undefined,
  ): { rows: CellRow[]; views: NodeView[] } {
    const rows: CellRow[] = [];
    const views: NodeView[] = [];
    const seen = new Set<string>();
    for (const n of nodes) {
      seen.add(n.name);
      const v = this.view(n);
      views.push(v);
      const held = isHeld(v.ticket) || engine?.holds.has(n.name) === true;
      const stale = engine?.stale.has(n.name) === true;
      const state = cellState(v, held, stale);
      const place = placeOf(n.labels, this.#keys);
      const t = v.ticket;
      rows.push([
        n.name,
        CELL_STATES.indexOf(state),
        place.rack ?? '',
        place.leaf ?? '',
        place.nodeGroup ?? '',
        t !== null && isOpen(t) ? t.condition : '',
        n.ready === true ? 1 : 0,
      ]);
    }
    if (seen.size !== this.#views.size) {
      for (const name of this.#views.keys()) if (!seen.has(name)) this.#views.delete(name);
    }
    return { rows, views };
  }
}

/** Rows that changed from `before` to `after` (by name), and names that left. */
export function diffRows(
  before: ReadonlyMap<string, CellRow>,
  after: readonly CellRow[],
): { changed: CellRow[]; removed: string[] } {
  const changed: CellRow[] = [];
  const names = new Set<string>();
  for (const r of after) {
    names.add(r[0]);
    const old = before.get(r[0]);
    if (old === undefined || !sameRow(old, r)) changed.push(r);
  }
  const removed: string[] = [];
  for (const name of before.keys()) if (!names.has(name)) removed.push(name);
  return { changed, removed };
}

function sameRow(a: CellRow, b: CellRow): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The Job a step ran, for steps that run one (names as src/jobs/job-name.ts makes them). */
const JOB_OF_ACTION: Readonly<Record<string, JobKind>> = {
  [Action.Diagnose]: JobKind.Diagnose,
  [Action.Remedy]: JobKind.Remedy,
  [Action.Repair]: JobKind.Repair,
  [Action.Healthcheck]: JobKind.Healthcheck,
  [Action.Reboot]: JobKind.Restart,
  [Action.Shutdown]: JobKind.Shutdown,
};

/** One entry of a node's timeline, oldest first. */
export interface TimelineEntry {
  readonly at?: string;
  readonly end?: string;
  readonly kind: 'step' | 'operator' | 'ticket';
  readonly what: string;
  readonly status?: string;
  readonly job?: string;
  readonly exitCode?: number;
  readonly condition?: string;
  readonly message?: string;
  readonly by?: string;
}

/** The ticket's whole timeline: opened, every step (its Job), every operator action, closed. */
export function timeline(node: string, t: Ticket): TimelineEntry[] {
  const out: TimelineEntry[] = [
    {
      at: t.creationTime,
      kind: 'ticket',
      what: 'ticket opened',
      condition: t.condition,
      ...(t.reason === '' ? {} : { message: t.reason }),
    },
  ];
  for (const w of t.workflows) {
    const kind = JOB_OF_ACTION[w.action];
    out.push({
      ...(w.time === undefined ? {} : { at: w.time }),
      ...(w.end === undefined ? {} : { end: w.end }),
      kind: 'step',
      what: `${w.action}${w.seq === undefined ? '' : ` #${w.seq}`}`,
      status: w.status,
      ...(kind === undefined || w.seq === undefined ? {} : { job: jobName(kind, node, w.seq) }),
      ...(w.exitCode === undefined ? {} : { exitCode: w.exitCode }),
      ...(w.condition === undefined ? {} : { condition: w.condition }),
      ...(w.message === undefined ? {} : { message: w.message }),
      ...(w.approvedBy === undefined ? {} : { by: `approved by ${w.approvedBy}` }),
    });
  }
  for (const l of t.operatorLog ?? []) {
    out.push({
      at: l.at,
      kind: 'operator',
      what: l.action,
      by: l.by,
      ...(l.note === undefined ? {} : { message: l.note }),
    });
  }
  if (t.resolvedTime !== undefined) {
    out.push({
      at: t.resolvedTime,
      kind: 'ticket',
      what: `ticket ${t.status}`,
      ...(t.conclusion === undefined ? {} : { message: t.conclusion }),
    });
  }
  // Stable by time; entries without a time keep their place after the one before.
  let last = '';
  const keyed = out.map((e, i) => {
    if (e.at !== undefined) last = e.at;
    return { e, i, t: Date.parse(e.at ?? last) };
  });
  keyed.sort((a, b) => a.t - b.t || a.i - b.i);
  return keyed.map((k) => k.e);
}

/** A Grafana link of the node view. */
export interface Link {
  readonly title: string;
  readonly url: string;
}

/** The node's Grafana links from `console.grafana` (none without a URL). */
export function grafanaLinks(node: string, grafana: Config['console']['grafana']): Link[] {
  if (grafana.url === undefined) return [];
  const base = grafana.url.replace(/\/+$/, '');
  return grafana.dashboards.map((d) => ({
    title: d.title,
    url: `${base}${d.path.replaceAll('{node}', encodeURIComponent(node))}`,
  }));
}

/** The node view as data. */
export interface NodeDetail {
  readonly node: string;
  readonly cell: CellState;
  readonly explanation: Explanation;
  readonly ticket: Ticket | null;
  readonly timeline: readonly TimelineEntry[];
  readonly links: readonly Link[];
  readonly place: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  /** The engine's hold of the last cycle, when one held the node. */
  readonly engineHold?: { gate: string; action: string; reason: string };
  readonly stale: boolean;
}

/** The node view of one node. */
export function nodeDetail(
  node: NodeInfo,
  site: SiteContext,
  engine: EngineView | undefined,
  config: Config,
  keys: TopologyLabels = DEFAULT_TOPOLOGY_LABELS,
): NodeDetail {
  const view = viewNode(node);
  const hold = engine?.holds.get(node.name);
  const stale = engine?.stale.has(node.name) === true;
  const cell = cellState(view, isHeld(view.ticket) || hold !== undefined, stale);
  return {
    node: node.name,
    cell,
    explanation: explain(view, site),
    ticket: view.ticket,
    timeline: view.ticket === null ? [] : timeline(node.name, view.ticket),
    links: grafanaLinks(node.name, config.console.grafana),
    place: { ...placeOf(node.labels, keys) },
    labels: node.labels,
    ...(hold === undefined ? {} : { engineHold: hold }),
    stale,
  };
}

/** A step that waits, and why. */
export interface Waiting {
  readonly node: string;
  readonly action: string;
  readonly gate: string;
  readonly reason: string;
  readonly since?: string;
  readonly condition?: string;
  readonly priority?: number;
  readonly bucket?: string;
}

/** The queue view as data. */
export interface QueueView {
  readonly summary: FleetSummary;
  readonly waiting: readonly Waiting[];
  readonly engine?: { readonly atMs: number; readonly breakerOpen: boolean };
  readonly limits: {
    readonly maxConcurrent: Config['safety']['maxConcurrent'];
    readonly maxPerRack: number;
    readonly maxPerLeaf: number;
    readonly nodeCooldownMs: number;
    readonly stormCooldownMs: number;
  };
}

/** What runs, what waits and why, the breaker and the budgets. */
export function queueView(
  views: readonly NodeView[],
  site: SiteContext,
  engine: EngineView | undefined,
  where: { context: string; server: string },
): QueueView {
  const summary = summarise(views, site, where);
  const byName = new Map(views.map((v) => [v.node.name, v]));
  const waiting: Waiting[] = [];
  const seen = new Set<string>();
  const table = site.priority.value;
  const add = (w: Omit<Waiting, 'condition' | 'priority' | 'bucket'>): void => {
    if (seen.has(w.node)) return;
    seen.add(w.node);
    const t = byName.get(w.node)?.ticket ?? null;
    const condition = t === null ? undefined : (findCondition(t.condition)?.name ?? t.condition);
    const p =
      condition === undefined
        ? undefined
        : (table.get(condition)?.priority ?? findCondition(condition)?.priority);
    waiting.push({
      ...w,
      ...(condition === undefined ? {} : { condition }),
      ...(p === undefined ? {} : { priority: p, bucket: bucketOf(p) }),
    });
  };
  for (const a of summary.steps.approvalsPending)
    add({
      node: a.node,
      action: a.action,
      gate: 'approval',
      reason: a.reason ?? 'awaiting approval',
      ...(a.since === undefined ? {} : { since: a.since }),
    });
  for (const [node, h] of engine?.holds ?? []) add({ node, ...h });
  for (const v of views) {
    const t = v.ticket;
    if (t === null || !isOpen(t)) continue;
    const last = t.workflows.at(-1);
    const hold = last === undefined ? undefined : parseHold(last);
    if (last === undefined || hold === undefined) continue;
    add({
      node: v.node.name,
      action: last.action,
      gate: hold.gate,
      reason: hold.reason,
      ...(last.time === undefined ? {} : { since: last.time }),
    });
  }
  waiting.sort(
    (a, b) => (a.priority ?? Infinity) - (b.priority ?? Infinity) || a.node.localeCompare(b.node),
  );
  const s = site.config.value.safety;
  return {
    summary,
    waiting,
    ...(engine === undefined
      ? {}
      : { engine: { atMs: engine.atMs, breakerOpen: engine.breakerOpen } }),
    limits: {
      maxConcurrent: s.maxConcurrent,
      maxPerRack: s.maxPerRack,
      maxPerLeaf: s.maxPerLeaf,
      nodeCooldownMs: s.nodeCooldownMs,
      stormCooldownMs: s.stormCooldownMs,
    },
  };
}
