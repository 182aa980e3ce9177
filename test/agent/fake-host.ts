/**
 * Fake host roots for the agent tests, built only from the real outputs in
 * test/fixtures/host/agent (SOURCE.md): files are copied where the agent reads them, tools are
 * shell stubs that print a fixture (optionally chosen by a mode file the test rewrites), and the
 * kernel log is a FIFO the test writes /dev/kmsg records into.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  constants,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseLspciHex } from '../../src/agent/pci-config.js';

/** Directory of the host fixtures (`AEGIS_HOST_FIXTURES` points the tests elsewhere). */
export const FIXTURES =
  process.env.AEGIS_HOST_FIXTURES ??
  join(dirname(fileURLToPath(import.meta.url)), '../fixtures/host/agent');

/** Text of a fixture file; a missing one is an error naming it and the fixtures directory. */
export function fixture(path: string): string {
  const file = join(FIXTURES, path);
  if (!existsSync(file)) {
    throw new Error(
      `host fixture ${path} not found in ${FIXTURES}` +
        (existsSync(FIXTURES) ? '' : ' (the directory does not exist)') +
        ': see test/fixtures/host/agent/SOURCE.md',
    );
  }
  return readFileSync(file, 'utf8');
}

/** One behaviour of a stub: print files, exit with a status, or hang. */
export interface StubCase {
  /** Substring of the arguments that selects this case (absent: default). */
  readonly args?: string;
  /** Mode (contents of the stub's mode file) that selects this case. */
  readonly mode?: string;
  readonly stdout?: string;
  readonly stderr?: string;
  readonly exit?: number;
  readonly hangS?: number;
}

/** A fake host root in a temp directory. */
export class FakeHost {
  readonly root = mkdtempSync(join(tmpdir(), 'aegis-host-'));
  #kmsg: FileHandle | undefined;
  /** Above the sequence numbers of the real captures fed before (kmsg-gpud-1.log ends at 4010). */
  #seq = 1_000_000;

