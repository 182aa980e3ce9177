/**
 * GPU checks from `nvidia-smi -q -x`, run under the NVIDIA driver root with a deadline:
 *   GpuHung             nvidia-smi did not answer in time (NVML hang);
 *   GpuCheckFailed      GPUs that are inaccessible ("Unable to determine the device handle for
 *                       GPU <pci>", the lost-GPU message) or whose row remapping failed;
 *                       device = GPU bitmask (01000000 = GPU 1), value = failing GPUs;
 *   GpuErrResetRequired GPUs whose driver asks for a reset (reset_required, recovery action).
 * GPU index = position in the last document's PCI order (nvidia-smi's default order), remembered
 * so a GPU that later vanishes from the output still maps to its index.
 */
import {
  problem,
  nothingChecked,
  type Check,
  type CheckReport,
  type ProblemSample,
} from './check.js';
import { isResetAction, normalisePci, parseNvidiaSmiXml, type NvidiaGpu } from './nvidia-xml.js';
import type { ToolRunner, ToolSpec } from './tool-runner.js';

/** Conditions this check reports. */
export const GPU_CHECKS = ['GpuHung', 'GpuCheckFailed', 'GpuErrResetRequired'] as const;
const LOST =
  /Unable to determine the device handle for GPU\s*([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])/g;

/** Settings of the GPU check. */
export interface GpuCheckOptions {
  readonly runner: ToolRunner;
  /** nvidia-smi under the driver root (resolved before every run: the driver may come later). */
  readonly tool: () => Promise<ToolSpec>;
  readonly timeoutMs: number;
  readonly intervalMs: number;
}

/** Builds the GPU check. */
export function createGpuCheck(opts: GpuCheckOptions): Check {
  let order: string[] = [];
  return {
    name: 'gpu',
    intervalMs: opts.intervalMs,
    covers: GPU_CHECKS,
    async run() {
      const result = await opts.runner.run(await opts.tool(), ['-q', '-x'], opts.timeoutMs);
      if (result.kind === 'missing') return nothingChecked(GPU_CHECKS, result.detail);
      if (result.kind === 'timeout') {
        return {
          problems: [problem('GpuHung', 1)],
          available: {
            GpuHung: true,
            GpuCheckFailed: 'nvidia-smi hung',
            GpuErrResetRequired: 'nvidia-smi hung',
          },
        };
      }
      const lost = [...`${result.stdout}\n${result.stderr}`.matchAll(LOST)].map((m) =>
        normalisePci(m[1] ?? ''),
      );
      if (lost.length > 0) return lostReport(lost, order);
      if (result.code !== 0) {
        const why = (result.stderr || result.stdout).trim().split('\n')[0] ?? '';
        return {
          problems: [problem('GpuHung', 0)],
          available: {
            GpuHung: true,
            GpuCheckFailed: `nvidia-smi exit ${result.code}: ${why}`,
            GpuErrResetRequired: 'nvidia-smi failed',
          },
        };
      }
      let gpus: NvidiaGpu[];
      try {
        gpus = parseNvidiaSmiXml(result.stdout);
      } catch (err) {
        return nothingChecked(GPU_CHECKS, err instanceof Error ? err.message : String(err));
      }
      order = gpus.map((g) => g.pci);
      return healthReport(gpus);
    },
  };
}

function healthReport(gpus: readonly NvidiaGpu[]): CheckReport {
  const failed = gpus.map((g) => g.remapFailure === true);
  const reset = gpus.filter((g) => g.resetRequired === true || isResetAction(g.recoveryAction));
  return {
    problems: [
      problem('GpuHung', 0),
      failureSample(failed),
      problem('GpuErrResetRequired', reset.length),
    ],
    available: { GpuHung: true, GpuCheckFailed: true, GpuErrResetRequired: true },
  };
}

function lostReport(lost: readonly string[], order: readonly string[]): CheckReport {
  const known = order.length > 0;
  const flags = known ? order.map((pci) => lost.some((l) => samePci(l, pci))) : [];
  const unmapped = lost.filter((l) => !order.some((pci) => samePci(l, pci)));
  const problems: ProblemSample[] = [problem('GpuHung', 0)];
  if (flags.some(Boolean)) problems.push(failureSample(flags));
  // A GPU never seen in a document has no index: its PCI address is the device id instead.
  for (const pci of unmapped) problems.push(problem('GpuCheckFailed', 1, pci));
  return {
    problems,
    available: { GpuHung: true, GpuCheckFailed: true, GpuErrResetRequired: 'nvidia-smi failed' },
  };
}

function failureSample(failed: readonly boolean[]): ProblemSample {
  const count = failed.filter(Boolean).length;
  if (count === 0) return problem('GpuCheckFailed', 0);
  return problem('GpuCheckFailed', count, gpuMask(failed));
}

/** Bitmask string, GPU 0 first, at least 8 characters: [false, true] → 01000000. */
export function gpuMask(flags: readonly boolean[]): string {
  return flags
    .map((f) => (f ? '1' : '0'))
    .join('')
    .padEnd(8, '0');
}

/** 0000:3b:00 and 0000:3b:00.0 name the same GPU. */
function samePci(a: string, b: string): boolean {
  const strip = (s: string): string => s.replace(/\.0$/, '');
  return strip(a) === strip(b);
}
