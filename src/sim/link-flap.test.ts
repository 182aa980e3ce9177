/**
 * An InfiniBand link flap as node-exporter's InfiniBand collector shows it: each drop counts one
 * more in `node_infiniband_link_downed_total` while `state_id` reads 1 (DOWN) and
 * `physical_state_id` 2 (Polling), then the port is ACTIVE (4) / LinkUp (5) again. Past three drops
 * in 24 h the catalogue's flapping rule (IBLinkFrequentDown) returns the HCA; a `recover` (a human
 * reseats the cable) stops the flapping, and the counter keeps what it counted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOGUE, findCondition } from '../catalogue/index.js';
import { ManualClock } from '../core/clock.js';
import { LINK_FLAP_CONDITION } from './faults.js';
import { createSimWorld } from './sim-world.js';

const MIN = 60_000;
const START = Date.UTC(2026, 0, 1);
const NODE = 'gpu-node-0002';
const signal = new AbortController().signal;

function setup(): { world: ReturnType<typeof createSimWorld>; clock: ManualClock } {
  const clock = new ManualClock(START);
  return { world: createSimWorld({ nodes: 4, seed: 3, catalogue: CATALOGUE, clock }), clock };
}

async function value(
  world: ReturnType<typeof createSimWorld>,
  expr: string,
  atMs: number,
): Promise<number | undefined> {
  const out = await world.metrics.query(expr, atMs, signal);
  return out[0]?.value;
}

const port = `node="${NODE}",device="mlx5_4",port="1"`;

describe('IB link flap (FaultInjector.injectLinkFlap)', () => {
  it('moves link_downed and the port state as each drop happens, and raises the flapping rule', async () => {
    const { world, clock } = setup();
    const at = START + 10 * MIN;
    await clock.advanceTo(at - MIN);
    const id = world.faults.injectLinkFlap({
      node: NODE,
      device: 'mlx5_4',
      atMs: at,
      count: 5,
      periodMs: MIN,
      downMs: 20_000,
    });
    const downed = `node_infiniband_link_downed_total{${port}}`;
    const base = await value(world, downed, at - 1);
    assert.ok(
      base !== undefined,
      'the counter exists before any flap (a healthy HCA reports 0 or more)',
    );
    await clock.advanceTo(at + 10 * MIN);
    const entry = findCondition(LINK_FLAP_CONDITION);
    assert.ok(entry !== undefined);
    const rule = entry.expr;
    // The rule's device id: the HCA, or `HCA/port` when the catalogue's IB rules are per port.
    const deviceId = entry.fault.defaultDevice?.includes('/') === true ? 'mlx5_4/1' : 'mlx5_4';
    const deviceLabel: string = entry.deviceLabel;
    for (let k = 0; k < 5; k++) {
      const t = at + k * MIN;
      assert.equal(await value(world, downed, t), base + k + 1, `drop ${k + 1} counted`);
      assert.equal(await value(world, `node_infiniband_state_id{${port}}`, t + 5_000), 1);
      assert.equal(await value(world, `node_infiniband_physical_state_id{${port}}`, t + 5_000), 2);
      assert.equal(await value(world, `node_infiniband_state_id{${port}}`, t + 25_000), 4);
      assert.equal(await value(world, `node_infiniband_physical_state_id{${port}}`, t + 25_000), 5);
      const flagged = await world.metrics.query(rule, t + 1_000, signal);
      // More than 3 link-downs in 24 h: from the 4th drop on.
      assert.deepEqual(
        flagged.map((s): (string | undefined)[] => [s.labels['node'], s.labels[deviceLabel]]),
        k >= 3 ? [[NODE, deviceId]] : [],
        `after drop ${k + 1}`,
      );
    }
    // Other HCAs are untouched.
    assert.equal(
      await value(
        world,
        `node_infiniband_state_id{node="${NODE}",device="mlx5_0",port="1"}`,
        at + 5_000,
      ),
      4,
    );
    assert.deepEqual(
      world.faults.active(NODE).map((f) => [f.id, f.entry.name, f.device]),
      [[id, LINK_FLAP_CONDITION, deviceId]],
    );
  });

  for (const synced of [true, false])
    it(`a recover stops the flapping; the counter keeps its count${synced ? '' : ' (effects not yet run)'}`, async () => {
      const { world, clock } = setup();
      const at = START + 10 * MIN;
      await clock.advanceTo(at);
      world.faults.injectLinkFlap({
        node: NODE,
        device: 'mlx5_4',
        atMs: at,
        count: 6,
        periodMs: MIN,
        downMs: 20_000,
      });
      await clock.advanceTo(at + MIN + 5_000);
      // Cleared during the second drop: the port comes up at once and no later drop happens.
      if (synced) world.sync();
      assert.equal(world.faults.clearWhere(NODE, () => true, clock.now()).length, 1);
      await clock.advanceTo(at + 10 * MIN);
      const downed = `node_infiniband_link_downed_total{${port}}`;
      const before = (await value(world, downed, at - 1)) ?? Number.NaN;
      assert.equal(await value(world, downed, at + 10 * MIN), before + 2);
      assert.equal(await value(world, `node_infiniband_state_id{${port}}`, at + MIN + 4_000), 1);
      assert.equal(await value(world, `node_infiniband_state_id{${port}}`, at + MIN + 6_000), 4);
      assert.deepEqual(world.faults.active(NODE), []);
    });

  it('refuses a flap that is never up', () => {
    const { world } = setup();
    assert.throws(
      () =>
        world.faults.injectLinkFlap({
          node: NODE,
          device: 'mlx5_4',
          atMs: START,
          count: 3,
          periodMs: 10_000,
          downMs: 10_000,
        }),
      /needs count >= 1 and 0 < down < period/,
    );
  });
});
