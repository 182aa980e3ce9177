/**
 * deploy/ops/entrypoint.sh under a fake host: PATH holds only stub commands (nvidia-smi,
 * systemctl, reboot, …) that record their calls, plus symlinks to a few harmless real tools, so
 * nothing real can be rebooted. `nsenter` is a stub that runs its command in place.
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
} from 'node:fs';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, describe, it } from 'node:test';

const SCRIPT = join(import.meta.dirname, '..', '..', 'deploy', 'ops', 'entrypoint.sh');
const SAFE_TOOLS = [
  'bash',
  'sh',
  'awk',
  'cat',
  'date',
  'grep',
  'head',
  'mkdir',
  'mv',
  'rm',
  'tr',
  'test',
];
const roots: string[] = [];

after(() => {
  for (const dir of roots) rmSync(dir, { recursive: true, force: true });
});

interface FakeHost {
  readonly root: string;
  readonly stateDir: string;
  readonly gpfsBin: string;
  readonly bootIdFile: string;
  /** Adds a stub: `body` is bash run with the call's arguments. */
  stub(name: string, body: string, dir?: string): void;
  run(args: readonly string[], env?: Readonly<Record<string, string>>): Result;
}

interface Result {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Every stub call, as `name arg…`, in order. */
  readonly calls: readonly string[];
}

function fakeHost(): FakeHost {
  const root = mkdtempSync(join(tmpdir(), 'aegis-entrypoint-'));
  roots.push(root);
  const stubs = join(root, 'stubs');
  const tools = join(root, 'tools');
  const stateDir = join(root, 'state');
  const gpfsBin = join(root, 'gpfs');
  const bootIdFile = join(root, 'boot_id');
  const callLog = join(root, 'calls');
  for (const d of [stubs, tools]) mkdirSync(d);
  for (const tool of SAFE_TOOLS) symlinkSync(realPath(tool), join(tools, tool));
  writeFileSync(bootIdFile, 'boot-1\n');
  writeFileSync(callLog, '');
  const stub = (name: string, body: string, dir = stubs): void => {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, name);
    const header = `#!${realPath('bash')}\nprintf '%s\\n' "${name} $*" >> ${JSON.stringify(callLog)}\n`;
    writeFileSync(file, header + body + '\n');
    chmodSync(file, 0o755);
  };
  // nsenter -t 1 … -- cmd args: run cmd here, with the same fake PATH.
  stub('nsenter', 'while [ "$1" != "--" ]; do shift; done; shift; exec "$@"');
  for (const name of ['sleep', 'sync', 'free']) stub(name, 'exit 0');
  const run = (args: readonly string[], env: Readonly<Record<string, string>> = {}): Result => {
    writeFileSync(callLog, '');
    const res = spawnSync(realPath('bash'), [SCRIPT, ...args], {
      encoding: 'utf8',
      env: {
        PATH: [stubs, tools].join(delimiter),
        AEGIS_STATE_DIR: stateDir,
        AEGIS_GPFS_BIN: gpfsBin,
        AEGIS_BOOT_ID_FILE: bootIdFile,
        AEGIS_JOB_NAME: 'reboot-gpu-1-1',
        ...env,
      },
    });
    const calls = readFileSync(callLog, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    return { status: res.status, stdout: res.stdout, stderr: res.stderr, calls };
  };
  return { root, stateDir, gpfsBin, bootIdFile, stub, run };
}

function realPath(tool: string): string {
  for (const dir of ['/usr/bin', '/bin']) {
    if (existsSync(join(dir, tool))) return join(dir, tool);
  }
  throw new Error(`${tool} not found`);
}

/** A GPU node with `gpus` healthy GPUs; override pieces of nvidia-smi with `smi`. */
function gpuHost(gpus = 8, smi: Readonly<Record<string, string>> = {}): FakeHost {
  const h = fakeHost();
  const pci = Array.from({ length: gpus }, (_, i) => `0${i}:00.0 0302: 10de:2330 (rev a1)`);
  h.stub('lspci', `printf '%s\\n' ${pci.map((l) => `'${l}'`).join(' ')}`);
  const list = Array.from({ length: gpus }, (_, i) => `GPU ${i}: NVIDIA H100 (UUID: GPU-${i})`);
  const cases = {
    '-L': smi['-L'] ?? `printf '%s\\n' ${list.map((l) => `'${l}'`).join(' ')}`,
    '--query-remapped-rows=*': smi.remap ?? `echo '00000000:07:00.0, No'`,
    '--query-gpu=index,ecc*': smi.sram ?? `echo '0, 0'; echo '1, [N/A]'`,
    nvlink: smi.nvlink ?? `echo 'GPU 0: NVIDIA H100'; echo '\t Link 0: 26.562 GB/s'`,
  };
  const body = Object.entries(cases)
    .map(([pattern, action]) => `  ${pattern}) ${action} ;;`)
    .join('\n');
  h.stub('timeout', 'shift; exec "$@"');
  h.stub('nvidia-smi', `case "$1" in\n${body}\n  *) echo ok ;;\nesac`);
  return h;
}

