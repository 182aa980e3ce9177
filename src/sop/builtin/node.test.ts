import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aStatus, aTicket, aView, T0 } from '../../../test/helpers/builders.js';
import type { Verdict } from '../sop.js';
import { evaluateRecovery, nodeNotReady } from './node.js';

function actionOf(v: Verdict): string {
  return v.kind === 'act'
    ? `${v.step.action}${v.step.then === undefined ? '' : `->${v.step.then}`}`
    : `skip:${v.reason}`;
}
const ours = (wf: Parameters<typeof aTicket>[0]) => aTicket(wf, { cordonedByAegis: true });
const HOUR = 3_600_000;

describe('recovery loop (NodeCordon only): healthcheck -> uncordon -> resolve', () => {
  const cases: [string, Parameters<typeof aView>[0], string][] = [
    [
      'healthchecks a node Aegis cordoned',
      { node: { unschedulable: true }, ticket: ours([{ action: 'Cordon' }]) },
      'Healthcheck',
    ],
    [
      'closes when only checks happened',
      {
        node: { unschedulable: true },
        ticket: ours([{ action: 'Cordon' }, { action: 'Healthcheck' }]),
      },
      'Uncordon->close',
    ],
    [
      'resolves when something was repaired',
      {
        node: { unschedulable: true },
        ticket: ours([{ action: 'Cordon' }, { action: 'Reboot' }, { action: 'Healthcheck' }]),
      },
      'Uncordon->resolve',
    ],
    [
      'a reboot makes an earlier healthcheck stale',
      {
        node: { unschedulable: true },
        ticket: ours([
          { action: 'Cordon' },
          { action: 'Healthcheck' },
          { action: 'Reboot', end: new Date(T0).toISOString() },
        ]),
      },
      'Healthcheck',
    ],
    [
      'exit 23 (GPU check failed) leads to a reboot',
      {
        node: { unschedulable: true },
        ticket: ours([
          { action: 'Cordon' },
          { action: 'Healthcheck', status: 'Failed', exitCode: 23 },
        ]),
      },
      'Reboot',
    ],
    [
      'exit 25 (cannot check: driver not found yet) never reboots: asks again later',
      {
        node: { unschedulable: true },
        ticket: ours([
          { action: 'Cordon' },
          {
            action: 'Healthcheck',
            status: 'Failed',
            exitCode: 25,
            end: new Date(T0 + HOUR - 60_000).toISOString(),
          },
        ]),
      },
      'skip:healthcheck could not run; asking again later',
    ],
    [
      'exit 25 more than five minutes ago: the healthcheck again',
      {
        node: { unschedulable: true },
        ticket: ours([
          { action: 'Cordon' },
          {
            action: 'Healthcheck',
            status: 'Failed',
            exitCode: 25,
            end: new Date(T0 + HOUR - 6 * 60_000).toISOString(),
          },
        ]),
      },
      'Healthcheck',
    ],
    [
      'exit 25 three times: a human, saying the check could not run',
      {
        node: { unschedulable: true },
        ticket: ours([
          { action: 'Cordon' },
          { action: 'Healthcheck', status: 'Failed', exitCode: 25 },
          { action: 'Healthcheck', status: 'Failed', exitCode: 25 },
          { action: 'Healthcheck', status: 'Failed', exitCode: 25 },
        ]),
      },
      'HandToHuman->assign',
    ],
    [
      'exit 24 after two reboots hands off',
      {
        node: { unschedulable: true },
        ticket: ours([
          { action: 'Cordon' },
          { action: 'Reboot' },
          { action: 'Reboot' },
          { action: 'Healthcheck', status: 'Failed', exitCode: 24 },
        ]),
      },
      'HandToHuman->assign',
    ],
    [
      'exit 21 (row remap failure) powers off for replacement',
      {
        node: { unschedulable: true },
        ticket: ours([
          { action: 'Cordon' },
          { action: 'Healthcheck', status: 'Failed', exitCode: 21 },
        ]),
      },
      'Shutdown',
    ],
    [
      'other exit codes hand off',
      {
        node: { unschedulable: true },
        ticket: ours([
          { action: 'Cordon' },
          { action: 'Healthcheck', status: 'Failed', exitCode: 1 },
        ]),
      },
      'HandToHuman->assign',
    ],
    [
      'a hand cordon is left alone',
      { node: { unschedulable: true } },
      'skip:cordoned by hand; left alone',
    ],
    [
      'a hand cordon is healthchecked when the site allows it',
      { node: { unschedulable: true }, policy: { uncordonManualCordons: true } },
      'Healthcheck',
    ],
    [
      'a node another supervisor owns is left alone',
      {
        node: { unschedulable: true },
        ticket: aTicket([{ action: 'Cordon' }], { cordonedByAegis: true, supervisor: 'bob' }),
      },
      'skip:ticket is owned by bob',
    ],
  ];
  for (const [name, view, want] of cases) {
    it(name, () => {
      assert.equal(actionOf(evaluateRecovery(aView(view), { requireAegisCordon: true })), want);
    });
  }

  it('three failed healthchecks hand off', () => {
    const t = ours([
      { action: 'Cordon' },
      { action: 'Healthcheck', status: 'Failed', exitCode: 23 },
      { action: 'Reboot' },
      { action: 'Healthcheck', status: 'Failed', exitCode: 23 },
      { action: 'Reboot' },
      { action: 'Healthcheck', status: 'Failed', exitCode: 23 },
    ]);
    assert.equal(
      actionOf(
        evaluateRecovery(aView({ node: { unschedulable: true }, ticket: t }), {
          requireAegisCordon: true,
        }),
      ),
      'HandToHuman->assign',
    );
  });
});

describe('NodeNotReady', () => {
  const sop = nodeNotReady.createInstance({} as never);
  it('cordons a NotReady node', () => {
    assert.equal(
      actionOf(
        sop.evaluate(
          aView({ node: { ready: false } }),
          aStatus({ condition: 'NodeNotReady', domain: 'Node', sinceMs: T0 }),
        ),
      ),
      'Cordon',
    );
  });
  it('waits for an hour, then frees stuck pods, then hands off', () => {
    const st = aStatus({ condition: 'NodeNotReady', domain: 'Node', sinceMs: T0 });
    const cordoned = ours([{ action: 'Cordon' }]);
    assert.equal(
      actionOf(
        sop.evaluate(
          aView({
            node: { ready: false, unschedulable: true },
            ticket: cordoned,
            nowMs: T0 + HOUR / 2,
          }),
          st,
        ),
      ),
      'skip:waiting for the node to come back',
    );
    assert.equal(
      actionOf(
        sop.evaluate(
          aView({
            node: { ready: false, unschedulable: true },
            ticket: cordoned,
            nowMs: T0 + 2 * HOUR,
          }),
          st,
        ),
      ),
      'ForceDeletePods',
    );
    const freed = ours([{ action: 'Cordon' }, { action: 'ForceDeletePods' }]);
    assert.equal(
      actionOf(
        sop.evaluate(
          aView({
            node: { ready: false, unschedulable: true },
            ticket: freed,
            nowMs: T0 + 2 * HOUR,
          }),
          st,
        ),
      ),
      'HandToHuman->assign',
    );
  });
});
