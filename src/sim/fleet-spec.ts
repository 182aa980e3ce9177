/**
 * The shape of a simulated GPU fleet: nodes with GPUs, InfiniBand HCAs, a bonded NIC, GPFS mounts
 * and BMC sensors. Plain data; `createFleet` (fleet.ts) builds it. Device lists that are the same
 * on every node (HCAs, sensors, mounts) are shared arrays, so a 50,000-node fleet stays small.
 */

/** Options of `createFleet`. */
export interface FleetOptions {
  /** Number of GPU worker nodes. */
  readonly nodes: number;
  /** GPUs per worker node (default 8). */
  readonly gpusPerNode?: number;
  /** Node name prefix (default `gpu-node`): `gpu-node-0001`, … */
  readonly namePrefix?: string;
  /** Nodes per rack (default 16). */
  readonly racksOf?: number;
  /** Nodes per leaf switch (default 32). */
  readonly leavesOf?: number;
  /** Extra control-plane nodes (no GPUs, no HCAs, no GPFS), named `control-plane-1`, … */
  readonly controlPlaneNodes?: number;
  /** Seed of every generated id and baseline jitter: the same seed gives the same fleet. */
  readonly seed: number;
}

/** One GPU as dcgm-exporter labels it. */
export interface GpuDevice {
  readonly index: number;
  /** `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. */
  readonly uuid: string;
  /** `00000000:53:00.0` (dcgm-exporter's `pci_bus_id`). */
  readonly pciBusId: string;
}

/** One InfiniBand HCA (port 1), as node-exporter and sichek see it. */
export interface HcaDevice {
  /** `mlx5_0` … `mlx5_8`. */
  readonly name: string;
  readonly port: string;
  /** PCIe link speed in GT/s the HCA should train at (32 = Gen5, 16 = Gen4). */
  readonly pcieSpeedGts: number;
  /** PCIe link width the HCA should train at. */
  readonly pcieWidth: number;
  /** Negotiated port rate in bytes/s (400 Gb/s NDR = 5e10). */
  readonly rateBytesPerSecond: number;
  /** PCIe BDF of the HCA. */
  readonly pciBdf: string;
}

/** A BMC sensor as ipmi_exporter labels it. `type` is the IPMI sensor type. */
export interface BmcSensor {
  readonly id: string;
  readonly name: string;
  readonly type: string;
}

/** A GPFS file system mounted on every worker. */
export interface GpfsMount {
  /** File system name (`fs1`). */
  readonly fs: string;
  /** Mount point (`/gpfs/fs1`). */
  readonly mountpoint: string;
}

/** A network interface (the bond and its slaves). */
export interface NicDevice {
  readonly name: string;
  /** Bond master when this NIC is a slave. */
  readonly master?: string;
  readonly speedBytes: number;
}

/** The role of a node in the fleet. */
export type NodeRole = 'worker' | 'control-plane';

/** One simulated node. */
export interface FleetNode {
  /** Position in `Fleet.nodes` (stable id used by the series store). */
  readonly index: number;
  readonly name: string;
  readonly role: NodeRole;
  readonly rack: string;
  readonly leaf: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly gpus: readonly GpuDevice[];
  readonly hcas: readonly HcaDevice[];
  readonly nics: readonly NicDevice[];
  readonly mounts: readonly GpfsMount[];
  readonly sensors: readonly BmcSensor[];
  /** Node capacity as kube-state-metrics names resources (`nvidia_com_gpu`, `cpu`, …). */
  readonly capacity: Readonly<Record<string, number>>;
  /** Internal IP, for kube_node_info and the `instance` label. */
  readonly internalIp: string;
}

/** A built fleet. */
export interface Fleet {
  readonly seed: number;
  readonly nodes: readonly FleetNode[];
  /** Node by name, or undefined. */
  node(name: string): FleetNode | undefined;
}

/** Default GPUs per node. */
export const DEFAULT_GPUS_PER_NODE = 8;
/** Default node name prefix. */
export const DEFAULT_NAME_PREFIX = 'gpu-node';
/** Default nodes per rack. */
export const DEFAULT_RACK_SIZE = 16;
/** Default nodes per leaf switch. */
export const DEFAULT_LEAF_SIZE = 32;
/** GPU product label value and dcgm `modelName`. */
export const GPU_PRODUCT = 'NVIDIA-H100-80GB-HBM3';
/** dcgm-exporter `modelName`. */
export const GPU_MODEL_NAME = 'NVIDIA H100 80GB HBM3';
/** dcgm-exporter `DCGM_FI_DRIVER_VERSION`. */
export const GPU_DRIVER_VERSION = '580.105.08';
/** Instance type label of the workers. */
export const WORKER_INSTANCE_TYPE = 'gpu.h100.8x';
/** Instance type label of control-plane nodes. */
export const CONTROL_PLANE_INSTANCE_TYPE = 'cpu.c32';
/** PCIe bus numbers of the 8 GPUs (as in the H100 capture). */
export const GPU_PCI_BUSES: readonly string[] = ['53', '64', '75', '86', '97', 'A8', 'B9', 'CA'];
/** Bytes/s of a 400 Gb/s NDR port. */
export const IB_RATE_400G = 5e10;
/** Kubernetes resource name of the shared RDMA device plugin. */
export const RDMA_RESOURCE = 'rdma_hca_shared_devices_all';
/** Kubernetes resource name of the NVIDIA device plugin (as kube-state-metrics writes it). */
export const GPU_RESOURCE = 'nvidia_com_gpu';
