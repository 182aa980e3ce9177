/** Binary operators with Prometheus semantics: arithmetic, comparisons, set ops, vector matching. */
import { ErrorCode, HealError } from '../core/errors.js';
import type { ArithmeticOp, Binary, ComparisonOp, VectorMatching } from './ast.js';
import type { EvalContext, Labels, Value, Vector, VectorSample } from './eval-context.js';
import { dropMetricName, METRIC_NAME } from './eval-context.js';
import { isComparison, isSetOp } from './operators.js';
import type { Signature } from './signature.js';
import { createSignatureMap, FULL_SIGNATURE, signatureOn, signatureWithout } from './signature.js';

/** Go's math.Pow where it differs from `**`: 1^y and (-1)^±Inf are 1. */
function pow(x: number, y: number): number {
  if (x === 1 || (x === -1 && (y === Infinity || y === -Infinity))) return 1;
  return x ** y;
}

const ARITHMETIC: Readonly<Record<ArithmeticOp, (l: number, r: number) => number>> = {
  '+': (l, r) => l + r,
  '-': (l, r) => l - r,
  '*': (l, r) => l * r,
  '/': (l, r) => l / r,
  '%': (l, r) => l % r,
  '^': pow,
  atan2: Math.atan2,
};

const COMPARE: Readonly<Record<ComparisonOp, (l: number, r: number) => boolean>> = {
  '==': (l, r) => l === r,
  '!=': (l, r) => l !== r,
  '>': (l, r) => l > r,
  '<': (l, r) => l < r,
  '>=': (l, r) => l >= r,
  '<=': (l, r) => l <= r,
};

/** Combines two values: `undefined` means a comparison dropped the pair. */
type ElementOp = (l: number, r: number) => number | undefined;

/** The per-element operation; comparisons yield the left value (or 0/1 with `bool`). */
function elementOp(b: Binary): ElementOp {
  const op = b.op;
  if (isComparison(op)) {
    const test = COMPARE[op];
    return b.returnBool ? (l, r) => (test(l, r) ? 1 : 0) : (l, r) => (test(l, r) ? l : undefined);
  }
  if (isSetOp(op)) throw new HealError(ErrorCode.InvalidInput, `PromQL: "${op}" needs two vectors`);
  return ARITHMETIC[op];
}

function runtimeError(b: Binary, what: string): HealError {
  return new HealError(ErrorCode.InvalidInput, `PromQL: ${what} in "${b.text}"`);
}

function scalarScalar(b: Binary, l: number, r: number): number {
  // The parser requires `bool` for scalar comparisons, so the result is always a value.
  return elementOp(b)(l, r) ?? NaN;
}

/** Vector op scalar (or scalar op vector with `swap`); comparisons keep the vector's value. */
function vectorScalar(b: Binary, vec: Vector, scalar: number, swap: boolean): Vector {
  const apply = elementOp(b);
  const isFilter = isComparison(b.op) && !b.returnBool;
  const out: Vector = [];
  for (const s of vec) {
    const result = swap ? apply(scalar, s.value) : apply(s.value, scalar);
    if (result === undefined) continue;
    if (isFilter) {
      // A filter keeps the vector's own value and name, whichever side the vector is on.
      out.push(s);
      continue;
    }
    s.value = result;
    s.labels = dropMetricName(s.labels);
    out.push(s);
  }
  return out;
}

/** How label sets match under `on(...)`/`ignoring(...)`. */
function matchingSignature(m: VectorMatching): Signature {
  return m.on ? signatureOn(m.labels) : signatureWithout(m.labels);
}

function setOperation(b: Binary, m: VectorMatching, lhs: Vector, rhs: Vector): Vector {
  const sig = matchingSignature(m);
  if (b.op === 'or') {
    const left = createSignatureMap<VectorSample>(sig);
    for (const s of lhs) left.add(s);
    for (const s of rhs) if (left.get(s.labels) === undefined) lhs.push(s);
    return lhs;
  }
  const right = createSignatureMap<VectorSample>(sig);
  for (const s of rhs) right.add(s);
  const wantMatch = b.op === 'and';
  return lhs.filter((s) => (right.get(s.labels) !== undefined) === wantMatch);
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
  // As Prometheus: nothing can match, so no matching errors either.
  if (lhs.length === 0 || rhs.length === 0) return [];
  const swapped = m.card === 'one-to-many';
  const [many, one] = swapped ? [rhs, lhs] : [lhs, rhs];
  const oneBySig = createSignatureMap<VectorSample>(matchingSignature(m));
  for (const s of one) {
    if (oneBySig.add(s) !== undefined) {
      const side = swapped ? 'left' : 'right';
      throw runtimeError(
        b,
        `found duplicate series for the match group on the ${side} hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side`,
      );
    }
  }
  const apply = elementOp(b);
  // One-to-one: each "one" sample matches once. Grouped: each result label set appears once
  // (equal result labels imply the same match group, so one set over all groups suffices).
  const matchedOnce = new Set<VectorSample>();
  const produced = createSignatureMap<VectorSample>(FULL_SIGNATURE);
  const out: Vector = [];
  for (const ms of many) {
    const os = oneBySig.get(ms.labels);
    if (os === undefined) continue;
    const value = swapped ? apply(os.value, ms.value) : apply(ms.value, os.value);
    if (value === undefined) continue;
    const sample = { labels: resultLabels(b, m, ms.labels, os.labels), value };
    if (m.card === 'one-to-one') {
      if (matchedOnce.has(os)) {
        throw runtimeError(
          b,
          'multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)',
        );
      }
      matchedOnce.add(os);
    } else if (produced.add(sample) !== undefined) {
      throw runtimeError(
        b,
        'multiple matches for labels: grouping labels must ensure unique matches',
      );
    }
    out.push(sample);
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
