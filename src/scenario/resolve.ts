/**
 * Semantic checks of a parsed scenario: timeline events (conditions against the catalogue,
 * devices against the hardware, nodes against the fleet, times against the run), the config
 * overrides (against the real config schema) and the expectations. Collects every problem with
 * its document path; load.ts turns paths into line numbers.
 */
import type { z } from 'zod';
import { CATALOGUE, findCondition } from '../catalogue/index.js';
import { SIGNALS } from '../catalogue/signals.js';
import { ConfigSchema, defaultConfig, type Config } from '../config/schema.js';
import { formatDurationMs } from '../core/duration.js';
import { createMetrics, metricNames } from '../metrics/metrics.js';
import type { JobKind } from '../k8s/cluster.js';
import type { Persistence } from '../sim/persistence.js';
import { DEFAULT_NAME_PREFIX } from '../sim/fleet-spec.js';
import { WORKER_HCAS } from '../sim/fleet.js';
import { exporterOfSignal } from '../sim/sim-metrics.js';
import { Action } from '../sop/sop.js';
import { TicketStatus } from '../ticket/ticket.js';
import { checkDevice, resolveNode, resolveNodes, unknownName, type Issue } from './refs.js';
import {
  EVENT_NAMES,
  EVENT_SCHEMAS,
  EXPECT_KINDS,
  EXPECT_SCHEMAS,
  type CountBound,
  type EventName,
  type Expectation,
  type ExpectationSpec,
  type FleetSpec,
  type ScenarioFileSchema,
  type StatusFilter,
  type TimelineAction,
  type TimelineEvent,
  type WorkloadSpec,
} from './schema.js';

type Path = readonly (string | number)[];
type FileData = z.infer<typeof ScenarioFileSchema>;

/** Ticket transitions an expectation can name like an action. */
export const TICKET_EVENTS = [
  'TicketOpened',
  'TicketAssigned',
  'TicketResolved',
  'TicketClosed',
] as const;
/** Cluster API methods failures can be injected into. */
export const API_METHODS = [
  'listNodes',
  'getNode',
  'setUnschedulable',
  'patchNodeAnnotations',
  'patchNodeLabels',
  'listPodsOnNode',
  'evictPod',
  'deletePod',
  'createJob',
  'getJob',
  'deleteJob',
  'emitEvent',
] as const;
const ACTIONS: readonly string[] = [...Object.values(Action), 'any', ...TICKET_EVENTS];
const DEFAULT_INTERVAL_MS = 10_000;
const DEFAULT_QUIET_MS = 15 * 60_000;
const MAX_DURATION_MS = 60 * 86_400_000;

/** Collects issues while resolving. */
class Issues {
  readonly list: Issue[] = [];
  add(path: Path, message: string, unknownCondition = false): void {
    this.list.push(unknownCondition ? { path, message, unknownCondition } : { path, message });
  }
  /** Adds every issue of a failed zod parse, under `base`. */
  addZod(base: Path, error: z.ZodError): void {
    for (const i of error.issues) {
      const keys = i.code === 'unrecognized_keys' ? [i.keys[0] ?? ''] : [];
      this.add([...base, ...(i.path as (string | number)[]), ...keys], i.message);
    }
  }
}

/** The parts of a scenario resolved from the file data. */
export interface Resolved {
  readonly fleet: FleetSpec;
  readonly durationMs: number;
  readonly intervalMs: number;
  readonly fastForward: { readonly quietForMs: number } | null;
  readonly config: Config;
  readonly workloads: WorkloadSpec[];
  readonly timeline: TimelineEvent[];
  readonly expect: Expectation[];
}

