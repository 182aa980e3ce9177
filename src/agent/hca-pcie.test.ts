/**
 * The HCA PCIe reading on real data: configuration spaces of ConnectX devices printed by lspci
 * (their Max Read Request Size checked against lspci's own decoding where the capture has it) and
 * sysfs link attributes from real trees (test/fixtures/host/agent/SOURCE.md, `pci/`).
 */
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FakeHost, fixture, h100Host } from '../../test/agent/fake-host.js';
import {
  createHcaPcieCheck,
  hcaPcieReport,
  parseLinkSpeed,
  parseLinkWidth,
  readHcaPcie,
  type HcaPcie,
} from './hca-pcie.js';
import { maxReadRequest, parseLspciHex } from './pci-config.js';

const hosts: FakeHost[] = [];
after(() => Promise.all(hosts.map((h) => h.close())));

const dump = (name: string): Uint8Array => parseLspciHex(fixture(`pci/${name}`));

describe('PCI configuration space: Max Read Request Size', () => {
  it('ConnectX-5 Ex (lspci -xxx, 256 bytes): the PCI Express capability first in the list', () => {
    const bytes = dump('config-cx5ex-lspci-xxx.txt');
    assert.equal(bytes.length, 256);
    assert.deepEqual(maxReadRequest(bytes), { ok: true, bytes: 512, capOffset: 0x60 });
  });

  it('ConnectX-3 Pro (lspci -vvvxxxx, 4096 bytes): found after PM and MSI-X, as lspci decodes it', () => {
    const text = fixture('pci/config-cx3pro-lspci-vvvxxxx.txt');
    const bytes = parseLspciHex(text);
    assert.equal(bytes.length, 4096);
    const lspci = /MaxReadReq (\d+) bytes/.exec(text)?.[1];
    assert.equal(lspci, '512');
    assert.match(
      text,
      /Capabilities: \[40\] Power Management[\s\S]*\[9c\] MSI-X[\s\S]*\[60\] Express/,
    );
    assert.deepEqual(maxReadRequest(bytes), { ok: true, bytes: Number(lspci), capOffset: 0x60 });
  });

  it('the 64-byte header an unprivileged reader gets: cannot read, and says why', () => {
    assert.match(reason(dump('config-cx5-lspci-x-64bytes.txt')), /64 bytes .* root/);
  });

  it('every Max_Read_Request_Size code of Device Control bits 14:12, and the reserved ones', () => {
    const base = dump('config-cx5ex-lspci-xxx.txt');
    for (let code = 0; code < 8; code++) {
      const b = Uint8Array.from(base);
      b[0x69] = ((b[0x69] ?? 0) & 0x8f) | (code << 4); // DevCtl high byte at 0x60 + 8 + 1
      const r = maxReadRequest(b);
      if (code <= 5) assert.deepEqual(r, { ok: true, bytes: 128 << code, capOffset: 0x60 });
      else assert.match(r.ok ? '' : r.reason, /reserved/);
    }
  });

  it('a broken list is an error, never a value: loop, pointer out of range, no list, gone', () => {
    const base = dump('config-cx3pro-lspci-vvvxxxx.txt');
    const loop = Uint8Array.from(base);
    loop[0x9d] = 0x40; // MSI-X points back to PM
    assert.match(reason(loop), /loops/);
    const out = Uint8Array.from(base.subarray(0, 256));
    out[0x41] = 0x20; // PM points into the standard header
    assert.match(reason(out), /capability pointer 0x20 outside 0x40\.\.0x100/);
    const noList = Uint8Array.from(base);
    noList[0x06] = 0;
    assert.match(reason(noList), /no capability list/);
    const gone = new Uint8Array(256).fill(0xff);
    assert.match(reason(gone), /0xffff/);
  });

  it('an lspci dump with a missing line is refused, naming the offset', () => {
    const text = fixture('pci/config-cx5ex-lspci-xxx.txt')
      .split('\n')
      .filter((l) => !l.includes(' 40: '))
      .join('\n');
    assert.throws(() => parseLspciHex(text), /line at 0x50 follows 0x40 bytes/);
  });
});

function reason(bytes: Uint8Array): string {
  const r = maxReadRequest(bytes);
  if (r.ok) assert.fail(`read ${String(r.bytes)} bytes, expected an error`);
  return r.reason;
}

