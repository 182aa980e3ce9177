/**
 * Issue 12 item 11, the endpoints: the bearer token never crosses plain http unless allowed
 * (Prometheus and the Kubernetes API), Prometheus answers are size-capped (an answer over the cap
 * is stale, never parsed in part), and queries are evaluated at Prometheus's own clock, so a
 * skewed daemon clock neither reads the future (no fresh samples: faults missed, exporters
 * absent) nor the past (faults seen late, cleared faults still seen).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CATALOGUE } from '../../src/catalogue/index.js';
import { SIGNAL_PRESENCE } from '../../src/catalogue/signals.js';
import type { CatalogueEntry, Signal } from '../../src/catalogue/types.js';
import { loadConfig } from '../../src/config/load.js';
import { systemClock } from '../../src/core/clock.js';
import { ErrorCode, isHealError } from '../../src/core/errors.js';
import { Inspector } from '../../src/engine/inspector.js';
import { silentLogger as silent } from '../../src/engine/logger.js';
import { checkEndpoints, runDaemon } from '../../src/main.js';
import { createPromClient } from '../../src/prom/prom-client.js';
import { aNode } from '../helpers/builders.js';

const MIN = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'aegis-endpoints-'));
const tokenFile = join(dir, 'token');
writeFileSync(tokenFile, 'secret-token\n', { mode: 0o600 });
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A local HTTP server; `answer` replies; requests (body, authorization) recorded. */
async function server(
  answer: (req: IncomingMessage, res: ServerResponse, body: string) => void,
): Promise<{ url: string; server: Server; requests: { body: string; auth: string }[] }> {
  const requests: { body: string; auth: string }[] = [];
  const s = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      requests.push({ body, auth: req.headers.authorization ?? '' });
      answer(req, res, body);
    });
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server: s, requests };
}

const close = (s: Server): void => {
  s.closeAllConnections();
  s.close();
};

describe('the bearer token is never sent over plain http', () => {
  const priority = { current: () => () => 50, close: () => undefined };

  it('aegis run refuses an http:// prometheus.url with a bearer token, before any request', async () => {
    const prom = await server((_req, res) => res.end('{}'));
    try {
      const config = loadConfig({
        overrides: {
          'prometheus.url': prom.url,
          'prometheus.bearerTokenFile': tokenFile,
          'kubernetes.inCluster': false,
          'kubernetes.server': 'https://127.0.0.1:1',
          metricsPort: 0,
          'leaderElection.enabled': false,
        },
      });
      await assert.rejects(
        runDaemon({ config, priority, signal: AbortSignal.abort(), log: silent }),
        (err: unknown) =>
          isHealError(err, ErrorCode.ConfigInvalid) &&
          err.message.includes(`prometheus.url "${prom.url}" is plain http`) &&
          err.message.includes('prometheus.allowInsecureBearerToken: true'),
      );
      assert.throws(
        () => createPromClient({ url: prom.url, bearerTokenFile: tokenFile }),
        (err: unknown) => isHealError(err, ErrorCode.ConfigInvalid),
      );
      assert.deepEqual(prom.requests, [], 'nothing was sent');
    } finally {
      close(prom.server);
    }
  });

  it('aegis run refuses an http:// kubernetes.server with a tokenFile', async () => {
    const config = loadConfig({
      overrides: {
        'kubernetes.inCluster': false,
        'kubernetes.server': 'http://127.0.0.1:1',
        'kubernetes.tokenFile': tokenFile,
        metricsPort: 0,
        'leaderElection.enabled': false,
      },
    });
    await assert.rejects(
      runDaemon({ config, priority, signal: AbortSignal.abort(), log: silent }),
      (err: unknown) =>
        isHealError(err, ErrorCode.ConfigInvalid) &&
        err.message.includes('kubernetes.server "http://127.0.0.1:1" is plain http') &&
        err.message.includes('kubernetes.allowInsecureBearerToken: true'),
    );
  });

  it('https, no token, in-cluster, or the explicit allowance pass', () => {
    const ok = (overrides: Record<string, unknown>): void => {
      checkEndpoints(loadConfig({ overrides }));
    };
    ok({ 'prometheus.url': 'https://prom:9090', 'prometheus.bearerTokenFile': tokenFile });
    ok({ 'prometheus.url': 'http://prom:9090' });
    ok({
      'prometheus.url': 'http://127.0.0.1:9090',
      'prometheus.bearerTokenFile': tokenFile,
      'prometheus.allowInsecureBearerToken': true,
    });
    ok({
      'kubernetes.inCluster': true,
      'kubernetes.server': 'http://x',
      'kubernetes.tokenFile': tokenFile,
    });
    ok({ 'kubernetes.inCluster': false, 'kubernetes.server': 'http://127.0.0.1:8080' });
    ok({
      'kubernetes.inCluster': false,
      'kubernetes.server': 'http://127.0.0.1:8080',
      'kubernetes.tokenFile': tokenFile,
      'kubernetes.allowInsecureBearerToken': true,
    });
    // The shipped config (in-cluster, Prometheus without a token) passes.
    checkEndpoints(loadConfig({ file: 'deploy/aegis/controller-config.yaml' }));
  });
});

