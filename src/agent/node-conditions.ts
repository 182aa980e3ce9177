/**
 * The Node conditions the agent sets for faults that must act at once (the fast path: the
 * controller's node watch sees them without waiting for a scrape), as node-problem-detector does,
 * with types namespaced `aegis.io/`. AGENT_NODE_CONDITIONS maps each (type, reason) to the
 * catalogue condition it stands for; the controller imports it. Pure: no I/O, no clock reads.
 *
 *   aegis.io/GpuXid       True while a fatal Xid was logged this boot (reason = the most urgent
 *                         one, e.g. Xid79; message lists every GPU and code). Latched until reboot.
 *   aegis.io/GpuHung      True while nvidia-smi does not answer.
 *   aegis.io/KernelPanic  True for one log window after a reboot whose previous boot panicked.
 *   aegis.io/SoftLockup   True while a soft or hard lockup was logged within the window.
 */
import type { NodeCondition } from './node-port.js';

/** One (type, reason) the agent writes and the catalogue condition it means. */
export interface AgentNodeCondition {
  readonly type: string;
  readonly reason: string;
  /** Catalogue condition name (src/catalogue). */
  readonly condition: string;
}

/** Condition types and their healthy (status False) reason. */
export const AGENT_CONDITION_TYPES = {
  'aegis.io/GpuXid': 'NoFatalXid',
  'aegis.io/GpuHung': 'GpuResponsive',
  'aegis.io/KernelPanic': 'NoPanicOnPreviousBoot',
  'aegis.io/SoftLockup': 'NoSoftLockup',
} as const;
/** One condition type. */
export type AgentConditionType = keyof typeof AGENT_CONDITION_TYPES;

/** Xid codes that set aegis.io/GpuXid, most urgent first (catalogue priority < 100). */
export const FATAL_XIDS: readonly (readonly [number, string])[] = [
  [79, 'Xid79GPULost'],
  [74, 'Xid74NVLinkError'],
  [48, 'Xid48GPUMemoryDBE'],
  [63, 'Xid63ECCRowremapperPending'],
  [64, 'Xid64ECCRowremapperFailure'],
  [95, 'Xid95UncontainedECCError'],
  [119, 'Xid119GspRpcTimeout'],
  [120, 'Xid120GspError'],
  [94, 'Xid94ContainedECCError'],
];

/** Every (type, reason) → catalogue condition the agent can write (status True). */
export const AGENT_NODE_CONDITIONS: readonly AgentNodeCondition[] = [
  ...FATAL_XIDS.map(([code, condition]) => ({
    type: 'aegis.io/GpuXid',
    reason: `Xid${code}`,
    condition,
  })),
  { type: 'aegis.io/GpuHung', reason: 'NvidiaSmiTimeout', condition: 'GpuHung' },
  { type: 'aegis.io/KernelPanic', reason: 'PanicOnPreviousBoot', condition: 'KernelPanic' },
  { type: 'aegis.io/SoftLockup', reason: 'SoftLockup', condition: 'KernelSoftLockup' },
];

/** The catalogue condition a True Node condition stands for, or undefined. */
export function catalogueConditionOf(type: string, reason: string): string | undefined {
  return AGENT_NODE_CONDITIONS.find((c) => c.type === type && c.reason === reason)?.condition;
}

/** The facts the conditions are computed from. */
export interface ConditionInputs {
  /** undefined: kernel log unreadable. */
  readonly xids: readonly { readonly pci: string; readonly xid: number }[] | undefined;
  /** undefined: not known (nvidia-smi not run or missing): the condition is not written. */
  readonly gpuHung: boolean | undefined;
  /** undefined: previous boot unreadable. */
  readonly panicInWindow: boolean | undefined;
  /** undefined: kernel log unreadable. */
  readonly lockups: number | undefined;
}

/** What each condition should say now (status, reason, message); unknown inputs are left out. */
export function desiredConditions(
  inputs: ConditionInputs,
): { type: AgentConditionType; status: 'True' | 'False'; reason: string; message: string }[] {
  const out: {
    type: AgentConditionType;
    status: 'True' | 'False';
    reason: string;
    message: string;
  }[] = [];
  if (inputs.xids !== undefined) out.push(xidCondition(inputs.xids));
  if (inputs.gpuHung !== undefined) {
    out.push(
      inputs.gpuHung
        ? {
            type: 'aegis.io/GpuHung',
            status: 'True',
            reason: 'NvidiaSmiTimeout',
            message: 'nvidia-smi did not answer within its deadline',
          }
        : healthy('aegis.io/GpuHung', 'nvidia-smi answers'),
    );
  }
  if (inputs.panicInWindow !== undefined) {
    out.push(
      inputs.panicInWindow
        ? {
            type: 'aegis.io/KernelPanic',
            status: 'True',
            reason: 'PanicOnPreviousBoot',
            message: 'The previous boot ended in a kernel panic (pstore / journal)',
          }
        : healthy('aegis.io/KernelPanic', 'No panic recorded for the previous boot'),
    );
  }
  if (inputs.lockups !== undefined) {
    out.push(
      inputs.lockups > 0
        ? {
            type: 'aegis.io/SoftLockup',
            status: 'True',
            reason: 'SoftLockup',
            message: 'Soft or hard lockups in the kernel log within the window',
          }
        : healthy('aegis.io/SoftLockup', 'No lockup in the kernel log within the window'),
    );
  }
  return out;
}

function xidCondition(xids: readonly { readonly pci: string; readonly xid: number }[]) {
  const fatal = xids.filter((x) => FATAL_XIDS.some(([c]) => c === x.xid));
  if (fatal.length === 0)
    return healthy('aegis.io/GpuXid', 'No fatal Xid in the kernel log this boot');
  const top = FATAL_XIDS.find(([c]) => fatal.some((x) => x.xid === c))?.[0] ?? 0;
  const list = fatal.map((x) => `Xid ${x.xid} on GPU ${x.pci}`).join(', ');
  return {
    type: 'aegis.io/GpuXid' as const,
    status: 'True' as const,
    reason: `Xid${top}`,
    message: `${list} (kernel log, this boot)`,
  };
}

function healthy(type: AgentConditionType, message: string) {
  return { type, status: 'False' as const, reason: AGENT_CONDITION_TYPES[type], message };
}

/** Types that stay True until reboot (an agent restart must not clear them). */
const LATCHED: readonly string[] = ['aegis.io/GpuXid'];

/**
 * Full NodeConditions for a write: the transition time is kept while the status does not change,
 * and a latched condition already True on the Node since this boot started stays True (the Xid
 * line may have left the kernel's ring buffer before an agent restart replays it).
 */
export function toNodeConditions(
  desired: ReturnType<typeof desiredConditions>,
  current: readonly NodeCondition[],
  now: { iso: string; bootTimeMs: number },
): NodeCondition[] {
  return desired.map((d) => {
    const prev = current.find((c) => c.type === d.type);
    const keep =
      prev !== undefined &&
      d.status === 'False' &&
      prev.status === 'True' &&
      LATCHED.includes(d.type) &&
      Date.parse(prev.lastTransitionTime) >= now.bootTimeMs;
    if (keep) return { ...prev, lastHeartbeatTime: now.iso };
    const since =
      prev !== undefined && prev.status === d.status ? prev.lastTransitionTime : now.iso;
    return { ...d, lastTransitionTime: since, lastHeartbeatTime: now.iso };
  });
}
