/**
 * Follows GPFS's log (/var/adm/ras/mmfs.log.latest) for the events the catalogue reads as
 * aegis_nodecheck_log_matches{source="mmfs"}: `expelled` (this node was expelled from the
 * cluster) and `quorum_connection_down` (no quorum node reachable). Lines carry their own time
 * (`2024-11-23_03:04:14.148+0800: [E] ...`, possibly after `host: `); lines without one count at
 * the time they are read. On start the whole file is read (history older than the window does
 * not count); a file that shrank was rotated and is read again from the start.
 */
import { open } from 'node:fs/promises';
import type { Clock } from '../core/clock.js';
import { checked, unavailable, type Check } from './check.js';
import type { LogWindow } from './log-window.js';

/** Conditions fed by the mmfs log. */
export const MMFS_LOG_CHECKS = ['GpfsExpelledFromCluster', 'GpfsQuorumConnectionDown'] as const;
const MAX_READ_BYTES = 4 * 1024 * 1024;
const RULES: readonly (readonly [string, RegExp])[] = [
  ['expelled', /This node (?:is being|will be) expelled from (?:the )?cluster/],
  ['quorum_connection_down', /Unable to contact any quorum nodes/],
];
const STAMP = /^(?:\S+: )?(\d{4}-\d\d-\d\d)_(\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(\d\d):/;

/** Rule of one mmfs.log line and its time (undefined time: the line has none). */
export function classifyMmfsLine(line: string): { rule: string; atMs?: number } | undefined {
  const rule = RULES.find(([, re]) => re.test(line))?.[0];
  if (rule === undefined) return undefined;
  const m = STAMP.exec(line);
  if (!m) return { rule };
  const atMs = Date.parse(`${m[1] ?? ''}T${m[2] ?? ''}${m[3] ?? ''}:${m[4] ?? ''}`);
  return Number.isFinite(atMs) ? { rule, atMs } : { rule };
}

/** Settings of the mmfs log follower. */
export interface MmfsLogOptions {
  readonly path: string;
  readonly window: LogWindow;
  readonly clock: Clock;
  readonly intervalMs: number;
}

/** The follower, as a check that reports only availability (counts go into the shared window). */
export function createMmfsLogCheck(opts: MmfsLogOptions): Check {
  let offset = 0;
  let partial = '';
  return {
    name: 'mmfs-log',
    intervalMs: opts.intervalMs,
    covers: MMFS_LOG_CHECKS,
    async run() {
      let fh;
      try {
        fh = await open(opts.path, 'r');
      } catch (err) {
        const why = `${opts.path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
        return { problems: [], available: unavailable(MMFS_LOG_CHECKS, why) };
      }
      try {
        const { size } = await fh.stat();
        if (size < offset) [offset, partial] = [0, ''];
        const length = Math.min(size - offset, MAX_READ_BYTES);
        const buf = Buffer.alloc(length);
        if (length > 0) await fh.read(buf, 0, length, offset);
        offset += length;
        const lines = (partial + buf.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) record(line, opts);
      } finally {
        await fh.close();
      }
      return { problems: [], available: checked(MMFS_LOG_CHECKS) };
    },
  };
}

function record(line: string, opts: MmfsLogOptions): void {
  const match = classifyMmfsLine(line);
  if (match === undefined) return;
  opts.window.record({ source: 'mmfs', rule: match.rule }, match.atMs ?? opts.clock.now());
}
