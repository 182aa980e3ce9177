import type { Logger } from '../../engine/logger.js';
import { errorMessage } from '../../core/errors.js';
import type { Metrics } from '../../metrics/metrics.js';
import { isOpen, type Ticket } from '../../ticket/ticket.js';
import type { ExternalRef, TicketAdapter } from './adapter.js';
import { diffTicket, openedEventOf, type TicketEvent } from './events.js';
import { DeliveryError } from './http.js';

/**
 * Delivers ticket events to the configured adapters, never in the controller's way:
 *
 * - `observe(node, ticket)` is synchronous and cheap (an identity check, then a pure diff against
 *   the version seen last); events go to one bounded queue per adapter (`queueSize`; when full, the
 *   oldest queued `step` event makes room, or the new event is dropped, counted either way);
 * - `concurrency` workers per adapter deliver them, one node at a time and in order (an update
 *   never overtakes the create it needs); each request is retried by the adapter with backoff;
 * - an external ticket an adapter creates is written back into the Aegis ticket's `external` list
 *   with one optimistic-concurrency write through the injected `writeBack` port, and kept in
 *   memory until the ticket closes (updates find it even if the write-back failed).
 *
 * The first version of a node seen (after start-up or `reset()`) is a baseline: no events, except
 * an `opened` for an open ticket to each adapter that has no ticket for it yet (catch-up after a
 * restart; the Jira and ServiceNow adapters look for an existing issue before creating one).
 */

/**
 * The write-back port: one optimistic-concurrency read-modify-write of the node's ticket. `mutate`
 * receives the current ticket and returns the ticket to write, or undefined for no write. The lead
 * implements it over `updateTicket` (src/ticket/ticket-store.ts).
 */
export type WriteBack = (node: string, mutate: (t: Ticket) => Ticket | undefined) => Promise<void>;

export interface DispatcherDeps {
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly writeBack: WriteBack;
}

export interface DispatcherOptions {
  /** Events queued per adapter at most. */
  readonly queueSize: number;
  /** Nodes delivered at once per adapter. */
  readonly concurrency: number;
}

export interface TicketDispatcher {
  /**
   * One version of a node's ticket (null: the node has none). Call it for every version seen (node
   * watch events, or every node each cycle: an unchanged ticket costs an identity check). Never
   * blocks, never throws. Call it only while this replica leads.
   */
  observe(node: string, ticket: Ticket | null): void;
  /** Queues events directly (already diffed). Never blocks, never throws. */
  dispatch(events: readonly TicketEvent[]): void;
  /** Forgets the versions seen (leadership changed): the next version of each node is a baseline. */
  reset(): void;
  /** Resolves once every queue is empty and nothing is being delivered (tests, shutdown). */
  idle(): Promise<void>;
  /** Stops: aborts requests and backoffs in flight, drops what is queued; resolves when done. */
  stop(): Promise<void>;
}

interface Lane {
  readonly node: string;
  readonly jobs: TicketEvent[];
  active: boolean;
}

/** Adapter-side state: its queue (lanes by node) and the external tickets it created. */
interface Channel {
  readonly adapter: TicketAdapter;
  readonly lanes: Map<string, Lane>;
  /** Nodes with queued jobs and no worker, in arrival order. */
  readonly ready: string[];
  size: number;
  running: number;
  /** Events dropped since start (logged at powers of two). */
  drops: number;
  /** `<node>\0<creationTime>` -> external ticket, until the ticket's `closed` is delivered. */
  readonly refs: Map<string, ExternalRef>;
  /** Tickets (same keys) whose external id is in the cluster's ticket: no more write-back. */
  readonly written: Set<string>;
}

const MAX_REFS = 50_000;

