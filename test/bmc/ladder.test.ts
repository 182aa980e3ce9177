/**
 * The PowerCycle rung in the ladders (pure evaluate): when a NotReady node is power-cycled, when a
 * failed reboot Job leads to one, and what a failed power cycle leads to — a hold naming the BMC's
 * error and one more try when nothing was sent, a hand-off naming it otherwise, never a second
 * power cycle of the same fault.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aStatus, aTicket, aView, T0 } from '../helpers/builders.js';
import { nodeNotReady } from '../../src/sop/builtin/node.js';
import { domainLadders } from '../../src/sop/builtin/domains.js';
import { POWER_CYCLE_RETRY_MS } from '../../src/sop/ladder.js';
import {
  Action,
  POWER_CYCLE_EXIT,
  type ApiBridge,
  type OutOfBandBridge,
  type Sop,
  type Verdict,
} from '../../src/sop/sop.js';
import type { Workflow } from '../../src/ticket/ticket.js';

const MIN = 60_000;
const NOT_READY_AFTER = 10 * MIN;

/** A bridge with only an out-of-band side (evaluate reads nothing else). */
function bridgeWith(bmc: 'mapped' | 'none'): ApiBridge {
  const oob: OutOfBandBridge = {
    bmcOf: () =>
      bmc === 'mapped' ? { describe: 'ipmi://10.0.0.7:623' } : { reason: 'no BMC is mapped' },
    notReadyAfterMs: NOT_READY_AFTER,
    powerCycle: () => Promise.reject(new Error('not in evaluate')),
  };
  return { outOfBand: oob } as unknown as ApiBridge;
}

/** evaluate of node.notready, NotReady since T0, at `atMs`, with the ticket's entries. */
function notReady(
  atMs: number,
  workflows: Partial<Workflow>[] = [{ action: 'Cordon' }],
  o: { bmc?: 'mapped' | 'none'; level?: number } = {},
): Verdict {
  const inst = nodeNotReady.createInstance(bridgeWith(o.bmc ?? 'mapped'));
  return inst.evaluate(
    aView({
      node: { unschedulable: true, ready: 'Unknown' },
      ticket: aTicket(workflows, { cordonedByAegis: true }),
      nowMs: atMs,
      policy: { level: o.level ?? 1 },
    }),
    aStatus({ condition: 'NodeNotReady', domain: 'Node', sinceMs: T0, lastSeenMs: atMs }),
  );
}

const at = (ms: number): string => new Date(ms).toISOString();
const failedPowerCycle = (exitCode: number, message: string, endMs: number): Partial<Workflow> => ({
  action: Action.PowerCycle,
  status: 'Failed',
  exitCode,
  message,
  time: at(endMs - MIN),
  end: at(endMs),
});

