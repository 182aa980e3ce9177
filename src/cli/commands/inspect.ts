/**
 * `aegis inspect --prometheus URL [--node NAME] [--json] [--config FILE]`: one inspection of a
 * site's own Prometheus, no cluster needed. It runs the daemon's Inspector over the catalogue
 * (shaped by the config as the daemon shapes it) and prints, per node, the conditions seen
 * (name, device id, value, since) and the inputs that are stale, with why. How a user checks
 * Aegis against their exporters before trusting it. See docs/inspect.md.
 */
import type { Command } from '@commander-js/extra-typings';

import { CATALOGUE, SIGNAL_PRESENCE } from '../../catalogue/index.js';
import type { CatalogueEntry } from '../../catalogue/types.js';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { backgroundClock, type Clock } from '../../core/clock.js';
import { mapLimit } from '../../core/concurrency.js';
import { ErrorCode, HealError, errorMessage } from '../../core/errors.js';
import type { NodeInfo } from '../../core/types.js';
import { siteCatalogue } from '../../daemon.js';
import type { Observation } from '../../engine/condition-tracker.js';
import { Inspector, type Inspection } from '../../engine/inspector.js';
import type { InstantSample, MetricsSource } from '../../prom/metrics-source.js';
import { backendOptions, createPromClient } from '../../prom/prom-client.js';

/** One condition seen on a node. */
export interface InspectedCondition {
  readonly name: string;
  /** Device id ('' when node-wide). */
  readonly device: string;
  readonly value: number;
  /**
   * When the rule started returning it, as far as the probes tell (ISO 8601): the earliest of the
   * instants 1 min … 24 h back from which every probe saw it. null when not probed.
   */
  readonly since: string | null;
  /** True while it has held for less than its `for:` (the daemon would not act yet). */
  readonly pending: boolean;
}

/** One input that gave no usable data for a node. */
export interface StaleInput {
  /** The exporter (catalogue signal), or `kubernetes` for the node object. */
  readonly signal: string;
  readonly reason: string;
}

/** The report of one node. */
export interface NodeReport {
  readonly node: string;
  readonly conditions: readonly InspectedCondition[];
  readonly stale: readonly StaleInput[];
}

/** A whole inspection. */
export interface InspectReport {
  readonly atMs: number;
  readonly nodes: readonly NodeReport[];
  /** Rules asked (one query each, or shared), and how many queries failed. */
  readonly rules: number;
  readonly failures: number;
}

/** How far back `since` is probed, in minutes. */
const SINCE_PROBES_MIN = [1, 2, 5, 10, 15, 30, 60, 120, 360, 720, 1440];
const MIN = 60_000;

/**
 * The catalogue as the daemon shapes it from the config (createEngine): pod conditions scoped to
 * the system namespaces, the site's detection settings, the node-problem-detector mapping, then
 * the per-condition overrides.
 */
export function configuredCatalogue(config: Config): CatalogueEntry[] {
  return siteCatalogue(CATALOGUE, config);
}

/** What an inspection needs. */
export interface InspectOptions {
  readonly metrics: MetricsSource;
  readonly config: Config;
  readonly catalogue?: readonly CatalogueEntry[];
  /** Only this node. */
  readonly node?: string;
  /** Where Prometheus is, for messages. */
  readonly where?: string;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
}

/**
 * One inspection. Throws PROM_UNAVAILABLE naming `where` when Prometheus does not answer the
 * first query (the node list); any later failure is reported as stale inputs, never thrown.
 */
