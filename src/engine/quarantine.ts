/**
 * GPU-level quarantine, the writes (docs/remediation.md): a DRA DeviceTaintRule naming the GPU
 * where the apiserver serves resource.k8s.io/v1 devicetaintrules (Kubernetes 1.37), else the node
 * taint `<nodeTaintKey>=<devices>`; every device is recorded in the node annotation
 * QUARANTINE_ANNOTATION before the step reports success, and the release removes exactly what the
 * record names (the rule by its name; the taint by key and effect, and only Aegis's devices).
 */
import type { Config } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { ErrorCode, HealError, isHealError } from '../core/errors.js';
import type { ConditionInstance, NodeInfo, Taint } from '../core/types.js';
import type { ClusterClient, DeviceTaintClient } from '../k8s/cluster.js';
import {
  QUARANTINE_ANNOTATION,
  QUARANTINE_CONDITIONS,
  readQuarantine,
  releasable,
  type QuarantinedDevice,
  type QuarantineRecord,
} from '../sop/quarantine.js';
import type { ApiBridge, Outcome, QuarantineBridge } from '../sop/sop.js';
import { createHash } from 'node:crypto';

/** Labels of every DeviceTaintRule Aegis creates. */
export const RULE_LABELS = {
  'app.kubernetes.io/managed-by': 'aegis',
  'aegis.io/gpu-quarantine': 'true',
} as const;
/** The device taint's key on a DeviceTaintRule. */
export const DEVICE_TAINT_KEY = 'aegis.io/gpu-quarantine';
/** How long an answer to "does the apiserver serve DeviceTaintRules" is reused. */
const DISCOVERY_TTL_MS = 10 * 60_000;
const MAX_CONFLICTS = 3;

type QuarantineConfig = Config['quarantine'];

/** Quarantine and release, over the cluster port. */
export interface DeviceQuarantine extends QuarantineBridge {
  /** Removes what Aegis added for `devices` of the node (all recorded ones when omitted). */
  release(
    node: string,
    devices: readonly string[] | undefined,
    signal: AbortSignal,
  ): Promise<string[]>;
  /** `rule` or `taint`: what a new quarantine uses now. */
  mechanism(signal: AbortSignal): Promise<'rule' | 'taint'>;
}

/** The DeviceTaintRule name of a node's GPU: deterministic, a DNS subdomain. */
export function ruleName(node: string, device: string): string {
  const name = `aegis-gpu-${node}-${device}`;
  if (name.length <= 253) return name;
  const h = createHash('sha256').update(`${node}/${device}`).digest('hex').slice(0, 16);
  return `aegis-gpu-${h}-${device}`;
}

/** The DRA device name of GPU `index` (config `quarantine.dra.deviceName`). */
export function draDeviceName(template: string, index: string): string {
  return template.replaceAll('{index}', index);
}

/**
 * Builds the quarantine over `cluster`; undefined when `quarantine.enabled` is false. Throws
 * CONFIG_INVALID when the mechanism needs device taints the cluster client cannot write.
 */
