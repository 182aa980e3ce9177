/**
 * The watch-fed node cache of the real adapter on a real apiserver (+ kwok), as the controller's
 * ServiceAccount under the shipped RBAC. The client reaches the apiserver through a TCP proxy in
 * this process, which counts connections and can cut or refuse them: the adapter opens a new
 * connection per API request, so "no new connection" proves an answer came from the cache, and
 * cutting the connections breaks the watch the way a network fault or an apiserver restart does.
 *
 * Last, a measurement (printed, not asserted): listNodes on N kwok nodes, cached vs a direct LIST.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { ErrorCode, isHealError } from '../../src/core/errors.js';
import type { NodeInfo } from '../../src/core/types.js';
import { createKubeCluster } from '../../src/k8s/kube-cluster.js';
import { KWOK_NODE_LABEL } from '../helpers/k8s-harness.js';
import {
  JOB_TEMPLATES_DIR,
  createNode,
  deadline,
  eventually,
  startTestCluster,
  type TestCluster,
} from './setup.js';

/** Kwok nodes of the measurement (AEGIS_NODE_CACHE_BENCH_NODES overrides). */
const BENCH_NODES = Number(process.env.AEGIS_NODE_CACHE_BENCH_NODES ?? 1000);
const CONVERGE_MS = 10_000;

/** A loopback TCP proxy to the apiserver that counts, cuts and refuses connections. */
interface Proxy {
  readonly server: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** When true, new connections are closed at once (the apiserver looks down). */
  refuse: boolean;
  /** Destroys every open connection (the watch included). */
  cutAll(): void;
  close(): Promise<void>;
}