  /** Writes `content` at host path `path`. */
  file(path: string, content: string, mtimeMs?: number): this {
    const target = join(this.root, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
    if (mtimeMs !== undefined) utimesSync(target, mtimeMs / 1000, mtimeMs / 1000);
    return this;
  }

  /** Copies fixture `from` (file or directory) to host path `to`. */
  copy(from: string, to: string): this {
    if (!existsSync(join(FIXTURES, from))) fixture(from); // throws, naming what is missing
    const target = join(this.root, to);
    mkdirSync(dirname(target), { recursive: true });
    cpSync(join(FIXTURES, from), target, { recursive: true });
    return this;
  }

  /** An executable at host path `path` behaving as the cases say (first match wins). */
  stub(path: string, cases: readonly StubCase[]): this {
    const modeFile = join(this.root, `${path}.mode`);
    const lines = ['#!/bin/sh', `mode=$(cat '${modeFile}' 2>/dev/null)`, 'args="$*"'];
    for (const c of cases) {
      const cond = [
        c.args === undefined ? 'true' : `case "$args" in *'${c.args}'*) true;; *) false;; esac`,
        c.mode === undefined ? 'true' : `[ "$mode" = '${c.mode}' ]`,
      ].join(' && ');
      const body = [
        c.hangS === undefined ? '' : `sleep ${c.hangS}`,
        c.stdout === undefined ? '' : `cat '${join(FIXTURES, c.stdout)}'`,
        c.stderr === undefined ? '' : `cat '${join(FIXTURES, c.stderr)}' >&2`,
        `exit ${c.exit ?? 0}`,
      ].filter((l) => l !== '');
      lines.push(`if ${cond}; then`, ...body.map((l) => `  ${l}`), 'fi');
    }
    lines.push('exit 0');
    this.file(path, `${lines.join('\n')}\n`);
    chmodSync(join(this.root, path), 0o755);
    return this;
  }

  /** Sets the mode a stub reads. */
  mode(path: string, mode: string): void {
    writeFileSync(join(this.root, `${path}.mode`), mode);
  }

  /** A FIFO at host path /dev/kmsg. */
  kmsgFifo(): this {
    mkdirSync(join(this.root, 'dev'), { recursive: true });
    execFileSync('mkfifo', [join(this.root, 'dev/kmsg')]);
    return this;
  }

  /** Writes kernel messages as /dev/kmsg records dated `usec` after boot. */
  async kmsg(messages: readonly string[], usec: number, priority = 4): Promise<void> {
    this.#kmsg ??= await open(join(this.root, 'dev/kmsg'), 'w');
    const records = messages.map(
      (m) => `${priority},${this.#seq++},${Math.round(usec)},-;${escapeKmsg(m)}\n`,
    );
    await this.#kmsg.write(records.join(''));
  }

  /** Writes raw /dev/kmsg lines (a real kmsg capture). */
  async kmsgRaw(text: string): Promise<void> {
    this.#kmsg ??= await open(join(this.root, 'dev/kmsg'), 'w');
    await this.#kmsg.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** PCI functions from a real `lspci -vvv`: NVIDIA and Mellanox only (see SOURCE.md). */
  pciFromLspci(fixturePath: string): this {
    for (const line of fixture(fixturePath).split('\n')) {
      const m =
        /^([0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f]) ([^:]+): (NVIDIA Corporation|Mellanox Technologies)/.exec(
          line,
        );
      if (!m) continue;
      const vendor = m[3] === 'NVIDIA Corporation' ? '0x10de' : '0x15b3';
      const cls =
        m[2] === '3D controller'
          ? '0x030200'
          : m[2] === 'Infiniband controller'
            ? '0x020700'
            : '0x020000';
      const dir = `/sys/bus/pci/devices/0000:${m[1] ?? ''}`;
      this.file(`${dir}/vendor`, `${vendor}\n`).file(`${dir}/class`, `${cls}\n`);
    }
    return this;
  }

  /** /sys/class/infiniband from a real `ibdev2netdev` with its comments (see SOURCE.md). */
  rdmaFromIbdev2netdev(fixturePath: string): this {
    for (const line of fixture(fixturePath).split('\n')) {
      const m = /^(\S+)\s+port\s+(\d+)\s+==>\s+(\S+)\s+\((Up|Down)\)\s+#\s*(.*)$/.exec(line);
      if (!m) continue;
      const [, hca = '', port = '', netdev = '', state = '', comment = ''] = m;
      const base = `/sys/class/infiniband/${hca}`;
      this.file(
        `${base}/ports/${port}/link_layer`,
        comment.includes('ethernet') ? 'Ethernet\n' : 'InfiniBand\n',
      );
      this.file(`${base}/device/net/${netdev}/operstate`, `${state.toLowerCase()}\n`);
    }
    return this;
  }

  /**
   * The PCI function of HCA `hca`, as the kernel lays it out: a directory under /sys/devices
   * (below its upstream port when one is given) with the link attributes copied from a fixture
   * directory, the configuration space written from a real lspci hex dump, the Mellanox vendor id
   * the dumps start with, a netdev directory (an InfiniBand HCA has one), and
   * /sys/class/infiniband/<hca>/device a relative symlink to it (see SOURCE.md, `pci/`).
   */
  hcaPci(
    hca: string,
    o: {
      bdf: string;
      link: string;
      config?: string;
      upstream?: { bdf: string; link: string };
      netdev?: string;
    },
  ): this {
    const parent =
      o.upstream === undefined
        ? '/sys/devices/pci0000:00'
        : `/sys/devices/pci0000:00/${o.upstream.bdf}`;
    if (o.upstream !== undefined) this.copy(o.upstream.link, parent);
    const dir = `${parent}/${o.bdf}`;
    this.copy(o.link, dir).file(`${dir}/vendor`, '0x15b3\n');
    if (o.config !== undefined) {
      const bytes = parseLspciHex(fixture(o.config));
      mkdirSync(join(this.root, dir), { recursive: true });
      writeFileSync(join(this.root, dir, 'config'), bytes);
    }
    if (o.netdev !== undefined)
      mkdirSync(join(this.root, dir, 'net', o.netdev), { recursive: true });
    const link = join(this.root, `/sys/class/infiniband/${hca}/device`);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(relative(dirname(link), join(this.root, dir)), link);
    return this;
  }

  async close(): Promise<void> {
    await this.#kmsg?.close();
    await this.#wakeKmsgReader();
    rmSync(this.root, { recursive: true, force: true });
  }

  /** An agent blocked reading (or opening) the FIFO returns at EOF once a writer comes and goes. */
  async #wakeKmsgReader(): Promise<void> {
    const fifo = join(this.root, 'dev/kmsg');
    try {
      await (await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK)).close();
    } catch {
      // no FIFO, or no reader (ENXIO): nobody to wake
    }
  }
}

