/**
 * The console's HTTP API over a simulated fleet run by the real engine (no browser): every request
 * is authenticated, reads need `nodes get`, each action its own verb, writes are refused across
 * origins and without the session's CSRF token, and an authorised action is the same write as
 * `kubectl aegis` (recorded in the ticket with the caller's name). The browser tier
 * (console.browser.test.ts) drives the page itself.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ASSETS } from '../../src/console/assets.js';
import { cachedAccess, tableAccess } from '../../src/console/access.js';
import { CELL_STATES } from '../../src/console/model.js';
import { call, login, startConsoleSim, type ConsoleSim } from './harness.js';

let sim: ConsoleSim;
let base: string;
let held: string;

/** Cycles until `done` (at most `max`). */
async function until(done: () => Promise<boolean>, max = 80): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (await done()) return;
    await sim.cycle();
  }
  assert.fail('the condition never came true');
}

before(async () => {
  sim = await startConsoleSim({
    nodes: 16,
    config: { approval: { rules: [{ actions: ['Reboot', 'Shutdown'] }] } },
  });
  base = sim.console.url;
  held = sim.names[2] ?? '';
  sim.world.faults.injectFault({
    condition: 'Xid79GPULost',
    device: '4',
    node: held,
    atMs: sim.clock.now(),
    persistence: 'until-reboot',
  });
  await until(async () => (await sim.ticket(held))?.approval?.state === 'pending');
});

after(async () => {
  await sim.close();
});

