import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FakeHost, fixture } from '../../test/agent/fake-host.js';
import { MISSING, exited, fakeRunner } from '../../test/agent/fake-runner.js';
import { isPanicRecord, readPreviousBoot } from './previous-boot.js';

const hosts: FakeHost[] = [];
after(() => Promise.all(hosts.map((h) => h.close())));
const BOOT = Date.parse('2026-03-01T10:00:00Z');
const HOUR = 3_600_000;

function host(): FakeHost {
  const h = new FakeHost();
  hosts.push(h);
  return h;
}

describe('previous boot (pstore, then journal)', () => {
  it('real pstore records: Panic#1 is a panic, a sysrq Oops is not', () => {
    assert.equal(isPanicRecord(fixture('pstore/panic/dmesg-erst-7530486857247752193')), true);
    assert.equal(isPanicRecord(fixture('pstore/oops/dmesg-erst.txt')), false);
  });

  it('a panic record written just before this boot is found in /sys/fs/pstore', async () => {
    const h = host().file(
      '/sys/fs/pstore/dmesg-erst-7530486857247752193',
      fixture('pstore/panic/dmesg-erst-7530486857247752193'),
      BOOT - HOUR,
    );
    const r = await readPreviousBoot({
      hostRoot: h.root,
      bootTimeMs: BOOT,
      runner: fakeRunner(() => MISSING),
      timeoutMs: 1,
    });
    assert.equal(r.panic, true);
    assert.match(r.detail, /dmesg-erst-7530486857247752193/);
  });

  it('and where systemd-pstore archived it at boot', async () => {
    const h = host().file(
      '/var/lib/systemd/pstore/7530486857247/dmesg-erst-7530486857247752193',
      fixture('pstore/panic/dmesg-erst-7530486857247752193'),
      BOOT + 5_000,
    );
    const r = await readPreviousBoot({
      hostRoot: h.root,
      bootTimeMs: BOOT,
      runner: fakeRunner(() => MISSING),
      timeoutMs: 1,
    });
    assert.equal(r.panic, true);
  });

  it('a panic record older than a day before this boot is not reported again', async () => {
    const h = host().file(
      '/sys/fs/pstore/dmesg-erst-7530486857247752193',
      fixture('pstore/panic/dmesg-erst-7530486857247752193'),
      BOOT - 48 * HOUR,
    );
    const r = await readPreviousBoot({
      hostRoot: h.root,
      bootTimeMs: BOOT,
      runner: fakeRunner(() => MISSING),
      timeoutMs: 1,
    });
    assert.deepEqual([r.available, r.panic], [true, false]);
  });

  it('without pstore, the journal of the previous boot is read (journalctl -k -b -1)', async () => {
    const runner = fakeRunner(() => exited('journal/journalctl-k-gpud-1209.txt'));
    const r = await readPreviousBoot({
      hostRoot: host().root,
      bootTimeMs: BOOT,
      runner,
      timeoutMs: 1,
    });
    assert.deepEqual([r.available, r.panic], [true, false]);
    assert.deepEqual(runner.calls[0]?.args, ['-k', '-b', '-1', '--no-pager', '-o', 'short']);
  });

  it('neither pstore nor a previous boot in the journal: cannot check, with both reasons', async () => {
    const runner = fakeRunner(() => exited(undefined, 1, 'journal/no-previous-boot.txt'));
    const r = await readPreviousBoot({
      hostRoot: host().root,
      bootTimeMs: BOOT,
      runner,
      timeoutMs: 1,
    });
    assert.equal(r.available, false);
    assert.match(
      r.detail,
      /pstore not readable; journalctl: Data from the specified boot \(-1\) is not available/,
    );
  });
});
