import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../core/clock.js';
import type { InstantSample } from '../prom/metrics-source.js';
import { DEFAULT_JOB_ASSUMPTION, HistoryCluster, type HistoryAt } from './history-cluster.js';

const s = (labels: Record<string, string>, value = 1): InstantSample => ({ labels, value });

function at(o: {
  nodes: string[];
  notReady?: string[];
  cordoned?: string[];
  labels?: Record<string, Record<string, string>>;
}): HistoryAt {
  return {
    info: o.nodes.map((node) => s({ node })),
    ready: o.nodes.map((node) =>
      s({ node, status: o.notReady?.includes(node) === true ? 'false' : 'true' }),
    ),
    unschedulable: o.nodes.map((node) => s({ node }, o.cordoned?.includes(node) === true ? 1 : 0)),
    labels: Object.entries(o.labels ?? {}).map(([node, l]) => s({ node, ...l })),
    roles: [],
    taints: [],
  };
}

function cluster(faults: Record<string, string[]> = {}, outcome: 'succeed' | 'fail' = 'succeed') {
  const clock = new ManualClock(Date.UTC(2026, 2, 1));
  const pods: string[] = [];
  const c = new HistoryCluster({
    clock,
    jobs: { ...DEFAULT_JOB_ASSUMPTION, outcome },
    knownLabels: ['aegis.io/disable', 'topology.aegis.io/rack'],
    pods: (expr) => {
      pods.push(expr);
      return Promise.resolve([]);
    },
    faultsOn: (node) => faults[node] ?? [],
  });
  return { c, clock, pods };
}

describe('HistoryCluster', () => {
  it('rebuilds nodes, readiness, labels and cordons from kube-state-metrics', async () => {
    const { c } = cluster();
    c.applyHistory(
      at({
        nodes: ['a', 'b'],
        notReady: ['b'],
        cordoned: ['a'],
        labels: { a: { label_aegis_io_disable: 'true', label_topology_aegis_io_rack: 'r1' } },
      }),
      0,
    );
    const [a, b] = await c.listNodes();
    assert.equal(a?.unschedulable, true, 'a cordon in history at the start is the initial state');
    assert.deepEqual(a.labels, { 'aegis.io/disable': 'true', 'topology.aegis.io/rack': 'r1' });
    assert.equal(b?.ready, false);
    // Later: b uncordoned stays; a uncordoned in history is an operator's uncordon; c appears.
    const changes = c.applyHistory(at({ nodes: ['a', 'b', 'c'] }), 30_000);
    assert.deepEqual(
      changes.map((x) => `${x.node} ${x.what}`),
      ['a uncordon', 'c added'],
    );
    // A gap in kube-state-metrics (no node at all) keeps the nodes as they were.
    assert.deepEqual(c.applyHistory(at({ nodes: [] }), 60_000), []);
    assert.equal((await c.listNodes()).length, 3);
  });

  it('keeps the engine’s own writes in memory, under optimistic concurrency', async () => {
    const { c } = cluster();
    // No Secret reader: createEngine builds no BMC client (no power command can leave a replay).
    assert.equal('readSecret' in c, false);
    c.applyHistory(at({ nodes: ['a'] }), 0);
    const n = await c.getNode('a');
    await c.setUnschedulable('a', true);
    await assert.rejects(
      c.patchNodeAnnotations('a', { x: '1' }, n.resourceVersion),
      /resourceVersion .* is stale/,
    );
    const now = await c.getNode('a');
    const patched = await c.patchNodeAnnotations('a', { x: '1' }, now.resourceVersion);
    assert.equal(patched.annotations['x'], '1');
    assert.equal(patched.unschedulable, true);
    // History still saying "schedulable" does not undo the engine's cordon.
    c.applyHistory(at({ nodes: ['a'] }), 30_000);
    assert.equal((await c.getNode('a')).unschedulable, true);
  });

  it('a reboot Job takes the node down for the boot time and brings it back with a new boot id', async () => {
    const { c, clock } = cluster();
    c.applyHistory(at({ nodes: ['a'] }), 0);
    const before = (await c.getNode('a')).bootId;
    await c.createJob({
      kind: 'restart_node',
      name: 'reboot-a-1',
      node: 'a',
      params: {},
      activeDeadlineSeconds: 900,
    });
    await clock.advance(20_000);
    assert.equal((await c.getNode('a')).ready, false);
    assert.equal((await c.getJob('reboot-a-1'))?.phase, 'Running');
    await clock.advance(150_000);
    const after = await c.getNode('a');
    assert.equal(after.ready, true);
    assert.notEqual(after.bootId, before);
    await clock.advance(10_000);
    assert.equal((await c.getJob('reboot-a-1'))?.phase, 'Succeeded');
  });

  it('judges a health check by the history, and fails every Job when told to', async () => {
    const { c, clock } = cluster({ a: ['Xid79GPULost'] });
    c.applyHistory(at({ nodes: ['a', 'b'] }), 0);
    for (const node of ['a', 'b'])
      await c.createJob({
        kind: 'healthcheck_node',
        name: `hc-${node}`,
        node,
        params: {},
        activeDeadlineSeconds: 900,
      });
    await clock.advance(200_000);
    const a = await c.getJob('hc-a');
    assert.equal(a?.phase, 'Failed');
    assert.match((a.logs ?? []).join('\n'), /Xid79GPULost \(the replayed history still shows it\)/);
    assert.equal((await c.getJob('hc-b'))?.phase, 'Succeeded');

    const failing = cluster({}, 'fail');
    failing.c.applyHistory(at({ nodes: ['a'] }), 0);
    await failing.c.createJob({
      kind: 'restart_node',
      name: 'r',
      node: 'a',
      params: {},
      activeDeadlineSeconds: 900,
    });
    await failing.clock.advance(20_000);
    assert.equal((await failing.c.getNode('a')).ready, true, 'a failed reboot reboots nothing');
    await failing.clock.advance(200_000);
    assert.equal((await failing.c.getJob('r'))?.phase, 'Failed');
  });

  it('lists pods from kube_pod_info; an evicted pod is gone', async () => {
    const clock = new ManualClock(0);
    const c = new HistoryCluster({
      clock,
      jobs: DEFAULT_JOB_ASSUMPTION,
      knownLabels: ['app'],
      pods: (expr) =>
        Promise.resolve(
          expr.startsWith('max by (namespace, pod, created_by_kind)')
            ? [
                s({ namespace: 'ml', pod: 'train-0', created_by_kind: 'StatefulSet' }),
                s({ namespace: 'gpu', pod: 'dp-x', created_by_kind: 'DaemonSet' }),
              ]
            : [s({ namespace: 'gpu', pod: 'dp-x', label_app: 'nvidia-device-plugin-daemonset' })],
        ),
      faultsOn: () => [],
    });
    c.applyHistory(at({ nodes: ['a'] }), 0);
    const pods = await c.listPodsOnNode('a');
    assert.deepEqual(
      pods.map((p) => [p.name, p.daemonSet, p.labels['app'] ?? '']),
      [
        ['train-0', false, ''],
        ['dp-x', true, 'nvidia-device-plugin-daemonset'],
      ],
    );
    assert.equal(await c.evictPod('ml', 'train-0'), 'evicted');
    assert.deepEqual(
      (await c.listPodsOnNode('a')).map((p) => p.name),
      ['dp-x'],
    );
  });
});
