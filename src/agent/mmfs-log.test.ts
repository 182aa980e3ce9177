import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FakeHost, fixture } from '../../test/agent/fake-host.js';
import { LogWindow } from './log-window.js';
import { classifyMmfsLine, createMmfsLogCheck } from './mmfs-log.js';

const h = new FakeHost();
after(() => h.close());
const signal = new AbortController().signal;
const HOUR = 3_600_000;

describe("mmfs.log (real lines from sichek's fixture)", () => {
  it('classifies the expel and quorum lines with their own time', () => {
    const hits = fixture('gpfs/mmfs.log.sichek')
      .split('\n')
      .map(classifyMmfsLine)
      .filter((m) => m !== undefined);
    assert.deepEqual(hits, [
      { rule: 'quorum_connection_down', atMs: Date.parse('2024-11-23T01:18:31.152+08:00') },
      { rule: 'expelled', atMs: Date.parse('2024-11-23T03:04:13.799+08:00') },
      { rule: 'expelled', atMs: Date.parse('2024-11-23T03:04:14.148+08:00') },
    ]);
  });

  it('counts the events of the last hour; history older than the window does not count', async () => {
    h.copy('gpfs/mmfs.log.sichek', '/var/adm/ras/mmfs.log.latest');
    const window = new LogWindow(HOUR);
    let now = Date.parse('2024-11-23T03:30:00+08:00');
    const check = createMmfsLogCheck({
      path: join(h.root, 'var/adm/ras/mmfs.log.latest'),
      window,
      clock: { now: () => now, sleep: () => Promise.resolve() },
      intervalMs: 1,
    });
    const r = await check.run(signal);
    assert.equal(r.available.GpfsExpelledFromCluster, true);
    assert.equal(window.count({ source: 'mmfs', rule: 'expelled' }, now), 2);
    assert.equal(window.count({ source: 'mmfs', rule: 'quorum_connection_down' }, now), 0);
    now += HOUR;
    assert.equal(window.count({ source: 'mmfs', rule: 'expelled' }, now), 0);
  });

  it('follows lines appended later, and re-reads a rotated file from the start', async () => {
    const path = join(h.root, 'var/adm/ras/mmfs.log.latest');
    h.file('/var/adm/ras/mmfs.log.latest', '');
    const window = new LogWindow(HOUR);
    const now = Date.parse('2024-11-23T03:30:00+08:00');
    const check = createMmfsLogCheck({
      path,
      window,
      clock: { now: () => now, sleep: () => Promise.resolve() },
      intervalMs: 1,
    });
    await check.run(signal);
    const line =
      fixture('gpfs/mmfs.log.sichek')
        .split('\n')
        .find((l) => l.includes('being expelled')) ?? '';
    appendFileSync(path, `${line}\n`);
    await check.run(signal);
    assert.equal(window.count({ source: 'mmfs', rule: 'expelled' }, now), 1);
  });

  it('no mmfs.log: cannot check', async () => {
    const check = createMmfsLogCheck({
      path: join(h.root, 'nope'),
      window: new LogWindow(HOUR),
      clock: { now: () => 0, sleep: () => Promise.resolve() },
      intervalMs: 1,
    });
    assert.match(String((await check.run(signal)).available.GpfsExpelledFromCluster), /ENOENT/);
  });
});