/** Resolves a parsed scenario; `lineOf` gives the line of a path. Returns the issues found. */
export function resolveScenario(
  data: FileData,
  lineOf: (path: Path) => number,
): Resolved | Issue[] {
  const issues = new Issues();
  const fleet: FleetSpec = {
    nodes: data.fleet.nodes,
    gpusPerNode: data.fleet.gpusPerNode ?? 8,
    controlPlaneNodes: data.fleet.controlPlaneNodes ?? 0,
    ...(data.fleet.racksOf === undefined ? {} : { racksOf: data.fleet.racksOf }),
    ...(data.fleet.leavesOf === undefined ? {} : { leavesOf: data.fleet.leavesOf }),
    ...(data.fleet.bootTime === undefined ? {} : { bootTimeMs: data.fleet.bootTime }),
  };
  const durationMs = data.duration;
  if (durationMs <= 0 || durationMs > MAX_DURATION_MS)
    issues.add(
      ['duration'],
      `the run must last between 1s and 60d, not ${formatDurationMs(durationMs)}`,
    );
  const intervalMs = data.interval ?? DEFAULT_INTERVAL_MS;
  if (intervalMs < 1000 || intervalMs > Math.max(durationMs, 1000)) {
    issues.add(
      ['interval'],
      `the inspection interval must be between 1s and the run's duration, not ${formatDurationMs(intervalMs)}`,
    );
  }
  const ff = data.fastForward;
  const fastForward =
    ff === false
      ? null
      : { quietForMs: ff === undefined || ff === true ? DEFAULT_QUIET_MS : ff.quietFor };
  const config = resolveConfig(data.config, intervalMs, issues);
  const workloads = resolveWorkloads(data.workloads, fleet, issues);
  const timeline = resolveTimeline(data.timeline, fleet, durationMs, issues);
  const expect = resolveExpectations(data.expect, fleet, lineOf, issues);
  if (issues.list.length > 0 || config === undefined) return issues.list;
  const withLines = timeline.map((e) => ({ ...e, line: lineOf(['timeline', e.line]) }));
  return {
    fleet,
    durationMs,
    intervalMs,
    fastForward,
    config,
    workloads,
    timeline: withLines,
    expect,
  };
}

function resolveConfig(
  raw: FileData['config'],
  intervalMs: number,
  issues: Issues,
): Config | undefined {
  const c = raw ?? {};
  if (c.inspect !== undefined && 'intervalMs' in c.inspect) {
    issues.add(
      ['config', 'inspect', 'intervalMs'],
      'set the inspection interval with the top-level "interval"',
    );
    return undefined;
  }
  if (c.sop !== undefined && 'pluginDir' in c.sop) {
    issues.add(['config', 'sop', 'pluginDir'], 'plug-ins are not loaded in the simulator');
    return undefined;
  }
  const parsed = ConfigSchema.safeParse({
    safety: { dryRun: false, ...c.safety },
    sop: c.sop ?? {},
    // A cycle waits for its slow rules: in virtual time that costs nothing and keeps runs
    // reproducible.
    inspect: { backgroundSlowRules: false, backgroundPresence: false, ...c.inspect, intervalMs },
    ...(c.profiles === undefined ? {} : { profiles: c.profiles }),
    ...(c.quarantine === undefined ? {} : { quarantine: c.quarantine }),
  });
  if (!parsed.success) {
    const defaults = defaultConfig() as unknown as Record<string, Record<string, unknown>>;
    for (const i of parsed.error.issues) {
      const path = ['config', ...(i.path as (string | number)[])];
      if (i.code !== 'unrecognized_keys') {
        issues.add(path, i.message);
        continue;
      }
      const key = i.keys[0] ?? '';
      const section = defaults[String(i.path[0])] ?? {};
      issues.add([...path, key], unknownName('field', key, Object.keys(section), true));
    }
    return undefined;
  }
  return parsed.data;
}

function resolveWorkloads(
  items: FileData['workloads'],
  fleet: FleetSpec,
  issues: Issues,
): WorkloadSpec[] {
  const out: WorkloadSpec[] = [];
  const names = new Set<string>();
  for (const [i, w] of items.entries()) {
    const at: Path = ['workloads', i];
    const key = `${w.namespace ?? 'training'}/${w.name}`;
    if (names.has(key)) issues.add([...at, 'name'], `workload ${key} is defined twice`);
    names.add(key);
    const nodes = resolveNodes(w.nodes, fleet);
    if (!Array.isArray(nodes)) {
      issues.add(
        nodes.index === undefined ? [...at, 'nodes'] : [...at, 'nodes', nodes.index],
        nodes.error,
      );
      continue;
    }
    if (w.minAvailable !== undefined && w.minAvailable > nodes.length) {
      issues.add(
        [...at, 'minAvailable'],
        `minAvailable ${w.minAvailable} is more than the workload's ${nodes.length} pods`,
      );
      continue;
    }
    out.push({
      name: w.name,
      nodes,
      ...(w.namespace === undefined ? {} : { namespace: w.namespace }),
      ...(w.minAvailable === undefined ? {} : { minAvailable: w.minAvailable }),
    });
  }
  return out;
}

