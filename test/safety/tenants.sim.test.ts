/**
 * Tenants cannot get healthy nodes cordoned (issue 12, item 8), on the simulator with the real
 * engine: a tenant's pod held Terminating by its finalizer, tenants' pods failing with StartError
 * and a node busy with its own GPU jobs leave the node alone; a kubelet that stops acting is
 * node-level evidence, and then only system pods past their grace period, without finalizers, are
 * force-deleted. Tenants' pods are never touched.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SYSTEM_NAMESPACES } from '../../src/catalogue/namespaces.js';
import type { WriteRecord } from '../../src/sim/sim-cluster.js';
import { hold } from '../../src/sim/track.js';
import { createSimHarness, type SimHarness } from '../helpers/sim-harness.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const FINALIZER = 'example.com/checkpoint-upload';

/** The engine's own writes of one method (not the operators' or the kubelets'). */
function engineWrites(h: SimHarness, method: string, target?: string): WriteRecord[] {
  return h.world.cluster
    .writes()
    .filter(
      (w) =>
        w.by === 'client' && w.method === method && (target === undefined || w.target === target),
    );
}

function cordonsOf(h: SimHarness, node: string): number {
  return engineWrites(h, 'setUnschedulable', node).filter((w) => w.detail === 'true').length;
}

/** Pods of a node as the API lists them. */
async function podsOn(
  h: SimHarness,
  node: string,
): Promise<Map<string, { finalizers?: readonly string[]; deletionTimestampMs?: number }>> {
  const pods = await h.world.cluster.listPodsOnNode(node, h.signal);
  return new Map(pods.map((p) => [`${p.namespace}/${p.name}`, p]));
}

