/**
 * The validation Job end to end, short of a cluster: deploy/ops/entrypoint.sh `validate` run for
 * real against a fake host whose dcgmi, all_reduce_perf and ib_write_bw print the real outputs of
 * test/fixtures/validation/ (`nsenter` runs its command in place), then its stdout judged by
 * src/jobs/validation.ts as the controller judges the Job's log. And the arguments the Job passes
 * (the rendered template's) are the ones the script accepts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { jobName } from './job-name.js';
import { toTemplateVars } from './params.js';
import { renderJobTemplate } from './render.js';
import { judgeValidation, type ValidationExpectations } from './validation.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SCRIPT = join(ROOT, 'deploy', 'ops', 'entrypoint.sh');
const FIX = join(ROOT, 'test', 'fixtures', 'validation');
const TOOLS = ['bash', 'sh', 'cat', 'tr', 'tail', 'mktemp', 'rm', 'grep', 'timeout', 'wc', 'date'];
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function realPath(tool: string): string {
  for (const dir of ['/usr/bin', '/bin']) if (existsSync(join(dir, tool))) return join(dir, tool);
  throw new Error(`${tool} not found`);
}

/** A fake host: the given stub tools (name → fixture printed), an HCA with an active port. */
function fakeHost(stubs: Readonly<Record<string, string>>): {
  run: (args: string[]) => { status: number | null; lines: string[]; stderr: string };
} {
  const root = mkdtempSync(join(tmpdir(), 'aegis-validate-'));
  dirs.push(root);
  const bin = join(root, 'bin');
  const tools = join(root, 'tools');
  mkdirSync(bin);
  mkdirSync(tools);
  for (const t of TOOLS) symlinkSync(realPath(t), join(tools, t));
  const stub = (name: string, body: string): void => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  stub('nsenter', 'while [ "$1" != "--" ]; do shift; done; shift; exec "$@"');
  stub('sleep', 'exit 0');
  for (const [name, fixture] of Object.entries(stubs))
    stub(name, `echo "$0 $*" >> '${join(root, 'calls')}'; cat '${join(FIX, fixture)}'`);
  const port = join(root, 'sys', 'class', 'infiniband', 'mlx5_0', 'ports', '1');
  mkdirSync(port, { recursive: true });
  writeFileSync(join(port, 'state'), '4: ACTIVE\n');
  return {
    run(args) {
      const r = spawnSync('bash', [SCRIPT, ...args], {
        encoding: 'utf8',
        env: {
          PATH: [bin, tools].join(delimiter),
          AEGIS_JOB_NAME: 'validate-gpu-7-3',
          AEGIS_SYS_DIR: join(root, 'sys'),
          AEGIS_STATE_DIR: join(root, 'state'),
          TMPDIR: root,
        },
      });
      return { status: r.status, lines: r.stdout.split('\n'), stderr: r.stderr };
    },
  };
}

const ALL: ValidationExpectations = { dcgmLevel: 3, nccl: true, ib: true };
const STUBS = {
  dcgmi: 'dcgm/dcgm-3.1.0-8gpu-pass.txt',
  all_reduce_perf: 'nccl/nccl-tests-119-all-reduce-tail.txt',
  ib_write_bw: 'perftest/perftest-273-write-bw-gbits.txt',
};

