/**
 * Drains that respect training jobs on a real control plane, as the controller ServiceAccount
 * under the shipped RBAC and admission policies: a pod annotated for checkpoint is asked (the
 * annotation written on it), acknowledges, and only then is evicted; a pod that never answers is
 * evicted at its deadline; the controller may change no pod annotation but its drain ones (the
 * shipped policy aegis-controller-pod-annotations); a grace-mode eviction carries its grace period.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { systemClock } from '../../src/core/clock.js';
import {
  CHECKPOINT_DONE,
  CHECKPOINT_OPT_IN,
  DEFAULT_DRAIN_POLICY,
  DRAIN_REQUEST_ID,
  DRAIN_REQUESTED,
  drainNode,
  type DrainPolicy,
} from '../../src/engine/drain-checkpoint.js';
import type { ClusterClient, EvictionResult } from '../../src/k8s/cluster.js';
import {
  createNode,
  createObject,
  deadline,
  eventually,
  startTestCluster,
  type TestCluster,
} from './setup.js';

const NS = 'default';
let cluster: TestCluster;

before(async () => {
  cluster = await startTestCluster({ kcm: true, kwok: true });
});

after(async () => {
  await cluster.stop();
});

async function createPod(
  node: string,
  name: string,
  annotations: Record<string, string>,
  o: { running?: boolean } = {},
): Promise<void> {
  await createObject(cluster.admin, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, annotations },
    spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox' }] },
  });
  if (o.running === false) return;
  await eventually(`${name} Running`, async () => {
    const p = await cluster.adminCore.readNamespacedPod({ name, namespace: NS });
    return p.status?.phase === 'Running' ? true : undefined;
  });
}

/** The controller's client, recording when each pod was evicted. */
function recordingController(): { kube: ClusterClient; evictedAt: Map<string, number> } {
  const inner = cluster.controller();
  const evictedAt = new Map<string, number>();
  const kube = new Proxy(inner, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (prop === 'evictPod')
        return async (ns: string, name: string, signal: AbortSignal): Promise<EvictionResult> => {
          const result = await inner.evictPod(ns, name, signal);
          if (result === 'evicted') evictedAt.set(name, Date.now());
          return result;
        };
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
  return { kube, evictedAt };
}

const POLICY: DrainPolicy = {
  checkpoint: { ...DEFAULT_DRAIN_POLICY.checkpoint, mode: 'annotation', timeoutMs: 12_000 },
  waitForCompletionMaxMs: 0,
};

describe('checkpoint drain on a real apiserver', () => {
  it('asks the annotated pod, evicts it after its acknowledgement; the silent one at its deadline', async () => {
    const node = 'kw-ckpt';
    await createNode(cluster, node, { kwok: true });
    await createPod(node, 'trainer', { [CHECKPOINT_OPT_IN]: 'true' });
    await createPod(node, 'silent', { [CHECKPOINT_OPT_IN]: 'true' });
    await createPod(node, 'plain', {});
    const { kube, evictedAt } = recordingController();
    const started = Date.now();
    const drained = drainNode(
      { cluster: kube, clock: systemClock, policy: POLICY, drainTimeoutMs: 20_000 },
      node,
      deadline(60_000),
      { seq: 5 },
    );
    // The training job: sees the request, checkpoints (2 s), then says so.
    const request = await eventually('the drain request on the trainer', async () => {
      const p = await cluster.adminCore.readNamespacedPod({ name: 'trainer', namespace: NS });
      const a = p.metadata?.annotations ?? {};
      return a[DRAIN_REQUESTED] === undefined ? undefined : a;
    });
    assert.equal(request[DRAIN_REQUEST_ID], `${node}/5`);
    const deadlineMs = Date.parse(request[DRAIN_REQUESTED] ?? '');
    assert.ok(deadlineMs >= started + 12_000 - 1_000 && deadlineMs <= started + 14_000);
    await delay(2_000);
    const during = await cluster.adminCore.readNamespacedPod({ name: 'trainer', namespace: NS });
    assert.equal(during.metadata?.deletionTimestamp, undefined, 'not evicted before its answer');
    const ackAt = Date.now();
    await cluster.adminCore.patchNamespacedPod({
      name: 'trainer',
      namespace: NS,
      body: [
        {
          op: 'add',
          path: `/metadata/annotations/${CHECKPOINT_DONE.replace('/', '~1')}`,
          value: new Date().toISOString(),
        },
      ],
    });
    const outcome = await drained;
    assert.equal(outcome.status, 'Succeeded', outcome.message);
    assert.match(outcome.message ?? '', /1 acknowledged/);
    assert.match(outcome.message ?? '', /1 evicted at the deadline/);
    const trainerAt = evictedAt.get('trainer');
    assert.ok(trainerAt !== undefined && trainerAt >= ackAt, 'evicted after the acknowledgement');
    assert.ok(trainerAt < deadlineMs, 'not held to the deadline once it answered');
    const silentAt = evictedAt.get('silent');
    assert.ok(silentAt !== undefined && silentAt >= deadlineMs, 'the silent pod at its deadline');
    const plainAt = evictedAt.get('plain');
    assert.ok(plainAt !== undefined && plainAt < ackAt, 'a pod not opted in goes at once');
  });

  it('the controller may change only its drain annotations on a pod', async () => {
    const node = 'kw-ckpt-policy';
    await createNode(cluster, node, { kwok: true });
    await createPod(node, 'guarded', { owner: 'tenant' });
    const kube = cluster.controller();
    const annotate = kube.patchPodAnnotations?.bind(kube);
    assert.ok(annotate !== undefined);
    const ok = await annotate(
      NS,
      'guarded',
      { [DRAIN_REQUESTED]: '2030-01-01T00:00:00Z' },
      deadline(),
    );
    assert.equal(ok?.annotations?.[DRAIN_REQUESTED], '2030-01-01T00:00:00Z');
    await assert.rejects(
      annotate(NS, 'guarded', { owner: 'aegis' }, deadline()),
      /aegis-controller-pod-annotations|may change only its drain annotations/,
    );
    await assert.rejects(annotate(NS, 'guarded', { owner: null }, deadline()), /drain annotations/);
    assert.equal(await annotate(NS, 'no-such-pod', { [DRAIN_REQUESTED]: null }, deadline()), null);
  });

  it('a grace-mode eviction carries its grace period to the pod', async () => {
    // A node no kubelet serves: the evicted pod stays terminating, so its deletion grace can be read.
    const node = 'plain-ckpt-grace';
    await createNode(cluster, node);
    await createPod(node, 'prestop', { [CHECKPOINT_OPT_IN]: 'true' }, { running: false });
    const kube = cluster.controller();
    const evict = kube.evictPodWithGrace?.bind(kube);
    assert.ok(evict !== undefined);
    assert.equal(await evict(NS, 'prestop', 600, deadline()), 'evicted');
    const p = await cluster.adminCore.readNamespacedPod({ name: 'prestop', namespace: NS });
    assert.ok(p.metadata?.deletionTimestamp !== undefined);
    assert.equal(p.metadata.deletionGracePeriodSeconds, 600);
    await cluster.adminCore.deleteNamespacedPod({
      name: 'prestop',
      namespace: NS,
      gracePeriodSeconds: 0,
    });
  });
});
