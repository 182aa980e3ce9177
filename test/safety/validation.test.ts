/**
 * Validation before return to service (issue 17 item 4), on the simulator with the real engine:
 * with `validation.enabled`, a reboot-class ladder goes Reboot → Validate → Uncordon (no quick
 * health check), the pass is written on the node as `aegis.io/certified-until` and its results in
 * the ticket; a failing validation goes to the next rung (another reboot), then a human naming
 * what failed, and the node is never uncordoned on a failed or missing validation. And the pure
 * recovery rung: what follows each kind of Validate entry.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultConfig, type Config } from '../../src/config/schema.js';
import { validationPolicy } from '../../src/engine/controller.js';
import {
  CERTIFIED_UNTIL_ANNOTATION,
  VALIDATION_EXIT,
  type ValidationPolicy,
} from '../../src/jobs/validation.js';
import { evaluateRecovery } from '../../src/sop/builtin/node.js';
import { Action, type Verdict } from '../../src/sop/sop.js';
import type { Workflow } from '../../src/ticket/ticket.js';
import type { JobRequest } from '../../src/k8s/cluster.js';
import type { ApiCall, CallHook } from '../fixtures/safety/kill-switch.js';
import { TicketLedger } from '../fixtures/safety/ticket-ledger.js';
import { aTicket, aView, T0 } from '../helpers/builders.js';
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
} from '../fixtures/safety/safety-world.js';

const VALIDATION: Config['validation'] = {
  ...defaultConfig().validation,
  enabled: true,
  nccl: { gpus: 'all', minBusBandwidthGBps: 150 },
  ib: { device: 'auto', minBandwidthGbps: 90 },
  certifyForMs: 7 * 24 * HOUR,
};
const CONFIG: Config = {
  ...safetyConfig({ safety: { maxCordonedFraction: 0.5 } }),
  validation: VALIDATION,
};
const CAT = catalogueOf(LADDER_CONDITIONS);

/** Finished steps of one node, as `Action:Status`. */
function path(
  steps: readonly { node: string; action: string; status: string }[],
  node: string,
): string[] {
  return steps
    .filter((s) => s.node === node && s.status !== 'Running' && s.status !== 'Held')
    .map((s) => `${s.action}:${s.status}`);
}

