import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryLogger } from '../../engine/logger.js';
import { createMetrics, type Metrics } from '../../metrics/metrics.js';
import { newTicket, StepStatus, TicketStatus, type Ticket } from '../../ticket/ticket.js';
import type { ExternalRef, TicketAdapter } from './adapter.js';
import { createTicketDispatcher, type WriteBack } from './dispatcher.js';
import type { TicketEvent, TicketEventKind } from './events.js';
import { DeliveryError } from './http.js';

const T0 = Date.UTC(2026, 4, 4, 9, 0, 0);
const iso = (s: number): string => new Date(T0 + s * 1000).toISOString();

/** A ticket with `steps` ended entries (seq 0..steps-1) and a Running one after them. */
function ticket(steps: number, over: Partial<Ticket> = {}): Ticket {
  return {
    ...newTicket({ condition: 'Xid79GPULost', reason: 'XID 79', nowMs: T0 }),
    nextSeq: steps + 1,
    workflows: [
      ...Array.from({ length: steps }, (_, i) => ({
        action: 'Remedy',
        status: StepStatus.Succeeded,
        time: iso(i),
        end: iso(i),
        seq: i,
      })),
      { action: 'Remedy', status: StepStatus.Running, time: iso(steps), seq: steps },
    ],
    ...over,
  };
}

interface Fake {
  readonly adapter: TicketAdapter;
  readonly calls: { e: TicketEvent; known: ExternalRef | undefined }[];
  release(): void;
}

/** An adapter recording what it is given; while `held`, deliveries wait for `release()`. */
function fake(
  system: string,
  opts: {
    events?: TicketEventKind[];
    held?: boolean;
    fail?: (e: TicketEvent) => boolean;
    delayMs?: (e: TicketEvent) => number;
  } = {},
): Fake {
  const calls: Fake['calls'] = [];
  let gate: Promise<void> = Promise.resolve();
  let open = (): void => undefined;
  if (opts.held === true)
    gate = new Promise<void>((r) => {
      open = r;
    });
  return {
    calls,
    release: () => {
      open();
    },
    adapter: {
      system,
      events: new Set(opts.events ?? ['opened', 'step', 'handoff', 'closed']),
      check: () => undefined,
      deliver: async (e, known, stop) => {
        calls.push({ e, known });
        await Promise.race([
          gate,
          new Promise<never>((_, reject) => {
            stop.addEventListener('abort', () => {
              reject(stop.reason as Error);
            });
          }),
        ]);
        const ms = opts.delayMs?.(e) ?? 0;
        if (ms > 0) await new Promise((r) => setTimeout(r, ms));
        if (opts.fail?.(e) === true) throw new DeliveryError('rejected', `${system}: refused`, 400);
        return {
          ref: known ?? { system, id: `${system.toUpperCase()}-1`, url: `https://x/${system}` },
        };
      },
    },
  };
}

function value(m: Metrics, name: string, labels: Record<string, string>): number {
  const metric = m.registry.getSingleMetric(name) as unknown as {
    hashMap: Record<string, { value: number; labels: Record<string, string> }>;
  };
  let n = 0;
  for (const v of Object.values(metric.hashMap))
    if (Object.entries(labels).every(([k, x]) => v.labels[k] === x)) n += v.value;
  return n;
}

function setup(
  adapters: TicketAdapter[],
  opts: { queueSize?: number; concurrency?: number; writeBack?: WriteBack } = {},
) {
  const metrics = createMetrics();
  const log = createMemoryLogger();
  const writes: { node: string; result: Ticket | undefined }[] = [];
  const tickets = new Map<string, Ticket>();
  const writeBack: WriteBack =
    opts.writeBack ??
    ((node, mutate) => {
      const cur = tickets.get(node);
      if (cur === undefined) return Promise.resolve();
      const result = mutate(cur);
      writes.push({ node, result });
      if (result !== undefined) tickets.set(node, result);
      return Promise.resolve();
    });
  const d = createTicketDispatcher(
    adapters,
    { metrics, log, writeBack },
    { queueSize: opts.queueSize ?? 100, concurrency: opts.concurrency ?? 4 },
  );
  return { d, metrics, log, writes, tickets };
}

