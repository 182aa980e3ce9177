/**
 * Did the previous boot end in a kernel panic? Read after the reboot, from
 *   1. pstore: /sys/fs/pstore/dmesg-* (records the kernel saved while dying; the first line is
 *      `<Reason>#<n> Part<m>` with Reason Panic, Oops, ...), and /var/lib/systemd/pstore/** where
 *      systemd-pstore moves them at boot. Only records written within a day before this boot
 *      count, so an old record nobody cleared is not reported after every reboot;
 *   2. else the journal: `journalctl -k -b -1` on the host (needs a persistent journal; a panic
 *      often never reaches it, which is why pstore comes first).
 * Neither readable means "cannot check" (KernelPanic unavailable), not "no panic".
 */
import { join } from 'node:path';
import { hostPath, listDir, mtimeMs, readText } from './host-fs.js';
import type { PreviousBoot } from './kernel-log-state.js';
import { classifyKernelMessage, stripLogPrefix } from './kernel-rules.js';
import type { ToolRunner } from './tool-runner.js';

const PSTORE_DIRS = ['/sys/fs/pstore', '/var/lib/systemd/pstore'];
const MAX_RECORD_AGE_MS = 86_400_000;

/** Inputs of readPreviousBoot. */
export interface PreviousBootInput {
  readonly hostRoot: string;
  readonly bootTimeMs: number;
  readonly runner: ToolRunner;
  readonly timeoutMs: number;
}

/** Reads pstore, then the journal. */
export async function readPreviousBoot(input: PreviousBootInput): Promise<PreviousBoot> {
  const pstore = await readPstore(input.hostRoot, input.bootTimeMs);
  if (pstore.panic) return pstore;
  const journal = await readJournal(input);
  if (journal.available) return journal;
  return pstore.available ? pstore : { ...journal, detail: `${pstore.detail}; ${journal.detail}` };
}

async function readPstore(hostRoot: string, bootTimeMs: number): Promise<PreviousBoot> {
  let readable = false;
  for (const dir of PSTORE_DIRS) {
    const files = await pstoreFiles(hostPath(hostRoot, dir));
    if (files === undefined) continue;
    readable = true;
    for (const file of files) {
      const mtime = await mtimeMs(file);
      if (mtime === undefined || mtime < bootTimeMs - MAX_RECORD_AGE_MS) continue;
      const text = (await readText(file)) ?? '';
      if (isPanicRecord(text)) return { available: true, panic: true, detail: `pstore ${file}` };
    }
  }
  return readable
    ? { available: true, panic: false, detail: 'pstore: no panic record from the last day' }
    : { available: false, panic: false, detail: 'pstore not readable' };
}

/** dmesg-* files directly in `dir` or one level below (systemd-pstore's per-boot folders). */
async function pstoreFiles(dir: string): Promise<string[] | undefined> {
  const entries = await listDir(dir);
  if (entries === undefined) return undefined;
  const out: string[] = [];
  for (const e of entries) {
    if (e.startsWith('dmesg-')) out.push(join(dir, e));
    else
      for (const sub of (await listDir(join(dir, e))) ?? []) {
        if (sub.startsWith('dmesg-')) out.push(join(dir, e, sub));
      }
  }
  return out;
}

/** A pstore dmesg record saved by a panic. */
export function isPanicRecord(text: string): boolean {
  if (/^Panic#\d+ Part\d+/.test(text)) return true;
  return text.split('\n').some((l) => classifyKernelMessage(stripLogPrefix(l))?.rule === 'panic');
}

async function readJournal(input: PreviousBootInput): Promise<PreviousBoot> {
  const result = await input.runner.run(
    { command: 'journalctl', root: '/' },
    ['-k', '-b', '-1', '--no-pager', '-o', 'short'],
    input.timeoutMs,
  );
  if (result.kind !== 'exited') return { available: false, panic: false, detail: result.detail };
  if (result.code !== 0) {
    const why = result.stderr.trim().split('\n')[0] ?? `exit ${result.code}`;
    return { available: false, panic: false, detail: `journalctl: ${why}` };
  }
  const panic = result.stdout
    .split('\n')
    .some((l) => classifyKernelMessage(stripLogPrefix(l))?.rule === 'panic');
  return { available: true, panic, detail: 'journalctl -k -b -1' };
}
