/**
 * The agent's two entry points accept the same flags: the lean one the DaemonSet runs
 * (src/agent/main.ts) and `aegis agent` in the full CLI. Bad options exit 2 naming the option.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

const run = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', ...args], {
    encoding: 'utf8',
    env: { ...process.env, NODE_NAME: '' },
  });

describe('agent entry points', () => {
  for (const entry of [['src/agent/main.ts'], ['src/cli/main.ts', 'agent']]) {
    it(`${entry.join(' ')} --help lists the agent flags`, () => {
      const r = run([...entry, '--help']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /Usage: aegis agent[\s\S]*--host-root <value>[\s\S]*--no-conditions/);
    });

    it(`${entry.join(' ')} refuses a bad option with exit status 2`, () => {
      const r = run([...entry, '--tool-mode', 'chroot', '--node-name', 'gpu-001']);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /agent option toolMode: host or direct/);
    });
  }
});
