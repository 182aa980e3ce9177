import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isHealError } from '../core/errors.js';
import type { EvaluateOptions } from './evaluate.js';
import { evaluateInstant } from './evaluate.js';
import { formatSample } from './format.js';
import { loadSeries } from './load-series.js';
import { createMemorySeriesSource } from './memory-source.js';
import { parsePromQL } from './parse.js';
import type { SeriesSource } from './series.js';

const M = 60_000;

function run(q: string, source: SeriesSource, atMs: number, opts?: EvaluateOptions): string[] {
  return evaluateInstant(parsePromQL(q), source, atMs, opts).map(formatSample).sort();
}

type Case = readonly [query: string, expected: readonly string[]];

function table(title: string, source: SeriesSource, atMs: number, cases: readonly Case[]): void {
  describe(title, () => {
    for (const [query, expected] of cases) {
      it(query, () => {
        assert.deepEqual(run(query, source, atMs), [...expected].sort());
      });
    }
  });
}

const FLEET = createMemorySeriesSource(
  loadSeries(M, {
    'gpu_temp{node="n1",gpu="0"}': '60x10',
    'gpu_temp{node="n1",gpu="1"}': '70x10',
    'gpu_temp{node="n2",gpu="0"}': '80x10',
    'gpu_power{node="n1",gpu="0"}': '200x10',
    'gpu_power{node="n1",gpu="1"}': '300x10',
    'gpu_power{node="n2",gpu="0"}': '400x10',
    'node_info{node="n1",rack="r1"}': '1x10',
    'node_info{node="n2",rack="r2"}': '1x10',
  }),
);
const NOW = 10 * M;

table('selectors and matchers', FLEET, NOW, [
  ['gpu_temp{node="n1"}', ['gpu_temp{gpu="0",node="n1"} 60', 'gpu_temp{gpu="1",node="n1"} 70']],
  ['gpu_temp{node!="n1"}', ['gpu_temp{gpu="0",node="n2"} 80']],
  ['gpu_temp{gpu=~"1|2"}', ['gpu_temp{gpu="1",node="n1"} 70']],
  ['gpu_temp{node=~"n"}', []],
  ['gpu_temp{node!~"n1|n3", gpu="0"}', ['gpu_temp{gpu="0",node="n2"} 80']],
  [
    'gpu_temp{rack=""}',
    [
      'gpu_temp{gpu="0",node="n1"} 60',
      'gpu_temp{gpu="1",node="n1"} 70',
      'gpu_temp{gpu="0",node="n2"} 80',
    ],
  ],
  ['gpu_temp{rack!=""}', []],
  ['{__name__="node_info", rack="r2"}', ['node_info{node="n2",rack="r2"} 1']],
  ['no_such_metric', []],
]);

table('arithmetic and comparisons with scalars', FLEET, NOW, [
  ['1 + 2 * 3', ['{} 7']],
  ['2 ^ 3 ^ 2', ['{} 512']],
  ['-2 ^ 2', ['{} -4']],
  ['7 % 4 - 10 / 4', ['{} 0.5']],
  ['1 == bool 1', ['{} 1']],
  ['1 > bool 2', ['{} 0']],
  ['gpu_temp{node="n2"} + 1', ['{gpu="0",node="n2"} 81']],
  ['gpu_temp{node="n2"} - 1', ['{gpu="0",node="n2"} 79']],
  ['gpu_temp{node="n2"} * 2', ['{gpu="0",node="n2"} 160']],
  ['gpu_temp{node="n2"} / 16', ['{gpu="0",node="n2"} 5']],
  ['gpu_temp{node="n2"} % 16', ['{gpu="0",node="n2"} 0']],
  ['gpu_temp{node="n2"} ^ 0.5', [`{gpu="0",node="n2"} ${Math.sqrt(80)}`]],
  ['gpu_temp{node="n2"} atan2 0', [`{gpu="0",node="n2"} ${Math.atan2(80, 0)}`]],
  ['100 - gpu_temp{node="n2"}', ['{gpu="0",node="n2"} 20']],
  ['-gpu_temp{node="n2"}', ['{gpu="0",node="n2"} -80']],
  ['+gpu_temp{node="n2"}', ['gpu_temp{gpu="0",node="n2"} 80']],
  ['(gpu_temp{node="n2"})', ['gpu_temp{gpu="0",node="n2"} 80']],
  ['gpu_temp > 65', ['gpu_temp{gpu="1",node="n1"} 70', 'gpu_temp{gpu="0",node="n2"} 80']],
  ['gpu_temp < 65', ['gpu_temp{gpu="0",node="n1"} 60']],
  ['gpu_temp >= 70', ['gpu_temp{gpu="1",node="n1"} 70', 'gpu_temp{gpu="0",node="n2"} 80']],
  ['gpu_temp <= 70', ['gpu_temp{gpu="0",node="n1"} 60', 'gpu_temp{gpu="1",node="n1"} 70']],
  ['gpu_temp == 70', ['gpu_temp{gpu="1",node="n1"} 70']],
  ['gpu_temp != 70', ['gpu_temp{gpu="0",node="n1"} 60', 'gpu_temp{gpu="0",node="n2"} 80']],
  ['65 < gpu_temp', ['gpu_temp{gpu="1",node="n1"} 70', 'gpu_temp{gpu="0",node="n2"} 80']],
  [
    'gpu_temp > bool 65',
    ['{gpu="0",node="n1"} 0', '{gpu="1",node="n1"} 1', '{gpu="0",node="n2"} 1'],
  ],
  [
    '65 > bool gpu_temp',
    ['{gpu="0",node="n1"} 1', '{gpu="1",node="n1"} 0', '{gpu="0",node="n2"} 0'],
  ],
  ['vector(1) + 1', ['{} 2']],
  ['time()', ['{} 600']],
]);