export async function inspectPrometheus(opts: InspectOptions): Promise<InspectReport> {
  const { config } = opts;
  const clock = opts.clock ?? backgroundClock;
  const signal = opts.signal ?? new AbortController().signal;
  const catalogue = opts.catalogue ?? configuredCatalogue(config);
  const errors = new Map<string, string>();
  const metrics: MetricsSource = {
    async query(expr, atMs, sig) {
      try {
        return await opts.metrics.query(expr, atMs, sig);
      } catch (err) {
        errors.set(expr, errorMessage(err));
        throw err;
      }
    },
  };
  const atMs = clock.now();
  const fleet = await readFleet(metrics, atMs, signal, opts.where ?? 'Prometheus');
  const names = opts.node === undefined ? fleet.names : [opts.node];
  const nodes = names.map((n) => fleet.info.get(n) ?? unknownNode(n));
  const inspector = new Inspector({
    catalogue,
    presence: SIGNAL_PRESENCE,
    metrics,
    clock,
    options: {
      concurrency: config.inspect.concurrency,
      queryTimeoutMs: config.prometheus.timeoutMs,
      compatibility: config.inspect.compatibility,
      slowRuleMaxPeriodMs: 0,
      intervalMs: 0,
      backgroundSlowRules: false,
      shareSelections: config.inspect.shareSelections,
      backgroundPresence: false,
    },
  });
  const insp = await inspector.inspect(nodes, signal);
  const wanted = new Set(names);
  const byName = new Map(catalogue.map((e) => [e.name, e]));
  const seen = dedupe(insp.observations.filter((o) => wanted.has(o.node)));
  const since = await probeSince(seen, byName, metrics, atMs, config.inspect.concurrency, signal);
  const shared = inspector.sharedSelections;
  const ruleError = (name: string): string => {
    const entry = byName.get(name);
    const own = entry === undefined ? undefined : errors.get(entry.expr);
    if (own !== undefined) return own;
    for (const [query, members] of shared) {
      if (members.includes(name)) return errors.get(query) ?? 'no answer';
    }
    return 'no answer';
  };
  const reports = names.map((node): NodeReport => {
    const conditions = (seen.get(node) ?? []).map((o): InspectedCondition => {
      const s = since.get(keyOf(o));
      const forMs = byName.get(o.condition)?.forMs ?? 0;
      return {
        name: o.condition,
        device: o.id,
        value: o.value,
        since: s === undefined ? null : new Date(s).toISOString(),
        pending: s !== undefined && atMs - s < forMs,
      };
    });
    return { node, conditions, stale: staleOf(insp, node, fleet, byName, ruleError) };
  });
  return {
    atMs,
    nodes: reports,
    rules: catalogue.filter((e) => e.expr !== '').length,
    failures: insp.failures,
  };
}

/** What Prometheus says of the node objects (through kube-state-metrics). */
interface Fleet {
  readonly names: readonly string[];
  readonly info: ReadonlyMap<string, NodeInfo>;
  /** True when the names come from kube_node_info (else from the exporters' series). */
  readonly fromKsm: boolean;
}

