import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { ManualClock } from '../core/clock.js';
import { ErrorCode, isHealError } from '../core/errors.js';
import { createMemoryLogger } from '../engine/logger.js';
import { createMetrics, type Metrics } from '../metrics/metrics.js';
import { newTicket, type Ticket } from '../ticket/ticket.js';
import type { Alert, FleetSnapshot } from './alerts.js';
import { loadConfig } from '../config/load.js';
import {
  AlertmanagerNotifier,
  alertmanagerFromConfig,
  type AlertmanagerOptions,
} from './alertmanager.js';

const T0 = Date.UTC(2026, 0, 1);
const REFRESH_MS = 60_000;
const iso = (ms: number): string => new Date(ms).toISOString();

interface Posted {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
}

interface Received {
  readonly path: string;
  readonly auth: string | undefined;
  readonly body: Posted[];
}

/** A local Alertmanager stand-in: records every request; answers `status` (or never: 'hang'). */
async function startServer(): Promise<{
  url: string;
  received: Received[];
  answer: { status: number | 'hang' };
  close: () => Promise<void>;
}> {
  const received: Received[] = [];
  const answer: { status: number | 'hang' } = { status: 200 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        auth: req.headers.authorization,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Posted[],
      });
      if (answer.status === 'hang') return;
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.status === 200 ? '' : '{"code":400,"message":"bad alert"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${String(port)}`,
    received,
    answer,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** Polls (real time, briefly) until `cond` holds: the HTTP exchange is real, time is not. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not met in 5 s: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const alert = (node: string, summary = 'handed to sre'): Alert => ({
  labels: { alertname: 'AegisHandedToHuman', node, severity: 'critical' },
  annotations: { summary },
  startsAtMs: T0 - 30_000,
});

interface Rig {
  clock: ManualClock;
  notifier: AlertmanagerNotifier;
  metrics: Metrics;
  log: ReturnType<typeof createMemoryLogger>;
  /** Resolves when every loop is asleep with nothing in flight. */
  quiet: () => Promise<void>;
  value: (name: string, labels: Record<string, string>) => Promise<number>;
}

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function rig(urls: string[], over: Partial<AlertmanagerOptions> = {}): Rig {
  const clock = new ManualClock(T0);
  const metrics = createMetrics();
  const log = createMemoryLogger();
  const notifier = new AlertmanagerNotifier(
    { urls, refreshMs: REFRESH_MS, timeoutMs: 5000, backoffMs: 1000, maxBackoffMs: 8000, ...over },
    {
      clock,
      metrics,
      log,
      rules: { staleSignalMinNodes: 5, staleSignalMinFraction: 0.05 },
    },
  );
  const stop = new AbortController();
  const running = notifier.run(stop.signal);
  stops.push(async () => {
    stop.abort();
    await running;
  });
  return {
    clock,
    notifier,
    metrics,
    log,
    quiet: () =>
      until(
        () => notifier.status().every((s) => !s.inFlight) && clock.pending === urls.length,
        'loops asleep',
      ),
    value: async (name, labels) => {
      const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
      const v = m?.values.find((x) =>
        Object.entries(labels).every(([k, l]) => String(x.labels[k]) === l),
      );
      return v?.value ?? Number.NaN;
    },
  };
}

const servers: Awaited<ReturnType<typeof startServer>>[] = [];
async function server(): Promise<Awaited<ReturnType<typeof startServer>>> {
  const s = await startServer();
  servers.push(s);
  return s;
}
after(async () => {
  for (const s of servers) await s.close();
});

