/**
 * Bad input at the parsers of files and annotations (fast-check, seeded): ticket codec, config
 * loader (file, environment, flags), priority table, scenario loader. Each input is either
 * accepted (and then sane) or rejected with the parser's own HealError code naming where;
 * anything else thrown is a crash. Job parameters and PromQL: bad-input.jobs.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { defaultConfig } from '../../src/config/schema.js';
import { ErrorCode } from '../../src/core/errors.js';
import { parsePriorityTable } from '../../src/priority/priority-table.js';
import { parseScenario } from '../../src/scenario/load.js';
import { newTicket, parseTicket, serializeTicket } from '../../src/ticket/ticket.js';
import { anyText, mutated } from '../fixtures/safety/malformed.js';
import { useSafetyFigures } from './figures.js';

const figures = useSafetyFigures({ input: 1500 });
const RUNS = 300;
const dir = mkdtempSync(join(tmpdir(), 'aegis-bad-input-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const VALID_TICKET = serializeTicket({
  ...newTicket({ condition: 'GpuHung', reason: 'r', nowMs: Date.UTC(2026, 0, 1) }),
  workflows: [{ action: 'Reboot', status: 'Succeeded', seq: 0, time: '2026-01-01T00:00:00.000Z' }],
  nextSeq: 1,
});
const VALID_SCENARIO = readFileSync(
  new URL('../../scenarios/xid79-reboot-fixes.yaml', import.meta.url),
  'utf8',
);
/** YAML text of any value (`yaml` renders `undefined` as nothing at all, whatever its type says). */
const render: (v: unknown) => string | undefined = stringify;
const toYaml = (v: unknown): string => render(v) ?? '';
const yamlOf = (base: unknown): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: mutated(base).map(toYaml) },
    { weight: 1, arbitrary: fc.anything().map(toYaml) },
    { weight: 1, arbitrary: anyText },
  );

describe('ticket codec', () => {
  it('hand-edited annotations: a ticket or TICKET_CORRUPT, and what parses serialises back', () => {
    fc.assert(
      fc.property(yamlOf(parse(VALID_TICKET)), (raw) =>
        figures.probe('parseTicket', raw, {
          parse: () => parseTicket(raw, 'gpu-node-0001'),
          codes: [ErrorCode.TicketCorrupt],
          check: (t) => {
            const again = serializeTicket(t);
            assert.deepEqual(
              parseTicket(again, 'gpu-node-0001').workflows.length <= t.workflows.length,
              true,
            );
          },
        }),
      ),
      { numRuns: RUNS * 2, seed: 601 },
    );
  });

  it('pathological YAML (deep nesting, alias bombs, enormous values) is TICKET_CORRUPT, not a crash', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x]',
      ...Array.from(
        { length: 9 },
        (_, i) =>
          `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`,
      ),
    ].join('\n');
    const cases = [
      '['.repeat(20_000),
      `condition: ${'{'.repeat(5_000)}`,
      bomb,
      `condition: x\nreason: ${'y'.repeat(400_000)}\nstatus: created\ncreationTime: 2026-01-01T00:00:00Z`,
      '\u0000\uffff',
      'condition: !!js/function "() => 1"',
    ];
    for (const raw of cases)
      assert.ok(
        figures.probe('parseTicket', raw.slice(0, 60), {
          parse: () => parseTicket(raw, 'n'),
          codes: [ErrorCode.TicketCorrupt],
        }),
      );
  });
});

/** Every duration of an accepted config is finite and not negative; intervals and deadlines are positive. */
function assertSaneConfig(c: ReturnType<typeof loadConfig>): void {
  assert.ok(c.safety.maxCordonedFraction >= 0 && c.safety.maxCordonedFraction <= 1);
  assert.ok(c.safety.maxConcurrent.total >= 1);
  const walk = (v: unknown, path: string): void => {
    if (v === null || typeof v !== 'object') {
      if (!path.endsWith('Ms')) return;
      assert.ok(
        typeof v === 'number' && Number.isFinite(v) && v >= 0,
        `${path} = ${String(v)} accepted`,
      );
      if (/(interval|timeout)Ms$/.test(path)) assert.ok(v > 0, `${path} = 0 accepted`);
      return;
    }
    for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
  };
  walk(c, 'config');
}

