/**
 * Drains that respect training jobs, on the simulated cluster: pods asked to checkpoint are
 * evicted only after they answer (or at their deadline), the plain drain is unchanged by
 * default, and the ticket says what is awaited.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { CATALOGUE } from '../catalogue/index.js';
import { ManualClock } from '../core/clock.js';
import { createMetrics } from '../metrics/metrics.js';
import type { PodInfo } from '../k8s/cluster.js';
import { createSimWorld, type SimWorld } from '../sim/sim-world.js';
import type { PodSpec } from '../sim/sim-pods.js';
import { newTicket, type Ticket } from '../ticket/ticket.js';
import { readTicket, updateTicket } from '../ticket/ticket-store.js';
import { createApiBridge } from './bridge.js';
import {
  CHECKPOINT_DONE,
  CHECKPOINT_HOOK,
  CHECKPOINT_OPT_IN,
  DEFAULT_DRAIN_POLICY,
  DRAIN_POLICY,
  DRAIN_REQUEST_ID,
  DRAIN_REQUESTED,
  drainNode,
  planPod,
  redactUrl,
  type DrainPolicy,
} from './drain-checkpoint.js';
import type { Outcome } from '../sop/sop.js';

const MIN = 60_000;
const signal = new AbortController().signal;
const DRAIN_TIMEOUT_MS = 2 * MIN;

function policy(over: Partial<DrainPolicy['checkpoint']> = {}, wfc = 0): DrainPolicy {
  return {
    checkpoint: { ...DEFAULT_DRAIN_POLICY.checkpoint, mode: 'annotation', ...over },
    waitForCompletionMaxMs: wfc,
  };
}

interface Setup {
  readonly w: SimWorld;
  readonly clock: ManualClock;
  readonly node: string;
  pod(name: string, spec?: Partial<PodSpec>): void;
  /** Runs a drain (seq 3) while virtual time flows in 1 s steps; the outcome and when it ended. */
  drain(
    p: DrainPolicy,
    o?: { seq?: number; abortAtMs?: number; callHook?: never },
  ): Promise<{ outcome: Outcome | 'aborted'; atMs: number }>;
  /** Evictions of a pod so far, with their times. */
  evictions(name: string): number[];
  /** Annotation writes on a pod so far. */
  annotationWrites(name: string): string[];
  annotations(name: string): Promise<Readonly<Record<string, string>>>;
}

async function setup(): Promise<Setup> {
  const clock = new ManualClock();
  const w = createSimWorld({ nodes: 2, seed: 1, catalogue: CATALOGUE, clock });
  const node = (await w.cluster.listNodes(signal))[0]!.name;
  const t0 = clock.now();
  return {
    w,
    clock,
    node,
    pod(name, spec = {}) {
      w.cluster.tenantPods().addPod({ node, namespace: 'training', name, ...spec });
    },
    async drain(p, o = {}) {
      const ctl = new AbortController();
      const state = { done: false };
      const run = drainNode(
        { cluster: w.cluster, clock, policy: p, drainTimeoutMs: DRAIN_TIMEOUT_MS },
        node,
        ctl.signal,
        { seq: o.seq ?? 3 },
      ).then(
        (outcome) => outcome,
        (err: unknown) => {
          if (ctl.signal.aborted) return 'aborted' as const;
          throw err;
        },
      );
      void run.finally(() => {
        state.done = true;
      });
      for (let i = 0; i < 6 * 3600 && !isDone(state); i++) {
        if (o.abortAtMs !== undefined && clock.now() - t0 >= o.abortAtMs) ctl.abort();
        await clock.advance(1_000);
      }
      return { outcome: await run, atMs: clock.now() - t0 };
    },
    evictions(name) {
      return w.cluster
        .podOperations()
        .filter((op) => op.kind === 'evict' && op.name === name && op.result === 'evicted')
        .map((op) => op.atMs - t0);
    },
    annotationWrites(name) {
      return w.cluster
        .writes()
        .filter((r) => r.method === 'patchPodAnnotations' && r.target === `training/${name}`)
        .map((r) => r.detail);
    },
    async annotations(name) {
      const pods = await w.cluster.listPodsOnNode(node, signal);
      return pods.find((p) => p.name === name)?.annotations ?? {};
    },
  };
}