table('vector matching', FLEET, NOW, [
  [
    'gpu_power / gpu_temp',
    [`{gpu="0",node="n1"} ${200 / 60}`, `{gpu="1",node="n1"} ${300 / 70}`, '{gpu="0",node="n2"} 5'],
  ],
  [
    'gpu_power > gpu_temp',
    [
      'gpu_power{gpu="0",node="n1"} 200',
      'gpu_power{gpu="1",node="n1"} 300',
      'gpu_power{gpu="0",node="n2"} 400',
    ],
  ],
  [
    'gpu_temp > bool on(node, gpu) gpu_power',
    ['{gpu="0",node="n1"} 0', '{gpu="1",node="n1"} 0', '{gpu="0",node="n2"} 0'],
  ],
  ['gpu_temp{gpu="0"} + on(node) gpu_power{gpu="0"}', ['{node="n1"} 260', '{node="n2"} 480']],
  ['gpu_temp{gpu="0"} == on(node) gpu_temp{gpu="0"}', ['{node="n1"} 60', '{node="n2"} 80']],
  [
    'gpu_temp + ignoring(rack) gpu_power',
    ['{gpu="0",node="n1"} 260', '{gpu="1",node="n1"} 370', '{gpu="0",node="n2"} 480'],
  ],
  [
    'gpu_temp * on(node) group_left(rack) node_info',
    [
      '{gpu="0",node="n1",rack="r1"} 60',
      '{gpu="1",node="n1",rack="r1"} 70',
      '{gpu="0",node="n2",rack="r2"} 80',
    ],
  ],
  [
    'gpu_temp > on(node) group_left(rack) node_info',
    [
      'gpu_temp{gpu="0",node="n1",rack="r1"} 60',
      'gpu_temp{gpu="1",node="n1",rack="r1"} 70',
      'gpu_temp{gpu="0",node="n2",rack="r2"} 80',
    ],
  ],
  [
    'node_info * on(node) group_right(rack) gpu_temp',
    [
      '{gpu="0",node="n1",rack="r1"} 60',
      '{gpu="1",node="n1",rack="r1"} 70',
      '{gpu="0",node="n2",rack="r2"} 80',
    ],
  ],
  [
    'node_info < on(node) group_right gpu_temp',
    [
      'gpu_temp{gpu="0",node="n1"} 1',
      'gpu_temp{gpu="1",node="n1"} 1',
      'gpu_temp{gpu="0",node="n2"} 1',
    ],
  ],
  [
    'gpu_temp - ignoring(gpu) group_left gpu_temp{gpu="0"}',
    ['{gpu="0",node="n1"} 0', '{gpu="1",node="n1"} 10', '{gpu="0",node="n2"} 0'],
  ],
  [
    'gpu_temp * on(node) group_left(nope) node_info',
    ['{gpu="0",node="n1"} 60', '{gpu="1",node="n1"} 70', '{gpu="0",node="n2"} 80'],
  ],
  ['gpu_temp + no_such_metric', []],
  ['no_such_metric + on(node) gpu_temp', []],
  ['(gpu_temp > 1000) * on(node) group_left gpu_temp', []],
]);

