/**
 * Composition of one simulation: fleet → series store → fault injector → cluster → metrics, on one
 * clock and one effect scheduler. The demo, the benchmark and the integration tests build this.
 */
import type { CatalogueEntry } from '../catalogue/types.js';
import { ManualClock, type Clock } from '../core/clock.js';
import type { JobKind } from '../k8s/cluster.js';
import { FaultInjector } from './faults.js';
import { createFleet } from './fleet.js';
import type { Fleet, FleetOptions } from './fleet-spec.js';
import { SeriesStore } from './series-store.js';
import { SimCluster } from './sim-cluster.js';
import type { JobBehaviour } from './sim-jobs.js';
import { SimMetrics } from './sim-metrics.js';
import type { PodTimings } from './sim-pods.js';
import { SimScheduler } from './sim-scheduler.js';

/** Options of `createSimWorld`. */
export interface SimWorldOptions extends FleetOptions {
  /** The conditions faults can be injected for (pass CATALOGUE). */
  readonly catalogue: readonly CatalogueEntry[];
  /** Default: a ManualClock at 2026-01-01T00:00Z. */
  readonly clock?: Clock;
  readonly bootTimeMs?: number;
  readonly jobs?: Partial<Record<JobKind, JobBehaviour>>;
  readonly pods?: PodTimings;
  readonly lookbackMs?: number;
}

/** A running simulation. */
export interface SimWorld {
  readonly clock: Clock;
  readonly fleet: Fleet;
  readonly store: SeriesStore;
  readonly scheduler: SimScheduler;
  readonly faults: FaultInjector;
  readonly cluster: SimCluster;
  readonly metrics: SimMetrics;
  /** Runs every simulation effect due by `clock.now()`. */
  sync(): void;
}

/** Builds a simulation of `options.nodes` healthy GPU nodes. */
export function createSimWorld(options: SimWorldOptions): SimWorld {
  const clock = options.clock ?? new ManualClock();
  const fleet = createFleet(options);
  const store = new SeriesStore(
    fleet,
    options.lookbackMs === undefined ? {} : { lookbackMs: options.lookbackMs },
  );
  const scheduler = new SimScheduler();
  const faults = new FaultInjector({ store, catalogue: options.catalogue, scheduler, clock });
  const cluster = new SimCluster({
    clock,
    store,
    faults,
    scheduler,
    seed: options.seed,
    ...(options.bootTimeMs === undefined ? {} : { bootTimeMs: options.bootTimeMs }),
    ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
    ...(options.pods === undefined ? {} : { pods: options.pods }),
  });
  const sync = (): void => {
    scheduler.runUntil(clock.now());
  };
  const metrics = new SimMetrics({
    store,
    clock,
    sync,
    ...(options.lookbackMs === undefined ? {} : { lookbackMs: options.lookbackMs }),
  });
  return { clock, fleet, store, scheduler, faults, cluster, metrics, sync };
}
