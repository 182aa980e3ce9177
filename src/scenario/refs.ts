/**
 * References inside a scenario: node numbers and names, node sets, device ids checked against
 * the simulated hardware, and "did you mean" suggestions. Pure functions of the fleet shape.
 */
import { IB_PORT_LABEL } from '../catalogue/ib.js';
import type { CatalogueEntry } from '../catalogue/types.js';
import { DEFAULT_NAME_PREFIX } from '../sim/fleet-spec.js';
import { NODE_NICS, NODE_SENSORS, WORKER_HCAS, WORKER_MOUNTS } from '../sim/fleet.js';
import type { FleetSpec } from './schema.js';

/** A problem found in a scenario, at a path of the document. */
export interface Issue {
  readonly path: readonly (string | number)[];
  readonly message: string;
  readonly unknownCondition?: boolean;
}

/** Name of worker `index` (0-based) in a fleet of `workers`, as src/sim/fleet.ts names it. */
export function workerName(index: number, workers: number): string {
  const width = Math.max(4, String(workers).length);
  return `${DEFAULT_NAME_PREFIX}-${String(index + 1).padStart(width, '0')}`;
}

/** Every node name of the fleet: workers, then control-plane nodes. */
export function fleetNodeNames(fleet: FleetSpec): string[] {
  const out: string[] = [];
  for (let i = 0; i < fleet.nodes; i++) out.push(workerName(i, fleet.nodes));
  for (let i = 0; i < fleet.controlPlaneNodes; i++) out.push(`control-plane-${i + 1}`);
  return out;
}

/** Resolves one node reference (1-based number or name); returns the name or an error message. */
export function resolveNode(ref: number | string, fleet: FleetSpec): string | { error: string } {
  const range = `the fleet has ${fleet.nodes} workers, ${workerName(0, fleet.nodes)} … ${workerName(fleet.nodes - 1, fleet.nodes)}`;
  if (typeof ref === 'number') {
    if (ref >= 1 && ref <= fleet.nodes) return workerName(ref - 1, fleet.nodes);
    return { error: `unknown node ${ref}: ${range} (numbers 1-${fleet.nodes})` };
  }
  const cp = /^control-plane-(\d+)$/.exec(ref);
  if (cp !== null) {
    const k = Number(cp[1]);
    if (k >= 1 && k <= fleet.controlPlaneNodes) return ref;
    return {
      error: `unknown node "${ref}": the fleet has ${fleet.controlPlaneNodes} control-plane nodes`,
    };
  }
  const m = /^gpu-node-(\d+)$/.exec(ref);
  if (m !== null) {
    const n = Number(m[1]);
    if (n >= 1 && n <= fleet.nodes && workerName(n - 1, fleet.nodes) === ref) return ref;
  }
  return { error: `unknown node "${ref}": ${range}` };
}

/** Resolves `nodes:` (list, `"a-b"` range, or `"N%"` of the workers spread evenly). */
export function resolveNodes(
  ref: readonly (number | string)[] | string,
  fleet: FleetSpec,
): string[] | { error: string; index?: number } {
  if (typeof ref !== 'string') {
    const out: string[] = [];
    for (const [i, r] of ref.entries()) {
      const name = resolveNode(r, fleet);
      if (typeof name !== 'string') return { error: name.error, index: i };
      out.push(name);
    }
    return [...new Set(out)];
  }
  const text = ref.trim();
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (pct !== null) {
    const share = Number(pct[1]);
    if (share <= 0 || share > 100) return { error: `"${text}": a share must be in (0, 100]%` };
    const count = Math.max(1, Math.round((share / 100) * fleet.nodes));
    return Array.from({ length: count }, (_, k) =>
      workerName(Math.floor((k * fleet.nodes) / count), fleet.nodes),
    );
  }
  const range = /^(\d+)\s*-\s*(\d+)$/.exec(text);
  if (range !== null) {
    const a = Number(range[1]);
    const b = Number(range[2]);
    if (a < 1 || b > fleet.nodes || a > b) {
      return { error: `"${text}": a range must lie within 1-${fleet.nodes}, low to high` };
    }
    return Array.from({ length: b - a + 1 }, (_, k) => workerName(a - 1 + k, fleet.nodes));
  }
  const one = resolveNode(text, fleet);
  if (typeof one === 'string') return [one];
  return { error: `${one.error}; "nodes" takes a list, a range "1-20" or a share "30%"` };
}

