/**
 * The store's side of a cycle (`node --import tsx bench/store.ts --nodes 1000`): what one
 * inspection cycle costs Prometheus, by where the rules are evaluated.
 *
 * - The simulated fleet's exporters, rendered by the simulator (`exposition`, the text
 *   `startExporterServer` serves) once at start and served from memory by a child process, split
 *   over `--shards` scrape targets per exporter: the families the presence queries and the rules
 *   asked every 1 s cycle read (`--families cycle`, ~190 series per node), or every family any rule
 *   reads (`--families rules`, ~640 per node). Rendering once keeps the exporters' own CPU (a core
 *   at 1,000 nodes every second) off this 2-core machine; the store's work is the same.
 * - A real Prometheus (Debian 2.42) scraping them every `--scrape` (1 s; 10 s at 10,000 nodes,
 *   which this machine cannot ingest every second).
 * - The daemon's real `Inspector` with the daemon's options (`inspectorOptions` of the shipped
 *   defaults at a 1 s interval) over the HTTP `PromClient`, one cycle every 1 s.
 *
 * Per mode, Prometheus's CPU (utime + stime of its process) over `--cycles` cycles, minus what
 * scraping alone costs it over the same time (a baseline window with no query and no rule before
 * the modes, checked again after them): the store's CPU seconds per cycle. Also each query's
 * latency, the rule groups' evaluation time (Prometheus's own account), the inspector's CPU in
 * this process, and the load average at start and end. Prints a table and one JSON document.
 *
 * Modes: `direct` (every rule's PromQL, as the daemon asks by default), `compat` (the recording
 * rules at 1 s, read by `inspect.compatibility: true`, which reads them besides the direct
 * queries), `recorded-1s` (`inspect.ruleSource: recorded`, every rule recorded at 1 s), `recorded`
 * (`aegis rules --tiered`: each rule at its own period, the XID rules left to the daemon's shared
 * query; presence every 5 s). After the live modes, with scraping stopped, every query is run alone
 * on the store and each mode's CPU per 1 s cycle is accounted from each query's CPU and how often
 * the mode runs it (`--no-account` skips it). A benchmark, not a test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { CATALOGUE, metricNamesOf, SIGNAL_PRESENCE } from '../src/catalogue/index.js';
import { summarize, type Summary } from '../src/bench/stats.js';
import { systemClock } from '../src/core/clock.js';
import { parseDurationMs } from '../src/core/duration.js';
import { errorMessage } from '../src/core/errors.js';
import type { NodeInfo } from '../src/core/types.js';
import { ConfigSchema } from '../src/config/schema.js';
import { inspectorOptions } from '../src/engine/controller.js';
import {
  COMPAT_METRIC,
  HEARTBEAT_QUERY,
  Inspector,
  rulePeriodMs,
  type InspectorOptions,
} from '../src/engine/inspector.js';
import { createPromClient } from '../src/prom/prom-client.js';
import type { InstantSample, MetricsSource } from '../src/prom/metrics-source.js';
import {
  generateRules,
  sharedInRecordedMode,
  tieredPeriodMs,
  toRecordingExpr,
} from '../src/prom/rules.js';
import { exposition } from '../src/sim/exposition.js';
import { SERVED_EXPORTERS } from '../src/sim/exporter-server.js';
import { createSimWorld } from '../src/sim/sim-world.js';
import {
  simExporterTargets,
  startPrometheus,
  waitFor,
  type PrometheusServer,
} from '../test/helpers/prometheus-harness.js';
import { logger, machine, procStats, XID_FAULTS } from './stack.js';

const MODES = ['direct', 'compat', 'recorded-1s', 'recorded'] as const;
/** `inspect.presenceIntervalMs` of the recorded mode (s). */
const PRESENCE_PERIOD_S = 5;
type Mode = (typeof MODES)[number];
type Families = 'cycle' | 'rules';