export function createTicketDispatcher(
  adapters: readonly TicketAdapter[],
  deps: DispatcherDeps,
  opts: DispatcherOptions,
): TicketDispatcher {
  const stopper = new AbortController();
  const seen = new Map<string, Ticket | null>();
  const channels: Channel[] = adapters.map((adapter) => ({
    adapter,
    lanes: new Map(),
    ready: [],
    size: 0,
    running: 0,
    drops: 0,
    refs: new Map(),
    written: new Set(),
  }));
  let idleWaiters: (() => void)[] = [];
  const workers = new Set<Promise<void>>();

  for (const ch of channels) deps.metrics.adapterQueue.set({ adapter: ch.adapter.system }, 0);

  const refKey = (e: TicketEvent): string => `${e.node}\0${e.ticket.creationTime}`;
  const knownRef = (ch: Channel, e: TicketEvent): ExternalRef | undefined =>
    ch.refs.get(refKey(e)) ?? e.ticket.external?.find((x) => x.system === ch.adapter.system);

  const isIdle = (): boolean => channels.every((ch) => ch.size === 0 && ch.running === 0);
  const wakeIdle = (): void => {
    if (!isIdle()) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  const count = (ch: Channel, e: TicketEvent, result: string): void => {
    deps.metrics.adapterEvents.inc({ adapter: ch.adapter.system, event: e.kind, result });
  };

  /** Counts a dropped event; logs the 1st, 2nd, 4th, 8th… drop of the adapter (a long outage). */
  const dropped = (ch: Channel, e: TicketEvent): void => {
    count(ch, e, 'dropped');
    ch.drops++;
    if ((ch.drops & (ch.drops - 1)) === 0)
      deps.log.warn('ticket event dropped: adapter queue full', {
        adapter: ch.adapter.system,
        node: e.node,
        event: e.kind,
        dropped: ch.drops,
      });
  };

  /** Makes room for `e` in a full queue: drops the oldest queued step event, or refuses `e`. */
  const makeRoom = (ch: Channel, e: TicketEvent): boolean => {
    if (ch.size < opts.queueSize) return true;
    if (e.kind !== 'step') {
      for (const lane of ch.lanes.values()) {
        const i = lane.jobs.findIndex((j) => j.kind === 'step');
        if (i >= 0) {
          const [old] = lane.jobs.splice(i, 1);
          ch.size--;
          if (old !== undefined) {
            dropped(ch, old);
          }
          return true;
        }
      }
    }
    dropped(ch, e);
    return false;
  };

  const enqueue = (ch: Channel, e: TicketEvent): void => {
    if (stopper.signal.aborted || !ch.adapter.events.has(e.kind)) return;
    if (!makeRoom(ch, e)) return;
    let lane = ch.lanes.get(e.node);
    if (lane === undefined) {
      lane = { node: e.node, jobs: [], active: false };
      ch.lanes.set(e.node, lane);
    }
    lane.jobs.push(e);
    ch.size++;
    if (!lane.active && !ch.ready.includes(e.node)) ch.ready.push(e.node);
    deps.metrics.adapterQueue.set({ adapter: ch.adapter.system }, ch.size);
    pump(ch);
  };

  const pump = (ch: Channel): void => {
    while (ch.running < opts.concurrency && ch.ready.length > 0 && !stopper.signal.aborted) {
      const node = ch.ready.shift();
      const lane = node === undefined ? undefined : ch.lanes.get(node);
      if (lane === undefined || lane.active) continue;
      lane.active = true;
      ch.running++;
      const worker = drain(ch, lane).finally(() => {
        lane.active = false;
        ch.running--;
        workers.delete(worker);
        if (lane.jobs.length === 0) ch.lanes.delete(lane.node);
        else if (!ch.ready.includes(lane.node)) ch.ready.push(lane.node);
        pump(ch);
        wakeIdle();
      });
      workers.add(worker);
    }
  };

  const drain = async (ch: Channel, lane: Lane): Promise<void> => {
    for (;;) {
      if (stopper.signal.aborted) return;
      const e = lane.jobs.shift();
      if (e === undefined) return;
      ch.size--;
      deps.metrics.adapterQueue.set({ adapter: ch.adapter.system }, ch.size);
      await deliver(ch, e);
    }
  };

  const deliver = async (ch: Channel, e: TicketEvent): Promise<void> => {
    const system = ch.adapter.system;
    const known = knownRef(ch, e);
    let result: { ref?: ExternalRef; skipped?: boolean };
    try {
      result = await ch.adapter.deliver(e, known, stopper.signal);
    } catch (err) {
      if (stopper.signal.aborted) return;
      count(ch, e, 'failed');
      deps.log.warn('ticket event not delivered', {
        adapter: system,
        node: e.node,
        event: e.kind,
        key: e.key,
        ...(err instanceof DeliveryError ? { why: err.kind } : {}),
        err: errorMessage(err),
      });
      return;
    }
    count(ch, e, result.skipped === true ? 'skipped' : 'delivered');
    const ref = result.ref;
    if (e.kind === 'closed') {
      ch.refs.delete(refKey(e));
      ch.written.delete(refKey(e));
    } else if (ref !== undefined && ch.refs.get(refKey(e))?.id !== ref.id) {
      if (ch.refs.size >= MAX_REFS) {
        const oldest = ch.refs.keys().next();
        if (oldest.done !== true) {
          ch.refs.delete(oldest.value);
          ch.written.delete(oldest.value);
        }
      }
      ch.refs.set(refKey(e), ref);
    }
    // Written back once; again at a later event only if that write failed.
    if (
      ref !== undefined &&
      e.kind !== 'closed' &&
      !ch.written.has(refKey(e)) &&
      !(e.ticket.external ?? []).some((x) => x.system === system && x.id === ref.id)
    )
      await writeBack(ch, e, ref);
  };

  /** Records the external ticket in the Aegis ticket it belongs to (never in a newer one). */
  const writeBack = async (ch: Channel, e: TicketEvent, ref: ExternalRef): Promise<void> => {
    const system = ch.adapter.system;
    const entry = {
      system,
      id: ref.id.slice(0, 120),
      ...(ref.url !== undefined && ref.url.length <= 300 ? { url: ref.url } : {}),
    };
    const state = { wrote: false };
    try {
      await deps.writeBack(e.node, (t) => {
        state.wrote = false;
        if (t.creationTime !== e.ticket.creationTime) return undefined;
        const ext = t.external ?? [];
        if (ext.some((x) => x.system === system && x.id === entry.id)) return undefined;
        state.wrote = true;
        return { ...t, external: [...ext.filter((x) => x.system !== system), entry] };
      });
    } catch (err) {
      deps.metrics.adapterWriteBacks.inc({ adapter: system, result: 'error' });
      deps.log.warn('external ticket id not written back', {
        adapter: system,
        node: e.node,
        id: entry.id,
        err: errorMessage(err),
      });
      return;
    }
    ch.written.add(refKey(e));
    deps.metrics.adapterWriteBacks.inc({ adapter: system, result: state.wrote ? 'ok' : 'stale' });
  };

  const dispatch = (events: readonly TicketEvent[]): void => {
    for (const e of events) for (const ch of channels) enqueue(ch, e);
  };

  /** Catch-up at a baseline: `opened` to each adapter with no ticket for this open ticket yet. */
  const baseline = (node: string, ticket: Ticket): void => {
    if (!isOpen(ticket)) return;
    const e = openedEventOf(node, ticket);
    for (const ch of channels) if (knownRef(ch, e) === undefined) enqueue(ch, e);
  };

  return {
    observe: (node, ticket) => {
      try {
        if (!seen.has(node)) {
          seen.set(node, ticket);
          if (ticket !== null) baseline(node, ticket);
          return;
        }
        const previous = seen.get(node) ?? null;
        if (previous === ticket) return;
        seen.set(node, ticket);
        dispatch(diffTicket(node, previous, ticket));
      } catch (err) {
        deps.metrics.errors.inc({ where: 'ticket-adapter' });
        deps.log.error('ticket event not queued', { node, err: errorMessage(err) });
      }
    },
    dispatch: (events) => {
      try {
        dispatch(events);
      } catch (err) {
        deps.metrics.errors.inc({ where: 'ticket-adapter' });
        deps.log.error('ticket event not queued', { err: errorMessage(err) });
      }
    },
    reset: () => {
      seen.clear();
    },
    idle: () =>
      isIdle()
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            idleWaiters.push(resolve);
          }),
    stop: async () => {
      stopper.abort(new Error('ticket dispatcher stopped'));
      await Promise.allSettled([...workers]);
      for (const ch of channels) {
        ch.lanes.clear();
        ch.ready.length = 0;
        ch.size = 0;
        deps.metrics.adapterQueue.set({ adapter: ch.adapter.system }, 0);
      }
      wakeIdle();
    },
  };
}
