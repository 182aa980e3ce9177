import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CatalogueEntry } from '../catalogue/types.js';
import { ManualClock } from '../core/clock.js';
import { ErrorCode, HealError, isHealError } from '../core/errors.js';
import { JobKind, type JobRequest } from '../k8s/cluster.js';
import { createSimWorld, type SimWorld } from './sim-world.js';

const MIN = 60_000;
const signal = new AbortController().signal;

/** Small catalogue fixtures, one per persistence class, independent of the real catalogue. */
function entry(name: string, over: Partial<CatalogueEntry>): CatalogueEntry {
  return {
    name,
    domain: 'GPU',
    description: `${name} fixture`,
    signal: 'dcgm-exporter',
    expr: '',
    deviceLabel: 'gpu',
    forMs: 0,
    clearForMs: 0,
    clear: '',
    priority: 10,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.reboot',
    fault: {
      defaultDevice: '0',
      series: [{ metric: 'DCGM_FI_DEV_XID_ERRORS', labels: { gpu: '{device}' }, value: 79 }],
    },
    ...over,
  };
}

const FIXTURES: readonly CatalogueEntry[] = [
  entry('Xid79GPULost', {}),
  entry('GpuRowRemappingFailure', {
    sop: 'gpu.replace',
    fault: {
      defaultDevice: '0',
      series: [{ metric: 'DCGM_FI_DEV_ROW_REMAP_FAILURE', labels: { gpu: '{device}' }, value: 1 }],
    },
  }),
  entry('NvidiaFabricManagerNotActive', {
    sop: 'gpu.fabricmanager',
    fault: {
      series: [
        {
          metric: 'node_systemd_unit_state',
          labels: { name: 'nvidia-fabricmanager.service', state: 'active' },
          value: 0,
        },
      ],
    },
  }),
  entry('GpfsDown', {
    domain: 'GPFS',
    sop: 'gpfs.repair',
    fault: { series: [{ metric: 'gpfs_state', labels: { state: 'active' }, value: 0 }] },
  }),
  entry('IBLinkAbnormal', {
    domain: 'IB',
    sop: 'ib.report',
    fault: {
      defaultDevice: 'mlx5_0',
      series: [{ metric: 'node_infiniband_state_id', labels: { device: '{device}' }, value: 1 }],
    },
  }),
  entry('NodeNotReady', {
    domain: 'Node',
    sop: 'node.notready',
    fault: { node: { ready: false }, series: [] },
  }),
  entry('GpuRegisterFailed', {
    sop: 'gpu.device-plugin',
    fault: {
      series: [
        {
          metric: 'kube_node_status_allocatable',
          labels: { resource: 'nvidia_com_gpu' },
          value: 7,
        },
      ],
    },
  }),
];

function world(): SimWorld & { clock: ManualClock } {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const w = createSimWorld({ nodes: 4, seed: 7, catalogue: FIXTURES, clock });
  return { ...w, clock };
}

function job(kind: JobKind, node: string, params: Record<string, string> = {}): JobRequest {
  return {
    kind,
    name: `${kind}-${node}`.replaceAll('_', '-'),
    node,
    params,
    activeDeadlineSeconds: 3600,
  };
}

async function value(w: SimWorld, expr: string): Promise<number | undefined> {
  const result = await w.metrics.query(expr, w.clock.now(), signal);
  return result[0]?.value;
}

