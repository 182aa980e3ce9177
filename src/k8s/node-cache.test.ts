import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../core/clock.js';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import type { NodeInfo } from '../core/types.js';
import { collectList, toNodeInfo, toNodeWatchEvent } from './kube-convert.js';
import {
  HEALTHY_WATCH_MS,
  MAX_BACKOFF_MS,
  MIN_BACKOFF_MS,
  NodeCache,
  NodeInformer,
  isOlder,
  type NodeList,
  type NodeSource,
  type NodeWatchHandlers,
} from './node-cache.js';

function node(name: string, rv: number | string, extra: Partial<NodeInfo> = {}): NodeInfo {
  return {
    name,
    resourceVersion: String(rv),
    ready: true,
    unschedulable: false,
    labels: {},
    annotations: {},
    taints: [],
    ...extra,
  };
}

const names = (nodes: readonly NodeInfo[]): string[] => nodes.map((n) => n.name);
const list = (rv: number, ...items: NodeInfo[]): NodeList => ({
  items,
  resourceVersion: String(rv),
});

describe('isOlder', () => {
  it('compares decimal resourceVersions as integers, beyond 2^53', () => {
    assert.equal(isOlder('9', '10'), true);
    assert.equal(isOlder('10', '9'), false);
    assert.equal(isOlder('7', '7'), false);
    assert.equal(isOlder('9007199254740993', '9007199254740994'), true);
  });

  it('knows nothing of non-decimal ones (the newer data is accepted)', () => {
    assert.equal(isOlder('abc', '10'), false);
    assert.equal(isOlder('10', 'abc'), false);
    assert.equal(isOlder('', '10'), false);
  });
});

describe('watch conversion', () => {
  // A watch line's object is plain JSON: dates are strings, not the client's Date objects.
  const json = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: 'gpu-1',
      resourceVersion: '42',
      creationTimestamp: '2026-01-01T00:00:00Z',
      labels: { 'topology.aegis.io/rack': 'r1' },
      annotations: { 'aegis.io/ticketing': '{}' },
    },
    spec: {
      unschedulable: true,
      taints: [{ key: 'k', effect: 'NoSchedule', timeAdded: '2026-01-01T00:00:00Z' }],
    },
    status: {
      conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: '2026-01-01T00:00:00Z' }],
      nodeInfo: { bootID: 'b-1' },
    },
  };
  const model = {
    ...json,
    metadata: { ...json.metadata, creationTimestamp: new Date('2026-01-01T00:00:00Z') },
    spec: { ...json.spec, taints: [{ key: 'k', effect: 'NoSchedule', timeAdded: new Date(0) }] },
  };

  it('converts a node event from plain JSON exactly as a client model', () => {
    const event = toNodeWatchEvent('MODIFIED', JSON.parse(JSON.stringify(json)));
    assert.deepEqual(event, { type: 'MODIFIED', node: toNodeInfo(model) });
    assert.deepEqual(event.node, {
      name: 'gpu-1',
      resourceVersion: '42',
      ready: true,
      unschedulable: true,
      labels: { 'topology.aegis.io/rack': 'r1' },
      annotations: { 'aegis.io/ticketing': '{}' },
      taints: [{ key: 'k', effect: 'NoSchedule' }],
      bootId: 'b-1',
    });
    assert.equal(toNodeWatchEvent('DELETED', json)?.type, 'DELETED');
  });

  it('bookmarks, errors and unknown types', () => {
    const bookmark = { kind: 'Node', metadata: { resourceVersion: '77' } };
    assert.deepEqual(toNodeWatchEvent('BOOKMARK', bookmark), {
      type: 'BOOKMARK',
      resourceVersion: '77',
    });
    const gone = { kind: 'Status', code: 410, message: 'too old resource version: 1 (99)' };
    assert.deepEqual(toNodeWatchEvent('ERROR', gone), {
      type: 'ERROR',
      status: 410,
      message: 'too old resource version: 1 (99)',
    });
    assert.deepEqual(toNodeWatchEvent('ERROR', null), { type: 'ERROR', message: 'watch error' });
    assert.equal(toNodeWatchEvent('SOMETHING', json), undefined);
  });

  it('a paginated list keeps the resourceVersion of its snapshot', async () => {
    const pages = [
      { items: [1, 2], metadata: { _continue: 't1', resourceVersion: '500' } },
      { items: [3], metadata: { _continue: '', resourceVersion: '500' } },
    ];
    const seen: { _continue?: string }[] = [];
    const list = await collectList((page) => {
      seen.push(page);
      return Promise.resolve(pages[seen.length - 1] ?? { items: [] });
    });
    assert.deepEqual(list, { items: [1, 2, 3], resourceVersion: '500' });
    assert.deepEqual(seen, [{}, { _continue: 't1' }]);
  });
});

