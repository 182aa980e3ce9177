import assert from 'node:assert/strict';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, isHealError } from '../core/errors.js';
import {
  backendOptions,
  createPromClient,
  exprForFlavor,
  parseSampleValue,
  refuseTokenOverHttp,
  ServerClock,
} from './prom-client.js';

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
      // Loopback, so plain http with the token is allowed explicitly.
      const client = createPromClient({
        url: p.url,
        bearerTokenFile: file,
        allowInsecureBearerToken: true,
      });
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

  it('a partial answer is stale data, never healthy: Thanos/Mimir `warnings`, VictoriaMetrics `isPartial`', async () => {
    // As the stores answer when a store/querier (Thanos, Mimir) or a vmstorage node (VictoriaMetrics
    // cluster, without -search.denyPartialResponse) did not answer: status success, a vector
    // that may lack the very series that carried a fault.
    const replies: unknown[] = [
      { ...VECTOR, warnings: ['No StoreAPIs matched for this query'] },
      { status: 'success', isPartial: true, data: { resultType: 'vector', result: [] } },
      { ...VECTOR, isPartial: false },
    ];
    const p = await fakeProm((_req, res, nth) => {
      json(res, 200, replies[nth - 1]);
    });
    try {
      const client = createPromClient({ url: p.url, flavor: 'victoriametrics' });
      await rejectsWith(
        client.query('a', 0, signal),
        ErrorCode.PromBadResponse,
        /partial data.*StoreAPIs/,
      );
      await rejectsWith(
        client.query('b', 0, signal),
        ErrorCode.PromBadResponse,
        /partial data.*isPartial/,
      );
      assert.deepEqual(await client.query('c', 0, signal), [{ labels: { node: 'n1' }, value: 79 }]);
    } finally {
      p.server.close();
    }
  });

  it("sends the tenant header and the flavor's parameters (VictoriaMetrics latency_offset, Thanos partial_response)", async () => {
    const headers: (string | undefined)[] = [];
    const p = await fakeProm((req, res) => {
      headers.push(req.headers['x-scope-orgid'] as string | undefined);
      json(res, 200, VECTOR);
    });
    try {
      const params = (i: number): Record<string, string> =>
        Object.fromEntries(new URLSearchParams(p.bodies[i] ?? ''));
      await createPromClient({ url: p.url }).query('up', 1_000, signal);
      assert.deepEqual(params(0), { query: 'up', time: '1.000' });
      await createPromClient({ url: p.url, flavor: 'victoriametrics' }).query('up', 1_000, signal);
      assert.deepEqual(params(1), { query: 'up', time: '1.000', latency_offset: '1ms' });
      await createPromClient({
        url: p.url,
        flavor: 'thanos',
        tenant: { header: 'X-Scope-OrgID', value: 'gpu-fleet' },
      }).query('up', 1_000, signal);
      assert.deepEqual(params(2), { query: 'up', time: '1.000', partial_response: 'false' });
      await createPromClient({
        url: p.url,
        ...backendOptions({ flavor: 'mimir', tenant: 'team-a', tenantHeader: 'X-Scope-OrgID' }),
      }).query('up', 1_000, signal);
      assert.deepEqual(params(3), { query: 'up', time: '1.000' });
      assert.deepEqual(headers, [undefined, undefined, 'gpu-fleet', 'team-a']);
    } finally {
      p.server.close();
    }
  });

  it('asks VictoriaMetrics for the Prometheus forms of changes/increase/delta/rate, nothing else renamed', async () => {
    const expr =
      'max by (node) (changes(node_boot_time_seconds[1h])) > 0 or ' +
      'sum by (node) (increase (x_total{msg="increase(", rate=\'rate(\'}[10m])) unless ' +
      'rate_total{} + deltas(y) + label_replace(z, "changes", "$1", "rate", "(.*)")';
    assert.equal(exprForFlavor(expr, 'prometheus'), expr);
    assert.equal(exprForFlavor(expr, 'thanos'), expr);
    assert.equal(
      exprForFlavor(expr, 'victoriametrics'),
      'max by (node) (changes_prometheus(node_boot_time_seconds[1h])) > 0 or ' +
        'sum by (node) (increase_prometheus (x_total{msg="increase(", rate=\'rate(\'}[10m])) unless ' +
        'rate_total{} + deltas(y) + label_replace(z, "changes", "$1", "rate", "(.*)")',
    );
    const p = await fakeProm((_req, res) => {
      json(res, 200, VECTOR);
    });
    try {
      await createPromClient({ url: p.url, flavor: 'victoriametrics' }).query(
        'changes(m[1h]) > 0',
        0,
        signal,
      );
      assert.equal(new URLSearchParams(p.bodies[0]).get('query'), 'changes_prometheus(m[1h]) > 0');
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

  it('refuses a bearer token over plain http unless allowed, and a URL that is not http(s)', () => {
    const refused = (o: Parameters<typeof createPromClient>[0], match: RegExp): void => {
      assert.throws(
        () => createPromClient(o),
        (err: unknown) =>
          isHealError(err, ErrorCode.ConfigInvalid) && match.test((err as Error).message),
      );
    };
    const inClear =
      /prometheus\.url "http:\/\/prom\.example:9090" is plain http.*prometheus\.allowInsecureBearerToken: true/;
    refused({ url: 'http://prom.example:9090', bearerTokenFile: join(dir, 'token') }, inClear);
    refused({ url: 'http://prom.example:9090', bearerToken: 't' }, inClear);
    refused({ url: 'ftp://prom.example' }, /not an http:\/\/ or https:\/\/ URL/);
    refused({ url: 'prom:9090:x' }, /prometheus\.url/);
    createPromClient({ url: 'https://prom.example:9090', bearerToken: 't' });
    createPromClient({ url: 'http://prom.example:9090' });
    createPromClient({
      url: 'http://127.0.0.1:9090',
      bearerToken: 't',
      allowInsecureBearerToken: true,
    });
    assert.throws(() => {
      refuseTokenOverHttp({
        url: 'http://10.0.0.1:6443',
        hasToken: true,
        allowed: false,
        fields: {
          url: 'kubernetes.server',
          token: 'kubernetes.tokenFile',
          allow: 'kubernetes.allowInsecureBearerToken',
        },
      });
    }, /kubernetes\.server "http:\/\/10\.0\.0\.1:6443" is plain http and kubernetes\.tokenFile is set/);
  });

  it('an answer over maxResponseBytes is PROM_RESPONSE_TOO_LARGE, by its length or as it streams; the stream is cut', async () => {
    const CAP = 64 * 1024;
    let written = 0;
    const seen = { closed: false };
    const p = await fakeProm((req, res) => {
      const q = new URLSearchParams(p.bodies.at(-1)).get('query');
      if (q === 'declared') {
        // A whole answer with its Content-Length: refused before reading the body.
        const big = JSON.stringify({ ...VECTOR, pad: 'x'.repeat(CAP) });
        res
          .writeHead(200, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(big),
          })
          .end(big);
        return;
      }
      if (q === 'fits') {
        json(res, 200, VECTOR);
        return;
      }
      // Chunked, endless: a valid JSON prefix that never ends.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"status":"success","data":{"resultType":"vector","result":[');
      const chunk = `${JSON.stringify(VECTOR.data.result[0])},`.repeat(256);
      const pump = (): void => {
        while (!res.destroyed && written < 64 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
      };
      req.socket.once('close', () => (seen.closed = true));
      pump();
    });
    try {
      const client = createPromClient({ url: p.url, maxResponseBytes: CAP });
      await rejectsWith(
        client.query('declared', 0, signal),
        ErrorCode.PromResponseTooLarge,
        /answer for declared is \d+ bytes, over prometheus\.maxResponseBytes \(65536\)/,
      );
      await rejectsWith(
        client.query('endless', 0, signal),
        ErrorCode.PromResponseTooLarge,
        /answer for endless is more than 65536 bytes/,
      );
      for (let i = 0; i < 50 && !seen.closed; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(seen.closed, 'the connection was dropped');
      assert.ok(written < 64 * 1024 * 1024, `the server could not send it all (${written} bytes)`);
      assert.equal(
        (await client.query('fits', 0, signal)).length,
        1,
        'a normal answer still reads',
      );
    } finally {
      p.server.closeAllConnections();
      p.server.close();
    }
  });

  it("asks at Prometheus's clock: a skewed server is read at its own now, asked again once when the skew shows", async () => {
    for (const skewMs of [10 * 60_000, -10 * 60_000]) {
      const p = await fakeProm((_req, res) => {
        res.writeHead(200, {
          'content-type': 'application/json',
          date: new Date(Date.now() + skewMs).toUTCString(),
        });
        res.end(JSON.stringify(VECTOR));
      });
      const corrections: number[] = [];
      try {
        const client = createPromClient({
          url: p.url,
          onClockCorrection: (c) => corrections.push(c),
        });
        const times = (): number[] =>
          p.bodies.map((b) => Number(new URLSearchParams(b).get('time')) * 1000);
        const t0 = Date.now();
        await client.query('up', t0, signal);
        assert.equal(p.bodies.length, 2, 'asked again once the Date header showed the skew');
        const [first = 0, second = 0] = times();
        assert.ok(Math.abs(first - t0) < 1, 'the first ask could not know');
        const serverNow = Date.now() + skewMs;
        assert.ok(second <= serverNow + 1, `not in the server's future (${second - serverNow} ms)`);
        assert.ok(serverNow - second < 2500, `not in its past (${serverNow - second} ms)`);
        assert.equal(corrections.length, 1);
        assert.ok(Math.abs((corrections[0] ?? 0) - skewMs) < 2500);
        const t1 = Date.now();
        await client.query('up', t1, signal);
        assert.equal(p.bodies.length, 3, 'later queries are asked once');
        assert.ok(Math.abs((times()[2] ?? 0) - (t1 + skewMs)) < 2500);
      } finally {
        p.server.close();
      }
    }
  });

  it('ServerClock: bounds from Date headers narrow, a stepped clock restarts them, agreement means no correction', () => {
    const c = new ServerClock();
    assert.equal(c.correctionMs(), 0, 'nothing known: no correction');
    const at = (serverMs: number, sentMs: number, receivedMs: number): void => {
      c.observe(new Date(Math.floor(serverMs / 1000) * 1000).toUTCString(), sentMs, receivedMs);
    };
    // Server 5,300 ms ahead; answers stamped at several sub-second phases, 20 ms round trips.
    for (const t of [1_000_000, 1_000_250, 1_000_520, 1_000_790, 1_001_050])
      at(t + 5_310, t, t + 20);
    const { lo, hi } = c.bounds;
    assert.ok(lo <= 5_300 && hi >= 5_300, `true offset within [${lo}, ${hi}]`);
    assert.ok(hi - lo < 300, `narrowed to ${hi - lo} ms`);
    assert.equal(c.correctionMs(), lo, 'the lower bound: never the server future');
    // The server's clock steps back 2 h: contradicting bounds restart from the newest answer.
    at(1_002_000 - 7_200_000, 1_002_000, 1_002_020);
    assert.ok(c.correctionMs() < -7_190_000 && c.correctionMs() > -7_201_100);
    // Same clock on both sides: no correction.
    const same = new ServerClock();
    for (const t of [5_000_100, 5_000_600]) {
      same.observe(new Date(Math.floor(t / 1000) * 1000).toUTCString(), t - 5, t + 5);
    }
    assert.equal(same.correctionMs(), 0);
    same.observe('not a date', 0, 0);
    same.observe(undefined, 0, 0);
    assert.equal(same.correctionMs(), 0);
  });

  it('reads the wire values of samples', () => {
    assert.equal(parseSampleValue('+Inf'), Number.POSITIVE_INFINITY);
    assert.equal(parseSampleValue('-Inf'), Number.NEGATIVE_INFINITY);
    assert.ok(Number.isNaN(parseSampleValue('NaN')));
    assert.equal(parseSampleValue('1e3'), 1000);
  });
});
