import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CATALOGUE } from './catalogue/index.js';
import { defaultConfig } from './config/schema.js';
import { ErrorCode, isHealError } from './core/errors.js';
import { applyConditionOverrides } from './daemon.js';
import { loadPlugins } from './sop/plugins.js';
import { createSimHarness } from '../test/helpers/sim-harness.js';

describe('condition overrides in config', () => {
  it('override timing by name or alias, disable a condition', () => {
    const out = applyConditionOverrides(CATALOGUE, {
      Xid79GPULost: { clearForMs: 1000 },
      IBDown: { forMs: 5000 },
      HighGpuTemp: { disabled: true },
    });
    assert.equal(out.find((e) => e.name === 'Xid79GPULost')?.clearForMs, 1000);
    assert.equal(out.find((e) => e.name === 'IBLost')?.forMs, 5000);
    assert.equal(
      out.find((e) => e.name === 'HighGpuTemp'),
      undefined,
    );
    assert.equal(out.length, CATALOGUE.length - 1);
  });
  it('an unknown condition in config is UNKNOWN_CONDITION naming the key', () => {
    assert.throws(
      () => applyConditionOverrides(CATALOGUE, { GpuHungg: { forMs: 1 } }),
      (err) =>
        isHealError(err, ErrorCode.UnknownCondition) && err.message.includes('conditions.GpuHungg'),
    );
    assert.ok(defaultConfig().conditions);
  });
});

describe('external plug-ins', () => {
  // Both take conditions over from built-in ladders, which needs sop.pluginOverrides.
  const OVERRIDES = { sop: { pluginOverrides: ['example.restart-dcgm-exporter', 'x.evalthrows'] } };
  const dir = mkdtempSync(join(tmpdir(), 'aegis-plugins-'));
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  cpSync('plugins/examples/restart-nvidia-exporter.ts', join(dir, 'good.ts'));
  writeFileSync(join(dir, 'syntax.mjs'), 'export const sop = {;\n');
  writeFileSync(join(dir, 'throws.mjs'), "throw new Error('boom at import');\n");
  writeFileSync(join(dir, 'shape.mjs'), "export const sop = { id: 'Not An Id' };\n");
  writeFileSync(
    join(dir, 'unknown.mjs'),
    "export const sop = { id: 'x.unknown', description: 'd', handles: ['NoSuchCondition'], createInstance: () => ({}) };\n",
  );
  writeFileSync(
    join(dir, 'evalthrows.mjs'),
    "export const sop = { id: 'x.evalthrows', description: 'd', handles: ['Xid79GPULost'], createInstance: () => ({ evaluate() { throw new Error('bad evaluate'); }, execute: async () => ({ status: 'Failed' }) }) };\n",
  );

  it('a broken plug-in is reported and skipped; the good one loads', async () => {
    const { plugins, problems } = await loadPlugins(dir);
    assert.ok(problems.some((p) => p.includes('syntax.mjs')));
    assert.ok(problems.some((p) => p.includes('throws.mjs') && p.includes('boom at import')));
    const h = await createSimHarness({ plugins, config: OVERRIDES });
    const reg = h.engine.registry();
    assert.ok(reg.get('example.restart-dcgm-exporter'));
    assert.ok(reg.problems.some((p) => p.includes('shape.mjs')));
    assert.ok(reg.problems.some((p) => p.includes('NoSuchCondition')));
    assert.equal(reg.forCondition('GpuMetricsHang')?.sop.id, 'example.restart-dcgm-exporter');
  });

  it('a plug-in whose evaluate throws never stops the daemon: the node is still served', async () => {
    const { plugins } = await loadPlugins(dir);
    const h = await createSimHarness({ plugins, config: OVERRIDES });
    const n = h.node(1);
    h.world.faults.injectFault({
      condition: 'Xid79GPULost',
      node: n,
      device: '0',
      atMs: h.clock.now(),
    });
    h.world.faults.injectFault({ condition: 'GpuHung', node: n, atMs: h.clock.now() });
    await h.run(3 * 60_000);
    assert.ok(h.actions(n).includes('Cordon'), 'the next condition was served');
    assert.match(
      await h.metrics.registry.metrics(),
      /aegis_plugin_errors_total\{plugin="x.evalthrows"\} [1-9]/,
    );
  });

  it('reload picks up a changed plug-in; a broken reload keeps the previous set', async () => {
    const h = await createSimHarness({ config: OVERRIDES });
    assert.equal(h.engine.registry().get('example.restart-dcgm-exporter'), undefined);
    const { plugins } = await loadPlugins(dir);
    const problems = h.engine.reloadPlugins(plugins);
    assert.ok(problems.length > 0);
    assert.ok(h.engine.registry().get('example.restart-dcgm-exporter'));
  });
});