describe('NodeCache', () => {
  it('snapshots sorted by name, the same array while nothing changed', () => {
    const cache = new NodeCache();
    cache.replace(list(10, node('gpu-10', 3), node('gpu-2', 4), node('gpu-1', 5)));
    const first = cache.snapshot();
    assert.deepEqual(names(first), ['gpu-1', 'gpu-10', 'gpu-2']);
    assert.ok(Object.isFrozen(first));
    assert.equal(cache.snapshot(), first);
    // The same list again (a reseed) changes nothing: same array, same node objects.
    cache.replace(list(11, node('gpu-2', 4), node('gpu-1', 5), node('gpu-10', 3)));
    assert.equal(cache.snapshot(), first);
    // A bookmark moves the position only.
    cache.apply({ type: 'BOOKMARK', resourceVersion: '12' });
    assert.equal(cache.snapshot(), first);
    assert.equal(cache.resumeRv(), '12');
  });

  it('applies added, modified and deleted nodes', () => {
    const cache = new NodeCache();
    cache.replace(list(10, node('a', 5), node('c', 6)));
    const before = cache.snapshot();
    cache.apply({ type: 'ADDED', node: node('b', 11) });
    const added = cache.snapshot();
    assert.notEqual(added, before);
    assert.deepEqual(names(added), ['a', 'b', 'c']);
    cache.apply({ type: 'MODIFIED', node: node('a', 12, { unschedulable: true }) });
    const modified = cache.snapshot();
    assert.notEqual(modified, added, 'a new array: the old one is never mutated');
    assert.deepEqual(names(modified), ['a', 'b', 'c']);
    assert.equal(modified[0]?.unschedulable, true);
    assert.equal(added[0]?.unschedulable, false);
    cache.apply({ type: 'DELETED', node: node('c', 13) });
    assert.deepEqual(names(cache.snapshot()), ['a', 'b']);
    assert.equal(cache.resumeRv(), '13');
    assert.equal(cache.size, 2);
  });

  it('an event older than our own write does not overwrite it', () => {
    const cache = new NodeCache();
    cache.replace(list(10, node('a', 5)));
    cache.upsert(node('a', 20, { annotations: { 'aegis.io/ticketing': 'x' } }));
    const written = cache.snapshot();
    // The watch is behind our write: it delivers the versions before it.
    cache.apply({ type: 'MODIFIED', node: node('a', 15) });
    cache.apply({ type: 'DELETED', node: node('a', 18) });
    assert.equal(cache.snapshot(), written);
    assert.equal(cache.get('a')?.annotations['aegis.io/ticketing'], 'x');
    assert.equal(cache.resumeRv(), '18', 'the stream position still moves');
    // Our write reaches the watch, then a newer change by someone else.
    cache.apply({
      type: 'MODIFIED',
      node: node('a', 20, { annotations: { 'aegis.io/ticketing': 'x' } }),
    });
    assert.equal(cache.snapshot(), written, 'the echo of our write changes nothing');
    cache.apply({ type: 'MODIFIED', node: node('a', 21) });
    assert.equal(cache.get('a')?.resourceVersion, '21');
  });

  it('a stale own result (an older read) does not overwrite newer watch data', () => {
    const cache = new NodeCache();
    cache.replace(list(10, node('a', 5)));
    cache.apply({ type: 'MODIFIED', node: node('a', 30, { ready: false }) });
    cache.upsert(node('a', 25));
    assert.equal(cache.get('a')?.ready, false);
  });

  it('skips events already reflected by a newer list (a replayed watch)', () => {
    const cache = new NodeCache();
    cache.replace(list(50, node('a', 40)));
    // Replay from before the list: "b" was added then deleted before rv 50.
    cache.apply({ type: 'ADDED', node: node('b', 45) });
    assert.deepEqual(names(cache.snapshot()), ['a']);
    cache.apply({ type: 'MODIFIED', node: node('a', 50) });
    assert.equal(cache.get('a')?.resourceVersion, '40');
    assert.equal(cache.resumeRv(), '50', 'never moves backwards');
  });

  it('a write answered after the watch delivered the deletion does not resurrect the node', () => {
    const cache = new NodeCache();
    cache.replace(list(10, node('a', 5), node('b', 6)));
    // We cordon "a" (rv 11); someone deletes it (rv 12); the watch delivers both first.
    cache.apply({ type: 'MODIFIED', node: node('a', 11, { unschedulable: true }) });
    cache.apply({ type: 'DELETED', node: node('a', 12) });
    cache.upsert(node('a', 11, { unschedulable: true }));
    assert.deepEqual(names(cache.snapshot()), ['b']);
  });

  it('a delete older than a re-creation we read keeps the node', () => {
    const cache = new NodeCache();
    cache.replace(list(10, node('a', 5)));
    cache.upsert(node('a', 30)); // re-created, seen by our getNode
    cache.apply({ type: 'DELETED', node: node('a', 20) });
    assert.equal(cache.get('a')?.resourceVersion, '30');
  });

  it('accepts events whose resourceVersions cannot be compared', () => {
    const cache = new NodeCache();
    cache.replace(list(10, node('a', 5)));
    cache.apply({ type: 'MODIFIED', node: node('a', 'opaque', { ready: false }) });
    assert.equal(cache.get('a')?.ready, false);
    cache.apply({ type: 'MODIFIED', node: node('a', 'other', { ready: true }) });
    assert.equal(cache.get('a')?.ready, true);
  });

  it('a reseed removes what the list lacks, keeps our newer writes, ignores older lists', () => {
    const cache = new NodeCache();
    cache.replace(list(10, node('a', 5), node('b', 6), node('c', 7)));
    cache.upsert(node('d', 31)); // created and written by us after the next list was taken
    cache.upsert(node('a', 32, { unschedulable: true }));
    assert.equal(cache.replace(list(30, node('a', 8), node('b', 6))), true);
    assert.deepEqual(names(cache.snapshot()), ['a', 'b', 'd']);
    assert.equal(cache.get('a')?.unschedulable, true);
    assert.equal(cache.resumeRv(), '30');
    assert.equal(cache.replace(list(20, node('z', 19))), false);
    assert.deepEqual(names(cache.snapshot()), ['a', 'b', 'd']);
  });

  it('is synced only when seeded and watching', () => {
    const cache = new NodeCache();
    cache.watchOpened();
    assert.equal(cache.synced, false, 'never listed');
    cache.replace(list(10));
    assert.equal(cache.synced, true);
    cache.watchClosed(new Error('reset'), 5);
    assert.equal(cache.synced, false);
    cache.watchOpened();
    cache.watchLost();
    assert.equal(cache.synced, false);
  });

  it('backs off 0.2 s → 5 s on failures; a long clean watch resumes at once; 410 relists', () => {
    const cache = new NodeCache();
    cache.replace(list(10));
    const delays = Array.from({ length: 7 }, () => cache.attemptFailed());
    assert.deepEqual(delays, [200, 400, 800, 1600, 3200, 5000, 5000]);
    assert.equal(delays[0], MIN_BACKOFF_MS);
    assert.equal(delays.at(-1), MAX_BACKOFF_MS);
    assert.equal(cache.watchClosed(undefined, 300_000), 0);
    assert.equal(cache.resumeRv(), '10');
    assert.equal(
      cache.watchClosed(undefined, 10),
      MIN_BACKOFF_MS,
      'a watch ending at once backs off',
    );
    assert.equal(cache.watchClosed(new Error('reset'), 10), 400);
    assert.equal(cache.watchClosed({ statusCode: 410 }, 300_000), 200, 'healthy: backoff reset');
    assert.equal(cache.resumeRv(), '', '410 Gone: the next step is a list');
  });
});

