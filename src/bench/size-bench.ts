/**
 * One benchmark size: the real engine (createEngine, as the daemon builds it) on a simulated
 * fleet of `nodes` GPU nodes (8 GPUs each), 1 % of them faulty at staggered instants, one cycle
 * per 1 s of virtual time on a ManualClock. Per cycle the metrics source (the simulator's PromQL
 * evaluation) runs first, timed apart; the engine's cycle then runs on its answers, so its CPU
 * time excludes the metrics source. With `engine: false` only the simulator runs (the baseline
 * for the engine's share of the memory).
 */
import { setMaxListeners } from 'node:events';
import { getHeapStatistics } from 'node:v8';
import { CATALOGUE } from '../catalogue/index.js';
import { SIGNAL_PRESENCE } from '../catalogue/signals.js';
import { defaultConfig, type Config } from '../config/schema.js';
import { ManualClock, type Clock } from '../core/clock.js';
import { createEngine, type Engine } from '../daemon.js';
import { inspectorOptions } from '../engine/controller.js';
import { Inspector } from '../engine/inspector.js';
import { silentLogger } from '../engine/logger.js';
import { createMetrics } from '../metrics/metrics.js';
import type { MetricsSource } from '../prom/metrics-source.js';
import { defaultPriorityTable } from '../priority/priority-table.js';
import { createSimWorld, type SimWorld } from '../sim/sim-world.js';
import { benchConditions, planFaults } from './fault-plan.js';
import { LatencyTracker } from './latency-tracker.js';
import { PrefetchedSource } from './prefetched-source.js';
import { cycleStats, type CycleSample, type SizeResult } from './size-result.js';
import { cpuMsSince, peakRssMb, rssMb, runQueueWaitNs, settleCpu } from './stats.js';

export type { SizeResult } from './size-result.js';

/** Options of `runSizeBench`. */
export interface SizeBenchOptions {
  readonly nodes: number;
  readonly cycles: number;
  /** Inspection interval in virtual time (default 1 s). */
  readonly intervalMs?: number;
  /** Share of nodes given a fault (default 0.01). */
  readonly faultFraction?: number;
  /** false: simulator only, no engine (memory baseline). Default true. */
  readonly engine?: boolean;
  readonly seed?: number;
  /** Called after every cycle (progress output). */
  readonly onCycle?: (index: number, sample: CycleSample) => void;
}

/** Cycles excluded from the statistics at the start (JIT warm-up; no fault is injected yet). */
export const WARMUP_CYCLES = 2;
/** Last cycles run with the simulator answering the engine directly (CycleReport check). */
export const DIRECT_CYCLES = 2;
/** Cycles at the end with no new fault, so the last faults can be acted on. */
const QUIET_CYCLES = 3;

