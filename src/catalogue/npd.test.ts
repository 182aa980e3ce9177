import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { ErrorCode, isHealError } from '../core/errors.js';
import {
  createMemorySeriesSource,
  evaluateInstant,
  loadSeries,
  parsePromQL,
} from '../promql/index.js';
import { CATALOGUE } from './index.js';
import {
  applyNpdMapping,
  DEFAULT_NPD_MAPPING,
  NPD_CONDITIONS,
  npdExpr,
  type NpdMapping,
} from './npd.js';

/** NPD's own condition types and reasons (test/fixtures/npd/README.md). */
const UPSTREAM = JSON.parse(
  readFileSync(new URL('../../test/fixtures/npd/condition-types.json', import.meta.url), 'utf8'),
) as { permanent: [string, string, string][]; temporary: [string, string][] };

const MIN = 60_000;

/** Nodes of `expr` at `atMs` over series in promqltest notation, one sample a minute. */
function firing(expr: string, spec: Record<string, string>, atMs: number): string[] {
  const source = createMemorySeriesSource(loadSeries(MIN, spec));
  return evaluateInstant(parsePromQL(expr), source, atMs)
    .map((s) => s.labels['node'] ?? '')
    .sort();
}

describe('NPD default mapping', () => {
  it('maps every permanent problem type of NPD’s shipped Linux configs', () => {
    const mapped = new Set(DEFAULT_NPD_MAPPING.problems.map((p) => p.type));
    const missing = UPSTREAM.permanent.map(([, type]) => type).filter((t) => !mapped.has(t));
    assert.deepEqual([...new Set(missing)], []);
  });

  it('maps only types and reasons NPD really has', () => {
    const types = new Set(UPSTREAM.permanent.map(([, type]) => type));
    const events = new Set(UPSTREAM.temporary.map(([, reason]) => reason));
    for (const p of DEFAULT_NPD_MAPPING.problems) assert.ok(types.has(p.type), p.type);
    for (const e of DEFAULT_NPD_MAPPING.events) assert.ok(events.has(e.reason), e.reason);
  });

  it('targets catalogue conditions, and every NPD condition is fed by something', () => {
    const names = new Set(CATALOGUE.map((e) => e.name));
    for (const p of DEFAULT_NPD_MAPPING.problems) assert.ok(names.has(p.condition), p.condition);
    for (const e of NPD_CONDITIONS) {
      assert.ok(CATALOGUE.includes(e), `${e.name} not registered in CATALOGUE`);
      assert.notEqual(e.expr, '', e.name);
    }
  });

  it("raises each NPD condition from its recipe's problem_gauge series, and not from the healthy 0", () => {
    for (const e of NPD_CONDITIONS) {
      const labels = e.fault.series[0]?.labels ?? {};
      const sel = `problem_gauge{node="n1",type="${labels['type'] ?? ''}",reason="${labels['reason'] ?? ''}"}`;
      assert.deepEqual(firing(e.expr, { [sel]: '0 0 1 1' }, 3 * MIN), ['n1'], e.name);
      assert.deepEqual(firing(e.expr, { [sel]: '0 0 0 0' }, 3 * MIN), [], e.name);
    }
  });
});

