/**
 * deploy/ops/entrypoint.sh run for real against a fake host: PATH holds only stub commands
 * (nvidia-smi, systemctl, dmesg, …) that record their calls, plus symlinks to a few harmless real
 * tools (timeout among them, so deadlines are real), so nothing real can be rebooted. `nsenter`
 * is a stub that runs its command in place, `chroot <root> cmd` runs `<root>/usr/bin/cmd`.
 *
 * The stubs print real command outputs from public sources, kept in test/fixtures/host/ops/
 * (SOURCES.md there names the source of each file). Where a test needs a fault no public capture
 * shows (a row-remap failure, SRAM counts), it changes one element of a real capture, in the test,
 * where the change can be read.
 *
 * ENTRYPOINT_UNDER_TEST=<path> runs these tests against another copy of the script (e.g. the
 * previous revision, to see which tests the current one fixes).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { CATALOGUE } from '../../src/catalogue/index.js';
import type { CatalogueEntry } from '../../src/catalogue/types.js';
import { builtInSops } from '../../src/sop/index.js';
import { Action, type ApiBridge, type SopInstance } from '../../src/sop/sop.js';
import { aStatus, aView } from '../helpers/builders.js';

const SCRIPT =
  process.env['ENTRYPOINT_UNDER_TEST'] ??
  join(import.meta.dirname, '..', '..', 'deploy', 'ops', 'entrypoint.sh');
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'host', 'ops');
const SAFE_TOOLS = [
  'bash',
  'sh',
  'awk',
  'cat',
  'date',
  'grep',
  'head',
  'tail',
  'mkdir',
  'mv',
  'rm',
  'tr',
  'test',
  'timeout',
  'sort',
  'uniq',
  'mktemp',
];
const roots: string[] = [];

after(() => {
  for (const dir of roots) rmSync(dir, { recursive: true, force: true });
});

/** A fixture's text (gzip-compressed fixtures are inflated). */
function fx(name: string): string {
  const raw = readFileSync(join(FIXTURES, name));
  return (name.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
}

function realPath(tool: string): string {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin']) {
    if (existsSync(join(dir, tool))) return join(dir, tool);
  }
  throw new Error(`${tool} not found`);
}

/** One PCI function as sysfs shows it (/sys/bus/pci/devices/<address>/{vendor,class}). */
interface Pci {
  readonly address: string;
  readonly vendor: string;
  readonly cls: string;
  /** vendor:device, e.g. 10de:2330. */
  readonly id: string;
}

/**
 * The PCI functions of `lspci -nn` lines ("0001:00:00.0 3D controller [0302]: NVIDIA … [10de:20b2]
 * (rev a1)"), in sysfs form: vendor 0x10de, class 0x030200.
 */
function pciFromLspci(text: string): Pci[] {
  const out: Pci[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+) .*?\[([0-9a-f]{4})\]: .*\[(([0-9a-f]{4}):[0-9a-f]{4})\]/.exec(line);
    if (m === null) continue;
    const [, addr = '', cls = '', id = '', vendor = ''] = m;
    const address = addr.split(':').length === 3 ? addr : `0000:${addr}`;
    out.push({ address, vendor: `0x${vendor}`, cls: `0x${cls}00`, id });
  }
  return out;
}

/**
 * The GPUs of an `nvidia-smi -q -x` document in sysfs form (bus id, base/sub class, device id).
 * Drivers before 550 do not report the class: `lspci` then gives it for the same device id.
 */
function pciFromSmiXml(xml: string, lspci = ''): Pci[] {
  const classOf = new Map(pciFromLspci(lspci).map((d) => [d.id, d.cls] as const));
  return xml
    .split('<gpu id="')
    .slice(1)
    .map((block) => {
      const busId = block.slice(0, block.indexOf('"'));
      const field = (tag: string): string => new RegExp(`<${tag}>([^<]*)</`).exec(block)?.[1] ?? '';
      const hex2 = (v: string): string => Number(v).toString(16).padStart(2, '0');
      const deviceId = field('pci_device_id').toLowerCase(); // 233010de: device 2330, vendor 10de
      const base = field('pci_base_class');
      const id = `${deviceId.slice(4)}:${deviceId.slice(0, 4)}`;
      return {
        address: busId.replace(/^0000(?=[0-9A-F]{4}:)/i, '').toLowerCase(),
        vendor: `0x${deviceId.slice(4)}`,
        cls:
          base === ''
            ? (classOf.get(id) ?? '')
            : `0x${hex2(base)}${hex2(field('pci_sub_class'))}00`,
        id,
      };
    });
}

