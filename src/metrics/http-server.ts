import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.js';

/** Serves /metrics, /healthz and /readyz. `ready()` decides readiness (e.g. first cycle done). */
export async function startMetricsServer(opts: {
  metrics: Metrics;
  port: number;
  host?: string;
  ready: () => boolean;
}): Promise<{ url: string; close(): Promise<void>; server: Server }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      opts.metrics.registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': opts.metrics.registry.contentType });
          res.end(text);
        })
        .catch((err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        });
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200);
      res.end('ok');
      return;
    }
    if (path === '/readyz') {
      const ok = opts.ready();
      res.writeHead(ok ? 200 : 503);
      res.end(ok ? 'ready' : 'not ready');
      return;
    }
    res.writeHead(404);
    res.end('not found');
  });
  await new Promise<void>((resolve) => server.listen(opts.port, opts.host ?? '0.0.0.0', resolve));
  const addr = server.address() as AddressInfo;
  return {
    server,
    url: `http://${opts.host ?? '127.0.0.1'}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  };
}
