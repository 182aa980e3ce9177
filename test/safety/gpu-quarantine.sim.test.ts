/**
 * GPU-level quarantine on the simulated fleet with the real engine: a one-GPU fault ends with
 * that device tainted (a DeviceTaintRule, or the node taint where the apiserver serves no
 * DeviceTaintRules) and the node still schedulable; the release after the repair removes exactly
 * what Aegis added; two faulty GPUs cordon the node as before.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultConfig } from '../../src/config/schema.js';
import { QUARANTINE_ANNOTATION } from '../../src/sop/quarantine.js';
import { createSimHarness, type SimHarness } from '../helpers/sim-harness.js';

const MIN = 60_000;

async function quarantined(mechanism: 'auto' | 'nodeTaint', served = true) {
  const h = await createSimHarness({
    nodes: 6,
    config: { quarantine: { ...defaultConfig().quarantine, enabled: true, mechanism } },
  });
  h.world.cluster.serveDeviceTaintRules(served);
  return h;
}

function inject(h: SimHarness, node: string, condition: string, device: string): string {
  return h.world.faults.injectFault({
    condition,
    device,
    node,
    atMs: h.clock.now(),
    persistence: 'survives-reboot',
  });
}

describe('GPU-level quarantine (simulator)', () => {
  it('a one-GPU fault: a DeviceTaintRule names the device, the node stays schedulable', async () => {
    const h = await quarantined('auto');
    const node = h.node(2);
    const fault = inject(h, node, 'GpuRowRemappingFailure', '5');
    await h.run(20 * MIN, 10_000);
    await h.engine.controller.idle();
    const info = await h.get(node);
    assert.equal(info.unschedulable, false, 'node not cordoned');
    const rules = h.world.cluster.deviceTaintRules();
    assert.equal(rules.length, 1);
    const rule = rules[0];
    assert.ok(rule !== undefined);
    assert.equal(rule.pool, node);
    assert.equal(rule.device, 'gpu-5');
    assert.equal(rule.effect, 'NoSchedule');
    assert.deepEqual(h.actions(node), ['Quarantine', 'Diagnose', 'HandToHuman']);
    assert.ok(!h.actions(node).includes('Cordon'));
    const t = await h.ticket(node);
    assert.ok(
      t?.workflows.some((w) => w.action === 'Quarantine' && w.params?.['device'] === '5'),
      'the ticket names the device',
    );
    assert.match(t?.workflows.find((w) => w.action === 'Quarantine')?.message ?? '', /GPU 5/);

    // The GPU is replaced (the fault clears): the rule and the record go, nothing else changes.
    h.world.faults.clearFault(fault, h.clock.now());
    await h.run(30 * MIN, 10_000);
    await h.engine.controller.idle();
    assert.deepEqual(h.world.cluster.deviceTaintRules(), []);
    const after = await h.get(node);
    assert.equal(QUARANTINE_ANNOTATION in after.annotations, false);
    assert.equal(after.unschedulable, false);
  });

  it('no DeviceTaintRules served: the node taint names the device, release removes only it', async () => {
    const h = await quarantined('auto', false);
    const node = h.node(1);
    // Someone else's taint stays untouched.
    const before = await h.get(node);
    await h.world.cluster.deviceTaints.setNodeTaints(
      node,
      [{ key: 'example.com/other', value: 'x', effect: 'NoSchedule' }],
      before.resourceVersion,
      h.signal,
    );
    const fault = inject(h, node, 'Xid79GPULost', '4');
    await h.run(20 * MIN, 10_000);
    await h.engine.controller.idle();
    const info = await h.get(node);
    assert.equal(info.unschedulable, false);
    assert.deepEqual(info.taints.map((t) => `${t.key}=${t.value ?? ''}:${t.effect}`).sort(), [
      'aegis.io/gpu-quarantine=4:NoSchedule',
      'example.com/other=x:NoSchedule',
    ]);
    h.world.faults.clearFault(fault, h.clock.now());
    await h.run(30 * MIN, 10_000);
    await h.engine.controller.idle();
    const after = await h.get(node);
    assert.deepEqual(
      after.taints.map((t) => `${t.key}=${t.value ?? ''}:${t.effect}`),
      ['example.com/other=x:NoSchedule'],
    );
    assert.equal(QUARANTINE_ANNOTATION in after.annotations, false);
  });

  it('two faulty GPUs on one node: node-wide steps (cordon), no quarantine', async () => {
    const h = await quarantined('auto');
    const node = h.node(3);
    inject(h, node, 'Xid79GPULost', '1');
    inject(h, node, 'GpuRowRemappingFailure', '6');
    await h.run(5 * MIN, 10_000);
    await h.engine.controller.idle();
    assert.equal((await h.get(node)).unschedulable, true);
    assert.deepEqual(h.world.cluster.deviceTaintRules(), []);
    assert.equal(h.actions(node)[0], 'Cordon');
  });

  it('quarantine off (the default): the node is cordoned as before', async () => {
    const h = await createSimHarness({ nodes: 6 });
    const node = h.node(2);
    inject(h, node, 'GpuRowRemappingFailure', '5');
    await h.run(5 * MIN, 10_000);
    await h.engine.controller.idle();
    assert.equal((await h.get(node)).unschedulable, true);
    assert.deepEqual(h.world.cluster.deviceTaintRules(), []);
  });

  it('quarantine.nodeWide: taint — an Aegis cordon carries the NoSchedule taint; the uncordon removes it', async () => {
    const h = await createSimHarness({
      nodes: 6,
      config: { quarantine: { ...defaultConfig().quarantine, nodeWide: 'taint' } },
    });
    const node = h.node(2);
    const fault = h.world.faults.injectFault({
      condition: 'Xid74NVLinkError',
      device: '1',
      node,
      atMs: h.clock.now(),
      persistence: 'until-reboot',
    });
    await h.run(2 * MIN, 10_000);
    const cordoned = await h.get(node);
    assert.equal(cordoned.unschedulable, true);
    assert.ok(
      cordoned.taints.some((t) => t.key === 'aegis.io/quarantine' && t.effect === 'NoSchedule'),
      JSON.stringify(cordoned.taints),
    );
    h.world.faults.clearFault(fault, h.clock.now());
    await h.run(90 * MIN, 10_000);
    await h.engine.controller.idle();
    const back = await h.get(node);
    assert.equal(back.unschedulable, false, h.actions(node).join(' '));
    assert.deepEqual(back.taints, []);
  });
});
