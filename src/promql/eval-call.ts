/** Function-call evaluation: range functions, element-wise math, and the special cases. */
import { ErrorCode, HealError } from '../core/errors.js';
import type { Call, Expr, MatrixSelector } from './ast.js';
import type { EvalContext, Value, Vector } from './eval-context.js';
import { dropMetricName, evalScalar, evalVector } from './eval-context.js';
import { labelJoin, labelReplace } from './eval-labels.js';
import { RANGE_FNS } from './eval-range.js';
import { absentLabels, evalRangeFunction, hasAnySample, selectInstant } from './eval-select.js';

const MATH: Readonly<Record<string, (v: number) => number>> = {
  abs: Math.abs,
  ceil: Math.ceil,
  floor: Math.floor,
  exp: Math.exp,
  sqrt: Math.sqrt,
  ln: Math.log,
  log2: Math.log2,
  log10: Math.log10,
  sgn: (v) => (v < 0 ? -1 : v > 0 ? 1 : v),
  deg: (v) => (v * 180) / Math.PI,
  rad: (v) => (v * Math.PI) / 180,
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  asin: Math.asin,
  acos: Math.acos,
  atan: Math.atan,
  sinh: Math.sinh,
  cosh: Math.cosh,
  tanh: Math.tanh,
  asinh: Math.asinh,
  acosh: Math.acosh,
  atanh: Math.atanh,
};

const DATE: Readonly<Record<string, (d: Date) => number>> = {
  day_of_month: (d) => d.getUTCDate(),
  day_of_week: (d) => d.getUTCDay(),
  day_of_year: (d) =>
    (Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) -
      Date.UTC(d.getUTCFullYear(), 0, 1)) /
      86_400_000 +
    1,
  days_in_month: (d) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate(),
  hour: (d) => d.getUTCHours(),
  minute: (d) => d.getUTCMinutes(),
  month: (d) => d.getUTCMonth() + 1,
  year: (d) => d.getUTCFullYear(),
};

/** Applies `f` to every value in place, dropping the metric name (Prometheus's simpleFunc). */
function mapValues(vec: Vector, f: (v: number) => number): Vector {
  for (const s of vec) {
    s.value = f(s.value);
    s.labels = dropMetricName(s.labels);
  }
  return vec;
}

function unwrapParens(expr: Expr): Expr {
  return expr.kind === 'paren' ? unwrapParens(expr.expr) : expr;
}

function evalRangeCall(ctx: EvalContext, call: Call): Vector {
  // Parentheses around the range are legal: `changes((x[5m]))`.
  const ms = call.args
    .map(unwrapParens)
    .find((a): a is MatrixSelector => a.kind === 'matrixSelector');
  const scalarArg = call.args.find((a) => unwrapParens(a).kind !== 'matrixSelector');
  const apply = RANGE_FNS[call.func];
  if (ms === undefined || apply === undefined) return [];
  const param = scalarArg === undefined ? NaN : evalScalar(ctx, scalarArg);
  return evalRangeFunction(ctx, ms, { apply, param, keepName: call.func === 'last_over_time' });
}

function evalTimestamp(ctx: EvalContext, arg: Expr): Vector {
  const inner = unwrapParens(arg);
  // On a plain selector Prometheus reports the sample's own time, elsewhere the evaluation time.
  if (inner.kind === 'vectorSelector') {
    return mapValues(selectInstant(ctx, inner, { useTimestamps: true }), (v) => v);
  }
  const evalSeconds = ctx.atMs / 1000;
  return mapValues(evalVector(ctx, arg), () => evalSeconds);
}

function evalDate(ctx: EvalContext, call: Call, f: (d: Date) => number): Vector {
  const [arg] = call.args;
  if (arg === undefined) return [{ labels: {}, value: f(new Date(ctx.atMs)) }];
  return mapValues(evalVector(ctx, arg), (v) =>
    Number.isFinite(v) ? f(new Date(Math.trunc(v) * 1000)) : NaN,
  );
}

function evalAbsent(ctx: EvalContext, call: Call): Vector {
  const [arg] = call.args;
  if (arg === undefined) return [];
  if (call.func === 'absent_over_time') {
    const ms = unwrapParens(arg);
    if (ms.kind !== 'matrixSelector' || hasAnySample(ctx, ms)) return [];
    // Like Prometheus, labels come only from a selector given directly (not in parentheses).
    return [{ labels: arg.kind === 'matrixSelector' ? absentLabels(arg.selector) : {}, value: 1 }];
  }
  if (evalVector(ctx, arg).length > 0) return [];
  return [{ labels: arg.kind === 'vectorSelector' ? absentLabels(arg) : {}, value: 1 }];
}

function sortByValue(vec: Vector, descending: boolean): Vector {
  // NaN sorts last either way, as in Prometheus.
  return vec.sort((a, b) => {
    if (Number.isNaN(a.value)) return Number.isNaN(b.value) ? 0 : 1;
    if (Number.isNaN(b.value)) return -1;
    return descending ? b.value - a.value : a.value - b.value;
  });
}

function evalClamp(ctx: EvalContext, call: Call): Vector {
  const [vecExpr, a, b] = call.args;
  if (vecExpr === undefined || a === undefined) return [];
  const first = evalScalar(ctx, a);
  const second = b === undefined ? NaN : evalScalar(ctx, b);
  const min = call.func === 'clamp_max' ? -Infinity : first;
  const max = call.func === 'clamp_min' ? Infinity : call.func === 'clamp' ? second : first;
  if (max < min) return [];
  return mapValues(evalVector(ctx, vecExpr), (v) => Math.max(min, Math.min(max, v)));
}

/** Evaluates a function call (arity and types were checked by the parser). */
export function evalCall(ctx: EvalContext, call: Call): Value {
  const { func, args } = call;
  const [arg0, arg1] = args;
  if (func in RANGE_FNS) return evalRangeCall(ctx, call);
  const math = MATH[func];
  if (math !== undefined && arg0 !== undefined) return mapValues(evalVector(ctx, arg0), math);
  const date = DATE[func];
  if (date !== undefined) return evalDate(ctx, call, date);
  switch (func) {
    case 'time':
      return ctx.atMs / 1000;
    case 'pi':
      return Math.PI;
    case 'vector':
      return [{ labels: {}, value: arg0 === undefined ? NaN : evalScalar(ctx, arg0) }];
    case 'scalar': {
      const vec = arg0 === undefined ? [] : evalVector(ctx, arg0);
      return vec.length === 1 ? (vec[0]?.value ?? NaN) : NaN;
    }
    case 'absent':
    case 'absent_over_time':
      return evalAbsent(ctx, call);
    case 'timestamp':
      return arg0 === undefined ? [] : evalTimestamp(ctx, arg0);
    case 'sort':
    case 'sort_desc':
      return arg0 === undefined ? [] : sortByValue(evalVector(ctx, arg0), func === 'sort_desc');
    case 'round': {
      if (arg0 === undefined) return [];
      const inverse = 1 / (arg1 === undefined ? 1 : evalScalar(ctx, arg1));
      return mapValues(evalVector(ctx, arg0), (v) => Math.floor(v * inverse + 0.5) / inverse);
    }
    case 'clamp':
    case 'clamp_min':
    case 'clamp_max':
      return evalClamp(ctx, call);
    case 'label_replace':
      return labelReplace(ctx, call);
    case 'label_join':
      return labelJoin(ctx, call);
    default:
      throw new HealError(
        ErrorCode.PromQLUnsupported,
        `PromQL: function "${func}" has no evaluator (${call.text})`,
      );
  }
}