const XID = ((): CatalogueEntry => {
  const e = CATALOGUE.find((c) => c.name === 'Xid79GPULost');
  assert.ok(e !== undefined);
  return e;
})();
const DCGM_PRESENCE = SIGNAL_PRESENCE['dcgm-exporter'] ?? '';
const PRESENCE = Object.fromEntries(
  Object.keys(SIGNAL_PRESENCE).map((s) => [s, s === 'dcgm-exporter' ? DCGM_PRESENCE : null]),
) as Record<Signal, string | null>;
const NODES = ['n1', 'n2'].map((name) => aNode({ name }));
const GPU = { gpu: '0', pci_bus_id: '00000000:3B:00.0' };

function inspectorOn(url: string, maxResponseBytes?: number): Inspector {
  return new Inspector({
    catalogue: [XID],
    presence: PRESENCE,
    metrics: createPromClient({
      url,
      ...(maxResponseBytes === undefined ? {} : { maxResponseBytes }),
    }),
    clock: systemClock,
    options: { concurrency: 4, queryTimeoutMs: 5_000, compatibility: false, intervalMs: 1_000 },
  });
}

const vector = (result: unknown[], atS: number): string =>
  JSON.stringify({
    status: 'success',
    data: {
      resultType: 'vector',
      result: result.map((metric) => ({ metric, value: [atS, '79'] })),
    },
  });

describe('Prometheus answers are size-capped', () => {
  it('an answer over prometheus.maxResponseBytes makes its rule stale: never parsed, not even a valid one', async () => {
    const CAP = 1024 * 1024;
    let sent = 0;
    const prom = await server((_req, res, body) => {
      const query = new URLSearchParams(body).get('query') ?? '';
      const atS = Date.now() / 1000;
      if (query === DCGM_PRESENCE) {
        res.setHeader('content-type', 'application/json');
        res.end(vector([{ node: 'n1' }, { node: 'n2' }], atS));
        return;
      }
      // The rule's answer: a valid vector naming the fault, padded past the cap with 60,000
      // more series (about 4 MB), streamed without a length.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"status":"success","data":{"resultType":"vector","result":[`);
      res.write(JSON.stringify({ metric: { node: 'n1', ...GPU }, value: [atS, '79'] }));
      const pad = `,${JSON.stringify({ metric: { node: 'nx', ...GPU }, value: [atS, '0'] })}`;
      let i = 0;
      const pump = (): void => {
        while (i < 60_000 && !res.destroyed) {
          i++;
          sent += pad.length;
          if (!res.write(pad)) {
            res.once('drain', pump);
            return;
          }
        }
        if (!res.destroyed) res.end(']}}');
      };
      pump();
    });
    try {
      const started = Date.now();
      const insp = await inspectorOn(prom.url, CAP).inspect(NODES, new AbortController().signal);
      assert.ok(Date.now() - started < 4_000, 'settled at once, not by the query deadline');
      assert.ok(insp.failedRules.has('Xid79GPULost'), 'the rule is stale');
      assert.deepEqual(insp.observations, [], 'nothing of the partial answer was used');
      assert.equal(insp.complete, false);
      assert.match(insp.errors.join('\n'), /over prometheus\.maxResponseBytes \(1048576\)/);
      assert.ok(sent < 60_000 * 70, `the rest of the answer was not read (${sent} bytes sent)`);
      // Under the cap the same fault is read.
      const roomy = await inspectorOn(prom.url, 64 * 1024 * 1024).inspect(
        NODES,
        new AbortController().signal,
      );
      assert.ok(roomy.observations.some((o) => o.node === 'n1' && o.condition === 'Xid79GPULost'));
    } finally {
      close(prom.server);
    }
  });
});