function resolveTimeline(
  items: FileData['timeline'],
  fleet: FleetSpec,
  durationMs: number,
  issues: Issues,
): TimelineEvent[] {
  const out: TimelineEvent[] = [];
  let prevMs = 0;
  for (const [i, item] of items.entries()) {
    const at: Path = ['timeline', i];
    const name = item['event'];
    if (typeof name !== 'string') {
      issues.add(
        name === undefined ? at : [...at, 'event'],
        `each timeline event needs "event:" (one of: ${EVENT_NAMES.join(', ')})`,
      );
      continue;
    }
    if (!(EVENT_NAMES as readonly string[]).includes(name)) {
      issues.add([...at, 'event'], unknownName('event', name, EVENT_NAMES, true));
      continue;
    }
    const parsed = EVENT_SCHEMAS[name as EventName].safeParse(item);
    if (!parsed.success) {
      issues.addZod(at, parsed.error);
      continue;
    }
    const ev = parsed.data as Record<string, unknown> & {
      at: { relative: boolean; ms: number };
      note?: string;
    };
    const atMs = ev.at.relative ? prevMs + ev.at.ms : ev.at.ms;
    const late = atMs > durationMs;
    if (late) {
      issues.add(
        [...at, 'at'],
        `bad time: ${formatDurationMs(atMs)} is after the end of the run (duration ${formatDurationMs(durationMs)})`,
      );
    }
    prevMs = atMs;
    const action = resolveAction(name as EventName, ev, fleet, at, issues);
    if (action === undefined || late) continue;
    // `line` holds the item index until resolveScenario maps it to a line number.
    out.push({ atMs, line: i, ...(ev.note === undefined ? {} : { note: ev.note }), action });
  }
  // Two replicas at most: one overlap at a time.
  const overlaps = out
    .flatMap((e) =>
      e.action.kind === 'leader-overlap' ? [{ e, endMs: e.atMs + e.action.forMs }] : [],
    )
    .sort((a, b) => a.e.atMs - b.e.atMs || a.e.line - b.e.line);
  let last: (typeof overlaps)[number] | undefined;
  for (const cur of overlaps) {
    if (last === undefined || cur.e.atMs >= last.endMs) {
      last = cur;
      continue;
    }
    issues.add(
      ['timeline', cur.e.line, 'at'],
      `a leader overlap starts at ${formatDurationMs(cur.e.atMs)} while the one of timeline[${last.e.line}] lasts until ${formatDurationMs(last.endMs)}: one overlap at a time`,
    );
  }
  return out;
}

function targetsOf(
  ev: Record<string, unknown>,
  fleet: FleetSpec,
  at: Path,
  issues: Issues,
  optional = false,
): string[] | undefined {
  const node = ev['node'] as number | string | undefined;
  const nodes = ev['nodes'] as (number | string)[] | string | undefined;
  if (node !== undefined && nodes !== undefined) {
    issues.add([...at, 'nodes'], 'give "node" or "nodes", not both');
    return undefined;
  }
  if (node !== undefined) {
    const name = resolveNode(node, fleet);
    if (typeof name === 'string') return [name];
    issues.add([...at, 'node'], name.error);
    return undefined;
  }
  if (nodes !== undefined) {
    const names = resolveNodes(nodes, fleet);
    if (Array.isArray(names)) return names;
    issues.add(
      names.index === undefined ? [...at, 'nodes'] : [...at, 'nodes', names.index],
      names.error,
    );
    return undefined;
  }
  if (!optional) issues.add(at, 'this event needs "node" or "nodes"');
  return optional ? [] : undefined;
}