describe('entrypoint.sh validate on a fake host', () => {
  it('runs the three tests with the arguments asked, each between its markers; the judge passes it', () => {
    const host = fakeHost(STUBS);
    const r = host.run(['validate', '3', '8', 'auto']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.lines.includes('aegis-validate: begin dcgm level=3'));
    assert.ok(r.lines.includes('aegis-validate: begin nccl gpus=8'));
    assert.ok(r.lines.includes('aegis-validate: begin ib device=mlx5_0'), 'the active HCA');
    // The JSON on one line (newlines and tabs made spaces): the log tail cannot cut it in two.
    const dcgm = r.lines[r.lines.indexOf('aegis-validate: begin dcgm level=3') + 1] ?? '';
    assert.match(dcgm, /"DCGM GPU Diagnostic"/);
    assert.doesNotMatch(dcgm, /\t/);
    const v = judgeValidation(r.lines, { ...ALL, ncclMinBusBwGBps: 90, ibMinGbps: 0.4 });
    assert.equal(v.status, 'passed', v.message);
    assert.deepEqual(
      v.checks.map((c) => c.summary),
      [
        'DCGM r3 pass (17 results, DCGM 3.1.0)',
        'NCCL busbw 95.74 GB/s at 133169160 B >= 90',
        'IB loopback on ib0: 0.48 Gb/s >= 0.4',
      ],
    );
  });

  it('the command lines the host saw: dcgmi diag -r 3 -j, all_reduce_perf -g 8, ib_write_bw server and client', () => {
    const host = fakeHost(STUBS);
    host.run(['validate', '3', '8', 'mlx5_0']);
    const calls = readFileSync(join(dirs.at(-1) ?? '', 'calls'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.replace(/^\S*\//, ''))
      .sort();
    assert.deepEqual(calls, [
      'all_reduce_perf -b 512M -e 4G -f 2 -g 8',
      'dcgmi diag -r 3 -j',
      'ib_write_bw -d mlx5_0 -F --report_gbits -s 1048576 -D 5',
      'ib_write_bw -d mlx5_0 -F --report_gbits -s 1048576 -D 5 localhost',
    ]);
  });

  it('a tool the host lacks is reported missing; the judge says the validation could not run', () => {
    const host = fakeHost({ dcgmi: STUBS.dcgmi, ib_write_bw: STUBS.ib_write_bw });
    const r = host.run(['validate', '3', 'all', 'none']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.lines.includes('aegis-validate: missing nccl all_reduce_perf'));
    assert.ok(r.lines.includes('aegis-validate: skip ib (not asked)'));
    const v = judgeValidation(r.lines, { dcgmLevel: 3, nccl: true, ib: false });
    assert.equal(v.status, 'cannot-run');
  });

  it('level 0, no GPUs, no HCA: nothing is run', () => {
    const host = fakeHost(STUBS);
    const r = host.run(['validate', '0', '0', 'none']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      r.lines.filter((l) => l.startsWith('aegis-validate:')),
      [
        'aegis-validate: skip dcgm (not asked)',
        'aegis-validate: skip nccl (not asked)',
        'aegis-validate: skip ib (not asked)',
      ],
    );
    assert.equal(existsSync(join(dirs.at(-1) ?? '', 'calls')), false);
  });

  it('bad arguments are refused (exit 64) before anything runs', () => {
    for (const args of [
      ['validate', '5', '8', 'auto'],
      ['validate', '3', '65', 'auto'],
      ['validate', '3', '8', '-d'],
      ['validate', '3', '8', 'mlx5_0;id'],
      ['validate', '3', '8'],
    ]) {
      const host = fakeHost(STUBS);
      const r = host.run(args);
      assert.equal(r.status, 64, args.join(' '));
      assert.equal(existsSync(join(dirs.at(-1) ?? '', 'calls')), false);
    }
  });

  it('the rendered validate_node Job passes exactly these arguments', () => {
    const text = readFileSync(join(ROOT, 'deploy', 'jobs', 'validate_node.yaml'), 'utf8');
    const name = jobName('validate_node', 'gpu-7', 3);
    const job = renderJobTemplate(
      text,
      toTemplateVars(
        {
          kind: 'validate_node',
          name,
          node: 'gpu-7',
          params: { DCGM_LEVEL: '3', NCCL_GPUS: 'all', IB_DEVICE: 'auto' },
          activeDeadlineSeconds: 7200,
        },
        { image: 'ops:1' },
      ),
      'validate_node',
    ) as unknown as {
      spec: {
        activeDeadlineSeconds: number;
        template: {
          spec: { containers: { args: string[]; env: { name: string; value: string }[] }[] };
        };
      };
    };
    assert.equal(name, 'validate-gpu-7-3');
    assert.equal(job.spec.activeDeadlineSeconds, 7200);
    const c = job.spec.template.spec.containers[0];
    assert.deepEqual(c?.args, ['validate', '3', 'all', 'auto']);
    assert.ok(c.env.some((e) => e.name === 'AEGIS_JOB_NAME' && e.value === name));
  });
});
