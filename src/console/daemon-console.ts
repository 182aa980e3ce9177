/**
 * The console as the daemon serves it (`console.port` set): callers authenticated and authorised
 * by the apiserver (TokenReview, SubjectAccessReview on aegis.io), nodes from the daemon's
 * watch-fed node cache, operator writes with the daemon's ServiceAccount once the caller is
 * authorised (one write guarded by the resourceVersion read, like `kubectl aegis`), aegis-control
 * and the leader Lease read in the controller's namespace. docs/console.md.
 */
import { CATALOGUE } from '../catalogue/index.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../engine/logger.js';
import type { PriorityOf } from '../engine/scheduler.js';
import type { ClusterClient } from '../k8s/cluster.js';
import type { Leader, Sourced } from '../kubectl/model.js';
import { defaultPriorityTable, type PriorityTable } from '../priority/priority-table.js';
import { cachedAccess } from './access.js';
import { createConsoleKube, kubeTargetOf, type ConsoleKube } from './kube-access.js';
import { startConsole, type ConsoleBackend, type ConsoleHandle } from './server.js';

/** The priority table in force, from the daemon's lookup (the catalogue's rows, its priorities). */
function tableOf(priorityOf: PriorityOf): PriorityTable {
  return new Map(
    [...defaultPriorityTable(CATALOGUE)].map(([name, e]) => [
      name,
      { ...e, priority: priorityOf(name) },
    ]),
  );
}

/** The daemon's console backend. */
export function daemonBackend(opts: {
  config: Config;
  cluster: ClusterClient;
  kube: Pick<ConsoleKube, 'readControl' | 'writeControl' | 'readLease'>;
  priorityOf: () => PriorityOf;
  now?: () => number;
}): ConsoleBackend {
  const { config, cluster, kube } = opts;
  const now = opts.now ?? Date.now;
  return {
    namespace: config.kubernetes.namespace,
    where: {
      context: config.clusterName,
      server: config.kubernetes.inCluster ? 'in-cluster' : (config.kubernetes.server ?? ''),
    },
    listNodes: (signal) => cluster.listNodes(signal),
    getNode: (name, signal) => cluster.getNode(name, signal),
    patchNodeAnnotations: (name, rv, annotations, signal) =>
      cluster.patchNodeAnnotations(name, annotations, rv, signal),
    readControl: (signal) => kube.readControl(signal),
    writeControl: (data, rv, signal) => kube.writeControl(data, rv, signal),
    async leader(signal): Promise<Leader> {
      const name = config.leaderElection.leaseName;
      const lease = await kube.readLease(name, signal);
      if (lease === null) return { unknown: `no Lease ${config.kubernetes.namespace}/${name}` };
      const ago = lease.renewTimeMs === undefined ? undefined : now() - lease.renewTimeMs;
      return {
        ...(lease.holder === undefined ? {} : { holder: lease.holder }),
        ...(ago === undefined ? {} : { renewedAgoMs: ago }),
        ...(ago !== undefined && lease.durationSeconds !== undefined
          ? { expired: ago > lease.durationSeconds * 1000 }
          : {}),
      };
    },
    config: () => config,
    priority: (): Sourced<PriorityTable> => ({
      value: tableOf(opts.priorityOf()),
      source: config.priorityFile ?? 'the catalogue',
      fromCluster: true,
    }),
  };
}

/** Starts the daemon's console on `console.port`; node changes of the watch refresh it. */
export async function startDaemonConsole(opts: {
  config: Config;
  cluster: ClusterClient;
  priorityOf: () => PriorityOf;
  log: Logger;
  /** Default: the apiserver of `kubernetes` in the config. */
  kube?: ConsoleKube;
}): Promise<ConsoleHandle & { stopWatching(): void }> {
  const { config } = opts;
  const c = config.console;
  if (c.port === undefined) throw new Error('console.port is not set');
  const kube =
    opts.kube ?? createConsoleKube(kubeTargetOf(config.kubernetes), config.kubernetes.namespace);
  const handle = await startConsole({
    backend: daemonBackend({ config, cluster: opts.cluster, kube, priorityOf: opts.priorityOf }),
    access: cachedAccess(kube.access),
    port: c.port,
    host: c.host,
    allowedOrigins: c.allowedOrigins,
    sessionTtlMs: c.sessionTtlMs,
    log: opts.log,
    topology: config.domains.labels,
  });
  const stop =
    opts.cluster.onNodeChange?.(() => {
      void handle.refresh();
    }) ?? (() => undefined);
  return { ...handle, stopWatching: stop };
}