interface Options {
  readonly nodes: number;
  readonly cycles: number;
  readonly baselineS: number;
  readonly scrapeMs: number;
  readonly shards: number;
  readonly modes: readonly Mode[];
  readonly families: Families;
  readonly json: boolean;
  /** Run the per-query accounting after the live modes. */
  readonly account: boolean;
}

const log = logger('store');

function parseOptions(): Options & { serve: boolean } {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '1000' },
      cycles: { type: 'string', default: '30' },
      baseline: { type: 'string', default: '30' },
      scrape: { type: 'string' },
      shards: { type: 'string', default: '10' },
      modes: { type: 'string', default: MODES.join(',') },
      families: { type: 'string', default: 'cycle' },
      json: { type: 'boolean', default: false },
      serve: { type: 'boolean', default: false },
      'no-account': { type: 'boolean', default: false },
    },
  });
  const int = (v: string, name: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: "${v}" is not a whole number`);
    return n;
  };
  const nodes = int(values.nodes, 'nodes');
  const modes = values.modes.split(',').map((m) => {
    const mode = MODES.find((x) => x === m.trim());
    if (mode === undefined) throw new Error(`--modes: "${m}" is not one of ${MODES.join(', ')}`);
    return mode;
  });
  const families = values.families;
  if (families !== 'cycle' && families !== 'rules')
    throw new Error(`--families: "${families}" is not cycle or rules`);
  return {
    nodes,
    cycles: int(values.cycles, 'cycles'),
    baselineS: int(values.baseline, 'baseline'),
    scrapeMs:
      values.scrape === undefined
        ? nodes > 2000
          ? 10_000
          : 1000
        : parseDurationMs(values.scrape, '--scrape'),
    shards: int(values.shards, 'shards'),
    modes,
    families,
    json: values.json,
    serve: values.serve,
    account: !values['no-account'],
  };
}

/** Metric families served: what presence and the every-cycle rules read, or every rule. */
function servedNames(families: Families): Set<string> {
  const every = CATALOGUE.filter(
    (e) => e.expr !== '' && (families === 'rules' || rulePeriodMs(e, 30_000) <= 1000),
  );
  return new Set([
    ...Object.values(SIGNAL_PRESENCE).flatMap((e) => (e === null ? [] : metricNamesOf(e))),
    ...every.flatMap((e) => metricNamesOf(e.expr)),
  ]);
}

function simWorld(nodes: number) {
  const world = createSimWorld({ nodes, seed: 7, catalogue: CATALOGUE, clock: systemClock });
  // 1 % of the nodes with an XID fault, so the rules' answers are not all empty.
  const names = world.fleet.nodes.map((n) => n.name);
  const faults = Math.max(1, Math.floor(nodes / 100));
  for (let i = 0; i < faults; i++) {
    const entry = XID_FAULTS[i % XID_FAULTS.length];
    const node = names[Math.floor(((i + 0.5) * names.length) / faults)];
    if (entry !== undefined && node !== undefined)
      world.faults.injectFault({ condition: entry.name, node, atMs: Date.now() - 60_000 });
  }
  return world;
}

/**
 * Child process: renders each exporter's document per shard once and serves it
 * (`/metrics/<exporter>?shard=i&shards=n`, as startExporterServer does); prints `READY <url>`.
 */
async function serve(o: Options): Promise<void> {
  const world = simWorld(o.nodes);
  const keep = servedNames(o.families);
  const store = world.store;
  const served = new Proxy(store, {
    get(target, prop) {
      if (prop === 'families') return () => target.families().filter((f) => keep.has(f.name));
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
  world.sync();
  const docs = new Map<string, Buffer>();
  let bytes = 0;
  let lines = 0;
  for (const exporter of SERVED_EXPORTERS) {
    for (let i = 0; i < o.shards; i++) {
      const text = [
        ...exposition(served, exporter, Date.now(), { shard: { index: i, of: o.shards } }),
      ].join('');
      const buf = Buffer.from(text);
      docs.set(`${exporter}/${String(i)}`, buf);
      bytes += buf.length;
      for (const line of text.split('\n')) if (line !== '' && !line.startsWith('#')) lines++;
    }
  }
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const exporter = /^\/metrics\/([a-z]+)$/.exec(url.pathname)?.[1] ?? '';
    const doc = docs.get(`${exporter}/${url.searchParams.get('shard') ?? ''}`);
    if (doc === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(doc);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  process.stdout.write(
    `READY http://127.0.0.1:${String(port)} ${String(lines)} ${String(bytes)}\n`,
  );
  process.on('SIGTERM', () => {
    server.close();
    process.exit(0);
  });
}

