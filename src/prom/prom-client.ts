import { readFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { z } from 'zod';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import type { InstantSample, MetricsSource } from './metrics-source.js';

const VectorResponse = z.object({
  status: z.enum(['success', 'error']),
  data: z
    .object({
      resultType: z.string(),
      result: z.array(
        z.object({
          metric: z.record(z.string(), z.string()),
          value: z.tuple([z.number(), z.string()]),
        }),
      ),
    })
    .optional(),
  error: z.string().optional(),
  errorType: z.string().optional(),
  warnings: z.array(z.string()).optional(),
});

/** How to reach Prometheus. */
export interface PromClientOptions {
  readonly url: string;
  readonly bearerToken?: string;
  readonly bearerTokenFile?: string;
  readonly caFile?: string;
  readonly insecureSkipVerify?: boolean;
}

/**
 * The real MetricsSource: Prometheus's HTTP API (`/api/v1/query`, POST form), with bearer token
 * and TLS options. Any failure is a HealError: PROM_UNAVAILABLE (network, timeout, 5xx) or
 * PROM_BAD_RESPONSE (4xx, malformed body, warnings about partial data). A partial answer is
 * never returned as if it were whole.
 */
export function createPromClient(opts: PromClientOptions): MetricsSource {
  const base = new URL(opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
  const isHttps = base.protocol === 'https:';
  const agent = isHttps
    ? new Agent({
        keepAlive: true,
        rejectUnauthorized: opts.insecureSkipVerify !== true,
        ...(opts.caFile === undefined ? {} : { ca: readFileSync(opts.caFile) }),
      })
    : undefined;
  const token = (): string | undefined =>
    opts.bearerToken ??
    (opts.bearerTokenFile === undefined
      ? undefined
      : readFileSync(opts.bearerTokenFile, 'utf8').trim());

  return {
    async query(expr, atMs, signal) {
      const body = new URLSearchParams({ query: expr, time: (atMs / 1000).toFixed(3) }).toString();
      const url = new URL('api/v1/query', base);
      const headers: Record<string, string> = {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': String(Buffer.byteLength(body)),
      };
      const t = token();
      if (t !== undefined) headers['authorization'] = `Bearer ${t}`;
      const { status, text } = await post({ url, body, headers, signal, isHttps, agent });
      if (status >= 500)
        throw new HealError(
          ErrorCode.PromUnavailable,
          `Prometheus answered ${status} for ${expr}: ${text.slice(0, 200)}`,
        );
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new HealError(
          ErrorCode.PromBadResponse,
          `Prometheus answered non-JSON (${status}) for ${expr}`,
          { cause: err },
        );
      }
      const parsed = VectorResponse.safeParse(json);
      if (!parsed.success)
        throw new HealError(
          ErrorCode.PromBadResponse,
          `unexpected Prometheus response for ${expr}`,
          { cause: parsed.error },
        );
      const r = parsed.data;
      if (r.status !== 'success' || r.data === undefined) {
        throw new HealError(
          ErrorCode.PromBadResponse,
          `Prometheus error for ${expr}: ${r.errorType ?? ''} ${r.error ?? ''}`.trim(),
        );
      }
      if ((r.warnings ?? []).length > 0) {
        throw new HealError(
          ErrorCode.PromBadResponse,
          `Prometheus returned partial data for ${expr}: ${(r.warnings ?? []).join('; ')}`,
        );
      }
      if (r.data.resultType !== 'vector') {
        throw new HealError(
          ErrorCode.PromBadResponse,
          `expected a vector for ${expr}, got ${r.data.resultType}`,
        );
      }
      return r.data.result.map((s): InstantSample => ({
        labels: s.metric,
        value: parseSampleValue(s.value[1]),
      }));
    },
  };
}

/** One query's HTTP request. */
interface Post {
  readonly url: URL;
  readonly body: string;
  readonly headers: Record<string, string>;
  readonly signal: AbortSignal;
  readonly isHttps: boolean;
  readonly agent: Agent | undefined;
}

/**
 * One POST. A keep-alive connection the server closed just as it was reused fails with
 * ECONNRESET before any answer: the query (a read) is sent once more, on a new connection.
 */
async function post(p: Post): Promise<{ status: number; text: string }> {
  try {
    return await postOnce(p);
  } catch (err) {
    if (!(err instanceof ReusedSocketReset)) throw err;
    return postOnce(p);
  }
}

/** A reused keep-alive connection was reset before the answer (safe to send again). */
class ReusedSocketReset extends HealError {}

function postOnce({
  url,
  body,
  headers,
  signal,
  isHttps,
  agent,
}: Post): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = (isHttps ? httpsRequest : httpRequest)(
      url,
      { method: 'POST', headers, signal, ...(agent === undefined ? {} : { agent }) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (err) => {
          reject(
            new HealError(
              ErrorCode.PromUnavailable,
              `reading Prometheus response failed: ${errorMessage(err)}`,
              { cause: err },
            ),
          );
        });
      },
    );
    req.on('error', (err) => {
      if (signal.aborted) {
        reject(err);
        return;
      }
      const reset = req.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET';
      reject(
        new (reset ? ReusedSocketReset : HealError)(
          ErrorCode.PromUnavailable,
          `Prometheus at ${url.origin} unreachable: ${errorMessage(err)}`,
          { cause: err },
        ),
      );
    });
    req.end(body);
  });
}

/** Prometheus sample values as sent on the wire: numbers, `+Inf`, `-Inf`, `NaN`. */
export function parseSampleValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}
