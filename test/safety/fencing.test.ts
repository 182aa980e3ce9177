/**
 * One actor per node, even with two leaders (issue 12 item 1) and leadership regained = state
 * re-read (item 2), on the simulated fleet with the real engine:
 * - two replicas that both believe they lead decide from the same picture at the same instant:
 *   the loser of the ticket write re-reads it and must not add a second Running step (it did: a
 *   reboot-once Xid 79 node got two reboot Jobs);
 * - a replica whose renewals hang (a pause, a one-way partition) stops writing when its lease could
 *   have passed to another, without waiting for a renewal to fail;
 * - a write by an older epoch is refused by a ticket a newer leader wrote;
 * - a replica that loses and regains the lease re-seeds from the tickets as they are now.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runLoop } from '../../src/daemon.js';
import { LeaseFence, type Fence } from '../../src/engine/fence.js';
import { silentLogger } from '../../src/engine/logger.js';
import { ticketLock } from '../../src/engine/runner.js';
import type { LeaseClient } from '../../src/k8s/cluster.js';
import { Action } from '../../src/sop/sop.js';
import { newTicket, type Ticket } from '../../src/ticket/ticket.js';
import {
  HOUR,
  LADDER_CONDITIONS,
  MIN,
  catalogueOf,
  createSafetyWorld,
  safetyConfig,
  settleSteps,
  startEngine,
  type EngineLife,
  type SafetyWorld,
} from '../fixtures/safety/safety-world.js';
import { TicketLedger } from '../fixtures/safety/ticket-ledger.js';

const CATALOGUE = catalogueOf(LADDER_CONDITIONS);
const CONFIG = safetyConfig();

/** A fence that believes it holds the lease at a fixed epoch (a replica that thinks it leads). */
function believing(epoch: number): Fence {
  return { epoch: () => epoch, remainingMs: () => Number.POSITIVE_INFINITY };
}

async function injectXid79(sw: SafetyWorld, node: string): Promise<void> {
  sw.world.faults.injectFault({
    condition: 'Xid79GPULost',
    device: '3',
    node,
    atMs: sw.clock.now(),
  });
  await sw.clock.advance(0);
}

/** Both replicas run a cycle at the same instant (same node list, same ticket), then settle. */
async function together(sw: SafetyWorld, a: EngineLife, b: EngineLife): Promise<void> {
  const both = Promise.all([a.cycle(), b.cycle()]);
  await sw.clock.advance(0);
  await both;
  await settleSteps(sw, a);
  await settleSteps(sw, b);
}