describe('AlertmanagerNotifier: posting and refreshing', () => {
  it('posts a new alert at once to /api/v2/alerts, with the token, startsAt and endsAt = now + 3 × refresh', async () => {
    const am = await server();
    const dir = mkdtempSync(join(tmpdir(), 'aegis-am-'));
    writeFileSync(join(dir, 'token'), 'tok-1\n');
    const r = rig([am.url], {
      bearerTokenFile: join(dir, 'token'),
      allowInsecureBearerToken: true,
    });
    r.notifier.update([alert('gpu-a')]);
    await until(() => am.received.length === 1, 'first post');
    rmSync(dir, { recursive: true });
    assert.equal(am.received[0]?.path, '/api/v2/alerts');
    assert.equal(am.received[0].auth, 'Bearer tok-1');
    assert.deepEqual(am.received[0].body, [
      {
        labels: { alertname: 'AegisHandedToHuman', node: 'gpu-a', severity: 'critical' },
        annotations: { summary: 'handed to sre' },
        startsAt: iso(T0 - 30_000),
        endsAt: iso(T0 + 3 * REFRESH_MS),
      },
    ]);
    await r.quiet();
    assert.equal(r.notifier.status()[0]?.nextAttemptMs, T0 + REFRESH_MS);
    assert.equal(await r.value('aegis_notifications_total', { result: 'ok' }), 1);
    assert.equal(await r.value('aegis_notify_queue', {}), 0);
  });

  it('re-posts every refresh with the same startsAt, and an unchanged cycle posts nothing (idempotent)', async () => {
    const am = await server();
    const r = rig([am.url]);
    r.notifier.update([{ labels: alert('gpu-a').labels, annotations: alert('gpu-a').annotations }]);
    await until(() => am.received.length === 1, 'first post');
    await r.quiet();
    // Cycles keep reporting the same alert: nothing is sent before the refresh.
    for (let i = 1; i <= 5; i++) {
      await r.clock.advance(10_000);
      r.notifier.update([{ ...alert('gpu-a'), startsAtMs: T0 + i }]);
      await r.quiet();
    }
    assert.equal(am.received.length, 1, 'no post between refreshes');
    await r.clock.advanceTo(T0 + REFRESH_MS);
    await until(() => am.received.length === 2, 'refresh');
    const [first, second] = [am.received[0]?.body[0], am.received[1]?.body[0]];
    assert.equal(first?.startsAt, iso(T0), 'first seen by the poster');
    assert.equal(second?.startsAt, iso(T0), 'kept while it fires');
    assert.equal(second.endsAt, iso(T0 + REFRESH_MS + 3 * REFRESH_MS));
    // A changed annotation is posted at once, same identity and startsAt.
    await r.quiet();
    r.notifier.update([alert('gpu-a', 'handed to sre; last step Reboot Failed')]);
    await until(() => am.received.length === 3, 'changed annotation');
    assert.equal(am.received[2]?.body[0]?.startsAt, iso(T0));
    assert.equal(
      am.received[2].body[0].annotations['summary'],
      'handed to sre; last step Reboot Failed',
    );
  });

  it('an alert that ends is posted once with endsAt = now (resolved), then never again', async () => {
    const am = await server();
    const r = rig([am.url]);
    r.notifier.update([alert('gpu-a'), alert('gpu-b')]);
    await until(() => am.received.length === 1, 'first post');
    await r.quiet();
    await r.clock.advance(10_000);
    r.notifier.update([alert('gpu-b')]);
    await until(() => am.received.length === 2, 'resolution');
    const byNode = new Map(am.received[1]?.body.map((a) => [a.labels['node'], a]));
    assert.equal(byNode.get('gpu-a')?.endsAt, iso(T0 + 10_000), 'resolved now');
    assert.equal(byNode.get('gpu-b')?.endsAt, iso(T0 + 10_000 + 3 * REFRESH_MS), 'still firing');
    await r.quiet();
    await r.clock.advanceTo(T0 + 10_000 + REFRESH_MS);
    await until(() => am.received.length === 3, 'refresh');
    assert.deepEqual(
      am.received[2]?.body.map((a) => a.labels['node']),
      ['gpu-b'],
      'the resolution is not repeated',
    );
    await r.quiet();
    r.notifier.update([]);
    await until(() => am.received.length === 4, 'last resolution');
    await r.quiet();
    await r.clock.advance(3 * REFRESH_MS);
    await r.quiet();
    assert.equal(am.received.length, 4, 'nothing firing, nothing ended: nothing posted');
    assert.equal(await r.value('aegis_notify_alerts', { alertname: 'AegisHandedToHuman' }), 0);
  });

  it('a label change is a new alert: the old one resolved, the new one fired', async () => {
    const am = await server();
    const r = rig([am.url]);
    r.notifier.update([alert('gpu-a')]);
    await until(() => am.received.length === 1, 'first post');
    await r.quiet();
    const moved = {
      ...alert('gpu-a'),
      labels: { ...alert('gpu-a').labels, ticket_status: 'closed' },
    };
    r.notifier.update([moved]);
    await until(() => am.received.length === 2, 'second post');
    const body = am.received[1]?.body ?? [];
    assert.equal(body.length, 2);
    assert.equal(body.find((a) => a.labels['ticket_status'] === undefined)?.endsAt, iso(T0));
    assert.equal(
      body.find((a) => a.labels['ticket_status'] === 'closed')?.endsAt,
      iso(T0 + 3 * REFRESH_MS),
    );
  });

  it('splits more than 256 alerts over several requests', async () => {
    const am = await server();
    const r = rig([am.url]);
    r.notifier.update(Array.from({ length: 600 }, (_, i) => alert(`gpu-${String(i)}`)));
    await until(() => am.received.length === 3, 'three requests');
    assert.deepEqual(
      am.received.map((x) => x.body.length),
      [256, 256, 88],
    );
    await r.quiet();
    assert.equal(await r.value('aegis_notifications_total', { result: 'ok' }), 3);
  });
});

