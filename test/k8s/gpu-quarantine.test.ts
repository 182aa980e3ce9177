/**
 * GPU-level quarantine on a real control plane (Kubernetes 1.37: resource.k8s.io/v1
 * DeviceTaintRules are GA and served by default, no feature gate or runtime-config), the engine
 * running as the controller ServiceAccount under the shipped RBAC: an XID 79 on GPU 4 of a kwok
 * node ends with a DeviceTaintRule naming that device and the node still schedulable; once the GPU
 * is healthy again the release deletes exactly that rule (a rule of someone else stays). The
 * node-taint fallback is tried on the same apiserver through the controller's client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { defaultConfig } from '../../src/config/schema.js';
import { systemClock } from '../../src/core/clock.js';
import { createDeviceQuarantine } from '../../src/engine/quarantine.js';
import { QUARANTINE_ANNOTATION } from '../../src/sop/quarantine.js';
import type { SimWorld } from '../../src/sim/sim-world.js';
import {
  createFleetWorld,
  createKwokNodes,
  quickClearingCatalogue,
  startReplica,
  testConfig,
  ticketWhere,
  workflowLine,
  type Replica,
} from '../helpers/k8s-engine.js';
import { K8S_VERSION } from '../helpers/k8s-harness.js';
import { deadline, eventually, startTestCluster, type TestCluster } from './setup.js';

const NODE = 'gpu-node-0002';
const XID = 'Xid79GPULost';
const DTR = { group: 'resource.k8s.io', version: 'v1', plural: 'devicetaintrules' } as const;

let cluster: TestCluster;
let world: SimWorld;
let replica: Replica | undefined;
let custom: CustomObjectsApi;

interface RuleObject {
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: {
    deviceSelector?: { driver?: string; pool?: string; device?: string };
    taint?: { key?: string; value?: string; effect?: string };
  };
}

async function rules(): Promise<RuleObject[]> {
  const list = (await custom.listClusterCustomObject({ ...DTR })) as { items: RuleObject[] };
  return list.items;
}

before(async () => {
  cluster = await startTestCluster({ kcm: true, kwok: true });
  custom = cluster.admin.makeApiClient(CustomObjectsApi);
  world = createFleetWorld(3);
  await createKwokNodes(cluster, world);
  // A rule Aegis did not create: the release must leave it.
  await custom.createClusterCustomObject({
    ...DTR,
    body: {
      apiVersion: 'resource.k8s.io/v1',
      kind: 'DeviceTaintRule',
      metadata: { name: 'maintenance-by-hand' },
      spec: {
        deviceSelector: { driver: 'gpu.nvidia.com', pool: NODE, device: 'gpu-7' },
        taint: { key: 'example.com/maintenance', effect: 'NoSchedule' },
      },
    },
  });
});

after(async () => {
  await replica?.stop();
  await cluster.stop();
});

describe(`GPU-level quarantine on a real API server (${K8S_VERSION})`, () => {
  it('the apiserver serves resource.k8s.io/v1 devicetaintrules (discovery, as the controller)', async () => {
    const api = cluster.controller().deviceTaints;
    assert.ok(api !== undefined);
    assert.equal(await api.servesDeviceTaintRules(deadline()), true);
  });

  let faultId = '';
  it('a one-GPU fault: a DeviceTaintRule names the device, the node is not cordoned', async (t) => {
    replica = startReplica({
      cluster,
      world,
      holder: 'aegis-quarantine',
      config: testConfig({ 'quarantine.enabled': true }),
      catalogue: quickClearingCatalogue([XID]),
    });
    faultId = world.faults.injectFault({
      condition: XID,
      node: NODE,
      device: '4',
      atMs: Date.now(),
    });
    const ticket = await ticketWhere(cluster, NODE, 'Quarantine Succeeded', (tk) =>
      workflowLine(tk).includes('Quarantine Succeeded'),
    );
    const step = ticket.workflows.find((w) => w.action === 'Quarantine');
    assert.ok(step !== undefined);
    assert.equal(step.params?.['device'], '4', 'the ticket names the device');
    assert.match(step.message ?? '', /GPU 4 .*DeviceTaintRule aegis-gpu-gpu-node-0002-4/);
    const ours = (await rules()).filter((r) => r.metadata?.name !== 'maintenance-by-hand');
    assert.equal(ours.length, 1);
    const rule = ours[0];
    assert.ok(rule?.spec !== undefined);
    assert.deepEqual(rule.spec.deviceSelector, {
      driver: 'gpu.nvidia.com',
      pool: NODE,
      device: 'gpu-4',
    });
    assert.equal(rule.spec.taint?.effect, 'NoSchedule');
    assert.equal(rule.spec.taint.key, 'aegis.io/gpu-quarantine');
    assert.equal(rule.metadata?.labels?.['app.kubernetes.io/managed-by'], 'aegis');
    const node = await cluster.adminCore.readNode({ name: NODE });
    assert.notEqual(node.spec?.unschedulable, true, 'node still schedulable');
    // Neither the cordon's taint nor one of Aegis's: the device alone is out.
    assert.deepEqual(
      (node.spec?.taints ?? [])
        .map((x) => x.key)
        .filter((k) => k.startsWith('aegis.io/') || k === 'node.kubernetes.io/unschedulable'),
      [],
    );
    t.diagnostic(`rule ${String(rule.metadata.name)}`);
  });

  it('diagnoses, then hands the node to a human without draining or rebooting it', async () => {
    const t = await ticketWhere(cluster, NODE, 'HandToHuman', (tk) =>
      workflowLine(tk).includes('HandToHuman Succeeded'),
    );
    assert.deepEqual(workflowLine(t), [
      'Quarantine Succeeded',
      'Diagnose Succeeded',
      'HandToHuman Succeeded',
    ]);
    const node = await cluster.adminCore.readNode({ name: NODE });
    assert.notEqual(node.spec?.unschedulable, true);
  });

  it('healthy again: the release deletes exactly the rule Aegis created', async () => {
    assert.equal((await rules()).length, 2, 'Aegis rule and the hand-made one before the release');
    world.faults.clearFault(faultId, Date.now());
    await eventually(
      'quarantine released',
      async () => {
        const node = await cluster.adminCore.readNode({ name: NODE });
        const left = (await rules()).map((r) => r.metadata?.name ?? '');
        return QUARANTINE_ANNOTATION in (node.metadata?.annotations ?? {}) || left.length !== 1
          ? undefined
          : left;
      },
      40_000,
    ).then((left) => {
      assert.deepEqual(left, ['maintenance-by-hand']);
    });
    const node = await cluster.adminCore.readNode({ name: NODE });
    assert.notEqual(node.spec?.unschedulable, true);
  });

  it('node-taint fallback: the taint names the device; release removes only it', async () => {
    const kube = cluster.controller();
    const q = createDeviceQuarantine({
      cluster: kube,
      clock: systemClock,
      config: { ...defaultConfig().quarantine, enabled: true, mechanism: 'nodeTaint' },
    });
    assert.ok(q !== undefined);
    const other = 'gpu-node-0003';
    await cluster.adminCore.patchNode({
      name: other,
      body: [
        {
          op: 'add',
          path: '/spec/taints',
          value: [{ key: 'example.com/x', effect: 'NoSchedule' }],
        },
      ],
    });
    const out = await q.isolate({ node: other, device: '2', condition: XID }, deadline());
    assert.equal(out.status, 'Succeeded', out.message);
    const tainted = await cluster.adminCore.readNode({ name: other });
    assert.deepEqual(
      (tainted.spec?.taints ?? []).map((x) => `${x.key}=${x.value ?? ''}:${x.effect}`).sort(),
      ['aegis.io/gpu-quarantine=2:NoSchedule', 'example.com/x=:NoSchedule'],
    );
    assert.notEqual(tainted.spec?.unschedulable, true);
    assert.deepEqual(await q.release(other, undefined, deadline()), ['2']);
    const released = await cluster.adminCore.readNode({ name: other });
    assert.deepEqual(
      (released.spec?.taints ?? []).map((x) => x.key),
      ['example.com/x'],
    );
    assert.equal(QUARANTINE_ANNOTATION in (released.metadata?.annotations ?? {}), false);
  });
});
