/**
 * Reads an HTTP answer into a string, refusing more than `maxBytes` (by the declared length at
 * once, else as the bytes arrive) so a runaway answer cannot exhaust the daemon's memory. Shared by
 * the Prometheus client and replay's range client.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';

/** A whole answer: its status and body. */
export interface HttpAnswer {
  readonly status: number;
  readonly text: string;
}

/** What to do with the answer's outcome. */
export interface BodyHandlers {
  readonly resolve: (answer: HttpAnswer) => void;
  readonly reject: (err: unknown) => void;
  /** The error for an answer over the limit; `size` says what was seen. */
  readonly tooLarge: (size: string) => Error;
  /** The error for a connection that failed while the answer was read. */
  readonly readFailed: (err: Error) => Error;
}

/** Collects `res` (the answer to `req`) within `maxBytes`; aborts `req` when over it. */
export function collectBoundedBody(
  req: ClientRequest,
  res: IncomingMessage,
  maxBytes: number,
  h: BodyHandlers,
): void {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    h.reject(h.tooLarge(String(declared)));
    req.destroy();
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (c: Buffer) => {
    size += c.length;
    if (size > maxBytes) {
      h.reject(h.tooLarge(`more than ${String(maxBytes)}`));
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  res.on('end', () => {
    h.resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
  });
  res.on('error', (err) => {
    h.reject(h.readFailed(err));
  });
}
