/**
 * Reliability figures from tickets (issue 16 item 5): the history in brief a new ticket carries
 * (`past`, `cordoned`), the per-node and per-group figures (MTBI, time to repair by automation and
 * by humans, GPU-hours lost while cordoned, lemon nodes), the gauges, and on the simulator: a node
 * failing twice, its figures read again by a fresh engine (a restart) from its ticket alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aNode } from '../../test/helpers/builders.js';
import {
  HOUR,
  LADDER_CONDITIONS,
  catalogueOf,
  createSafetyWorld,
  metricValue,
  runFor,
  safetyConfig,
  settleSteps,
  startEngine,
} from '../../test/fixtures/safety/safety-world.js';
import { ConfigSchema } from '../config/schema.js';
import { createMetrics } from '../metrics/metrics.js';
import { carryOver, cordonBegun, cordonEnded, foldPast } from '../ticket/ticket-past.js';
import {
  MAX_TICKET_BYTES,
  newTicket,
  parseTicket,
  serializeTicket,
  TicketStatus,
  type Ticket,
} from '../ticket/ticket.js';
import {
  groupReliability,
  gpusOf,
  nodeReliability,
  recordReliability,
  ReliabilityRecorder,
  type ReliabilityOptions,
} from './reliability.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const H = 3_600_000;
const iso = (ms: number): string => new Date(ms).toISOString();
const OPTS: ReliabilityOptions = {
  gpuCountLabel: 'nvidia.com/gpu.count',
  gpusPerNode: 8,
  lemonTickets: 3,
  lemonWindowMs: 30 * 24 * H,
};

/** A ticket opened at `openMs`, cordoned for `cordonH` hours, closed after `openH` by `by`. */
function closed(openMs: number, openH: number, by: string, cordonH = 0): Ticket {
  const t = newTicket({ condition: 'Xid79GPULost', reason: 'r', nowMs: openMs });
  return {
    ...t,
    status: TicketStatus.Resolved,
    supervisor: by,
    resolvedTime: iso(openMs + openH * H),
    ...(cordonH === 0
      ? {}
      : {
          cordoned: { at: iso(openMs), until: iso(openMs + cordonH * H) },
          cordonedByAegis: false,
        }),
  };
}

/** The node's ticket history: each ticket opened over the last, carried over. */
function history(...tickets: Ticket[]): Ticket {
  let cur: Ticket | null = null;
  for (const t of tickets) cur = carryOver(cur, t);
  return cur as Ticket;
}

