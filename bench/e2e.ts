/**
 * End-to-end latency on the real stack (`node --import tsx bench/e2e.ts --nodes 1000
 * [--store prometheus|victoriametrics]`):
 *
 * - a real kube-apiserver (etcd, RBAC, the shipped deploy/aegis manifests) with N kwok nodes named
 *   like the simulator's (`gpu-node-0001`, …);
 * - the simulator with the same nodes, served by startExporterServer and scraped by a real store:
 *   Prometheus, or a single-node VictoriaMetrics scraping the exporters itself. Every 1 s below
 *   5,000 nodes; from 5,000 nodes every 10 s, one series per node of the presence families (the
 *   XID family in full), kwok heartbeats every 5 min (see the defaults in `parseOptions`);
 * - the daemon as a separate process (`aegis run --config <temp>`, `prometheus.flavor` of the
 *   store), inspecting every 1 s with the controller's ServiceAccount token, dry-run off and the
 *   storm/cordon/concurrency limits raised.
 *
 * Measured: (a) for sequential single faults, the time from the fault being visible in the store
 * (its rule's PromQL polled every 100 ms through the daemon's client and flavor) to the node being
 * cordoned AND ticketed (a watch of the nodes as admin); (b) a burst of simultaneous faults:
 * cordons per second from first to last. The scrape interval is not in (a): it is before
 * visibility. Prints a table and one JSON document. A benchmark, not a test.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { V1Node } from '@kubernetes/client-node';
import { CATALOGUE, SIGNAL_PRESENCE } from '../src/catalogue/index.js';
import type { CatalogueEntry } from '../src/catalogue/types.js';
import { summarize, type Summary } from '../src/bench/stats.js';
import { systemClock } from '../src/core/clock.js';
import { errorMessage } from '../src/core/errors.js';
import { TICKET_ANNOTATION } from '../src/core/types.js';
import { parseTicket } from '../src/ticket/ticket.js';
import { ConfigSchema } from '../src/config/schema.js';
import { inspectorOptions } from '../src/engine/controller.js';
import { Inspector } from '../src/engine/inspector.js';
import { createPromClient } from '../src/prom/prom-client.js';
import { generateRules } from '../src/prom/rules.js';
import type { MetricsSource } from '../src/prom/metrics-source.js';
import type { SimWorld } from '../src/sim/sim-world.js';
import { freePorts } from '../test/helpers/k8s-harness.js';
import { waitFor } from '../test/helpers/prometheus-harness.js';
import type { TestCluster } from '../test/k8s/setup.js';
import {
  daemonMetrics,
  daemonReady,
  isRuntime,
  isStoreKind,
  LARGE_FLEET,
  logger,
  machine,
  metricSum,
  procStats,
  startDaemon,
  startFleet,
  startScrapedStore,
  watchAllNodes,
  withStack,
  XID_FAULTS,
  type Runtime,
  type ScrapedStore,
  type StoreKind,
} from './stack.js';

const FAULT_TIMEOUT_MS = 60_000;

interface Options {
  readonly nodes: number;
  readonly faults: number;
  readonly burst: number;
  readonly json: boolean;
  readonly runtime: Runtime;
  readonly store: StoreKind;
  /** Scrape targets per exporter the fleet is split over (their scrapes land at different offsets). */
  readonly shards: number;
  readonly scrapeIntervalMs: number;
  /** How often kwok renews each node's status. */
  readonly heartbeatMs: number;
  /** Presence families served in full, or one series per node (`lean`). */
  readonly presence: 'all' | 'lean';
  /** Where the daemon writes a CPU profile (`--cpu-prof-dir`): node's `--cpu-prof`, on exit. */
  readonly cpuProfDir?: string;
  /**
   * `recorded`: Prometheus evaluates `aegis rules --tiered --interval 1s` and the daemon reads the
   * recordings (`inspect.ruleSource: recorded`, presence every 5 s); `direct` (default): one
   * query per rule.
   */
  readonly ruleSource: 'direct' | 'recorded';
}

