/**
 * Reliability figures an SRE reports upward, per node and per node group, computed from the
 * tickets alone (each ticket carries its node's earlier tickets in brief: src/ticket/ticket-past.ts),
 * so they survive restarts and leadership changes:
 *
 * - incidents: tickets opened on the node (earlier ones and the current one);
 * - MTBI: mean time between two consecutive ticket openings on one node (nodes with two or more);
 * - time to repair, split by who closed the ticket: automation (`aegis`) or a human (`human`);
 * - GPU-hours lost while Aegis kept the node cordoned (its GPUs × the cordoned time);
 * - lemon nodes: at least `lemonTickets` tickets opened within `lemonWindowMs` (repeat offenders
 *   across tickets; the repeat-offender rule of the runner counts remediations within one).
 *
 * Pure computation plus `ReliabilityRecorder`, which the controller feeds from the ticket walk it
 * already does every cycle (its fleet metrics) and which sets the `aegis_reliability_*` gauges.
 */
import type { NodeInfo } from '../core/types.js';
import type { Metrics } from '../metrics/metrics.js';
import { cordonedMsOf, repairOf, type RepairedBy } from '../ticket/ticket-past.js';
import type { Ticket } from '../ticket/ticket.js';

/** The `reliability` config section (src/config/schema.ts). */
export interface ReliabilityOptions {
  readonly gpuCountLabel: string;
  readonly gpusPerNode: number;
  readonly lemonTickets: number;
  readonly lemonWindowMs: number;
}

/** Group label value of nodes without a node-group label. */
export const NO_GROUP = 'none';

/** Repairs closed by one kind of closer: how many, and their total time open. */
export interface Repairs {
  readonly count: number;
  readonly seconds: number;
}

/** One node's figures. */
export interface NodeReliability {
  readonly node: string;
  readonly group: string;
  readonly incidents: number;
  /** Sum of the intervals between consecutive openings, and their number (incidents - 1). */
  readonly intervalSeconds: number;
  readonly intervals: number;
  /** Mean of those intervals; undefined with fewer than two incidents. */
  readonly mtbiSeconds: number | undefined;
  readonly repairs: Readonly<Record<RepairedBy, Repairs>>;
  readonly lostGpuHours: number;
  /** Tickets opened within the lemon window. */
  readonly recentIncidents: number;
  readonly lemon: boolean;
}

/** One node group's figures (nodes with at least one ticket). */
export interface GroupReliability {
  readonly group: string;
  readonly nodes: number;
  readonly incidents: number;
  /** Mean interval between consecutive incidents on one node, over the group's nodes. */
  readonly mtbiSeconds: number | undefined;
  readonly repairs: Readonly<Record<RepairedBy, Repairs>>;
  readonly lostGpuHours: number;
  readonly lemons: number;
}

/** The GPUs of a node: its GPU-count label when it is a whole number, else the default. */
export function gpusOf(labels: Readonly<Record<string, string>>, o: ReliabilityOptions): number {
  const v = labels[o.gpuCountLabel];
  if (v !== undefined && /^\d{1,4}$/.test(v)) return Number(v);
  return o.gpusPerNode;
}

/** One node's figures from its ticket (the current one, open or closed, and its `past`). */
export function nodeReliability(
  input: { node: string; group: string; gpus: number; ticket: Ticket },
  nowMs: number,
  o: ReliabilityOptions,
): NodeReliability {
  const t = input.ticket;
  const p = t.past;
  const incidents = (p?.tickets ?? 0) + 1;
  const first = Date.parse(p?.since ?? t.creationTime);
  const last = Date.parse(t.creationTime);
  const intervals = incidents - 1;
  const intervalSeconds =
    intervals > 0 && Number.isFinite(first) && Number.isFinite(last)
      ? Math.max(0, (last - first) / 1000)
      : 0;
  const current = repairOf(t);
  const repairs: Record<RepairedBy, Repairs> = {
    aegis: {
      count: (p?.autoRepairs ?? 0) + (current?.by === 'aegis' ? 1 : 0),
      seconds: (p?.autoRepairSeconds ?? 0) + (current?.by === 'aegis' ? current.seconds : 0),
    },
    human: {
      count: (p?.humanRepairs ?? 0) + (current?.by === 'human' ? 1 : 0),
      seconds: (p?.humanRepairSeconds ?? 0) + (current?.by === 'human' ? current.seconds : 0),
    },
  };
  const cordonedSeconds = (p?.cordonedSeconds ?? 0) + cordonedMsOf(t, nowMs) / 1000;
  const openings = [...(p?.opened ?? []), t.creationTime].map((s) => Date.parse(s));
  const recentIncidents = openings.filter(
    (at) => Number.isFinite(at) && nowMs - at < o.lemonWindowMs,
  ).length;
  return {
    node: input.node,
    group: input.group,
    incidents,
    intervalSeconds,
    intervals,
    mtbiSeconds: intervals > 0 ? intervalSeconds / intervals : undefined,
    repairs,
    lostGpuHours: (cordonedSeconds / 3600) * input.gpus,
    recentIncidents,
    lemon: recentIncidents >= o.lemonTickets,
  };
}

