/**
 * Turns timeline events into effects on the simulated world at their virtual times: faults and
 * recoveries through the fault injector, operator actions through the simulated cluster's
 * operator hooks, outages and slow or broken answers through the simulated metrics source and
 * API server. Windows (`for:`) schedule their own end.
 */
import { formatDurationMs } from '../core/duration.js';
import { errorMessage } from '../core/errors.js';
import { TICKET_ANNOTATION } from '../core/types.js';
import type { Signal } from '../catalogue/types.js';
import { LINK_FLAP_CONDITION } from '../sim/faults.js';
import type { ClusterMethod } from '../sim/sim-cluster.js';
import type { SimWorld } from '../sim/sim-world.js';
import { newTicket, serializeTicket, TicketStatus, type Ticket } from '../ticket/ticket.js';
import type { ObservedCluster } from './observe.js';
import type { TimelineAction, TimelineEvent } from './schema.js';

/** Something a human or the world did to a node (for the incident summary). */
export interface Touch {
  readonly atMs: number;
  readonly node: string;
  readonly kind: 'fault' | 'operator';
  /** Condition name of a fault; the operator action otherwise. */
  readonly what: string;
  /** Simulator fault id of a fault. */
  readonly faultId?: string;
}

/** The daemon's replicas, as `restart` and `leader-overlap` act on them (see runner.ts). */
export interface DaemonControl {
  /** Every replica's process ends; a fresh one (no memory, the next lease epoch) leads. */
  restart(): Promise<void>;
  /** A second replica, at the next epoch, leads beside the current one (which keeps believing it does). */
  overlapStart(): Promise<void>;
  /** The older replica of the overlap learns it lost the lease: it stops acting. */
  overlapEnd(): Promise<void>;
}

/** What applying events needs. */
export interface ApplyContext {
  readonly world: SimWorld;
  readonly observed: ObservedCluster;
  readonly signal: AbortSignal;
  readonly daemon: DaemonControl;
  /** Records faults and operator actions. */
  touch(t: Touch): void;
}

/** One effect due at a virtual time. */
export interface Due {
  readonly atMs: number;
  readonly seq: number;
  /** The scenario event, or undefined for the end of a window. */
  readonly event?: TimelineEvent;
  readonly text: string;
  run(ctx: ApplyContext): Promise<string | undefined>;
}

/** Expands the timeline into effects, in time order (events at the same time keep file order). */
export function expandTimeline(timeline: readonly TimelineEvent[], startMs: number): Due[] {
  const out: Due[] = [];
  let seq = 0;
  for (const event of timeline) {
    const atMs = startMs + event.atMs;
    const a = event.action;
    out.push({ atMs, seq: seq++, event, text: describeAction(a), run: (ctx) => apply(a, ctx) });
    const end = windowEnd(a);
    if (end !== undefined)
      out.push({ atMs: atMs + end.afterMs, seq: seq++, text: end.text, run: end.run });
  }
  return out.sort((x, y) => x.atMs - y.atMs || x.seq - y.seq);
}

