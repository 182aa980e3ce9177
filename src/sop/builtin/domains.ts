import { defineLadderSop, type LadderSpec } from '../ladder.js';
import { DEFAULT_POD_SELECTORS, type Sop } from '../sop.js';

const HOUR_MS = 3_600_000;

/**
 * Device-plugin and exporter pod selectors: the defaults of `sop.podSelectors` (the GPU device
 * plugin's is the GPU Operator's label; see DEFAULT_POD_SELECTORS). A site sets its own in config.
 */
export const GPU_DEVICE_PLUGIN_SELECTOR = DEFAULT_POD_SELECTORS.gpuDevicePlugin;
export const RDMA_DEVICE_PLUGIN_SELECTOR = DEFAULT_POD_SELECTORS.rdmaDevicePlugin;
export const SRIOV_DEVICE_PLUGIN_SELECTOR = DEFAULT_POD_SELECTORS.sriovDevicePlugin;
export const DCGM_EXPORTER_SELECTOR = DEFAULT_POD_SELECTORS.dcgmExporter;

/**
 * The ladders of every domain but Node, as data. Budgets follow the original (2 successful
 * reboots per ticket, 1 for Xid74/79 and PCIe degradation, remedies 2, repairs 5) with its
 * defects fixed: every Emergency condition has a ladder, hand-off really hands off.
 *
 * The last rungs were reviewed against the original's SOPs (docs: aegis-original.md §4.1, §6):
 * the comment above each ladder says why it ends where it ends. The rule: a power-off (Shutdown)
 * ends only ladders of hardware that must be replaced or repaired on site — it parks the node for
 * the technician and stops a broken part from failing more jobs. It never ends a ladder whose
 * cause is configuration, software or the environment, since powering off cannot fix those and
 * only costs the node's pods; those ladders end with a human. `terminal-rungs.test.ts` pins
 * every ladder's full path.
 */
