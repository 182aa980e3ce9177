import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultConfig } from '../config/schema.js';
import { ErrorCode, HealError } from '../core/errors.js';
import type { HistoryReader, RangeSeries } from './range-client.js';
import { replayConfig, runReplay } from './replay.js';

const FROM = Date.UTC(2026, 2, 1);
const STEP = 30_000;

/** Two Ready nodes in kube-state-metrics, nothing else; range queries past `failFrom` fail. */
function reader(failFrom = Number.POSITIVE_INFINITY): HistoryReader {
  const nodes = ['a', 'b'];
  const series = (
    labels: (n: string) => Record<string, string>,
    s: number,
    e: number,
    st: number,
  ): RangeSeries[] =>
    nodes.map((n) => {
      const points: [number, number][] = [];
      for (let t = s; t <= e; t += st) points.push([t, 1]);
      return { labels: labels(n), points };
    });
  return {
    sent: { range: 0, instant: 0 },
    queryRange(expr, s, e, st) {
      if (s >= failFrom)
        return Promise.reject(
          new HealError(
            ErrorCode.PromUnavailable,
            'Prometheus at http://x unreachable: ECONNREFUSED',
          ),
        );
      if (expr === 'count(kube_node_info)') {
        const points: [number, number][] = [];
        for (let t = s; t <= e; t += st) points.push([t, 2]);
        return Promise.resolve([{ labels: {}, points }]);
      }
      if (expr === 'max by (node) (kube_node_info)')
        return Promise.resolve(series((node) => ({ node }), s, e, st));
      if (expr.startsWith('max by (node, status) (kube_node_status_condition'))
        return Promise.resolve(series((node) => ({ node, status: 'true' }), s, e, st));
      return Promise.resolve([]);
    },
    query: () => Promise.resolve([]),
  };
}

const config = replayConfig(defaultConfig(), STEP, false);

describe('runReplay', () => {
  it('replays quiet history with no step, skipping the quiet cycles', async () => {
    const r = await runReplay({
      reader: reader(),
      source: 'fake',
      fromMs: FROM,
      toMs: FROM + 6 * 3_600_000,
      stepMs: STEP,
      config,
      configName: 'defaults',
    });
    assert.equal(r.nodes, 2);
    assert.deepEqual(r.actions, []);
    assert.deepEqual(r.faults, []);
    assert.equal(r.run.cycles + r.run.skippedCycles, 6 * 120 + 1);
    assert.ok(r.run.skippedCycles > 600, `skipped ${String(r.run.skippedCycles)}`);
  });

  it('stops with an error naming the time when history can no longer be read', async () => {
    await assert.rejects(
      runReplay({
        reader: reader(FROM + 20 * STEP),
        source: 'fake',
        fromMs: FROM,
        toMs: FROM + 40 * STEP,
        stepMs: STEP,
        config,
        configName: 'defaults',
        maxChunkSteps: 10,
      }),
      (err: unknown) =>
        err instanceof HealError &&
        err.code === ErrorCode.PromUnavailable &&
        /replay stopped at 2026-03-01T00:10:00Z: history could not be read: Prometheus at http:\/\/x unreachable/.test(
          err.message,
        ),
    );
  });
});
