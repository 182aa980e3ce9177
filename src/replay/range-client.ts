/**
 * The replay's reader of Prometheus history: `/api/v1/query_range` (one request for many steps)
 * and `/api/v1/query` (instant, for the few reads a replay makes off the step grid), POST form,
 * with the daemon's bearer-token and TLS options. Read-only: nothing is ever written anywhere.
 *
 * Every failure is a HealError naming the server and the query: PROM_UNAVAILABLE (unreachable,
 * timeout, 5xx), PROM_BAD_RESPONSE (4xx, malformed body, partial-data warnings),
 * PROM_RESPONSE_TOO_LARGE (an answer over the cap, dropped unread; the range source then asks
 * for fewer steps at a time).
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { z } from 'zod';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import { collectBoundedBody } from '../prom/bounded-body.js';
import type { InstantSample } from '../prom/metrics-source.js';
import { parseSampleValue, promEndpoint, refuseTokenOverHttp } from '../prom/prom-client.js';

/** One series of a range answer: its labels and its points (ms, value), in time order. */
export interface RangeSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly points: readonly (readonly [number, number])[];
}

/** Reads history. */
export interface HistoryReader {
  /** `expr` evaluated at `startMs`, `startMs + stepMs`, … up to `endMs` (both included). */
  queryRange(
    expr: string,
    startMs: number,
    endMs: number,
    stepMs: number,
    signal: AbortSignal,
  ): Promise<readonly RangeSeries[]>;
  /** `expr` evaluated at `atMs`. */
  query(expr: string, atMs: number, signal: AbortSignal): Promise<readonly InstantSample[]>;
  /** Requests sent so far, by kind. */
  readonly sent: { readonly range: number; readonly instant: number };
}

