import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { Clock } from '../core/clock.js';

/** How to reach a receiver over HTTP(S). */
export interface HttpTargetOptions {
  readonly bearerTokenFile?: string;
  readonly caFile?: string;
  readonly insecureSkipVerify?: boolean;
  readonly timeoutMs: number;
}

/** What a POST came back with (`status` 0: no answer: network error or timeout). */
export interface PostResult {
  readonly status: number;
  /** The start of the answer's body, or what went wrong. */
  readonly text: string;
}

/** Most of an answer kept (for a log line); the rest is read and dropped. */
const ANSWER_KEEP_BYTES = 2048;

/**
 * A JSON POST function for one receiver: bearer token read from its file at every request (a
 * rotated token is picked up), TLS options, a deadline on the injected clock. Never throws: a
 * network error or a timeout is `status: 0` with the reason.
 */
export function createJsonPoster(
  opts: HttpTargetOptions,
  clock: Clock,
): (url: URL, body: unknown, signal: AbortSignal) => Promise<PostResult> {
  const agent =
    opts.caFile !== undefined || opts.insecureSkipVerify === true
      ? new Agent({
          keepAlive: true,
          rejectUnauthorized: opts.insecureSkipVerify !== true,
          ...(opts.caFile === undefined ? {} : { ca: readFileSync(opts.caFile) }),
        })
      : undefined;
  return async (url, body, signal) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (opts.bearerTokenFile !== undefined) {
      try {
        headers['authorization'] = `Bearer ${readFileSync(opts.bearerTokenFile, 'utf8').trim()}`;
      } catch (err) {
        return { status: 0, text: `cannot read the bearer token file: ${String(err)}` };
      }
    }
    const deadline = new AbortController();
    const done = new AbortController();
    clock.sleep(opts.timeoutMs, done.signal).then(
      () => {
        deadline.abort(new Error(`no answer within ${String(opts.timeoutMs)} ms`));
      },
      () => undefined,
    );
    try {
      return await postOnce({
        url,
        text: JSON.stringify(body),
        headers,
        signal: AbortSignal.any([signal, deadline.signal]),
        agent: url.protocol === 'https:' ? agent : undefined,
      });
    } finally {
      done.abort();
    }
  };
}

function postOnce(p: {
  url: URL;
  text: string;
  headers: Record<string, string>;
  signal: AbortSignal;
  agent: Agent | undefined;
}): Promise<PostResult> {
  return new Promise((resolve) => {
    const send = p.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const headers = { ...p.headers, 'content-length': String(Buffer.byteLength(p.text)) };
    const fail = (err: unknown): void => {
      const why = p.signal.aborted ? (p.signal.reason as unknown) : err;
      resolve({ status: 0, text: why instanceof Error ? why.message : String(why) });
    };
    let req: ReturnType<typeof httpRequest>;
    try {
      req = send(
        p.url,
        {
          method: 'POST',
          headers,
          signal: p.signal,
          ...(p.agent === undefined ? {} : { agent: p.agent }),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          res.on('data', (c: Buffer) => {
            if (kept < ANSWER_KEEP_BYTES) chunks.push(c);
            kept += c.length;
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8').slice(0, ANSWER_KEEP_BYTES);
            resolve({ status: res.statusCode ?? 0, text });
          });
          res.on('error', fail);
        },
      );
    } catch (err) {
      fail(err);
      return;
    }
    req.on('error', fail);
    req.end(p.text);
  });
}
