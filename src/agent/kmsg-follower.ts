/**
 * Follows the kernel log device live: /dev/kmsg (a character device: each read returns one record,
 * EAGAIN when none is new, EPIPE when the ring buffer overwrote unread records), a FIFO (tests) or
 * a regular file (tail). The file is opened non-blocking and polled every `pollMs`, so no libuv
 * thread sits in a blocking read and an abort stops the loop within one poll. Opening /dev/kmsg
 * starts at the oldest record still in the ring buffer: the current boot's history is replayed
 * first, then new records arrive as they are written.
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
  readonly pollMs: number;
  readonly clock: Clock;
  readonly signal: AbortSignal;
  readonly onLine: (line: string) => void;
  /**
   * Called with true once the device is open and its backlog (the ring buffer) has been read,
   * false when it cannot be opened or read.
   */
  readonly onAvailable: (available: boolean, detail?: string) => void;
}

/** Runs until the signal aborts; never throws for I/O errors (they mark the source unavailable). */
export async function followKmsg(opts: KmsgFollowOptions): Promise<void> {
  while (!opts.signal.aborted) {
    let fh: FileHandle;
    try {
      fh = await open(opts.path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      opts.onAvailable(false, `open ${opts.path}: ${codeOf(err)}`);
      await pause(opts, REOPEN_MS);
      continue;
    }
    try {
      await readLoop(fh, opts);
    } catch (err) {
      opts.onAvailable(false, `read ${opts.path}: ${codeOf(err)}`);
      await pause(opts, REOPEN_MS);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }
}

async function readLoop(fh: FileHandle, opts: KmsgFollowOptions): Promise<void> {
  const buf = Buffer.alloc(READ_BYTES);
  const decoder = new StringDecoder('utf8');
  let partial = '';
  let caughtUp = false;
  const idle = async (): Promise<void> => {
    if (!caughtUp) opts.onAvailable(true);
    caughtUp = true;
    await pause(opts, opts.pollMs);
  };
  while (!opts.signal.aborted) {
    let bytes: number;
    try {
      bytes = (await fh.read(buf, 0, buf.length, null)).bytesRead;
    } catch (err) {
      const code = codeOf(err);
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
        await idle();
        continue;
      }
      if (code === 'EPIPE') continue; // records were overwritten; the next read resumes
      throw err;
    }
    if (bytes === 0) {
      await idle(); // FIFO without a writer, or end of a regular file
      continue;
    }
    partial += decoder.write(buf.subarray(0, bytes));
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line !== '') opts.onLine(line);
  }
}

async function pause(opts: KmsgFollowOptions, ms: number): Promise<void> {
  await opts.clock.sleep(ms, opts.signal).catch(() => undefined);
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}
