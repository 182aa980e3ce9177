import { readFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { z } from 'zod';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import type { InstantSample, MetricsSource } from './metrics-source.js';
import { collectBoundedBody } from './bounded-body.js';

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
  /** VictoriaMetrics cluster: some vmstorage nodes did not answer (a partial answer). */
  isPartial: z.boolean().optional(),
});

/** The store behind the Prometheus HTTP API (`prometheus.flavor`). */
export const PROM_FLAVORS = ['prometheus', 'victoriametrics', 'thanos', 'mimir'] as const;
export type PromFlavor = (typeof PROM_FLAVORS)[number];

/**
 * Query parameters a flavor needs beside `query` and `time`:
 * - victoriametrics: `latency_offset=1ms` (it refuses 0). vmselect otherwise evaluates an instant query whose time
 *   is within `-search.latencyOffset` (30 s) of its now at now - 30 s: every fault seen 30 s late,
 *   every repair 30 s late, and a silent exporter still present for 30 s.
 * - thanos: `partial_response=false`, so a store that does not answer fails the query instead of
 *   leaving it out (Thanos's default may be to answer with what it has, plus `warnings`).
 */
export function flavorParams(flavor: PromFlavor): Readonly<Record<string, string>> {
  switch (flavor) {
    case 'victoriametrics':
      return { latency_offset: '1ms' };
    case 'thanos':
      return { partial_response: 'false' };
    case 'prometheus':
    case 'mimir':
      return {};
  }
}

/**
 * MetricsQL functions whose answer differs from PromQL's on the series the catalogue reads, and
 * their Prometheus-compatible MetricsQL forms. `changes` and `increase` count a series' first
 * sample in the window as a change (or as an increase from 0) when no sample precedes it: every
 * node that starts reporting would read as rebooted (NodeHasRestarted's
 * `changes(node_boot_time_seconds[1h]) > 0`) and a new counter's value as errors in the window.
 * The `_prometheus` forms ignore what precedes the window, as Prometheus does.
 */
const METRICSQL_PROMETHEUS_FORMS: Readonly<Record<string, string>> = {
  changes: 'changes_prometheus',
  delta: 'delta_prometheus',
  increase: 'increase_prometheus',
  rate: 'rate_prometheus',
};

/**
 * The expression as a flavor evaluates it like Prometheus: for victoriametrics, the functions of
 * METRICSQL_PROMETHEUS_FORMS called by their Prometheus-compatible names (string literals,
 * metric and label names untouched); other flavors get `expr` unchanged.
 */
export function exprForFlavor(expr: string, flavor: PromFlavor): string {
  if (flavor !== 'victoriametrics') return expr;
  let out = '';
  let i = 0;
  while (i < expr.length) {
    const c = expr.charAt(i);
    if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < expr.length && expr.charAt(j) !== c)
        j += c !== '`' && expr.charAt(j) === '\\' ? 2 : 1;
      out += expr.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const word = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(expr.slice(i))?.[0];
    if (word === undefined) {
      out += c;
      i++;
      continue;
    }
    const next = /^\s*\(/.test(expr.slice(i + word.length));
    out += next ? (METRICSQL_PROMETHEUS_FORMS[word] ?? word) : word;
    i += word.length;
  }
  return out;
}

/** The backend settings of `prometheus` in the config, as client options. */
export function backendOptions(p: {
  readonly flavor: PromFlavor;
  readonly tenant?: string | undefined;
  readonly tenantHeader: string;
}): Pick<PromClientOptions, 'flavor' | 'tenant'> {
  return {
    flavor: p.flavor,
    ...(p.tenant === undefined ? {} : { tenant: { header: p.tenantHeader, value: p.tenant } }),
  };
}

/** How to reach Prometheus. */
export interface PromClientOptions {
  readonly url: string;
  readonly bearerToken?: string;
  readonly bearerTokenFile?: string;
  readonly caFile?: string;
  readonly insecureSkipVerify?: boolean;
  /** Send the bearer token over plain http too (`prometheus.allowInsecureBearerToken`). */
  readonly allowInsecureBearerToken?: boolean;
  /** Largest answer read (`prometheus.maxResponseBytes`); default DEFAULT_MAX_RESPONSE_BYTES. */
  readonly maxResponseBytes?: number;
  /** The store behind the API (`prometheus.flavor`, default prometheus): see flavorParams. */
  readonly flavor?: PromFlavor;
  /**
   * Tenant sent with every query as a header (`prometheus.tenant` in `prometheus.tenantHeader`):
   * Mimir's and Cortex's `X-Scope-OrgID`, a Thanos receive or proxy's tenant header.
   */
  readonly tenant?: { readonly header: string; readonly value: string };
  /**
   * Called when the correction applied to query times (Prometheus's clock minus ours, see
   * ServerClock) changes by more than a second: for a log line.
   */
  readonly onClockCorrection?: (correctionMs: number) => void;
}

