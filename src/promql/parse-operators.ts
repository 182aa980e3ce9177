/**
 * Operator expressions: binary operators, unary signs, `offset` and `[range]`. The lezer grammar
 * (written for editors) attaches the postfix `offset`/`[range]` to everything on its left, so
 * `a - b offset 5m` comes back as `(a - b) offset 5m`. We therefore flatten such subtrees into their
 * tokens, which are in source order whatever the tree's shape, and rebuild them with Prometheus's
 * own precedences (generated_parser.y): postfix binds tightest, then `^` (right), unary sign,
 * `* / % atan2`, `+ -`, comparisons, `and unless`, `or`.
 */
import type { Binary, BinaryOp, Expr, VectorMatching } from './ast.js';
import { parseNumberLiteral } from './literals.js';
import type { ParseContext, Span, SyntaxNode } from './parse-context.js';
import { at, children, invalid, textOf, typeName, typeOf, unsupported } from './parse-context.js';
import { durationMs, groupingLabels } from './parse-nodes.js';
import {
  isComparison,
  isSetOp,
  OPERATORS,
  PRECEDENCE,
  UNARY_OPERAND_PRECEDENCE,
} from './operators.js';

type Token =
  | { readonly kind: 'operand'; readonly node: SyntaxNode }
  | { readonly kind: 'number'; readonly value: number; readonly span: Span }
  | { readonly kind: 'sign'; readonly negate: boolean; readonly span: Span }
  | {
      readonly kind: 'binary';
      readonly op: BinaryOp;
      readonly opNode: SyntaxNode;
      readonly modifiers: readonly SyntaxNode[];
    }
  | { readonly kind: 'offset' | 'range'; readonly node: SyntaxNode };

const POSTFIX_UNSUPPORTED: Readonly<Record<string, string>> = {
  SubqueryExpr: 'subquery',
  StepInvariantExpr: 'the @ modifier',
  AnchoredExpr: 'the anchored modifier',
  SmoothedExpr: 'the smoothed modifier',
};

function flatten(ctx: ParseContext, node: SyntaxNode, out: Token[]): void {
  const parts = children(node);
  const unsupportedPostfix = POSTFIX_UNSUPPORTED[node.name];
  if (unsupportedPostfix !== undefined) throw unsupported(unsupportedPostfix, ctx, node);
  if (node.name === 'BinaryExpr' && parts.length >= 3) {
    const opNode = parts[1] as SyntaxNode;
    const op = OPERATORS[opNode.name];
    if (op === undefined) throw unsupported(`operator "${textOf(ctx, opNode)}"`, ctx, opNode);
    flatten(ctx, parts[0] as SyntaxNode, out);
    out.push({ kind: 'binary', op, opNode, modifiers: parts.slice(2, -1) });
    flatten(ctx, parts[parts.length - 1] as SyntaxNode, out);
  } else if ((node.name === 'OffsetExpr' || node.name === 'MatrixSelector') && parts.length >= 2) {
    flatten(ctx, parts[0] as SyntaxNode, out);
    out.push({
      kind: node.name === 'OffsetExpr' ? 'offset' : 'range',
      node: parts[parts.length - 1] as SyntaxNode,
    });
  } else if (node.name === 'UnaryExpr' && parts.length === 2) {
    const [signNode, operand] = parts as [SyntaxNode, SyntaxNode];
    out.push({ kind: 'sign', negate: textOf(ctx, signNode) === '-', span: signNode });
    flatten(ctx, operand, out);
  } else if (node.name === 'NumberDurationLiteral' && /^[-+]/.test(textOf(ctx, node))) {
    // A signed literal is a sign applied to a number, so that `-2 ^ 2` is -(2 ^ 2).
    const span = { from: node.from + 1, to: node.to };
    out.push({
      kind: 'sign',
      negate: textOf(ctx, node).startsWith('-'),
      span: { from: node.from, to: node.from + 1 },
    });
    out.push({
      kind: 'number',
      value: parseNumberLiteral(textOf(ctx, span).trim(), at(ctx, span)),
      span,
    });
  } else {
    out.push({ kind: 'operand', node });
  }
}

