/**
 * Detection on the shapes real clusters have, evaluated with the PromQL evaluator over series as
 * the exporters print them (the real-Prometheus tier, test/prometheus/real-exporters.test.ts, runs
 * the same cases on the public captures): GpuDown compares like with like, IB ports are devices of
 * their own and can be meant to be down, read-only by design is not a broken disk, presence reads
 * scrape health, and the `detection:` config is checked with errors that name the entry.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigSchema } from '../config/schema.js';
import { compilePromQL, createMemorySeriesSource, type Series } from '../promql/index.js';
import { applyDetectionConfig, DEFAULT_DETECTION, parseIbPort } from './detection.js';
import { CATALOGUE, findCondition, SIGNAL_PRESENCE } from './index.js';
import { IB_PORT_LABEL } from './ib.js';

const T0 = Date.UTC(2026, 0, 1);

/** A series with one sample at T0 (value 1 unless given). */
function s(name: string, labels: Record<string, string>, v = 1): Series {
  return { labels: { __name__: name, ...labels }, samples: [{ t: T0, v }] };
}

function evaluate(
  expr: string,
  series: readonly Series[],
): { labels: Record<string, string>; value: number }[] {
  return compilePromQL(expr)
    .evaluate(createMemorySeriesSource(series), T0)
    .map((x) => ({ labels: { ...x.labels }, value: x.value }));
}

/** The first problem the config schema finds in `config` (it must find one). */
function firstIssue(config: unknown): { path: readonly PropertyKey[]; message: string } {
  const r = ConfigSchema.safeParse(config);
  assert.ok(!r.success, 'refused');
  const issue = r.error.issues[0];
  assert.ok(issue !== undefined);
  return { path: issue.path, message: issue.message };
}

const exprOf = (name: string, catalogue = CATALOGUE): string => {
  const e = catalogue.find((c) => c.name === name);
  assert.ok(e !== undefined, name);
  return e.expr;
};

/** dcgm-exporter series of `gpus` whole GPUs and MIG instances `mig` (GPU index -> instance ids). */
function dcgm(
  node: string,
  gpus: readonly number[],
  mig: Record<number, readonly string[]> = {},
): Series[] {
  const out: Series[] = [];
  for (const g of gpus) {
    const instances = mig[g];
    if (instances === undefined) out.push(s('DCGM_FI_DEV_GPU_TEMP', { node, gpu: String(g) }, 40));
    else
      for (const id of instances)
        out.push(s('DCGM_FI_DEV_GPU_TEMP', { node, gpu: String(g), GPU_I_ID: id }, 40));
  }
  return out;
}

const capacity = (node: string, resource: string, v: number): Series =>
  s('kube_node_status_capacity', { node, resource, unit: 'integer' }, v);
const gfd = (node: string, labels: Record<string, string>): Series =>
  s('kube_node_labels', { node, ...labels });

