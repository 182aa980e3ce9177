/**
 * The storm breaker's safe self-reset, on the simulated fleet with the real engine (issue 16,
 * item 3): after its cooldown it closes only on a stable cycle (here the metrics are down when the
 * cooldown ends: it waits for them), the backlog of held incidents is then admitted no faster than
 * the breaker's own tolerance per storm window (not all at once), and a node Aegis had cordoned
 * that a human uncordoned while the breaker held it is never cordoned again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultConfig } from '../../src/config/schema.js';
import { createSimHarness } from '../helpers/sim-harness.js';

const MIN = 60_000;

describe('storm breaker: safe self-reset', () => {
  it('waits for a stable fleet, drains the backlog at its own rate, never re-cordons a node a human released', async () => {
    const base = defaultConfig();
    const h = await createSimHarness({
      nodes: 40,
      config: { safety: { ...base.safety, dryRun: false, maxCordonedFraction: 0.5 } },
    });
    const gates = h.engine.controller.gates;
    const limit = gates.stormLimit(40);
    assert.equal(limit, 3);
    const released = h.node(30);
    const storm = Array.from({ length: 8 }, (_, k) => h.node(k + 1));
    h.world.faults.injectFault({
      condition: 'GpuHung',
      node: released,
      device: '0',
      atMs: h.clock.now(),
      persistence: 'until-repair',
    });
    // Until Aegis has cordoned it.
    while (!(await h.get(released)).unschedulable) await h.run(20_000, 20_000);
    for (const node of storm)
      h.world.faults.injectFault({
        condition: 'Xid48GPUMemoryDBE',
        node,
        device: '1',
        atMs: h.clock.now(),
        persistence: 'until-repair',
      });
    while (!gates.breakerOpen(h.clock.now())) await h.run(20_000, 20_000);
    const trippedAt = h.clock.now();
    await h.run(5 * MIN, 20_000);
    // A human looks at the cordoned node and puts it back in service.
    await uncordonByHand(h, released);
    // The metrics go down just before the cooldown ends, and come back 6 minutes later.
    const cooldownEnd = trippedAt + base.safety.stormCooldownMs;
    await h.run(cooldownEnd - MIN - h.clock.now(), 20_000);
    h.world.metrics.outage(cooldownEnd + 5 * MIN);
    await h.run(3 * MIN, 20_000);
    assert.equal(gates.breakerOpen(h.clock.now()), true, 'past the cooldown, metrics down: open');
    let closedAt: number | undefined;
    const cordonedAt = new Map<string, number>();
    for (let t = 0; t < 60 * MIN; t += 20_000) {
      await h.run(20_000, 20_000);
      if (closedAt === undefined && !gates.breakerOpen(h.clock.now())) closedAt = h.clock.now();
      for (const n of storm)
        if (!cordonedAt.has(n) && (await h.get(n)).unschedulable) cordonedAt.set(n, h.clock.now());
    }
    await h.engine.controller.idle();
    assert.ok(
      closedAt !== undefined && closedAt >= cooldownEnd + 5 * MIN,
      'closed once data was back',
    );
    const times = [...cordonedAt.values()].sort((a, b) => a - b);
    const first = times[0] ?? 0;
    const inFirstWindow = times.filter((t) => t - first < base.safety.stormWindowMs).length;
    console.log(
      `DOMAINS FIGURES breaker closed ${String((closedAt - cooldownEnd) / 1000)} s after the cooldown (metrics down until +300 s); backlog of ${String(storm.length)} cordoned ${String(inFirstWindow)} in the first storm window, all ${String(times.length)} by +${String(((times.at(-1) ?? 0) - first) / 60_000)} min`,
    );
    assert.ok(
      inFirstWindow <= limit,
      `${String(inFirstWindow)} cordons in the first window (limit ${String(limit)})`,
    );
    assert.equal(times.length, storm.length, 'the whole backlog is handled in the end');
    // The node the human released: never cordoned again, never rebooted.
    assert.equal((await h.get(released)).unschedulable, false);
    const cordons = h.steps.filter(
      (s) => s.node === released && s.action === 'Cordon' && s.status === 'Running',
    );
    assert.equal(cordons.length, 1, 'cordoned once, before the human released it');
    assert.equal(h.world.cluster.rebootCount(released), 0);
    const t = await h.ticket(released);
    assert.ok(
      t?.workflows.some(
        (w) => w.status === 'Held' && w.message?.startsWith('human-released:') === true,
      ),
      'the ticket says why',
    );
  });
});

/** A human runs `kubectl uncordon` (as the scenarios' `uncordon` event does). */
async function uncordonByHand(
  h: Awaited<ReturnType<typeof createSimHarness>>,
  node: string,
): Promise<void> {
  await h.world.cluster.setUnschedulable(node, false, h.signal);
}
