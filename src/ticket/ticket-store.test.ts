import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../core/clock.js';
import { ErrorCode, HealError } from '../core/errors.js';
import { TICKET_ANNOTATION, type NodeInfo } from '../core/types.js';
import type { NodeClient } from '../k8s/cluster.js';
import { aNode } from '../../test/helpers/builders.js';
import { AEGIS_SUPERVISOR, newTicket, serializeTicket, type Ticket } from './ticket.js';
import { updateTicket } from './ticket-store.js';

const T0 = Date.UTC(2026, 0, 1);
const signal = new AbortController().signal;

/** One node under optimistic concurrency, counting reads and writes; `cached` is its watch cache. */
class OneNode implements NodeClient {
  node: NodeInfo;
  cached: NodeInfo | undefined;
  gets = 0;
  patches = 0;
  conflicts = 0;

  constructor(node: NodeInfo, withCache: boolean) {
    this.node = node;
    this.cached = withCache ? node : undefined;
  }

  /** Another writer changes the node; the cache does not see it yet. */
  otherWrite(annotations: Record<string, string>): void {
    this.node = {
      ...this.node,
      resourceVersion: String(Number(this.node.resourceVersion) + 1),
      annotations: { ...this.node.annotations, ...annotations },
    };
  }

  listNodes(): Promise<readonly NodeInfo[]> {
    return Promise.resolve([this.node]);
  }
  getNode(): Promise<NodeInfo> {
    this.gets++;
    return Promise.resolve(this.node);
  }
  peekNode(): NodeInfo | undefined {
    return this.cached;
  }
  setUnschedulable(): Promise<NodeInfo> {
    throw new Error('not used');
  }
  patchNodeLabels(): Promise<NodeInfo> {
    throw new Error('not used');
  }
  patchNodeAnnotations(
    _name: string,
    annotations: Readonly<Record<string, string | null>>,
    resourceVersion: string,
  ): Promise<NodeInfo> {
    this.patches++;
    if (resourceVersion !== this.node.resourceVersion) {
      this.conflicts++;
      return Promise.reject(new HealError(ErrorCode.K8sConflict, 'stale resourceVersion'));
    }
    this.otherWrite(annotations as Record<string, string>);
    this.cached = this.node;
    return Promise.resolve(this.node);
  }
}

const ticket = (supervisor?: string): Ticket => ({
  ...newTicket({ condition: 'GpuHung', reason: 'test', nowMs: T0 }),
  ...(supervisor === undefined ? {} : { supervisor }),
});
const deps = (cluster: NodeClient) => ({ cluster, clock: new ManualClock(T0) });
/** Writes a new ticket unless a human supervises the current one (as recordBegin does). */
const open = (current: Ticket | null): Ticket | undefined =>
  current !== null && current.supervisor !== AEGIS_SUPERVISOR ? undefined : ticket();

describe('updateTicket', () => {
  it('writes on the cached node without a GET when the cache is current', async () => {
    const c = new OneNode(aNode(), true);
    const r = await updateTicket(deps(c), 'gpu-node-0001', open, signal);
    assert.equal(c.gets, 0);
    assert.equal(c.patches, 1);
    assert.equal(r.ticket?.condition, 'GpuHung');
    assert.ok(c.node.annotations[TICKET_ANNOTATION]?.includes('GpuHung'));
  });

  it('without a cache it reads first, as before', async () => {
    const c = new OneNode(aNode(), false);
    await updateTicket(deps(c), 'gpu-node-0001', open, signal);
    assert.deepEqual([c.gets, c.patches, c.conflicts], [1, 1, 0]);
  });

  it("a stale cache is a conflict: the fresh read decides, and another writer's keys survive", async () => {
    const c = new OneNode(aNode(), true);
    c.otherWrite({ 'example.com/other': 'kept' });
    const r = await updateTicket(deps(c), 'gpu-node-0001', open, signal);
    assert.deepEqual([c.gets, c.patches, c.conflicts], [1, 2, 1]);
    assert.equal(r.ticket?.condition, 'GpuHung');
    assert.equal(c.node.annotations['example.com/other'], 'kept');
  });

  it('a takeover the cache has not seen stops the write', async () => {
    const c = new OneNode(aNode(), true);
    c.otherWrite({ [TICKET_ANNOTATION]: serializeTicket(ticket('alice')) });
    const r = await updateTicket(deps(c), 'gpu-node-0001', open, signal);
    assert.equal(r.ticket?.supervisor, 'alice');
    assert.deepEqual([c.gets, c.patches, c.conflicts], [1, 1, 1]);
    assert.match(c.node.annotations[TICKET_ANNOTATION] ?? '', /alice/);
  });

  it('"no write" is never decided on the cached copy: a fresh read confirms it', async () => {
    const c = new OneNode(
      aNode({ annotations: { [TICKET_ANNOTATION]: serializeTicket(ticket('alice')) } }),
      true,
    );
    // The human handed the node back; the cache still shows their ticket.
    c.otherWrite({ [TICKET_ANNOTATION]: serializeTicket(ticket()) });
    const r = await updateTicket(deps(c), 'gpu-node-0001', open, signal);
    assert.equal(c.gets, 1);
    assert.equal(r.ticket?.supervisor, AEGIS_SUPERVISOR, 'written after the fresh read');
    assert.deepEqual([c.patches, c.conflicts], [1, 0]);
  });
});
