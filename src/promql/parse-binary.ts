/** Converter and type checks for binary expressions (operators, `bool`, vector matching). */
import type { Binary, BinaryOp, Expr, VectorMatching } from './ast.js';
import { parseNumberLiteral } from './literals.js';
import type { ParseContext, SyntaxNode } from './parse-context.js';
import { at, children, invalid, textOf, typeOf, unsupported } from './parse-context.js';
import { groupingLabels } from './parse-nodes.js';

const OPERATORS: Readonly<Record<string, BinaryOp>> = {
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
  Or: 'or',
  Unless: 'unless',
};

const COMPARISONS: ReadonlySet<BinaryOp> = new Set<BinaryOp>(['==', '!=', '>', '<', '>=', '<=']);
const SET_OPS: ReadonlySet<BinaryOp> = new Set<BinaryOp>(['and', 'or', 'unless']);

/** True for `== != > < >= <=`. */
export function isComparison(op: BinaryOp): boolean {
  return COMPARISONS.has(op);
}

/** True for `and or unless`. */
export function isSetOp(op: BinaryOp): boolean {
  return SET_OPS.has(op);
}

/** `lhs op [bool] [on|ignoring (...)] [group_left|group_right (...)] rhs`. */
export function convertBinary(ctx: ParseContext, node: SyntaxNode): Expr {
  const parts = children(node);
  const lhsNode = parts[0];
  const opNode = parts[1];
  const rhsNode = parts[parts.length - 1];
  if (lhsNode === undefined || opNode === undefined || rhsNode === undefined || parts.length < 3) {
    throw invalid('malformed binary expression', ctx, node);
  }
  const op = OPERATORS[opNode.name];
  if (op === undefined) throw unsupported(`operator "${textOf(ctx, opNode)}"`, ctx, opNode);
  let returnBool = false;
  let matching: VectorMatching | undefined;
  for (const mod of parts.slice(2, -1)) {
    if (mod.name === 'BoolModifier') returnBool = true;
    else if (mod.name === 'MatchingModifierClause') matching = convertMatching(ctx, mod);
    else throw unsupported(`binary modifier "${textOf(ctx, mod)}"`, ctx, mod);
  }
  // The grammar lexes `-2 ^ 2` as (-2)^2; Prometheus applies unary minus after `^`: -(2^2).
  const signedPowBase = op === '^' && lhsNode.name === 'NumberDurationLiteral' && /^[-+]/.test(textOf(ctx, lhsNode));
  const lhs = signedPowBase
    ? { kind: 'number' as const, value: Math.abs(parseNumberLiteral(textOf(ctx, lhsNode), at(ctx, lhsNode))) }
    : ctx.convert(lhsNode);
  const rhs = ctx.convert(rhsNode);
  const binary = checkBinary(ctx, node, { kind: 'binary', op, lhs, rhs, returnBool, matching, text: textOf(ctx, node) });
  return signedPowBase && textOf(ctx, lhsNode).startsWith('-') ? { kind: 'unary', expr: binary } : binary;
}

function convertMatching(ctx: ParseContext, node: SyntaxNode): VectorMatching {
  const parts = children(node);
  let on = false;
  let labels: string[] = [];
  let include: string[] = [];
  let card: VectorMatching['card'] = 'one-to-one';
  for (const part of parts) {
    switch (part.name) {
      case 'On':
        on = true;
        break;
      case 'GroupLeft':
        card = 'many-to-one';
        break;
      case 'GroupRight':
        card = 'one-to-many';
        break;
      case 'GroupingLabels':
        if (card === 'one-to-one') labels = groupingLabels(ctx, part);
        else include = groupingLabels(ctx, part);
        break;
      default:
        break;
    }
  }
  return { card, on, labels, include };
}

/** Prometheus's checks on a binary expression; fills in the default matching for vectors. */
function checkBinary(ctx: ParseContext, node: SyntaxNode, b: Binary): Binary {
  const lt = typeOf(b.lhs);
  const rt = typeOf(b.rhs);
  const fail = (why: string): never => {
    throw invalid(why, ctx, node);
  };
  if (b.returnBool && !isComparison(b.op)) fail('bool modifier can only be used on comparison operators');
  if (lt !== 'scalar' && lt !== 'vector') fail('binary expression must contain only scalar and instant vector types');
  if (rt !== 'scalar' && rt !== 'vector') fail('binary expression must contain only scalar and instant vector types');
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
