/**
 * Bad input where values reach Jobs and queries (fast-check, seeded): Job parameters, node names,
 * Job template rendering, durations, diagnose Job output, PromQL. Shell and template injection is
 * always rejected; an accepted value is always a plain token; a template value can only ever be
 * one scalar; every parser either answers or throws its own HealError.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseDurationMs } from '../../src/core/duration.js';
import { ErrorCode, isHealError } from '../../src/core/errors.js';
import { NODE_NAME_PATTERN } from '../../src/core/types.js';
import { parseDiagnosis } from '../../src/engine/bridge.js';
import { assertNodeName, validateJobParams } from '../../src/jobs/params.js';
import { renderTemplate } from '../../src/jobs/render.js';
import { ALL_JOB_KINDS, type JobKind } from '../../src/k8s/cluster.js';
import { parsePromQL } from '../../src/promql/index.js';
import { anyText as text, INJECTIONS } from '../fixtures/safety/malformed.js';
import { useSafetyFigures } from './figures.js';

const figures = useSafetyFigures({ input: 1500 });
const RUNS = 300;

describe('Job parameters, node names and templates', () => {
  const SAFE = /^[A-Za-z0-9][A-Za-z0-9_./:-]*$/;
  const kind = fc.constantFrom(...ALL_JOB_KINDS);
  const key = fc.oneof(
    fc.constantFrom('ACTION', 'TYPE', 'ID', 'NODE', 'IMAGE', 'action'),
    fc.string({ maxLength: 10 }),
  );

  it('accepted params are plain tokens; everything else is INVALID_INPUT', () => {
    fc.assert(
      fc.property(kind, fc.dictionary(key, text, { maxKeys: 4 }), (k: JobKind, params) =>
        figures.probe('validateJobParams', params, {
          parse: () => validateJobParams(k, params),
          codes: [ErrorCode.InvalidInput],
          check: (out) => {
            for (const v of Object.values(out))
              assert.ok(v === '' || SAFE.test(v), `unsafe value accepted: ${JSON.stringify(v)}`);
          },
        }),
      ),
      { numRuns: RUNS * 2, seed: 606 },
    );
  });

  it('every shell or template injection is rejected in every param and as a node name', () => {
    for (const bad of INJECTIONS) {
      for (const [k, name] of [
        ['remedy_node', 'ACTION'],
        ['diagnose_node', 'TYPE'],
        ['diagnose_node', 'ID'],
      ] as const) {
        const params =
          k === 'diagnose_node' && name === 'ID' ? { TYPE: 'Xid79', ID: bad } : { [name]: bad };
        assert.throws(
          () => validateJobParams(k, params),
          (e) => isHealError(e, ErrorCode.InvalidInput) && e.message.includes(name),
          `${name}=${JSON.stringify(bad)}`,
        );
        figures.tried('input');
      }
      assert.throws(
        () => {
          assertNodeName(bad);
        },
        (e) => isHealError(e, ErrorCode.InvalidInput),
      );
      figures.tried('input');
    }
  });

  it('a node name is accepted only when it is an RFC 1123 name', () => {
    fc.assert(
      fc.property(fc.oneof(text, fc.domain()), (name) =>
        figures.probe('assertNodeName', name, {
          parse: () => {
            assertNodeName(name);
          },
          codes: [ErrorCode.InvalidInput],
          check: () => {
            assert.ok(NODE_NAME_PATTERN.test(name) && name.length <= 253);
          },
        }),
      ),
      { numRuns: RUNS, seed: 607 },
    );
  });

  it('a template value can only ever become one scalar, whatever it holds', () => {
    const template = readFileSync(
      new URL('../../deploy/jobs/remedy_node.yaml', import.meta.url),
      'utf8',
    );
    const base = {
      NODE: 'n1',
      NODE_LABEL: 'n1',
      NAME: 'remedy-n1-0',
      NAMESPACE: 'monitoring',
      DEADLINE: 600,
      IMAGE: 'img:1',
      ACTION: 'DropCache',
    };
    const shape = (v: unknown): string =>
      JSON.stringify(v, (_k, x: unknown) =>
        typeof x === 'string' || typeof x === 'number' ? 0 : x,
      );
    const reference = shape(renderTemplate(template, base, 'remedy_node.yaml'));
    fc.assert(
      fc.property(text, (evil) =>
        figures.probe('renderTemplate', evil, {
          parse: () =>
            renderTemplate(template, { ...base, NODE: evil, ACTION: evil }, 'remedy_node.yaml'),
          codes: [ErrorCode.ConfigInvalid],
          check: (out) => {
            assert.equal(shape(out), reference, 'same document shape');
          },
        }),
      ),
      { numRuns: RUNS, seed: 608 },
    );
  });
});

describe('small parsers: durations and Job diagnosis output', () => {
  it('a duration is a finite number of ms or INVALID_INPUT', () => {
    const dur = fc.oneof(
      text,
      fc
        .tuple(fc.nat(), fc.constantFrom('ms', 's', 'm', 'h', 'd', 'w', 'y', ''))
        .map(([n, u]) => `${n}${u}`),
      fc.constant(`${'9'.repeat(400)}d`),
    );
    fc.assert(
      fc.property(dur, (d) =>
        figures.probe('parseDurationMs', d, {
          parse: () => parseDurationMs(d),
          codes: [ErrorCode.InvalidInput],
          check: (ms) => {
            assert.ok(Number.isFinite(ms) && ms >= 0, `${d} -> ${ms}`);
          },
        }),
      ),
      { numRuns: RUNS, seed: 610 },
    );
  });

  it('diagnose Job logs of any shape give at most 10 records, never a throw', () => {
    const lines = fc.array(
      fc.oneof(
        text,
        fc
          .tuple(fc.constantFrom('hint:', 'cmd:', 'result:', 'hint', ''), text)
          .map(([a, b]) => `${a}${b}`),
      ),
      { maxLength: 60 },
    );
    fc.assert(
      fc.property(lines, (l) =>
        figures.probe('parseDiagnosis', l, {
          parse: () => parseDiagnosis(l),
          codes: [],
          check: (out) => {
            assert.ok(out.length <= 10);
          },
        }),
      ),
      { numRuns: RUNS, seed: 611 },
    );
  });
});

describe('PromQL parser', () => {
  const TOKENS = [
    'sum',
    'by',
    '(',
    ')',
    '{',
    '}',
    'node',
    '=',
    '=~',
    '!~',
    '"x"',
    'rate',
    '[5m]',
    '[1h:1m]',
    '+',
    '>',
    '1',
    'offset 5m',
    'and',
    'or',
    'unless',
    'on',
    'ignoring',
    'group_left',
    ',',
    'DCGM_FI_DEV_XID_ERRORS',
    '@ 100',
    'bool',
    'count_over_time',
    'absent',
    'topk',
    'label_replace',
    '-',
    '/',
    '^',
    'Inf',
    'NaN',
    '0x1f',
    '1e308',
    "'s'",
    '`r`',
    'changes',
    'up',
  ];
  it('any text parses to an expression or fails with INVALID_INPUT / PROMQL_UNSUPPORTED', () => {
    const soup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 20 }).map((t) => t.join(' '));
    fc.assert(
      fc.property(fc.oneof(text, soup), (q) =>
        figures.probe('parsePromQL', q, {
          parse: () => parsePromQL(q),
          codes: [ErrorCode.InvalidInput, ErrorCode.PromQLUnsupported],
        }),
      ),
      { numRuns: RUNS * 2, seed: 609 },
    );
  });

  it('deeply nested expressions fail cleanly', () => {
    for (const q of [
      `${'('.repeat(5_000)}1${')'.repeat(5_000)}`,
      `${'-'.repeat(20_000)}1`,
      `sum(${'abs('.repeat(3_000)}up${')'.repeat(3_000)})`,
    ]) {
      assert.ok(
        figures.probe('parsePromQL', q.slice(0, 40), {
          parse: () => parsePromQL(q),
          codes: [ErrorCode.InvalidInput, ErrorCode.PromQLUnsupported],
        }),
      );
    }
  });
});
