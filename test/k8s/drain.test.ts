/**
 * Pods and the Eviction API on a real control plane: kube-controller-manager maintains the
 * PodDisruptionBudget status and kwok plays the kubelet (pods run; deleted pods go away). The
 * adapter runs as the controller ServiceAccount under the shipped RBAC.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PolicyV1Api } from '@kubernetes/client-node';
import {
  createNode,
  createObject,
  deadline,
  eventually,
  startTestCluster,
  type TestCluster,
} from './setup.js';

const NODE = 'kw-drain';
const NS = 'default';
let cluster: TestCluster;

before(async () => {
  cluster = await startTestCluster({ kcm: true, kwok: true });
  await createNode(cluster, NODE, { kwok: true });
});

after(async () => {
  await cluster.stop();
});

interface PodOptions {
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
  readonly ownerReferences?: readonly Record<string, unknown>[];
}

/** Creates a pod bound to the kwok node (admin). */
async function createPod(name: string, o: PodOptions = {}): Promise<void> {
  const metadata = {
    name,
    namespace: NS,
    labels: o.labels ?? {},
    annotations: o.annotations ?? {},
    ...(o.ownerReferences === undefined ? {} : { ownerReferences: o.ownerReferences }),
  };
  const spec = { nodeName: NODE, containers: [{ name: 'c', image: 'busybox' }] };
  await createObject(cluster.admin, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata,
    spec,
  });
}

async function running(name: string): Promise<void> {
  await eventually(`${name} Running`, async () => {
    const p = await cluster.adminCore.readNamespacedPod({ name, namespace: NS });
    return p.status?.phase === 'Running' ? true : undefined;
  });
}

describe('pods on a node', () => {
  it('lists them, telling DaemonSet and mirror pods apart', async () => {
    const ds = await createObject(cluster.admin, {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'agent', namespace: NS },
      spec: {
        selector: { matchLabels: { app: 'agent' } },
        template: {
          metadata: { labels: { app: 'agent' } },
          spec: { containers: [{ name: 'c', image: 'busybox' }] },
        },
      },
    });
    const uid = ds.metadata?.uid ?? '';
    const ownerReferences = [
      { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid, controller: true },
    ];
    await createPod('agent-x', { labels: { app: 'agent' }, ownerReferences });
    await createPod('static-x', { annotations: { 'kubernetes.io/config.mirror': 'abc' } });
    await createPod('work-x', { labels: { app: 'work' } });
    await running('work-x');
    const pods = await cluster.controller().listPodsOnNode(NODE, deadline());
    const byName = new Map(pods.map((p) => [p.name, p]));
    assert.equal(byName.get('agent-x')?.daemonSet, true);
    assert.equal(byName.get('static-x')?.mirror, true);
    const work = byName.get('work-x');
    assert.deepEqual(
      {
        daemonSet: work?.daemonSet,
        mirror: work?.mirror,
        phase: work?.phase,
        node: work?.node,
        ns: work?.namespace,
      },
      { daemonSet: false, mirror: false, phase: 'Running', node: NODE, ns: NS },
    );
    assert.deepEqual(await cluster.controller().listPodsOnNode('kw-elsewhere', deadline()), []);
  });

  it('eviction is blocked by a PodDisruptionBudget, then allowed when it permits', async () => {
    for (const name of ['web-1', 'web-2']) {
      await createPod(name, { labels: { app: 'web' } });
      await running(name);
    }
    const policy = cluster.admin.makeApiClient(PolicyV1Api);
    await createObject(cluster.admin, {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: 'web', namespace: NS },
      spec: { minAvailable: 2, selector: { matchLabels: { app: 'web' } } },
    });
    const allowed = async (n: number): Promise<void> => {
      await eventually(`PDB disruptionsAllowed=${n}`, async () => {
        const pdb = await policy.readNamespacedPodDisruptionBudget({ name: 'web', namespace: NS });
        const st = pdb.status;
        return st?.observedGeneration === pdb.metadata?.generation &&
          st?.currentHealthy === 2 &&
          st.disruptionsAllowed === n
          ? true
          : undefined;
      });
    };
    await allowed(0);
    const kube = cluster.controller();
    assert.equal(await kube.evictPod(NS, 'web-1', deadline()), 'blocked');
    await policy.patchNamespacedPodDisruptionBudget({
      name: 'web',
      namespace: NS,
      body: [{ op: 'replace', path: '/spec/minAvailable', value: 1 }],
    });
    await allowed(1);
    assert.equal(await kube.evictPod(NS, 'web-1', deadline()), 'evicted');
    await eventually('web-1 gone', async () => {
      const pods = await kube.listPodsOnNode(NODE, deadline());
      return pods.some((p) => p.name === 'web-1') ? undefined : true;
    });
    assert.equal(await kube.evictPod(NS, 'web-1', deadline()), 'gone');
  });

  it('deletes a pod with a grace period, and deleting it again is not an error', async () => {
    // A DaemonSet's pod (a restart): the admission policy aegis-controller-pod-deletes lets the
    // controller delete only those and pods already terminating (admission-policy.test.ts).
    const ds = await createObject(cluster.admin, {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'restartable', namespace: NS },
      spec: {
        selector: { matchLabels: { app: 'restartable' } },
        template: {
          metadata: { labels: { app: 'restartable' } },
          spec: { containers: [{ name: 'c', image: 'busybox' }] },
        },
      },
    });
    const uid = ds.metadata?.uid ?? '';
    await createPod('stuck-1', {
      labels: { app: 'restartable' },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'restartable', uid, controller: true },
      ],
    });
    const kube = cluster.controller();
    await kube.deletePod(NS, 'stuck-1', 0, deadline());
    await eventually('stuck-1 gone', async () => {
      const pods = await kube.listPodsOnNode(NODE, deadline());
      return pods.some((p) => p.name === 'stuck-1') ? undefined : true;
    });
    await kube.deletePod(NS, 'stuck-1', 0, deadline());
  });

  it('rejects a node name that could widen the field selector', async () => {
    await assert.rejects(
      cluster.controller().listPodsOnNode('a,spec.nodeName!=b', deadline()),
      /node name is invalid/,
    );
  });
});
