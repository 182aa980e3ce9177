import assert from 'node:assert/strict';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, isHealError } from '../core/errors.js';
import { createPromClient, parseSampleValue } from './prom-client.js';

const signal = new AbortController().signal;
const VECTOR = {
  status: 'success',
  data: { resultType: 'vector', result: [{ metric: { node: 'n1' }, value: [1, '79'] }] },
};

/** A Prometheus stand-in: `answer` decides each request's reply; sockets and bodies recorded. */
function fakeProm(
  answer: (req: IncomingMessage, res: ServerResponse, nth: number, socket: Socket) => void,
): Promise<{
  url: string;
  server: Server;
  bodies: string[];
  auth: string[];
  sockets: Set<Socket>;
}> {
  const bodies: string[] = [];
  const auth: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    sockets.add(req.socket);
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      bodies.push(body);
      auth.push(req.headers.authorization ?? '');
      answer(req, res, bodies.length, req.socket);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}`, server, bodies, auth, sockets });
    });
  });
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

const rejectsWith = (p: Promise<unknown>, code: ErrorCode, match: RegExp): Promise<void> =>
  assert.rejects(p, (err: unknown) => isHealError(err, code) && match.test((err as Error).message));

describe('Prometheus client', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aegis-prom-client-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('posts the query at the given time and reads the vector, with the token re-read from its file', async () => {
    const p = await fakeProm((_req, res) => {
      json(res, 200, VECTOR);
    });
    try {
      const file = join(dir, 'token');
      await writeFile(file, 'first\n');
      const client = createPromClient({ url: p.url, bearerTokenFile: file });
      assert.deepEqual(await client.query('up', 1_700_000_000_123, signal), [
        { labels: { node: 'n1' }, value: 79 },
      ]);
      await writeFile(file, 'second');
      await client.query('up', 0, signal);
      assert.equal(p.bodies[0], 'query=up&time=1700000000.123');
      assert.deepEqual(p.auth, ['Bearer first', 'Bearer second']);
    } finally {
      p.server.close();
    }
  });

  it('5xx is PROM_UNAVAILABLE; garbage, errors, warnings and non-vectors are PROM_BAD_RESPONSE', async () => {
    const replies: [number, unknown][] = [
      [503, { status: 'error' }],
      [200, 'not json'],
      [400, { status: 'error', errorType: 'bad_data', error: 'parse error' }],
      [200, { ...VECTOR, warnings: ['partial response'] }],
      [200, { status: 'success', data: { resultType: 'matrix', result: [] } }],
    ];
    const p = await fakeProm((_req, res, nth) => {
      const [status, body] = replies[nth - 1] ?? [500, ''];
      if (typeof body === 'string') res.writeHead(status).end(body);
      else json(res, status, body);
    });
    try {
      const client = createPromClient({ url: p.url });
      await rejectsWith(client.query('a', 0, signal), ErrorCode.PromUnavailable, /answered 503/);
      await rejectsWith(client.query('b', 0, signal), ErrorCode.PromBadResponse, /non-JSON/);
      await rejectsWith(
        client.query('c', 0, signal),
        ErrorCode.PromBadResponse,
        /bad_data parse error/,
      );
      await rejectsWith(client.query('d', 0, signal), ErrorCode.PromBadResponse, /partial data/);
      await rejectsWith(client.query('e', 0, signal), ErrorCode.PromBadResponse, /got matrix/);
    } finally {
      p.server.close();
    }
  });

  it('a reused connection reset before the answer is asked again once, on a new connection', async () => {
    const served = new WeakMap<Socket, number>();
    const p = await fakeProm((_req, res, _nth, socket) => {
      const n = (served.get(socket) ?? 0) + 1;
      served.set(socket, n);
      // The server closes an idle keep-alive connection just as the client reuses it.
      if (n === 2) socket.destroy();
      else json(res, 200, VECTOR);
    });
    try {
      const client = createPromClient({ url: p.url });
      await client.query('first', 0, signal);
      const again = await client.query('second', 0, signal);
      assert.equal(again.length, 1);
      assert.deepEqual(
        p.bodies.map((b) => new URLSearchParams(b).get('query')),
        ['first', 'second', 'second'],
      );
      assert.equal(p.sockets.size, 2, 'the retry went over a new connection');
    } finally {
      p.server.close();
    }
  });

  it('a reset on a new connection is not retried: the source is unavailable', async () => {
    const p = await fakeProm((_req, _res, _nth, socket) => {
      socket.destroy();
    });
    try {
      const client = createPromClient({ url: p.url });
      await rejectsWith(client.query('x', 0, signal), ErrorCode.PromUnavailable, /unreachable/);
      assert.equal(p.bodies.length, 1);
    } finally {
      p.server.close();
    }
  });

  it('reads the wire values of samples', () => {
    assert.equal(parseSampleValue('+Inf'), Number.POSITIVE_INFINITY);
    assert.equal(parseSampleValue('-Inf'), Number.NEGATIVE_INFINITY);
    assert.ok(Number.isNaN(parseSampleValue('NaN')));
    assert.equal(parseSampleValue('1e3'), 1000);
  });
});