async function startProxy(target: string): Promise<Proxy> {
  const { hostname, port } = new URL(target);
  const open = new Set<Socket>();
  let connections = 0;
  const state = { refuse: false };
  const server: Server = createServer((client) => {
    if (state.refuse) {
      client.destroy();
      return;
    }
    connections++;
    const upstream = connect(Number(port), hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      open.add(a);
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        open.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy: no port');
  return {
    server: `https://127.0.0.1:${address.port}`,
    get connections() {
      return connections;
    },
    get refuse() {
      return state.refuse;
    },
    set refuse(value: boolean) {
      state.refuse = value;
    },
    cutAll() {
      for (const s of open) s.destroy();
    },
    close() {
      for (const s of open) s.destroy();
      return new Promise((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    },
  };
}

let cluster: TestCluster;
let proxy: Proxy;
const clients: { close(): Promise<void> }[] = [];

/** The controller's client through the proxy (watchNodes as given). */
function controller(watchNodes = true): ReturnType<typeof createKubeCluster> {
  const { stack } = cluster;
  const kube = createKubeCluster({
    kubeConfig: { server: proxy.server, token: stack.controllerToken, caData: stack.caData },
    leaseNamespace: 'monitoring',
    jobTemplatesDir: JOB_TEMPLATES_DIR,
    watchNodes,
  });
  clients.push(kube);
  return kube;
}

type Kube = ReturnType<typeof controller>;

/** Polls listNodes every 5 ms until `ok` holds; returns the nodes and how long it took. */
async function until(
  kube: Kube,
  what: string,
  ok: (nodes: readonly NodeInfo[]) => boolean,
): Promise<{ nodes: readonly NodeInfo[]; ms: number }> {
  const t0 = performance.now();
  for (;;) {
    const nodes = await kube.listNodes(deadline());
    const ms = performance.now() - t0;
    if (ok(nodes)) return { nodes, ms };
    if (ms > CONVERGE_MS) throw new Error(`timed out after ${CONVERGE_MS} ms waiting for ${what}`);
    await delay(5);
  }
}

/** Waits until listNodes answers without opening a connection: the watch is established. */
async function untilCached(kube: Kube): Promise<readonly NodeInfo[]> {
  return eventually(
    'listNodes served from the cache',
    async () => {
      const before = proxy.connections;
      const a = await kube.listNodes(deadline());
      const b = await kube.listNodes(deadline());
      return proxy.connections === before && a === b ? b : undefined;
    },
    CONVERGE_MS,
  );
}

const byName = (nodes: readonly NodeInfo[], name: string): NodeInfo | undefined =>
  nodes.find((n) => n.name === name);
const names = (nodes: readonly NodeInfo[]): string[] => nodes.map((n) => n.name);

/** Another client (admin) changes a node's labels. */
async function relabel(name: string, labels: Record<string, string>): Promise<void> {
  await cluster.adminCore.patchNode(
    { name, body: { metadata: { labels } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

before(async () => {
  cluster = await startTestCluster({ kwok: true });
  proxy = await startProxy(cluster.stack.server);
  for (const name of ['gpu-b', 'gpu-a', 'gpu-c']) await createNode(cluster, name);
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await proxy.close();
  await cluster.stop();
});

describe('node cache', () => {
  it('lists every node first, then answers from the cache in a stable order', async () => {
    const kube = controller();
    const first = await kube.listNodes(deadline());
    assert.deepEqual(names(first), ['gpu-a', 'gpu-b', 'gpu-c']);
    const cached = await untilCached(kube);
    assert.deepEqual(names(cached), ['gpu-a', 'gpu-b', 'gpu-c']);
    // The same sequence as a direct LIST (the apiserver's order).
    const direct = await controller(false).listNodes(deadline());
    assert.deepEqual(names(direct), names(cached));
    assert.equal(await kube.listNodes(deadline()), cached, 'unchanged fleet: the same array');
  });

  it('sees nodes created, changed and deleted by another client, through the watch', async (t) => {
    const kube = controller();
    await kube.listNodes(deadline());
    await untilCached(kube);
    const connections = proxy.connections;
    await createNode(cluster, 'gpu-0');
    const added = await until(kube, 'gpu-0 added', (n) => byName(n, 'gpu-0') !== undefined);
    assert.deepEqual(names(added.nodes), ['gpu-0', 'gpu-a', 'gpu-b', 'gpu-c']);
    await relabel('gpu-b', { 'topology.aegis.io/rack': 'r7' });
    const changed = await until(
      kube,
      'gpu-b relabelled',
      (n) => byName(n, 'gpu-b')?.labels['topology.aegis.io/rack'] === 'r7',
    );
    await cluster.adminCore.deleteNode({ name: 'gpu-0' });
    const deleted = await until(kube, 'gpu-0 deleted', (n) => byName(n, 'gpu-0') === undefined);
    assert.deepEqual(names(deleted.nodes), ['gpu-a', 'gpu-b', 'gpu-c']);
    assert.equal(proxy.connections, connections, 'all of it came through the open watch');
    t.diagnostic(
      `visible after: add ${added.ms.toFixed(0)} ms, change ${changed.ms.toFixed(0)} ms, ` +
        `delete ${deleted.ms.toFixed(0)} ms (polled every 5 ms from the write's answer)`,
    );
  });

  it('our own cordon and annotation are in the very next listNodes', async () => {
    const kube = controller();
    await kube.listNodes(deadline());
    await untilCached(kube);
    const cordoned = await kube.setUnschedulable('gpu-a', true, deadline());
    const next = byName(await kube.listNodes(deadline()), 'gpu-a');
    assert.equal(next?.unschedulable, true);
    assert.equal(next.resourceVersion, cordoned.resourceVersion);
    const ticketed = await kube.patchNodeAnnotations(
      'gpu-a',
      { 'aegis.io/ticketing': '{"t":1}' },
      cordoned.resourceVersion,
      deadline(),
    );
    const after = byName(await kube.listNodes(deadline()), 'gpu-a');
    assert.equal(after?.annotations['aegis.io/ticketing'], '{"t":1}');
    assert.equal(after.resourceVersion, ticketed.resourceVersion);
    // The watch's echo of our writes changes nothing; the cache stays on the newest version.
    const settled = await untilCached(kube);
    assert.equal(byName(settled, 'gpu-a')?.resourceVersion, ticketed.resourceVersion);
    await kube.setUnschedulable('gpu-a', false, deadline());
    assert.equal(byName(await kube.listNodes(deadline()), 'gpu-a')?.unschedulable, false);
  });

  it('resyncs after the watch is cut, and never serves stale data while it cannot', async () => {
    const kube = controller();
    await kube.listNodes(deadline());
    await untilCached(kube);
    // A cut: the watch ends; a change made meanwhile must still show up.
    proxy.cutAll();
    await relabel('gpu-c', { phase: 'one' });
    await until(kube, 'phase one', (n) => byName(n, 'gpu-c')?.labels.phase === 'one');
    await untilCached(kube);
    // The apiserver unreachable: listNodes fails (K8S_UNAVAILABLE) instead of answering stale.
    proxy.refuse = true;
    proxy.cutAll();
    await eventually('listNodes failing', async () => {
      try {
        await kube.listNodes(deadline());
        return undefined;
      } catch (err) {
        return isHealError(err, ErrorCode.K8sUnavailable) ? true : undefined;
      }
    });
    await relabel('gpu-c', { phase: 'two' });
    await assert.rejects(kube.listNodes(deadline()), (err: unknown) =>
      isHealError(err, ErrorCode.K8sUnavailable),
    );
    // Back: the first answer is current, and the watch comes back.
    proxy.refuse = false;
    const back = await kube.listNodes(deadline());
    assert.equal(byName(back, 'gpu-c')?.labels.phase, 'two');
    await untilCached(kube);
    await relabel('gpu-c', { phase: 'three' });
    const before = proxy.connections;
    await until(kube, 'phase three', (n) => byName(n, 'gpu-c')?.labels.phase === 'three');
    assert.equal(proxy.connections, before, 'through the new watch');
  });

  it('close stops the watch; listNodes keeps working with direct lists', async () => {
    const kube = controller();
    await kube.listNodes(deadline());
    await untilCached(kube);
    await kube.close();
    await relabel('gpu-b', { after: 'close' });
    const nodes = await kube.listNodes(deadline());
    assert.deepEqual(names(nodes), ['gpu-a', 'gpu-b', 'gpu-c']);
    // The change made after the watch stopped shows at once: a direct LIST answered.
    assert.equal(byName(nodes, 'gpu-b')?.labels.after, 'close');
  });

  it(`measures listNodes on ${BENCH_NODES} kwok nodes: cache vs direct LIST`, async (t) => {
    const kube = controller();
    const direct = controller(false);
    await kube.listNodes(deadline());
    await untilCached(kube);
    const t0 = performance.now();
    const names = Array.from(
      { length: BENCH_NODES },
      (_, i) => `kwok-${String(i).padStart(5, '0')}`,
    );
    for (let i = 0; i < names.length; i += 25) {
      await Promise.all(
        names.slice(i, i + 25).map((name) =>
          createNode(cluster, name, {
            kwok: true,
            labels: { 'topology.aegis.io/rack': `r${i % 40}`, [KWOK_NODE_LABEL]: 'fake' },
          }),
        ),
      );
    }
    const created = performance.now() - t0;
    const total = BENCH_NODES + 3;
    await until(kube, 'every kwok node in the cache', (n) => n.length === total);
    const seen = performance.now() - t0;
    const time = async (k: Kube, runs: number): Promise<number[]> => {
      const ms: number[] = [];
      for (let i = 0; i < runs; i++) {
        const s = performance.now();
        const nodes = await k.listNodes(deadline());
        ms.push(performance.now() - s);
        assert.equal(nodes.length, total);
      }
      return ms.sort((a, b) => a - b);
    };
    const cached = await time(kube, 50);
    const listed = await time(direct, 10);
    const median = (xs: number[]): string => (xs[Math.floor(xs.length / 2)] ?? 0).toFixed(2);
    const max = (xs: number[]): string => (xs.at(-1) ?? 0).toFixed(2);
    const ready = (await kube.listNodes(deadline())).filter((n) => n.ready === true).length;
    t.diagnostic(
      `created ${BENCH_NODES} kwok nodes in ${created.toFixed(0)} ms, all in the cache after ` +
        `${seen.toFixed(0)} ms; ${ready} Ready by kwok when measured`,
    );
    t.diagnostic(`listNodes cached: median ${median(cached)} ms, max ${max(cached)} ms (50 calls)`);
    t.diagnostic(
      `listNodes direct LIST: median ${median(listed)} ms, max ${max(listed)} ms (10 calls)`,
    );
    // A kwok heartbeat or two may have changed nodes meanwhile; the order never changes.
    const a = await kube.listNodes(deadline());
    const b = await direct.listNodes(deadline());
    assert.deepEqual(
      a.map((n) => n.name),
      b.map((n) => n.name),
    );
  });
});
