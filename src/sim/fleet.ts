import { ErrorCode, HealError } from '../core/errors.js';
import { LEAF_LABEL, RACK_LABEL } from '../core/types.js';
import {
  CONTROL_PLANE_INSTANCE_TYPE,
  DEFAULT_GPUS_PER_NODE,
  DEFAULT_LEAF_SIZE,
  DEFAULT_NAME_PREFIX,
  DEFAULT_RACK_SIZE,
  GPU_PCI_BUSES,
  GPU_PRODUCT,
  GPU_RESOURCE,
  IB_RATE_400G,
  RDMA_RESOURCE,
  WORKER_INSTANCE_TYPE,
  type BmcSensor,
  type Fleet,
  type FleetNode,
  type FleetOptions,
  type GpfsMount,
  type GpuDevice,
  type HcaDevice,
  type NicDevice,
} from './fleet-spec.js';
import { hexHash } from './random.js';

/** The nine HCAs of a worker: mlx5_0..7 on PCIe Gen5 x16 (compute fabric), mlx5_8 on Gen4 (storage). */
export const WORKER_HCAS: readonly HcaDevice[] = Array.from({ length: 9 }, (_, i) => ({
  name: `mlx5_${i}`,
  port: '1',
  pcieSpeedGts: i === 8 ? 16 : 32,
  pcieWidth: 16,
  rateBytesPerSecond: IB_RATE_400G,
  pciBdf: `0000:${(0x1a + i * 0x11).toString(16)}:00.0`,
}));

/** bond0 with its two slaves, on every node. */
export const NODE_NICS: readonly NicDevice[] = [
  { name: 'bond0', speedBytes: 5e9 },
  { name: 'eth0', master: 'bond0', speedBytes: 2.5e9 },
  { name: 'eth1', master: 'bond0', speedBytes: 2.5e9 },
];

/** GPFS mounts of a worker. */
export const WORKER_MOUNTS: readonly GpfsMount[] = [{ fs: 'fs1', mountpoint: '/gpfs/fs1' }];

const WORKER_CAPACITY: Readonly<Record<string, number>> = {
  cpu: 224,
  memory: 2_164_000_000_000,
  pods: 110,
  ephemeral_storage: 3_840_000_000_000,
  [RDMA_RESOURCE]: 1000,
};
const CONTROL_PLANE_CAPACITY: Readonly<Record<string, number>> = {
  cpu: 32,
  memory: 256_000_000_000,
  pods: 110,
  ephemeral_storage: 960_000_000_000,
};

const sensor = (id: number, name: string, type: string): BmcSensor => ({
  id: String(id),
  name,
  type,
});

/** BMC sensors of every node, by IPMI sensor type (names as Supermicro/Dell BMCs print them). */
export const NODE_SENSORS: readonly BmcSensor[] = [
  sensor(1, 'CPU1 Status', 'Processor'),
  sensor(2, 'CPU2 Status', 'Processor'),
  ...['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'].map((c, i) => sensor(10 + i, `DIMM_${c}1`, 'Memory')),
  ...[1, 2, 3, 4, 5, 6].map((i) => sensor(20 + i, `FAN${i}`, 'Fan')),
  sensor(30, 'CPU1 Temp', 'Temperature'),
  sensor(31, 'CPU2 Temp', 'Temperature'),
  sensor(32, 'Inlet Temp', 'Temperature'),
  sensor(33, 'GPU Board Temp', 'Temperature'),
  sensor(40, 'P12V', 'Voltage'),
  sensor(41, 'P5V', 'Voltage'),
  sensor(42, 'P3V3', 'Voltage'),
  sensor(50, 'PSU1 Power', 'Power'),
  sensor(51, 'PSU2 Power', 'Power'),
  sensor(52, 'PSU1 Status', 'Power Supply'),
  sensor(53, 'PSU2 Status', 'Power Supply'),
  sensor(55, 'PSU1 Current', 'Current'),
  sensor(56, 'PSU2 Current', 'Current'),
  sensor(60, 'Drive 0', 'Drive Slot'),
  sensor(61, 'Drive 1', 'Drive Slot'),
  sensor(70, 'SysHealth_Stat', 'Management Subsystem Health'),
  sensor(71, 'PCIe_Status', 'Critical Interrupt'),
];

