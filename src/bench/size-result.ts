/** What one benchmark size reports, and how its per-cycle samples are summarised. */
import type { LatencyResult } from './latency-tracker.js';
import { summarize, type Summary } from './stats.js';

/** One inspection cycle as measured. */
export interface CycleSample {
  /** Virtual time of the cycle. */
  readonly atMs: number;
  /** True when the simulator answered the engine directly (no prefetch). */
  readonly direct: boolean;
  /** CPU of the simulator's evaluation of the cycle's queries (NaN in direct cycles). */
  readonly sourceCpuMs: number;
  /**
   * The headline: time the main thread spent on a CPU during `controller.cycle()`, i.e. wall time
   * minus its run-queue wait (other load on the machine); process CPU where that is unavailable.
   */
  readonly engineCpuMs: number;
  /** CPU of the whole process during the cycle: adds V8's helper threads (concurrent GC). */
  readonly engineProcessCpuMs: number;
  /** Time the main thread waited for a CPU during the cycle (other load on the machine). */
  readonly engineWaitMs: number;
  /** Wall time of `controller.cycle()`. */
  readonly engineWallMs: number;
  /** Engine wall time counted in the first-action latency of faults acted on in this cycle. */
  readonly latencyWallMs: number;
  /** CycleReport.engineMs and inspectMs, as the controller measures them. */
  readonly reportEngineMs: number;
  readonly reportInspectMs: number;
  /** Queries the engine issued (CycleReport.queries) and the source served. */
  readonly queries: number;
  readonly served: number;
  /** Queries the simulator evaluated. */
  readonly evaluated: number;
  readonly started: number;
  readonly held: number;
  readonly faultyNodes: number;
  /** CPU while virtual time advanced to the next cycle: steps in flight and simulator effects. */
  readonly betweenCpuMs: number;
  readonly rssMb: number;
}

/** Per-cycle figures of one size, from the cycles after the warm-up. */
export interface CycleStats {
  readonly measuredCycles: number;
  /** The headline: engine CPU per cycle, prefetched cycles only (metrics source excluded). */
  readonly engineCpuMs: Summary;
  /**
   * The same over quiet cycles: no step started in the cycle nor in the one before, so no ticket
   * changed; what the fleet itself costs per cycle.
   */
  readonly engineCpuMsQuiet: Summary;
  readonly engineProcessCpuMs: Summary;
  readonly engineWaitMs: Summary;
  readonly engineWallMs: Summary;
  /** The controller's own CycleReport.engineMs / inspectMs in the same cycles. */
  readonly reportEngineMs: Summary;
  readonly reportInspectMs: Summary;
  /** The same CycleReport fields in direct cycles (the simulator answering inside the cycle). */
  readonly direct: { readonly reportEngineMs: Summary; readonly reportInspectMs: Summary };
  /** CPU of the metrics source (the simulator's PromQL) per cycle. */
  readonly sourceCpuMs: Summary;
  readonly betweenCpuMs: Summary;
  /** Slow rules are asked only when due, so the count varies from cycle to cycle. */
  readonly queriesPerCycle: { readonly min: number; readonly max: number; readonly mean: number };
  readonly evaluatedPerCycle: { readonly min: number; readonly max: number };
  readonly started: number;
  readonly held: number;
  readonly maxCycleRssMb: number;
}

/** Everything one size reports. */
export interface SizeResult extends CycleStats {
  readonly nodes: number;
  readonly gpusPerNode: number;
  readonly engine: boolean;
  readonly cycles: number;
  readonly intervalMs: number;
  readonly faultyNodes: number;
  /** Engine queries answered outside the prefetch (should be 0). */
  readonly sourceMisses: number;
  readonly firstAction: LatencyResult;
  readonly memory: {
    /** RSS of the process before the simulated world was built (Node, tsx, modules). */
    readonly floorRssMb: number;
    /** RSS once the world and the engine were built. */
    readonly worldRssMb: number;
    /** Peak RSS of the whole process (simulator and engine). */
    readonly peakRssMb: number;
    /** V8 heap in use after a full GC at the end of the run (with --expose-gc only). */
    readonly heapAfterGcMb?: number;
    /**
     * The same once the world was built and the faults planned, before the engine (with
     * --expose-gc only). heapAfterGcMb minus this is the engine's live state plus what the run
     * added to the simulated cluster (tickets, Jobs, Events).
     */
    readonly heapBeforeEngineMb?: number;
  };
  /** Steps still running when the run ended. */
  readonly inflightAtEnd: number;
  /** Every cycle as measured, warm-up included. */
  readonly samples: readonly CycleSample[];
  readonly wallSeconds: number;
}

/** Summarises the samples after `warmup` cycles. */
export function cycleStats(samples: readonly CycleSample[], warmup: number): CycleStats {
  const measured = samples.slice(warmup);
  const prefetched = measured.filter((s) => !s.direct);
  const quiet = samples.filter(
    (s, i) => i >= warmup && !s.direct && s.started === 0 && (samples[i - 1]?.started ?? 0) === 0,
  );
  const direct = measured.filter((s) => s.direct);
  const of = (list: readonly CycleSample[], f: (s: CycleSample) => number): Summary =>
    summarize(list.map(f));
  const range = (f: (s: CycleSample) => number): { min: number; max: number; mean: number } => {
    const v = measured.map(f);
    const mean = v.reduce((a, x) => a + x, 0) / Math.max(1, v.length);
    return { min: Math.min(...v), max: Math.max(...v), mean: Number(mean.toFixed(1)) };
  };
  return {
    measuredCycles: measured.length,
    engineCpuMs: of(prefetched, (s) => s.engineCpuMs),
    engineCpuMsQuiet: of(quiet, (s) => s.engineCpuMs),
    engineProcessCpuMs: of(prefetched, (s) => s.engineProcessCpuMs),
    engineWaitMs: of(prefetched, (s) => s.engineWaitMs),
    engineWallMs: of(prefetched, (s) => s.engineWallMs),
    reportEngineMs: of(prefetched, (s) => s.reportEngineMs),
    reportInspectMs: of(prefetched, (s) => s.reportInspectMs),
    direct: {
      reportEngineMs: of(direct, (s) => s.reportEngineMs),
      reportInspectMs: of(direct, (s) => s.reportInspectMs),
    },
    sourceCpuMs: of(prefetched, (s) => s.sourceCpuMs),
    betweenCpuMs: of(measured, (s) => s.betweenCpuMs),
    queriesPerCycle: range((s) => s.queries),
    evaluatedPerCycle: range((s) => s.evaluated),
    started: samples.reduce((a, s) => a + s.started, 0),
    held: samples.reduce((a, s) => a + s.held, 0),
    maxCycleRssMb: Math.max(...samples.map((s) => s.rssMb)),
  };
}