/** A stub's reply: printed text (and exit status), or a process that never ends. */
type Reply = string | { readonly text?: string; readonly exit?: number; readonly hang?: true };

interface FakeHost {
  readonly root: string;
  readonly stateDir: string;
  readonly gpfsBin: string;
  readonly bootIdFile: string;
  /** GPU Operator driver root (AEGIS_OPERATOR_DRIVER_ROOT). */
  readonly operatorRoot: string;
  /** GPU Operator validator status file (AEGIS_DRIVER_READY_FILE). */
  readonly readyFile: string;
  /** Adds a stub: `body` is bash run with the call's arguments. */
  stub(name: string, body: string, dir?: string): void;
  /** Adds a stub answering by its exact argument string ("*": any other). */
  replies(name: string, replies: Readonly<Record<string, Reply>>, dir?: string): void;
  /** Writes a file (absolute path, or relative to the root). */
  file(path: string, content: string): string;
  /** Lays out /sys/bus/pci/devices. */
  pci(devices: readonly Pci[]): void;
  run(args: readonly string[], env?: Readonly<Record<string, string>>): Result;
}

interface Result {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Every stub call, as `name arg…`, in order. */
  readonly calls: readonly string[];
  readonly ms: number;
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
  const operatorRoot = join(root, 'run', 'nvidia', 'driver');
  const readyFile = join(root, 'run', 'nvidia', 'validations', 'driver-ready');
  const sysDir = join(root, 'sys');
  const tmp = join(root, 'tmp');
  let outputs = 0;
  for (const d of [stubs, tools, tmp, join(sysDir, 'bus', 'pci', 'devices')]) {
    mkdirSync(d, { recursive: true });
  }
  for (const tool of SAFE_TOOLS) symlinkSync(realPath(tool), join(tools, tool));
  writeFileSync(bootIdFile, 'boot-1\n');
  writeFileSync(callLog, '');
  const file = (path: string, content: string): string => {
    const full = path.startsWith('/') ? path : join(root, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
    return full;
  };
  const stub = (name: string, body: string, dir = stubs): void => {
    const header = `#!${realPath('bash')}\nprintf '%s\\n' "${name} $*" >> ${JSON.stringify(callLog)}\n`;
    chmodSync(file(join(dir, name), header + body + '\n'), 0o755);
  };
  const replies = (name: string, table: Readonly<Record<string, Reply>>, dir = stubs): void => {
    const arms = Object.entries(table).map(([args, reply]) => {
      const r = typeof reply === 'string' ? { text: reply } : reply;
      const pattern = args === '*' ? '*' : `'${args}'`;
      if (r.hang === true) return `  ${pattern}) exec ${realPath('sleep')} 30 ;;`;
      const out = file(join('out', String(++outputs)), r.text ?? '');
      return `  ${pattern}) cat ${JSON.stringify(out)}; exit ${String(r.exit ?? 0)} ;;`;
    });
    const fallback = `  *) echo "${name} stub: no reply for: $*" >&2; exit 2 ;;`;
    stub(name, `case "$*" in\n${arms.join('\n')}\n${fallback}\nesac`, dir);
  };
  const pci = (devices: readonly Pci[]): void => {
    for (const d of devices) {
      file(join(sysDir, 'bus', 'pci', 'devices', d.address, 'vendor'), `${d.vendor}\n`);
      file(join(sysDir, 'bus', 'pci', 'devices', d.address, 'class'), `${d.cls}\n`);
    }
  };
  // nsenter -t 1 … -- cmd args: run cmd here, with the same fake PATH.
  stub('nsenter', 'while [ "$1" != "--" ]; do shift; done; shift; exec "$@"');
  // chroot <root> cmd args: run <root>/usr/bin/cmd.
  stub('chroot', 'r=$1; shift; c=$1; shift; exec "$r/usr/bin/$c" "$@"');
  for (const name of ['sleep', 'sync', 'free']) stub(name, 'exit 0');
  const run = (args: readonly string[], env: Readonly<Record<string, string>> = {}): Result => {
    writeFileSync(callLog, '');
    const started = performance.now();
    const res = spawnSync(realPath('bash'), [SCRIPT, ...args], {
      encoding: 'utf8',
      env: {
        PATH: [stubs, tools].join(delimiter),
        AEGIS_STATE_DIR: stateDir,
        AEGIS_GPFS_BIN: gpfsBin,
        AEGIS_BOOT_ID_FILE: bootIdFile,
        AEGIS_JOB_NAME: 'reboot-gpu-1-1',
        AEGIS_SYS_DIR: sysDir,
        AEGIS_OPERATOR_DRIVER_ROOT: operatorRoot,
        AEGIS_DRIVER_READY_FILE: readyFile,
        AEGIS_CMD_TIMEOUT: '20',
        TMPDIR: tmp,
        ...env,
      },
    });
    const calls = readFileSync(callLog, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    const ms = performance.now() - started;
    return { status: res.status, stdout: res.stdout, stderr: res.stderr, calls, ms };
  };
  return {
    root,
    stateDir,
    gpfsBin,
    bootIdFile,
    operatorRoot,
    readyFile,
    stub,
    replies,
    file,
    pci,
    run,
  };
}

/** What nvidia-smi prints on a node, per command. */
interface Smi {
  readonly pci: readonly Pci[];
  readonly list: Reply;
  readonly query: Reply;
  readonly nvlink: Reply;
}

/**
 * 8×H100 HGX: sysfs from the -q -x capture (k8s-test-infra), -L of an 8×H100 node (ubccr), the
 * -q -x capture itself (fabric state Completed on every GPU), and the NVLink status of an 8-GPU
 * SXM node with every link up (gpud, A100 SXM4).
 */
function hgx(): Smi {
  const query = fx('nvidia-smi-q-x.h100-hgx-8gpu.xml.gz');
  return {
    pci: pciFromSmiXml(query),
    list: fx('nvidia-smi-L.h100-8gpu.txt'),
    query,
    nvlink: fx('nvidia-smi-nvlink-s.a100-sxm4-8gpu.txt'),
  };
}

/** 1×T4 on an AWS g4dn.xlarge (PCIe, no NVLink, no fabric, pre-550 SRAM counters). */
function t4(nvlink: Reply = fx('nvidia-smi-nvlink-s.a10-pcie.txt')): Smi {
  const query = fx('nvidia-smi-q-x.t4-g4dn.xml');
  return { pci: pciFromSmiXml(query), list: fx('nvidia-smi-L.t4-g4dn.txt'), query, nvlink };
}

/** nvidia-smi's answers for `smi` (the previous script's queries get no answer: exit 2). */
function smiReplies(smi: Smi): Record<string, Reply> {
  return {
    '-L': smi.list,
    '-q -x': smi.query,
    'nvlink -s': smi.nvlink,
    'nvlink --status': smi.nvlink,
  };
}

/**
 * A node with `smi`'s GPUs on the PCI bus and nvidia-smi answering with `smi`: on the host (a
 * driver installed on the host), or only in the GPU Operator driver root, or only in `root`.
 */
function gpuHost(smi: Smi, where: 'host' | 'operator' | { root: string } = 'host'): FakeHost {
  const h = fakeHost();
  h.pci(smi.pci);
  // The previous script counted GPUs with `lspci -n -d 10de:`: the same functions, in that form.
  const lspci = smi.pci
    .filter((d) => d.vendor === '0x10de')
    .map((d) => `${d.address} ${d.cls.slice(2, 6)}: 10de:0000 (rev a1)`)
    .join('\n');
  h.replies('lspci', { '-n -d 10de:': `${lspci}\n` });
  const root = where === 'host' ? null : where === 'operator' ? h.operatorRoot : where.root;
  h.replies('nvidia-smi', smiReplies(smi), root === null ? undefined : join(root, 'usr', 'bin'));
  return h;
}

/** The GPU Operator validator's status file (format: gpu-operator-driver-ready.txt), for `root`. */
function operatorReady(h: FakeHost, root = h.operatorRoot): void {
  h.file(h.readyFile, fx('gpu-operator-driver-ready.txt').replace('/run/nvidia/driver', root));
}

/** `xml` with the first match of `pattern` replaced (one fault injected into a real capture). */
function inject(
  xml: string,
  pattern: RegExp,
  replacement: string | ((match: string, ...groups: string[]) => string),
): string {
  assert.match(xml, pattern, `fixture lacks ${String(pattern)}`);
  return typeof replacement === 'string'
    ? xml.replace(pattern, replacement)
    : xml.replace(pattern, replacement);
}

function withStub(h: FakeHost, name: string, body: string): FakeHost {
  h.stub(name, body);
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
  const settings: readonly [string, string][] = [
    ['AEGIS_CMD_TIMEOUT', '0'],
    ['AEGIS_CMD_TIMEOUT', '10; reboot'],
    ['AEGIS_DRIVER_ROOT', 'run/nvidia/driver'],
    ['AEGIS_DRIVER_ROOT', '/run/../etc'],
    ['AEGIS_DRIVER_ROOT', '/run/nvidia/driver;reboot'],
    ['AEGIS_OPERATOR_DRIVER_ROOT', '/a b'],
  ];
  for (const [name, value] of settings) {
    it(`rejects ${name}=${JSON.stringify(value)} with 64, naming it, and runs nothing`, () => {
      const res = h.run(['healthcheck'], { [name]: value });
      assert.equal(res.status, 64, res.stderr);
      assert.match(res.stderr, new RegExp(name));
      assert.deepEqual(res.calls, []);
    });
  }
});

describe('entrypoint.sh healthcheck: driver root', () => {
  it('an 8×H100 HGX node with the driver on the host passes', () => {
    const res = gpuHost(hgx()).run(['healthcheck']);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stderr, /nvidia-smi lists 8 GPU\(s\); the PCI bus shows 8/);
    assert.ok(!res.calls.some((c) => c.startsWith('chroot')), res.calls.join('\n'));
  });

  it('GPU Operator node: nvidia-smi only in the driver root the validator names, run by chroot', () => {
    const h = gpuHost(hgx(), 'operator');
    operatorReady(h);
    const res = h.run(['healthcheck']);
    assert.equal(res.status, 0, res.stderr);
    for (const args of ['-L', '-q -x', 'nvlink -s']) {
      assert.ok(
        res.calls.includes(`chroot ${h.operatorRoot} nvidia-smi ${args}`),
        res.calls.join('\n'),
      );
    }
  });

  it('GPU Operator node before the validator wrote its file: the default driver root is used', () => {
    const res = gpuHost(hgx(), 'operator').run(['healthcheck']);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stderr, /driver root .*run\/nvidia\/driver/);
  });

