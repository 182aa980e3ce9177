/**
 * Crash-safe resume at exact points: between "Running recorded" and "Job created", after the Job
 * succeeded but before "Succeeded" is recorded, in the middle of a hand-off, while a condition is
 * still being re-confirmed after the restart, and a leader hand-off between two runLoops.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, HealError } from '../../src/core/errors.js';
import { runLoop } from '../../src/daemon.js';
import { silentLogger } from '../../src/engine/logger.js';
import type { JobRequest, JobState } from '../../src/k8s/cluster.js';
import { countSteps } from '../../src/ticket/ticket.js';
import type { ApiCall, CallHook } from '../fixtures/safety/kill-switch.js';
import {
  catalogueOf,
  createSafetyWorld,
  HOUR,
  LADDER_CONDITIONS,
  MIN,
  runFor,
  safetyConfig,
  settleSteps,
  startEngine,
  type SafetyWorld,
} from '../fixtures/safety/safety-world.js';
import { TicketLedger } from '../fixtures/safety/ticket-ledger.js';
import { useSafetyFigures } from './figures.js';

const figures = useSafetyFigures();
const CATALOGUE = catalogueOf(LADDER_CONDITIONS);
const CONFIG = safetyConfig();

const isRebootJob = (c: ApiCall): boolean =>
  c.method === 'createJob' && (c.args[0] as JobRequest).kind === 'restart_node';
const rebootJobSucceeded = (c: ApiCall): boolean =>
  c.method === 'getJob' &&
  String(c.args[0]).startsWith('reboot-') &&
  (c.result as JobState | null)?.phase === 'Succeeded';

/** A fault to run a ladder for. */
interface FaultSpec {
  readonly condition: string;
  readonly device: string;
  readonly persistence?: 'survives-reboot';
}

/**
 * Runs an Xid 79 ladder, kills the daemon at the first call `at` selects, waits `downMs` (then
 * runs `whileDown`, e.g. someone deleting a Job), then lets a fresh engine finish. Returns the
 * world and the ledger for assertions.
 */
async function killOnce(
  at: (c: ApiCall) => boolean,
  downMs: number,
  fault: FaultSpec = { condition: 'Xid79GPULost', device: '3' },
  whileDown?: (sw: SafetyWorld) => Promise<void>,
): Promise<{ sw: SafetyWorld; ledger: TicketLedger; node: string }> {
  const sw = await createSafetyWorld({ nodes: 6, seed: 11 });
  const ledger = new TicketLedger(sw.world.cluster);
  const node = sw.names[2] ?? '';
  sw.world.faults.injectFault({ ...fault, node, atMs: sw.clock.now() });
  const hook: CallHook = (c, ks) => {
    if (at(c)) ks.kill(`killed ${c.phase} ${c.method}`);
  };
  const first = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE, hook });
  await runFor(sw, first, { durationMs: HOUR, intervalMs: 10_000 });
  assert.ok(first.cluster.dead, 'the kill point was reached');
  await first.engine.controller.idle();
  figures.tried('crash');
  await sw.clock.advance(downMs);
  await whileDown?.(sw);
  const second = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE });
  await runFor(sw, second, { durationMs: 2 * HOUR, intervalMs: 10_000 });
  await settleSteps(sw, second);
  ledger.scan();
  return { sw, ledger, node };
}

/** Asserts one reboot, recorded once, by one Job; tallies a duplicate otherwise. */
function assertOneReboot(sw: SafetyWorld, ledger: TicketLedger, node: string): void {
  const reboots = sw.world.cluster.rebootCount(node);
  const jobs = ledger.jobsCreated('restart_node', node);
  figures.bad('crash', Math.max(0, reboots - 1), `${node}: ${reboots} reboots for one Xid 79`);
  assert.equal(reboots, 1, 'exactly one reboot');
  assert.equal(jobs, 1, 'exactly one reboot Job');
  assert.equal(ledger.reboots(node).succeeded, 1, 'recorded Succeeded once');
  assert.deepEqual(ledger.problems, []);
}