table('set operators', FLEET, NOW, [
  [
    'gpu_temp and gpu_power{node="n1"}',
    ['gpu_temp{gpu="0",node="n1"} 60', 'gpu_temp{gpu="1",node="n1"} 70'],
  ],
  ['gpu_temp unless gpu_power{node="n1"}', ['gpu_temp{gpu="0",node="n2"} 80']],
  ['gpu_temp and on(node) node_info{rack="r2"}', ['gpu_temp{gpu="0",node="n2"} 80']],
  [
    'gpu_temp unless ignoring(gpu) node_info',
    [
      'gpu_temp{gpu="0",node="n1"} 60',
      'gpu_temp{gpu="1",node="n1"} 70',
      'gpu_temp{gpu="0",node="n2"} 80',
    ],
  ],
  [
    'gpu_temp{node="n2"} or node_info',
    [
      'gpu_temp{gpu="0",node="n2"} 80',
      'node_info{node="n1",rack="r1"} 1',
      'node_info{node="n2",rack="r2"} 1',
    ],
  ],
  [
    'node_info or on(node) gpu_temp',
    ['node_info{node="n1",rack="r1"} 1', 'node_info{node="n2",rack="r2"} 1'],
  ],
  ['no_such_metric or gpu_temp{node="n2"}', ['gpu_temp{gpu="0",node="n2"} 80']],
  ['gpu_temp and no_such_metric', []],
  ['gpu_temp > 65 and gpu_temp < 75', ['gpu_temp{gpu="1",node="n1"} 70']],
]);

table('aggregations', FLEET, NOW, [
  ['sum(gpu_temp)', ['{} 210']],
  ['sum by (node) (gpu_temp)', ['{node="n1"} 130', '{node="n2"} 80']],
  ['sum(gpu_temp) by (node)', ['{node="n1"} 130', '{node="n2"} 80']],
  ['sum without (gpu) (gpu_temp)', ['{node="n1"} 130', '{node="n2"} 80']],
  ['sum by (missing) (gpu_temp)', ['{} 210']],
  ['sum by (__name__) (gpu_temp)', ['gpu_temp 210']],
  ['count by (node) (gpu_temp)', ['{node="n1"} 2', '{node="n2"} 1']],
  ['min by (node) (gpu_temp)', ['{node="n1"} 60', '{node="n2"} 80']],
  ['max(gpu_temp)', ['{} 80']],
  ['avg by (node) (gpu_temp)', ['{node="n1"} 65', '{node="n2"} 80']],
  ['group by (node) (gpu_temp)', ['{node="n1"} 1', '{node="n2"} 1']],
  ['stdvar(gpu_temp)', [`{} ${200 / 3}`]],
  ['stddev(gpu_temp)', [`{} ${Math.sqrt(200 / 3)}`]],
  ['quantile(0.5, gpu_temp)', ['{} 70']],
  ['quantile(0.9, gpu_temp)', ['{} 78']],
  ['quantile(2, gpu_temp)', ['{} +Inf']],
  ['topk(2, gpu_temp)', ['gpu_temp{gpu="1",node="n1"} 70', 'gpu_temp{gpu="0",node="n2"} 80']],
  [
    'bottomk by (node) (1, gpu_temp)',
    ['gpu_temp{gpu="0",node="n1"} 60', 'gpu_temp{gpu="0",node="n2"} 80'],
  ],
  ['topk(0, gpu_temp)', []],
  ['count(no_such_metric)', []],
  ['max by (node, gpu) (gpu_temp == 80)', ['{gpu="0",node="n2"} 80']],
  [
    'sum by (rack) (gpu_temp * on(node) group_left(rack) node_info)',
    ['{rack="r1"} 130', '{rack="r2"} 80'],
  ],
]);

