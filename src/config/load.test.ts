import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, isHealError } from '../core/errors.js';
import { loadConfig } from './load.js';

const dir = mkdtempSync(join(tmpdir(), 'aegis-config-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});
function file(text: string): string {
  const p = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(p, text);
  return p;
}

describe('config', () => {
  it('defaults are safe: dry-run on, one shutdown at a time, 10% cordon budget', () => {
    const c = loadConfig({});
    assert.equal(c.safety.dryRun, true);
    assert.equal(c.safety.maxConcurrent.shutdown, 1);
    assert.equal(c.safety.maxCordonedFraction, 0.1);
    assert.equal(c.inspect.intervalMs, 5000);
  });
  it('parses durations and applies env then overrides', () => {
    const c = loadConfig({
      file: file('inspect:\n  intervalMs: 2s\nsafety:\n  dryRun: false\n'),
      env: { AEGIS_PROMETHEUS_URL: 'http://prom:9090', AEGIS_DRY_RUN: 'true' },
      overrides: { 'safety.paused': true },
    });
    assert.equal(c.inspect.intervalMs, 2000);
    assert.equal(c.prometheus.url, 'http://prom:9090');
    assert.equal(c.safety.dryRun, true);
    assert.equal(c.safety.paused, true);
  });
  const bad: [string, string, RegExp][] = [
    ['unknown key (typo)', 'safty:\n  dryRun: false\n', /safty/],
    ['bad duration', 'inspect:\n  intervalMs: soon\n', /intervalMs/],
    ['bad type', 'safety:\n  maxCordonedFraction: lots\n', /maxCordonedFraction/],
    ['not a mapping', '- a\n- b\n', /mapping/],
    ['bad YAML', 'a: [\n', /c.*\.yaml/],
  ];
  for (const [name, text, re] of bad) {
    it(`rejects ${name} naming the file and field`, () => {
      const p = file(text);
      assert.throws(
        () => loadConfig({ file: p }),
        (err) =>
          isHealError(err, ErrorCode.ConfigInvalid) &&
          re.test(err.message) &&
          err.message.includes(p),
      );
    });
  }
  it('never crashes on arbitrary text: loads or throws CONFIG_INVALID', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          loadConfig({ file: file(text) });
        } catch (err) {
          assert.ok(isHealError(err, ErrorCode.ConfigInvalid), String(err));
        }
      }),
      { numRuns: 200 },
    );
  });
});