describe('validation before return to service (simulator)', () => {
  it('a hung GPU: Cordon → Diagnose → Reboot → Validate → Uncordon, certified for 7 days, results in the ticket', async () => {
    const sw = await createSafetyWorld({ nodes: 8, seed: 31 });
    const life = startEngine(sw, { config: CONFIG, catalogue: CAT });
    const node = sw.names[1] ?? '';
    sw.world.faults.injectFault({ condition: 'GpuHung', device: '2', node, atMs: sw.clock.now() });
    await runFor(sw, life, { durationMs: 3 * HOUR, intervalMs: 30_000 });
    const steps = path(life.steps, node);
    assert.deepEqual(steps, [
      'Cordon:Succeeded',
      'Diagnose:Succeeded',
      'Reboot:Succeeded',
      'Validate:Succeeded',
      'Uncordon:Succeeded',
    ]);
    const validate = life.steps.find(
      (s) => s.node === node && s.action === 'Validate' && s.status === 'Succeeded',
    );
    assert.ok(validate !== undefined);
    const n = await sw.node(node);
    assert.equal(n.unschedulable, false, 'back in service');
    const until = n.annotations[CERTIFIED_UNTIL_ANNOTATION] ?? '';
    assert.match(until, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'RFC 3339');
    assert.equal(Date.parse(until), Math.floor((validate.atMs + 7 * 24 * HOUR) / 1000) * 1000);
    const t = await sw.ticket(node);
    assert.ok(t !== null);
    assert.equal(t.status, 'resolved');
    const entry = t.workflows.find((w) => w.action === 'Validate');
    assert.ok(entry !== undefined);
    assert.equal(entry.params?.['DCGM_LEVEL'], '3');
    assert.match(
      entry.message ?? '',
      /^certified until .*validation passed: DCGM r3 pass \(8 results/,
    );
    assert.match(entry.message ?? '', /NCCL busbw 185 GB\/s at 4 GiB >= 150/);
    const diag = (t.diagnosis ?? []).filter((d) => d.hint.startsWith('validation '));
    assert.deepEqual(
      diag.map((d) => d.hint),
      ['validation dcgm: passed', 'validation nccl: passed', 'validation ib: passed'],
    );
    assert.ok(
      diag.every((d) => d.job === `validate-${node}-3`),
      'the Job named for kubectl logs',
    );
  });

  it('a failing validation goes to the next rung: another reboot, then a human naming what failed; never uncordoned', async () => {
    const sw = await createSafetyWorld({ nodes: 8, seed: 32 });
    const node = sw.names[2] ?? '';
    sw.world.cluster.setJobBehaviour('validate_node', { outcome: 'Failed' }, node);
    const life = startEngine(sw, { config: CONFIG, catalogue: CAT });
    sw.world.faults.injectFault({ condition: 'GpuHung', device: '5', node, atMs: sw.clock.now() });
    await runFor(sw, life, { durationMs: 6 * HOUR, intervalMs: 30_000 });
    assert.deepEqual(path(life.steps, node), [
      'Cordon:Succeeded',
      'Diagnose:Succeeded',
      'Reboot:Succeeded',
      'Validate:Failed',
      'Reboot:Succeeded',
      'Validate:Failed',
      'HandToHuman:Succeeded',
    ]);
    const n = await sw.node(node);
    assert.equal(n.unschedulable, true, 'still cordoned');
    assert.equal(n.annotations[CERTIFIED_UNTIL_ANNOTATION], undefined, 'not certified');
    const t = await sw.ticket(node);
    assert.ok(t !== null);
    assert.equal(t.status, 'assigned');
    assert.match(
      t.whySRE ?? '',
      /validation failed: DCGM r3: 1 failed \(Diagnostic\).*after 2 reboots/,
    );
    const failed = t.workflows.filter((w) => w.action === 'Validate');
    assert.ok(failed.every((w) => w.exitCode === VALIDATION_EXIT.Failed));
    assert.match(failed[0]?.message ?? '', /NCCL all-reduce: wrong results \(1 out of bounds\)/);
  });

  it('validation off (the default): the ladder of before, Reboot → Healthcheck → Uncordon, no certificate', async () => {
    const sw = await createSafetyWorld({ nodes: 8, seed: 33 });
    const life = startEngine(sw, {
      config: safetyConfig({ safety: { maxCordonedFraction: 0.5 } }),
      catalogue: CAT,
    });
    const node = sw.names[3] ?? '';
    sw.world.faults.injectFault({ condition: 'GpuHung', device: '0', node, atMs: sw.clock.now() });
    await runFor(sw, life, { durationMs: 3 * HOUR, intervalMs: 30_000 });
    assert.deepEqual(path(life.steps, node), [
      'Cordon:Succeeded',
      'Diagnose:Succeeded',
      'Reboot:Succeeded',
      'Healthcheck:Succeeded',
      'Uncordon:Succeeded',
    ]);
    assert.equal((await sw.node(node)).annotations[CERTIFIED_UNTIL_ANNOTATION], undefined);
  });
});

describe('a validation across a crash', () => {
  const kills: [string, (c: ApiCall) => boolean][] = [
    [
      'once its Job was created, before the daemon saw the answer',
      (c) =>
        c.method === 'createJob' &&
        c.phase === 'after' &&
        (c.args[0] as JobRequest).kind === 'validate_node',
    ],
    [
      'after the certificate was written, before Succeeded was recorded',
      (c) =>
        c.method === 'patchNodeAnnotations' &&
        c.phase === 'after' &&
        CERTIFIED_UNTIL_ANNOTATION in (c.args[1] as Record<string, unknown>),
    ],
  ];
  for (const [when, at] of kills) {
    it(`killed ${when}: the Job is followed, not relaunched; one Validate, certified, uncordoned`, async () => {
      const sw = await createSafetyWorld({ nodes: 8, seed: 34 });
      const ledger = new TicketLedger(sw.world.cluster);
      const node = sw.names[4] ?? '';
      sw.world.faults.injectFault({
        condition: 'GpuHung',
        device: '1',
        node,
        atMs: sw.clock.now(),
      });
      const hook: CallHook = (c, ks) => {
        if (at(c)) ks.kill(`killed ${c.phase} ${c.method}`);
      };
      const first = startEngine(sw, { config: CONFIG, catalogue: CAT, hook });
      await runFor(sw, first, { durationMs: 3 * HOUR, intervalMs: 30_000 });
      assert.ok(first.cluster.dead, 'the kill point was reached');
      await first.engine.controller.idle();
      await sw.clock.advance(MIN);
      const second = startEngine(sw, { config: CONFIG, catalogue: CAT });
      await runFor(sw, second, { durationMs: 2 * HOUR, intervalMs: 30_000 });
      await settleSteps(sw, second);
      ledger.scan();
      assert.equal(ledger.jobsCreated('validate_node', node), 1, 'one validation Job');
      assert.deepEqual(ledger.problems, []);
      const t = await sw.ticket(node);
      assert.ok(t !== null);
      assert.deepEqual(
        t.workflows.filter((w) => w.action === 'Validate').map((w) => w.status),
        ['Succeeded'],
      );
      assert.equal(t.status, 'resolved');
      const n = await sw.node(node);
      assert.equal(n.unschedulable, false);
      assert.ok(Date.parse(n.annotations[CERTIFIED_UNTIL_ANNOTATION] ?? '') > sw.clock.now());
    });
  }
});

describe('the recovery rung after a reboot-class repair (pure)', () => {
  const policy: ValidationPolicy = validationPolicy(VALIDATION);
  const at = (ms: number): string => new Date(ms).toISOString();
  const recover = (workflows: Partial<Workflow>[], nowMs = T0 + HOUR, level = 1): Verdict =>
    evaluateRecovery(
      aView({
        node: { unschedulable: true },
        ticket: aTicket(workflows, { cordonedByAegis: true }),
        nowMs,
        policy: { level, validation: policy },
      }),
      { requireAegisCordon: true },
    );
  const act = (v: Verdict): string => (v.kind === 'act' ? v.step.action : `skip: ${v.reason}`);

  it("after Reboot, PowerCycle or Repair: Validate with the site's parameters (not a health check)", () => {
    for (const repair of [Action.Reboot, Action.PowerCycle, Action.Repair]) {
      const v = recover([{ action: 'Cordon' }, { action: repair, end: at(T0) }]);
      assert.equal(act(v), 'Validate', repair);
      assert.deepEqual(v.kind === 'act' ? v.step.params : undefined, {
        DCGM_LEVEL: '3',
        NCCL_GPUS: 'all',
        IB_DEVICE: 'auto',
      });
    }
  });

  it('no reboot-class repair in the ticket: the health check as before', () => {
    assert.equal(
      act(recover([{ action: 'Cordon' }, { action: 'Remedy', end: at(T0) }])),
      'Healthcheck',
    );
  });

  it('a reboot folded away (counters only) still needs its validation', () => {
    const v = evaluateRecovery(
      aView({
        node: { unschedulable: true },
        ticket: {
          ...aTicket([{ action: 'Cordon' }], { cordonedByAegis: true }),
          counters: { 'Reboot/Succeeded': 1 },
        },
        nowMs: T0 + HOUR,
        policy: { level: 1, validation: policy },
      }),
      { requireAegisCordon: true },
    );
    assert.equal(act(v), 'Validate');
  });

  it('passed: uncordon and resolve; failed: reboot while the budget lasts, then a human', () => {
    const passed = recover([
      { action: 'Cordon' },
      { action: 'Reboot', end: at(T0) },
      { action: 'Validate', status: 'Succeeded', end: at(T0 + MIN) },
    ]);
    assert.equal(act(passed), 'Uncordon');
    assert.equal(passed.kind === 'act' ? passed.step.then : '', 'resolve');
    const failed: Partial<Workflow> = {
      action: 'Validate',
      status: 'Failed',
      exitCode: VALIDATION_EXIT.Failed,
      message: 'validation failed: NCCL busbw 95 GB/s at 4 GiB < floor 150',
      end: at(T0 + MIN),
    };
    const once = recover([{ action: 'Cordon' }, { action: 'Reboot', end: at(T0) }, failed]);
    assert.equal(act(once), 'Reboot');
    assert.match(once.kind === 'act' ? once.step.reason : '', /NCCL busbw 95 GB\/s/);
    const twice = recover([
      { action: 'Cordon' },
      { action: 'Reboot', end: at(T0) },
      failed,
      { action: 'Reboot', end: at(T0 + 20 * MIN) },
      { ...failed, end: at(T0 + 40 * MIN) },
    ]);
    assert.equal(act(twice), 'HandToHuman');
    assert.match(
      twice.kind === 'act' ? twice.step.reason : '',
      /NCCL busbw 95 GB\/s .*after 2 reboots/,
    );
    assert.equal(
      act(recover([{ action: 'Cordon' }, { action: 'Reboot', end: at(T0) }, failed], T0 + HOUR, 0)),
      'HandToHuman',
      'level 0 reboots nothing',
    );
  });

  it('could not run (a tool missing): asked again 5 min later, 3 times at most, then a human; never a reboot', () => {
    const cannot = (endMs: number): Partial<Workflow> => ({
      action: 'Validate',
      status: 'Failed',
      exitCode: VALIDATION_EXIT.CannotRun,
      message: 'validation could not run: nccl: all_reduce_perf not found on the node',
      end: at(endMs),
    });
    const base: Partial<Workflow>[] = [{ action: 'Cordon' }, { action: 'Reboot', end: at(T0) }];
    assert.match(
      act(recover([...base, cannot(T0 + HOUR - MIN)])),
      /^skip: validation could not run/,
    );
    assert.equal(act(recover([...base, cannot(T0)])), 'Validate');
    const v = recover([...base, cannot(T0), cannot(T0 + 10 * MIN), cannot(T0 + 20 * MIN)]);
    assert.equal(act(v), 'HandToHuman');
    assert.match(
      v.kind === 'act' ? v.step.reason : '',
      /could not run 3 times: .*all_reduce_perf not found/,
    );
  });
});
