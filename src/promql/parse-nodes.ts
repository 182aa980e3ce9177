/** Converters for selectors, durations, function calls and aggregations (lezer node -> AST). */
import type {
  Aggregate,
  AggregateOp,
  Call,
  CompiledMatcher,
  Grouping,
  VectorSelector,
} from './ast.js';
import { FUNCTIONS } from './functions.js';
import { parseDurationLiteral, unquoteString } from './literals.js';
import { compileAnchoredRegex, compileMatcher } from './matchers.js';
import type { ParseContext, SyntaxNode } from './parse-context.js';
import {
  at,
  children,
  firstChild,
  invalid,
  stringValue,
  textOf,
  typeName,
  typeOf,
  unsupported,
} from './parse-context.js';
import type { LabelMatcher } from './series.js';

const METRIC_NAME = '__name__';

/** `metric{...}` or `{__name__="metric", ...}`. */
export function convertVectorSelector(ctx: ParseContext, node: SyntaxNode): VectorSelector {
  let metric: string | undefined;
  const matchers: CompiledMatcher[] = [];
  for (const child of children(node)) {
    if (child.name === 'Identifier') metric = textOf(ctx, child);
    else for (const m of children(child)) matchers.push(convertMatcher(ctx, m));
  }
  const nameMatchers = matchers.filter((m) => m.name === METRIC_NAME);
  const others = matchers.filter((m) => m.name !== METRIC_NAME);
  if (metric !== undefined && nameMatchers.length > 0) {
    throw invalid('metric name must not be set twice', ctx, node);
  }
  if (metric === undefined) {
    const [only] = nameMatchers;
    if (nameMatchers.length !== 1 || only?.op !== '=') {
      throw unsupported('a selector without an exact metric name', ctx, node);
    }
    metric = only.value;
  }
  return { kind: 'vectorSelector', metric, matchers: others, offsetMs: 0 };
}

function convertMatcher(ctx: ParseContext, node: SyntaxNode): CompiledMatcher {
  const where = at(ctx, node);
  const parts = children(node);
  if (node.name === 'QuotedLabelName') {
    // `{"metric"}` is the UTF-8 spelling of a metric name.
    return compileMatcher({ name: METRIC_NAME, op: '=', value: labelName(ctx, node) }, where);
  }
  const [nameNode, opNode, valueNode] = parts;
  if (nameNode === undefined || opNode === undefined || valueNode === undefined) {
    throw invalid('malformed label matcher', ctx, node);
  }
  const op = textOf(ctx, opNode) as LabelMatcher['op'];
  const value = unquoteString(textOf(ctx, valueNode), where);
  return compileMatcher({ name: labelName(ctx, nameNode), op, value }, where);
}

/** A label name, bare or quoted. */
function labelName(ctx: ParseContext, node: SyntaxNode): string {
  if (node.name === 'LabelName') return textOf(ctx, node);
  const literal = node.name === 'StringLiteral' ? node : firstChild(ctx, node);
  return unquoteString(textOf(ctx, literal), at(ctx, node));
}

/** Label names inside a `GroupingLabels` node. */
export function groupingLabels(ctx: ParseContext, node: SyntaxNode): string[] {
  return children(node).map((c) => labelName(ctx, c));
}

/** A plain duration (`5m`, `-1h` for offsets); duration arithmetic is unsupported. */
export function durationMs(ctx: ParseContext, node: SyntaxNode): number {
  const parts = children(node);
  const [first, second] = parts;
  if (parts.length === 1 && first?.name === 'NumberDurationLiteralInDurationContext') {
    return parseDurationLiteral(textOf(ctx, first), at(ctx, first));
  }
  if (parts.length === 2 && first?.name === 'UnaryOp' && second !== undefined) {
    const sign = textOf(ctx, first) === '-' ? -1 : 1;
    return sign * durationMs(ctx, second);
  }
  throw unsupported(`duration expression "${textOf(ctx, node)}"`, ctx, node);
}