function isDone(state: { done: boolean }): boolean {
  return state.done;
}

function aPod(annotations: Record<string, string>, over: Partial<PodInfo> = {}): PodInfo {
  return {
    namespace: 'training',
    name: 'p',
    node: 'n',
    phase: 'Running',
    daemonSet: false,
    mirror: false,
    labels: {},
    annotations,
    ...over,
  };
}

describe('planPod', () => {
  const now = Date.UTC(2026, 0, 1);
  const opted = { [CHECKPOINT_OPT_IN]: 'true' };
  it('leaves the plain eviction by default, whatever the pod asks', () => {
    assert.deepEqual(planPod(aPod(opted), DEFAULT_DRAIN_POLICY, 'n/1', now), { kind: 'evict' });
    assert.deepEqual(
      planPod(aPod({ [DRAIN_POLICY]: 'wait-for-completion' }), DEFAULT_DRAIN_POLICY, 'n/1', now),
      { kind: 'evict' },
    );
  });
  it('asks an opted-in pod once, then waits for the recorded deadline', () => {
    const p = policy({ timeoutMs: 10 * MIN });
    assert.deepEqual(planPod(aPod({}), p, 'n/1', now), { kind: 'evict' });
    assert.deepEqual(planPod(aPod(opted), p, 'n/1', now), {
      kind: 'signal',
      why: 'checkpoint',
      deadlineMs: now + 10 * MIN,
    });
    const asked = {
      ...opted,
      [DRAIN_REQUEST_ID]: 'n/1',
      [DRAIN_REQUESTED]: new Date(now + 5 * MIN).toISOString(),
    };
    assert.deepEqual(planPod(aPod(asked), p, 'n/1', now), {
      kind: 'await',
      why: 'checkpoint',
      deadlineMs: now + 5 * MIN,
    });
    assert.equal(planPod(aPod(asked), p, 'n/1', now + 5 * MIN).kind, 'release');
    assert.deepEqual(planPod(aPod({ ...asked, [CHECKPOINT_DONE]: 'x' }), p, 'n/1', now), {
      kind: 'release',
      why: 'acknowledged',
    });
    // Another drain's request (an earlier step) is not this one's: asked anew.
    assert.equal(planPod(aPod(asked), p, 'n/2', now).kind, 'signal');
  });
  it('all pods with pods: all; the hook annotation opts a pod in for mode hook', () => {
    assert.equal(planPod(aPod({}), policy({ pods: 'all' }), 'n/1', now).kind, 'signal');
    const hooked = aPod({ [CHECKPOINT_HOOK]: 'http://x/' });
    assert.equal(planPod(hooked, policy(), 'n/1', now).kind, 'evict');
    assert.equal(planPod(hooked, policy({ mode: 'hook' }), 'n/1', now).kind, 'signal');
  });
  it('grace mode evicts with the longer of the configured and the pod’s own grace', () => {
    const p = policy({ mode: 'grace', gracePeriodSeconds: 600 });
    assert.deepEqual(planPod(aPod(opted), p, 'n/1', now), {
      kind: 'evict',
      gracePeriodSeconds: 600,
    });
    assert.deepEqual(planPod(aPod(opted, { terminationGracePeriodSeconds: 900 }), p, 'n/1', now), {
      kind: 'evict',
      gracePeriodSeconds: 900,
    });
    assert.deepEqual(planPod(aPod({}), p, 'n/1', now), { kind: 'evict' });
  });
  it('wait-for-completion waits up to its own limit', () => {
    const p = policy({ mode: 'off' }, 60 * MIN);
    assert.deepEqual(planPod(aPod({ [DRAIN_POLICY]: 'wait-for-completion' }), p, 'n/1', now), {
      kind: 'signal',
      why: 'completion',
      deadlineMs: now + 60 * MIN,
    });
  });
  it('redacts user info, query and fragment from a hook URL', () => {
    assert.equal(
      redactUrl('https://user:pw@hooks.example:8443/ckpt?token=s3cret#x'),
      'https://hooks.example:8443/ckpt',
    );
  });
});