/** A partial result: the expression, its source span, and whether an offset was applied. */
interface Parsed extends Span {
  readonly expr: Expr;
  readonly hasOffset: boolean;
}

interface Cursor {
  readonly ctx: ParseContext;
  readonly tokens: readonly Token[];
  i: number;
}

function parseExpr(c: Cursor, minPrecedence: number): Parsed {
  let lhs = parseUnary(c);
  for (let tok = c.tokens[c.i]; tok?.kind === 'binary'; tok = c.tokens[c.i]) {
    const precedence = PRECEDENCE[tok.op];
    if (precedence < minPrecedence) break;
    c.i++;
    const rhs = parseExpr(c, tok.op === '^' ? precedence : precedence + 1);
    lhs = makeBinary(c.ctx, tok, lhs, rhs);
  }
  return lhs;
}

function parseUnary(c: Cursor): Parsed {
  const tok = c.tokens[c.i];
  if (tok?.kind !== 'sign') return parsePostfix(c);
  c.i++;
  const operand = parseExpr(c, UNARY_OPERAND_PRECEDENCE);
  const span = { from: tok.span.from, to: operand.to };
  const type = typeOf(operand.expr);
  if (type !== 'scalar' && type !== 'vector') {
    throw invalid(
      `unary expression only allowed on scalars or instant vectors, got ${typeName(type)}`,
      c.ctx,
      span,
    );
  }
  const e = operand.expr;
  const expr: Expr = !tok.negate
    ? e
    : e.kind === 'number'
      ? { kind: 'number', value: -e.value }
      : { kind: 'unary', expr: e };
  return { ...span, expr, hasOffset: false };
}

function parsePostfix(c: Cursor): Parsed {
  const tok = c.tokens[c.i++];
  let cur: Parsed;
  if (tok?.kind === 'operand') {
    cur = { from: tok.node.from, to: tok.node.to, expr: c.ctx.convert(tok.node), hasOffset: false };
  } else if (tok?.kind === 'number') {
    cur = { ...tok.span, expr: { kind: 'number', value: tok.value }, hasOffset: false };
  } else {
    throw invalid('expected an expression', c.ctx, {
      from: c.ctx.text.length,
      to: c.ctx.text.length,
    });
  }
  for (
    let next = c.tokens[c.i];
    next?.kind === 'offset' || next?.kind === 'range';
    next = c.tokens[c.i]
  ) {
    c.i++;
    cur =
      next.kind === 'offset'
        ? applyOffset(c.ctx, cur, next.node)
        : applyRange(c.ctx, cur, next.node);
  }
  return cur;
}

function applyRange(ctx: ParseContext, cur: Parsed, durationNode: SyntaxNode): Parsed {
  const span = { from: cur.from, to: durationNode.to + 1 };
  if (cur.hasOffset) throw invalid('no offset modifiers allowed before range', ctx, span);
  if (cur.expr.kind !== 'vectorSelector')
    throw invalid('ranges only allowed for vector selectors', ctx, span);
  const rangeMs = durationMs(ctx, durationNode);
  if (rangeMs <= 0) throw invalid('range must be greater than 0', ctx, durationNode);
  return {
    ...span,
    expr: { kind: 'matrixSelector', selector: cur.expr, rangeMs },
    hasOffset: false,
  };
}

function applyOffset(ctx: ParseContext, cur: Parsed, durationNode: SyntaxNode): Parsed {
  const span = { from: cur.from, to: durationNode.to };
  if (cur.hasOffset) throw invalid('offset may not be set multiple times', ctx, span);
  const offsetMs = durationMs(ctx, durationNode);
  const e = cur.expr;
  if (e.kind === 'vectorSelector') return { ...span, expr: { ...e, offsetMs }, hasOffset: true };
  if (e.kind === 'matrixSelector') {
    return { ...span, expr: { ...e, selector: { ...e.selector, offsetMs } }, hasOffset: true };
  }
  throw invalid('offset must follow an instant or range vector selector', ctx, span);
}

