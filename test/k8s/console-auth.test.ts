/**
 * The operator console on a real API server: TokenReview and SubjectAccessReview are the
 * apiserver's own, asked with the controller's ServiceAccount under the shipped RBAC
 * (deploy/aegis/rbac.yaml), and the callers are ServiceAccounts with bearer tokens from the
 * TokenRequest API bound to the shipped ClusterRoles of deploy/aegis/console-rbac.yaml: alice
 * (aegis-console-operator) may approve and pause the fleet, victor (aegis-console-viewer) may
 * read and is refused every write, mallory (no binding) may not even read, and a made-up token is
 * not a caller. The writes go through the controller's client (its RBAC, the admission policy
 * aegis-incident-records that lets it update aegis-control) and name the caller.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuthenticationV1TokenRequest } from '@kubernetes/client-node';
import { defaultConfig, type Config } from '../../src/config/schema.js';
import { DEMO_TOKEN_PREFIX } from '../../src/console/access.js';
import { startDaemonConsole } from '../../src/console/daemon-console.js';
import { createConsoleKube } from '../../src/console/kube-access.js';
import type { ConsoleHandle } from '../../src/console/server.js';
import { CONTROL_CONFIGMAP, TICKET_ANNOTATION } from '../../src/core/types.js';
import { silentLogger } from '../../src/engine/logger.js';
import type { KubeCluster } from '../../src/k8s/kube-cluster.js';
import { newTicket, parseTicket, serializeTicket, type Ticket } from '../../src/ticket/ticket.js';
import { call } from '../console/harness.js';
import { createNode, createObject, startTestCluster, type TestCluster } from './setup.js';

const NS = 'console-users';
const NODE = 'console-node-1';
const ALICE = `system:serviceaccount:${NS}:alice`;

let cluster: TestCluster;
let kube: KubeCluster;
let console_: (ConsoleHandle & { stopWatching(): void }) | undefined;
let base: string;
const tokens: Record<string, string> = {};

async function ticket(): Promise<Ticket> {
  const n = await cluster.adminCore.readNode({ name: NODE });
  const raw = n.metadata?.annotations?.[TICKET_ANNOTATION];
  assert.ok(raw !== undefined, 'the node has a ticket');
  return parseTicket(raw, NODE);
}

before(async () => {
  cluster = await startTestCluster();
  await createObject(cluster.admin, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: NS },
  });
  for (const [sa, role] of [
    ['alice', 'aegis-console-operator'],
    ['victor', 'aegis-console-viewer'],
    ['mallory', undefined],
  ] as const) {
    await createObject(cluster.admin, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: sa, namespace: NS },
    });
    if (role !== undefined) {
      await createObject(cluster.admin, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: `console-${sa}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ kind: 'ServiceAccount', name: sa, namespace: NS }],
      });
    }
    const tr = await cluster.adminCore.createNamespacedServiceAccountToken({
      name: sa,
      namespace: NS,
      body: Object.assign(new AuthenticationV1TokenRequest(), {
        spec: { audiences: [], expirationSeconds: 3600 },
      }),
    });
    tokens[sa] = tr.status?.token ?? '';
    assert.ok(tokens[sa] !== '', `a token for ${sa}`);
  }
  // A ticket as the daemon writes it, its reboot held for approval.
  await createNode(cluster, NODE);
  const now = Date.now();
  const t: Ticket = {
    ...newTicket({ condition: 'Xid79GPULost', reason: 'test', nowMs: now - 60_000 }),
    workflows: [
      {
        action: 'Reboot',
        status: 'Held',
        time: new Date(now).toISOString(),
        message: 'approval: awaiting approval',
      },
    ],
    approval: { action: 'Reboot', state: 'pending', requestedAt: new Date(now).toISOString() },
  };
  kube = cluster.controller();
  const signal = AbortSignal.timeout(10_000);
  const node = await kube.getNode(NODE, signal);
  await kube.patchNodeAnnotations(
    NODE,
    { [TICKET_ANNOTATION]: serializeTicket(t) },
    node.resourceVersion,
    signal,
  );
  const base0 = defaultConfig();
  const config: Config = { ...base0, console: { ...base0.console, port: 0, host: '127.0.0.1' } };
  const { stack } = cluster;
  console_ = await startDaemonConsole({
    config,
    cluster: kube,
    priorityOf: () => () => 999,
    log: silentLogger,
    kube: createConsoleKube(
      {
        server: stack.server,
        token: stack.controllerToken,
        caData: stack.caData,
        skipTLSVerify: false,
      },
      'monitoring',
    ),
  });
  base = console_.url;
});

after(async () => {
  console_?.stopWatching();
  await console_?.close();
  await kube.close?.();
  await cluster.stop();
});

describe('console on a real apiserver (TokenReview, SubjectAccessReview)', () => {
  it('a made-up token (a demo-looking one too) is not a caller; a token without a binding may not read', async () => {
    assert.equal((await call(`${base}/api/fleet`, { bearer: 'not-a-real-token' })).status, 401);
    // The demo's token scheme is never the daemon's: such a token is just another unknown token.
    const demo = `${DEMO_TOKEN_PREFIX}operator-${'0'.repeat(32)}`;
    assert.equal((await call(`${base}/api/fleet`, { bearer: demo })).status, 401);
    const r = await call(`${base}/api/fleet`, { bearer: tokens['mallory'] ?? '' });
    assert.equal(r.status, 403);
    assert.match(String(r.body['error']), /may not view the console/);
  });

  it('a viewer reads the fleet and the node, and may do no action', async () => {
    const viewer = tokens['victor'] ?? '';
    const fleet = await call(`${base}/api/fleet`, { bearer: viewer });
    assert.equal(fleet.status, 200);
    assert.ok((fleet.body['rows'] as [string][]).some((r) => r[0] === NODE));
    const s = await call(`${base}/api/session`, { bearer: viewer });
    assert.equal(s.body['user'], `system:serviceaccount:${NS}:victor`);
    assert.ok(Object.values(s.body['may'] as Record<string, boolean>).every((v) => !v));
    const before = await ticket();
    for (const action of ['approve', 'takeover', 'ack', 'pause']) {
      const r = await call(`${base}/api/nodes/${NODE}/${action}`, {
        body: { confirm: true },
        bearer: viewer,
      });
      assert.equal(r.status, 403, `${action}: ${JSON.stringify(r.body)}`);
    }
    const pause = await call(`${base}/api/fleet/pause`, {
      body: { confirm: true },
      bearer: viewer,
    });
    assert.equal(pause.status, 403);
    assert.deepEqual(await ticket(), before, 'nothing written');
  });

  it('an operator approves: the ticket names them as the apiserver knows them', async () => {
    const r = await call(`${base}/api/nodes/${NODE}/approve`, {
      body: { confirm: true },
      bearer: tokens['alice'] ?? '',
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const t = await ticket();
    assert.equal(t.approval?.state, 'approved');
    assert.equal(t.approval.by, ALICE);
    assert.deepEqual(
      t.operatorLog?.map((l) => [l.action, l.by]),
      [['approve', ALICE]],
    );
  });

  it('an operator pauses all automation: aegis-control updated by the controller, naming them', async () => {
    const r = await call(`${base}/api/fleet/pause`, {
      body: { confirm: true },
      bearer: tokens['alice'] ?? '',
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const cm = await cluster.adminCore.readNamespacedConfigMap({
      name: CONTROL_CONFIGMAP,
      namespace: 'monitoring',
    });
    assert.equal(cm.data?.['paused'], 'true');
    assert.equal(cm.data['pausedBy'], ALICE);
    const q = await call(`${base}/api/queue`, { bearer: tokens['victor'] ?? '' });
    const summary = q.body['summary'] as { automation: { paused: boolean } };
    assert.equal(summary.automation.paused, true);
  });
});