/** Starts the serving child; resolves with its URL and the series it serves. */
async function startServer(
  o: Options,
): Promise<{ child: ChildProcess; url: string; series: number; bytes: number }> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      self,
      '--serve',
      '--nodes',
      String(o.nodes),
      '--shards',
      String(o.shards),
      '--families',
      o.families,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => {
      reject(new Error(`exporter child exited (${String(code)}) before it was ready`));
    });
  });
  const [, url = '', series = '0', bytes = '0'] = first.split(' ');
  return { child, url, series: Number(series), bytes: Number(bytes) };
}

/** A MetricsSource that times every query (ms, by expression) and counts those in flight. */
class TimedSource implements MetricsSource {
  readonly times = new Map<string, number[]>();
  inflight = 0;
  recording = false;
  readonly #inner: MetricsSource;
  constructor(inner: MetricsSource) {
    this.#inner = inner;
  }
  async query(expr: string, atMs: number, signal: AbortSignal): Promise<readonly InstantSample[]> {
    this.inflight++;
    const t = performance.now();
    try {
      return await this.#inner.query(expr, atMs, signal);
    } finally {
      this.inflight--;
      if (this.recording) {
        const list = this.times.get(expr) ?? [];
        list.push(performance.now() - t);
        this.times.set(expr, list);
      }
    }
  }
}

/** What one mode cost. */
interface ModeResult {
  readonly mode: Mode;
  readonly cycles: number;
  readonly seconds: number;
  /** Prometheus CPU over the window, scrapes included. */
  readonly promCpuS: number;
  /** Prometheus CPU per cycle, scraping's share (baseline rate × window) taken out. */
  readonly storeCpuPerCycleS: number;
  /** The same, in % of one core at one cycle per second. */
  readonly storeCorePercent: number;
  /** Queries the daemon issued per cycle (mean). */
  readonly queriesPerCycle: number;
  /** Latency of every query answered in the window (ms). */
  readonly queryMs: Summary;
  /** Summed latency of the queries per cycle (ms). */
  readonly queryMsPerCycle: number;
  /** Slowest queries: p50 ms and a name. */
  readonly slowest: { name: string; p50Ms: number; count: number }[];
  /** Wall time of `inspect()` (ms). */
  readonly cycleMs: Summary;
  /** This process's CPU per cycle (the inspector: HTTP, JSON, folding the answers), ms. */
  readonly inspectorCpuMsPerCycle: number;
  /** Rule groups: Prometheus's evaluation time per second of wall time (s/s), groups loaded. */
  readonly ruleEvalSPerS: number;
  readonly ruleGroups: number;
  readonly costliestRules: { name: string; sPerS: number }[];
  /** Rules stale at the end of the window (recorded modes: heartbeat missing or old). */
  readonly staleRules: number;
  readonly observations: number;
  readonly errors: readonly string[];
}

interface RuleGroupStatus {
  name: string;
  interval: number;
  evaluationTime: number;
  rules: { evaluationTime: number; labels?: Record<string, string> }[];
}