describe("query times follow Prometheus's clock", () => {
  /**
   * A Prometheus whose clock is `skewMs` off the wall clock: dcgm-exporter scraped every 15 s up
   * to its now, the Xid 79 series present while `faulty(serverMs)`; an instant query at `time`
   * sees the newest sample no later than `time` within the 5-minute lookback (Prometheus's
   * default), and it stamps its answers with its own Date.
   */
  async function skewedProm(skewMs: number, faulty: (serverMs: number) => boolean) {
    return server((_req, res, body) => {
      const params = new URLSearchParams(body);
      const nowMs = Date.now() + skewMs;
      const atMs = params.has('time') ? Number(params.get('time')) * 1000 : nowMs;
      const lastScrape = Math.floor(Math.min(atMs, nowMs) / 15_000) * 15_000;
      const visible = atMs - lastScrape <= 5 * MIN;
      const query = params.get('query');
      const result = !visible
        ? []
        : query === DCGM_PRESENCE
          ? [{ node: 'n1' }, { node: 'n2' }]
          : faulty(lastScrape)
            ? [{ node: 'n1', ...GPU }]
            : [];
      res.writeHead(200, {
        'content-type': 'application/json',
        date: new Date(nowMs).toUTCString(),
      });
      res.end(vector(result, atMs / 1000));
    });
  }

  const cases = [
    {
      what: 'daemon clock 10 min ahead, fault active for 2 min: seen, exporter present',
      skewMs: -10 * MIN,
      faulty: (t: number, now: number) => t >= now - 2 * MIN,
      want: ['n1/Xid79GPULost'],
    },
    {
      what: 'daemon clock 10 min behind, fault active for 2 min: seen now, not in 10 min',
      skewMs: 10 * MIN,
      faulty: (t: number, now: number) => t >= now - 2 * MIN,
      want: ['n1/Xid79GPULost'],
    },
    {
      what: 'daemon clock 10 min behind, fault cleared 2 min ago: not acted on',
      skewMs: 10 * MIN,
      faulty: (t: number, now: number) => t >= now - 30 * MIN && t < now - 2 * MIN,
      want: [],
    },
  ];
  for (const c of cases) {
    it(c.what, async () => {
      const prom = await skewedProm(c.skewMs, (t) => c.faulty(t, Date.now() + c.skewMs));
      try {
        const inspector = inspectorOn(prom.url);
        for (let cycle = 0; cycle < 2; cycle++) {
          const insp = await inspector.inspect(NODES, new AbortController().signal);
          assert.equal(insp.failures, 0, insp.errors.join('\n'));
          assert.deepEqual(
            insp.observations.map((o) => `${o.node}/${o.condition}`),
            c.want,
            `cycle ${cycle}`,
          );
          assert.deepEqual([...insp.staleByNode.keys()], [], 'every exporter present');
        }
        const times = prom.requests.map((r) => Number(new URLSearchParams(r.body).get('time')));
        const serverNowS = (Date.now() + c.skewMs) / 1000;
        // The first answers revealed the skew and were asked again; after that, one ask each.
        assert.ok(
          times.slice(-2).every((t) => t <= serverNowS && serverNowS - t < 5),
          `the last queries were at the server's now: ${times
            .slice(-2)
            .map((t) => t - serverNowS)
            .join(', ')} s`,
        );
      } finally {
        close(prom.server);
      }
    });
  }
});
