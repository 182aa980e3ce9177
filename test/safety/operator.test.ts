/**
 * Operator controls over a long run: pause all (config), pause one node (annotation), dry-run
 * (no write at all), take over a ticket (also in a race with Aegis's next step), opt a node out
 * (label), cordon by hand. The daemon obeys each, and never undoes any of them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import type { Config } from '../../src/config/schema.js';
import { DISABLE_LABEL, PAUSE_ANNOTATION, TICKET_ANNOTATION } from '../../src/core/types.js';
import type { CallHook } from '../fixtures/safety/kill-switch.js';
import {
  catalogueOf,
  createSafetyWorld,
  HOUR,
  LADDER_CONDITIONS,
  metricSum,
  MIN,
  runFor,
  safetyConfig,
  settleSteps,
  startEngine,
  type EngineLife,
  type SafetyWorld,
} from '../fixtures/safety/safety-world.js';
import { TicketLedger } from '../fixtures/safety/ticket-ledger.js';
import { useSafetyFigures } from './figures.js';

const figures = useSafetyFigures();
const CATALOGUE = catalogueOf(LADDER_CONDITIONS);
const CONFIG = safetyConfig({ safety: { maxCordonedFraction: 0.5 } });

/** A fleet with reboot-ladder faults on nodes 1..3 and an engine on it. */
async function faultyFleet(
  config: Config = CONFIG,
  hook?: CallHook,
): Promise<{ sw: SafetyWorld; life: EngineLife; nodes: string[] }> {
  const sw = await createSafetyWorld({ nodes: 8, seed: 31 });
  const life = startEngine(sw, {
    config,
    catalogue: CATALOGUE,
    ...(hook === undefined ? {} : { hook }),
  });
  const nodes = sw.names.slice(1, 4);
  const t0 = sw.clock.now();
  nodes.forEach((node, i) => {
    const condition = ['Xid79GPULost', 'GpuHung', 'GpuRowRemappingFailure'][i] ?? '';
    sw.world.faults.injectFault({
      condition,
      device: '1',
      node,
      atMs: t0,
      ...(i === 1 ? { persistence: 'survives-reboot' as const } : {}),
    });
  });
  return { sw, life, nodes };
}

/** Every write the engine made (as opposed to humans and kubelets). */
const engineWrites = (
  sw: SafetyWorld,
): readonly { method: string; target: string; detail: string }[] =>
  sw.world.cluster.writes().filter((w) => w.by === 'client');
/** Steps started on `node` at or after `fromMs`. */
const startedOn = (life: EngineLife, node: string, fromMs = 0): string[] =>
  life.steps
    .filter((s) => s.node === node && s.status === 'Running' && s.atMs >= fromMs)
    .map((s) => s.action);

describe('pause', () => {
  it('pause all (config): nothing is done to any node over 3 hours, holds are counted', async () => {
    const { sw, life } = await faultyFleet(
      safetyConfig({ safety: { paused: true, maxCordonedFraction: 0.5 } }),
    );
    await runFor(sw, life, { durationMs: 3 * HOUR, intervalMs: 30_000 });
    figures.tried('outage');
    assert.deepEqual(engineWrites(sw), [], 'no write at all');
    assert.ok(metricSum(await life.metricsText(), 'aegis_safety_held_total', 'gate="paused"') > 0);
  });

  it('paused mid-ladder (daemon restarted with paused: true): the ticket says so, nothing else moves', async () => {
    const { sw, life, nodes } = await faultyFleet();
    await runFor(sw, life, { durationMs: 2 * MIN, intervalMs: 20_000 });
    await settleSteps(sw, life);
    const pausedAt = sw.clock.now();
    const before = engineWrites(sw).length;
    const paused = startEngine(sw, {
      config: safetyConfig({ safety: { paused: true, maxCordonedFraction: 0.5 } }),
      catalogue: CATALOGUE,
    });
    await runFor(sw, paused, { durationMs: 3 * HOUR, intervalMs: 30_000 });
    const after = engineWrites(sw).slice(before);
    assert.deepEqual(
      after.filter((w) => w.method !== 'patchNodeAnnotations'),
      [],
      'only tickets are written',
    );
    for (const n of nodes) {
      assert.equal((await sw.node(n)).unschedulable, true, `${n} stays cordoned`);
      assert.deepEqual(startedOn(paused, n, pausedAt), []);
    }
    const held =
      (await sw.ticket(nodes[0] ?? ''))?.workflows.filter((w) => w.status === 'Held') ?? [];
    assert.ok(
      held.some((w) => (w.message ?? '').startsWith('paused')),
      'the hold is in the ticket',
    );
  });

  it('pause one node (annotation), before and mid-ladder: that node is left alone, the others healed, the annotation kept', async () => {
    const { sw, life, nodes } = await faultyFleet();
    const [early = '', late = '', other = ''] = nodes;
    sw.world.cluster.setAnnotation(early, PAUSE_ANNOTATION, 'true');
    await runFor(sw, life, { durationMs: 90_000, intervalMs: 20_000 });
    sw.world.cluster.setAnnotation(late, PAUSE_ANNOTATION, 'true');
    const pausedAt = sw.clock.now() + 1;
    await runFor(sw, life, { durationMs: 3 * HOUR, intervalMs: 30_000 });
    figures.tried('outage');
    assert.deepEqual(startedOn(life, early), [], 'paused before the fault: untouched');
    assert.deepEqual(startedOn(life, late, pausedAt), [], 'paused mid-ladder: nothing more');
    assert.ok(startedOn(life, other).includes('Shutdown'), 'the unpaused node was remediated');
    for (const n of [early, late])
      assert.equal((await sw.node(n)).annotations[PAUSE_ANNOTATION], 'true', `${n} still paused`);
    assert.equal((await sw.node(early)).unschedulable, false, 'not even cordoned');
  });
});

