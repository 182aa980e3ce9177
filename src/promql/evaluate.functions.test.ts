/**
 * Functions, checked against results from Prometheus's own test data
 * (promql/promqltest/testdata/functions.test), loaded with the same `load` notation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluateInstant } from './evaluate.js';
import { formatLabels } from './format.js';
import { loadSeries } from './load-series.js';
import { createMemorySeriesSource } from './memory-source.js';
import { parsePromQL } from './parse.js';
import type { SeriesSource } from './series.js';

const M = 60_000;
/** 2021-03-15T13:45:00Z (a Monday), in minutes. */
const MARCH_15 = Date.UTC(2021, 2, 15, 13, 45) / M;

/** Expected results as `labels => value`; values compare with a 1e-12 relative tolerance. */
type Expected = Readonly<Record<string, number>>;

function close(a: number, b: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  return a === b || Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));
}

function check(source: SeriesSource, atMs: number, query: string, expected: Expected): void {
  const got = evaluateInstant(parsePromQL(query), source, atMs);
  const actual = Object.fromEntries(got.map((s) => [formatLabels(s.labels), s.value]));
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), query);
  for (const [k, v] of Object.entries(expected)) {
    assert.ok(close(actual[k] ?? NaN, v), `${query}: ${k} = ${actual[k]}, want ${v}`);
  }
}

type Case = readonly [atMinutes: number, query: string, expected: Expected];

function table(title: string, source: SeriesSource, cases: readonly Case[]): void {
  describe(title, () => {
    for (const [atMinutes, query, expected] of cases) {
      it(`${query} at ${atMinutes}m`, () => {
        check(source, atMinutes * M, query, expected);
      });
    }
  });
}

table(
  'resets() and changes()',
  createMemorySeriesSource(
    loadSeries(5 * M, {
      'http_requests{path="/foo"}': '1 2 3 0 1 0 0 1 2 0',
      'http_requests{path="/bar"}': '1 2 3 4 5 1 2 3 4 5',
      'http_requests{path="/biz"}': '0 0 0 0 0 1 1 1 1 1',
      'x{a="b"}': 'NaN NaN NaN',
      'x{a="c"}': '0 NaN 0',
    }),
  ),
  [
    [50, 'resets(http_requests[5m])', {}],
    [
      50,
      'resets(http_requests[10m])',
      { '{path="/foo"}': 0, '{path="/bar"}': 0, '{path="/biz"}': 0 },
    ],
    [
      50,
      'resets(http_requests[20m])',
      { '{path="/foo"}': 1, '{path="/bar"}': 0, '{path="/biz"}': 0 },
    ],
    [
      50,
      'resets(http_requests[32m])',
      { '{path="/foo"}': 2, '{path="/bar"}': 1, '{path="/biz"}': 0 },
    ],
    [
      50,
      'resets(http_requests[50m])',
      { '{path="/foo"}': 3, '{path="/bar"}': 1, '{path="/biz"}': 0 },
    ],
    [
      50,
      'changes(http_requests[6m])',
      { '{path="/foo"}': 0, '{path="/bar"}': 0, '{path="/biz"}': 0 },
    ],
    [
      50,
      'changes(http_requests[20m])',
      { '{path="/foo"}': 2, '{path="/bar"}': 2, '{path="/biz"}': 0 },
    ],
    [
      50,
      'changes(http_requests[30m])',
      { '{path="/foo"}': 3, '{path="/bar"}': 4, '{path="/biz"}': 0 },
    ],
    [
      50,
      'changes(http_requests[50m])',
      { '{path="/foo"}': 7, '{path="/bar"}': 8, '{path="/biz"}': 1 },
    ],
    [50, 'changes(nonexistent_metric[50m])', {}],
    [
      50,
      'changes((http_requests[50m]))',
      { '{path="/foo"}': 7, '{path="/bar"}': 8, '{path="/biz"}': 1 },
    ],
    [15, 'changes(x[20m])', { '{a="b"}': 0, '{a="c"}': 2 }],
  ],
);

table(
  'increase() extrapolates like Prometheus',
  createMemorySeriesSource(
    loadSeries(5 * M, {
      'http_requests_total{path="/foo"}': '0+10x10',
      'http_requests_total{path="/bar"}': '0+18x5 0+18x5',
      'http_requests_total{path="/dings"}': '10+10x10',
      'http_requests_total{path="/bumms"}': '1+10x10',
      'reset_total{path="/foo"}': '0 1 2 3 2 3 4',
    }),
  ),
  [
    [
      50,
      'increase(http_requests_total[50m])',
      {
        '{path="/foo"}': 100,
        '{path="/bar"}': 160,
        '{path="/dings"}': 100,
        '{path="/bumms"}': 100,
      },
    ],
    // Zero-point cutoff: "dings" extrapolates half an interval, "bumms" only to its zero point.
    [
      50,
      'increase(http_requests_total[100m])',
      {
        '{path="/foo"}': 100,
        '{path="/bar"}': 162,
        '{path="/dings"}': 105,
        '{path="/bumms"}': 101,
      },
    ],
    // 3 then 2 is a reset: read as 3 0 1 2.
    [30, 'increase(reset_total[30m])', { '{path="/foo"}': 7 }],
  ],
);