/** An IB port of every node given: `mlx5_2` (its port 1) or `mlx5_2/1`; an error message if not. */
function ibPort(device: string, nodes: readonly string[]): { hca: string; port: string } | string {
  const [hca = '', port = '1', ...rest] = device.split('/');
  const known = WORKER_HCAS.find((h) => h.name === hca);
  for (const node of nodes) {
    if (!node.startsWith(`${DEFAULT_NAME_PREFIX}-`)) return `${node} has no IB device`;
  }
  if (known === undefined || rest.length > 0)
    return `${nodes[0] ?? 'the node'} has no IB device "${device}" (it has ${WORKER_HCAS.map((h) => h.name).join(', ')}; a port is HCA/port, e.g. mlx5_0/1)`;
  if (known.port !== port) return `${hca} has no port "${port}" (it has port ${known.port})`;
  return { hca, port };
}

function resolveCondition(name: string, path: Path, issues: Issues): string | undefined {
  const entry = findCondition(name);
  if (entry !== undefined) return entry.name;
  const names = CATALOGUE.flatMap((e) => [e.name, ...(e.aliases ?? [])]);
  issues.add(path, unknownName('condition', name, names), true);
  return undefined;
}

function resolveAction(
  name: EventName,
  ev: Record<string, unknown>,
  fleet: FleetSpec,
  at: Path,
  issues: Issues,
): TimelineAction | undefined {
  const n = (optional = false): string[] | undefined => targetsOf(ev, fleet, at, issues, optional);
  const forMs = ev['for'] as number | undefined;
  switch (name) {
    case 'fault':
    case 'recover': {
      const nodes = n();
      const cond = ev['condition'] as string | undefined;
      const condition =
        cond === undefined ? undefined : resolveCondition(cond, [...at, 'condition'], issues);
      if (nodes === undefined || (cond !== undefined && condition === undefined)) return undefined;
      const device = ev['device'] as string | undefined;
      if (device !== undefined && condition !== undefined) {
        const entry = findCondition(condition);
        for (const node of nodes) {
          const bad = entry === undefined ? undefined : checkDevice(entry, device, node, fleet);
          if (bad !== undefined) {
            issues.add([...at, 'device'], bad);
            return undefined;
          }
        }
      }
      const dev = device === undefined ? {} : { device };
      if (name === 'recover')
        return {
          kind: 'recover',
          nodes,
          ...(condition === undefined ? {} : { condition }),
          ...dev,
        };
      const persistence = ev['persistence'] as Persistence | undefined;
      if (persistence === 'transient' && forMs === undefined) {
        issues.add([...at, 'persistence'], 'a transient fault needs "for" (how long it lasts)');
        return undefined;
      }
      return {
        kind: 'fault',
        nodes,
        condition: condition as string,
        ...dev,
        ...(persistence === undefined ? {} : { persistence }),
        ...(forMs === undefined ? {} : { forMs }),
      };
    }
    case 'cordon':
    case 'uncordon':
    case 'power-on': {
      const nodes = n();
      return nodes === undefined ? undefined : { kind: name, nodes };
    }
    case 'takeover': {
      const nodes = n();
      return nodes === undefined
        ? undefined
        : { kind: 'takeover', nodes, supervisor: ev['supervisor'] as string };
    }
    case 'close-ticket': {
      const nodes = n();
      const conclusion = ev['conclusion'] as string | undefined;
      return nodes === undefined
        ? undefined
        : {
            kind: 'close-ticket',
            nodes,
            status: ev['status'] as 'resolved' | 'closed',
            by: ev['by'] as string,
            ...(conclusion === undefined ? {} : { conclusion }),
          };
    }
    case 'ib-flap': {
      const nodes = n();
      if (nodes === undefined) return undefined;
      const port = ibPort((ev['device'] as string | undefined) ?? 'mlx5_0', nodes);
      if (typeof port === 'string') {
        issues.add([...at, 'device'], port);
        return undefined;
      }
      const periodMs = ev['period'] as number;
      const downMs = ev['down'] as number;
      if (downMs <= 0 || downMs >= periodMs) {
        issues.add(
          [...at, 'down'],
          `the link must stay down for less than the period between flaps (down ${formatDurationMs(downMs)}, period ${formatDurationMs(periodMs)})`,
        );
        return undefined;
      }
      const persistence = ev['persistence'] as Persistence | undefined;
      if (
        persistence === 'transient' ||
        persistence === 'until-remedy' ||
        persistence === 'until-repair'
      ) {
        issues.add(
          [...at, 'persistence'],
          `a link flap ends with a recover (survives-reboot, the default) or a reboot (until-reboot), not ${persistence}`,
        );
        return undefined;
      }
      return {
        kind: 'ib-flap',
        nodes,
        device: port.hca,
        port: port.port,
        count: ev['count'] as number,
        periodMs,
        downMs,
        ...(persistence === undefined ? {} : { persistence }),
      };
    }
    case 'restart':
      return { kind: 'restart' };
    case 'leader-overlap':
      if ((forMs as number) <= 0) {
        issues.add([...at, 'for'], 'a leader overlap lasts some time (for: 30s, 2m …)');
        return undefined;
      }
      return { kind: 'leader-overlap', forMs: forMs as number };
    case 'label':
    case 'unlabel':
    case 'annotate':
    case 'unannotate': {
      const nodes = n();
      if (nodes === undefined) return undefined;
      const kind = name === 'label' || name === 'unlabel' ? 'label' : 'annotate';
      const value = name === 'label' || name === 'annotate' ? (ev['value'] as string) : null;
      return { kind, nodes, key: ev['key'] as string, value };
    }
    case 'metrics-outage':
    case 'api-outage':
      return { kind: name, forMs: forMs as number };
    case 'metrics-slow':
      return { kind: 'metrics-slow', latencyMs: ev['latency'] as number, forMs: forMs as number };
    case 'metrics-garbage':
    case 'metrics-partial':
      return { kind: name, count: ev['count'] as number };
    case 'exporter-down':
    case 'exporter-up': {
      const nodes = n();
      const signal = ev['signal'] as string;
      const usable = SIGNALS.filter((s) => exporterOfSignal(s) !== undefined);
      if (!(usable as readonly string[]).includes(signal)) {
        issues.add([...at, 'signal'], unknownName('exporter signal', signal, usable, true));
        return undefined;
      }
      if (nodes === undefined) return undefined;
      if (name === 'exporter-up') return { kind: 'exporter-up', nodes, signal };
      return { kind: 'exporter-down', nodes, signal, ...(forMs === undefined ? {} : { forMs }) };
    }
    case 'api-errors': {
      const methods = ev['methods'] as string[] | undefined;
      for (const [k, m] of (methods ?? []).entries()) {
        if (!(API_METHODS as readonly string[]).includes(m)) {
          issues.add([...at, 'methods', k], unknownName('API method', m, API_METHODS, true));
          return undefined;
        }
      }
      return {
        kind: 'api-errors',
        rate: ev['rate'] as number,
        forMs: forMs as number,
        ...(methods === undefined ? {} : { methods }),
      };
    }
    case 'api-fail-next': {
      const method = ev['method'] as string;
      if (!(API_METHODS as readonly string[]).includes(method)) {
        issues.add([...at, 'method'], unknownName('API method', method, API_METHODS, true));
        return undefined;
      }
      return { kind: 'api-fail-next', method, count: ev['count'] as number };
    }
    case 'jobs': {
      const nodes = n(true);
      if (nodes === undefined) return undefined;
      const b = {
        ...(ev['outcome'] === undefined
          ? {}
          : { outcome: ev['outcome'] as 'Succeeded' | 'Failed' }),
        ...(ev['exitCode'] === undefined ? {} : { exitCode: ev['exitCode'] as number }),
        ...(ev['duration'] === undefined ? {} : { durationMs: ev['duration'] as number }),
        ...(ev['pending'] === undefined ? {} : { pendingMs: ev['pending'] as number }),
      };
      const reset = ev['reset'] === true;
      if (reset === Object.keys(b).length > 0 || (!reset && Object.keys(b).length === 0)) {
        issues.add(
          at,
          'a "jobs" event sets outcome/exitCode/duration/pending, or "reset: true" alone',
        );
        return undefined;
      }
      const kind = ev['kind'] as (TimelineAction & { kind: 'jobs' })['job'];
      return {
        kind: 'jobs',
        job: kind,
        ...(nodes.length === 0 ? {} : { nodes }),
        ...(reset ? {} : { behaviour: b }),
      };
    }
  }
}

