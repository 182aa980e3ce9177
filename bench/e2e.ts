/**
 * End-to-end latency on the real stack (`node --import tsx bench/e2e.ts --nodes 1000`):
 *
 * - a real kube-apiserver (etcd, RBAC, the shipped deploy/aegis manifests) with N kwok nodes named
 *   like the simulator's (`gpu-node-0001`, …);
 * - the simulator with the same nodes, served by startExporterServer and scraped every 1 s by a
 *   real Prometheus;
 * - the daemon as a separate process (`aegis run --config <temp>`), inspecting every 1 s with the
 *   controller's ServiceAccount token, dry-run off and the storm/cordon/concurrency limits raised.
 *
 * Measured: (a) for sequential single faults, the time from the fault being visible in Prometheus
 * (its rule's PromQL polled every 100 ms) to the node being cordoned AND ticketed (a watch of the
 * nodes as admin); (b) a burst of simultaneous faults: cordons per second from first to last.
 * Prints a table and one JSON document. A benchmark, not a test.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Watch, type V1Node } from '@kubernetes/client-node';
import { CATALOGUE, metricNamesOf, SIGNAL_PRESENCE } from '../src/catalogue/index.js';
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
import { startExporterServer, type ExporterServer } from '../src/sim/exporter-server.js';
import type { SeriesStore } from '../src/sim/series-store.js';
import { createSimWorld, type SimWorld } from '../src/sim/sim-world.js';
import { freePorts } from '../test/helpers/k8s-harness.js';
import {
  simExporterTargets,
  startPrometheus,
  waitFor,
  type PrometheusServer,
} from '../test/helpers/prometheus-harness.js';
import { startTestCluster, type TestCluster } from '../test/k8s/setup.js';
import {
  buildDaemon,
  createNodes,
  daemonMetrics,
  daemonReady,
  isRuntime,
  logger,
  machine,
  metricSum,
  procStats,
  readyNodes,
  startDaemon,
  stopDaemon,
  XID_FAULTS,
  type Runtime,
} from './stack.js';

const FAULT_TIMEOUT_MS = 60_000;

interface Options {
  readonly nodes: number;
  readonly faults: number;
  readonly burst: number;
  readonly json: boolean;
  readonly runtime: Runtime;
  /** Scrape targets per exporter the fleet is split over (their scrapes land at different offsets). */
  readonly shards: number;
  /** Where the daemon writes a CPU profile (`--cpu-prof-dir`): node's `--cpu-prof`, on exit. */
  readonly cpuProfDir?: string;
}

