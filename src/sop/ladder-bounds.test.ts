/**
 * Ladder bounds of issue 12: a blocked drain is retried a bounded number of times and then handed
 * off saying why (item 6), folded entries included; the diagnosis in the ticket is re-used, folded
 * or not; one condition's settle period does not hold another condition's ladder; a failed reboot
 * Job is judged by the node's boot id.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aStatus, aTicket, aView, T0 } from '../../test/helpers/builders.js';
import { ManualClock } from '../core/clock.js';
import { parseTicket, serializeTicket, type Workflow } from '../ticket/ticket.js';
import { evaluateRecovery } from './builtin/node.js';
import { blockedDrain, evaluateLadder, type LadderSpec } from './ladder.js';
import { confirmReboot, REBOOT_COMEBACK_MS } from './perform.js';
import { defaultConfig } from '../config/schema.js';
import {
  DEFAULT_BLOCKED_DRAIN,
  DEFAULT_POD_SELECTORS,
  type ApiBridge,
  type Outcome,
  type Verdict,
} from './sop.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const iso = (ms: number): string => new Date(ms).toISOString();
const actionOf = (v: Verdict): string => (v.kind === 'act' ? v.step.action : `skip:${v.reason}`);
const XID79: LadderSpec = {
  id: 'gpu.reboot-once',
  description: 't',
  diagnose: true,
  reboot: { max: 1 },
  shutdown: true,
};
const BLOCKED = 'drain blocked: PodDisruptionBudget blocks eviction of training/train-worker-0';
const blocked = (atMs: number): Partial<Workflow> => ({
  action: 'Reboot',
  status: 'Canceled',
  time: iso(atMs),
  end: iso(atMs + 2 * MIN),
  message: BLOCKED,
});
const diagnosedEntries: Partial<Workflow>[] = [
  { action: 'Cordon' },
  { action: 'Diagnose', condition: 'Xid79GPULost' },
];
const status = aStatus({ condition: 'Xid79GPULost', id: '1' });

describe('the policy defaults are the config defaults', () => {
  it('sop.podSelectors and sop.blockedDrain default to what the ladders assume without config', () => {
    const sop = defaultConfig().sop;
    assert.deepEqual(sop.podSelectors, DEFAULT_POD_SELECTORS);
    assert.deepEqual(sop.blockedDrain, DEFAULT_BLOCKED_DRAIN);
    assert.equal(sop.podSelectors.gpuDevicePlugin, 'app=nvidia-device-plugin-daemonset');
  });
});

describe('blocked drains end (item 6)', () => {
  it('the first attempt goes ahead', () => {
    const ticket = aTicket(diagnosedEntries);
    assert.equal(
      actionOf(evaluateLadder(XID79, aView({ node: { unschedulable: true }, ticket }), status)),
      'Reboot',
    );
  });
  it('after a blocked attempt, waits 10 minutes before the next', () => {
    const ticket = aTicket([...diagnosedEntries, blocked(T0)]);
    const at = (ms: number): string =>
      actionOf(
        evaluateLadder(XID79, aView({ node: { unschedulable: true }, ticket, nowMs: ms }), status),
      );
    assert.match(at(T0 + 5 * MIN), /^skip:drain blocked \(1 of 3 attempts\)/);
    assert.equal(at(T0 + 13 * MIN), 'Reboot');
  });
  it('after three blocked attempts, hands off saying which budget blocked it, how often and how long', () => {
    const ticket = aTicket([
      ...diagnosedEntries,
      blocked(T0),
      blocked(T0 + 12 * MIN),
      blocked(T0 + 24 * MIN),
    ]);
    const v = evaluateLadder(
      XID79,
      aView({ node: { unschedulable: true }, ticket, nowMs: T0 + 40 * MIN }),
      status,
    );
    assert.ok(v.kind === 'act');
    assert.equal(v.step.action, 'HandToHuman');
    assert.equal(v.step.then, 'assign');
    assert.equal(v.step.reason, `${BLOCKED}, for 3 attempts over 40 min`);
  });
  it('counts cancellations folded into the counters (a ticket that overflowed)', () => {
    const ticket = aTicket([...diagnosedEntries, blocked(T0 + 30 * MIN)], {
      counters: { 'Reboot/Canceled': 2 },
    });
    const v = evaluateLadder(
      XID79,
      aView({ node: { unschedulable: true }, ticket, nowMs: T0 + 45 * MIN }),
      status,
    );
    assert.equal(actionOf(v), 'HandToHuman');
    assert.ok(v.kind === 'act' && v.step.reason.endsWith('for 3 attempts over 45 min'));
  });
  it('hands off an hour after the first blocked attempt even with attempts left', () => {
    const ticket = aTicket([...diagnosedEntries, blocked(T0)]);
    const v = blockedDrain(
      aView({
        node: { unschedulable: true },
        ticket,
        nowMs: T0 + 61 * MIN,
        policy: { blockedDrain: { maxAttempts: 10, retryMs: 10 * MIN, maxMs: 60 * MIN } },
      }),
    );
    assert.equal(v === undefined ? 'none' : actionOf(v), 'HandToHuman');
  });
  it('the bounds are policy (config sop.blockedDrain)', () => {
    const ticket = aTicket([...diagnosedEntries, blocked(T0)]);
    const v = blockedDrain(
      aView({
        ticket,
        nowMs: T0 + 3 * MIN,
        policy: { blockedDrain: { maxAttempts: 1, retryMs: MIN, maxMs: 60 * MIN } },
      }),
    );
    assert.equal(v === undefined ? 'none' : actionOf(v), 'HandToHuman');
  });
  it('a blocked shutdown counts too', () => {
    const ticket = aTicket([
      ...diagnosedEntries,
      { action: 'Reboot' },
      { ...blocked(T0), action: 'Shutdown' },
      { ...blocked(T0 + 12 * MIN), action: 'Shutdown' },
      { ...blocked(T0 + 24 * MIN), action: 'Shutdown' },
    ]);
    assert.equal(
      actionOf(
        evaluateLadder(
          XID79,
          aView({ node: { unschedulable: true }, ticket, nowMs: T0 + 2 * 60 * MIN }),
          status,
        ),
      ),
      'HandToHuman',
    );
  });
});

describe('the recovery loop: a reboot after a failed health check is bounded the same way', () => {
  const checked: Partial<Workflow>[] = [
    { action: 'Cordon' },
    { action: 'Healthcheck', status: 'Failed', exitCode: 23 },
  ];
  const recover = (workflows: Partial<Workflow>[], nowMs: number): string =>
    actionOf(
      evaluateRecovery(
        aView({
          node: { unschedulable: true },
          ticket: aTicket(workflows, { cordonedByAegis: true }),
          nowMs,
        }),
        { requireAegisCordon: true },
      ),
    );
  it('a blocked reboot keeps the failed check (no new health check Job), waits, retries', () => {
    assert.match(recover([...checked, blocked(T0)], T0 + 5 * MIN), /^skip:drain blocked/);
    assert.equal(recover([...checked, blocked(T0)], T0 + 13 * MIN), 'Reboot');
  });
  it('three blocked reboots: a human', () => {
    assert.equal(
      recover([...checked, blocked(T0), blocked(T0 + 12 * MIN), blocked(T0 + 24 * MIN)], T0 + HOUR),
      'HandToHuman',
    );
  });
});

describe('the diagnosis in the ticket is re-used (item 6)', () => {
  it('a diagnosis folded away by a long ticket is not run again', () => {
    // 40 blocked attempts overflow the annotation: the Diagnose entry is folded into counters.
    const long = aTicket([
      ...diagnosedEntries,
      ...Array.from({ length: 40 }, (_, i) => blocked(T0 + i * MIN)),
    ]);
    const folded = parseTicket(serializeTicket(long), 'n');
    assert.ok(
      !folded.workflows.some((w) => w.action === 'Diagnose'),
      'the Diagnose entry was folded',
    );
    const v = evaluateLadder(
      { ...XID79, reboot: { max: 5 } },
      aView({
        node: { unschedulable: true },
        ticket: folded,
        nowMs: T0 + 50 * MIN,
        policy: { blockedDrain: { maxAttempts: 100, retryMs: 0, maxMs: 1e9 } },
      }),
      status,
    );
    assert.equal(actionOf(v), 'Reboot', 'no second diagnose Job');
  });
  it('a diagnose step held back (stale data) or cancelled did not diagnose: it runs', () => {
    for (const s of ['Held', 'Canceled'] as const) {
      const ticket = aTicket([
        { action: 'Cordon' },
        { action: 'Diagnose', condition: 'Xid79GPULost', status: s },
      ]);
      assert.equal(
        actionOf(evaluateLadder(XID79, aView({ node: { unschedulable: true }, ticket }), status)),
        'Diagnose',
        s,
      );
    }
  });
  it('another condition of the same ticket is diagnosed on its own', () => {
    const ticket = aTicket(diagnosedEntries);
    assert.equal(
      actionOf(
        evaluateLadder(
          XID79,
          aView({ node: { unschedulable: true }, ticket }),
          aStatus({ condition: 'Xid74NVLinkError' }),
        ),
      ),
      'Diagnose',
    );
  });
});

describe("one condition's settle period holds only its own ladder (simulator finding)", () => {
  const GPFS: LadderSpec = {
    id: 'gpfs.repair',
    description: 't',
    repair: { max: 5 },
    reboot: { max: 1 },
  };
  const XID48: LadderSpec = {
    id: 'gpu.reboot',
    description: 't',
    diagnose: true,
    reboot: { max: 2 },
    shutdown: true,
  };
  const repairedGpfs = aTicket([
    { action: 'Cordon', condition: 'GpfsInactive' },
    { action: 'Repair', condition: 'GpfsInactive', end: iso(T0) },
  ]);
  const view = aView({ node: { unschedulable: true }, ticket: repairedGpfs, nowMs: T0 + MIN });
  it('the repaired condition settles', () => {
    assert.equal(
      actionOf(evaluateLadder(GPFS, view, aStatus({ condition: 'GpfsInactive' }))),
      'skip:settling after Repair',
    );
  });
  it('another condition served by the same fix settles too (no second repair meanwhile)', () => {
    assert.equal(
      actionOf(evaluateLadder(GPFS, view, aStatus({ condition: 'GpfsDown' }))),
      'skip:settling after Repair',
    );
  });
  it('a condition with another ladder takes its step', () => {
    assert.equal(
      actionOf(evaluateLadder(XID48, view, aStatus({ condition: 'Xid48GPUMemoryDBE' }))),
      'Diagnose',
    );
  });
  it('a reboot holds every ladder of the node', () => {
    const rebooted = aTicket([
      { action: 'Cordon', condition: 'Xid48GPUMemoryDBE' },
      { action: 'Reboot', condition: 'Xid48GPUMemoryDBE', end: iso(T0) },
    ]);
    assert.equal(
      actionOf(
        evaluateLadder(
          GPFS,
          aView({ node: { unschedulable: true }, ticket: rebooted, nowMs: T0 + MIN }),
          aStatus({ condition: 'GpfsInactive' }),
        ),
      ),
      'skip:settling after Reboot',
    );
  });
});

describe('a reboot Job that failed is judged by the boot id (item 12)', () => {
  /** A bridge whose node reports `states` in turn (the last one repeats). */
  function bridge(states: { ready: boolean | 'Unknown'; bootId?: string }[]): {
    bridge: ApiBridge;
    clock: ManualClock;
    reads: () => number;
  } {
    const clock = new ManualClock();
    let i = 0;
    const b = {
      clock,
      nodeState: () => Promise.resolve(states[Math.min(i++, states.length - 1)] ?? { ready: true }),
    } as unknown as ApiBridge;
    return { bridge: b, clock, reads: () => i };
  }
  const FAILED: Outcome = { status: 'Failed', message: 'Job reboot-n-3 failed', exitCode: 1 };
  const run = async (b: ReturnType<typeof bridge>, outcome = FAILED): Promise<Outcome> => {
    const p = confirmReboot(b.bridge, 'n', 'boot-0', outcome, new AbortController().signal);
    const state = { done: false };
    void p.finally(() => (state.done = true));
    for (let k = 0; k < 1000 && !isDone(state); k++) await b.clock.advance(10_000);
    return p;
  };
  it('back with a new boot id: Succeeded, saying so', async () => {
    const out = await run(bridge([{ ready: true, bootId: 'boot-1' }]));
    assert.equal(out.status, 'Succeeded');
    assert.match(out.message ?? '', /new boot id.*Job reboot-n-3 failed/);
  });
  it('still booting when the Job gave up: waits for the node, then Succeeded', async () => {
    const b = bridge([
      { ready: 'Unknown', bootId: 'boot-0' },
      { ready: 'Unknown', bootId: 'boot-0' },
      { ready: false, bootId: 'boot-1' },
      { ready: true, bootId: 'boot-1' },
    ]);
    const out = await run(b);
    assert.equal(out.status, 'Succeeded');
    assert.equal(b.reads(), 4);
  });
  it('Ready with the same boot id: it never rebooted — Failed at once', async () => {
    const b = bridge([{ ready: true, bootId: 'boot-0' }]);
    const out = await run(b);
    assert.deepEqual(out, FAILED);
    assert.equal(b.reads(), 1);
  });
  it('not back within the grace period: Failed, saying so', async () => {
    const out = await run(bridge([{ ready: 'Unknown', bootId: 'boot-0' }]));
    assert.equal(out.status, 'Failed');
    assert.match(out.message ?? '', new RegExp(`not back ${REBOOT_COMEBACK_MS / MIN} min later`));
  });
  it('a Succeeded or Canceled outcome is left as it is, without a read', async () => {
    for (const o of [{ status: 'Succeeded' }, { status: 'Canceled' }] as const) {
      const b = bridge([]);
      assert.deepEqual(await run(b, o), o);
      assert.equal(b.reads(), 0);
    }
  });
});

function isDone(state: { readonly done: boolean }): boolean {
  return state.done;
}