/**
 * Default cap of one answer: 16 MiB. The largest answer the shipped catalogue asks for is a
 * presence query's, one short series per node (~0.7 MB at 10,000 nodes); a body of 16 MB parses
 * into ~100 MB of heap, which the daemon's 256 MB heap can still absorb.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** A query time more than this far from where Prometheus's clock puts it is asked again. */
const REASK_SKEW_MS = 1000;

/**
 * Refuses (CONFIG_INVALID, at start-up) an endpoint that is not http(s), and a bearer token sent
 * over plain http unless explicitly allowed. `fields` names the config keys for the message.
 */
export function refuseTokenOverHttp(o: {
  readonly url: string;
  readonly hasToken: boolean;
  readonly allowed: boolean;
  readonly fields: { readonly url: string; readonly token: string; readonly allow: string };
}): void {
  let protocol: string;
  try {
    protocol = new URL(o.url).protocol;
  } catch {
    throw new HealError(ErrorCode.ConfigInvalid, `${o.fields.url}: "${o.url}" is not a URL`);
  }
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new HealError(
      ErrorCode.ConfigInvalid,
      `${o.fields.url}: "${o.url}" is not an http:// or https:// URL`,
    );
  }
  if (protocol === 'http:' && o.hasToken && !o.allowed) {
    throw new HealError(
      ErrorCode.ConfigInvalid,
      `${o.fields.url} "${o.url}" is plain http and ${o.fields.token} is set: the bearer token ` +
        `would cross the network in clear. Use https, or set ${o.fields.allow}: true if the ` +
        `connection never leaves a trusted host (a loopback proxy).`,
    );
  }
}

/**
 * Prometheus's clock relative to ours, bounded from the HTTP `Date` header of its answers: an
 * answer stamped `d` (whole seconds) between our `sent` and `received` means the offset lies in
 * [d - received, d + 1 s - sent]. The bounds of recent answers (ten minutes, at most 256) are
 * intersected, which narrows them to about a round trip; bounds that contradict the newest
 * answer mean a clock was stepped, and only the newest is kept.
 *
 * The correction added to a query's time is 0 while the two clocks agree within those bounds
 * (the same host, an NTP-synchronised cluster), else the lower bound: a query is never evaluated
 * after Prometheus's own now (in the future it would find no fresh samples: faults missed, every
 * exporter absent) nor more than the bounds' width before it (old data: faults seen late,
 * cleared faults still seen).
 */
export class ServerClock {
  #samples: { lo: number; hi: number; atMs: number }[] = [];
  #lo = Number.NEGATIVE_INFINITY;
  #hi = Number.POSITIVE_INFINITY;

  readonly #windowMs: number;
  readonly #maxSamples: number;

  constructor(windowMs = 600_000, maxSamples = 256) {
    this.#windowMs = windowMs;
    this.#maxSamples = maxSamples;
  }

