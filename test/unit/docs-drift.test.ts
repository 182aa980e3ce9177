import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../src/core/errors.js';
import { createMetrics, metricNames } from '../../src/metrics/metrics.js';

describe('docs stay in step with the code', () => {
  it('docs/errors.md has a row for every ErrorCode, and no extra', () => {
    const doc = readFileSync('docs/errors.md', 'utf8');
    const rows = [...doc.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(rows.sort(), Object.values(ErrorCode).sort());
  });
  it('docs/metrics.md has a row for every metric, and no extra', () => {
    const doc = readFileSync('docs/metrics.md', 'utf8');
    const rows = [...doc.matchAll(/^\| `(aegis_[a-z_]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(rows.sort(), metricNames(createMetrics()).sort());
  });
});
