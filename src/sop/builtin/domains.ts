import { defineLadderSop, type LadderSpec } from '../ladder.js';
import type { Sop } from '../sop.js';

const HOUR_MS = 3_600_000;

/** Device-plugin pod selectors (the original's defaults). */
export const GPU_DEVICE_PLUGIN_SELECTOR = 'app=nvidia-device-plugin-daemonset';
export const RDMA_DEVICE_PLUGIN_SELECTOR = 'name=rdma-shared-dp-ds';
export const SRIOV_DEVICE_PLUGIN_SELECTOR = 'app=sriovdp';
export const DCGM_EXPORTER_SELECTOR = 'app.kubernetes.io/name=dcgm-exporter';

/**
 * The ladders of every domain but Node, as data. Budgets follow the original (2 successful
 * reboots per ticket, 1 for Xid74/79 and PCIe degradation, remedies 2, repairs 5) with its
 * defects fixed: every Emergency condition has a ladder, hand-off really hands off.
 */
const SPECS: readonly LadderSpec[] = [
  // CPU / Memory / Disk / Baseboard
  { id: 'cpu.pressure', description: 'cordon only while the node is saturated', cordonOnly: true },
  {
    id: 'cpu.replace',
    description: 'cordon, ticket, diagnose (IPMI), shutdown for replacement, human',
    diagnose: true,
    shutdown: true,
  },
  { id: 'memory.pressure', description: 'cordon only, like cpu.pressure', cordonOnly: true },
  {
    id: 'memory.drop-cache',
    description: 'remedy DropCache (<=3), no cordon; then human',
    cordon: false,
    remedy: { action: 'DropCache', max: 3 },
  },
  {
    id: 'memory.replace',
    description: 'cordon, ticket, diagnose (IPMI), shutdown for replacement, human',
    diagnose: true,
    shutdown: true,
  },
  {
    id: 'disk.pressure',
    description: 'cordon, ticket, human after 24h',
    humanAfterMs: 24 * HOUR_MS,
  },
  { id: 'disk.replace', description: 'cordon, ticket, diagnose, human', diagnose: true },
  {
    id: 'baseboard.replace',
    description: 'cordon, ticket, diagnose (IPMI), shutdown, human',
    diagnose: true,
    shutdown: true,
  },
  // Network
  {
    id: 'network.report',
    description: 'ticket without cordon, diagnose bond, human',
    cordon: false,
    diagnose: true,
  },
  {
    id: 'network.reboot',
    description: 'cordon, ticket, drain, reboot (<=1), human',
    reboot: { max: 1 },
  },
  // GPU
  {
    id: 'gpu.reboot',
    description: 'cordon, ticket, diagnose, drain, reboot (<=2 successful), shutdown, human',
    diagnose: true,
    reboot: { max: 2 },
    shutdown: true,
  },
  {
    id: 'gpu.reboot-once',
    description: 'cordon, ticket, diagnose, drain, reboot (<=1 successful), shutdown, human',
    diagnose: true,
    reboot: { max: 1 },
    shutdown: true,
  },
  {
    id: 'gpu.replace',
    description: 'cordon, ticket, diagnose, shutdown for replacement, human',
    diagnose: true,
    shutdown: true,
  },
  { id: 'gpu.report', description: 'cordon, ticket, diagnose, human', diagnose: true },
  {
    id: 'gpu.fabricmanager',
    description: 'cordon, ticket, remedy RestartFabricmanager (<=2), reboot (<=1), human',
    remedy: { action: 'RestartFabricmanager', max: 2 },
    reboot: { max: 1 },
  },
  {
    id: 'gpu.persistence',
    description: 'cordon, ticket, remedy EnableGpuPersistence (<=2), human',
    remedy: { action: 'EnableGpuPersistence', max: 2 },
  },
  {
    id: 'gpu.device-plugin',
    description: 'cordon, ticket, restart the GPU device-plugin pod (<=3), reboot (<=1), human',
    restartPod: { selector: GPU_DEVICE_PLUGIN_SELECTOR, max: 3 },
    reboot: { max: 1 },
  },
  {
    id: 'gpu.exporter-restart',
    description: 'restart the dcgm-exporter pod on the node (<=3), no cordon; then human',
    cordon: false,
    restartPod: { selector: DCGM_EXPORTER_SELECTOR, max: 3 },
  },
  // IB / RoCE
  { id: 'ib.report', description: 'cordon, ticket, diagnose (ibstatus), human', diagnose: true },
  {
    id: 'ib.reboot-once',
    description: 'cordon, ticket, diagnose, drain, reboot (<=1), shutdown, human',
    diagnose: true,
    reboot: { max: 1 },
    shutdown: true,
  },
  {
    id: 'ib.device-plugin',
    description: 'cordon, ticket, restart the RDMA device-plugin pod (<=3), human',
    restartPod: { selector: RDMA_DEVICE_PLUGIN_SELECTOR, max: 3 },
  },
  { id: 'roce.report', description: 'cordon, ticket, diagnose, human', diagnose: true },
  {
    id: 'roce.device-plugin',
    description: 'cordon, ticket, restart the SR-IOV device-plugin pod (<=2), human',
    restartPod: { selector: SRIOV_DEVICE_PLUGIN_SELECTOR, max: 2 },
  },
  // GPFS
  {
    id: 'gpfs.repair',
    description: 'cordon, ticket, repair Job (<=5), reboot (<=1), human',
    repair: { max: 5 },
    reboot: { max: 1 },
  },
  { id: 'gpfs.report', description: 'cordon, ticket, diagnose (mmhealth), human', diagnose: true },
  {
    id: 'gpfs.break-deadlock',
    description: 'remedy BreakDeadlock (<=2), no cordon; then human',
    cordon: false,
    remedy: { action: 'BreakDeadlock', max: 2 },
  },
  // System / Process / PeerMem
  {
    id: 'system.reboot',
    description: 'cordon, ticket, drain, reboot (<=2 successful), shutdown, human',
    reboot: { max: 2 },
    shutdown: true,
  },
  { id: 'system.report', description: 'cordon, ticket, diagnose, human', diagnose: true },
  { id: 'process.report', description: 'cordon, ticket, diagnose (ps), human', diagnose: true },
  {
    id: 'process.reboot',
    description: 'cordon, ticket, drain, reboot (<=1), human',
    reboot: { max: 1 },
  },
  {
    id: 'peermem.config',
    description: 'cordon, ticket, remedy ConfigPeerMem (<=2), reboot (<=1), human',
    remedy: { action: 'ConfigPeerMem', max: 2 },
    reboot: { max: 1 },
  },
];

/** The ladder SOPs of every domain but Node. */
export const domainLadders: readonly Sop[] = SPECS.map(defineLadderSop);