  it('the driver root of the validator file wins over the default one', () => {
    const h = gpuHost(t4(), { root: '/nonexistent' });
    const named = join(h.root, 'opt', 'nvidia', 'driver');
    h.replies('nvidia-smi', smiReplies(t4()), join(named, 'usr', 'bin'));
    h.replies(
      'nvidia-smi',
      { '*': { text: 'decoy', exit: 9 } },
      join(h.operatorRoot, 'usr', 'bin'),
    );
    operatorReady(h, named);
    const res = h.run(['healthcheck']);
    assert.equal(res.status, 0, res.stderr);
    assert.ok(res.calls.includes(`chroot ${named} nvidia-smi -L`), res.calls.join('\n'));
    assert.ok(!res.calls.some((c) => c.startsWith(`chroot ${h.operatorRoot}`)));
  });

  it('AEGIS_DRIVER_ROOT forces the root', () => {
    const h = gpuHost(hgx(), 'operator');
    const res = h.run(['healthcheck'], { AEGIS_DRIVER_ROOT: h.operatorRoot });
    assert.equal(res.status, 0, res.stderr);
    assert.ok(res.calls.includes(`chroot ${h.operatorRoot} nvidia-smi -L`));
  });

  it('GPUs on the bus but no driver anywhere (driver container not running) is 25, not a fault', () => {
    const h = fakeHost();
    h.pci(hgx().pci);
    const res = h.run(['healthcheck']);
    assert.equal(res.status, 25, res.stderr);
    assert.match(res.stderr, /cannot check: the PCI bus shows 8 NVIDIA GPU/);
  });

