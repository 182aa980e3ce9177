import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isHealError } from '../core/errors.js';
import type { Expr } from './ast.js';
import { compilePromQL, parsePromQL } from './parse.js';
import { evaluateInstant } from './evaluate.js';
import { createMemorySeriesSource } from './memory-source.js';

/** A fully parenthesised rendering of the AST, to check structure and precedence. */
function show(e: Expr): string {
  switch (e.kind) {
    case 'number':
      return String(e.value);
    case 'string':
      return JSON.stringify(e.value);
    case 'vectorSelector': {
      const ms = e.matchers.map((m) => `${m.name}${m.op}${JSON.stringify(m.value)}`).join(',');
      return `${e.metric}${ms === '' ? '' : `{${ms}}`}${e.offsetMs === 0 ? '' : ` offset ${e.offsetMs}ms`}`;
    }
    case 'matrixSelector':
      return `${show({ ...e.selector, offsetMs: 0 })}[${e.rangeMs}ms]${e.selector.offsetMs === 0 ? '' : ` offset ${e.selector.offsetMs}ms`}`;
    case 'call':
      return `${e.func}(${e.args.map(show).join(', ')})`;
    case 'aggregate': {
      const args = [...(e.param === undefined ? [] : [show(e.param)]), show(e.expr)].join(', ');
      return `${e.op} ${e.grouping.mode} (${e.grouping.labels.join(', ')}) (${args})`;
    }
    case 'binary': {
      const m = e.matching;
      const parts = [e.returnBool ? 'bool' : ''];
      if (m !== undefined && (m.on || m.labels.length > 0)) {
        parts.push(`${m.on ? 'on' : 'ignoring'}(${m.labels.join(',')})`);
      }
      if (m?.card === 'many-to-one') parts.push(`group_left(${m.include.join(',')})`);
      if (m?.card === 'one-to-many') parts.push(`group_right(${m.include.join(',')})`);
      const mod = parts.filter((p) => p !== '').join(' ');
      return `(${show(e.lhs)} ${e.op}${mod === '' ? '' : ` ${mod}`} ${show(e.rhs)})`;
    }
    case 'unary':
      return `-${show(e.expr)}`;
    case 'paren':
      return `[${show(e.expr)}]`;
  }
}

const STRUCTURE: readonly (readonly [string, string])[] = [
  ['1 + 2 * 3', '(1 + (2 * 3))'],
  ['a - b - c', '((a - b) - c)'],
  ['2 ^ 3 ^ 2', '(2 ^ (3 ^ 2))'],
  ['-2 ^ 2', '-(2 ^ 2)'],
  ['1 + -2 ^ 2', '(1 + -(2 ^ 2))'],
  ['-x * 2', '(-x * 2)'],
  ['(1 + 2) * 3', '([(1 + 2)] * 3)'],
  ['a == b and c or d unless e', '(((a == b) and c) or (d unless e))'],
  ['a > bool 1', '(a > bool 1)'],
  ['x offset 5m % 16 == 8', '((x offset 300000ms % 16) == 8)'],
  ['rate(x{a=~"b"}[5m] offset 1m)', 'rate(x{a=~"b"}[300000ms] offset 60000ms)'],
  ['x offset -5m', 'x offset -300000ms'],
  ['s - s offset 10m', '(s - s offset 600000ms)'],
  ['s - s offset 10m * 2', '(s - (s offset 600000ms * 2))'],
  ['s * s offset 1m + 2', '((s * s offset 60000ms) + 2)'],
  ['-s offset 5m', '-s offset 300000ms'],
  ['-s offset 5m ^ 2', '-(s offset 300000ms ^ 2)'],
  ['a > bool b offset 5m', '(a > bool b offset 300000ms)'],
  ['rate(a[5m] offset 1m) - rate(a[5m])', '(rate(a[300000ms] offset 60000ms) - rate(a[300000ms]))'],
  ['1 - -1', '(1 - -1)'],
  ['sum by (node, gpu) (x)', 'sum by (node, gpu) (x)'],
  ['sum(x) by (node)', 'sum by (node) (x)'],
  ['sum without (gpu) (x)', 'sum without (gpu) (x)'],
  ['count(x)', 'count by () (x)'],
  ['topk(3, x)', 'topk by () (3, x)'],
  ['SUM(x)', 'sum by () (x)'],
  ['a + on(node) group_left(gpu) b', '(a + on(node) group_left(gpu) b)'],
  ['a / ignoring(gpu) group_right b', '(a / ignoring(gpu) group_right() b)'],
  ['a < on(node) (b)', '(a < on(node) [b])'],
  ['a + b', '(a + b)'],
  ['a and on() b', '(a and on() b)'],
  ['{__name__="up", job="x"}', 'up{job="x"}'],
  ['{"up"}', 'up'],
  ['x{"a.b"="c"}', 'x{a.b="c"}'],
  ['x{a="b",}', 'x{a="b"}'],
  ['rate(x[1h30m])', 'rate(x[5400000ms])'],
  ['rate(x[90])', 'rate(x[90000ms])'],
  ['rate(x[500ms])', 'rate(x[500ms])'],
  ['rate(x[1w])', 'rate(x[604800000ms])'],
  ['rate(x[1y])', 'rate(x[31536000000ms])'],
  [
    'label_replace(x, "node", "$1", "Hostname", "(.*)")',
    'label_replace(x, "node", "$1", "Hostname", "(.*)")',
  ],
  ['time()', 'time()'],
  ['+x', 'x'],
  ['x # a comment', 'x'],
  ['# leading comment\nsum(# inside\n x) # trailing', 'sum by () (x)'],
];

