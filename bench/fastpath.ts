/**
 * Fast-path latency on the real stack (`node --import tsx bench/fastpath.ts --nodes 1000
 * --agents 5 --events 40`): a host event (a real NVRM Xid 79 kernel line written to an agent's
 * /dev/kmsg) → the node cordoned AND ticketed, with no Prometheus scrape in between.
 *
 * - the stack of bench/e2e.ts: a real kube-apiserver (etcd, RBAC, the shipped deploy/aegis
 *   manifests) with N kwok nodes, the simulator (healthy: no fault is injected) scraped every 1 s
 *   by a real Prometheus, and the daemon as its own process (`aegis run`) with the controller's
 *   ServiceAccount token, inspecting every 1 s;
 * - real `aegis agent` processes (src/agent/main.ts through tsx, NODE_NAME set) for a sample of
 *   the nodes, `--agents` at a time, each on a fake host root (test/agent/fake-host.ts: a FIFO as
 *   /dev/kmsg, no tools, so every tool check is "cannot check"). They write Node conditions with
 *   the test cluster's ADMIN token: a shortcut of the benchmark, the DaemonSet uses its own
 *   ServiceAccount (deploy/agent), which may patch nodes/status only;
 * - one event per sampled node (a node once cordoned stays so): at t0 the Xid 79 line is written
 *   into the node's kmsg FIFO; a watch of the nodes as admin records when aegis.io/GpuXid turns
 *   True (the agent's share: kmsg → its PATCH of nodes/status, as seen in the watch) and when the
 *   node is cordoned and carries its aegis.io/ticketing annotation.
 *
 * Events are sequential, spaced 0.5–1.5 s apart at random so they fall at every phase of the
 * daemon's 1 s cycle. Prints a table and one JSON document. A benchmark, not a test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { V1Node } from '@kubernetes/client-node';
import { stripLogPrefix } from '../src/agent/kernel-rules.js';
import { percentile, summarize, type Summary } from '../src/bench/stats.js';
import { errorMessage } from '../src/core/errors.js';
import { TICKET_ANNOTATION } from '../src/core/types.js';
import type { SimWorld } from '../src/sim/sim-world.js';
import { FakeHost, fixture, kernelLines } from '../test/agent/fake-host.js';
import { freePorts } from '../test/helpers/k8s-harness.js';
import { waitFor } from '../test/helpers/prometheus-harness.js';
import type { TestCluster } from '../test/k8s/setup.js';
import {
  daemonMetrics,
  daemonReady,
  isRuntime,
  logger,
  machine,
  metricSum,
  procStats,
  startDaemon,
  startFleet,
  startScrapedStore,
  watchAllNodes,
  withStack,
  type Runtime,
} from './stack.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const AGENT = join(ROOT, 'src', 'agent', 'main.ts');
const XID_TYPE = 'aegis.io/GpuXid';
const EVENT_TIMEOUT_MS = 30_000;

interface Options {
  readonly nodes: number;
  /** Agent processes running at a time. */
  readonly agents: number;
  /** Events, one per sampled node. */
  readonly events: number;
  readonly json: boolean;
  readonly runtime: Runtime;
  readonly shards: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '1000' },
      agents: { type: 'string', default: '5' },
      events: { type: 'string', default: '40' },
      json: { type: 'boolean', default: false },
      runtime: { type: 'string', default: 'compiled' },
      shards: { type: 'string', default: '10' },
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
    agents: int(values.agents, 'agents'),
    events: int(values.events, 'events'),
    json: values.json,
    runtime,
    shards: int(values.shards, 'shards'),
  };
  if (o.events > o.nodes) throw new Error('--events must not exceed --nodes (one event per node)');
  return o;
}

const log = logger('fastpath');

/** The real Xid 79 line of the fixtures (lines.tsv, source noted there), without its timestamp. */
function xid79Line(): string {
  const l = kernelLines().find((k) => k.rule === 'xid' && /\): 79,/.test(k.line));
  if (l === undefined) throw new Error('test/fixtures/host/agent/kernel/lines.tsv: no Xid 79 line');
  return stripLogPrefix(l.line);
}

/** Microseconds since this machine booted (what the agent dates kmsg records against). */
function usecSinceBoot(): number {
  const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1];
  return (Date.now() - Number(btime) * 1000) * 1000;
}

/** What the admin watch saw of a node, first time each (Date.now()). */
interface NodeTimes {
  /** The agent's aegis.io/GpuXid condition present (the agent is up and writing). */
  agentSeenMs?: number;
  xidTrueMs?: number;
  cordonedMs?: number;
  doneMs?: number;
}

