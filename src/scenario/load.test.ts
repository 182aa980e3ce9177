import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ErrorCode, isHealError } from '../core/errors.js';
import { parseScenario } from './load.js';
import { fleetNodeNames, workerName } from './refs.js';
import { createFleet } from '../sim/fleet.js';

const VALID = `name: ok
fleet:
  nodes: 8
duration: 1h
timeline:
  - at: 5m
    event: fault
    node: 3
    condition: Xid79GPULost
    device: 3
expect:
  - node: 3
    schedulable: true
`;

/** The scenario with `patch` replacing the timeline event (lines 6-10). */
const withEvent = (event: string): string => VALID.replace(/ {2}- at: 5m\n(?: {4}.*\n)+/, event);

/** [case, YAML, code, expected message (first line)] */
const MALFORMED: readonly [string, string, ErrorCode, RegExp][] = [
  [
    'unknown condition, with a suggestion',
    withEvent('  - at: 5m\n    event: fault\n    node: 3\n    condition: GpuHungg\n'),
    ErrorCode.UnknownCondition,
    /^x\.yaml:9: timeline\[0\]\.condition: unknown condition "GpuHungg" \(did you mean GpuHung\?\)$/,
  ],
  [
    'bad time (no unit)',
    withEvent('  - at: 10\n    event: fault\n    node: 3\n    condition: GpuHung\n'),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:6: timeline\[0\]\.at: bad time 10: give a unit/,
  ],
  [
    'bad time (not a duration)',
    withEvent('  - at: 5 minutes\n    event: fault\n    node: 3\n    condition: GpuHung\n'),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:6: timeline\[0\]\.at: bad time "5 minutes"/,
  ],
  [
    'time after the end of the run',
    withEvent('  - at: 2h\n    event: fault\n    node: 3\n    condition: GpuHung\n'),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:6: timeline\[0\]\.at: bad time: 2h is after the end of the run \(duration 1h\)$/,
  ],
  [
    'unknown node number',
    withEvent('  - at: 5m\n    event: fault\n    node: 9\n    condition: GpuHung\n'),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:8: timeline\[0\]\.node: unknown node 9: the fleet has 8 workers/,
  ],
  [
    'unknown node name',
    withEvent('  - at: 5m\n    event: cordon\n    node: gpu-node-0042\n'),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:8: timeline\[0\]\.node: unknown node "gpu-node-0042"/,
  ],
  [
    'unknown field in an event',
    withEvent('  - at: 5m\n    event: cordon\n    node: 2\n    colour: red\n'),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:9: timeline\[0\]\.colour: unknown field "colour" \(allowed: at, event, note, node, nodes\)$/,
  ],
  [
    'unknown top-level field',
    VALID.replace('duration: 1h', 'duration: 1h\nspeed: fast'),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:5: speed: unknown field "speed"/,
  ],
  [
    'device not on the node',
    withEvent(
      '  - at: 5m\n    event: fault\n    node: 3\n    condition: Xid79GPULost\n    device: 8\n',
    ),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:10: timeline\[0\]\.device: gpu-node-0003 has GPUs 0-7; there is no GPU "8"$/,
  ],
  [
    'device for a node-wide condition',
    withEvent(
      '  - at: 5m\n    event: fault\n    node: 3\n    condition: KernelPanic\n    device: 1\n',
    ),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:10: timeline\[0\]\.device: KernelPanic is node-wide: it takes no device$/,
  ],
  [
    'unknown HCA',
    withEvent(
      '  - at: 5m\n    event: fault\n    node: 3\n    condition: IBLinkAbnormal\n    device: mlx5_12\n',
    ),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:10: timeline\[0\]\.device: gpu-node-0003 has no IB device "mlx5_12"/,
  ],
  [
    'unknown event',
    withEvent('  - at: 5m\n    event: reboot\n    node: 3\n'),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:7: timeline\[0\]\.event: unknown event "reboot" \(one of: fault, recover/,
  ],
  [
    'transient fault without a duration',
    withEvent(
      '  - at: 5m\n    event: fault\n    node: 3\n    condition: GpuHung\n    persistence: transient\n',
    ),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:10: timeline\[0\]\.persistence: a transient fault needs "for"/,
  ],
  [
    'unknown action in an expectation',
    VALID.replace('  - node: 3\n    schedulable: true\n', '  - never: Rebot\n'),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:12: expect\[0\]\.never: unknown action "Rebot" \(did you mean Reboot\?\)$/,
  ],
  [
    'unknown config key, with a suggestion',
    VALID.replace('duration: 1h', 'duration: 1h\nconfig:\n  safety:\n    maxPerRak: 2'),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:7: config\.safety\.maxPerRak: unknown field "maxPerRak" \(did you mean maxPerRack\?\)$/,
  ],
  [
    'a field of the wrong type',
    VALID.replace('nodes: 8', 'nodes: many'),
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:3: fleet\.nodes: Invalid input/,
  ],
  [
    'bad YAML',
    'fleet:\n  nodes: [8\nduration: 1h\n',
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:3: bad YAML: /,
  ],
  [
    'not a mapping',
    '- just\n- a list\n',
    ErrorCode.ScenarioInvalid,
    /^x\.yaml:1: a scenario is a mapping/,
  ],
];

describe('parseScenario: malformed scenarios name the line and the field', () => {
  for (const [name, text, code, message] of MALFORMED) {
    it(name, () => {
      assert.throws(
        () => parseScenario(text, 'x.yaml'),
        (err: unknown) => {
          assert.ok(isHealError(err, code), `expected ${code}, got ${String(err)}`);
          assert.match(err.message.split('\n')[0] ?? '', message);
          return true;
        },
      );
    });
  }

  it('reports every problem at once, in line order', () => {
    const text = `fleet:\n  nodes: 4\nduration: 1h\ninterval: 10\ntimeline:\n  - {at: 5m, event: fault, node: 7, condition: GpuHung}\n  - {at: 6m, event: fault, node: 1, condition: Nope}\n`;
    assert.throws(
      () => parseScenario(text, 's.yaml'),
      (err: unknown) => {
        assert.ok(isHealError(err, ErrorCode.ScenarioInvalid));
        const lines = err.message.split('\n');
        assert.deepEqual(
          lines.map((l) => l.split(': ')[0]),
          ['s.yaml:4', 's.yaml:6', 's.yaml:7'],
        );
        return true;
      },
    );
  });
});

describe('parseScenario: valid scenarios', () => {
  it('resolves node numbers, names, ranges and shares, relative times and aliases', () => {
    const s = parseScenario(
      `fleet: {nodes: 20}
duration: 2h
timeline:
  - {at: 10m, event: fault, node: gpu-node-0002, condition: XIDHWSystemErr, device: 1}
  - {at: +5m, event: cordon, nodes: "3-5"}
  - {at: +1m, event: label, nodes: "10%"}
  - {at: 0, event: metrics-outage, for: 1m}
expect:
  - {did: Cordon, node: 2}
`,
      'v.yaml',
    );
    assert.deepEqual(
      s.timeline.map((e) => [e.atMs, e.action.kind, 'nodes' in e.action ? e.action.nodes : []]),
      [
        [600_000, 'fault', ['gpu-node-0002']],
        [900_000, 'cordon', ['gpu-node-0003', 'gpu-node-0004', 'gpu-node-0005']],
        [960_000, 'label', ['gpu-node-0001', 'gpu-node-0011']],
        [0, 'metrics-outage', []],
      ],
    );
    const fault = s.timeline[0]?.action;
    assert.equal(fault?.kind === 'fault' ? fault.condition : '', 'Xid79GPULost');
    assert.equal(s.config.safety.dryRun, false, 'scenarios act unless they say dryRun');
    assert.equal(s.expect[0]?.description, 'Cordon Succeeded on gpu-node-0002: at least 1');
    assert.equal(s.timeline[1]?.line, 5);
  });

  it('names nodes exactly as the simulated fleet does', () => {
    for (const n of [1, 64, 9999, 12_345]) {
      const fleet = createFleet({ nodes: n, seed: 1, controlPlaneNodes: 1 });
      assert.deepEqual(
        fleetNodeNames({ nodes: n, gpusPerNode: 8, controlPlaneNodes: 1 }),
        fleet.nodes.map((x) => x.name),
      );
      assert.equal(workerName(n - 1, n), fleet.nodes[n - 1]?.name);
    }
  });
});

describe('parseScenario never crashes', () => {
  const verdict = (text: string): void => {
    try {
      parseScenario(text, 'f.yaml');
    } catch (err) {
      if (!isHealError(err)) throw err;
      assert.match(err.message, /^f\.yaml:\d+: /);
    }
  };

  it('on arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), verdict), { numRuns: 300 });
  });

  it('on arbitrary YAML values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        verdict(stringify(v));
      }),
      { numRuns: 300 },
    );
  });

  it('on a valid scenario with one field replaced by anything', () => {
    const base = {
      fleet: { nodes: 4 },
      duration: '1h',
      timeline: [{ at: '5m', event: 'fault', node: 1, condition: 'GpuHung' }],
      expect: [{ node: 1, schedulable: true }],
    };
    const paths = [
      ['fleet', 'nodes'],
      ['duration'],
      ['timeline', 0, 'at'],
      ['timeline', 0, 'node'],
      ['timeline', 0, 'condition'],
      ['timeline', 0, 'event'],
      ['expect', 0],
      ['timeline', 0],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue(), (path, value) => {
        const copy = structuredClone(base) as Record<string, unknown>;
        let at: Record<string | number, unknown> = copy;
        for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
        at[path[path.length - 1] as string | number] = value;
        verdict(stringify(copy));
      }),
      { numRuns: 300 },
    );
  });
});
