import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConditionTracker, type Observation } from './condition-tracker.js';

const T0 = Date.UTC(2026, 0, 1);
const obs = (condition = 'Xid79GPULost', id = '3', node = 'n1'): Observation => ({
  node,
  domain: 'GPU',
  condition,
  id,
  pciBdf: '',
  msg: '',
  value: 79,
});
const timing = (c: string) =>
  c === 'Slow' ? { forMs: 60_000, clearForMs: 120_000 } : { forMs: 0, clearForMs: 30_000 };
const never = (): boolean => false;

describe('condition tracker', () => {
  it('raises at once when forMs is 0, with since = first seen', () => {
    const t = new ConditionTracker(timing);
    const edges = t.update([obs()], T0, never);
    assert.deepEqual(
      edges.map((e) => e.kind),
      ['raised'],
    );
    assert.equal(t.active('n1')[0]?.sinceMs, T0);
  });

  it('honours forMs: pending until it held long enough', () => {
    const t = new ConditionTracker(timing);
    assert.equal(t.update([obs('Slow')], T0, never).length, 0);
    assert.equal(t.update([obs('Slow')], T0 + 30_000, never).length, 0);
    const e = t.update([obs('Slow')], T0 + 60_000, never);
    assert.equal(e[0]?.kind, 'raised');
    assert.equal(e[0].instance.sinceMs, T0);
  });

  it('a blip shorter than forMs never raises', () => {
    const t = new ConditionTracker(timing);
    t.update([obs('Slow')], T0, never);
    t.update([], T0 + 10_000, never);
    assert.equal(t.update([obs('Slow')], T0 + 20_000, never).length, 0);
    assert.equal(t.update([obs('Slow')], T0 + 70_000, never).length, 0);
    assert.equal(t.update([obs('Slow')], T0 + 80_000, never)[0]?.kind, 'raised');
  });

  it('clears only after clearForMs of quiet', () => {
    const t = new ConditionTracker(timing);
    t.update([obs()], T0, never);
    assert.equal(t.update([], T0 + 10_000, never).length, 0);
    assert.equal(t.active('n1').length, 1);
    assert.equal(t.update([], T0 + 40_000, never)[0]?.kind, 'cleared');
    assert.equal(t.active('n1').length, 0);
  });

  it('a stale signal freezes state: active stays active, pending does not progress', () => {
    const t = new ConditionTracker(timing);
    t.update([obs()], T0, never);
    t.update([obs('Slow', '', 'n2')], T0, never);
    const stale = (): boolean => true;
    for (let i = 1; i < 20; i++) assert.equal(t.update([], T0 + i * 60_000, stale).length, 0);
    assert.equal(t.active('n1').length, 1, 'not read as healthy');
    assert.equal(t.active('n2').length, 0, 'not read as a fault');
  });

  it('an absence counts towards the clear only once a presence answer at or after it confirms it', () => {
    const t = new ConditionTracker(() => ({ forMs: 0, clearForMs: 0 }));
    t.update([obs()], T0, never);
    // Presence in the background: the answer in use is one cycle older than the rules.
    assert.equal(t.update([], T0 + 1_000, never, T0).length, 0, 'silence not yet confirmed');
    assert.equal(t.active('n1').length, 1);
    const e = t.update([], T0 + 2_000, never, T0 + 1_000);
    assert.equal(e[0]?.kind, 'cleared');
    assert.equal(e[0].atMs, T0 + 2_000);
  });

  it('an exporter that fell silent between two presence answers never reads as a clear', () => {
    const t = new ConditionTracker(() => ({ forMs: 0, clearForMs: 0 }));
    t.update([obs()], T0, never);
    // The fault's series vanish with the exporter at T0 + 0.5 s; presence at T0 still says present.
    assert.equal(t.update([], T0 + 1_000, never, T0).length, 0);
    // The answer from T0 + 1 s reports the exporter missing: frozen from then on.
    const stale = (): boolean => true;
    for (let s = 2; s < 10; s++)
      assert.equal(t.update([], T0 + s * 1_000, stale, T0 + (s - 1) * 1_000).length, 0);
    assert.equal(t.active('n1').length, 1, 'still active through the outage');
  });

  it('quiet time counts only on fresh data: a stale spell starts it again', () => {
    const t = new ConditionTracker(timing);
    t.update([obs()], T0, never);
    t.update([], T0 + 10_000, never);
    const stale = (): boolean => true;
    t.update([], T0 + 20_000, stale);
    assert.equal(t.update([], T0 + 30_000, never).length, 0, 'quiet again from 30 s');
    assert.equal(t.update([], T0 + 45_000, never).length, 0, '40 s after the first quiet cycle');
    assert.equal(t.update([], T0 + 60_000, never)[0]?.kind, 'cleared', '30 s of fresh quiet');
  });

  it('damps flapping: after repeated raises, the clear delay grows', () => {
    const t = new ConditionTracker(timing);
    let now = T0;
    for (let i = 0; i < 3; i++) {
      t.update([obs()], now, never);
      now += 1_000;
      t.update([], now, never);
      now += 31_000;
      t.update([], now, never);
      now += 1_000;
    }
    t.update([obs()], now, never);
    t.update([], now + 1_000, never);
    assert.equal(t.update([], now + 40_000, never).length, 0, 'held active longer than clearForMs');
    assert.equal(t.active('n1').length, 1);
  });

  it('tracks devices separately', () => {
    const t = new ConditionTracker(timing);
    t.update([obs('Xid79GPULost', '1'), obs('Xid79GPULost', '5')], T0, never);
    assert.deepEqual(
      t
        .active('n1')
        .map((c) => c.id)
        .sort(),
      ['1', '5'],
    );
  });
});