/** Records what each node's watch events show (agent condition, GpuXid True, cordon, ticket). */
function recordEvents(times: Map<string, NodeTimes>): (node: V1Node) => void {
  return (node) => {
    const name = node.metadata?.name;
    if (name === undefined) return;
    const now = Date.now();
    const xid = node.status?.conditions?.find((c) => c.type === XID_TYPE);
    const cordoned = node.spec?.unschedulable === true;
    if (xid === undefined && !cordoned) return;
    const t = times.get(name) ?? {};
    if (xid !== undefined) t.agentSeenMs ??= now;
    if (xid?.status === 'True') t.xidTrueMs ??= now;
    if (cordoned) {
      t.cordonedMs ??= now;
      if (node.metadata?.annotations?.[TICKET_ANNOTATION] !== undefined) t.doneMs ??= now;
    }
    times.set(name, t);
  };
}

interface Agent {
  readonly node: string;
  readonly host: FakeHost;
  readonly child: ChildProcess;
}

/** `aegis agent` for `node` on a fresh fake host, writing conditions with the admin token. */
async function startAgent(
  cluster: TestCluster,
  node: string,
  port: number,
  creds: { tokenFile: string; caFile: string },
): Promise<Agent> {
  const host = new FakeHost().kmsgFifo();
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_NAME: node };
  delete env['NODE_OPTIONS'];
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      AGENT,
      '--host-root',
      host.root,
      '--tool-mode',
      'direct',
      '--listen-host',
      '127.0.0.1',
      '--port',
      String(port),
      '--dns-name',
      'localhost',
      '--kube-server',
      cluster.stack.server,
      '--kube-token-file',
      creds.tokenFile,
      '--kube-ca-file',
      creds.caFile,
    ],
    { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let lines = 0;
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    for (const line of c.split('\n')) {
      // Warnings and errors only (not the start-up line naming the metrics port).
      if (!/"level":"(error|warn)"|aegis-agent: (?!node )/.test(line) || ++lines > 5) continue;
      log(`agent ${node}: ${line.slice(0, 300)}`);
    }
  });
  // A real node's healthy kernel history first: it also opens the FIFO's writer, so the event's
  // write does not wait for the agent's reader.
  await host.kmsgRaw(fixture('kernel/kmsg-gpud-1.log'));
  return { node, host, child };
}

async function stopAgent(a: Agent): Promise<void> {
  if (a.child.exitCode === null && a.child.signalCode === null) {
    const exited = new Promise((resolve) => a.child.once('exit', resolve));
    a.child.kill('SIGTERM');
    await Promise.race([exited, delay(10_000)]);
  }
  await a.host.close();
}

interface EventSample {
  readonly node: string;
  /** t0 → cordoned and ticketed (seen in the watch). */
  readonly doneMs: number;
  /** t0 → aegis.io/GpuXid True (the agent's share). */
  readonly agentMs: number;
  /** t0 → cordoned. */
  readonly cordonMs: number;
}

interface FastPathResult {
  readonly events: number;
  readonly completed: number;
  readonly hostEventToDoneMs: Summary & { readonly p90: number };
  readonly agentShareMs: Summary & { readonly p90: number };
  /** aegis.io/GpuXid True → cordoned + ticketed (the daemon's share, apiserver included). */
  readonly daemonShareMs: Summary & { readonly p90: number };
  readonly samples: readonly EventSample[];
}

function summary(values: readonly number[]): Summary & { readonly p90: number } {
  return { ...summarize(values, 0), p90: Math.round(percentile(values, 90)) };
}

async function runEvents(
  o: Options,
  cluster: TestCluster,
  world: SimWorld,
  times: Map<string, NodeTimes>,
  dir: string,
  agents: Agent[],
): Promise<FastPathResult> {
  const creds = { tokenFile: join(dir, 'admin-token'), caFile: join(dir, 'agent-ca.crt') };
  await writeFile(creds.tokenFile, cluster.stack.adminToken);
  await writeFile(creds.caFile, Buffer.from(cluster.stack.caData, 'base64'));
  const names = world.fleet.nodes.map((n) => n.name);
  const sample = Array.from(
    { length: o.events },
    (_, i) => names[Math.floor(((i + 0.5) * names.length) / o.events)] as string,
  );
  const line = xid79Line();
  const samples: EventSample[] = [];
  for (let b = 0; b < sample.length; b += o.agents) {
    const batch = sample.slice(b, b + o.agents);
    const ports = await freePorts(batch.length);
    const started = await Promise.all(
      batch.map((node, i) => startAgent(cluster, node, ports[i] ?? 0, creds)),
    );
    agents.push(...started);
    try {
      await waitFor(() => batch.every((n) => times.get(n)?.agentSeenMs !== undefined), 120_000, {
        what: `agents of ${batch.join(', ')} writing their conditions`,
        intervalMs: 100,
      });
      for (const a of started) {
        await delay(500 + Math.random() * 1_000);
        const t0 = Date.now();
        await a.host.kmsg([line], usecSinceBoot());
        try {
          const t = await waitFor(
            () => {
              const t = times.get(a.node);
              return t?.doneMs === undefined ? undefined : t;
            },
            EVENT_TIMEOUT_MS,
            { what: `${a.node} cordoned and ticketed`, intervalMs: 5 },
          );
          const s: EventSample = {
            node: a.node,
            doneMs: (t.doneMs ?? NaN) - t0,
            agentMs: (t.xidTrueMs ?? NaN) - t0,
            cordonMs: (t.cordonedMs ?? NaN) - t0,
          };
          samples.push(s);
          log(
            `event ${samples.length}/${o.events} on ${a.node}: GpuXid True +${s.agentMs} ms, cordoned +${s.cordonMs} ms, cordoned+ticketed +${s.doneMs} ms`,
          );
        } catch (err) {
          log(`event on ${a.node}: ${errorMessage(err)}`);
        }
      }
    } finally {
      await Promise.all(started.map(stopAgent));
      agents.splice(0, agents.length, ...agents.filter((a) => !started.includes(a)));
    }
  }
  return {
    events: o.events,
    completed: samples.length,
    hostEventToDoneMs: summary(samples.map((s) => s.doneMs)),
    agentShareMs: summary(samples.map((s) => s.agentMs)),
    daemonShareMs: summary(samples.map((s) => s.doneMs - s.agentMs)),
    samples,
  };
}

