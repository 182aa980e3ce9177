import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../catalogue/index.js';
import { ManualClock } from '../core/clock.js';
import { ErrorCode, isHealError } from '../core/errors.js';
import { defaultPersistence } from './persistence.js';
import { createSimWorld, type SimWorld } from './sim-world.js';

const MIN = 60_000;
const signal = new AbortController().signal;

function world(): SimWorld & { clock: ManualClock } {
  const clock = new ManualClock(Date.UTC(2026, 0, 2));
  return { ...createSimWorld({ nodes: 4, seed: 2, catalogue: CATALOGUE, clock }), clock };
}

describe('SimMetrics', () => {
  it('evaluates PromQL over the fleet and counts answered queries', async () => {
    const w = world();
    const result = await w.metrics.query('count(DCGM_FI_DEV_GPU_TEMP)', w.clock.now(), signal);
    assert.equal(result[0]?.value, 32);
    await w.metrics.query('count(DCGM_FI_DEV_GPU_TEMP)', w.clock.now(), signal);
    assert.equal(w.metrics.queries, 2);
  });

  it('fails with PROM_UNAVAILABLE during an outage and PROM_BAD_RESPONSE for garbage or partial answers', async () => {
    const w = world();
    w.metrics.outage(w.clock.now() + MIN);
    await assert.rejects(w.metrics.query('up', w.clock.now(), signal), (e) =>
      isHealError(e, ErrorCode.PromUnavailable),
    );
    await w.clock.advance(MIN);
    w.metrics.garbage();
    w.metrics.partial();
    await assert.rejects(w.metrics.query('up', w.clock.now(), signal), (e) =>
      isHealError(e, ErrorCode.PromBadResponse),
    );
    await assert.rejects(w.metrics.query('up', w.clock.now(), signal), /partial/);
    await assert.rejects(w.metrics.query('sum(', w.clock.now(), signal), (e) =>
      isHealError(e, ErrorCode.PromBadResponse),
    );
    assert.equal((await w.metrics.query('count(up)', w.clock.now(), signal))[0]?.value, 20);
  });

  it('answers slowly on the injected clock, so a deadline can abort the query', async () => {
    const w = world();
    w.metrics.slow(30_000);
    const deadline = new AbortController();
    const pending = w.metrics.query('up', w.clock.now(), deadline.signal);
    await w.clock.advance(10_000);
    deadline.abort(new Error('deadline'));
    await assert.rejects(pending, /deadline/);
    const ok = w.metrics.query('count(up)', w.clock.now(), signal);
    await w.clock.advance(30_000);
    assert.equal((await ok)[0]?.value, 20);
  });

  it('makes one exporter of one node stale', async () => {
    const w = world();
    w.metrics.staleExporter('gpu-node-0003', 'dcgm-exporter');
    await w.clock.advance(MIN);
    const missing = await w.metrics.query(
      'count by (node) (kube_node_status_capacity{resource="nvidia_com_gpu"}) unless on(node) count by (node) (DCGM_FI_DEV_GPU_TEMP)',
      w.clock.now(),
      signal,
    );
    assert.deepEqual(
      missing.map((s) => s.labels.node),
      ['gpu-node-0003'],
    );
    w.metrics.freshExporter('gpu-node-0003', 'dcgm-exporter');
    assert.equal(
      (await w.metrics.query('count(DCGM_FI_DEV_GPU_TEMP)', w.clock.now(), signal))[0]?.value,
      32,
    );
  });
});

