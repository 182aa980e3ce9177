/**
 * Starts a real VictoriaMetrics (built from the VictoriaMetrics Go module by
 * scripts/build-vm-bins.sh, cached in ~/.cache/aegis/vm/v<version>/) on a free loopback port with
 * its storage in a fresh temp dir, for the VictoriaMetrics test tier. `stop()` kills only the PID
 * this harness started and removes the dir; a reaper shell kills the server if the test process
 * dies first.
 *
 * The module proxy serves the single-node releases only (the cluster's `-cluster` tags are not
 * served), so this is `victoria-metrics`: vminsert, vmselect and vmstorage linked into one
 * program, with the cluster's query engine (MetricsQL) and storage. Queries go to
 * `<url>/prometheus` (the cluster's `/select/<AccountID>/prometheus`), writes to
 * `<url>/api/v1/write` (the cluster's `/insert/<AccountID>/prometheus/api/v1/write`).
 *
 * `feedFrom(prom, vm)` makes a real Prometheus remote-write everything it scrapes and records
 * into VictoriaMetrics, as sites do: `up` and the staleness markers keep Prometheus's meaning.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePorts } from './k8s-harness.js';
import type { DetectionBackend } from './detection-cases.js';
import {
  launch,
  REAPER,
  startPrometheus,
  stopChild,
  waitFor,
  waitReady,
  type PrometheusServer,
} from './prometheus-harness.js';

/** github.com/VictoriaMetrics/VictoriaMetrics version (AEGIS_VM_VERSION overrides). */
export const VM_VERSION = process.env.AEGIS_VM_VERSION ?? '1.151.0';
/** The server binary (AEGIS_VM_BIN overrides). */
export const VM_BIN =
  process.env.AEGIS_VM_BIN ??
  join(
    process.env.AEGIS_CACHE_DIR ?? join(homedir(), '.cache', 'aegis'),
    'vm',
    `v${VM_VERSION}`,
    'victoria-metrics',
  );

const LOG_TAIL_LINES = 30;

/** Options of `startVictoriaMetrics`. */
export interface VmOptions {
  /** `-search.maxLookback` (Prometheus's `--query.lookback-delta`); default: detected per series. */
  readonly lookbackMs?: number;
  readonly extraArgs?: readonly string[];
}

/** A running VictoriaMetrics. */
export interface VmServer {
  /** Root URL (`/health`, `/api/v1/write`, `/api/v1/import/prometheus`). */
  readonly url: string;
  /** Prometheus query API root, as `prometheus.url` names it. */
  readonly queryUrl: string;
  /** Remote-write endpoint. */
  readonly writeUrl: string;
  readonly port: number;
  readonly dir: string;
  readonly pid: number;
  /** Imports Prometheus text format lines (timestamps in ms) and makes them searchable. */
  importPrometheus(text: string): Promise<void>;
  /** Makes every ingested sample searchable now (`/internal/force_flush`). */
  flush(): Promise<void>;
  /** Kills the process and removes the temp dir. */
  stop(): Promise<void>;
  logTail(): string;
}

/** Throws a clear error when the binary was not built. */
export function assertVmBuilt(): void {
  if (!existsSync(VM_BIN)) {
    throw new Error(
      `vm-harness: ${VM_BIN} not found; run \`bash scripts/build-vm-bins.sh\` ` +
        '(npm test runs it) to build it from the VictoriaMetrics Go module',
    );
  }
}

