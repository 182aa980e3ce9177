/**
 * node-problem-detector (NPD, kubernetes/node-problem-detector) as an input. Many clusters run it
 * already; it reports a node's problems two ways, and Aegis reads both:
 *
 * - **Permanent problems** as Node conditions (type `KernelDeadlock`, status True, reason
 *   `DockerHung`) and, when its Prometheus exporter is scraped (`--prometheus-address=0.0.0.0`,
 *   port 20257), as `problem_gauge{type, reason}` (1 while the problem holds);
 * - **temporary problems** (events) as `problem_counter{reason}`, a counter of occurrences.
 *
 * A mapping (config `nodeProblemDetector`, default DEFAULT_NPD_MAPPING) says which catalogue
 * condition each NPD type or event reason stands for. The NPD conditions below read the metrics
 * through their PromQL, built from the mapping (applyNpdMapping); the daemon also reads the Node
 * conditions from its node watch (src/engine/node-conditions.ts), which needs no scrape.
 *
 * Condition types, reasons and metric names are NPD's own, from its repository (config/*.json,
 * pkg/problemmetrics/problem_metrics.go): kernel-monitor.json (KernelDeadlock/DockerHung,
 * XfsShutdown/XfsHasShutdown, CperHardwareErrorFatal; event TaskHung), readonly-monitor.json
 * (ReadonlyFilesystem/FilesystemIsReadOnly), docker-monitor.json (CorruptDockerOverlay2),
 * systemd-monitor-counter.json (FrequentKubeletRestart, FrequentDockerRestart,
 * FrequentContainerdRestart), kernel-monitor-counter.json (FrequentUnregisterNetDevice/
 * UnregisterNetDevice), health-checker-kubelet.json (KubeletUnhealthy), health-checker-containerd
 * and -docker.json (ContainerRuntimeUnhealthy), custom-plugin-monitor.json (NTPProblem/NTPIsDown),
 * disk-log-message-filelog.json (DiskBadBlock).
 */
import { ErrorCode, HealError } from '../core/errors.js';
import type { Domain } from '../core/types.js';
import type { CatalogueEntry } from './types.js';

const MIN = 60_000;

/** A permanent NPD problem: a Node condition type (and problem_gauge `type`) → a condition. */
export interface NpdProblemMapping {
  /** NPD condition type, e.g. `KernelDeadlock`. */
  readonly type: string;
  /** Only this reason (e.g. `DockerHung`); absent: any reason the condition is True with. */
  readonly reason?: string | undefined;
  /** Catalogue condition it stands for. */
  readonly condition: string;
}

/** A temporary NPD problem: a problem_counter `reason` → a condition, while it increased lately. */
export interface NpdEventMapping {
  /** NPD event reason, e.g. `TaskHung`. */
  readonly reason: string;
  readonly condition: string;
}

/** The whole mapping (config `nodeProblemDetector`). */
export interface NpdMapping {
  readonly problems: readonly NpdProblemMapping[];
  readonly events: readonly NpdEventMapping[];
}

/** How far back an NPD event counts (as the node check's kernel-log window). */
export const NPD_EVENT_WINDOW = '1h';

/** The default mapping: every permanent problem of NPD's shipped configs, and its hung-task event. */
export const DEFAULT_NPD_MAPPING: NpdMapping = {
  problems: [
    { type: 'KernelDeadlock', condition: 'NpdKernelDeadlock' },
    { type: 'ReadonlyFilesystem', condition: 'NpdReadonlyFilesystem' },
    { type: 'XfsShutdown', condition: 'NpdXfsShutdown' },
    { type: 'CperHardwareErrorFatal', condition: 'NpdHardwareErrorFatal' },
    { type: 'CorruptDockerOverlay2', condition: 'NpdCorruptDockerOverlay2' },
    { type: 'FrequentKubeletRestart', condition: 'NpdFrequentKubeletRestart' },
    { type: 'FrequentDockerRestart', condition: 'NpdFrequentContainerRuntimeRestart' },
    { type: 'FrequentContainerdRestart', condition: 'NpdFrequentContainerRuntimeRestart' },
    { type: 'FrequentUnregisterNetDevice', condition: 'NpdFrequentUnregisterNetDevice' },
    { type: 'KubeletUnhealthy', condition: 'NpdKubeletUnhealthy' },
    { type: 'ContainerRuntimeUnhealthy', condition: 'NpdContainerRuntimeUnhealthy' },
    { type: 'NTPProblem', condition: 'NpdNTPProblem' },
    { type: 'DiskBadBlock', condition: 'NpdDiskBadBlock' },
  ],
  events: [{ reason: 'TaskHung', condition: 'NpdKernelDeadlock' }],
};

/** A PromQL double-quoted string literal (Go escapes; JSON's are a subset). */
function quote(value: string): string {
  return JSON.stringify(value);
}

/**
 * The PromQL of an NPD condition from the mapping: its problem gauges at 1, or its events'
 * counters increased within NPD_EVENT_WINDOW; '' when nothing maps to it.
 */
