import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Metrics } from '../../src/metrics/metrics.js';
import {
  harness,
  lifecycle,
  Recorder,
  runLifecycle,
  Secrets,
  type Answer,
  type Harness,
  type Seen,
} from './adapters-harness.js';

/**
 * Contract tests of the ticket adapters against local HTTP servers: every request of a ticket's
 * life (open → steps → hand-off → close) is checked (method, path, query, headers with the auth
 * and the signature, body), and so are the retries (503, 429, timeouts), the refusals (400: no
 * retry), the idempotency key across retries and the external id written back.
 *
 * The answers the servers give follow the vendors' public API docs: Jira Cloud REST API v3 (create
 * issue 201 `{"id","key","self"}`, example key `ED-24`; add comment 201; do transition 204;
 * `POST /rest/api/3/search/jql` `{"issues": [...]}`), ServiceNow Table API (POST 201 and PATCH 200
 * `{"result": {...}}`, example sys_id `ef43c6d40a0a0b5700c77f9bf387afe3` and number `INC0010002`
 * from the Table API page of ServiceNow's docs; GET `{"result": [...]}`).
 */

const NODE = 'gpu-7';
/** The ticket's creationTime in the lifecycle (harness). */
const CREATED = lifecycle[0]!(null).creationTime;

function json(s: Seen): Record<string, unknown> {
  return JSON.parse(s.body) as Record<string, unknown>;
}

function counter(m: Metrics, name: string, labels: Record<string, string>): number {
  const metric = m.registry.getSingleMetric(name) as unknown as {
    hashMap: Record<string, { value: number; labels: Record<string, string> }>;
  };
  let n = 0;
  for (const v of Object.values(metric.hashMap))
    if (Object.entries(labels).every(([k, x]) => v.labels[k] === x)) n += v.value;
  return n;
}

const ok = (j: unknown = {}): Answer => ({ status: 200, json: j });

