/**
 * How a simulated fault ends, derived from the SOP that handles its condition: a fault the SOP
 * fixes with a remedy clears on that remedy; a reboot-class SOP's fault clears on reboot; a
 * replace/report SOP's fault needs a human (it survives reboots); GPFS repair clears on repair.
 */

/** Lifetime of a simulated fault. */
export type Persistence =
  'transient' | 'until-reboot' | 'survives-reboot' | 'until-repair' | 'until-remedy';

/** Remedy actions: remedy_node `action` params, and plug-in pod restarts (by deleting the pod). */
export const Remedy = {
  RestartKubelet: 'RestartKubelet',
  DropCache: 'DropCache',
  RestartFabricmanager: 'RestartFabricmanager',
  EnableGpuPersistence: 'EnableGpuPersistence',
  BreakDeadlock: 'BreakDeadlock',
  ConfigPeerMem: 'ConfigPeerMem',
  RestartGpuDevicePlugin: 'RestartGpuDevicePlugin',
  RestartRdmaDevicePlugin: 'RestartRdmaDevicePlugin',
  RestartSriovDevicePlugin: 'RestartSriovDevicePlugin',
  RestartDcgmExporter: 'RestartDcgmExporter',
} as const;
export type Remedy = (typeof Remedy)[keyof typeof Remedy];

/** The remedy each remedy-style SOP applies. */
export const REMEDY_OF_SOP: Readonly<Record<string, Remedy>> = {
  'node.restart-kubelet': Remedy.RestartKubelet,
  'memory.drop-cache': Remedy.DropCache,
  'gpu.fabricmanager': Remedy.RestartFabricmanager,
  'gpu.persistence': Remedy.EnableGpuPersistence,
  'gpu.device-plugin': Remedy.RestartGpuDevicePlugin,
  'gpu.exporter-restart': Remedy.RestartDcgmExporter,
  'ib.device-plugin': Remedy.RestartRdmaDevicePlugin,
  'roce.device-plugin': Remedy.RestartSriovDevicePlugin,
  'gpfs.break-deadlock': Remedy.BreakDeadlock,
  'peermem.config': Remedy.ConfigPeerMem,
};

/** SOPs whose condition clears by itself (load, memory pressure). */
const TRANSIENT_SOPS: readonly string[] = ['cpu.pressure', 'memory.pressure'];
/** SOPs whose condition a reboot fixes although their id does not say so. */
const REBOOT_FIXED_SOPS: readonly string[] = ['node.notready', 'node.terminating-pods'];

/** Default lifetime (and remedy) of a fault of a condition handled by `sop`. */
export function defaultPersistence(sop: string | null): {
  readonly persistence: Persistence;
  readonly remedy: string | undefined;
} {
  if (sop === null) return { persistence: 'transient', remedy: undefined };
  const remedy = REMEDY_OF_SOP[sop];
  if (remedy !== undefined) return { persistence: 'until-remedy', remedy };
  if (sop === 'gpfs.repair') return { persistence: 'until-repair', remedy: undefined };
  if (/\.reboot/.test(sop) || REBOOT_FIXED_SOPS.includes(sop)) {
    return { persistence: 'until-reboot', remedy: undefined };
  }
  if (TRANSIENT_SOPS.includes(sop)) return { persistence: 'transient', remedy: undefined };
  return { persistence: 'survives-reboot', remedy: undefined };
}

/** Which pod's deletion applies a pod-restart remedy: namespace and label selector. */
export const POD_RESTART_REMEDIES: readonly {
  readonly remedy: Remedy;
  readonly label: string;
  readonly value: string;
}[] = [
  { remedy: Remedy.RestartGpuDevicePlugin, label: 'name', value: 'nvidia-device-plugin-ds' },
  { remedy: Remedy.RestartRdmaDevicePlugin, label: 'name', value: 'rdma-shared-dp-ds' },
  { remedy: Remedy.RestartSriovDevicePlugin, label: 'app', value: 'sriovdp' },
  { remedy: Remedy.RestartDcgmExporter, label: 'app.kubernetes.io/name', value: 'dcgm-exporter' },
];