export function npdExpr(condition: string, mapping: NpdMapping): string {
  const gauges = mapping.problems
    .filter((p) => p.condition === condition)
    .map((p) => {
      const reason = p.reason === undefined ? '' : `,reason=${quote(p.reason)}`;
      return `problem_gauge{type=${quote(p.type)}${reason}} == 1`;
    });
  const events = mapping.events
    .filter((e) => e.condition === condition)
    .map((e) => `increase(problem_counter{reason=${quote(e.reason)}}[${NPD_EVENT_WINDOW}]) > 0`);
  const parts = [gauges, events]
    .filter((p) => p.length > 0)
    .map((p) => `max by (node) (${p.join(' or ')})`);
  return parts.join(' or ');
}

interface NpdSpec {
  readonly name: string;
  readonly domain: Domain;
  readonly description: string;
  readonly priority: number;
  readonly affectsLoad: boolean;
  readonly sop: string | null;
  /** The NPD type (and problem reason) the simulator raises for it. */
  readonly fault: { readonly type: string; readonly reason: string };
}

/**
 * One NPD condition. Permanent problems already hold in NPD until it clears them (a reboot, an
 * NPD restart, or the counter window passing), so nothing waits `for:`; clearing waits 5 minutes.
 */
function npd(spec: NpdSpec): CatalogueEntry {
  return {
    name: spec.name,
    domain: spec.domain,
    description: `${spec.description} Reported by node-problem-detector (Node condition or problem_gauge/problem_counter; mapping: config \`nodeProblemDetector\`).`,
    signal: 'node-problem-detector',
    expr: npdExpr(spec.name, DEFAULT_NPD_MAPPING),
    deviceLabel: '',
    forMs: 0,
    clearForMs: 5 * MIN,
    clear:
      'node-problem-detector reports the problem gone (and no mapped event within 1 hour) for 5 minutes.',
    priority: spec.priority,
    affectsLoad: spec.affectsLoad,
    deviceIdMode: 'none',
    sop: spec.sop,
    fault: {
      series: [{ metric: 'problem_gauge', labels: spec.fault, value: 1 }],
    },
  };
}

/**
 * The conditions NPD reports. Priorities follow the catalogue's nearest condition: a filesystem
 * the kernel turned read-only or shut down acts like DiskReadOnly (51, disk.replace); the others
 * are CanIgnore (100: recorded, acted on only where a site raises them in priority.conf), as the
 * kernel-log conditions of the node check are.
 */
