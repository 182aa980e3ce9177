/**
 * Tiered recording rules (`aegis rules --tiered`) for the inspector's recorded mode: each rule in
 * a group evaluated at the period the daemon would ask it at, followed by its heartbeat. The
 * untiered output (the committed deploy/prometheus/ files) is unchanged: the Prometheus tier's
 * test/prometheus/rules.test.ts checks it and runs promtool on both.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { CATALOGUE } from '../catalogue/index.js';
import type { CatalogueEntry } from '../catalogue/types.js';
import { HEARTBEAT_METRIC, ruleHash, rulePeriodMs } from '../engine/inspector.js';
import {
  generateRules,
  RECORDED_METRIC,
  sourceExpr,
  TIERED_INTERVAL_MS,
  sharedInRecordedMode,
  tieredPeriodMs,
  typeLabelOf,
} from './rules.js';

interface Rule {
  record: string;
  expr: string;
  labels: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; interval?: string; rules: Rule[] }[];
}

const SEC = 1000;
const entry = (name: string): CatalogueEntry => {
  const e = CATALOGUE.find((c) => c.name === name);
  assert.ok(e !== undefined, name);
  return e;
};
const withPromql = CATALOGUE.filter((e) => sourceExpr(e) !== '');
const generated = generateRules(CATALOGUE, { intervalMs: SEC, tiered: {} });
const tiered = parse(generated.recording) as RuleFile;
/** Rules the daemon answers from its shared XID query: no recording, no alert. */
const shared = sharedInRecordedMode(CATALOGUE, { intervalMs: SEC, tiered: {} });
const recorded = withPromql.filter((e) => !shared.has(e.name));

/** The group holding `name`'s recording rule. */
function groupOf(file: RuleFile, name: string): RuleFile['groups'][number] {
  const g = file.groups.find((x) =>
    x.rules.some((r) => r.record === RECORDED_METRIC && r.labels['condition'] === name),
  );
  assert.ok(g !== undefined, name);
  return g;
}

describe('tiered recording rules', () => {
  it('puts each rule in a group of its domain evaluated at the period the daemon would ask it at', () => {
    assert.equal(groupOf(tiered, 'GpuRowRemappingFailure').interval, '1s'); // every cycle
    assert.equal(groupOf(tiered, 'GpuHung').interval, '6s'); // for: 1m
    assert.equal(groupOf(tiered, 'OomKillDetected').interval, '5s'); // [10m]
    assert.equal(groupOf(tiered, 'IBSymbolError').interval, '30s'); // [24h]
    assert.equal(groupOf(tiered, 'BaseBoardCriticalIssue').interval, '30s'); // for: 3h
    for (const e of recorded) {
      const g = groupOf(tiered, e.name);
      const period = Math.max(SEC, rulePeriodMs(e, 30 * SEC));
      assert.equal(g.interval, `${String(Math.ceil(period / SEC))}s`, e.name);
      assert.equal(g.name, `aegis-recording-${typeLabelOf(e.domain)}-${g.interval ?? ''}`);
    }
    assert.equal(new Set(tiered.groups.map((g) => g.name)).size, tiered.groups.length);
  });

  it('follows every recording rule with its heartbeat: condition, interval, hash of the PromQL', () => {
    const rules = tiered.groups.flatMap((g) => g.rules.map((r) => ({ g, r })));
    assert.equal(rules.length, 2 * recorded.length);
    for (const e of recorded) {
      const g = groupOf(tiered, e.name);
      const i = g.rules.findIndex(
        (r) => r.record === RECORDED_METRIC && r.labels['condition'] === e.name,
      );
      const beat = g.rules[i + 1];
      assert.ok(beat !== undefined, e.name);
      assert.equal(beat.record, HEARTBEAT_METRIC);
      assert.equal(beat.expr, 'vector(1)');
      assert.deepEqual(beat.labels, {
        condition: e.name,
        interval: g.interval,
        expr_hash: ruleHash(e.expr === '' ? sourceExpr(e) : e.expr),
      });
    }
  });

  it('spreads the costly rules: fewer than a third of the rules are evaluated every second', () => {
    const everySecond = tiered.groups
      .filter((g) => g.interval === '1s')
      .flatMap((g) => g.rules.filter((r) => r.record === RECORDED_METRIC));
    assert.ok(everySecond.length > 0);
    assert.ok(everySecond.length < recorded.length / 3, String(everySecond.length));
    // No rule over a range of ten minutes or more is among them.
    for (const r of everySecond) {
      assert.doesNotMatch(r.expr, /\[(\d+[hdw]|[1-9]\d+m)/, r.labels['condition']);
    }
  });

  it('never goes below the interval, rounds to whole seconds, and caps at the given period', () => {
    assert.equal(tieredPeriodMs(entry('GpuRowRemappingFailure'), 2500), 3000);
    assert.equal(tieredPeriodMs(entry('IBSymbolError'), SEC, 60 * SEC), 60 * SEC);
    assert.equal(tieredPeriodMs(entry('IBSymbolError'), SEC, 0), SEC, 'cap 0: every interval');
    const defaults = parse(generateRules(CATALOGUE, { tiered: {} }).recording) as RuleFile;
    assert.equal(
      groupOf(defaults, 'GpuRowRemappingFailure').interval,
      `${String(TIERED_INTERVAL_MS / SEC)}s`,
    );
  });

  it('leaves out the rules the daemon answers from one shared query (the XIDs), said as skipped', () => {
    assert.equal(shared.size, 12);
    assert.ok(shared.has('Xid79GPULost'));
    for (const name of shared.keys()) {
      assert.equal(
        tiered.groups.some((g) => g.rules.some((r) => r.labels['condition'] === name)),
        false,
        name,
      );
      assert.doesNotMatch(generated.alerting, new RegExp(`AegisCondition${name}\\b`));
      assert.match(
        generated.skipped.find((s) => s.name === name)?.reason ?? '',
        /shared query \(DCGM_FI_DEV_XID_ERRORS != 0\)/,
      );
    }
    // A slower interval leaves the XID rules every-cycle, so still shared.
    assert.equal(sharedInRecordedMode(CATALOGUE, { intervalMs: 5 * SEC, tiered: {} }).size, 12);
  });

  it('leaves the untiered files as they were: domain groups, no heartbeat', () => {
    const flat = parse(generateRules(CATALOGUE).recording) as RuleFile;
    const records = flat.groups.flatMap((g) => g.rules.map((r) => r.record));
    assert.equal(records.length, withPromql.length);
    assert.deepEqual([...new Set(records)], [RECORDED_METRIC]);
    for (const g of flat.groups) assert.match(g.name, /^aegis-recording-[a-z]+$/);
  });
});