async function main(): Promise<void> {
  const o = parseOptions();
  const started = Date.now();
  const load0 = loadavg()[0] ?? 0;
  await withStack('fastpath', o.runtime, log, async (running, dir) => {
    const { cluster, world } = await startFleet(
      { nodes: o.nodes, nodeHeartbeatMs: 60_000, log },
      running,
    );
    // The presence families only (the daemon's normal cycles), every series of them.
    const prom = await startScrapedStore(
      world,
      {
        store: 'prometheus',
        served: { full: [], presence: 'all' },
        shards: o.shards,
        scrapeIntervalMs: 1000,
        dir,
        log,
      },
      running,
    );
    const times = new Map<string, NodeTimes>();
    running.watch = await watchAllNodes(cluster, recordEvents(times), log);
    const [metricsPort] = (await freePorts(1)) as [number];
    const daemon = (running.daemon = await startDaemon(cluster, {
      dir,
      promUrl: prom.url,
      metricsPort,
      runtime: o.runtime,
      clusterName: 'fastpath-bench',
      log,
    }));
    await daemonReady(metricsPort, daemon);
    const spurious = [...times].filter(([, t]) => t.cordonedMs !== undefined).length;
    if (spurious > 0) log(`${spurious} nodes cordoned before any event`);
    const m0 = await daemonMetrics(metricsPort);
    const cpu0 = (await procStats(daemon.pid ?? 0)).cpuS;
    const t0 = Date.now();
    const agents: Agent[] = [];
    const result = await runEvents(o, cluster, world, times, dir, agents).finally(() =>
      Promise.all(agents.map(stopAgent)),
    );
    const m1 = await daemonMetrics(metricsPort);
    const cpu1 = (await procStats(daemon.pid ?? 0)).cpuS;
    const seconds = (Date.now() - t0) / 1000;
    const cycles =
      metricSum(m1, 'aegis_inspect_cycle_seconds_count') -
      metricSum(m0, 'aegis_inspect_cycle_seconds_count');
    const report = {
      nodes: o.nodes,
      runtime: o.runtime,
      agentsAtATime: o.agents,
      agentCredentials: 'test-cluster admin token (benchmark shortcut)',
      machine: machine(),
      load: [load0, loadavg()[0] ?? 0],
      daemon: {
        cyclesDuringEvents: cycles,
        secondsOfEvents: Math.round(seconds),
        cpuPercent: Number((((cpu1 - cpu0) / seconds) * 100).toFixed(1)),
        spuriousCordons: spurious,
      },
      fastPath: result,
      wallSeconds: Math.round((Date.now() - started) / 1000),
    };
    const text = o.json ? '' : `${table(report.nodes, result)}\n`;
    process.stdout.write(`${text}${JSON.stringify(report, null, o.json ? 2 : 0)}\n`);
  });
}

function table(nodes: number, r: FastPathResult): string {
  const fmt = (s: Summary & { p90: number }): string =>
    `${s.p50} / ${s.p90} / ${s.p99} / ${s.max} ms`;
  const rows: [string, string][] = [
    ['nodes (kwok)', String(nodes)],
    ['events completed', `${r.completed}/${r.events}`],
    ['host event → cordoned + ticketed, p50 / p90 / p99 / max', fmt(r.hostEventToDoneMs)],
    ['agent share: kmsg → GpuXid True in the watch', fmt(r.agentShareMs)],
    ['daemon share: GpuXid True → cordoned + ticketed', fmt(r.daemonShareMs)],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(
    `fastpath: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});
