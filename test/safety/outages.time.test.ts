/**
 * Jobs and time going wrong: a Job that hangs (the step fails after its deadline and the ladder
 * moves on), a Job deleted mid-run, a node flapping Ready/NotReady (flap damping: no reboot
 * storm), and the clock jumping forward and backward mid-ladder (no duplicate action, no crash).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobRequest } from '../../src/k8s/cluster.js';
import { countSteps } from '../../src/ticket/ticket.js';
import {
  createGuardedFleet,
  sideEffectProblems,
  type GuardedFleet,
} from '../fixtures/safety/consistency.js';
import type { CallHook } from '../fixtures/safety/kill-switch.js';
import {
  catalogueOf,
  HOUR,
  LADDER_CONDITIONS,
  MIN,
  runFor,
  safetyConfig,
} from '../fixtures/safety/safety-world.js';
import { useSafetyFigures } from './figures.js';

const figures = useSafetyFigures({ outage: 6 });
const CATALOGUE = catalogueOf([...LADDER_CONDITIONS, 'NodeFrequentDown']);
const CONFIG = safetyConfig({ safety: { maxCordonedFraction: 0.5 } });

async function assertConsistent(what: string, f: GuardedFleet): Promise<void> {
  const problems = await sideEffectProblems(f);
  figures.tried('outage');
  figures.bad('outage', problems.length, `${what}: ${problems.join('; ')}`);
  figures.bad('input', f.thrown(), `${what}: ${f.thrown()} cycles threw`);
  assert.equal(f.thrown(), 0, 'no cycle threw');
  assert.deepEqual(f.ledger.problems, [], 'no ticket entry lost');
  assert.deepEqual(problems, [], 'every reboot and shutdown is recorded, none repeated');
}

describe('a Job that hangs or is deleted', () => {
  it('a diagnose Job that never finishes: the step fails at its deadline and the ladder moves on', async () => {
    const f = await createGuardedFleet({ config: CONFIG, catalogue: CATALOGUE });
    const node = f.sw.names[1] ?? '';
    f.sw.world.cluster.setJobBehaviour('diagnose_node', { durationMs: 100 * HOUR }, node);
    f.sw.world.faults.injectFault({
      condition: 'Xid79GPULost',
      device: '0',
      node,
      atMs: f.sw.clock.now(),
    });
    await runFor(f.sw, f.life, { durationMs: 2 * HOUR, intervalMs: 20_000 });
    await assertConsistent('hanging diagnose Job', f);
    const t = await f.sw.ticket(node);
    assert.ok(t !== null);
    const diag = t.workflows.find((w) => w.action === 'Diagnose');
    assert.equal(diag?.status, 'Failed', 'the hung step is recorded Failed');
    assert.ok(
      Date.parse(diag.end ?? '') - Date.parse(diag.time ?? '') >= 20 * MIN,
      'after its deadline, not before',
    );
    assert.equal(countSteps(t, 'Reboot', 'Succeeded'), 1, 'the ladder moved on to the reboot');
    assert.equal(f.sw.world.cluster.rebootCount(node), 1);
  });

  it('a reboot Job whose pod never starts: fails at its deadline, retried once, then the next rung', async () => {
    const f = await createGuardedFleet({ config: CONFIG, catalogue: CATALOGUE });
    const node = f.sw.names[2] ?? '';
    f.sw.world.cluster.setJobBehaviour('restart_node', { pendingMs: 100 * HOUR }, node);
    f.sw.world.faults.injectFault({
      condition: 'Xid48GPUMemoryDBE',
      device: '1',
      node,
      atMs: f.sw.clock.now(),
    });
    await runFor(f.sw, f.life, { durationMs: 4 * HOUR, intervalMs: 30_000 });
    await assertConsistent('reboot Job stuck Pending', f);
    const t = await f.sw.ticket(node);
    assert.ok(t !== null);
    assert.equal(countSteps(t, 'Reboot', 'Failed'), 2, 'two failed attempts, no more');
    assert.equal(f.sw.world.cluster.rebootCount(node), 0, 'nothing rebooted');
    assert.ok(countSteps(t, 'Shutdown') + countSteps(t, 'HandToHuman') >= 1, 'the ladder moved on');
  });

  it('the reboot Job deleted by someone before it acted: the step fails, one retry reboots once', async () => {
    let deleted = false;
    const hook: CallHook = (c, ks) => {
      if (deleted || c.method !== 'createJob' || c.phase !== 'after') return;
      const req = c.args[0] as JobRequest;
      if (req.kind !== 'restart_node') return;
      deleted = true;
      void ks.sim.deleteJob(req.name, new AbortController().signal);
    };
    const f = await createGuardedFleet({ config: CONFIG, catalogue: CATALOGUE, hook });
    const node = f.sw.names[3] ?? '';
    f.sw.world.faults.injectFault({
      condition: 'Xid79GPULost',
      device: '5',
      node,
      atMs: f.sw.clock.now(),
    });
    await runFor(f.sw, f.life, { durationMs: 2 * HOUR, intervalMs: 20_000 });
    assert.ok(deleted);
    await assertConsistent('reboot Job deleted', f);
    const t = await f.sw.ticket(node);
    assert.ok(t !== null);
    assert.match(t.workflows.find((w) => w.action === 'Reboot')?.message ?? '', /disappeared/);
    assert.equal(f.sw.world.cluster.rebootCount(node), 1);
    assert.equal(t.status, 'resolved');
  });
});

describe('exporters silent because Aegis powered the node off', () => {
  it('after a shutdown the ticket is still handed to a human (silence of a node that is off is not an outage)', async () => {
    const f = await createGuardedFleet({ config: CONFIG, catalogue: CATALOGUE });
    const node = f.sw.names[6] ?? '';
    f.sw.world.faults.injectFault({
      condition: 'GpuRowRemappingFailure',
      device: '1',
      node,
      atMs: f.sw.clock.now(),
    });
    await runFor(f.sw, f.life, { durationMs: 2 * HOUR, intervalMs: 20_000 });
    await assertConsistent('shutdown then hand-off', f);
    const t = await f.sw.ticket(node);
    assert.ok(t !== null);
    assert.equal(countSteps(t, 'Shutdown', 'Succeeded'), 1);
    assert.equal(f.sw.world.cluster.powerState(node), 'off');
    assert.equal(
      t.status,
      'assigned',
      `handed to a human: ${t.workflows.map((w) => `${w.action}:${w.status}`).join(', ')}`,
    );
  });
});

describe('a node flapping Ready / NotReady', () => {
  it('flapping every 3 minutes for 3 hours: flap damping holds it cordoned, reboots stay within one ladder budget', async () => {
    const f = await createGuardedFleet({ config: CONFIG, catalogue: CATALOGUE });
    const node = f.sw.names[4] ?? '';
    const t0 = f.sw.clock.now();
    let flaps = 0;
    for (let t = t0; t < t0 + 3 * HOUR; t += 3 * MIN, flaps++) {
      f.sw.world.faults.injectFault({
        condition: 'NodeNotReady',
        node,
        atMs: t,
        durationMs: 70_000,
      });
    }
    await runFor(f.sw, f.life, { durationMs: 4 * HOUR, intervalMs: 20_000 });
    await assertConsistent('flapping node', f);
    const mine = f.life.steps.filter((s) => s.node === node && s.status === 'Succeeded');
    const reboots = f.sw.world.cluster.rebootCount(node);
    assert.ok(reboots <= 2, `${reboots} reboots for ${flaps} flaps`);
    assert.ok(mine.filter((s) => s.action === 'Uncordon').length <= 1, 'no cordon/uncordon churn');
    assert.ok(
      mine.filter((s) => s.action === 'Cordon').length <= 2,
      'cordoned once (or once per ticket)',
    );
    for (const n of f.sw.names) if (n !== node) assert.equal(f.sw.world.cluster.rebootCount(n), 0);
  });
});

describe('clock jumps mid-ladder', () => {
  for (const [name, jumpMs] of [
    ['forward 2 hours', 2 * HOUR],
    ['backward 1 hour', -HOUR],
  ] as const) {
    for (const during of ['Diagnose', 'Reboot'] as const) {
      it(`${name} while ${during} runs: no duplicate action, no crash, the ladder ends`, async () => {
        const f = await createGuardedFleet({ config: CONFIG, catalogue: CATALOGUE });
        const node = f.sw.names[5] ?? '';
        f.sw.world.faults.injectFault({
          condition: 'Xid79GPULost',
          device: '2',
          node,
          atMs: f.sw.clock.now(),
        });
        let jumped = false;
        await runFor(f.sw, f.life, {
          durationMs: 5 * HOUR,
          intervalMs: 20_000,
          each: () => {
            if (
              jumped ||
              !f.life.steps.some(
                (s) => s.node === node && s.action === during && s.status === 'Running',
              )
            )
              return;
            jumped = true;
            f.sw.clock.jump(jumpMs);
          },
        });
        assert.ok(jumped, 'the clock jumped');
        await assertConsistent(`clock ${name} during ${during}`, f);
        const jobs = f.sw.world.cluster
          .writes()
          .filter((w) => w.method === 'createJob' && w.detail !== 'exists');
        const names = jobs.map((w) => w.target);
        assert.equal(new Set(names).size, names.length, 'no Job created twice');
        assert.equal(f.sw.world.cluster.rebootCount(node), 1, 'one reboot');
        assert.equal(f.ledger.jobsCreated('diagnose_node', node), 1, 'one diagnosis');
        assert.equal((await f.sw.ticket(node))?.status, 'resolved');
      });
    }
  }
});