describe('GpuDown compares like with like', () => {
  const GPU_DOWN = exprOf('GpuDown');
  const down = (series: Series[]): string[] =>
    evaluate(GPU_DOWN, series).map((x) => `${x.labels.node ?? ''}=${String(x.value)}`);
  const all = [0, 1, 2, 3, 4, 5, 6, 7];
  const seven = [0, 1, 2, 4, 5, 6, 7];

  it('time-slicing: 8 GPUs x 4 replicas is healthy; a lost GPU is one missing', () => {
    const labels = gfd('a', {
      label_nvidia_com_gpu_count: '8',
      label_nvidia_com_gpu_replicas: '4',
    });
    assert.deepEqual(down([capacity('a', 'nvidia_com_gpu', 32), labels, ...dcgm('a', all)]), []);
    assert.deepEqual(down([capacity('a', 'nvidia_com_gpu', 32), labels, ...dcgm('a', seven)]), [
      'a=1',
    ]);
  });

  it('time-slicing without the GFD labels: healthy stays healthy, a lost GPU is seen', () => {
    assert.deepEqual(down([capacity('a', 'nvidia_com_gpu', 32), ...dcgm('a', all)]), []);
    assert.equal(down([capacity('a', 'nvidia_com_gpu', 32), ...dcgm('a', seven)]).length, 1);
  });

  it('MIG mixed: the capacity counts whole GPUs only, the GFD count every GPU', () => {
    const labels = gfd('b', {
      label_nvidia_com_gpu_count: '8',
      label_nvidia_com_mig_strategy: 'mixed',
    });
    const mig = { 0: ['3', '5', '6'] };
    const base = [
      capacity('b', 'nvidia_com_gpu', 7),
      capacity('b', 'nvidia_com_mig_2g_20gb', 3),
      labels,
    ];
    assert.deepEqual(down([...base, ...dcgm('b', all, mig)]), [], 'healthy');
    assert.deepEqual(down([...base, ...dcgm('b', seven, mig)]), ['b=1'], 'a whole GPU lost');
    assert.deepEqual(down([...base, ...dcgm('b', all.slice(1))]), ['b=1'], 'the MIG GPU lost');
  });

  it('MIG single: MIG devices advertised against MIG instances reported', () => {
    const labels = gfd('c', {
      label_nvidia_com_gpu_count: '16',
      label_nvidia_com_mig_strategy: 'single',
    });
    const two = {
      0: ['1', '2'],
      1: ['1', '2'],
      2: ['1', '2'],
      3: ['1', '2'],
      4: ['1', '2'],
      5: ['1', '2'],
      6: ['1', '2'],
      7: ['1', '2'],
    };
    const base = [capacity('c', 'nvidia_com_gpu', 16), labels];
    assert.deepEqual(down([...base, ...dcgm('c', all, two)]), []);
    assert.deepEqual(
      down([...base, ...dcgm('c', seven, two)]),
      ['c=2'],
      'two MIG devices gone with GPU 3',
    );
  });

  it('no sharing, no labels: the capacity itself (the original rule)', () => {
    assert.deepEqual(down([capacity('d', 'nvidia_com_gpu', 8), ...dcgm('d', all)]), []);
    assert.deepEqual(down([capacity('d', 'nvidia_com_gpu', 8), ...dcgm('d', seven)]), ['d=1']);
  });
});

describe('IB ports are devices, and ports meant to be down can be left out', () => {
  const state = (node: string, device: string, port: string, v: number): Series =>
    s('node_infiniband_state_id', { node, device, port }, v);
  const phys = (node: string, device: string, port: string, v: number): Series =>
    s('node_infiniband_physical_state_id', { node, device, port }, v);
  const series = [
    state('a', 'mlx5_0', '1', 4),
    phys('a', 'mlx5_0', '1', 5),
    state('a', 'mlx5_4', '1', 1), // not cabled by design
    phys('a', 'mlx5_4', '1', 2),
    state('b', 'mlx5_4', '1', 1), // b's mlx5_4 is cabled: a real fault
    phys('b', 'mlx5_4', '1', 2),
    state('b', 'mlx4_0', '2', 1), // a second port of an HCA
    phys('b', 'mlx4_0', '2', 5),
  ];
  const ids = (expr: string): string[] =>
    evaluate(expr, series)
      .map((x) => `${x.labels.node ?? ''} ${x.labels[IB_PORT_LABEL] ?? ''}`)
      .sort();

  it('the device id keeps the HCA and the port', () => {
    assert.equal(findCondition('IBLinkAbnormal')?.deviceLabel, IB_PORT_LABEL);
    assert.deepEqual(ids(exprOf('IBLinkAbnormal')), ['a mlx5_4/1', 'b mlx4_0/2', 'b mlx5_4/1']);
  });

  it('an allow-listed port is left out, on the nodes it names only', () => {
    const config = ConfigSchema.parse({
      detection: { ignoreIbPorts: [{ port: 'mlx5_4/1', nodes: 'a' }, 'mlx4_0/[2-3]'] },
    });
    const site = applyDetectionConfig(CATALOGUE, config.detection);
    // a's mlx5_4/1 is not cabled (a only); mlx4_0 ports 2-3 everywhere; b's mlx5_4/1 is a fault.
    for (const name of ['IBLinkAbnormal', 'IBPortDown', 'IBPhysicalPortDown'])
      assert.deepEqual(ids(exprOf(name, site)), ['b mlx5_4/1'], name);
    // Untouched entries are the same objects.
    assert.equal(
      site.find((e) => e.name === 'GpuDown'),
      CATALOGUE.find((e) => e.name === 'GpuDown'),
    );
  });

  it('bad entries are refused naming the entry', () => {
    assert.equal(typeof parseIbPort('mlx5_4/1'), 'object');
    assert.deepEqual(parseIbPort('mlx5_4'), { device: 'mlx5_4', port: '.*' });
    const bad = firstIssue({ detection: { ignoreIbPorts: ['mlx5_[4/1'] } });
    assert.deepEqual(bad.path, ['detection', 'ignoreIbPorts', 0]);
    assert.match(bad.message, /"mlx5_\[4\/1": the HCA part "mlx5_\[4" is not a regular/);
    const lookahead = parseIbPort('(?!mlx5_0)/1');
    assert.ok(
      typeof lookahead === 'string' && lookahead.includes('lookahead'),
      JSON.stringify(lookahead),
    );
  });
});