describe('faults', () => {
  it('derives persistence from the SOP id', () => {
    const cases: [string | null, string, string | undefined][] = [
      ['gpu.reboot', 'until-reboot', undefined],
      ['ib.reboot-once', 'until-reboot', undefined],
      ['gpu.replace', 'survives-reboot', undefined],
      ['ib.report', 'survives-reboot', undefined],
      ['gpfs.repair', 'until-repair', undefined],
      ['gpu.fabricmanager', 'until-remedy', 'RestartFabricmanager'],
      ['memory.drop-cache', 'until-remedy', 'DropCache'],
      ['cpu.pressure', 'transient', undefined],
      [null, 'transient', undefined],
    ];
    for (const [sop, persistence, remedy] of cases) {
      assert.deepEqual(defaultPersistence(sop), { persistence, remedy }, String(sop));
    }
  });

  it('injects by alias, clears a transient fault after its duration, and restores the baseline', async () => {
    const w = world();
    const id = w.faults.injectFault({
      condition: 'NodeHasRestart',
      node: 'gpu-node-0001',
      atMs: w.clock.now(),
      durationMs: 5 * MIN,
    });
    assert.equal(w.faults.get(id)?.entry.name, 'NodeHasRestarted');
    const id2 = w.faults.injectFault({
      condition: 'HighGpuTemp',
      node: 'gpu-node-0001',
      device: '6',
      atMs: w.clock.now(),
      durationMs: 5 * MIN,
    });
    const hot = await w.metrics.query(
      'max by (gpu) (DCGM_FI_DEV_GPU_TEMP{node="gpu-node-0001"}) > 80',
      w.clock.now(),
      signal,
    );
    assert.deepEqual(
      hot.map((s) => [s.labels.gpu, s.value]),
      [['6', 92]],
    );
    await w.clock.advance(6 * MIN);
    w.sync();
    assert.notEqual(w.faults.get(id2)?.clearedMs, undefined);
    assert.equal(w.faults.active('gpu-node-0001').length, 0);
    const after = await w.metrics.query(
      'max(DCGM_FI_DEV_GPU_TEMP{node="gpu-node-0001"}) > 80',
      w.clock.now(),
      signal,
    );
    assert.equal(after.length, 0);
    assert.throws(
      () => w.faults.injectFault({ condition: 'Nope', node: 'gpu-node-0001', atMs: 0 }),
      (e) => isHealError(e, ErrorCode.UnknownCondition),
    );
    assert.throws(
      () => w.faults.injectFault({ condition: 'HighGpuTemp', node: 'nope', atMs: 0 }),
      (e) => isHealError(e, ErrorCode.InvalidInput),
    );
    assert.equal(w.faults.clearFault(id, w.clock.now()), false, 'already cleared');
  });

  it('a kubernetes-effect fault makes the SimCluster node NotReady, then Ready when cleared', async () => {
    const w = world();
    const id = w.faults.injectFault({
      condition: 'NodeNotReady',
      node: 'gpu-node-0004',
      atMs: w.clock.now(),
    });
    assert.equal((await w.cluster.getNode('gpu-node-0004', signal)).ready, false);
    w.faults.clearFault(id, w.clock.now());
    assert.equal((await w.cluster.getNode('gpu-node-0004', signal)).ready, true);
  });

  it('holds a fault stamped in the future until its time (scenario timelines)', async () => {
    const w = world();
    const t0 = w.clock.now();
    const id = w.faults.injectFault({
      condition: 'HighGpuTemp',
      node: 'gpu-node-0002',
      atMs: t0 + 10 * MIN,
    });
    w.faults.clearFault(id, t0 + 20 * MIN);
    const hot = 'max(DCGM_FI_DEV_GPU_TEMP) > 80';
    await w.clock.advance(9 * MIN);
    assert.equal((await w.metrics.query(hot, w.clock.now(), signal)).length, 0);
    assert.equal(w.faults.active().length, 0);
    await w.clock.advance(MIN);
    assert.equal((await w.metrics.query(hot, w.clock.now(), signal)).length, 1);
    await w.clock.advance(10 * MIN);
    assert.equal((await w.metrics.query(hot, w.clock.now(), signal)).length, 0);
    assert.equal(w.faults.get(id)?.clearedMs, t0 + 20 * MIN);
  });
});
