import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aNode } from '../../test/helpers/builders.js';
import { defaultConfig } from '../config/schema.js';
import { ManualClock } from '../core/clock.js';
import type { NodeInfo } from '../core/types.js';
import { runLoop, type Engine } from '../daemon.js';
import { createMetrics } from '../metrics/metrics.js';
import type { CycleReport } from './controller.js';
import { silentLogger } from './logger.js';

const REPORT: Omit<CycleReport, 'atMs'> = {
  nodes: 0,
  faultyNodes: 0,
  started: 0,
  held: 0,
  queries: 0,
  queryFailures: 0,
  engineMs: 0,
  inspectMs: 0,
};

/** An engine whose controller records its cycles, and whose fast path the test triggers. */
function stubEngine(clock: ManualClock): {
  engine: Engine;
  cycles: { atMs: number; fast: boolean }[];
  trigger: () => void;
} {
  const cycles: { atMs: number; fast: boolean }[] = [];
  let listener: (() => void) | undefined;
  const controller = {
    cycle: (_signal: AbortSignal, opts: { fast?: boolean } = {}) => {
      cycles.push({ atMs: clock.now(), fast: opts.fast === true });
      return Promise.resolve({ ...REPORT, atMs: clock.now() });
    },
    stop: () => undefined,
    idle: () => Promise.resolve(),
    reset: () => undefined,
  };
  const engine = {
    controller,
    onFastPath: (l: () => void) => {
      listener = l;
      return () => {
        listener = undefined;
      };
    },
    registry: () => {
      throw new Error('unused');
    },
    reloadPlugins: () => [],
  } as unknown as Engine;
  return { engine, cycles, trigger: () => listener?.() };
}

describe('the fast path', () => {
  it('a detector raising a condition wakes the loop for a fast cycle; the regular schedule stays', async () => {
    const clock = new ManualClock();
    const { engine, cycles, trigger } = stubEngine(clock);
    const t0 = clock.now();
    const stop = new AbortController();
    const loop = runLoop({
      engine,
      clock,
      intervalMs: 10_000,
      metrics: createMetrics(),
      log: silentLogger,
      signal: stop.signal,
    });
    await clock.advance(3_000);
    trigger();
    await clock.advance(0);
    await clock.advance(7_000);
    await clock.advance(0);
    stop.abort();
    await loop;
    assert.deepEqual(
      cycles.map((c) => [c.atMs - t0, c.fast]),
      [
        [0, false],
        [3_000, true],
        [10_000, false],
      ],
    );
  });

  it('only a detector condition turning True (or a new reason) asks for it, not a heartbeat', async () => {
    const { Controller } = await import('./controller.js');
    const config = defaultConfig();
    const c = new Controller({
      cluster: {} as never,
      metricsSource: {} as never,
      clock: new ManualClock(),
      config,
      catalogue: [],
      presence: {} as never,
      priorityOf: () => () => 999,
      sops: () => ({}) as never,
      metrics: createMetrics(),
      log: silentLogger,
    });
    const type = config.nodeProblemDetector.problems[0]?.type ?? 'KernelDeadlock';
    const withCond = (status: 'True' | 'False', reason: string, heartbeatMs: number): NodeInfo => ({
      ...aNode(),
      conditions: [{ type, status, reason, heartbeatMs }],
    });
    assert.equal(c.wantsFastCycle(withCond('False', 'Ok', 1), withCond('True', 'Bad', 2)), true);
    assert.equal(c.wantsFastCycle(withCond('True', 'Bad', 1), withCond('True', 'Bad', 2)), false);
    assert.equal(c.wantsFastCycle(withCond('True', 'Bad', 1), withCond('True', 'Worse', 2)), true);
    assert.equal(c.wantsFastCycle(undefined, withCond('True', 'Bad', 2)), true);
    assert.equal(c.wantsFastCycle(withCond('True', 'Bad', 1), withCond('False', 'Ok', 2)), false);
  });
});
