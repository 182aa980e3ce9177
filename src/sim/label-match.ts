/**
 * PromQL label matching for the series store: matchers compiled once per select (regexes fully
 * anchored, as in Prometheus), and the node names a selector pins, so a per-node query walks only
 * that node's series.
 */
import type { LabelMatcher } from '../promql/series.js';

/** Tests a label set against every matcher of a selector. */
export type MatchFn = (labels: Readonly<Record<string, string>>) => boolean;

interface Precompiled extends LabelMatcher {
  readonly matches?: unknown;
}

/** Labels that name the node in our series (dcgm-exporter's `Hostname` is the node name). */
const NODE_LABELS = ['node', 'Hostname'];
const LITERAL_ALTERNATION = /^[A-Za-z0-9_-]+(\|[A-Za-z0-9_-]+)*$/;

/** A selector compiled once: the full test, and a test of only the labels a partial set has. */
export interface CompiledSelector {
  readonly matches: MatchFn;
  /** False only when a label present in `partial` fails its matcher (`skip` values pass). */
  readonly mayMatch: (partial: Readonly<Record<string, string>>, skip: string) => boolean;
  readonly empty: boolean;
}

/** One predicate per matcher; an absent label reads as `''`, as in PromQL. */
export function compileMatchers(matchers: readonly LabelMatcher[]): CompiledSelector {
  const tests = matchers
    .filter((m) => m.name !== '__name__')
    .map((m): [string, (value: string) => boolean] => [m.name, compileOne(m)]);
  return {
    empty: tests.length === 0,
    matches: (labels) => {
      for (const [name, test] of tests) if (!test(labels[name] ?? '')) return false;
      return true;
    },
    mayMatch: (partial, skip) => {
      for (const [name, test] of tests) {
        const value = partial[name];
        if (value !== undefined && value !== skip && !test(value)) return false;
      }
      return true;
    },
  };
}

function compileOne(m: Precompiled): (value: string) => boolean {
  if (typeof m.matches === 'function') {
    const fn = m.matches as (value: string) => boolean;
    return (value) => fn.call(m, value);
  }
  switch (m.op) {
    case '=':
      return (value) => value === m.value;
    case '!=':
      return (value) => value !== m.value;
    case '=~': {
      const re = new RegExp(`^(?:${m.value})$`, 's');
      return (value) => re.test(value);
    }
    case '!~': {
      const re = new RegExp(`^(?:${m.value})$`, 's');
      return (value) => !re.test(value);
    }
  }
}

/** Node names a selector is restricted to (`node="x"`, `Hostname=~"x|y"`), or undefined for all. */
export function nodeNamesOf(matchers: readonly LabelMatcher[]): ReadonlySet<string> | undefined {
  let names: Set<string> | undefined;
  for (const m of matchers) {
    if (!NODE_LABELS.includes(m.name)) continue;
    let these: string[] | undefined;
    if (m.op === '=') these = [m.value];
    else if (m.op === '=~' && LITERAL_ALTERNATION.test(m.value)) these = m.value.split('|');
    if (these === undefined) continue;
    names = names === undefined ? new Set(these) : new Set(these.filter((n) => names!.has(n)));
  }
  return names;
}