describe('webhook adapter (contract)', () => {
  const secrets = new Secrets();
  const KEY = 'whsec-test-9f2c';
  const keyFile = secrets.file('hmac', KEY);
  let server: Recorder;
  let url: string;
  /** Answers queued per idempotency key (default: 200, `{id,url}` for opened). */
  let script: Map<string, Answer[]>;

  before(async () => {
    server = new Recorder((req) => {
      const key = String(req.headers['x-aegis-idempotency-key']);
      const queued = script.get(key)?.shift();
      if (queued !== undefined) return queued;
      return req.headers['x-aegis-event'] === 'opened'
        ? ok({ id: 'WH-42', url: 'https://tickets.example/WH-42' })
        : ok();
    });
    url = `${await server.start()}/hook`;
  });
  after(async () => {
    await server.close();
    secrets.remove();
  });
  const fresh = (extra: Record<string, unknown> = {}): Harness => {
    server.seen.length = 0;
    script = new Map();
    return harness({ webhook: { url, hmacKeyFile: keyFile }, timeoutMs: '300ms', ...extra });
  };
  const verify = (s: Seen): void => {
    const ts = String(s.headers['x-aegis-timestamp']);
    const expected = `sha256=${createHmac('sha256', KEY).update(`${ts}.${s.body}`).digest('hex')}`;
    assert.equal(s.headers['x-aegis-signature'], expected, 'signature over <timestamp>.<body>');
  };

  it('open → steps → hand-off → close: every request checked, the receiver id written back', async () => {
    const h = fresh();
    await runLifecycle(h, NODE);
    const expected = [
      ['opened', `${NODE}/${CREATED}/0/opened`],
      ['step', `${NODE}/${CREATED}/0/step`],
      ['step', `${NODE}/${CREATED}/1/step`],
      ['step', `${NODE}/${CREATED}/2/step`],
      ['handoff', `${NODE}/${CREATED}/2/handoff-sre`],
      ['closed', `${NODE}/${CREATED}/2/closed`],
    ];
    assert.deepEqual(
      server.seen.map((s) => [s.headers['x-aegis-event'], s.headers['x-aegis-idempotency-key']]),
      expected,
    );
    for (const [i, s] of server.seen.entries()) {
      assert.equal(s.method, 'POST');
      assert.equal(s.url, '/hook');
      assert.equal(s.headers['content-type'], 'application/json');
      assert.equal(s.headers['user-agent'], 'aegis-ticket-adapter/1');
      assert.match(String(s.headers['x-aegis-timestamp']), /^\d{10}$/);
      assert.equal(Number(s.headers['x-aegis-timestamp']), Math.floor(h.clock.now() / 1000));
      verify(s);
      const b = json(s);
      assert.equal(b.version, 1);
      assert.equal(b.event, expected[i]![0]);
      assert.equal(b.idempotencyKey, expected[i]![1]);
      assert.equal(b.cluster, 'lab');
      assert.equal(b.node, NODE);
      assert.equal(b.condition, 'Xid79GPULost');
      assert.equal(b.domain, 'GPU');
      assert.equal(b.title, '[Aegis] gpu-7: Xid79GPULost (GPU)');
      assert.equal(typeof b.summary, 'string');
      assert.ok(Array.isArray(b.steps) && b.steps.length > 0);
      assert.equal((b.ticket as { creationTime: string }).creationTime, CREATED);
    }
    const bodies = server.seen.map(json);
    assert.deepEqual(
      bodies.map((b) => (b.ticket as { status: string }).status),
      ['created', 'created', 'created', 'assigned', 'assigned', 'closed'],
    );
    assert.deepEqual(
      bodies.slice(1, 4).map((b) => {
        const w = b.step as Record<string, unknown>;
        return [w.seq, w.action, w.status, w.exitCode, w.message, typeof w.end];
      }),
      [
        [0, 'Cordon', 'Succeeded', undefined, 'cordoned', 'string'],
        [1, 'Reboot', 'Failed', 1, 'node did not come back', 'string'],
        [2, 'HandToHuman', 'Succeeded', undefined, undefined, 'string'],
      ],
    );
    assert.equal(bodies[0]!.step, undefined);
    assert.equal(bodies[4]!.handedTo, 'sre');
    assert.match(String(bodies[4]!.summary), /handed to sre: reboot failed: hardware suspected/);
    assert.equal((bodies[5]!.ticket as { conclusion: string }).conclusion, 'acknowledged by alice');
    // Written back once, into this ticket, and kept by every later version.
    assert.deepEqual(h.store.current?.external, [
      { system: 'webhook', id: 'WH-42', url: 'https://tickets.example/WH-42' },
    ]);
    assert.equal(h.store.writes.filter((w) => w.after !== undefined).length, 1);
    assert.equal(
      counter(h.metrics, 'aegis_ticket_adapter_events_total', { result: 'delivered' }),
      6,
    );
    assert.equal(counter(h.metrics, 'aegis_ticket_adapter_writebacks_total', { result: 'ok' }), 1);
  });

  it('503 is retried with the same idempotency key and body, a fresh signature, doubling backoff', async () => {
    const h = fresh();
    const key = `${NODE}/${CREATED}/0/opened`;
    script.set(key, [{ status: 503 }, { status: 503 }]);
    h.dispatcher.observe(NODE, null);
    h.store.current = lifecycle[0]!(null);
    h.dispatcher.observe(NODE, h.store.current);
    await h.dispatcher.idle();
    assert.equal(server.seen.length, 3);
    assert.ok(server.seen.every((s) => s.headers['x-aegis-idempotency-key'] === key));
    assert.ok(
      server.seen.every((s) => s.body === server.seen[0]!.body),
      'same body',
    );
    for (const s of server.seen) verify(s);
    assert.notEqual(
      server.seen[0]!.headers['x-aegis-timestamp'],
      server.seen[2]!.headers['x-aegis-timestamp'],
      'each attempt is stamped anew',
    );
    assert.deepEqual(h.clock.sleeps, [1000, 2000]);
    assert.equal(counter(h.metrics, 'aegis_ticket_adapter_requests_total', { result: 'retry' }), 2);
    assert.equal(counter(h.metrics, 'aegis_ticket_adapter_requests_total', { result: 'ok' }), 1);
    assert.equal(h.store.current.external?.[0]?.id, 'WH-42');
  });

  it('400 is not retried: the event fails, the next ones are still delivered', async () => {
    const h = fresh();
    script.set(`${NODE}/${CREATED}/0/step`, [{ status: 400, json: { error: 'bad' } }]);
    await runLifecycle(h, NODE);
    const keys = server.seen.map((s) => String(s.headers['x-aegis-idempotency-key']));
    assert.equal(keys.filter((k) => k.endsWith('/0/step')).length, 1);
    assert.equal(keys.length, 6);
    assert.deepEqual(h.clock.sleeps, []);
    assert.equal(counter(h.metrics, 'aegis_ticket_adapter_events_total', { result: 'failed' }), 1);
    assert.equal(
      counter(h.metrics, 'aegis_ticket_adapter_requests_total', { result: 'rejected' }),
      1,
    );
    assert.ok(
      h.log.lines.some(
        (l) => l.msg === 'ticket event not delivered' && /answered 400/.test(String(l.fields?.err)),
      ),
    );
  });

  it('429 waits for Retry-After, then delivers', async () => {
    const h = fresh();
    script.set(`${NODE}/${CREATED}/0/opened`, [{ status: 429, headers: { 'Retry-After': '7' } }]);
    h.dispatcher.observe(NODE, null);
    h.store.current = lifecycle[0]!(null);
    h.dispatcher.observe(NODE, h.store.current);
    await h.dispatcher.idle();
    assert.equal(server.seen.length, 2);
    assert.deepEqual(h.clock.sleeps, [7000]);
  });

  it('a request that times out is retried with the same key', async () => {
    const h = fresh();
    script.set(`${NODE}/${CREATED}/0/opened`, ['hang']);
    h.dispatcher.observe(NODE, null);
    h.store.current = lifecycle[0]!(null);
    h.dispatcher.observe(NODE, h.store.current);
    await h.dispatcher.idle();
    assert.equal(server.seen.length, 2);
    assert.equal(
      server.seen[0]!.headers['x-aegis-idempotency-key'],
      server.seen[1]!.headers['x-aegis-idempotency-key'],
    );
    assert.equal(counter(h.metrics, 'aegis_ticket_adapter_requests_total', { result: 'error' }), 1);
    assert.equal(h.store.current.external?.[0]?.id, 'WH-42');
  });

  it('gives up after maxAttempts and counts the event failed', async () => {
    const h = fresh({ maxAttempts: 3 });
    script.set(`${NODE}/${CREATED}/0/opened`, [{ status: 500 }, { status: 502 }, { status: 503 }]);
    h.dispatcher.observe(NODE, null);
    h.store.current = lifecycle[0]!(null);
    h.dispatcher.observe(NODE, h.store.current);
    await h.dispatcher.idle();
    assert.equal(server.seen.length, 3);
    assert.deepEqual(h.clock.sleeps, [1000, 2000]);
    assert.equal(counter(h.metrics, 'aegis_ticket_adapter_events_total', { result: 'failed' }), 1);
    assert.equal(h.store.current.external, undefined);
  });
});

