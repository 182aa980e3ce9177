import { applyDetectionConfig } from './catalogue/detection.js';
import { scopePodConditions } from './catalogue/node.js';
import { applyNpdMapping } from './catalogue/npd.js';
import type { CatalogueEntry, Signal } from './catalogue/types.js';
import type { Config } from './config/schema.js';
import type { Clock } from './core/clock.js';
import { ErrorCode, HealError, errorMessage } from './core/errors.js';
import { createApiBridge, DEFAULT_BRIDGE_OPTIONS, type BridgeOptions } from './engine/bridge.js';
import { outOfBandFromConfig, type OutOfBand } from './bmc/index.js';
import { Controller, type CycleReport } from './engine/controller.js';
import { createDeviceQuarantine, withCordonTaint } from './engine/quarantine.js';
import { fencedCluster, LeaseFence, UNFENCED, type Fence } from './engine/fence.js';
import type { FleetSnapshot } from './notify/alerts.js';
import type { Logger } from './engine/logger.js';
import type { StepEvent } from './engine/runner.js';
import type { PriorityOf } from './engine/scheduler.js';
import type { ClusterClient, LeaseClient } from './k8s/cluster.js';
import type { Metrics } from './metrics/metrics.js';
import type { MetricsSource } from './prom/metrics-source.js';
import { builtInSops } from './sop/index.js';
import { createSopRegistry, type SopRegistry } from './sop/registry.js';
import type { Sop } from './sop/sop.js';

/** Inputs of the engine, the same for the real cluster and the simulator. */
export interface EngineInput {
  readonly cluster: ClusterClient;
  readonly metricsSource: MetricsSource;
  readonly clock: Clock;
  readonly config: Config;
  readonly catalogue: readonly CatalogueEntry[];
  readonly presence: Readonly<Record<Signal, string | null>>;
  readonly priorityOf: () => PriorityOf;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly plugins?: readonly { sop: unknown; origin: string }[];
  readonly extraSops?: readonly Sop[];
  readonly bridgeOptions?: BridgeOptions;
  readonly onStep?: (e: StepEvent) => void;
  /**
   * The leader lease's fence: every write the engine makes is checked against it, and steps are
   * written into tickets with its epoch. Default: unfenced (one replica, the simulator).
   */
  readonly fence?: Fence;
  /**
   * Out-of-band power through the BMCs (the simulator's, a test's); default: built from the
   * `bmc` config with the real IPMI/Redfish clients, credentials from `cluster.readSecret`.
   */
  readonly outOfBand?: OutOfBand;
  /** Called after every cycle with the fleet as notifications see it. */
  readonly onSnapshot?: (s: FleetSnapshot) => void;
}

/** A built engine: the controller and the SOP registry (swappable on plug-in reload). */
export interface Engine {
  readonly controller: Controller;
  registry(): SopRegistry;
  /**
   * Calls `listener` whenever the node watch shows a detector raising a condition (the fast
   * path: the loop runs a cycle at once instead of at the next interval). Returns the unsubscribe.
   */
  onFastPath(listener: () => void): () => void;
  /** Re-registers SOPs with a new plug-in set; a broken set keeps the previous registry. */
  reloadPlugins(plugins: readonly { sop: unknown; origin: string }[]): string[];
}

