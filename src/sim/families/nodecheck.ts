/**
 * Node-checker families: sichek (GPU/IB checks as gauges, labelled `index` / `ib_dev`) and Aegis'
 * own node check (`aegis_nodecheck_*`: one problem gauge per check, log-pattern matches, kernel
 * modules). Healthy values: every check passes, every module is loaded and configured.
 */
import type { FamilyDef, Variants } from '../family.js';
import { GPU_INDEX, NODE, ONE, SICHEK_HCA, ZERO, constant, counter, gauge } from './helpers.js';

const SICHEK_IB_COUNTERS: Variants = [
  'link_downed',
  'symbol_error',
  'port_rcv_errors',
  'port_xmit_discards',
].map((counter_name) => ({ counter_name }));
const P2P_VARIANTS: Variants = [{ status: 'connected' }];
const IBGDA_VARIANTS: Variants = [{ status: 'enabled' }];
/** One-hot: the first variant is the healthy one. */
const FIRST = (_n: unknown, _d: number, v: number): number => (v === 0 ? 1 : 0);

/** sichek families. */
export const SICHEK_FAMILIES: readonly FamilyDef[] = [
  gauge(
    'sichek_nvidia_device_count',
    'Number of NVIDIA GPUs sichek found.',
    NODE,
    (n) => n.gpus.length,
  ),
  gauge(
    'sichek_nvidia_remapping_pending',
    'Whether a GPU has row remapping pending.',
    GPU_INDEX,
    ZERO,
  ),
  gauge(
    'sichek_nvidia_all_feature_enabled',
    'Whether every NVLink of the GPU is active.',
    GPU_INDEX,
    ONE,
  ),
  gauge('sichek_nvidia_pci_width', 'Current PCIe link width of the GPU.', GPU_INDEX, constant(16)),
  gauge(
    'sichek_nvidia_pci_width_max',
    'Maximum PCIe link width of the GPU.',
    GPU_INDEX,
    constant(16),
  ),
  // Idle GPUs train their link down to Gen1: the catalogue must not read that as degraded.
  gauge('sichek_nvidia_pci_gen', 'Current PCIe link generation of the GPU.', GPU_INDEX, ONE),
  gauge(
    'sichek_nvidia_pci_gen_max',
    'Maximum PCIe link generation of the GPU.',
    GPU_INDEX,
    constant(5),
  ),
  gauge('sichek_nvidia_gpu_idle', 'Whether the GPU runs no process (1 idle).', GPU_INDEX, ONE),
  gauge(
    'sichek_nvidia_p2p_global_connected',
    'GPU peer-to-peer connectivity (one-hot).',
    NODE,
    FIRST,
    {
      variants: () => P2P_VARIANTS,
    },
  ),
  gauge('sichek_nvidia_ibgda_status', 'IBGDA status (one-hot).', NODE, FIRST, {
    variants: () => IBGDA_VARIANTS,
  }),
  gauge(
    'sichek_infiniband_hca_num',
    'Number of HCAs registered in the RDMA stack.',
    NODE,
    (n) => n.hcas.length,
  ),
  gauge(
    'sichek_infiniband_hca_pci_num',
    'Number of Mellanox HCA PCI functions.',
    NODE,
    (n) => n.hcas.length,
  ),
  gauge(
    'sichek_infiniband_pcie_speed',
    'PCIe link speed of the HCA (GT/s).',
    SICHEK_HCA,
    (n, d) => n.hcas[d]?.pcieSpeedGts ?? 0,
  ),
  gauge(
    'sichek_infiniband_pcie_width',
    'PCIe link width of the HCA.',
    SICHEK_HCA,
    (n, d) => n.hcas[d]?.pcieWidth ?? 0,
  ),
  gauge(
    'sichek_infiniband_pcie_mrr',
    'PCIe max read request size of the HCA (bytes).',
    SICHEK_HCA,
    constant(4096),
  ),
  gauge(
    'sichek_infiniband_pcie_speed_state',
    'HCA PCIe speed below spec (1 abnormal).',
    SICHEK_HCA,
    ZERO,
  ),
  gauge(
    'sichek_infiniband_pcie_width_state',
    'HCA PCIe width below spec (1 abnormal).',
    SICHEK_HCA,
    ZERO,
  ),
  gauge(
    'sichek_infiniband_port_speed_state',
    'IB port below its maximum speed (1 abnormal).',
    SICHEK_HCA,
    ZERO,
  ),
  counter('sichek_infiniband_counter', 'InfiniBand port counter.', SICHEK_HCA, ZERO, {
    variants: () => SICHEK_IB_COUNTERS,
  }),
];