/** The costliest recording rules: evaluation seconds per second, by condition. */
function costliestRules(groups: readonly RuleGroupStatus[]): { name: string; sPerS: number }[] {
  return groups
    .flatMap((g) =>
      g.rules.map((r) => ({
        name: `${r.labels?.['condition'] ?? '?'} (${String(g.interval)} s)`,
        sPerS: Number((r.evaluationTime / g.interval).toFixed(4)),
      })),
    )
    .sort((a, b) => b.sPerS - a.sPerS)
    .slice(0, 8);
}

async function ruleGroups(prom: PrometheusServer): Promise<RuleGroupStatus[]> {
  const res = await fetch(`${prom.url}/api/v1/rules?type=record`);
  const body = (await res.json()) as { data: { groups: RuleGroupStatus[] } };
  return body.data.groups;
}

async function promCpuS(prom: PrometheusServer): Promise<number> {
  return (await procStats(prom.pid)).cpuS;
}

/** Loads `text` as the only rule file and waits until Prometheus lists `groups` groups. */
async function loadRules(
  prom: PrometheusServer,
  file: string,
  text: string,
  groups: number,
): Promise<void> {
  await writeFile(file, text);
  await prom.reload();
  await waitFor(async () => (await ruleGroups(prom)).length === groups, 30_000, {
    what: `${String(groups)} rule groups loaded`,
    intervalMs: 200,
  });
}

function groupCount(text: string): number {
  return (text.match(/^ {2}- name: /gm) ?? []).length;
}

function rulesOf(mode: Mode): string {
  switch (mode) {
    case 'direct':
      return 'groups: []\n';
    case 'compat':
      return generateRules(CATALOGUE, { intervalMs: 1000 }).recording;
    case 'recorded-1s':
      return generateRules(CATALOGUE, { intervalMs: 1000, tiered: { slowRuleMaxPeriodMs: 0 } })
        .recording;
    case 'recorded':
      return generateRules(CATALOGUE, { intervalMs: 1000, tiered: {} }).recording;
  }
}

function optionsOf(mode: Mode): InspectorOptions {
  const inspect = {
    intervalMs: '1s',
    ...(mode === 'compat' ? { compatibility: true } : {}),
    ...(mode.startsWith('recorded') ? { ruleSource: 'recorded' } : {}),
    ...(mode === 'recorded' ? { presenceIntervalMs: `${String(PRESENCE_PERIOD_S)}s` } : {}),
  };
  return inspectorOptions(ConfigSchema.parse({ inspect }));
}

/** Prometheus's CPU per second with no query and no rule, over `seconds`. */
async function baseline(prom: PrometheusServer, seconds: number): Promise<number> {
  const c0 = await promCpuS(prom);
  const t0 = performance.now();
  await delay(seconds * 1000);
  const c1 = await promCpuS(prom);
  return (c1 - c0) / ((performance.now() - t0) / 1000);
}

/** Short name of a query for the table. */
function nameOf(expr: string): string {
  if (expr === COMPAT_METRIC) return COMPAT_METRIC;
  if (expr === HEARTBEAT_QUERY) return HEARTBEAT_QUERY;
  for (const [signal, e] of Object.entries(SIGNAL_PRESENCE))
    if (e === expr) return `presence ${signal}`;
  const rule = CATALOGUE.find((e) => e.expr === expr);
  if (rule !== undefined) return rule.name;
  return expr.length > 60 ? `${expr.slice(0, 57)}...` : expr;
}