function windowEnd(
  a: TimelineAction,
): { afterMs: number; text: string; run: (ctx: ApplyContext) => Promise<undefined> } | undefined {
  switch (a.kind) {
    case 'metrics-slow':
      return {
        afterMs: a.forMs,
        text: 'metrics answer at normal speed again',
        run: (ctx) =>
          done(() => {
            ctx.world.metrics.slow(0);
          }),
      };
    case 'api-errors':
      return {
        afterMs: a.forMs,
        text: 'API server errors end',
        run: (ctx) =>
          done(() => {
            ctx.world.cluster.failRate(0);
          }),
      };
    case 'metrics-outage':
      return { afterMs: a.forMs, text: 'Prometheus is back', run: () => done(() => undefined) };
    case 'leader-overlap':
      return {
        afterMs: a.forMs,
        text: 'the older replica finds it lost the lease and stops',
        run: async (ctx) => {
          await ctx.daemon.overlapEnd();
          return undefined;
        },
      };
    case 'api-outage':
      return { afterMs: a.forMs, text: 'API server is back', run: () => done(() => undefined) };
    case 'exporter-down': {
      const { forMs, nodes, signal } = a;
      if (forMs === undefined) return undefined;
      return {
        afterMs: forMs,
        text: `${signal} scraped again on ${nodeList(nodes)}`,
        run: (ctx) =>
          done(() => {
            for (const n of nodes) ctx.world.metrics.freshExporter(n, signal as Signal);
          }),
      };
    }
    case 'fault':
    case 'recover':
    case 'cordon':
    case 'uncordon':
    case 'power-on':
    case 'takeover':
    case 'close-ticket':
    case 'ib-flap':
    case 'restart':
    case 'label':
    case 'annotate':
    case 'metrics-garbage':
    case 'metrics-partial':
    case 'exporter-up':
    case 'api-fail-next':
    case 'jobs':
      return undefined;
  }
}

function done(f: () => void): Promise<undefined> {
  f();
  return Promise.resolve(undefined);
}

/** Applies one action now; returns a note when it did not fully happen (e.g. an API error). */
async function apply(a: TimelineAction, ctx: ApplyContext): Promise<string | undefined> {
  const { world } = ctx;
  const now = world.clock.now();
  // The world as it is now (effects run lazily): a repair acts after the flap due before it.
  world.sync();
  switch (a.kind) {
    case 'fault':
      for (const node of a.nodes) {
        const faultId = world.faults.injectFault({
          condition: a.condition,
          node,
          atMs: now,
          ...(a.device === undefined ? {} : { device: a.device }),
          ...(a.persistence === undefined ? {} : { persistence: a.persistence }),
          ...(a.forMs === undefined ? {} : { durationMs: a.forMs }),
        });
        ctx.touch({ atMs: now, node, kind: 'fault', what: a.condition, faultId });
      }
      return undefined;
    case 'ib-flap':
      for (const node of a.nodes) {
        const faultId = world.faults.injectLinkFlap({
          node,
          device: a.device,
          port: a.port,
          atMs: now,
          count: a.count,
          periodMs: a.periodMs,
          downMs: a.downMs,
          ...(a.persistence === undefined ? {} : { persistence: a.persistence }),
        });
        ctx.touch({ atMs: now, node, kind: 'fault', what: LINK_FLAP_CONDITION, faultId });
      }
      return undefined;
    case 'restart':
      await ctx.daemon.restart();
      return undefined;
    case 'leader-overlap':
      await ctx.daemon.overlapStart();
      return undefined;
    case 'recover': {
      let cleared = 0;
      for (const node of a.nodes) {
        cleared += world.faults.clearWhere(
          node,
          (f) =>
            (a.condition === undefined || f.entry.name === a.condition) &&
            (a.device === undefined || f.device === a.device),
          now,
        ).length;
      }
      return cleared === 0 ? 'no matching active fault' : undefined;
    }
    case 'cordon':
      for (const node of a.nodes) {
        world.cluster.cordonByHand(node);
        ctx.touch({ atMs: now, node, kind: 'operator', what: 'cordon' });
      }
      return undefined;
    case 'uncordon': {
      const failed: string[] = [];
      for (const node of a.nodes) {
        ctx.touch({ atMs: now, node, kind: 'operator', what: 'uncordon' });
        try {
          await world.cluster.setUnschedulable(node, false, ctx.signal);
        } catch (err) {
          failed.push(`${node}: ${errorMessage(err)}`);
        }
      }
      return failed.length === 0 ? undefined : `kubectl uncordon failed (${failed.join('; ')})`;
    }
    case 'power-on':
      for (const node of a.nodes) {
        world.cluster.powerOn(node);
        ctx.touch({ atMs: now, node, kind: 'operator', what: 'power-on' });
      }
      return undefined;
    case 'takeover':
    case 'close-ticket':
      return editTickets(a, ctx, now);
    case 'label':
    case 'annotate':
      for (const node of a.nodes) {
        if (a.kind === 'label') world.cluster.setLabel(node, a.key, a.value);
        else world.cluster.setAnnotation(node, a.key, a.value);
        ctx.touch({
          atMs: now,
          node,
          kind: 'operator',
          what: `${a.value === null ? 'un' : ''}${a.kind} ${a.key}`,
        });
      }
      return undefined;
    case 'metrics-outage':
      world.metrics.outage(now + a.forMs);
      return undefined;
    case 'metrics-slow':
      world.metrics.slow(a.latencyMs);
      return undefined;
    case 'metrics-garbage':
      world.metrics.garbage(a.count);
      return undefined;
    case 'metrics-partial':
      world.metrics.partial(a.count);
      return undefined;
    case 'exporter-down':
    case 'exporter-up':
      for (const n of a.nodes) {
        if (a.kind === 'exporter-down') world.metrics.staleExporter(n, a.signal as Signal, now);
        else world.metrics.freshExporter(n, a.signal as Signal, now);
      }
      return undefined;
    case 'api-outage':
      world.cluster.outage(now + a.forMs);
      return undefined;
    case 'api-errors':
      world.cluster.failRate(a.rate, a.methods === undefined ? {} : { methods: a.methods });
      return undefined;
    case 'api-fail-next':
      for (let i = 0; i < a.count; i++) world.cluster.failNext(a.method as ClusterMethod);
      return undefined;
    case 'jobs':
      for (const node of a.nodes ?? [undefined])
        world.cluster.setJobBehaviour(a.job, a.behaviour, node);
      return undefined;
  }
}

