/**
 * SimCluster.setNodeCondition: a node-side detector's Node condition on the simulated node object
 * (what the controller's node watch reads) and in kube-state-metrics' kube_node_status_condition.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOGUE, findCondition } from '../catalogue/index.js';
import { DEFAULT_NPD_MAPPING } from '../catalogue/npd.js';
import { ManualClock } from '../core/clock.js';
import { nodeConditionSources, readNodeConditions } from '../engine/node-conditions.js';
import { createSimWorld } from './sim-world.js';

const START = Date.UTC(2026, 0, 1);
const signal = new AbortController().signal;
const NODE = 'gpu-node-0001';

describe('SimCluster.setNodeCondition', () => {
  it('puts the condition on the node object and in kube_node_status_condition', async () => {
    const clock = new ManualClock(START);
    const w = createSimWorld({ nodes: 2, seed: 3, catalogue: CATALOGUE, clock });
    const before = await w.cluster.getNode(NODE, signal);
    assert.equal(before.conditions, undefined);

    await clock.advanceTo(START + 60_000);
    w.cluster.setNodeCondition(NODE, {
      type: 'KernelDeadlock',
      status: 'True',
      reason: 'DockerHung',
      message: 'task docker:20744 blocked for more than 120 seconds.',
    });
    const after = await w.cluster.getNode(NODE, signal);
    assert.notEqual(after.resourceVersion, before.resourceVersion);
    assert.deepEqual(after.conditions, [
      {
        type: 'KernelDeadlock',
        status: 'True',
        reason: 'DockerHung',
        message: 'task docker:20744 blocked for more than 120 seconds.',
        sinceMs: START + 60_000,
        heartbeatMs: START + 60_000,
      },
    ]);
    const ksm = await w.metrics.query(
      'kube_node_status_condition{condition="KernelDeadlock"} == 1',
      clock.now(),
      signal,
    );
    assert.deepEqual(
      ksm.map((s) => [s.labels['node'], s.labels['status']]),
      [[NODE, 'true']],
    );
    const reading = readNodeConditions(
      await w.cluster.listNodes(signal),
      nodeConditionSources({ problems: DEFAULT_NPD_MAPPING.problems, staleAfterMs: 900_000 }),
      findCondition,
      clock.now(),
    );
    assert.deepEqual(
      reading.observations.map((o) => [o.node, o.condition]),
      [[NODE, 'NpdKernelDeadlock']],
    );

    // Back to False: the transition time moves, the message goes, kube-state-metrics follows.
    await clock.advanceTo(START + 120_000);
    w.cluster.setNodeCondition(NODE, {
      type: 'KernelDeadlock',
      status: 'False',
      reason: 'KernelHasNoDeadlock',
    });
    const healthy = await w.cluster.getNode(NODE, signal);
    assert.deepEqual(healthy.conditions, [
      {
        type: 'KernelDeadlock',
        status: 'False',
        reason: 'KernelHasNoDeadlock',
        sinceMs: START + 120_000,
        heartbeatMs: START + 120_000,
      },
    ]);
    const ksm2 = await w.metrics.query(
      'kube_node_status_condition{condition="KernelDeadlock"} == 1',
      clock.now(),
      signal,
    );
    assert.deepEqual(
      ksm2.map((s) => s.labels['status']),
      ['false'],
    );
  });
});
