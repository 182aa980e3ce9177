/**
 * The generated Prometheus rules: the committed copies in deploy/prometheus/ equal the generator's
 * output, `promtool check rules` accepts them, and `promtool test rules` runs the unit tests of
 * test/prometheus/rules-tests.yaml (recording outputs and alerts, per domain, in virtual time).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parser } from '@prometheus-io/lezer-promql';
import { parse } from 'yaml';
import { CATALOGUE } from '../../src/catalogue/index.js';
import { runCli } from '../../src/cli/main.js';
import { ALL_DOMAINS } from '../../src/core/types.js';
import {
  generateRules,
  RECORDED_METRIC,
  RULE_FILES,
  severityOf,
  sourceExpr,
  typeLabelOf,
} from '../../src/prom/rules.js';
import { runPromtool } from '../helpers/prometheus-harness.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEPLOY = join(ROOT, 'deploy', 'prometheus');
const generated = generateRules(CATALOGUE);

interface RuleFile {
  groups: { name: string; rules: Record<string, unknown>[] }[];
}

const recording = parse(generated.recording) as RuleFile;
const alerting = parse(generated.alerting) as RuleFile;

/** True when the Prometheus grammar finds no error node in `expr`. */
function parses(expr: string): boolean {
  let ok = true;
  parser.parse(expr).iterate({
    enter: (n) => {
      if (n.type.isError) ok = false;
    },
  });
  return ok;
}

describe('generated rules', () => {
  it('deploy/prometheus/ holds exactly the generator output (run `aegis rules --out deploy/prometheus`)', async () => {
    assert.equal(await readFile(join(DEPLOY, RULE_FILES.recording), 'utf8'), generated.recording);
    assert.equal(await readFile(join(DEPLOY, RULE_FILES.alerting), 'utf8'), generated.alerting);
  });

  it('has one recording and one alerting rule per entry with PromQL, grouped by domain', () => {
    const withPromql = CATALOGUE.filter((e) => sourceExpr(e) !== '');
    assert.deepEqual(generated.skipped, []);
    const recorded = recording.groups.flatMap((g) => g.rules);
    const alerts = alerting.groups.flatMap((g) => g.rules);
    assert.equal(recorded.length, withPromql.length);
    assert.equal(alerts.length, withPromql.length);
    for (const e of withPromql) {
      const group = `aegis-recording-${typeLabelOf(e.domain)}`;
      const rule = recording.groups
        .find((g) => g.name === group)
        ?.rules.find((r) => (r['labels'] as Record<string, string>)['condition'] === e.name);
      assert.ok(rule !== undefined, `${e.name}: no recording rule in ${group}`);
      assert.equal(rule['record'], RECORDED_METRIC);
      assert.equal((rule['labels'] as Record<string, string>)['type'], typeLabelOf(e.domain));
      const alert = alerts.find((r) => r['alert'] === `AegisCondition${e.name}`);
      assert.ok(alert !== undefined, `${e.name}: no alert`);
      assert.equal((alert['labels'] as Record<string, string>)['severity'], severityOf(e.priority));
    }
    for (const g of recording.groups) {
      assert.ok(
        ALL_DOMAINS.some((d) => g.name === `aegis-recording-${typeLabelOf(d)}`),
        g.name,
      );
    }
  });

  it('every expression parses with the Prometheus grammar', () => {
    const bad = [...recording.groups, ...alerting.groups]
      .flatMap((g) => g.rules)
      .filter((r) => !parses(String(r['expr'])))
      .map((r) => JSON.stringify(r['alert'] ?? r['labels']));
    assert.deepEqual(bad, []);
  });

  const severities: [number, string][] = [
    [0, 'critical'],
    [1, 'info'],
    [2, 'critical'],
    [99, 'critical'],
    [100, 'warning'],
    [999, 'warning'],
    [1000, 'info'],
  ];
  for (const [priority, severity] of severities) {
    it(`priority ${String(priority)} alerts with severity ${severity}`, () => {
      assert.equal(severityOf(priority), severity);
    });
  }

  it('`aegis rules --out DIR` writes the same two files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aegis-rules-'));
    try {
      let out = '';
      const code = await runCli(['node', 'aegis', 'rules', '--out', dir], {
        writeOut: (t) => (out += t),
        writeErr: (t) => (out += t),
      });
      assert.equal(code, 0, out);
      assert.equal(await readFile(join(dir, RULE_FILES.recording), 'utf8'), generated.recording);
      assert.equal(await readFile(join(dir, RULE_FILES.alerting), 'utf8'), generated.alerting);
      const bad = await runCli(['node', 'aegis', 'rules', '--out', dir, '--interval', 'soon'], {
        writeOut: () => undefined,
        writeErr: () => undefined,
      });
      assert.equal(bad, 2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('promtool', () => {
  it('`promtool check rules` accepts both files', async () => {
    const r = await runPromtool([
      'check',
      'rules',
      join(DEPLOY, RULE_FILES.recording),
      join(DEPLOY, RULE_FILES.alerting),
    ]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /SUCCESS: \d+ rules found/);
  });

  it('`promtool check rules` accepts files with a group interval', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aegis-rules-'));
    try {
      const code = await runCli(['node', 'aegis', 'rules', '--out', dir, '--interval', '30s'], {
        writeOut: () => undefined,
        writeErr: () => undefined,
      });
      assert.equal(code, 0);
      const r = await runPromtool([
        'check',
        'rules',
        join(dir, RULE_FILES.recording),
        join(dir, RULE_FILES.alerting),
      ]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('`promtool test rules test/prometheus/rules-tests.yaml` passes', async () => {
    const r = await runPromtool(
      ['test', 'rules', 'rules-tests.yaml'],
      join(ROOT, 'test', 'prometheus'),
    );
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  });
});
