import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aNode, aTicket, T0 } from '../../test/helpers/builders.js';
import { defaultConfig } from '../config/schema.js';
import { Action, type Step } from '../sop/sop.js';
import { actionableInOrder, bucketOfPriority } from './scheduler.js';
import { fleetCounts, isHold, SafetyGates, stormLimit } from './safety.js';
import { aCondition } from '../../test/helpers/builders.js';

const cfg = defaultConfig().safety;
const step = (action: Step['action']): Step => ({ action, reason: 't' });
const fleet = { eligible: 100, cordoned: 0 };

describe('safety gates', () => {
  it('cordon budget is atomic: reservations count before the write lands', () => {
    const g = new SafetyGates({ ...cfg, maxCordonedFraction: 0.02 });
    const a = g.admit({
      step: step(Action.Cordon),
      node: aNode({ name: 'a' }),
      ticket: null,
      fleet,
      nowMs: T0,
    });
    const b = g.admit({
      step: step(Action.Cordon),
      node: aNode({ name: 'b' }),
      ticket: null,
      fleet,
      nowMs: T0,
    });
    const c = g.admit({
      step: step(Action.Cordon),
      node: aNode({ name: 'c' }),
      ticket: null,
      fleet,
      nowMs: T0,
    });
    assert.equal(isHold(a), false);
    assert.equal(isHold(b), false);
    assert.ok(isHold(c) && c.gate === 'cordon-budget');
  });

  it('caps concurrent reboots and disruptive steps per rack', () => {
    const g = new SafetyGates({
      ...cfg,
      maxConcurrent: { ...cfg.maxConcurrent, reboot: 5 },
      maxPerRack: 1,
    });
    const rack = { 'topology.aegis.io/rack': 'r1' };
    const a = g.admit({
      step: step(Action.Reboot),
      node: aNode({ name: 'a', labels: rack }),
      ticket: null,
      fleet,
      nowMs: T0,
    });
    const b = g.admit({
      step: step(Action.Reboot),
      node: aNode({ name: 'b', labels: rack }),
      ticket: null,
      fleet,
      nowMs: T0,
    });
    assert.equal(isHold(a), false);
    assert.ok(isHold(b) && b.gate === 'rack-cap');
    if (!isHold(a)) a.release();
    assert.equal(
      isHold(
        g.admit({
          step: step(Action.Reboot),
          node: aNode({ name: 'b', labels: rack }),
          ticket: null,
          fleet,
          nowMs: T0,
        }),
      ),
      false,
    );
  });

  it('storm breaker trips when too many nodes fail at once, and resets', () => {
    const g = new SafetyGates({ ...cfg, stormMaxNewFaultyNodes: 3, stormMaxNewFaultyFraction: 0 });
    g.observeNewFaults(['a', 'b', 'c', 'd'], 100, T0);
    assert.equal(g.breakerOpen(T0), true);
    const h = g.admit({ step: step(Action.Cordon), node: aNode(), ticket: null, fleet, nowMs: T0 });
    assert.ok(isHold(h) && h.gate === 'storm-breaker');
    assert.equal(g.breakerOpen(T0 + cfg.stormCooldownMs + 1), false);
    g.observeNewFaults(['e', 'f', 'g', 'h'], 100, T0 + 1);
    g.resetBreaker();
    assert.equal(g.breakerOpen(T0 + 2), false);
  });

  it('the default storm limit protects a small fleet: the lower of 20 and 5 %, never below 3', () => {
    const d = defaultConfig().safety;
    assert.deepEqual(
      [8, 64, 400, 1_000, 10_000].map((n) => stormLimit(d, n)),
      [3, 3, 20, 20, 20],
    );
    // Reproduced on the simulator: 20 of 64 nodes NotReady did not trip max(20, 5 %) (needs > 20).
    const g = new SafetyGates(d);
    g.observeNewFaults(
      Array.from({ length: 20 }, (_, i) => `n${i}`),
      64,
      T0,
    );
    assert.equal(g.breakerOpen(T0), true, '20 of 64 new faulty nodes is a storm');
    const small = new SafetyGates(d);
    small.observeNewFaults(['a', 'b', 'c'], 8, T0);
    assert.equal(small.breakerOpen(T0), false, 'three independent faults in 8 nodes are not');
  });

  it('per-node cooldown after a reboot; pause switches', () => {
    const g = new SafetyGates(cfg);
    const t = aTicket([{ action: 'Reboot', end: new Date(T0).toISOString() }]);
    const h = g.admit({
      step: step(Action.Reboot),
      node: aNode(),
      ticket: t,
      fleet,
      nowMs: T0 + 1000,
    });
    assert.ok(isHold(h) && h.gate === 'node-cooldown');
    const p = new SafetyGates({ ...cfg, paused: true }).admit({
      step: step(Action.Cordon),
      node: aNode(),
      ticket: null,
      fleet,
      nowMs: T0,
    });
    assert.ok(isHold(p) && p.gate === 'paused');
    const np = g.admit({
      step: step(Action.Cordon),
      node: aNode({ annotations: { 'aegis.io/pause': 'true' } }),
      ticket: null,
      fleet,
      nowMs: T0,
    });
    assert.ok(isHold(np) && np.gate === 'node-paused');
  });

  it('counts opted-out nodes out of the budget', () => {
    assert.deepEqual(
      fleetCounts([
        aNode({ name: 'a', unschedulable: true }),
        aNode({ name: 'b', labels: { 'aegis.io/disable': 'true' }, unschedulable: true }),
        aNode({ name: 'c' }),
      ]),
      { eligible: 2, cordoned: 1 },
    );
  });
});

describe('scheduler order', () => {
  const prio: Record<string, number> = {
    NodeNotReady: 0,
    NodeInhibitAll: 0,
    NodeCordon: 1,
    Xid79GPULost: 2,
    GpuHung: 3,
    HighGpuTemp: 100,
    Ignored: 5000,
  };
  const p = (c: string): number => prio[c] ?? 999;
  it('NotReady first, Emergency by priority, Cordon last, ignorable left out', () => {
    const order = actionableInOrder(
      ['NodeCordon', 'HighGpuTemp', 'GpuHung', 'Xid79GPULost', 'NodeNotReady', 'Ignored'].map((c) =>
        aCondition({ condition: c }),
      ),
      p,
    ).map((c) => c.condition);
    assert.deepEqual(order, ['NodeNotReady', 'Xid79GPULost', 'GpuHung', 'NodeCordon']);
  });
  it('is deterministic for equal priorities (no series-order dependence)', () => {
    const a = actionableInOrder(
      [aCondition({ condition: 'NodeNotReady' }), aCondition({ condition: 'NodeInhibitAll' })],
      p,
    );
    const b = actionableInOrder(
      [aCondition({ condition: 'NodeInhibitAll' }), aCondition({ condition: 'NodeNotReady' })],
      p,
    );
    assert.deepEqual(a, b);
  });
  it('buckets', () => {
    assert.deepEqual([0, 1, 2, 99, 100, 999, 1000].map(bucketOfPriority), [
      'NotReady',
      'Cordon',
      'Emergency',
      'Emergency',
      'CanIgnore',
      'CanIgnore',
      'MustIgnore',
    ]);
  });
});
