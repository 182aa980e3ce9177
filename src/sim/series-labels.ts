/**
 * Builds the label sets of baseline series on demand, exactly as each exporter labels them
 * (dcgm-exporter: gpu/UUID/pci_bus_id/device/modelName/Hostname/DCGM_FI_DRIVER_VERSION; node-exporter:
 * device/port; ipmi_exporter: id/name/type; …), plus the `node`, `job` and `instance` labels a
 * scrape config with Kubernetes relabelling adds. Strings are shared: nothing is allocated per
 * series except the label object itself.
 */
import {
  EXPORTER_PORTS,
  jobOfExporter,
  variantsOf,
  type Exporter,
  type Family,
  type Scope,
} from './family.js';
import {
  GPU_DRIVER_VERSION,
  GPU_MODEL_NAME,
  type BmcSensor,
  type Fleet,
  type FleetNode,
  type GpfsMount,
  type NicDevice,
} from './fleet-spec.js';

/** Variant label value replaced by the node's name (GPFS mmhealth entity names). */
export const NODE_NAME_TOKEN = '\u0000node';

/** A mutable label set under construction. */
export type LabelSet = Record<string, string>;

interface FsDevice {
  readonly device: string;
  readonly fstype: string;
  readonly mountpoint: string;
}

const ROOT_FS: FsDevice = { device: '/dev/nvme0n1p2', fstype: 'ext4', mountpoint: '/' };
const GPU_INDEX = Array.from({ length: 64 }, (_, i) => String(i));
const GPU_DEVICE = GPU_INDEX.map((i) => `nvidia${i}`);

/** Per-store caches of derived device lists and per-node strings. */
export class SeriesLabeller {
  readonly #fleet: Fleet;
  readonly #instances = new Map<Exporter, string[]>();
  readonly #sensors = new WeakMap<readonly BmcSensor[], Map<string, readonly BmcSensor[]>>();
  readonly #filesystems = new WeakMap<readonly GpfsMount[], readonly FsDevice[]>();
  readonly #nics = new WeakMap<readonly NicDevice[], Map<string, readonly NicDevice[]>>();

  constructor(fleet: Fleet) {
    this.#fleet = fleet;
  }

  /** Number of devices of `scope` on `node`. */
  deviceCount(scope: Scope, node: FleetNode): number {
    switch (scope.kind) {
      case 'node':
        return 1;
      case 'gpu':
        return node.gpus.length;
      case 'hca':
        return node.hcas.length;
      case 'nic':
        return this.#nicList(node, scope.which).length;
      case 'sensor':
        return this.#sensorList(node, scope.types).length;
      case 'mount':
        return node.mounts.length;
      case 'filesystem':
        return this.#fsList(node).length;
    }
  }

  /** The device id a fault's `{device}` names: GPU index, HCA, NIC, sensor name or mount point. */
  deviceId(scope: Scope, node: FleetNode, device: number): string {
    switch (scope.kind) {
      case 'node':
        return '';
      case 'gpu':
        return GPU_INDEX[device] ?? String(device);
      case 'hca':
        return node.hcas[device]?.name ?? '';
      case 'nic':
        return this.#nicList(node, scope.which)[device]?.name ?? '';
      case 'sensor':
        return this.#sensorList(node, scope.types)[device]?.name ?? '';
      case 'mount':
        return node.mounts[device]?.mountpoint ?? '';
      case 'filesystem':
        return this.#fsList(node)[device]?.mountpoint ?? '';
    }
  }

  /** The full label set of one baseline series. */
  labels(family: Family, node: FleetNode, device: number, variant: number): LabelSet {
    const out: LabelSet = { __name__: family.name };
    this.#writeDevice(family, node, device, out);
    const extra = variantsOf(family, node)[variant];
    if (extra !== undefined) {
      for (const key in extra) {
        const value = extra[key] ?? '';
        out[key] = value === NODE_NAME_TOKEN ? node.name : value;
      }
    }
    out.node = node.name;
    if (family.upOf === undefined) {
      out.job = family.job;
      out.instance = this.instance(family.exporter, node);
    } else {
      const exporter = family.upOf(variant);
      out.job = jobOfExporter(exporter);
      out.instance = this.instance(exporter, node);
    }
    return out;
  }

