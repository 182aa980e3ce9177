/**
 * Node-checker families: sichek (GPU/IB checks as gauges, labelled `index` / `ib_dev`) and Aegis'
 * own node check (`aegis_nodecheck_*`: one problem gauge per check, log-pattern matches, kernel
 * modules, each HCA's PCIe link and Max Read Request Size). Healthy values: every check passes,
 * every module is loaded and configured, every HCA link at its maximum with a 4096-byte MRR.
 */
import type { FamilyDef, Scope, Variants } from '../family.js';
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
    'sichek_infiniband_port_speed_state',
    'IB port below its maximum speed (1 abnormal).',
    SICHEK_HCA,
    ZERO,
  ),
  counter('sichek_infiniband_counter', 'InfiniBand port counter.', SICHEK_HCA, ZERO, {
    variants: () => SICHEK_IB_COUNTERS,
  }),
];

/** The agent's per-HCA PCIe series: `device` (HCA) and `pci_bdf`, as src/agent/hca-pcie.ts. */
const AGENT_HCA: Scope = { kind: 'hca', label: 'device', withPort: false, bdfLabel: 'pci_bdf' };

/**
 * The agent's HCA PCIe families, healthy: each link at the speed and width the HCA trains at (its
 * maximum), Max Read Request Size 4096 bytes.
 */
const HCA_PCIE_FAMILIES: readonly FamilyDef[] = [
  gauge(
    'aegis_nodecheck_hca_pcie_link_speed_gts',
    'Current PCIe link speed of the HCA (GT/s).',
    AGENT_HCA,
    (n, d) => n.hcas[d]?.pcieSpeedGts ?? 0,
  ),
  gauge(
    'aegis_nodecheck_hca_pcie_link_max_speed_gts',
    'Fastest PCIe link speed the HCA can train at (GT/s).',
    AGENT_HCA,
    (n, d) => n.hcas[d]?.pcieSpeedGts ?? 0,
  ),
  gauge(
    'aegis_nodecheck_hca_pcie_link_width',
    'Current PCIe link width of the HCA (lanes).',
    AGENT_HCA,
    (n, d) => n.hcas[d]?.pcieWidth ?? 0,
  ),
  gauge(
    'aegis_nodecheck_hca_pcie_link_max_width',
    'Widest PCIe link the HCA can train at (lanes).',
    AGENT_HCA,
    (n, d) => n.hcas[d]?.pcieWidth ?? 0,
  ),
  gauge(
    'aegis_nodecheck_hca_pcie_max_read_request_bytes',
    'PCIe Max Read Request Size of the HCA (bytes).',
    AGENT_HCA,
    constant(4096),
  ),
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
  ...HCA_PCIE_FAMILIES,
];