table(
  'rate()',
  createMemorySeriesSource([
    ...loadSeries(5 * M, {
      testcounter_reset_middle_total: '0+27x4 0+27x5',
      testcounter_reset_end_total: '0+10x9 0 10',
      'calculate_rate_offset_total{x="a"}': '0+10x10',
      'calculate_rate_offset_total{x="b"}': '0+20x10',
      calculate_rate_window_total: '0+80x10',
    }),
    ...loadSeries(4 * M, {
      'testcounter_zero_cutoff_total{start="0m"}': '0+240x10',
      'testcounter_zero_cutoff_total{start="1m"}': '60+240x10',
      'testcounter_zero_cutoff_total{start="2m"}': '120+240x10',
      'testcounter_zero_cutoff_total{start="3m"}': '180+240x10',
      'testcounter_zero_cutoff_total{start="4m"}': '240+240x10',
      'testcounter_zero_cutoff_total{start="5m"}': '300+240x10',
    }),
  ]),
  [
    [50, 'rate(testcounter_reset_middle_total[50m])', { '{}': 0.08 }],
    [50, 'rate(testcounter_reset_end_total[5m])', {}],
    [50, 'rate(testcounter_reset_end_total[6m])', { '{}': 0 }],
    [50, 'rate(calculate_rate_window_total[50m])', { '{}': 0.26666666666666666 }],
    [
      50,
      'rate(calculate_rate_offset_total[10m] offset 5m)',
      { '{x="a"}': 0.03333333333333333, '{x="b"}': 0.06666666666666667 },
    ],
    [
      10,
      'rate(testcounter_zero_cutoff_total[20m])',
      {
        '{start="0m"}': 0.5,
        '{start="1m"}': 0.55,
        '{start="2m"}': 0.6,
        '{start="3m"}': 0.6,
        '{start="4m"}': 0.6,
        '{start="5m"}': 0.6,
      },
    ],
    [
      50,
      'rate(testcounter_zero_cutoff_total[20m])',
      {
        '{start="0m"}': 0.6,
        '{start="1m"}': 0.6,
        '{start="2m"}': 0.6,
        '{start="3m"}': 0.6,
        '{start="4m"}': 0.6,
        '{start="5m"}': 0.6,
      },
    ],
  ],
);

describe('increase() over a 15 s scrape', () => {
  // A counter growing 1/s, scraped every 15 s for an hour (samples at 0, 15 s, ..., 3600 s).
  const samples = Array.from({ length: 241 }, (_, i) => ({ t: i * 15_000, v: i * 15 }));
  const source = createMemorySeriesSource([
    { labels: { __name__: 'c_total', node: 'n1' }, samples },
    { labels: { __name__: 'late_total', node: 'n1' }, samples: samples.slice(230) },
  ]);
  it('extrapolates to the window edges when samples cover it', () => {
    check(source, 3600_000, 'increase(c_total[5m])', { '{node="n1"}': 300 });
    check(source, 3600_000, 'rate(c_total[5m])', { '{node="n1"}': 1 });
    check(source, 3607_500, 'increase(c_total[5m])', { '{node="n1"}': 300 });
  });
  it('extrapolates only half an interval where the series starts inside the window', () => {
    // 11 samples over 150 s; start is 150 s away (> 1.1 x 15 s), so only 7.5 s is added there.
    check(source, 3600_000, 'increase(late_total[5m])', { '{node="n1"}': 157.5 });
  });
});

