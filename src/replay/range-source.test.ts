import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, HealError } from '../core/errors.js';
import type { InstantSample } from '../prom/metrics-source.js';
import type { HistoryReader, RangeSeries } from './range-client.js';
import { RangeSource } from './range-source.js';

const signal = new AbortController().signal;
const FROM = Date.UTC(2026, 2, 1);
const STEP = 30_000;

/** A reader over one series `x{node="a"}` whose value at step k is `value(k)` (absent: no point). */
function fakeReader(value: (k: number) => number | undefined, opts: { maxSteps?: number } = {}) {
  const calls: { expr: string; first: number; last: number }[] = [];
  const instants: { expr: string; atMs: number }[] = [];
  const labels = { __name__: 'x', node: 'a' };
  const reader: HistoryReader = {
    sent: { range: 0, instant: 0 },
    queryRange(expr, startMs, endMs, stepMs): Promise<readonly RangeSeries[]> {
      const first = (startMs - FROM) / stepMs;
      const last = (endMs - FROM) / stepMs;
      calls.push({ expr, first, last });
      if (opts.maxSteps !== undefined && last - first + 1 > opts.maxSteps)
        return Promise.reject(
          new HealError(ErrorCode.PromResponseTooLarge, `answer for ${expr} too large`),
        );
      const points: [number, number][] = [];
      for (let k = first; k <= last; k++) {
        const v = value(k);
        if (v !== undefined) points.push([FROM + k * stepMs, v]);
      }
      return Promise.resolve(points.length === 0 ? [] : [{ labels, points }]);
    },
    query(expr, atMs): Promise<readonly InstantSample[]> {
      instants.push({ expr, atMs });
      return Promise.resolve([]);
    },
  };
  return { reader, calls, instants };
}

describe('RangeSource', () => {
  it('serves a step of the grid from one range query per expression per chunk', async () => {
    const { reader, calls } = fakeReader((k) => k);
    const src = new RangeSource(reader, {
      fromMs: FROM,
      toMs: FROM + 999 * STEP,
      stepMs: STEP,
      maxChunkSteps: 400,
    });
    for (let k = 0; k <= 999; k++) {
      const [a] = await src.query('x', FROM + k * STEP, signal);
      assert.equal(a?.value, k, `step ${String(k)}`);
      await src.query('y', FROM + k * STEP, signal);
    }
    // 1000 steps in chunks of 400: three range queries per expression, not 1000.
    assert.deepEqual(
      calls.map((c) => [c.expr, c.first, c.last]),
      [
        ['x', 0, 399],
        ['y', 0, 399],
        ['x', 400, 799],
        ['y', 400, 799],
        ['x', 800, 999],
        ['y', 800, 999],
      ],
    );
    assert.equal(src.stats.rangeQueries, 6);
    assert.equal(src.stats.served, 2000);
  });

  it('sizes chunks to the fleet, and halves them when an answer is too large', async () => {
    const { reader, calls } = fakeReader(() => 1, { maxSteps: 100 });
    const src = new RangeSource(reader, {
      fromMs: FROM,
      toMs: FROM + 10_000 * STEP,
      stepMs: STEP,
      pointBudget: 1000,
      nodes: 2,
    });
    await src.query('x', FROM, signal);
    // 1000 points / 2 nodes = 500 steps; refused, then 250, then 125, then 62.
    assert.deepEqual(
      calls.map((c) => c.last - c.first + 1),
      [500, 250, 125, 62],
    );
    assert.equal(src.stats.shrunk, 3);
  });

  it('asks a time off the grid, or outside the window, as an instant query', async () => {
    const { reader, calls, instants } = fakeReader(() => 1);
    const src = new RangeSource(reader, { fromMs: FROM, toMs: FROM + 10 * STEP, stepMs: STEP });
    await src.query('x', FROM + 1000, signal);
    await src.query('x', FROM + 11 * STEP, signal);
    await src.query('x', FROM - STEP, signal);
    assert.equal(calls.length, 0);
    assert.deepEqual(
      instants.map((i) => i.atMs),
      [FROM + 1000, FROM + 11 * STEP, FROM - STEP],
    );
  });

  it('knows the next step where an answer changes (quiet stretches are skipped to it)', async () => {
    // Absent, then 1 from step 10, then 2 from step 50, absent again from step 80.
    const v = (k: number): number | undefined =>
      k < 10 ? undefined : k < 50 ? 1 : k < 80 ? 2 : undefined;
    const { reader } = fakeReader(v);
    const src = new RangeSource(reader, { fromMs: FROM, toMs: FROM + 99 * STEP, stepMs: STEP });
    await src.query('x', FROM, signal);
    assert.equal(src.nextChange(0), 10);
    assert.equal(src.nextChange(10), 50);
    assert.equal(src.nextChange(49), 50);
    assert.equal(src.nextChange(50), 80);
    assert.equal(src.nextChange(80), 100, 'nothing changes to the end of the window');
  });
});