describe('crash-safe resume at exact points of a reboot', () => {
  it('killed after "Running" was recorded, before the Job was created; back within a minute: the resumed step creates it', async () => {
    const { sw, ledger, node } = await killOnce(
      (c) => isRebootJob(c) && c.phase === 'before',
      20_000,
    );
    assertOneReboot(sw, ledger, node);
    assert.equal((await sw.ticket(node))?.status, 'resolved');
  });

  it('killed after "Running" was recorded, before the Job was created; back after 10 minutes: one reboot, not two', async () => {
    const { sw, ledger, node } = await killOnce(
      (c) => isRebootJob(c) && c.phase === 'before',
      10 * MIN,
    );
    assertOneReboot(sw, ledger, node);
    assert.equal((await sw.ticket(node))?.status, 'resolved');
  });

  it('killed once the reboot Job was created; while down, the Job ran and was deleted: not relaunched', async () => {
    const { sw, ledger, node } = await killOnce(
      (c) => isRebootJob(c) && c.phase === 'after',
      5 * MIN,
      undefined,
      async (w) => {
        const signal = new AbortController().signal;
        const name =
          w.world.cluster
            .writes()
            .find((x) => x.method === 'createJob' && x.target.startsWith('reboot-'))?.target ?? '';
        await w.world.cluster.deleteJob(name, signal);
      },
    );
    assertOneReboot(sw, ledger, node);
  });

  it('killed when the Job was created but the daemon never saw the answer: followed by name, not created again', async () => {
    const { sw, ledger, node } = await killOnce(
      (c) => isRebootJob(c) && c.phase === 'after',
      5 * MIN,
    );
    assertOneReboot(sw, ledger, node);
  });

  it('killed after the reboot Job succeeded, before "Succeeded" was recorded: recorded on resume, no second reboot', async () => {
    const { sw, ledger, node } = await killOnce(
      (c) => rebootJobSucceeded(c) && c.phase === 'after',
      3 * MIN,
    );
    assertOneReboot(sw, ledger, node);
    const t = await sw.ticket(node);
    assert.equal(t?.status, 'resolved');
  });

  it('killed after a shutdown Job was created: the node is powered off once, never twice', async () => {
    const { sw, ledger, node } = await killOnce(
      (c) =>
        c.method === 'createJob' &&
        (c.args[0] as JobRequest).kind === 'shutdown_node' &&
        c.phase === 'after',
      2 * MIN,
      { condition: 'GpuRowRemappingFailure', device: '1' },
    );
    assert.equal(ledger.jobsCreated('shutdown_node', node), 1);
    assert.equal(sw.world.cluster.powerState(node), 'off');
    assert.deepEqual(ledger.problems, []);
  });
});

describe('crash-safe resume keeps what the ticket says', () => {
  it('a hand-off interrupted between "Running" and "Succeeded" still hands the ticket to a human', async () => {
    const handOffWritten = (c: ApiCall): boolean =>
      c.method === 'patchNodeAnnotations' &&
      c.phase === 'after' &&
      /action: HandToHuman\n\s+status: Running/.test(
        Object.values(c.args[1] as Record<string, string>)[0] ?? '',
      );
    const { sw, node } = await killOnce(handOffWritten, MIN, {
      condition: 'IBLost',
      device: 'mlx5_1',
    });
    const t = await sw.ticket(node);
    assert.ok(t !== null);
    assert.equal(countSteps(t, 'HandToHuman', 'Succeeded'), 1, 'the hand-off step completed');
    assert.equal(
      t.status,
      'assigned',
      'the ticket is assigned to a human after the resumed hand-off',
    );
    assert.equal(t.supervisor, 'sre');
  });

  it('a restart after the only reboot of a reboot-once ladder does not reboot the node again', async () => {
    const rebootRecorded = (c: ApiCall): boolean =>
      c.method === 'patchNodeAnnotations' &&
      c.phase === 'after' &&
      /action: Reboot\n\s+status: Succeeded/.test(
        Object.values(c.args[1] as Record<string, string>)[0] ?? '',
      );
    const fault = {
      condition: 'GpuPcieLinkDegraded',
      device: '2',
      persistence: 'survives-reboot' as const,
    };
    const { sw, ledger, node } = await killOnce(rebootRecorded, 6 * MIN, fault);
    const t = await sw.ticket(node);
    assert.ok(t !== null);
    const actions = t.workflows.map((w) => `${w.action}:${w.status}`).join(', ');
    const reboots = sw.world.cluster.rebootCount(node);
    figures.bad(
      'crash',
      Math.max(0, reboots - 1),
      `${node}: ${reboots} reboots on a reboot-once ladder after a restart (${actions})`,
    );
    assert.equal(reboots, 1, `gpu.reboot-once reboots once, restart or not: ${actions}`);
    assert.ok(
      !actions.includes('Healthcheck:Failed'),
      `no health check while the fault is re-confirmed: ${actions}`,
    );
    assert.deepEqual(ledger.problems, []);
  });
});

