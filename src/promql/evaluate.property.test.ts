/** Algebraic properties of the evaluator over random fleets, and parser robustness. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isHealError } from '../core/errors.js';
import type { InstantSample } from '../prom/metrics-source.js';
import { evaluateInstant } from './evaluate.js';
import { formatLabels } from './format.js';
import { createMemorySeriesSource } from './memory-source.js';
import { parsePromQL } from './parse.js';
import type { Series, SeriesSource } from './series.js';

const NOW = 3_600_000;
const STEP = 15_000;

/** Up to 12 series `x{a,b,id}` with finite values; some stop reporting (stale). */
const fleetArb = fc
  .array(
    fc.record({
      a: fc.constantFrom('p', 'q', 'r'),
      b: fc.constantFrom('1', '2'),
      values: fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 30 }),
      stopsAgoSteps: fc.constantFrom(0, 0, 0, 5, 40),
    }),
    { maxLength: 12 },
  )
  .map((specs): Series[] =>
    specs.map((s, id) => {
      const end = NOW - s.stopsAgoSteps * STEP;
      const samples = s.values.map((v, i) => ({ t: end - (s.values.length - 1 - i) * STEP, v }));
      return { labels: { __name__: 'x', a: s.a, b: s.b, id: String(id) }, samples };
    }),
  );

/** Monotonic counters with irregular (jittered) scrape times. */
const counterArb = fc
  .array(
    fc.record({
      increments: fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 2, maxLength: 40 }),
      jitterMs: fc.array(fc.integer({ min: 0, max: 4_000 }), { minLength: 40, maxLength: 40 }),
    }),
    { minLength: 1, maxLength: 5 },
  )
  .map((specs): Series[] =>
    specs.map((s, id) => {
      let v = 0;
      const samples = s.increments.map((inc, i) => {
        v += inc;
        const back = s.increments.length - 1 - i;
        return { t: NOW - back * STEP - (s.jitterMs[i] ?? 0), v };
      });
      return { labels: { __name__: 'c_total', id: String(id) }, samples };
    }),
  );

function q(query: string, source: SeriesSource): InstantSample[] {
  return evaluateInstant(parsePromQL(query), source, NOW);
}

function byLabels(samples: readonly InstantSample[]): Map<string, number> {
  return new Map(samples.map((s) => [formatLabels(s.labels), s.value]));
}

function withoutName(samples: readonly InstantSample[]): InstantSample[] {
  return samples.map(({ labels, value }) => {
    const rest = Object.fromEntries(Object.entries(labels).filter(([k]) => k !== '__name__'));
    return { labels: rest, value };
  });
}

function sameVector(actual: readonly InstantSample[], expected: readonly InstantSample[]): void {
  assert.deepEqual(byLabels(actual), byLabels(expected));
}

describe('evaluator properties', () => {
  it('x + 0, x * 1 and -(-x) equal x without its name', () => {
    fc.assert(
      fc.property(fleetArb, (fleet) => {
        const src = createMemorySeriesSource(fleet);
        const x = withoutName(q('x', src));
        for (const e of ['x + 0', 'x * 1', '-(-x)', '0 + x']) sameVector(q(e, src), x);
      }),
    );
  });

  it('x and x, x or x are x; x unless x is empty', () => {
    fc.assert(
      fc.property(fleetArb, (fleet) => {
        const src = createMemorySeriesSource(fleet);
        const x = q('x', src);
        sameVector(q('x and x', src), x);
        sameVector(q('x or x', src), x);
        assert.deepEqual(q('x unless x', src), []);
      }),
    );
  });

  it('sum by (a) totals equal sum, count by (a) totals equal count', () => {
    fc.assert(
      fc.property(fleetArb, (fleet) => {
        const src = createMemorySeriesSource(fleet);
        const total = (e: string): number => q(e, src).reduce((acc, s) => acc + s.value, 0);
        assert.equal(total('sum by (a) (x)'), total('sum(x)'));
        assert.equal(total('count by (a) (x)'), total('count(x)'));
        assert.equal(total('count(x)'), q('x', src).length);
        assert.equal(total('sum without (id) (x)'), total('sum(x)'));
      }),
    );
  });

  it('x > bool t plus x <= bool t is always 1', () => {
    fc.assert(
      fc.property(fleetArb, fc.integer({ min: -1000, max: 1000 }), (fleet, t) => {
        const src = createMemorySeriesSource(fleet);
        const sum = q(`(x > bool ${t}) + (x <= bool ${t})`, src);
        assert.equal(sum.length, q('x', src).length);
        for (const s of sum) assert.equal(s.value, 1);
      }),
    );
  });

  it('topk(k, x) keeps min(k, n) series, none smaller than any left out', () => {
    fc.assert(
      fc.property(fleetArb, fc.integer({ min: 0, max: 15 }), (fleet, k) => {
        const src = createMemorySeriesSource(fleet);
        const all = q('x', src);
        const top = q(`topk(${k}, x)`, src);
        assert.equal(top.length, Math.min(k, all.length));
        const kept = new Set(top.map((s) => formatLabels(s.labels)));
        const minKept = Math.min(...top.map((s) => s.value));
        for (const s of all) if (!kept.has(formatLabels(s.labels))) assert.ok(s.value <= minKept);
      }),
    );
  });

  it('increase() of a counter is >= 0 and equals rate() times the window', () => {
    fc.assert(
      fc.property(counterArb, fc.constantFrom('1m', '5m', '10m'), (counters, w) => {
        const src = createMemorySeriesSource(counters);
        const seconds = { '1m': 60, '5m': 300, '10m': 600 }[w];
        const increase = byLabels(q(`increase(c_total[${w}])`, src));
        const rate = byLabels(q(`rate(c_total[${w}])`, src));
        assert.deepEqual([...increase.keys()].sort(), [...rate.keys()].sort());
        for (const [k, v] of increase) {
          assert.ok(v >= 0, `${k} increase ${v}`);
          assert.ok(Math.abs((rate.get(k) ?? NaN) * seconds - v) <= 1e-9 * Math.max(1, v));
        }
      }),
    );
  });
});

