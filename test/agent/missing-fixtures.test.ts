/**
 * Missing host fixtures make the kernel-log follower's test fail at once, naming what is missing,
 * instead of hanging with followers still polling (it used to run until killed).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const empty = mkdtempSync(join(tmpdir(), 'aegis-nofixtures-'));
after(() => {
  rmSync(empty, { recursive: true, force: true });
});

/** Runs one test file with the fixtures pointed at `dir`; kills it after `limitMs`. */
function runTestFile(
  file: string,
  dir: string,
  limitMs: number,
): Promise<{ code: number | null; out: string; ms: number; killed: boolean }> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', file], {
    cwd: ROOT,
    // Without the runner's context variable: the child is its own test run, not a subtest.
    env: { ...withoutTestContext(process.env), AEGIS_HOST_FIXTURES: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, limitMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, ms: Date.now() - started, killed });
    });
  });
}

function withoutTestContext(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy.NODE_TEST_CONTEXT;
  return copy;
}

describe('host fixtures missing', () => {
  it('the kmsg follower test fails promptly with a message naming the fixture and directory', async () => {
    const missing = join(empty, 'agent');
    const r = await runTestFile('src/agent/kmsg-follower.test.ts', missing, 30_000);
    assert.equal(r.killed, false, `still running after 30 s:\n${r.out.slice(-2000)}`);
    assert.notEqual(r.code, 0, r.out.slice(-2000));
    assert.ok(
      r.out.includes(`host fixture kernel/kmsg-gpud-1.log not found in ${missing}`),
      r.out.slice(-2000),
    );
    assert.ok(r.ms < 30_000, `${String(r.ms)} ms`);
  });
});
