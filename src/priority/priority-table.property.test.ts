import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { CATALOGUE } from '../catalogue/index.js';
import type { DeviceIdMode } from '../catalogue/index.js';
import { isHealError } from '../core/errors.js';
import {
  defaultPriorityTable,
  formatPriorityTable,
  parsePriorityTable,
  type PriorityEntry,
} from './priority-table.js';

const NAMES = CATALOGUE.map((e) => e.name);
const MODES: readonly DeviceIdMode[] = ['none', 'id', 'index', 'mask', 'all'];

const override = fc.record({
  name: fc.constantFrom(...NAMES),
  priority: fc.nat({ max: 1_000_000 }),
  affectsLoad: fc.boolean(),
  deviceIdMode: fc.constantFrom(...MODES),
});

/** A line that is sometimes right and often subtly wrong. */
const line = fc.oneof(
  fc.string(),
  fc
    .tuple(
      fc.oneof(fc.constantFrom(...NAMES), fc.string()),
      fc.oneof(fc.nat().map(String), fc.string()),
      fc.option(fc.constantFrom('true', 'F', '1', 'yes', '')),
      fc.option(fc.constantFrom('-', 'id', 'all', 'gpu', '')),
    )
    .map((fields) => fields.filter((f) => f !== null).join(':')),
  fc.constantFrom('', '# comment', '   ', ':::', 'GpuHung:'),
);

const project = (table: ReadonlyMap<string, PriorityEntry>) =>
  [...table].map(([name, { priority, affectsLoad, deviceIdMode }]) => ({
    name,
    priority,
    affectsLoad,
    deviceIdMode,
  }));

describe('priority table properties', () => {
  it('format then parse gives the same table', () => {
    fc.assert(
      fc.property(fc.array(override, { maxLength: 40 }), (overrides) => {
        const table = new Map(defaultPriorityTable());
        for (const o of overrides) table.set(o.name, { ...o, source: 'test' });
        const back = parsePriorityTable(formatPriorityTable(table), { source: 'rt.conf' });
        assert.deepEqual(project(back), project(table));
      }),
    );
  });

  it('never crashes: any text parses or throws a HealError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 400 }),
          fc.array(line, { maxLength: 20 }).map((l) => l.join('\n')),
        ),
        (text) => {
          try {
            const table = parsePriorityTable(text, { source: 'fuzz.conf' });
            assert.equal(table.size, CATALOGUE.length);
          } catch (err) {
            assert.ok(isHealError(err), `not a HealError: ${String(err)}`);
            assert.match(err.message, /^fuzz\.conf:\d+: /);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
