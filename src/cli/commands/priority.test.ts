import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { runCliCaptured, type CliRun } from '../main.js';

/** Runs `aegis ...args` in process, capturing stdout and stderr. */
function aegis(...args: string[]): Promise<CliRun> {
  return runCliCaptured(args);
}

const dir = mkdtempSync(join(tmpdir(), 'aegis-cli-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('aegis exit codes', () => {
  const cases: readonly (readonly [string, readonly string[], number, RegExp])[] = [
    ['help is success', ['--help'], 0, /Usage: aegis/],
    ['an unknown command is a usage error', ['no-such-command'], 2, /unknown command/],
    [
      'conflicting flags are a usage error',
      ['conditions', '--json', '--markdown'],
      2,
      /cannot be used/,
    ],
    [
      'a bad domain is an input error',
      ['conditions', '--domain', 'Toaster'],
      2,
      /^aegis: --domain: "Toaster"/,
    ],
    [
      'a missing file is an input error',
      ['priority', 'check', join(dir, 'nope.conf')],
      2,
      /cannot read/,
    ],
  ];
  for (const [title, args, code, pattern] of cases) {
    it(title, async () => {
      const r = await aegis(...args);
      assert.equal(r.code, code);
      assert.match(r.out + r.err, pattern);
    });
  }
});

describe('aegis priority', () => {
  it('check prints ok and the number of entries', async () => {
    const file = join(dir, 'ok.conf');
    writeFileSync(file, '# site overrides\nGpuHung:7\nIBDown:4:true\n');
    const r = await aegis('priority', 'check', file);
    assert.deepEqual([r.code, r.out, r.err], [0, `ok: 2 entries (${file})\n`, '']);
  });

  it('check prints every problem on one line and exits 2', async () => {
    const file = join(dir, 'bad.conf');
    writeFileSync(file, 'GpuHung:x\nGpuHung:3:maybe:id\n');
    const r = await aegis('priority', 'check', file);
    assert.equal(r.code, 2);
    assert.equal(r.err.trimEnd().split('\n').length, 1);
    assert.match(r.err, /bad\.conf:1: priority: "x".*; .*bad\.conf:2: AffectsLoad: "maybe"/);
  });

  it('print writes the default table, or a file merged over it', async () => {
    const plain = await aegis('priority', 'print');
    assert.match(plain.out, /^GpuHung:3:false:all$/m);
    const file = join(dir, 'merge.conf');
    writeFileSync(file, 'GpuHung:7\n');
    const merged = await aegis('priority', 'print', '--file', file);
    assert.match(merged.out, /^GpuHung:7:false:all$/m);
  });
});