const SPECS: readonly LadderSpec[] = [
  // CPU / Memory / Disk / Baseboard
  // Load, not a fault: cordon while it lasts (the recovery loop uncordons). Original: cordon only.
  { id: 'cpu.pressure', description: 'cordon only while the node is saturated', cordonOnly: true },
  // A processor the BMC reports unhealthy (or machine-check errors) needs a new CPU or board:
  // power off for the technician, as the original did (non-critical nodes; critical: human).
  {
    id: 'cpu.replace',
    description: 'cordon, ticket, diagnose (IPMI), shutdown for replacement, human',
    diagnose: true,
    shutdown: true,
  },
  // As cpu.pressure (original: cordon only).
  { id: 'memory.pressure', description: 'cordon only, like cpu.pressure', cordonOnly: true },
  // Page cache pressure: drop caches; a node where that does not help goes to a human (no
  // cordon, nothing disruptive: the original only dropped caches).
  {
    id: 'memory.drop-cache',
    description: 'remedy DropCache (<=3), no cordon; then human',
    cordon: false,
    remedy: { action: 'DropCache', max: 3 },
  },
  // Broken DIMMs (BMC, uncorrectable ECC, hardware-corrupted pages) need a DIMM swap: power off
  // for the technician, as the original's MemoryUnhealthy did.
  {
    id: 'memory.replace',
    description: 'cordon, ticket, diagnose (IPMI), shutdown for replacement, human',
    diagnose: true,
    shutdown: true,
  },
  // A full disk is cleaned by a human (what to delete is not ours to decide); original: human
  // after 24 h.
  {
    id: 'disk.pressure',
    description: 'cordon, ticket, human after 24h',
    humanAfterMs: 24 * HOUR_MS,
  },
  // A failing or read-only drive: the original diagnosed and handed off. Rebooting a failing disk
  // risks not booting again, and a power-off does not repair it: human.
  { id: 'disk.replace', description: 'cordon, ticket, diagnose, human', diagnose: true },
  // BMC critical parts. Fan, temperature, voltage, PCIe and system health: the board or a part
  // of it must be replaced and running on risks damage — power off (original: Shutdown for
  // exactly these ids). Power and current go to a human as in the original: a failed PSU of a
  // redundant pair leaves the node running on the other one, and powering off fixes nothing; the
  // power part is not even cordoned (the original's NeedCordon = id != power).
  {
    id: 'baseboard.replace',
    description:
      'cordon, ticket, diagnose (IPMI), shutdown (fan, temperature, voltage, pcie, sysHealth), human; ' +
      'power and current: human (power: no cordon)',
    diagnose: true,
    shutdown: true,
    except: [
      {
        id: 'power',
        why: 'a redundant power supply failed: the node runs on the other, a power-off fixes nothing',
        rungs: { cordon: false, shutdown: false },
      },
      {
        id: 'current',
        why: 'an over-current reading needs an electrician, not a power cycle of the node',
        rungs: { shutdown: false },
      },
    ],
  },
  // Network
  // A bond slave down: the node still has network; a human fixes the cable or port (original:
  // no cordon, diagnose, human).
  {
    id: 'network.report',
    description: 'ticket without cordon, diagnose bond, human',
    cordon: false,
    diagnose: true,
  },
  // A NIC transmit timeout is a driver state a reboot clears; if it comes back, a human looks at
  // the NIC or driver (nothing to replace yet: no power-off).
  {
    id: 'network.reboot',
    description: 'cordon, ticket, drain, reboot (<=1), human',
    reboot: { max: 1 },
  },
  // GPU
  // Hung GPUs, failed checks, reset-required, uncorrectable ECC (Xid 48/63/64/95, SRAM), GSP
  // errors, NVLink errors: a reboot resets the GPU; a GPU still failing after two reboots is
  // broken hardware — power off for the swap, as the original did for GpuHung, GpuCheckFailed,
  // GpuErrResetRequired and NVLink (its Xid SOP powered off "frequent" offenders; the repeat-
  // offender gate and this budget do that here). GpuP2PNotSupported is the exception: peer-to-peer
  // failing after reboots is a BIOS/ACS/IOMMU setting or topology, which no power cycle changes;
  // the original handed it to a human after two reboots.
  {
    id: 'gpu.reboot',
    description:
      'cordon, ticket, diagnose, drain, reboot (<=2 successful), shutdown, human; ' +
      'GpuP2PNotSupported: human after the reboots',
    diagnose: true,
    reboot: { max: 2 },
    shutdown: true,
    except: [
      {
        condition: 'GpuP2PNotSupported',
        why: 'P2P failing after reboots is configuration (BIOS, ACS, IOMMU), not a part to replace',
        rungs: { shutdown: false },
      },
    ],
  },
  // A GPU fallen off the bus or an NVLink/PCIe link degraded after one reboot is a card, riser
  // or baseboard to reseat or replace: power off after one reboot (original: >= 1 reboot ->
  // Shutdown for Xid 74/79 and PCIe degradation).
  {
    id: 'gpu.reboot-once',
    description: 'cordon, ticket, diagnose, drain, reboot (<=1 successful), shutdown, human',
    diagnose: true,
    reboot: { max: 1 },
    shutdown: true,
  },
  // Row-remapping failure, too many retired pages, aggregate SRAM errors: the GPU's memory is
  // spent and a reboot cannot help; power off for the swap (the original shut down AggSram and,
  // through the health check's exit 21/22, row-remap failures).
  {
    id: 'gpu.replace',
    description: 'cordon, ticket, diagnose, shutdown for replacement, human',
    diagnose: true,
    shutdown: true,
  },
  // Temperatures, clocks, slowdowns, replay errors, IBGDA configuration: cooling, power capping
  // or configuration, which a reboot or power-off does not change: human (as the original).
  { id: 'gpu.report', description: 'cordon, ticket, diagnose, human', diagnose: true },
  // Fabric manager down: restart it (original: twice, then human); one reboot reloads the
  // NVSwitch driver, the remaining software cause. Nothing to replace: no power-off.
  {
    id: 'gpu.fabricmanager',
    description: 'cordon, ticket, remedy RestartFabricmanager (<=2), reboot (<=1), human',
    remedy: { action: 'RestartFabricmanager', max: 2 },
    reboot: { max: 1 },
  },
  // Persistence mode off: enable it twice, then human (as the original). Software only.
  {
    id: 'gpu.persistence',
    description: 'cordon, ticket, remedy EnableGpuPersistence (<=2), human',
    remedy: { action: 'EnableGpuPersistence', max: 2 },
  },
  // GPUs missing from allocatable: restart the device-plugin pod (selector `sop.podSelectors.
  // gpuDevicePlugin`), then one reboot as the original did; still missing means a GPU to look at
  // (the health check and the GPU ladders decide about hardware): human, no power-off.
  {
    id: 'gpu.device-plugin',
    description: 'cordon, ticket, restart the GPU device-plugin pod (<=3), reboot (<=1), human',
    restartPod: { target: 'gpuDevicePlugin', max: 3 },
    reboot: { max: 1 },
  },
  // dcgm-exporter hung: restart its pod; nothing on the node is broken for the workloads, so no
  // cordon and no disruptive rung (original: delete the pod only).
  {
    id: 'gpu.exporter-restart',
    description: 'restart the dcgm-exporter pod on the node (<=3), no cordon; then human',
    cordon: false,
    restartPod: { target: 'dcgmExporter', max: 3 },
  },
  // IB / RoCE
  // HCA lost, modules, link state, port speed, MRR, frequent link flaps: cables, switches, firmware
  // settings — a human (original: diagnose, human for all of them).
  { id: 'ib.report', description: 'cordon, ticket, diagnose (ibstatus), human', diagnose: true },
  // An HCA's PCIe speed or width degraded after one reboot is a card or riser to reseat: power
  // off (the original did so after one reboot, though only on critical nodes, which looks
  // inverted; here non-critical nodes are powered off and critical ones go to a human).
  {
    id: 'ib.reboot-once',
    description: 'cordon, ticket, diagnose, drain, reboot (<=1), shutdown, human',
    diagnose: true,
    reboot: { max: 1 },
    shutdown: true,
  },
  // RDMA shared device plugin: restart its pod, then human (original: restart, human).
  {
    id: 'ib.device-plugin',
    description: 'cordon, ticket, restart the RDMA device-plugin pod (<=3), human',
    restartPod: { target: 'rdmaDevicePlugin', max: 3 },
  },
  // RoCE device and configuration faults (gateways, routes, labels, VFs): human (original: human,
  // after an hour for the configuration ones).
  { id: 'roce.report', description: 'cordon, ticket, diagnose, human', diagnose: true },
  // SR-IOV device plugin: restart its pod twice, then human (as the original).
  {
    id: 'roce.device-plugin',
    description: 'cordon, ticket, restart the SR-IOV device-plugin pod (<=2), human',
    restartPod: { target: 'sriovDevicePlugin', max: 2 },
  },
  // GPFS
  // Daemon down, mount lost, daemon stuck: the repair Job (original: up to 5, then human), one
  // reboot for a kernel-level hang; GPFS is software and its servers are elsewhere: no power-off.
  {
    id: 'gpfs.repair',
    description: 'cordon, ticket, repair Job (<=5), reboot (<=1), human',
    repair: { max: 5 },
    reboot: { max: 1 },
  },
  // GPFS health, configuration, quorum, RDMA: cluster-side causes: human (as the original).
  { id: 'gpfs.report', description: 'cordon, ticket, diagnose (mmhealth), human', diagnose: true },
  // Deadlocked waiters: break the deadlock twice, then human; no cordon (original remedy).
  {
    id: 'gpfs.break-deadlock',
    description: 'remedy BreakDeadlock (<=2), no cordon; then human',
    cordon: false,
    remedy: { action: 'BreakDeadlock', max: 2 },
  },
  // System / Process / PeerMem
  // Kernel deadlock, zombie floods: a reboot clears the kernel's state; if they return after two
  // reboots the cause is software on the node (a workload, a driver), which a power-off does not
  // fix: human. (Original HighZombieProcessesCount: reboot, then human after two; no Shutdown.)
  {
    id: 'system.reboot',
    description: 'cordon, ticket, drain, reboot (<=2 successful), human',
    reboot: { max: 2 },
  },
  // Kernel panics, soft lockups, clock unsynced: diagnose, human (a panic's cause needs reading).
  { id: 'system.report', description: 'cordon, ticket, diagnose, human', diagnose: true },
  // Process table nearly full: a human finds the process leaking (original glossary: report).
  { id: 'process.report', description: 'cordon, ticket, diagnose (ps), human', diagnose: true },
  // D-state processes: one reboot (the original's deleted SOP rebooted), then human; software.
  {
    id: 'process.reboot',
    description: 'cordon, ticket, drain, reboot (<=1), human',
    reboot: { max: 1 },
  },
  // nvidia-peermem not loaded: load and persist it, one reboot, then human; software only.
  {
    id: 'peermem.config',
    description: 'cordon, ticket, remedy ConfigPeerMem (<=2), reboot (<=1), human',
    remedy: { action: 'ConfigPeerMem', max: 2 },
    reboot: { max: 1 },
  },
];

/** The ladder specs of every domain but Node (for tests and docs). */
export const DOMAIN_LADDER_SPECS: readonly LadderSpec[] = SPECS;

/** The ladder SOPs of every domain but Node. */
export const domainLadders: readonly Sop[] = SPECS.map(defineLadderSop);
