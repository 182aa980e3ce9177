/**
 * Starts a real Prometheus (Debian `prometheus` 2.42, /usr/bin) on a free loopback port for the
 * Prometheus test tier. Everything lives in a fresh temp dir: prometheus.yml, the TSDB, optional
 * backfilled blocks and the log. `stop()` kills only the PID this harness started and removes the
 * dir; `kill()` + `restart()` take the server down and bring it back on the same port and data
 * dir (outage tests). A reaper shell kills the server if the test process dies first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { stringify } from 'yaml';
import { freePorts } from './k8s-harness.js';

/** The Prometheus server binary (Debian package `prometheus`; AEGIS_PROMETHEUS_BIN overrides). */
export const PROMETHEUS_BIN = process.env.AEGIS_PROMETHEUS_BIN ?? '/usr/bin/prometheus';
/** The promtool binary (same package; AEGIS_PROMTOOL_BIN overrides). */
export const PROMTOOL_BIN = process.env.AEGIS_PROMTOOL_BIN ?? '/usr/bin/promtool';

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const LOG_TAIL_LINES = 30;

/** One scrape job: every URL's host:port is a target, scraped at `path` with honor_labels. */
export interface ScrapeTarget {
  readonly job: string;
  readonly urls: readonly string[];
  /** Metrics path (default `/metrics`). */
  readonly path?: string;
  /** URL parameters of the scrape. */
  readonly params?: Readonly<Record<string, string>>;
  /**
   * Target labels by URL (as a relabel sets `node` on a per-node exporter's target): each such URL
   * becomes its own static config, so `up` and every series it serves carry them.
   */
  readonly labels?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** Options of `startPrometheus`. */
export interface PrometheusOptions {
  readonly scrapeTargets?: readonly ScrapeTarget[];
  /** Scrape (and default rule evaluation) interval; default 1 s. */
  readonly scrapeIntervalMs?: number;
  /** Rule evaluation interval; default the scrape interval. */
  readonly evaluationIntervalMs?: number;
  /** Rule files (absolute paths), loaded by `rule_files`. */
  readonly ruleFiles?: readonly string[];
  /** `--query.lookback-delta` (default Prometheus's 5 m). */
  readonly lookbackDeltaMs?: number;
  /** `--storage.tsdb.retention.time` (default `1d`; backfilled history may need more). */
  readonly retention?: string;
  /** OpenMetrics text (ending `# EOF`) turned into TSDB blocks with promtool before start. */
  readonly backfill?: string;
  readonly extraArgs?: readonly string[];
}

/** A running (or, after kill(), stopped) Prometheus. */
export interface PrometheusServer {
  readonly url: string;
  readonly port: number;
  /** Temp dir holding prometheus.yml, data/ and prometheus.log. */
  readonly dir: string;
  /** PID of the current process (changes on restart). */
  readonly pid: number;
  /** Kills the process and removes the temp dir. */
  stop(): Promise<void>;
  /** Kills the process, keeping the port reserved in config and the data dir (an outage). */
  kill(): Promise<void>;
  /** Starts again on the same port and data dir (kills first when running); waits for ready. */
  restart(): Promise<void>;
  /** POST /-/reload (re-reads prometheus.yml and the rule files). */
  reload(): Promise<void>;
  /** Last lines of the server log. */
  logTail(): string;
}

/** The simulator's exporter paths (src/sim/exporter-server.ts); each becomes a scrape job. */
export const SIM_EXPORTER_PATHS = ['dcgm', 'node', 'ksm', 'ipmi', 'gpfs', 'nodecheck'] as const;

/**
 * Scrape jobs for a running simulator exporter server: job `<exporter>`, path `/metrics/<exporter>`.
 * With `shards` > 1 each exporter's fleet is split over that many jobs (`<exporter>-<i>`), which
 * Prometheus scrapes at different offsets in the interval, as it does per-node targets.
 */
export function simExporterTargets(baseUrl: string, shards = 1): ScrapeTarget[] {
  return SIM_EXPORTER_PATHS.flatMap((e): ScrapeTarget[] =>
    shards <= 1
      ? [{ job: e, urls: [baseUrl], path: `/metrics/${e}` }]
      : Array.from({ length: shards }, (_, i) => ({
          job: `${e}-${String(i)}`,
          urls: [baseUrl],
          path: `/metrics/${e}`,
          params: { shard: String(i), shards: String(shards) },
        })),
  );
}

/** Throws a clear error when the Debian binaries are missing. */
export function assertPrometheusInstalled(): void {
  const missing = [PROMETHEUS_BIN, PROMTOOL_BIN].filter((b) => !existsSync(b));
  if (missing.length > 0) {
    throw new Error(
      `prometheus-harness: ${missing.join(', ')} not found; run \`npm test\` ` +
        "(scripts/test-all.sh installs the Debian 'prometheus' package) or apt-get install prometheus",
    );
  }
}

/** Starts Prometheus and waits for /-/ready. On failure the error carries the log tail. */
export async function startPrometheus(opts: PrometheusOptions = {}): Promise<PrometheusServer> {
  assertPrometheusInstalled();
  const dir = await mkdtemp(join(tmpdir(), 'aegis-prom-'));
  const reaper = launch(
    '/bin/sh',
    ['-c', REAPER, 'reaper', String(process.pid), dir],
    dir,
    'reaper',
  );
  const removeAll = async (): Promise<void> => {
    await stopChild(reaper);
    await rm(dir, { recursive: true, force: true });
  };
  let port: number;
  try {
    await mkdir(join(dir, 'data'));
    await writeFile(join(dir, 'prometheus.yml'), configYaml(opts));
    if (opts.backfill !== undefined) await backfill(dir, join(dir, 'data'), opts.backfill);
    [port = 0] = await freePorts(1);
  } catch (err) {
    await removeAll();
    throw err;
  }
  const proc = createProcess(
    dir,
    prometheusArgs(opts, dir, port),
    `http://127.0.0.1:${String(port)}`,
  );
  const stop = async (): Promise<void> => {
    await proc.kill();
    await removeAll();
  };
  try {
    await proc.start();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: proc.url,
    port,
    dir,
    get pid() {
      return proc.pid();
    },
    stop,
    kill: proc.kill,
    restart: async () => {
      await proc.kill();
      await proc.start();
    },
    reload: async () => {
      const res = await fetch(`${proc.url}/-/reload`, { method: 'POST' });
      if (!res.ok) {
        throw new Error(
          `prometheus-harness: reload answered ${String(res.status)}\n${proc.tail()}`,
        );
      }
    },
    logTail: proc.tail,
  };
}

/** Command line of the server: temp data dir, loopback port, admin and lifecycle APIs. */
function prometheusArgs(opts: PrometheusOptions, dir: string, port: number): string[] {
  return [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${String(port)}`,
    '--web.enable-admin-api',
    '--web.enable-lifecycle',
    `--storage.tsdb.retention.time=${opts.retention ?? '1d'}`,
    ...(opts.lookbackDeltaMs === undefined
      ? []
      : [`--query.lookback-delta=${String(opts.lookbackDeltaMs)}ms`]),
    ...(opts.extraArgs ?? []),
  ];
}

/** The server process, restartable with the same arguments (so the same port and data dir). */
function createProcess(dir: string, args: readonly string[], url: string) {
  const logPath = join(dir, 'prometheus.log');
  const pidsFile = join(dir, 'pids');
  let child: ChildProcess | undefined;
  const tail = (): string => tailOf(logPath);
  return {
    url,
    tail,
    pid: (): number => child?.pid ?? 0,
    start: async (): Promise<void> => {
      appendFileSync(logPath, `--- start ${new Date().toISOString()}\n`);
      child = launch(PROMETHEUS_BIN, args, dir, 'prometheus');
      // Only the live PID is listed, so the reaper never signals a PID the OS may have reused.
      writeFileSync(pidsFile, child.pid === undefined ? '' : `${String(child.pid)}\n`);
      await waitReady(url, child, tail);
    },
    kill: async (): Promise<void> => {
      if (child !== undefined) await stopChild(child);
      writeFileSync(pidsFile, '');
    },
  };
}

/**
 * Polls `fn` until it returns a value other than undefined/false (errors count as "not yet");
 * throws after `timeoutMs` naming `what` and the last error.
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  opts: { what?: string; intervalMs?: number } = {},
): Promise<T> {
  const what = opts.what ?? 'condition';
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const why = lastErr instanceof Error ? `: ${lastErr.message}` : '';
      throw new Error(`waitFor: ${what} not met after ${String(timeoutMs)} ms${why}`, {
        cause: lastErr,
      });
    }
    await delay(intervalMs);
  }
}

/** State of one scrape target, from /api/v1/targets. */
export interface TargetStatus {
  readonly job: string;
  readonly health: string;
  /** Start of the last scrape (ms since epoch; 0 before the first). */
  readonly lastScrapeMs: number;
  readonly lastScrapeDurationMs: number;
  readonly lastError: string;
}

/** The active scrape targets. */
export async function targetStatus(url: string): Promise<TargetStatus[]> {
  const body = (await getJson(`${url}/api/v1/targets?state=active`)) as {
    data: {
      activeTargets: {
        labels: Record<string, string>;
        health: string;
        lastScrape: string;
        lastScrapeDuration: number;
        lastError: string;
      }[];
    };
  };
  return body.data.activeTargets.map((t) => ({
    job: t.labels['job'] ?? '',
    health: t.health,
    lastScrapeMs: Math.max(0, Date.parse(t.lastScrape) || 0),
    lastScrapeDurationMs: t.lastScrapeDuration * 1000,
    lastError: t.lastError,
  }));
}

/** Health of one loaded rule, from /api/v1/rules. */
export interface RuleStatus {
  readonly group: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly health: string;
  readonly lastError: string;
  readonly lastEvaluationMs: number;
}

/** Every loaded rule with its evaluation health. */
export async function ruleStatus(url: string): Promise<RuleStatus[]> {
  const body = (await getJson(`${url}/api/v1/rules`)) as {
    data: {
      groups: {
        name: string;
        rules: {
          name: string;
          labels?: Record<string, string>;
          health: string;
          lastError?: string;
          lastEvaluation: string;
        }[];
      }[];
    };
  };
  return body.data.groups.flatMap((g) =>
    g.rules.map((r) => ({
      group: g.name,
      name: r.name,
      labels: r.labels ?? {},
      health: r.health,
      lastError: r.lastError ?? '',
      lastEvaluationMs: Math.max(0, Date.parse(r.lastEvaluation) || 0),
    })),
  );
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`prometheus-harness: GET ${url} answered ${String(res.status)}`);
  return res.json();
}

/** Runs promtool; resolves with its exit code and output (never rejects on a non-zero exit). */
export function runPromtool(
  args: readonly string[],
  cwd?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  assertPrometheusInstalled();
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL_BIN, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** prometheus.yml for the options (every job scraped with honor_labels, loopback http). */
function configYaml(opts: PrometheusOptions): string {
  const interval = `${String(opts.scrapeIntervalMs ?? 1000)}ms`;
  const config = {
    global: {
      scrape_interval: interval,
      scrape_timeout: interval,
      evaluation_interval: `${String(opts.evaluationIntervalMs ?? opts.scrapeIntervalMs ?? 1000)}ms`,
    },
    ...(opts.ruleFiles === undefined ? {} : { rule_files: [...opts.ruleFiles] }),
    scrape_configs: (opts.scrapeTargets ?? []).map((t) => ({
      job_name: t.job,
      honor_labels: true,
      metrics_path: t.path ?? '/metrics',
      ...(t.params === undefined
        ? {}
        : { params: Object.fromEntries(Object.entries(t.params).map(([k, v]) => [k, [v]])) }),
      static_configs:
        t.labels === undefined
          ? [{ targets: t.urls.map((u) => new URL(u).host) }]
          : t.urls.map((u) => ({
              targets: [new URL(u).host],
              ...(t.labels?.[u] === undefined ? {} : { labels: { ...t.labels[u] } }),
            })),
    })),
  };
  return stringify(config);
}

async function backfill(dir: string, dataDir: string, text: string): Promise<void> {
  const file = join(dir, 'backfill.om');
  await writeFile(file, text.endsWith('# EOF\n') ? text : `${text.trimEnd()}\n# EOF\n`);
  const r = await runPromtool(['tsdb', 'create-blocks-from', 'openmetrics', file, dataDir], dir);
  if (r.code !== 0) {
    throw new Error(
      `prometheus-harness: backfill failed (${String(r.code)})\n${r.stdout}\n${r.stderr}`,
    );
  }
}

/** Polls `url` + `readyPath` until 200; throws (with the log tail) if `child` exits or time runs out. */
export async function waitReady(
  url: string,
  child: ChildProcess,
  tail: () => string,
  readyPath = '/-/ready',
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const how = String(child.exitCode ?? child.signalCode);
      throw new Error(`prometheus-harness: ${url} exited (${how}) before ready\n${tail()}`);
    }
    try {
      const res = await fetch(`${url}${readyPath}`, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) return;
      last = `HTTP ${String(res.status)}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await delay(100);
  }
  throw new Error(
    `prometheus-harness: not ready after ${String(READY_TIMEOUT_MS)} ms (${last})\n${tail()}`,
  );
}

export function launch(
  file: string,
  args: readonly string[],
  dir: string,
  name: string,
): ChildProcess {
  const fd = openSync(join(dir, `${name}.log`), 'a');
  const child = spawn(file, args, { stdio: ['ignore', fd, fd], cwd: dir });
  closeSync(fd);
  return child;
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    child.kill('SIGKILL');
  }, STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

function tailOf(logPath: string): string {
  const text = existsSync(logPath) ? readFileSync(logPath, 'utf8') : '';
  return `--- prometheus log (${logPath}) ---\n${text.trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n')}`;
}

/** Kills the PIDs in `<dir>/pids` and removes the dir once the test process is gone. */
export const REAPER =
  'while kill -0 "$1" 2>/dev/null; do sleep 1; done; ' +
  '[ -f "$2/pids" ] && kill -9 $(cat "$2/pids") 2>/dev/null; rm -rf "$2"';
