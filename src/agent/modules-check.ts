/**
 * Kernel modules: aegis_nodecheck_kernel_module_loaded{module} from /proc/modules and
 * aegis_nodecheck_kernel_module_configured{module} from modules-load.d (every directory
 * systemd-modules-load reads). Which modules are expected follows the hardware on the PCI bus:
 * the RDMA stack where a Mellanox device is present, the NVIDIA driver where an NVIDIA GPU is, and
 * nvidia_peermem (GPUDirect RDMA) where both are. Nothing is expected of absent hardware, so a CPU
 * node never raises IBModuleLost. Module names compare with '-' and '_' as equal, as modprobe does.
 */
import { join } from 'node:path';
import { checked, unavailable, type Check, type CheckReport } from './check.js';
import { hostPath, listDir, readText } from './host-fs.js';
import { readPciDevices, type PciDevice } from './pci-scan.js';

/** Conditions this check reports. */
export const MODULE_CHECKS = [
  'IBModuleLost',
  'PeerMemModuleNotReady',
  'PeerMemModuleNotConfig',
] as const;
/** The RDMA stack IBModuleLost reads. */
export const IB_MODULES = [
  'mlx5_core',
  'mlx5_ib',
  'ib_core',
  'ib_uverbs',
  'ib_umad',
  'ib_cm',
  'rdma_cm',
  'rdma_ucm',
  'ib_ipoib',
];
/** The NVIDIA driver modules. */
export const NVIDIA_MODULES = ['nvidia', 'nvidia_uvm'];
const PEERMEM = 'nvidia_peermem';
const LOAD_DIRS = [
  '/etc/modules-load.d',
  '/run/modules-load.d',
  '/usr/lib/modules-load.d',
  '/lib/modules-load.d',
];

/** Names of the loaded modules in a /proc/modules document. */
export function parseProcModules(text: string): Set<string> {
  return new Set(
    text.split('\n').flatMap((l) => (l.trim() === '' ? [] : [norm(l.split(' ')[0] ?? '')])),
  );
}

/** Module names listed in modules-load.d files (comments start with # or ;). */
export function parseModulesLoad(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'))
    .map(norm);
}

function norm(name: string): string {
  return name.replace(/-/g, '_');
}

/** Builds the modules check. */
export function createModulesCheck(opts: { hostRoot: string; intervalMs: number }): Check {
  return {
    name: 'modules',
    intervalMs: opts.intervalMs,
    covers: MODULE_CHECKS,
    async run() {
      const pci = await readPciDevices(opts.hostRoot);
      const modules = await readText(hostPath(opts.hostRoot, '/proc/modules'));
      if (modules === undefined) {
        return {
          problems: [],
          available: unavailable(MODULE_CHECKS, '/proc/modules not readable'),
        };
      }
      return evaluateModules(parseProcModules(modules), await readConfigured(opts.hostRoot), pci);
    },
  };
}

/** Pure evaluation: loaded modules, configured modules (undefined: unreadable), PCI devices. */
export function evaluateModules(
  loaded: ReadonlySet<string>,
  configured: ReadonlySet<string> | undefined,
  pci: readonly PciDevice[] | undefined,
): CheckReport {
  const mellanox = pci?.some((d) => d.vendor === '0x15b3') ?? false;
  const gpu = pci?.some((d) => d.vendor === '0x10de' && d.class.startsWith('0x03')) ?? false;
  const expected = [
    ...(mellanox ? IB_MODULES : []),
    ...(gpu ? NVIDIA_MODULES : []),
    ...(mellanox && gpu ? [PEERMEM] : []),
  ];
  const modulesLoaded = Object.fromEntries(expected.map((m) => [m, loaded.has(m) ? 1 : 0]));
  const modulesConfigured: Record<string, number> =
    mellanox && gpu && configured !== undefined
      ? { [PEERMEM]: configured.has(PEERMEM) ? 1 : 0 }
      : {};
  const why = pci === undefined ? 'PCI bus not readable' : undefined;
  const available = {
    ...(mellanox
      ? checked(['IBModuleLost'])
      : unavailable(['IBModuleLost'], why ?? 'no Mellanox device')),
    ...(mellanox && gpu
      ? checked(['PeerMemModuleNotReady'])
      : unavailable(
          ['PeerMemModuleNotReady'],
          why ?? 'needs both an NVIDIA GPU and a Mellanox device',
        )),
    ...(mellanox && gpu && configured !== undefined
      ? checked(['PeerMemModuleNotConfig'])
      : unavailable(
          ['PeerMemModuleNotConfig'],
          why ?? 'modules-load.d not readable or not applicable',
        )),
  };
  return { problems: [], available, modulesLoaded, modulesConfigured };
}

async function readConfigured(hostRoot: string): Promise<Set<string> | undefined> {
  let readable = false;
  const names = new Set<string>();
  for (const dir of LOAD_DIRS) {
    const files = await listDir(hostPath(hostRoot, dir));
    if (files === undefined) continue;
    readable = true;
    for (const f of files.filter((n) => n.endsWith('.conf'))) {
      for (const m of parseModulesLoad((await readText(join(hostPath(hostRoot, dir), f))) ?? ''))
        names.add(m);
    }
  }
  return readable ? names : undefined;
}