describe('drain with checkpoints (simulated cluster)', () => {
  it('default policy: the plain drain, nothing written on pods', async () => {
    const s = await setup();
    s.pod('job-0', {
      annotations: { [CHECKPOINT_OPT_IN]: 'true' },
      checkpoint: { ackAfterMs: MIN },
    });
    const { outcome, atMs } = await s.drain(DEFAULT_DRAIN_POLICY);
    assert.equal(typeof outcome === 'object' && outcome.status, 'Succeeded');
    assert.deepEqual(s.evictions('job-0'), [0]);
    assert.deepEqual(s.annotationWrites('job-0'), []);
    assert.ok(atMs <= 35_000, `drained within the eviction grace (${atMs} ms)`);
  });

  it('asks an opted-in pod, evicts it only after it acknowledges; others at once', async () => {
    const s = await setup();
    s.pod('job-0', {
      annotations: { [CHECKPOINT_OPT_IN]: 'true' },
      checkpoint: { ackAfterMs: 3 * MIN },
    });
    s.pod('web-0');
    const { outcome } = await s.drain(policy({ timeoutMs: 10 * MIN }));
    assert.ok(typeof outcome === 'object');
    assert.equal(outcome.status, 'Succeeded');
    assert.match(outcome.message ?? '', /1 acknowledged/);
    assert.deepEqual(s.evictions('web-0'), [0]);
    const [evicted] = s.evictions('job-0');
    assert.ok(
      evicted !== undefined && evicted >= 3 * MIN && evicted <= 3 * MIN + 6_000,
      `${evicted}`,
    );
    const writes = s.annotationWrites('job-0');
    assert.equal(writes.length, 1, 'asked once');
    assert.match(writes[0] ?? '', /drain-requested/);
  });

  it('a pod that never answers is evicted at its deadline, not before', async () => {
    const s = await setup();
    s.pod('job-0', { annotations: { [CHECKPOINT_OPT_IN]: 'true' } });
    const { outcome } = await s.drain(policy({ timeoutMs: 10 * MIN }));
    assert.ok(typeof outcome === 'object');
    assert.equal(outcome.status, 'Succeeded');
    assert.match(outcome.message ?? '', /1 evicted at the deadline/);
    const [evicted] = s.evictions('job-0');
    assert.ok(
      evicted !== undefined && evicted >= 10 * MIN && evicted <= 10 * MIN + 6_000,
      `${evicted}`,
    );
  });

  it('a pod that ends while waited for is never evicted', async () => {
    const s = await setup();
    s.pod('job-0', {
      annotations: { [DRAIN_POLICY]: 'wait-for-completion' },
      completesAtMs: s.clock.now() + 20 * MIN,
    });
    s.pod('job-1', { annotations: { [DRAIN_POLICY]: 'wait-for-completion' } });
    const { outcome } = await s.drain(policy({ mode: 'off' }, 30 * MIN));
    assert.ok(typeof outcome === 'object');
    assert.equal(outcome.status, 'Succeeded', outcome.message);
    assert.deepEqual(s.evictions('job-0'), []);
    const [late] = s.evictions('job-1');
    assert.ok(late !== undefined && late >= 30 * MIN && late <= 30 * MIN + 6_000, `${late}`);
    assert.match(outcome.message ?? '', /1 ended, 1 evicted at the deadline/);
  });

  it('grace mode evicts with the longer grace and waits for the preStop to finish', async () => {
    const s = await setup();
    s.pod('job-0', {
      annotations: { [CHECKPOINT_OPT_IN]: 'true' },
      checkpoint: { ackAfterMs: 5 * MIN }, // longer than the drain timeout (2 min)
    });
    s.pod('web-0');
    const { outcome, atMs } = await s.drain(policy({ mode: 'grace', gracePeriodSeconds: 600 }));
    assert.ok(typeof outcome === 'object');
    assert.equal(outcome.status, 'Succeeded', outcome.message);
    const ops = s.w.cluster.podOperations().filter((o) => o.kind === 'evict');
    assert.deepEqual(
      ops.map((o) => [o.name, 'gracePeriodSeconds' in o ? o.gracePeriodSeconds : undefined]),
      [
        ['job-0', 600],
        ['web-0', undefined],
      ],
    );
    assert.ok(atMs >= 5 * MIN && atMs <= 5 * MIN + 6_000, `${atMs}`);
    assert.deepEqual(s.annotationWrites('job-0'), [], 'grace mode writes nothing on pods');
  });

  it('a PodDisruptionBudget still blocks after the wait; the request is withdrawn', async () => {
    const s = await setup();
    const other = (await s.w.cluster.listNodes(signal))[1]!.name;
    s.w.cluster.addWorkload({ name: 'llm', nodes: [s.node, other], minAvailable: 2 });
    const pods = await s.w.cluster.listPodsOnNode(s.node, signal);
    const worker = pods.find((p) => p.labels['app'] === 'llm');
    assert.ok(worker !== undefined);
    const { outcome, atMs } = await s.drain(policy({ pods: 'all', timeoutMs: 5 * MIN }));
    assert.ok(typeof outcome === 'object');
    assert.equal(outcome.status, 'Failed');
    assert.match(
      outcome.message ?? '',
      /PodDisruptionBudget blocks eviction of training\/llm-worker-0/,
    );
    // The bound after the wait is the same drain timeout as today.
    assert.ok(atMs >= 5 * MIN + DRAIN_TIMEOUT_MS && atMs <= 5 * MIN + DRAIN_TIMEOUT_MS + 6_000);
    const left = await s.w.cluster.listPodsOnNode(s.node, signal);
    const a = left.find((p) => p.name === worker.name)?.annotations ?? {};
    assert.equal(a[DRAIN_REQUEST_ID], undefined, 'request withdrawn');
    assert.equal(a[DRAIN_REQUESTED], undefined);
  });

  it('a drain resumed after a restart neither asks again nor evicts before the deadline', async () => {
    const s = await setup();
    s.pod('job-0', { annotations: { [CHECKPOINT_OPT_IN]: 'true' } });
    const first = await s.drain(policy({ timeoutMs: 10 * MIN }), { abortAtMs: 4 * MIN });
    assert.equal(first.outcome, 'aborted');
    assert.equal(s.annotationWrites('job-0').length, 1);
    const deadline = (await s.annotations('job-0'))[DRAIN_REQUESTED];
    const second = await s.drain(policy({ timeoutMs: 10 * MIN }));
    assert.ok(typeof second.outcome === 'object' && second.outcome.status === 'Succeeded');
    assert.equal(s.annotationWrites('job-0').length, 1, 'not asked a second time');
    const [evicted] = s.evictions('job-0');
    assert.ok(
      evicted !== undefined && evicted >= 10 * MIN && evicted <= 10 * MIN + 6_000,
      `${evicted}`,
    );
    assert.equal(
      deadline,
      new Date(s.clock.now() - second.atMs + 10 * MIN).toISOString().replace('.000Z', 'Z'),
    );
  });

  it('a new drain step (another seq) asks anew', async () => {
    const s = await setup();
    s.pod('job-0', {
      annotations: { [CHECKPOINT_OPT_IN]: 'true' },
      checkpoint: { ackAfterMs: MIN },
    });
    const first = await s.drain(policy({ timeoutMs: 10 * MIN }), { abortAtMs: 30_000 });
    assert.equal(first.outcome, 'aborted');
    const second = await s.drain(policy({ timeoutMs: 10 * MIN }), { seq: 4 });
    assert.ok(typeof second.outcome === 'object' && second.outcome.status === 'Succeeded');
    assert.equal(s.annotationWrites('job-0').length, 2);
  });
});

