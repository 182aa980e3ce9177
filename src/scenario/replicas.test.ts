import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isHealError } from '../core/errors.js';
import type { ClusterClient } from '../k8s/cluster.js';
import { processCluster } from './replicas.js';

describe('processCluster: what an ended process can still do', () => {
  it('passes every call through while the process lives, and refuses every one after', async () => {
    const calls: string[] = [];
    const inner = new Proxy({} as ClusterClient, {
      get: (_t, method: string) => () => {
        calls.push(method);
        return Promise.resolve(undefined);
      },
    });
    let alive = true;
    const cluster = processCluster(inner, () => alive);
    const signal = new AbortController().signal;
    const everyCall: readonly (() => Promise<unknown>)[] = [
      () => cluster.listNodes(signal),
      () => cluster.getNode('n', signal),
      () => cluster.setUnschedulable('n', true, signal),
      () => cluster.patchNodeAnnotations('n', {}, '1', signal),
      () => cluster.patchNodeLabels('n', {}, signal),
      () => cluster.listPodsOnNode('n', signal),
      () => cluster.evictPod('ns', 'p', signal),
      () => cluster.deletePod('ns', 'p', 0, signal),
      () =>
        cluster.createJob(
          { kind: 'restart_node', name: 'j', node: 'n', params: {}, activeDeadlineSeconds: 1 },
          signal,
        ),
      () => cluster.getJob('j', signal),
      () => cluster.deleteJob('j', signal),
      () => cluster.emitEvent({ node: 'n', type: 'Normal', reason: 'R', message: 'm' }, signal),
    ];
    for (const call of everyCall) await call();
    assert.equal(calls.length, everyCall.length);
    alive = false;
    for (const call of everyCall) {
      await assert.rejects(call(), (err: unknown) => isHealError(err, ErrorCode.NotLeader));
    }
    assert.equal(calls.length, everyCall.length, 'nothing reached the cluster after the end');
  });
});
