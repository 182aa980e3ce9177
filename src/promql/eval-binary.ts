/** Binary operators with Prometheus semantics: arithmetic, comparisons, set ops, vector matching. */
import { ErrorCode, HealError } from '../core/errors.js';
import type { Binary, BinaryOp, VectorMatching } from './ast.js';
import type { EvalContext, Labels, Value, Vector, VectorSample } from './eval-context.js';
import { dropMetricName, keyAll, keyOn, keyWithout, METRIC_NAME } from './eval-context.js';
import { isComparison } from './parse-binary.js';

/** Go's math.Pow where it differs from `**`: 1^y and (-1)^±Inf are 1. */
function pow(x: number, y: number): number {
  if (x === 1 || (x === -1 && (y === Infinity || y === -Infinity))) return 1;
  return x ** y;
}

function arithmetic(op: BinaryOp, l: number, r: number): number {
  switch (op) {
    case '+':
      return l + r;
    case '-':
      return l - r;
    case '*':
      return l * r;
    case '/':
      return l / r;
    case '%':
      return l % r;
    case '^':
      return pow(l, r);
    case 'atan2':
      return Math.atan2(l, r);
    default:
      return NaN;
  }
}

function compare(op: BinaryOp, l: number, r: number): boolean {
  switch (op) {
    case '==':
      return l === r;
    case '!=':
      return l !== r;
    case '>':
      return l > r;
    case '<':
      return l < r;
    case '>=':
      return l >= r;
    case '<=':
      return l <= r;
    default:
      return false;
  }
}

function runtimeError(b: Binary, what: string): HealError {
  return new HealError(ErrorCode.InvalidInput, `PromQL: ${what} in "${b.text}"`);
}

function scalarScalar(b: Binary, l: number, r: number): number {
  if (isComparison(b.op)) return compare(b.op, l, r) ? 1 : 0;
  return arithmetic(b.op, l, r);
}

/** Vector op scalar (or scalar op vector with `swap`); comparisons keep the vector's value. */
function vectorScalar(b: Binary, vec: Vector, scalar: number, swap: boolean): Vector {
  const isCmp = isComparison(b.op);
  const dropName = !isCmp || b.returnBool;
  const out: Vector = [];
  for (const s of vec) {
    const l = swap ? scalar : s.value;
    const r = swap ? s.value : scalar;
    if (isCmp) {
      const keep = compare(b.op, l, r);
      if (b.returnBool) s.value = keep ? 1 : 0;
      else if (!keep) continue;
    } else {
      s.value = arithmetic(b.op, l, r);
    }
    if (dropName) s.labels = dropMetricName(s.labels);
    out.push(s);
  }
  return out;
}

/** The match key of a label set under `on(...)`/`ignoring(...)`. */
function signatureFn(m: VectorMatching): (labels: Labels) => string {
  if (m.on) return (labels) => keyOn(labels, m.labels);
  const ignored = new Set(m.labels);
  return (labels) => keyWithout(labels, ignored);
}

function setOperation(b: Binary, m: VectorMatching, lhs: Vector, rhs: Vector): Vector {
  const sig = signatureFn(m);
  if (b.op === 'or') {
    const leftSigs = new Set(lhs.map((s) => sig(s.labels)));
    for (const s of rhs) if (!leftSigs.has(sig(s.labels))) lhs.push(s);
    return lhs;
  }
  const rightSigs = new Set(rhs.map((s) => sig(s.labels)));
  const wantMatch = b.op === 'and';
  return lhs.filter((s) => rightSigs.has(sig(s.labels)) === wantMatch);
}

/** Prometheus's resultMetric: the many side's labels, trimmed per matching, plus group_x labels. */
function resultLabels(b: Binary, m: VectorMatching, many: Labels, one: Labels): Labels {
  const dropName = !isComparison(b.op) || b.returnBool;
  if (m.card === 'one-to-one' && m.on) {
    const out: Record<string, string> = {};
    for (const n of m.labels) {
      const v = many[n];
      if (v !== undefined && v !== '' && !(dropName && n === METRIC_NAME)) out[n] = v;
    }
    return out;
  }
  const removed = m.card === 'one-to-one' ? m.labels : [];
  const include = m.include;
  const needsCopy =
    include.length > 0 || (dropName && METRIC_NAME in many) || removed.some((n) => n in many);
  if (!needsCopy) return many;
  const out: Record<string, string> = {};
  for (const k in many) {
    if (dropName && k === METRIC_NAME) continue;
    if (removed.includes(k) || include.includes(k)) continue;
    out[k] = many[k] as string;
  }
  // group_x labels come from the "one" side; absent there means absent in the result.
  for (const n of include) {
    const v = one[n];
    if (v !== undefined && v !== '') out[n] = v;
  }
  return out;
}

function vectorVector(b: Binary, m: VectorMatching, lhs: Vector, rhs: Vector): Vector {
  const swapped = m.card === 'one-to-many';
  const [many, one] = swapped ? [rhs, lhs] : [lhs, rhs];
  const sig = signatureFn(m);
  const oneBySig = new Map<string, VectorSample>();
  for (const s of one) {
    const key = sig(s.labels);
    if (oneBySig.has(key)) {
      const side = swapped ? 'left' : 'right';
      throw runtimeError(
        b,
        `found duplicate series for the match group on the ${side} hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side`,
      );
    }
    oneBySig.set(key, s);
  }
  const isCmp = isComparison(b.op);
  const matchedOneToOne = new Set<string>();
  const matchedGrouped = new Map<string, Set<string>>();
  const out: Vector = [];
  for (const ms of many) {
    const key = sig(ms.labels);
    const os = oneBySig.get(key);
    if (os === undefined) continue;
    const l = swapped ? os.value : ms.value;
    const r = swapped ? ms.value : os.value;
    let value: number;
    if (isCmp) {
      const keep = compare(b.op, l, r);
      if (b.returnBool) value = keep ? 1 : 0;
      else if (keep) value = l;
      else continue;
    } else {
      value = arithmetic(b.op, l, r);
    }
    const labels = resultLabels(b, m, ms.labels, os.labels);
    if (m.card === 'one-to-one') {
      if (matchedOneToOne.has(key)) {
        throw runtimeError(
          b,
          'multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)',
        );
      }
      matchedOneToOne.add(key);
    } else {
      const seen = matchedGrouped.get(key) ?? new Set<string>();
      const labelsKey = keyAll(labels);
      if (seen.has(labelsKey)) {
        throw runtimeError(b, 'multiple matches for labels: grouping labels must ensure unique matches');
      }
      seen.add(labelsKey);
      matchedGrouped.set(key, seen);
    }
    out.push({ labels, value });
  }
  return out;
}

/** Evaluates a binary expression (operand types were checked by the parser). */
export function evalBinary(ctx: EvalContext, b: Binary): Value {
  const lhs = ctx.evaluate(b.lhs);
  const rhs = ctx.evaluate(b.rhs);
  if (typeof lhs === 'number') {
    return typeof rhs === 'number' ? scalarScalar(b, lhs, rhs) : vectorScalar(b, rhs, lhs, true);
  }
  if (typeof rhs === 'number') return vectorScalar(b, lhs, rhs, false);
  const m = b.matching ?? { card: 'many-to-many', on: false, labels: [], include: [] };
  if (m.card === 'many-to-many') return setOperation(b, m, lhs, rhs);
  return vectorVector(b, m, lhs, rhs);
}