describe('drain step in the ticket', () => {
  it('the Running step says what is awaited and until when', async () => {
    const clock = new ManualClock();
    const w = createSimWorld({ nodes: 1, seed: 1, catalogue: CATALOGUE, clock });
    const node = (await w.cluster.listNodes(signal))[0]!.name;
    const ticket: Ticket = {
      ...newTicket({ condition: 'GpuHung', reason: 'test', nowMs: clock.now() }),
      workflows: [{ action: 'Drain', status: 'Running', seq: 7, message: 'drain for GpuHung' }],
      nextSeq: 8,
    };
    await updateTicket({ cluster: w.cluster, clock }, node, () => ticket, signal);
    for (const name of ['job-0', 'job-1', 'job-2'])
      w.cluster.tenantPods().addPod({
        node,
        namespace: 'training',
        name,
        annotations: { [CHECKPOINT_OPT_IN]: 'true' },
      });
    const metrics = createMetrics();
    const bridge = createApiBridge({
      cluster: w.cluster,
      clock,
      metrics,
      drain: policy({ timeoutMs: 10 * MIN }),
      options: { drainTimeoutMs: DRAIN_TIMEOUT_MS, jobPollMs: 2_000, jobDeadlineSeconds: {} },
    });
    const start = clock.now();
    const running = bridge.drain(node, signal, { seq: 7 });
    await clock.advance(10_000);
    const during = readTicket(await w.cluster.getNode(node, signal));
    const step = during?.workflows.find((x) => x.seq === 7);
    const deadline = new Date(start + 10 * MIN).toISOString().replace('.000Z', 'Z');
    assert.equal(step?.message, `waiting for checkpoint of 3 pods, deadline ${deadline}`);
    assert.equal(step.status, 'Running');
    for (let i = 0; i < 900; i++) await clock.advance(1_000);
    const outcome = await running;
    assert.equal(outcome.status, 'Succeeded');
    const text = await metrics.registry.metrics();
    assert.match(text, /aegis_drain_checkpoint_pods_total\{result="signalled"\} 3/);
    assert.match(text, /aegis_drain_checkpoint_pods_total\{result="deadline"\} 3/);
  });
});