/** When each node was first seen cordoned, and cordoned with a ticket (admin watch). */
interface NodeTimes {
  cordonedMs?: number;
  doneMs?: number;
}

function isRuleSource(v: string): v is Options['ruleSource'] {
  return v === 'direct' || v === 'recorded';
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '1000' },
      faults: { type: 'string', default: '20' },
      burst: { type: 'string', default: '100' },
      json: { type: 'boolean', default: false },
      runtime: { type: 'string', default: 'compiled' },
      store: { type: 'string', default: 'prometheus' },
      shards: { type: 'string', default: '10' },
      'scrape-interval-ms': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      presence: { type: 'string' },
      'cpu-prof-dir': { type: 'string' },
      'rule-source': { type: 'string', default: 'direct' },
    },
  });
  const runtime = values.runtime;
  if (!isRuntime(runtime)) throw new Error(`--runtime: "${runtime}" is not compiled or tsx`);
  const store = values.store;
  if (!isStoreKind(store))
    throw new Error(`--store: "${store}" is not prometheus or victoriametrics`);
  const presence = values.presence;
  if (presence !== undefined && presence !== 'all' && presence !== 'lean')
    throw new Error(`--presence: "${presence}" is not all or lean`);
  const ruleSource = values['rule-source'];
  if (!isRuleSource(ruleSource))
    throw new Error(`--rule-source: "${ruleSource}" is not direct or recorded`);
  if (ruleSource === 'recorded' && store !== 'prometheus')
    throw new Error(
      '--rule-source recorded: only with --store prometheus (it evaluates the rules)',
    );
  const int = (v: string, name: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: "${v}" is not a whole number`);
    return n;
  };
  const nodes = int(values.nodes, 'nodes');
  // A 2-core machine ingests the 1,000-node fleet's ~50,000 series every 1 s, not 10,000 nodes'.
  // Large fleets: a 10 s scrape of ~200,000 series (XID in full, one series per node and presence
  // family), kwok renewing node status every 5 min (a kubelet's nodeStatusReportFrequency).
  const large = nodes >= LARGE_FLEET;
  const o = {
    nodes,
    faults: int(values.faults, 'faults'),
    burst: int(values.burst, 'burst'),
    json: values.json,
    runtime,
    store,
    shards: int(values.shards, 'shards'),
    scrapeIntervalMs: int(
      values['scrape-interval-ms'] ?? (large ? '10000' : '1000'),
      'scrape-interval-ms',
    ),
    heartbeatMs: int(values['heartbeat-ms'] ?? (large ? '300000' : '60000'), 'heartbeat-ms'),
    presence: presence ?? (large ? ('lean' as const) : ('all' as const)),
    ruleSource: ruleSource,
    ...(values['cpu-prof-dir'] === undefined ? {} : { cpuProfDir: values['cpu-prof-dir'] }),
  };
  if (o.faults + o.burst > o.nodes) throw new Error('--faults + --burst must not exceed --nodes');
  return o;
}

const log = logger('e2e');

/** Records the first cordon and cordon+ticket of each node seen by an admin watch. */
function recordDone(times: Map<string, NodeTimes>): (node: V1Node) => void {
  return (node) => {
    const name = node.metadata?.name;
    if (name === undefined || node.spec?.unschedulable !== true) return;
    const t = times.get(name) ?? {};
    const now = Date.now();
    t.cordonedMs ??= now;
    if (t.doneMs === undefined && node.metadata?.annotations?.[TICKET_ANNOTATION] !== undefined) {
      t.doneMs = now;
    }
    times.set(name, t);
  };
}

/**
 * The rule's PromQL restricted to one node (`{node="…"}` on each selector of the fault's metrics):
 * the same answer for that node, without the poll evaluating the rule over the whole fleet ten
 * times a second beside the daemon.
 */
function nodeScoped(entry: CatalogueEntry, node: string): string {
  let expr = entry.expr;
  for (const metric of new Set(entry.fault.series.map((c) => c.metric))) {
    expr = expr.replace(new RegExp(`\\b${metric}\\b(?!\\{)`, 'g'), `${metric}{node="${node}"}`);
  }
  return expr;
}

/**
 * Polls the rule's PromQL on the store every 100 ms until it names `node`; returns that time. The
 * poll goes through the daemon's client with the store's flavor, so it sees what the daemon sees
 * (VictoriaMetrics hides its newest 30 s from a query without `latency_offset`).
 */
async function visibleInStore(
  client: MetricsSource,
  entry: CatalogueEntry,
  node: string,
): Promise<number> {
  const expr = nodeScoped(entry, node);
  const signal = new AbortController().signal;
  return waitFor(
    async () => {
      const samples = await client.query(expr, Date.now(), signal);
      return samples.some((r) => r.labels['node'] === node) ? Date.now() : undefined;
    },
    FAULT_TIMEOUT_MS,
    { what: `${entry.name} on ${node} in the store`, intervalMs: 100 },
  );
}

interface SequentialResult {
  readonly faults: number;
  readonly completed: number;
  /** Visible in the store → cordoned and ticketed. */
  readonly visibleToDoneMs: Summary;
  /** Injected in the simulator → visible in the store (scrape interval, ingestion). */
  readonly injectToVisibleMs: Summary;
  readonly injectToDoneMs: Summary;
}

async function runSequential(
  o: Options,
  world: SimWorld,
  client: MetricsSource,
  times: Map<string, NodeTimes>,
): Promise<SequentialResult> {
  const toDone: number[] = [];
  const toVisible: number[] = [];
  const total: number[] = [];
  const names = world.fleet.nodes.map((n) => n.name);
  for (let i = 0; i < o.faults; i++) {
    const node = names[Math.floor(((i + 0.5) * names.length) / (o.faults + o.burst))] as string;
    const entry = XID_FAULTS[i % XID_FAULTS.length] as CatalogueEntry;
    const injectedMs = Date.now();
    world.faults.injectFault({ condition: entry.name, node, atMs: injectedMs });
    try {
      const visibleMs = await visibleInStore(client, entry, node);
      const doneMs = await waitFor(() => times.get(node)?.doneMs, FAULT_TIMEOUT_MS, {
        what: `${node} cordoned and ticketed`,
        intervalMs: 20,
      });
      toDone.push(doneMs - visibleMs);
      toVisible.push(visibleMs - injectedMs);
      total.push(doneMs - injectedMs);
      log(
        `fault ${i + 1}/${o.faults} ${entry.name} on ${node}: visible +${visibleMs - injectedMs} ms, cordoned+ticketed +${doneMs - visibleMs} ms after`,
      );
    } catch (err) {
      log(`fault ${i + 1}/${o.faults} on ${node}: ${errorMessage(err)}`);
    }
    await delay(1_500);
  }
  return {
    faults: o.faults,
    completed: toDone.length,
    visibleToDoneMs: summarize(toDone, 0),
    injectToVisibleMs: summarize(toVisible, 0),
    injectToDoneMs: summarize(total, 0),
  };
}

interface BurstResult {
  readonly faults: number;
  readonly cordoned: number;
  readonly ticketed: number;
  /** Cordons per second between the first and the last cordon. */
  readonly cordonsPerSecond: number;
  /** Per node: visible in the store → cordoned and ticketed. */
  readonly visibleToDoneMs: Summary;
  /** First and last node visible in the store, after injection. */
  readonly firstVisibleAfterInjectMs: number;
  readonly lastVisibleAfterInjectMs: number;
  readonly firstCordonAfterInjectMs: number;
  readonly lastCordonAfterInjectMs: number;
  readonly lastTicketAfterInjectMs: number;
}

/**
 * Polls every 100 ms which of `nodes` show a non-zero XID in the store (one query for all of
 * them); records the first time each does. Resolves when all have, or after `timeoutMs`.
 */
async function burstVisibility(
  client: MetricsSource,
  nodes: readonly string[],
  timeoutMs: number,
): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const expr = `count by (node) (DCGM_FI_DEV_XID_ERRORS{node=~"${nodes.join('|')}"} != 0)`;
  const signal = new AbortController().signal;
  const end = Date.now() + timeoutMs;
  while (seen.size < nodes.length && Date.now() < end) {
    const samples = await client.query(expr, Date.now(), signal).catch((err: unknown) => {
      log(`burst visibility: ${errorMessage(err)}`);
      return [];
    });
    const now = Date.now();
    for (const r of samples) {
      const node = r.labels['node'];
      if (node !== undefined && !seen.has(node)) seen.set(node, now);
    }
    await delay(100);
  }
  return seen;
}

async function runBurst(
  o: Options,
  world: SimWorld,
  client: MetricsSource,
  times: Map<string, NodeTimes>,
): Promise<BurstResult> {
  const names = world.fleet.nodes.map((n) => n.name);
  const nodes = Array.from(
    { length: o.burst },
    (_, i) =>
      names[Math.floor(((o.faults + i + 0.5) * names.length) / (o.faults + o.burst))] as string,
  );
  const injectedMs = Date.now();
  nodes.forEach((node, i) => {
    const entry = XID_FAULTS[i % XID_FAULTS.length] as CatalogueEntry;
    world.faults.injectFault({ condition: entry.name, node, atMs: injectedMs });
  });
  log(`burst: ${o.burst} faults injected`);
  const visible = await burstVisibility(client, nodes, 30_000);
  await waitFor(() => nodes.every((n) => times.get(n)?.doneMs !== undefined), 120_000, {
    what: 'every burst node cordoned and ticketed',
    intervalMs: 50,
  }).catch((err: unknown) => {
    log(errorMessage(err));
  });
  const cordons = nodes.flatMap((n) => times.get(n)?.cordonedMs ?? []).sort((a, b) => a - b);
  const tickets = nodes.flatMap((n) => times.get(n)?.doneMs ?? []);
  const first = cordons[0] ?? Number.NaN;
  const last = cordons.at(-1) ?? Number.NaN;
  const visibleAt = [...visible.values()];
  const toDone = nodes.flatMap((n) => {
    const v = visible.get(n);
    const d = times.get(n)?.doneMs;
    return v === undefined || d === undefined ? [] : [Math.max(0, d - v)];
  });
  return {
    faults: o.burst,
    cordoned: cordons.length,
    ticketed: tickets.length,
    cordonsPerSecond: Number(((cordons.length - 1) / ((last - first) / 1000)).toFixed(1)),
    visibleToDoneMs: summarize(toDone, 0),
    firstVisibleAfterInjectMs: Math.min(...visibleAt) - injectedMs,
    lastVisibleAfterInjectMs: Math.max(...visibleAt) - injectedMs,
    firstCordonAfterInjectMs: first - injectedMs,
    lastCordonAfterInjectMs: last - injectedMs,
    lastTicketAfterInjectMs: Math.max(...tickets) - injectedMs,
  };
}

/** Counters read at the start and end of a phase. */
interface Snapshot {
  readonly atMs: number;
  /** CPU seconds by process: the daemon, the store, etcd, kube-apiserver, kwok, this driver. */
  readonly cpuS: Readonly<Record<string, number>>;
  readonly cycles: number;
  readonly cycleSeconds: number;
  /** The apiserver's requests on nodes, by `VERB code` (its apiserver_request_total). */
  readonly nodeRequests: Readonly<Record<string, number>>;
}

/** How the daemon (and the rest of the stack) spent one phase of the run. */
interface PhaseStats {
  readonly seconds: number;
  readonly cycles: number;
  /** Mean aegis_inspect_cycle_seconds (engine + queries) over the phase. */
  readonly cycleMs: number;
  /** CPU of the daemon process and of the store, in % of one core. */
  readonly daemonCpuPercent: number;
  readonly storeCpuPercent: number;
  /** Every process of the stack, in % of one core (the machine has `machine.cpus` cores). */
  readonly cpuPercent: Readonly<Record<string, number>>;
  /** Requests the apiserver served on nodes during the phase, by `VERB code`. */
  readonly nodeRequests: Readonly<Record<string, number>>;
}

/** The processes of the stack to account CPU to, by name. */
async function stackPids(
  cluster: TestCluster,
  daemonPid: number,
  store: ScrapedStore,
): Promise<Record<string, number>> {
  const pids: Record<string, number> = { daemon: daemonPid, [store.kind]: store.pid };
  const listed = await readFile(join(cluster.stack.dir, 'pids'), 'utf8').catch(() => '');
  for (const pid of listed
    .split('\n')
    .map(Number)
    .filter((n) => n > 0)) {
    const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
    if (comm !== '') pids[comm] = pid;
  }
  return pids;
}

/** apiserver_request_total on nodes, summed by `VERB code`. */
async function nodeRequests(cluster: TestCluster): Promise<Record<string, number>> {
  const text = await new Promise<string>((resolve, reject) => {
    const req = httpsGet(
      `${cluster.stack.server}/metrics`,
      {
        headers: { authorization: `Bearer ${cluster.stack.adminToken}` },
        ca: Buffer.from(cluster.stack.caData, 'base64'),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => {
          resolve(body);
        });
      },
    );
    req.on('error', reject);
  });
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{') || !line.includes('resource="nodes"'))
      continue;
    const verb = /verb="([A-Z]+)"/.exec(line)?.[1] ?? '?';
    const code = /code="(\d+)"/.exec(line)?.[1] ?? '?';
    const key = `${verb} ${code}`;
    out[key] = (out[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

async function snapshot(
  cluster: TestCluster,
  pids: Readonly<Record<string, number>>,
  metricsPort: number,
): Promise<Snapshot> {
  const m = await daemonMetrics(metricsPort);
  const cpuS: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) cpuS[name] = (await procStats(pid)).cpuS;
  const self = process.cpuUsage();
  cpuS['driver'] = (self.user + self.system) / 1e6;
  return {
    atMs: Date.now(),
    cpuS,
    cycles: metricSum(m, 'aegis_inspect_cycle_seconds_count'),
    cycleSeconds: metricSum(m, 'aegis_inspect_cycle_seconds_sum'),
    nodeRequests: await nodeRequests(cluster),
  };
}

function phase(a: Snapshot, b: Snapshot): PhaseStats {
  const seconds = (b.atMs - a.atMs) / 1000;
  const cycles = b.cycles - a.cycles;
  const pct = (cpu: number): number => Number(((cpu / seconds) * 100).toFixed(1));
  const cpuPercent: Record<string, number> = {};
  for (const [name, cpu] of Object.entries(b.cpuS))
    cpuPercent[name] = pct(cpu - (a.cpuS[name] ?? 0));
  const requests: Record<string, number> = {};
  for (const [key, n] of Object.entries(b.nodeRequests)) {
    const d = n - (a.nodeRequests[key] ?? 0);
    if (d > 0) requests[key] = d;
  }
  return {
    seconds: Math.round(seconds),
    cycles,
    cycleMs: Math.round(((b.cycleSeconds - a.cycleSeconds) / Math.max(1, cycles)) * 1000),
    daemonCpuPercent: cpuPercent['daemon'] ?? 0,
    storeCpuPercent: cpuPercent['prometheus'] ?? cpuPercent['victoriametrics'] ?? 0,
    cpuPercent,
    nodeRequests: requests,
  };
}

/**
 * What the daemon's adapters cost per cycle at this size, measured from this process: listNodes
 * through the controller's client (the first call a LIST, then the watch-fed cache), and one
 * inspection asking every query (as a first cycle does) on the store.
 */
async function adapterCosts(
  cluster: TestCluster,
  client: MetricsSource,
  world: SimWorld,
): Promise<{ listNodesMs: Summary; inspectMs: Summary }> {
  const kube = cluster.controller();
  const signal = new AbortController().signal;
  const list: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await kube.listNodes(signal);
    list.push(performance.now() - t);
  }
  const inspector = new Inspector({
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    metrics: client,
    clock: systemClock,
    // Every query the daemon's first cycle asks (slow rules included), shared as it shares them.
    options: {
      concurrency: 8,
      queryTimeoutMs: 10_000,
      compatibility: false,
      shareSelections: true,
    },
  });
  const nodes = await world.cluster.listNodes(signal);
  const inspect: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await inspector.inspect(nodes, signal);
    inspect.push(performance.now() - t);
  }
  return { listNodesMs: summarize(list, 0), inspectMs: summarize(inspect, 0) };
}

/** What the queries cost on the store, each run once, one at a time. */
interface QueryCosts {
  /** Every query the inspector may ask (each rule on its own, presence included). */
  readonly totalMs: number;
  /** The queries a daemon cycle waits for (inspect.intervalMs 1 s, as the bench runs it). */
  readonly cycleMs: number;
  readonly cycleQueries: number;
  /** The presence queries (asked after the cycle's queries, beside the cycle). */
  readonly presenceMs: number;
  readonly slowest: { ms: number; expr: string }[];
}

async function queryCosts(client: MetricsSource): Promise<QueryCosts> {
  const signal = new AbortController().signal;
  const presence = Object.values(SIGNAL_PRESENCE).filter((e): e is string => e !== null);
  const cycle = new Inspector({
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    metrics: client,
    clock: systemClock,
    options: inspectorOptions(ConfigSchema.parse({ inspect: { intervalMs: '1s' } })),
  }).cycleQueries;
  const exprs = new Set([...presence, ...cycle, ...CATALOGUE.map((e) => e.expr)]);
  exprs.delete('');
  const costs = new Map<string, number>();
  for (const expr of exprs) {
    const t = performance.now();
    await client.query(expr, Date.now(), signal);
    costs.set(expr, performance.now() - t);
  }
  const sum = (list: Iterable<string>): number =>
    Math.round([...list].reduce((s, e) => s + (costs.get(e) ?? 0), 0));
  return {
    totalMs: sum(exprs),
    cycleMs: sum(cycle),
    cycleQueries: cycle.length,
    presenceMs: sum(presence),
    slowest: [...costs]
      .sort((x, y) => y[1] - x[1])
      .slice(0, 8)
      .map(([expr, ms]) => ({ ms: Math.round(ms), expr })),
  };
}

/**
 * The first two steps in each faulted node's ticket, counted: every node must show one Cordon
 * then the next rung of its ladder (a second Cordon would be a repeated step).
 */
async function firstSteps(cluster: TestCluster, world: SimWorld): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const list = await cluster.adminCore.listNode();
  const faulted = new Set(world.faults.active().map((f) => f.node));
  for (const n of list.items) {
    const name = n.metadata?.name ?? '';
    const raw = n.metadata?.annotations?.[TICKET_ANNOTATION];
    if (raw === undefined || !faulted.has(name)) continue;
    const key = parseTicket(raw, name)
      .workflows.slice(0, 2)
      .map((w) => w.action)
      .join(' → ');
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

async function main(): Promise<void> {
  const o = parseOptions();
  const started = Date.now();
  const load0 = loadavg()[0] ?? 0;
  await withStack('e2e', o.runtime, log, async (running, dir) => {
    // kwok renews each node's status every heartbeat (a real kubelet: every 10 s to 5 min); at
    // the harness default of 20 s, 1,000 nodes keep the apiserver busy on this machine.
    const { cluster, world } = await startFleet(
      { nodes: o.nodes, nodeHeartbeatMs: o.heartbeatMs, log },
      running,
    );
    const ruleFiles: string[] = [];
    if (o.ruleSource === 'recorded') {
      const file = join(dir, 'aegis-recording.rules.yaml');
      await writeFile(file, generateRules(CATALOGUE, { intervalMs: 1000, tiered: {} }).recording);
      ruleFiles.push(file);
    }
    const store = await startScrapedStore(
      world,
      {
        ...(ruleFiles.length === 0 ? {} : { ruleFiles }),
        store: o.store,
        // The presence checks' families and the injected faults' metric (XID).
        served: {
          full: [...new Set(XID_FAULTS.flatMap((e) => e.fault.series.map((c) => c.metric)))],
          presence: o.presence,
        },
        shards: o.shards,
        scrapeIntervalMs: o.scrapeIntervalMs,
        dir,
        log,
      },
      running,
    );
    const client = createPromClient({ url: store.url, flavor: store.flavor });
    const times = new Map<string, NodeTimes>();
    running.watch = await watchAllNodes(cluster, recordDone(times), log);
    const [metricsPort] = (await freePorts(1)) as [number];
    const daemon = (running.daemon = await startDaemon(cluster, {
      dir,
      promUrl: store.url,
      prometheus: { flavor: store.flavor },
      ...(o.ruleSource === 'recorded'
        ? { inspect: { ruleSource: 'recorded', presenceIntervalMs: '5s' } }
        : {}),
      metricsPort,
      runtime: o.runtime,
      clusterName: 'e2e-bench',
      ...(o.cpuProfDir === undefined
        ? {}
        : { execArgv: ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] }),
      log,
    }));
    const pid = daemon.pid ?? 0;
    await daemonReady(metricsPort, daemon);
    const spurious = [...times.keys()];
    if (spurious.length > 0) log(`nodes cordoned before any fault: ${spurious.join(', ')}`);
    const adapters = await adapterCosts(cluster, client, world);
    log(`adapters: ${JSON.stringify(adapters)}`);
    const pids = await stackPids(cluster, pid, store);
    const snap = (): Promise<Snapshot> => snapshot(cluster, pids, metricsPort);
    const s0 = await snap();
    await delay(10_000);
    const s1 = await snap();
    const sequential = await runSequential(o, world, client, times);
    const s2 = await snap();
    const burst = await runBurst(o, world, client, times);
    const s3 = await snap();
    const phases = { idle: phase(s0, s1), sequential: phase(s1, s2), burst: phase(s2, s3) };
    log(`phases: ${JSON.stringify(phases)}`);
    const mem = await procStats(pid);
    const peakRssMb: Record<string, number> = {};
    for (const [name, p] of Object.entries(pids))
      peakRssMb[name] = Math.round((await procStats(p)).hwmMb);
    peakRssMb['driver'] = Math.round(process.resourceUsage().maxRSS / 1024);
    const queries = await queryCosts(client);
    const steps = await firstSteps(cluster, world);
    log(`first steps of the faulted nodes: ${JSON.stringify(steps)}`);
    log(
      `queries one at a time after the run: ${queries.totalMs} ms; a cycle's ${queries.cycleQueries}: ${queries.cycleMs} ms; presence: ${queries.presenceMs} ms`,
    );
    const report = {
      nodes: o.nodes,
      runtime: o.runtime,
      store: o.store,
      scrapeTargetsPerExporter: o.shards,
      scrapeIntervalMs: o.scrapeIntervalMs,
      presenceSeries: o.presence,
      ruleSource: o.ruleSource,
      kwokHeartbeatMs: o.heartbeatMs,
      machine: machine(),
      load: [load0, loadavg()[0] ?? 0],
      peakRssMbByProcess: peakRssMb,
      daemon: {
        peakRssMb: Number(mem.hwmMb.toFixed(1)),
        rssMb: Number(mem.rssMb.toFixed(1)),
        phases,
        adapters: { ...adapters, queriesAfterRun: queries },
        spuriousCordons: spurious.length,
        firstSteps: steps,
      },
      sequential,
      burst,
      wallSeconds: Math.round((Date.now() - started) / 1000),
    };
    const text = o.json ? '' : `${table(report)}\n`;
    process.stdout.write(`${text}${JSON.stringify(report, null, o.json ? 2 : 0)}\n`);
  });
}