describe('the history in brief a ticket carries', () => {
  it('folds the closed ticket into the new one: count, first opening, repairs by who, cordoned time', () => {
    const t = history(
      closed(T0, 2, 'aegis', 2),
      closed(T0 + 24 * H, 5, 'alice', 4),
      newTicket({ condition: 'GpuHung', reason: '', nowMs: T0 + 48 * H }),
    );
    assert.deepEqual(t.past, {
      tickets: 2,
      since: iso(T0),
      opened: [iso(T0), iso(T0 + 24 * H)],
      autoRepairs: 1,
      autoRepairSeconds: 2 * 3600,
      humanRepairs: 1,
      humanRepairSeconds: 5 * 3600,
      cordonedSeconds: 6 * 3600,
    });
    // It survives the annotation: written and read back, and an old ticket without it still reads.
    const back = parseTicket(serializeTicket(t), 'n1');
    assert.deepEqual(back.past, t.past);
    const old = parseTicket(
      'condition: GpuHung\nstatus: created\ncreationTime: 2026-01-01T00:00:00Z\n',
      'n1',
    );
    assert.equal(old.past, undefined);
    assert.equal(old.cordoned, undefined);
  });

  it('keeps the latest openings only, and fits the annotation at its tightest with a long history', () => {
    let t: Ticket | null = null;
    for (let i = 0; i < 40; i++) t = carryOver(t, closed(T0 + i * H, 0.5, 'aegis', 0.5));
    const cur = t as Ticket;
    assert.equal(cur.past?.tickets, 39);
    assert.equal(cur.past.opened.length, 10);
    assert.equal(cur.past.opened.at(-1), iso(T0 + 38 * H));
    // A ticket that only fits at the last level still keeps its history in brief.
    const huge: Ticket = {
      ...cur,
      reason: 'x'.repeat(20_000),
      conditions: Array.from({ length: 300 }, (_, i) => `Cond${String(i)}/${'y'.repeat(40)}`),
      workflows: Array.from({ length: 60 }, (_, i) => ({
        action: 'Diagnose',
        status: 'Failed' as const,
        seq: i,
        message: 'z'.repeat(300),
      })),
    };
    const text = serializeTicket(huge);
    assert.ok(Buffer.byteLength(text) <= MAX_TICKET_BYTES);
    const back = parseTicket(text, 'n1');
    assert.equal(back.past?.tickets, 39);
    assert.equal(back.past.humanRepairs, undefined);
    assert.equal(back.past.autoRepairs, 40 - 1);
  });

  it('cordon spans: begun, ended, begun again in the same ticket', () => {
    let t = newTicket({ condition: 'GpuHung', reason: '', nowMs: T0 });
    t = { ...t, cordoned: cordonBegun(t, iso(T0)) };
    t = { ...t, cordoned: cordonBegun(t, iso(T0 + H)) };
    assert.deepEqual(t.cordoned, { at: iso(T0) }, 'a second Cordon step keeps the open span');
    t = { ...t, cordoned: cordonEnded(t, iso(T0 + 2 * H)) };
    t = { ...t, cordoned: cordonBegun(t, iso(T0 + 3 * H)) };
    assert.deepEqual(t.cordoned, { at: iso(T0 + 3 * H), ms: 2 * H });
    t = { ...t, status: TicketStatus.Resolved, resolvedTime: iso(T0 + 4 * H) };
    assert.equal(foldPast(t).cordonedSeconds, 3 * 3600, 'the open span ends at the close');
  });
});