function resolveExpectations(
  items: FileData['expect'],
  fleet: FleetSpec,
  lineOf: (path: Path) => number,
  issues: Issues,
): Expectation[] {
  const out: Expectation[] = [];
  for (const [i, item] of items.entries()) {
    const at: Path = ['expect', i];
    const kind = EXPECT_KINDS.find((k) => k in item);
    if (kind === undefined) {
      issues.add(at, `an expectation starts with one of: ${EXPECT_KINDS.join(', ')}`);
      continue;
    }
    const parsed = EXPECT_SCHEMAS[kind].safeParse(item);
    if (!parsed.success) {
      issues.addZod(at, parsed.error);
      continue;
    }
    const spec = resolveExpectation(kind, parsed.data, fleet, at, issues);
    if (spec === undefined) continue;
    const given = (parsed.data as { description?: string }).description;
    out.push({ description: given ?? describeExpectation(spec), line: lineOf(at), spec });
  }
  return out;
}

function count(v: unknown, fallback: CountBound): CountBound {
  if (v === undefined) return fallback;
  if (typeof v === 'number') return { min: v, max: v };
  return v as CountBound;
}

function resolveExpectation(
  kind: string,
  e: Record<string, unknown>,
  fleet: FleetSpec,
  at: Path,
  issues: Issues,
): ExpectationSpec | undefined {
  const node = (key = 'node'): string | undefined | null => {
    const ref = e[key] as number | string | undefined;
    if (ref === undefined) return undefined;
    const name = resolveNode(ref, fleet);
    if (typeof name === 'string') return name;
    issues.add([...at, key], name.error);
    return null;
  };
  const action = (key: string, value: string): boolean => {
    if (ACTIONS.includes(value)) return true;
    issues.add([...at, key], unknownName('action', value, ACTIONS));
    return false;
  };
  const status =
    (e['status'] as StatusFilter | undefined) ?? (kind === 'never' ? 'started' : 'Succeeded');
  const window = {
    ...(e['after'] === undefined ? {} : { afterMs: e['after'] as number }),
    ...(e['by'] === undefined ? {} : { byMs: e['by'] as number }),
  };
  switch (kind) {
    case 'did':
    case 'never': {
      const name = e[kind] as string;
      const n = node();
      const cond = e['condition'] as string | undefined;
      const condition =
        cond === undefined ? undefined : resolveCondition(cond, [...at, 'condition'], issues);
      if (!action(kind, name) || n === null || (cond !== undefined && condition === undefined))
        return undefined;
      const bound = kind === 'did' ? count(e['count'], { min: 1 }) : { max: 0 };
      return {
        kind,
        action: name,
        ...(n === undefined ? {} : { node: n }),
        ...(condition === undefined ? {} : { condition }),
        status,
        count: bound,
        ...window,
      };
    }
    case 'sequence': {
      const n = node();
      const actions = e['sequence'] as string[];
      for (const [k, a] of actions.entries())
        if (!ACTIONS.includes(a))
          issues.add([...at, 'sequence', k], unknownName('action', a, ACTIONS));
      if (n === null || n === undefined || actions.some((a) => !ACTIONS.includes(a)))
        return undefined;
      return { kind: 'sequence', node: n, status, actions };
    }
    case 'metric': {
      const name = e['metric'] as string;
      const names = metricNames(createMetrics()).flatMap((m) => [m, `${m}_count`, `${m}_sum`]);
      if (!names.includes(name)) {
        issues.add([...at, 'metric'], unknownName('metric', name, names));
        return undefined;
      }
      return {
        kind: 'metric',
        name,
        labels: (e['labels'] as Record<string, string> | undefined) ?? {},
        value: count(e['value'], { min: 1 }),
      };
    }
    case 'touched': {
      const a = e['action'] as string | undefined;
      if (a !== undefined && !action('action', a)) return undefined;
      return {
        kind: 'touched',
        count: count(e['touched'], {}),
        ...(a === undefined ? {} : { action: a }),
      };
    }
    case 'healthyUntouched':
      return { kind: 'healthyUntouched' };
    case 'peak':
      return { kind: 'peak', series: e['peak'] as 'faulty', max: e['max'] as number };
    case 'breaker':
      return { kind: 'breaker', tripped: e['breaker'] === 'tripped' };
    case 'jobs':
    case 'events':
    case 'evictions':
    case 'noForceDelete': {
      const n = node();
      if (n === null) return undefined;
      const on = { ...(n === undefined ? {} : { node: n }), ...window };
      if (kind === 'jobs')
        return {
          kind,
          job: e['jobs'] as JobKind | 'any',
          count: count(e['count'], { min: 1 }),
          ...on,
        };
      if (kind === 'events') {
        const type = e['type'] as 'Normal' | 'Warning' | undefined;
        const message = e['message'] as string | undefined;
        return {
          kind,
          reason: e['events'] as string,
          count: count(e['count'], { min: 1 }),
          ...(type === undefined ? {} : { type }),
          ...(message === undefined ? {} : { message }),
          ...on,
        };
      }
      const namespace = e['namespace'] as string | undefined;
      const ns = namespace === undefined ? {} : { namespace };
      if (kind === 'noForceDelete') return { kind, ...ns, ...on };
      const result = e['result'] as 'evicted' | 'blocked' | 'gone' | undefined;
      return {
        kind: 'evictions',
        count: count(e['evictions'], {}),
        ...(result === undefined ? {} : { result }),
        ...ns,
        ...on,
      };
    }
    default:
      return resolveNodeState(e, node, at, issues);
  }
}

