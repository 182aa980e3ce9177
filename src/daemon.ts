import type { CatalogueEntry, Signal } from './catalogue/types.js';
import type { Config } from './config/schema.js';
import type { Clock } from './core/clock.js';
import { ErrorCode, HealError, errorMessage } from './core/errors.js';
import { createApiBridge, DEFAULT_BRIDGE_OPTIONS, type BridgeOptions } from './engine/bridge.js';
import { Controller, type CycleReport } from './engine/controller.js';
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
}

/** A built engine: the controller and the SOP registry (swappable on plug-in reload). */
export interface Engine {
  readonly controller: Controller;
  registry(): SopRegistry;
  /** Re-registers SOPs with a new plug-in set; a broken set keeps the previous registry. */
  reloadPlugins(plugins: readonly { sop: unknown; origin: string }[]): string[];
}

/** Composes the engine from its ports. Start-up errors (bad catalogue, bad built-in SOP) throw. */
export function createEngine(input: EngineInput): Engine {
  const catalogue = applyConditionOverrides(input.catalogue, input.config.conditions);
  const bridge = createApiBridge({
    cluster: input.cluster,
    clock: input.clock,
    options: input.bridgeOptions ?? DEFAULT_BRIDGE_OPTIONS,
  });
  const known = new Set(catalogue.flatMap((e) => [e.name, ...(e.aliases ?? [])]));
  const build = (plugins: readonly { sop: unknown; origin: string }[]): SopRegistry =>
    createSopRegistry({
      builtins: [...builtInSops, ...(input.extraSops ?? [])],
      plugins,
      catalogue,
      bridge,
      disabled: input.config.sop.disabled,
      knownConditions: known,
    });
  let registry = build(input.plugins ?? []);
  for (const p of registry.problems) {
    input.metrics.pluginErrors.inc({ plugin: 'load' });
    input.log.warn('plug-in skipped', { problem: p });
  }
  const controller = new Controller({
    cluster: input.cluster,
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
  });
  return {
    controller,
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
 * The daemon loop: while this replica holds the lease, run a cycle every interval. Losing the
 * lease aborts in-flight steps; they stay `Running` in their tickets and the next leader resumes
 * them (following their Jobs by name), so nothing is repeated.
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
  };
  metrics: Metrics;
  log: Logger;
  signal: AbortSignal;
  onCycle?: (r: CycleReport) => void;
}): Promise<void> {
  let stepAbort = new AbortController();
  let leading = opts.lease === undefined;
  const lease = opts.lease;
  let renewer: Promise<void> = Promise.resolve();
  if (lease !== undefined) {
    const durationMs = lease.durationSeconds * 1000;
    // Renewal failures are tolerated until this deadline; past it leadership is given up even
    // though the API could not be asked, since another replica may already have taken over.
    const renewDeadlineMs = (durationMs * 2) / 3;
    let lastRenewedMs = Number.NEGATIVE_INFINITY;
    const renewOnce = async (): Promise<void> => {
      let holds = leading;
      try {
        holds = await lease.client.acquireOrRenew(
          lease.name,
          lease.holder,
          lease.durationSeconds,
          opts.signal,
        );
        if (holds) lastRenewedMs = opts.clock.now();
      } catch (err) {
        opts.log.warn('lease renewal failed', { err: errorMessage(err) });
        if (opts.clock.now() - lastRenewedMs > renewDeadlineMs) holds = false;
      }
      if (leading && !holds) {
        opts.log.warn('lost the leader lease; stopping in-flight steps', {});
        leading = false;
        stepAbort.abort(new Error('leadership lost'));
        await opts.engine.controller.idle();
        stepAbort = new AbortController();
      }
      if (!leading && holds) opts.log.info('became leader', { holder: lease.holder });
      leading = holds;
      opts.metrics.leader.set(leading ? 1 : 0);
    };
    await renewOnce();
    // The lease is renewed on its own timer, so a long cycle (a slow Prometheus) never lets it lapse.
    renewer = (async () => {
      for (;;) {
        try {
          await opts.clock.sleep(lease.renewIntervalMs ?? durationMs / 3, opts.signal);
        } catch {
          return;
        }
        await renewOnce();
      }
    })();
  }
  while (!opts.signal.aborted) {
    // Cycles start every interval (a cycle's own time is not added to the wait), so a fault
    // waits at most one interval for the cycle that sees it.
    const startedMs = opts.clock.now();
    if (leading) {
      try {
        const report = await opts.engine.controller.cycle(
          AbortSignal.any([opts.signal, stepAbort.signal]),
        );
        opts.metrics.cycleSeconds.observe((report.engineMs + report.inspectMs) / 1000);
        opts.onCycle?.(report);
      } catch (err) {
        opts.metrics.errors.inc({ where: 'cycle' });
        opts.log.error('cycle failed', { err: errorMessage(err) });
      }
    }
    try {
      await opts.clock.sleep(
        Math.max(0, opts.intervalMs - (opts.clock.now() - startedMs)),
        opts.signal,
      );
    } catch {
      break;
    }
  }
  opts.engine.controller.stop();
  stepAbort.abort(new Error('shutting down'));
  await opts.engine.controller.idle();
  await renewer;
  if (lease !== undefined) {
    await lease.client
      .release(lease.name, lease.holder, new AbortController().signal)
      .catch(() => undefined);
  }
}
