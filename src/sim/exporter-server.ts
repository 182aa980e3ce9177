/**
 * Serves the simulated fleet's exporters on loopback over node:http, one path per exporter
 * (`/metrics/dcgm`, `/metrics/node`, `/metrics/ksm`, `/metrics/ipmi`, `/metrics/gpfs`,
 * `/metrics/nodecheck`; `?node=<name>` for one node's series, `?shard=<i>&shards=<n>` for every
 * n-th node from the i-th), streamed with back-pressure.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { Clock } from '../core/clock.js';
import { exposition } from './exposition.js';
import type { Exporter } from './family.js';
import type { SeriesStore } from './series-store.js';

/** What the server reads: the store, the clock it serves "now" from, and the effect runner. */
export interface ExpositionSource {
  readonly store: SeriesStore;
  readonly clock: Clock;
  sync?(): void;
}

/** Options of `startExporterServer`. */
export interface ExporterServerOptions {
  readonly fleet: ExpositionSource;
  /** 0 picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1 (loopback only). */
  readonly host?: string;
}

/** A running exporter server. */
export interface ExporterServer {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  close(): Promise<void>;
}

/** Exporters served, by path segment. */
export const SERVED_EXPORTERS: readonly Exporter[] = [
  'dcgm',
  'node',
  'ksm',
  'ipmi',
  'gpfs',
  'nodecheck',
];
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Starts the server; resolves once it listens. */
export async function startExporterServer(options: ExporterServerOptions): Promise<ExporterServer> {
  const server = createServer((req, res) => {
    handle(options.fleet, req, res);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => {
          if (err === undefined) resolve();
          else reject(err);
        });
      }),
  };
}

function handle(source: ExpositionSource, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const match = /^\/metrics\/([a-z]+)$/.exec(url.pathname);
  const exporter = SERVED_EXPORTERS.find((e) => e === match?.[1]);
  if (req.method !== 'GET' || exporter === undefined) {
    res
      .writeHead(404, { 'content-type': 'text/plain' })
      .end(`try ${SERVED_EXPORTERS.map((e) => `/metrics/${e}`).join(' ')}\n`);
    return;
  }
  const node = url.searchParams.get('node') ?? undefined;
  if (node !== undefined && source.store.fleet.node(node) === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`no node ${node}\n`);
    return;
  }
  const shard = shardOf(url.searchParams);
  if (typeof shard === 'string') {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(`${shard}\n`);
    return;
  }
  source.sync?.();
  const chunks = exposition(source.store, exporter, source.clock.now(), {
    ...(node === undefined ? {} : { node }),
    ...(shard === undefined ? {} : { shard }),
  });
  res.writeHead(200, { 'content-type': CONTENT_TYPE });
  const stream = Readable.from(chunks);
  stream.on('error', (err) => {
    res.destroy(err);
  });
  stream.pipe(res);
}

/** `?shard=i&shards=n` (both or neither; 0 <= i < n), or what is wrong with them. */
function shardOf(params: URLSearchParams): { index: number; of: number } | string | undefined {
  const index = params.get('shard');
  const of = params.get('shards');
  if (index === null && of === null) return undefined;
  const i = Number(index);
  const n = Number(of);
  if (!Number.isInteger(i) || !Number.isInteger(n) || n < 1 || i < 0 || i >= n)
    return `shard=${String(index)}&shards=${String(of)}: want whole numbers 0 <= shard < shards`;
  return { index: i, of: n };
}
