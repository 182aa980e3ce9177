/**
 * Operators in the loop, end to end on the real apiserver tier (issue 14, first "Done when"): the
 * controller (a replica of the daemon on kwok nodes, with the daemon's notifications wired as
 * src/main.ts wires them) posts to a real Alertmanager (Debian's prometheus-alertmanager, grouped
 * by node) that routes to a webhook receiver served here; the operator is a real user (a
 * ServiceAccount bound to the shipped ClusterRole aegis-operator, its own token in its own
 * kubeconfig) running the `kubectl-aegis` executable as a separate process.
 *
 * - A fault whose ladder ends with a human (KernelPanic: cordon, diagnose, hand-off) produces exactly one
 *   firing notification for its node; `kubectl aegis ack NODE` closes the ticket and exactly one
 *   resolved notification follows. The alert is re-posted every few seconds meanwhile: refreshes
 *   never notify again.
 * - Approval mode for Reboot: an XID 79's reboot is held ("approval: awaiting approval", announced
 *   as AegisApprovalPending) and its Job does not exist until `kubectl aegis approve NODE`; then the
 *   Job is created and the ticket's Reboot entry says who approved it and when.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { AuthenticationV1TokenRequest } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { AlertName } from '../../src/notify/alerts.js';
import type { SimWorld } from '../../src/sim/sim-world.js';
import {
  createFleetWorld,
  createKwokNodes,
  jobsOf,
  startReplica,
  testConfig,
  ticketOf,
  ticketWhere,
  type Replica,
} from '../helpers/k8s-engine.js';
import {
  startAlertmanager,
  startWebhook,
  type AlertmanagerServer,
  type WebhookNotification,
} from '../notify/alertmanager-harness.js';
import { createObject, eventually, startTestCluster, type TestCluster } from './setup.js';

const PLUGIN_BIN = join(import.meta.dirname, '..', '..', 'bin', 'kubectl-aegis.js');
const ONCALL_NS = 'oncall';
const OPERATOR = `system:serviceaccount:${ONCALL_NS}:alice`;
/**
 * Its ladder (system.report) is cordon, diagnose, hand-off (src/sop/terminal-rungs.test.ts), and it
 * is raised at once (no `for` in its rule).
 */
const HANDOFF_CONDITION = 'KernelPanic';
const HANDOFF_NODE = 'gpu-node-0001';
const APPROVAL_NODE = 'gpu-node-0002';
/** Alertmanager's group_wait and group_interval: a change in a group is notified within it. */
const GROUP_MS = 1_000;

let cluster: TestCluster;
let world: SimWorld;
let replica: Replica | undefined;
let am: AlertmanagerServer | undefined;
let webhook: Awaited<ReturnType<typeof startWebhook>> | undefined;
let dir = '';
let kubeconfig = '';

/** The operator user: a ServiceAccount bound to aegis-operator, and a kubeconfig with its token. */
async function createOperator(): Promise<void> {
  await createObject(cluster.admin, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: ONCALL_NS },
  });
  await createObject(cluster.admin, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'alice', namespace: ONCALL_NS },
  });
  await createObject(cluster.admin, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'oncall-alice' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'aegis-operator' },
    subjects: [{ kind: 'ServiceAccount', name: 'alice', namespace: ONCALL_NS }],
  });
  const tr = await cluster.adminCore.createNamespacedServiceAccountToken({
    name: 'alice',
    namespace: ONCALL_NS,
    body: Object.assign(new AuthenticationV1TokenRequest(), {
      spec: { audiences: [], expirationSeconds: 3600 },
    }),
  });
  const token = tr.status?.token ?? '';
  assert.ok(token !== '', 'a token for alice');
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'gpu-prod',
          cluster: {
            server: cluster.stack.server,
            'certificate-authority-data': cluster.stack.caData,
          },
        },
      ],
      users: [{ name: 'alice', user: { token } }],
      contexts: [{ name: 'oncall', context: { cluster: 'gpu-prod', user: 'alice' } }],
      'current-context': 'oncall',
    }),
    { mode: 0o600 },
  );
}

/** `kubectl aegis ARGS` as the operator: the executable, in its own process. Asserts exit 0. */
async function kubectlAegis(...args: string[]): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [PLUGIN_BIN, ...args], {
      env: { ...process.env, KUBECONFIG: kubeconfig },
      timeout: 30_000,
    });
    return stdout;
  } catch (err) {
    const e = err as { code?: unknown; stderr?: unknown };
    assert.fail(
      `kubectl aegis ${args.join(' ')}: exit ${String(e.code)}: ${String(e.stderr ?? err)}`,
    );
  }
}

/** The webhook's notifications of one node's group. */
function notificationsOf(node: string): WebhookNotification[] {
  return (webhook?.notifications ?? []).filter((n) => n.groupLabels['node'] === node);
}

/** Posts Alertmanager accepted, and posts that failed, so far (aegis_notifications_total). */
async function posts(): Promise<{ ok: number; failed: number }> {
  const { values } = (await replica?.metrics.notifications.get()) ?? { values: [] };
  let ok = 0;
  let failed = 0;
  for (const v of values) {
    if (v.labels['result'] === 'ok') ok += v.value;
    else failed += v.value;
  }
  return { ok, failed };
}