async function runMode(
  o: Options,
  mode: Mode,
  prom: PrometheusServer,
  ruleFile: string,
  nodes: readonly NodeInfo[],
  baselineRate: number,
): Promise<ModeResult> {
  const rules = rulesOf(mode);
  await loadRules(prom, ruleFile, rules, groupCount(rules));
  const source = new TimedSource(createPromClient({ url: prom.url }));
  const inspector = new Inspector({
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    metrics: source,
    clock: systemClock,
    options: optionsOf(mode),
  });
  const ctl = new AbortController();
  const cycle = async (): Promise<Awaited<ReturnType<Inspector['inspect']>>> =>
    inspector.inspect(nodes, ctl.signal);
  // Warm-up: the recordings of every group exist (their first evaluation), the first presence
  // answer is in, the inspector's state is built.
  // In direct mode the first cycle asks every slow rule: wait until each has answered and the
  // burst is over, as in a daemon that has been running.
  const warmUntil = Date.now() + (mode === 'recorded' ? 35_000 : 10_000);
  let last = await cycle();
  while (Date.now() < warmUntil || last.failedRules.size > 0) {
    if (Date.now() > warmUntil + 60_000) break;
    await delay(1000);
    last = await cycle();
  }
  log(
    `${mode}: warm (${String(last.failedRules.size)} stale rules); measuring ${String(o.cycles)} cycles`,
  );
  source.recording = true;
  const cpu0 = process.cpuUsage();
  const c0 = await promCpuS(prom);
  const t0 = performance.now();
  const cycleMs: number[] = [];
  let queries = 0;
  let observations = 0;
  const errors = new Set<string>();
  for (let i = 0; i < o.cycles; i++) {
    const start = performance.now();
    last = await cycle();
    cycleMs.push(performance.now() - start);
    queries += last.queries;
    observations = last.observations.length;
    for (const e of last.errors) errors.add(e);
    const next = t0 + (i + 1) * 1000;
    await delay(Math.max(0, next - performance.now()));
  }
  const c1 = await promCpuS(prom);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  source.recording = false;
  const groups1 = await ruleGroups(prom);
  ctl.abort(new Error('mode over'));
  await waitFor(() => source.inflight === 0, 30_000, { what: 'queries settled', intervalMs: 100 });
  const promCpu = c1 - c0;
  const storeCpuPerCycleS = (promCpu - baselineRate * seconds) / o.cycles;
  const all = [...source.times.values()].flat();
  const evalSPerS = groups1.reduce((s, g) => s + g.evaluationTime / g.interval, 0);
  return {
    mode,
    cycles: o.cycles,
    seconds: Number(seconds.toFixed(1)),
    promCpuS: Number(promCpu.toFixed(2)),
    storeCpuPerCycleS: Number(storeCpuPerCycleS.toFixed(3)),
    storeCorePercent: Number(((storeCpuPerCycleS / 1) * 100).toFixed(1)),
    queriesPerCycle: Number((queries / o.cycles).toFixed(1)),
    queryMs: summarize(all, 1),
    queryMsPerCycle: Number((all.reduce((s, x) => s + x, 0) / o.cycles).toFixed(0)),
    slowest: [...source.times]
      .map(([expr, ms]) => ({
        name: nameOf(expr),
        p50Ms: summarize(ms, 1).p50,
        count: ms.length,
      }))
      .sort((a, b) => b.p50Ms - a.p50Ms)
      .slice(0, 6),
    cycleMs: summarize(cycleMs, 0),
    inspectorCpuMsPerCycle: Number(((cpu.user + cpu.system) / 1000 / o.cycles).toFixed(1)),
    ruleEvalSPerS: Number(evalSPerS.toFixed(3)),
    ruleGroups: groups1.length,
    costliestRules: costliestRules(groups1),
    staleRules: last.failedRules.size,
    observations,
    errors: [...errors].slice(0, 5),
  };
}

/** One query's CPU on the store, scrapes stopped (s per evaluation). */
interface QueryCost {
  readonly name: string;
  readonly cpuS: number;
}

/** Per mode: the store's CPU per 1 s cycle from each query's CPU and how often it runs. */
interface Accounted {
  readonly mode: 'direct' | 'recorded-1s' | 'recorded';
  readonly storeCpuPerCycleS: number;
  /** The largest shares (s per cycle). */
  readonly top: { name: string; sPerCycle: number }[];
}