/** Runs one size and returns its figures. */
export async function runSizeBench(options: SizeBenchOptions): Promise<SizeResult> {
  const startedMs = performance.now();
  const floorRssMb = rssMb();
  const intervalMs = options.intervalMs ?? 1000;
  const withEngine = options.engine ?? true;
  const clock = new ManualClock();
  const world = createSimWorld({
    nodes: options.nodes,
    seed: options.seed ?? 7,
    catalogue: CATALOGUE,
    clock,
  });
  const table = defaultPriorityTable(CATALOGUE);
  const priorityOf = (c: string): number => table.get(c)?.priority ?? 999;
  const faults = planFaults({
    nodes: world.fleet.nodes.map((n) => n.name),
    conditions: benchConditions(CATALOGUE, priorityOf),
    count: Math.max(1, Math.round(options.nodes * (options.faultFraction ?? 0.01))),
    startMs: clock.now() + WARMUP_CYCLES * intervalMs,
    spanMs: Math.max(1, options.cycles - WARMUP_CYCLES - QUIET_CYCLES) * intervalMs,
  });
  for (const f of faults)
    world.faults.injectFault({ condition: f.condition, node: f.node, atMs: f.atMs });
  const tracker = new LatencyTracker(faults, intervalMs);
  const config = benchConfig(intervalMs);
  const plan = queryPlan(config, world.metrics, clock);
  const source = new PrefetchedSource(world.metrics, {
    exprs: plan.onDemand,
    evaluateNow: (expr, atMs) => world.metrics.evaluateNow(expr, atMs),
  });
  const heapBeforeEngineMb = heapAfterGc();
  const engine = withEngine
    ? buildEngine(world, clock, source, config, priorityOf, tracker)
    : undefined;
  // The inspector's every-cycle queries, and each fault's own rule: XID rules are asked through
  // their shared selection, but the latency tracker sees a fault by its rule's answer.
  const exprs = [...new Set([...plan.everyCycle, ...faults.map((f) => f.expr)])];
  const worldRssMb = rssMb();
  const ac = new AbortController();
  setMaxListeners(0, ac.signal);
  const samples: CycleSample[] = [];
  for (let i = 0; i < options.cycles; i++) {
    const direct = engine !== undefined && i >= options.cycles - DIRECT_CYCLES;
    const sample = await runCycle({
      world,
      clock,
      source,
      engine,
      exprs,
      direct,
      signal: ac.signal,
    });
    tracker.observeCycle(sample.atMs, sample.latencyWallMs, (e) => source.answer(e));
    const between = process.cpuUsage();
    await clock.advance(intervalMs);
    const done = { ...sample, betweenCpuMs: cpuMsSince(between), rssMb: rssMb() };
    samples.push(done);
    options.onCycle?.(i, done);
  }
  const heapAfterGcMb = heapAfterGc();
  const inflightAtEnd = engine?.controller.inflight ?? 0;
  ac.abort(new Error('benchmark over'));
  return {
    nodes: options.nodes,
    gpusPerNode: 8,
    engine: withEngine,
    cycles: options.cycles,
    intervalMs,
    faultyNodes: faults.length,
    ...cycleStats(samples, WARMUP_CYCLES),
    sourceMisses: source.misses,
    firstAction: tracker.result(),
    inflightAtEnd,
    samples,
    memory: {
      floorRssMb,
      worldRssMb,
      peakRssMb: peakRssMb(),
      ...(heapAfterGcMb === undefined ? {} : { heapAfterGcMb }),
      ...(heapBeforeEngineMb === undefined ? {} : { heapBeforeEngineMb }),
    },
    wallSeconds: Number(((performance.now() - startedMs) / 1000).toFixed(1)),
  };
}

/**
 * Steps in flight at once in the benchmark. The default (64) would hold first actions once 64
 * faulty nodes have a Job running: with 1 % of the fleet failing within a minute the latency
 * would measure that cap, not the engine. Every other gate keeps its default.
 */
export const BENCH_MAX_CONCURRENT_TOTAL = 100_000;

/** Product defaults with dry-run off, the benchmark's interval, the concurrency cap and storm limits raised. */
function benchConfig(intervalMs: number): Config {
  const base = defaultConfig();
  return {
    ...base,
    safety: {
      ...base.safety,
      dryRun: false,
      // A throughput benchmark: its bursts of faults must not read as a storm.
      stormMaxNewFaultyNodes: BENCH_MAX_CONCURRENT_TOTAL,
      stormMaxNewFaultyFraction: 1,
      maxConcurrent: { ...base.safety.maxConcurrent, total: BENCH_MAX_CONCURRENT_TOTAL },
    },
    inspect: { ...base.inspect, intervalMs, backgroundSlowRules: false, backgroundPresence: false },
  };
}

function buildEngine(
  world: SimWorld,
  clock: ManualClock,
  source: PrefetchedSource,
  config: Config,
  priorityOf: (c: string) => number,
  tracker: LatencyTracker,
): Engine {
  return createEngine({
    cluster: world.cluster,
    metricsSource: source,
    clock,
    config,
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    priorityOf: () => priorityOf,
    metrics: createMetrics(),
    log: silentLogger,
    onStep: (e) => {
      tracker.onStep(e);
    },
  });
}

/**
 * The inspector's queries: those of every cycle (presence, shared selections, rules, compatibility)
 * are prefetched; the slow rules' are evaluated when the engine asks (every few cycles).
 */
