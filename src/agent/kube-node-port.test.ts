import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isHealError } from '../core/errors.js';
import { createKubeNodePort, inClusterEndpoint } from './kube-node-port.js';

interface Seen {
  method: string;
  url: string;
  auth: string;
  type: string;
  body: string;
}
const seen: Seen[] = [];
let status = 200;
const dir = mkdtempSync(join(tmpdir(), 'agent-kube-'));
const tokenFile = join(dir, 'token');
const server = createServer((req: IncomingMessage, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      auth: req.headers.authorization ?? '',
      type: req.headers['content-type'] ?? '',
      body,
    });
    if (status !== 200) {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'Status',
          message:
            'nodes "gpu-001" is forbidden: User "system:serviceaccount:monitoring:aegis-agent" cannot patch resource "nodes/status"',
        }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        metadata: { name: 'gpu-001', labels: { 'kubernetes.io/hostname': 'gpu-001' } },
        status: {
          allocatable: { 'nvidia.com/gpu': '8' },
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'KubeletReady',
              message: 'ok',
              lastTransitionTime: 't',
              lastHeartbeatTime: 't',
            },
          ],
        },
      }),
    );
  });
});
let url = '';
before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});
const signal = new AbortController().signal;

describe('Kubernetes node port (node:https / node:http, no client library)', () => {
  it('GETs the Node with the bearer token, re-read for every request (rotation)', async () => {
    writeFileSync(tokenFile, 'token-1\n');
    const port = createKubeNodePort({ server: url, tokenFile });
    const node = await port.getNode('gpu-001', signal);
    assert.deepEqual(node.allocatable, { 'nvidia.com/gpu': '8' });
    assert.equal(node.conditions[0]?.type, 'Ready');
    writeFileSync(tokenFile, 'token-2\n');
    await port.getNode('gpu-001', signal);
    assert.deepEqual(
      seen.slice(-2).map((s) => [s.method, s.url, s.auth]),
      [
        ['GET', '/api/v1/nodes/gpu-001', 'Bearer token-1'],
        ['GET', '/api/v1/nodes/gpu-001', 'Bearer token-2'],
      ],
    );
  });

  it('PATCHes nodes/status with a strategic-merge patch carrying only its conditions', async () => {
    writeFileSync(tokenFile, 't');
    const port = createKubeNodePort({ server: url, tokenFile });
    const cond = {
      type: 'aegis.io/GpuXid',
      status: 'True' as const,
      reason: 'Xid79',
      message: 'Xid 79 on GPU 0000:06:00',
      lastTransitionTime: '2026-03-01T10:00:00.000Z',
      lastHeartbeatTime: '2026-03-01T10:00:00.000Z',
    };
    await port.patchConditions('gpu-001', [cond], signal);
    const last = seen.at(-1);
    assert.equal(last?.method, 'PATCH');
    assert.equal(last.url, '/api/v1/nodes/gpu-001/status');
    assert.equal(last.type, 'application/strategic-merge-patch+json');
    assert.deepEqual(JSON.parse(last.body), { status: { conditions: [cond] } });
  });

  it("maps a 403 to K8S_FORBIDDEN with the API server's message", async () => {
    status = 403;
    const port = createKubeNodePort({ server: url, tokenFile });
    await assert.rejects(
      port.patchConditions('gpu-001', [], signal),
      (err: unknown) =>
        isHealError(err, 'K8S_FORBIDDEN') &&
        /HTTP 403: nodes "gpu-001" is forbidden/.test(err.message),
    );
    status = 200;
  });

  it('in a pod: the ServiceAccount files and the service address; outside: a clear error', () => {
    assert.deepEqual(
      inClusterEndpoint({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }),
      {
        server: 'https://10.96.0.1:443',
        tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
        caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
      },
    );
    assert.throws(() => inClusterEndpoint({}), /not in a pod .*--no-conditions/);
  });
});