/** Composes the engine from its ports. Start-up errors (bad catalogue, bad built-in SOP) throw. */
export function createEngine(input: EngineInput): Engine {
  const catalogue = siteCatalogue(input.catalogue, input.config);
  const fence = input.fence ?? UNFENCED;
  const cluster = fencedCluster(input.cluster, fence);
  const quarantine = createDeviceQuarantine({
    cluster,
    clock: input.clock,
    config: input.config.quarantine,
  });
  const outOfBand =
    input.outOfBand ??
    outOfBandFromConfig(input.config, {
      readSecret: input.cluster.readSecret?.bind(input.cluster),
      fence,
      metrics: input.metrics,
    });
  const base = createApiBridge({
    cluster,
    clock: input.clock,
    options: input.bridgeOptions ?? DEFAULT_BRIDGE_OPTIONS,
    systemNamespaces: input.config.systemNamespaces,
    metrics: input.metrics,
    drain: input.config.drain,
    ...optionalOutOfBand(outOfBand),
  });
  const bridge = {
    ...base,
    ...(quarantine === undefined ? {} : { quarantine }),
    ...(input.config.quarantine.nodeWide === 'taint' ? withCordonTaint(base, cluster) : {}),
  };
  const known = new Set(catalogue.flatMap((e) => [e.name, ...(e.aliases ?? [])]));
  const build = (plugins: readonly { sop: unknown; origin: string }[]): SopRegistry =>
    createSopRegistry({
      builtins: [...builtInSops, ...(input.extraSops ?? [])],
      plugins,
      catalogue,
      bridge,
      disabled: input.config.sop.disabled,
      knownConditions: known,
      pluginOverrides: input.config.sop.pluginOverrides,
    });
  let registry = build(input.plugins ?? []);
  for (const p of registry.problems) {
    input.metrics.pluginErrors.inc({ plugin: 'load' });
    input.log.warn('plug-in skipped', { problem: p });
  }
  const controller = new Controller({
    cluster,
    fence,
    ...(input.onSnapshot === undefined ? {} : { onSnapshot: input.onSnapshot }),
    metricsSource: input.metricsSource,
    clock: input.clock,
    config: input.config,
    catalogue,
    presence: input.presence,
    priorityOf: input.priorityOf,
    sops: () => registry,
    metrics: input.metrics,
    log: input.log,
    ...(input.onStep === undefined ? {} : { onStep: input.onStep }),
    // BMC health as conditions (`bmc.health`) reads through the same out-of-band port.
    ...optionalOutOfBand(outOfBand),
  });
  return {
    controller,
    onFastPath: (listener) =>
      cluster.onNodeChange?.((prev, next) => {
        if (controller.wantsFastCycle(prev, next)) listener();
      }) ?? (() => undefined),
    registry: () => registry,
    reloadPlugins(plugins) {
      try {
        const next = build(plugins);
        registry = next;
        if (next.problems.length > 0)
          input.metrics.pluginErrors.inc({ plugin: 'load' }, next.problems.length);
        return [...next.problems];
      } catch (err) {
        input.metrics.pluginErrors.inc({ plugin: 'load' });
        return [`plug-in reload rejected, previous set kept: ${errorMessage(err)}`];
      }
    },
  };
}

/**
 * The catalogue as a site's config shapes it, the same for the daemon and `aegis inspect`:
 * pod-derived conditions read only the system namespaces (a tenant's pod never speaks for a
 * node); the detection settings (IB ports meant to be down, mounts meant to be read-only); the
 * node-problem-detector mapping (an unknown target is refused at start-up); per-condition
 * overrides last.
 */
export function siteCatalogue(
  catalogue: readonly CatalogueEntry[],
  config: Config,
): CatalogueEntry[] {
  const detected = applyDetectionConfig(
    scopePodConditions(catalogue, config.systemNamespaces),
    config.detection,
  );
  // A catalogue without the node-problem-detector entries (a test's or a scenario's subset) has
  // nothing for the mapping to shape.
  const npd = detected.some((e) => e.signal === 'node-problem-detector')
    ? applyNpdMapping(detected, config.nodeProblemDetector)
    : detected;
  return applyConditionOverrides(npd, config.conditions);
}

/**
 * Applies `conditions:` overrides from the config to the catalogue. An override naming a
 * condition the catalogue does not know (aliases accepted) is UNKNOWN_CONDITION, at start-up.
 * A disabled condition is dropped: never queried, never acted on.
 */
