import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { CATALOGUE, METRICS } from '../../catalogue/index.js';
import { runCliCaptured } from '../main.js';
import {
  renderConditionsMarkdown,
  renderMetricsMarkdown,
  type ConditionRow,
} from './conditions.js';

/** stdout of `aegis ...args` (asserting success). */
async function stdout(...args: string[]): Promise<string> {
  const { code, out, err } = await runCliCaptured(args);
  assert.equal(code, 0, err);
  return out;
}

const doc = (name: string): string =>
  readFileSync(new URL(`../../../docs/${name}`, import.meta.url), 'utf8');

describe('aegis conditions', () => {
  it('--json prints every entry with the documented fields', async () => {
    const rows = JSON.parse(await stdout('conditions', '--json')) as ConditionRow[];
    assert.equal(rows.length, CATALOGUE.length);
    const hung = rows.find((r) => r.name === 'GpuHung');
    assert.ok(hung);
    for (const key of [
      'name',
      'domain',
      'priority',
      'sop',
      'expr',
      'signal',
      'deviceLabel',
      'forMs',
    ]) {
      assert.ok(key in hung, key);
    }
    assert.deepEqual(
      [hung.bucket, hung.affectsLoad, hung.deviceIdMode, hung.sop],
      ['Emergency', false, 'all', 'gpu.reboot'],
    );
  });

  it('--domain filters, case-insensitively', async () => {
    const rows = JSON.parse(
      await stdout('conditions', '--json', '--domain', 'gpfs'),
    ) as ConditionRow[];
    assert.ok(rows.length > 0);
    assert.ok(rows.every((r) => r.domain === 'GPFS'));
  });

  it('prints a human table by default', async () => {
    const text = await stdout('conditions', '--domain', 'PeerMem');
    assert.match(text, /^NAME +DOMAIN +PRIO +BUCKET/);
    assert.match(text, /^PeerMemModuleNotReady +PeerMem +50 +Emergency +peermem\.config/m);
  });

  it('--metrics --json lists the metric contract', async () => {
    const metrics = JSON.parse(await stdout('conditions', '--metrics', '--json')) as {
      name: string;
    }[];
    assert.equal(metrics.length, METRICS.length);
  });

  it('docs/conditions.md is the committed output of --markdown', () => {
    assert.equal(
      doc('conditions.md'),
      renderConditionsMarkdown(CATALOGUE),
      'regenerate: aegis conditions --markdown > docs/conditions.md',
    );
  });

  it('docs/exporters.md is the committed output of --metrics --markdown', () => {
    assert.equal(
      doc('exporters.md'),
      renderMetricsMarkdown(CATALOGUE, METRICS),
      'regenerate: aegis conditions --metrics --markdown > docs/exporters.md',
    );
  });
});