const NUMBERS: readonly (readonly [string, number])[] = [
  ['42', 42],
  ['-1.5e3', -1500],
  ['.5', 0.5],
  ['0x1F', 31],
  ['1_000', 1000],
  ['Inf', Infinity],
  ['-Inf', -Infinity],
  ['inf', Infinity],
  ['NaN', NaN],
  ['5m', 300],
  ['1h30m', 5400],
];

const STRINGS: readonly (readonly [string, string])[] = [
  [String.raw`"a\nb"`, 'a\nb'],
  [String.raw`'it\'s'`, "it's"],
  [String.raw`"say \"hi\""`, 'say "hi"'],
  ['`raw\\n`', 'raw\\n'],
  [String.raw`"\u00e9\x41\101\t"`, 'éAA\t'],
  [String.raw`"back\\slash"`, 'back\\slash'],
];

describe('parsePromQL: structure and precedence', () => {
  for (const [input, expected] of STRUCTURE) {
    it(input, () => {
      assert.equal(show(parsePromQL(input)), expected);
    });
  }
});

describe('parsePromQL: literals', () => {
  for (const [input, expected] of NUMBERS) {
    it(`number ${input}`, () => {
      assert.deepEqual(parsePromQL(input), { kind: 'number', value: expected });
    });
  }
  for (const [input, expected] of STRINGS) {
    it(`string ${input}`, () => {
      const e = parsePromQL(`label_replace(x, "a", ${input}, "b", "c")`);
      assert.ok(e.kind === 'call');
      assert.deepEqual(e.args[2], { kind: 'string', value: expected });
    });
  }
});

describe('parsePromQL: matchers are precompiled and fully anchored', () => {
  const cases: readonly (readonly [string, string, boolean])[] = [
    ['x{a=~"b|c"}', 'b', true],
    ['x{a=~"b|c"}', 'ab', false],
    ['x{a=~"b|c"}', 'bc', false],
    ['x{a!~"b.*"}', 'abc', true],
    ['x{a!~"b.*"}', 'bcd', false],
    ['x{a="b"}', 'b', true],
    ['x{a!=""}', '', false],
    ['x{a=~"(?i)gpu"}', 'GPU', true],
    ['x{a=~"a.b"}', 'a\nb', true],
    ['x{a=~"(?P<n>x)y"}', 'xy', true],
  ];
  for (const [input, value, expected] of cases) {
    it(`${input} on ${JSON.stringify(value)}`, () => {
      const e = parsePromQL(input);
      assert.ok(e.kind === 'vectorSelector');
      assert.equal(e.matchers[0]?.matches(value), expected);
    });
  }
});