/** Starts VictoriaMetrics and waits for /health. On failure the error carries the log tail. */
export async function startVictoriaMetrics(opts: VmOptions = {}): Promise<VmServer> {
  assertVmBuilt();
  const dir = await mkdtemp(join(tmpdir(), 'aegis-vm-'));
  const logPath = join(dir, 'victoria-metrics.log');
  const tail = (): string => {
    const text = existsSync(logPath) ? readFileSync(logPath, 'utf8') : '';
    return `--- victoria-metrics log (${logPath}) ---\n${text.trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n')}`;
  };
  const reaper = launch(
    '/bin/sh',
    ['-c', REAPER, 'reaper', String(process.pid), dir],
    dir,
    'reaper',
  );
  let child: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (child !== undefined) await stopChild(child);
    await stopChild(reaper);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await mkdir(join(dir, 'data'));
    const [port = 0] = await freePorts(1);
    const url = `http://127.0.0.1:${String(port)}`;
    child = launch(
      VM_BIN,
      [
        `-storageDataPath=${join(dir, 'data')}`,
        `-httpListenAddr=127.0.0.1:${String(port)}`,
        '-retentionPeriod=100y',
        '-memory.allowedBytes=512MiB',
        '-loggerLevel=WARN',
        ...(opts.lookbackMs === undefined
          ? []
          : [`-search.maxLookback=${String(opts.lookbackMs)}ms`]),
        ...(opts.extraArgs ?? []),
      ],
      dir,
      'victoria-metrics',
    );
    writeFileSync(join(dir, 'pids'), child.pid === undefined ? '' : `${String(child.pid)}\n`);
    await waitReady(url, child, tail, '/health');
    const flush = async (): Promise<void> => {
      const res = await fetch(`${url}/internal/force_flush`);
      if (!res.ok) throw new Error(`vm-harness: force_flush answered ${String(res.status)}`);
    };
    const pid = child.pid ?? 0;
    return {
      url,
      queryUrl: `${url}/prometheus`,
      writeUrl: `${url}/api/v1/write`,
      port,
      dir,
      pid,
      importPrometheus: async (text) => {
        const res = await fetch(`${url}/api/v1/import/prometheus`, { method: 'POST', body: text });
        if (!res.ok) {
          throw new Error(
            `vm-harness: import answered ${String(res.status)}: ${await res.text()}\n${tail()}`,
          );
        }
        await flush();
      },
      flush,
      stop,
      logTail: tail,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Makes `prom` remote-write everything it scrapes and records into `vm` (adds `remote_write` to
 * its prometheus.yml and reloads). Batches are sent every 100 ms at most, as a site tuned for
 * alerting would; what Prometheus scraped is then in VictoriaMetrics within that plus
 * VictoriaMetrics's own flush of new samples to searchable parts (up to 2 s).
 */
export async function feedFrom(prom: PrometheusServer, vm: VmServer): Promise<void> {
  const file = join(prom.dir, 'prometheus.yml');
  const config = parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  config['remote_write'] = [
    {
      url: vm.writeUrl,
      queue_config: { batch_send_deadline: '100ms', min_backoff: '50ms', max_backoff: '1s' },
    },
  ];
  await writeFile(file, stringify(config));
  await prom.reload();
}

/**
 * VictoriaMetrics as the detection cases' backend: a real Prometheus scrapes (and evaluates the
 * recording rules) and remote-writes into it; the daemon queries VictoriaMetrics with
 * `prometheus.flavor: victoriametrics`. Prometheus's `--query.lookback-delta` becomes
 * `-search.maxLookback`. History is imported through `/api/v1/import/prometheus`.
 */
export const VM_BACKEND: DetectionBackend = {
  name: `a real VictoriaMetrics (v${VM_VERSION})`,
  flavor: 'victoriametrics',
  // A sample Prometheus scraped is served by VictoriaMetrics 3.0-4.0 s after the scrape ended
  // for a single probe (measured on this 2-core machine: remote-write batches of 100 ms, and
  // VictoriaMetrics's flush of new samples to searchable parts every 2 s); in the every-rule test,
  // with a whole fleet's scrapes and recording rules remote-written at once, the faults were seen
  // 8.6-10.7 s after Prometheus's scrape ended (polls of 0.4 s). The bound is the store's lag,
  // not the engine's: the engine's own promptness is held to 2-3 scrapes on Prometheus.
  ingestLagMs: 12_000,
  start: async (opts) => {
    const vm = await startVictoriaMetrics(
      opts.lookbackDeltaMs === undefined ? {} : { lookbackMs: opts.lookbackDeltaMs },
    );
    let prom: PrometheusServer;
    try {
      prom = await startPrometheus(opts);
    } catch (err) {
      await vm.stop();
      throw err;
    }
    const stop = async (): Promise<void> => {
      await prom.stop();
      await vm.stop();
    };
    try {
      await feedFrom(prom, vm);
    } catch (err) {
      await stop();
      throw err;
    }
    // Every target's `up` sample carries its scrape's start: once the oldest of them is at or
    // after `sinceMs`, every scrape since then has arrived (a scrape is one remote-write batch
    // window; the other series of a scrape land with its `up`, 200 ms margin in the callers).
    const caughtUp = async (sinceMs: number): Promise<void> => {
      const query = new URLSearchParams({ query: 'min(timestamp(up))', latency_offset: '1ms' });
      await waitFor(
        async () => {
          const res = await fetch(`${vm.queryUrl}/api/v1/query?${query.toString()}`);
          const body = (await res.json()) as { data?: { result?: { value?: [number, string] }[] } };
          const oldest = Number(body.data?.result?.[0]?.value?.[1] ?? NaN);
          return oldest * 1000 >= sinceMs;
        },
        VM_BACKEND.ingestLagMs,
        { what: `VictoriaMetrics serving the scrapes since ${new Date(sinceMs).toISOString()}` },
      );
    };
    return { prom, queryUrl: vm.queryUrl, caughtUp, stop };
  },
  startWithHistory: async (history) => {
    const vm = await startVictoriaMetrics();
    try {
      await vm.importPrometheus(promTextOf(history));
    } catch (err) {
      await vm.stop();
      throw err;
    }
    return { queryUrl: vm.queryUrl, stop: () => vm.stop() };
  },
};

/** OpenMetrics samples with timestamps in seconds as Prometheus text with timestamps in ms. */
export function promTextOf(openMetrics: string): string {
  const out: string[] = [];
  for (const line of openMetrics.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    const seconds = Number(line.slice(cut + 1));
    if (cut < 0 || !Number.isFinite(seconds)) {
      throw new Error(`vm-harness: no timestamp in the history line ${JSON.stringify(line)}`);
    }
    out.push(`${line.slice(0, cut)} ${String(Math.round(seconds * 1000))}`);
  }
  return `${out.join('\n')}\n`;
}