/** When each node was first seen cordoned, and cordoned with a ticket (admin watch). */
interface NodeTimes {
  cordonedMs?: number;
  doneMs?: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '1000' },
      faults: { type: 'string', default: '20' },
      burst: { type: 'string', default: '100' },
      json: { type: 'boolean', default: false },
      runtime: { type: 'string', default: 'compiled' },
      shards: { type: 'string', default: '10' },
      'cpu-prof-dir': { type: 'string' },
    },
  });
  const runtime = values.runtime;
  if (!isRuntime(runtime)) throw new Error(`--runtime: "${runtime}" is not compiled or tsx`);
  const int = (v: string, name: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: "${v}" is not a whole number`);
    return n;
  };
  const o = {
    nodes: int(values.nodes, 'nodes'),
    faults: int(values.faults, 'faults'),
    burst: int(values.burst, 'burst'),
    json: values.json,
    runtime,
    shards: int(values.shards, 'shards'),
    ...(values['cpu-prof-dir'] === undefined ? {} : { cpuProfDir: values['cpu-prof-dir'] }),
  };
  if (o.faults + o.burst > o.nodes) throw new Error('--faults + --burst must not exceed --nodes');
  return o;
}

const log = logger('e2e');

/**
 * The store as the exporter server sees it, limited to the families the presence checks and the
 * injected faults read: the whole simulated exposition is ~2,000 series per node (320 MB per scrape
 * at 1,000 nodes), which one 2-core machine can neither produce nor ingest every second.
 */
function servedFamilies(store: SeriesStore): SeriesStore {
  const keep = new Set([
    ...Object.values(SIGNAL_PRESENCE).flatMap((e) => (e === null ? [] : metricNamesOf(e))),
    ...XID_FAULTS.flatMap((e) => e.fault.series.map((c) => c.metric)),
  ]);
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'families') return () => target.families().filter((f) => keep.has(f.name));
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}

/** Watches every node as admin and records the first cordon and cordon+ticket of each. */
async function watchNodes(
  cluster: TestCluster,
  times: Map<string, NodeTimes>,
): Promise<{ abort(): void }> {
  const watch = new Watch(cluster.admin);
  const onEvent = (_type: string, node: V1Node): void => {
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
  // The apiserver ends a watch now and then (timeouts, a slow reader): start it again, so no
  // cordon goes unseen.
  let stopped = false;
  let req: { abort(): void } | undefined;
  const start = async (): Promise<void> => {
    req = await watch.watch('/api/v1/nodes', {}, onEvent, (err: unknown) => {
      if (stopped) return;
      log(
        `node watch ended (${err === null || err === undefined ? 'closed' : errorMessage(err)}); watching again`,
      );
      void delay(200).then(start);
    });
  };
  await start();
  return {
    abort() {
      stopped = true;
      req?.abort();
    },
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

/** Polls the rule's PromQL on Prometheus every 100 ms until it names `node`; returns that time. */
async function visibleInPrometheus(
  prom: PrometheusServer,
  entry: CatalogueEntry,
  node: string,
): Promise<number> {
  const url = `${prom.url}/api/v1/query?query=${encodeURIComponent(nodeScoped(entry, node))}`;
  return waitFor(
    async () => {
      const body = (await (await fetch(url)).json()) as {
        data: { result: { metric: Record<string, string> }[] };
      };
      return body.data.result.some((r) => r.metric['node'] === node) ? Date.now() : undefined;
    },
    FAULT_TIMEOUT_MS,
    { what: `${entry.name} on ${node} in Prometheus`, intervalMs: 100 },
  );
}

interface SequentialResult {
  readonly faults: number;
  readonly completed: number;
  /** Visible in Prometheus → cordoned and ticketed. */
  readonly visibleToDoneMs: Summary;
  /** Injected in the simulator → visible in Prometheus (scrape interval). */
  readonly injectToVisibleMs: Summary;
  readonly injectToDoneMs: Summary;
}

async function runSequential(
  o: Options,
  world: SimWorld,
  prom: PrometheusServer,
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
      const visibleMs = await visibleInPrometheus(prom, entry, node);
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
  /** Per node: visible in Prometheus → cordoned and ticketed. */
  readonly visibleToDoneMs: Summary;
  /** First and last node visible in Prometheus, after injection. */
  readonly firstVisibleAfterInjectMs: number;
  readonly lastVisibleAfterInjectMs: number;
  readonly firstCordonAfterInjectMs: number;
  readonly lastCordonAfterInjectMs: number;
  readonly lastTicketAfterInjectMs: number;
}

/**
 * Polls every 100 ms which of `nodes` show a non-zero XID in Prometheus (one query for all of
 * them); records the first time each does. Resolves when all have, or after `timeoutMs`.
 */
async function burstVisibility(
  prom: PrometheusServer,
  nodes: readonly string[],
  timeoutMs: number,
): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const expr = `count by (node) (DCGM_FI_DEV_XID_ERRORS{node=~"${nodes.join('|')}"} != 0)`;
  const url = `${prom.url}/api/v1/query?query=${encodeURIComponent(expr)}`;
  const end = Date.now() + timeoutMs;
  while (seen.size < nodes.length && Date.now() < end) {
    const body = (await (await fetch(url)).json()) as {
      data: { result: { metric: Record<string, string> }[] };
    };
    const now = Date.now();
    for (const r of body.data.result) {
      const node = r.metric['node'];
      if (node !== undefined && !seen.has(node)) seen.set(node, now);
    }
    await delay(100);
  }
  return seen;
}

async function runBurst(
  o: Options,
  world: SimWorld,
  prom: PrometheusServer,
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
  const visible = await burstVisibility(prom, nodes, 30_000);
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

/** The running pieces, stopped in reverse order by `stopAll`. */
interface Stack {
  cluster?: TestCluster;
  exporters?: ExporterServer;
  prom?: PrometheusServer;
  daemon?: ChildProcess;
  watch?: { abort(): void };
}

/** apiserver + kwok nodes, the simulator's exporters and Prometheus scraping them every 1 s. */
async function startStack(
  o: Options,
  stack: Stack,
): Promise<{ world: SimWorld; prom: PrometheusServer }> {
  log(`starting kube-apiserver + kwok, ${o.nodes} nodes`);
  // kwok renews each node's status every 60 s (a real kubelet: every 10 s to 5 min); at the
  // harness default of 20 s, 1,000 nodes keep the apiserver busy on this 2-core machine.
  const cluster = (stack.cluster = await startTestCluster({ kwok: true, nodeHeartbeatMs: 60_000 }));
  const world = createSimWorld({
    nodes: o.nodes,
    seed: 7,
    catalogue: CATALOGUE,
    clock: systemClock,
  });
  await createNodes(cluster, world);
  await waitFor(async () => (await readyNodes(cluster)) === o.nodes, 300_000, {
    what: 'nodes Ready',
    intervalMs: 1_000,
  });
  const exporters = (stack.exporters = await startExporterServer({
    fleet: { ...world, store: servedFamilies(world.store) },
  }));
  const prom = (stack.prom = await startPrometheus({
    // Split over several targets per exporter, as per-node targets are in a real cluster: one
    // target would put every node's scrape at the same offset from the daemon's cycles, and every
    // fault would wait the same fraction of the interval.
    scrapeTargets: simExporterTargets(exporters.url, o.shards),
    scrapeIntervalMs: 1000,
  }));
  log(`Prometheus ${prom.url} scraping ${exporters.url} (${o.shards} targets per exporter)`);
  return { world, prom };
}

/** Counters read at the start and end of a phase. */
interface Snapshot {
  readonly atMs: number;
  /** CPU seconds by process: the daemon, Prometheus, etcd, kube-apiserver, kwok, this driver. */
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
  /** CPU of the daemon process and of Prometheus, in % of one core. */
  readonly daemonCpuPercent: number;
  readonly prometheusCpuPercent: number;
  /** Every process of the stack, in % of one core (the machine has `machine.cpus` cores). */
  readonly cpuPercent: Readonly<Record<string, number>>;
  /** Requests the apiserver served on nodes during the phase, by `VERB code`. */
  readonly nodeRequests: Readonly<Record<string, number>>;
}

/** The processes of the stack to account CPU to, by name. */
async function stackPids(
  cluster: TestCluster,
  daemonPid: number,
  promPid: number,
): Promise<Record<string, number>> {
  const pids: Record<string, number> = { daemon: daemonPid, prometheus: promPid };
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
    prometheusCpuPercent: cpuPercent['prometheus'] ?? 0,
    cpuPercent,
    nodeRequests: requests,
  };
}

/**
 * What the daemon's adapters cost per cycle at this size, measured from this process: listNodes
 * through the controller's client (the first call a LIST, then the watch-fed cache), and one
 * inspection asking every query (as a first cycle does) on Prometheus.
 */
async function adapterCosts(
  cluster: TestCluster,
  prom: PrometheusServer,
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
    metrics: createPromClient({ url: prom.url }),
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

/** What the queries cost on Prometheus, each run once, one at a time. */
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

async function queryCosts(prom: PrometheusServer): Promise<QueryCosts> {
  const client = createPromClient({ url: prom.url });
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

async function stopAll(stack: Stack, dir: string): Promise<void> {
  stack.watch?.abort();
  await stopDaemon(stack.daemon);
  await stack.prom?.stop();
  await stack.exporters?.close();
  await stack.cluster?.stop();
  await rm(dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const o = parseOptions();
  const started = Date.now();
  const load0 = loadavg()[0] ?? 0;
  const stack: Stack = {};
  const dir = await mkdtemp(join(tmpdir(), 'aegis-e2e-'));
  try {
    // Before anything else runs: the build blocks this process.
    buildDaemon(o.runtime, log);
    const { world, prom } = await startStack(o, stack);
    const cluster = stack.cluster as TestCluster;
    const times = new Map<string, NodeTimes>();
    stack.watch = await watchNodes(cluster, times);
    const [metricsPort] = (await freePorts(1)) as [number];
    const daemon = (stack.daemon = await startDaemon(cluster, {
      dir,
      promUrl: prom.url,
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
    const adapters = await adapterCosts(cluster, prom, world);
    log(`adapters: ${JSON.stringify(adapters)}`);
    const pids = await stackPids(cluster, pid, prom.pid);
    const snap = (): Promise<Snapshot> => snapshot(cluster, pids, metricsPort);
    const s0 = await snap();
    await delay(10_000);
    const s1 = await snap();
    const sequential = await runSequential(o, world, prom, times);
    const s2 = await snap();
    const burst = await runBurst(o, world, prom, times);
    const s3 = await snap();
    const phases = { idle: phase(s0, s1), sequential: phase(s1, s2), burst: phase(s2, s3) };
    log(`phases: ${JSON.stringify(phases)}`);
    const mem = await procStats(pid);
    const queries = await queryCosts(prom);
    const steps = await firstSteps(cluster, world);
    log(`first steps of the faulted nodes: ${JSON.stringify(steps)}`);
    log(
      `queries one at a time after the run: ${queries.totalMs} ms; a cycle's ${queries.cycleQueries}: ${queries.cycleMs} ms; presence: ${queries.presenceMs} ms`,
    );
    const report = {
      nodes: o.nodes,
      runtime: o.runtime,
      scrapeTargetsPerExporter: o.shards,
      machine: machine(),
      load: [load0, loadavg()[0] ?? 0],
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
  } finally {
    await stopAll(stack, dir);
  }
}

