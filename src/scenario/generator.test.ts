import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { findCondition } from '../catalogue/index.js';
import {
  expectedFaults,
  FAULTS_PER_GPU_HOUR,
  generateScenario,
  LLAMA3,
  LLAMA3_CAUSES,
} from './generator.js';
import { parseScenario } from './load.js';

describe('scenario generator (Llama 3 rates)', () => {
  it('derives the rate from the published numbers', () => {
    assert.equal(FAULTS_PER_GPU_HOUR, 419 / (54 * 24 * 16_384));
    assert.equal(
      LLAMA3_CAUSES.reduce((a, c) => a + c.count, 0),
      LLAMA3.unexpectedInterruptions,
    );
    assert.ok(
      Math.abs(expectedFaults(2048, 54) - 419) < 1e-9,
      'the Llama 3 fleet over 54 days expects 419',
    );
  });

  it('maps every cause to catalogue conditions', () => {
    for (const cause of LLAMA3_CAUSES) {
      for (const d of cause.draws)
        assert.ok(
          findCondition(d.condition)?.name === d.condition,
          `${cause.cause}: ${d.condition}`,
        );
    }
  });

  it('writes scenarios that load (round trip), the same for the same seed', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3000 }),
        fc.double({ min: 0.05, max: 5, noNaN: true }),
        fc.integer({ min: 1, max: 1e6 }),
        (nodes, days, seed) => {
          const text = generateScenario({ nodes, days, seed });
          assert.equal(generateScenario({ nodes, days, seed }), text);
          const s = parseScenario(text, 'generated.yaml');
          assert.equal(s.fleet.nodes, nodes);
          assert.equal(s.timeline.length, (text.match(/event: fault/g) ?? []).length);
          for (const e of s.timeline) assert.ok(e.atMs > 0 && e.atMs <= s.durationMs);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('draws about as many faults as the rate predicts', () => {
    // The Llama 3 run itself: 16,384 GPUs for 54 days → 419 expected (Poisson, sd ≈ 20.5).
    const drawn = [1, 2, 3].map(
      (seed) =>
        parseScenario(generateScenario({ nodes: 2048, days: 54, seed }), 'g.yaml').timeline.length,
    );
    for (const n of drawn) assert.ok(Math.abs(n - 419) < 4 * Math.sqrt(419), `drew ${n}`);
  });
});