describe('read-only by design is not a broken disk', () => {
  const ro = (node: string, mountpoint: string, v = 1, fstype = 'ext4'): Series =>
    s('node_filesystem_readonly', { node, device: '/dev/x', fstype, mountpoint }, v);
  const pvc = '/var/lib/kubelet/pods/8ca83d2e/volumes/kubernetes.io~csi/pvc-1/mount';
  const mounts = (expr: string, series: Series[]): string[] =>
    evaluate(expr, series).map((x) => `${x.labels.node ?? ''} ${x.labels.mountpoint ?? ''}`);

  it("a read-only /usr, /sysroot and a pod's read-only PVC are left out; / read-only is a fault", () => {
    const series = [
      ro('a', '/usr'),
      ro('a', '/sysroot'),
      ro('a', pvc),
      ro('a', '/', 0),
      ro('b', '/'),
    ];
    assert.deepEqual(mounts(exprOf('DiskReadOnly'), series), ['b /']);
  });

  it('a full PVC is the tenant’s, not the node’s disk', () => {
    const fs = (name: string, mountpoint: string, v: number): Series =>
      s(name, { node: 'a', device: '/dev/rbd0', fstype: 'ext4', mountpoint }, v);
    const series = [
      fs('node_filesystem_avail_bytes', pvc, 1e9),
      fs('node_filesystem_size_bytes', pvc, 1e11),
      fs('node_filesystem_avail_bytes', '/', 1e9),
      fs('node_filesystem_size_bytes', '/', 1e11),
    ];
    assert.deepEqual(mounts(exprOf('DiskPressure'), series), ['a /']);
  });

  it('the site list replaces the defaults', () => {
    const config = ConfigSchema.parse({ detection: { readOnlyMounts: ['/data/ro(/.*)?'] } });
    assert.deepEqual(
      DEFAULT_DETECTION.readOnlyMounts,
      ConfigSchema.parse({}).detection.readOnlyMounts,
    );
    const site = applyDetectionConfig(CATALOGUE, config.detection);
    const series = [ro('a', '/data/ro'), ro('a', '/usr'), ro('a', pvc)];
    assert.deepEqual(mounts(exprOf('DiskReadOnly', site), series), ['a /usr']);
    const bad = firstIssue({ detection: { readOnlyMounts: ['/x(?=y)'] } });
    assert.deepEqual(bad.path, ['detection', 'readOnlyMounts', 0]);
    assert.match(bad.message, /"\/x\(\?=y\)" uses a lookahead/);
  });
});

describe('presence reads scrape health', () => {
  it('a target whose scrape fails is absent although its last samples are still visible', () => {
    const series = [
      s('DCGM_FI_DEV_GPU_TEMP', { node: 'a', gpu: '0', job: 'dcgm', instance: 'a:9400' }, 40),
      s('DCGM_FI_DEV_GPU_TEMP', { node: 'b', gpu: '0', job: 'dcgm', instance: 'b:9400' }, 40),
      s('up', { node: 'a', job: 'dcgm', instance: 'a:9400' }, 1),
      s('up', { node: 'b', job: 'dcgm', instance: 'b:9400' }, 0),
    ];
    const nodes = evaluate(SIGNAL_PRESENCE['dcgm-exporter'] ?? '', series).map(
      (x) => x.labels.node,
    );
    assert.deepEqual(nodes, ['a']);
  });

  it('a cluster-wide target failing (kube-state-metrics) is absent for every node', () => {
    const series = [
      s('kube_node_info', { node: 'a', job: 'ksm', instance: 'k:8080' }),
      s('kube_node_info', { node: 'b', job: 'ksm', instance: 'k:8080' }),
      s('up', { job: 'ksm', instance: 'k:8080' }, 0),
    ];
    assert.deepEqual(evaluate(SIGNAL_PRESENCE['kube-state-metrics'] ?? '', series), []);
  });
});