describe('npdExpr', () => {
  const expr = npdExpr('NpdKernelDeadlock', DEFAULT_NPD_MAPPING);

  it('reads the KernelDeadlock gauge whatever its reason, and TaskHung events within an hour', () => {
    assert.equal(
      expr,
      'max by (node) (problem_gauge{type="KernelDeadlock"} == 1) or ' +
        'max by (node) (increase(problem_counter{reason="TaskHung"}[1h]) > 0)',
    );
    // A site's own reason for the condition (NPD's kernel-monitor examples use AUFSUmountHung).
    const series = {
      'problem_gauge{node="a",type="KernelDeadlock",reason="AUFSUmountHung"}': '0 1x5',
      'problem_counter{node="b",reason="TaskHung"}': '0 0 1 1 1 1',
      'problem_counter{node="c",reason="OOMKilling"}': '0 0 3 3 3 3',
    };
    assert.deepEqual(firing(expr, series, 5 * MIN), ['a', 'b']);
  });

  it('forgets an event once it is an hour old', () => {
    const series = { 'problem_counter{node="b",reason="TaskHung"}': '0 1x90' };
    assert.deepEqual(firing(expr, series, 30 * MIN), ['b']);
    assert.deepEqual(firing(expr, series, 90 * MIN), []);
  });

  it('restricts to a reason when the mapping names one, and quotes odd strings', () => {
    const mapping: NpdMapping = {
      problems: [{ type: 'Gpu"Xid"\\Fatal', reason: 'Xid79', condition: 'X' }],
      events: [],
    };
    const x = npdExpr('X', mapping);
    assert.equal(
      x,
      'max by (node) (problem_gauge{type="Gpu\\"Xid\\"\\\\Fatal",reason="Xid79"} == 1)',
    );
    const series = {
      'problem_gauge{node="a",type="Gpu\\"Xid\\"\\\\Fatal",reason="Xid79"}': '1',
      'problem_gauge{node="b",type="Gpu\\"Xid\\"\\\\Fatal",reason="Xid48"}': '1',
    };
    assert.deepEqual(firing(x, series, 0), ['a']);
  });

  it('is empty for a condition nothing maps to', () => {
    assert.equal(npdExpr('GpuHung', DEFAULT_NPD_MAPPING), '');
  });
});

describe('applyNpdMapping (config nodeProblemDetector)', () => {
  it('keeps the catalogue as it is under the default mapping', () => {
    const out = applyNpdMapping(CATALOGUE, DEFAULT_NPD_MAPPING);
    assert.equal(out.length, CATALOGUE.length);
    out.forEach((e, i) => {
      assert.equal(e, CATALOGUE[i]);
    });
  });

  it("rebuilds the NPD conditions' PromQL from a site mapping and drops those nothing feeds", () => {
    const out = applyNpdMapping(CATALOGUE, {
      problems: [{ type: 'NodeHasPcieErrors', condition: 'NpdHardwareErrorFatal' }],
      events: [{ reason: 'Ext4Error', condition: 'NpdReadonlyFilesystem' }],
    });
    const npd = out.filter((e) => e.signal === 'node-problem-detector').map((e) => e.name);
    assert.deepEqual(npd, ['NpdReadonlyFilesystem', 'NpdHardwareErrorFatal']);
    assert.equal(
      out.find((e) => e.name === 'NpdHardwareErrorFatal')?.expr,
      'max by (node) (problem_gauge{type="NodeHasPcieErrors"} == 1)',
    );
    // Other signals are untouched.
    assert.equal(out.length, CATALOGUE.length - NPD_CONDITIONS.length + 2);
  });

  it('leaves a target of another signal to the Node conditions (its PromQL stays its own)', () => {
    const out = applyNpdMapping(CATALOGUE, {
      problems: [{ type: 'KernelDeadlock', condition: 'KernelDeadlock' }],
      events: [],
    });
    const own = CATALOGUE.find((e) => e.name === 'KernelDeadlock');
    assert.equal(
      out.find((e) => e.name === 'KernelDeadlock'),
      own,
    );
    assert.equal(
      out.some((e) => e.signal === 'node-problem-detector'),
      false,
    );
  });

  it('refuses a target the catalogue does not know, naming the config path', () => {
    assert.throws(
      () =>
        applyNpdMapping(CATALOGUE, {
          problems: DEFAULT_NPD_MAPPING.problems,
          events: [{ reason: 'OOMKilling', condition: 'OomKiled' }],
        }),
      (err: unknown) =>
        isHealError(err) &&
        err.code === ErrorCode.UnknownCondition &&
        err.message.includes('nodeProblemDetector.events[0].condition') &&
        err.message.includes('OomKiled'),
    );
  });
});