describe('AlertmanagerNotifier: Alertmanager down', () => {
  it('retries with exponential backoff on its own timer, counts failures, logs sparingly', async () => {
    const am = await server();
    am.answer.status = 503;
    const r = rig([am.url]);
    const started = performance.now();
    r.notifier.update([alert('gpu-a')]);
    assert.ok(performance.now() - started < 50, 'update() does no I/O');
    await until(() => am.received.length === 1, 'first attempt');
    // Attempts at +0, +1 s, +3 s, +7 s, +15 s (cap 8 s), +23 s.
    const expected = [1000, 3000, 7000, 15_000, 23_000];
    for (const [i, at] of expected.entries()) {
      await r.quiet();
      assert.equal(r.notifier.status()[0]?.failures, i + 1);
      assert.equal(r.notifier.status()[0]?.nextAttemptMs, T0 + at);
      if (i === 1) {
        // A new alert during the backoff waits for it (no hammering of a sick Alertmanager).
        r.notifier.update([alert('gpu-a'), alert('gpu-b')]);
        await r.quiet();
        assert.equal(am.received.length, 2);
        assert.equal(r.notifier.status()[0]?.nextAttemptMs, T0 + at);
      }
      await r.clock.advanceTo(T0 + at - 1);
      await r.quiet();
      assert.equal(am.received.length, i + 1, `no attempt before +${String(at)} ms`);
      await r.clock.advanceTo(T0 + at);
      await until(() => am.received.length === i + 2, `attempt ${String(i + 2)}`);
    }
    await r.quiet();
    assert.equal(await r.value('aegis_notifications_total', { result: 'error' }), 6);
    assert.equal(await r.value('aegis_notify_queue', {}), 2);
    const warned = r.log.lines.filter((l) => l.msg.startsWith('Alertmanager unreachable'));
    assert.deepEqual(
      warned.map((l) => l.fields?.['failures']),
      [1, 2, 4],
      'logged at the 1st, 2nd and 4th failure in a row',
    );
    // Back up: the next attempt delivers everything and the refresh timer takes over again.
    am.answer.status = 200;
    const next = r.notifier.status()[0]?.nextAttemptMs ?? 0;
    await r.clock.advanceTo(next);
    await until(() => am.received.length === 7, 'delivered');
    await r.quiet();
    assert.deepEqual(am.received[6]?.body.map((a) => a.labels['node']).sort(), ['gpu-a', 'gpu-b']);
    assert.equal(r.notifier.status()[0]?.failures, 0);
    assert.equal(r.notifier.status()[0]?.nextAttemptMs, next + REFRESH_MS);
    assert.equal(await r.value('aegis_notify_queue', {}), 0);
  });

  it('a resolution during an outage is delivered when it is back, or dropped after 3 refreshes', async () => {
    const am = await server();
    const r = rig([am.url], { maxBackoffMs: REFRESH_MS });
    r.notifier.update([alert('gpu-a'), alert('gpu-b')]);
    await until(() => am.received.length === 1, 'first post');
    await r.quiet();
    am.answer.status = 503;
    await r.clock.advance(1000);
    r.notifier.update([alert('gpu-b')]);
    await until(() => am.received.length === 2, 'failed resolution');
    await r.quiet();
    am.answer.status = 200;
    await r.clock.advanceTo(r.notifier.status()[0]?.nextAttemptMs ?? 0);
    await until(() => am.received.length === 3, 'delivered');
    const a = am.received[2]?.body.find((x) => x.labels['node'] === 'gpu-a');
    assert.equal(a?.endsAt, iso(T0 + 1000), 'resolved at the time it ended');
    // Second outage, longer than 3 refreshes: Alertmanager has let the alert expire by then.
    await r.quiet();
    am.answer.status = 503;
    const t1 = r.clock.now();
    r.notifier.update([]);
    await until(() => am.received.length === 4, 'failed');
    while (r.clock.now() < t1 + 3 * REFRESH_MS) {
      await r.quiet();
      await r.clock.advanceTo(r.notifier.status()[0]?.nextAttemptMs ?? 0);
      r.notifier.update([]); // the cycles go on
    }
    await r.quiet();
    am.answer.status = 200;
    const sent = am.received.length;
    await r.clock.advanceTo(r.notifier.status()[0]?.nextAttemptMs ?? 0);
    await r.quiet();
    assert.equal(am.received.length, sent, 'the expired resolution is not sent');
    assert.equal(await r.value('aegis_notify_queue', {}), 0);
  });

  it('a post with no answer times out after timeoutMs on the clock and is retried', async () => {
    const am = await server();
    am.answer.status = 'hang';
    const r = rig([am.url]);
    r.notifier.update([alert('gpu-a')]);
    await until(() => am.received.length === 1 && r.clock.pending === 1, 'request hangs');
    assert.equal(r.notifier.status()[0]?.inFlight, true);
    await r.clock.advance(5000);
    await r.quiet();
    assert.equal(r.notifier.status()[0]?.failures, 1);
    assert.equal(r.notifier.status()[0]?.nextAttemptMs, T0 + 5000 + 1000);
    const warn = r.log.lines.find((l) => l.msg.startsWith('Alertmanager unreachable'));
    assert.match(String(warn?.fields?.['err']), /no answer within 5000 ms/);
  });

  it('a 4xx is counted as rejected and tried again at the next refresh, without backoff', async () => {
    const am = await server();
    am.answer.status = 400;
    const r = rig([am.url]);
    r.notifier.update([alert('gpu-a')]);
    await until(() => am.received.length === 1, 'first post');
    await r.quiet();
    assert.equal(r.notifier.status()[0]?.failures, 0);
    assert.equal(r.notifier.status()[0]?.nextAttemptMs, T0 + REFRESH_MS);
    assert.equal(await r.value('aegis_notifications_total', { result: 'rejected' }), 1);
    assert.match(JSON.stringify(r.log.lines), /Alertmanager rejected the alerts.*bad alert/);
  });

  it('each Alertmanager has its own timer: one down never delays the other', async () => {
    const up = await server();
    const down = await server();
    down.answer.status = 503;
    const r = rig([up.url, down.url]);
    r.notifier.update([alert('gpu-a')]);
    await until(() => up.received.length === 1 && down.received.length === 1, 'both tried');
    await r.quiet();
    const [a, b] = r.notifier.status();
    assert.equal(a?.failures, 0);
    assert.equal(b?.failures, 1);
    assert.equal(
      await r.value('aegis_notifications_total', { receiver: a.receiver, result: 'ok' }),
      1,
    );
    assert.equal(
      await r.value('aegis_notifications_total', { receiver: b.receiver, result: 'error' }),
      1,
    );
    assert.match(b.receiver, /^alertmanager@127\.0\.0\.1:\d+$/);
  });
});

