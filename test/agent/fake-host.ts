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
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Directory of the host fixtures. */
export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/host/agent');

/** Text of a fixture file. */
export function fixture(path: string): string {
  return readFileSync(join(FIXTURES, path), 'utf8');
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
 */
export function h100Host(o: { nvidiaSmi: string; pstoreMtimeMs?: number }): FakeHost {
  return new FakeHost()
    .kmsgFifo()
    .stub('/usr/bin/nvidia-smi', [{ stdout: o.nvidiaSmi }])
    .copy('sysfs/ib-h100', '/sys/class/infiniband')
    .pciFromLspci('sysfs/lspci-vvv-h100.txt')
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
