/** Public API of the PromQL subset evaluator. */
export type {
  Aggregate,
  AggregateOp,
  BinaryOp,
  Call,
  CompiledMatcher,
  Expr,
  MatrixSelector,
  ValueType,
  VectorMatching,
  VectorSelector,
} from './ast.js';
export type { EvaluateOptions } from './evaluate.js';
export { DEFAULT_LOOKBACK_MS, evaluateInstant } from './evaluate.js';
export { isCompiledMatcher, toLabelsPredicate } from './matchers.js';
export { createMemorySeriesSource } from './memory-source.js';
export type { CompiledPromQL } from './parse.js';
export { compilePromQL, parsePromQL } from './parse.js';
export type { LabelMatcher, Sample, Series, SeriesSource } from './series.js';
export { formatLabels, formatSample, formatValue } from './format.js';
export { loadSeries } from './load-series.js';
