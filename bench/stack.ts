/**
 * Pieces the real-stack benchmarks share (`e2e.ts`, `fastpath.ts`, `memory.ts`): a kube-apiserver
 * with kwok nodes named like the simulator's, the simulator's exporters scraped by a real store
 * (Prometheus or VictoriaMetrics), the daemon as its own process (compiled or through tsx), a
 * watch of every node, and what /proc and the daemon's /metrics say about it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { KubernetesObjectApi, Watch, type V1Node } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { CATALOGUE, metricNamesOf, SIGNAL_PRESENCE } from '../src/catalogue/index.js';
import type { CatalogueEntry } from '../src/catalogue/types.js';
import { systemClock } from '../src/core/clock.js';
import { errorMessage } from '../src/core/errors.js';
import type { PromFlavor } from '../src/prom/prom-client.js';
import { startExporterServer, type ExporterServer } from '../src/sim/exporter-server.js';
import type { SeriesStore } from '../src/sim/series-store.js';
import { createSimWorld, type SimWorld } from '../src/sim/sim-world.js';
import { KWOK_NODE_LABEL } from '../test/helpers/k8s-harness.js';
import {
  simExporterTargets,
  startPrometheus,
  waitFor,
  type ScrapeTarget,
} from '../test/helpers/prometheus-harness.js';
import { startVictoriaMetrics } from '../test/helpers/vm-harness.js';
import {
  JOB_TEMPLATES_DIR,
  OPS_IMAGE,
  OPS_NAMESPACE,
  startTestCluster,
  type TestCluster,
} from '../test/k8s/setup.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'src', 'cli', 'main.ts');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/** XID faults of varied conditions: no `for:`, first SOP step Cordon, one exporter family. */
export const XID_FAULTS: readonly CatalogueEntry[] = CATALOGUE.filter(
  (e) => /^Xid\d+/.test(e.name) && e.forMs === 0 && e.sop !== null && e.priority <= 99,
);

/** How the daemon runs: the compiled build (as deployed) or TypeScript through tsx. */
export type Runtime = 'compiled' | 'tsx';

export function isRuntime(v: string): v is Runtime {
  return v === 'compiled' || v === 'tsx';
}