/**
 * Each query the modes run, evaluated alone on the store with scraping stopped (so nothing else
 * runs there), at an instant of the scraped data: the store's CPU per evaluation, then per mode the
 * sum of each query's CPU times how often that mode runs it in a 1 s cycle. Robust on a busy
 * machine, where the live figures are capped by the CPU the store can get.
 */
async function account(
  prom: PrometheusServer,
  atMs: number,
): Promise<{ costs: QueryCost[]; modes: Accounted[] }> {
  const client = createPromClient({ url: prom.url });
  const signal = new AbortController().signal;
  const idle0 = await promCpuS(prom);
  await delay(3000);
  const idleRate = ((await promCpuS(prom)) - idle0) / 3;
  const cache = new Map<string, number>();
  const cost = async (expr: string): Promise<number> => {
    const known = cache.get(expr);
    if (known !== undefined) return known;
    let reps = 0;
    const c0 = await promCpuS(prom);
    const t0 = performance.now();
    let used = 0;
    while (reps < 3 && (reps === 0 || used < 0.3)) {
      await client.query(expr, atMs, signal);
      reps++;
      used = (await promCpuS(prom)) - c0 - (idleRate * (performance.now() - t0)) / 1000;
    }
    const perRun = Math.max(0, used / reps);
    cache.set(expr, perRun);
    return perRun;
  };
  const direct = new Inspector({
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    metrics: client,
    clock: systemClock,
    options: optionsOf('direct'),
  });
  const presence = direct.queries.filter(
    (q) => !direct.cycleQueries.includes(q) && !CATALOGUE.some((e) => e.expr === q),
  );
  const opts = inspectorOptions(ConfigSchema.parse({ inspect: { intervalMs: '1s' } }));
  const slowMax = opts.slowRuleMaxPeriodMs ?? 0;
  const shares = {
    direct: [] as { name: string; sPerCycle: number }[],
    'recorded-1s': [] as { name: string; sPerCycle: number }[],
    recorded: [] as { name: string; sPerCycle: number }[],
  };
  const costs: QueryCost[] = [];
  for (const q of presence) {
    const c = await cost(q);
    costs.push({ name: nameOf(q), cpuS: c });
    shares.direct.push({ name: nameOf(q), sPerCycle: c });
    shares['recorded-1s'].push({ name: nameOf(q), sPerCycle: c });
    shares.recorded.push({ name: nameOf(q), sPerCycle: c / PRESENCE_PERIOD_S });
  }
  for (const q of direct.cycleQueries.filter((x) => !CATALOGUE.some((e) => e.expr === x))) {
    const c = await cost(q); // the shared selections: every cycle in every mode
    costs.push({ name: nameOf(q), cpuS: c });
    for (const list of Object.values(shares)) list.push({ name: nameOf(q), sPerCycle: c });
  }
  const sharedNames = new Set([...direct.sharedSelections.values()].flat());
  const tieredShared = sharedInRecordedMode(CATALOGUE, { intervalMs: 1000, tiered: {} });
  for (const e of CATALOGUE) {
    if (e.expr === '') continue;
    const c = await cost(e.expr);
    const rec = tieredShared.has(e.name) ? 0 : await cost(toRecordingExpr(e));
    costs.push({ name: e.name, cpuS: c });
    if (!sharedNames.has(e.name)) {
      const period = Math.max(1, rulePeriodMs(e, slowMax) / 1000);
      shares.direct.push({ name: e.name, sPerCycle: c / period });
    }
    shares['recorded-1s'].push({ name: `${e.name} (recorded)`, sPerCycle: rec });
    shares.recorded.push({
      name: `${e.name} (recorded)`,
      sPerCycle: rec / (tieredPeriodMs(e, 1000) / 1000),
    });
  }
  const modes = (Object.entries(shares) as [Accounted['mode'], typeof shares.direct][]).map(
    ([mode, list]) => ({
      mode,
      storeCpuPerCycleS: Number(list.reduce((s, x) => s + x.sPerCycle, 0).toFixed(3)),
      top: list
        .sort((a, b) => b.sPerCycle - a.sPerCycle)
        .slice(0, 6)
        .map((x) => ({ name: x.name, sPerCycle: Number(x.sPerCycle.toFixed(3)) })),
    }),
  );
  return {
    costs: costs
      .sort((a, b) => b.cpuS - a.cpuS)
      .map((c) => ({ name: c.name, cpuS: Number(c.cpuS.toFixed(3)) })),
    modes,
  };
}

