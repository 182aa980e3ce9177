/**
 * RDMA devices from sysfs: /sys/class/infiniband/<hca>/ports/<n>/{state,phys_state,link_layer,rate},
 * the HCA's network devices (<hca>/device/net/<netdev>/operstate) and, for RoCE PFs, their SR-IOV
 * state (<hca>/device/sriov_numvfs, <hca>/device/virtfn*). Any attribute that cannot be read is
 * undefined: the checks treat it as unknown, never as a fault.
 */
import { join } from 'node:path';
import { hostPath, listDir, readAttr } from './host-fs.js';

/** One port of an HCA. */
export interface RdmaPort {
  readonly port: string;
  /** e.g. "4: ACTIVE". */
  readonly state?: string;
  /** e.g. "5: LinkUp". */
  readonly physState?: string;
  /** InfiniBand or Ethernet (RoCE). */
  readonly linkLayer?: string;
  readonly rate?: string;
}

/** One network device of an HCA. */
export interface RdmaNetdev {
  readonly name: string;
  /** up, down, ... */
  readonly operstate?: string;
}

/** One HCA. */
export interface RdmaDevice {
  readonly name: string;
  readonly ports: readonly RdmaPort[];
  /** Undefined when the HCA has no `device` link (the check cannot tell). */
  readonly netdevs?: readonly RdmaNetdev[];
  readonly sriovNumVfs?: number;
  /** Count of virtfn* links (VFs the PF actually created). */
  readonly virtfns?: number;
}

/** Every HCA under <hostRoot>/sys/class/infiniband, or undefined when the class is absent. */
export async function readRdmaDevices(hostRoot: string): Promise<RdmaDevice[] | undefined> {
  const base = hostPath(hostRoot, '/sys/class/infiniband');
  const names = await listDir(base);
  if (names === undefined) return undefined;
  return Promise.all(names.map((name) => readDevice(join(base, name), name)));
}

async function readDevice(dir: string, name: string): Promise<RdmaDevice> {
  const portNames = (await listDir(join(dir, 'ports'))) ?? [];
  const ports = await Promise.all(portNames.map((p) => readPort(join(dir, 'ports', p), p)));
  const device = join(dir, 'device');
  const netNames = await listDir(join(device, 'net'));
  const deviceEntries = await listDir(device);
  const netdevs =
    netNames !== undefined
      ? await Promise.all(netNames.map(async (n) => readNetdev(join(device, 'net', n), n)))
      : deviceEntries !== undefined
        ? []
        : undefined;
  const numVfs = await readAttr(join(device, 'sriov_numvfs'));
  const virtfns = deviceEntries?.filter((e) => /^virtfn\d+$/.test(e)).length;
  return {
    name,
    ports,
    ...(netdevs === undefined ? {} : { netdevs }),
    ...(numVfs === undefined ? {} : { sriovNumVfs: Number(numVfs) }),
    ...(virtfns === undefined || numVfs === undefined ? {} : { virtfns }),
  };
}

async function readPort(dir: string, port: string): Promise<RdmaPort> {
  const [state, physState, linkLayer, rate] = await Promise.all(
    ['state', 'phys_state', 'link_layer', 'rate'].map((a) => readAttr(join(dir, a))),
  );
  return {
    port,
    ...(state === undefined ? {} : { state }),
    ...(physState === undefined ? {} : { physState }),
    ...(linkLayer === undefined ? {} : { linkLayer }),
    ...(rate === undefined ? {} : { rate }),
  };
}

async function readNetdev(dir: string, name: string): Promise<RdmaNetdev> {
  const operstate = await readAttr(join(dir, 'operstate'));
  return operstate === undefined ? { name } : { name, operstate };
}

/** The link layer of an HCA: its first port's. */
export function linkLayerOf(dev: RdmaDevice): string | undefined {
  return dev.ports.find((p) => p.linkLayer !== undefined)?.linkLayer;
}
