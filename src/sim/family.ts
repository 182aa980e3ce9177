/**
 * A metric family of the simulated fleet: which exporter serves it, which devices of a node it has
 * one series for, how those series are labelled and what their healthy baseline value is. The
 * series store never materialises baseline series: it walks (node × device × variant) on demand.
 */
import type { FleetNode } from './fleet-spec.js';

/** The exporters the simulator serves, one exposition path each (`/metrics/<id>`). */
export const Exporter = {
  Dcgm: 'dcgm',
  Node: 'node',
  Ksm: 'ksm',
  Ipmi: 'ipmi',
  Gpfs: 'gpfs',
  Nodecheck: 'nodecheck',
  /** Series Prometheus makes itself (`up`); never served by an exporter. */
  Prometheus: 'prometheus',
} as const;
export type Exporter = (typeof Exporter)[keyof typeof Exporter];

/** Exporters that run on the node itself: they stop answering while it is down. */
export const IN_BAND_EXPORTERS: readonly Exporter[] = ['dcgm', 'node', 'gpfs', 'nodecheck'];

/** The exporter of a metric, decided by its name prefix. */
export function exporterOf(metric: string): Exporter {
  if (metric.startsWith('DCGM_')) return Exporter.Dcgm;
  if (metric.startsWith('node_')) return Exporter.Node;
  if (metric.startsWith('kube_')) return Exporter.Ksm;
  if (metric.startsWith('ipmi_')) return Exporter.Ipmi;
  if (metric.startsWith('gpfs_')) return Exporter.Gpfs;
  if (
    metric.startsWith('sichek_') ||
    metric.startsWith('aegis_nodecheck_') ||
    metric.startsWith('problem_')
  ) {
    return Exporter.Nodecheck;
  }
  return Exporter.Prometheus;
}

/** `job` label of a metric's series (as a scrape config would name the job). */
export function jobOf(metric: string): string {
  if (metric.startsWith('problem_')) return 'node-problem-detector';
  return metric.startsWith('sichek_') ? 'sichek' : jobOfExporter(exporterOf(metric));
}

/** `job` label of an exporter's scrape job. */
export function jobOfExporter(exporter: Exporter): string {
  switch (exporter) {
    case 'dcgm':
      return 'dcgm-exporter';
    case 'node':
      return 'node-exporter';
    case 'ksm':
      return 'kube-state-metrics';
    case 'ipmi':
      return 'ipmi-exporter';
    case 'gpfs':
      return 'gpfs-exporter';
    case 'nodecheck':
      return 'aegis-nodecheck';
    case 'prometheus':
      return 'prometheus';
  }
}

/** Port of each exporter, for the `instance` label. */
export const EXPORTER_PORTS: Readonly<Record<Exporter, number>> = {
  dcgm: 9400,
  node: 9100,
  ksm: 8080,
  ipmi: 9290,
  gpfs: 9303,
  nodecheck: 19091,
  prometheus: 9090,
};

/** Which device list of a node a family has one series per. */
export type Scope =
  | { readonly kind: 'node' }
  /** `dcgm`: gpu/UUID/pci_bus_id/device/modelName/Hostname/…; `index`: sichek's `index`. */
  | { readonly kind: 'gpu'; readonly style: 'dcgm' | 'index' }
  /** Logical CPUs (`cpu`), as many as the node's cpu capacity. */
  | { readonly kind: 'cpu' }
  /** Physical cores (`core`, `package`): half the logical CPUs, two packages. */
  | { readonly kind: 'core' }
  | { readonly kind: 'package' }
  /** Block devices (`device`: nvme0n1, nvme1n1). */
  | { readonly kind: 'disk' }
  /** HCAs; `bdfLabel` also labels each series with the HCA's PCI address (the agent's `pci_bdf`). */
  | {
      readonly kind: 'hca';
      readonly label: string;
      readonly withPort: boolean;
      readonly bdfLabel?: string;
    }
  /** NICs; node-exporter's bonding collector names the bond `master`, the others `device`. */
  | {
      readonly kind: 'nic';
      readonly which: 'all' | 'bond' | 'slave';
      readonly label: 'device' | 'master';
    }
  | { readonly kind: 'sensor'; readonly types: readonly string[]; readonly withType: boolean }
  | { readonly kind: 'mount'; readonly label: string }
  | { readonly kind: 'filesystem' };

/** Extra label sets multiplied into every device series (`condition`×`status`, `state`, …). */
export type Variants = readonly Readonly<Record<string, string>>[];

/** One metric family. `value` and `slope` must be pure functions of their arguments. */
export interface FamilyDef {
  readonly name: string;
  readonly type: 'gauge' | 'counter';
  readonly help: string;
  readonly scope: Scope;
  /** Only nodes of these roles have the family (default: workers only). */
  readonly roles?: readonly FleetNode['role'][];
  /** Variant label sets for a node (default one empty set). Return shared arrays. */
  readonly variants?: (node: FleetNode) => Variants;
  /** Healthy value of series (node, device index, variant index). */
  readonly value: (node: FleetNode, device: number, variant: number, seed: number) => number;
  /** Counters that grow while healthy: units per second (default 0, constant). */
  readonly slope?: (node: FleetNode, device: number, variant: number) => number;
  /** Counters kept across reboots (InfoROM: aggregate ECC, retired pages, remapped rows). */
  readonly persistent?: boolean;
  /** Series of a histogram: exposed under one `# TYPE <histogram> histogram` header. */
  readonly histogram?: string;
  /** For `up`: the exporter whose availability this variant reports (1 up, 0 down). */
  readonly upOf?: (variant: number) => Exporter;
}

/** A family with its resolved exporter and job. */
export interface Family extends FamilyDef {
  readonly index: number;
  readonly exporter: Exporter;
  readonly job: string;
}

const NO_VARIANTS: Variants = [{}];

/** Variants of a family for a node. */
export function variantsOf(family: FamilyDef, node: FleetNode): Variants {
  return family.variants === undefined ? NO_VARIANTS : family.variants(node);
}

/** True when `node` has series of `family`. */
export function hasFamily(family: FamilyDef, node: FleetNode): boolean {
  return (family.roles ?? WORKERS).includes(node.role);
}

const WORKERS: readonly FleetNode['role'][] = ['worker'];
/** Roles value for families every node has. */
export const ALL_ROLES: readonly FleetNode['role'][] = ['worker', 'control-plane'];