/** How to reach Prometheus (the `prometheus` section of the config, plus `--prometheus`). */
export interface HistoryReaderOptions {
  readonly url: string;
  readonly bearerTokenFile?: string;
  readonly caFile?: string;
  readonly insecureSkipVerify?: boolean;
  readonly allowInsecureBearerToken?: boolean;
  /** Largest answer read (default 64 MiB: a range answer holds many steps). */
  readonly maxResponseBytes?: number;
  /** Deadline of one request (default 120 s, Prometheus's own query timeout). */
  readonly timeoutMs?: number;
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 120_000;

const Envelope = z.object({
  status: z.enum(['success', 'error']),
  data: z.object({ resultType: z.string(), result: z.array(z.unknown()) }).optional(),
  error: z.string().optional(),
  errorType: z.string().optional(),
  warnings: z.array(z.string()).optional(),
});
const MatrixSeries = z.object({
  metric: z.record(z.string(), z.string()),
  values: z.array(z.tuple([z.number(), z.string()])),
});
const VectorSample = z.object({
  metric: z.record(z.string(), z.string()),
  value: z.tuple([z.number(), z.string()]),
});

/** Builds the reader. A bad URL, or a token over plain http unless allowed, is CONFIG_INVALID. */
export function createHistoryReader(opts: HistoryReaderOptions): HistoryReader {
  refuseTokenOverHttp({
    url: opts.url,
    hasToken: opts.bearerTokenFile !== undefined,
    allowed: opts.allowInsecureBearerToken === true,
    fields: {
      url: '--prometheus',
      token: 'prometheus.bearerTokenFile',
      allow: 'prometheus.allowInsecureBearerToken',
    },
  });
  const { base, isHttps, agent } = promEndpoint(opts);
  const maxBytes = opts.maxResponseBytes ?? DEFAULT_MAX_BYTES;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const sent = { range: 0, instant: 0 };

  const call = async (
    path: string,
    form: Record<string, string>,
    expr: string,
    signal: AbortSignal,
  ): Promise<{ resultType: string; result: unknown[] }> => {
    const url = new URL(path, base);
    const body = new URLSearchParams(form).toString();
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      'content-length': String(Buffer.byteLength(body)),
    };
    if (opts.bearerTokenFile !== undefined)
      headers['authorization'] = `Bearer ${readFileSync(opts.bearerTokenFile, 'utf8').trim()}`;
    const deadline = AbortSignal.timeout(timeoutMs);
    const { status, text } = await post({
      url,
      body,
      headers,
      signal: AbortSignal.any([signal, deadline]),
      isHttps,
      agent,
      maxBytes,
      expr,
    }).catch((err: unknown) => {
      if (deadline.aborted && !signal.aborted)
        throw new HealError(
          ErrorCode.PromUnavailable,
          `Prometheus at ${url.origin} did not answer within ${timeoutMs / 1000} s for ${expr}`,
          { cause: err },
        );
      throw err;
    });
    if (status >= 500)
      throw new HealError(
        ErrorCode.PromUnavailable,
        `Prometheus at ${url.origin} answered ${status} for ${expr}: ${text.slice(0, 200)}`,
      );
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new HealError(
        ErrorCode.PromBadResponse,
        `Prometheus at ${url.origin} answered non-JSON (${status}) for ${expr}: ${text.slice(0, 200)}`,
        { cause: err },
      );
    }
    const parsed = Envelope.safeParse(json);
    if (!parsed.success)
      throw new HealError(
        ErrorCode.PromBadResponse,
        `unexpected answer of Prometheus at ${url.origin} for ${expr}`,
        { cause: parsed.error },
      );
    const r = parsed.data;
    if (r.status !== 'success' || r.data === undefined)
      throw new HealError(
        ErrorCode.PromBadResponse,
        `Prometheus at ${url.origin}: ${r.errorType ?? ''} ${r.error ?? ''} (${expr})`.replace(
          /\s+/g,
          ' ',
        ),
      );
    if ((r.warnings ?? []).length > 0)
      throw new HealError(
        ErrorCode.PromBadResponse,
        `Prometheus at ${url.origin} returned partial data for ${expr}: ${(r.warnings ?? []).join('; ')}`,
      );
    return r.data;
  };

  return {
    sent,
    async queryRange(expr, startMs, endMs, stepMs, signal) {
      sent.range++;
      const data = await call(
        'api/v1/query_range',
        {
          query: expr,
          start: (startMs / 1000).toFixed(3),
          end: (endMs / 1000).toFixed(3),
          step: (stepMs / 1000).toFixed(3),
        },
        expr,
        signal,
      );
      if (data.resultType !== 'matrix')
        throw new HealError(
          ErrorCode.PromBadResponse,
          `expected a matrix for the range query ${expr}, got ${data.resultType}`,
        );
      return data.result.map((raw): RangeSeries => {
        const s = MatrixSeries.safeParse(raw);
        if (!s.success)
          throw new HealError(
            ErrorCode.PromBadResponse,
            `malformed series in the range answer for ${expr}`,
          );
        return {
          labels: s.data.metric,
          points: s.data.values.map(([t, v]) => [Math.round(t * 1000), parseSampleValue(v)]),
        };
      });
    },
    async query(expr, atMs, signal) {
      sent.instant++;
      const data = await call(
        'api/v1/query',
        { query: expr, time: (atMs / 1000).toFixed(3) },
        expr,
        signal,
      );
      if (data.resultType !== 'vector')
        throw new HealError(
          ErrorCode.PromBadResponse,
          `expected a vector for ${expr}, got ${data.resultType}`,
        );
      return data.result.map((raw): InstantSample => {
        const s = VectorSample.safeParse(raw);
        if (!s.success)
          throw new HealError(
            ErrorCode.PromBadResponse,
            `malformed sample in the answer for ${expr}`,
          );
        return { labels: s.data.metric, value: parseSampleValue(s.data.value[1]) };
      });
    },
  };
}

interface Post {
  readonly url: URL;
  readonly body: string;
  readonly headers: Record<string, string>;
  readonly signal: AbortSignal;
  readonly isHttps: boolean;
  readonly agent: Agent | undefined;
  readonly maxBytes: number;
  readonly expr: string;
}

/** One POST, its answer read up to `maxBytes` (a longer one is dropped unread). */
function post(p: Post): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const tooLarge = (): HealError =>
      new HealError(
        ErrorCode.PromResponseTooLarge,
        `Prometheus answer for ${p.expr} is over ${p.maxBytes} bytes; dropped unread`,
      );
    const req = (p.isHttps ? httpsRequest : httpRequest)(
      p.url,
      {
        method: 'POST',
        headers: p.headers,
        signal: p.signal,
        ...(p.agent === undefined ? {} : { agent: p.agent }),
      },
      (res) => {
        collectBoundedBody(req, res, p.maxBytes, {
          resolve,
          reject,
          tooLarge,
          readFailed: (err) =>
            new HealError(
              ErrorCode.PromUnavailable,
              `reading the answer of Prometheus at ${p.url.origin} failed: ${errorMessage(err)}`,
              { cause: err },
            ),
        });
      },
    );
    req.on('error', (err) => {
      if (p.signal.aborted) {
        reject(err);
        return;
      }
      reject(
        new HealError(
          ErrorCode.PromUnavailable,
          `Prometheus at ${p.url.origin} unreachable: ${errorMessage(err)}`,
          { cause: err },
        ),
      );
    });
    req.end(p.body);
  });
}
