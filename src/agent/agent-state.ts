/**
 * The agent's state between scrapes: the last report of every check, the kernel log state and the
 * mmfs log window. It answers two questions: the metrics snapshot (agent-metrics.ts) and the
 * inputs of the Node conditions (node-conditions.ts). Kernel-log conditions are "cannot check"
 * while the kernel log cannot be read; their zero-valued series exist while it can.
 */
import type { AgentSnapshot } from './agent-metrics.js';
import { checked, unavailable, type CheckReport } from './check.js';
import type { KernelLogState } from './kernel-log-state.js';
import type { LogWindow } from './log-window.js';
import type { ConditionInputs } from './node-conditions.js';

/** Conditions read from the live kernel log, with the rule each reads. */
export const KERNEL_LOG_CHECKS: Readonly<Record<string, string>> = {
  CpuMachineCheckError: 'mce',
  KernelDeadlock: 'hung_task',
  KernelSoftLockup: 'soft_lockup',
  ICETxTimeout: 'ice_tx_timeout',
};
const MMFS_RULES = ['expelled', 'quorum_connection_down'];

/** Mutable state of a running agent. */
export class AgentState {
  readonly kernel: KernelLogState;
  readonly mmfs: LogWindow;
  readonly #reports = new Map<string, CheckReport>();
  readonly #durations: Record<string, number> = {};
  kmsgDetail = 'not opened yet';
  conditionWriteOk: number | undefined;

  constructor(kernel: KernelLogState, mmfs: LogWindow) {
    this.kernel = kernel;
    this.mmfs = mmfs;
  }

  /** Stores a check's latest report. */
  setReport(name: string, report: CheckReport, durationS: number): void {
    this.#reports.set(name, report);
    this.#durations[name] = durationS;
  }

  /** The report of one check, if it has run. */
  report(name: string): CheckReport | undefined {
    return this.#reports.get(name);
  }

  /** Everything /metrics shows, at `nowMs`. */
  snapshot(nowMs: number): AgentSnapshot {
    const reports = [...this.#reports.values()];
    const kmsg = this.kernel.kmsgAvailable === true;
    const previous = this.kernel.previousBoot;
    const mmfsOk = reports.some((r) => r.available.GpfsExpelledFromCluster === true);
    const kernelLogs = this.kernel
      .counts(nowMs)
      .filter((c) => kmsg || (c.key.rule === 'panic' && previous.available));
    const baseRules = kmsg ? ['mce', 'hung_task', 'soft_lockup'] : [];
    const logs = [
      ...kernelLogs,
      ...baseRules
        .filter((r) => !kernelLogs.some((c) => c.key.rule === r && c.key.device === undefined))
        .map((rule) => ({ key: { source: 'kernel', rule }, count: 0 })),
      ...(mmfsOk ? this.#mmfsCounts(nowMs) : []),
    ];
    return {
      problems: reports.flatMap((r) => r.problems),
      available: {
        ...merge(reports.map((r) => r.available)),
        ...(kmsg
          ? checked(Object.keys(KERNEL_LOG_CHECKS))
          : unavailable(Object.keys(KERNEL_LOG_CHECKS), this.kmsgDetail)),
        KernelPanic: previous.available ? true : previous.detail,
      },
      logs,
      modulesLoaded: merge(reports.map((r) => r.modulesLoaded ?? {})),
      modulesConfigured: merge(reports.map((r) => r.modulesConfigured ?? {})),
      hcaPcie: reports.flatMap((r) => r.hcaPcie ?? []),
      durations: { ...this.#durations },
      ...(this.conditionWriteOk === undefined ? {} : { conditionWriteOk: this.conditionWriteOk }),
    };
  }

  #mmfsCounts(nowMs: number) {
    const counts = this.mmfs.counts(nowMs);
    for (const rule of MMFS_RULES) {
      if (!counts.some((c) => c.key.rule === rule))
        counts.push({ key: { source: 'mmfs', rule }, count: 0 });
    }
    return counts;
  }

  /** Inputs of the Node conditions at `nowMs`. */
  conditionInputs(nowMs: number): ConditionInputs {
    const gpu = this.#reports.get('gpu');
    const hung =
      gpu?.available.GpuHung === true
        ? gpu.problems.some((p) => p.check === 'GpuHung' && p.value > 0)
        : undefined;
    return {
      xids: this.kernel.kmsgAvailable === true ? this.kernel.xids() : undefined,
      gpuHung: hung,
      panicInWindow: this.kernel.previousBoot.available
        ? this.kernel.panicInWindow(nowMs)
        : undefined,
      lockups:
        this.kernel.kmsgAvailable === true ? this.kernel.count('soft_lockup', nowMs) : undefined,
    };
  }
}

function merge<V>(maps: readonly Readonly<Record<string, V>>[]): Record<string, V> {
  const out: Record<string, V> = {};
  for (const m of maps) Object.assign(out, m);
  return out;
}