export const NPD_CONDITIONS: readonly CatalogueEntry[] = [
  npd({
    name: 'NpdKernelDeadlock',
    domain: 'System',
    description:
      'A task blocked in the kernel for more than 120 s: NPD KernelDeadlock (e.g. reason DockerHung) or a ' +
      'TaskHung event in the last hour. Record only by default, like KernelDeadlock.',
    priority: 100,
    affectsLoad: false,
    sop: 'system.reboot',
    fault: { type: 'KernelDeadlock', reason: 'DockerHung' },
  }),
  npd({
    name: 'NpdReadonlyFilesystem',
    domain: 'Disk',
    description:
      'The kernel remounted a filesystem read-only after an error ("Remounting filesystem read-only"): NPD ' +
      'ReadonlyFilesystem/FilesystemIsReadOnly. NPD does not say which mount.',
    priority: 51,
    affectsLoad: true,
    sop: 'disk.replace',
    fault: { type: 'ReadonlyFilesystem', reason: 'FilesystemIsReadOnly' },
  }),
  npd({
    name: 'NpdXfsShutdown',
    domain: 'Disk',
    description: 'XFS shut a filesystem down after an I/O or metadata error: NPD XfsShutdown.',
    priority: 51,
    affectsLoad: true,
    sop: 'disk.replace',
    fault: { type: 'XfsShutdown', reason: 'XfsHasShutdown' },
  }),
  npd({
    name: 'NpdDiskBadBlock',
    domain: 'Disk',
    description:
      'smartd logged 100 or more unreadable (pending) or offline uncorrectable sectors of a drive: NPD ' +
      'DiskBadBlock (disk-log-message-filelog.json). Record only by default (DiskSmartFailing acts).',
    priority: 100,
    affectsLoad: false,
    sop: 'disk.replace',
    fault: { type: 'DiskBadBlock', reason: 'DiskBadBlock' },
  }),
  npd({
    name: 'NpdHardwareErrorFatal',
    domain: 'Baseboard',
    description:
      'The firmware reported a fatal hardware error (UEFI CPER "[Hardware Error]: event severity: fatal"): ' +
      'NPD CperHardwareErrorFatal. Record only by default; raise it to act.',
    priority: 100,
    affectsLoad: false,
    sop: 'baseboard.replace',
    fault: { type: 'CperHardwareErrorFatal', reason: 'CperHardwareErrorFatal' },
  }),
  npd({
    name: 'NpdCorruptDockerOverlay2',
    domain: 'Node',
    description:
      "Docker's overlay2 storage is corrupt (readlink errors): NPD CorruptDockerOverlay2.",
    priority: 100,
    affectsLoad: false,
    sop: null,
    fault: { type: 'CorruptDockerOverlay2', reason: 'CorruptDockerOverlay2' },
  }),
  npd({
    name: 'NpdFrequentKubeletRestart',
    domain: 'Node',
    description:
      'kubelet started 5 times in 20 minutes (NPD log-counter over the systemd journal): NPD FrequentKubeletRestart.',
    priority: 100,
    affectsLoad: false,
    sop: null,
    fault: { type: 'FrequentKubeletRestart', reason: 'FrequentKubeletRestart' },
  }),
  npd({
    name: 'NpdFrequentContainerRuntimeRestart',
    domain: 'Node',
    description:
      'The container runtime started 5 times in 20 minutes: NPD FrequentContainerdRestart or FrequentDockerRestart.',
    priority: 100,
    affectsLoad: false,
    sop: null,
    fault: { type: 'FrequentContainerdRestart', reason: 'FrequentContainerdRestart' },
  }),
  npd({
    name: 'NpdFrequentUnregisterNetDevice',
    domain: 'Network',
    description:
      'The kernel waited 3 times in 20 minutes for a network device to become free ("unregister_netdevice: ' +
      'waiting for … to become free"); pods on the node cannot be torn down until a reboot: NPD ' +
      'FrequentUnregisterNetDevice.',
    priority: 100,
    affectsLoad: false,
    sop: 'network.reboot',
    fault: { type: 'FrequentUnregisterNetDevice', reason: 'UnregisterNetDevice' },
  }),
  npd({
    name: 'NpdKubeletUnhealthy',
    domain: 'Node',
    description: "kubelet's health check fails (NPD health-checker): NPD KubeletUnhealthy.",
    priority: 100,
    affectsLoad: false,
    sop: 'node.restart-kubelet',
    fault: { type: 'KubeletUnhealthy', reason: 'KubeletUnhealthy' },
  }),
  npd({
    name: 'NpdContainerRuntimeUnhealthy',
    domain: 'Node',
    description:
      "The container runtime's health check fails (NPD health-checker, containerd or docker): NPD " +
      'ContainerRuntimeUnhealthy.',
    priority: 100,
    affectsLoad: false,
    sop: 'node.restart-kubelet',
    fault: { type: 'ContainerRuntimeUnhealthy', reason: 'ContainerdUnhealthy' },
  }),
  npd({
    name: 'NpdNTPProblem',
    domain: 'System',
    description: 'The NTP service is down (NPD custom plug-in check_ntp.sh): NPD NTPProblem.',
    priority: 100,
    affectsLoad: false,
    sop: 'system.report',
    fault: { type: 'NTPProblem', reason: 'NTPIsDown' },
  }),
];

/**
 * Checks a mapping against a catalogue: every target must be a condition the catalogue knows
 * (by name; aliases are resolved by `resolve`). Throws UNKNOWN_CONDITION naming the config path.
 */
export function checkNpdMapping(
  mapping: NpdMapping,
  resolve: (name: string) => CatalogueEntry | undefined,
  where = 'nodeProblemDetector',
): void {
  const check = (condition: string, path: string): void => {
    if (resolve(condition) === undefined) {
      throw new HealError(
        ErrorCode.UnknownCondition,
        `${where}.${path}.condition: "${condition}" is not a catalogue condition (aegis conditions lists them)`,
      );
    }
  };
  mapping.problems.forEach((p, i) => {
    check(p.condition, `problems[${String(i)}]`);
  });
  mapping.events.forEach((e, i) => {
    check(e.condition, `events[${String(i)}]`);
  });
}

/**
 * The catalogue with the NPD conditions' PromQL built from `mapping` (config
 * `nodeProblemDetector`); an NPD condition nothing maps to is dropped (never queried). A mapping
 * target of another signal (say KernelDeadlock, read from the node check) is fed by NPD's Node
 * conditions only: its PromQL stays its own producer's. Throws UNKNOWN_CONDITION for a target the
 * catalogue does not know.
 */
export function applyNpdMapping(
  catalogue: readonly CatalogueEntry[],
  mapping: NpdMapping,
): CatalogueEntry[] {
  const byName = new Map(
    catalogue.flatMap((e) => [e.name, ...(e.aliases ?? [])].map((n) => [n, e] as const)),
  );
  checkNpdMapping(mapping, (n) => byName.get(n));
  const canonical = (name: string): string => byName.get(name)?.name ?? name;
  const resolved: NpdMapping = {
    problems: mapping.problems.map((p) => ({ ...p, condition: canonical(p.condition) })),
    events: mapping.events.map((e) => ({ ...e, condition: canonical(e.condition) })),
  };
  const out: CatalogueEntry[] = [];
  for (const e of catalogue) {
    if (e.signal !== 'node-problem-detector') {
      out.push(e);
      continue;
    }
    const expr = npdExpr(e.name, resolved);
    if (expr !== '') out.push(expr === e.expr ? e : { ...e, expr });
  }
  return out;
}