describe('Jira adapter (contract)', () => {
  const secrets = new Secrets();
  const tokenFile = secrets.file('jira-token', 'jira-api-token-test');
  const AUTH = `Basic ${Buffer.from('aegis-bot@example.com:jira-api-token-test').toString('base64')}`;
  let server: Recorder;
  let base: string;
  /** Issues by label (the server's state). */
  let issues: Map<string, string>;
  let script: Map<string, Answer[]>;

  before(async () => {
    server = new Recorder((req) => {
      const queued = script.get(`${req.method} ${req.path}`)?.shift();
      if (req.method === 'POST' && req.path === '/rest/api/3/search/jql') {
        const jql = String(json(req).jql);
        const label = /labels = "([^"]+)"/.exec(jql)?.[1] ?? '';
        const key = issues.get(label);
        return (
          queued ?? ok({ issues: key === undefined ? [] : [{ id: '10000', key }], isLast: true })
        );
      }
      if (req.method === 'POST' && req.path === '/rest/api/3/issue') {
        // A refusal makes nothing; a hang makes the issue and loses the answer.
        if (queued !== undefined && queued !== 'hang') return queued;
        const labels = (json(req).fields as { labels: string[] }).labels;
        issues.set(labels[1]!, 'ED-24');
        if (queued === 'hang') return 'hang';
        return {
          status: 201,
          json: { id: '10000', key: 'ED-24', self: `${base}/rest/api/3/issue/10000` },
        };
      }
      if (req.method === 'POST' && req.path === '/rest/api/3/issue/ED-24/comment')
        return queued ?? { status: 201, json: { id: '10010' } };
      if (req.method === 'POST' && req.path === '/rest/api/3/issue/ED-24/transitions')
        return queued ?? { status: 204 };
      return { status: 404, json: { errorMessages: ['no such resource'] } };
    });
    base = await server.start();
  });
  after(async () => {
    await server.close();
    secrets.remove();
  });
  const fresh = (extra: Record<string, unknown> = {}): Harness => {
    server.seen.length = 0;
    issues = new Map();
    script = new Map();
    return harness({
      timeoutMs: '300ms',
      jira: {
        baseUrl: base,
        email: 'aegis-bot@example.com',
        apiTokenFile: tokenFile,
        projectKey: 'OPS',
        issueType: 'Incident',
        closeTransitionId: '31',
        labels: ['gpu-fleet'],
        allowInsecureHttp: true,
        ...extra,
      },
    });
  };
  const adfText = (doc: unknown): string[] =>
    (
      doc as {
        content: {
          type: string;
          content: { type: string; text?: string; content?: unknown[] }[];
        }[];
      }
    ).content.flatMap((n) => (n.type === 'paragraph' ? n.content.map((c) => c.text ?? '') : []));

  it('open → steps → hand-off → close: search, create, comments, transition; the key written back', async () => {
    const h = fresh();
    await runLifecycle(h, NODE);
    assert.deepEqual(
      server.seen.map((s) => `${s.method} ${s.path}`),
      [
        'POST /rest/api/3/search/jql',
        'POST /rest/api/3/issue',
        'POST /rest/api/3/issue/ED-24/comment',
        'POST /rest/api/3/issue/ED-24/comment',
        'POST /rest/api/3/issue/ED-24/comment',
        'POST /rest/api/3/issue/ED-24/comment',
        'POST /rest/api/3/issue/ED-24/comment',
        'POST /rest/api/3/issue/ED-24/transitions',
      ],
    );
    for (const s of server.seen) {
      assert.equal(s.headers.authorization, AUTH);
      assert.equal(s.headers.accept, 'application/json');
      assert.equal(s.headers['content-type'], 'application/json');
    }
    const [search, create, ...rest] = server.seen;
    const label = (json(create!).fields as { labels: string[] }).labels[1]!;
    assert.match(label, /^aegis-[0-9a-f]{16}$/);
    assert.deepEqual(json(search!), {
      jql: `project = "OPS" AND labels = "${label}"`,
      fields: ['key'],
      maxResults: 1,
    });
    const fields = json(create!).fields as Record<string, unknown>;
    assert.deepEqual(Object.keys(fields).sort(), [
      'description',
      'issuetype',
      'labels',
      'project',
      'summary',
    ]);
    assert.deepEqual(fields.project, { key: 'OPS' });
    assert.deepEqual(fields.issuetype, { name: 'Incident' });
    assert.equal(fields.summary, '[Aegis] gpu-7: Xid79GPULost (GPU)');
    assert.deepEqual(fields.labels, ['aegis', label, 'gpu-fleet']);
    const desc = fields.description as {
      type: string;
      version: number;
      content: { type: string }[];
    };
    assert.equal(desc.type, 'doc');
    assert.equal(desc.version, 1);
    assert.equal(desc.content[0]!.type, 'paragraph');
    assert.equal(desc.content.at(-1)!.type, 'bulletList', 'the steps as a list');
    assert.match(
      adfText(desc)[0]!,
      /^Aegis opened a ticket for node gpu-7: aegis detect node gpu-7 Xid79GPULost/,
    );
    const comments = rest.slice(0, 5).map((s) => adfText((json(s) as { body: unknown }).body));
    assert.match(comments[0]![0]!, /^Step #0 Cordon Succeeded/);
    assert.match(comments[1]![0]!, /^Step #1 Reboot Failed \(exit 1\)/);
    assert.match(comments[2]![0]!, /^Step #2 HandToHuman Succeeded/);
    assert.match(comments[3]![0]!, /^Node gpu-7 handed to sre: reboot failed/);
    assert.match(comments[4]![0]!, /^Ticket closed on node gpu-7: acknowledged by alice/);
    assert.equal(comments[0]![1], `Idempotency key: ${NODE}/${CREATED}/0/step`);
    for (const s of rest.slice(0, 5)) {
      const body = (json(s) as { body: { type: string; version: number } }).body;
      assert.equal(body.type, 'doc');
      assert.equal(body.version, 1);
    }
    assert.deepEqual(json(rest[5]!), { transition: { id: '31' } });
    assert.deepEqual(h.store.current?.external, [
      { system: 'jira', id: 'ED-24', url: `${base}/browse/ED-24` },
    ]);
    assert.equal(
      counter(h.metrics, 'aegis_ticket_adapter_events_total', { result: 'delivered' }),
      6,
    );
  });

  it('a create answered 503 is looked up before it is retried; one issue, not two', async () => {
    const h = fresh();
    script.set('POST /rest/api/3/issue', [{ status: 503 }]);
    h.dispatcher.observe(NODE, null);
    h.store.current = lifecycle[0]!(null);
    h.dispatcher.observe(NODE, h.store.current);
    await h.dispatcher.idle();
    assert.deepEqual(
      server.seen.map((s) => `${s.method} ${s.path}`),
      [
        'POST /rest/api/3/search/jql',
        'POST /rest/api/3/issue',
        'POST /rest/api/3/search/jql',
        'POST /rest/api/3/issue',
      ],
    );
    assert.equal(server.seen[1]!.body, server.seen[3]!.body, 'the same create, retried');
    assert.deepEqual(h.clock.sleeps, [1000]);
    assert.equal(h.store.current.external?.[0]?.id, 'ED-24');
  });

  it('a create that timed out but was made is found, not made again', async () => {
    const h = fresh();
    script.set('POST /rest/api/3/issue', ['hang']);
    h.dispatcher.observe(NODE, null);
    h.store.current = lifecycle[0]!(null);
    h.dispatcher.observe(NODE, h.store.current);
    await h.dispatcher.idle();
    assert.deepEqual(
      server.seen.map((s) => `${s.method} ${s.path}`),
      ['POST /rest/api/3/search/jql', 'POST /rest/api/3/issue', 'POST /rest/api/3/search/jql'],
    );
    assert.equal(counter(h.metrics, 'aegis_ticket_adapter_requests_total', { result: 'error' }), 1);
    assert.equal(h.store.current.external?.[0]?.id, 'ED-24');
  });

  it('400 on a comment is not retried', async () => {
    const h = fresh();
    script.set('POST /rest/api/3/issue/ED-24/comment', [
      { status: 400, json: { errorMessages: ['Comment body is not valid!'] } },
    ]);
    await runLifecycle(h, NODE);
    assert.equal(server.seen.filter((s) => s.path.endsWith('/comment')).length, 5);
    assert.equal(counter(h.metrics, 'aegis_ticket_adapter_events_total', { result: 'failed' }), 1);
    assert.equal(
      counter(h.metrics, 'aegis_ticket_adapter_requests_total', { result: 'rejected' }),
      1,
    );
    assert.deepEqual(h.clock.sleeps, []);
  });

  it('after a restart, an open ticket without a key finds its issue instead of opening another', async () => {
    const h = fresh();
    // Made before the restart; the write-back was lost.
    const t = lifecycle[1]!(lifecycle[0]!(null));
    h.store.current = t;
    // Prime the server with the issue of this ticket: run a first dispatcher to create it.
    const first = fresh();
    first.store.current = t;
    first.dispatcher.observe(NODE, null);
    first.dispatcher.observe(NODE, t);
    await first.dispatcher.idle();
    assert.equal(server.seen.filter((s) => s.path === '/rest/api/3/issue').length, 1);
    server.seen.length = 0;
    // The restarted daemon's first sight of the node is a baseline with catch-up.
    h.dispatcher.observe(NODE, t);
    await h.dispatcher.idle();
    assert.deepEqual(
      server.seen.map((s) => `${s.method} ${s.path}`),
      ['POST /rest/api/3/search/jql'],
    );
    assert.deepEqual(
      h.store.current.external?.map((e) => e.id),
      ['ED-24'],
    );
  });
});

describe('ServiceNow adapter (contract)', () => {
  const secrets = new Secrets();
  const passwordFile = secrets.file('snow-password', 'snow-pass-test');
  const tokenFile = secrets.file('snow-token', 'snow-oauth-token-test');
  const SYS_ID = 'ef43c6d40a0a0b5700c77f9bf387afe3';
  let server: Recorder;
  let base: string;
  let records: Map<string, string>;
  let script: Map<string, Answer[]>;

  before(async () => {
    server = new Recorder((req) => {
      const queued = script.get(`${req.method} ${req.path}`)?.shift();
      if (queued !== undefined) return queued;
      if (req.method === 'GET' && req.path === '/api/now/table/incident') {
        const q = req.query.get('sysparm_query') ?? '';
        const id = records.get(q.replace(/^correlation_id=/, ''));
        return ok({ result: id === undefined ? [] : [{ sys_id: id, number: 'INC0010002' }] });
      }
      if (req.method === 'POST' && req.path === '/api/now/table/incident') {
        records.set(String(json(req).correlation_id), SYS_ID);
        return { status: 201, json: { result: { sys_id: SYS_ID, number: 'INC0010002' } } };
      }
      if (req.method === 'PATCH' && req.path === `/api/now/table/incident/${SYS_ID}`)
        return ok({ result: { sys_id: SYS_ID } });
      return { status: 404, json: { error: { message: 'No Record found' }, status: 'failure' } };
    });
    base = await server.start();
  });
  after(async () => {
    await server.close();
    secrets.remove();
  });
  const fresh = (auth: Record<string, unknown>): Harness => {
    server.seen.length = 0;
    records = new Map();
    script = new Map();
    return harness({
      timeoutMs: '300ms',
      servicenow: {
        instanceUrl: base,
        ...auth,
        fields: { assignment_group: 'GPU Ops', category: 'hardware' },
        allowInsecureHttp: true,
      },
    });
  };

  it('open → steps → hand-off → close with basic auth: query, create, work notes, resolve', async () => {
    const h = fresh({ username: 'aegis.bot', passwordFile });
    await runLifecycle(h, NODE);
    assert.deepEqual(
      server.seen.map((s) => `${s.method} ${s.path}`),
      [
        'GET /api/now/table/incident',
        'POST /api/now/table/incident',
        ...Array<string>(5).fill(`PATCH /api/now/table/incident/${SYS_ID}`),
      ],
    );
    const auth = `Basic ${Buffer.from('aegis.bot:snow-pass-test').toString('base64')}`;
    for (const s of server.seen) {
      assert.equal(s.headers.authorization, auth);
      assert.equal(s.headers.accept, 'application/json');
      assert.equal(s.headers['content-type'], 'application/json');
    }
    const [query, create, ...patches] = server.seen;
    const corr = String(json(create!).correlation_id);
    assert.match(corr, /^aegis-[0-9a-f]{16}$/);
    assert.deepEqual(Object.fromEntries(query!.query), {
      sysparm_query: `correlation_id=${corr}`,
      sysparm_fields: 'sys_id,number',
      sysparm_limit: '1',
    });
    assert.equal(query!.body, '');
    assert.deepEqual(Object.fromEntries(create!.query), {
      sysparm_fields: 'sys_id,number',
      sysparm_input_display_value: 'true',
    });
    const c = json(create!);
    assert.deepEqual(Object.keys(c).sort(), [
      'assignment_group',
      'category',
      'cmdb_ci',
      'correlation_display',
      'correlation_id',
      'description',
      'short_description',
    ]);
    assert.equal(c.short_description, '[Aegis] gpu-7: Xid79GPULost (GPU)');
    assert.equal(c.cmdb_ci, NODE);
    assert.equal(c.assignment_group, 'GPU Ops');
    assert.equal(c.correlation_display, 'Aegis');
    assert.match(String(c.description), /^Aegis opened a ticket for node gpu-7/);
    assert.match(String(c.description), /\nSteps:\n- #0 Cordon Running/);
    for (const p of patches)
      assert.deepEqual(Object.fromEntries(p.query), { sysparm_fields: 'sys_id' });
    const notes = patches.map((p) => json(p));
    assert.deepEqual(
      notes.slice(0, 4).map((n) => Object.keys(n)),
      Array(4).fill(['work_notes']),
    );
    assert.match(
      String(notes[0]!.work_notes),
      /^Step #0 Cordon Succeeded[^]*\(Aegis event gpu-7\/.*\/0\/step\)$/,
    );
    assert.match(String(notes[1]!.work_notes), /^Step #1 Reboot Failed \(exit 1\)/);
    assert.match(String(notes[3]!.work_notes), /^Node gpu-7 handed to sre/);
    assert.deepEqual(
      { ...notes[4]!, work_notes: undefined },
      {
        work_notes: undefined,
        state: '6',
        close_code: 'Solution provided',
        close_notes: 'Ticket closed on node gpu-7: acknowledged by alice',
      },
    );
    assert.deepEqual(h.store.current?.external, [
      { system: 'servicenow', id: SYS_ID, url: `${base}/incident.do?sys_id=${SYS_ID}` },
    ]);
  });

  it('OAuth bearer token from tokenFile', async () => {
    const h = fresh({ tokenFile });
    await runLifecycle(h, NODE);
    assert.equal(server.seen.length, 7);
    for (const s of server.seen)
      assert.equal(s.headers.authorization, 'Bearer snow-oauth-token-test');
  });

  it('a PATCH answered 503 is retried with the same body; a create answered 400 is not', async () => {
    const h = fresh({ username: 'aegis.bot', passwordFile });
    script.set(`PATCH /api/now/table/incident/${SYS_ID}`, [{ status: 503 }]);
    await runLifecycle(h, NODE);
    const patches = server.seen.filter((s) => s.method === 'PATCH');
    assert.equal(patches.length, 6);
    assert.equal(patches[0]!.body, patches[1]!.body);
    assert.deepEqual(h.clock.sleeps, [1000]);

    const h2 = fresh({ username: 'aegis.bot', passwordFile });
    script.set('POST /api/now/table/incident', [
      { status: 400, json: { error: { message: 'Mandatory field missing' }, status: 'failure' } },
    ]);
    h2.dispatcher.observe(NODE, null);
    h2.store.current = lifecycle[0]!(null);
    h2.dispatcher.observe(NODE, h2.store.current);
    await h2.dispatcher.idle();
    assert.deepEqual(
      server.seen.map((s) => `${s.method} ${s.path}`),
      ['GET /api/now/table/incident', 'POST /api/now/table/incident'],
    );
    assert.deepEqual(h2.clock.sleeps, []);
    assert.equal(h2.store.current.external, undefined);
    assert.ok(h2.log.lines.some((l) => /Mandatory field missing/.test(String(l.fields?.err))));
  });
});
