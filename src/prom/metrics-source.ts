/**
 * The engine's port to a metrics backend. Two implementations: the real Prometheus HTTP client
 * (src/prom/prom-client.ts) and the simulator's evaluator over its in-memory fleet.
 */

/** One element of an instant vector. */
export interface InstantSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Instant PromQL queries. */
export interface MetricsSource {
  /**
   * Evaluates `expr` at `atMs`. Throws HealError PROM_UNAVAILABLE (unreachable, timeout, 5xx) or
   * PROM_BAD_RESPONSE (4xx, malformed body, partial data warnings) — never returns a partial answer
   * as if it were whole.
   */
  query(expr: string, atMs: number, signal: AbortSignal): Promise<readonly InstantSample[]>;
}
