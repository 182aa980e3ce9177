/**
 * GPU-level quarantine, the pure part: which faults take one GPU out of scheduling instead of the
 * node, and what Aegis recorded on the node about the devices it quarantined (so that the release
 * removes exactly what Aegis added). The writes are in src/engine/quarantine.ts.
 */
import type { ConditionInstance, NodeInfo, NodeStatus } from '../core/types.js';

/** Node annotation listing the devices Aegis quarantined, and how (JSON, QuarantineRecord). */
export const QUARANTINE_ANNOTATION = 'aegis.io/gpu-quarantine';

/**
 * Faults of one GPU that leave its peers usable (src/catalogue/gpu.ts, device id = GPU index):
 * row remapping failed or pending, ECC errors contained to the GPU's memory or SRAM, retired pages,
 * GSP errors, a GPU fallen off the bus. Left out on purpose: NVLink faults (Xid 74, inactive links:
 * the peers and NVSwitches share them), GPU hangs and failed checks (reported for every GPU or as
 * a mask), GpuDown (no device id), fabric manager and P2P (node-wide by nature).
 */
export const QUARANTINE_CONDITIONS: readonly string[] = [
  'Xid48GPUMemoryDBE',
  'Xid63ECCRowremapperPending',
  'Xid64ECCRowremapperFailure',
  'Xid79GPULost',
  'Xid94ContainedECCError',
  'Xid95UncontainedECCError',
  'Xid119GspRpcTimeout',
  'Xid120GspError',
  'GpuRowRemappingFailure',
  'GpuRowRemappingPending',
  'GpuTooManyPageRetired',
  'GpuAggSramUncorrectable',
  'GpuVolSramUncorrectable',
];

/** What a ladder needs to decide a quarantine (config `quarantine`, the priority table). */
export interface QuarantinePolicy {
  readonly enabled: boolean;
  readonly conditions: ReadonlySet<string>;
  /** More faulty GPUs on one node than this: the fault is node-wide. */
  readonly maxDevices: number;
  /** The condition's priority now (hot-reloaded): above 99 it asks for no action. */
  readonly priorityOf: (condition: string) => number;
  /**
   * A GPU still faulty this long after its quarantine gets the ladder's node-wide rungs (cordon,
   * drain, reboot...); unset: the node goes to a human right after the quarantine (and diagnose).
   */
  readonly repairAfterMs?: number;
}

/** Take one GPU out of scheduling, or treat the fault as the node's (with why). */
export type QuarantineDecision =
  | { readonly kind: 'device'; readonly device: string }
  | { readonly kind: 'node'; readonly reason: string };

/** GPU indexes are small integers (dcgm-exporter's `gpu` label). */
const GPU_INDEX = /^(0|[1-9][0-9]?)$/;

/**
 * Decides whether `cond` isolates one GPU. Node-wide when quarantine is off, the condition is not
 * a single-GPU fault or names no GPU, another condition of the node asks for action and is not
 * one either (a node-wide fault), or more than `maxDevices` GPUs of the node are faulty or
 * quarantined already. Pure.
 */
export function decideQuarantine(
  cond: ConditionInstance,
  node: NodeStatus,
  quarantined: readonly string[],
  policy: QuarantinePolicy,
): QuarantineDecision {
  if (!policy.enabled) return { kind: 'node', reason: 'GPU-level quarantine is off' };
  if (!isIsolatable(cond, policy)) {
    return { kind: 'node', reason: `${cond.condition} is not a fault of one GPU` };
  }
  const devices = new Set([...quarantined, cond.id]);
  for (const c of node.conditions) {
    if (c.condition === 'NodeCordon' || policy.priorityOf(c.condition) > 99) continue;
    if (!isIsolatable(c, policy)) {
      return { kind: 'node', reason: `node-wide condition ${c.condition}` };
    }
    devices.add(c.id);
  }
  if (devices.size > policy.maxDevices) {
    return {
      kind: 'node',
      reason: `${devices.size} GPUs faulty (GPUs ${[...devices].sort().join(', ')}; quarantine.maxDevices ${policy.maxDevices})`,
    };
  }
  return { kind: 'device', device: cond.id };
}

function isIsolatable(c: ConditionInstance, policy: QuarantinePolicy): boolean {
  return policy.conditions.has(c.condition) && GPU_INDEX.test(c.id);
}

/** How one device was quarantined: a DeviceTaintRule, or its part of the node taint. */
export type QuarantinedDevice =
  | {
      readonly device: string;
      readonly via: 'rule';
      readonly name: string;
      readonly condition: string;
      readonly since: string;
    }
  | {
      readonly device: string;
      readonly via: 'taint';
      readonly key: string;
      readonly effect: 'NoSchedule' | 'PreferNoSchedule';
      readonly condition: string;
      readonly since: string;
    };

/** The node annotation's content. */
export interface QuarantineRecord {
  readonly v: 1;
  readonly devices: readonly QuarantinedDevice[];
}

/**
 * The node's quarantine record. An unreadable annotation (edited by hand) reads as empty: Aegis
 * then neither adds to it blindly nor removes what it cannot name.
 */
export function readQuarantine(info: NodeInfo): QuarantineRecord {
  const raw = info.annotations[QUARANTINE_ANNOTATION];
  if (raw === undefined) return { v: 1, devices: [] };
  try {
    const parsed = JSON.parse(raw) as Partial<QuarantineRecord>;
    if (parsed.v !== 1 || !Array.isArray(parsed.devices)) return { v: 1, devices: [] };
    return { v: 1, devices: parsed.devices.filter(isDevice) };
  } catch {
    return { v: 1, devices: [] };
  }
}

function isDevice(d: unknown): d is QuarantinedDevice {
  if (typeof d !== 'object' || d === null) return false;
  const o = d as Record<string, unknown>;
  if (typeof o['device'] !== 'string' || typeof o['condition'] !== 'string') return false;
  if (o['via'] === 'rule') return typeof o['name'] === 'string';
  return o['via'] === 'taint' && typeof o['key'] === 'string' && typeof o['effect'] === 'string';
}

/** GPU indexes Aegis quarantined on the node. */
export function quarantinedDevices(info: NodeInfo): string[] {
  return readQuarantine(info).devices.map((d) => d.device);
}

/**
 * Quarantined devices that may be released: no condition that isolates a GPU is active on that
 * GPU any more (the tracker holds a condition through its clear delay, so "not active" means
 * healthy for that long: after the reset, reboot or replacement that cleared it). Pure.
 */
export function releasable(
  record: QuarantineRecord,
  active: readonly ConditionInstance[],
  conditions: ReadonlySet<string>,
): string[] {
  const faulty = new Set(active.filter((c) => conditions.has(c.condition)).map((c) => c.id));
  return record.devices.filter((d) => !faulty.has(d.device)).map((d) => d.device);
}