/** An apiserver in memory: a fleet, a resourceVersion counter and at most one open watch. */
class FakeSource implements NodeSource {
  readonly nodes = new Map<string, NodeInfo>();
  rv = 100;
  lists = 0;
  readonly watches: string[] = [];
  listError: Error | undefined;
  watchError: Error | undefined;
  #handlers: NodeWatchHandlers | undefined;

  get watching(): boolean {
    return this.#handlers !== undefined;
  }

  list(signal: AbortSignal): Promise<NodeList> {
    signal.throwIfAborted();
    this.lists++;
    if (this.listError !== undefined) return Promise.reject(this.listError);
    const items = [...this.nodes.values()];
    return Promise.resolve({ items, resourceVersion: String(this.rv) });
  }

  watch(resourceVersion: string, handlers: NodeWatchHandlers): Promise<() => void> {
    this.watches.push(resourceVersion);
    if (this.watchError !== undefined) {
      handlers.onEnd(this.watchError);
      return Promise.resolve(() => undefined);
    }
    this.#handlers = handlers;
    return Promise.resolve(() => {
      if (this.#handlers === handlers) this.#handlers = undefined;
    });
  }

  /** Another client creates or changes a node. */
  set(name: string, extra: Partial<NodeInfo> = {}): NodeInfo {
    const type = this.nodes.has(name) ? 'MODIFIED' : 'ADDED';
    const n = node(name, ++this.rv, extra);
    this.nodes.set(name, n);
    this.#handlers?.onEvent({ type, node: n });
    return n;
  }

  remove(name: string): void {
    this.nodes.delete(name);
    this.#handlers?.onEvent({ type: 'DELETED', node: node(name, ++this.rv) });
  }

  /** The apiserver's periodic bookmark. */
  bookmark(): void {
    this.#handlers?.onEvent({ type: 'BOOKMARK', resourceVersion: String(this.rv) });
  }

  /** The server sends a Status in the stream, or ends the watch. */
  error(status: number): void {
    this.#handlers?.onEvent({ type: 'ERROR', status, message: 'too old resource version' });
  }

  end(err?: unknown): void {
    const h = this.#handlers;
    this.#handlers = undefined;
    h?.onEnd(err);
  }
}

function setup(idleTimeoutMs?: number): {
  source: FakeSource;
  clock: ManualClock;
  informer: NodeInformer;
} {
  const source = new FakeSource();
  source.set('gpu-2');
  source.set('gpu-1');
  const clock = new ManualClock();
  const informer = new NodeInformer(source, {
    clock,
    ...(idleTimeoutMs === undefined ? {} : { idleTimeoutMs }),
  });
  return { source, clock, informer };
}

const signal = (): AbortSignal => new AbortController().signal;

describe('NodeInformer', () => {
  it('lists directly until a watch is established, then answers from the cache', async () => {
    const { source, clock, informer } = setup();
    assert.equal(informer.synced, false);
    const first = await informer.list(signal());
    assert.deepEqual(names(first), ['gpu-1', 'gpu-2']);
    assert.equal(source.lists, 1);
    await clock.advance(0);
    assert.deepEqual(
      source.watches,
      ['102'],
      'watches from the direct list, without a second list',
    );
    assert.equal(informer.synced, true);
    assert.equal(await informer.list(signal()), first, 'unchanged fleet: the same array');
    assert.equal(source.lists, 1);
    await informer.close();
  });

  it('reflects changes made by others, and our own writes at once', async () => {
    const { source, clock, informer } = setup();
    await informer.list(signal());
    await clock.advance(0);
    source.set('gpu-0');
    source.set('gpu-2', { ready: false });
    source.remove('gpu-1');
    const nodes = await informer.list(signal());
    assert.deepEqual(names(nodes), ['gpu-0', 'gpu-2']);
    assert.equal(nodes[1]?.ready, false);
    // Our cordon: the write's result, before the watch delivers it.
    informer.upsert(node('gpu-0', ++source.rv, { unschedulable: true }));
    assert.equal((await informer.list(signal()))[0]?.unschedulable, true);
    assert.equal(source.lists, 1);
    await informer.close();
  });

  it('after a watch error: lists directly while down, re-watches from where it was', async () => {
    const { source, clock, informer } = setup();
    await informer.list(signal());
    await clock.advance(0);
    source.set('gpu-3');
    source.end(new Error('connection reset'));
    assert.equal(informer.synced, false);
    source.set('gpu-4'); // missed by the watch
    // Not synced: a direct list, which also reseeds the cache (and wakes the loop).
    assert.deepEqual(names(await informer.list(signal())), ['gpu-1', 'gpu-2', 'gpu-3', 'gpu-4']);
    assert.equal(source.lists, 2);
    await clock.advance(0);
    assert.deepEqual(source.watches, ['102', '104'], 're-watch from the reseed, no backoff left');
    assert.equal(informer.synced, true);
    source.set('gpu-5');
    assert.equal((await informer.list(signal())).length, 5);
    assert.equal(source.lists, 2);
    await informer.close();
  });

  it('re-watches after a backoff when nobody lists meanwhile', async () => {
    const { source, clock, informer } = setup();
    await informer.list(signal());
    await clock.advance(0);
    source.set('gpu-3');
    source.end(new Error('connection reset'));
    await clock.advance(MIN_BACKOFF_MS - 1);
    assert.equal(source.watches.length, 1);
    await clock.advance(1);
    assert.deepEqual(source.watches, ['102', '103']);
    assert.equal(informer.synced, true);
    assert.equal(source.lists, 1, 'resumed without a list');
    await informer.close();
  });

  it('410 Gone relists before watching again', async () => {
    const { source, clock, informer } = setup();
    await informer.list(signal());
    await clock.advance(0);
    source.error(410);
    assert.equal(informer.synced, false);
    source.set('gpu-9');
    await clock.advance(MIN_BACKOFF_MS);
    assert.equal(source.lists, 2);
    assert.deepEqual(source.watches, ['102', '103']);
    assert.deepEqual(names(await informer.list(signal())), ['gpu-1', 'gpu-2', 'gpu-9']);
    assert.equal(source.lists, 2);
    await informer.close();
  });

  it('a clean server-side end after a healthy watch resumes at once', async () => {
    const { source, clock, informer } = setup();
    await informer.list(signal());
    await clock.advance(0);
    for (let s = 0; s < 5; s++) {
      await clock.advance(60_000);
      source.bookmark();
    }
    source.end();
    await clock.advance(0);
    assert.deepEqual(source.watches, ['102', '102']);
    assert.equal(informer.synced, true);
    await informer.close();
  });

  it('while the apiserver is down: list throws, the loop keeps retrying with a bounded backoff', async () => {
    const { source, clock, informer } = setup();
    await informer.list(signal());
    await clock.advance(0);
    const down = new HealError(ErrorCode.K8sUnavailable, 'list nodes: connect ECONNREFUSED');
    source.listError = down;
    source.watchError = new Error('connect ECONNREFUSED');
    source.end(new Error('socket hang up'));
    await assert.rejects(informer.list(signal()), (err: unknown) => err === down);
    // Attempts at 0.2, 0.6, 1.4, 3, 6.2, 11.2, 16.2 s: doubling up to 5 s.
    await clock.advance(16_200);
    assert.equal(source.watches.length, 8);
    // Back up: the next attempt re-watches from the last position and serves the cache again.
    source.listError = undefined;
    source.watchError = undefined;
    await clock.advance(MAX_BACKOFF_MS);
    assert.equal(informer.synced, true);
    assert.equal(source.watches.at(-1), '102');
    await informer.close();
  });

  it('tells of each failure with the count in a row; a healthy watch starts the count again', async () => {
    const source = new FakeSource();
    source.set('gpu-1');
    const clock = new ManualClock();
    const told: [string, number][] = [];
    const informer = new NodeInformer(source, {
      clock,
      onError: (err, n) => told.push([errorMessage(err), n]),
    });
    await informer.list(signal());
    await clock.advance(0);
    source.watchError = new Error('connect ECONNREFUSED');
    source.end(new Error('socket hang up'));
    await clock.advance(MIN_BACKOFF_MS);
    assert.deepEqual(told, [
      ['socket hang up', 1],
      ['connect ECONNREFUSED', 2],
    ]);
    source.watchError = undefined;
    await clock.advance(MAX_BACKOFF_MS);
    assert.equal(informer.synced, true);
    await clock.advance(HEALTHY_WATCH_MS);
    const before = told.length;
    source.end(new Error('stream reset'));
    await clock.advance(0);
    assert.deepEqual(told.slice(before), [['stream reset', 1]]);
    await informer.close();
    assert.equal(told.length, before + 1, 'closing is not a failure');
  });

  it('the first list failing starts the loop, which lists by itself', async () => {
    const { source, clock, informer } = setup();
    source.listError = new HealError(ErrorCode.K8sUnavailable, 'down');
    await assert.rejects(informer.list(signal()), HealError);
    await clock.advance(0);
    assert.equal(source.lists, 2, 'the loop tried once');
    source.listError = undefined;
    await clock.advance(MIN_BACKOFF_MS);
    assert.equal(source.lists, 3);
    assert.equal(informer.synced, true);
    assert.deepEqual(names(await informer.list(signal())), ['gpu-1', 'gpu-2']);
    assert.equal(source.lists, 3);
    await informer.close();
  });

  it('restarts a watch that stays silent past the idle timeout', async () => {
    const { source, clock, informer } = setup(1_000);
    await informer.list(signal());
    await clock.advance(0);
    await clock.advance(900);
    source.set('gpu-3'); // activity resets the timer
    await clock.advance(900);
    assert.equal(source.watches.length, 1);
    await clock.advance(600);
    assert.equal(source.watches.length, 2, 'presumed dead and restarted');
    assert.equal(source.watches[1], '103');
    await informer.close();
  });

  it('an aborted caller signal throws before anything is started', async () => {
    const { source, clock, informer } = setup();
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(informer.list(ac.signal), { name: 'AbortError' });
    await clock.advance(0);
    assert.equal(source.lists, 0);
    assert.deepEqual(source.watches, []);
  });

  it('close stops the watch and the loop; list then goes to the server', async () => {
    const { source, clock, informer } = setup();
    await informer.list(signal());
    await clock.advance(0);
    assert.equal(source.watching, true);
    await informer.close();
    assert.equal(source.watching, false);
    assert.equal(clock.pending, 0, 'no timer left behind');
    assert.equal(informer.synced, false);
    await informer.list(signal());
    await clock.advance(10_000);
    assert.equal(source.lists, 2);
    assert.equal(source.watches.length, 1, 'nothing restarted');
  });

  it('close during a retry delay ends the loop at once', async () => {
    const { source, clock, informer } = setup();
    await informer.list(signal());
    await clock.advance(0);
    source.end(new Error('reset'));
    await clock.advance(0);
    assert.equal(clock.pending, 1);
    await informer.close();
    assert.equal(clock.pending, 0);
  });
});