function table(r: {
  nodes: number;
  store: StoreKind;
  scrapeTargetsPerExporter: number;
  scrapeIntervalMs: number;
  load: number[];
  peakRssMbByProcess: Record<string, number>;
  daemon: { peakRssMb: number; phases: Record<'idle' | 'sequential' | 'burst', PhaseStats> };
  sequential: SequentialResult;
  burst: BurstResult;
}): string {
  const s = r.sequential;
  const b = r.burst;
  const rows: [string, string][] = [
    ['nodes (kwok)', String(r.nodes)],
    ['store', r.store],
    [
      'scrape targets per exporter, interval',
      `${r.scrapeTargetsPerExporter}, ${r.scrapeIntervalMs} ms`,
    ],
    [
      `visible in the store → cordoned + ticketed, p50 / p99 (${s.completed}/${s.faults} faults)`,
      `${s.visibleToDoneMs.p50} / ${s.visibleToDoneMs.p99} ms`,
    ],
    [
      'injected → visible in the store, p50 / p99',
      `${s.injectToVisibleMs.p50} / ${s.injectToVisibleMs.p99} ms`,
    ],
    [
      'injected → cordoned + ticketed, p50 / p99',
      `${s.injectToDoneMs.p50} / ${s.injectToDoneMs.p99} ms`,
    ],
    [`burst of ${b.faults}: cordons per second (first → last cordon)`, `${b.cordonsPerSecond} /s`],
    [
      'burst: first / last visible in the store after injection',
      `${b.firstVisibleAfterInjectMs} / ${b.lastVisibleAfterInjectMs} ms`,
    ],
    [
      'burst: first / last cordon after injection',
      `${b.firstCordonAfterInjectMs} / ${b.lastCordonAfterInjectMs} ms`,
    ],
    [
      'burst: visible → cordoned + ticketed, p50 / p99',
      `${b.visibleToDoneMs.p50} / ${b.visibleToDoneMs.p99} ms`,
    ],
    ['burst: cordoned / ticketed', `${b.cordoned} / ${b.ticketed}`],
    ['daemon peak RSS (VmHWM)', `${r.daemon.peakRssMb} MB`],
    [
      'peak RSS by process',
      Object.entries(r.peakRssMbByProcess)
        .map(([name, mb]) => `${name} ${mb} MB`)
        .join(', '),
    ],
    ['load average (1 min), start → end', r.load.map((l) => l.toFixed(1)).join(' → ')],
    ...(['idle', 'sequential', 'burst'] as const).map((k): [string, string] => {
      const p = r.daemon.phases[k];
      return [
        `${k}: daemon cycle (engine + queries), daemon / store CPU`,
        `${p.cycleMs} ms, ${p.daemonCpuPercent} % / ${p.storeCpuPercent} %`,
      ];
    }),
    ...(['sequential', 'burst'] as const).map((k): [string, string] => [
      `${k}: CPU by process, % of one core`,
      Object.entries(r.daemon.phases[k].cpuPercent)
        .map(([name, pct]) => `${name} ${pct}`)
        .join(', '),
    ]),
    ...(['sequential', 'burst'] as const).map((k): [string, string] => [
      `${k}: apiserver requests on nodes`,
      Object.entries(r.daemon.phases[k].nodeRequests)
        .map(([key, n]) => `${key}: ${n}`)
        .join(', '),
    ]),
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`e2e: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
