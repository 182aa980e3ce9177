import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fixture } from '../../test/agent/fake-host.js';
import { MISSING, TIMEOUT, exited, fakeRunner } from '../../test/agent/fake-runner.js';
import type { CheckReport } from './check.js';
import { createGpuCheck, gpuMask } from './gpu-check.js';
import { normalisePci, parseNvidiaSmiXml } from './nvidia-xml.js';
import type { ToolResult } from './tool-runner.js';

const signal = new AbortController().signal;
const tool = () => Promise.resolve({ command: 'nvidia-smi', root: '/run/nvidia/driver' });

function check(results: ToolResult[]) {
  const runner = fakeRunner(() => results.shift() ?? TIMEOUT);
  return { runner, check: createGpuCheck({ runner, tool, timeoutMs: 1000, intervalMs: 1000 }) };
}

const value = (r: CheckReport, name: string) => r.problems.filter((p) => p.check === name);

describe('nvidia-smi -q -x parsing (real documents)', () => {
  it('reads the 8 GPUs of a V100S node in PCI order, with the schema v11 fields', () => {
    const gpus = parseNvidiaSmiXml(fixture('nvidia-smi/v100s-pcie-8gpu-v11.xml'));
    assert.equal(gpus.length, 8);
    assert.equal(gpus[0]?.pci, '0000:00:0d.0');
    assert.equal(gpus[7]?.pci, '0000:00:14.0');
    assert.equal(gpus[0].pendingRetirement, false);
    assert.equal(gpus[0].remapFailure, undefined); // remapped_rows N/A on Volta
  });

  it('reads reset status (v12), recovery action and row-remap failure (v13)', () => {
    const [a100] = parseNvidiaSmiXml(fixture('nvidia-smi/a100-sxm4-v12.xml'));
    assert.equal(a100?.resetRequired, false);
    const [ada] = parseNvidiaSmiXml(fixture('nvidia-smi/rtx-4000-sff-ada-v13.xml'));
    assert.deepEqual(ada, { pci: '0000:06:00.0', recoveryAction: 'None', remapFailure: false });
    const [rtx3060] = parseNvidiaSmiXml(fixture('nvidia-smi/rtx-3060-v12.xml'));
    assert.equal(rtx3060?.resetRequired, undefined); // "Requested functionality has been deprecated"
  });

  it('rejects a document that is not nvidia-smi XML, naming the tool', () => {
    assert.throws(() => parseNvidiaSmiXml('garbage'), /nvidia-smi -q -x: no <nvidia_smi_log>/);
  });

  it('normalises PCI addresses to the kernel form', () => {
    assert.equal(normalisePci('00000000:3B:00.0'), '0000:3b:00.0');
    assert.equal(normalisePci('0000:0B:00.0'), '0000:0b:00.0');
  });
});

describe('GPU check', () => {
  it('a healthy A100 passes all three checks, run under the driver root', async () => {
    const { runner, check: c } = check([exited('nvidia-smi/a100-sxm4-v12.xml')]);
    const r = await c.run(signal);
    assert.deepEqual(r.problems, [
      { check: 'GpuHung', value: 0 },
      { check: 'GpuCheckFailed', value: 0 },
      { check: 'GpuErrResetRequired', value: 0 },
    ]);
    assert.deepEqual(runner.calls[0]?.args, ['-q', '-x']);
    assert.equal(runner.calls[0].tool.root, '/run/nvidia/driver');
  });

  it('a row-remap failure fails the GPU with its bitmask (EDITED: remapped_row_failure No → Yes)', async () => {
    const xml = fixture('nvidia-smi/rtx-4000-sff-ada-v13.xml').replace(
      '<remapped_row_failure>No</remapped_row_failure>',
      '<remapped_row_failure>Yes</remapped_row_failure>',
    );
    const { check: c } = check([{ kind: 'exited', code: 0, stdout: xml, stderr: '' }]);
    const r = await c.run(signal);
    assert.deepEqual(value(r, 'GpuCheckFailed'), [
      { check: 'GpuCheckFailed', device: '10000000', value: 1 },
    ]);
  });

  it('a lost GPU is failed with its index from the previous document', async () => {
    const { check: c } = check([
      exited('nvidia-smi/v100s-pcie-8gpu-v11.xml'),
      exited(undefined, 15, 'nvidia-smi/gpu-lost-EDITED-00-0e.txt'),
    ]);
    await c.run(signal);
    const r = await c.run(signal);
    assert.deepEqual(value(r, 'GpuCheckFailed'), [
      { check: 'GpuCheckFailed', device: '01000000', value: 1 },
    ]);
    assert.deepEqual(value(r, 'GpuHung'), [{ check: 'GpuHung', value: 0 }]);
    assert.match(String(r.available.GpuErrResetRequired), /nvidia-smi failed/);
  });

  it('a GPU never seen in a document is named by its PCI address (real "Unknown Error" output)', async () => {
    const { check: c } = check([exited(undefined, 255, 'nvidia-smi/unknown-error.txt')]);
    const r = await c.run(signal);
    assert.deepEqual(value(r, 'GpuCheckFailed'), [
      { check: 'GpuCheckFailed', device: '0000:0b:00.0', value: 1 },
    ]);
  });

  it('no answer within the deadline is GpuHung; the other checks are unknown, not healthy', async () => {
    const { check: c } = check([TIMEOUT]);
    const r = await c.run(signal);
    assert.deepEqual(r.problems, [{ check: 'GpuHung', value: 1 }]);
    assert.equal(r.available.GpuHung, true);
    assert.notEqual(r.available.GpuCheckFailed, true);
  });

  it('a missing nvidia-smi is "cannot check" for every GPU condition, never a fault', async () => {
    const { check: c } = check([MISSING]);
    const r = await c.run(signal);
    assert.deepEqual(r.problems, []);
    for (const name of ['GpuHung', 'GpuCheckFailed', 'GpuErrResetRequired']) {
      assert.notEqual(r.available[name], true);
    }
  });

  it('bitmask: GPU 0 first, at least 8 characters', () => {
    assert.equal(gpuMask([false, true]), '01000000');
    assert.equal(gpuMask(Array.from({ length: 10 }, (_, i) => i === 9)), '0000000001');
  });
});