export function applyConditionOverrides(
  catalogue: readonly CatalogueEntry[],
  overrides: Config['conditions'],
): CatalogueEntry[] {
  const byName = new Map<string, CatalogueEntry>();
  for (const e of catalogue) {
    byName.set(e.name, e);
    for (const a of e.aliases ?? []) byName.set(a, e);
  }
  const changes = new Map<string, Config['conditions'][string]>();
  for (const [name, o] of Object.entries(overrides)) {
    const entry = byName.get(name);
    if (entry === undefined) {
      throw new HealError(
        ErrorCode.UnknownCondition,
        `config conditions.${name}: unknown condition (see aegis conditions)`,
      );
    }
    changes.set(entry.name, o);
  }
  const out: CatalogueEntry[] = [];
  for (const e of catalogue) {
    const o = changes.get(e.name);
    if (o === undefined) out.push(e);
    else if (o.disabled !== true)
      out.push({ ...e, forMs: o.forMs ?? e.forMs, clearForMs: o.clearForMs ?? e.clearForMs });
  }
  return out;
}

/**
 * The daemon loop: while this replica holds the lease, run a cycle every interval. Leadership is
 * judged by the fence (a renewal granted less than a lease duration ago, minus a margin), not by
 * the last renewal's answer alone, so a replica paused past its lease stops acting the instant it
 * resumes, before any renewal is tried. Losing the lease aborts in-flight steps; they stay
 * `Running` in their tickets and the next leader resumes them (following their Jobs by name), so
 * nothing is repeated. Regaining it starts the controller afresh from what the cluster says.
 */