/** `f(args...)`, type-checked against the function table. */
export function convertCall(ctx: ParseContext, node: SyntaxNode): Call {
  const [identNode, bodyNode] = children(node);
  if (identNode === undefined || bodyNode === undefined) throw invalid('malformed call', ctx, node);
  const func = textOf(ctx, identNode);
  const signature = FUNCTIONS.get(func);
  if (signature === undefined) throw unsupported(`function "${func}"`, ctx, identNode);
  const argNodes = children(bodyNode);
  const n = argNodes.length;
  const max = signature.variadic ? Infinity : signature.args.length;
  if (n < signature.minArgs || n > max) {
    const expected =
      signature.minArgs === max
        ? `${max}`
        : max === Infinity
          ? `at least ${signature.minArgs}`
          : `${signature.minArgs} to ${max}`;
    throw invalid(`expected ${expected} argument(s) in call to "${func}", got ${n}`, ctx, node);
  }
  const args = argNodes.map((argNode, i) => {
    const arg = ctx.convert(argNode);
    const want = signature.args[Math.min(i, signature.args.length - 1)] ?? 'vector';
    const got = typeOf(arg);
    if (got !== want) {
      throw invalid(
        `expected type ${typeName(want)} in call to function "${func}", got ${typeName(got)}`,
        ctx,
        argNode,
      );
    }
    return arg;
  });
  let regex: RegExp | undefined;
  if (func === 'label_replace') {
    const [, dst, , , pattern] = args;
    if (dst === undefined || pattern === undefined || stringValue(dst) === '') {
      throw invalid('label_replace needs a non-empty destination label name', ctx, node);
    }
    regex = compileAnchoredRegex(stringValue(pattern), `in label_replace ${at(ctx, node)}`);
  }
  return { kind: 'call', func, args, regex, text: textOf(ctx, node) };
}

const AGGREGATE_OPS: ReadonlySet<string> = new Set<AggregateOp>([
  'sum',
  'count',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
  'quantile',
]);
const PARAM_OPS: ReadonlySet<string> = new Set<AggregateOp>(['topk', 'bottomk', 'quantile']);

/** `op [by|without (labels)] ([param,] expr)`. */
export function convertAggregate(ctx: ParseContext, node: SyntaxNode): Aggregate {
  let op = '';
  let grouping: Grouping = { mode: 'by', labels: [] };
  let argNodes: SyntaxNode[] = [];
  for (const child of children(node)) {
    if (child.name === 'AggregateOp') op = textOf(ctx, child).toLowerCase();
    else if (child.name === 'FunctionCallBody') argNodes = children(child);
    else grouping = convertGrouping(ctx, child);
  }
  if (!AGGREGATE_OPS.has(op)) throw unsupported(`aggregation "${op}"`, ctx, node);
  const wanted = PARAM_OPS.has(op) ? 2 : 1;
  if (argNodes.length !== wanted) {
    throw invalid(
      `wrong number of arguments for aggregation "${op}": expected ${wanted}, got ${argNodes.length}`,
      ctx,
      node,
    );
  }
  const args = argNodes.map((n) => ctx.convert(n));
  const expr = args[args.length - 1]!;
  const param = wanted === 2 ? args[0] : undefined;
  if (typeOf(expr) !== 'vector') {
    throw invalid(
      `expected type instant vector in aggregation "${op}", got ${typeName(typeOf(expr))}`,
      ctx,
      argNodes[argNodes.length - 1]!,
    );
  }
  if (param !== undefined && typeOf(param) !== 'scalar') {
    throw invalid(`expected type scalar as parameter of "${op}"`, ctx, argNodes[0]!);
  }
  return { kind: 'aggregate', op: op as AggregateOp, grouping, param, expr };
}

function convertGrouping(ctx: ParseContext, node: SyntaxNode): Grouping {
  const [modeNode, labelsNode] = children(node);
  if (modeNode === undefined || labelsNode === undefined) {
    throw invalid('malformed grouping clause', ctx, node);
  }
  const mode = modeNode.name === 'Without' ? 'without' : 'by';
  return { mode, labels: groupingLabels(ctx, labelsNode) };
}
