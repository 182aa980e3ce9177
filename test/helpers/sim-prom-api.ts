/**
 * A Prometheus HTTP API on loopback that answers instant queries from any MetricsSource (the
 * simulator's SimMetrics, typically), so a real `aegis run` process with `prometheus.url` pointing
 * here inspects the simulated fleet exactly as it would inspect a real Prometheus.
 *
 * Only `/api/v1/query` is served (GET query string or POST form, `query` and optional `time` in
 * Unix seconds), with Prometheus's JSON envelope: a vector result, or `status: error` with
 * `errorType` (`bad_data` 400 for a rejected expression, `unavailable` 503 for an outage,
 * `execution` 422 otherwise). Sample values are formatted as Prometheus formats them (`NaN`,
 * `+Inf`, `-Inf`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, errorMessage, isHealError } from '../../src/core/errors.js';
import type { Clock } from '../../src/core/clock.js';
import type { InstantSample, MetricsSource } from '../../src/prom/metrics-source.js';

/** Options of `startSimPromApi`. */
export interface SimPromApiOptions {
  /** What answers the queries. */
  readonly source: MetricsSource;
  /** "Now" for queries without `time` (Prometheus's default). */
  readonly clock: Clock;
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1 (loopback only). */
  readonly host?: string;
}

/** A running API server. */
export interface SimPromApi {
  /** Base URL to put in `prometheus.url`, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** Queries answered so far (any outcome). */
  readonly queries: number;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1 << 20;

/** Starts the server; resolves once it listens. */
export async function startSimPromApi(options: SimPromApiOptions): Promise<SimPromApi> {
  let queries = 0;
  const server = createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/api/v1/query') {
      reply(res, 404, { status: 'error', errorType: 'not_found', error: 'only /api/v1/query' });
      return;
    }
    queries++;
    answer(options, req, res).catch((err: unknown) => {
      reply(res, 500, { status: 'error', errorType: 'internal', error: errorMessage(err) });
    });
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
    get queries() {
      return queries;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

async function answer(
  options: SimPromApiOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const params = await readParams(req);
  const expr = params.get('query');
  if (expr === null || expr.trim() === '') {
    reply(res, 400, { status: 'error', errorType: 'bad_data', error: 'query is required' });
    return;
  }
  const time = params.get('time');
  const atMs = time === null ? options.clock.now() : Number(time) * 1000;
  if (!Number.isFinite(atMs)) {
    reply(res, 400, { status: 'error', errorType: 'bad_data', error: `bad time "${time}"` });
    return;
  }
  const ac = new AbortController();
  res.once('close', () => {
    ac.abort(new Error('client went away'));
  });
  let samples: readonly InstantSample[];
  try {
    samples = await options.source.query(expr, atMs, ac.signal);
  } catch (err) {
    const [status, errorType] = isHealError(err, ErrorCode.PromBadResponse)
      ? [400, 'bad_data']
      : isHealError(err, ErrorCode.PromUnavailable)
        ? [503, 'unavailable']
        : [422, 'execution'];
    reply(res, status, { status: 'error', errorType, error: errorMessage(err) });
    return;
  }
  const seconds = atMs / 1000;
  reply(res, 200, {
    status: 'success',
    data: {
      resultType: 'vector',
      result: samples.map((s) => ({ metric: s.labels, value: [seconds, formatValue(s.value)] })),
    },
  });
}

/** The query parameters of a GET (query string) or a POST (form body). */
async function readParams(req: IncomingMessage): Promise<URLSearchParams> {
  const params = new URL(req.url ?? '/', 'http://localhost').searchParams;
  if (req.method !== 'POST') return params;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(chunk);
  }
  for (const [k, v] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) {
    params.set(k, v);
  }
  return params;
}

/** A sample value as Prometheus writes it in JSON. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}
