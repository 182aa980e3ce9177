/**
 * GPFS checks from its own commands on the host (`<binDir>/mmgetstate -Y`, `mmhealth node show
 * -Y`), each under a deadline:
 *   GpfsNotInstalled  mmgetstate is not there although the node must have GPFS (`gpfsRequired`;
 *                     otherwise a node without GPFS is "cannot check" for every GPFS condition);
 *   GpfsNotInCluster  mmgetstate says the node does not belong to a GPFS cluster (6027-1382);
 *   GpfsNotStarted    the daemon state is `down`;
 *   GpfsTestFailed    mmhealth reports components in FAILED state (value = their number).
 * The agent never writes to a GPFS file system: the probe is GPFS's own health monitor.
 */
import { join } from 'node:path';
import {
  checked,
  problem,
  unavailable,
  type Check,
  type CheckReport,
  type ProblemSample,
} from './check.js';
import { parseMmgetstate, parseMmhealth } from './gpfs-parse.js';
import type { ToolResult, ToolRunner } from './tool-runner.js';

/** Conditions this check reports. */
export const GPFS_CHECKS = [
  'GpfsNotInstalled',
  'GpfsNotInCluster',
  'GpfsNotStarted',
  'GpfsTestFailed',
] as const;
const NOT_IN_CLUSTER = /does not belong to a GPFS cluster/i;

/** Settings of the GPFS check. */
export interface GpfsCheckOptions {
  readonly runner: ToolRunner;
  readonly binDir: string;
  readonly required: boolean;
  readonly timeoutMs: number;
  readonly intervalMs: number;
}

/** Builds the GPFS check. */
export function createGpfsCheck(opts: GpfsCheckOptions): Check {
  const run = (command: string, args: string[]): Promise<ToolResult> =>
    opts.runner.run({ command: join(opts.binDir, command), root: '/' }, args, opts.timeoutMs);
  return {
    name: 'gpfs',
    intervalMs: opts.intervalMs,
    covers: GPFS_CHECKS,
    async run() {
      const state = await run('mmgetstate', ['-Y']);
      if (state.kind === 'missing') return notInstalled(opts.required, state.detail);
      if (state.kind === 'timeout')
        return { problems: [], available: unavailable(GPFS_CHECKS, state.detail) };
      const text = `${state.stdout}\n${state.stderr}`;
      if (NOT_IN_CLUSTER.test(text)) {
        return {
          problems: [problem('GpfsNotInstalled', 0), problem('GpfsNotInCluster', 1)],
          available: {
            ...checked(GPFS_CHECKS),
            ...unavailable(['GpfsNotStarted', 'GpfsTestFailed'], 'not in a cluster'),
          },
        };
      }
      const daemon = parseMmgetstate(state.stdout);
      const problems: ProblemSample[] = [
        problem('GpfsNotInstalled', 0),
        problem('GpfsNotInCluster', 0),
      ];
      const available: Record<string, string | true> = checked([
        'GpfsNotInstalled',
        'GpfsNotInCluster',
      ]);
      if (daemon === undefined)
        available.GpfsNotStarted = `mmgetstate: no state (exit ${state.code})`;
      else {
        problems.push(problem('GpfsNotStarted', daemon === 'down' ? 1 : 0));
        available.GpfsNotStarted = true;
      }
      return withHealth(await run('mmhealth', ['node', 'show', '-Y']), { problems, available });
    },
  };
}

function notInstalled(required: boolean, detail: string): CheckReport {
  if (!required)
    return { problems: [], available: unavailable(GPFS_CHECKS, `GPFS not installed (${detail})`) };
  return {
    problems: [problem('GpfsNotInstalled', 1)],
    available: { ...unavailable(GPFS_CHECKS, 'GPFS not installed'), GpfsNotInstalled: true },
  };
}

function withHealth(
  health: ToolResult,
  report: { problems: ProblemSample[]; available: Record<string, string | true> },
): CheckReport {
  if (health.kind !== 'exited') {
    return { ...report, available: { ...report.available, GpfsTestFailed: health.detail } };
  }
  const states = parseMmhealth(health.stdout);
  if (states.length === 0) {
    const why = `mmhealth: no state rows (exit ${health.code})`;
    return { ...report, available: { ...report.available, GpfsTestFailed: why } };
  }
  const failed = states.filter((s) => s.status === 'FAILED').length;
  return {
    problems: [...report.problems, problem('GpfsTestFailed', failed)],
    available: { ...report.available, GpfsTestFailed: true },
  };
}
