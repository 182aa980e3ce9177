/**
 * Runs one check on its interval until aborted: first run at once, then every `intervalMs`
 * (a run never overlaps the previous one). A check that throws is isolated: its conditions become
 * "cannot check" with the error as the reason, and the loop goes on.
 */
import type { Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import { nothingChecked, type Check, type CheckReport } from './check.js';

/** What the loop reports after each run. */
export type OnReport = (check: Check, report: CheckReport, durationS: number) => void;

/** Runs `check` until `signal` aborts. Resolves when the loop ends. */
export async function runCheckLoop(
  check: Check,
  opts: { clock: Clock; signal: AbortSignal; onReport: OnReport; log: (line: string) => void },
): Promise<void> {
  while (!opts.signal.aborted) {
    const started = opts.clock.now();
    let report: CheckReport;
    try {
      report = await check.run(opts.signal);
    } catch (err) {
      if (isAborted(opts.signal)) return;
      opts.log(`check ${check.name}: ${errorMessage(err)}`);
      report = nothingChecked(check.covers, `check failed: ${errorMessage(err)}`);
    }
    opts.onReport(check, report, (opts.clock.now() - started) / 1000);
    await opts.clock.sleep(check.intervalMs, opts.signal).catch(() => undefined);
  }
}

/** Read through a call: the loop condition narrowed `aborted` to false, but a run may abort it. */
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}
