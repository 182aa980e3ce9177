import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import type { Clock } from '../../core/clock.js';
import { ErrorCode, HealError, errorMessage } from '../../core/errors.js';
import type { Metrics } from '../../metrics/metrics.js';

/**
 * The one HTTP path of the ticket adapters: a request retried with exponential backoff on
 * network errors, timeouts, 408, 429 (honouring Retry-After) and 5xx; never on another 4xx or a
 * redirect (a redirect could carry the credentials elsewhere: configure the final URL). Every
 * attempt is counted in `aegis_ticket_adapter_requests_total`.
 */

export interface RetryPolicy {
  /** Attempts per request, the first included. */
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  /** Deadline of one attempt. */
  readonly timeoutMs: number;
}

export interface HttpDeps {
  readonly clock: Clock;
  readonly metrics: Metrics;
  /** Jitter source in [0, 1) (tests pass a constant). */
  readonly random?: () => number;
}

export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'PUT';
  readonly url: string;
  /** Headers of one attempt (called again for every attempt: a signature is per attempt). */
  readonly headers: () => Promise<Record<string, string>> | Record<string, string>;
  readonly body?: string;
  /**
   * Called before every retry (not before the first attempt). A create that timed out may have
   * been made: this looks for it and, when it finds it, its answer ends the retries.
   */
  readonly beforeRetry?: () => Promise<HttpResponse | undefined>;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Headers;
  /** The body (at most MAX_BODY_BYTES are read). */
  readonly text: string;
}

/** Why a delivery stopped for good: `rejected` (4xx, a redirect) or `exhausted` (retries). */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
  readonly kind: 'rejected' | 'exhausted';
  readonly status: number | undefined;

  constructor(
    kind: 'rejected' | 'exhausted',
    message: string,
    status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.kind = kind;
    this.status = status;
  }
}

const MAX_BODY_BYTES = 256 * 1024;
/** Longest wait a Retry-After may impose. */
const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;

/** Backoff before retry number `retry` (1-based): initial·2^(retry-1), capped, plus up to 20 % jitter. */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number): number {
  const base = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** (retry - 1));
  return Math.round(base * (1 + 0.2 * random()));
}

/** A Retry-After value (seconds, or an HTTP date) in ms from `nowMs`; undefined if absent or bad. */
export function retryAfterMs(value: string | null, nowMs: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - nowMs), MAX_RETRY_AFTER_MS);
}

function retriableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Reads a response body, at most MAX_BODY_BYTES. */
async function readBody(res: Response): Promise<string> {
  if (res.body === null) return '';
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size >= MAX_BODY_BYTES) {
      await reader.cancel();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, MAX_BODY_BYTES);
}

/** A short excerpt of an answer for logs and errors. */
export function excerpt(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > 200 ? `${one.slice(0, 200)}…` : one;
}

/**
 * Sends `req` until it succeeds (2xx) or fails for good. Throws DeliveryError (`rejected` or
 * `exhausted`), or the stop signal's reason when `stop` aborts.
 */
export async function sendWithRetry(
  adapter: string,
  req: HttpRequest,
  policy: RetryPolicy,
  deps: HttpDeps,
  stop: AbortSignal,
): Promise<HttpResponse> {
  const random = deps.random ?? Math.random;
  const what = `${req.method} ${redactUrl(req.url)}`;
  let last = '';
  for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
    if (attempt > 1 && req.beforeRetry !== undefined) {
      const found = await req.beforeRetry();
      if (found !== undefined) return found;
    }
    stop.throwIfAborted();
    let res: Response;
    let text: string;
    try {
      const headers = await req.headers();
      res = await fetch(req.url, {
        method: req.method,
        headers,
        ...(req.body === undefined ? {} : { body: req.body }),
        redirect: 'manual',
        signal: AbortSignal.any([stop, AbortSignal.timeout(policy.timeoutMs)]),
      });
      text = await readBody(res);
    } catch (err) {
      if (stop.aborted) throw stop.reason;
      last = errorMessage(err);
      deps.metrics.adapterRequests.inc({ adapter, result: 'error' });
      if (attempt < policy.maxAttempts)
        await deps.clock.sleep(backoffMs(policy, attempt, random), stop);
      continue;
    }
    if (res.status >= 200 && res.status < 300) {
      deps.metrics.adapterRequests.inc({ adapter, result: 'ok' });
      return { status: res.status, headers: res.headers, text };
    }
    if (!retriableStatus(res.status)) {
      deps.metrics.adapterRequests.inc({ adapter, result: 'rejected' });
      const where =
        res.status >= 300 && res.status < 400
          ? ` (redirected to ${res.headers.get('location') ?? '?'}; configure the final URL)`
          : '';
      throw new DeliveryError(
        'rejected',
        `${adapter}: ${what} answered ${res.status}${where}: ${excerpt(text)}`,
        res.status,
      );
    }
    deps.metrics.adapterRequests.inc({ adapter, result: 'retry' });
    last = `answered ${res.status}: ${excerpt(text)}`;
    if (attempt < policy.maxAttempts) {
      const after =
        res.status === 429 || res.status === 503 ? res.headers.get('retry-after') : null;
      const wait = retryAfterMs(after, deps.clock.now()) ?? backoffMs(policy, attempt, random);
      await deps.clock.sleep(wait, stop);
    }
  }
  throw new DeliveryError(
    'exhausted',
    `${adapter}: ${what} failed ${policy.maxAttempts} times; last: ${last}`,
  );
}

/** The URL without credentials or query (for logs). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<bad url>';
  }
}

/** Parses a JSON answer; a DeliveryError `rejected` naming the request when it is not JSON. */
export function parseJson(adapter: string, what: string, res: HttpResponse): unknown {
  try {
    return JSON.parse(res.text) as unknown;
  } catch {
    throw new DeliveryError(
      'rejected',
      `${adapter}: ${what} answered ${res.status} with a body that is not JSON: ${excerpt(res.text)}`,
      res.status,
    );
  }
}

/**
 * A secret read from a file (a mounted Secret), trimmed; read again at every use so a rotated
 * Secret takes effect without a restart. `check` reads it once at start-up: CONFIG_INVALID naming
 * the config key and the problem when it is missing, unreadable or empty.
 */
export class SecretFile {
  readonly key: string;
  readonly path: string;

  constructor(key: string, path: string) {
    this.key = key;
    this.path = path;
  }

  check(): void {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      throw new HealError(
        ErrorCode.ConfigInvalid,
        `${this.key}: cannot read ${this.path}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    if (text.trim() === '')
      throw new HealError(ErrorCode.ConfigInvalid, `${this.key}: ${this.path} is empty`);
  }

  async read(): Promise<string> {
    const text = (await readFile(this.path, 'utf8')).trim();
    if (text === '') throw new Error(`${this.key}: ${this.path} is empty`);
    return text;
  }
}