/** Builds a deterministic fleet: same options, same nodes, ids and labels. */
export function createFleet(options: FleetOptions): Fleet {
  const workers = options.nodes;
  const controlPlanes = options.controlPlaneNodes ?? 0;
  if (!Number.isInteger(workers) || workers < 0 || !Number.isInteger(controlPlanes)) {
    throw new HealError(ErrorCode.InvalidInput, `fleet size must be whole numbers, got ${workers}`);
  }
  const gpusPerNode = options.gpusPerNode ?? DEFAULT_GPUS_PER_NODE;
  const prefix = options.namePrefix ?? DEFAULT_NAME_PREFIX;
  const width = Math.max(4, String(workers).length);
  // One capacity object shared by every worker: kube-state-metrics variants are cached by it.
  const capacity = { ...WORKER_CAPACITY, [GPU_RESOURCE]: gpusPerNode };
  const nodes: FleetNode[] = [];
  for (let i = 0; i < workers; i++) {
    const name = `${prefix}-${String(i + 1).padStart(width, '0')}`;
    nodes.push(buildWorker(options, i, name, capacity));
  }
  for (let i = 0; i < controlPlanes; i++) {
    nodes.push(buildControlPlane(workers + i, `control-plane-${i + 1}`));
  }
  const byName = new Map(nodes.map((n) => [n.name, n]));
  return { seed: options.seed, nodes, node: (name) => byName.get(name) };
}

function buildWorker(
  options: FleetOptions,
  index: number,
  name: string,
  capacity: Readonly<Record<string, number>>,
): FleetNode {
  const gpus = capacity[GPU_RESOURCE] ?? 0;
  const rack = `rack-${String(Math.floor(index / (options.racksOf ?? DEFAULT_RACK_SIZE)) + 1).padStart(3, '0')}`;
  const leaf = `leaf-${String(Math.floor(index / (options.leavesOf ?? DEFAULT_LEAF_SIZE)) + 1).padStart(3, '0')}`;
  return {
    index,
    name,
    role: 'worker',
    rack,
    leaf,
    labels: {
      'kubernetes.io/hostname': name,
      'kubernetes.io/os': 'linux',
      [RACK_LABEL]: rack,
      [LEAF_LABEL]: leaf,
      'nvidia.com/gpu.product': GPU_PRODUCT,
      'nvidia.com/gpu.count': String(gpus),
      'node.kubernetes.io/instance-type': WORKER_INSTANCE_TYPE,
    },
    gpus: Array.from({ length: gpus }, (_, g) => buildGpu(options.seed, index, g)),
    hcas: WORKER_HCAS,
    nics: NODE_NICS,
    mounts: WORKER_MOUNTS,
    sensors: NODE_SENSORS,
    capacity,
    internalIp: ipOf(index),
  };
}

function buildControlPlane(index: number, name: string): FleetNode {
  return {
    index,
    name,
    role: 'control-plane',
    rack: 'rack-cp',
    leaf: 'leaf-cp',
    labels: {
      'kubernetes.io/hostname': name,
      'kubernetes.io/os': 'linux',
      'node-role.kubernetes.io/control-plane': '',
      [RACK_LABEL]: 'rack-cp',
      [LEAF_LABEL]: 'leaf-cp',
      'node.kubernetes.io/instance-type': CONTROL_PLANE_INSTANCE_TYPE,
    },
    gpus: [],
    hcas: [],
    nics: NODE_NICS,
    mounts: [],
    sensors: NODE_SENSORS,
    capacity: CONTROL_PLANE_CAPACITY,
    internalIp: ipOf(index),
  };
}

const PCI_BUS_IDS = Array.from(
  { length: 64 },
  (_, i) => `00000000:${GPU_PCI_BUSES[i] ?? (0x10 + i).toString(16).toUpperCase()}:00.0`,
);

function buildGpu(seed: number, node: number, index: number): GpuDevice {
  const h = hexHash(32, seed, node, index);
  // join() yields one flat string (template slices would keep cons/sliced strings alive: 5x memory).
  const uuid = [
    'GPU',
    h.slice(0, 8),
    h.slice(8, 12),
    h.slice(12, 16),
    h.slice(16, 20),
    h.slice(20),
  ].join('-');
  return { index, uuid, pciBusId: PCI_BUS_IDS[index] ?? '' };
}

function ipOf(index: number): string {
  return `10.${16 + Math.floor(index / 65536)}.${Math.floor(index / 256) % 256}.${index % 256}`;
}
