/**
 * The whole self-healing loop on a real control plane (etcd, kube-apiserver, kube-controller-
 * manager, kwok), the engine running as the controller ServiceAccount under the shipped RBAC:
 * an XID 79 on gpu-node-0002, injected as dcgm-exporter series in the simulated fleet, leads to
 * cordon, a ticket, a diagnose Job, a drain that waits for the PodDisruptionBudget, a reboot Job,
 * a health check Job, uncordon and a resolved ticket, with an Event per step.
 *
 * The training workload is two bare pods (one on the faulty node, one elsewhere) under a PDB: the
 * harness's kube-controller-manager runs no Deployment/ReplicaSet controller, and kwok completes
 * any Job-owned pod at once. The DaemonSet's pod is created with its owner reference for the same
 * reason.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PolicyV1Api } from '@kubernetes/client-node';
import type { SimWorld } from '../../src/sim/sim-world.js';
import { jobName } from '../../src/jobs/job-name.js';
import {
  OPS_NAMESPACE,
  createFleetWorld,
  createKwokNodes,
  isComplete,
  jobsOf,
  nodeEvents,
  quickClearingCatalogue,
  startReplica,
  testConfig,
  ticketOf,
  ticketWhere,
  workflowLine,
  type Replica,
} from '../helpers/k8s-engine.js';
import { createObject, eventually, startTestCluster, type TestCluster } from './setup.js';

const NODE = 'gpu-node-0002';
const OTHER = 'gpu-node-0003';
const NS = 'default';
const XID = 'Xid79GPULost';

let cluster: TestCluster;
let world: SimWorld;
let replica: Replica | undefined;
let faultId = '';
let t0 = 0;

before(async () => {
  cluster = await startTestCluster({ kcm: true, kwok: true });
  world = createFleetWorld(4);
  await createKwokNodes(cluster, world);
  await createWorkload();
});

after(async () => {
  await replica?.stop();
  await cluster.stop();
});

async function createPod(
  name: string,
  node: string,
  labels: Record<string, string>,
  ownerReferences?: readonly Record<string, unknown>[],
): Promise<void> {
  await createObject(cluster.admin, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels, ...(ownerReferences ? { ownerReferences } : {}) },
    spec: { nodeName: node, containers: [{ name: 'c', image: 'trainer:1' }] },
  });
}

/** A DaemonSet pod and a training pod on NODE, a second training pod on OTHER, a PDB over both. */
async function createWorkload(): Promise<void> {
  const ds = await createObject(cluster.admin, {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'gpu-agent', namespace: NS },
    spec: {
      selector: { matchLabels: { app: 'gpu-agent' } },
      template: {
        metadata: { labels: { app: 'gpu-agent' } },
        spec: { containers: [{ name: 'c', image: 'agent:1' }] },
      },
    },
  });
  const owner = { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'gpu-agent' };
  await createPod('gpu-agent-x', NODE, { app: 'gpu-agent' }, [
    { ...owner, uid: ds.metadata?.uid ?? '', controller: true },
  ]);
  await createPod('training-0', NODE, { app: 'training' });
  await createPod('training-1', OTHER, { app: 'training' });
  await createObject(cluster.admin, {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: 'training', namespace: NS },
    spec: { minAvailable: 2, selector: { matchLabels: { app: 'training' } } },
  });
  await disruptionsAllowed(0);
}

async function disruptionsAllowed(n: number): Promise<void> {
  const policy = cluster.admin.makeApiClient(PolicyV1Api);
  await eventually(`PDB training allows ${n}`, async () => {
    const pdb = await policy.readNamespacedPodDisruptionBudget({ name: 'training', namespace: NS });
    const st = pdb.status;
    return st?.observedGeneration === pdb.metadata?.generation &&
      st?.currentHealthy === 2 &&
      st.disruptionsAllowed === n
      ? true
      : undefined;
  });
}

