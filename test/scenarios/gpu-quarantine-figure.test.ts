/**
 * The scenario suite's figure for GPU-level quarantine: the same Llama-3-rate fault timeline
 * (`aegis sim generate --nodes 64 --days 28 --seed 17`) run with whole-node cordons (quarantine
 * off, the default) and with `quarantine.enabled`, and the GPU-hours out of scheduling each
 * report prints ("GPU-hours out of scheduling" in the summary). docs/remediation.md quotes it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateScenario } from '../../src/scenario/generator.js';
import { parseScenario } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/runner.js';
import type { Scenario } from '../../src/scenario/schema.js';

const GENERATED = { nodes: 64, days: 28, seed: 17 } as const;

function withQuarantine(s: Scenario, enabled: boolean): Scenario {
  return { ...s, config: { ...s.config, quarantine: { ...s.config.quarantine, enabled } } };
}

describe('GPU-hours saved by GPU-level quarantine (Llama 3 rates)', () => {
  it(`${GENERATED.nodes} nodes × ${GENERATED.days} days, seed ${GENERATED.seed}`, async (t) => {
    const base = parseScenario(generateScenario(GENERATED), 'generated');
    const cordon = await runScenario(withQuarantine(base, false));
    const quarantine = await runScenario(withQuarantine(base, true));
    for (const r of [cordon, quarantine]) {
      assert.deepEqual(
        r.expectations.filter((e) => !e.passed).map((e) => e.description),
        [],
      );
    }
    const a = cordon.summary.gpuHoursOut;
    const b = quarantine.summary.gpuHoursOut;
    const line =
      `${base.timeline.length} faults: whole-node cordons ${a.total.toFixed(0)} GPU-hours out of ` +
      `scheduling; GPU-level quarantine ${b.total.toFixed(0)} (${b.wholeNode.toFixed(0)} whole-node, ` +
      `${b.quarantined.toFixed(0)} single GPUs): ${(a.total - b.total).toFixed(0)} GPU-hours saved ` +
      `(${((100 * (a.total - b.total)) / a.total).toFixed(0)} %)`;
    t.diagnostic(line);
    assert.equal(a.quarantined, 0, 'no quarantine without quarantine.enabled');
    assert.ok(b.quarantined > 0, 'some faults were isolated to one GPU');
    assert.ok(b.total < a.total, line);
  });
});
