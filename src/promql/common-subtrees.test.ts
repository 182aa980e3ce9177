import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../catalogue/index.js';
import { repeatedSubtrees } from './common-subtrees.js';
import { evaluateInstant } from './evaluate.js';
import { formatSample } from './format.js';
import { loadSeries } from './load-series.js';
import { createMemorySeriesSource } from './memory-source.js';
import { parsePromQL } from './parse.js';
import type { Series, SeriesSource } from './series.js';

const M = 60_000;

const SERIES = loadSeries(M, {
  'gpu_temp{node="n1",gpu="0"}': '60x10',
  'gpu_temp{node="n1",gpu="1"}': '70x10',
  'gpu_temp{node="n2",gpu="0"}': '80x10',
  'gpu_clock{node="n1",gpu="0"}': '1000x10',
  'gpu_clock{node="n2",gpu="1"}': '1200x10',
  'capacity{node="n1"}': '2x10',
  'capacity{node="n2"}': '3x10',
});

/** A source that counts selections, to see whether a repeated subtree was read once. */
function counting(series: readonly Series[]): { source: SeriesSource; selects: () => number } {
  const inner = createMemorySeriesSource(series);
  let n = 0;
  return {
    source: {
      select: (metric, matchers, start, end) => {
        n++;
        return inner.select(metric, matchers, start, end);
      },
    },
    selects: () => n,
  };
}

function run(q: string, source: SeriesSource): string[] {
  return evaluateInstant(parsePromQL(q), source, 9 * M)
    .map(formatSample)
    .sort();
}

describe('repeated subtrees', () => {
  it('finds a subtree written twice, whatever the spacing', () => {
    const r = repeatedSubtrees(
      parsePromQL(
        'count by (node) (gpu_temp or gpu_clock) - count by(node)(gpu_temp  or gpu_clock)',
      ),
    );
    const keys = new Set(r.values());
    assert.ok(
      [...keys].some((k) => k.startsWith('a(count by(node)')),
      [...keys].join('\n'),
    );
  });

  it('tells apart subtrees that differ only in grouping, matcher, offset or range', () => {
    // The two aggregations differ; the selector inside them is the same.
    const grouped = repeatedSubtrees(
      parsePromQL('count by (node) (gpu_temp) - count by (gpu) (gpu_temp)'),
    );
    assert.deepEqual([...new Set(grouped.values())], ['v("gpu_temp",@0)']);
    for (const q of [
      'gpu_temp{gpu="0"} - on(node, gpu) gpu_temp{gpu="1"}',
      'gpu_temp - gpu_temp offset 1m',
      'rate(gpu_temp[1m]) - rate(gpu_temp[2m])',
    ]) {
      assert.equal(repeatedSubtrees(parsePromQL(q)).size, 0, q);
    }
  });

  it('evaluates a repeated subtree once and gives the same answer', () => {
    const q =
      '(max by (node) (capacity) - count by (node) (count by (node, gpu) (gpu_temp or gpu_clock)) > 0) ' +
      'or (max by (node) (capacity) % count by (node) (count by (node, gpu) (gpu_temp or gpu_clock)) > 0)';
    const c = counting(SERIES);
    const shared = run(q, c.source);
    // capacity, gpu_temp, gpu_clock: once each (six selections without sharing).
    assert.equal(c.selects(), 3);
    assert.deepEqual(shared, ['{node="n2"} 1']);
  });

  it('hands out copies: a consumer that rewrites samples in place cannot corrupt the other', () => {
    // Unary minus and `* 2` rewrite their operand's samples; `or` appends to its left side.
    const q =
      '-(sum by (node) (gpu_temp)) or (sum by (node) (gpu_temp) * 2) or sum by (node) (gpu_temp)';
    assert.deepEqual(run(q, createMemorySeriesSource(SERIES)), [
      '{node="n1"} -130',
      '{node="n2"} -80',
    ]);
    const q2 = '(sum by (node) (gpu_temp) * 2) + on(node) -(sum by (node) (gpu_temp))';
    assert.deepEqual(run(q2, createMemorySeriesSource(SERIES)), [
      '{node="n1"} 130',
      '{node="n2"} 80',
    ]);
  });

  it('finds the repeated part of the catalogue GpuDown rule', () => {
    const gpuDown = CATALOGUE.find((c) => c.name === 'GpuDown');
    assert.ok(gpuDown !== undefined);
    const keys = new Set(repeatedSubtrees(parsePromQL(gpuDown.expr)).values());
    assert.ok(
      [...keys].some((k) => k.startsWith('a(count by(node);;a(count by(node,gpu)')),
      'the reported-GPU count is shared',
    );
  });
});