describe('leader hand-off between two replicas on one Lease', () => {
  for (const how of ['loop aborted', 'partitioned'] as const) {
    it(`the leader is ${how} mid-reboot: the other replica finishes without a second reboot`, async () => {
      const sw = await createSafetyWorld({ nodes: 6, seed: 5 });
      const ledger = new TicketLedger(sw.world.cluster);
      const node = sw.names[1] ?? '';
      let partitioned = false;
      const hookA: CallHook = () => {
        if (partitioned) throw new HealError(ErrorCode.K8sUnavailable, 'replica a is partitioned');
      };
      const a = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE, hook: hookA });
      const b = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE });
      const stopA = new AbortController();
      const stopB = new AbortController();
      const loop = (life: typeof a, holder: string, stop: AbortController): Promise<void> =>
        runLoop({
          engine: life.engine,
          clock: sw.clock,
          intervalMs: 5_000,
          lease: { client: life.cluster, name: 'aegis-controller', holder, durationSeconds: 15 },
          metrics: life.metrics,
          log: silentLogger,
          signal: stop.signal,
        });
      const loopA = loop(a, 'a', stopA);
      await sw.clock.advance(1_000);
      const loopB = loop(b, 'b', stopB);
      sw.world.faults.injectFault({
        condition: 'Xid79GPULost',
        device: '3',
        node,
        atMs: sw.clock.now(),
      });
      while (
        ledger.jobsCreated('restart_node', node) === 0 &&
        sw.clock.now() < Date.UTC(2026, 0, 1, 1)
      ) {
        await sw.clock.advance(5_000);
        ledger.scan();
      }
      assert.equal(sw.world.cluster.leaseHolder('aegis-controller'), 'a');
      await sw.clock.advance(12_000);
      if (how === 'loop aborted') stopA.abort();
      else partitioned = true;
      figures.tried('crash');
      for (let i = 0; i < (90 * MIN) / 5_000; i++) await sw.clock.advance(5_000);
      assert.equal(sw.world.cluster.leaseHolder('aegis-controller'), 'b', 'b took over');
      stopA.abort();
      stopB.abort();
      await sw.clock.advance(5_000);
      await Promise.all([loopA, loopB]);
      ledger.scan();
      const reboots = sw.world.cluster.rebootCount(node);
      figures.bad(
        'crash',
        Math.max(0, reboots - 1),
        `leader hand-off (${how}): ${reboots} reboots`,
      );
      assert.equal(reboots, 1);
      assert.equal(ledger.jobsCreated('restart_node', node), 1);
      assert.ok(
        b.steps.some((s) => s.node === node && s.action === 'Reboot' && s.status === 'Succeeded'),
        'b recorded the reboot',
      );
      assert.equal((await sw.ticket(node))?.status, 'resolved');
      assert.deepEqual(ledger.problems, []);
    });
  }
});