describe('config loader', () => {
  it('any YAML file gives a Config or CONFIG_INVALID naming the file', () => {
    const file = join(dir, 'aegis.yaml');
    fc.assert(
      fc.property(yamlOf(defaultConfig()), (yaml) => {
        writeFileSync(file, yaml);
        return figures.probe('loadConfig', yaml, {
          parse: () => loadConfig({ file }),
          codes: [ErrorCode.ConfigInvalid],
          check: assertSaneConfig,
        });
      }),
      { numRuns: RUNS, seed: 602 },
    );
  });

  it('environment and flag overrides: a Config or CONFIG_INVALID', () => {
    const paths = fc.constantFrom(
      'safety.dryRun',
      'safety.maxPerRack',
      'inspect.intervalMs',
      'safety.maxConcurrent.reboot',
      'x.y',
      'constructor.prototype.x',
      'safety',
    );
    fc.assert(
      fc.property(fc.dictionary(paths, fc.jsonValue()), fc.option(anyText), (overrides, dry) =>
        figures.probe('loadConfig', overrides, {
          parse: () =>
            loadConfig({
              overrides,
              env: { AEGIS_DRY_RUN: dry ?? undefined, AEGIS_PROMETHEUS_URL: dry ?? undefined },
            }),
          codes: [ErrorCode.ConfigInvalid],
        }),
      ),
      { numRuns: RUNS, seed: 603 },
    );
  });

  it('a duration that is negative, infinite or zero where time must pass is CONFIG_INVALID', () => {
    const cases: readonly [string, unknown][] = [
      ['safety.nodeCooldownMs', -1],
      ['safety.stormCooldownMs', -60_000],
      ['safety.repeatOffenderWindowMs', -1],
      ['inspect.intervalMs', 0],
      ['prometheus.timeoutMs', 0],
      ['inspect.intervalMs', `${'9'.repeat(400)}s`],
    ];
    const accepted = cases.filter(
      ([path, value]) =>
        !figures.probe(
          'loadConfig',
          { [path]: value },
          {
            parse: () => loadConfig({ overrides: { [path]: value } }),
            codes: [ErrorCode.ConfigInvalid],
            check: assertSaneConfig,
          },
        ),
    );
    assert.deepEqual(
      accepted.map(([p, v]) => `${p}=${String(v).slice(0, 12)}`),
      [],
      'all rejected',
    );
  });

  it('an override path or a YAML key "__proto__" is rejected without polluting Object.prototype', () => {
    const file = join(dir, 'proto.yaml');
    writeFileSync(
      file,
      '__proto__:\n  pollutedByFile: 1\nsafety:\n  __proto__:\n    pollutedByFile: 1\n',
    );
    const proto = Object.prototype as Record<string, unknown>;
    try {
      assert.ok(
        figures.probe('loadConfig', file, {
          parse: () => loadConfig({ file }),
          codes: [ErrorCode.ConfigInvalid],
        }),
      );
      assert.ok(
        figures.probe('loadConfig', '__proto__.polluted', {
          parse: () => loadConfig({ overrides: { '__proto__.polluted': 'yes' } }),
          codes: [ErrorCode.ConfigInvalid],
        }),
      );
      const polluted = ['polluted', 'pollutedByFile'].filter((k) => k in {});
      if (polluted.length > 0)
        figures.violation(`loadConfig polluted Object.prototype with ${polluted.join(', ')}`);
      assert.deepEqual(polluted, [], 'Object.prototype untouched');
    } finally {
      delete proto['polluted'];
      delete proto['pollutedByFile'];
    }
  });
});

describe('priority table', () => {
  it('any text gives a table or PRIORITY_INVALID listing every bad line', () => {
    const line = fc.oneof(
      anyText,
      fc
        .tuple(
          fc.constantFrom('GpuHung', 'Xid79GPULost', 'Nope', ''),
          fc.oneof(fc.integer().map(String), anyText),
        )
        .map(([a, b]) => `${a}:${b}`),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 30 }), (lines) =>
        figures.probe('parsePriorityTable', lines, {
          parse: () => parsePriorityTable(lines.join('\n'), { source: 'priority.conf' }),
          codes: [ErrorCode.PriorityInvalid],
        }),
      ),
      { numRuns: RUNS, seed: 604 },
    );
  });
});

describe('scenario loader', () => {
  it('any scenario text gives a Scenario or SCENARIO_INVALID / UNKNOWN_CONDITION with file:line', () => {
    fc.assert(
      fc.property(yamlOf(parse(VALID_SCENARIO)), (yaml) =>
        figures.probe('parseScenario', yaml, {
          parse: () => parseScenario(yaml, 'fuzz.yaml'),
          codes: [ErrorCode.ScenarioInvalid, ErrorCode.UnknownCondition],
        }),
      ),
      { numRuns: RUNS, seed: 605 },
    );
  });
});