  /** `instance` label of `exporter` on `node` (kube-state-metrics is one cluster-wide instance). */
  instance(exporter: Exporter, node: FleetNode): string {
    if (exporter === 'ksm') return `kube-state-metrics:${EXPORTER_PORTS.ksm}`;
    let cache = this.#instances.get(exporter);
    if (cache === undefined) {
      cache = new Array<string>(this.#fleet.nodes.length);
      this.#instances.set(exporter, cache);
    }
    return (cache[node.index] ??= `${node.internalIp}:${EXPORTER_PORTS[exporter]}`);
  }

  #writeDevice(family: Family, node: FleetNode, device: number, out: LabelSet): void {
    const scope = family.scope;
    switch (scope.kind) {
      case 'node':
        return;
      case 'gpu': {
        const gpu = node.gpus[device];
        if (gpu === undefined) return;
        out.gpu = GPU_INDEX[device] ?? String(device);
        out.UUID = gpu.uuid;
        out.pci_bus_id = gpu.pciBusId;
        out.device = GPU_DEVICE[device] ?? `nvidia${device}`;
        out.modelName = GPU_MODEL_NAME;
        out.Hostname = node.name;
        out.DCGM_FI_DRIVER_VERSION = GPU_DRIVER_VERSION;
        return;
      }
      case 'hca': {
        const hca = node.hcas[device];
        if (hca === undefined) return;
        out[scope.label] = hca.name;
        if (scope.withPort) out.port = hca.port;
        return;
      }
      case 'nic': {
        const nic = this.#nicList(node, scope.which)[device];
        if (nic !== undefined) out.device = nic.name;
        return;
      }
      case 'sensor': {
        const s = this.#sensorList(node, scope.types)[device];
        if (s === undefined) return;
        out.id = s.id;
        out.name = s.name;
        if (scope.withType) out.type = s.type;
        return;
      }
      case 'mount': {
        const m = node.mounts[device];
        if (m !== undefined) out[scope.label] = m.mountpoint;
        return;
      }
      case 'filesystem': {
        const fs = this.#fsList(node)[device];
        if (fs === undefined) return;
        out.device = fs.device;
        out.fstype = fs.fstype;
        out.mountpoint = fs.mountpoint;
        return;
      }
    }
  }

  #sensorList(node: FleetNode, types: readonly string[]): readonly BmcSensor[] {
    let byTypes = this.#sensors.get(node.sensors);
    if (byTypes === undefined) {
      byTypes = new Map();
      this.#sensors.set(node.sensors, byTypes);
    }
    const key = types.join('|');
    let list = byTypes.get(key);
    if (list === undefined) {
      list = node.sensors.filter((s) => types.includes(s.type));
      byTypes.set(key, list);
    }
    return list;
  }

  #fsList(node: FleetNode): readonly FsDevice[] {
    let list = this.#filesystems.get(node.mounts);
    if (list === undefined) {
      list = [
        ROOT_FS,
        ...node.mounts.map((m) => ({ device: m.fs, fstype: 'gpfs', mountpoint: m.mountpoint })),
      ];
      this.#filesystems.set(node.mounts, list);
    }
    return list;
  }

  #nicList(node: FleetNode, which: 'all' | 'bond' | 'slave'): readonly NicDevice[] {
    let byKind = this.#nics.get(node.nics);
    if (byKind === undefined) {
      byKind = new Map();
      this.#nics.set(node.nics, byKind);
    }
    let list = byKind.get(which);
    if (list === undefined) {
      list = node.nics.filter((n) =>
        which === 'all' ? true : which === 'bond' ? n.master === undefined : n.master !== undefined,
      );
      byKind.set(which, list);
    }
    return list;
  }
}

/** kube-state-metrics label name of a Kubernetes label key (`nvidia.com/gpu.product` → `label_nvidia_com_gpu_product`). */
export function toKsmLabelName(key: string): string {
  return `label_${key.replace(/[^a-zA-Z0-9_]/g, '_')}`;
}
