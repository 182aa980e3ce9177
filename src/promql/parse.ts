/**
 * Parses PromQL with the official lezer grammar (@prometheus-io/lezer-promql) into the evaluator's
 * AST, applying Prometheus's own type checks. Constructs the evaluator cannot run (subqueries, `@`,
 * histogram functions, ...) are rejected here, so a rule set fails at load time, not mid-cycle.
 */
import { parser } from '@prometheus-io/lezer-promql';
import { ErrorCode, HealError } from '../core/errors.js';
import type { Expr } from './ast.js';
import type { EvaluateOptions } from './evaluate.js';
import { evaluateInstant } from './evaluate.js';
import { parseNumberLiteral, unquoteString } from './literals.js';
import type { InstantSample } from '../prom/metrics-source.js';
import { convertOperatorExpr } from './parse-operators.js';
import type { ParseContext, SyntaxNode } from './parse-context.js';
import { at, firstChild, locate, textOf, typeName, typeOf, unsupported } from './parse-context.js';
import { convertAggregate, convertCall, convertVectorSelector } from './parse-nodes.js';
import type { SeriesSource } from './series.js';

const UNSUPPORTED_NODES: Readonly<Record<string, string>> = {
  SubqueryExpr: 'subquery',
  StepInvariantExpr: 'the @ modifier',
  AnchoredExpr: 'the anchored modifier',
  SmoothedExpr: 'the smoothed modifier',
};

function convertNode(ctx: ParseContext, node: SyntaxNode): Expr {
  switch (node.name) {
    case 'PromQL':
    case 'ParenExpr': {
      const inner = ctx.convert(firstChild(ctx, node));
      return node.name === 'ParenExpr' ? { kind: 'paren', expr: inner } : inner;
    }
    case 'NumberDurationLiteral':
      return { kind: 'number', value: parseNumberLiteral(textOf(ctx, node), at(ctx, node)) };
    case 'StringLiteral':
      return { kind: 'string', value: unquoteString(textOf(ctx, node), at(ctx, node)) };
    case 'VectorSelector':
      return convertVectorSelector(ctx, node);
    case 'MatrixSelector':
    case 'OffsetExpr':
    case 'UnaryExpr':
    case 'BinaryExpr':
      return convertOperatorExpr(ctx, node);
    case 'FunctionCall':
      return convertCall(ctx, node);
    case 'AggregateExpr':
      return convertAggregate(ctx, node);
    default:
      throw unsupported(UNSUPPORTED_NODES[node.name] ?? `syntax node ${node.name}`, ctx, node);
  }
}

/** Throws INVALID_INPUT at the first syntax error of the lezer tree. */
function checkSyntax(text: string, tree: ReturnType<typeof parser.parse>): void {
  let error: { from: number; to: number } | undefined;
  tree.iterate({
    enter: (n) => {
      if (error !== undefined) return false;
      if (n.type.isError) error = { from: n.from, to: n.to };
      return undefined;
    },
  });
  if (error === undefined) return;
  const token =
    error.to > error.from
      ? text.slice(error.from, error.to)
      : (/^\S{1,20}/.exec(text.slice(error.from))?.[0] ?? '');
  const what = token === '' ? 'unexpected end of input' : `unexpected "${token}"`;
  throw new HealError(
    ErrorCode.InvalidInput,
    `PromQL syntax error ${locate(text, error.from, error.to)}: ${what} in "${snippet(text)}"`,
  );
}

function snippet(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/**
 * Parses a PromQL expression. Throws INVALID_INPUT (syntax or type error, naming the line, column
 * and a snippet) or PROMQL_UNSUPPORTED (naming the construct). The result must be a scalar or an
 * instant vector, the two shapes an instant query returns that the engine consumes.
 */
export function parsePromQL(text: string): Expr {
  if (text.trim() === '') throw new HealError(ErrorCode.InvalidInput, 'PromQL: empty expression');
  const tree = parser.parse(text);
  checkSyntax(text, tree);
  const ctx: ParseContext = { text, convert: (node) => convertNode(ctx, node) };
  const expr = ctx.convert(tree.topNode);
  const type = typeOf(expr);
  if (type !== 'scalar' && type !== 'vector') {
    throw new HealError(
      ErrorCode.PromQLUnsupported,
      `PromQL: "${snippet(text)}" evaluates to a ${typeName(type)}; only scalar and instant vector results are supported`,
    );
  }
  return expr;
}

/** A parsed expression ready to evaluate many times (regexes and matchers compiled once). */
export interface CompiledPromQL {
  readonly text: string;
  readonly expr: Expr;
  /** Evaluates at `atMs` (ms since epoch); see evaluateInstant. */
  evaluate(source: SeriesSource, atMs: number, opts?: EvaluateOptions): InstantSample[];
}

/** Parses once (throwing like parsePromQL) and returns a reusable evaluator for the expression. */
export function compilePromQL(text: string): CompiledPromQL {
  const expr = parsePromQL(text);
  return {
    text,
    expr,
    evaluate: (source, atMs, opts) => evaluateInstant(expr, source, atMs, opts),
  };
}
