/**
 * Prometheus outage: the real engine (createEngine: Controller + SimCluster over the simulator)
 * reads a real Prometheus that scrapes the simulator. With a fault being remediated, Prometheus
 * is killed mid-ladder; while it is down no SOP step starts, no ticket closes and
 * `aegis_metrics_source_up` is 0. It comes back on the same port and data dir; detection resumes
 * (a fault injected during the outage is acted on) and the pending work of the first proceeds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { CATALOGUE, SIGNAL_PRESENCE } from '../../src/catalogue/index.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { systemClock } from '../../src/core/clock.js';
import { TICKET_ANNOTATION } from '../../src/core/types.js';
import { createEngine, type Engine } from '../../src/daemon.js';
import { DEFAULT_BRIDGE_OPTIONS } from '../../src/engine/bridge.js';
import type { CycleReport } from '../../src/engine/controller.js';
import { silentLogger } from '../../src/engine/logger.js';
import type { StepEvent } from '../../src/engine/runner.js';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import { createPromClient } from '../../src/prom/prom-client.js';
import { startExporterServer } from '../../src/sim/exporter-server.js';
import { createSimWorld, type SimWorld } from '../../src/sim/sim-world.js';
import { isOpen, parseTicket, type Ticket } from '../../src/ticket/ticket.js';
import {
  simExporterTargets,
  startPrometheus,
  waitFor,
  type PrometheusServer,
} from '../helpers/prometheus-harness.js';

const SCRAPE_MS = 1000;
const CYCLE_MS = 500;
const OUTAGE_MS = 6000;
/** Condition used: memory.replace ladder (cordon, diagnose, shutdown, human), `for: 0`. */
const CONDITION = 'MemoryUncorrectableErrors';
const NODE_A = 'gpu-node-0001';
const NODE_B = 'gpu-node-0003';
const signal = new AbortController().signal;
const FAST_JOB = { pendingMs: 100, durationMs: 300 };

