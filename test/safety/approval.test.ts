/**
 * Operators in the loop, on the simulated fleet with the real engine (issue 14 item 3 and the
 * fleet-wide controls): a reboot that requires approval waits ("awaiting approval", the ticket
 * names the pending step) until an operator approves it, and the ticket records who approved;
 * dismissed, the node goes to a human; dry-run approves nothing and shows everything; the
 * controls ConfigMap pauses the fleet and resets the storm breaker.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { Config } from '../../src/config/schema.js';
import { TICKET_ANNOTATION } from '../../src/core/types.js';
import type { Ticket } from '../../src/ticket/ticket.js';
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
  type SafetyWorld,
} from '../fixtures/safety/safety-world.js';
import { TicketLedger } from '../fixtures/safety/ticket-ledger.js';

const CATALOGUE = catalogueOf(LADDER_CONDITIONS);

function approvalConfig(dryRun = false): Config {
  const base = safetyConfig({ safety: { dryRun } });
  return { ...base, approval: { rules: [{ actions: ['Reboot', 'Shutdown'] }] } };
}

/** What an operator's `kubectl aegis approve|dismiss` writes. */
async function decide(
  sw: SafetyWorld,
  node: string,
  state: 'approved' | 'dismissed',
  by: string,
): Promise<void> {
  const t = (await sw.ticket(node)) as Ticket;
  assert.equal(t.approval?.state, 'pending', 'a pending approval to decide');
  const at = new Date(sw.clock.now()).toISOString();
  sw.world.cluster.setAnnotation(
    node,
    TICKET_ANNOTATION,
    stringify({
      ...t,
      approval: { ...t.approval, state, by, at },
      operatorLog: [...(t.operatorLog ?? []), { action: state, by, at }],
    }),
  );
}

async function xid79Fleet(config: Config) {
  const sw = await createSafetyWorld({ nodes: 6, seed: 23 });
  const ledger = new TicketLedger(sw.world.cluster);
  const life = startEngine(sw, { config, catalogue: CATALOGUE });
  const node = sw.names[2] ?? '';
  sw.world.faults.injectFault({
    condition: 'Xid79GPULost',
    device: '4',
    node,
    atMs: sw.clock.now(),
    persistence: 'until-reboot',
  });
  return { sw, ledger, life, node };
}

describe('approval mode', () => {
  it('a reboot waits for approval, runs once approved, and the ticket says who approved', async () => {
    const { sw, ledger, life, node } = await xid79Fleet(approvalConfig());
    await runFor(sw, life, { durationMs: HOUR, intervalMs: 20_000 });
    await settleSteps(sw, life);
    ledger.scan();
    assert.equal(ledger.jobsCreated('restart_node', node), 0, 'no reboot without approval');
    const held = (await sw.ticket(node)) as Ticket;
    assert.equal(held.approval?.state, 'pending');
    assert.equal(held.approval.action, 'Reboot');
    assert.ok(
      held.workflows.some(
        (w) => w.status === 'Held' && w.message === 'approval: awaiting approval',
      ),
      'the ticket says why nothing happens',
    );
    await decide(sw, node, 'approved', 'alice@example.com');
    await runFor(sw, life, { durationMs: 30 * MIN, intervalMs: 20_000 });
    await settleSteps(sw, life);
    ledger.scan();
    assert.equal(ledger.jobsCreated('restart_node', node), 1, 'one reboot once approved');
    const t = (await sw.ticket(node)) as Ticket;
    const reboot = t.workflows.find((w) => w.action === 'Reboot' && w.status !== 'Held');
    assert.match(reboot?.approvedBy ?? '', /^alice@example\.com at 20/);
    assert.equal(t.approval, undefined, 'the approval was used up');
    assert.deepEqual(ledger.problems, []);
  });

  it('dismissed: no reboot, the node goes to a human', async () => {
    const { sw, ledger, life, node } = await xid79Fleet(approvalConfig());
    await runFor(sw, life, { durationMs: HOUR, intervalMs: 20_000 });
    await settleSteps(sw, life);
    await decide(sw, node, 'dismissed', 'bob');
    await runFor(sw, life, { durationMs: HOUR, intervalMs: 20_000 });
    await settleSteps(sw, life);
    ledger.scan();
    assert.equal(ledger.jobsCreated('restart_node', node), 0);
    const t = (await sw.ticket(node)) as Ticket;
    assert.equal(t.status, 'assigned');
    assert.match(t.whySRE ?? '', /Reboot dismissed by bob/);
  });

  it('dry-run approves nothing and shows everything', async () => {
    const { sw, life, node } = await xid79Fleet(approvalConfig(true));
    await runFor(sw, life, { durationMs: HOUR, intervalMs: 20_000 });
    const engineWrites = sw.world.cluster.writes().filter((w) => w.by === 'client');
    assert.deepEqual(engineWrites, [], 'dry-run writes nothing');
    const plans = life.steps.filter((s) => s.node === node && s.status === 'DryRun');
    assert.ok(plans.length > 0, 'the plan is shown');
  });
});

describe('fleet-wide operator controls (ConfigMap aegis-control)', () => {
  it('paused by an operator: nothing starts until resumed', async () => {
    const { sw, ledger, life, node } = await xid79Fleet(safetyConfig());
    sw.world.cluster.setControl({ paused: 'true', pausedBy: 'carol' });
    await runFor(sw, life, { durationMs: 30 * MIN, intervalMs: 20_000 });
    await settleSteps(sw, life);
    assert.deepEqual(
      life.steps.filter((s) => s.node === node && s.status === 'Running'),
      [],
      'no step while paused',
    );
    assert.ok(
      life.steps.some((s) => s.status === 'Held' && /paused by carol/.test(s.message ?? '')),
      'the hold names who paused',
    );
    sw.world.cluster.setControl({ paused: 'false' });
    await runFor(sw, life, { durationMs: HOUR, intervalMs: 20_000 });
    await settleSteps(sw, life);
    ledger.scan();
    assert.equal(ledger.jobsCreated('restart_node', node), 1, 'the ladder ran once resumed');
  });

  it('a breaker reset by an operator lets held steps go; a later storm trips it again', async () => {
    const config = safetyConfig({
      safety: { stormMaxNewFaultyNodes: 2, stormMinNewFaultyNodes: 1, maxCordonedFraction: 1 },
    });
    const sw = await createSafetyWorld({ nodes: 12, seed: 29 });
    const life = startEngine(sw, { config, catalogue: CATALOGUE });
    for (const node of sw.names.slice(0, 4))
      sw.world.faults.injectFault({
        condition: 'GpuHung',
        node,
        device: '1',
        atMs: sw.clock.now(),
      });
    await runFor(sw, life, { durationMs: 5 * MIN, intervalMs: 20_000 });
    assert.equal(life.engine.controller.gates.breakerOpen(sw.clock.now()), true, 'tripped');
    sw.world.cluster.setControl({
      breakerResetAt: new Date(sw.clock.now()).toISOString(),
      breakerResetBy: 'dave',
    });
    await runFor(sw, life, { durationMs: 40_000, intervalMs: 20_000 });
    assert.equal(life.engine.controller.gates.breakerOpen(sw.clock.now()), false, 'reset');
    for (const node of sw.names.slice(6, 10))
      sw.world.faults.injectFault({
        condition: 'GpuHung',
        node,
        device: '1',
        atMs: sw.clock.now(),
      });
    await runFor(sw, life, { durationMs: 5 * MIN, intervalMs: 20_000 });
    assert.equal(
      life.engine.controller.gates.breakerOpen(sw.clock.now()),
      true,
      'a new storm trips it',
    );
  });
});
