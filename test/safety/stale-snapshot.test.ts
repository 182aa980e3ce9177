/**
 * A cycle decides from the node list it read at its start. When its queries are slow, a step on a
 * node can end while the cycle waits for them: the list no longer shows that step's writes (its
 * ticket entry, its cordon), and a decision made from it would repeat the step. Such a node waits
 * for the next cycle. Checked with Prometheus answering slowly and steps ending mid-cycle.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  catalogueOf,
  createSafetyWorld,
  LADDER_CONDITIONS,
  MIN,
  runFor,
  safetyConfig,
  settleSteps,
  startEngine,
} from '../fixtures/safety/safety-world.js';

describe('decisions on a node list older than a step', () => {
  for (const latencyMs of [300, 700]) {
    it(`queries taking ${latencyMs} ms each: no step is repeated back to back`, async () => {
      const sw = await createSafetyWorld({ nodes: 8, seed: 5 });
      const config = safetyConfig({
        safety: {
          maxCordonedFraction: 0.75,
          stormMaxNewFaultyNodes: 50,
          stormMaxNewFaultyFraction: 1,
        },
        sop: { settleMs: 0 },
      });
      const life = startEngine(sw, {
        config: { ...config, inspect: { ...config.inspect, intervalMs: 1_000 } },
        catalogue: catalogueOf(LADDER_CONDITIONS),
      });
      sw.world.metrics.slow(latencyMs);
      const faulty = sw.names.slice(0, 4);
      faulty.forEach((node, i) => {
        sw.world.faults.injectFault({
          condition: i % 2 === 0 ? 'Xid79GPULost' : 'Xid48GPUMemoryDBE',
          node,
          device: String(i),
          atMs: sw.clock.now() + i * 1_700,
        });
      });
      await runFor(sw, life, { durationMs: 40 * MIN, intervalMs: 1_000 });
      await settleSteps(sw, life);
      let steps = 0;
      for (const node of faulty) {
        const t = await sw.ticket(node);
        assert.ok(t !== null, `${node} has a ticket`);
        const ws = t.workflows.filter((w) => w.status !== 'Held');
        steps += ws.length;
        assert.equal(ws.filter((w) => w.action === 'Cordon').length, 1, `${node}: one cordon`);
        ws.forEach((w, i) => {
          const prev = ws[i - 1];
          assert.ok(
            prev === undefined || prev.action !== w.action || prev.status !== 'Succeeded',
            `${node}: ${w.action} repeated after it succeeded (${ws.map((x) => x.action).join(', ')})`,
          );
        });
      }
      assert.ok(steps >= 8, `${steps} steps taken`);
    });
  }
});