describe('tenants on the simulator: a healthy node is never cordoned for a tenant', () => {
  it("a tenant's pod held Terminating by its finalizer: no cordon, no force delete, no ticket", async () => {
    const h = await createSimHarness({ nodes: 4 });
    const node = h.node(1);
    const pods = h.world.cluster.tenantPods();
    pods.addPod({
      node,
      namespace: 'team-a',
      name: 'train-0',
      finalizers: [FINALIZER],
      ownerKind: 'Job',
      owner: 'train',
    });
    pods.addPod({
      node,
      namespace: 'team-a',
      name: 'train-1',
      finalizers: [FINALIZER],
      ownerKind: 'Job',
      owner: 'train',
    });
    await h.run(MIN, 30_000);
    // The tenant deletes its pods; its finalizer's controller is gone, so they stay Terminating.
    h.world.cluster.tenantPods().delete('team-a', 'train-0', 30);
    h.world.cluster.tenantPods().delete('team-a', 'train-1', 30);
    await h.run(3 * HOUR, 30_000);

    const left = await podsOn(h, node);
    assert.deepEqual(left.get('team-a/train-0')?.finalizers, [FINALIZER], 'the pod is still held');
    assert.ok(left.get('team-a/train-1')?.deletionTimestampMs !== undefined);
    assert.equal(cordonsOf(h, node), 0, 'the node was cordoned for a tenant pod');
    assert.deepEqual(engineWrites(h, 'deletePod'), [], 'the engine deleted pods');
    assert.equal(await h.ticket(node), null);
    assert.equal((await h.get(node)).unschedulable, false);

    // Once the tenant removes the finalizer the pod goes (the simulator honours finalizers).
    h.world.cluster.tenantPods().removeFinalizers('team-a', 'train-0');
    assert.equal((await podsOn(h, node)).has('team-a/train-0'), false);
  });

  it('a kubelet that stops acting cordons the node; only system pods past grace without finalizers are force-deleted', async () => {
    const h = await createSimHarness({ nodes: 4 });
    const node = h.node(2);
    const pods = h.world.cluster.tenantPods();
    const before = await podsOn(h, node);
    const exporter = [...before.keys()].find((k) => k.startsWith('monitoring/node-exporter-'));
    const plugin = [...before.keys()].find((k) =>
      k.startsWith('gpu-operator/nvidia-device-plugin-ds-'),
    );
    assert.ok(exporter !== undefined && plugin !== undefined, [...before.keys()].join(', '));
    pods.addPod({
      node,
      namespace: 'team-a',
      name: 'held-0',
      finalizers: [FINALIZER],
      ownerKind: 'Job',
      owner: 'held',
    });
    pods.addPod({
      node,
      namespace: 'team-b',
      name: 'infer-0',
      ownerKind: 'ReplicaSet',
      owner: 'infer-6f',
    });
    pods.addPod({ node, namespace: 'team-c', name: 'slow-0', ownerKind: 'Job', owner: 'slow' });
    pods.addPod({
      node,
      namespace: 'kube-system',
      name: 'csi-node-held',
      finalizers: [FINALIZER],
      ownerKind: 'DaemonSet',
      owner: 'csi-node',
    });
    await h.run(MIN, 30_000);

    // The node's runtime hangs: nothing being deleted there stops any more.
    pods.setKubeletStuck(node, true);
    const [exporterNs = '', exporterName = ''] = exporter.split('/');
    pods.delete(exporterNs, exporterName, 30); // a DaemonSet rollout replaces the pod
    pods.delete('kube-system', 'csi-node-held', 30);
    pods.delete('team-a', 'held-0', 30);
    pods.delete('team-b', 'infer-0', 30);
    pods.delete('team-c', 'slow-0', 4 * 3600); // a long grace period of its own
    await h.run(2 * HOUR, 30_000);

    assert.equal(cordonsOf(h, node), 1, 'the stuck kubelet is node-level evidence');
    const deleted = engineWrites(h, 'deletePod').map((w) => `${w.target} ${w.detail}`);
    assert.deepEqual(
      deleted,
      [`${exporter} grace=0`],
      'only the system pod past grace, without finalizers',
    );
    const left = await podsOn(h, node);
    for (const tenant of [
      'team-a/held-0',
      'team-b/infer-0',
      'team-c/slow-0',
      'kube-system/csi-node-held',
    ])
      assert.ok(left.has(tenant), `${tenant} was removed`);
    const ticket = await h.ticket(node);
    const step = ticket?.workflows.find((w) => w.action === 'ForceDeletePods');
    assert.match(step?.message ?? '', /force-deleted 1 system pods.*left 4 to their owners/);
    assert.ok(h.actions(h.node(1)).length === 0 && h.actions(h.node(3)).length === 0);
  });

  it('a namespace the site lists in systemNamespaces is treated as a system one (PromQL and force delete)', async () => {
    const h = await createSimHarness({
      nodes: 4,
      config: { systemNamespaces: [...DEFAULT_SYSTEM_NAMESPACES, 'storage-*'] },
    });
    const node = h.node(3);
    const pods = h.world.cluster.tenantPods();
    pods.addPod({
      node,
      namespace: 'storage-csi',
      name: 'csi-node-0',
      ownerKind: 'DaemonSet',
      owner: 'csi-node',
    });
    pods.addPod({ node, namespace: 'team-a', name: 'train-0', ownerKind: 'Job', owner: 'train' });
    await h.run(MIN, 30_000);
    pods.setKubeletStuck(node, true);
    pods.delete('storage-csi', 'csi-node-0', 30);
    pods.delete('team-a', 'train-0', 30);
    await h.run(2 * HOUR, 30_000);
    assert.equal(cordonsOf(h, node), 1);
    assert.deepEqual(
      engineWrites(h, 'deletePod').map((w) => w.target),
      ['storage-csi/csi-node-0'],
    );
    assert.ok((await podsOn(h, node)).has('team-a/train-0'));
  });

  it("tenants' pods failing with StartError: no cordon, no kubelet restart", async () => {
    const h = await createSimHarness({ nodes: 4 });
    const node = h.node(1);
    const now = h.clock.now();
    const tenants = [
      ['team-a', 'a-0', 'Job', 'a'],
      ['team-b', 'b-0', 'ReplicaSet', 'b-5d8f'],
      ['default', 'c-0', 'StatefulSet', 'c'],
    ] as const;
    for (const [namespace, pod, kind, owner] of tenants) {
      const info = h.world.store.create(
        'kube_pod_info',
        node,
        { namespace, pod, node, created_by_kind: kind, created_by_name: owner },
        false,
      );
      const reason = h.world.store.create(
        'kube_pod_container_status_terminated_reason',
        node,
        { namespace, pod, container: 'main', reason: 'StartError' },
        false,
      );
      hold(info, 'tenant', 1, now);
      hold(reason, 'tenant', 1, now);
    }
    await h.run(HOUR, 30_000);
    assert.equal(cordonsOf(h, node), 0);
    assert.deepEqual(engineWrites(h, 'createJob'), []);
    assert.equal(await h.ticket(node), null);
  });

  it('CPU and memory pressure on a node whose every GPU is at work: left alone (an idle one is cordoned)', async () => {
    // Every node may be cordoned: each assertion below stands on its own.
    const h = await createSimHarness({ nodes: 6, config: { safety: { maxCordonedFraction: 1 } } });
    const [cpuBusy, memBusy, cpuIdle] = [h.node(1), h.node(2), h.node(3)];
    const t0 = h.clock.now();
    for (const node of [cpuBusy, memBusy]) {
      const gpus = h.world.store.match('DCGM_FI_DEV_GPU_UTIL', node, {});
      assert.ok(gpus.length >= 1, 'the node has GPUs');
      gpus.forEach((track, i) => {
        hold(track, 'training', 80 + i, t0);
      });
    }
    h.world.faults.injectFault({ condition: 'CPUPressure', node: cpuBusy, atMs: t0 });
    h.world.faults.injectFault({ condition: 'MemoryPressure', node: memBusy, atMs: t0 });
    h.world.faults.injectFault({ condition: 'CPUPressure', node: cpuIdle, atMs: t0 });
    await h.run(30 * MIN, 30_000);
    assert.equal(cordonsOf(h, cpuBusy), 0, 'busy with its own GPU jobs (CPU)');
    assert.equal(cordonsOf(h, memBusy), 0, 'busy with its own GPU jobs (memory)');
    assert.equal(cordonsOf(h, cpuIdle), 1, 'the same pressure with idle GPUs is acted on');
  });
});
