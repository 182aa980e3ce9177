/**
 * The built-in SOP ids (`<domain>.<action>`) and what each does, so the catalogue can name its
 * SOP before the plug-ins load. src/sop/builtin/ implements every id listed here; the contract
 * test checks both directions.
 */
export const BUILTIN_SOP_IDS = {
  // Node
  'node.notready':
    'cordon, ticket; NotReady past bmc.notReadyAfterMs: power-cycle through the BMC (once); still NotReady after 1h: force-delete stuck pods, hand to a human',
  'node.recover':
    'recovery loop: only NodeCordon left -> healthcheck -> uncordon -> resolve/close ticket',
  'node.inhibit': 'aegis.io/disable just removed: healthcheck -> uncordon',
  'node.reboot': 'cordon, ticket, drain, reboot (<=2 successful per ticket), then human',
  'node.restart-kubelet': 'cordon, ticket, remedy RestartKubelet (<=2), then human',
  'node.terminating-pods': 'cordon, ticket, force-delete pods stuck terminating, human after 24h',
  // CPU / Memory / Disk / Baseboard (BMC)
  'cpu.pressure':
    'cordon only while the node is saturated and GPUs are idle; uncordon by recovery loop',
  'cpu.replace':
    'cordon, ticket, diagnose (IPMI), shutdown for replacement (non-critical nodes), human',
  'memory.pressure': 'cordon only, like cpu.pressure',
  'memory.drop-cache': 'remedy DropCache (<=3), no cordon; then human',
  'memory.replace': 'cordon, ticket, diagnose (IPMI), shutdown for replacement, human',
  'disk.pressure': 'cordon, ticket, human after 24h',
  'disk.replace': 'cordon, ticket, diagnose, human',
  'baseboard.replace':
    'cordon (not for power), ticket, diagnose (IPMI), shutdown (not for power or current), human',
  // Network
  'network.report': 'ticket without cordon, diagnose bond, human',
  'network.reboot': 'cordon, ticket, drain, reboot (<=1), human',
  // GPU
  'gpu.reboot':
    'cordon, ticket, diagnose, drain, reboot (<=2 successful), shutdown (not for P2P), human',
  'gpu.reboot-once': 'cordon, ticket, diagnose, drain, reboot (<=1 successful), shutdown, human',
  'gpu.replace': 'cordon, ticket, diagnose, shutdown for replacement, human',
  'gpu.report': 'cordon, ticket, diagnose, human',
  'gpu.fabricmanager': 'cordon, ticket, remedy RestartFabricmanager (<=2), reboot (<=1), human',
  'gpu.persistence': 'cordon, ticket, remedy EnableGpuPersistence (<=2), human',
  'gpu.device-plugin':
    'cordon, ticket, restart the GPU device-plugin pod (<=3), reboot (<=1), human',
  'gpu.exporter-restart': 'restart the dcgm-exporter pod on the node (<=3), no cordon; then human',
  // IB / RoCE
  'ib.report': 'cordon, ticket, diagnose (ibstatus), human',
  'ib.reboot-once': 'cordon, ticket, diagnose, drain, reboot (<=1), shutdown, human',
  'ib.device-plugin': 'cordon, ticket, restart the RDMA device-plugin pod (<=3), human',
  'roce.report': 'cordon, ticket, diagnose, human',
  'roce.device-plugin': 'cordon, ticket, restart the SR-IOV device-plugin pod (<=2), human',
  // GPFS
  'gpfs.repair': 'cordon, ticket, repair Job (<=5), reboot (<=1), human',
  'gpfs.report': 'cordon, ticket, diagnose (mmhealth), human',
  'gpfs.break-deadlock': 'remedy BreakDeadlock (<=2), no cordon; then human',
  // System / Process / PeerMem
  'system.reboot': 'cordon, ticket, drain, reboot (<=2 successful), human',
  'system.report': 'cordon, ticket, diagnose, human',
  'process.report': 'cordon, ticket, diagnose (ps), human',
  'process.reboot': 'cordon, ticket, drain, reboot (<=1), human',
  'peermem.config': 'cordon, ticket, remedy ConfigPeerMem (<=2), reboot (<=1), human',
} as const;

/** A built-in SOP id. */
export type BuiltinSopId = keyof typeof BUILTIN_SOP_IDS;

/** True when `id` names a built-in SOP. */
export function isBuiltinSopId(id: string): id is BuiltinSopId {
  return Object.hasOwn(BUILTIN_SOP_IDS, id);
}
