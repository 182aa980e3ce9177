/**
 * Pieces the real-stack benchmarks share (`e2e.ts`, `memory.ts`): kwok nodes named like the
 * simulator's, the daemon as its own process (compiled or through tsx), and what /proc and the
 * daemon's /metrics say about it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubernetesObjectApi } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { CATALOGUE } from '../src/catalogue/index.js';
import type { CatalogueEntry } from '../src/catalogue/types.js';
import type { SimWorld } from '../src/sim/sim-world.js';
import { KWOK_NODE_LABEL } from '../test/helpers/k8s-harness.js';
import { waitFor } from '../test/helpers/prometheus-harness.js';
import {
  JOB_TEMPLATES_DIR,
  OPS_IMAGE,
  OPS_NAMESPACE,
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
    inspect: { intervalMs: '1s' },
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
