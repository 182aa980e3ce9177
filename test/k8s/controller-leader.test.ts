/**
 * Leader failover mid-SOP on a real API server: two controller replicas, each with its own
 * client (controller ServiceAccount token) and its own holder id, run the daemon loop on the
 * shipped Lease permissions. The leader starts a reboot of gpu-node-0003 and dies (`kill -9`:
 * from that instant none of its calls reach the API server, and it releases nothing) while the
 * Reboot step is Running. The follower takes the lease once it expires, resumes the step from
 * the ticket, follows the same Job, and finishes the SOP: exactly one restart Job ever existed.
 *
 * The reboot is slow on purpose: the test runs a copy of deploy/jobs whose restart_node template
 * adds `spec.suspend: true`, so the Job exists (created by the leader from the template) but runs
 * no pod until the test resumes it — standing in for a node that is rebooting.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { BatchV1Api, CoordinationV1Api } from '@kubernetes/client-node';
import { jobName } from '../../src/jobs/job-name.js';
import type { SimWorld } from '../../src/sim/sim-world.js';
import {
  MONITORING,
  OPS_NAMESPACE,
  createFleetWorld,
  createKwokNodes,
  isComplete,
  jobsOf,
  quickClearingCatalogue,
  startReplica,
  templatesWith,
  testConfig,
  ticketOf,
  ticketWhere,
  workflowLine,
  type Replica,
} from '../helpers/k8s-engine.js';
import { eventually, startTestCluster, type TestCluster } from './setup.js';

const NODE = 'gpu-node-0003';
const XID = 'Xid79GPULost';
const REBOOT_JOB = jobName('restart_node', NODE, 2);

let cluster: TestCluster;
let world: SimWorld;
let templates = '';
let leader: Replica | undefined;
let follower: Replica | undefined;
let faultId = '';
let rebootUid = '';
let killedAtMs = 0;

before(async () => {
  cluster = await startTestCluster({ kcm: true, kwok: true });
  world = createFleetWorld(3);
  await createKwokNodes(cluster, world);
  templates = templatesWith('restart_node', (doc) => {
    doc.setIn(['spec', 'suspend'], true);
  });
});

after(async () => {
  await leader?.stop();
  await follower?.stop();
  await cluster.stop();
  rmSync(templates, { recursive: true, force: true });
});

function replica(holder: string): Replica {
  return startReplica({
    cluster,
    world,
    holder,
    config: testConfig(),
    catalogue: quickClearingCatalogue([XID]),
    jobTemplatesDir: templates,
  });
}

async function holder(): Promise<string | undefined> {
  const api = cluster.admin.makeApiClient(CoordinationV1Api);
  const lease = await api.readNamespacedLease({ name: 'aegis-controller', namespace: MONITORING });
  return lease.spec?.holderIdentity;
}

function rebootJobsCreated(): string[] {
  return [leader, follower].flatMap((r) =>
    (r?.observed.stats.jobsCreated ?? [])
      .filter((j) => j.kind === 'restart_node')
      .map((j) => `${r?.holder ?? ''}:${j.name}`),
  );
}

describe('leader killed mid-SOP', () => {
  it('the leader starts the reboot: ticket shows Reboot Running, the Job exists', async (t) => {
    leader = replica('aegis-a');
    await eventually('aegis-a holds the lease', async () =>
      (await holder()) === 'aegis-a' ? true : undefined,
    );
    follower = replica('aegis-b');
    faultId = world.faults.injectFault({ condition: XID, node: NODE, atMs: Date.now() });
    const ticket = await ticketWhere(
      cluster,
      NODE,
      'Reboot Running',
      (tk) => {
        const last = tk.workflows.at(-1);
        return last?.action === 'Reboot' && last.status === 'Running';
      },
      { replicas: [leader, follower] },
    );
    const job = await eventually('reboot Job created', async () => {
      const jobs = await jobsOf(cluster, NODE, 'restart_node');
      return jobs.length > 0 ? jobs : undefined;
    });
    assert.deepEqual(
      job.map((j) => j.metadata?.name),
      [REBOOT_JOB],
    );
    assert.equal(job[0]?.spec?.suspend, true);
    rebootUid = job[0].metadata?.uid ?? '';
    assert.deepEqual(workflowLine(ticket), [
      'Cordon Succeeded',
      'Diagnose Succeeded',
      'Reboot Running',
    ]);
    assert.equal(ticket.workflows.at(-1)?.seq, 2);
    assert.deepEqual(follower.steps, [], 'the follower has not acted');
    t.diagnostic(`Reboot Running under aegis-a: ${REBOOT_JOB}`);
  });

  it('killed, the leader leaves the step Running; the follower takes the lease after it expires', async (t) => {
    await (leader as Replica).kill();
    killedAtMs = Date.now();
    const ticket = await ticketOf(cluster, NODE);
    assert.equal(
      workflowLine(ticket).at(-1),
      'Reboot Running',
      'nothing recorded by the dying leader',
    );
    await eventually(
      'aegis-b holds the lease',
      async () => ((await holder()) === 'aegis-b' ? true : undefined),
      15_000,
    );
    const takeoverMs = Date.now() - killedAtMs;
    t.diagnostic(`aegis-b took the lease ${takeoverMs} ms after the kill (lease 3 s)`);
    assert.ok(takeoverMs >= 2_000, `not before the lease expired (${takeoverMs} ms)`);
    const resumed = await eventually('aegis-b resumes the Reboot', () =>
      Promise.resolve(
        (follower as Replica).steps.find((e) => e.action === 'Reboot' && e.status === 'Running'),
      ),
    );
    assert.equal(resumed.node, NODE);
    assert.deepEqual(rebootJobsCreated(), [`aegis-a:${REBOOT_JOB}`], 'the follower created no Job');
  });

  it('the follower follows the same Job to completion and finishes the SOP', async (t) => {
    // The node reboots: its XID clears; then the Job's pod may run and complete.
    world.faults.clearFault(faultId, Date.now());
    await cluster.admin.makeApiClient(BatchV1Api).patchNamespacedJob({
      name: REBOOT_JOB,
      namespace: OPS_NAMESPACE,
      body: [{ op: 'replace', path: '/spec/suspend', value: false }],
    });
    const resolved = await ticketWhere(
      cluster,
      NODE,
      'ticket resolved',
      (tk) => tk.status === 'resolved',
      { replicas: [follower] },
    );
    t.diagnostic(
      `resolved ${Date.now() - killedAtMs} ms after the kill: ${workflowLine(resolved).join(' → ')}`,
    );
    assert.deepEqual(workflowLine(resolved), [
      'Cordon Succeeded',
      'Diagnose Succeeded',
      'Reboot Succeeded',
      'Healthcheck Succeeded',
      'Uncordon Succeeded',
    ]);
    assert.equal(resolved.workflows[2]?.seq, 2, 'the resumed step kept its seq');
    const jobs = await jobsOf(cluster, NODE, 'restart_node');
    assert.deepEqual(
      jobs.map((j) => [j.metadata?.name, j.metadata?.uid, isComplete(j)]),
      [[REBOOT_JOB, rebootUid, true]],
      'exactly one restart Job ever existed for the node',
    );
    assert.deepEqual(rebootJobsCreated(), [`aegis-a:${REBOOT_JOB}`]);
    const node = await cluster.adminCore.readNode({ name: NODE });
    assert.notEqual(node.spec?.unschedulable, true, 'uncordoned');
    const byFollower = (follower as Replica).steps
      .filter((s) => s.status === 'Succeeded')
      .map((s) => s.action);
    assert.deepEqual(byFollower, ['Reboot', 'Healthcheck', 'Uncordon']);
  });
});