export function createDeviceQuarantine(deps: {
  cluster: ClusterClient;
  clock: Clock;
  config: QuarantineConfig;
}): DeviceQuarantine | undefined {
  const { cluster, clock, config } = deps;
  if (!config.enabled) return undefined;
  const api = cluster.deviceTaints;
  if (api === undefined) {
    throw new HealError(
      ErrorCode.ConfigInvalid,
      'quarantine.enabled: this cluster client cannot write device or node taints',
    );
  }
  let served: { value: boolean; atMs: number } | undefined;
  const mechanism = async (signal: AbortSignal): Promise<'rule' | 'taint'> => {
    if (config.mechanism === 'deviceTaintRule') return 'rule';
    if (config.mechanism === 'nodeTaint') return 'taint';
    const now = clock.now();
    if (served === undefined || now - served.atMs >= DISCOVERY_TTL_MS) {
      served = { value: await api.servesDeviceTaintRules(signal), atMs: now };
    }
    return served.value ? 'rule' : 'taint';
  };
  return {
    mechanism,
    async isolate({ node, device, condition }, signal): Promise<Outcome> {
      if (!/^(0|[1-9][0-9]?)$/.test(device)) {
        return { status: 'Failed', message: `GPU index "${device}" is not one (0-99)` };
      }
      const how = await mechanism(signal);
      const info = await cluster.getNode(node, signal);
      const known = readQuarantine(info).devices.find((d) => d.device === device);
      if (known !== undefined) return { status: 'Succeeded', message: describe(known) };
      const since = new Date(clock.now()).toISOString();
      const entry: QuarantinedDevice =
        how === 'rule'
          ? { device, via: 'rule', name: ruleName(node, device), condition, since }
          : {
              device,
              via: 'taint',
              key: config.nodeTaintKey,
              effect: config.nodeTaintEffect,
              condition,
              since,
            };
      if (entry.via === 'rule') {
        await api.createDeviceTaintRule(
          {
            name: entry.name,
            labels: RULE_LABELS,
            driver: config.dra.driver,
            pool: node,
            device: draDeviceName(config.dra.deviceName, device),
            key: DEVICE_TAINT_KEY,
            value: condition === '' ? 'faulty' : condition.slice(0, 63),
            effect: config.effect,
          },
          signal,
        );
      }
      await updateRecord(cluster, api, node, signal, (rec) => ({
        v: 1,
        devices: [...rec.devices.filter((d) => d.device !== device), entry],
      }));
      return { status: 'Succeeded', message: describe(entry) };
    },
    async release(node, devices, signal) {
      const info = await cluster.getNode(node, signal);
      const rec = readQuarantine(info);
      const gone = rec.devices.filter((d) => devices === undefined || devices.includes(d.device));
      if (gone.length === 0) return [];
      for (const d of gone) if (d.via === 'rule') await api.deleteDeviceTaintRule(d.name, signal);
      const names = new Set(gone.map((d) => d.device));
      await updateRecord(cluster, api, node, signal, (r) => ({
        v: 1,
        devices: r.devices.filter((d) => !names.has(d.device)),
      }));
      return [...names];
    },
  };
}

function describe(d: QuarantinedDevice): string {
  return d.via === 'rule'
    ? `GPU ${d.device} out of scheduling: DeviceTaintRule ${d.name} (${d.condition})`
    : `GPU ${d.device} out of scheduling: node taint ${d.key}:${d.effect} (${d.condition})`;
}

/**
 * Rewrites the record and, to match it, Aegis's node taint (key and effect of the taint entries:
 * value = the devices joined by '.', removed with the last one), under the node's
 * resourceVersion, retrying on conflict. Taints of anyone else are kept as they are.
 */
async function updateRecord(
  cluster: ClusterClient,
  api: DeviceTaintClient,
  node: string,
  signal: AbortSignal,
  change: (rec: QuarantineRecord) => QuarantineRecord,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const info =
      attempt === 1
        ? (cluster.peekNode?.(node) ?? (await cluster.getNode(node, signal)))
        : await cluster.getNode(node, signal);
    const before = readQuarantine(info);
    const next = change(before);
    try {
      const tainted = await syncTaint(api, info, before, next, signal);
      const raw = next.devices.length === 0 ? null : JSON.stringify(next);
      await cluster.patchNodeAnnotations(
        node,
        { [QUARANTINE_ANNOTATION]: raw },
        tainted.resourceVersion,
        signal,
      );
      return;
    } catch (err) {
      if (!isHealError(err, ErrorCode.K8sConflict) || attempt >= MAX_CONFLICTS) throw err;
    }
  }
}