async function readFleet(
  metrics: MetricsSource,
  atMs: number,
  signal: AbortSignal,
  where: string,
): Promise<Fleet> {
  let listed: readonly InstantSample[];
  try {
    listed = await metrics.query('count by (node) (kube_node_info)', atMs, signal);
  } catch (err) {
    throw new HealError(
      ErrorCode.PromUnavailable,
      `cannot inspect ${where}: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
  let names = nodesOf(listed);
  const fromKsm = names.length > 0;
  if (!fromKsm) {
    // No kube-state-metrics: every node some exporter reports for.
    const presence = Object.values(SIGNAL_PRESENCE).filter((q): q is string => q !== null);
    const answers = await mapLimit(presence, 4, (q) => metrics.query(q, atMs, signal));
    names = [
      ...new Set(answers.flatMap((a) => (a.status === 'fulfilled' ? nodesOf(a.value) : []))),
    ].sort();
  }
  const [ready, cordoned] = await Promise.allSettled([
    metrics.query(
      'max by (node, status) (kube_node_status_condition{condition="Ready"} == 1)',
      atMs,
      signal,
    ),
    metrics.query('max by (node) (kube_node_spec_unschedulable == 1)', atMs, signal),
  ]);
  const readyOf = new Map<string, NodeInfo['ready']>();
  if (ready.status === 'fulfilled') {
    for (const s of ready.value) {
      const status = s.labels['status'];
      readyOf.set(
        s.labels['node'] ?? '',
        status === 'true' ? true : status === 'false' ? false : 'Unknown',
      );
    }
  }
  const cordon = new Set(cordoned.status === 'fulfilled' ? nodesOf(cordoned.value) : []);
  const info = new Map<string, NodeInfo>();
  for (const name of names) {
    const r = readyOf.get(name);
    if (r === undefined) continue;
    info.set(name, { ...unknownNode(name), ready: r, unschedulable: cordon.has(name) });
  }
  return { names, info, fromKsm };
}

function nodesOf(samples: readonly InstantSample[]): string[] {
  return [...new Set(samples.map((s) => s.labels['node'] ?? '').filter((n) => n !== ''))].sort();
}

/** A node whose object Prometheus does not show: read as Ready and not cordoned (and stale). */
function unknownNode(name: string): NodeInfo {
  return {
    name,
    resourceVersion: '',
    ready: true,
    unschedulable: false,
    labels: {},
    annotations: {},
    taints: [],
  };
}

const keyOf = (o: Observation): string => `${o.node}\u0000${o.condition}\u0000${o.id}`;

/** Observations per node, one per (condition, device), in catalogue order. */
function dedupe(observations: readonly Observation[]): Map<string, Observation[]> {
  const out = new Map<string, Observation[]>();
  const keys = new Set<string>();
  for (const o of observations) {
    const k = keyOf(o);
    if (keys.has(k)) continue;
    keys.add(k);
    let list = out.get(o.node);
    if (list === undefined) out.set(o.node, (list = []));
    list.push(o);
  }
  return out;
}

/**
 * Since when each observation's rule returns it: the rule is asked again at instants 1 min …
 * 24 h back (one fleet-wide query per rule and instant, only for the rules that fired, and only
 * while some of their series are still there); a series' `since` is the earliest instant from
 * which every probe saw it.
 */
async function probeSince(
  seen: ReadonlyMap<string, readonly Observation[]>,
  byName: ReadonlyMap<string, CatalogueEntry>,
  metrics: MetricsSource,
  atMs: number,
  concurrency: number,
  signal: AbortSignal,
): Promise<Map<string, number>> {
  const byRule = new Map<string, Observation[]>();
  for (const list of seen.values()) {
    for (const o of list) {
      const entry = byName.get(o.condition);
      if (entry === undefined) continue;
      const expr = entry.expr !== '' ? entry.expr : (entry.ksmExpr ?? '');
      if (expr === '') continue;
      let group = byRule.get(expr);
      if (group === undefined) byRule.set(expr, (group = []));
      group.push(o);
    }
  }
  const since = new Map<string, number>();
  await mapLimit([...byRule], concurrency, async ([expr, group]) => {
    const entry = byName.get(group[0]?.condition ?? '');
    let open = group.map((o) => ({ o, key: keyOf(o) }));
    for (const o of open) since.set(o.key, atMs);
    for (const minutes of SINCE_PROBES_MIN) {
      if (open.length === 0) break;
      const t = atMs - minutes * MIN;
      let samples: readonly InstantSample[];
      try {
        samples = await metrics.query(expr, t, signal);
      } catch {
        break;
      }
      const there = new Set(
        samples.map((s) => {
          const id =
            entry === undefined || entry.deviceLabel === ''
              ? ''
              : (s.labels[entry.deviceLabel] ?? '');
          return `${s.labels['node'] ?? s.labels['Hostname'] ?? ''}\u0000${group[0]?.condition ?? ''}\u0000${id}`;
        }),
      );
      open = open.filter((x) => {
        if (!there.has(x.key)) return false;
        since.set(x.key, t);
        return true;
      });
    }
  });
  return since;
}

/** The stale inputs of one node, with why. */
function staleOf(
  insp: Inspection,
  node: string,
  fleet: Fleet,
  byName: ReadonlyMap<string, CatalogueEntry>,
  ruleError: (name: string) => string,
): StaleInput[] {
  const out: StaleInput[] = [];
  if (!fleet.info.has(node)) {
    out.push({
      signal: 'kubernetes',
      reason: fleet.fromKsm
        ? 'the node is not in kube_node_info: its Ready condition and cordon are unknown (read as Ready)'
        : 'no kube_node_info series at all: the node list comes from the exporters, Ready and cordon are unknown',
    });
  }
  for (const s of insp.failedSignals) {
    out.push({ signal: s, reason: 'its presence query failed: unknown whether it reports' });
  }
  for (const s of insp.staleByNode.get(node) ?? []) {
    if (insp.failedSignals.has(s)) continue;
    out.push({
      signal: s,
      reason:
        'exporter silent on the node: no series of it for the node, or its scrape fails (up 0)',
    });
  }
  for (const c of insp.failedCollectorsByNode.get(node) ?? []) {
    const slash = c.indexOf('/');
    out.push({
      signal: slash < 0 ? c : c.slice(0, slash),
      reason: `collector ${slash < 0 ? c : c.slice(slash + 1)} failed its last collection (node_scrape_collector_success 0)`,
    });
  }
  for (const name of [...insp.failedRules].sort()) {
    out.push({
      signal: byName.get(name)?.signal ?? 'prometheus',
      reason: `query for ${name} failed: ${ruleError(name)}`,
    });
  }
  return out;
}

/** The text report. */
export function formatReport(report: InspectReport, where: string): string {
  const lines = [
    `${where} at ${new Date(report.atMs).toISOString()}: ${String(report.nodes.length)} node(s), ` +
      `${String(report.rules)} rules, ${String(report.failures)} failed queries`,
  ];
  for (const n of report.nodes) {
    lines.push(n.node);
    if (n.conditions.length === 0 && n.stale.length === 0) lines.push('  healthy');
    for (const c of n.conditions) {
      const device = c.device === '' ? '' : `  device=${c.device}`;
      const since = c.since === null ? '' : `  since ${c.since}`;
      lines.push(
        `  ${c.name}${device}  value=${String(c.value)}${since}${c.pending ? '  (pending)' : ''}`,
      );
    }
    for (const s of n.stale) lines.push(`  stale ${s.signal}: ${s.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The JSON report: an array of `{node, conditions: [{name, device, value, since, pending}], stale}`. */
export function toJson(report: InspectReport): string {
  return `${JSON.stringify(report.nodes, null, 2)}\n`;
}

/** The program's stdout (tests capture it through `runCli`'s output). */
function writeOutOf(cmd: {
  configureOutput(): { writeOut?: (text: string) => void };
}): (text: string) => void {
  return cmd.configureOutput().writeOut ?? ((text) => process.stdout.write(text));
}

/** Registers `aegis inspect`. */
export function registerInspectCommand(program: Command): void {
  program
    .command('inspect')
    .description(
      'Inspect once against a Prometheus (no cluster needed): conditions seen and stale inputs per node',
    )
    .option('--prometheus <url>', 'Prometheus base URL (default: prometheus.url of the config)')
    .option('--node <name>', 'only this node')
    .option('--json', 'print JSON: [{node, conditions: [{name, device, value, since}], stale}]')
    .option('--config <file>', 'config YAML (prometheus auth, conditions, nodeProblemDetector, …)')
    .action(async (options, command) => {
      const overrides: Record<string, unknown> = {};
      if (options.prometheus !== undefined) overrides['prometheus.url'] = options.prometheus;
      const config = loadConfig({
        ...(options.config === undefined ? {} : { file: options.config }),
        env: process.env,
        overrides,
      });
      const p = config.prometheus;
      const metrics = createPromClient({
        url: p.url,
        ...(p.bearerTokenFile === undefined ? {} : { bearerTokenFile: p.bearerTokenFile }),
        ...(p.caFile === undefined ? {} : { caFile: p.caFile }),
        insecureSkipVerify: p.insecureSkipVerify,
        allowInsecureBearerToken: p.allowInsecureBearerToken,
        maxResponseBytes: p.maxResponseBytes,
        ...backendOptions(p),
      });
      const where = `Prometheus ${p.url}`;
      const report = await inspectPrometheus({
        metrics,
        config,
        where,
        ...(options.node === undefined ? {} : { node: options.node }),
      });
      const out = options.json === true ? toJson(report) : formatReport(report, where);
      writeOutOf(command)(out);
    });
}
