import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { CATALOGUE } from './catalogue/index.js';
import { SIGNAL_PRESENCE } from './catalogue/signals.js';
import type { Config } from './config/schema.js';
import { systemClock } from './core/clock.js';
import { errorMessage } from './core/errors.js';
import { createEngine, runLoop } from './daemon.js';
import { createJsonLogger, type Logger } from './engine/logger.js';
import type { PriorityOf } from './engine/scheduler.js';
import { createKubeCluster } from './k8s/kube-cluster.js';
import { startMetricsServer } from './metrics/http-server.js';
import { createMetrics } from './metrics/metrics.js';
import { collectDefaultMetrics } from 'prom-client';
import { createPromClient } from './prom/prom-client.js';
import { loadPlugins, watchPluginDir } from './sop/plugins.js';

/**
 * The daemon's composition root (`aegis run`): real adapters, metrics server, priority table
 * and plug-in hot reload, leader election, and an orderly shutdown on SIGTERM/SIGINT.
 * Start-up errors throw (the CLI prints one line and exits); run-time errors are isolated.
 */
export async function runDaemon(opts: {
  config: Config;
  priority: { current(): PriorityOf; close(): void };
  log?: Logger;
  signal: AbortSignal;
}): Promise<void> {
  const { config } = opts;
  const log = opts.log ?? createJsonLogger();
  const metrics = createMetrics();
  // The process itself: RSS, heap, GC, event-loop lag (process_*, nodejs_*).
  collectDefaultMetrics({ register: metrics.registry });
  const k = config.kubernetes;
  const cluster = createKubeCluster({
    ...(k.inCluster
      ? { inCluster: true }
      : {
          kubeConfig: {
            server: k.server ?? 'https://127.0.0.1:6443',
            token: k.tokenFile === undefined ? '' : readFileSync(k.tokenFile, 'utf8').trim(),
            ...(k.caFile === undefined
              ? {}
              : { caData: readFileSync(k.caFile).toString('base64') }),
            skipTLSVerify: k.insecureSkipVerify,
          },
        }),
    leaseNamespace: k.namespace,
    jobTemplatesDir: k.jobTemplatesDir,
    ...(k.opsImage === undefined ? {} : { opsImage: k.opsImage }),
    onNodeWatchError: (err, inARow) => {
      metrics.errors.inc({ where: 'node-watch' });
      // The first failure, then every 2^n-th: a watch down for long is still heard of.
      if ((inARow & (inARow - 1)) === 0) {
        log.warn('node watch failed; nodes are listed every cycle until it is back', {
          err: errorMessage(err),
          failuresInARow: inARow,
        });
      }
    },
  });
  const p = config.prometheus;
  const metricsSource = createPromClient({
    url: p.url,
    ...(p.bearerTokenFile === undefined ? {} : { bearerTokenFile: p.bearerTokenFile }),
    ...(p.caFile === undefined ? {} : { caFile: p.caFile }),
    insecureSkipVerify: p.insecureSkipVerify,
  });
  const pluginDir = config.sop.pluginDir;
  const initial =
    pluginDir === undefined ? { plugins: [], problems: [] } : await loadPlugins(pluginDir);
  for (const problem of initial.problems) log.warn('plug-in skipped', { problem });
  const engine = createEngine({
    cluster,
    metricsSource,
    clock: systemClock,
    config,
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    priorityOf: () => opts.priority.current(),
    metrics,
    log,
    plugins: initial.plugins,
  });
  const watcher =
    pluginDir === undefined
      ? undefined
      : watchPluginDir(pluginDir, () => {
          loadPlugins(pluginDir)
            .then(({ plugins, problems }) => {
              for (const problem of [...problems, ...engine.reloadPlugins(plugins)])
                log.warn('plug-in skipped', { problem });
              log.info('plug-ins reloaded', { count: plugins.length });
            })
            .catch((err: unknown) => {
              log.error('plug-in reload failed', { err: errorMessage(err) });
            });
        });
  let cycles = 0;
  const server = await startMetricsServer({
    metrics,
    port: config.metricsPort,
    ready: () => cycles > 0,
  });
  log.info('aegis started', {
    metrics: server.url,
    dryRun: config.safety.dryRun,
    prometheus: p.url,
  });
  try {
    await runLoop({
      engine,
      clock: systemClock,
      intervalMs: config.inspect.intervalMs,
      ...(config.leaderElection.enabled
        ? {
            lease: {
              client: cluster,
              name: config.leaderElection.leaseName,
              holder: `${hostname()}-${process.pid}`,
              durationSeconds: config.leaderElection.leaseDurationSeconds,
              renewIntervalMs: config.leaderElection.renewIntervalMs,
            },
          }
        : {}),
      metrics,
      log,
      signal: opts.signal,
      onCycle: () => {
        cycles++;
      },
    });
  } finally {
    watcher?.close();
    opts.priority.close();
    await cluster.close();
    await server.close();
    log.info('aegis stopped', {});
  }
}
