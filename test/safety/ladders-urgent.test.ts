/**
 * Simulator finding (issue 12): a condition whose ladder cannot fix it held the node while another
 * waited — GpfsInactive was repaired five times (a repair and a 5-minute settle each) and Xid 48,
 * raised meanwhile, got its first step 70 minutes later, when GpfsInactive's own reboot happened to
 * clear it. The cause was in the SOPs: the settle period after a step was ticket-wide, so every
 * other ladder of the node skipped while one condition's remedy settled, and the settled ladder,
 * first in order, took the next step again. Now a settle period holds only the ladder it serves
 * (and ladders applying the same fix; a reboot holds every ladder).
 *
 * What stays: one step per node at a time, so the other condition can wait for the step in
 * flight (one repair Job, 10 minutes) — never for the whole ladder.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sideEffectProblems, createGuardedFleet } from '../fixtures/safety/consistency.js';
import {
  catalogueOf,
  HOUR,
  LADDER_CONDITIONS,
  MIN,
  runFor,
  safetyConfig,
} from '../fixtures/safety/safety-world.js';

const CATALOGUE = catalogueOf([...LADDER_CONDITIONS, 'GpfsInactive']);
const CONFIG = safetyConfig({ safety: { maxCordonedFraction: 0.5 } });

describe('a ladder that is waiting, exhausted or handed off never blocks another condition', () => {
  it('GpfsInactive that no repair fixes, then Xid 48: Xid 48 is diagnosed and rebooted while GPFS settles', async () => {
    const f = await createGuardedFleet({ config: CONFIG, catalogue: CATALOGUE });
    const node = f.sw.names[2] ?? '';
    const t0 = f.sw.clock.now();
    f.sw.world.faults.injectFault({
      condition: 'GpfsInactive',
      node,
      atMs: t0,
      persistence: 'survives-reboot',
    });
    const xidAt = t0 + 12 * MIN;
    f.sw.world.faults.injectFault({
      condition: 'Xid48GPUMemoryDBE',
      device: '3',
      node,
      atMs: xidAt,
    });
    await runFor(f.sw, f.life, { durationMs: 3 * HOUR, intervalMs: 20_000 });
    assert.equal(f.thrown(), 0);
    assert.deepEqual(await sideEffectProblems(f), []);
    assert.deepEqual(f.ledger.problems, []);

    const mine = f.life.steps.filter((s) => s.node === node && s.status === 'Running');
    const xid = mine.filter((s) => s.condition === 'Xid48GPUMemoryDBE');
    const first = xid[0];
    assert.ok(first !== undefined, 'Xid 48 got a step of its own (today: none in 3 h)');
    // At most the one GPFS repair Job in flight when it was raised (10 min) stands before it.
    assert.ok(
      first.atMs - xidAt <= 15 * MIN,
      `Xid 48's first step ${Math.round((first.atMs - xidAt) / MIN)} min after it appeared (today: 70+)`,
    );
    const reboot = xid.find((s) => s.action === 'Reboot');
    assert.ok(reboot !== undefined, 'Xid 48 was rebooted by its own ladder');
    const gpfsRepairs = mine.filter((s) => s.condition === 'GpfsInactive' && s.action === 'Repair');
    assert.ok(
      gpfsRepairs.filter((s) => s.atMs < reboot.atMs).length <= 2,
      'before GPFS had spent its repairs',
    );
    assert.equal(f.sw.world.cluster.rebootCount(node), 1, 'one reboot in all');
    // GPFS still has its ladder: the remaining repairs, then a human.
    const t = await f.sw.ticket(node);
    assert.equal(t?.status, 'assigned');
    assert.equal(gpfsRepairs.length, 5);
  });

  it('IBLost handed to a human does not leave Xid 48 unrebooted: the other ladder runs first, then the hand-off', async () => {
    const f = await createGuardedFleet({ config: CONFIG, catalogue: CATALOGUE });
    const node = f.sw.names[2] ?? '';
    const t0 = f.sw.clock.now();
    // IBLost (priority 3): cordon, diagnose, human. Xid 48 (priority 9): diagnose, reboot.
    f.sw.world.faults.injectFault({
      condition: 'IBLost',
      node,
      atMs: t0,
      persistence: 'survives-reboot',
    });
    f.sw.world.faults.injectFault({
      condition: 'Xid48GPUMemoryDBE',
      device: '3',
      node,
      atMs: t0,
    });
    await runFor(f.sw, f.life, { durationMs: 2 * HOUR, intervalMs: 20_000 });
    assert.deepEqual(await sideEffectProblems(f), []);
    const done = f.life.steps.filter((s) => s.node === node && s.status === 'Succeeded');
    const reboot = done.findIndex(
      (s) => s.condition === 'Xid48GPUMemoryDBE' && s.action === 'Reboot',
    );
    const handOff = done.findIndex((s) => s.action === 'HandToHuman');
    assert.ok(reboot !== -1, `Xid 48 rebooted: ${done.map((s) => s.action).join(' ')}`);
    assert.ok(handOff > reboot, 'the hand-off came after the other ladder');
  });
});