/** Sets Aegis's node taint to what `next` records; the node unchanged when nothing differs. */
async function syncTaint(
  api: DeviceTaintClient,
  info: NodeInfo,
  before: QuarantineRecord,
  next: QuarantineRecord,
  signal: AbortSignal,
): Promise<NodeInfo> {
  const keys = new Map<string, Taint>();
  for (const d of [...before.devices, ...next.devices]) {
    if (d.via === 'taint') keys.set(`${d.key}:${d.effect}`, { key: d.key, effect: d.effect });
  }
  if (keys.size === 0) return info;
  let taints = info.taints.filter((t) => !keys.has(`${t.key}:${t.effect}`));
  for (const [k, t] of keys) {
    const devs = next.devices
      .filter((d) => d.via === 'taint' && `${d.key}:${d.effect}` === k)
      .map((d) => d.device)
      .sort((a, b) => Number(a) - Number(b));
    if (devs.length > 0) taints = [...taints, { ...t, value: devs.join('.') }];
  }
  const same =
    taints.length === info.taints.length &&
    taints.every((t) =>
      info.taints.some((o) => o.key === t.key && o.effect === t.effect && o.value === t.value),
    );
  if (same) return info;
  return api.setNodeTaints(info.name, taints, info.resourceVersion, signal);
}

/**
 * The release the controller runs after a cycle whose every query answered: the devices of the
 * node's record that no isolating condition names any more (`releasable`), or undefined when
 * there is nothing to release.
 */
export function releaseHealthy(
  q: DeviceQuarantine,
  node: NodeInfo,
  active: readonly ConditionInstance[],
  conditions: ReadonlySet<string>,
  signal: AbortSignal,
): Promise<string[]> | undefined {
  if (!(QUARANTINE_ANNOTATION in node.annotations)) return undefined;
  const devices = releasable(readQuarantine(node), active, conditions);
  return devices.length === 0 ? undefined : q.release(node.name, devices, signal);
}

/** The conditions that isolate one GPU under this config. */
export function quarantineConditions(config: QuarantineConfig): ReadonlySet<string> {
  return new Set(config.conditions ?? QUARANTINE_CONDITIONS);
}

/**
 * The taint `quarantine.nodeWide: taint` adds to every Aegis cordon: schedulers that react to
 * taints rather than to spec.unschedulable (Kueue's topology-aware node replacement) see it.
 */
export const CORDON_TAINT: Taint = {
  key: 'aegis.io/quarantine',
  value: 'node',
  effect: 'NoSchedule',
};

/**
 * Cordon and uncordon that also set and remove CORDON_TAINT (by key and effect: only Aegis's),
 * under the node's resourceVersion. The taint follows the cordon; the uncordon removes it first.
 */
export function withCordonTaint(
  bridge: Pick<ApiBridge, 'cordon' | 'uncordon'>,
  cluster: ClusterClient,
): Pick<ApiBridge, 'cordon' | 'uncordon'> {
  const api = cluster.deviceTaints;
  if (api === undefined) {
    throw new HealError(
      ErrorCode.ConfigInvalid,
      'quarantine.nodeWide: taint: this cluster client cannot write node taints',
    );
  }
  const set = async (node: string, on: boolean, signal: AbortSignal): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const info = await cluster.getNode(node, signal);
      const mine = (t: Taint): boolean =>
        t.key === CORDON_TAINT.key && t.effect === CORDON_TAINT.effect;
      const has = info.taints.some(mine);
      if (has === on) return;
      const taints = on ? [...info.taints, CORDON_TAINT] : info.taints.filter((t) => !mine(t));
      try {
        await api.setNodeTaints(node, taints, info.resourceVersion, signal);
        return;
      } catch (err) {
        if (!isHealError(err, ErrorCode.K8sConflict) || attempt >= MAX_CONFLICTS) throw err;
      }
    }
  };
  return {
    async cordon(node, signal) {
      const out = await bridge.cordon(node, signal);
      if (out.status === 'Succeeded') await set(node, true, signal);
      return out;
    },
    async uncordon(node, signal) {
      await set(node, false, signal);
      return bridge.uncordon(node, signal);
    },
  };
}