function assertHealError(fn: () => unknown, code: ErrorCode, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isHealError(err, code), `expected ${code}, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('parsePromQL: invalid input names the position', () => {
  const cases: readonly (readonly [string, RegExp])[] = [
    [
      'foo{',
      /syntax error at line 1, column 5 \(end of input\): unexpected end of input in "foo\{"/,
    ],
    ['sum(x', /line 1, column 6/],
    ['abc def', /line 1, column 5 near "def": unexpected "def"/],
    ['sum(\n  x +\n)', /line 3, column 1/],
    [
      'rate(x)',
      /expected type range vector in call to function "rate", got instant vector at line 1, column 6/,
    ],
    ['1 > 2', /comparisons between scalars must use the bool modifier/],
    ['x + bool 1', /bool modifier can only be used on comparison operators/],
    ['a + on(b) group_left(b) c', /label "b" must not occur in ON and GROUP clause/],
    ['a and on(b) group_left c', /no grouping allowed for "and" operation/],
    ['x and 1', /set operator "and" not allowed in binary scalar expression/],
    ['1 + on(a) 2', /vector matching only allowed between instant vectors/],
    ['"a" + 1', /binary expression must contain only scalar and instant vector types/],
    ['x[5m] + 1', /only scalar and instant vector types/],
    ['x offset 5m offset 1m', /offset may not be set multiple times/],
    ['rate(x offset 1m [5m])', /no offset modifiers allowed before range/],
    ['(x)[5m]', /ranges only allowed for vector selectors/],
    ['sum(x) offset 1m', /offset must follow an instant or range vector selector/],
    ['x{a=~"("}', /invalid regular expression "\(" at line 1, column 3/],
    ['topk(x)', /wrong number of arguments for aggregation "topk": expected 2, got 1/],
    ['sum(x, y)', /expected 1, got 2/],
    ['sum(rate(x[5m])[1m])', /ranges only allowed for vector selectors/],
    ['abs(x, y)', /expected 1 argument\(s\) in call to "abs", got 2/],
    ['label_join(x)', /expected at least 3 argument\(s\)/],
    ['label_replace(x, "", "", "a", "b")', /non-empty destination label name/],
    ['x{a="\\q"}', /invalid escape sequence/],
    ['x[0s]', /range must be greater than 0/],
    ['topk("a", x)', /expected type scalar as parameter of "topk"/],
    ['', /empty expression/],
    ['x{a=1}', /syntax error at line 1, column 5/],
  ];
  for (const [input, pattern] of cases) {
    it(JSON.stringify(input), () => {
      assertHealError(() => parsePromQL(input), ErrorCode.InvalidInput, pattern);
    });
  }
});

describe('parsePromQL: unsupported constructs are named', () => {
  const cases: readonly (readonly [string, RegExp])[] = [
    ['x[5m:1m]', /subquery/],
    ['rate(x[5m:1m])', /subquery/],
    ['x @ 100', /the @ modifier/],
    ['histogram_quantile(0.9, x)', /function "histogram_quantile"/],
    ['count_values("v", x)', /aggregation "count_values"/],
    ['limitk(1, x)', /aggregation "limitk"/],
    ['{job="a"}', /a selector without an exact metric name/],
    ['{__name__=~"a|b"}', /a selector without an exact metric name/],
    ['x[5m]', /evaluates to a range vector/],
    ['"s"', /evaluates to a string/],
    ['x[5m + 1m]', /duration expression "5m \+ 1m"/],
    ['x + fill(0) y', /binary modifier "fill\(0\)"/],
    ['x{a=~"(?m)b"}', /regex flags \(\?m\)/],
  ];
  for (const [input, pattern] of cases) {
    it(input, () => {
      assertHealError(() => parsePromQL(input), ErrorCode.PromQLUnsupported, pattern);
    });
  }
});

describe('compilePromQL', () => {
  it('parses once and evaluates many times like evaluateInstant', () => {
    const source = createMemorySeriesSource([
      {
        labels: { __name__: 'up', job: 'a' },
        samples: [
          { t: 1000, v: 0 },
          { t: 2000, v: 1 },
        ],
      },
    ]);
    const q = compilePromQL('up == 0');
    assert.equal(q.text, 'up == 0');
    assert.deepEqual(q.evaluate(source, 1500), evaluateInstant(q.expr, source, 1500));
    assert.deepEqual(q.evaluate(source, 1500), [
      { labels: { __name__: 'up', job: 'a' }, value: 0 },
    ]);
    assert.deepEqual(q.evaluate(source, 2500), []);
  });

  it('throws at compile time, not at evaluation time', () => {
    assertHealError(() => compilePromQL('rate(x)'), ErrorCode.InvalidInput, /range vector/);
  });
});
