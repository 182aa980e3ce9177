/** Storage interface the PromQL evaluator reads from (the simulator implements it). */

/** One sample: time in ms since epoch, value. */
export interface Sample {
  readonly t: number;
  readonly v: number;
}

/** A series with its full label set (including `__name__`) and samples sorted by time. */
export interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly samples: readonly Sample[];
}

/** A label matcher as in PromQL selectors. */
export interface LabelMatcher {
  readonly name: string;
  readonly op: '=' | '!=' | '=~' | '!~';
  readonly value: string;
}

/** Where series come from. */
export interface SeriesSource {
  /**
   * Series named `metric` matching every matcher, with their samples in `(startMs, endMs]`.
   * Series with no sample in the window are left out (that is how staleness looks).
   */
  select(
    metric: string,
    matchers: readonly LabelMatcher[],
    startMs: number,
    endMs: number,
  ): readonly Series[];
}