function resolveNodeState(
  e: Record<string, unknown>,
  node: () => string | undefined | null,
  at: Path,
  issues: Issues,
): ExpectationSpec | undefined {
  const n = node();
  if (n === null || n === undefined) return undefined;
  const t = e['ticket'] as
    'none' | null | { status?: string[]; supervisor?: string; condition?: string } | undefined;
  let ticket: (ExpectationSpec & { kind: 'node' })['ticket'];
  if (t === 'none' || t === null) ticket = null;
  else if (t !== undefined) {
    const statuses: readonly string[] = Object.values(TicketStatus);
    for (const [k, s] of (t.status ?? []).entries()) {
      if (!statuses.includes(s))
        issues.add(
          [...at, 'ticket', 'status', ...(t.status?.length === 1 ? [] : [k])],
          unknownName('ticket status', s, statuses, true),
        );
    }
    const condition =
      t.condition === undefined
        ? undefined
        : resolveCondition(t.condition, [...at, 'ticket', 'condition'], issues);
    if (
      (t.status ?? []).some((s) => !statuses.includes(s)) ||
      (t.condition !== undefined && condition === undefined)
    )
      return undefined;
    ticket = {
      ...(t.status === undefined ? {} : { status: t.status }),
      ...(t.supervisor === undefined ? {} : { supervisor: t.supervisor }),
      ...(condition === undefined ? {} : { condition }),
    };
  }
  const hasCheck = ['schedulable', 'ticket', 'power', 'reboots', 'annotations'].some((k) => k in e);
  if (!hasCheck) {
    issues.add(
      at,
      'a node expectation checks at least one of: schedulable, ticket, power, reboots, annotations',
    );
    return undefined;
  }
  const annotations = e['annotations'] as Record<string, string | null> | undefined;
  return {
    kind: 'node',
    node: n,
    ...(e['schedulable'] === undefined ? {} : { schedulable: e['schedulable'] as boolean }),
    ...(ticket === undefined ? {} : { ticket }),
    ...(e['power'] === undefined ? {} : { power: e['power'] as 'on' }),
    ...(e['reboots'] === undefined ? {} : { reboots: count(e['reboots'], {}) }),
    ...(annotations === undefined ? {} : { annotations }),
  };
}

