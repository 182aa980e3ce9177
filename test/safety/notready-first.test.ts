/**
 * NotReady is served first, and a node that is not Ready runs no Job (issue 12, found on the
 * simulator): a node NotReady with a GPU Xid 79 on it got the Xid ladder's diagnose and reboot Jobs,
 * which cannot run on a node whose kubelet is gone. While the node is NotReady only NotReady's own
 * ladder acts; once it is back, the Xid ladder runs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HOUR,
  LADDER_CONDITIONS,
  MIN,
  catalogueOf,
  createSafetyWorld,
  runFor,
  safetyConfig,
  settleSteps,
  startEngine,
} from '../fixtures/safety/safety-world.js';
import { TicketLedger } from '../fixtures/safety/ticket-ledger.js';

const CATALOGUE = catalogueOf(LADDER_CONDITIONS);
const CONFIG = safetyConfig();
const JOB_KINDS = [
  'diagnose_node',
  'restart_node',
  'shutdown_node',
  'remedy_node',
  'repair_node',
  'healthcheck_node',
];

describe('a node NotReady with a GPU Xid', () => {
  it('gets no Job while it is NotReady; the Xid ladder runs once it is back', async () => {
    const sw = await createSafetyWorld({ nodes: 6, seed: 17 });
    const ledger = new TicketLedger(sw.world.cluster);
    const life = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE });
    const node = sw.names[3] ?? '';
    const t0 = sw.clock.now();
    const notReady = sw.world.faults.injectFault({ condition: 'NodeNotReady', node, atMs: t0 });
    sw.world.faults.injectFault({
      condition: 'Xid79GPULost',
      device: '5',
      node,
      atMs: t0,
      persistence: 'until-reboot',
    });
    await runFor(sw, life, { durationMs: 20 * MIN, intervalMs: 20_000 });
    await settleSteps(sw, life);
    ledger.scan();
    assert.equal((await sw.node(node)).ready !== true, true, 'still NotReady');
    for (const kind of JOB_KINDS)
      assert.equal(ledger.jobsCreated(kind, node), 0, `no ${kind} Job on the NotReady node`);
    const first = life.steps.find((s) => s.node === node && s.status === 'Running');
    assert.ok(first !== undefined, 'the node was acted on (cordoned)');
    sw.world.faults.clearFault(notReady, sw.clock.now());
    await runFor(sw, life, { durationMs: 2 * HOUR, intervalMs: 20_000 });
    await settleSteps(sw, life);
    ledger.scan();
    assert.ok(
      ledger.jobsCreated('restart_node', node) >= 1,
      'the Xid ladder rebooted it once back',
    );
    assert.deepEqual(ledger.problems, []);
  });
});