  it('a driver root whose chroot tool is missing on the host is 25 (cannot check)', () => {
    const h = gpuHost(hgx(), 'operator');
    rmSync(join(h.root, 'stubs', 'chroot'));
    const res = h.run(['healthcheck']);
    assert.equal(res.status, 25, res.stderr);
  });

  it('a node without NVIDIA GPUs passes (non-NVIDIA functions of a real lspci -nn)', () => {
    const h = fakeHost();
    const all = pciFromLspci(fx('lspci-nn.a100-sxm4-8gpu-nvswitch.txt'));
    h.pci(all.filter((d) => d.vendor !== '0x10de'));
    assert.equal(h.run(['healthcheck']).status, 0);
  });

  it('NVSwitches, Mellanox VFs and NVMe functions on the bus are not counted as GPUs', () => {
    const h = gpuHost({ ...hgx(), pci: pciFromLspci(fx('lspci-nn.a100-sxm4-8gpu-nvswitch.txt')) });
    const res = h.run(['healthcheck']);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stderr, /the PCI bus shows 8\b/);
  });
});

describe('entrypoint.sh healthcheck: GPU checks on real outputs', () => {
  it('a GPU missing from nvidia-smi -L (one line of the real listing dropped) is 23', () => {
    const gpus = hgx();
    const seven = fx('nvidia-smi-L.h100-8gpu.txt').split('\n').slice(0, 7).join('\n');
    const res = gpuHost({ ...gpus, list: seven }).run(['healthcheck']);
    assert.equal(res.status, 23, res.stderr);
  });

  it('nvidia-smi -L failing is 23', () => {
    const res = gpuHost({ ...hgx(), list: { text: 'No devices were found', exit: 6 } }).run([
      'healthcheck',
    ]);
    assert.equal(res.status, 23, res.stderr);
  });

  it('a MIG node (MIG devices in -L, remapped rows N/A in -q -x) passes', () => {
    const query = fx('nvidia-smi-q-x.a100-sxm4-mig.xml');
    const res = gpuHost({
      pci: pciFromSmiXml(query, fx('lspci-nn.a100-sxm4-8gpu-nvswitch.txt')),
      list: fx('nvidia-smi-L.a100-sxm4-mig-4gpu.txt'),
      query,
      nvlink: fx('nvidia-smi-nvlink-s.a100-sxm4-8gpu.txt'),
    }).run(['healthcheck']);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stderr, /nvidia-smi lists 4 GPU\(s\); the PCI bus shows 1\b/);
  });

  it('a row-remapping failure is 21', () => {
    const gpus = hgx();
    const query = inject(
      gpus.query as string,
      /<remapped_row_failure>No</,
      '<remapped_row_failure>Yes<',
    );
    const res = gpuHost({ ...gpus, query }).run(['healthcheck']);
    assert.equal(res.status, 21, res.stderr);
    assert.match(res.stderr, /row remapping failed on GPU 0 \(00000000:53:00.0/);
  });

  it('more than 4 aggregate uncorrectable SRAM errors (550+ parity/SEC-DED counters) is 22', () => {
    const gpus = hgx();
    const aggregate =
      /(<aggregate>\s*<sram_correctable>0<\/sram_correctable>\s*<sram_uncorrectable_parity>)0(<\/sram_uncorrectable_parity>\s*<sram_uncorrectable_secded>)0</;
    const three = inject(
      gpus.query as string,
      aggregate,
      (_, a: string, b: string) => `${a}3${b}0<`,
    );
    const five = inject(
      gpus.query as string,
      aggregate,
      (_, a: string, b: string) => `${a}3${b}2<`,
    );
    assert.equal(
      gpuHost({ ...gpus, query: three }).run(['healthcheck']).status,
      0,
      '3 errors pass',
    );
    const res = gpuHost({ ...gpus, query: five }).run(['healthcheck']);
    assert.equal(res.status, 22, res.stderr);
    assert.match(res.stderr, /GPU 0 \(00000000:53:00.0, NVIDIA H100 80GB HBM3\): 5 uncorrectable/);
  });

  it('the driver SRAM threshold flag is 22', () => {
    const gpus = hgx();
    const query = inject(
      gpus.query as string,
      /<sram_threshold_exceeded>No</,
      '<sram_threshold_exceeded>Yes<',
    );
    assert.equal(gpuHost({ ...gpus, query }).run(['healthcheck']).status, 22);
  });

  it('uncorrectable SRAM errors of the older counter (T4, driver 595: <sram_uncorrectable>) count', () => {
    const gpus = t4();
    const query = inject(
      gpus.query as string,
      /(<aggregate>\s*<sram_correctable>0<\/sram_correctable>\s*<sram_uncorrectable>)0</,
      (_, a: string) => `${a}5<`,
    );
    assert.equal(gpuHost({ ...gpus, query }).run(['healthcheck']).status, 22);
  });

  it('volatile SRAM errors alone do not fail (only the lifetime aggregate counts)', () => {
    const gpus = hgx();
    const query = inject(
      gpus.query as string,
      /(<volatile>\s*<sram_correctable>0<\/sram_correctable>\s*<sram_uncorrectable_parity>)0</,
      (_, a: string) => `${a}9<`,
    );
    assert.equal(gpuHost({ ...gpus, query }).run(['healthcheck']).status, 0);
  });
});