/** A human edits tickets with kubectl: takes one over, or closes it. */
function editTickets(
  a: TimelineAction & { kind: 'takeover' | 'close-ticket' },
  ctx: ApplyContext,
  now: number,
): string | undefined {
  const notes: string[] = [];
  for (const node of a.nodes) {
    const view = ctx.observed.view(node);
    const current = view?.ticket ?? null;
    const open =
      current !== null &&
      current.status !== TicketStatus.Resolved &&
      current.status !== TicketStatus.Closed;
    let next: Ticket;
    if (a.kind === 'takeover') {
      ctx.touch({ atMs: now, node, kind: 'operator', what: `takeover by ${a.supervisor}` });
      const base = open
        ? current
        : {
            ...newTicket({ condition: 'Manual', reason: `opened by ${a.supervisor}`, nowMs: now }),
            remediations: current?.remediations ?? [],
          };
      next = { ...base, supervisor: a.supervisor, updateTime: new Date(now).toISOString() };
    } else {
      ctx.touch({
        atMs: now,
        node,
        kind: 'operator',
        what: `close ticket (${a.status} by ${a.by})`,
      });
      if (!open) {
        notes.push(`${node} has no open ticket`);
        continue;
      }
      const stamp = new Date(now).toISOString();
      next = {
        ...current,
        status: a.status,
        supervisor: a.by,
        updateTime: stamp,
        resolvedTime: stamp,
        conclusion: a.conclusion ?? `${a.status} by ${a.by}`,
      };
    }
    const text = serializeTicket(next);
    ctx.world.cluster.setAnnotation(node, TICKET_ANNOTATION, text);
    if (view !== undefined)
      ctx.observed.observe({
        ...view.info,
        annotations: { ...view.info.annotations, [TICKET_ANNOTATION]: text },
      });
  }
  return notes.length === 0 ? undefined : notes.join('; ');
}

/** What kind of thing a timeline event is, for the live output. */
export type EventCategory = 'fault' | 'operator' | 'outage';

/** The category of an action. */
export function categoryOf(a: TimelineAction): EventCategory {
  if (a.kind === 'fault' || a.kind === 'recover' || a.kind === 'ib-flap') return 'fault';
  if (
    a.kind.startsWith('metrics-') ||
    a.kind.startsWith('api-') ||
    a.kind.startsWith('exporter-') ||
    a.kind === 'jobs' ||
    a.kind === 'restart' ||
    a.kind === 'leader-overlap'
  )
    return 'outage';
  return 'operator';
}

