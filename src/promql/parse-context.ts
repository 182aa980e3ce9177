/** Shared helpers of the lezer-tree-to-AST conversion: positions, children, static types. */
import type { parser } from '@prometheus-io/lezer-promql';
import { ErrorCode, HealError } from '../core/errors.js';
import type { Expr, ValueType } from './ast.js';
import { FUNCTIONS } from './functions.js';

/** A node of the lezer-promql syntax tree. */
export type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

/** A source range (a SyntaxNode is one). */
export interface Span {
  readonly from: number;
  readonly to: number;
}

/** What every converter needs: the source text and the recursive converter. */
export interface ParseContext {
  readonly text: string;
  readonly convert: (node: SyntaxNode) => Expr;
}

const SNIPPET_MAX = 40;

/** `at line L, column C near "snippet"` for an offset range of the source, for messages. */
export function locate(text: string, from: number, to: number = from): string {
  const before = text.slice(0, from);
  const line = before.split('\n').length;
  const column = from - before.lastIndexOf('\n');
  let snippet = text.slice(from, Math.max(to, from + 1)).split('\n')[0] ?? '';
  if (snippet.length > SNIPPET_MAX) snippet = `${snippet.slice(0, SNIPPET_MAX)}...`;
  return snippet === ''
    ? `at line ${line}, column ${column} (end of input)`
    : `at line ${line}, column ${column} near "${snippet}"`;
}

/** Location text for a node or span. */
export function at(ctx: ParseContext, span: Span): string {
  return locate(ctx.text, span.from, span.to);
}

/** Source text of a node or span. */
export function textOf(ctx: ParseContext, node: Span): string {
  return ctx.text.slice(node.from, node.to);
}

/** Named children of a node (lezer leaves out punctuation; comments are dropped here). */
export function children(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c !== null; c = c.nextSibling) {
    if (c.name !== 'LineComment') out.push(c);
  }
  return out;
}

/** The first child, or an INVALID_INPUT error naming the node. */
export function firstChild(ctx: ParseContext, node: SyntaxNode): SyntaxNode {
  const c = children(node)[0];
  if (c === undefined) throw invalid(`empty ${node.name}`, ctx, node);
  return c;
}

/** An INVALID_INPUT error for a malformed or ill-typed expression. */
export function invalid(what: string, ctx: ParseContext, node: Span): HealError {
  return new HealError(ErrorCode.InvalidInput, `PromQL: ${what} ${at(ctx, node)}`);
}

/** A PROMQL_UNSUPPORTED error naming the construct. */
export function unsupported(what: string, ctx: ParseContext, node: Span): HealError {
  return new HealError(
    ErrorCode.PromQLUnsupported,
    `PromQL: ${what} is not supported by the built-in evaluator ${at(ctx, node)}`,
  );
}

/** Static type of an expression, as Prometheus's parser computes it. */
export function typeOf(expr: Expr): ValueType {
  switch (expr.kind) {
    case 'number':
      return 'scalar';
    case 'string':
      return 'string';
    case 'vectorSelector':
    case 'aggregate':
      return 'vector';
    case 'matrixSelector':
      return 'matrix';
    case 'call':
      return FUNCTIONS.get(expr.func)?.returns ?? 'vector';
    case 'binary':
      return typeOf(expr.lhs) === 'scalar' && typeOf(expr.rhs) === 'scalar' ? 'scalar' : 'vector';
    case 'unary':
    case 'paren':
      return typeOf(expr.expr);
  }
}

const TYPE_NAMES: Readonly<Record<ValueType, string>> = {
  scalar: 'scalar',
  vector: 'instant vector',
  matrix: 'range vector',
  string: 'string',
};

/** Prometheus's name of a value type, for messages. */
export function typeName(type: ValueType): string {
  return TYPE_NAMES[type];
}

/** The string value of a string-typed argument (a literal, possibly in parentheses). */
export function stringValue(expr: Expr): string {
  if (expr.kind === 'string') return expr.value;
  if (expr.kind === 'paren') return stringValue(expr.expr);
  return '';
}
