import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FakeHost, fixture } from '../../test/agent/fake-host.js';
import { systemClock } from '../core/clock.js';
import { followKmsg } from './kmsg-follower.js';

const hosts: FakeHost[] = [];
/** Every follower is stopped after the tests, also when one failed before its own stop(). */
const followers: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(followers.map((stop) => stop()));
  await Promise.all(hosts.map((h) => h.close()));
});

// The fixtures first: without them a test would fail with followers still polling.
before(() => {
  for (const f of ['kernel/kmsg-gpud-1.log', 'kernel/kmsg-gpud-peermem.log']) fixture(f);
});

async function until(probe: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !probe(); i++) await delay(20);
  assert.ok(probe());
}

function follow(path: string) {
  const lines: string[] = [];
  const available: (boolean | string)[] = [];
  const abort = new AbortController();
  const done = followKmsg({
    path,
    pollMs: 20,
    clock: systemClock,
    signal: abort.signal,
    onLine: (l) => lines.push(l),
    onAvailable: (ok, detail) => available.push(ok ? true : (detail ?? 'false')),
  });
  const stop = async (): Promise<void> => {
    abort.abort();
    await done;
  };
  followers.push(stop);
  return { lines, available, stop };
}

describe('kernel log follower', () => {
  it('a FIFO: the backlog, then live records; available only after the backlog', async () => {
    const h = new FakeHost().kmsgFifo();
    hosts.push(h);
    const capture = fixture('kernel/kmsg-gpud-1.log');
    const f = follow(join(h.root, 'dev/kmsg'));
    await until(() => f.available.length > 0);
    const n = capture.split('\n').filter((l) => l !== '').length;
    await h.kmsgRaw(capture);
    await until(() => f.lines.length === n);
    await h.kmsg(['NVRM: Xid (PCI:0000:06:00): 79, GPU has fallen off the bus.'], 1);
    await until(() => f.lines.length === n + 1);
    assert.match(f.lines[n] ?? '', /^4,1000000,1,-;NVRM: Xid/);
    assert.deepEqual(f.available, [true]);
    await f.stop();
  });

  it('a regular file is followed as it grows', async () => {
    const h = new FakeHost().copy('kernel/kmsg-gpud-peermem.log', '/var/log/kmsg');
    hosts.push(h);
    const path = join(h.root, 'var/log/kmsg');
    const f = follow(path);
    // The capture's last record has no newline yet: it is delivered once the line is complete.
    await until(() => f.lines.length === 7);
    appendFileSync(path, '\n6,4000,1,-;more\n');
    await until(() => f.lines.length === 9);
    assert.equal(f.lines[7], '6,3973,227996662,-;test');
    await f.stop();
  });

  it('a device that cannot be opened is unavailable, with the reason', async () => {
    const h = new FakeHost();
    hosts.push(h);
    const f = follow(join(h.root, 'dev/kmsg'));
    await until(() => f.available.length > 0);
    assert.match(String(f.available[0]), /ENOENT/);
    await f.stop();
  });
});