/** A progress line on stderr, `[name hh:mm:ss.mmm] msg`. */
export function logger(name: string): (msg: string) => void {
  return (msg) => {
    process.stderr.write(`[${name} ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
  };
}

/** The machine a figure was measured on. */
export function machine(): { cpus: number; memoryGb: number; node: string } {
  return {
    cpus: cpus().length,
    memoryGb: Number((totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
  };
}

/** `npm run build` into dist/ for the compiled runtime. Blocks this process. */
export function buildDaemon(runtime: Runtime, log: (msg: string) => void): void {
  if (runtime !== 'compiled') return;
  log('building the daemon (npm run build)');
  execFileSync(process.execPath, [TSC, '-p', join(ROOT, 'tsconfig.build.json')], {
    cwd: ROOT,
    stdio: 'inherit',
  });
}

/** Creates a kwok node per simulated node, same names and labels, `batch` at a time. */
export async function createNodes(
  cluster: TestCluster,
  world: SimWorld,
  batch = 25,
): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(cluster.admin);
  const nodes = world.fleet.nodes;
  for (let i = 0; i < nodes.length; i += batch) {
    await Promise.all(
      nodes.slice(i, i + batch).map((n) =>
        api.create({
          apiVersion: 'v1',
          kind: 'Node',
          metadata: { name: n.name, labels: { ...n.labels, [KWOK_NODE_LABEL]: 'fake' } },
        }),
      ),
    );
  }
}

/** The running pieces of a real-stack benchmark, stopped in reverse order by `stopStack`. */
export interface Running {
  cluster?: TestCluster;
  exporters?: ExporterServer;
  /** What answers the daemon's PromQL (Prometheus, VictoriaMetrics, the simulator's API). */
  store?: { stop(): Promise<void> };
  daemon?: ChildProcess;
  watch?: { abort(): void };
}

/** Stops what `running` holds: the watch, the daemon, the store, the exporters, the cluster. */
export async function stopStack(running: Running): Promise<void> {
  running.watch?.abort();
  await stopDaemon(running.daemon);
  await running.store?.stop();
  await running.exporters?.close();
  await running.cluster?.stop();
}

/**
 * Builds the daemon (compiled runtime), runs `fn` with an empty `Running` and a fresh temp dir,
 * then stops whatever `fn` started there and removes the dir, whether `fn` succeeded or not.
 */
export async function withStack<T>(
  name: string,
  runtime: Runtime,
  log: (msg: string) => void,
  fn: (running: Running, dir: string) => Promise<T>,
): Promise<T> {
  const running: Running = {};
  const dir = await mkdtemp(join(tmpdir(), `aegis-${name}-`));
  try {
    // Before anything else runs: the build blocks this process.
    buildDaemon(runtime, log);
    return await fn(running, dir);
  } finally {
    await stopStack(running);
    await rm(dir, { recursive: true, force: true });
  }
}

/** From this many nodes a fleet is large: created 50 at a time, Ready waited for longer. */
export const LARGE_FLEET = 5_000;

/** Options of `startFleet`. */
export interface FleetOptions {
  readonly nodes: number;
  /** How often kwok renews each node's status. */
  readonly nodeHeartbeatMs: number;
  readonly log: (msg: string) => void;
}

/**
 * etcd + kube-apiserver (the shipped manifests applied) + kwok, and the simulator's world of
 * `nodes` nodes (seed 7, system clock) with a kwok node of the same name and labels for each,
 * waited for until every one is Ready.
 */
export async function startFleet(
  o: FleetOptions,
  running: Running,
): Promise<{ cluster: TestCluster; world: SimWorld }> {
  o.log(`starting kube-apiserver + kwok, ${o.nodes} nodes`);
  const cluster = (running.cluster = await startTestCluster({
    kwok: true,
    nodeHeartbeatMs: o.nodeHeartbeatMs,
  }));
  const world = createSimWorld({
    nodes: o.nodes,
    seed: 7,
    catalogue: CATALOGUE,
    clock: systemClock,
  });
  const t0 = Date.now();
  const large = o.nodes >= LARGE_FLEET;
  await createNodes(cluster, world, large ? 50 : 25);
  await waitFor(async () => (await readyNodes(cluster)) === o.nodes, large ? 900_000 : 300_000, {
    what: 'nodes Ready',
    intervalMs: large ? 5_000 : 1_000,
  });
  o.log(`${o.nodes} nodes Ready in ${Math.round((Date.now() - t0) / 1000)} s`);
  return { cluster, world };
}

/** The store the simulator's exporters are scraped into and the daemon queries. */
export type StoreKind = 'prometheus' | 'victoriametrics';

export function isStoreKind(v: string): v is StoreKind {
  return v === 'prometheus' || v === 'victoriametrics';
}

/** What the exporters serve of the simulated store. */
export interface Served {
  /** Metric names served in full (every series of every node): the faults' metrics. */
  readonly full: readonly string[];
  /**
   * Also serve the families the presence queries read (`SIGNAL_PRESENCE`); with `lean`, one
   * series per node of each (presence needs no more), else all of them.
   */
  readonly presence: 'all' | 'lean';
}

/**
 * The store as the exporter server sees it, limited to `served`: the whole simulated exposition is
 * ~2,000 series per node (320 MB per scrape at 1,000 nodes), which one 2-core machine can neither
 * produce nor ingest every second.
 */
export function servedStore(store: SeriesStore, served: Served): SeriesStore {
  const full = new Set(served.full);
  const presence = new Set(
    Object.values(SIGNAL_PRESENCE).flatMap((e) => (e === null ? [] : metricNamesOf(e))),
  );
  const keep = new Set([...full, ...presence]);
  const lean = served.presence === 'lean';
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'families') return () => target.families().filter((f) => keep.has(f.name));
      if (prop === 'forEachAt' && lean) {
        return (...args: Parameters<SeriesStore['forEachAt']>): void => {
          const [metric, atMs, node, fn] = args;
          if (full.has(metric) || node === undefined) {
            target.forEachAt(metric, atMs, node, fn);
            return;
          }
          let first = true;
          target.forEachAt(metric, atMs, node, (s) => {
            if (first) fn(s);
            first = false;
          });
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}

/** Options of `startScrapedStore`. */
export interface ScrapedStoreOptions {
  readonly store: StoreKind;
  readonly served: Served;
  /** Scrape targets per exporter the fleet is split over (their scrapes land at different offsets). */
  readonly shards: number;
  readonly scrapeIntervalMs: number;
  /** A temp dir for VictoriaMetrics's scrape config. */
  readonly dir: string;
  /** Rule files Prometheus evaluates (the recorded mode's `aegis rules --tiered`); Prometheus only. */
  readonly ruleFiles?: readonly string[];
  readonly log: (msg: string) => void;
}

/** A store scraping the simulator. */
export interface ScrapedStore {
  readonly kind: StoreKind;
  /** Its Prometheus query API root (`prometheus.url`). */
  readonly url: string;
  /** `prometheus.flavor` for it. */
  readonly flavor: PromFlavor;
  readonly pid: number;
}

/**
 * Serves the simulator's exporters (`served` of them) and starts the store scraping them every
 * `scrapeIntervalMs`: a real Prometheus, or a real single-node VictoriaMetrics scraping them
 * itself (`-promscrape.config`, the same jobs as Prometheus's).
 */
export async function startScrapedStore(
  world: SimWorld,
  o: ScrapedStoreOptions,
  running: Running,
): Promise<ScrapedStore> {
  const exporters = (running.exporters = await startExporterServer({
    fleet: { ...world, store: servedStore(world.store, o.served) },
  }));
  // Split over several targets per exporter, as per-node targets are in a real cluster: one
  // target would put every node's scrape at the same offset from the daemon's cycles, and every
  // fault would wait the same fraction of the interval.
  const targets = simExporterTargets(exporters.url, o.shards);
  let store: ScrapedStore;
  if (o.store === 'prometheus') {
    const prom = await startPrometheus({
      scrapeTargets: targets,
      scrapeIntervalMs: o.scrapeIntervalMs,
      ...(o.ruleFiles === undefined ? {} : { ruleFiles: o.ruleFiles }),
    });
    running.store = prom;
    store = { kind: o.store, url: prom.url, flavor: 'prometheus', pid: prom.pid };
  } else {
    if (o.ruleFiles !== undefined)
      throw new Error('rule files: VictoriaMetrics evaluates no rules itself (vmalert does)');
    const config = join(o.dir, 'vm-scrape.yaml');
    await writeFile(config, scrapeConfig(targets, o.scrapeIntervalMs));
    const vm = await startVictoriaMetrics({
      extraArgs: [
        `-promscrape.config=${config}`,
        '-promscrape.maxScrapeSize=256MiB',
        // The harness's 512 MiB (the last value wins) refuses the XID selection at 10,000 nodes
        // (80,000 series): "422 not enough memory for processing".
        '-memory.allowedBytes=4GiB',
      ],
    });
    running.store = vm;
    store = { kind: o.store, url: vm.queryUrl, flavor: 'victoriametrics', pid: vm.pid };
  }
  o.log(
    `${o.store} ${store.url} scraping ${exporters.url} every ${o.scrapeIntervalMs} ms (${o.shards} targets per exporter)`,
  );
  return store;
}

/** A Prometheus-format scrape config (honor_labels, loopback http) for VictoriaMetrics. */
function scrapeConfig(targets: readonly ScrapeTarget[], intervalMs: number): string {
  return stringify({
    global: { scrape_interval: `${intervalMs}ms`, scrape_timeout: `${intervalMs}ms` },
    scrape_configs: targets.map((t) => ({
      job_name: t.job,
      honor_labels: true,
      metrics_path: t.path ?? '/metrics',
      ...(t.params === undefined
        ? {}
        : { params: Object.fromEntries(Object.entries(t.params).map(([k, v]) => [k, [v]])) }),
      static_configs: [{ targets: t.urls.map((u) => new URL(u).host) }],
    })),
  });
}

/**
 * Watches every node as admin, calling `onEvent` for each event; the apiserver ends a watch now
 * and then (timeouts, a slow reader), so it is started again and no change goes unseen.
 */
export async function watchAllNodes(
  cluster: TestCluster,
  onEvent: (node: V1Node) => void,
  log: (msg: string) => void,
): Promise<{ abort(): void }> {
  const watch = new Watch(cluster.admin);
  let stopped = false;
  let req: { abort(): void } | undefined;
  const start = async (): Promise<void> => {
    req = await watch.watch(
      '/api/v1/nodes',
      {},
      (_type: string, node: V1Node) => {
        onEvent(node);
      },
      (err: unknown) => {
        if (stopped) return;
        log(
          `node watch ended (${err === null || err === undefined ? 'closed' : errorMessage(err)}); watching again`,
        );
        void delay(200).then(start);
      },
    );
  };
  await start();
  return {
    abort() {
      stopped = true;
      req?.abort();
    },
  };
}

/** Nodes whose Ready condition is True. */
export async function readyNodes(cluster: TestCluster): Promise<number> {
  const list = await cluster.adminCore.listNode();
  return list.items.filter((n) =>
    (n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
  ).length;
}

/** What `startDaemon` needs besides the cluster. */
export interface DaemonOptions {
  readonly dir: string;
  readonly promUrl: string;
  readonly metricsPort: number;
  readonly runtime: Runtime;
  readonly clusterName: string;
  /** Merged over the benchmark defaults (1 s interval, dry-run off, limits raised). */
  readonly prometheus?: Record<string, unknown>;
  /** Merged over `inspect: { intervalMs: 1s }`. */
  readonly inspect?: Record<string, unknown>;
  /** NODE_OPTIONS for the daemon process (V8 heap flags, say); none by default. */
  readonly nodeOptions?: string;
  /** Node flags that NODE_OPTIONS does not take (`--cpu-prof`), put before the entry point. */
  readonly execArgv?: readonly string[];
  readonly log: (msg: string) => void;
}

/**
 * Writes the daemon's config (out of cluster with the controller ServiceAccount's token and the
 * apiserver CA, inspection every 1 s, dry-run off, storm/cordon/concurrency limits raised) and
 * starts `aegis run` as a separate process. Its first 20 warnings and errors go to `log`.
 */
export async function startDaemon(cluster: TestCluster, o: DaemonOptions): Promise<ChildProcess> {
  const tokenFile = join(o.dir, 'token');
  const caFile = join(o.dir, 'ca.crt');
  await writeFile(tokenFile, cluster.stack.controllerToken);
  await writeFile(caFile, Buffer.from(cluster.stack.caData, 'base64'));
  const config = {
    clusterName: o.clusterName,
    prometheus: { url: o.promUrl, ...o.prometheus },
    inspect: { intervalMs: '1s', ...o.inspect },
    metricsPort: o.metricsPort,
    kubernetes: {
      inCluster: false,
      server: cluster.stack.server,
      tokenFile,
      caFile,
      jobTemplatesDir: JOB_TEMPLATES_DIR,
      // The shipped ops namespace and image: the only ones the shipped RBAC and policy allow.
      jobNamespace: OPS_NAMESPACE,
      opsImage: OPS_IMAGE,
    },
    safety: {
      dryRun: false,
      maxCordonedFraction: 1,
      stormMaxNewFaultyNodes: 100_000,
      stormMaxNewFaultyFraction: 1,
      maxConcurrent: { total: 10_000 },
    },
  };
  const file = join(o.dir, 'aegis.yaml');
  await writeFile(file, stringify(config));
  // The compiled build (npm run build) is how the daemon is deployed; tsx adds ~85 MB of RSS.
  const entry =
    o.runtime === 'compiled' ? [join(ROOT, 'dist', 'cli', 'main.js')] : ['--import', 'tsx', CLI];
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  if (o.nodeOptions !== undefined) env['NODE_OPTIONS'] = o.nodeOptions;
  const child = spawn(
    process.execPath,
    [...(o.execArgv ?? []), ...entry, 'run', '--config', file],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let warnings = 0;
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    for (const line of c.split('\n')) {
      if (!/"level":"(error|warn)"/.test(line) || ++warnings > 20) continue;
      o.log(`daemon: ${line.slice(0, 300)}`);
    }
  });
  return child;
}

/** Stops the daemon (SIGTERM, then waits up to 10 s for it to exit). */
export async function stopDaemon(daemon: ChildProcess | undefined): Promise<void> {
  if (daemon === undefined || daemon.exitCode !== null) return;
  const exited = new Promise((resolve) => daemon.once('exit', resolve));
  daemon.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
}

/** Sum of a metric's samples in the daemon's /metrics text. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{'))
      continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export async function daemonMetrics(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/**
 * Waits until the daemon has run a few cycles with every signal present on every node; fails at
 * once, with the exit code, if the daemon process ends first.
 */
export async function daemonReady(
  metricsPort: number,
  daemon: ChildProcess,
  timeoutMs = 180_000,
): Promise<void> {
  let onExit = (): void => undefined;
  const exited = new Promise<never>((_resolve, reject) => {
    onExit = () => {
      reject(
        new Error(
          `the daemon exited before it was ready (${String(daemon.exitCode ?? daemon.signalCode)})`,
        ),
      );
    };
    if (daemon.exitCode !== null || daemon.signalCode !== null) onExit();
    else daemon.once('exit', onExit);
  });
  try {
    await Promise.race([
      exited,
      waitFor(
        async () => {
          const m = await daemonMetrics(metricsPort);
          return (
            metricSum(m, 'aegis_inspect_cycle_seconds_count') >= 3 &&
            metricSum(m, 'aegis_signal_stale_nodes') === 0 &&
            metricSum(m, 'aegis_metrics_source_up') === 1
          );
        },
        timeoutMs,
        { what: 'daemon cycling with every signal present', intervalMs: 1_000 },
      ),
    ]);
  } finally {
    daemon.off('exit', onExit);
  }
}

/** VmHWM / VmRSS (MB) and CPU seconds of a process, from /proc. */
export async function procStats(
  pid: number,
): Promise<{ hwmMb: number; rssMb: number; cpuS: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number =>
    Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(stat[11]) + Number(stat[12]);
  return { hwmMb: kb('VmHWM') / 1024, rssMb: kb('VmRSS') / 1024, cpuS: ticks / 100 };
}
