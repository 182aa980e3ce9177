import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isHealError } from '../core/errors.js';
import { DEFAULT_AGENT_OPTIONS } from './options.js';
import { parseAgentInvocation } from './options-parse.js';

const dir = mkdtempSync(join(tmpdir(), 'agent-opts-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function run(argv: string[], env: NodeJS.ProcessEnv = { NODE_NAME: 'gpu-001' }) {
  const inv = await parseAgentInvocation(argv, env);
  assert.equal(inv.kind, 'run');
  return inv.options;
}

async function rejects(
  argv: string[],
  pattern: RegExp,
  env: NodeJS.ProcessEnv = { NODE_NAME: 'gpu-001' },
) {
  await assert.rejects(
    parseAgentInvocation(argv, env),
    (err: unknown) => isHealError(err, 'CONFIG_INVALID') && pattern.test(err.message),
  );
}

describe('agent options', () => {
  it('defaults, node name from NODE_NAME (downward API)', async () => {
    const o = await run([]);
    assert.equal(o.nodeName, 'gpu-001');
    assert.equal(o.hostRoot, DEFAULT_AGENT_OPTIONS.hostRoot);
    assert.equal(o.toolMode, 'host');
    assert.equal(o.conditions, true);
  });

  it('flags win over the environment and the config file (JSON and YAML)', async () => {
    const json = join(dir, 'a.json');
    writeFileSync(
      json,
      JSON.stringify({
        hostRoot: '/from-file',
        gpfsRequired: true,
        intervals: { gpu: '30s' },
        ignorePorts: ['mlx5_2'],
        roce: { resource: 'rdma/roce' },
      }),
    );
    const o = await run([
      '--config',
      json,
      '--host-root',
      '/from-flag',
      '--ignore-port',
      'mlx5_8',
      '--ignore-port',
      'mlx5_9',
    ]);
    assert.equal(o.hostRoot, '/from-flag');
    assert.equal(o.gpfsRequired, true);
    assert.equal(o.intervals.gpuMs, 30_000);
    assert.equal(o.intervals.smartMs, DEFAULT_AGENT_OPTIONS.intervals.smartMs);
    assert.deepEqual(o.ignorePorts, ['mlx5_8', 'mlx5_9']);
    assert.equal(o.roce.resource, 'rdma/roce');
    const yaml = join(dir, 'b.yaml');
    writeFileSync(yaml, 'toolTimeout: 10s\nexpectLinkLayer:\n  "^mlx5_[0-7]$": InfiniBand\n');
    const y = await run(['--config', yaml]);
    assert.equal(y.toolTimeoutMs, 10_000);
    assert.deepEqual(y.expectLinkLayer, { '^mlx5_[0-7]$': 'InfiniBand' });
  });

  it('--help prints every flag', async () => {
    const inv = await parseAgentInvocation(['--help'], {});
    assert.ok(inv.kind === 'help');
    assert.match(inv.text, /--host-root <value>[\s\S]*--no-conditions/);
  });

  it('bad input is CONFIG_INVALID naming the field', async () => {
    await rejects([], /nodeName: "undefined" is not a node name/, {});
    await rejects(['--tool-mode', 'chroot'], /toolMode/);
    await rejects(['--tool-timeout', 'soon'], /--tool-timeout/);
    await rejects(['--bogus'], /command line: .*bogus/);
    await rejects(['--kube-server', 'https://x'], /kubeTokenFile: required with kubeServer/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ intervals: { gpus: '1s' } }));
    await rejects(['--config', bad], /bad\.json: intervals\.gpus: unknown/);
    writeFileSync(bad, JSON.stringify({ hostroot: '/x' }));
    await rejects(['--config', bad], /bad\.json: hostroot: unknown key/);
    await rejects(['--config', join(dir, 'missing.json')], /--config: cannot read/);
  });
});
