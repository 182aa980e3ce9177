/**
 * The PCIe link and Max Read Request Size of every Mellanox/NVIDIA HCA, from the host:
 * /sys/class/infiniband/<hca>/device is the PCI function; its sysfs attributes give the link
 * (`current_link_speed`, `current_link_width`, `max_link_speed`, `max_link_width`) and its `config`
 * file the Max Read Request Size (pci-config.ts). The link can train no faster and no wider than
 * the slower end allows, so the maximum reported is the lower of the HCA's and its upstream
 * port's (the parent directory in /sys/devices) when that port is readable: a Gen5 HCA in a Gen4
 * slot is not degraded. SR-IOV virtual functions (a `physfn` link) have no link of their own and
 * are skipped, as are HCAs of other vendors (the 4096-byte MRR is an NVIDIA networking setting).
 *
 * The catalogue compares the series (IBPCIeSpeedAbnormal, IBPCIeWidthAbnormal,
 * IBPCIeMRRNotAlign); the check only reports what it reads and whether it could read it.
 */
import { readFile, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { checked, unavailable, type Check, type CheckReport } from './check.js';
import { exists, hostPath, listDir, readAttr } from './host-fs.js';
import { maxReadRequest } from './pci-config.js';

/** Conditions whose inputs this check reads. */
export const HCA_PCIE_CHECKS = [
  'IBPCIeMRRNotAlign',
  'IBPCIeSpeedAbnormal',
  'IBPCIeWidthAbnormal',
] as const;

/** PCI vendor id of Mellanox (NVIDIA networking). */
export const MELLANOX_VENDOR = '0x15b3';

const BDF = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

/** What was read for one HCA; a value that could not be read is absent. */
export interface HcaPcie {
  /** HCA name (`mlx5_0`). */
  readonly device: string;
  /** PCI address of its function (`0000:1a:00.0`). */
  readonly pciBdf: string;
  /** Current link speed in GT/s; 0 when the kernel reports it Unknown (no link trained). */
  readonly speedGts?: number;
  /** The fastest the link can train: min(HCA max_link_speed, upstream port max_link_speed). */
  readonly maxSpeedGts?: number;
  readonly width?: number;
  /** The widest the link can train: min(HCA max_link_width, upstream port max_link_width). */
  readonly maxWidth?: number;
  readonly maxReadRequestBytes?: number;
  /** Why a value is absent, per value. */
  readonly missing: Readonly<Partial<Record<'link' | 'mrr', string>>>;
}

/** Every Mellanox physical-function HCA's PCIe reading, or undefined without the class. */
export async function readHcaPcie(hostRoot: string): Promise<HcaPcie[] | undefined> {
  const base = hostPath(hostRoot, '/sys/class/infiniband');
  const names = await listDir(base);
  if (names === undefined) return undefined;
  const read = await Promise.all(names.map((n) => readOne(join(base, n), n)));
  return read.filter((h): h is HcaPcie => h !== undefined);
}

async function readOne(hcaDir: string, device: string): Promise<HcaPcie | undefined> {
  let dir: string;
  try {
    dir = await realpath(join(hcaDir, 'device'));
  } catch {
    return undefined; // a software device (rxe, siw): no PCI function
  }
  const pciBdf = basename(dir);
  if (!BDF.test(pciBdf)) return undefined;
  if ((await readAttr(join(dir, 'vendor')))?.toLowerCase() !== MELLANOX_VENDOR) return undefined;
  if (await exists(join(dir, 'physfn'))) return undefined;
  const own = await readLink(dir);
  const parent = dirname(dir);
  const up = BDF.test(basename(parent)) ? await readLink(parent) : {};
  const missing: Partial<Record<'link' | 'mrr', string>> = {};
  const link = {
    ...(own.speed === undefined ? {} : { speedGts: own.speed }),
    ...(own.width === undefined ? {} : { width: own.width }),
    ...optional('maxSpeedGts', lower(own.maxSpeed, up.maxSpeed)),
    ...optional('maxWidth', lower(own.maxWidth, up.maxWidth)),
  };
  if (Object.keys(link).length < 4) {
    missing.link = `${pciBdf}: no readable current_link_speed/width and max_link_speed/width`;
  }
  const mrr = await readMrr(dir, pciBdf);
  if (typeof mrr === 'string') missing.mrr = mrr;
  return {
    device,
    pciBdf,
    ...link,
    ...(typeof mrr === 'number' ? { maxReadRequestBytes: mrr } : {}),
    missing,
  };
}

interface Link {
  speed?: number;
  width?: number;
  maxSpeed?: number;
  maxWidth?: number;
}

async function readLink(dir: string): Promise<Link> {
  const [speed, width, maxSpeed, maxWidth] = await Promise.all(
    ['current_link_speed', 'current_link_width', 'max_link_speed', 'max_link_width'].map((a) =>
      readAttr(join(dir, a)),
    ),
  );
  return {
    ...optional('speed', parseLinkSpeed(speed)),
    ...optional('width', parseLinkWidth(width)),
    ...optional('maxSpeed', parseLinkSpeed(maxSpeed)),
    ...optional('maxWidth', parseLinkWidth(maxWidth)),
  };
}

async function readMrr(dir: string, pciBdf: string): Promise<number | string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, 'config'));
  } catch (err) {
    return `${pciBdf}: cannot read config (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  const mrr = maxReadRequest(bytes);
  return mrr.ok ? mrr.bytes : `${pciBdf}: ${mrr.reason}`;
}

/**
 * GT/s from a sysfs link speed: "32.0 GT/s PCIe" (kernels since 4.19 or so), "8 GT/s" (older),
 * "2.5 GT/s"; "Unknown" / "Unknown speed" (no link trained) is 0; anything else is undefined.
 */
export function parseLinkSpeed(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?) GT\/s(?: PCIe)?$/.exec(text);
  if (m) return Number(m[1]);
  return /^Unknown/.test(text) ? 0 : undefined;
}

/** Lanes from a sysfs link width ("16"; older kernels wrote "x16"). */
export function parseLinkWidth(text: string | undefined): number | undefined {
  const m = /^x?(\d+)$/.exec(text ?? '');
  return m ? Number(m[1]) : undefined;
}

function lower(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return undefined;
  return b === undefined || b === 0 ? a : Math.min(a, b);
}

function optional<K extends string>(key: K, v: number | undefined): Partial<Record<K, number>> {
  return v === undefined ? {} : ({ [key]: v } as Record<K, number>);
}

/** Settings of the check. */
export interface HcaPcieCheckOptions {
  readonly hostRoot: string;
  readonly intervalMs: number;
}

/** Builds the HCA PCIe check. */
export function createHcaPcieCheck(opts: HcaPcieCheckOptions): Check {
  return {
    name: 'hca-pcie',
    intervalMs: opts.intervalMs,
    covers: HCA_PCIE_CHECKS,
    async run() {
      const hcas = await readHcaPcie(opts.hostRoot);
      if (hcas === undefined) {
        return {
          problems: [],
          available: unavailable(HCA_PCIE_CHECKS, 'no /sys/class/infiniband'),
        };
      }
      return hcaPcieReport(hcas);
    },
  };
}

/**
 * The report of one reading: the HCAs' values, and each condition checked unless an HCA's value
 * it needs could not be read (then "cannot check", naming the first such HCA).
 */
export function hcaPcieReport(hcas: readonly HcaPcie[]): CheckReport {
  const why = (what: 'link' | 'mrr'): string | undefined =>
    hcas.map((h) => h.missing[what]).find((m) => m !== undefined);
  const link = why('link');
  const mrr = why('mrr');
  return {
    problems: [],
    available: {
      ...checked(HCA_PCIE_CHECKS),
      ...(link === undefined
        ? {}
        : unavailable(['IBPCIeSpeedAbnormal', 'IBPCIeWidthAbnormal'], link)),
      ...(mrr === undefined ? {} : unavailable(['IBPCIeMRRNotAlign'], mrr)),
    },
    hcaPcie: hcas,
  };
}