describe('ticket dispatcher', () => {
  it('observe never waits for delivery: a stuck system costs the controller microseconds', async () => {
    const stuck = fake('jira', { held: true });
    const { d, metrics, log } = setup([stuck.adapter], { queueSize: 50, concurrency: 2 });
    const started = process.hrtime.bigint();
    for (let n = 0; n < 200; n++) {
      d.observe(`n${n}`, null);
      for (let s = 0; s < 10; s++) d.observe(`n${n}`, ticket(s));
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    // 2,200 observations (2,000 events) with every delivery stuck.
    assert.ok(ms < 500, `observe took ${ms.toFixed(1)} ms in all`);
    assert.equal(stuck.calls.length, 2, 'two workers, both stuck');
    assert.equal(value(metrics, 'aegis_ticket_adapter_queue', { adapter: 'jira' }), 50);
    const drops = value(metrics, 'aegis_ticket_adapter_events_total', { result: 'dropped' });
    assert.ok(drops > 1000);
    // A long outage does not flood the log: the 1st, 2nd, 4th… drop only.
    assert.equal(
      log.lines.filter((l) => l.msg === 'ticket event dropped: adapter queue full').length,
      Math.floor(Math.log2(drops)) + 1,
    );
    const stopping = Date.now();
    await d.stop();
    assert.ok(Date.now() - stopping < 1000);
    assert.equal(value(metrics, 'aegis_ticket_adapter_queue', { adapter: 'jira' }), 0);
  });

  it('a full queue drops the oldest step event before an opened or closed one', async () => {
    const a = fake('webhook', { held: true });
    const { d, metrics } = setup([a.adapter], { queueSize: 3, concurrency: 1 });
    d.observe('a', null);
    d.observe('a', ticket(0)); // opened(a): being delivered, stuck
    d.observe('b', null);
    d.observe('b', ticket(0)); // opened(b)
    d.observe('b', ticket(1)); // step 0
    d.observe('b', ticket(2)); // step 1: queue full (3)
    d.observe('b', ticket(2, { status: TicketStatus.Closed, resolvedTime: iso(9) })); // closed: drops step 0
    d.observe('c', null);
    d.observe('c', ticket(0)); // opened(c): drops step 1
    d.observe('d', null);
    d.observe('d', ticket(0)); // opened(d): no step left to drop: refused
    d.observe('c', ticket(1)); // a step into a full queue: refused
    a.release();
    await d.idle();
    assert.deepEqual(
      a.calls.map((c) => `${c.e.node}:${c.e.kind}:${c.e.step?.seq ?? ''}`),
      ['a:opened:', 'b:opened:', 'b:closed:', 'c:opened:'],
    );
    const dropped = (event: string): number =>
      value(metrics, 'aegis_ticket_adapter_events_total', { result: 'dropped', event });
    assert.deepEqual([dropped('step'), dropped('opened')], [3, 1]);
  });

  it('one node in order, nodes in parallel', async () => {
    // Later events of a node are faster: only the per-node lane keeps them in order.
    const a = fake('servicenow', { delayMs: (e) => (e.kind === 'opened' ? 30 : 1) });
    const { d } = setup([a.adapter], { concurrency: 4 });
    for (const n of ['x', 'y', 'z']) {
      d.observe(n, null);
      for (let s = 0; s < 4; s++) d.observe(n, ticket(s));
    }
    await d.idle();
    for (const n of ['x', 'y', 'z']) {
      assert.deepEqual(
        a.calls.filter((c) => c.e.node === n).map((c) => `${c.e.kind}${c.e.step?.seq ?? ''}`),
        ['opened', 'step0', 'step1', 'step2'],
      );
    }
    // The three opened were delivered at once (parallel), before any step.
    assert.deepEqual(
      a.calls.slice(0, 3).map((c) => c.e.kind),
      ['opened', 'opened', 'opened'],
    );
  });

  it('a burst sees the external id created by the first event before its write-back is observed', async () => {
    const a = fake('jira');
    const { d, tickets } = setup([a.adapter]);
    tickets.set('n', ticket(2));
    d.observe('n', null);
    d.observe('n', ticket(0));
    d.observe('n', ticket(1));
    d.observe('n', ticket(2));
    await d.idle();
    assert.deepEqual(
      a.calls.map((c) => c.known?.id),
      [undefined, 'JIRA-1', 'JIRA-1'],
    );
    assert.deepEqual(tickets.get('n')?.external, [
      { system: 'jira', id: 'JIRA-1', url: 'https://x/jira' },
    ]);
  });

  it('baseline: the first sight of a node sends only the opened each system lacks', async () => {
    const jira = fake('jira');
    const hook = fake('webhook');
    const { d } = setup([jira.adapter, hook.adapter]);
    const known = ticket(3, { external: [{ system: 'jira', id: 'OPS-9' }] });
    d.observe('n1', known); // open, Jira has it: only the webhook catches up
    d.observe('n2', ticket(3, { status: TicketStatus.Closed })); // closed: nothing
    d.observe('n3', null); // no ticket: nothing
    await d.idle();
    assert.deepEqual(jira.calls.length, 0);
    assert.deepEqual(
      hook.calls.map((c) => [c.e.node, c.e.kind]),
      [['n1', 'opened']],
    );
    // After that, only changes are events.
    d.observe('n1', ticket(4, { external: known.external }));
    await d.idle();
    assert.deepEqual(
      jira.calls.map((c) => [c.e.kind, c.e.step?.seq, c.known?.id]),
      [['step', 3, 'OPS-9']],
    );
    // reset() (leadership changed): the next sight is a baseline again, with no events.
    d.reset();
    d.observe('n1', ticket(5, { external: [...known.external!, { system: 'webhook', id: 'W' }] }));
    await d.idle();
    assert.equal(jira.calls.length, 1);
    assert.equal(hook.calls.length, 2);
  });

  it('each adapter hears only its configured events', async () => {
    const a = fake('webhook', { events: ['opened', 'closed'] });
    const { d } = setup([a.adapter]);
    d.observe('n', null);
    d.observe('n', ticket(0));
    d.observe('n', ticket(1));
    d.observe('n', ticket(1, { status: TicketStatus.Resolved, resolvedTime: iso(5) }));
    await d.idle();
    assert.deepEqual(
      a.calls.map((c) => c.e.kind),
      ['opened', 'closed'],
    );
  });

  it('write-back never touches a newer ticket, and a failed write-back keeps the id in memory', async () => {
    const a = fake('servicenow');
    const replaced = setup([a.adapter]);
    // The node already holds a newer ticket when the write-back comes.
    replaced.tickets.set('n', ticket(0, { creationTime: iso(999) }));
    replaced.d.observe('n', null);
    replaced.d.observe('n', ticket(0));
    await replaced.d.idle();
    assert.deepEqual(
      replaced.writes.map((w) => w.result),
      [undefined],
    );
    assert.equal(
      value(replaced.metrics, 'aegis_ticket_adapter_writebacks_total', { result: 'stale' }),
      1,
    );

    const b = fake('servicenow');
    const failing = setup([b.adapter], {
      writeBack: () => Promise.reject(new Error('the ticket changed since it was read')),
    });
    failing.d.observe('n', null);
    failing.d.observe('n', ticket(0));
    failing.d.observe('n', ticket(1));
    await failing.d.idle();
    assert.equal(
      value(failing.metrics, 'aegis_ticket_adapter_writebacks_total', { result: 'error' }),
      2,
    );
    assert.equal(b.calls[1]?.known?.id, 'SERVICENOW-1');
    assert.ok(failing.log.lines.some((l) => l.msg === 'external ticket id not written back'));
  });

  it('a failed event is counted and logged; the node’s next events still go', async () => {
    const a = fake('jira', { fail: (e) => e.kind === 'step' && e.step?.seq === 0 });
    const { d, metrics, log } = setup([a.adapter]);
    d.observe('n', null);
    d.observe('n', ticket(0));
    d.observe('n', ticket(2));
    await d.idle();
    assert.deepEqual(
      a.calls.map((c) => `${c.e.kind}${c.e.step?.seq ?? ''}`),
      ['opened', 'step0', 'step1'],
    );
    assert.equal(value(metrics, 'aegis_ticket_adapter_events_total', { result: 'failed' }), 1);
    assert.equal(value(metrics, 'aegis_ticket_adapter_events_total', { result: 'delivered' }), 2);
    const line = log.lines.find((l) => l.msg === 'ticket event not delivered');
    assert.ok(line?.fields !== undefined);
    assert.equal(line.fields.why, 'rejected');
    assert.equal(line.fields.key, `n/${iso(0)}/0/step`);
  });
});
