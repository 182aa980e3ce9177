/** The evaluator's own PromQL syntax tree, built by parse.ts from the lezer-promql tree. */
import type { LabelMatcher } from './series.js';

/** Static types of PromQL expressions (strings only appear as function arguments here). */
export type ValueType = 'scalar' | 'vector' | 'matrix' | 'string';

/** A selector matcher with its test precompiled once per parse (regexes fully anchored). */
export interface CompiledMatcher extends LabelMatcher {
  /** True when a label value (`''` for an absent label) satisfies the matcher. */
  readonly matches: (value: string) => boolean;
}

/** Arithmetic operators; `atan2` is PromQL's binary arc tangent. */
export type ArithmeticOp = '+' | '-' | '*' | '/' | '%' | '^' | 'atan2';
/** Comparison operators: they filter, or return 0/1 with `bool`. */
export type ComparisonOp = '==' | '!=' | '>' | '<' | '>=' | '<=';
/** Set operators over instant vectors. */
export type SetOp = 'and' | 'or' | 'unless';
/** Every binary operator the evaluator supports. */
export type BinaryOp = ArithmeticOp | ComparisonOp | SetOp;

/** Aggregation operators the evaluator supports. */
export type AggregateOp =
  | 'sum'
  | 'count'
  | 'min'
  | 'max'
  | 'avg'
  | 'group'
  | 'stddev'
  | 'stdvar'
  | 'topk'
  | 'bottomk'
  | 'quantile';

/** A number literal (durations in number position are seconds, as in Prometheus). */
export interface NumberLiteral {
  readonly kind: 'number';
  readonly value: number;
}

/** A string literal, already unquoted. */
export interface StringLiteral {
  readonly kind: 'string';
  readonly value: string;
}

/** `metric{matchers} offset d`: the latest sample within the lookback window. */
export interface VectorSelector {
  readonly kind: 'vectorSelector';
  readonly metric: string;
  /** Matchers other than the metric name. */
  readonly matchers: readonly CompiledMatcher[];
  /** Positive looks back in time, negative forward. */
  readonly offsetMs: number;
}

/** `metric{matchers}[range] offset d`: all samples in `(t - offset - range, t - offset]`. */
export interface MatrixSelector {
  readonly kind: 'matrixSelector';
  readonly selector: VectorSelector;
  readonly rangeMs: number;
}

/** A function call; `regex` is set for label_replace (compiled at parse time). */
export interface Call {
  readonly kind: 'call';
  readonly func: string;
  readonly args: readonly Expr[];
  readonly regex: RegExp | undefined;
  /** Source text, for run-time error messages. */
  readonly text: string;
}

/** `by (...)` or `without (...)`; no clause is `by ()`. */
export interface Grouping {
  readonly mode: 'by' | 'without';
  readonly labels: readonly string[];
}

/** An aggregation such as `sum by (node) (x)` or `topk(3, x)`. */
export interface Aggregate {
  readonly kind: 'aggregate';
  readonly op: AggregateOp;
  readonly grouping: Grouping;
  /** The k of topk/bottomk, the phi of quantile. */
  readonly param: Expr | undefined;
  readonly expr: Expr;
}

/** How two instant vectors are matched; `include` are the group_left/right extra labels. */
export interface VectorMatching {
  readonly card: 'one-to-one' | 'many-to-one' | 'one-to-many' | 'many-to-many';
  /** True for `on(...)`, false for `ignoring(...)` (the default, with no labels). */
  readonly on: boolean;
  readonly labels: readonly string[];
  readonly include: readonly string[];
}

/** A binary operation; `matching` is set only when both sides are instant vectors. */
export interface Binary {
  readonly kind: 'binary';
  readonly op: BinaryOp;
  readonly lhs: Expr;
  readonly rhs: Expr;
  readonly returnBool: boolean;
  readonly matching: VectorMatching | undefined;
  /** Source text, for run-time error messages. */
  readonly text: string;
}

/** Unary minus (unary plus is dropped by the parser). */
export interface Unary {
  readonly kind: 'unary';
  readonly expr: Expr;
}

/** Parentheses, kept because absent() and timestamp() look through them differently. */
export interface Paren {
  readonly kind: 'paren';
  readonly expr: Expr;
}

/** A parsed PromQL expression. */
export type Expr =
  | NumberLiteral
  | StringLiteral
  | VectorSelector
  | MatrixSelector
  | Call
  | Aggregate
  | Binary
  | Unary
  | Paren;