function table(r: {
  nodes: number;
  scrapeTargetsPerExporter: number;
  daemon: { peakRssMb: number; phases: Record<'idle' | 'sequential' | 'burst', PhaseStats> };
  sequential: SequentialResult;
  burst: BurstResult;
}): string {
  const s = r.sequential;
  const b = r.burst;
  const rows: [string, string][] = [
    ['nodes (kwok)', String(r.nodes)],
    ['scrape targets per exporter', String(r.scrapeTargetsPerExporter)],
    [
      `visible in Prometheus → cordoned + ticketed, p50 / p99 (${s.completed}/${s.faults} faults)`,
      `${s.visibleToDoneMs.p50} / ${s.visibleToDoneMs.p99} ms`,
    ],
    [
      'injected → visible in Prometheus, p50 / p99',
      `${s.injectToVisibleMs.p50} / ${s.injectToVisibleMs.p99} ms`,
    ],
    [
      'injected → cordoned + ticketed, p50 / p99',
      `${s.injectToDoneMs.p50} / ${s.injectToDoneMs.p99} ms`,
    ],
    [`burst of ${b.faults}: cordons per second (first → last cordon)`, `${b.cordonsPerSecond} /s`],
    [
      'burst: first / last visible in Prometheus after injection',
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
    ...(['idle', 'sequential', 'burst'] as const).map((k): [string, string] => {
      const p = r.daemon.phases[k];
      return [
        `${k}: daemon cycle (engine + queries), daemon / Prometheus CPU`,
        `${p.cycleMs} ms, ${p.daemonCpuPercent} % / ${p.prometheusCpuPercent} %`,
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
