/**
 * A human's decision survives restarts and failovers (issue 12 item 5): a human closes the ticket
 * of a fault that is still reported (they judged it harmless, or will fix it by hand) and uncordons
 * the node. The same occurrence must never re-open a ticket or re-cordon the node — neither in the
 * process that saw the close, nor in a restarted one (which used to compare the close with the
 * condition's in-memory `since`, reset by the restart, and so cordoned the node again).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { TICKET_ANNOTATION } from '../../src/core/types.js';
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

const CATALOGUE = catalogueOf(LADDER_CONDITIONS);
const CONFIG = safetyConfig();

describe('a human closing a ticket', () => {
  for (const restart of [false, true]) {
    it(`the same occurrence is not re-opened${restart ? ' after a restart' : ''}`, async () => {
      const sw = await createSafetyWorld({ nodes: 6, seed: 41 });
      let life = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE });
      const node = sw.names[2] ?? '';
      sw.world.faults.injectFault({
        condition: 'Xid79GPULost',
        device: '2',
        node,
        atMs: sw.clock.now(),
        persistence: 'survives-reboot',
      });
      await runFor(sw, life, { durationMs: 2 * MIN, intervalMs: 20_000 });
      await settleSteps(sw, life);
      const raw = (await sw.node(node)).annotations[TICKET_ANNOTATION] ?? '';
      assert.notEqual(raw, '', 'a ticket was opened');
      // The human closes it and uncordons the node, the fault still reported.
      const closedTicket = {
        ...(parse(raw) as object),
        supervisor: 'alice',
        status: 'closed',
        conclusion: 'GPU 2 is retired by hand; keep the node in service',
      };
      sw.world.cluster.setAnnotation(node, TICKET_ANNOTATION, stringify(closedTicket));
      await sw.world.cluster.setUnschedulable(node, false, new AbortController().signal);
      const closedAt = sw.clock.now();
      if (restart) life = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE });
      await runFor(sw, life, { durationMs: 2 * HOUR, intervalMs: 30_000 });
      await settleSteps(sw, life);
      const after = life.steps.filter(
        (s) => s.node === node && s.atMs >= closedAt && s.status === 'Running',
      );
      assert.deepEqual(
        after.map((s) => s.action),
        [],
        'no step on the node after the human closed its ticket',
      );
      assert.notEqual((await sw.node(node)).unschedulable, true, 'the node stays in service');
      const t = await sw.ticket(node);
      assert.ok(t !== null);
      assert.equal(t.status, 'closed');
      assert.equal(t.supervisor, 'alice');
    });
  }
});