describe('node.notready with out-of-band power', () => {
  it('waits until NotReady for bmc.notReadyAfterMs, then power-cycles through the BMC', () => {
    assert.deepEqual(notReady(T0 + 9 * MIN), {
      kind: 'skip',
      reason: 'waiting for the node to come back',
    });
    const v = notReady(T0 + NOT_READY_AFTER);
    assert.equal(v.kind, 'act');
    assert.equal(v.step.action, Action.PowerCycle);
    assert.match(
      v.step.reason,
      /node not ready for 10 min: power cycle through ipmi:\/\/10\.0\.0\.7:623/,
    );
  });

  it('without a BMC for the node, or at level 0: the ladder of before (wait, force-delete, human)', () => {
    assert.equal(notReady(T0 + 30 * MIN, undefined, { bmc: 'none' }).kind, 'skip');
    assert.equal(notReady(T0 + 30 * MIN, undefined, { level: 0 }).kind, 'skip');
    const late = notReady(T0 + 61 * MIN, undefined, { bmc: 'none' });
    assert.equal(late.kind === 'act' && late.step.action, Action.ForceDeletePods);
  });

  it('wrong credentials: handed to a human at once, the hand-off naming the BMC error', () => {
    const msg =
      'ipmi://10.0.0.7:623: the BMC refused the credentials for "chassis power status" (RAKP 2 HMAC is invalid) (no power command sent)';
    const v = notReady(T0 + 20 * MIN, [
      { action: 'Cordon' },
      failedPowerCycle(POWER_CYCLE_EXIT.AuthFailed, msg, T0 + 11 * MIN),
    ]);
    assert.equal(v.kind, 'act');
    assert.equal(v.step.action, Action.HandToHuman);
    assert.match(
      v.step.reason,
      /power cycle through ipmi:\/\/10\.0\.0\.7:623 failed: .*RAKP 2 HMAC is invalid/,
    );
  });

  it('BMC unreachable, nothing sent: a hold naming the error, one more try 5 min later, then a human', () => {
    const msg =
      'ipmi://10.0.0.7:623: no IPMI session (Get Auth Capabilities error) (no power command sent)';
    const first = failedPowerCycle(POWER_CYCLE_EXIT.Unreachable, msg, T0 + 11 * MIN);
    const hold = notReady(T0 + 12 * MIN, [{ action: 'Cordon' }, first]);
    assert.equal(hold.kind, 'skip');
    assert.match(
      hold.reason,
      /^holding: .*Get Auth Capabilities error.*; trying the BMC again at /,
    );
    const retry = notReady(T0 + 11 * MIN + POWER_CYCLE_RETRY_MS, [{ action: 'Cordon' }, first]);
    assert.equal(retry.kind === 'act' && retry.step.action, Action.PowerCycle);
    const second = failedPowerCycle(POWER_CYCLE_EXIT.Unreachable, msg, T0 + 17 * MIN);
    const v = notReady(T0 + 30 * MIN, [{ action: 'Cordon' }, first, second]);
    assert.equal(v.kind === 'act' && v.step.action, Action.HandToHuman);
    assert.match(v.kind === 'act' ? v.step.reason : '', /Get Auth Capabilities error/);
  });

  it('a failure after a power command was sent (off never confirmed): a human, never a second cycle', () => {
    const v = notReady(T0 + 40 * MIN, [
      { action: 'Cordon' },
      failedPowerCycle(
        POWER_CYCLE_EXIT.Timeout + POWER_CYCLE_EXIT.AfterCommand,
        'ipmi://10.0.0.7:623 did not report the node off within 2 min; its pods were left alone (not fenced)',
        T0 + 13 * MIN,
      ),
    ]);
    assert.equal(v.kind === 'act' && v.step.action, Action.HandToHuman);
    assert.match(v.kind === 'act' ? v.step.reason : '', /not fenced/);
  });

  it('a node found powered off (shut down by someone) is not powered on: a human', () => {
    const v = notReady(T0 + 20 * MIN, [
      { action: 'Cordon' },
      failedPowerCycle(
        POWER_CYCLE_EXIT.FoundOff,
        'reports the node powered off already',
        T0 + 11 * MIN,
      ),
    ]);
    assert.equal(v.kind === 'act' && v.step.action, Action.HandToHuman);
  });

  it('one successful power cycle per ticket: still NotReady afterwards goes on to the old rungs', () => {
    const done: Partial<Workflow> = {
      action: Action.PowerCycle,
      status: 'Succeeded',
      time: at(T0 + 10 * MIN),
      end: at(T0 + 15 * MIN),
    };
    const v = notReady(T0 + 30 * MIN, [{ action: 'Cordon' }, done]);
    assert.equal(v.kind, 'skip');
    const late = notReady(T0 + 61 * MIN, [{ action: 'Cordon' }, done]);
    assert.equal(late.kind === 'act' && late.step.action, Action.ForceDeletePods);
  });

  it('never powers on a node a ladder shut down', () => {
    const v = notReady(T0 + 30 * MIN, [
      { action: 'Cordon' },
      { action: Action.Shutdown, status: 'Succeeded' },
    ]);
    assert.equal(v.kind, 'skip');
  });
});

describe('a reboot Job that did not complete', () => {
  const gpuReboot = domainLadders.find((s) => s.id === 'gpu.reboot') as Sop;
  const evaluate = (bmc: 'mapped' | 'none'): Verdict =>
    gpuReboot.createInstance(bridgeWith(bmc)).evaluate(
      aView({
        node: { unschedulable: true },
        ticket: aTicket(
          [
            { action: 'Cordon' },
            { action: 'Diagnose', condition: 'GpuHung' },
            {
              action: Action.Reboot,
              status: 'Failed',
              message: 'Job reboot-x failed; the node was not back 20 min later',
            },
          ],
          { cordonedByAegis: true },
        ),
        nowMs: T0 + 3 * 3_600_000,
      }),
      aStatus({ condition: 'GpuHung', lastSeenMs: T0 + 3 * 3_600_000 }),
    );

  it('is followed by a power cycle through the BMC', () => {
    const v = evaluate('mapped');
    assert.equal(v.kind === 'act' && v.step.action, Action.PowerCycle);
    assert.match(v.kind === 'act' ? v.step.reason : '', /the reboot Job did not complete/);
  });

  it('without a BMC: another reboot, as before', () => {
    const v = evaluate('none');
    assert.equal(v.kind === 'act' && v.step.action, Action.Reboot);
  });
});
