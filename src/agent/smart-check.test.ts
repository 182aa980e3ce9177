import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fixture } from '../../test/agent/fake-host.js';
import { MISSING, exited, fakeRunner } from '../../test/agent/fake-runner.js';
import { createSmartCheck, scanDevices, smartVerdict } from './smart-check.js';

const signal = new AbortController().signal;

describe('smartctl --json (real documents)', () => {
  it('verdicts: passed, failing (smart_status false, exit bit 3), none (open failed)', () => {
    assert.equal(smartVerdict(fixture('smart/smart-pass-sdc.json'), 0), false);
    assert.equal(smartVerdict(fixture('smart/smart-fail2-sdc.json'), 216), true);
    assert.equal(smartVerdict(fixture('smart/smart-nvme0.json'), 0), false);
    assert.equal(smartVerdict(fixture('smart/smart-open-failed.json'), 2), undefined);
    assert.equal(smartVerdict('not json', 0), undefined);
  });

  it('scan lists the drives', () => {
    assert.deepEqual(scanDevices(fixture('smart/scan-nvme.json')), ['/dev/nvme0']);
    assert.equal(scanDevices(fixture('smart/scan-simple.json')).length, 7);
  });
});

describe('SMART check', () => {
  it('the failing drive is DiskSmartFailing{device=sdc}; drives that cannot be opened are skipped', async () => {
    const runner = fakeRunner((_c, args) => {
      if (args.includes('--scan')) return exited('smart/scan-simple.json');
      if (args.includes('/dev/sdc')) return exited('smart/smart-fail2-sdc.json', 216);
      if (args.includes('/dev/sda')) return exited('smart/smart-open-failed.json', 2);
      return exited('smart/smart-pass-sdc.json');
    });
    const r = await createSmartCheck({ runner, timeoutMs: 1, intervalMs: 1 }).run(signal);
    assert.deepEqual(r.problems, [{ check: 'DiskSmartFailing', device: 'sdc', value: 1 }]);
    assert.deepEqual(runner.calls[1]?.args, ['--json', '-H', '/dev/sda']);
  });

  it('a healthy NVMe drive passes', async () => {
    const runner = fakeRunner((_c, args) =>
      exited(args.includes('--scan') ? 'smart/scan-nvme.json' : 'smart/smart-nvme0.json'),
    );
    const r = await createSmartCheck({ runner, timeoutMs: 1, intervalMs: 1 }).run(signal);
    assert.deepEqual(r.problems, [{ check: 'DiskSmartFailing', value: 0 }]);
    assert.equal(r.available.DiskSmartFailing, true);
  });

  it('no smartctl, or no drive with a verdict: cannot check', async () => {
    const none = await createSmartCheck({
      runner: fakeRunner(() => MISSING),
      timeoutMs: 1,
      intervalMs: 1,
    }).run(signal);
    assert.notEqual(none.available.DiskSmartFailing, true);
    const runner = fakeRunner((_c, args) =>
      exited(args.includes('--scan') ? 'smart/scan-nvme.json' : 'smart/smart-open-failed.json', 2),
    );
    const r = await createSmartCheck({ runner, timeoutMs: 1, intervalMs: 1 }).run(signal);
    assert.deepEqual(r.problems, []);
    assert.match(String(r.available.DiskSmartFailing), /no drive gave a SMART verdict/);
  });
});