describe('dry-run', () => {
  it('computes plans for every faulty node and writes nothing at all, not even an Event', async () => {
    const { sw, life, nodes } = await faultyFleet(
      safetyConfig({ safety: { dryRun: true, maxCordonedFraction: 0.5 } }),
    );
    await runFor(sw, life, { durationMs: 3 * HOUR, intervalMs: 30_000 });
    assert.deepEqual(engineWrites(sw), [], 'SimCluster.writes() holds no engine write');
    assert.deepEqual(sw.world.cluster.events(), [], 'no Event');
    for (const n of nodes)
      assert.ok(
        life.steps.some((s) => s.node === n && s.status === 'DryRun'),
        `${n} has a plan`,
      );
    assert.ok(metricSum(await life.metricsText(), 'aegis_dry_run_steps_total') >= nodes.length);
  });
});

describe('taking a ticket over', () => {
  it('a human takes the ticket: no step after that, the fault clearing does not close it, the node stays cordoned', async () => {
    const { sw, life, nodes } = await faultyFleet();
    const node = nodes[1] ?? '';
    await runFor(sw, life, { durationMs: 3 * MIN, intervalMs: 20_000 });
    await settleSteps(sw, life);
    const raw = (await sw.node(node)).annotations[TICKET_ANNOTATION] ?? '';
    sw.world.cluster.setAnnotation(
      node,
      TICKET_ANNOTATION,
      stringify({ ...(parse(raw) as object), supervisor: 'alice' }),
    );
    const takenAt = sw.clock.now();
    sw.world.scheduler.at(takenAt + HOUR, (t) => {
      for (const f of sw.world.faults.active(node)) sw.world.faults.clearFault(f.id, t);
    });
    await runFor(sw, life, { durationMs: 3 * HOUR, intervalMs: 30_000 });
    const t = await sw.ticket(node);
    assert.ok(t !== null);
    assert.deepEqual(startedOn(life, node, takenAt), [], 'no step after the takeover');
    assert.equal(t.supervisor, 'alice');
    assert.ok(t.status !== 'resolved' && t.status !== 'closed', `still open (${t.status})`);
    assert.equal((await sw.node(node)).unschedulable, true);
  });

  it('a human takes the ticket between Aegis deciding a reboot and recording it: the reboot does not happen', async () => {
    const ctx: { ledger?: TicketLedger; at?: number; node?: string } = {};
    const hook: CallHook = (c, ks) => {
      if (
        ctx.at !== undefined ||
        c.method !== 'patchNodeAnnotations' ||
        c.phase !== 'before' ||
        ctx.ledger === undefined
      )
        return;
      if (
        !/action: Reboot\n\s+status: Running/.test(
          (c.args[1] as Record<string, string>)[TICKET_ANNOTATION] ?? '',
        )
      )
        return;
      const node = String(c.args[0]);
      ctx.ledger.scan();
      const current = parse(ctx.ledger.lastRaw(node) ?? '') as Record<string, unknown>;
      ks.sim.setAnnotation(node, TICKET_ANNOTATION, stringify({ ...current, supervisor: 'alice' }));
      ctx.at = ks.sim.rebootCount(node);
      ctx.node = node;
    };
    const { sw, life } = await faultyFleet(CONFIG, hook);
    ctx.ledger = new TicketLedger(sw.world.cluster);
    await runFor(sw, life, { durationMs: 2 * HOUR, intervalMs: 20_000 });
    assert.ok(ctx.node !== undefined, 'the race was staged');
    figures.tried('outage');
    const extra = sw.world.cluster.rebootCount(ctx.node) - (ctx.at ?? 0);
    figures.bad('outage', extra, `${ctx.node} rebooted after a human took its ticket over`);
    assert.equal(extra, 0, 'no reboot after the takeover');
    assert.equal((await sw.ticket(ctx.node))?.supervisor, 'alice');
  });
});

describe('opt-out label and hand cordons', () => {
  it('aegis.io/disable=true: the node is never touched and the label stays', async () => {
    const { sw, life, nodes } = await faultyFleet();
    const node = nodes[0] ?? '';
    sw.world.cluster.setLabel(node, DISABLE_LABEL, 'true');
    await runFor(sw, life, { durationMs: 3 * HOUR, intervalMs: 30_000 });
    assert.deepEqual(startedOn(life, node), []);
    assert.equal((await sw.node(node)).labels[DISABLE_LABEL], 'true');
    assert.equal(await sw.ticket(node), null, 'no ticket either');
  });

  it('cordoned by hand, healthy or faulty: never uncordoned by Aegis', async () => {
    const { sw, life, nodes } = await faultyFleet();
    const healthy = sw.names[6] ?? '';
    const faulty = nodes[0] ?? '';
    sw.world.cluster.cordonByHand(healthy);
    sw.world.cluster.cordonByHand(faulty);
    await runFor(sw, life, { durationMs: 3 * HOUR, intervalMs: 30_000 });
    for (const n of [healthy, faulty]) {
      assert.equal((await sw.node(n)).unschedulable, true, `${n} still cordoned`);
      assert.ok(!startedOn(life, n).includes('Uncordon'), `${n} never uncordoned`);
    }
    assert.deepEqual(startedOn(life, healthy), [], 'the healthy one untouched');
    assert.ok(
      !engineWrites(sw).some(
        (w) =>
          w.method === 'setUnschedulable' &&
          w.detail === 'false' &&
          [healthy, faulty].includes(w.target),
      ),
    );
  });
});