describe('reliability figures', () => {
  it('per node: incidents, MTBI, repairs split, lost GPU-hours, lemon', () => {
    const t = history(
      closed(T0, 1, 'aegis', 1),
      closed(T0 + 10 * H, 3, 'bob', 3),
      // The current one: open, cordoned by Aegis for 2 h so far.
      {
        ...newTicket({ condition: 'GpuHung', reason: '', nowMs: T0 + 20 * H }),
        cordoned: { at: iso(T0 + 20 * H) },
        cordonedByAegis: true,
      },
    );
    const n = nodeReliability(
      { node: 'n1', group: 'pool-a', gpus: 4, ticket: t },
      T0 + 22 * H,
      OPTS,
    );
    assert.equal(n.incidents, 3);
    assert.equal(n.mtbiSeconds, 10 * 3600);
    assert.deepEqual(n.repairs, {
      aegis: { count: 1, seconds: 3600 },
      human: { count: 1, seconds: 3 * 3600 },
    });
    assert.equal(n.lostGpuHours, (1 + 3 + 2) * 4);
    assert.equal(n.recentIncidents, 3);
    assert.equal(n.lemon, true);
    // Thirty days on, the same history is no longer a lemon; one ticket has no MTBI.
    assert.equal(
      nodeReliability({ node: 'n1', group: 'g', gpus: 4, ticket: t }, T0 + 40 * 24 * H, OPTS).lemon,
      false,
    );
    const once = nodeReliability(
      { node: 'n2', group: 'g', gpus: 8, ticket: closed(T0, 2, 'aegis') },
      T0 + 3 * H,
      OPTS,
    );
    assert.equal(once.mtbiSeconds, undefined);
    assert.equal(once.incidents, 1);
    assert.equal(once.repairs.aegis.count, 1, 'the current ticket, closed, is a repair too');
  });

  it('per group: sums, MTBI over the nodes with intervals, lemons', () => {
    const a = nodeReliability(
      {
        node: 'a',
        group: 'g1',
        gpus: 8,
        ticket: history(closed(T0, 1, 'aegis'), closed(T0 + 4 * H, 1, 'aegis')),
      },
      T0 + 10 * H,
      OPTS,
    );
    const b = nodeReliability(
      {
        node: 'b',
        group: 'g1',
        gpus: 8,
        ticket: history(closed(T0, 1, 'x'), closed(T0 + 2 * H, 1, 'x'), closed(T0 + 8 * H, 1, 'x')),
      },
      T0 + 10 * H,
      OPTS,
    );
    const c = nodeReliability(
      { node: 'c', group: 'g0', gpus: 8, ticket: closed(T0, 1, 'aegis') },
      T0 + 10 * H,
      OPTS,
    );
    const groups = groupReliability([a, b, c]);
    assert.deepEqual(
      groups.map((g) => g.group),
      ['g0', 'g1'],
    );
    const g1 = groups[1];
    assert.equal(g1?.incidents, 5);
    assert.equal(g1.mtbiSeconds, ((4 + 8) * 3600) / 3, 'three intervals: 4 h, and 8 h over two');
    assert.deepEqual(g1.repairs.human, { count: 3, seconds: 3 * 3600 });
    assert.equal(g1.lemons, 1);
    assert.equal(groups[0]?.mtbiSeconds, undefined);
  });

  it('GPUs from the GPU-count label, else the default', () => {
    assert.equal(gpusOf({ 'nvidia.com/gpu.count': '4' }, OPTS), 4);
    assert.equal(gpusOf({ 'nvidia.com/gpu.count': 'lots' }, OPTS), 8);
    assert.equal(gpusOf({}, OPTS), 8);
    assert.deepEqual(ConfigSchema.parse({}).reliability, {
      gpuCountLabel: 'nvidia.com/gpu.count',
      gpusPerNode: 8,
      lemonTickets: 3,
      lemonWindowMs: 30 * 24 * H,
    });
  });

  it('the gauges: set from the walk, series of departed nodes removed', async () => {
    const m = createMetrics();
    const rec = new ReliabilityRecorder(OPTS, 'aegis.io/node-group');
    rec.begin(T0 + 10 * H);
    rec.add(
      aNode({ name: 'n1', labels: { 'aegis.io/node-group': 'pool-a' } }),
      history(closed(T0, 1, 'aegis', 1), closed(T0 + 5 * H, 2, 'alice', 2)),
    );
    rec.add(aNode({ name: 'n2' }), closed(T0, 1, 'aegis'));
    rec.flush(m);
    let text = await m.registry.metrics();
    assert.equal(
      metricValue(text, 'aegis_reliability_node_incidents', 'node="n1",group="pool-a"'),
      2,
    );
    assert.equal(
      metricValue(text, 'aegis_reliability_node_mtbi_seconds', 'node="n1",group="pool-a"'),
      5 * 3600,
    );
    assert.equal(
      metricValue(
        text,
        'aegis_reliability_node_mttr_seconds',
        'node="n1",group="pool-a",by="human"',
      ),
      2 * 3600,
    );
    assert.equal(
      metricValue(text, 'aegis_reliability_node_lost_gpu_hours', 'node="n1",group="pool-a"'),
      24,
    );
    assert.equal(metricValue(text, 'aegis_reliability_repairs', 'group="none",by="aegis"'), 1);
    assert.equal(
      metricValue(text, 'aegis_reliability_repair_seconds', 'group="pool-a",by="human"'),
      7200,
    );
    assert.equal(metricValue(text, 'aegis_reliability_lemon_nodes', 'group="pool-a"'), 0);
    rec.begin(T0 + 11 * H);
    rec.add(aNode({ name: 'n2' }), closed(T0, 1, 'aegis'));
    rec.flush(m);
    text = await m.registry.metrics();
    assert.equal(
      metricValue(text, 'aegis_reliability_node_incidents', 'node="n1",group="pool-a"'),
      undefined,
    );
    assert.equal(metricValue(text, 'aegis_reliability_incidents', 'group="pool-a"'), undefined);
    // The same tickets: nothing recomputed until the refresh interval, then an open cordon's
    // lost GPU-hours grow.
    const cordoned: Ticket = {
      ...newTicket({ condition: 'GpuHung', reason: '', nowMs: T0 }),
      cordoned: { at: iso(T0) },
      cordonedByAegis: true,
    };
    const lost = async (atMs: number): Promise<number | undefined> => {
      rec.begin(atMs);
      rec.add(aNode({ name: 'n3' }), cordoned);
      rec.flush(m);
      return metricValue(
        await m.registry.metrics(),
        'aegis_reliability_node_lost_gpu_hours',
        'node="n3",group="none"',
      );
    };
    assert.equal(await lost(T0 + H), 8);
    assert.equal(await lost(T0 + H + 30_000), 8, 'within the refresh interval');
    assert.equal(await lost(T0 + 2 * H), 16);
    recordReliability(m, [], []);
    assert.doesNotMatch(await m.registry.metrics(), /^aegis_reliability_\w+\{/m);
  });
});

describe('reliability on the simulator', () => {
  it('a node failing twice: its second ticket carries the first, and a restarted engine reports the same figures', async () => {
    const sw = await createSafetyWorld({ nodes: 6, seed: 5 });
    const node = sw.names[1] ?? '';
    sw.world.cluster.setLabel(node, 'aegis.io/node-group', 'pool-a');
    const config = safetyConfig({ safety: { nodeCooldownMs: 0 } });
    const catalogue = catalogueOf(LADDER_CONDITIONS);
    const fault = (): void => {
      sw.world.faults.injectFault({
        condition: 'Xid79GPULost',
        device: '1',
        node,
        atMs: sw.clock.now(),
        persistence: 'until-reboot',
      });
    };
    let life = startEngine(sw, { config, catalogue });
    fault();
    await runFor(sw, life, { durationMs: 2 * HOUR, intervalMs: 20_000 });
    await settleSteps(sw, life);
    const first = await sw.ticket(node);
    assert.equal(first?.status, 'resolved', 'the reboot fixed it');
    assert.ok(first.cordoned?.until !== undefined, 'the cordon span is closed by the uncordon');
    fault();
    await runFor(sw, life, { durationMs: 2 * HOUR, intervalMs: 20_000 });
    await settleSteps(sw, life);
    const second = await sw.ticket(node);
    assert.equal(second?.past?.tickets, 1);
    assert.equal(second.past.since, first.creationTime);
    assert.equal(second.past.autoRepairs, 1);
    assert.ok((second.past.cordonedSeconds ?? 0) > 0);
    const labels = `node="${node}",group="pool-a"`;
    const figures = async (): Promise<(number | undefined)[]> => {
      const text = await life.metricsText();
      return [
        metricValue(text, 'aegis_reliability_node_incidents', labels),
        metricValue(text, 'aegis_reliability_node_mtbi_seconds', labels),
        metricValue(text, 'aegis_reliability_repairs', 'group="pool-a",by="aegis"'),
        metricValue(text, 'aegis_reliability_node_lost_gpu_hours', labels),
      ];
    };
    const before = await figures();
    assert.equal(before[0], 2);
    assert.equal(
      before[1],
      (Date.parse(second.creationTime) - Date.parse(first.creationTime)) / 1000,
    );
    assert.equal(before[2], 2);
    assert.ok((before[3] ?? 0) > 0);
    // A restart: a fresh engine and registry, one cycle, the same figures from the tickets.
    life = startEngine(sw, { config, catalogue });
    await life.cycle();
    assert.deepEqual(await figures(), before);
  });
});