describe('entrypoint.sh healthcheck: NVLink', () => {
  it('PCIe GPU, nvidia-smi nvlink -s prints nothing (real A10 output): passes', () => {
    const res = gpuHost(t4()).run(['healthcheck']);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stderr, /no NVLink reported/);
  });

  it('PCIe GPU without a bridge: "all links are inActive" (real RTX A6000 output) passes', () => {
    const res = gpuHost(t4(fx('nvidia-smi-nvlink-s.rtx-a6000-3gpu.txt'))).run(['healthcheck']);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stderr, /GPU 2: no active NVLink and no NVLink fabric/);
  });

  it('some links of a GPU inactive (real V100 SXM2 output) is 24', () => {
    const gpus = hgx();
    const res = gpuHost({
      ...gpus,
      nvlink: fx('nvidia-smi-nvlink-s.v100-sxm2-links-inactive.txt'),
    }).run(['healthcheck']);
    assert.equal(res.status, 24, res.stderr);
    assert.match(res.stderr, /GPU 3: 2 of 6 links inactive/);
  });

  it('a GPU of an NVLink fabric with no link up ("all links are inActive", real B200) is 24', () => {
    const query = fx('nvidia-smi-q-x.b200-hgx-8gpu.xml.gz');
    const res = gpuHost({
      pci: pciFromSmiXml(query),
      list: fx('nvidia-smi-L.h100-8gpu.txt'),
      query,
      nvlink: fx('nvidia-smi-nvlink-s.b200-all-links-inactive.txt'),
    }).run(['healthcheck']);
    assert.equal(res.status, 24, res.stderr);
    assert.match(
      res.stderr,
      /GPU 2: no active NVLink although it is in an NVLink fabric \(state Completed\)/,
    );
  });
});