describe('drain with a checkpoint hook', () => {
  let server: ReturnType<typeof createServer> | undefined;
  let dir: string | undefined;
  afterEach(() => {
    server?.close();
    server = undefined;
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function hookServer(
    answer: (body: Record<string, unknown>) => number,
  ): Promise<{ url: string; calls: { body: Record<string, unknown>; auth?: string }[] }> {
    const calls: { body: Record<string, unknown>; auth?: string }[] = [];
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        const body = JSON.parse(data) as Record<string, unknown>;
        calls.push({
          body,
          ...(req.headers.authorization === undefined ? {} : { auth: req.headers.authorization }),
        });
        res.statusCode = answer(body);
        res.end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return { url: `http://127.0.0.1:${address.port}`, calls };
  }

  /** Like Setup.drain, but real time flows for the HTTP round trips. */
  async function drainReal(s: Setup, p: DrainPolicy): Promise<Outcome> {
    const state = { done: false };
    const run = drainNode(
      { cluster: s.w.cluster, clock: s.clock, policy: p, drainTimeoutMs: DRAIN_TIMEOUT_MS },
      s.node,
      signal,
      { seq: 3 },
    ).finally(() => {
      state.done = true;
    });
    for (let i = 0; i < 3600 && !isDone(state); i++) {
      await new Promise((r) => setTimeout(r, 2));
      await s.clock.advance(1_000);
    }
    return run;
  }

  it('a 2xx answer acknowledges: the pod is evicted at once; the token and URL secrets stay out', async () => {
    const hook = await hookServer(() => 200);
    dir = mkdtempSync(join(tmpdir(), 'aegis-hook-'));
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 's3cret-token\n');
    const s = await setup();
    s.pod('job-0', { annotations: { [CHECKPOINT_OPT_IN]: 'true' } });
    const outcome = await drainReal(
      s,
      policy({
        mode: 'hook',
        timeoutMs: 10 * MIN,
        hook: {
          url: `${hook.url}/ckpt?key=querysecret`,
          allowedUrls: [],
          timeoutMs: 2_000,
          bearerTokenFile: tokenFile,
        },
      }),
    );
    assert.equal(outcome.status, 'Succeeded', outcome.message);
    assert.match(outcome.message ?? '', /1 acknowledged/);
    assert.equal(hook.calls.length, 1);
    assert.equal(hook.calls[0]?.auth, 'Bearer s3cret-token');
    assert.deepEqual(
      { node: hook.calls[0].body.node, pod: hook.calls[0].body.pod },
      { node: s.node, pod: 'job-0' },
    );
    const [evicted] = s.evictions('job-0');
    assert.ok(evicted !== undefined && evicted < MIN, `${evicted}`);
    const all = JSON.stringify([outcome, s.w.cluster.writes()]);
    assert.ok(!all.includes('s3cret') && !all.includes('querysecret'));
  });

  it('a failing hook is reported without its secrets; the pod goes at its deadline', async () => {
    const hook = await hookServer(() => 500);
    const s = await setup();
    s.pod('job-0', {
      annotations: {
        [CHECKPOINT_HOOK]: `${hook.url.replace('http://', 'http://u:pw@')}/own?t=querysecret`,
      },
    });
    const outcome = await drainReal(
      s,
      policy({
        mode: 'hook',
        timeoutMs: 5 * MIN,
        hook: { allowedUrls: ['http://u:pw@127\\.0\\.0\\.1:\\d+/own\\?.*'], timeoutMs: 2_000 },
      }),
    );
    assert.equal(outcome.status, 'Succeeded');
    assert.equal(hook.calls.length, 1, 'the pod’s own hook, allowed, asked once');
    assert.equal(hook.calls[0]?.auth, `Basic ${Buffer.from('u:pw').toString('base64')}`);
    assert.match(outcome.message ?? '', /HTTP 500 from http:\/\/127\.0\.0\.1:\d+\/own/);
    assert.ok(
      !(outcome.message ?? '').includes('querysecret') && !(outcome.message ?? '').includes('pw@'),
    );
    const [evicted] = s.evictions('job-0');
    assert.ok(evicted !== undefined && evicted >= 5 * MIN, `${evicted}`);
  });

  it('a pod’s own hook URL not in allowedUrls is not called', async () => {
    const hook = await hookServer(() => 200);
    const s = await setup();
    s.pod('job-0', { annotations: { [CHECKPOINT_HOOK]: `${hook.url}/own` } });
    const outcome = await drainReal(
      s,
      policy({
        mode: 'hook',
        timeoutMs: 2 * MIN,
        hook: { allowedUrls: ['https://hooks\\.example/.*'], timeoutMs: 2_000 },
      }),
    );
    assert.equal(outcome.status, 'Succeeded');
    assert.equal(hook.calls.length, 0);
    assert.match(outcome.message ?? '', /no hook URL/);
  });
});

describe('drain config', () => {
  it('defaults keep today’s drain; a hook mode without a URL is refused, naming the field', async () => {
    const { ConfigSchema } = await import('../config/schema.js');
    const d = ConfigSchema.parse({}).drain;
    assert.equal(d.checkpoint.mode, 'off');
    assert.equal(d.waitForCompletionMaxMs, 0);
    const bad = ConfigSchema.safeParse({ drain: { checkpoint: { mode: 'hook' } } });
    assert.equal(bad.success, false);
    assert.deepEqual(bad.error.issues[0]?.path, ['drain', 'checkpoint', 'hook', 'url']);
    const notUrl = ConfigSchema.safeParse({ drain: { checkpoint: { hook: { url: 'ftp://x' } } } });
    assert.match(notUrl.error?.issues[0]?.message ?? '', /http:\/\/ or https:\/\//);
    const ok = ConfigSchema.parse({
      drain: {
        checkpoint: { mode: 'hook', hook: { url: 'http://ckpt/drain' } },
        waitForCompletionMaxMs: '2h',
      },
    });
    assert.equal(ok.drain.waitForCompletionMaxMs, 2 * 3_600_000);
  });
});
