/**
 * In the daemon the presence queries run beside the cycles, so a cycle judges its rules with the
 * previous cycle's presence answer. An exporter that falls silent between the two makes its
 * faults vanish from the rules while the presence in use still says it reports: that silence must
 * never read as the fault clearing (no ticket closed, no uncordon, no second ticket when the
 * exporter returns with the fault still there). Checked with a clear delay of 0, where a single
 * unconfirmed quiet cycle would clear.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Config } from '../../src/config/schema.js';
import {
  catalogueOf,
  createSafetyWorld,
  LADDER_CONDITIONS,
  metricValue,
  MIN,
  runFor,
  safetyConfig,
  startEngine,
} from '../fixtures/safety/safety-world.js';

const FAULT = 'Xid48GPUMemoryDBE';

function config(backgroundPresence: boolean): Config {
  const c = safetyConfig({ sop: { settleMs: 0 } });
  return {
    ...c,
    inspect: { ...c.inspect, intervalMs: 1_000, backgroundPresence },
    conditions: { [FAULT]: { clearForMs: 0 } },
  };
}

describe('presence asked in the background', () => {
  it('is on in the product defaults', () => {
    assert.equal(safetyConfig().inspect.backgroundPresence, true);
  });

  for (const backgroundPresence of [true, false]) {
    it(`${backgroundPresence ? 'background' : 'in-cycle'} presence: a silent exporter is not a cleared fault`, async () => {
      const sw = await createSafetyWorld({ nodes: 4, seed: 11 });
      const life = startEngine(sw, {
        config: config(backgroundPresence),
        catalogue: catalogueOf(LADDER_CONDITIONS),
      });
      const node = sw.names[1] ?? '';
      sw.world.faults.injectFault({ condition: FAULT, node, device: '2', atMs: sw.clock.now() });
      await runFor(sw, life, { durationMs: 5_000, intervalMs: 1_000 });
      const before = await sw.ticket(node);
      assert.ok(before !== null && before.status === 'created', 'ticket open');
      assert.equal((await sw.node(node)).unschedulable, true, 'cordoned');
      // Between two cycles: the next one's rules miss the fault, its presence answer predates this.
      sw.world.metrics.staleExporter(node, 'dcgm-exporter');
      await runFor(sw, life, { durationMs: 3 * MIN, intervalMs: 1_000 });
      const during = await sw.ticket(node);
      assert.equal(during?.status, 'created', 'the ticket stays open while the exporter is silent');
      assert.equal(during.creationTime, before.creationTime, 'the same ticket');
      assert.equal((await sw.node(node)).unschedulable, true, 'still cordoned');
      sw.world.metrics.freshExporter(node, 'dcgm-exporter');
      await runFor(sw, life, { durationMs: 10_000, intervalMs: 1_000 });
      const raised = metricValue(
        await life.metricsText(),
        'aegis_condition_raised_total',
        `condition="${FAULT}"`,
      );
      assert.equal(raised, 1, 'raised once: never cleared and raised again');
      const after = await sw.ticket(node);
      assert.equal(after?.creationTime, before.creationTime, 'no second ticket for the same fault');
      assert.equal(
        after.workflows.filter((w) => w.action === 'Uncordon').length,
        0,
        `never uncordoned (${after.workflows.map((w) => `${w.action}:${w.status}`).join(', ')})`,
      );
    });
  }
});
