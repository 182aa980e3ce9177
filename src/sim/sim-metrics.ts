/**
 * The simulator's MetricsSource: the project's PromQL evaluator over the series store. Each
 * expression is compiled once. Failures of a real Prometheus can be injected: an outage
 * (PROM_UNAVAILABLE), slow answers (on the injected clock, so a deadline can fire), malformed or
 * partial answers (PROM_BAD_RESPONSE), and stale exporters on single nodes.
 */
import type { Clock } from '../core/clock.js';
import { ErrorCode, HealError, isHealError } from '../core/errors.js';
import type { Signal } from '../catalogue/types.js';
import type { InstantSample, MetricsSource } from '../prom/metrics-source.js';
import { compilePromQL, type CompiledPromQL } from '../promql/index.js';
import type { Exporter } from './family.js';
import type { SeriesStore } from './series-store.js';

/** Options of SimMetrics. */
export interface SimMetricsOptions {
  readonly store: SeriesStore;
  readonly clock: Clock;
  /** Runs due simulation effects before each query (SimWorld passes its sync). */
  readonly sync?: () => void;
  /** Instant-selector lookback (default Prometheus' 5 min). */
  readonly lookbackMs?: number;
}

const EXPORTER_OF_SIGNAL: Readonly<Record<Signal, Exporter | undefined>> = {
  'dcgm-exporter': 'dcgm',
  'node-exporter': 'node',
  'kube-state-metrics': 'ksm',
  'ipmi-exporter': 'ipmi',
  'gpfs-exporter': 'gpfs',
  sichek: 'nodecheck',
  'aegis-nodecheck': 'nodecheck',
  'node-problem-detector': 'nodecheck',
  prometheus: undefined,
  kubernetes: undefined,
};

/** The exporter serving a catalogue signal, or undefined for `prometheus`/`kubernetes`. */
export function exporterOfSignal(signal: Signal): Exporter | undefined {
  return EXPORTER_OF_SIGNAL[signal];
}

/** PromQL over the simulated fleet. */
export class SimMetrics implements MetricsSource {
  readonly #store: SeriesStore;
  readonly #clock: Clock;
  readonly #sync: () => void;
  readonly #lookbackMs: number | undefined;
  readonly #compiled = new Map<string, CompiledPromQL>();
  #outageUntil = Number.NEGATIVE_INFINITY;
  #latencyMs = 0;
  #garbage = 0;
  #partial = 0;
  #queries = 0;

  constructor(options: SimMetricsOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#sync = options.sync ?? (() => undefined);
    this.#lookbackMs = options.lookbackMs;
  }

  async query(expr: string, atMs: number, signal: AbortSignal): Promise<readonly InstantSample[]> {
    signal.throwIfAborted();
    if (this.#latencyMs > 0) await this.#clock.sleep(this.#latencyMs, signal);
    else await Promise.resolve();
    signal.throwIfAborted();
    if (this.#clock.now() < this.#outageUntil) {
      throw new HealError(
        ErrorCode.PromUnavailable,
        `query "${expr}": simulated Prometheus outage`,
      );
    }
    if (this.#garbage > 0) {
      this.#garbage--;
      throw new HealError(ErrorCode.PromBadResponse, `query "${expr}": malformed response body`);
    }
    if (this.#partial > 0) {
      this.#partial--;
      throw new HealError(
        ErrorCode.PromBadResponse,
        `query "${expr}": partial response (warnings)`,
      );
    }
    return this.evaluateNow(expr, atMs);
  }

  /**
   * Evaluates `expr` at `atMs` at once, without the injected failures or latency: the whole cost
   * in one synchronous call, for benchmarks that time the simulator apart from the engine.
   */
  evaluateNow(expr: string, atMs: number): readonly InstantSample[] {
    this.#sync();
    this.#queries++;
    try {
      const options = this.#lookbackMs === undefined ? {} : { lookbackMs: this.#lookbackMs };
      return this.#compile(expr).evaluate(this.#store, atMs, options);
    } catch (err) {
      // A real Prometheus answers 400/422 for bad or failing expressions.
      if (isHealError(err, ErrorCode.InvalidInput)) {
        throw new HealError(ErrorCode.PromBadResponse, `query "${expr}": ${err.message}`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  /** Number of queries answered (evaluated) so far. */
  get queries(): number {
    return this.#queries;
  }

  /** Every query throws PROM_UNAVAILABLE until `untilMs`. */
  outage(untilMs: number): void {
    this.#outageUntil = untilMs;
  }

  /** Each query takes `ms` on the injected clock (0 turns it off). */
  slow(ms: number): void {
    this.#latencyMs = ms;
  }

  /** The next `count` queries get a malformed body (PROM_BAD_RESPONSE). */
  garbage(count = 1): void {
    this.#garbage += count;
  }

  /** The next `count` queries get a partial answer with warnings (PROM_BAD_RESPONSE). */
  partial(count = 1): void {
    this.#partial += count;
  }

  /** The exporter of `signal` on `node` stops being scraped: its series go stale, `up` is 0. */
  staleExporter(node: string, signal: Signal, atMs = this.#clock.now()): void {
    this.#store.setExporterUp(node, this.#exporter(signal), false, atMs);
  }

  /** The exporter of `signal` on `node` is scraped again. */
  freshExporter(node: string, signal: Signal, atMs = this.#clock.now()): void {
    this.#store.setExporterUp(node, this.#exporter(signal), true, atMs);
  }

  #exporter(signal: Signal): Exporter {
    const exporter = exporterOfSignal(signal);
    if (exporter === undefined) {
      throw new HealError(
        ErrorCode.InvalidInput,
        `signal "${signal}" has no exporter to make stale`,
      );
    }
    return exporter;
  }

  #compile(expr: string): CompiledPromQL {
    let compiled = this.#compiled.get(expr);
    if (compiled === undefined) {
      compiled = compilePromQL(expr);
      this.#compiled.set(expr, compiled);
    }
    return compiled;
  }
}
