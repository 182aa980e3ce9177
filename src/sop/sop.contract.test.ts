import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aStatus, aTicket, aView } from '../../test/helpers/builders.js';
import { CATALOGUE } from '../catalogue/index.js';
import { ManualClock } from '../core/clock.js';
import { createApiBridge } from '../engine/bridge.js';
import { createSimWorld } from '../sim/sim-world.js';
import { BUILTIN_SOP_IDS } from './ids.js';
import { builtInSops } from './index.js';
import type { Outcome, Sop, SopStatus, Verdict } from './sop.js';

const known = new Set(CATALOGUE.flatMap((e) => [e.name, ...(e.aliases ?? [])]));
const conditionsOf = (sop: Sop): string[] => [
  ...CATALOGUE.filter((e) => e.sop === sop.id).map((e) => e.name),
  ...(sop.handles ?? []),
];

/** Views an SOP meets in its life: fresh, cordoned, mid-ladder, a crashed step, human-owned. */
const VIEWS = [
  aView(),
  aView({
    node: { unschedulable: true },
    ticket: aTicket([{ action: 'Cordon' }], { cordonedByAegis: true }),
  }),
  aView({
    node: { unschedulable: true },
    ticket: aTicket([{ action: 'Cordon' }, { action: 'Reboot', status: 'Running' }], {
      cordonedByAegis: true,
    }),
  }),
  aView({
    node: { unschedulable: true, ready: false },
    ticket: aTicket(
      [{ action: 'Cordon' }, { action: 'Healthcheck', status: 'Failed', exitCode: 23 }],
      { cordonedByAegis: true },
    ),
  }),
  aView({ ticket: aTicket([], { supervisor: 'alice' }) }),
];

async function world(): Promise<{
  run: (sop: Sop, verdict: Verdict, status: SopStatus, signal: AbortSignal) => Promise<Outcome>;
  writes: () => number;
  node: string;
}> {
  const clock = new ManualClock();
  const w = createSimWorld({ nodes: 2, seed: 1, catalogue: CATALOGUE, clock });
  const bridge = createApiBridge({ cluster: w.cluster, clock });
  const node = (await w.cluster.listNodes(new AbortController().signal))[0]!.name;
  return {
    node,
    writes: () => w.cluster.writes().length,
    async run(sop, verdict, status, signal) {
      if (verdict.kind !== 'act') throw new Error('no step');
      const info = await w.cluster.getNode(node, new AbortController().signal);
      const p = sop
        .createInstance(bridge)
        .execute(
          aView({ node: info }),
          status,
          { ...verdict.step, seq: verdict.step.seq ?? 0 },
          signal,
        );
      const state = { done: false };
      p.then(
        () => (state.done = true),
        () => (state.done = true),
      );
      for (let i = 0; i < 2000 && !state.done; i++) await clock.advance(10_000);
      return p;
    },
  };
}

describe('SOP registry covers the catalogue', () => {
  it('every built-in id is implemented once, and every implemented id is listed', () => {
    const ids = builtInSops.map((s) => s.id);
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), Object.keys(BUILTIN_SOP_IDS).sort());
  });
  it('every Emergency/NotReady/Cordon condition names an implemented SOP', () => {
    const ids = new Set<string>(builtInSops.map((s) => s.id));
    for (const e of CATALOGUE)
      if (e.priority <= 99)
        assert.ok(e.sop !== null && ids.has(e.sop), `${e.name} -> ${String(e.sop)}`);
  });
});

for (const sop of builtInSops) {
  describe(`SOP contract: ${sop.id}`, () => {
    const conds = conditionsOf(sop);
    const cond = conds[0] ?? 'GpuHung';
    const status = aStatus({
      condition: cond,
      domain: CATALOGUE.find((e) => e.name === cond)?.domain ?? 'Node',
    });

    it('has a <domain>.<action> id and a description', () => {
      assert.match(sop.id, /^[a-z]+\.[a-z][a-z0-9-]*$/);
      assert.ok(sop.description.length > 0);
    });
    it('handles only known conditions', () => {
      for (const c of sop.handles ?? []) assert.ok(known.has(c), c);
    });
    it('evaluate() is deterministic and pure (no writes, same verdict twice)', async () => {
      const w = await world();
      const inst = sop.createInstance(
        createApiBridge({
          cluster: createSimWorld({ nodes: 1, seed: 1, catalogue: CATALOGUE }).cluster,
          clock: new ManualClock(),
        }),
      );
      const before = w.writes();
      for (const v of VIEWS) assert.deepEqual(inst.evaluate(v, status), inst.evaluate(v, status));
      assert.equal(w.writes(), before);
    });
    it('a human-owned ticket is never acted on', () => {
      const inst = sop.createInstance(
        createApiBridge({
          cluster: createSimWorld({ nodes: 1, seed: 1, catalogue: CATALOGUE }).cluster,
          clock: new ManualClock(),
        }),
      );
      assert.equal(inst.evaluate(VIEWS[4]!, status).kind, 'skip');
    });
    it('a step left Running by a crash is resumed with its sequence number', () => {
      const inst = sop.createInstance(
        createApiBridge({
          cluster: createSimWorld({ nodes: 1, seed: 1, catalogue: CATALOGUE }).cluster,
          clock: new ManualClock(),
        }),
      );
      const v = inst.evaluate(VIEWS[2]!, status);
      assert.ok(v.kind === 'act');
      assert.equal(v.step.action, 'Reboot');
      assert.equal(v.step.seq, 1);
    });
    it('execute() with an aborted signal rejects without writing', async () => {
      const w = await world();
      const inst = sop.createInstance(
        createApiBridge({
          cluster: createSimWorld({ nodes: 1, seed: 1, catalogue: CATALOGUE }).cluster,
          clock: new ManualClock(),
        }),
      );
      const verdict = inst.evaluate(VIEWS[0]!, status);
      if (verdict.kind !== 'act' || verdict.step.action === 'HandToHuman') return;
      const before = w.writes();
      const ac = new AbortController();
      ac.abort(new Error('stop'));
      await assert.rejects(w.run(sop, verdict, status, ac.signal));
      assert.equal(w.writes(), before);
    });
    it('execute() twice for the same step leaves the same end state (idempotent)', async () => {
      const w = await world();
      const inst = sop.createInstance(
        createApiBridge({
          cluster: createSimWorld({ nodes: 1, seed: 1, catalogue: CATALOGUE }).cluster,
          clock: new ManualClock(),
        }),
      );
      const verdict = inst.evaluate(VIEWS[0]!, status);
      if (verdict.kind !== 'act') return;
      const first = await w.run(sop, verdict, status, new AbortController().signal);
      const second = await w.run(sop, verdict, status, new AbortController().signal);
      assert.equal(second.status, first.status);
    });
  });
}