/** `status alertname…` of each notification of a node, for assertion messages. */
function describeNotifications(node: string): string {
  return JSON.stringify(
    notificationsOf(node).map(
      (n) =>
        `${n.status}: ${n.alerts.map((a) => `${a.labels['alertname'] ?? '?'} ${a.status}`).join(', ')}`,
    ),
  );
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aegis-operators-'));
  kubeconfig = join(dir, 'kubeconfig');
  webhook = await startWebhook();
  const interval = `${String(GROUP_MS / 1000)}s`;
  am = await startAlertmanager({
    webhookUrl: webhook.url,
    groupBy: ['node'],
    groupWait: interval,
    groupInterval: interval,
    repeatInterval: '1h',
  });
  cluster = await startTestCluster({ kwok: true, kcm: true });
  await createOperator();
  world = createFleetWorld(4);
  await createKwokNodes(cluster, world);
  replica = startReplica({
    cluster,
    world,
    holder: 'aegis-operators-e2e',
    notifications: true,
    config: testConfig({
      'approval.rules': [{ actions: ['Reboot'] }],
      // Four nodes: the shipped 10 % would let Aegis cordon one node only.
      'safety.maxCordonedFraction': 0.5,
      'notify.alertmanager.urls': [am.url],
      // Re-posted every 3 s (endsAt 9 s ahead): the test sees refreshes, none notified again.
      'notify.alertmanager.refreshMs': '3s',
    }),
  });
  const now = Date.now();
  world.faults.injectFault({ condition: HANDOFF_CONDITION, node: HANDOFF_NODE, atMs: now });
  world.faults.injectFault({ condition: 'Xid79GPULost', node: APPROVAL_NODE, atMs: now });
});

