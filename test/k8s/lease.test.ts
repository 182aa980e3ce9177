/**
 * Leader election on a real coordination.k8s.io/v1 Lease, as the controller ServiceAccount:
 * replicas are separate clients with their own (manual) clocks; whatever the interleaving, two
 * holders never both hold the lease.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { ManualClock } from '../../src/core/clock.js';
import { deadline, startTestCluster, type TestCluster } from './setup.js';

const DURATION_S = 15;
let cluster: TestCluster;

before(async () => {
  cluster = await startTestCluster();
});

after(async () => {
  await cluster.stop();
});

function replica(clock = new ManualClock()): {
  clock: ManualClock;
  acquire: (lease: string, id: string) => Promise<boolean>;
  epoch: (lease: string, id: string) => Promise<number | null>;
  release: (lease: string, id: string) => Promise<void>;
} {
  const kube = cluster.controller({ clock });
  return {
    clock,
    acquire: async (lease, id) =>
      (await kube.acquireOrRenew(lease, id, DURATION_S, deadline())) !== null,
    epoch: (lease, id) => kube.acquireOrRenew(lease, id, DURATION_S, deadline()),
    release: (lease, id) => kube.release(lease, id, deadline()),
  };
}

async function holderOf(name: string): Promise<string | undefined> {
  const api = cluster.admin.makeApiClient(CoordinationV1Api);
  const lease = await api.readNamespacedLease({ name, namespace: 'monitoring' });
  return lease.spec?.holderIdentity;
}

describe('lease', () => {
  it('the first replica creates and holds it; the other waits; the holder renews', async () => {
    const a = replica();
    const b = replica();
    assert.equal(await a.acquire('l1', 'a'), true);
    assert.equal(await b.acquire('l1', 'b'), false);
    assert.equal(await a.acquire('l1', 'a'), true);
    await b.clock.advance((DURATION_S - 1) * 1000);
    assert.equal(await b.acquire('l1', 'b'), false, 'a renewed: not expired for b');
    assert.equal(await holderOf('l1'), 'a');
  });

  it('a lease not renewed for its duration is taken over, and the old holder loses it', async () => {
    const a = replica();
    const b = replica();
    assert.equal(await a.acquire('l2', 'a'), true);
    assert.equal(await b.acquire('l2', 'b'), false); // b observes the lease now
    await b.clock.advance(DURATION_S * 1000);
    assert.equal(await b.acquire('l2', 'b'), true);
    assert.equal(await a.acquire('l2', 'a'), false, 'a must see it lost the lease');
    assert.equal(await holderOf('l2'), 'b');
  });

  it('its epoch (transition count) grows at every change of holder, never on a renewal', async () => {
    const a = replica();
    const b = replica();
    assert.equal(await a.epoch('l7', 'a'), 0, 'created');
    assert.equal(await a.epoch('l7', 'a'), 0, 'renewed');
    assert.equal(await b.epoch('l7', 'b'), null);
    await b.clock.advance(DURATION_S * 1000);
    assert.equal(await b.epoch('l7', 'b'), 1, 'taken over');
    await b.release('l7', 'b');
    assert.equal(await a.epoch('l7', 'a'), 2, 'taken after a release');
  });

  it('released, it goes to the next contender at once', async () => {
    const a = replica();
    const b = replica();
    assert.equal(await a.acquire('l3', 'a'), true);
    await b.release('l3', 'b'); // not the holder: no-op
    assert.equal(await holderOf('l3'), 'a');
    await a.release('l3', 'a');
    assert.equal(await b.acquire('l3', 'b'), true);
    assert.equal(await a.acquire('l3', 'a'), false);
  });

  it('of many replicas racing to create it, exactly one wins', async () => {
    const replicas = Array.from({ length: 8 }, () => replica());
    const won = await Promise.all(replicas.map((r, i) => r.acquire('l4', `r${i}`)));
    assert.equal(won.filter(Boolean).length, 1);
    assert.equal(await holderOf('l4'), `r${won.indexOf(true)}`);
  });

  it('of many replicas racing to take over an expired lease, exactly one wins', async () => {
    const old = replica();
    assert.equal(await old.acquire('l5', 'old'), true);
    const replicas = Array.from({ length: 8 }, () => replica());
    for (const [i, r] of replicas.entries()) assert.equal(await r.acquire('l5', `r${i}`), false);
    for (const r of replicas) await r.clock.advance(DURATION_S * 1000);
    const won = await Promise.all(replicas.map((r, i) => r.acquire('l5', `r${i}`)));
    assert.equal(won.filter(Boolean).length, 1);
    assert.equal(await holderOf('l5'), `r${won.indexOf(true)}`);
  });

  it('a holder renewing while another takes over: never both', async () => {
    for (let round = 0; round < 5; round++) {
      const name = `l6-${round}`;
      const a = replica();
      const b = replica();
      assert.equal(await a.acquire(name, 'a'), true);
      assert.equal(await b.acquire(name, 'b'), false);
      // a's clock stands still: its renew must still be a real write (a newer renewTime), or a
      // no-op update would leave the resourceVersion as b read it and b's takeover would pass.
      await b.clock.advance(DURATION_S * 1000);
      const [ra, rb] = await Promise.all([a.acquire(name, 'a'), b.acquire(name, 'b')]);
      assert.ok(!(ra && rb), `round ${round}: both hold ${name}`);
      assert.equal(await holderOf(name), ra ? 'a' : rb ? 'b' : 'a');
    }
  });
});
