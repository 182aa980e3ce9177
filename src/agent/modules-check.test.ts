import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FakeHost, fixture } from '../../test/agent/fake-host.js';
import {
  createModulesCheck,
  evaluateModules,
  IB_MODULES,
  parseModulesLoad,
  parseProcModules,
} from './modules-check.js';

const hosts: FakeHost[] = [];
after(() => Promise.all(hosts.map((h) => h.close())));
const signal = new AbortController().signal;

describe('kernel modules', () => {
  it('parses a real /proc/modules', () => {
    const loaded = parseProcModules(fixture('modules/proc-modules-composite.txt'));
    assert.deepEqual(
      [...loaded],
      [
        'nvidia_uvm',
        'nvidia_drm',
        'nvidia_modeset',
        'nvidia',
        'drm_kms_helper',
        'drm',
        'mlx5_core',
        'mlx5_ib',
        'ib_core',
      ],
    );
  });

  it('on a real H100 node (lspci) with the NVIDIA driver but half the RDMA stack and no nvidia_peermem', async () => {
    const h = new FakeHost()
      .pciFromLspci('sysfs/lspci-vvv-h100.txt')
      .copy('modules/proc-modules-composite.txt', '/proc/modules');
    hosts.push(h);
    const r = await createModulesCheck({ hostRoot: h.root, intervalMs: 1 }).run(signal);
    assert.deepEqual(r.modulesLoaded, {
      mlx5_core: 1,
      mlx5_ib: 1,
      ib_core: 1,
      ib_uverbs: 0,
      ib_umad: 0,
      ib_cm: 0,
      rdma_cm: 0,
      rdma_ucm: 0,
      ib_ipoib: 0,
      nvidia: 1,
      nvidia_uvm: 1,
      nvidia_peermem: 0,
    });
    assert.equal(r.available.IBModuleLost, true);
    assert.equal(r.available.PeerMemModuleNotReady, true);
    assert.match(String(r.available.PeerMemModuleNotConfig), /not readable/);
  });

  it("nvidia_peermem configured in modules-load.d (the original remedy's file), with - or _", async () => {
    const h = new FakeHost()
      .pciFromLspci('sysfs/lspci-vvv-h100.txt')
      .copy('modules/proc-modules-composite.txt', '/proc/modules')
      .file('/etc/modules-load.d/nvidia_peermem.conf', '# GPUDirect\nnvidia-peermem\n');
    hosts.push(h);
    const r = await createModulesCheck({ hostRoot: h.root, intervalMs: 1 }).run(signal);
    assert.deepEqual(r.modulesConfigured, { nvidia_peermem: 1 });
    assert.deepEqual(parseModulesLoad('; comment\n# c\nnvidia-peermem\n\n'), ['nvidia_peermem']);
  });

  it('nothing is expected of absent hardware: a node without Mellanox never reports IB modules', () => {
    const r = evaluateModules(new Set(), new Set(), [
      { address: '0000:19:00.0', vendor: '0x10de', class: '0x030200' },
    ]);
    assert.deepEqual(Object.keys(r.modulesLoaded ?? {}), ['nvidia', 'nvidia_uvm']);
    assert.notEqual(r.available.IBModuleLost, true);
    const rdma = evaluateModules(new Set(IB_MODULES), undefined, [
      { address: '0000:1a:00.0', vendor: '0x15b3', class: '0x020000' },
    ]);
    assert.ok(Object.values(rdma.modulesLoaded ?? {}).every((v) => v === 1));
  });

  it('/proc/modules unreadable: cannot check', async () => {
    const h = new FakeHost();
    hosts.push(h);
    const r = await createModulesCheck({ hostRoot: h.root, intervalMs: 1 }).run(signal);
    assert.equal(r.modulesLoaded, undefined);
    assert.ok(Object.values(r.available).every((v) => v !== true));
  });
});