export async function runLoop(opts: {
  engine: Engine;
  clock: Clock;
  intervalMs: number;
  lease?: {
    client: LeaseClient;
    name: string;
    holder: string;
    durationSeconds: number;
    /** How often to renew, on its own timer (default: a third of the lease). */
    renewIntervalMs?: number;
    /**
     * The fence the engine's writes are checked against (the one given to createEngine). Without
     * it only the loop is gated by the lease, not each write.
     */
    fence?: LeaseFence;
    /** Margin of a fence made here (default: a fifth of the lease). */
    fenceMarginMs?: number;
  };
  metrics: Metrics;
  log: Logger;
  signal: AbortSignal;
  onCycle?: (r: CycleReport) => void;
  /** Called at every turn of the loop, leader or not (readiness: the process is alive). */
  onTick?: () => void;
  /** Called when this replica stops leading (notifications stop speaking for the fleet). */
  onDemote?: () => void;
}): Promise<void> {
  let stepAbort = new AbortController();
  const lease =
    opts.lease === undefined
      ? undefined
      : {
          ...opts.lease,
          fence:
            opts.lease.fence ??
            new LeaseFence({
              clock: opts.clock,
              durationMs: opts.lease.durationSeconds * 1000,
              marginMs: opts.lease.fenceMarginMs ?? opts.lease.durationSeconds * 200,
            }),
        };
  let leading = lease === undefined;
  /** Leadership as this replica last knew it; a gain after a loss re-reads the cluster. */
  let everLed = false;
  const demote = async (why: string): Promise<void> => {
    if (!leading) return;
    opts.log.warn(`${why}; stopping in-flight steps`, {});
    leading = false;
    opts.onDemote?.();
    lease?.fence.lost();
    opts.metrics.leader.set(0);
    stepAbort.abort(new Error('leadership lost'));
    await opts.engine.controller.idle();
    stepAbort = new AbortController();
  };
  let renewer: Promise<void> = Promise.resolve();
  if (lease !== undefined) {
    const durationMs = lease.durationSeconds * 1000;
    const renewEveryMs = lease.renewIntervalMs ?? durationMs / 3;
    const renewOnce = async (): Promise<void> => {
      const sentAtMs = opts.clock.now();
      let epoch: number | null;
      try {
        // The call's deadline is the renew interval: an answer later than that could grant a
        // lease that another replica already counts as expired.
        epoch = await lease.client.acquireOrRenew(
          lease.name,
          lease.holder,
          lease.durationSeconds,
          AbortSignal.any([opts.signal, AbortSignal.timeout(renewEveryMs)]),
        );
      } catch (err) {
        if (opts.signal.aborted) return;
        opts.log.warn('lease renewal failed', { err: errorMessage(err) });
        // Not demoted yet: the fence keeps this replica leading until its margin before the
        // lease's end, and refuses every write past it.
        if (leading && lease.fence.remainingMs() <= 0) await demote('the leader lease ran out');
        return;
      }
      if (epoch === null) {
        await demote('lost the leader lease');
        return;
      }
      const changed = epoch !== lease.fence.epoch();
      if (leading && changed) await demote('the leader lease changed hands in between');
      lease.fence.granted(epoch, sentAtMs);
      if (!leading) {
        opts.log.info('became leader', { holder: lease.holder, epoch });
        if (everLed) opts.engine.controller.reset();
        leading = true;
        everLed = true;
        opts.metrics.leader.set(1);
      }
    };
    await renewOnce();
    // The lease is renewed on its own timer, so a long cycle (a slow Prometheus) never lets it lapse.
    renewer = (async () => {
      for (;;) {
        try {
          await opts.clock.sleep(renewEveryMs, opts.signal);
        } catch {
          return;
        }
        await renewOnce();
      }
    })();
  } else {
    opts.metrics.leader.set(1);
  }
  // The fast path: a detector raising a condition on a node wakes the loop for a cycle at once,
  // one that reuses the last inspection instead of asking Prometheus again.
  let wake = new AbortController();
  let fast = false;
  const stopped = (): boolean => opts.signal.aborted;
  /** When the last full cycle started: a fast cycle does not move the regular schedule. */
  let regularStartMs = opts.clock.now();
  const unsubscribe = opts.engine.onFastPath(() => {
    wake.abort();
  });
  while (!opts.signal.aborted) {
    // Cycles start every interval (a cycle's own time is not added to the wait), so a fault
    // waits at most one interval for the cycle that sees it.
    if (!fast) regularStartMs = opts.clock.now();
    opts.onTick?.();
    // A replica that was paused past its lease learns it here, before it decides anything.
    if (leading && lease !== undefined && lease.fence.remainingMs() <= 0)
      await demote('the leader lease ran out before this cycle');
    if (leading) {
      try {
        const report = await opts.engine.controller.cycle(
          AbortSignal.any([opts.signal, stepAbort.signal]),
          { fast },
        );
        opts.metrics.cycleSeconds.observe((report.engineMs + report.inspectMs) / 1000);
        opts.onCycle?.(report);
      } catch (err) {
        opts.metrics.errors.inc({ where: 'cycle' });
        opts.log.error('cycle failed', { err: errorMessage(err) });
      }
    }
    fast = false;
    if (!wake.signal.aborted) {
      try {
        await opts.clock.sleep(
          Math.max(0, opts.intervalMs - (opts.clock.now() - regularStartMs)),
          AbortSignal.any([opts.signal, wake.signal]),
        );
      } catch {
        // Woken for a fast cycle, or stopped.
        if (stopped()) break;
      }
    }
    if (wake.signal.aborted) {
      fast = true;
      wake = new AbortController();
    }
  }
  unsubscribe();
  opts.engine.controller.stop();
  stepAbort.abort(new Error('shutting down'));
  await opts.engine.controller.idle();
  await renewer;
  if (lease !== undefined) {
    lease.fence.lost();
    await lease.client
      .release(lease.name, lease.holder, new AbortController().signal)
      .catch(() => undefined);
  }
}

/** `{ outOfBand }` when there is one (the bridge's optional dependency). */
function optionalOutOfBand(outOfBand: OutOfBand | undefined): { outOfBand?: OutOfBand } {
  return outOfBand === undefined ? {} : { outOfBand };
}
