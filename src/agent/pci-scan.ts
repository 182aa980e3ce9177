/**
 * PCI devices from sysfs (/sys/bus/pci/devices/<address>/{vendor,class}), to know which hardware
 * the node has: NVIDIA GPUs (vendor 0x10de, display class 0x03xxxx) and Mellanox/NVIDIA networking
 * (vendor 0x15b3).
 */
import { join } from 'node:path';
import { hostPath, listDir, readAttr } from './host-fs.js';

/** One PCI function. */
export interface PciDevice {
  readonly address: string;
  /** e.g. 0x10de. */
  readonly vendor: string;
  /** e.g. 0x030200. */
  readonly class: string;
}

/** Every PCI function, or undefined when the bus cannot be listed. */
export async function readPciDevices(hostRoot: string): Promise<PciDevice[] | undefined> {
  const base = hostPath(hostRoot, '/sys/bus/pci/devices');
  const addresses = await listDir(base);
  if (addresses === undefined) return undefined;
  const devices = await Promise.all(
    addresses.map(async (address) => {
      const [vendor, cls] = await Promise.all([
        readAttr(join(base, address, 'vendor')),
        readAttr(join(base, address, 'class')),
      ]);
      return { address, vendor: (vendor ?? '').toLowerCase(), class: (cls ?? '').toLowerCase() };
    }),
  );
  return devices;
}
