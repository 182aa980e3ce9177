import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { FakeHost } from '../../test/agent/fake-host.js';
import { readRdmaDevices } from './ib-sysfs.js';
import { createRdmaCheck, evaluateRdma } from './rdma-check.js';

const hosts: FakeHost[] = [];
after(() => Promise.all(hosts.map((h) => h.close())));
const host = (): FakeHost => {
  const h = new FakeHost();
  hosts.push(h);
  return h;
};
const none = { ignorePorts: [], expectLinkLayer: {} };
const signal = new AbortController().signal;

describe('RDMA sysfs of a real H100 node (8 × NDR InfiniBand + 1 RoCE bond)', () => {
  it('reads every HCA, port state and link layer', async () => {
    const h = host().copy('sysfs/ib-h100', '/sys/class/infiniband');
    const devices = (await readRdmaDevices(h.root)) ?? [];
    assert.equal(devices.length, 9);
    assert.deepEqual(devices[0]?.ports[0], {
      port: '1',
      state: '4: ACTIVE',
      physState: '5: LinkUp',
      linkLayer: 'InfiniBand',
      rate: '400 Gb/sec (4X NDR)',
    });
    assert.equal(devices.find((d) => d.name === 'mlx5_bond_0')?.ports[0]?.linkLayer, 'Ethernet');
  });

  it('is healthy; IBProtoclAbnormal needs the expected link layers', async () => {
    const h = host().copy('sysfs/ib-h100', '/sys/class/infiniband');
    const r = await createRdmaCheck({ hostRoot: h.root, intervalMs: 1, ...none }).run(signal);
    assert.ok(r.problems.every((p) => p.value === 0));
    assert.equal(r.available.RoceHostOffline, true);
    assert.match(String(r.available.IBProtoclAbnormal), /not configured/);
  });

  it('an HCA running the wrong link layer is IBProtoclAbnormal{device}', async () => {
    const h = host().copy('sysfs/ib-h100', '/sys/class/infiniband');
    const devices = (await readRdmaDevices(h.root)) ?? [];
    const r = evaluateRdma(devices, {
      ignorePorts: [],
      expectLinkLayer: { '^mlx5_': 'InfiniBand' },
    });
    assert.deepEqual(
      r.problems.filter((p) => p.check === 'IBProtoclAbnormal'),
      [{ check: 'IBProtoclAbnormal', device: 'mlx5_bond_0', value: 1 }],
    );
  });
});

describe('RoCE of a real host with 2-port CX-6 NICs (ibdev2netdev)', () => {
  it('two second ports are down: RoceHostOffline 2, or 0 with them on the allow-list', async () => {
    const h = host().rdmaFromIbdev2netdev('sysfs/ibdev2netdev-imbue.txt');
    const devices = (await readRdmaDevices(h.root)) ?? [];
    const count = (ignorePorts: string[]) =>
      evaluateRdma(devices, { ignorePorts, expectLinkLayer: {} }).problems.find(
        (p) => p.check === 'RoceHostOffline',
      )?.value;
    assert.equal(count([]), 2);
    assert.equal(count(['mlx5_2', 'mlx5_8']), 0);
    assert.equal(count(['enp27s0f1np1']), 1);
  });

  it('IPoIB netdevs being down is not a RoCE fault, and every IB HCA has a netdev', async () => {
    const h = host().rdmaFromIbdev2netdev('sysfs/ibdev2netdev-imbue.txt');
    const r = evaluateRdma((await readRdmaDevices(h.root)) ?? [], none);
    assert.deepEqual(
      r.problems.find((p) => p.check === 'IBNetDriverFailedLoad'),
      { check: 'IBNetDriverFailedLoad', value: 0 },
    );
    assert.deepEqual(
      r.problems.find((p) => p.check === 'RoceDeviceBroken'),
      { check: 'RoceDeviceBroken', value: 0 },
    );
  });

  it('an InfiniBand HCA without a netdev is IBNetDriverFailedLoad (EDITED: mlx5_3 netdev removed)', async () => {
    const h = host().rdmaFromIbdev2netdev('sysfs/ibdev2netdev-imbue.txt');
    rmSync(join(h.root, 'sys/class/infiniband/mlx5_3/device/net/ibp60s0'), { recursive: true });
    const r = evaluateRdma((await readRdmaDevices(h.root)) ?? [], none);
    assert.deepEqual(
      r.problems.filter((p) => p.check === 'IBNetDriverFailedLoad'),
      [{ check: 'IBNetDriverFailedLoad', device: 'mlx5_3', value: 1 }],
    );
  });

  it('no /sys/class/infiniband: cannot check', async () => {
    const r = await createRdmaCheck({ hostRoot: host().root, intervalMs: 1, ...none }).run(signal);
    assert.deepEqual(r.problems, []);
    assert.ok(Object.values(r.available).every((v) => v !== true));
  });
});

describe('SR-IOV (counts only)', () => {
  const pf = {
    name: 'mlx5_1',
    ports: [{ port: '1', linkLayer: 'Ethernet', state: '4: ACTIVE' }],
    netdevs: [{ name: 'enp27s0f0np0', operstate: 'up' }],
    sriovNumVfs: 8,
  };
  it('fewer VFs than sriov_numvfs asks for: RoceVfDeviceMiss{netdev}', () => {
    const r = evaluateRdma([{ ...pf, virtfns: 6 }], none);
    assert.deepEqual(
      r.problems.filter((p) => p.check === 'RoceVfDeviceMiss'),
      [{ check: 'RoceVfDeviceMiss', device: 'enp27s0f0np0', value: 1 }],
    );
  });
  it('fewer VFs than roce.expectedVfs: RoceSriovInitError', () => {
    const r = evaluateRdma([{ ...pf, virtfns: 8 }], { ...none, expectedVfs: 16 });
    assert.deepEqual(
      r.problems.filter((p) => p.check.startsWith('RoceSriov')),
      [{ check: 'RoceSriovInitError', device: 'enp27s0f0np0', value: 1 }],
    );
    assert.equal(r.available.RoceSriovInitError, true);
  });
});
