import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { CATALOGUE } from '../catalogue/index.js';
import { ErrorCode, isHealError } from '../core/errors.js';
import {
  Bucket,
  bucketOf,
  defaultPriorityTable,
  formatPriorityTable,
  parsePriorityTable,
} from './priority-table.js';

const parse = (text: string) => parsePriorityTable(text, { source: 'priority.conf' });

/** Asserts that parsing `text` fails with PRIORITY_INVALID and a message matching `pattern`. */
function assertRejects(text: string, pattern: RegExp): void {
  assert.throws(
    () => parse(text),
    (err) => isHealError(err, ErrorCode.PriorityInvalid) && pattern.test(err.message),
  );
}

describe('bucketOf', () => {
  const cases: readonly (readonly [number, Bucket])[] = [
    [0, Bucket.NotReady],
    [1, Bucket.Cordon],
    [2, Bucket.Emergency],
    [99, Bucket.Emergency],
    [100, Bucket.CanIgnore],
    [999, Bucket.CanIgnore],
    [1000, Bucket.MustIgnore],
    [9999, Bucket.MustIgnore],
  ];
  for (const [priority, bucket] of cases) {
    it(`${priority} -> ${bucket}`, () => {
      assert.equal(bucketOf(priority), bucket);
    });
  }
});

describe('parsePriorityTable: accepted lines', () => {
  const cases: readonly (readonly [string, string, string, number, boolean, string])[] = [
    ['two fields keep the catalogue flags', 'GpuHung:7', 'GpuHung', 7, false, 'all'],
    ['three fields', 'GpuHung:7:true', 'GpuHung', 7, true, 'all'],
    ['four fields', 'Xid79GPULost:5:F:id', 'Xid79GPULost', 5, false, 'id'],
    ['dash is none', 'Xid79GPULost:5:1:-', 'Xid79GPULost', 5, true, 'none'],
    ['spaces are trimmed', '  GpfsDown : 3 : T : all  ', 'GpfsDown', 3, true, 'all'],
    ['aliases map to the canonical name', 'IBDown:4', 'IBLost', 4, false, 'all'],
    ['case-insensitive names', 'gpuhwslowdown:120', 'GpuHWSlowdown', 120, false, 'index'],
    ['MustIgnore values', 'HighGpuTemp:9999:False', 'HighGpuTemp', 9999, false, 'none'],
  ];
  for (const [title, line, name, priority, affectsLoad, mode] of cases) {
    it(title, () => {
      const row = parse(`# header\n\n${line}\n`).get(name);
      assert.deepEqual(row, {
        priority,
        affectsLoad,
        deviceIdMode: mode,
        source: 'priority.conf:3',
      });
    });
  }

  it('keeps catalogue defaults for conditions the file leaves out', () => {
    const table = parse('GpuHung:7\n');
    assert.equal(table.size, CATALOGUE.length);
    assert.deepEqual(table.get('NodeNotReady'), defaultPriorityTable().get('NodeNotReady'));
  });

  it('accepts CRLF line ends and an empty file', () => {
    assert.equal(parse('GpuHung:7\r\nGpfsDown:3\r\n').get('GpfsDown')?.priority, 3);
    assert.deepEqual(parse(''), defaultPriorityTable());
  });
});

describe('parsePriorityTable: rejected lines name the file, line and field', () => {
  const cases: readonly (readonly [string, string, RegExp])[] = [
    [
      'bad number',
      'GpuHung:high',
      /^priority\.conf:1: priority: "high" is not a non-negative integer$/,
    ],
    ['negative number', 'GpuHung:-1', /priority\.conf:1: priority: "-1"/],
    ['fraction', 'GpuHung:1.5', /priority\.conf:1: priority: "1\.5"/],
    [
      'unknown condition',
      '\nNoSuchThing:3',
      /^priority\.conf:2: condition: unknown condition "NoSuchThing"$/,
    ],
    ['bad boolean', 'GpuHung:3:yes', /priority\.conf:1: AffectsLoad: "yes" is not a boolean/],
    [
      'bad DeviceIDMode',
      'GpuHung:3:true:gpu',
      /priority\.conf:1: DeviceIDMode: "gpu" is not one of/,
    ],
    ['too few fields', 'GpuHung', /priority\.conf:1: expected Condition:Priority.*got 1 field/],
    ['too many fields', 'GpuHung:1:true:id:x', /priority\.conf:1: .*got 5 field/],
    [
      'duplicate',
      'GpuHung:3\n# x\nGpuHung:4',
      /^priority\.conf:3: duplicate entry for GpuHung \(first at line 1\)$/,
    ],
    [
      'duplicate via alias',
      'IBLost:3\nIBDown:4',
      /priority\.conf:2: duplicate entry for IBLost \(first at line 1; "IBDown" is an alias\)/,
    ],
  ];
  for (const [title, text, pattern] of cases) {
    it(title, () => {
      assertRejects(text, pattern);
    });
  }

  it('reports every problem in one error', () => {
    assertRejects(
      'A:1\nGpuHung:x\nGpuHung:3:maybe',
      /:1: condition.*; .*:2: priority.*; .*:3: AffectsLoad/,
    );
  });
});

describe('formatPriorityTable', () => {
  it('writes four fields per line, grouped by domain', () => {
    const text = formatPriorityTable(defaultPriorityTable());
    assert.match(text, /^# Node\nNodeNotReady:0:false:-$/m);
    assert.match(text, /^Xid79GPULost:2:true:index$/m);
  });

  it('round-trips the default table', () => {
    const table = defaultPriorityTable();
    const strip = (t: typeof table) =>
      [...t].map(([n, r]) => [n, r.priority, r.affectsLoad, r.deviceIdMode]);
    assert.deepEqual(strip(parse(formatPriorityTable(table))), strip(table));
  });

  it('matches the shipped deploy/priority.conf', () => {
    const shipped = readFileSync(new URL('../../deploy/priority.conf', import.meta.url), 'utf8');
    assert.equal(
      shipped,
      formatPriorityTable(defaultPriorityTable()),
      'run: aegis priority print > deploy/priority.conf',
    );
  });
});
