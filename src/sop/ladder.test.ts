import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aStatus, aTicket, aView, T0 } from '../../test/helpers/builders.js';
import { evaluateLadder, type LadderSpec } from './ladder.js';
import type { Verdict } from './sop.js';

const GPU_REBOOT: LadderSpec = {
  id: 'gpu.reboot',
  description: 't',
  diagnose: true,
  reboot: { max: 2 },
  shutdown: true,
};

function actionOf(v: Verdict): string {
  return v.kind === 'act' ? v.step.action : `skip:${v.reason}`;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const HOUR = 3_600_000;

describe('ladder: record -> diagnose -> reboot -> shutdown -> human', () => {
  const cases: [string, Parameters<typeof aView>[0], string][] = [
    ['cordons first', {}, 'Cordon'],
    [
      'diagnoses once cordoned',
      { node: { unschedulable: true }, ticket: aTicket([{ action: 'Cordon' }]) },
      'Diagnose',
    ],
    [
      'reboots after diagnose',
      {
        node: { unschedulable: true },
        ticket: aTicket([{ action: 'Cordon' }, { action: 'Diagnose', condition: 'GpuHung' }]),
      },
      'Reboot',
    ],
    [
      'reboots a second time',
      {
        node: { unschedulable: true },
        ticket: aTicket([
          { action: 'Cordon' },
          { action: 'Diagnose', condition: 'GpuHung' },
          { action: 'Reboot' },
        ]),
      },
      'Reboot',
    ],
    [
      'shuts down after two successful reboots',
      {
        node: { unschedulable: true },
        ticket: aTicket([
          { action: 'Cordon' },
          { action: 'Diagnose', condition: 'GpuHung' },
          { action: 'Reboot' },
          { action: 'Reboot' },
        ]),
      },
      'Shutdown',
    ],
    [
      'never shuts down a critical node: hands off instead',
      {
        node: { unschedulable: true, labels: { 'aegis.io/critical': 'true' } },
        ticket: aTicket([
          { action: 'Cordon' },
          { action: 'Diagnose', condition: 'GpuHung' },
          { action: 'Reboot' },
          { action: 'Reboot' },
        ]),
      },
      'HandToHuman',
    ],
    [
      'level 0 never reboots: hands off',
      {
        node: { unschedulable: true },
        policy: { level: 0 },
        ticket: aTicket([{ action: 'Cordon' }, { action: 'Diagnose', condition: 'GpuHung' }]),
      },
      'HandToHuman',
    ],
    [
      'two failed reboots move on to shutdown',
      {
        node: { unschedulable: true },
        ticket: aTicket([
          { action: 'Cordon' },
          { action: 'Diagnose', condition: 'GpuHung' },
          { action: 'Reboot', status: 'Failed' },
          { action: 'Reboot', status: 'Failed' },
        ]),
      },
      'Shutdown',
    ],
    [
      'waits for the settle period after a reboot',
      {
        node: { unschedulable: true },
        nowMs: T0 + 60_000,
        ticket: aTicket([
          { action: 'Cordon' },
          { action: 'Diagnose', condition: 'GpuHung' },
          { action: 'Reboot', end: iso(T0) },
        ]),
      },
      'skip:settling after Reboot',
    ],
    [
      'resumes a step left Running by a crash, with its sequence number',
      {
        node: { unschedulable: true },
        ticket: aTicket([{ action: 'Cordon' }, { action: 'Reboot', status: 'Running' }]),
      },
      'Reboot',
    ],
    [
      'a human-owned ticket stops automation',
      { ticket: aTicket([], { supervisor: 'alice' }) },
      'skip:ticket is owned by alice',
    ],
    [
      'hands off a ticket older than the automation window',
      {
        node: { unschedulable: true },
        nowMs: T0 + 49 * HOUR,
        ticket: aTicket([{ action: 'Cordon' }]),
      },
      'HandToHuman',
    ],
    [
      'waits for the human once handed off',
      {
        node: { unschedulable: true },
        ticket: aTicket([
          { action: 'Cordon' },
          { action: 'Diagnose', condition: 'GpuHung' },
          { action: 'Reboot' },
          { action: 'Reboot' },
          { action: 'Shutdown' },
          { action: 'HandToHuman' },
        ]),
      },
      'skip:waiting for a human',
    ],
  ];
  for (const [name, view, want] of cases) {
    it(name, () => {
      assert.equal(actionOf(evaluateLadder(GPU_REBOOT, aView(view), aStatus())), want);
    });
  }

  it('keeps the reboot budget across a change of condition (no GpuHung <-> GpuCheckFailed loop)', () => {
    const ticket = aTicket([
      { action: 'Cordon' },
      { action: 'Diagnose', condition: 'GpuHung' },
      { action: 'Reboot' },
      { action: 'Reboot' },
      { action: 'Diagnose', condition: 'GpuCheckFailed' },
    ]);
    const v = evaluateLadder(
      GPU_REBOOT,
      aView({ node: { unschedulable: true }, ticket }),
      aStatus({ condition: 'GpuCheckFailed' }),
    );
    assert.equal(actionOf(v), 'Shutdown');
  });

  it('counts folded entries in budgets', () => {
    const ticket = aTicket([{ action: 'Cordon' }, { action: 'Diagnose', condition: 'GpuHung' }], {
      counters: { 'Reboot/Succeeded': 2 },
    });
    assert.equal(
      actionOf(
        evaluateLadder(GPU_REBOOT, aView({ node: { unschedulable: true }, ticket }), aStatus()),
      ),
      'Shutdown',
    );
  });

  it('resume carries the step sequence number and params', () => {
    const ticket = aTicket([
      { action: 'Cordon' },
      { action: 'Remedy', status: 'Running', params: { action: 'DropCache' } },
    ]);
    const v = evaluateLadder(
      { id: 'memory.drop-cache', description: 't', remedy: { action: 'DropCache', max: 3 } },
      aView({ node: { unschedulable: true }, ticket }),
      aStatus(),
    );
    assert.ok(v.kind === 'act');
    assert.equal(v.step.seq, 1);
    assert.deepEqual(v.step.params, { action: 'DropCache' });
  });
});

describe('ladder: remedies and special shapes', () => {
  it('remedy up to its budget, then hand off', () => {
    const spec: LadderSpec = {
      id: 'gpu.persistence',
      description: 't',
      remedy: { action: 'EnableGpuPersistence', max: 2 },
    };
    const one = aTicket([{ action: 'Cordon' }, { action: 'Remedy', end: iso(T0) }]);
    assert.equal(
      actionOf(
        evaluateLadder(spec, aView({ node: { unschedulable: true }, ticket: one }), aStatus()),
      ),
      'Remedy',
    );
    const two = aTicket([{ action: 'Cordon' }, { action: 'Remedy' }, { action: 'Remedy' }]);
    assert.equal(
      actionOf(
        evaluateLadder(spec, aView({ node: { unschedulable: true }, ticket: two }), aStatus()),
      ),
      'HandToHuman',
    );
  });

  it('no-cordon SOPs never cordon', () => {
    const spec: LadderSpec = {
      id: 'memory.drop-cache',
      description: 't',
      cordon: false,
      remedy: { action: 'DropCache', max: 3 },
    };
    assert.equal(actionOf(evaluateLadder(spec, aView(), aStatus())), 'Remedy');
  });

  it('cordon-only SOPs stop after cordoning', () => {
    const spec: LadderSpec = { id: 'cpu.pressure', description: 't', cordonOnly: true };
    assert.equal(actionOf(evaluateLadder(spec, aView(), aStatus())), 'Cordon');
    assert.equal(
      actionOf(evaluateLadder(spec, aView({ node: { unschedulable: true } }), aStatus())),
      'skip:cordoned until the pressure clears',
    );
  });

  it('watch-and-wait SOPs hand off only after their delay', () => {
    const spec: LadderSpec = { id: 'disk.pressure', description: 't', humanAfterMs: 24 * HOUR };
    const ticket = aTicket([{ action: 'Cordon' }]);
    assert.equal(
      actionOf(
        evaluateLadder(
          spec,
          aView({ node: { unschedulable: true }, ticket, nowMs: T0 + HOUR }),
          aStatus(),
        ),
      ),
      'skip:watching before hand-off',
    );
    assert.equal(
      actionOf(
        evaluateLadder(
          spec,
          aView({
            node: { unschedulable: true },
            ticket,
            nowMs: T0 + 25 * HOUR,
            policy: { maxTicketAgeMs: 100 * HOUR },
          }),
          aStatus(),
        ),
      ),
      'HandToHuman',
    );
  });

  it('repairs up to five times, then reboots once, then hands off', () => {
    const spec: LadderSpec = {
      id: 'gpfs.repair',
      description: 't',
      repair: { max: 5 },
      reboot: { max: 1 },
    };
    const five = aTicket([
      { action: 'Cordon' },
      ...Array.from({ length: 5 }, () => ({ action: 'Repair' })),
    ]);
    assert.equal(
      actionOf(
        evaluateLadder(spec, aView({ node: { unschedulable: true }, ticket: five }), aStatus()),
      ),
      'Reboot',
    );
  });
});