describe('entrypoint.sh syntax', () => {
  it('passes bash -n', () => {
    const res = spawnSync('bash', ['-n', SCRIPT], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
  });
});

describe('entrypoint.sh arguments', () => {
  const h = fakeHost();
  const cases: readonly [string, readonly string[]][] = [
    ['no action', []],
    ['unknown action', ['format-disks']],
    ['extra argument to reboot', ['reboot', 'now']],
    ['remedy injection with ;', ['remedy', 'DropCache; reboot']],
    ['remedy injection with $()', ['remedy', '$(reboot)']],
    ['remedy unknown action', ['remedy', 'dropcache']],
    ['diagnose type with a quote', ['diagnose', "Gpu'Down"]],
    ['diagnose id with backticks', ['diagnose', 'GpuDown', '`reboot`']],
    ['diagnose id starting with -', ['diagnose', 'GpuCheckFailed', '-rf']],
    ['diagnose id with a newline', ['diagnose', 'GpuDown', '0\nhint: forged']],
    ['diagnose id with a space', ['diagnose', 'GpuDown', '0 1']],
  ];
  for (const [name, args] of cases) {
    it(`rejects ${name} with 64 and runs nothing`, () => {
      const res = h.run(args);
      assert.equal(res.status, 64, res.stderr);
      assert.deepEqual(res.calls, []);
      assert.doesNotMatch(res.stdout + res.stderr, /^(hint|cmd|result):/m);
    });
  }
  it('rejects an invalid AEGIS_JOB_NAME', () => {
    assert.equal(h.run(['healthcheck'], { AEGIS_JOB_NAME: 'a b' }).status, 64);
  });
});

describe('entrypoint.sh healthcheck', () => {
  const cases: readonly [string, () => FakeHost, number][] = [
    ['a node without NVIDIA GPUs passes', () => withStub(fakeHost(), 'lspci', 'exit 0'), 0],
    ['a healthy 8-GPU node passes', () => gpuHost(), 0],
    ['nvidia-smi -L failing is GpuCheckFailed', () => gpuHost(8, { '-L': 'exit 9' }), 23],
    [
      'a GPU missing from nvidia-smi is GpuCheckFailed',
      () => gpuHost(8, { '-L': "echo 'GPU 0: x'" }),
      23,
    ],
    ['GPUs on the bus without nvidia-smi is GpuCheckFailed', () => lspciOnly(), 23],
    ['a failed row remap is 21', () => gpuHost(8, { remap: "echo '00000000:07:00.0, Yes'" }), 21],
    ['aggregate SRAM uncorrectable > 4 is 22', () => gpuHost(8, { sram: "echo '0, 5'" }), 22],
    ['an inactive NVLink is 24', () => gpuHost(8, { nvlink: "echo ' Link 3: <inactive>'" }), 24],
    ['lspci crashing is 1 (other)', () => withStub(fakeHost(), 'lspci', 'exit 3'), 1],
  ];
  for (const [name, make, code] of cases) {
    it(name, () => {
      const res = make().run(['healthcheck']);
      assert.equal(res.status, code, res.stderr);
    });
  }
  it('does not touch the CPU governor or call site-specific binaries', () => {
    const res = gpuHost().run(['healthcheck']);
    assert.ok(
      res.calls.every((c) => /^(nsenter|lspci|timeout|nvidia-smi|sh) /.test(c)),
      res.calls.join('\n'),
    );
  });
});

function withStub(h: FakeHost, name: string, body: string): FakeHost {
  h.stub(name, body);
  return h;
}

function lspciOnly(): FakeHost {
  return withStub(fakeHost(), 'lspci', "echo '07:00.0 0302: 10de:2330 (rev a1)'");
}

describe('entrypoint.sh reboot', () => {
  it('locks on the host, stops nothing it lacks, and reboots', () => {
    const h = fakeHost();
    h.stub('systemctl', 'exit 0');
    const res = h.run(['reboot']);
    assert.equal(res.status, 1, 'reaching the end means the node did not reboot');
    assert.ok(res.calls.includes('systemctl reboot'), res.calls.join('\n'));
    const lock = readFileSync(join(h.stateDir, 'reboot.lock'), 'utf8');
    assert.equal(lock, 'job=reboot-gpu-1-1\nboot_id=boot-1\n');
  });

  it('completes on the retry after the node came back (new boot id), removing the lock', () => {
    const h = fakeHost();
    h.stub('systemctl', 'exit 0');
    h.run(['reboot']);
    writeFileSync(h.bootIdFile, 'boot-2\n');
    const res = h.run(['reboot']);
    assert.equal(res.status, 0, res.stderr);
    assert.ok(!res.calls.some((c) => c.startsWith('systemctl')), 'no second reboot');
    assert.ok(!existsSync(join(h.stateDir, 'reboot.lock')));
  });

  it('treats a lock of another job as stale and reboots', () => {
    const h = fakeHost();
    h.stub('systemctl', 'exit 0');
    mkdirSync(h.stateDir, { recursive: true });
    writeFileSync(join(h.stateDir, 'reboot.lock'), 'job=reboot-old-1\nboot_id=boot-0\n');
    const res = h.run(['reboot']);
    assert.ok(res.calls.includes('systemctl reboot'));
    assert.match(readFileSync(join(h.stateDir, 'reboot.lock'), 'utf8'), /job=reboot-gpu-1-1/);
  });

  it('stops GPFS when installed, and a failing mmshutdown is not fatal', () => {
    const h = fakeHost();
    h.stub('systemctl', 'exit 0');
    h.stub('mmgetstate', 'exit 0', h.gpfsBin);
    h.stub('mmshutdown', 'exit 5', h.gpfsBin);
    const res = h.run(['reboot']);
    assert.ok(res.calls.includes('mmshutdown '), res.calls.join('\n'));
    assert.ok(res.calls.includes('systemctl reboot'));
  });

  it('falls back to reboot(8) when systemctl reboot fails', () => {
    const h = fakeHost();
    h.stub('systemctl', '[ "$1" = reboot ] && exit 1; exit 0');
    h.stub('reboot', 'exit 0');
    const res = h.run(['reboot']);
    assert.ok(res.calls.includes('reboot '), res.calls.join('\n'));
  });
});

describe('entrypoint.sh shutdown, remedy, repair', () => {
  it('shutdown powers off', () => {
    const h = withStub(fakeHost(), 'systemctl', 'exit 0');
    assert.ok(h.run(['shutdown']).calls.includes('systemctl poweroff'));
  });

  it('DropCache writes 3 to drop_caches on the host', () => {
    const h = withStub(fakeHost(), 'tee', `cat > ${JSON.stringify('/dev/null')}; exit 0`);
    const res = h.run(['remedy', 'DropCache']);
    assert.equal(res.status, 0, res.stderr);
    assert.ok(res.calls.includes('tee /proc/sys/vm/drop_caches'));
  });

  const units: readonly [string, string][] = [
    ['RestartKubelet', 'systemctl restart kubelet'],
    ['RestartFabricmanager', 'systemctl restart nvidia-fabricmanager'],
  ];
  for (const [action, call] of units) {
    it(`${action} runs ${call}`, () => {
      const res = withStub(fakeHost(), 'systemctl', 'exit 0').run(['remedy', action]);
      assert.equal(res.status, 0, res.stderr);
      assert.ok(res.calls.includes(call), res.calls.join('\n'));
    });
  }

  it('a failing remedy exits 1', () => {
    const res = withStub(fakeHost(), 'systemctl', 'exit 4').run(['remedy', 'RestartFabricmanager']);
    assert.equal(res.status, 1);
  });

  it('BreakDeadlock passes the local GPFS node name read from mmgetstate -Y', () => {
    const h = fakeHost();
    h.stub('mmgetstate', mmgetstate('active'), h.gpfsBin);
    h.stub('mmdiag', 'exit 0', h.gpfsBin);
    h.stub('mmcommon', 'cat > /dev/null', h.gpfsBin);
    const res = h.run(['remedy', 'BreakDeadlock']);
    assert.equal(res.status, 0, res.stderr);
    assert.ok(res.calls.includes('mmcommon breakDeadlock -N gpu-1.ib'), res.calls.join('\n'));
  });

  it('repair without GPFS is a no-op success', () => {
    assert.equal(fakeHost().run(['repair']).status, 0);
  });

  it('repair starts a down GPFS and mounts its file systems', () => {
    const h = fakeHost();
    const flag = join(h.root, 'started');
    h.stub('mmgetstate', `[ -f ${flag} ] && s=active || s=down\n${mmgetstate('$s')}`, h.gpfsBin);
    h.stub('mmstartup', `: > ${flag}`, h.gpfsBin);
    h.stub('mmmount', 'exit 0', h.gpfsBin);
    const res = h.run(['repair']);
    assert.equal(res.status, 0, res.stderr);
    assert.ok(res.calls.includes('mmstartup '));
    assert.ok(res.calls.includes('mmmount all'));
  });
});

function mmgetstate(state: string): string {
  return [
    "echo 'mmgetstate::HEADER:version:reserved:reserved:nodeName:nodeNumber:state:quorum:nodesUp:totalNodes:remarks:cnfsState:'",
    `echo "mmgetstate::0:1:::gpu-1.ib:1:${state}:1:2:2::(undefined):"`,
  ].join('\n');
}

/** Groups diagnose output into {hint, cmd, result[]} records, as the controller parses it. */
function parseDiagnose(stdout: string): { hint: string; cmd: string; result: string[] }[] {
  const records: { hint: string; cmd: string; result: string[] }[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(hint|cmd|result): ?(.*)$/.exec(line);
    if (m === null) continue;
    const [, key, value = ''] = m;
    if (key === 'hint') records.push({ hint: value, cmd: '', result: [] });
    const last = records.at(-1);
    if (last === undefined) throw new Error(`${line} before any hint`);
    if (key === 'cmd') last.cmd = value;
    if (key === 'result') last.result.push(value);
  }
  return records;
}

describe('entrypoint.sh diagnose', () => {
  it('prints hint/cmd/result for the row remapper of one GPU', () => {
    const h = gpuHost();
    h.stub('nvidia-smi', 'echo "Remapped Rows"; echo "    Pending : No"');
    const res = h.run(['diagnose', 'GpuRowRemappingFailure', '3']);
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(parseDiagnose(res.stdout), [
      {
        hint: 'row remapper state',
        cmd: 'nvidia-smi -q -d ROW_REMAPPER -i 3',
        result: ['Remapped Rows', '    Pending : No'],
      },
    ]);
    assert.ok(res.calls.includes('nvidia-smi -q -d ROW_REMAPPER -i 3'));
  });

  it('filters kernel Xid lines by code', () => {
    const h = fakeHost();
    h.stub(
      'dmesg',
      "printf '%s\\n' 'NVRM: Xid (PCI:0000:07:00): 79, GPU fell off' 'NVRM: Xid (PCI:0000:08:00): 13, x' 'eth0 up'",
    );
    const [rec] = parseDiagnose(h.run(['diagnose', 'Xid79']).stdout);
    assert.deepEqual(rec?.result, ['NVRM: Xid (PCI:0000:07:00): 79, GPU fell off']);
  });

  it('reports a failing command in the result instead of failing', () => {
    const h = withStub(
      fakeHost(),
      'systemctl',
      'echo "Unit nvidia-fabricmanager.service could not be found."; exit 4',
    );
    const res = h.run(['diagnose', 'NvidiaFabricManagerNotActive']);
    assert.equal(res.status, 0);
    assert.deepEqual(parseDiagnose(res.stdout)[0]?.result, [
      'Unit nvidia-fabricmanager.service could not be found.',
      '(exit status 4)',
    ]);
  });

  it('emits one record per probe, each with hint, cmd and at least one result', () => {
    const h = withStub(fakeHost(), 'ip', "echo 'eth0 UP'");
    const records = parseDiagnose(h.run(['diagnose', 'NetworkLinkDown']).stdout);
    assert.equal(records.length, 2);
    for (const r of records) {
      assert.ok(r.hint !== '' && r.cmd !== '' && r.result.length > 0, JSON.stringify(r));
    }
  });

  it('answers an unknown type with a hint and exit 0', () => {
    const res = fakeHost().run(['diagnose', 'SomethingNew']);
    assert.equal(res.status, 0);
    assert.equal(parseDiagnose(res.stdout)[0]?.hint, 'no diagnosis recipe for SomethingNew');
  });
});
