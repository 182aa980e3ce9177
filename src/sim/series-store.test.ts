import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluateInstant, parsePromQL } from '../promql/index.js';
import { createFleet } from './fleet.js';
import { SeriesStore } from './series-store.js';
import { addToCounter, hold, release } from './track.js';

const T0 = Date.UTC(2026, 0, 2);
const MIN = 60_000;
const HOUR = 60 * MIN;

function store(nodes = 4): SeriesStore {
  return new SeriesStore(createFleet({ nodes, seed: 3, controlPlaneNodes: 1 }));
}

function query(
  s: SeriesStore,
  expr: string,
  atMs: number,
): { labels: Record<string, string>; value: number }[] {
  return evaluateInstant(parsePromQL(expr), s, atMs).map((x) => ({
    labels: { ...x.labels },
    value: x.value,
  }));
}

describe('fleet', () => {
  it('names, labels and devices every worker like a real H100 node', () => {
    const fleet = createFleet({ nodes: 40, seed: 1, controlPlaneNodes: 1 });
    const n = fleet.node('gpu-node-0017');
    assert.ok(n !== undefined);
    assert.equal(n.labels['topology.aegis.io/rack'], 'rack-002');
    assert.equal(n.labels['topology.aegis.io/leaf-switch'], 'leaf-001');
    assert.equal(n.labels['nvidia.com/gpu.product'], 'NVIDIA-H100-80GB-HBM3');
    assert.equal(n.gpus.length, 8);
    assert.match(
      n.gpus[0]?.uuid ?? '',
      /^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
    assert.deepEqual(n.hcas.map((h) => `${h.name}:${h.pcieSpeedGts}`).slice(-2), [
      'mlx5_7:32',
      'mlx5_8:16',
    ]);
    assert.equal(n.capacity.nvidia_com_gpu, 8);
    assert.equal(n.capacity.rdma_hca_shared_devices_all, 1000);
    const cp = fleet.node('control-plane-1');
    assert.ok(
      cp !== undefined &&
        cp.gpus.length === 0 &&
        'node-role.kubernetes.io/control-plane' in cp.labels,
    );
    assert.equal(
      createFleet({ nodes: 40, seed: 1 }).node('gpu-node-0017')?.gpus[3]?.uuid,
      n.gpus[3]?.uuid,
    );
  });
});

describe('SeriesStore baseline', () => {
  it('serves healthy values like the captures, with node and Hostname labels', () => {
    const s = store();
    const xid = query(s, 'DCGM_FI_DEV_XID_ERRORS', T0);
    assert.equal(xid.length, 32);
    assert.ok(xid.every((x) => x.value === 0 && x.labels.Hostname === x.labels.node));
    const temp = query(s, 'max(DCGM_FI_DEV_GPU_TEMP)', T0)[0]?.value ?? 0;
    assert.ok(temp >= 38 && temp <= 43);
    assert.equal(query(s, 'min(node_infiniband_state_id)', T0)[0]?.value, 4);
    assert.equal(query(s, 'min(node_infiniband_physical_state_id)', T0)[0]?.value, 5);
    assert.equal(query(s, 'min(node_infiniband_rate_bytes_per_second)', T0)[0]?.value, 5e10);
    assert.equal(
      query(s, 'count(kube_node_status_condition{condition="Ready",status="true"} == 1)', T0)[0]
        ?.value,
      5,
    );
    assert.equal(
      query(s, 'sum(kube_node_status_capacity{resource="nvidia_com_gpu"})', T0)[0]?.value,
      32,
    );
    assert.equal(
      query(s, 'count(gpfs_state{state="active"} == 1)', T0)[0]?.value,
      4,
      'workers only',
    );
  });

  it('answers a per-node selector from that node only', () => {
    const s = store(200);
    const one = s.select(
      'DCGM_FI_DEV_GPU_TEMP',
      [{ name: 'node', op: '=', value: 'gpu-node-0150' }],
      T0 - 5 * MIN,
      T0,
    );
    assert.equal(one.length, 8);
    assert.ok(one.every((x) => x.labels.node === 'gpu-node-0150'));
    const two = s.select(
      'node_load1',
      [{ name: 'node', op: '=~', value: 'gpu-node-0001|gpu-node-0002' }],
      T0 - 5 * MIN,
      T0,
    );
    assert.equal(two.length, 2);
  });

  it('gives baseline series two samples, at the window start and end', () => {
    const s = store();
    const [series] = s.select(
      'node_load1',
      [{ name: 'node', op: '=', value: 'gpu-node-0001' }],
      T0 - HOUR,
      T0,
    );
    assert.deepEqual(
      series?.samples.map((x) => x.t),
      [T0 - HOUR + 1, T0],
    );
  });
});

describe('SeriesStore change points', () => {
  it('steps a counter so increase() over 24 h sees exactly the added count, offset 3h sees the past', () => {
    const s = store();
    const [track] = s.match('node_infiniband_link_downed_total', 'gpu-node-0002', {
      device: 'mlx5_3',
    });
    assert.ok(track !== undefined);
    addToCounter(track, 5, T0 - 2 * HOUR);
    const inc = query(s, 'increase(node_infiniband_link_downed_total[24h]) > 0', T0);
    assert.deepEqual(
      inc.map((x) => [x.labels.node, x.labels.device, x.value]),
      [['gpu-node-0002', 'mlx5_3', 5]],
    );
    assert.equal(
      query(s, 'node_infiniband_link_downed_total{device="mlx5_3"} offset 3h > 0', T0).length,
      0,
    );
    assert.equal(
      query(s, 'node_infiniband_link_downed_total{device="mlx5_3"} offset 1h > 0', T0).length,
      1,
    );
  });

  it('holds and releases gauge values; stacked holds release in order', () => {
    const s = store();
    const [track] = s.match('DCGM_FI_DEV_XID_ERRORS', 'gpu-node-0001', { gpu: '2' });
    assert.ok(track !== undefined);
    hold(track, 'a', 79, T0);
    hold(track, 'b', 48, T0 + MIN);
    assert.equal(query(s, 'max(DCGM_FI_DEV_XID_ERRORS)', T0 + MIN)[0]?.value, 48);
    release(track, 'b', T0 + 2 * MIN);
    assert.equal(query(s, 'max(DCGM_FI_DEV_XID_ERRORS)', T0 + 2 * MIN)[0]?.value, 79);
    release(track, 'a', T0 + 3 * MIN);
    assert.equal(query(s, 'max(DCGM_FI_DEV_XID_ERRORS)', T0 + 3 * MIN)[0]?.value, 0);
    assert.equal(
      query(
        s,
        'max_over_time(DCGM_FI_DEV_XID_ERRORS{gpu="2",node="gpu-node-0001"}[10m])',
        T0 + 5 * MIN,
      )[0]?.value,
      79,
    );
  });

  it('removes a series while held: instant selectors see nothing, range selectors see the past', () => {
    const s = store();
    for (const track of s.match('DCGM_FI_DEV_GPU_TEMP', 'gpu-node-0003', { gpu: '5' }))
      hold(track, 'gone', null, T0);
    assert.equal(
      query(s, 'count(DCGM_FI_DEV_GPU_TEMP{node="gpu-node-0003"})', T0 + MIN)[0]?.value,
      7,
    );
    assert.equal(
      query(s, 'count(max_over_time(DCGM_FI_DEV_GPU_TEMP{node="gpu-node-0003"}[1h]))', T0 + MIN)[0]
        ?.value,
      8,
    );
  });

  it('takes an exporter down: its series vanish and up is 0; KSM is unaffected', () => {
    const s = store();
    s.setNodeUp('gpu-node-0004', false, T0);
    assert.equal(query(s, 'count(DCGM_FI_DEV_GPU_TEMP{node="gpu-node-0004"})', T0 + MIN).length, 0);
    assert.equal(query(s, 'up{node="gpu-node-0004",job="dcgm-exporter"}', T0 + MIN)[0]?.value, 0);
    assert.equal(query(s, 'up{node="gpu-node-0004",job="dcgm-exporter"}', T0 - MIN)[0]?.value, 1);
    assert.equal(
      query(s, 'kube_node_spec_unschedulable{node="gpu-node-0004"}', T0 + MIN).length,
      1,
    );
    s.setNodeUp('gpu-node-0004', true, T0 + 2 * MIN);
    assert.equal(
      query(s, 'count(DCGM_FI_DEV_GPU_TEMP{node="gpu-node-0004"})', T0 + 3 * MIN)[0]?.value,
      8,
    );
  });

  it('creates a series a fault adds, with node, job and instance, absent before', () => {
    const s = store();
    const track = s.create(
      'aegis_nodecheck_problem',
      'gpu-node-0001',
      { check: 'GpuCheckFailed', device: '01000000' },
      false,
    );
    hold(track, 'f', 1, T0);
    const [found] = query(s, 'aegis_nodecheck_problem{device!=""}', T0);
    assert.deepEqual(found?.labels, {
      __name__: 'aegis_nodecheck_problem',
      node: 'gpu-node-0001',
      job: 'aegis-nodecheck',
      instance: '10.16.0.0:19091',
      check: 'GpuCheckFailed',
      device: '01000000',
    });
    assert.equal(query(s, 'aegis_nodecheck_problem{device!=""}', T0 - MIN).length, 0);
    assert.equal(
      s.create(
        'aegis_nodecheck_problem',
        'gpu-node-0001',
        { check: 'GpuCheckFailed', device: '01000000' },
        false,
      ),
      track,
    );
  });

  it('resets volatile counters on reboot but keeps InfoROM ones', () => {
    const s = store();
    const [vol] = s.match('DCGM_FI_DEV_ECC_DBE_VOL_SRM', 'gpu-node-0001', { gpu: '0' });
    const [agg] = s.match('DCGM_FI_DEV_ECC_DBE_AGG_SRM', 'gpu-node-0001', { gpu: '0' });
    assert.ok(vol !== undefined && agg !== undefined);
    addToCounter(vol, 3, T0);
    addToCounter(agg, 5, T0);
    s.resetVolatileCounters('gpu-node-0001', T0 + MIN);
    assert.equal(query(s, 'max(DCGM_FI_DEV_ECC_DBE_VOL_SRM)', T0 + 2 * MIN)[0]?.value, 0);
    assert.equal(query(s, 'max(DCGM_FI_DEV_ECC_DBE_AGG_SRM)', T0 + 2 * MIN)[0]?.value, 5);
  });
});
