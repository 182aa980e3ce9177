/**
 * Runs host tools (nvidia-smi, smartctl, mmgetstate, mmhealth, journalctl) with a deadline.
 *
 * Two modes. `host` (the DaemonSet): the tool runs in the host's mount namespace through
 * `nsenter --mount=<hostRoot>/proc/1/ns/mnt` (the host's /proc is mounted; no hostPID needed), so
 * it uses the host's own binaries, libraries and /dev; NVIDIA tools additionally `chroot` into the
 * driver root (/run/nvidia/driver under the GPU Operator), as the GPU Operator's validator does.
 * `direct` (tests): the tool is the file `<hostRoot><root><command>` and runs as is.
 *
 * A tool that does not exist is `missing` ("cannot check"), never a fault. A tool that outlives
 * its deadline is killed (its whole process group) and reported as `timeout`; while a killed
 * process has not exited (a GPU hang leaves nvidia-smi in uninterruptible sleep), the same tool is
 * not started again and every run reports `timeout` at once, so hung processes never pile up.
 */
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import type { ToolMode } from './options.js';

/** Directories searched for a command given without a path. */
const PATH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
/** Output kept per stream; nvidia-smi -q -x on 8 GPUs prints ~300 KB. */
const MAX_OUTPUT_BYTES = 8 * 1024 * 1024;
/** Exit status of nsenter/chroot when the command cannot be found or executed. */
const EXEC_NOT_FOUND = 127;

/** What one run produced. */
export type ToolResult =
  | { readonly kind: 'missing'; readonly detail: string }
  | { readonly kind: 'timeout'; readonly detail: string }
  | {
      readonly kind: 'exited';
      readonly code: number;
      readonly stdout: string;
      readonly stderr: string;
    };

/** A tool: its command (a name looked up in PATH, or an absolute path) under a root on the host. */
export interface ToolSpec {
  readonly command: string;
  /** Host path the tool lives under: "/" or the NVIDIA driver root. */
  readonly root: string;
}

/** Runs tools; the port the checks use (tests pass stub executables under a fake host root). */
export interface ToolRunner {
  run(tool: ToolSpec, args: readonly string[], timeoutMs: number): Promise<ToolResult>;
}

/** Builds the runner for a mode and host root. */
export function createToolRunner(mode: ToolMode, hostRoot: string): ToolRunner {
  const running = new Set<string>();
  return {
    async run(tool, args, timeoutMs) {
      const key = `${tool.root}\0${tool.command}`;
      if (running.has(key)) {
        return { kind: 'timeout', detail: `${tool.command}: a previous run has not exited yet` };
      }
      const argv =
        mode === 'host' ? hostArgv(hostRoot, tool, args) : await directArgv(hostRoot, tool, args);
      if (argv === undefined) return { kind: 'missing', detail: `${tool.command}: not found` };
      running.add(key);
      return execute(argv, timeoutMs, () => running.delete(key), mode === 'host');
    },
  };
}

function hostArgv(hostRoot: string, tool: ToolSpec, args: readonly string[]): string[] {
  const chroot = tool.root === '/' ? [] : ['chroot', tool.root];
  return [
    'nsenter',
    `--mount=${join(hostRoot, 'proc/1/ns/mnt')}`,
    '--',
    ...chroot,
    tool.command,
    ...args,
  ];
}

async function directArgv(
  hostRoot: string,
  tool: ToolSpec,
  args: readonly string[],
): Promise<string[] | undefined> {
  const base = join(hostRoot, tool.root);
  const candidates = tool.command.startsWith('/')
    ? [join(base, tool.command)]
    : PATH_DIRS.map((dir) => join(base, dir, tool.command));
  for (const file of candidates) {
    try {
      await access(file, constants.X_OK);
      return [file, ...args];
    } catch {
      // not here; try the next directory
    }
  }
  return undefined;
}

function execute(
  argv: readonly string[],
  timeoutMs: number,
  onExit: () => void,
  viaNsenter: boolean,
): Promise<ToolResult> {
  const [file, ...rest] = argv as [string, ...string[]];
  return new Promise((resolve) => {
    const child = spawn(file, rest, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = collect(child.stdout);
    const err = collect(child.stderr);
    let settled = false;
    const finish = (result: ToolResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => {
      killGroup(child.pid);
      finish({ kind: 'timeout', detail: `${argv.join(' ')}: no answer in ${timeoutMs} ms` });
    }, timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      onExit();
      finish({ kind: 'missing', detail: `${file}: ${e.code ?? e.message}` });
    });
    child.on('close', (code, signal) => {
      onExit();
      const stderr = err();
      if (viaNsenter && code === EXEC_NOT_FOUND) {
        finish({ kind: 'missing', detail: stderr.trim() || `${argv.join(' ')}: not found` });
        return;
      }
      finish({ kind: 'exited', code: code ?? (signal === null ? -1 : 128), stdout: out(), stderr });
    });
  });
}

function collect(stream: NodeJS.ReadableStream): () => string {
  const chunks: Buffer[] = [];
  let size = 0;
  stream.on('data', (chunk: Buffer) => {
    if (size >= MAX_OUTPUT_BYTES) return;
    chunks.push(chunk);
    size += chunk.length;
  });
  return () => Buffer.concat(chunks).toString('utf8');
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