describe('SimCluster nodes', () => {
  it('bumps resourceVersion on writes and rejects a stale one with K8S_CONFLICT', async () => {
    const w = world();
    const before = await w.cluster.getNode('gpu-node-0001', signal);
    const after = await w.cluster.patchNodeAnnotations(
      'gpu-node-0001',
      { 'aegis.io/ticketing': 'a' },
      before.resourceVersion,
      signal,
    );
    assert.notEqual(after.resourceVersion, before.resourceVersion);
    assert.equal(after.annotations['aegis.io/ticketing'], 'a');
    await assert.rejects(
      w.cluster.patchNodeAnnotations('gpu-node-0001', { x: 'y' }, before.resourceVersion, signal),
      (err) => isHealError(err, ErrorCode.K8sConflict),
    );
    const removed = await w.cluster.patchNodeAnnotations(
      'gpu-node-0001',
      { 'aegis.io/ticketing': null },
      after.resourceVersion,
      signal,
    );
    assert.equal('aegis.io/ticketing' in removed.annotations, false);
  });

  it('throws K8S_NOT_FOUND for an unknown node', async () => {
    const w = world();
    await assert.rejects(w.cluster.getNode('nope', signal), (err) =>
      isHealError(err, ErrorCode.K8sNotFound),
    );
  });

  it('mirrors cordons into kube_node_spec_unschedulable and records the write', async () => {
    const w = world();
    await w.cluster.setUnschedulable('gpu-node-0002', true, signal);
    assert.equal(await value(w, 'kube_node_spec_unschedulable{node="gpu-node-0002"}'), 1);
    assert.equal(await value(w, 'kube_node_spec_unschedulable{node="gpu-node-0001"}'), 0);
    assert.deepEqual(
      w.cluster.writes().map((x) => [x.method, x.target, x.by]),
      [['setUnschedulable', 'gpu-node-0002', 'client']],
    );
    w.cluster.cordonByHand('gpu-node-0003');
    assert.equal((await w.cluster.getNode('gpu-node-0003', signal)).unschedulable, true);
    assert.equal(w.cluster.writes().at(-1)?.by, 'operator');
  });

  it('turns a label change into a new kube_node_labels series', async () => {
    const w = world();
    w.cluster.setLabel('gpu-node-0001', 'aegis.io/disable', 'true');
    await w.clock.advance(15 * MIN);
    w.cluster.setLabel('gpu-node-0001', 'aegis.io/disable', null);
    const expr =
      'max by (node) (kube_node_labels{label_aegis_io_disable="true"} offset 10m) ' +
      'unless on(node) max by (node) (kube_node_labels{label_aegis_io_disable="true"})';
    const fired = await w.metrics.query(expr, w.clock.now(), signal);
    assert.deepEqual(
      fired.map((s) => s.labels.node),
      ['gpu-node-0001'],
    );
    const all = await w.metrics.query('count(kube_node_labels)', w.clock.now(), signal);
    assert.equal(all[0]?.value, 4, 'one kube_node_labels series per node again');
  });
});

describe('SimCluster pods and budgets', () => {
  it('blocks an eviction while the PodDisruptionBudget is exhausted, then allows it', async () => {
    const w = world();
    w.cluster.addWorkload({
      name: 'llm',
      nodes: ['gpu-node-0001', 'gpu-node-0002', 'gpu-node-0003'],
      minAvailable: 2,
    });
    const first = await w.cluster.evictPod('training', 'llm-worker-0', signal);
    assert.equal(first, 'evicted');
    assert.equal(await w.cluster.evictPod('training', 'llm-worker-1', signal), 'blocked');
    const pods = await w.cluster.listPodsOnNode('gpu-node-0001', signal);
    assert.ok(pods.find((p) => p.name === 'llm-worker-0')?.deletionTimestampMs !== undefined);
    await w.clock.advance(2 * MIN); // grace period, then the replacement lands elsewhere
    assert.equal(await w.cluster.evictPod('training', 'llm-worker-1', signal), 'evicted');
    assert.equal(await w.cluster.evictPod('training', 'nope', signal), 'gone');
  });

  it('lists DaemonSet pods and re-creates a deleted one', async () => {
    const w = world();
    const pods = await w.cluster.listPodsOnNode('gpu-node-0002', signal);
    assert.ok(pods.every((p) => p.daemonSet));
    const plugin = pods.find((p) => p.labels.name === 'nvidia-device-plugin-ds');
    assert.ok(plugin !== undefined);
    await w.cluster.deletePod(plugin.namespace, plugin.name, 0, signal);
    await w.clock.advance(MIN);
    const again = await w.cluster.listPodsOnNode('gpu-node-0002', signal);
    const replacement = again.find((p) => p.labels.name === 'nvidia-device-plugin-ds');
    assert.ok(replacement !== undefined && replacement.name !== plugin.name);
    await assert.rejects(w.cluster.deletePod('x', 'y', 0, signal), (err) =>
      isHealError(err, ErrorCode.K8sNotFound),
    );
  });

  it('clears a device-plugin fault when the plug-in pod is restarted', async () => {
    const w = world();
    w.faults.injectFault({
      condition: 'GpuRegisterFailed',
      node: 'gpu-node-0002',
      atMs: w.clock.now(),
    });
    const plugin = (await w.cluster.listPodsOnNode('gpu-node-0002', signal)).find(
      (p) => p.labels.name === 'nvidia-device-plugin-ds',
    );
    assert.ok(plugin !== undefined);
    await w.cluster.deletePod(plugin.namespace, plugin.name, 0, signal);
    await w.clock.advance(MIN);
    w.sync();
    assert.equal(w.faults.active('gpu-node-0002').length, 0);
  });
});