describe('AlertmanagerNotifier: set-up', () => {
  it('refuses a bearer token over plain http, and a URL that is not http(s)', () => {
    const deps = {
      clock: new ManualClock(T0),
      metrics: createMetrics(),
      log: createMemoryLogger(),
      rules: { staleSignalMinNodes: 5, staleSignalMinFraction: 0.05 },
    };
    const opts = { refreshMs: 1000, timeoutMs: 1000, backoffMs: 100, maxBackoffMs: 1000 };
    assert.throws(
      () =>
        new AlertmanagerNotifier(
          { ...opts, urls: ['http://am:9093'], bearerTokenFile: '/t' },
          deps,
        ),
      (err) =>
        isHealError(err, ErrorCode.ConfigInvalid) && /notify\.alertmanager/.test(err.message),
    );
    assert.throws(
      () => new AlertmanagerNotifier({ ...opts, urls: ['ftp://am'] }, deps),
      (err) => isHealError(err, ErrorCode.ConfigInvalid) && /urls\[0\]/.test(err.message),
    );
  });

  it('forget() drops the alerts without resolving them (leadership moved)', async () => {
    const am = await server();
    const r = rig([am.url]);
    r.notifier.update([alert('gpu-a')]);
    await until(() => am.received.length === 1, 'first post');
    await r.quiet();
    r.notifier.forget();
    r.notifier.update([]);
    await r.clock.advance(REFRESH_MS);
    await r.quiet();
    assert.equal(am.received.length, 1, 'no resolution posted');
  });

  it('stops refreshing when no cycle hands alerts over for two refreshes (lead lost, loop stuck)', async () => {
    const am = await server();
    const r = rig([am.url]);
    r.notifier.update([alert('gpu-a')]);
    await until(() => am.received.length === 1, 'first post');
    for (const k of [1, 2]) {
      await r.quiet();
      await r.clock.advanceTo(T0 + k * REFRESH_MS);
      await until(() => am.received.length === k + 1, `refresh ${String(k)}`);
    }
    await r.quiet();
    await r.clock.advanceTo(T0 + 3 * REFRESH_MS);
    await r.quiet();
    assert.equal(am.received.length, 3, 'the third refresh is not sent');
    assert.equal(await r.value('aegis_notify_alerts', { alertname: 'AegisHandedToHuman' }), 0);
    // Cycles resume (leading again): posted at once.
    r.notifier.update([alert('gpu-a')]);
    await until(() => am.received.length === 4, 'posted again');
  });

  it("observe(): a node's alerts follow its ticket object and topology (reused while both stay)", async () => {
    const am = await server();
    const r = rig([am.url]);
    const ticket: Ticket = {
      ...newTicket({ condition: 'GpuHung', reason: 'r', nowMs: T0 }),
      status: 'assigned',
      supervisor: 'sre',
      workflows: [{ action: 'HandToHuman', status: 'Succeeded', time: iso(T0), end: iso(T0) }],
    };
    const snap = (t: Ticket, rack: string): FleetSnapshot => ({
      atMs: T0,
      fleetSize: 10,
      nodes: [{ name: 'gpu-a', topology: { rack }, ticket: t }],
      breaker: { open: false },
      staleSignals: {},
    });
    r.notifier.observe(snap(ticket, 'r1'));
    r.notifier.observe(snap(ticket, 'r1'));
    await until(() => am.received.length === 1, 'first post');
    await r.quiet();
    r.notifier.observe(snap(ticket, 'r2'));
    await until(() => am.received.length === 2, 'moved rack');
    const racks = (am.received[1]?.body ?? []).map((a) => `${a.labels['rack'] ?? ''}:${a.endsAt}`);
    assert.deepEqual(racks.sort(), [`r1:${iso(T0)}`, `r2:${iso(T0 + 3 * REFRESH_MS)}`]);
    await r.quiet();
    r.notifier.observe(snap({ ...ticket, status: 'closed', supervisor: 'alice' }, 'r2'));
    await until(() => am.received.length === 3, 'closed');
    assert.equal(am.received[2]?.body[0]?.endsAt, iso(T0), 'resolved');
  });

  it('config: off by default; on with urls; a URL that is not http(s) is CONFIG_INVALID naming it', () => {
    const deps = {
      clock: new ManualClock(T0),
      metrics: createMetrics(),
      log: createMemoryLogger(),
    };
    assert.equal(alertmanagerFromConfig(loadConfig({}), deps), undefined);
    const on = loadConfig({
      overrides: { notify: { alertmanager: { urls: ['http://am:9093'], refreshMs: '30s' } } },
    });
    assert.equal(on.notify.alertmanager.refreshMs, 30_000);
    assert.equal(on.notify.alertmanager.maxBackoffMs, 300_000);
    assert.deepEqual(
      alertmanagerFromConfig(on, deps)
        ?.status()
        .map((s) => s.receiver),
      ['alertmanager@am:9093'],
    );
    assert.throws(
      () => loadConfig({ overrides: { notify: { alertmanager: { urls: ['am:9093'] } } } }),
      (err) =>
        isHealError(err, ErrorCode.ConfigInvalid) &&
        /notify\.alertmanager\.urls\[0\]/.test(err.message),
    );
  });
});
