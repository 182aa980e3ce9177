/** Signatures of the PromQL functions the evaluator supports, used by the parser's type checks. */
import type { ValueType } from './ast.js';

/** Argument and result types of one function; a variadic last argument may repeat or be left out. */
export interface FunctionSignature {
  readonly args: readonly ValueType[];
  readonly minArgs: number;
  readonly variadic: boolean;
  readonly returns: ValueType;
}

function sig(
  args: readonly ValueType[],
  returns: ValueType,
  shape: { readonly minArgs?: number; readonly variadic?: boolean } = {},
): FunctionSignature {
  return {
    args,
    returns,
    minArgs: shape.minArgs ?? args.length,
    variadic: shape.variadic ?? false,
  };
}

const RANGE_TO_VECTOR = sig(['matrix'], 'vector');
const VECTOR_TO_VECTOR = sig(['vector'], 'vector');

/** Functions over a range vector, one result per series. */
const RANGE_FUNCTIONS = [
  'rate',
  'irate',
  'increase',
  'delta',
  'idelta',
  'deriv',
  'changes',
  'resets',
  'avg_over_time',
  'min_over_time',
  'max_over_time',
  'sum_over_time',
  'count_over_time',
  'last_over_time',
  'present_over_time',
  'stddev_over_time',
  'stdvar_over_time',
] as const;

/** Element-wise math functions on an instant vector. */
const MATH_FUNCTIONS = [
  'abs',
  'ceil',
  'floor',
  'exp',
  'sqrt',
  'ln',
  'log2',
  'log10',
  'sgn',
  'deg',
  'rad',
  'sin',
  'cos',
  'tan',
  'asin',
  'acos',
  'atan',
  'sinh',
  'cosh',
  'tanh',
  'asinh',
  'acosh',
  'atanh',
] as const;

/** Calendar functions (UTC) of a vector of Unix seconds, or of the evaluation time. */
const DATE_FUNCTIONS = [
  'day_of_month',
  'day_of_week',
  'day_of_year',
  'days_in_month',
  'hour',
  'minute',
  'month',
  'year',
] as const;

/** Every supported function by name. */
export const FUNCTIONS: ReadonlyMap<string, FunctionSignature> = new Map<string, FunctionSignature>(
  [
    ...RANGE_FUNCTIONS.map((name) => [name, RANGE_TO_VECTOR] as const),
    ...MATH_FUNCTIONS.map((name) => [name, VECTOR_TO_VECTOR] as const),
    ...DATE_FUNCTIONS.map((name) => [name, sig(['vector'], 'vector', { minArgs: 0 })] as const),
    ['predict_linear', sig(['matrix', 'scalar'], 'vector')],
    ['quantile_over_time', sig(['scalar', 'matrix'], 'vector')],
    ['absent_over_time', RANGE_TO_VECTOR],
    ['absent', VECTOR_TO_VECTOR],
    ['timestamp', VECTOR_TO_VECTOR],
    ['sort', VECTOR_TO_VECTOR],
    ['sort_desc', VECTOR_TO_VECTOR],
    ['round', sig(['vector', 'scalar'], 'vector', { minArgs: 1 })],
    ['clamp', sig(['vector', 'scalar', 'scalar'], 'vector')],
    ['clamp_min', sig(['vector', 'scalar'], 'vector')],
    ['clamp_max', sig(['vector', 'scalar'], 'vector')],
    ['label_replace', sig(['vector', 'string', 'string', 'string', 'string'], 'vector')],
    [
      'label_join',
      sig(['vector', 'string', 'string', 'string'], 'vector', { minArgs: 3, variadic: true }),
    ],
    ['vector', sig(['scalar'], 'vector')],
    ['scalar', sig(['vector'], 'scalar')],
    ['time', sig([], 'scalar')],
    ['pi', sig([], 'scalar')],
  ],
);
