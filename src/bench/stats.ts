/** Summary statistics for benchmark samples (nearest-rank percentiles, like most load tools). */
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';

/** A distribution of samples. With fewer than 100 samples, p99 is the maximum. */
export interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentile of `values` (0 < p <= 100); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}

/** n, p50, p99, max and mean of `values`, rounded to `digits` decimals. */
export function summarize(values: readonly number[], digits = 2): Summary {
  const round = (v: number): number => Number(v.toFixed(digits));
  const n = values.length;
  const mean = n === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / n;
  return {
    n,
    p50: round(percentile(values, 50)),
    p99: round(percentile(values, 99)),
    max: round(n === 0 ? Number.NaN : Math.max(...values)),
    mean: round(mean),
  };
}

/**
 * Nanoseconds the calling thread has spent runnable but waiting for a CPU (Linux
 * `/proc/thread-self/schedstat`, accounted each time the thread is switched in); undefined on
 * other systems. Wall time minus this, over a stretch with no I/O wait, is the thread's time on a
 * CPU: other load on the machine and V8's helper threads (concurrent GC) are left out.
 */
export function runQueueWaitNs(): number | undefined {
  try {
    const wait = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]);
    return Number.isFinite(wait) ? wait : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Nanoseconds the calling thread has spent on a CPU (Linux `/proc/thread-self/schedstat`, first
 * field); undefined on other systems. V8's helper threads (concurrent GC) are not counted.
 */
export function threadCpuNs(): number | undefined {
  try {
    const ns = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
    return Number.isFinite(ns) ? ns : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) of this process since `since`, in milliseconds. */
export function cpuMsSince(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

/** Peak resident set size of this process so far, in MB (getrusage ru_maxrss). */
export function peakRssMb(): number {
  return Number((process.resourceUsage().maxRSS / 1024).toFixed(1));
}

/** Current resident set size, in MB. */
export function rssMb(): number {
  return Number((process.memoryUsage.rss() / 1024 / 1024).toFixed(1));
}

/**
 * Waits (real time, at most `maxMs`) until the process uses no CPU for 20 ms: V8's helper
 * threads have finished sweeping what the last collection freed, so the next measurement with
 * process.cpuUsage() sees only the work it wraps. Returns the time waited.
 */
export async function settleCpu(maxMs = 2_000): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < maxMs) {
    const since = process.cpuUsage();
    await delay(20);
    if (cpuMsSince(since) < 1) break;
  }
  return performance.now() - start;
}