async function podNames(node: string): Promise<string[]> {
  const { items } = await cluster.adminCore.listNamespacedPod({
    namespace: NS,
    fieldSelector: `spec.nodeName=${node}`,
  });
  return items
    .filter((p) => p.metadata?.deletionTimestamp === undefined)
    .map((p) => p.metadata?.name ?? '')
    .sort();
}

/** Time since the engine started, for the test log. */
function since(): string {
  return `${Date.now() - t0} ms`;
}

describe('controller loop on a real API server', () => {
  it('a fault on a kwok node: cordoned by the controller, ticket opened', async (t) => {
    t0 = Date.now();
    replica = startReplica({
      cluster,
      world,
      holder: 'aegis-loop',
      config: testConfig(),
      catalogue: quickClearingCatalogue([XID]),
    });
    faultId = world.faults.injectFault({ condition: XID, node: NODE, atMs: Date.now() });
    const ticket = await ticketWhere(
      cluster,
      NODE,
      'Cordon Succeeded',
      (tk) => workflowLine(tk).includes('Cordon Succeeded'),
      { replicas: [replica] },
    );
    const node = await cluster.adminCore.readNode({ name: NODE });
    assert.equal(node.spec?.unschedulable, true);
    // The controller's field manager owns spec.unschedulable: it was the controller's write.
    const owner = node.metadata?.managedFields?.find((m) =>
      JSON.stringify(m.fieldsV1 ?? {}).includes('"f:unschedulable"'),
    );
    assert.equal(owner?.manager, 'aegis');
    assert.equal(ticket.condition, XID);
    assert.equal(ticket.supervisor, 'aegis');
    assert.equal(ticket.cordonedByAegis, true);
    assert.ok(ticket.conditions.includes(`${XID}/0`), ticket.conditions.join(','));
    for (const other of ['gpu-node-0001', OTHER, 'gpu-node-0004']) {
      const n = await cluster.adminCore.readNode({ name: other });
      assert.notEqual(n.spec?.unschedulable, true, `${other} left alone`);
    }
    t.diagnostic(`cordoned after ${since()}`);
  });

  it('runs the diagnose Job from the template, then the drain waits for the PDB', async (t) => {
    const blocked = await ticketWhere(cluster, NODE, 'Reboot Canceled by the PDB', (tk) =>
      tk.workflows.some(
        (w) =>
          w.action === 'Reboot' &&
          w.status === 'Canceled' &&
          /PodDisruptionBudget/.test(w.message ?? ''),
      ),
    );
    assert.deepEqual(workflowLine(blocked).slice(0, 2), ['Cordon Succeeded', 'Diagnose Succeeded']);
    const diagnose = await jobsOf(cluster, NODE, 'diagnose_node');
    assert.deepEqual(
      diagnose.map((j) => j.metadata?.name),
      [jobName('diagnose_node', NODE, 1)],
    );
    assert.ok(diagnose.every(isComplete));
    assert.equal(diagnose[0]?.metadata?.namespace, OPS_NAMESPACE);
    assert.deepEqual(diagnose[0].spec?.template.spec?.containers[0]?.args, ['diagnose', XID, '0']);
    assert.deepEqual(await podNames(NODE), ['gpu-agent-x', 'training-0'], 'nothing evicted');
    assert.deepEqual(await jobsOf(cluster, NODE, 'restart_node'), [], 'no reboot before the drain');
    t.diagnostic(`drain blocked by the PDB after ${since()}`);
  });

  it('evicts the training pod once the PDB allows it, reboots, health-checks, uncordons', async (t) => {
    const policy = cluster.admin.makeApiClient(PolicyV1Api);
    await policy.patchNamespacedPodDisruptionBudget({
      name: 'training',
      namespace: NS,
      body: [{ op: 'replace', path: '/spec/minAvailable', value: 1 }],
    });
    // The node reboots when its restart Job completes: the GPU's last XID goes back to 0.
    const reboot = await eventually(
      'reboot Job Complete',
      async () => {
        const jobs = await jobsOf(cluster, NODE, 'restart_node');
        return jobs.length > 0 && jobs.every(isComplete) ? jobs : undefined;
      },
      30_000,
    );
    world.faults.clearFault(faultId, Date.now());
    t.diagnostic(`reboot Job complete after ${since()}`);
    assert.equal(reboot.length, 1, 'one reboot Job');
    const resolved = await ticketWhere(
      cluster,
      NODE,
      'ticket resolved',
      (tk) => tk.status === 'resolved',
      { timeoutMs: 40_000, replicas: [replica] },
    );
    t.diagnostic(`resolved after ${since()}: ${workflowLine(resolved).join(' → ')}`);
    const node = await cluster.adminCore.readNode({ name: NODE });
    assert.notEqual(node.spec?.unschedulable, true, 'uncordoned');
    const steps = workflowLine(resolved);
    const last = steps.slice(-3);
    assert.deepEqual(last, ['Reboot Succeeded', 'Healthcheck Succeeded', 'Uncordon Succeeded']);
    assert.equal(resolved.cordonedByAegis, false);
    assert.equal(resolved.conclusion, undefined);
    assert.ok(resolved.resolvedTime !== undefined);
    const rebootStep = resolved.workflows.find(
      (w) => w.action === 'Reboot' && w.status === 'Succeeded',
    );
    assert.equal(reboot[0]?.metadata?.name, jobName('restart_node', NODE, rebootStep?.seq ?? -1));
    const check = await jobsOf(cluster, NODE, 'healthcheck_node');
    assert.equal(check.length, 1);
    assert.ok(check.every(isComplete));
    assert.match(check[0]?.metadata?.name ?? '', /^healthcheck-gpu-node-0002-\d+$/);
    assert.deepEqual(
      await podNames(NODE),
      ['gpu-agent-x'],
      'training pod evicted, DaemonSet pod left',
    );
    assert.deepEqual(await podNames(OTHER), ['training-1']);
  });

  it('recorded an Event on the node for every step, as the controller', async () => {
    const events = await nodeEvents(cluster, NODE);
    const reasons = new Set(events.map((e) => e.reason));
    for (const r of [
      'AegisCordonSucceeded',
      'AegisDiagnoseSucceeded',
      'AegisRebootCanceled',
      'AegisRebootSucceeded',
      'AegisHealthcheckSucceeded',
      'AegisUncordonSucceeded',
    ]) {
      assert.ok(reasons.has(r), `${r} in ${[...reasons].join(', ')}`);
    }
    assert.ok(
      events.every((e) => e.reportingComponent === 'aegis' && e.reportingInstance === 'aegis-loop'),
    );
    assert.ok(events.every((e) => e.involvedObject.kind === 'Node'));
  });

  it('the metrics saw it: one self-heal, no open ticket, no errors', async () => {
    const r = replica as Replica;
    // The fleet gauges are set at the end of each cycle, from that cycle's node list.
    const text = await eventually('no open ticket in the metrics', async () => {
      const m = await r.metrics.registry.metrics();
      return /^aegis_ticket_open_total 0$/m.test(m) ? m : undefined;
    });
    assert.match(text, /aegis_selfheal_seconds_count\{condition="Xid79GPULost"\} 1/);
    assert.match(text, /aegis_nodes_cordoned\{by="aegis"\} 0/);
    assert.match(text, /aegis_leader 1/);
    const errors = (await r.metrics.errors.get()).values.filter((v) => v.value > 0);
    assert.deepEqual(
      errors.map((v) => v.labels),
      [],
      r.log.lines.map((l) => `${l.msg} ${JSON.stringify(l.fields)}`).join('\n'),
    );
    assert.equal((await ticketOf(cluster, NODE))?.status, 'resolved');
  });
});
