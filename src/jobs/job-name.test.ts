import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isValidNodeName } from '../core/types.js';
import { ALL_JOB_KINDS, JobKind } from '../k8s/cluster.js';
import { jobName, toLabelValue } from './job-name.js';
import { JOB_NAME_PATTERN } from './params.js';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const nodeName = fc
  .stringMatching(/^[a-z0-9]([-a-z0-9.]{0,250}[a-z0-9])?$/)
  .filter((n) => isValidNodeName(n));

describe('jobName', () => {
  it('is readable when it fits', () => {
    assert.equal(jobName(JobKind.Restart, 'gpu-001', 3), 'reboot-gpu-001-3');
    assert.equal(jobName(JobKind.Healthcheck, 'gpu-001', 'a1'), 'healthcheck-gpu-001-a1');
  });

  it('hashes when the node name needs rewriting, so dotted and dashed names differ', () => {
    const dotted = jobName(JobKind.Remedy, 'gpu.rack1', 1);
    const dashed = jobName(JobKind.Remedy, 'gpu-rack1', 1);
    assert.notEqual(dotted, dashed);
    assert.match(dotted, /^remedy-gpu-rack1-1-[0-9a-f]{10}$/);
  });

  it('is a deterministic DNS-1123 label of at most 63 characters (fuzz)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ALL_JOB_KINDS),
        nodeName,
        fc.oneof(fc.nat(), fc.string({ maxLength: 40 })),
        (kind, node, seq) => {
          const name = jobName(kind, node, seq);
          assert.match(name, JOB_NAME_PATTERN);
          assert.ok(name.length <= 63);
          assert.equal(jobName(kind, node, seq), name);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('gives distinct names to distinct inputs (fuzz)', () => {
    fc.assert(
      fc.property(nodeName, nodeName, fc.nat(), (a, b, seq) => {
        fc.pre(a !== b);
        assert.notEqual(jobName(JobKind.Restart, a, seq), jobName(JobKind.Restart, b, seq));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('toLabelValue', () => {
  it('is valid and at most 63 characters for any node name (fuzz)', () => {
    fc.assert(
      fc.property(nodeName, (node) => {
        const v = toLabelValue(node);
        assert.ok(v.length <= 63);
        assert.match(v, LABEL_VALUE);
        if (node.length <= 63) assert.equal(v, node);
      }),
    );
  });
});