table(
  'irate(), delta(), idelta(), deriv(), predict_linear()',
  createMemorySeriesSource(
    loadSeries(5 * M, {
      'http_requests_total{path="/foo"}': '0+10x10',
      'http_requests_total{path="/bar"}': '0+10x5 0+10x5',
      'gauge{path="/foo"}': '0 50 100 150 200',
      'gauge{path="/bar"}': '200 150 100 50 0',
      'g2{path="/foo"}': '0 50 100 150',
      'g2{path="/bar"}': '0 50 100 50',
      testcounter_reset_middle_total: '0+10x4 0+10x5',
      'app_total{job="app-server"}': '0+80x10',
    }),
  ),
  [
    [50, 'irate(http_requests_total[50m])', { '{path="/foo"}': 1 / 30, '{path="/bar"}': 1 / 30 }],
    [30, 'irate(http_requests_total[50m])', { '{path="/foo"}': 1 / 30, '{path="/bar"}': 0 }],
    [20, 'delta(gauge[20m])', { '{path="/foo"}': 200, '{path="/bar"}': -200 }],
    [20, 'idelta(g2[20m])', { '{path="/foo"}': 50, '{path="/bar"}': -50 }],
    [50, 'deriv(app_total[50m])', { '{job="app-server"}': 0.26666666666666666 }],
    [50, 'deriv(testcounter_reset_middle_total[100m])', { '{}': 0.010606060606060607 }],
    [50, 'predict_linear(testcounter_reset_middle_total[50m], 3600)', { '{}': 70 }],
    [50, 'predict_linear(testcounter_reset_middle_total[50m], 1h)', { '{}': 70 }],
  ],
);

table(
  '*_over_time()',
  createMemorySeriesSource(
    loadSeries(M, {
      'temp{gpu="0"}': '1 2 3 4 10',
      'flat{gpu="0"}': '5x4',
      'sparse{gpu="0"}': '1 _ _ _ _',
    }),
  ),
  [
    [4, 'avg_over_time(temp[5m])', { '{gpu="0"}': 4 }],
    [4, 'min_over_time(temp[5m])', { '{gpu="0"}': 1 }],
    [4, 'max_over_time(temp[5m])', { '{gpu="0"}': 10 }],
    [4, 'sum_over_time(temp[5m])', { '{gpu="0"}': 20 }],
    [4, 'count_over_time(temp[5m])', { '{gpu="0"}': 5 }],
    [4, 'count_over_time(temp[4m])', { '{gpu="0"}': 4 }],
    [4, 'last_over_time(temp[5m])', { 'temp{gpu="0"}': 10 }],
    [4, 'present_over_time(temp[5m])', { '{gpu="0"}': 1 }],
    [4, 'stdvar_over_time(temp[5m])', { '{gpu="0"}': 10 }],
    [4, 'stddev_over_time(temp[5m])', { '{gpu="0"}': Math.sqrt(10) }],
    [4, 'quantile_over_time(0.5, temp[5m])', { '{gpu="0"}': 3 }],
    [4, 'avg_over_time(flat[5m])', { '{gpu="0"}': 5 }],
    [4, 'max_over_time(sparse[5m])', { '{gpu="0"}': 1 }],
    [5, 'max_over_time(sparse[5m])', {}],
    [4, 'absent_over_time(sparse[5m])', {}],
    [5, 'absent_over_time(sparse{gpu="0"}[5m])', { '{gpu="0"}': 1 }],
    [5, 'absent_over_time(nope{a="b",c=~"d"}[5m])', { '{a="b"}': 1 }],
    [5, 'absent_over_time((nope{a="b"}[5m]))', { '{}': 1 }],
    [4, 'quantile_over_time((0.5), (temp[5m]))', { '{gpu="0"}': 3 }],
  ],
);