const GPU_INDEX_LABELS = new Set(['gpu']);

/**
 * Checks a device id against the condition's device kind and the node's hardware. Returns an
 * error message, or undefined when the device is fine (or cannot be checked).
 */
export function checkDevice(
  entry: CatalogueEntry,
  device: string,
  node: string,
  fleet: FleetSpec,
): string | undefined {
  const worker = node.startsWith(`${DEFAULT_NAME_PREFIX}-`);
  if (entry.deviceLabel === '' && entry.fault.defaultDevice === undefined) {
    return `${entry.name} is node-wide: it takes no device`;
  }
  const isGpuIndex =
    GPU_INDEX_LABELS.has(entry.deviceLabel) ||
    (entry.domain === 'GPU' &&
      entry.deviceLabel === '' &&
      /^\d+$/.test(entry.fault.defaultDevice ?? ''));
  const gpus = worker ? fleet.gpusPerNode : 0;
  if (isGpuIndex) {
    if (gpus === 0) return `${node} has no GPUs`;
    if (!/^\d+$/.test(device) || Number(device) >= gpus) {
      return `${node} has GPUs 0-${gpus - 1}; there is no GPU "${device}"`;
    }
    return undefined;
  }
  if (entry.domain === 'GPU' && entry.deviceIdMode === 'mask') {
    if (gpus === 0) return `${node} has no GPUs`;
    return new RegExp(`^[01]{${gpus}}$`).test(device)
      ? undefined
      : `${entry.name} takes a GPU mask of ${gpus} digits 0/1 (e.g. ${'0'.repeat(gpus - 1)}1), not "${device}"`;
  }
  const known = knownDevices(entry, worker);
  if (known === undefined || known.includes(device)) return undefined;
  if (known.length === 0) return `${node} has no ${entry.domain} device`;
  // Ports stand for their HCAs too: list the ports.
  const shown = known.some((d) => d.includes('/')) ? known.filter((d) => d.includes('/')) : known;
  return `${node} has no ${entry.domain} device "${device}" (it has ${shown.join(', ')})`;
}

function knownDevices(entry: CatalogueEntry, worker: boolean): readonly string[] | undefined {
  if ((entry.domain === 'IB' || entry.domain === 'RoCE') && entry.deviceLabel === 'device') {
    return worker ? WORKER_HCAS.map((h) => h.name) : [];
  }
  if (entry.deviceLabel === IB_PORT_LABEL) {
    // A port `mlx5_0/1`, or an HCA alone (every port of it).
    return worker ? WORKER_HCAS.flatMap((h) => [`${h.name}/${h.port}`, h.name]) : [];
  }
  if (entry.domain === 'GPFS' && entry.deviceLabel === 'mount') {
    return worker ? WORKER_MOUNTS.map((m) => m.mountpoint) : [];
  }
  if (entry.deviceLabel === 'name' && entry.signal === 'ipmi-exporter')
    return NODE_SENSORS.map((s) => s.name);
  if (
    entry.domain === 'Network' &&
    entry.signal === 'node-exporter' &&
    entry.deviceLabel === 'device'
  ) {
    return NODE_NICS.map((n) => n.name);
  }
  return undefined;
}

/** The closest candidate to `word` when it is close enough to be a typo. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** `unknown X "word" (did you mean Y?)`. */
export function unknownName(
  what: string,
  word: string,
  candidates: Iterable<string>,
  list = false,
): string {
  const all = [...candidates];
  const hint = didYouMean(word, all);
  const tail =
    hint !== undefined ? ` (did you mean ${hint}?)` : list ? ` (one of: ${all.join(', ')})` : '';
  return `unknown ${what} "${word}"${tail}`;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 8) return Math.abs(a.length - b.length);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