describe('fencing: one actor per node', () => {
  it('two replicas that both believe they lead start exactly one reboot, never a second Running step', async () => {
    const sw = await createSafetyWorld({ nodes: 4, seed: 12 });
    const ledger = new TicketLedger(sw.world.cluster);
    const node = sw.names[1] ?? '';
    const a = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE, fence: believing(1) });
    const b = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE, fence: believing(2) });
    await injectXid79(sw, node);
    let maxRunning = 0;
    for (let t = 0; t < 2 * HOUR; t += 10_000) {
      await together(sw, a, b);
      ledger.scan();
      const ticket = await sw.ticket(node);
      maxRunning = Math.max(
        maxRunning,
        ticket?.workflows.filter((w) => w.status === 'Running').length ?? 0,
      );
      await sw.clock.advance(10_000);
    }
    ledger.scan();
    assert.equal(maxRunning <= 1, true, `at most one Running step at a time (saw ${maxRunning})`);
    assert.equal(ledger.jobsCreated('restart_node', node), 1, 'exactly one reboot Job ever');
    assert.equal(sw.world.cluster.rebootCount(node), 1);
    assert.equal(ledger.jobsCreated('shutdown_node', node), 0, 'never powered off');
    assert.deepEqual(ledger.problems, []);
  });

  it('a replica whose renewals hang stops writing at its fence, before the other takes over', async () => {
    const sw = await createSafetyWorld({ nodes: 4, seed: 13 });
    const ledger = new TicketLedger(sw.world.cluster);
    const node = sw.names[2] ?? '';
    const durationSeconds = 15;
    const fenceA = new LeaseFence({ clock: sw.clock, durationMs: 15_000, marginMs: 3_000 });
    const fenceB = new LeaseFence({ clock: sw.clock, durationMs: 15_000, marginMs: 3_000 });
    const a = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE, fence: fenceA });
    const b = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE, fence: fenceB });
    let hung = false;
    // a's lease calls hang once `hung` is set (they never answer, never fail): the old loop kept
    // leading until a renewal failed, i.e. forever here.
    const leaseOfA: LeaseClient = {
      acquireOrRenew: (name, holder, seconds, signal) =>
        hung
          ? new Promise((_, reject) => {
              signal.addEventListener('abort', () => {
                reject(new Error('aborted'));
              });
            })
          : a.cluster.acquireOrRenew(name, holder, seconds, signal),
      release: (name, holder, signal) => a.cluster.release(name, holder, signal),
    };
    const stop = new AbortController();
    const loop = (life: EngineLife, client: LeaseClient, holder: string, fence: LeaseFence) =>
      runLoop({
        engine: life.engine,
        clock: sw.clock,
        intervalMs: 5_000,
        lease: { client, name: 'aegis-controller', holder, durationSeconds, fence },
        metrics: life.metrics,
        log: silentLogger,
        signal: stop.signal,
      });
    const loopA = loop(a, leaseOfA, 'a', fenceA);
    await sw.clock.advance(1_000);
    const loopB = loop(b, b.cluster, 'b', fenceB);
    await injectXid79(sw, node);
    while (ledger.jobsCreated('diagnose_node', node) === 0 && sw.clock.now() < HOUR) {
      await sw.clock.advance(5_000);
      ledger.scan();
    }
    assert.equal(sw.world.cluster.leaseHolder('aegis-controller'), 'a');
    hung = true;
    const hungAt = sw.clock.now();
    for (let i = 0; i < (60 * MIN) / 5_000; i++) await sw.clock.advance(5_000);
    assert.equal(sw.world.cluster.leaseHolder('aegis-controller'), 'b', 'b took over');
    const takenAt = b.steps.find((s) => s.status === 'Running')?.atMs ?? Number.POSITIVE_INFINITY;
    const lateA = a.steps.filter((s) => s.status === 'Running' && s.atMs >= hungAt + 15_000);
    assert.deepEqual(lateA, [], 'a began nothing once its lease could have passed');
    assert.ok(takenAt >= hungAt + 12_000, 'b acted only after a had stopped');
    stop.abort();
    await sw.clock.advance(5_000);
    await Promise.all([loopA, loopB]);
    ledger.scan();
    assert.equal(ledger.jobsCreated('restart_node', node), 1, 'exactly one reboot Job ever');
    assert.deepEqual(ledger.problems, []);
  });

  it('the ticket refuses a step from an older epoch, and a second step while one is Running', () => {
    const base = newTicket({ condition: 'Xid79GPULost', reason: 'r', nowMs: 0 });
    const written: Ticket = { ...base, leaderEpoch: 3 };
    const reboot = { action: Action.Reboot, reason: 'reboot' };
    assert.match(ticketLock(written, reboot, 2) ?? '', /newer leader \(epoch 3 > 2\)/);
    assert.equal(ticketLock(written, reboot, 3), undefined);
    assert.equal(ticketLock(written, reboot, undefined), undefined, 'unfenced: no epoch check');
    const running: Ticket = {
      ...written,
      workflows: [{ action: 'Reboot', status: 'Running', seq: 4, time: new Date(0).toISOString() }],
    };
    assert.match(ticketLock(running, reboot, 3) ?? '', /another step is running.*Reboot #4/);
    assert.equal(
      ticketLock(running, { ...reboot, seq: 4 }, 3),
      undefined,
      'resuming it is allowed',
    );
  });

  it('a replica that loses and regains the lease re-reads the tickets (no recovery mid-ladder)', async () => {
    const sw = await createSafetyWorld({ nodes: 4, seed: 14 });
    const node = sw.names[0] ?? '';
    const durationSeconds = 15;
    const fenceA = new LeaseFence({ clock: sw.clock, durationMs: 15_000, marginMs: 3_000 });
    const fenceB = new LeaseFence({ clock: sw.clock, durationMs: 15_000, marginMs: 3_000 });
    const a = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE, fence: fenceA });
    const b = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE, fence: fenceB });
    const stopA = new AbortController();
    const stopB = new AbortController();
    let partitioned = false;
    const leaseOfA: LeaseClient = {
      acquireOrRenew: (name, holder, seconds, signal) =>
        partitioned
          ? Promise.reject(new Error('partitioned'))
          : a.cluster.acquireOrRenew(name, holder, seconds, signal),
      release: (name, holder, signal) => a.cluster.release(name, holder, signal),
    };
    const loopA = runLoop({
      engine: a.engine,
      clock: sw.clock,
      intervalMs: 5_000,
      lease: {
        client: leaseOfA,
        name: 'aegis-controller',
        holder: 'a',
        durationSeconds,
        fence: fenceA,
      },
      metrics: a.metrics,
      log: silentLogger,
      signal: stopA.signal,
    });
    // a leads a quiet fleet for a while (its first cycle seeds from no tickets at all).
    for (let i = 0; i < 6; i++) await sw.clock.advance(5_000);
    partitioned = true;
    for (let i = 0; i < 6; i++) await sw.clock.advance(5_000);
    const loopB = runLoop({
      engine: b.engine,
      clock: sw.clock,
      intervalMs: 5_000,
      lease: {
        client: b.cluster,
        name: 'aegis-controller',
        holder: 'b',
        durationSeconds,
        fence: fenceB,
      },
      metrics: b.metrics,
      log: silentLogger,
      signal: stopB.signal,
    });
    // While b leads, a fault comes and goes through b's ladder up to its reboot.
    await injectXid79(sw, node);
    while (sw.world.cluster.rebootCount(node) === 0 && sw.clock.now() < 3 * HOUR)
      await sw.clock.advance(5_000);
    assert.equal(sw.world.cluster.leaseHolder('aegis-controller'), 'b');
    // b goes away; a is back and takes the lease again.
    stopB.abort();
    partitioned = false;
    await sw.clock.advance(5_000);
    await loopB;
    for (let i = 0; i < (30 * MIN) / 5_000; i++) await sw.clock.advance(5_000);
    assert.equal(sw.world.cluster.leaseHolder('aegis-controller'), 'a', 'a leads again');
    const aActions = a.steps.filter((s) => s.node === node && s.status === 'Running');
    assert.ok(
      !aActions.some((s) => s.action === 'Healthcheck' || s.action === 'Uncordon') ||
        (await sw.ticket(node))?.workflows.some(
          (w) => w.action === 'Reboot' && w.status === 'Succeeded',
        ) === true,
      `a ran no recovery loop mid-ladder: ${aActions.map((s) => s.action).join(',')}`,
    );
    assert.equal(
      sw.world.cluster.rebootCount(node),
      1,
      'no second reboot after regaining the lease',
    );
    stopA.abort();
    await sw.clock.advance(5_000);
    await loopA;
  });
});
