/**
 * Every scenario in scenarios/ is a test: run it through the real engine on the simulated fleet
 * and require every expectation it states. Also checks the shape of the JSON report that
 * `aegis sim --json` prints.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario, type ScenarioReport } from '../../src/scenario/runner.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SCENARIOS = readdirSync(join(ROOT, 'scenarios'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();

/**
 * Scenarios whose expectations state the right behaviour but fail because of an engine bug
 * (reported; the test runs and shows as TODO until the engine is fixed).
 */
const KNOWN_ENGINE_BUGS: Readonly<Record<string, string>> = {};

function assertReportShape(r: ScenarioReport): void {
  const json = JSON.parse(JSON.stringify(r)) as Record<string, unknown>;
  assert.ok(Array.isArray(json['nodes']));
  for (const n of json['nodes'] as Record<string, unknown>[]) {
    assert.equal(typeof n['name'], 'string');
    assert.equal(typeof n['schedulable'], 'boolean');
    assert.ok(n['ticket'] === null || typeof n['ticket'] === 'object');
  }
  assert.equal((json['nodes'] as unknown[]).length, r.scenario.nodes);
  let last = '';
  for (const a of json['actions'] as Record<string, unknown>[]) {
    for (const k of ['time', 'node', 'action', 'status']) assert.equal(typeof a[k], 'string', k);
    assert.ok((a['time'] as string) >= last, 'actions are in time order');
    last = a['time'] as string;
  }
  const metrics = json['metrics'] as Record<string, unknown>;
  assert.equal(typeof metrics['aegis_ticket_open_total'], 'number');
  assert.ok(Object.keys(metrics).every((k) => k.startsWith('aegis_')));
  for (const e of json['expectations'] as Record<string, unknown>[]) {
    assert.equal(typeof e['passed'], 'boolean');
    assert.equal(typeof e['description'], 'string');
  }
}

describe('scenarios/*.yaml pass their own expectations', () => {
  it('there are at least 9 scenarios, demo included', () => {
    assert.ok(SCENARIOS.length >= 9);
    assert.ok(SCENARIOS.includes('demo.yaml'));
  });

  for (const file of SCENARIOS) {
    const bug = KNOWN_ENGINE_BUGS[file];
    it(file, bug === undefined ? {} : { todo: bug }, async () => {
      const scenario = await loadScenarioFile(join(ROOT, 'scenarios', file));
      assert.ok(scenario.expect.length > 0, 'a scenario states expectations');
      const report = await runScenario(scenario);
      assertReportShape(report);
      const failed = report.expectations
        .filter((e) => !e.passed)
        .map((e) => `line ${e.line}: ${e.description} — ${e.detail}`);
      assert.deepEqual(failed, []);
      assert.equal(report.run.unfinishedSteps, 0);
    });
  }

  it('test/fixtures/scenarios/xid79-twice.yaml: a second incident on a node runs new Jobs', async () => {
    const report = await runScenario(
      await loadScenarioFile(join(ROOT, 'test', 'fixtures', 'scenarios', 'xid79-twice.yaml')),
    );
    assert.deepEqual(
      report.expectations.filter((e) => !e.passed).map((e) => e.description),
      [],
    );
  });
});