/** Stops every scrape (the data stays): the accounting runs with nothing else on the store. */
async function stopScrapes(prom: PrometheusServer): Promise<void> {
  const file = join(prom.dir, 'prometheus.yml');
  const config = parseYaml(await readFile(file, 'utf8')) as Record<string, unknown>;
  config['scrape_configs'] = [];
  await writeFile(file, stringifyYaml(config));
  await prom.reload();
}

function table(o: Options, results: readonly ModeResult[]): string {
  const head = [
    'Mode',
    'Store CPU per cycle',
    '% of a core at 1 cycle/s',
    'Rule evaluation (s per s)',
    'Queries per cycle',
    'Query latency p50 / p99',
    'Summed query time per cycle',
    'Slowest query (p50)',
    'Inspector CPU per cycle',
    'Stale rules',
  ];
  const rows = results.map((r) => [
    r.mode,
    `${r.storeCpuPerCycleS.toFixed(3)} s`,
    `${r.storeCorePercent.toFixed(1)} %`,
    r.ruleEvalSPerS.toFixed(3),
    String(r.queriesPerCycle),
    `${String(r.queryMs.p50)} / ${String(r.queryMs.p99)} ms`,
    `${String(r.queryMsPerCycle)} ms`,
    r.slowest[0] === undefined ? '' : `${r.slowest[0].name} ${String(r.slowest[0].p50Ms)} ms`,
    `${r.inspectorCpuMsPerCycle.toFixed(1)} ms`,
    String(r.staleRules),
  ]);
  return [
    `${String(o.nodes)} nodes, scrape every ${String(o.scrapeMs / 1000)} s, ${String(o.cycles)} cycles per mode`,
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

async function main(): Promise<void> {
  const o = parseOptions();
  if (o.serve) {
    await serve(o);
    return;
  }
  const loadStart = loadavg().map((x) => Number(x.toFixed(2)));
  const startedAt = new Date().toISOString();
  log(`${String(o.nodes)} nodes: rendering the exporters (${o.families} families)`);
  const dir = await mkdtemp(join(tmpdir(), 'aegis-store-bench-'));
  const ruleFile = join(dir, 'rules.yaml');
  await writeFile(ruleFile, 'groups: []\n');
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  let prom: PrometheusServer | undefined;
  try {
    server = await startServer(o);
    log(
      `serving ${String(server.series)} series (${(server.bytes / 2 ** 20).toFixed(0)} MiB) per scrape round at ${server.url}`,
    );
    const world = createSimWorld({
      nodes: o.nodes,
      seed: 7,
      catalogue: CATALOGUE,
      clock: systemClock,
    });
    const nodes = await world.cluster.listNodes(new AbortController().signal);
    prom = await startPrometheus({
      scrapeTargets: simExporterTargets(server.url, o.shards),
      scrapeIntervalMs: o.scrapeMs,
      evaluationIntervalMs: 1000,
      ruleFiles: [ruleFile],
    });
    const p = prom;
    log(`Prometheus ${p.url} (pid ${String(p.pid)}) scraping every ${String(o.scrapeMs)} ms`);
    const targets = SERVED_EXPORTERS.length * o.shards;
    await waitFor(
      async () => {
        const r = await createPromClient({ url: p.url }).query(
          'count(up == 1)',
          Date.now(),
          new AbortController().signal,
        );
        return (r[0]?.value ?? 0) === targets;
      },
      180_000,
      { what: `${String(targets)} targets up`, intervalMs: 1000 },
    );
    // Two more scrape rounds: the head holds every series before anything is measured.
    await delay(2 * o.scrapeMs + 5_000);
    const windowS = Math.ceil(o.baselineS / (o.scrapeMs / 1000)) * (o.scrapeMs / 1000);
    log(`baseline: ${String(windowS)} s with no query and no rule`);
    const rate0 = await baseline(p, windowS);
    log(`baseline: ${(rate0 * 100).toFixed(1)} % of a core`);
    const results: ModeResult[] = [];
    for (const mode of o.modes) {
      const r = await runMode(o, mode, p, ruleFile, nodes, rate0);
      log(
        `${mode}: ${r.storeCpuPerCycleS.toFixed(3)} s of store CPU per cycle, ${String(r.queriesPerCycle)} queries, ${String(r.staleRules)} stale`,
      );
      results.push(r);
    }
    await loadRules(p, ruleFile, 'groups: []\n', 0);
    await delay(2_000);
    const rate1 = await baseline(p, windowS);
    log(`baseline after: ${(rate1 * 100).toFixed(1)} % of a core`);
    const rss = (await procStats(p.pid)).rssMb;
    let accounted: Awaited<ReturnType<typeof account>> | undefined;
    if (o.account) {
      const atMs = Date.now() - 1000;
      await stopScrapes(p);
      await delay(2000);
      log('accounting: each query alone, scrapes stopped');
      accounted = await account(p, atMs);
      for (const m of accounted.modes)
        log(`accounted ${m.mode}: ${m.storeCpuPerCycleS.toFixed(3)} s of store CPU per 1 s cycle`);
    }
    const report = {
      startedAt,
      machine: machine(),
      nodes: o.nodes,
      families: o.families,
      seriesPerScrapeRound: server.series,
      scrapeIntervalMs: o.scrapeMs,
      shards: o.shards,
      cyclesPerMode: o.cycles,
      baselineCorePercent: {
        before: Number((rate0 * 100).toFixed(1)),
        after: Number((rate1 * 100).toFixed(1)),
      },
      prometheusRssMb: Number(rss.toFixed(0)),
      loadAverage: { start: loadStart, end: loadavg().map((x) => Number(x.toFixed(2))) },
      results,
      accounted,
    };
    process.stdout.write(`${table(o, results)}\n\n`);
    process.stdout.write(
      `baseline (scrapes only): ${String(report.baselineCorePercent.before)} % / ${String(report.baselineCorePercent.after)} % of a core before / after; Prometheus RSS ${String(report.prometheusRssMb)} MB; load average ${loadStart.join(' ')} -> ${report.loadAverage.end.join(' ')}\n\n`,
    );
    if (accounted !== undefined) {
      process.stdout.write(
        [
          'Accounted (each query alone on the store, scrapes stopped; CPU per evaluation × evaluations per 1 s cycle):',
          '| Mode | Store CPU per 1 s cycle | Largest shares (s per cycle) |',
          '| --- | --- | --- |',
          ...accounted.modes.map(
            (m) =>
              `| ${m.mode} | ${m.storeCpuPerCycleS.toFixed(3)} s | ${m.top
                .slice(0, 4)
                .map((t) => `${t.name} ${t.sPerCycle.toFixed(3)}`)
                .join('; ')} |`,
          ),
          '',
          '',
        ].join('\n'),
      );
    }
    process.stdout.write(`${JSON.stringify(report, null, o.json ? 2 : undefined)}\n`);
  } finally {
    await prom?.stop();
    if (server !== undefined) {
      const child = server.child;
      if (child.exitCode === null && child.pid !== undefined) {
        process.kill(child.pid, 'SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`store bench: ${errorMessage(err)}\n`);
  process.exitCode = 1;
});
