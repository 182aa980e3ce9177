import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fixture } from '../../test/agent/fake-host.js';
import { MISSING, TIMEOUT, exited, fakeRunner } from '../../test/agent/fake-runner.js';
import { createGpfsCheck } from './gpfs-check.js';
import { parseMmgetstate, parseMmhealth } from './gpfs-parse.js';
import type { ToolResult } from './tool-runner.js';

const signal = new AbortController().signal;

function gpfs(answers: Record<string, ToolResult>, required = false) {
  const runner = fakeRunner((command) => answers[command.split('/').pop() ?? ''] ?? MISSING);
  return {
    runner,
    check: createGpfsCheck({
      runner,
      binDir: '/usr/lpp/mmfs/bin',
      required,
      timeoutMs: 1000,
      intervalMs: 1000,
    }),
  };
}

describe('GPFS -Y parsers (real output)', () => {
  it('mmgetstate -Y: the daemon state', () => {
    assert.equal(parseMmgetstate(fixture('gpfs/mmgetstate-Y-active.txt')), 'active');
  });

  it('mmhealth node show -Y: component states, %-decoding the fields', () => {
    const states = parseMmhealth(fixture('gpfs/mmhealth-Y-tips.txt'));
    assert.equal(states.length, 9);
    assert.deepEqual(states[0], {
      component: 'NODE',
      entity: 'ib-haswell1.example.com',
      status: 'TIPS',
    });
    const failed = parseMmhealth(fixture('gpfs/mmhealth-Y-failed.txt'));
    assert.deepEqual(
      failed.filter((s) => s.status === 'FAILED').map((s) => s.component),
      ['NODE', 'GPFS'],
    );
  });
});

describe('GPFS check', () => {
  it('an active, healthy node passes all four checks, commands run from the GPFS bin dir', async () => {
    const { runner, check } = gpfs({
      mmgetstate: exited('gpfs/mmgetstate-Y-active.txt'),
      mmhealth: exited('gpfs/mmhealth-Y-tips.txt'),
    });
    const r = await check.run(signal);
    assert.deepEqual(
      r.problems.map((p) => [p.check, p.value]),
      [
        ['GpfsNotInstalled', 0],
        ['GpfsNotInCluster', 0],
        ['GpfsNotStarted', 0],
        ['GpfsTestFailed', 0],
      ],
    );
    assert.deepEqual(
      runner.calls.map((c) => `${c.tool.command} ${c.args.join(' ')}`),
      ['/usr/lpp/mmfs/bin/mmgetstate -Y', '/usr/lpp/mmfs/bin/mmhealth node show -Y'],
    );
  });

  it('FAILED components of mmhealth are GpfsTestFailed, value = their number', async () => {
    const { check } = gpfs({
      mmgetstate: exited('gpfs/mmgetstate-Y-active.txt'),
      mmhealth: exited('gpfs/mmhealth-Y-failed.txt'),
    });
    const r = await check.run(signal);
    assert.deepEqual(
      r.problems.find((p) => p.check === 'GpfsTestFailed'),
      { check: 'GpfsTestFailed', value: 2 },
    );
  });

  it('a node removed from its cluster is GpfsNotInCluster (IBM message 6027-1382)', async () => {
    const { check } = gpfs({ mmgetstate: exited(undefined, 1, 'gpfs/not-in-cluster.txt') });
    const r = await check.run(signal);
    assert.deepEqual(
      r.problems.find((p) => p.check === 'GpfsNotInCluster'),
      { check: 'GpfsNotInCluster', value: 1 },
    );
    assert.notEqual(r.available.GpfsNotStarted, true);
  });

  it('the daemon state down is GpfsNotStarted (EDITED: active → down, a state IBM documents)', async () => {
    const down = fixture('gpfs/mmgetstate-Y-active.txt').replace(':active:', ':down:');
    const runner = fakeRunner((c) =>
      c.endsWith('mmgetstate')
        ? { kind: 'exited', code: 0, stdout: down, stderr: '' }
        : exited('gpfs/mmhealth-Y-tips.txt'),
    );
    const r = await createGpfsCheck({
      runner,
      binDir: '/b',
      required: false,
      timeoutMs: 1,
      intervalMs: 1,
    }).run(signal);
    assert.deepEqual(
      r.problems.find((p) => p.check === 'GpfsNotStarted'),
      { check: 'GpfsNotStarted', value: 1 },
    );
  });

  it('no GPFS: "cannot check", unless the node must have it (GpfsNotInstalled)', async () => {
    const absent = await gpfs({}).check.run(signal);
    assert.deepEqual(absent.problems, []);
    assert.ok(Object.values(absent.available).every((v) => v !== true));
    const required = await gpfs({}, true).check.run(signal);
    assert.deepEqual(required.problems, [{ check: 'GpfsNotInstalled', value: 1 }]);
  });

  it('a hung mmgetstate makes every GPFS condition unknown, not healthy', async () => {
    const r = await gpfs({ mmgetstate: TIMEOUT }).check.run(signal);
    assert.deepEqual(r.problems, []);
    assert.ok(Object.values(r.available).every((v) => v !== true));
  });
});