describe('console API: authentication and authorisation', () => {
  it('refuses every API read without a valid token; the page itself carries no secret', async () => {
    assert.equal((await call(`${base}/api/fleet`)).status, 401);
    assert.equal(
      (await call(`${base}/api/fleet`, { bearer: 'aegis-demo-operator-00' })).status,
      401,
    );
    assert.equal((await call(`${base}/api/queue`)).status, 401);
    assert.equal((await call(`${base}/api/nodes/${held}`)).status, 401);
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    const html = await page.text();
    for (const t of [sim.tokens.operator, sim.tokens.viewer]) {
      assert.ok(!html.includes(t));
      for (const a of Object.values(ASSETS)) assert.ok(!a.body.includes(t));
    }
    assert.doesNotMatch(html, /https?:\/\/(?!www\.w3\.org)/, 'no asset from another site');
  });

  it('logs in with a token: an HttpOnly SameSite=Strict session, what the caller may do', async () => {
    const res = await fetch(`${base}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base },
      body: JSON.stringify({ token: sim.tokens.viewer }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('set-cookie') ?? '', /HttpOnly; SameSite=Strict/);
    const body = (await res.json()) as { user: string; may: Record<string, boolean> };
    assert.equal(body.user, 'demo-viewer');
    assert.ok(
      Object.values(body.may).every((v) => !v),
      'a viewer may do no action',
    );
    const op = await login(base, sim.tokens.operator);
    assert.ok(
      Object.values(op.may).every((v) => v),
      'an operator may do every action',
    );
    const bad = await call(`${base}/api/login`, { body: { token: 'nope' }, origin: base });
    assert.equal(bad.status, 401);
  });

  it('a login from another origin is refused (login CSRF)', async () => {
    const r = await call(`${base}/api/login`, {
      body: { token: sim.tokens.operator },
      origin: 'https://evil.example',
    });
    assert.equal(r.status, 403);
  });

  it('serves the fleet: every node, a state each', async () => {
    const v = await login(base, sim.tokens.viewer);
    const r = await call(`${base}/api/fleet`, { cookie: v.cookie });
    assert.equal(r.status, 200);
    const rows = r.body['rows'] as [string, number][];
    assert.equal(rows.length, 16);
    const state = new Map(rows.map((x) => [x[0], CELL_STATES[x[1]]]));
    assert.equal(state.get(held), 'held', 'the node waiting for approval');
    assert.equal(state.get(sim.names[0] ?? ''), 'healthy');
  });

  it('the node view explains what holds the next step, as kubectl aegis explain does', async () => {
    const v = await login(base, sim.tokens.viewer);
    const r = await call(`${base}/api/nodes/${held}`, { cookie: v.cookie });
    assert.equal(r.status, 200);
    const e = r.body['explanation'] as { why: string[]; approval?: { state: string } };
    assert.equal(e.approval?.state, 'pending');
    assert.ok(
      e.why.some((w) => /waits for approval/.test(w)),
      e.why.join('\n'),
    );
    const timeline = r.body['timeline'] as { what: string; status?: string }[];
    assert.equal(timeline[0]?.what, 'ticket opened');
    assert.ok(timeline.some((t) => t.status === 'Held'));
    assert.equal((await call(`${base}/api/nodes/no-such-node`, { cookie: v.cookie })).status, 404);
  });
});

describe('console API: actions', () => {
  it('a viewer may not approve (403) and the ticket is unchanged', async () => {
    const v = await login(base, sim.tokens.viewer);
    const before = await sim.ticket(held);
    const r = await call(`${base}/api/nodes/${held}/approve`, {
      body: { confirm: true },
      cookie: v.cookie,
      csrf: v.csrf,
      origin: base,
    });
    assert.equal(r.status, 403);
    assert.match(String(r.body['error']), /demo-viewer may not approve/);
    assert.deepEqual(await sim.ticket(held), before);
  });

  it('an operator write needs the session CSRF token and the console origin', async () => {
    const o = await login(base, sim.tokens.operator);
    const before = await sim.ticket(held);
    const noCsrf = await call(`${base}/api/nodes/${held}/approve`, {
      body: { confirm: true },
      cookie: o.cookie,
      origin: base,
    });
    assert.equal(noCsrf.status, 403);
    const crossSite = await call(`${base}/api/nodes/${held}/approve`, {
      body: { confirm: true },
      cookie: o.cookie,
      csrf: o.csrf,
      origin: 'https://evil.example',
    });
    assert.equal(crossSite.status, 403);
    const unconfirmed = await call(`${base}/api/nodes/${held}/approve`, {
      body: {},
      cookie: o.cookie,
      csrf: o.csrf,
      origin: base,
    });
    assert.equal(unconfirmed.status, 400);
    assert.deepEqual(await sim.ticket(held), before);
  });

  it('an operator approves: the ticket records who, like kubectl aegis approve', async () => {
    const o = await login(base, sim.tokens.operator);
    const r = await call(`${base}/api/nodes/${held}/approve`, {
      body: { confirm: true },
      cookie: o.cookie,
      csrf: o.csrf,
      origin: base,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.match(String(r.body['message']), /approved by demo-operator/);
    const t = await sim.ticket(held);
    assert.equal(t?.approval?.state, 'approved');
    assert.equal(t.approval.by, 'demo-operator');
    assert.equal(t.operatorLog?.at(-1)?.by, 'demo-operator');
    const again = await call(`${base}/api/nodes/${held}/approve`, {
      body: { confirm: true },
      cookie: o.cookie,
      csrf: o.csrf,
      origin: base,
    });
    assert.equal(again.status, 409, 'nothing left to approve');
  });

  it('takeover with a bearer token (no cookie, no CSRF needed), refused for a viewer', async () => {
    const refused = await call(`${base}/api/nodes/${held}/takeover`, {
      body: { confirm: true },
      bearer: sim.tokens.viewer,
    });
    assert.equal(refused.status, 403);
    const r = await call(`${base}/api/nodes/${held}/takeover`, {
      body: { confirm: true },
      bearer: sim.tokens.operator,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const t = await sim.ticket(held);
    assert.equal(t?.supervisor, 'demo-operator');
    assert.equal(t.operatorLog?.at(-1)?.action, 'takeover');
  });

  it('fleet pause and breaker reset write aegis-control with the caller; a viewer is refused', async () => {
    assert.equal(
      (
        await call(`${base}/api/fleet/pause`, {
          body: { confirm: true },
          bearer: sim.tokens.viewer,
        })
      ).status,
      403,
    );
    const r = await call(`${base}/api/fleet/pause`, {
      body: { confirm: true },
      bearer: sim.tokens.operator,
    });
    assert.equal(r.status, 200);
    const control = await sim.world.cluster.readControl(AbortSignal.timeout(1000));
    assert.equal(control?.['paused'], 'true');
    assert.equal(control['pausedBy'], 'demo-operator');
    const reset = await call(`${base}/api/fleet/breaker-reset`, {
      body: { confirm: true },
      bearer: sim.tokens.operator,
    });
    assert.equal(reset.status, 200);
    const q = await call(`${base}/api/queue`, { bearer: sim.tokens.viewer });
    const summary = q.body['summary'] as { automation: { paused: boolean; pausedBy?: string } };
    assert.equal(summary.automation.paused, true);
    assert.equal(summary.automation.pausedBy, 'demo-operator');
    await call(`${base}/api/fleet/resume`, {
      body: { confirm: true },
      bearer: sim.tokens.operator,
    });
  });

  it('caches reviews for seconds, not longer', async () => {
    let now = 0;
    let calls = 0;
    const inner = tableAccess({ tok: { caller: { username: 'u', groups: [] }, verbs: '*' } }, '');
    const counted = {
      ...inner,
      authenticate: (t: string, s: AbortSignal) => {
        calls++;
        return inner.authenticate(t, s);
      },
    };
    const cached = cachedAccess(counted, () => now, 10_000);
    const s = AbortSignal.timeout(1000);
    await cached.authenticate('tok', s);
    await cached.authenticate('tok', s);
    assert.equal(calls, 1);
    now = 10_001;
    await cached.authenticate('tok', s);
    assert.equal(calls, 2);
  });
});