describe('SimCluster jobs', () => {
  it('runs a Job Pending → Running → Succeeded, idempotent by name', async () => {
    const w = world();
    const req = job(JobKind.Diagnose, 'gpu-node-0002');
    await w.cluster.createJob(req, signal);
    await w.cluster.createJob(req, signal);
    assert.equal(
      w.cluster.writes().filter((x) => x.method === 'createJob' && x.detail === 'exists').length,
      1,
    );
    assert.equal((await w.cluster.getJob(req.name, signal))?.phase, 'Pending');
    await w.clock.advance(10_000);
    assert.equal((await w.cluster.getJob(req.name, signal))?.phase, 'Running');
    await w.clock.advance(MIN);
    const done = await w.cluster.getJob(req.name, signal);
    assert.equal(done?.phase, 'Succeeded');
    assert.deepEqual(done.logs, [
      'hint: no anomaly found',
      'cmd: dmesg -T | tail -n 50',
      'result: ok',
    ]);
    await w.cluster.deleteJob(req.name, signal);
    assert.equal(await w.cluster.getJob(req.name, signal), null);
  });

  it('reboots: NotReady for the boot time, exporters down, until-reboot faults cleared, then Ready', async () => {
    const w = world();
    const node = 'gpu-node-0002';
    const xid = w.faults.injectFault({
      condition: 'Xid79GPULost',
      node,
      device: '3',
      atMs: w.clock.now(),
    });
    const remap = w.faults.injectFault({
      condition: 'GpuRowRemappingFailure',
      node,
      atMs: w.clock.now(),
    });
    await w.cluster.createJob(job(JobKind.Restart, node), signal);
    await w.clock.advance(20_000); // pending 5 s + 10 s until the reboot starts
    assert.equal((await w.cluster.getNode(node, signal)).ready, 'Unknown');
    assert.equal(
      await value(
        w,
        `kube_node_status_condition{node="${node}",condition="Ready",status="unknown"}`,
      ),
      1,
    );
    assert.equal(
      await value(w, `count(DCGM_FI_DEV_GPU_TEMP{node="${node}"})`),
      undefined,
      'dcgm-exporter is down',
    );
    assert.equal(await value(w, `up{node="${node}",job="dcgm-exporter"}`), 0);
    assert.equal(w.faults.get(xid)?.clearedMs !== undefined, true, 'until-reboot fault cleared');
    assert.equal(w.faults.get(remap)?.clearedMs, undefined, 'survives-reboot fault stays');
    await w.clock.advance(3 * MIN);
    assert.equal((await w.cluster.getNode(node, signal)).ready, true);
    const state = await w.cluster.getJob(`restart-node-${node}`, signal);
    assert.equal(state?.phase, 'Succeeded');
    assert.equal(state.exitCode, 0);
    assert.equal(w.cluster.rebootCount(node), 1);
    assert.equal(await value(w, `max(DCGM_FI_DEV_XID_ERRORS{node="${node}"})`), 0);
    assert.equal(await value(w, `max(DCGM_FI_DEV_ROW_REMAP_FAILURE{node="${node}"})`), 1);
    assert.equal(await value(w, `changes(node_boot_time_seconds{node="${node}"}[1h])`), 1);
  });

  it('shuts a node down until a human powers it on', async () => {
    const w = world();
    const node = 'gpu-node-0001';
    await w.cluster.createJob(job(JobKind.Shutdown, node), signal);
    await w.clock.advance(30 * MIN);
    assert.equal((await w.cluster.getJob(`shutdown-node-${node}`, signal))?.phase, 'Succeeded');
    assert.equal((await w.cluster.getNode(node, signal)).ready, 'Unknown');
    assert.equal(await value(w, `ipmi_chassis_power_state{node="${node}"}`), 0);
    w.cluster.powerOn(node);
    await w.clock.advance(3 * MIN);
    assert.equal((await w.cluster.getNode(node, signal)).ready, true);
    assert.equal(await value(w, `ipmi_chassis_power_state{node="${node}"}`), 1);
  });

  it('healthcheck exits 0 when healthy, 21/23 for GPU faults, 1 otherwise', async () => {
    const cases: [string, string | undefined, number][] = [
      ['healthy', undefined, 0],
      ['xid', 'Xid79GPULost', 23],
      ['row remap', 'GpuRowRemappingFailure', 21],
      ['ib', 'IBLinkAbnormal', 1],
    ];
    for (const [label, condition, exitCode] of cases) {
      const w = world();
      const node = 'gpu-node-0003';
      if (condition !== undefined) w.faults.injectFault({ condition, node, atMs: w.clock.now() });
      await w.cluster.createJob(job(JobKind.Healthcheck, node), signal);
      await w.clock.advance(5 * MIN);
      const state = await w.cluster.getJob(`healthcheck-node-${node}`, signal);
      assert.equal(state?.exitCode, exitCode, label);
      assert.equal(state.phase, exitCode === 0 ? 'Succeeded' : 'Failed', label);
    }
  });

  it('keeps a Job Pending on a NotReady node until its deadline', async () => {
    const w = world();
    w.faults.injectFault({ condition: 'NodeNotReady', node: 'gpu-node-0004', atMs: w.clock.now() });
    await w.cluster.createJob(
      { ...job(JobKind.Healthcheck, 'gpu-node-0004'), activeDeadlineSeconds: 120 },
      signal,
    );
    await w.clock.advance(MIN);
    assert.equal(
      (await w.cluster.getJob('healthcheck-node-gpu-node-0004', signal))?.phase,
      'Pending',
    );
    await w.clock.advance(2 * MIN);
    const state = await w.cluster.getJob('healthcheck-node-gpu-node-0004', signal);
    assert.equal(state?.phase, 'Failed');
    assert.match(state.logs?.[0] ?? '', /DeadlineExceeded/);
  });

  it('remedy clears only the until-remedy faults of its action; repair clears until-repair', async () => {
    const w = world();
    const node = 'gpu-node-0002';
    const fm = w.faults.injectFault({
      condition: 'NvidiaFabricManagerNotActive',
      node,
      atMs: w.clock.now(),
    });
    const gpfs = w.faults.injectFault({ condition: 'GpfsDown', node, atMs: w.clock.now() });
    await w.cluster.createJob(job(JobKind.Remedy, node, { action: 'DropCache' }), signal);
    await w.clock.advance(2 * MIN);
    assert.equal(w.faults.get(fm)?.clearedMs, undefined);
    await w.cluster.createJob(
      { ...job(JobKind.Remedy, node, { action: 'RestartFabricmanager' }), name: 'remedy-2' },
      signal,
    );
    await w.clock.advance(2 * MIN);
    w.sync();
    assert.notEqual(w.faults.get(fm)?.clearedMs, undefined);
    assert.equal(w.faults.get(gpfs)?.clearedMs, undefined);
    await w.cluster.createJob(job(JobKind.Repair, node), signal);
    await w.clock.advance(11 * MIN);
    w.sync();
    assert.notEqual(w.faults.get(gpfs)?.clearedMs, undefined);
    assert.equal(await value(w, `gpfs_state{node="${node}",state="active"}`), 1);
  });

  it('diagnose prints hint/cmd/result triples for active faults', async () => {
    const w = world();
    w.faults.injectFault({
      condition: 'IBLinkAbnormal',
      node: 'gpu-node-0001',
      atMs: w.clock.now(),
    });
    await w.cluster.createJob(job(JobKind.Diagnose, 'gpu-node-0001'), signal);
    await w.clock.advance(2 * MIN);
    const logs = (await w.cluster.getJob('diagnose-node-gpu-node-0001', signal))?.logs ?? [];
    assert.deepEqual(
      logs.map((l) => l.split(':')[0]),
      ['hint', 'cmd', 'result'],
    );
    assert.equal(logs[1], 'cmd: ibstatus');
  });

  it('forces Job outcomes per kind and node', async () => {
    const w = world();
    w.cluster.setJobBehaviour(JobKind.Restart, { outcome: 'Failed', exitCode: 2 }, 'gpu-node-0001');
    await w.cluster.createJob(job(JobKind.Restart, 'gpu-node-0001'), signal);
    await w.clock.advance(5 * MIN);
    const state = await w.cluster.getJob('restart-node-gpu-node-0001', signal);
    assert.equal(state?.phase, 'Failed');
    assert.equal(state.exitCode, 2);
    assert.equal(w.cluster.rebootCount('gpu-node-0001'), 0);
  });
});