describe('run-time matching errors name the expression', () => {
  const source = createMemorySeriesSource(
    loadSeries(M, { 'a{node="n1"}': '1', 'c{node="n1"}': '2', 'b{node="n1"}': '1' }),
  );
  const cases: readonly (readonly [string, SeriesSource, RegExp])[] = [
    [
      'gpu_temp + on(node) node_info',
      FLEET,
      /multiple matches for labels: many-to-one matching must be explicit .* in "gpu_temp \+ on\(node\) node_info"/,
    ],
    [
      'node_info + on(node) gpu_temp',
      FLEET,
      /duplicate series for the match group on the right hand-side/,
    ],
    [
      'node_info + on(node) group_right gpu_temp{gpu="0"} + on(node) gpu_temp',
      FLEET,
      /many-to-many/,
    ],
    [
      '(a or on(__name__) c) * on(node) group_left b',
      source,
      /grouping labels must ensure unique matches/,
    ],
    ['topk(scalar(no_such_metric), gpu_temp)', FLEET, /topk: parameter value is NaN/],
  ];
  for (const [query, src, pattern] of cases) {
    it(query, () => {
      assert.throws(
        () => run(query, src, 0),
        (err: unknown) => isHealError(err, ErrorCode.InvalidInput) && pattern.test(err.message),
      );
    });
  }
});

describe('lookback and offset', () => {
  const source = createMemorySeriesSource(
    loadSeries(10 * M, { 's{k="v"}': '1 2', 'gone{k="v"}': '5 _ _' }),
  );
  const cases: readonly (readonly [string, number, readonly string[], EvaluateOptions?])[] = [
    ['s', 0, ['s{k="v"} 1']],
    ['s', 5 * M - 1, ['s{k="v"} 1']],
    ['s', 5 * M, []],
    ['s', 9 * M, []],
    ['s', 9 * M, ['s{k="v"} 1'], { lookbackMs: 10 * M }],
    ['s', 10 * M, ['s{k="v"} 2']],
    ['s', 14 * M, ['s{k="v"} 2']],
    ['s', 15 * M, []],
    ['gone', 6 * M, []],
    ['s offset 10m', 10 * M, ['s{k="v"} 1']],
    ['s offset 1m', 11 * M, ['s{k="v"} 2']],
    ['s offset 1m', 5 * M, ['s{k="v"} 1']],
    ['s offset 1m', 6 * M, []],
    ['s offset -10m', 0, ['s{k="v"} 2']],
    ['s - s offset 10m', 10 * M, ['{k="v"} 1']],
  ];
  for (const [query, atMs, expected, opts] of cases) {
    it(`${query} at ${atMs / 1000}s${opts ? ' with 10m lookback' : ''}`, () => {
      assert.deepEqual(run(query, source, atMs, opts), expected);
    });
  }
});

describe('scalar results', () => {
  it('come back as one sample with empty labels', () => {
    assert.deepEqual(evaluateInstant(parsePromQL('scalar(sum(gpu_temp)) / 3'), FLEET, NOW), [
      { labels: {}, value: 70 },
    ]);
  });
});

describe('loadSeries notation (as promqltest/promtool)', () => {
  const cases: readonly (readonly [string, readonly (readonly [number, number])[]])[] = [
    [
      '1 2 _ 4',
      [
        [0, 1],
        [1, 2],
        [3, 4],
      ],
    ],
    [
      '1+2x3',
      [
        [0, 1],
        [1, 3],
        [2, 5],
        [3, 7],
      ],
    ],
    [
      '10-5x2',
      [
        [0, 10],
        [1, 5],
        [2, 0],
      ],
    ],
    [
      '-1+1x1',
      [
        [0, -1],
        [1, 0],
      ],
    ],
    [
      '7x2',
      [
        [0, 7],
        [1, 7],
        [2, 7],
      ],
    ],
    ['_x2 1', [[2, 1]]],
    [
      'Inf -Inf',
      [
        [0, Infinity],
        [1, -Infinity],
      ],
    ],
  ];
  for (const [values, expected] of cases) {
    it(values, () => {
      const series = loadSeries(M, { 'm{a="b"}': values })[0]!;
      assert.deepEqual(series.labels, { __name__: 'm', a: 'b' });
      assert.deepEqual(
        series.samples.map((s) => [s.t / M, s.v]),
        expected.map(([t, v]) => [t, v]),
      );
    });
  }
  it('rejects selectors that are not plain series names', () => {
    assert.throws(() => loadSeries(M, { 'm{a=~"b"}': '1' }), /not a plain series name/);
    assert.throws(() => loadSeries(M, { m: '1 x' }), /"x" is not a value/);
  });
});
