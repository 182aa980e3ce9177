/**
 * The daemon's memory at fleet scale (`node --import tsx bench/memory.ts --nodes 10000`):
 *
 * - a real kube-apiserver (etcd, RBAC, the shipped deploy/aegis manifests) with N kwok nodes named
 *   like the simulator's, their status renewed every 60 s;
 * - the simulator's fleet of the same N nodes answering the daemon's PromQL through a Prometheus
 *   HTTP API on loopback (every query evaluated on the simulated exporters' series: a real
 *   Prometheus scraping N nodes every second does not fit beside the rest on this machine, and the
 *   daemon's memory does not depend on who answers);
 * - the daemon as a separate process (compiled by default), inspecting every 1 s, dry-run off.
 *
 * During the run 1 % of the nodes get a fault (cordoned and ticketed by the daemon). Measured:
 * the daemon's RSS every second, its peak (VmHWM), and what it did (cycles, cordons). Prints a
 * table and one JSON document. A benchmark, not a test.
 */
import { loadavg } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { summarize } from '../src/bench/stats.js';
import { systemClock } from '../src/core/clock.js';
import { errorMessage } from '../src/core/errors.js';
import { freePorts } from '../test/helpers/k8s-harness.js';
import { startSimPromApi } from '../test/helpers/sim-prom-api.js';
import {
  daemonMetrics,
  isRuntime,
  logger,
  machine,
  metricSum,
  procStats,
  startDaemon,
  startFleet,
  withStack,
  XID_FAULTS,
  type Runtime,
} from './stack.js';

const log = logger('memory');

interface Options {
  readonly nodes: number;
  readonly minutes: number;
  readonly runtime: Runtime;
  readonly json: boolean;
  /** NODE_OPTIONS of the daemon (`--node-options=--max-old-space-size=256`). */
  readonly nodeOptions?: string;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '10000' },
      minutes: { type: 'string', default: '4' },
      runtime: { type: 'string', default: 'compiled' },
      json: { type: 'boolean', default: false },
      'node-options': { type: 'string' },
    },
  });
  const num = (v: string, name: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0)
      throw new Error(`--${name}: "${v}" is not a positive number`);
    return n;
  };
  const runtime = values.runtime;
  if (!isRuntime(runtime)) throw new Error(`--runtime: "${runtime}" is not compiled or tsx`);
  return {
    nodes: Math.round(num(values.nodes, 'nodes')),
    minutes: num(values.minutes, 'minutes'),
    runtime,
    json: values.json,
    ...(values['node-options'] === undefined ? {} : { nodeOptions: values['node-options'] }),
  };
}

async function main(): Promise<void> {
  const o = parseOptions();
  const started = Date.now();
  const load0 = loadavg()[0] ?? 0;
  await withStack('memory', o.runtime, log, async (running, dir) => {
    const { cluster, world } = await startFleet(
      { nodes: o.nodes, nodeHeartbeatMs: 60_000, log },
      running,
    );
    const api = await startSimPromApi({ source: world.metrics, clock: systemClock });
    running.store = { stop: () => api.close() };
    const [metricsPort] = (await freePorts(1)) as [number];
    const daemon = (running.daemon = await startDaemon(cluster, {
      dir,
      promUrl: api.url,
      metricsPort,
      runtime: o.runtime,
      clusterName: 'memory-bench',
      // The simulator answers one query at a time, seconds per cycle at this size.
      prometheus: { timeoutMs: '120s' },
      ...(o.nodeOptions === undefined ? {} : { nodeOptions: o.nodeOptions }),
      log,
    }));
    const pid = daemon.pid ?? 0;
    const rss: { atS: number; mb: number }[] = [];
    const endMs = Date.now() + o.minutes * 60_000;
    const names = world.fleet.nodes.map((n) => n.name);
    const faults = Math.max(1, Math.round(o.nodes / 100));
    let injected = 0;
    while (Date.now() < endMs && daemon.exitCode === null) {
      const atS = Math.round((Date.now() - (endMs - o.minutes * 60_000)) / 1000);
      rss.push({ atS, mb: Number((await procStats(pid)).rssMb.toFixed(1)) });
      // Faults spread over the first half of the run.
      const due = Math.min(faults, Math.ceil((faults * atS) / (o.minutes * 30)));
      for (; injected < due; injected++) {
        const entry = XID_FAULTS[injected % XID_FAULTS.length];
        const node = names[Math.floor(((injected + 0.5) * names.length) / faults)];
        if (entry === undefined || node === undefined) continue;
        world.faults.injectFault({ condition: entry.name, node, atMs: Date.now() });
      }
      await delay(1_000);
    }
    const stats = await procStats(pid);
    const m = await daemonMetrics(metricsPort).catch((err: unknown) => {
      log(`daemon metrics: ${errorMessage(err)}`);
      return '';
    });
    const cycles = metricSum(m, 'aegis_inspect_cycle_seconds_count');
    const secondHalf = rss.slice(Math.floor(rss.length / 2)).map((s) => s.mb);
    const report = {
      nodes: o.nodes,
      runtime: o.runtime,
      nodeOptions: o.nodeOptions ?? '',
      machine: machine(),
      load: [load0, loadavg()[0] ?? 0],
      daemon: {
        peakRssMb: Number(stats.hwmMb.toFixed(1)),
        rssSecondHalfMb: summarize(secondHalf, 1),
        cpuSeconds: stats.cpuS,
        cycles,
        cycleSeconds: Number((metricSum(m, 'aegis_inspect_cycle_seconds_sum') / cycles).toFixed(2)),
        queries: metricSum(m, 'aegis_inspect_queries_total'),
        faultsInjected: injected,
        heapUsedMb: Number((metricSum(m, 'nodejs_heap_size_used_bytes') / 2 ** 20).toFixed(1)),
        heapTotalMb: Number((metricSum(m, 'nodejs_heap_size_total_bytes') / 2 ** 20).toFixed(1)),
        cordons: m
          .split('\n')
          .filter((l) => /^aegis_sop_total\{.*action="Cordon",status="Succeeded"/.test(l))
          .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0),
      },
      simulatorQueries: api.queries,
      rss,
      wallSeconds: Math.round((Date.now() - started) / 1000),
    };
    const d = report.daemon;
    const rows: [string, string][] = [
      ['nodes (kwok) / runtime', `${o.nodes} / ${o.runtime}`],
      ['daemon peak RSS (VmHWM)', `${d.peakRssMb} MB`],
      [
        'daemon RSS, second half: p50 / max',
        `${d.rssSecondHalfMb.p50} / ${d.rssSecondHalfMb.max} MB`,
      ],
      ['cycles / mean cycle', `${d.cycles} / ${d.cycleSeconds} s`],
      ['faults injected / cordoned', `${d.faultsInjected} / ${d.cordons}`],
      ['V8 heap at the end: used / total', `${d.heapUsedMb} / ${d.heapTotalMb} MB`],
      ['daemon CPU', `${d.cpuSeconds} s`],
    ];
    const w = Math.max(...rows.map(([k]) => k.length));
    const text = o.json ? '' : `${rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n')}\n`;
    process.stdout.write(`${text}${JSON.stringify(report, null, o.json ? 2 : 0)}\n`);
  });
}

main().catch((err: unknown) => {
  process.stderr.write(
    `memory: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});