after(async () => {
  await replica?.stop();
  await am?.stop();
  await webhook?.close();
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('operators in the loop: Alertmanager notifications, kubectl aegis ack and approve', () => {
  it('a hand-off is notified once at the webhook (grouped by node), and resolved once after kubectl aegis ack', async () => {
    const handedOff = await ticketWhere(
      cluster,
      HANDOFF_NODE,
      'handed to a human',
      (t) => t.status === 'assigned',
      { timeoutMs: 45_000, replicas: [replica] },
    );
    assert.deepEqual(
      handedOff.workflows.map((w) => `${w.action} ${w.status}`),
      ['Cordon Succeeded', 'Diagnose Succeeded', 'HandToHuman Succeeded'],
    );
    const firing = await eventually(
      `a firing notification for ${HANDOFF_NODE}`,
      () => Promise.resolve(notificationsOf(HANDOFF_NODE).find((n) => n.status === 'firing')),
      15_000,
    ).catch((err: unknown) => {
      throw new Error(`${describeNotifications(HANDOFF_NODE)}\n${am?.logTail() ?? ''}`, {
        cause: err,
      });
    });
    assert.equal(firing.receiver, 'aegis-test');
    assert.deepEqual(firing.groupLabels, { node: HANDOFF_NODE });
    assert.equal(firing.alerts.length, 1, describeNotifications(HANDOFF_NODE));
    const alert = firing.alerts[0];
    assert.ok(alert !== undefined);
    assert.equal(alert.status, 'firing');
    assert.deepEqual(
      {
        alertname: alert.labels['alertname'],
        severity: alert.labels['severity'],
        condition: alert.labels['condition'],
        domain: alert.labels['domain'],
        sop: alert.labels['sop'],
        ticket_status: alert.labels['ticket_status'],
      },
      {
        alertname: AlertName.HandedToHuman,
        severity: 'critical',
        condition: HANDOFF_CONDITION,
        domain: 'System',
        sop: 'system.report',
        ticket_status: 'assigned',
      },
    );
    assert.match(alert.annotations['summary'] ?? '', /^Aegis handed gpu-node-0001 to sre: /);
    assert.match(alert.annotations['description'] ?? '', /HandToHuman Succeeded/);
    // The alert is refreshed (re-posted every 3 s) while the ticket stays open: never notified again.
    const before = await posts();
    await delay(7_000);
    const refreshed = await posts();
    assert.ok(refreshed.ok - before.ok >= 2, `refreshed: ${JSON.stringify([before, refreshed])}`);
    assert.equal(refreshed.failed, 0);
    assert.deepEqual(
      notificationsOf(HANDOFF_NODE).map((n) => n.status),
      ['firing'],
      describeNotifications(HANDOFF_NODE),
    );

    const out = await kubectlAegis('ack', HANDOFF_NODE);
    assert.match(out, new RegExp(`ticket closed \\(acknowledged by ${OPERATOR}\\)`));
    const closed = await ticketOf(cluster, HANDOFF_NODE);
    assert.equal(closed?.status, 'closed');
    assert.equal(closed.supervisor, OPERATOR);
    assert.deepEqual(
      closed.operatorLog?.map((l) => `${l.action} ${l.by}`),
      [`ack ${OPERATOR}`],
    );
    const resolved = await eventually(
      `a resolved notification for ${HANDOFF_NODE}`,
      () => Promise.resolve(notificationsOf(HANDOFF_NODE).find((n) => n.status === 'resolved')),
      15_000,
    ).catch((err: unknown) => {
      throw new Error(`${describeNotifications(HANDOFF_NODE)}\n${am?.logTail() ?? ''}`, {
        cause: err,
      });
    });
    assert.deepEqual(
      resolved.alerts.map((a) => `${a.labels['alertname'] ?? '?'} ${a.status}`),
      [`${AlertName.HandedToHuman} resolved`],
    );
    assert.equal(resolved.alerts[0]?.fingerprint, alert.fingerprint, 'the same alert resolved');
    // Several group intervals later: still one firing and one resolved notification, nothing else.
    await delay(4 * GROUP_MS);
    assert.deepEqual(
      notificationsOf(HANDOFF_NODE).map((n) => n.status),
      ['firing', 'resolved'],
      describeNotifications(HANDOFF_NODE),
    );
    // The closed ticket stays closed: the daemon does not re-open the occurrence.
    assert.equal((await ticketOf(cluster, HANDOFF_NODE))?.status, 'closed');
  });

  it('approval mode: the reboot waits, with no Job, until kubectl aegis approve; the ticket records who approved', async () => {
    const pending = await ticketWhere(
      cluster,
      APPROVAL_NODE,
      'Reboot awaiting approval',
      (t) => t.approval?.state === 'pending',
      { timeoutMs: 45_000, replicas: [replica] },
    );
    assert.equal(pending.approval?.action, 'Reboot');
    // Several cycles (every 500 ms) later it still waits, and no reboot Job exists.
    await delay(3_000);
    const held = await ticketOf(cluster, APPROVAL_NODE);
    assert.equal(held?.approval?.state, 'pending');
    const last = held.workflows.at(-1);
    assert.deepEqual(
      { action: last?.action, status: last?.status, message: last?.message },
      { action: 'Reboot', status: 'Held', message: 'approval: awaiting approval' },
    );
    assert.ok(!held.workflows.some((w) => w.action === 'Reboot' && w.status !== 'Held'));
    assert.deepEqual(await jobsOf(cluster, APPROVAL_NODE, 'restart_node'), []);
    assert.ok(
      !(replica?.observed.stats.jobsCreated ?? []).some(
        (j) => j.kind === 'restart_node' && j.node === APPROVAL_NODE,
      ),
      'the controller never asked for a reboot Job',
    );
    // The wait is announced: AegisApprovalPending in the node's group.
    const announced = await eventually(
      `AegisApprovalPending for ${APPROVAL_NODE}`,
      () =>
        Promise.resolve(
          notificationsOf(APPROVAL_NODE).find((n) =>
            n.alerts.some(
              (a) =>
                a.status === 'firing' &&
                a.labels['alertname'] === AlertName.ApprovalPending &&
                a.labels['action'] === 'Reboot',
            ),
          ),
        ),
      15_000,
    );
    assert.equal(announced.status, 'firing');

    const out = await kubectlAegis('approve', APPROVAL_NODE);
    assert.equal(out, `node/${APPROVAL_NODE} Reboot approved by ${OPERATOR}\n`);
    const rebooting = await ticketWhere(
      cluster,
      APPROVAL_NODE,
      'Reboot started',
      (t) => t.workflows.some((w) => w.action === 'Reboot' && w.approvedBy !== undefined),
      { timeoutMs: 30_000, replicas: [replica] },
    );
    const jobs = await eventually(
      'the reboot Job',
      async () => {
        const items = await jobsOf(cluster, APPROVAL_NODE, 'restart_node');
        return items.length > 0 ? items : undefined;
      },
      15_000,
    );
    assert.equal(jobs.length, 1);
    const approve = rebooting.operatorLog?.find((l) => l.action === 'approve');
    assert.equal(approve?.by, OPERATOR);
    const reboot = rebooting.workflows.find((w) => w.action === 'Reboot' && w.status !== 'Held');
    assert.equal(reboot?.approvedBy, `${OPERATOR} at ${approve.at}`);
    assert.match(reboot.approvedBy, /^system:serviceaccount:oncall:alice at \d{4}-\d\d-\d\dT\S+Z$/);
    // Approved and started: the announcement is resolved.
    await eventually(
      `AegisApprovalPending resolved for ${APPROVAL_NODE}`,
      () =>
        Promise.resolve(
          notificationsOf(APPROVAL_NODE).find((n) =>
            n.alerts.some(
              (a) =>
                a.status === 'resolved' &&
                a.labels['alertname'] === AlertName.ApprovalPending &&
                a.fingerprint ===
                  announced.alerts.find((x) => x.labels['alertname'] === AlertName.ApprovalPending)
                    ?.fingerprint,
            ),
          ),
        ),
      15_000,
    ).catch((err: unknown) => {
      throw new Error(describeNotifications(APPROVAL_NODE), { cause: err });
    });
  });
});
