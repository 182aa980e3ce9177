import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { ErrorCode, isHealError, type HealError } from '../core/errors.js';
import type { PriorityTable } from './priority-table.js';
import { createPriorityWatcher } from './priority-watcher.js';

const root = mkdtempSync(join(tmpdir(), 'aegis-priority-'));
after(() => {
  rmSync(root, { recursive: true, force: true });
});

let dirs = 0;
/** A fresh directory holding priority.conf with `text`. */
function fixture(text: string): string {
  const dir = join(root, String(++dirs));
  mkdirSync(dir);
  const path = join(dir, 'priority.conf');
  writeFileSync(path, text);
  return path;
}

/**
 * Resolves with the next table onChange reports. The watcher holds no ref on the event loop (it
 * must not keep a daemon alive), so a ref'd deadline keeps the test process waiting, and fails the
 * test instead of hanging if no change comes.
 */
function nextChange(): {
  readonly onChange: (t: PriorityTable) => void;
  readonly changed: Promise<PriorityTable>;
} {
  let resolve: (t: PriorityTable) => void = () => undefined;
  let reject: (err: Error) => void = () => undefined;
  const changed = new Promise<PriorityTable>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const deadline = setTimeout(() => {
    reject(new Error('no change reported within 5 s'));
  }, 5000);
  return {
    onChange: (t) => {
      clearTimeout(deadline);
      resolve(t);
    },
    changed,
  };
}

describe('createPriorityWatcher', () => {
  it('loads the file at start-up', () => {
    const w = createPriorityWatcher({ path: fixture('GpuHung:7\n'), pollIntervalMs: 0 });
    assert.equal(w.current().get('GpuHung')?.priority, 7);
    w.close();
  });

  it('refuses to start on a bad file or a missing one', () => {
    assert.throws(
      () => createPriorityWatcher({ path: fixture('GpuHung:x\n'), pollIntervalMs: 0 }),
      (err) =>
        isHealError(err, ErrorCode.PriorityInvalid) &&
        /priority\.conf:1: priority/.test(err.message),
    );
    assert.throws(
      () => createPriorityWatcher({ path: join(root, 'nope.conf'), pollIntervalMs: 0 }),
      /cannot read/,
    );
  });

  it('takes a good edit, rejects a bad one and keeps the last good table', () => {
    const path = fixture('GpuHung:7\n');
    const errors: HealError[] = [];
    const changes: PriorityTable[] = [];
    const w = createPriorityWatcher({
      path,
      pollIntervalMs: 0,
      onChange: (t) => changes.push(t),
      onError: (e) => errors.push(e),
    });
    writeFileSync(path, 'GpuHung:8\n');
    assert.equal(w.check(), true);
    assert.equal(w.current().get('GpuHung')?.priority, 8);
    writeFileSync(path, 'GpuHung:8\nBogus:1\n');
    assert.equal(w.check(), false);
    assert.equal(w.check(), false, 'the same bad text is reported once');
    assert.equal(w.current().get('GpuHung')?.priority, 8);
    assert.equal(errors.length, 1);
    assert.match(
      errors[0]?.message ?? '',
      /priority\.conf:2: condition: unknown condition "Bogus"/,
    );
    rmSync(path);
    assert.equal(w.check(), false);
    assert.match(errors[1]?.message ?? '', /cannot read priority table/);
    assert.equal(w.current().get('GpuHung')?.priority, 8);
    assert.equal(changes.length, 1);
    w.close();
  });

  it('follows a ConfigMap-style symlink swap through fs.watch', async () => {
    const dir = join(root, 'cm');
    mkdirSync(join(dir, 'v1'), { recursive: true });
    mkdirSync(join(dir, 'v2'));
    writeFileSync(join(dir, 'v1', 'priority.conf'), 'GpuHung:7\n');
    writeFileSync(join(dir, 'v2', 'priority.conf'), 'GpuHung:11\n');
    symlinkSync('v1', join(dir, '..data'));
    symlinkSync(join('..data', 'priority.conf'), join(dir, 'priority.conf'));
    const { onChange, changed } = nextChange();
    const w = createPriorityWatcher({
      path: join(dir, 'priority.conf'),
      pollIntervalMs: 0,
      onChange,
    });
    assert.equal(w.current().get('GpuHung')?.priority, 7);
    symlinkSync('v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    const table = await changed;
    assert.equal(table.get('GpuHung')?.priority, 11);
    assert.equal(w.current(), table);
    w.close();
  });

  it('picks an edit up by polling too', async () => {
    const path = fixture('GpuHung:7\n');
    const { onChange, changed } = nextChange();
    const w = createPriorityWatcher({ path, pollIntervalMs: 20, onChange });
    writeFileSync(path, 'GpuHung:9\n');
    assert.equal((await changed).get('GpuHung')?.priority, 9);
    w.close();
  });
});
