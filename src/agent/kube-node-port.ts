/**
 * The real NodePort: two REST calls on the API server with the pod's ServiceAccount token, over
 * node:https. Not @kubernetes/client-node: loading it costs ~67 MB of RSS (measured, docs/agent.md),
 * more than the agent's whole 64 MB budget, for two requests.
 *   GET   /api/v1/nodes/<name>
 *   PATCH /api/v1/nodes/<name>/status  (application/strategic-merge-patch+json: conditions merge
 *         by type, so other writers' conditions, the kubelet's included, are left alone)
 * In a pod: KUBERNETES_SERVICE_HOST/PORT and the projected token and CA under
 * /var/run/secrets/kubernetes.io/serviceaccount; the token file is re-read for every request (it is
 * rotated). Outside: `server`, `tokenFile`, optional `caFile`. Failures are HealErrors K8S_*.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { ErrorCode, HealError } from '../core/errors.js';
import type { NodeCondition, NodePort, NodeView } from './node-port.js';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const REQUEST_TIMEOUT_MS = 10_000;
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Where the API server is and how to authenticate. */
export interface KubeEndpoint {
  readonly server: string;
  readonly tokenFile: string;
  readonly caFile?: string;
}

/** The in-cluster endpoint from the pod's environment; throws CONFIG_INVALID outside a pod. */
export function inClusterEndpoint(env: NodeJS.ProcessEnv): KubeEndpoint {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (host === undefined) {
    throw new HealError(
      ErrorCode.ConfigInvalid,
      'not in a pod (no KUBERNETES_SERVICE_HOST): give --kube-server and --kube-token-file, or --no-conditions',
    );
  }
  const h = host.includes(':') ? `[${host}]` : host;
  return {
    server: `https://${h}:${port}`,
    tokenFile: `${SA_DIR}/token`,
    caFile: `${SA_DIR}/ca.crt`,
  };
}

/** Builds the adapter. */
export function createKubeNodePort(endpoint: KubeEndpoint): NodePort {
  const url = new URL(endpoint.server);
  const https = url.protocol === 'https:';
  const ca = endpoint.caFile === undefined ? undefined : readFileSync(endpoint.caFile);
  const agent = https
    ? new HttpsAgent({ keepAlive: true, ...(ca ? { ca } : {}) })
    : new HttpAgent({ keepAlive: true });
  const call = (
    method: string,
    path: string,
    signal: AbortSignal,
    body?: string,
  ): Promise<unknown> => {
    const token = readFileSync(endpoint.tokenFile, 'utf8').trim();
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      accept: 'application/json',
    };
    if (body !== undefined) headers['content-type'] = 'application/strategic-merge-patch+json';
    const what = `${method} ${path}`;
    return new Promise((resolve, reject) => {
      const req = (https ? httpsRequest : httpRequest)(
        new URL(path, url),
        {
          method,
          headers,
          agent,
          signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size <= MAX_BODY_BYTES) chunks.push(c);
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(parseJson(text, what));
            else reject(statusError(status, what, text));
          });
          res.on('error', (e) => {
            reject(new HealError(ErrorCode.K8sUnavailable, `${what}: ${e.message}`, { cause: e }));
          });
        },
      );
      req.on('error', (e) => {
        reject(
          signal.aborted
            ? e
            : new HealError(ErrorCode.K8sUnavailable, `${what}: ${e.message}`, { cause: e }),
        );
      });
      req.end(body);
    });
  };
  return {
    async getNode(name, signal) {
      return toNodeView(await call('GET', `/api/v1/nodes/${encodeURIComponent(name)}`, signal));
    },
    async patchConditions(name, conditions, signal) {
      const body = JSON.stringify({ status: { conditions } });
      await call('PATCH', `/api/v1/nodes/${encodeURIComponent(name)}/status`, signal, body);
    },
  };
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HealError(ErrorCode.K8sUnavailable, `${what}: response is not JSON`, { cause: err });
  }
}

function statusError(status: number, what: string, text: string): HealError {
  const code =
    status === 401 || status === 403
      ? ErrorCode.K8sForbidden
      : status === 404
        ? ErrorCode.K8sNotFound
        : status === 409
          ? ErrorCode.K8sConflict
          : ErrorCode.K8sUnavailable;
  let message = text.slice(0, 300);
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? message;
  } catch {
    // not a Status object: keep the raw text
  }
  return new HealError(code, `${what}: HTTP ${status}: ${message}`);
}

function toNodeView(doc: unknown): NodeView {
  const node = doc as {
    metadata?: { labels?: Record<string, string> };
    status?: { allocatable?: Record<string, string>; conditions?: NodeCondition[] };
  };
  return {
    labels: node.metadata?.labels ?? {},
    allocatable: node.status?.allocatable ?? {},
    conditions: node.status?.conditions ?? [],
  };
}
