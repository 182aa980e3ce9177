/** PromQL binary operators: names, precedence and classes, shared by parser and evaluator. */
import type { BinaryOp, ComparisonOp, SetOp } from './ast.js';

/** Binary operators by lezer-promql node name. */
export const OPERATORS: Readonly<Record<string, BinaryOp>> = {
  Pow: '^',
  Mul: '*',
  Div: '/',
  Mod: '%',
  Atan2: 'atan2',
  Add: '+',
  Sub: '-',
  Eql: '==',
  Neq: '!=',
  Gtr: '>',
  Lss: '<',
  Gte: '>=',
  Lte: '<=',
  And: 'and',
  Unless: 'unless',
  Or: 'or',
};

/** Binding strength of binary operators, as in Prometheus's generated_parser.y (`^` is right-associative). */
export const PRECEDENCE: Readonly<Record<BinaryOp, number>> = {
  or: 1,
  and: 2,
  unless: 2,
  '==': 3,
  '!=': 3,
  '>': 3,
  '<': 3,
  '>=': 3,
  '<=': 3,
  '+': 4,
  '-': 4,
  '*': 5,
  '/': 5,
  '%': 5,
  atan2: 5,
  '^': 6,
};
/** Unary signs take operands up to `^` (Prometheus gives them MUL precedence). */
export const UNARY_OPERAND_PRECEDENCE = PRECEDENCE['^'];

const COMPARISONS: ReadonlySet<BinaryOp> = new Set<BinaryOp>(['==', '!=', '>', '<', '>=', '<=']);
const SET_OPS: ReadonlySet<BinaryOp> = new Set<BinaryOp>(['and', 'or', 'unless']);

/** True for `== != > < >= <=`. */
export function isComparison(op: BinaryOp): op is ComparisonOp {
  return COMPARISONS.has(op);
}

/** True for `and or unless`. */
export function isSetOp(op: BinaryOp): op is SetOp {
  return SET_OPS.has(op);
}
