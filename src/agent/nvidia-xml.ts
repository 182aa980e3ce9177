/**
 * The fields of `nvidia-smi -q -x` the GPU check reads, from the documented schema
 * (nvsmi_device_v11/v12/v13.dtd): per <gpu id="...">, the reset status, the recovery action
 * (drivers >= 550), row remapping and page retirement. Elements absent from an older schema read
 * as undefined ("not reported"), not as healthy or failing. No XML library: the document is
 * machine-written with a fixed shape, and these are leaf elements with plain text.
 */
import { ErrorCode, HealError } from '../core/errors.js';

/** What the check needs to know about one GPU. */
export interface NvidiaGpu {
  /** PCI address, normalised to 0000:bb:dd.f lower case. */
  readonly pci: string;
  /** `gpu_reset_status/reset_required`. */
  readonly resetRequired?: boolean;
  /** `gpu_recovery_action` (None, GPU Reset, Node Reboot, Drain P2P, Drain and Reset). */
  readonly recoveryAction?: string;
  /** `remapped_rows/remapped_row_failure` (v13) or `remapping_failure_occurred` (v12). */
  readonly remapFailure?: boolean;
  /** `retired_pages/pending_retirement`. */
  readonly pendingRetirement?: boolean;
}

const GPU_BLOCK = /<gpu id="([^"]+)">([\s\S]*?)<\/gpu>/g;

/** Parses the document; throws INVALID_INPUT when it is not an nvidia_smi_log. */
export function parseNvidiaSmiXml(xml: string): NvidiaGpu[] {
  if (!xml.includes('<nvidia_smi_log>')) {
    throw new HealError(
      ErrorCode.InvalidInput,
      'nvidia-smi -q -x: no <nvidia_smi_log> in the output',
    );
  }
  const gpus: NvidiaGpu[] = [];
  for (const m of xml.matchAll(GPU_BLOCK)) {
    const body = m[2] ?? '';
    const remap =
      leaf(section(body, 'remapped_rows'), 'remapped_row_failure') ??
      leaf(section(body, 'remapped_rows'), 'remapping_failure_occurred');
    gpus.push({
      pci: normalisePci(m[1] ?? ''),
      ...yesNo('resetRequired', leaf(section(body, 'gpu_reset_status'), 'reset_required')),
      ...text('recoveryAction', leaf(body, 'gpu_recovery_action')),
      ...yesNo('remapFailure', remap),
      ...yesNo('pendingRetirement', leaf(section(body, 'retired_pages'), 'pending_retirement')),
    });
  }
  return gpus;
}

/** 00000000:3B:00.0 → 0000:3b:00.0 (the kernel's form); already short addresses pass through. */
export function normalisePci(id: string): string {
  const lower = id.trim().toLowerCase();
  return /^[0-9a-f]{8}:/.test(lower) ? lower.slice(4) : lower;
}

function section(body: string, tag: string): string {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(body);
  return m?.[1] ?? '';
}

function leaf(body: string, tag: string): string | undefined {
  return new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(body)?.[1]?.trim();
}

function yesNo<K extends string>(key: K, value: string | undefined): { [P in K]?: boolean } {
  if (value === 'Yes') return { [key]: true } as { [P in K]?: boolean };
  if (value === 'No') return { [key]: false } as { [P in K]?: boolean };
  return {};
}

function text<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return value === undefined || value === 'N/A' ? {} : ({ [key]: value } as { [P in K]?: string });
}

/** Recovery actions that mean "reset this GPU" (drivers >= 550). */
export function isResetAction(action: string | undefined): boolean {
  return action !== undefined && /reset|reboot/i.test(action);
}