table(
  'instant-vector functions',
  createMemorySeriesSource(
    loadSeries(5 * M, {
      'test_clamp{src="clamp-a"}': '-50',
      'test_clamp{src="clamp-b"}': '0',
      'test_clamp{src="clamp-c"}': '100',
      'test_sgn{src="a"}': '-Inf',
      'test_sgn{src="b"}': 'NaN',
      'test_sgn{src="c"}': '0',
      'test_sgn{src="d"}': '100',
      'up{job="a",instance="i"}': '1',
      'frac{a="x"}': '2.5 -2.5',
    }),
  ),
  [
    [
      0,
      'clamp_max(test_clamp, 75)',
      { '{src="clamp-a"}': -50, '{src="clamp-b"}': 0, '{src="clamp-c"}': 75 },
    ],
    [
      0,
      'clamp_min(test_clamp, -25)',
      { '{src="clamp-a"}': -25, '{src="clamp-b"}': 0, '{src="clamp-c"}': 100 },
    ],
    [
      0,
      'clamp(test_clamp, -25, 75)',
      { '{src="clamp-a"}': -25, '{src="clamp-b"}': 0, '{src="clamp-c"}': 75 },
    ],
    [
      0,
      'clamp(test_clamp, 0, NaN)',
      { '{src="clamp-a"}': NaN, '{src="clamp-b"}': NaN, '{src="clamp-c"}': NaN },
    ],
    [0, 'clamp(test_clamp, 5, -5)', {}],
    [0, 'abs(test_clamp)', { '{src="clamp-a"}': 50, '{src="clamp-b"}': 0, '{src="clamp-c"}': 100 }],
    [0, 'sgn(test_sgn)', { '{src="a"}': -1, '{src="b"}': NaN, '{src="c"}': 0, '{src="d"}': 1 }],
    [0, 'round(frac)', { '{a="x"}': 3 }],
    [5, 'round(frac)', { '{a="x"}': -2 }],
    [
      0,
      'round(test_clamp / 3, 5)',
      { '{src="clamp-a"}': -15, '{src="clamp-b"}': 0, '{src="clamp-c"}': 35 },
    ],
    [0, 'ceil(frac) + floor(frac)', { '{a="x"}': 5 }],
    [
      0,
      'sqrt(test_clamp{src="clamp-c"}) + ln(exp(test_clamp{src="clamp-c"} / 100))',
      { '{src="clamp-c"}': 11 },
    ],
    [0, 'absent(up)', {}],
    [0, 'absent(nope{job="a",instance=~"i",x="1",x="2"})', { '{job="a"}': 1 }],
    [0, 'absent(sum(nope{job="a"}))', { '{}': 1 }],
    [0, 'vector(1)', { '{}': 1 }],
    [60, 'vector(time())', { '{}': 3600 }],
    [0, 'scalar(up) * 2', { '{}': 2 }],
    [0, 'scalar(test_clamp)', { '{}': NaN }],
    [0, 'scalar(nope)', { '{}': NaN }],
    [4, 'timestamp(up)', { '{instance="i",job="a"}': 0 }],
    [4, 'timestamp((up))', { '{instance="i",job="a"}': 0 }],
    [4, 'timestamp(up + 1)', { '{instance="i",job="a"}': 240 }],
    [
      0,
      'label_join(up, "dst", "-", "job", "missing", "instance")',
      { 'up{dst="a--i",instance="i",job="a"}': 1 },
    ],
    // 2021-03-15T13:45:00Z is a Monday.
    [MARCH_15, 'hour()', { '{}': 13 }],
    [MARCH_15, 'minute()', { '{}': 45 }],
    [MARCH_15, 'day_of_week()', { '{}': 1 }],
    [MARCH_15, 'day_of_month()', { '{}': 15 }],
    [MARCH_15, 'day_of_year()', { '{}': 74 }],
    [MARCH_15, 'days_in_month()', { '{}': 31 }],
    [MARCH_15, 'month()', { '{}': 3 }],
    [MARCH_15, 'year()', { '{}': 2021 }],
    [0, 'hour(vector(1615815900))', { '{}': 13 }],
  ],
);

table(
  'label_replace() expands templates like Go (regexp.Expand)',
  createMemorySeriesSource(loadSeries(M, { 'm{src="ab",dst="old"}': '1' })),
  [
    [0, 'label_replace(m, "dst", "$1-$2", "src", "(a)(b)")', { 'm{dst="a-b",src="ab"}': 1 }],
    [0, 'label_replace(m, "dst", "${1}x", "src", "(a)b")', { 'm{dst="ax",src="ab"}': 1 }],
    [0, 'label_replace(m, "dst", "$1x", "src", "(a)b")', { 'm{src="ab"}': 1 }],
    [0, 'label_replace(m, "dst", "$$1 $", "src", "(a)b")', { 'm{dst="$1 $",src="ab"}': 1 }],
    [
      0,
      'label_replace(m, "dst", "<$name>", "src", "(?P<name>a)b")',
      { 'm{dst="<a>",src="ab"}': 1 },
    ],
    [0, 'label_replace(m, "dst", "$9", "src", "(a)b")', { 'm{src="ab"}': 1 }],
    [0, 'label_replace(m, "dst", "x", "src", "a")', { 'm{dst="old",src="ab"}': 1 }],
    [0, 'label_replace(m, "dst", "x", "missing", "")', { 'm{dst="x",src="ab"}': 1 }],
    [
      0,
      'label_replace(m, "__name__", "renamed", "src", ".*")',
      { 'renamed{dst="old",src="ab"}': 1 },
    ],
  ],
);

describe('sort() and sort_desc() put NaN last and keep names', () => {
  const source = createMemorySeriesSource(
    loadSeries(M, { 'v{i="a"}': '2', 'v{i="b"}': 'NaN', 'v{i="c"}': '1', 'v{i="d"}': '3' }),
  );
  const order = (q: string): string[] =>
    evaluateInstant(parsePromQL(q), source, 0).map((s) => `${formatLabels(s.labels)}=${s.value}`);
  it('sort', () => {
    assert.deepEqual(order('sort(v)'), ['v{i="c"}=1', 'v{i="a"}=2', 'v{i="d"}=3', 'v{i="b"}=NaN']);
  });
  it('sort_desc', () => {
    assert.deepEqual(order('sort_desc(v)'), [
      'v{i="d"}=3',
      'v{i="a"}=2',
      'v{i="c"}=1',
      'v{i="b"}=NaN',
    ]);
  });
});
