/**
 * Instant evaluation of a parsed PromQL expression over a SeriesSource, with Prometheus 3
 * semantics (left-open windows, 5 min lookback, extrapolated rates, `__name__` dropping).
 */
import type { Expr } from './ast.js';
import { evalAggregate } from './eval-aggregate.js';
import { evalBinary } from './eval-binary.js';
import { evalCall } from './eval-call.js';
import type { EvalContext, Value } from './eval-context.js';
import { dropMetricName } from './eval-context.js';
import { selectInstant } from './eval-select.js';
import { copyValue, repeatedSubtrees } from './common-subtrees.js';
import type { InstantSample } from '../prom/metrics-source.js';
import type { SeriesSource } from './series.js';

/** Prometheus's default lookback delta for instant vector selectors. */
export const DEFAULT_LOOKBACK_MS = 5 * 60_000;

/** Evaluation knobs. */
export interface EvaluateOptions {
  /** How far back an instant selector looks for a sample; default 5 min, as Prometheus. */
  readonly lookbackMs?: number;
}

function evaluateExpr(ctx: EvalContext, expr: Expr): Value {
  switch (expr.kind) {
    case 'number':
      return expr.value;
    case 'string':
    case 'matrixSelector':
      // The parser only lets these through as function arguments, which read them directly.
      return [];
    case 'vectorSelector':
      return selectInstant(ctx, expr, { useTimestamps: false });
    case 'paren':
      return ctx.evaluate(expr.expr);
    case 'unary': {
      const value = ctx.evaluate(expr.expr);
      if (typeof value === 'number') return -value;
      for (const s of value) {
        s.value = -s.value;
        s.labels = dropMetricName(s.labels);
      }
      return value;
    }
    case 'binary':
      return evalBinary(ctx, expr);
    case 'aggregate':
      return evalAggregate(ctx, expr);
    case 'call':
      return evalCall(ctx, expr);
  }
}

/**
 * Evaluates `expr` at `atMs` (ms since epoch). A scalar result comes back as one sample with empty
 * labels. Throws INVALID_INPUT on run-time errors Prometheus also raises (many-to-many matching,
 * duplicate label sets after label_replace, NaN topk parameter), naming the sub-expression.
 */
export function evaluateInstant(
  expr: Expr,
  source: SeriesSource,
  atMs: number,
  opts: EvaluateOptions = {},
): InstantSample[] {
  // A subtree that occurs more than once is evaluated once; later occurrences get a copy.
  const repeated = repeatedSubtrees(expr);
  const shared = new Map<string, Value>();
  const ctx: EvalContext = {
    source,
    atMs,
    lookbackMs: opts.lookbackMs ?? DEFAULT_LOOKBACK_MS,
    evaluate:
      repeated.size === 0
        ? (e) => evaluateExpr(ctx, e)
        : (e) => {
            const key = repeated.get(e);
            if (key === undefined) return evaluateExpr(ctx, e);
            const done = shared.get(key);
            if (done !== undefined) return copyValue(done);
            const value = evaluateExpr(ctx, e);
            shared.set(key, copyValue(value));
            return value;
          },
  };
  const value = ctx.evaluate(expr);
  return typeof value === 'number' ? [{ labels: {}, value }] : value;
}
