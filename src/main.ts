import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { CATALOGUE } from './catalogue/index.js';
import { SIGNAL_PRESENCE } from './catalogue/signals.js';
import type { Config } from './config/schema.js';
import { systemClock } from './core/clock.js';
import { errorMessage } from './core/errors.js';
import { createEngine, runLoop } from './daemon.js';
import { fencedCluster, LeaseFence, UNFENCED } from './engine/fence.js';
import { createNotifications } from './notify/notifications.js';
import { updateTicket } from './ticket/ticket-store.js';
import { createJsonLogger, type Logger } from './engine/logger.js';
import type { PriorityOf } from './engine/scheduler.js';
import { createKubeCluster } from './k8s/kube-cluster.js';
import { startMetricsServer } from './metrics/http-server.js';
import { createMetrics } from './metrics/metrics.js';
import { collectDefaultMetrics } from 'prom-client';
import { backendOptions, createPromClient, refuseTokenOverHttp } from './prom/prom-client.js';
import { loadPlugins, watchPluginDir } from './sop/plugins.js';
import { startDaemonConsole } from './console/daemon-console.js';

/** `kubernetes.server` when not in-cluster and not set. */
const DEFAULT_KUBE_SERVER = 'https://127.0.0.1:6443';

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
  checkEndpoints(config);
  const metrics = createMetrics();
  // The process itself: RSS, heap, GC, event-loop lag (process_*, nodejs_*).
  collectDefaultMetrics({ register: metrics.registry });
  const k = config.kubernetes;
  const cluster = createKubeCluster({
    ...(k.inCluster
      ? { inCluster: true }
      : {
          kubeConfig: {
            server: k.server ?? DEFAULT_KUBE_SERVER,
            token: k.tokenFile === undefined ? '' : readFileSync(k.tokenFile, 'utf8').trim(),
            ...(k.caFile === undefined
              ? {}
              : { caData: readFileSync(k.caFile).toString('base64') }),
            skipTLSVerify: k.insecureSkipVerify,
          },
        }),
    leaseNamespace: k.namespace,
    jobTemplatesDir: k.jobTemplatesDir,
    jobNamespace: k.jobNamespace,
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
    allowInsecureBearerToken: p.allowInsecureBearerToken,
    maxResponseBytes: p.maxResponseBytes,
    ...backendOptions(p),
    onClockCorrection: (correctionMs) => {
      // Prometheus's clock minus ours, as query times now allow for (0: the clocks agree).
      log.warn("query times corrected to Prometheus's clock", { correctionMs });
    },
  });
  const pluginDir = config.sop.pluginDir;
  const initial =
    pluginDir === undefined
      ? { plugins: [], problems: [] }
      : await loadPlugins(pluginDir, { maxModuleVersions: config.sop.pluginMaxVersions });
  for (const problem of initial.problems) log.warn('plug-in skipped', { problem });
  const le = config.leaderElection;
  const fence = le.enabled
    ? new LeaseFence({
        clock: systemClock,
        durationMs: le.leaseDurationSeconds * 1000,
        marginMs: le.fenceMarginMs,
      })
    : undefined;
  // Notifications (Alertmanager, ticket adapters): their write-backs are fenced like every write.
  const writer = fencedCluster(cluster, fence ?? UNFENCED);
  let sopOf: (condition: string) => string | undefined = () => undefined;
  const notifications = createNotifications(config, {
    clock: systemClock,
    metrics,
    log,
    sopOf: (c) => sopOf(c),
    writeBack: async (node, mutate) => {
      await updateTicket(
        { cluster: writer, clock: systemClock },
        node,
        (t) => (t === null ? undefined : mutate(t)),
        AbortSignal.timeout(30_000),
      );
    },
  });
  // The operator console (docs/console.md), when console.port is set: reads the nodes, writes
  // what an authorised operator asks (unfenced: an operator's write, on any replica).
  const operatorConsole =
    config.console.port === undefined
      ? undefined
      : await startDaemonConsole({
          config,
          cluster,
          priorityOf: () => opts.priority.current(),
          log,
        });
  const onSnapshot =
    operatorConsole === undefined
      ? notifications.onSnapshot
      : (s: Parameters<typeof operatorConsole.onSnapshot>[0]): void => {
          notifications.onSnapshot?.(s);
          operatorConsole.onSnapshot(s);
        };
  const engine = createEngine({
    ...(fence === undefined ? {} : { fence }),
    ...(onSnapshot === undefined ? {} : { onSnapshot }),
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
  sopOf = (c) => engine.registry().forCondition(c)?.sop.id;
  const notifying = notifications.run(opts.signal);
  const watcher =
    pluginDir === undefined
      ? undefined
      : watchPluginDir(pluginDir, () => {
          loadPlugins(pluginDir, { maxModuleVersions: config.sop.pluginMaxVersions })
            .then(({ plugins, problems }) => {
              for (const problem of [...problems, ...engine.reloadPlugins(plugins)])
                log.warn('plug-in skipped', { problem });
              log.info('plug-ins reloaded', { count: plugins.length });
            })
            .catch((err: unknown) => {
              log.error('plug-in reload failed', { err: errorMessage(err) });
            });
        });
  // Ready = a healthy process: its loop turns (leader or standby). Leadership is separate (the
  // aegis_leader metric): a standby must be Ready, or a rollout under the PDB never completes and
  // the old leader keeps acting.
  let lastTickMs = Number.NEGATIVE_INFINITY;
  const staleAfterMs = Math.max(30_000, 3 * config.inspect.intervalMs + 2 * p.timeoutMs);
  const server = await startMetricsServer({
    metrics,
    port: config.metricsPort,
    ready: () => systemClock.now() - lastTickMs < staleAfterMs,
  });
  log.info('aegis started', {
    metrics: server.url,
    ...(operatorConsole === undefined ? {} : { console: operatorConsole.url }),
    dryRun: config.safety.dryRun,
    prometheus: p.url,
  });
  try {
    await runLoop({
      engine,
      clock: systemClock,
      intervalMs: config.inspect.intervalMs,
      ...(fence === undefined
        ? {}
        : {
            lease: {
              client: cluster,
              name: le.leaseName,
              holder: `${hostname()}-${process.pid}`,
              durationSeconds: le.leaseDurationSeconds,
              renewIntervalMs: le.renewIntervalMs,
              fence,
            },
          }),
      metrics,
      log,
      signal: opts.signal,
      onDemote: () => {
        notifications.demoted();
      },
      onTick: () => {
        lastTickMs = systemClock.now();
      },
    });
  } finally {
    await notifying;
    watcher?.close();
    opts.priority.close();
    await cluster.close();
    await server.close();
    operatorConsole?.stopWatching();
    await operatorConsole?.close();
    log.info('aegis stopped', {});
  }
}

/**
 * Start-up checks of the endpoints the daemon sends a bearer token to: never over plain http
 * unless the config says so (the in-cluster ServiceAccount is always https).
 */
export function checkEndpoints(config: Config): void {
  const p = config.prometheus;
  refuseTokenOverHttp({
    url: p.url,
    hasToken: p.bearerTokenFile !== undefined,
    allowed: p.allowInsecureBearerToken,
    fields: {
      url: 'prometheus.url',
      token: 'prometheus.bearerTokenFile',
      allow: 'prometheus.allowInsecureBearerToken',
    },
  });
  const k = config.kubernetes;
  if (k.inCluster) return;
  refuseTokenOverHttp({
    url: k.server ?? DEFAULT_KUBE_SERVER,
    hasToken: k.tokenFile !== undefined,
    allowed: k.allowInsecureBearerToken,
    fields: {
      url: 'kubernetes.server',
      token: 'kubernetes.tokenFile',
      allow: 'kubernetes.allowInsecureBearerToken',
    },
  });
}