function convertMatching(ctx: ParseContext, node: SyntaxNode): VectorMatching {
  let on = false;
  let labels: string[] = [];
  let include: string[] = [];
  let card: VectorMatching['card'] = 'one-to-one';
  for (const part of children(node)) {
    if (part.name === 'On') on = true;
    else if (part.name === 'GroupLeft') card = 'many-to-one';
    else if (part.name === 'GroupRight') card = 'one-to-many';
    else if (part.name === 'GroupingLabels' && card === 'one-to-one')
      labels = groupingLabels(ctx, part);
    else if (part.name === 'GroupingLabels') include = groupingLabels(ctx, part);
  }
  return { card, on, labels, include };
}

function makeBinary(
  ctx: ParseContext,
  tok: Extract<Token, { kind: 'binary' }>,
  lhs: Parsed,
  rhs: Parsed,
): Parsed {
  let returnBool = false;
  let matching: VectorMatching | undefined;
  for (const mod of tok.modifiers) {
    if (mod.name === 'BoolModifier') returnBool = true;
    else if (mod.name === 'MatchingModifierClause') matching = convertMatching(ctx, mod);
    else throw unsupported(`binary modifier "${textOf(ctx, mod)}"`, ctx, mod);
  }
  const span = { from: lhs.from, to: rhs.to };
  const b: Binary = {
    kind: 'binary',
    op: tok.op,
    lhs: lhs.expr,
    rhs: rhs.expr,
    returnBool,
    matching,
    text: textOf(ctx, span),
  };
  return { ...span, expr: checkBinary(ctx, span, b), hasOffset: false };
}

/** Prometheus's checks on a binary expression; fills in the default matching for vectors. */
function checkBinary(ctx: ParseContext, span: Span, b: Binary): Binary {
  const lt = typeOf(b.lhs);
  const rt = typeOf(b.rhs);
  const fail = (why: string): never => {
    throw invalid(why, ctx, span);
  };
  if (b.returnBool && !isComparison(b.op))
    fail('bool modifier can only be used on comparison operators');
  if (lt !== 'scalar' && lt !== 'vector')
    fail('binary expression must contain only scalar and instant vector types');
  if (rt !== 'scalar' && rt !== 'vector')
    fail('binary expression must contain only scalar and instant vector types');
  if (isComparison(b.op) && !b.returnBool && lt === 'scalar' && rt === 'scalar') {
    fail('comparisons between scalars must use the bool modifier');
  }
  if (isSetOp(b.op) && (lt === 'scalar' || rt === 'scalar')) {
    fail(`set operator "${b.op}" not allowed in binary scalar expression`);
  }
  const m = b.matching;
  if (lt !== 'vector' || rt !== 'vector') {
    if (m !== undefined && (m.labels.length > 0 || m.card !== 'one-to-one')) {
      fail('vector matching only allowed between instant vectors');
    }
    return { ...b, matching: undefined };
  }
  const matching: VectorMatching = m ?? { card: 'one-to-one', on: false, labels: [], include: [] };
  if (isSetOp(b.op)) {
    if (matching.card !== 'one-to-one') fail(`no grouping allowed for "${b.op}" operation`);
    return { ...b, matching: { ...matching, card: 'many-to-many' } };
  }
  if (matching.on) {
    const clash = matching.include.find((l) => matching.labels.includes(l));
    if (clash !== undefined) fail(`label "${clash}" must not occur in ON and GROUP clause at once`);
  }
  return { ...b, matching };
}

/** Converts a BinaryExpr, UnaryExpr, OffsetExpr or MatrixSelector subtree. */
export function convertOperatorExpr(ctx: ParseContext, node: SyntaxNode): Expr {
  const tokens: Token[] = [];
  flatten(ctx, node, tokens);
  const cursor: Cursor = { ctx, tokens, i: 0 };
  const result = parseExpr(cursor, 0);
  if (cursor.i !== tokens.length) throw invalid('unexpected trailing tokens', ctx, node);
  return result.expr;
}
