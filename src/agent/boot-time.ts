/**
 * When the node booted: `btime` of /proc/stat (seconds since the epoch), from the host's /proc
 * under the host root, else the container's own (the kernel is the same). Kernel log records are
 * timed relative to it.
 */
import type { Clock } from '../core/clock.js';
import { hostPath, readText } from './host-fs.js';

/** Boot time in ms since the epoch; the agent's start time when /proc/stat cannot be read. */
export async function bootTimeMs(hostRoot: string, clock: Clock): Promise<number> {
  for (const path of [hostPath(hostRoot, '/proc/stat'), '/proc/stat']) {
    const btime = /^btime (\d+)$/m.exec((await readText(path)) ?? '')?.[1];
    if (btime !== undefined) return Number(btime) * 1000;
  }
  return clock.now();
}