describe('SimCluster failures, events and leases', () => {
  it('fails the next call, then works; an outage fails every call until it ends', async () => {
    const w = world();
    w.cluster.failNext('getNode', new HealError(ErrorCode.K8sForbidden, 'nope'));
    await assert.rejects(w.cluster.getNode('gpu-node-0001', signal), (err) =>
      isHealError(err, ErrorCode.K8sForbidden),
    );
    await w.cluster.getNode('gpu-node-0001', signal);
    w.cluster.outage(w.clock.now() + MIN);
    await assert.rejects(w.cluster.listNodes(signal), (err) =>
      isHealError(err, ErrorCode.K8sUnavailable),
    );
    await w.clock.advance(MIN);
    assert.equal((await w.cluster.listNodes(signal)).length, 4);
  });

  it('fails a reproducible share of calls with failRate', async () => {
    const w = world();
    w.cluster.failRate(0.5, { methods: ['getNode'] });
    let failed = 0;
    for (let i = 0; i < 200; i++) {
      try {
        await w.cluster.getNode('gpu-node-0001', signal);
      } catch (err) {
        assert.ok(isHealError(err, ErrorCode.K8sUnavailable));
        failed++;
      }
    }
    assert.ok(failed > 60 && failed < 140, `failed ${failed}`);
    await w.cluster.listNodes(signal);
  });

  it('honours an aborted signal', async () => {
    const w = world();
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await assert.rejects(w.cluster.listNodes(ac.signal), /stop/);
  });

  it('records events and hands out leases', async () => {
    const w = world();
    await w.cluster.emitEvent(
      { node: 'gpu-node-0001', type: 'Warning', reason: 'Cordon', message: 'x' },
      signal,
    );
    assert.equal(w.cluster.events('gpu-node-0001').length, 1);
    assert.equal(await w.cluster.acquireOrRenew('aegis', 'a', 15, signal), 0);
    assert.equal(await w.cluster.acquireOrRenew('aegis', 'b', 15, signal), null);
    await w.clock.advance(16_000);
    assert.equal(await w.cluster.acquireOrRenew('aegis', 'b', 15, signal), 1);
    await w.cluster.release('aegis', 'b', signal);
    assert.equal(w.cluster.leaseHolder('aegis'), undefined);
  });
});