describe('a Prometheus outage in the middle of a remediation', () => {
  let world: SimWorld;
  let prom: PrometheusServer;
  let engine: Engine;
  let metrics: Metrics;
  const steps: StepEvent[] = [];
  const reports: CycleReport[] = [];
  /** Cleanups, run last-in first-out. */
  const cleanup: (() => Promise<void>)[] = [];

  before(async () => {
    world = createSimWorld({
      nodes: 4,
      seed: 7,
      catalogue: CATALOGUE,
      clock: systemClock,
      bootTimeMs: 1000,
      jobs: {
        diagnose_node: { pendingMs: 100, durationMs: 3000 },
        healthcheck_node: FAST_JOB,
        shutdown_node: FAST_JOB,
        restart_node: FAST_JOB,
        remedy_node: FAST_JOB,
        repair_node: FAST_JOB,
      },
    });
    const exporters = await startExporterServer({ fleet: world, port: 0 });
    cleanup.unshift(() => exporters.close());
    prom = await startPrometheus({
      scrapeTargets: simExporterTargets(exporters.url),
      scrapeIntervalMs: SCRAPE_MS,
    });
    cleanup.unshift(() => prom.stop());
    metrics = createMetrics();
    const config = ConfigSchema.parse({
      prometheus: { url: prom.url, timeoutMs: '2s' },
      // MemoryUncorrectableErrors reads a [24h] range: a slow rule, asked in the background. A
      // 2 s period (30 s by default) keeps the test short; the outage paths are the same.
      inspect: { intervalMs: CYCLE_MS, slowRuleMaxPeriodMs: '2s' },
      sop: { settleMs: '1s' },
      safety: {
        dryRun: false,
        maxCordonedFraction: 1,
        maxPerRack: 8,
        maxPerLeaf: 8,
        nodeCooldownMs: 0,
      },
      leaderElection: { enabled: false },
    });
    const prio = new Map(CATALOGUE.map((e) => [e.name, e.priority]));
    engine = createEngine({
      cluster: world.cluster,
      metricsSource: createPromClient({ url: prom.url }),
      clock: systemClock,
      config,
      catalogue: CATALOGUE,
      presence: SIGNAL_PRESENCE,
      priorityOf: () => (name) => prio.get(name) ?? 999,
      metrics,
      log: silentLogger,
      bridgeOptions: { ...DEFAULT_BRIDGE_OPTIONS, jobPollMs: 200, drainTimeoutMs: 5_000 },
      onStep: (e) => steps.push(e),
    });
    cleanup.unshift(async () => {
      engine.controller.stop();
      await engine.controller.idle();
    });
    // Ready: a cycle in which every query succeeded and every exporter reported every node.
    await waitFor(
      async () => {
        const r = await cycle();
        return r.queryFailures === 0 && (await gauge('aegis_signal_stale_nodes')) === 0;
      },
      30_000,
      { what: 'a clean first cycle' },
    );
  });

  after(async () => {
    for (const done of cleanup) await done();
  });

  async function cycle(): Promise<CycleReport> {
    const r = await engine.controller.cycle(signal);
    reports.push(r);
    return r;
  }

  /** Runs cycles every CYCLE_MS until `done` holds (or throws after `timeoutMs`). */
  async function cycleUntil(
    done: () => Promise<boolean> | boolean,
    timeoutMs: number,
    what: string,
  ): Promise<void> {
    await waitFor(
      async () => {
        await cycle();
        return done();
      },
      timeoutMs,
      { what, intervalMs: CYCLE_MS },
    );
  }

  async function ticket(node: string): Promise<Ticket | null> {
    const raw = (await world.cluster.getNode(node, signal)).annotations[TICKET_ANNOTATION];
    return raw === undefined ? null : parseTicket(raw, node);
  }

  /** Sum of a metric's values (all label sets). */
  async function gauge(name: string): Promise<number> {
    const m = await metrics.registry.getSingleMetric(name)?.get();
    return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
  }

  const started = (node: string, action?: string): StepEvent[] =>
    steps.filter(
      (s) =>
        s.node === node && s.status === 'Running' && (action === undefined || s.action === action),
    );

  it('detects the fault and starts remediating before the outage', async () => {
    world.faults.injectFault({ condition: CONDITION, node: NODE_A, atMs: Date.now() });
    await cycleUntil(
      () => started(NODE_A, 'Diagnose').length > 0,
      20_000,
      `${NODE_A}: Diagnose started`,
    );
    assert.deepEqual(
      started(NODE_A).map((s) => s.action),
      ['Cordon', 'Diagnose'],
    );
    assert.equal((await world.cluster.getNode(NODE_A, signal)).unschedulable, true);
    assert.equal(await gauge('aegis_metrics_source_up'), 1);
  });

  let downAt = 0;

  it('while Prometheus is down: queries fail, the source is down, no new fault is acted on, no ticket closes', async () => {
    await prom.kill();
    downAt = Date.now();
    // The world moves on unseen: a new fault on B, while A's Diagnose Job finishes.
    world.faults.injectFault({ condition: CONDITION, node: NODE_B, atMs: downAt });
    const writesBefore = world.cluster.writes().length;
    while (Date.now() - downAt < OUTAGE_MS) {
      const r = await cycle();
      assert.ok(r.queryFailures > 0, 'queries must fail while Prometheus is down');
      assert.equal(await gauge('aegis_metrics_source_up'), 0);
      await delay(CYCLE_MS);
    }
    await engine.controller.idle();
    assert.equal(started(NODE_B).length, 0);
    const touchedB = world.cluster
      .writes()
      .slice(writesBefore)
      .filter((w) => w.by === 'client' && w.target.includes(NODE_B));
    assert.deepEqual(
      touchedB.map((w) => w.method),
      [],
    );
    const a = await ticket(NODE_A);
    assert.ok(
      a !== null && isOpen(a),
      `ticket of ${NODE_A} must stay open: ${a?.status ?? 'none'}`,
    );
    assert.ok(
      a.workflows.some((w) => w.action === 'Diagnose' && w.status === 'Succeeded'),
      'the running Diagnose finished',
    );
  });

  it('while Prometheus is down: no SOP step starts, not even the next rung of a ticket in progress', () => {
    // A step belongs to the cycle that decided it: the last cycle that began before the step.
    // A cycle that queried Prometheus just before the kill decided on fresh data; only cycles
    // that began while it was down must start nothing.
    const cycleOf = (t: number): number =>
      reports.reduce((best, r) => (r.atMs <= t && r.atMs > best ? r.atMs : best), -Infinity);
    const newSteps = steps.filter((s) => {
      const decidedAt = cycleOf(s.atMs);
      return s.status === 'Running' && decidedAt >= downAt && decidedAt < downAt + OUTAGE_MS;
    });
    assert.deepEqual(
      newSteps.map((s) => `${s.node} ${s.action}`),
      [],
    );
    const held = reports.filter((r) => r.atMs >= downAt && r.atMs < downAt + OUTAGE_MS);
    assert.equal(
      held.reduce((n, r) => n + r.started, 0),
      0,
    );
  });

  it('when Prometheus returns on the same port and data: detection resumes and pending work proceeds', async () => {
    await prom.restart();
    await cycleUntil(
      () => started(NODE_B, 'Cordon').length > 0,
      30_000,
      `${NODE_B}: Cordon after the outage`,
    );
    assert.equal(await gauge('aegis_metrics_source_up'), 1);
    // The next rung of A's ladder (shutdown for replacement) runs once Prometheus is back (while
    // the engine defect above stands, it may already have started during the outage).
    await cycleUntil(
      () => started(NODE_A, 'Shutdown').length > 0,
      20_000,
      `${NODE_A}: Shutdown after Diagnose`,
    );
    assert.deepEqual(
      started(NODE_A)
        .slice(0, 2)
        .map((s) => s.action),
      ['Cordon', 'Diagnose'],
    );
  });
});
