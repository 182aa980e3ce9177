/**
 * Drains that respect training jobs survive a restart: the daemon is killed while a reboot's
 * drain waits for a pod's checkpoint, a fresh engine (a new leader: no memory but the cluster)
 * resumes the Running step, and the pod is neither asked a second time nor evicted before its
 * deadline or its acknowledgement.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SIGNAL_PRESENCE } from '../../src/catalogue/signals.js';
import type { Config } from '../../src/config/schema.js';
import { createEngine } from '../../src/daemon.js';
import { CHECKPOINT_OPT_IN, DRAIN_REQUESTED } from '../../src/engine/drain-checkpoint.js';
import { silentLogger } from '../../src/engine/logger.js';
import type { ClusterClient } from '../../src/k8s/cluster.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import {
  catalogueOf,
  createSafetyWorld,
  HOUR,
  LADDER_CONDITIONS,
  MIN,
  safetyConfig,
  type SafetyWorld,
} from '../fixtures/safety/safety-world.js';

const CATALOGUE = catalogueOf(LADDER_CONDITIONS);
const CHECKPOINT_TIMEOUT_MS = 30 * MIN;

function config(): Config {
  const base = safetyConfig();
  return {
    ...base,
    drain: {
      checkpoint: {
        ...base.drain.checkpoint,
        mode: 'annotation',
        timeoutMs: CHECKPOINT_TIMEOUT_MS,
      },
      waitForCompletionMaxMs: 0,
    },
  };
}

/** One daemon incarnation over the cluster; `kill()` stops it dead, mid-step. */
function incarnation(sw: SafetyWorld): { cycle(): Promise<void>; kill(): void } {
  const ctl = new AbortController();
  let dead = false;
  const inner = sw.world.cluster;
  // Every method of the cluster, optional ones included, refused once the daemon is dead.
  const cluster = new Proxy(inner, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        if (dead) return Promise.reject(new Error('daemon killed'));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as ClusterClient;
  const prio = new Map(CATALOGUE.map((e) => [e.name, e.priority]));
  const engine = createEngine({
    cluster,
    metricsSource: sw.world.metrics,
    clock: sw.clock,
    config: config(),
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    priorityOf: () => (name) => prio.get(name) ?? 999,
    metrics: createMetrics(),
    log: silentLogger,
  });
  return {
    async cycle() {
      if (dead) return;
      const state = { done: false };
      const run = engine.controller
        .cycle(ctl.signal)
        .catch(() => undefined)
        .finally(() => {
          state.done = true;
        });
      await sw.clock.advance(0);
      while (!isDone(state)) await sw.clock.advance(1_000);
      await run;
    },
    kill() {
      dead = true;
      ctl.abort();
    },
  };
}

function isDone(state: { readonly done: boolean }): boolean {
  return state.done;
}

/** Runs cycles every 30 s until `until` says stop or `maxMs` passes. */
async function runUntil(
  sw: SafetyWorld,
  life: { cycle(): Promise<void> },
  maxMs: number,
  until: () => Promise<boolean> | boolean = () => false,
): Promise<void> {
  const end = sw.clock.now() + maxMs;
  while (sw.clock.now() < end) {
    const start = sw.clock.now();
    await life.cycle();
    if (await until()) return;
    await sw.clock.advance(Math.max(0, 30_000 - (sw.clock.now() - start)));
  }
}

interface Run {
  readonly sw: SafetyWorld;
  readonly node: string;
  readonly t0: number;
  /** The writes of the drain request on the pod. */
  signals(): number;
  /** When the pod was evicted (ms after t0). */
  evictions(): number[];
  /** The message of the Running Reboot step, if one is running. */
  runningMessage(): Promise<string | undefined>;
  deadlineMs(): Promise<number | undefined>;
}

async function scenario(ackAfterMs?: number): Promise<Run> {
  const sw = await createSafetyWorld({ nodes: 4, seed: 17 });
  const node = sw.names[1]!;
  const t0 = sw.clock.now();
  sw.world.cluster.tenantPods().addPod({
    node,
    namespace: 'training',
    name: 'llm-0',
    annotations: { [CHECKPOINT_OPT_IN]: 'true' },
    ...(ackAfterMs === undefined ? {} : { checkpoint: { ackAfterMs } }),
  });
  sw.world.faults.injectFault({ condition: 'Xid79GPULost', device: '1', node, atMs: t0 });
  const signal = new AbortController().signal;
  const pod = async (): Promise<Readonly<Record<string, string>>> =>
    (await sw.world.cluster.listPodsOnNode(node, signal)).find((p) => p.name === 'llm-0')
      ?.annotations ?? {};
  return {
    sw,
    node,
    t0,
    signals: () =>
      sw.world.cluster
        .writes()
        .filter(
          (w) =>
            w.method === 'patchPodAnnotations' &&
            w.target === 'training/llm-0' &&
            w.detail.includes(DRAIN_REQUESTED),
        ).length,
    evictions: () =>
      sw.world.cluster
        .podOperations()
        .filter((o) => o.kind === 'evict' && o.name === 'llm-0' && o.result === 'evicted')
        .map((o) => o.atMs - t0),
    async runningMessage() {
      const t = await sw.ticket(node);
      return t?.workflows.find((w) => w.status === 'Running' && w.action === 'Reboot')?.message;
    },
    async deadlineMs() {
      const raw = (await pod())[DRAIN_REQUESTED];
      return raw === undefined ? undefined : Date.parse(raw) - t0;
    },
  };
}

describe('a drain waiting for a checkpoint survives a restart', () => {
  it('killed mid-wait: the new leader does not ask again and evicts only at the deadline', async () => {
    const r = await scenario(); // the pod never answers
    const a = incarnation(r.sw);
    await runUntil(r.sw, a, 2 * HOUR, () => r.signals() > 0);
    assert.equal(r.signals(), 1, 'the pod was asked to checkpoint');
    const deadline = await r.deadlineMs();
    assert.ok(deadline !== undefined);
    const message = await r.runningMessage();
    assert.match(message ?? '', /^waiting for checkpoint of 1 pod, deadline \d{4}-\d\d-\d\dT/);
    await runUntil(r.sw, a, 10 * MIN);
    a.kill();
    assert.deepEqual(r.evictions(), [], 'nothing evicted before the kill');
    const b = incarnation(r.sw);
    await runUntil(
      r.sw,
      b,
      3 * HOUR,
      async () => (await r.sw.ticket(r.node))?.status !== 'created',
    );
    assert.equal(r.signals(), 1, 'never asked a second time');
    const [evicted] = r.evictions();
    assert.ok(evicted !== undefined, 'evicted in the end');
    assert.ok(evicted >= deadline, `evicted at ${evicted} ms, before the deadline ${deadline} ms`);
    assert.ok(evicted <= deadline + MIN, `evicted ${evicted - deadline} ms after the deadline`);
    const t = await r.sw.ticket(r.node);
    const reboot = t?.workflows.find((w) => w.action === 'Reboot');
    assert.equal(reboot?.status, 'Succeeded', JSON.stringify(t?.workflows));
    assert.equal(r.sw.world.cluster.rebootCount(r.node), 1);
  });

  it('killed mid-wait: a pod that acknowledges later is evicted right after its answer', async () => {
    const r = await scenario(20 * MIN);
    const a = incarnation(r.sw);
    await runUntil(r.sw, a, 2 * HOUR, () => r.signals() > 0);
    const askedAt = r.sw.clock.now() - r.t0;
    await runUntil(r.sw, a, 5 * MIN);
    a.kill();
    const b = incarnation(r.sw);
    await runUntil(
      r.sw,
      b,
      3 * HOUR,
      async () => (await r.sw.ticket(r.node))?.status !== 'created',
    );
    assert.equal(r.signals(), 1);
    const [evicted] = r.evictions();
    assert.ok(evicted !== undefined);
    const answeredAt = askedAt + 20 * MIN;
    assert.ok(
      evicted >= answeredAt - 30_000 && evicted <= answeredAt + 2 * MIN,
      `evicted at ${evicted}, answered near ${answeredAt}`,
    );
    const deadline = await r.deadlineMs();
    assert.ok(deadline === undefined || evicted < deadline, 'not held to the deadline');
  });
});
