/**
 * The controller's own bookkeeping (issue 12 item 12): `aegis_ticket_corrupt_total` counts
 * corruptions, not cycles; `aegis_first_action_seconds` has one observation per incident, not one
 * per condition of it; what is kept per node is forgotten when the node leaves the cluster.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SIGNAL_PRESENCE } from '../../src/catalogue/signals.js';
import { TICKET_ANNOTATION, type NodeInfo } from '../../src/core/types.js';
import { createEngine } from '../../src/daemon.js';
import { silentLogger } from '../../src/engine/logger.js';
import type { ClusterClient } from '../../src/k8s/cluster.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import {
  HOUR,
  LADDER_CONDITIONS,
  MIN,
  catalogueOf,
  createSafetyWorld,
  metricSum,
  runFor,
  safetyConfig,
  settleSteps,
  startEngine,
} from '../fixtures/safety/safety-world.js';

const CATALOGUE = catalogueOf(LADDER_CONDITIONS);
const CONFIG = safetyConfig();

describe('controller bookkeeping', () => {
  it('a corrupt ticket is counted once, however many cycles read it', async () => {
    const sw = await createSafetyWorld({ nodes: 4, seed: 51 });
    const life = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE });
    const node = sw.names[1] ?? '';
    sw.world.cluster.setAnnotation(node, TICKET_ANNOTATION, 'condition: [broken\nstatus: {');
    sw.world.faults.injectFault({ condition: 'GpuHung', node, device: '1', atMs: sw.clock.now() });
    await runFor(sw, life, { durationMs: 10 * MIN, intervalMs: 20_000 });
    assert.equal(metricSum(await life.metricsText(), 'aegis_ticket_corrupt_total'), 1);
    sw.world.cluster.setAnnotation(node, TICKET_ANNOTATION, 'condition: [broken again');
    await runFor(sw, life, { durationMs: 5 * MIN, intervalMs: 20_000 });
    assert.equal(
      metricSum(await life.metricsText(), 'aegis_ticket_corrupt_total'),
      2,
      'a new corruption is a new count',
    );
  });

  it('one first-action observation per incident, not per condition of it', async () => {
    const sw = await createSafetyWorld({ nodes: 4, seed: 52 });
    const life = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE });
    const node = sw.names[2] ?? '';
    sw.world.faults.injectFault({
      condition: 'Xid79GPULost',
      node,
      device: '1',
      atMs: sw.clock.now(),
      persistence: 'survives-reboot',
    });
    await runFor(sw, life, { durationMs: 3 * MIN, intervalMs: 20_000 });
    sw.world.faults.injectFault({ condition: 'GpuHung', node, device: '2', atMs: sw.clock.now() });
    await runFor(sw, life, { durationMs: HOUR, intervalMs: 20_000 });
    await settleSteps(sw, life);
    assert.equal(
      metricSum(await life.metricsText(), 'aegis_first_action_seconds_count'),
      1,
      'the second condition of the open incident is not a first action',
    );
  });

  it('a node that leaves the cluster is forgotten', async () => {
    const sw = await createSafetyWorld({ nodes: 4, seed: 53 });
    const gone = new Set<string>();
    const inner = sw.world.cluster;
    const cluster = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'listNodes')
          return async (signal: AbortSignal): Promise<readonly NodeInfo[]> =>
            (await target.listNodes(signal)).filter((n) => !gone.has(n.name));
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as ClusterClient;
    const engine = createEngine({
      cluster,
      metricsSource: sw.world.metrics,
      clock: sw.clock,
      config: CONFIG,
      catalogue: CATALOGUE,
      presence: SIGNAL_PRESENCE,
      priorityOf: () => () => 2,
      metrics: createMetrics(),
      log: silentLogger,
    });
    const node = sw.names[3] ?? '';
    sw.world.faults.injectFault({ condition: 'GpuHung', node, device: '1', atMs: sw.clock.now() });
    const signal = new AbortController().signal;
    const cycles = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const run = engine.controller.cycle(signal);
        await sw.clock.advance(0);
        await run;
        for (let t = 0; t < 20; t++) await sw.clock.advance(1_000);
      }
    };
    await cycles(10);
    assert.ok(engine.controller.rememberedNodes >= 1, 'the faulty node is remembered');
    gone.add(node);
    await cycles(10);
    assert.equal(engine.controller.rememberedNodes, 0, 'forgotten once it left');
  });
});
