/** Aggregation operators (`sum by (...)`, `topk`, ...) with Prometheus semantics. */
import { ErrorCode, HealError } from '../core/errors.js';
import type { Aggregate, AggregateOp } from './ast.js';
import type { EvalContext, KahanState, Labels, Vector, VectorSample } from './eval-context.js';
import {
  evalScalar,
  evalVector,
  kahanAdd,
  keepLabels,
  keyOn,
  withoutLabels,
} from './eval-context.js';
import { createSignatureMap, signatureWithout } from './signature.js';
import type { MeanState } from './eval-range.js';
import { addToMean, meanOf, quantileOf, startMean } from './eval-range.js';

/** Per-group running state; which fields matter depends on the operator. */
interface Group {
  readonly labels: Labels;
  readonly sum: KahanState;
  readonly mean: MeanState;
  count: number;
  /** Welford mean, for stddev/stdvar. */
  runningMean: number;
  values: number[] | undefined;
  members: VectorSample[] | undefined;
}

function startGroup(op: AggregateOp, labels: Labels, s: VectorSample): Group {
  return {
    labels,
    sum: [op === 'stddev' || op === 'stdvar' ? 0 : s.value, 0],
    mean: startMean(s.value),
    count: 1,
    runningMean: s.value,
    values: op === 'quantile' ? [s.value] : undefined,
    members: op === 'topk' || op === 'bottomk' ? [s] : undefined,
  };
}

function accumulate(op: AggregateOp, g: Group, s: VectorSample): void {
  const v = s.value;
  g.count++;
  switch (op) {
    case 'sum':
      kahanAdd(g.sum, v);
      break;
    case 'avg':
      addToMean(g.mean, v);
      break;
    case 'max':
      if (g.sum[0] < v || Number.isNaN(g.sum[0])) g.sum[0] = v;
      break;
    case 'min':
      if (g.sum[0] > v || Number.isNaN(g.sum[0])) g.sum[0] = v;
      break;
    case 'stddev':
    case 'stdvar': {
      const delta = v - g.runningMean;
      g.runningMean += delta / g.count;
      g.sum[0] += delta * (v - g.runningMean);
      break;
    }
    case 'quantile':
      g.values?.push(v);
      break;
    case 'topk':
    case 'bottomk':
      g.members?.push(s);
      break;
    case 'count':
    case 'group':
      break;
  }
}

function finish(op: AggregateOp, g: Group, param: number): number {
  switch (op) {
    case 'sum':
      return g.sum[0] + g.sum[1];
    case 'avg':
      return meanOf(g.mean);
    case 'count':
      return g.count;
    case 'group':
      return 1;
    case 'stdvar':
      return g.sum[0] / g.count;
    case 'stddev':
      return Math.sqrt(g.sum[0] / g.count);
    case 'quantile':
      return quantileOf(param, g.values ?? []);
    case 'min':
    case 'max':
    case 'topk':
    case 'bottomk':
      return g.sum[0];
  }
}

/** The k largest (topk) or smallest (bottomk) members, NaN last; they keep all their labels. */
function selectK(members: VectorSample[], k: number, largest: boolean): VectorSample[] {
  members.sort((a, b) => {
    if (Number.isNaN(a.value)) return Number.isNaN(b.value) ? 0 : 1;
    if (Number.isNaN(b.value)) return -1;
    return largest ? b.value - a.value : a.value - b.value;
  });
  return members.slice(0, k);
}

function kParam(a: Aggregate, ctx: EvalContext): number {
  const k = a.param === undefined ? NaN : evalScalar(ctx, a.param);
  if (Number.isNaN(k)) {
    throw new HealError(ErrorCode.InvalidInput, `PromQL: ${a.op}: parameter value is NaN`);
  }
  return Math.trunc(Math.min(k, Number.MAX_SAFE_INTEGER));
}

/** Evaluates an aggregation; groups by the `by` labels or by all labels minus `without` ones. */
export function evalAggregate(ctx: EvalContext, a: Aggregate): Vector {
  const { op, grouping } = a;
  const isK = op === 'topk' || op === 'bottomk';
  const k = isK ? kParam(a, ctx) : 0;
  const param = op === 'quantile' && a.param !== undefined ? evalScalar(ctx, a.param) : NaN;
  const vec = evalVector(ctx, a.expr);
  if (isK && k < 1) return [];
  const names = grouping.labels;
  const byMode = grouping.mode === 'by';
  const without = new Set(byMode ? [] : names);
  // `by`: the joined values are a cheap exact key; `without`: a hashed signature.
  const byKey = new Map<string, Group>();
  const bySignature = createSignatureMap<Group>(signatureWithout(byMode ? [] : names));
  const groups: Group[] = [];
  for (const s of vec) {
    const key = byMode ? keyOn(s.labels, names) : '';
    const g = byMode ? byKey.get(key) : bySignature.get(s.labels);
    if (g !== undefined) {
      accumulate(op, g, s);
      continue;
    }
    // Only topk/bottomk keep the members' own labels; the group's are built once per group.
    const labels = isK
      ? s.labels
      : byMode
        ? keepLabels(s.labels, names)
        : withoutLabels(s.labels, without);
    const created = startGroup(op, labels, s);
    if (byMode) byKey.set(key, created);
    else bySignature.add(created);
    groups.push(created);
  }
  const out: Vector = [];
  for (const g of groups) {
    if (isK) for (const s of selectK(g.members ?? [], k, op === 'topk')) out.push(s);
    else out.push({ labels: g.labels, value: finish(op, g, param) });
  }
  return out;
}