/** The kernel's escaping of a record's message (newline → \x0a). */
export function escapeKmsg(message: string): string {
  return message.replace(/\\/g, '\\x5c').replace(/\n/g, '\\x0a');
}

/** Kernel lines of lines.tsv: [rule, device, source, line] with `\n` turned into newlines. */
export function kernelLines(): { rule: string; device: string; source: string; line: string }[] {
  return fixture('kernel/lines.tsv')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [rule = '', device = '', source = '', line = ''] = l.split('\t');
      return { rule, device, source, line: line.replace(/\\n/g, '\n') };
    });
}

/**
 * The fake host of an H100 node built from the real outputs (IB sysfs, lspci, /proc/modules, GPFS,
 * smartctl with one failing disk, a panic in pstore), with the given `nvidia-smi -q -x` document
 * and, optionally, the pstore record's mtime. Shared by the agent's tests and its benchmark.
 *
 * Four HCAs have a PCI function (`pci/` in SOURCE.md; the others have none, as in the captured
 * sysfs tree): mlx5_0 with a full link and an MRR of 512 bytes (ConnectX-5 Ex dump); mlx5_1 whose
 * link is slower than the HCA can go but as fast as its upstream port allows (not degraded), MRR
 * 512 (ConnectX-3 Pro dump); mlx5_4 slower than it can go with no upstream port (degraded speed)
 * and only the 64-byte header of its config space (MRR unreadable); mlx5_5 narrower than it can
 * go (degraded width) and no config file.
 */
export function h100Host(o: { nvidiaSmi: string; pstoreMtimeMs?: number }): FakeHost {
  return new FakeHost()
    .kmsgFifo()
    .stub('/usr/bin/nvidia-smi', [{ stdout: o.nvidiaSmi }])
    .copy('sysfs/ib-h100', '/sys/class/infiniband')
    .pciFromLspci('sysfs/lspci-vvv-h100.txt')
    .hcaPci('mlx5_0', {
      bdf: '0000:1a:00.0',
      link: 'pci/link-e810-a2-00.0',
      config: 'pci/config-cx5ex-lspci-xxx.txt',
      netdev: 'ibp26s0',
    })
    .hcaPci('mlx5_1', {
      bdf: '0000:3c:00.0',
      link: 'pci/link-nvme-01-00.0',
      upstream: { bdf: '0000:00:02.1', link: 'pci/link-rootport-00-02.1' },
      config: 'pci/config-cx3pro-lspci-vvvxxxx.txt',
      netdev: 'ibp60s0',
    })
    .hcaPci('mlx5_4', {
      bdf: '0000:4d:00.0',
      link: 'pci/link-nvme-01-00.0',
      config: 'pci/config-cx5-lspci-x-64bytes.txt',
      netdev: 'ibp77s0',
    })
    .hcaPci('mlx5_5', { bdf: '0000:5e:00.0', link: 'pci/link-rootport-00-02.1', netdev: 'ibp94s0' })
    .copy('modules/proc-modules-composite.txt', '/proc/modules')
    .stub('/usr/lpp/mmfs/bin/mmgetstate', [{ stdout: 'gpfs/mmgetstate-Y-active.txt' }])
    .stub('/usr/lpp/mmfs/bin/mmhealth', [{ stdout: 'gpfs/mmhealth-Y-tips.txt' }])
    .copy('gpfs/mmfs.log.sichek', '/var/adm/ras/mmfs.log.latest')
    .stub('/usr/sbin/smartctl', [
      { args: '--scan', stdout: 'smart/scan-simple.json' },
      { args: '/dev/sdc', stdout: 'smart/smart-fail2-sdc.json', exit: 216 },
      { stdout: 'smart/smart-pass-sdc.json' },
    ])
    .file(
      '/sys/fs/pstore/dmesg-erst-7530486857247752193',
      fixture('pstore/panic/dmesg-erst-7530486857247752193'),
      o.pstoreMtimeMs,
    );
}