describe('entrypoint.sh healthcheck: deadlines', () => {
  it('nvidia-smi -L not answering is 23 within the deadline', () => {
    const res = gpuHost({ ...hgx(), list: { hang: true } }).run(['healthcheck'], {
      AEGIS_CMD_TIMEOUT: '1',
    });
    assert.equal(res.status, 23, res.stderr);
    assert.match(res.stderr, /nvidia-smi -L did not answer within 1s/);
    assert.ok(res.ms < 10_000, `took ${String(res.ms)} ms`);
  });

  it('a wedged nvidia-smi that not even timeout can reap ends the check in bounded time', () => {
    const h = gpuHost(hgx());
    // `timeout` that never returns for nvidia-smi, as when the process sleeps in the kernel.
    h.stub(
      'timeout',
      `case "$*" in *'-- nvidia-smi'*) exec ${realPath('sleep')} 60 ;; esac; exec ${realPath('timeout')} "$@"`,
    );
    const res = h.run(['healthcheck'], { AEGIS_CMD_TIMEOUT: '1' });
    assert.equal(res.status, 23, res.stderr);
    assert.ok(res.ms < 10_000, `took ${String(res.ms)} ms`);
  });

  it('nvidia-smi nvlink hanging is 23 (after the other checks passed)', () => {
    const res = gpuHost({ ...hgx(), nvlink: { hang: true } }).run(['healthcheck'], {
      AEGIS_CMD_TIMEOUT: '1',
    });
    assert.equal(res.status, 23, res.stderr);
  });

  it('calls nothing but nvidia-smi (and the namespace/root helpers) on the host', () => {
    const res = gpuHost(hgx(), 'operator').run(['healthcheck']);
    assert.ok(
      res.calls.every((c) => /^(nsenter|nvidia-smi|chroot|sh) /.test(c)),
      res.calls.join('\n'),
    );
  });
});

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

  it('a GPFS that hangs on mmshutdown does not stop the reboot (host commands have deadlines)', () => {
    const h = fakeHost();
    h.stub('systemctl', 'exit 0');
    h.stub('mmgetstate', 'exit 0', h.gpfsBin);
    h.stub('mmshutdown', `exec ${realPath('sleep')} 60`, h.gpfsBin);
    const res = h.run(['reboot'], { AEGIS_CMD_TIMEOUT: '1' });
    assert.ok(res.calls.includes('systemctl reboot'), res.calls.join('\n'));
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

  it('EnableGpuPersistence on a GPU Operator node runs nvidia-smi -pm 1 in the driver root', () => {
    const h = gpuHost(hgx(), 'operator');
    h.replies(
      'nvidia-smi',
      { '-pm 1': 'Persistence mode is already Enabled' },
      join(h.operatorRoot, 'usr', 'bin'),
    );
    h.stub('systemctl', 'exit 1');
    const res = h.run(['remedy', 'EnableGpuPersistence']);
    assert.equal(res.status, 0, res.stderr);
    assert.ok(
      res.calls.includes(`chroot ${h.operatorRoot} nvidia-smi -pm 1`),
      res.calls.join('\n'),
    );
  });

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

interface DiagnoseRecord {
  hint: string;
  cmd: string;
  result: string[];
}

/** Groups diagnose output into {hint, cmd, result[]} records, as the controller parses it. */
function parseDiagnose(stdout: string): DiagnoseRecord[] {
  const records: DiagnoseRecord[] = [];
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

/** A device id of the kind the rule puts in the condition, valid for the Job params. */
function sampleId(entry: CatalogueEntry): string {
  switch (entry.deviceIdMode) {
    case 'index':
      return '3';
    case 'mask':
      return '00010000';
    case 'id':
      if (entry.domain === 'IB') return 'mlx5_0';
      if (entry.domain === 'RoCE') return 'ens1f0np0';
      if (entry.domain === 'Network') return 'bond0';
      if (entry.deviceLabel === 'device') return 'nvme0n1';
      if (entry.deviceLabel === 'controller') return '0';
      if (entry.deviceLabel === 'part') return 'fan';
      if (entry.deviceLabel === 'name') return 'CPU1_Status';
      return ''; // a mount point never passes the id pattern
    case 'all':
    case 'none':
      return '';
  }
}

/**
 * Every (diagnose type, id) a built-in SOP ladder asks for: each catalogue condition is put to its
 * SOP on a cordoned node without a ticket, and the conditions whose first rung is Diagnose kept.
 */
function diagnoseRungs(): { condition: string; type: string; id: string }[] {
  const bridge = new Proxy(
    {},
    {
      get() {
        throw new Error('evaluate must not use the bridge');
      },
    },
  ) as ApiBridge;
  const instances = new Map<string, SopInstance>(
    builtInSops.map((s) => [s.id, s.createInstance(bridge)]),
  );
  const rungs: { condition: string; type: string; id: string }[] = [];
  for (const entry of CATALOGUE) {
    const sop = entry.sop === null ? undefined : instances.get(entry.sop);
    if (sop === undefined) continue;
    const verdict = sop.evaluate(
      aView({ node: { unschedulable: true } }),
      aStatus({ condition: entry.name, domain: entry.domain, id: sampleId(entry) }),
    );
    if (verdict.kind === 'act' && verdict.step.action === Action.Diagnose) {
      const params = verdict.step.params ?? {};
      rungs.push({ condition: entry.name, type: params['type'] ?? '', id: params['id'] ?? '' });
    }
  }
  return rungs;
}

/** A host where every command a recipe may run exists and answers with its own name. */
function anyCommandHost(): FakeHost {
  const h = fakeHost();
  const commands = [
    'nvidia-smi',
    'dmesg',
    'journalctl',
    'ipmimonitoring',
    'ip',
    'ibstat',
    'lspci',
    'lsmod',
    'readlink',
    'findmnt',
    'smartctl',
    'rdma',
    'systemctl',
    'timedatectl',
    'chronyc',
    'ps',
    'ls',
  ];
  for (const c of commands) h.stub(c, `echo "${c} output"`);
  for (const c of ['mmhealth', 'mmgetstate', 'mmlscluster', 'mmdiag']) {
    h.stub(c, `echo "${c} output"`, h.gpfsBin);
  }
  return h;
}

describe('entrypoint.sh diagnose: a recipe for every Diagnose rung', () => {
  const rungs = diagnoseRungs();

  it('finds the Diagnose rungs of the built-in ladders (sanity)', () => {
    assert.ok(rungs.length >= 80, `only ${String(rungs.length)} conditions with a Diagnose rung`);
    assert.ok(rungs.some((r) => r.condition === 'Xid79GPULost'));
    assert.ok(
      rungs.every((r) => r.type === r.condition),
      'the type is the catalogue name',
    );
  });

  const h = anyCommandHost();
  const aliases = CATALOGUE.filter((e) => rungs.some((r) => r.condition === e.name)).flatMap((e) =>
    (e.aliases ?? []).map((alias) => ({ condition: alias, type: alias, id: '' })),
  );
  for (const { condition, type, id } of [...rungs, ...aliases]) {
    it(`${condition}${id === '' ? '' : ` (id ${id})`} has a recipe that reads the host`, () => {
      const res = h.run(['diagnose', type, ...(id === '' ? [] : [id])]);
      assert.equal(res.status, 0, res.stderr);
      const records = parseDiagnose(res.stdout);
      assert.ok(records.length > 0, res.stdout);
      for (const r of records) {
        assert.doesNotMatch(r.hint, /^no (diagnosis recipe|Xid code)/, `${condition}: ${r.hint}`);
        assert.ok(r.cmd !== '' && r.cmd !== '-' && r.result.length > 0, JSON.stringify(r));
      }
      assert.ok(
        res.calls.some((c) => c.startsWith('nsenter ')),
        `${condition} ran nothing`,
      );
    });
  }
});

describe('entrypoint.sh diagnose: recipes on real outputs', () => {
  const kernelLog = fx('dmesg.xid79-sxid.txt') + fx('dmesg-T.xid119.txt');

  it('Xid79GPULost shows the Xid 79 line of a real kernel log, not SXid or other numbers', () => {
    const h = fakeHost();
    h.replies('dmesg', { '-T': kernelLog });
    const [rec] = parseDiagnose(h.run(['diagnose', 'Xid79GPULost', '3']).stdout);
    assert.deepEqual(rec?.result, [
      "[6781741.548779] NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
    ]);
  });

  it('Xid119GspRpcTimeout shows the Xid 119 line', () => {
    const h = fakeHost();
    h.replies('dmesg', { '-T': kernelLog });
    const [rec] = parseDiagnose(h.run(['diagnose', 'Xid119GspRpcTimeout']).stdout);
    assert.ok(rec !== undefined);
    assert.equal(rec.result.length, 5, 'the log has five Xid 119 events');
    for (const line of rec.result) assert.match(line, /NVRM: Xid \(PCI:0000:9b:00\): 119, /);
  });

  it('reads the kernel log from the journal when dmesg is missing', () => {
    const h = fakeHost();
    h.replies('journalctl', { '-k --no-pager -o short-iso': fx('dmesg.xid79-sxid.txt') });
    const [rec] = parseDiagnose(h.run(['diagnose', 'Xid79GPULost']).stdout);
    assert.match(rec?.cmd ?? '', /^journalctl -k/);
    assert.equal(rec?.result.length, 1);
  });

  it('GpuCheckFailed with a GPU mask asks nvidia-smi about those GPUs, through the driver root', () => {
    const h = gpuHost(hgx(), 'operator');
    h.replies(
      'nvidia-smi',
      { '-L': fx('nvidia-smi-L.h100-8gpu.txt'), '-i 3,5': fx('nvidia-smi.h100-sxm-8gpu.txt') },
      join(h.operatorRoot, 'usr', 'bin'),
    );
    h.replies('dmesg', { '-T': kernelLog });
    const res = h.run(['diagnose', 'GpuCheckFailed', '00010100']);
    assert.ok(
      res.calls.includes(`chroot ${h.operatorRoot} nvidia-smi -i 3,5`),
      res.calls.join('\n'),
    );
    const records = parseDiagnose(res.stdout);
    assert.equal(records.length, 3);
    assert.equal(records[0]?.result.length, 8);
  });

  it('keeps at most 40 result lines per record, the last ones, and says how many it left out', () => {
    const h = fakeHost();
    h.replies('nvidia-smi', {
      '-L': fx('nvidia-smi-L.h100-8gpu.txt'),
      '*': fx('nvidia-smi.h100-sxm-8gpu.txt'),
    });
    h.replies('dmesg', { '-T': kernelLog });
    const records = parseDiagnose(h.run(['diagnose', 'GpuHung']).stdout);
    const table = records[1];
    assert.equal(table?.result.length, 41);
    assert.equal(table.result[0], '(7 earlier lines left out)');
    assert.equal(
      table.result.at(-1),
      '+-----------------------------------------------------------------------------------------+',
    );
  });

  it('a probe that does not answer in time is reported and the next probe still runs', () => {
    const h = fakeHost();
    h.replies('nvidia-smi', { '*': { hang: true } });
    h.replies('dmesg', { '-T': kernelLog });
    const res = h.run(['diagnose', 'GpuHung'], { AEGIS_CMD_TIMEOUT: '1' });
    assert.equal(res.status, 0, res.stderr);
    const records = parseDiagnose(res.stdout);
    assert.deepEqual(records[0]?.result, ['(no answer within 1s)']);
    assert.equal(records.length, 3);
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

  it('a missing tool is reported as not available', () => {
    const res = fakeHost().run(['diagnose', 'IBLinkAbnormal', 'mlx5_0']);
    assert.equal(res.status, 0);
    assert.match(parseDiagnose(res.stdout)[0]?.result.at(-1) ?? '', /not available on this node/);
  });

  it('answers an unknown type with a hint and exit 0', () => {
    const res = fakeHost().run(['diagnose', 'SomethingNew']);
    assert.equal(res.status, 0);
    assert.equal(parseDiagnose(res.stdout)[0]?.hint, 'no diagnosis recipe for SomethingNew');
  });
});

describe('fixtures', () => {
  it('every fixture file has its source in SOURCES.md', () => {
    const sources = readFileSync(join(FIXTURES, 'SOURCES.md'), 'utf8');
    for (const name of readdirSync(FIXTURES).filter((n) => n !== 'SOURCES.md')) {
      assert.ok(sources.includes(`\`${name}\``), `${name} has no entry in SOURCES.md`);
    }
  });
});
