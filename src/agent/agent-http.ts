/**
 * The agent's HTTP endpoint: GET /metrics (Prometheus text), /healthz. Nothing else is served.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentMetrics } from './agent-metrics.js';

/** A listening server. */
export interface AgentHttp {
  readonly url: string;
  close(): Promise<void>;
}

/** Listens on host:port (port 0: any free port). */
export async function startAgentHttp(
  metrics: AgentMetrics,
  host: string,
  port: number,
): Promise<AgentHttp> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/metrics') {
      metrics
        .render()
        .then((text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text);
        })
        .catch((err: unknown) => {
          res.writeHead(500).end(String(err));
        });
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200).end('ok');
      return;
    }
    res.writeHead(404).end('not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    url: `http://${shown}:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
