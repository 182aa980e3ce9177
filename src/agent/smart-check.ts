/**
 * DiskSmartFailing from smartmontools' JSON output (smartctl >= 7.0): the drives come from
 * `smartctl --scan --json`, each is asked `smartctl --json -H <name>`; a drive fails when
 * `smart_status.passed` is false (ATA/SCSI overall health, NVMe critical warning) or exit status
 * bit 3 ("SMART status check returned DISK FAILING") is set. device = block device name (sdc,
 * nvme0). A drive that cannot be opened or has no verdict is skipped, not failed.
 */
import { checked, nothingChecked, problem, type Check, type ProblemSample } from './check.js';
import type { ToolRunner } from './tool-runner.js';

/** Conditions this check reports. */
export const SMART_CHECKS = ['DiskSmartFailing'] as const;
const DISK_FAILING_BIT = 1 << 3;
const SMARTCTL = { command: 'smartctl', root: '/' } as const;

/** Settings of the SMART check. */
export interface SmartCheckOptions {
  readonly runner: ToolRunner;
  readonly timeoutMs: number;
  readonly intervalMs: number;
}

/** The verdict of one `smartctl --json -H` document: true failing, false passing, undefined none. */
export function smartVerdict(json: string, exitCode: number): boolean | undefined {
  let doc: { smart_status?: { passed?: unknown } };
  try {
    doc = JSON.parse(json) as typeof doc;
  } catch {
    return undefined;
  }
  if ((exitCode & DISK_FAILING_BIT) !== 0) return true;
  const passed = doc.smart_status?.passed;
  return typeof passed === 'boolean' ? !passed : undefined;
}

/** Device names from `smartctl --scan --json`. */
export function scanDevices(json: string): string[] {
  try {
    const doc = JSON.parse(json) as { devices?: { name?: unknown }[] };
    return (doc.devices ?? []).flatMap((d) => (typeof d.name === 'string' ? [d.name] : []));
  } catch {
    return [];
  }
}

/** Builds the SMART check. */
export function createSmartCheck(opts: SmartCheckOptions): Check {
  return {
    name: 'smart',
    intervalMs: opts.intervalMs,
    covers: SMART_CHECKS,
    async run() {
      const scan = await opts.runner.run(SMARTCTL, ['--scan', '--json'], opts.timeoutMs);
      if (scan.kind !== 'exited') return nothingChecked(SMART_CHECKS, scan.detail);
      const devices = scanDevices(scan.stdout);
      if (devices.length === 0)
        return nothingChecked(SMART_CHECKS, 'smartctl --scan found no drive');
      const failing: ProblemSample[] = [];
      let verdicts = 0;
      for (const name of devices) {
        const r = await opts.runner.run(SMARTCTL, ['--json', '-H', name], opts.timeoutMs);
        if (r.kind !== 'exited') continue;
        const verdict = smartVerdict(r.stdout, r.code);
        if (verdict === undefined) continue;
        verdicts++;
        if (verdict) failing.push(problem('DiskSmartFailing', 1, name.replace(/^\/dev\//, '')));
      }
      if (verdicts === 0) return nothingChecked(SMART_CHECKS, 'no drive gave a SMART verdict');
      return {
        problems: failing.length > 0 ? failing : [problem('DiskSmartFailing', 0)],
        available: checked(SMART_CHECKS),
      };
    },
  };
}