const PRECEDENCE: Readonly<Record<string, number>> = {
  '+': 1,
  '-': 1,
  '*': 2,
  '/': 2,
  '%': 2,
  '^': 3,
};
const APPLY: Readonly<Record<string, (l: number, r: number) => number>> = {
  '+': (l, r) => l + r,
  '-': (l, r) => l - r,
  '*': (l, r) => l * r,
  '/': (l, r) => l / r,
  '%': (l, r) => l % r,
  '^': (l, r) => l ** r,
};

describe('operator precedence', () => {
  it('a op1 b op2 c groups as Prometheus does (^ binds tighter and to the right)', () => {
    const op = fc.constantFrom('+', '-', '*', '/', '%', '^');
    const n = fc.integer({ min: 1, max: 9 });
    fc.assert(
      fc.property(n, op, n, op, n, (a, op1, b, op2, c) => {
        const p1 = PRECEDENCE[op1] ?? 0;
        const p2 = PRECEDENCE[op2] ?? 0;
        const f1 = APPLY[op1]!;
        const f2 = APPLY[op2]!;
        const rightFirst = p2 > p1 || (p1 === p2 && op1 === '^');
        const expected = rightFirst ? f1(a, f2(b, c)) : f2(f1(a, b), c);
        const [got] = q(`${a} ${op1} ${b} ${op2} ${c}`, createMemorySeriesSource([]));
        assert.ok(Object.is(got?.value, expected) || got?.value === expected);
      }),
    );
  });
});

const TOKENS = [
  'x',
  'x{a="p"}',
  'sum',
  'rate',
  'topk',
  'label_replace',
  '(',
  ')',
  '[5m]',
  '[1m:]',
  ',',
  'by',
  '(a)',
  'offset',
  '5m',
  '-',
  '+',
  '*',
  '/',
  '^',
  '%',
  '==',
  '>',
  'bool',
  'on',
  'ignoring',
  'group_left',
  'and',
  'or',
  'unless',
  '1',
  '2.5',
  '"s"',
  '@',
  'time()',
  'abs',
  'absent',
  '{',
  '}',
  'a=~"p|q"',
  'Inf',
  'NaN',
  '#',
];

describe('parser robustness', () => {
  it('any token soup parses or throws a HealError; what parses also evaluates or throws a HealError', () => {
    const src = createMemorySeriesSource([
      {
        labels: { __name__: 'x', a: 'p' },
        samples: [
          { t: NOW - STEP, v: 1 },
          { t: NOW, v: 2 },
        ],
      },
    ]);
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...TOKENS), { maxLength: 12 }), (tokens) => {
        const text = tokens.join(' ');
        try {
          const expr = parsePromQL(text);
          evaluateInstant(expr, src, NOW);
        } catch (err) {
          assert.ok(isHealError(err), `${text}: ${String(err)}`);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
