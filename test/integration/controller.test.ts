import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TICKET_ANNOTATION } from '../../src/core/types.js';
import { createSimHarness } from '../helpers/sim-harness.js';

const MIN = 60_000;

describe('controller on the simulated fleet: whole loop', () => {
  it('Xid 79: cordon, diagnose, reboot, healthcheck, uncordon, resolved', async () => {
    const h = await createSimHarness();
    const n = h.node(2);
    h.world.faults.injectFault({
      condition: 'Xid79GPULost',
      node: n,
      device: '3',
      atMs: h.clock.now(),
    });
    await h.run(40 * MIN);
    assert.deepEqual(h.actions(n), ['Cordon', 'Diagnose', 'Reboot', 'Healthcheck', 'Uncordon']);
    const t = await h.ticket(n);
    assert.equal(t?.status, 'resolved');
    assert.equal((await h.get(n)).unschedulable, false);
    assert.equal(h.world.cluster.rebootCount(n), 1);
    const text = await h.metrics.registry.metrics();
    assert.match(
      text,
      /aegis_sop_total\{sop="gpu.reboot-once",action="Reboot",status="Succeeded"\} 1/,
    );
    assert.match(text, /aegis_selfheal_seconds_count\{condition="Xid79GPULost"\} 1/);
    for (let i = 0; i < 8; i++)
      if (i !== 2) assert.deepEqual(h.actions(h.node(i)), [], `node ${i} untouched`);
  });

  it('a fault that survives reboots goes to a human after the reboot budget', async () => {
    const h = await createSimHarness();
    const n = h.node(1);
    h.world.faults.injectFault({
      condition: 'GpuHung',
      node: n,
      atMs: h.clock.now(),
      persistence: 'survives-reboot',
    });
    await h.run(3 * 60 * MIN, 15_000);
    const reboots = h.actions(n).filter((a) => a === 'Reboot').length;
    assert.equal(reboots, 2);
    const t = await h.ticket(n);
    assert.equal(t?.status, 'assigned');
    assert.equal(t.supervisor, 'sre');
    assert.equal((await h.get(n)).unschedulable, true, 'left cordoned for the human');
    const before = h.steps.length;
    await h.run(60 * MIN, 30_000);
    assert.equal(
      h.steps.filter((s) => s.node === n).length,
      h.steps.slice(0, before).filter((s) => s.node === n).length,
      'automation stopped',
    );
  });

  it('after a step, a slow rule answered before it ended starts nothing: one repair, resolved', async () => {
    // GpfsMountLost holds for 1 min, so its rule is asked every 6 s and its answer reused in
    // between: right after the repair the reused answer still says the mount is lost although
    // the repair fixed it. No settle time after a step, so nothing else hides that answer.
    const h = await createSimHarness({ config: { sop: { settleMs: 0 } } });
    const n = h.node(5);
    h.world.faults.injectFault({
      condition: 'GpfsMountLost',
      node: n,
      atMs: h.clock.now(),
      persistence: 'until-repair',
    });
    await h.run(40 * MIN);
    assert.deepEqual(h.actions(n), ['Cordon', 'Repair', 'Healthcheck', 'Uncordon']);
    assert.equal((await h.ticket(n))?.status, 'resolved');
    assert.equal((await h.get(n)).unschedulable, false);
  });

  it('leaves a hand-cordoned node alone', async () => {
    const h = await createSimHarness();
    const n = h.node(4);
    await h.world.cluster.setUnschedulable(n, true, h.signal);
    await h.run(30 * MIN);
    assert.deepEqual(h.actions(n), []);
    assert.equal((await h.get(n)).unschedulable, true);
  });

  it('stops acting when a human takes the ticket over', async () => {
    const h = await createSimHarness();
    const n = h.node(3);
    h.world.faults.injectFault({
      condition: 'GpuHung',
      node: n,
      atMs: h.clock.now(),
      persistence: 'survives-reboot',
    });
    await h.run(3 * MIN);
    assert.ok((await h.ticket(n)) !== null, 'ticket opened');
    const raw = (await h.get(n)).annotations[TICKET_ANNOTATION] ?? '';
    const node = await h.get(n);
    await h.world.cluster.patchNodeAnnotations(
      n,
      { [TICKET_ANNOTATION]: raw.replace('supervisor: aegis', 'supervisor: alice') },
      node.resourceVersion,
      h.signal,
    );
    const started = (): number =>
      h.steps.filter((s) => s.node === n && s.status === 'Running').length;
    const count = started();
    await h.run(2 * 60 * MIN, 30_000);
    assert.equal(started(), count, 'no step started after the takeover');
    assert.equal((await h.ticket(n))?.supervisor, 'alice');
  });

  it('dry-run computes the plan and writes nothing', async () => {
    const h = await createSimHarness({ config: { safety: { dryRun: true } } });
    const n = h.node(2);
    h.world.faults.injectFault({
      condition: 'Xid79GPULost',
      node: n,
      device: '0',
      atMs: h.clock.now(),
    });
    await h.run(10 * MIN);
    assert.deepEqual(
      h.steps.filter((s) => s.node === n).map((s) => `${s.action}:${s.status}`),
      ['Cordon:DryRun'],
    );
    const node = await h.get(n);
    assert.equal(node.unschedulable, false);
    assert.equal(node.annotations[TICKET_ANNOTATION], undefined);
  });

  it('a corrupt ticket is reported and never overwritten', async () => {
    const h = await createSimHarness();
    const n = h.node(5);
    const node = await h.get(n);
    await h.world.cluster.patchNodeAnnotations(
      n,
      { [TICKET_ANNOTATION]: 'condition: [broken' },
      node.resourceVersion,
      h.signal,
    );
    h.world.faults.injectFault({
      condition: 'Xid79GPULost',
      node: n,
      device: '1',
      atMs: h.clock.now(),
    });
    await h.run(5 * MIN);
    assert.equal((await h.get(n)).annotations[TICKET_ANNOTATION], 'condition: [broken');
    assert.match(await h.metrics.registry.metrics(), /aegis_ticket_corrupt_total [1-9]/);
  });

  it('a condition with no actionable SOP does not starve the others on its node', async () => {
    const h = await createSimHarness();
    const n = h.node(6);
    h.world.faults.injectFault({
      condition: 'HighGpuTemp',
      node: n,
      device: '2',
      atMs: h.clock.now(),
    });
    h.world.faults.injectFault({
      condition: 'Xid79GPULost',
      node: n,
      device: '3',
      atMs: h.clock.now(),
    });
    await h.run(5 * MIN);
    assert.ok(h.actions(n).includes('Cordon'));
  });
});
