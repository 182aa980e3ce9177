/**
 * Follows the kernel log device live: /dev/kmsg (a character device: each read returns one record,
 * EPIPE when the ring buffer overwrote unread records) or a FIFO (tests).
 *
 * Two phases per open. First the backlog (every record still in the ring buffer: opening
 * /dev/kmsg starts at the oldest) is read non-blocking until EAGAIN, and only then is the source
 * reported available, so the current boot's history is known before any condition is written.
 * Then a second, blocking descriptor waits in a read: no polling, no CPU while the kernel is
 * quiet, and a new record is delivered the moment it is written (the fast path). That read cannot
 * be interrupted: the loop notices an abort when the read returns, and the agent's shutdown does
 * not wait for it (the process exits). A new /dev/kmsg descriptor replays the ring buffer, so the
 * caller drops records it has seen (by sequence number). At the end of a FIFO (the writer closed)
 * the device is opened again; a regular file is polled for growth every `pollMs`.
 */
import { constants } from 'node:fs';
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

/** One open: drain the backlog, then block on new records until EOF or abort. */
async function followOnce(opts: KmsgFollowOptions): Promise<void> {
  const lines = lineSplitter(opts.onLine);
  const backlog = await open(opts.path, constants.O_RDONLY | constants.O_NONBLOCK);
  let live: FileHandle | undefined;
  try {
    await drain(backlog, lines);
    const regular = (await backlog.stat()).isFile();
    opts.onAvailable(true);
    if (regular) {
      await tail(backlog, lines, opts);
      return;
    }
    live = await open(opts.path, constants.O_RDONLY);
    await backlog.close();
    await block(live, lines, opts);
  } finally {
    await backlog.close().catch(() => undefined);
    await live?.close().catch(() => undefined);
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

/** Blocking reads until EOF (FIFO writer gone) or an abort noticed after a read. */
async function block(
  fh: FileHandle,
  lines: (chunk: Buffer) => void,
  opts: KmsgFollowOptions,
): Promise<void> {
  const buf = Buffer.alloc(READ_BYTES);
  while (!opts.signal.aborted) {
    let bytes: number;
    try {
      bytes = (await fh.read(buf, 0, buf.length, null)).bytesRead;
    } catch (err) {
      if (codeOf(err) === 'EPIPE') continue;
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