/** The groups' figures from their nodes', groups in name order. */
export function groupReliability(nodes: readonly NodeReliability[]): GroupReliability[] {
  const by = new Map<string, NodeReliability[]>();
  for (const n of nodes) {
    let list = by.get(n.group);
    if (list === undefined) by.set(n.group, (list = []));
    list.push(n);
  }
  const sum = (list: readonly NodeReliability[], f: (n: NodeReliability) => number): number =>
    list.reduce((a, n) => a + f(n), 0);
  return [...by.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([group, list]) => {
      const intervals = sum(list, (n) => n.intervals);
      return {
        group,
        nodes: list.length,
        incidents: sum(list, (n) => n.incidents),
        mtbiSeconds: intervals > 0 ? sum(list, (n) => n.intervalSeconds) / intervals : undefined,
        repairs: {
          aegis: {
            count: sum(list, (n) => n.repairs.aegis.count),
            seconds: sum(list, (n) => n.repairs.aegis.seconds),
          },
          human: {
            count: sum(list, (n) => n.repairs.human.count),
            seconds: sum(list, (n) => n.repairs.human.seconds),
          },
        },
        lostGpuHours: sum(list, (n) => n.lostGpuHours),
        lemons: list.filter((n) => n.lemon).length,
      };
    });
}

/** Sets every `aegis_reliability_*` gauge from scratch (series of departed nodes go). */
export function recordReliability(
  m: Metrics,
  nodes: readonly NodeReliability[],
  groups: readonly GroupReliability[],
): void {
  const gauges = [
    m.reliabilityNodeIncidents,
    m.reliabilityNodeMtbi,
    m.reliabilityNodeMttr,
    m.reliabilityNodeLostGpuHours,
    m.reliabilityLemon,
    m.reliabilityIncidents,
    m.reliabilityMtbi,
    m.reliabilityRepairs,
    m.reliabilityRepairSeconds,
    m.reliabilityLostGpuHours,
    m.reliabilityLemonNodes,
  ];
  for (const g of gauges) g.reset();
  for (const n of nodes) {
    const l = { node: n.node, group: n.group };
    m.reliabilityNodeIncidents.set(l, n.incidents);
    if (n.mtbiSeconds !== undefined) m.reliabilityNodeMtbi.set(l, n.mtbiSeconds);
    for (const by of ['aegis', 'human'] as const) {
      const r = n.repairs[by];
      if (r.count > 0) m.reliabilityNodeMttr.set({ ...l, by }, r.seconds / r.count);
    }
    m.reliabilityNodeLostGpuHours.set(l, n.lostGpuHours);
    m.reliabilityLemon.set(l, n.lemon ? 1 : 0);
  }
  for (const g of groups) {
    const l = { group: g.group };
    m.reliabilityIncidents.set(l, g.incidents);
    if (g.mtbiSeconds !== undefined) m.reliabilityMtbi.set(l, g.mtbiSeconds);
    for (const by of ['aegis', 'human'] as const) {
      m.reliabilityRepairs.set({ ...l, by }, g.repairs[by].count);
      m.reliabilityRepairSeconds.set({ ...l, by }, g.repairs[by].seconds);
    }
    m.reliabilityLostGpuHours.set(l, g.lostGpuHours);
    m.reliabilityLemonNodes.set(l, g.lemons);
  }
}

/**
 * Collects the nodes' tickets during the controller's fleet walk (`add`), then sets the gauges
 * (`flush`). Nodes without a ticket have no series: a fleet that never failed exports nothing.
 * A walk that found the same tickets on the same nodes as the last one recomputes nothing until
 * `refreshMs` has passed (only the open cordons' lost GPU-hours grow meanwhile).
 */
export class ReliabilityRecorder {
  readonly #o: ReliabilityOptions;
  readonly #groupLabel: string;
  readonly #refreshMs: number;
  #walk: { node: string; group: string; gpus: number; ticket: Ticket }[] = [];
  #last: readonly { node: string; group: string; gpus: number; ticket: Ticket }[] = [];
  #lastAtMs = Number.NEGATIVE_INFINITY;
  #nowMs = 0;

  constructor(o: ReliabilityOptions, groupLabel: string, refreshMs = 60_000) {
    this.#o = o;
    this.#groupLabel = groupLabel;
    this.#refreshMs = refreshMs;
  }

  /** Starts a walk at `nowMs`. */
  begin(nowMs: number): void {
    this.#nowMs = nowMs;
    this.#walk = [];
  }

  /** One node of the walk and its readable ticket. */
  add(n: NodeInfo, ticket: Ticket): void {
    const group = n.labels[this.#groupLabel];
    this.#walk.push({
      node: n.name,
      group: group === undefined || group === '' ? NO_GROUP : group,
      gpus: gpusOf(n.labels, this.#o),
      ticket,
    });
  }

  /** Ends the walk: the gauges now say what it found. */
  flush(m: Metrics): void {
    const walk = this.#walk;
    const same =
      walk.length === this.#last.length &&
      walk.every((w, i) => {
        const l = this.#last[i];
        // Parsed tickets are shared per annotation text: the same object is the same ticket.
        return (
          l !== undefined &&
          l.ticket === w.ticket &&
          l.node === w.node &&
          l.group === w.group &&
          l.gpus === w.gpus
        );
      });
    if (same && this.#nowMs - this.#lastAtMs < this.#refreshMs) return;
    this.#last = walk;
    this.#lastAtMs = this.#nowMs;
    const nodes = walk.map((w) => nodeReliability(w, this.#nowMs, this.#o));
    recordReliability(m, nodes, groupReliability(nodes));
  }
}
