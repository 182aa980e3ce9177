/**
 * Follows the kernel log device live: /dev/kmsg (a character device: each read returns one record,
 * EPIPE when the ring buffer overwrote unread records) or a FIFO (tests).
 *
 * Two phases per open. First the backlog (every record still in the ring buffer: opening
 * /dev/kmsg starts at the oldest) is read non-blocking until EAGAIN, and only then is the source
 * reported available, so the current boot's history is known before any condition is written.
 * Then a `cat` of the device streams new records through a pipe: no polling and no CPU while the
 * kernel is quiet, and a record arrives the moment it is written (the fast path). A blocking read
 * in this process would do the same, but it would hold a libuv thread that nothing can interrupt,
 * and Node waits for that thread before it exits. The `cat` is killed on abort. A new /dev/kmsg
 * reader replays the ring buffer, so the caller drops records it has seen (by sequence number).
 * When `cat` ends (end of a FIFO, EPIPE on /dev/kmsg) the device is opened again. A regular file
 * is polled for growth every `pollMs`.
 */
import { constants } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import type { Clock } from '../core/clock.js';

const READ_BYTES = 16 * 1024;
const REOPEN_MS = 5_000;

/** Callbacks and settings of followKmsg. */
export interface KmsgFollowOptions {
  readonly path: string;
  /** Poll interval at the end of a regular file. */
  readonly pollMs: number;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  readonly onLine: (line: string) => void;
  /**
   * Called with true once the device is open and its backlog has been read, false when it cannot
   * be opened or read.
   */
  readonly onAvailable: (available: boolean, detail?: string) => void;
}

/** Runs until the signal aborts; never throws for I/O errors (they mark the source unavailable). */
export async function followKmsg(opts: KmsgFollowOptions): Promise<void> {
  while (!opts.signal.aborted) {
    try {
      await followOnce(opts);
    } catch (err) {
      opts.onAvailable(false, `${opts.path}: ${codeOf(err)}`);
      await pause(opts, REOPEN_MS);
    }
  }
}

/** One open: drain the backlog, then stream new records through `cat` until it ends or abort. */
async function followOnce(opts: KmsgFollowOptions): Promise<void> {
  const lines = lineSplitter(opts.onLine);
  const backlog = await open(opts.path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    await drain(backlog, lines);
    const regular = (await backlog.stat()).isFile();
    opts.onAvailable(true);
    if (regular) {
      await tail(backlog, lines, opts);
      return;
    }
    // The backlog descriptor stays open while `cat` runs: a FIFO never lacks a reader meanwhile.
    await stream(opts, lines);
  } finally {
    await backlog.close().catch(() => undefined);
  }
}

/** `cat <path>` until it exits or the signal aborts; throws when it failed. */
async function stream(opts: KmsgFollowOptions, lines: (chunk: Buffer) => void): Promise<void> {
  const cat = spawn('cat', [opts.path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = (): void => {
    cat.kill('SIGKILL');
  };
  opts.signal.addEventListener('abort', kill, { once: true });
  let stderr = '';
  cat.stdout.on('data', lines);
  cat.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  try {
    const [code] = (await once(cat, 'close')) as [number | null];
    // EPIPE: a burst overwrote records before they were read; reopening resumes at once.
    if (!opts.signal.aborted && code !== 0 && !stderr.includes('Broken pipe')) {
      throw new Error(`cat exit ${String(code)}: ${stderr.trim()}`);
    }
  } finally {
    opts.signal.removeEventListener('abort', kill);
  }
}

/** Reads until nothing is left (EAGAIN, or 0 bytes). */
async function drain(fh: FileHandle, lines: (chunk: Buffer) => void): Promise<void> {
  const buf = Buffer.alloc(READ_BYTES);
  for (;;) {
    let bytes: number;
    try {
      bytes = (await fh.read(buf, 0, buf.length, null)).bytesRead;
    } catch (err) {
      const code = codeOf(err);
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return;
      if (code === 'EPIPE') continue; // overwritten records: the next read resumes
      throw err;
    }
    if (bytes === 0) return;
    lines(buf.subarray(0, bytes));
  }
}

/** A regular file: poll for appended data. */
async function tail(
  fh: FileHandle,
  lines: (chunk: Buffer) => void,
  opts: KmsgFollowOptions,
): Promise<void> {
  while (!opts.signal.aborted) {
    await pause(opts, opts.pollMs);
    await drain(fh, lines);
  }
}

function lineSplitter(onLine: (line: string) => void): (chunk: Buffer) => void {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  return (chunk) => {
    const parts = (partial + decoder.write(chunk)).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) if (line !== '') onLine(line);
  };
}

async function pause(opts: KmsgFollowOptions, ms: number): Promise<void> {
  await opts.clock.sleep(ms, opts.signal).catch(() => undefined);
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}
