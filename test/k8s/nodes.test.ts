/**
 * Node reads and writes of the real adapter on a real apiserver, as the controller's
 * ServiceAccount under the shipped RBAC: conversion, cordon, labels, optimistic concurrency on
 * annotations (a stale resourceVersion is a 409; racing writers both keep their keys), errors,
 * and Events.
 */
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, isHealError } from '../../src/core/errors.js';
import type { NodeClient } from '../../src/k8s/cluster.js';
import { createKubeCluster } from '../../src/k8s/kube-cluster.js';
import {
  JOB_TEMPLATES_DIR,
  createNode,
  deadline,
  startTestCluster,
  type TestCluster,
} from './setup.js';

let cluster: TestCluster;

before(async () => {
  cluster = await startTestCluster();
  await createNode(cluster, 'gpu-1', { labels: { 'topology.aegis.io/rack': 'r1' } });
  await createNode(cluster, 'gpu-2');
  await createNode(cluster, 'gpu-3');
});

after(async () => {
  await cluster.stop();
});

/** Sets the Ready condition through the status subresource, as a kubelet would (admin). */
async function setReady(node: string, status: 'True' | 'False'): Promise<void> {
  const now = new Date();
  await cluster.adminCore.patchNodeStatus({
    name: node,
    body: [
      {
        op: 'add',
        path: '/status/conditions',
        value: [
          {
            type: 'Ready',
            status,
            reason: 'Test',
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
      },
    ],
  });
}

/**
 * The read-modify-write of the ticket store (STYLE B11 #8): re-read and re-apply on conflict.
 * Returns how many conflicts it met.
 */
async function writeKey(
  nodes: NodeClient,
  node: string,
  key: string,
  value: string,
): Promise<number> {
  for (let conflicts = 0; conflicts < 20; conflicts++) {
    const current = await nodes.getNode(node, deadline());
    try {
      await nodes.patchNodeAnnotations(node, { [key]: value }, current.resourceVersion, deadline());
      return conflicts;
    } catch (err) {
      if (!isHealError(err, ErrorCode.K8sConflict)) throw err;
    }
  }
  throw new Error('too many conflicts');
}

describe('nodes', () => {
  it('lists nodes in our terms, Ready from the Ready condition', async () => {
    await setReady('gpu-1', 'True');
    await setReady('gpu-2', 'False');
    const kube = cluster.controller();
    const nodes = await kube.listNodes(deadline());
    const byName = new Map(nodes.map((n) => [n.name, n]));
    assert.equal(byName.get('gpu-1')?.ready, true);
    assert.equal(byName.get('gpu-2')?.ready, false);
    assert.equal(byName.get('gpu-3')?.ready, 'Unknown', 'no Ready condition yet');
    assert.equal(byName.get('gpu-1')?.labels['topology.aegis.io/rack'], 'r1');
    assert.match(byName.get('gpu-1')?.resourceVersion ?? '', /^\d+$/);
  });

  it('getNode of a missing node is K8S_NOT_FOUND', async () => {
    await assert.rejects(cluster.controller().getNode('nope', deadline()), (err: unknown) =>
      isHealError(err, ErrorCode.K8sNotFound),
    );
  });

  it('cordons and uncordons', async () => {
    const kube = cluster.controller();
    assert.equal((await kube.setUnschedulable('gpu-1', true, deadline())).unschedulable, true);
    assert.equal((await kube.getNode('gpu-1', deadline())).unschedulable, true);
    assert.equal((await kube.setUnschedulable('gpu-1', false, deadline())).unschedulable, false);
  });

  it('merges labels and removes them with null', async () => {
    const kube = cluster.controller();
    await kube.patchNodeLabels('gpu-3', { 'aegis.io/gpfs-unavailable': 'true' }, deadline());
    const after = await kube.patchNodeLabels(
      'gpu-3',
      { 'aegis.io/gpfs-unavailable': null },
      deadline(),
    );
    assert.equal(after.labels['aegis.io/gpfs-unavailable'], undefined);
    assert.equal(after.labels['kubernetes.io/hostname'], undefined);
  });

  it('an annotation patch with a stale resourceVersion is K8S_CONFLICT and changes nothing', async () => {
    const kube = cluster.controller();
    const read = await kube.getNode('gpu-2', deadline());
    const written = await kube.patchNodeAnnotations(
      'gpu-2',
      { 'aegis.io/a': '1' },
      read.resourceVersion,
      deadline(),
    );
    assert.equal(written.annotations['aegis.io/a'], '1');
    await assert.rejects(
      kube.patchNodeAnnotations('gpu-2', { 'aegis.io/b': '1' }, read.resourceVersion, deadline()),
      (err: unknown) => isHealError(err, ErrorCode.K8sConflict),
    );
    const now = await kube.getNode('gpu-2', deadline());
    assert.equal(now.annotations['aegis.io/b'], undefined);
    await assert.rejects(
      kube.patchNodeAnnotations('gpu-2', { 'aegis.io/b': '1' }, '', deadline()),
      (err: unknown) => isHealError(err, ErrorCode.InvalidInput),
    );
    const removed = await kube.patchNodeAnnotations(
      'gpu-2',
      { 'aegis.io/a': null },
      now.resourceVersion,
      deadline(),
    );
    assert.equal(removed.annotations['aegis.io/a'], undefined);
  });

  it('a writer that loses a race re-reads and re-applies: both keys survive', async () => {
    const a = cluster.controller();
    const b = cluster.controller();
    const stale = await a.getNode('gpu-3', deadline());
    await b.patchNodeAnnotations(
      'gpu-3',
      { 'aegis.io/writer-b': 'b0' },
      stale.resourceVersion,
      deadline(),
    );
    // `a` still holds `stale`: its first attempt conflicts, the retry succeeds.
    await assert.rejects(
      a.patchNodeAnnotations(
        'gpu-3',
        { 'aegis.io/writer-a': 'a0' },
        stale.resourceVersion,
        deadline(),
      ),
      (err: unknown) => isHealError(err, ErrorCode.K8sConflict),
    );
    assert.equal(await writeKey(a, 'gpu-3', 'aegis.io/writer-a', 'a0'), 0);
    const node = await a.getNode('gpu-3', deadline());
    assert.equal(node.annotations['aegis.io/writer-a'], 'a0');
    assert.equal(node.annotations['aegis.io/writer-b'], 'b0');
  });

  it('two writers racing on different keys never lose an update', async (t) => {
    const a = cluster.controller();
    const b = cluster.controller();
    const rounds = 15;
    const run = async (nodes: NodeClient, key: string): Promise<number> => {
      let conflicts = 0;
      for (let i = 0; i < rounds; i++) conflicts += await writeKey(nodes, 'gpu-1', key, String(i));
      return conflicts;
    };
    const [ca, cb] = await Promise.all([run(a, 'aegis.io/race-a'), run(b, 'aegis.io/race-b')]);
    t.diagnostic(`conflicts met and retried: a=${ca} b=${cb}`);
    const node = await a.getNode('gpu-1', deadline());
    assert.equal(node.annotations['aegis.io/race-a'], String(rounds - 1));
    assert.equal(node.annotations['aegis.io/race-b'], String(rounds - 1));
  });

  it('aborts an in-flight request with the caller reason; its own deadline is K8S_UNAVAILABLE', async () => {
    const { stack } = cluster;
    await assert.rejects(cluster.controller().listNodes(AbortSignal.timeout(1)), {
      name: 'TimeoutError',
    });
    const hasty = createKubeCluster({
      kubeConfig: { server: stack.server, token: stack.controllerToken, caData: stack.caData },
      leaseNamespace: 'monitoring',
      jobTemplatesDir: JOB_TEMPLATES_DIR,
      requestTimeoutMs: 1,
    });
    await assert.rejects(hasty.listNodes(deadline()), (err: unknown) =>
      isHealError(err, ErrorCode.K8sUnavailable),
    );
  });

  it('its calls share one keep-alive connection instead of a TLS handshake each', async () => {
    const { stack } = cluster;
    const client = createKubeCluster({
      kubeConfig: { server: stack.server, token: stack.controllerToken, caData: stack.caData },
      leaseNamespace: 'monitoring',
      jobTemplatesDir: JOB_TEMPLATES_DIR,
      watchNodes: false,
    });
    const port = new URL(stack.server).port;
    // Per request to the apiserver: did it go over a connection opened before (keep-alive)?
    const reused: boolean[] = [];
    const onResponse = (msg: unknown): void => {
      const req = (msg as { request: ClientRequest }).request;
      // Only this test's calls (other clients of earlier tests may still be watching).
      const ours = req.path.startsWith('/api/v1/nodes/gpu-2');
      if (ours && String(req.socket?.remotePort) === port) reused.push(req.reusedSocket);
    };
    subscribe('http.client.response.finish', onResponse);
    try {
      for (let i = 0; i < 10; i++) {
        await client.getNode('gpu-2', deadline());
        await client.patchNodeLabels('gpu-2', { 'aegis.io/probe': String(i) }, deadline());
      }
    } finally {
      unsubscribe('http.client.response.finish', onResponse);
      await client.patchNodeLabels('gpu-2', { 'aegis.io/probe': null }, deadline());
    }
    assert.equal(reused.length, 20);
    // The first request opens the connection; the other 19 go over it.
    assert.equal(reused.filter((r) => !r).length, 1, `reused: ${reused.join(' ')}`);
  });

  it('an unreachable server is K8S_UNAVAILABLE', async () => {
    const down = createKubeCluster({
      kubeConfig: { server: 'https://127.0.0.1:1', token: 'x', skipTLSVerify: true },
      leaseNamespace: 'monitoring',
      jobTemplatesDir: JOB_TEMPLATES_DIR,
    });
    await assert.rejects(down.getNode('gpu-1', deadline()), (err: unknown) =>
      isHealError(err, ErrorCode.K8sUnavailable),
    );
  });

  it('honours an aborted signal without calling the server', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(cluster.controller().listNodes(ac.signal), { name: 'AbortError' });
  });
});

describe('events', () => {
  it('creates a core/v1 Event on the Node, from component aegis', async () => {
    const kube = cluster.controller();
    await kube.emitEvent(
      {
        node: 'gpu-1',
        type: 'Warning',
        reason: 'AegisCordon',
        message: 'cordoned for GpuXidFatal',
      },
      deadline(),
    );
    await kube.emitEvent(
      { node: 'gpu-1', type: 'Normal', reason: 'AegisUncordon', message: 'ok' },
      deadline(),
    );
    const events = await cluster.adminCore.listNamespacedEvent({
      namespace: 'default',
      fieldSelector: 'involvedObject.kind=Node,involvedObject.name=gpu-1',
    });
    const reasons = events.items.map((e) => e.reason).sort();
    assert.deepEqual(reasons, ['AegisCordon', 'AegisUncordon']);
    const event = events.items.find((e) => e.reason === 'AegisCordon');
    assert.ok(event !== undefined);
    assert.equal(event.type, 'Warning');
    assert.equal(event.source?.component, 'aegis');
    assert.equal(event.involvedObject.uid, 'gpu-1');
    assert.equal(event.message, 'cordoned for GpuXidFatal');
  });
});