/** Checks the node checker runs; each exports `aegis_nodecheck_problem{check}` 0 while it passes. */
const CHECKS = [
  'DiskSmartFailing',
  'DnsTestFailed',
  'GpuHung',
  'GpuCheckFailed',
  'GpuErrResetRequired',
  'IBNetDriverFailedLoad',
  'IBProtoclAbnormal',
  'IBPingFailed',
  'GpfsTestFailed',
  'GpfsNotStarted',
  'GpfsNotInCluster',
  'GpfsNotInstalled',
  'RoceDeviceBroken',
  'RoceHostOffline',
  'RoceHostGatewayNotMatch',
  'RoceHostRouteMiss',
  'RocePodOffline',
  'RocePodGatewayNotMatch',
  'RocePodRouteMiss',
  'RocePodDeviceMiss',
  'RoceNodeLabelMiss',
  'RoceVfDeviceMiss',
  'RoceSriovInitError',
  'RoceNodeUnitLabelMiss',
  'RoceNodePfNamesLabelMiss',
  'RoceNodeResourceLabelMiss',
  'RoceNodeNetworkLabelMiss',
  'RoceNodeResourceMiss',
  'RoceRegisterFailed',
];
const CHECK_VARIANTS: Variants = CHECKS.map((check) => ({ check }));
/** Log patterns the node checker counts (kernel ring buffer, mmfs.log). */
const LOG_RULES: Variants = [
  ['kernel', 'mce'],
  ['kernel', 'panic'],
  ['kernel', 'hung_task'],
  ['kernel', 'soft_lockup'],
  ['mmfs', 'expelled'],
  ['mmfs', 'quorum_connection_down'],
].map(([source, rule]) => ({ source: source ?? '', rule: rule ?? '' }));
const MODULES: Variants = [
  'mlx5_core',
  'mlx5_ib',
  'ib_core',
  'ib_uverbs',
  'ib_umad',
  'ib_cm',
  'rdma_cm',
  'rdma_ucm',
  'ib_ipoib',
  'nvidia',
  'nvidia_uvm',
  'nvidia_peermem',
].map((module) => ({ module }));
const CONFIGURED_MODULES: Variants = [{ module: 'nvidia_peermem' }];

/** aegis_nodecheck families. */
export const NODECHECK_FAMILIES: readonly FamilyDef[] = [
  gauge('aegis_nodecheck_up', 'Whether the last node check round completed.', NODE, ONE),
  gauge(
    'aegis_nodecheck_problem',
    'Whether a node check currently fails (1) or passes (0).',
    NODE,
    ZERO,
    {
      variants: () => CHECK_VARIANTS,
    },
  ),
  gauge(
    'aegis_nodecheck_log_matches',
    'Log lines matching a fault pattern in the last hour.',
    NODE,
    ZERO,
    {
      variants: () => LOG_RULES,
    },
  ),
  gauge('aegis_nodecheck_kernel_module_loaded', 'Whether a kernel module is loaded.', NODE, ONE, {
    variants: () => MODULES,
  }),
  gauge(
    'aegis_nodecheck_kernel_module_configured',
    'Whether a kernel module is configured to load at boot.',
    NODE,
    ONE,
    { variants: () => CONFIGURED_MODULES },
  ),
];