/** `gpu-node-0001`, `gpu-node-0001, gpu-node-0002`, or `12 nodes`. */
export function nodeList(nodes: readonly string[]): string {
  return nodes.length <= 3 ? nodes.join(', ') : `${nodes.length} nodes (${nodes[0] ?? ''} …)`;
}

/** One line saying what an action does, for the live output. */
export function describeAction(a: TimelineAction): string {
  switch (a.kind) {
    case 'fault': {
      const dev = a.device === undefined ? '' : ` device ${a.device}`;
      const life = [
        a.persistence,
        a.forMs === undefined ? undefined : `for ${formatDurationMs(a.forMs)}`,
      ].filter((x) => x !== undefined);
      return `fault ${a.condition} on ${nodeList(a.nodes)}${dev}${life.length === 0 ? '' : ` (${life.join(', ')})`}`;
    }
    case 'recover':
      return `${a.condition ?? 'every fault'} repaired on ${nodeList(a.nodes)}`;
    case 'cordon':
    case 'uncordon':
      return `operator ${a.kind}s ${nodeList(a.nodes)} by hand`;
    case 'power-on':
      return `operator powers on ${nodeList(a.nodes)}`;
    case 'takeover':
      return `${a.supervisor} takes over the ticket of ${nodeList(a.nodes)}`;
    case 'close-ticket':
      return `${a.by} marks the ticket of ${nodeList(a.nodes)} ${a.status}`;
    case 'ib-flap':
      return `IB link ${a.device}/${a.port} of ${nodeList(a.nodes)} flaps ${a.count} times, every ${formatDurationMs(a.periodMs)}, down ${formatDurationMs(a.downMs)} each`;
    case 'restart':
      return 'the Aegis daemon restarts (a fresh process, the next lease epoch)';
    case 'leader-overlap':
      return `a second Aegis replica leads beside the first for ${formatDurationMs(a.forMs)} (both believe they hold the lease)`;
    case 'label':
    case 'annotate':
      return a.value === null
        ? `operator removes ${a.kind} ${a.key} from ${nodeList(a.nodes)}`
        : `operator sets ${a.kind} ${a.key}=${a.value} on ${nodeList(a.nodes)}`;
    case 'metrics-outage':
      return `Prometheus down for ${formatDurationMs(a.forMs)}`;
    case 'metrics-slow':
      return `Prometheus answers in ${formatDurationMs(a.latencyMs)} for ${formatDurationMs(a.forMs)}`;
    case 'metrics-garbage':
      return `next ${a.count} Prometheus answers are malformed`;
    case 'metrics-partial':
      return `next ${a.count} Prometheus answers are partial`;
    case 'exporter-down':
      return `${a.signal} stops being scraped on ${nodeList(a.nodes)}${a.forMs === undefined ? '' : ` for ${formatDurationMs(a.forMs)}`}`;
    case 'exporter-up':
      return `${a.signal} scraped again on ${nodeList(a.nodes)}`;
    case 'api-outage':
      return `API server down for ${formatDurationMs(a.forMs)}`;
    case 'api-errors':
      return `API server fails ${Math.round(a.rate * 100)}% of ${a.methods?.join('/') ?? 'all'} calls for ${formatDurationMs(a.forMs)}`;
    case 'api-fail-next':
      return `next ${a.count} ${a.method} call(s) fail`;
    case 'jobs':
      return a.behaviour === undefined
        ? `${a.job} Jobs behave normally again${a.nodes === undefined ? '' : ` on ${nodeList(a.nodes)}`}`
        : `${a.job} Jobs${a.nodes === undefined ? '' : ` on ${nodeList(a.nodes)}`}: ${Object.entries(
            a.behaviour,
          )
            .map(([k, v]) => `${k}=${String(v)}`)
            .join(', ')}`;
  }
}