  /** One answer: its `Date` header, and when it was sent and received on our clock. */
  observe(date: string | undefined, sentMs: number, receivedMs: number): void {
    const d = date === undefined ? Number.NaN : Date.parse(date);
    if (!Number.isFinite(d)) return;
    const lo = d - receivedMs;
    const hi = d + 1000 - sentMs;
    if (lo > this.#hi || hi < this.#lo) this.#samples = [];
    this.#samples.push({ lo, hi, atMs: receivedMs });
    const oldest = receivedMs - this.#windowMs;
    let drop = Math.max(0, this.#samples.length - this.#maxSamples);
    while (drop < this.#samples.length && (this.#samples[drop]?.atMs ?? 0) < oldest) drop++;
    if (drop > 0) this.#samples.splice(0, drop);
    this.#lo = Math.max(...this.#samples.map((x) => x.lo));
    this.#hi = Math.min(...this.#samples.map((x) => x.hi));
  }

  /** Bounds of Prometheus's clock minus ours; infinite before any answer. */
  get bounds(): { readonly lo: number; readonly hi: number } {
    return { lo: this.#lo, hi: this.#hi };
  }

  /** What to add to our time to name the same instant on Prometheus's clock. */
  correctionMs(): number {
    if (this.#samples.length === 0 || (this.#lo <= 0 && this.#hi >= 0)) return 0;
    return this.#lo;
  }
}

/** Where a Prometheus-API server is and how to reach it: its base URL and, over https, one keep-alive agent. */
export function promEndpoint(opts: {
  readonly url: string;
  readonly insecureSkipVerify?: boolean | undefined;
  readonly caFile?: string | undefined;
}): { base: URL; isHttps: boolean; agent: Agent | undefined } {
  const base = new URL(opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
  const isHttps = base.protocol === 'https:';
  const agent = isHttps
    ? new Agent({
        keepAlive: true,
        rejectUnauthorized: opts.insecureSkipVerify !== true,
        ...(opts.caFile === undefined ? {} : { ca: readFileSync(opts.caFile) }),
      })
    : undefined;
  return { base, isHttps, agent };
}

/**
 * The real MetricsSource: Prometheus's HTTP API (`/api/v1/query`, POST form), with bearer token
 * and TLS options. Any failure is a HealError: PROM_UNAVAILABLE (network, timeout, 5xx),
 * PROM_BAD_RESPONSE (4xx, malformed body, `warnings` about partial data, VictoriaMetrics's
 * `isPartial`) or
 * PROM_RESPONSE_TOO_LARGE (an answer over `maxResponseBytes`, dropped unread). A partial answer
 * is never returned as if it were whole.
 *
 * `atMs` is on the daemon's clock; it is sent as `time=` on Prometheus's clock (ServerClock), so
 * a skewed daemon clock never makes a query read the future or the past. An answer that reveals
 * a skew the query did not allow for (the first answers, a clock step) is asked again once.
 *
 * A bearer token over plain http is refused here (CONFIG_INVALID) unless allowed.
 */
export function createPromClient(opts: PromClientOptions): MetricsSource {
  refuseTokenOverHttp({
    url: opts.url,
    hasToken: opts.bearerToken !== undefined || opts.bearerTokenFile !== undefined,
    allowed: opts.allowInsecureBearerToken === true,
    fields: {
      url: 'prometheus.url',
      token: 'prometheus.bearerTokenFile',
      allow: 'prometheus.allowInsecureBearerToken',
    },
  });
  const { base, isHttps, agent } = promEndpoint(opts);
  const maxBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const clock = new ServerClock();
  const flavor = opts.flavor ?? 'prometheus';
  const extraParams = flavorParams(flavor);
  let reported = 0;
  const token = (): string | undefined =>
    opts.bearerToken ??
    (opts.bearerTokenFile === undefined
      ? undefined
      : readFileSync(opts.bearerTokenFile, 'utf8').trim());

  return {
    async query(expr, atMs, signal) {
      const url = new URL('api/v1/query', base);
      const asked = exprForFlavor(expr, flavor);
      const ask = (correctionMs: number): Promise<{ status: number; text: string }> => {
        const time = ((atMs + correctionMs) / 1000).toFixed(3);
        const body = new URLSearchParams({ query: asked, time, ...extraParams }).toString();
        const headers: Record<string, string> = {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': String(Buffer.byteLength(body)),
        };
        if (opts.tenant !== undefined)
          headers[opts.tenant.header.toLowerCase()] = opts.tenant.value;
        const t = token();
        if (t !== undefined) headers['authorization'] = `Bearer ${t}`;
        return post({ url, body, headers, signal, isHttps, agent, maxBytes, clock, expr });
      };
      const used = clock.correctionMs();
      let answer = await ask(used);
      const now = clock.correctionMs();
      if (Math.abs(now - reported) > REASK_SKEW_MS) {
        reported = now;
        opts.onClockCorrection?.(now);
      }
      if (Math.abs(now - used) > REASK_SKEW_MS) answer = await ask(now);
      const { status, text } = answer;
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
      // Thanos and Mimir report a partial answer (a store or querier that did not answer) in
      // `warnings`, VictoriaMetrics cluster in `isPartial`: never read as a whole answer.
      if ((r.warnings ?? []).length > 0 || r.isPartial === true) {
        const why = (r.warnings ?? []).join('; ');
        throw new HealError(
          ErrorCode.PromBadResponse,
          `Prometheus returned partial data for ${expr}: ${why === '' ? 'isPartial: true' : why}`,
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
  readonly maxBytes: number;
  readonly clock: ServerClock;
  /** The query, for messages. */
  readonly expr: string;
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

/**
 * One request. The answer is read up to `maxBytes`: a longer one (by its Content-Length, or as
 * it streams) is an error and the connection is dropped, so nothing past the cap is read and
 * nothing of it is parsed.
 */
function postOnce({
  url,
  body,
  headers,
  signal,
  isHttps,
  agent,
  maxBytes,
  clock,
  expr,
}: Post): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sentMs = Date.now();
    const tooLarge = (bytes: string): HealError =>
      new HealError(
        ErrorCode.PromResponseTooLarge,
        `Prometheus answer for ${expr} is ${bytes} bytes, over prometheus.maxResponseBytes (${maxBytes}); dropped unread`,
      );
    const req = (isHttps ? httpsRequest : httpRequest)(
      url,
      { method: 'POST', headers, signal, ...(agent === undefined ? {} : { agent }) },
      (res) => {
        clock.observe(res.headers.date, sentMs, Date.now());
        collectBoundedBody(req, res, maxBytes, {
          resolve,
          reject,
          tooLarge,
          readFailed: (err) =>
            new HealError(
              ErrorCode.PromUnavailable,
              `reading Prometheus response failed: ${errorMessage(err)}`,
              { cause: err },
            ),
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
