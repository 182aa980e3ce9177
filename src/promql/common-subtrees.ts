/**
 * Subexpressions that occur more than once in one query, so that one evaluation computes each
 * only once. The catalogue's generated rules repeat whole subtrees (GpuDown asks for the GPUs
 * dcgm-exporter reports four times; every one of them selects and groups every GPU series of the
 * fleet), which made a single GpuDown evaluation the costliest query of a cycle at 10,000 nodes.
 *
 * Two occurrences are the same when their structure is: operator, grouping, matching, selector
 * matchers, offsets, ranges and literals, whatever the spacing of the source text. Evaluation is
 * deterministic at one instant over one source, so the second occurrence can take a copy of the
 * first one's result.
 */
import type { Expr } from './ast.js';
import type { Value } from './eval-context.js';

/** Per compiled root: each node of a repeated subtree mapped to its structural key. */
const repeatedByRoot = new WeakMap<Expr, ReadonlyMap<Expr, string>>();

/** The nodes of `root` whose subtree occurs at least twice, each with its structural key. */
export function repeatedSubtrees(root: Expr): ReadonlyMap<Expr, string> {
  const known = repeatedByRoot.get(root);
  if (known !== undefined) return known;
  const keyOf = new Map<Expr, string>();
  const count = new Map<string, number>();
  walk(root, keyOf, count);
  const repeated = new Map<Expr, string>();
  for (const [node, key] of keyOf) {
    if (worthSharing(node) && (count.get(key) ?? 0) > 1) repeated.set(node, key);
  }
  repeatedByRoot.set(root, repeated);
  return repeated;
}

/**
 * A vector-valued result costs a copy; only nodes that read series are worth it (a literal or a
 * parenthesis around a shared node gains nothing of its own).
 */
function worthSharing(e: Expr): boolean {
  return e.kind !== 'number' && e.kind !== 'string' && e.kind !== 'paren';
}

function walk(e: Expr, keyOf: Map<Expr, string>, count: Map<string, number>): string {
  const key = keyFor(e, (child) => walk(child, keyOf, count));
  keyOf.set(e, key);
  count.set(key, (count.get(key) ?? 0) + 1);
  return key;
}

function keyFor(e: Expr, child: (e: Expr) => string): string {
  switch (e.kind) {
    case 'number':
      return `n(${String(e.value)})`;
    case 'string':
      return `s(${JSON.stringify(e.value)})`;
    case 'vectorSelector':
      return (
        `v(${JSON.stringify(e.metric)},` +
        e.matchers
          .map((m) => `${JSON.stringify(m.name)}${m.op}${JSON.stringify(m.value)}`)
          .join(',') +
        `@${String(e.offsetMs)})`
      );
    case 'matrixSelector':
      // The selector inside a range is read by its function, never evaluated alone: not a node of its own.
      return `m(${keyFor(e.selector, child)}[${String(e.rangeMs)}])`;
    case 'call':
      return `c(${e.func};${e.args.map(child).join(';')})`;
    case 'aggregate':
      return (
        `a(${e.op} ${e.grouping.mode}(${e.grouping.labels.join(',')});` +
        `${e.param === undefined ? '' : child(e.param)};${child(e.expr)})`
      );
    case 'binary': {
      const m = e.matching;
      const matching =
        m === undefined
          ? '-'
          : `${m.card} ${m.on ? 'on' : 'ignoring'}(${m.labels.join(',')}) (${m.include.join(',')})`;
      return `b(${e.op} ${String(e.returnBool)} ${matching};${child(e.lhs)};${child(e.rhs)})`;
    }
    case 'unary':
      return `u(${child(e.expr)})`;
    case 'paren':
      return `p(${child(e.expr)})`;
  }
}

/**
 * A copy the caller may change: the evaluator rewrites samples in place (values, and the label
 * object a sample points at) and appends to vectors; label objects themselves are never changed.
 */
export function copyValue(v: Value): Value {
  return typeof v === 'number' ? v : v.map((s) => ({ labels: s.labels, value: s.value }));
}