function queryPlan(
  config: Config,
  source: MetricsSource,
  clock: Clock,
): { everyCycle: readonly string[]; onDemand: ReadonlySet<string> } {
  const inspector = new Inspector({
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    metrics: source,
    clock,
    options: inspectorOptions(config),
  });
  const slow = new Set(inspector.slowRulePeriods.keys());
  const onDemand = new Set(CATALOGUE.filter((e) => slow.has(e.name)).map((e) => e.expr));
  return { everyCycle: inspector.queries.filter((q) => !onDemand.has(q)), onDemand };
}

const IDLE_ENGINE = {
  direct: false,
  engineCpuMs: 0,
  engineProcessCpuMs: 0,
  engineWaitMs: 0,
  engineWallMs: 0,
  latencyWallMs: 0,
  reportEngineMs: 0,
  reportInspectMs: 0,
  queries: 0,
  served: 0,
  started: 0,
  held: 0,
  faultyNodes: 0,
} as const;

/** V8 heap in use after a full collection (MB), when the process runs with --expose-gc. */
function heapAfterGc(): number | undefined {
  const gc = gcOf();
  if (gc === undefined) return undefined;
  gc();
  return Number((getHeapStatistics().used_heap_size / 2 ** 20).toFixed(1));
}

/** `gc()` when the process runs with --expose-gc. */
function gcOf(): (() => void) | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  return typeof gc === 'function' ? gc : undefined;
}

async function runCycle(r: {
  world: SimWorld;
  clock: ManualClock;
  source: PrefetchedSource;
  engine: Engine | undefined;
  exprs: readonly string[];
  direct: boolean;
  signal: AbortSignal;
}): Promise<Omit<CycleSample, 'betweenCpuMs' | 'rssMb'>> {
  const atMs = r.clock.now();
  const evaluated = r.world.metrics.queries;
  let sourceCpuMs = Number.NaN;
  if (r.direct) r.source.passThrough(atMs);
  else sourceCpuMs = (await r.source.prefetch(r.exprs, atMs, r.signal)).cpuMs;
  // The simulator's garbage is collected here, outside the engine's measurement.
  gcOf()?.();
  await settleCpu();
  if (r.engine === undefined) {
    return { ...IDLE_ENGINE, atMs, sourceCpuMs, evaluated: r.world.metrics.queries - evaluated };
  }
  r.source.takeServed();
  const wait = runQueueWaitNs();
  const cpu = process.cpuUsage();
  const wall = performance.now();
  r.source.takeOnDemand();
  const report = await r.engine.controller.cycle(r.signal);
  // Slow rules due in this cycle were evaluated by the simulator inside it: not the engine's time.
  const onDemand = r.source.takeOnDemand();
  const engineWallMs = performance.now() - wall - onDemand.wallMs;
  const engineProcessCpuMs = cpuMsSince(cpu) - onDemand.cpuMs;
  const waitEnd = runQueueWaitNs();
  const engineWaitMs =
    wait === undefined || waitEnd === undefined
      ? Number.NaN
      : (waitEnd - wait) / 1e6 - (onDemand.waitMs ?? 0);
  // On the CPU = wall time minus time spent runnable but waiting for a core. The two clocks have
  // different granularity, so under load the difference can dip below zero: bound it by [0, the
  // process CPU time of the cycle].
  const engineCpuMs = Number.isNaN(engineWaitMs)
    ? engineProcessCpuMs
    : Math.min(engineProcessCpuMs, Math.max(0, engineWallMs - engineWaitMs));
  return {
    atMs,
    direct: r.direct,
    sourceCpuMs: sourceCpuMs + onDemand.cpuMs,
    engineCpuMs,
    engineProcessCpuMs,
    engineWaitMs,
    engineWallMs,
    // In a direct cycle the wall time includes the simulator: count the engine's own part only.
    latencyWallMs: r.direct ? report.engineMs : engineWallMs,
    reportEngineMs: report.engineMs,
    reportInspectMs: report.inspectMs,
    queries: report.queries,
    served: r.source.takeServed(),
    evaluated: r.world.metrics.queries - evaluated,
    started: report.started,
    held: report.held,
    faultyNodes: report.faultyNodes,
  };
}