describe('sysfs link attributes', () => {
  it('parses the kernel formats (real values of the fixtures, old kernels, Unknown)', () => {
    const attr = (dir: string, a: string) => fixture(`pci/${dir}/${a}`).trim();
    assert.equal(parseLinkSpeed(attr('link-e810-a2-00.0', 'current_link_speed')), 16);
    assert.equal(parseLinkSpeed(attr('link-nvme-01-00.0', 'current_link_speed')), 8);
    assert.equal(parseLinkWidth(attr('link-rootport-00-02.1', 'max_link_width')), 8);
    assert.equal(parseLinkSpeed('2.5 GT/s'), 2.5);
    assert.equal(parseLinkSpeed('Unknown'), 0);
    assert.equal(parseLinkSpeed('Unknown speed'), 0);
    assert.equal(parseLinkSpeed('fast'), undefined);
    assert.equal(parseLinkWidth('x16'), 16);
    assert.equal(parseLinkWidth(''), undefined);
  });
});

describe('HCA PCIe reading on the fake H100 host', () => {
  const host = h100Host({ nvidiaSmi: 'nvidia-smi/a100-sxm4-v12.xml' });
  hosts.push(host);

  it('reads each HCA with a PCI function; the maximum is the lower of HCA and upstream port', async () => {
    const hcas = await readHcaPcie(host.root);
    assert.deepEqual(
      hcas?.map((h) => ({ ...h, missing: Object.keys(h.missing) })),
      [
        {
          device: 'mlx5_0',
          pciBdf: '0000:1a:00.0',
          speedGts: 16,
          width: 8,
          maxSpeedGts: 16,
          maxWidth: 8,
          maxReadRequestBytes: 512,
          missing: [],
        },
        // 8 GT/s of the HCA's 16, but its upstream port goes no faster than 8: not degraded.
        {
          device: 'mlx5_1',
          pciBdf: '0000:3c:00.0',
          speedGts: 8,
          width: 4,
          maxSpeedGts: 8,
          maxWidth: 4,
          maxReadRequestBytes: 512,
          missing: [],
        },
        {
          device: 'mlx5_4',
          pciBdf: '0000:4d:00.0',
          speedGts: 8,
          width: 4,
          maxSpeedGts: 16,
          maxWidth: 4,
          missing: ['mrr'],
        },
        {
          device: 'mlx5_5',
          pciBdf: '0000:5e:00.0',
          speedGts: 8,
          width: 4,
          maxSpeedGts: 8,
          maxWidth: 8,
          missing: ['mrr'],
        },
      ],
    );
  });

  it('an HCA whose config space cannot be fully read makes the MRR "cannot check", naming it', async () => {
    const report = await createHcaPcieCheck({ hostRoot: host.root, intervalMs: 1 }).run(
      new AbortController().signal,
    );
    assert.equal(report.available.IBPCIeSpeedAbnormal, true);
    assert.equal(report.available.IBPCIeWidthAbnormal, true);
    assert.match(String(report.available.IBPCIeMRRNotAlign), /^0000:4d:00\.0: 64 bytes/);
    assert.deepEqual(report.problems, []);
  });
});

describe('which HCAs are read', () => {
  it('skips virtual functions, other vendors and software devices; no class: cannot check', async () => {
    const h = new FakeHost()
      .hcaPci('mlx5_0', { bdf: '0000:1a:00.0', link: 'pci/link-e810-a2-00.0' })
      .hcaPci('mlx5_2', { bdf: '0000:1a:00.2', link: 'pci/link-e810-a2-00.0' })
      .hcaPci('irdma0', { bdf: '0000:a2:00.0', link: 'pci/link-e810-a2-00.0' })
      .file('/sys/devices/pci0000:00/0000:a2:00.0/vendor', '0x8086\n')
      .file('/sys/class/infiniband/rxe0/ports/1/state', '4: ACTIVE\n');
    hosts.push(h);
    mkdirSync(join(h.root, 'sys/devices/pci0000:00/0000:1a:00.2'), { recursive: true });
    symlinkSync('../0000:1a:00.0', join(h.root, 'sys/devices/pci0000:00/0000:1a:00.2/physfn'));
    assert.deepEqual(
      (await readHcaPcie(h.root))?.map((x) => x.device),
      ['mlx5_0'],
    );
    const none = new FakeHost();
    hosts.push(none);
    const r = await createHcaPcieCheck({ hostRoot: none.root, intervalMs: 1 }).run(
      new AbortController().signal,
    );
    assert.equal(r.available.IBPCIeMRRNotAlign, 'no /sys/class/infiniband');
  });

  it('a node without Mellanox HCAs is checked (nothing to be wrong)', () => {
    const r = hcaPcieReport([]);
    assert.deepEqual(r.available, {
      IBPCIeMRRNotAlign: true,
      IBPCIeSpeedAbnormal: true,
      IBPCIeWidthAbnormal: true,
    });
    const partial: HcaPcie = { device: 'mlx5_9', pciBdf: '0000:dc:00.0', missing: { link: 'x' } };
    assert.equal(hcaPcieReport([partial]).available.IBPCIeSpeedAbnormal, 'x');
  });
});
