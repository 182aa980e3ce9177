/**
 * deploy/agent on a real kube-apiserver (the harness of test/k8s): the manifests apply, and the
 * agent's own Kubernetes adapter (src/agent/kube-node-port.ts, node:https) with a ServiceAccount
 * token bound to an agent pod on node-a may read node-a and write its aegis.io/ conditions, and
 * nothing else: another node, another condition type, or a token not bound to a pod are refused
 * by the shipped admission policy; other verbs by the shipped RBAC.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { request } from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';
import { createKubeNodePort } from '../../src/agent/kube-node-port.js';
import type { NodeCondition, NodePort } from '../../src/agent/node-port.js';
import { isHealError } from '../../src/core/errors.js';
import {
  applyManifests,
  renderKustomization,
  tokenKubeConfig,
} from '../helpers/apply-manifests.js';
import { startKubeStack, type KubeStack } from '../helpers/k8s-harness.js';

const AGENT_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../deploy/agent');
const NS = 'aegis-agent';
const signal = new AbortController().signal;
let stack: KubeStack;
const AGENT_USER = 'system:serviceaccount:aegis-agent:aegis-agent';
let dir = '';
let port: NodePort;

function condition(type: string, status: 'True' | 'False'): NodeCondition {
  const now = new Date().toISOString();
  return {
    type,
    status,
    reason: status === 'True' ? 'Xid79' : 'NoFatalXid',
    message: 'test',
    lastTransitionTime: now,
    lastHeartbeatTime: now,
  };
}

/** The agent's adapter with a token for the agent ServiceAccount (bound to `pod` when given). */
async function agentPort(pod?: { name: string; uid: string }): Promise<NodePort> {
  const spec = {
    audiences: [],
    expirationSeconds: 3600,
    ...(pod === undefined
      ? {}
      : { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid } }),
  };
  const req = await admin('POST', `/api/v1/namespaces/${NS}/serviceaccounts/aegis-agent/token`, {
    spec,
  });
  const tokenFile = join(dir, `token-${pod?.name ?? 'unbound'}`);
  writeFileSync(tokenFile, String(get(req, 'status', 'token')));
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, Buffer.from(stack.caData, 'base64'));
  return createKubeNodePort({ server: stack.server, tokenFile, caFile });
}

/** One HTTPS call to the test API server with `token`; resolves with the status and JSON body. */
function call(
  method: string,
  path: string,
  token: string,
  body?: unknown,
  type = 'application/json',
): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, stack.server),
      {
        method,
        ca: Buffer.from(stack.caData, 'base64'),
        headers: { authorization: `Bearer ${token}`, 'content-type': type },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(text || '{}') as unknown,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Status of a dry-run PATCH of node-b's conditions with `tokenFile` (admission runs, nothing is stored). */
async function dryRunStatus(tokenFile: string): Promise<number> {
  const body = { status: { conditions: [condition('aegis.io/GpuXid', 'True')] } };
  const token = readFileSync(tokenFile, 'utf8');
  return (
    await call(
      'PATCH',
      '/api/v1/nodes/node-b/status?dryRun=All',
      token,
      body,
      'application/strategic-merge-patch+json',
    )
  ).status;
}

/** The value at `path` in a JSON document. */
function get(doc: unknown, ...path: string[]): unknown {
  let cur = doc;
  for (const key of path) cur = (cur as Record<string, unknown> | undefined)?.[key];
  return cur;
}

/** Admin call that must succeed. */
async function admin(method: string, path: string, body?: unknown): Promise<unknown> {
  const r = await call(method, path, stack.adminToken, body);
  assert.ok(r.status < 300, `${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

async function refused(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(
    p,
    (err: unknown) => isHealError(err, 'K8S_FORBIDDEN') && pattern.test(err.message),
  );
}

before(async () => {
  stack = await startKubeStack();
  dir = mkdtempSync(join(tmpdir(), 'agent-rbac-'));
  await applyManifests(
    tokenKubeConfig(stack.server, stack.caData, stack.adminToken),
    await renderKustomization(AGENT_DIR),
  );
  for (const name of ['node-a', 'node-b'])
    await admin('POST', '/api/v1/nodes', { metadata: { name } });
  const pod = await admin('POST', `/api/v1/namespaces/${NS}/pods`, {
    metadata: { name: 'aegis-agent-a' },
    spec: {
      nodeName: 'node-a',
      serviceAccountName: 'aegis-agent',
      containers: [
        {
          name: 'agent',
          image: 'aegis@sha256:0000000000000000000000000000000000000000000000000000000000000000',
        },
      ],
    },
  });
  port = await agentPort({ name: 'aegis-agent-a', uid: String(get(pod, 'metadata', 'uid')) });
  // The policy is enforced once the API server has loaded it: wait with dry runs.
  for (let i = 0; (await dryRunStatus(join(dir, 'token-aegis-agent-a'))) !== 403; i++) {
    assert.ok(i < 100, 'admission policy never became active');
    await delay(100);
  }
});

after(async () => {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('deploy/agent on a real API server', () => {
  it('the agent (token bound to its pod on node-a) writes its aegis.io/ condition on node-a', async () => {
    await port.patchConditions('node-a', [condition('aegis.io/GpuXid', 'True')], signal);
    const node = await port.getNode('node-a', signal);
    assert.equal(node.conditions.find((c) => c.type === 'aegis.io/GpuXid')?.status, 'True');
  });

  it('another node is refused by the admission policy (read allowed: RBAC cannot name the node)', async () => {
    await refused(
      port.patchConditions('node-b', [condition('aegis.io/GpuXid', 'True')], signal),
      /aegis-agent-own-node.*the node agent may only write the status of the node its pod runs on/,
    );
    assert.equal(
      (await port.getNode('node-b', signal)).conditions.find((c) => c.type === 'aegis.io/GpuXid'),
      undefined,
    );
  });

  it('a condition outside aegis.io/ is refused, even on its own node', async () => {
    await refused(
      port.patchConditions('node-a', [condition('Ready', 'False')], signal),
      /may only change aegis\.io\/ conditions/,
    );
  });

  it('a token not bound to a pod (no node name) is refused', async () => {
    const unbound = await agentPort();
    await refused(
      unbound.patchConditions('node-a', [condition('aegis.io/GpuXid', 'False')], signal),
      /may only write the status of the node its pod runs on/,
    );
  });

  it('RBAC grants nothing else (SubjectAccessReview of the agent ServiceAccount)', async () => {
    const can = async (verb: string, resource: string, subresource = '', namespace = '') => {
      const review = await admin('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: AGENT_USER,
          groups: ['system:serviceaccounts'],
          resourceAttributes: { verb, resource, subresource, namespace },
        },
      });
      return get(review, 'status', 'allowed') === true;
    };
    assert.deepEqual(
      await Promise.all([
        can('get', 'nodes'),
        can('patch', 'nodes', 'status'),
        can('list', 'nodes'),
        can('update', 'nodes'),
        can('patch', 'nodes'),
        can('get', 'secrets', '', 'kube-system'),
        can('create', 'pods', '', NS),
      ]),
      [true, true, false, false, false, false, false],
    );
  });
});