/** `exactly 1`, `at least 2`, `1-3`, `at most 0`. */
export function describeCount(c: CountBound): string {
  if (c.min !== undefined && c.min === c.max) return `exactly ${c.min}`;
  if (c.min !== undefined && c.max !== undefined) return `${c.min}-${c.max}`;
  if (c.min !== undefined) return `at least ${c.min}`;
  if (c.max !== undefined) return `at most ${c.max}`;
  return 'any number';
}

/** Default words for an expectation. */
export function describeExpectation(s: ExpectationSpec): string {
  const on = (node: string | undefined): string =>
    node === undefined ? 'on any node' : `on ${node}`;
  const win = (x: { afterMs?: number; byMs?: number }): string =>
    `${x.afterMs === undefined ? '' : ` after ${formatDurationMs(x.afterMs)}`}${x.byMs === undefined ? '' : ` by ${formatDurationMs(x.byMs)}`}`;
  switch (s.kind) {
    case 'did':
      return `${s.action === 'any' ? 'steps' : s.action}${s.condition === undefined ? '' : ` for ${s.condition}`} ${s.status} ${on(s.node)}${win(s)}: ${describeCount(s.count)}`;
    case 'never':
      return `no ${s.action === 'any' ? 'step' : s.action}${s.condition === undefined ? '' : ` for ${s.condition}`} ${s.status} ${on(s.node)}${win(s)}`;
    case 'sequence':
      return `${s.node} steps ${s.status}: ${s.actions.length === 0 ? '(none)' : s.actions.join(' → ')}`;
    case 'metric': {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${v}"`)
        .join(',');
      return `${s.name}${labels === '' ? '' : `{${labels}}`}: ${describeCount(s.value)}`;
    }
    case 'touched':
      return `nodes touched${s.action === undefined ? '' : ` by ${s.action}`}: ${describeCount(s.count)}`;
    case 'healthyUntouched':
      return 'no step on a node without a fault or an operator action';
    case 'peak':
      return `peak ${s.series} at most ${s.max}`;
    case 'breaker':
      return s.tripped ? 'the storm breaker tripped' : 'the storm breaker never tripped';
    case 'jobs':
      return `${s.job === 'any' ? 'Jobs' : `${s.job} Jobs`} created ${on(s.node)}${win(s)}: ${describeCount(s.count)}`;
    case 'events':
      return `${s.type === undefined ? '' : `${s.type} `}Events ${s.reason === 'any' ? '' : `${s.reason} `}${on(s.node)}${s.message === undefined ? '' : ` saying "${s.message}"`}${win(s)}: ${describeCount(s.count)}`;
    case 'evictions':
      return `evictions${s.result === undefined ? '' : ` ${s.result}`}${s.namespace === undefined ? '' : ` in ${s.namespace}`} ${on(s.node)}${win(s)}: ${describeCount(s.count)}`;
    case 'noForceDelete':
      return `no pod force-deleted${s.namespace === undefined ? '' : ` in ${s.namespace}`} ${on(s.node)}${win(s)}`;
    case 'node': {
      const parts: string[] = [];
      if (s.schedulable !== undefined) parts.push(s.schedulable ? 'schedulable' : 'cordoned');
      if (s.ticket === null) parts.push('no ticket');
      else if (s.ticket !== undefined) {
        const t = s.ticket;
        parts.push(
          `ticket${t.status === undefined ? '' : ` ${t.status.join('|')}`}${t.supervisor === undefined ? '' : ` supervisor ${t.supervisor}`}${t.condition === undefined ? '' : ` for ${t.condition}`}`,
        );
      }
      if (s.power !== undefined) parts.push(`power ${s.power}`);
      if (s.reboots !== undefined) parts.push(`reboots ${describeCount(s.reboots)}`);
      for (const [k, v] of Object.entries(s.annotations ?? {}))
        parts.push(v === null ? `no annotation ${k}` : `annotation ${k}=${v}`);
      return `${s.node} ends ${parts.join(', ')}`;
    }
  }
}
