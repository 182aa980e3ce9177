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

/** A scenario of 8 nodes over 1h with `body` (timeline/expect/workloads) after line 3. */
const scenario = (body: string): string => `fleet:\n  nodes: 8\nduration: 1h\n${body}`;

/** [case, YAML, expected message (first line)]: the new timeline events, expectations, workloads. */
const MALFORMED_NEW: readonly [string, string, RegExp][] = [
  [
    'leader-overlap without a duration',
    scenario('timeline:\n  - at: 5m\n    event: leader-overlap\n'),
    /^x\.yaml:5: timeline\[0\]\.for: Invalid input/,
  ],
  [
    'leader-overlap of zero length',
    scenario('timeline:\n  - at: 5m\n    event: leader-overlap\n    for: 0\n'),
    /^x\.yaml:7: timeline\[0\]\.for: a leader overlap lasts some time/,
  ],
  [
    'two leader overlaps at once',
    scenario(
      'timeline:\n  - {at: 30m, event: leader-overlap, for: 5m}\n  - {at: 5m, event: leader-overlap, for: 30m}\n',
    ),
    /^x\.yaml:5: timeline\[0\]\.at: a leader overlap starts at 30m while the one of timeline\[1\] lasts until 35m: one overlap at a time$/,
  ],
  [
    'restart with a node',
    scenario('timeline:\n  - at: 5m\n    event: restart\n    node: 3\n'),
    /^x\.yaml:7: timeline\[0\]\.node: unknown field "node" \(allowed: at, event, note\)$/,
  ],
  [
    'ib-flap on an HCA the node does not have',
    scenario('timeline:\n  - at: 5m\n    event: ib-flap\n    node: 3\n    device: mlx5_9\n'),
    /^x\.yaml:8: timeline\[0\]\.device: gpu-node-0003 has no IB device "mlx5_9" \(it has mlx5_0/,
  ],
  [
    'ib-flap on a port the HCA does not have',
    scenario('timeline:\n  - at: 5m\n    event: ib-flap\n    node: 3\n    device: mlx5_1/2\n'),
    /^x\.yaml:8: timeline\[0\]\.device: mlx5_1 has no port "2" \(it has port 1\)$/,
  ],
  [
    'ib-flap down longer than its period',
    scenario(
      'timeline:\n  - at: 5m\n    event: ib-flap\n    node: 3\n    period: 30s\n    down: 1m\n',
    ),
    /^x\.yaml:9: timeline\[0\]\.down: the link must stay down for less than the period between flaps \(down 1m, period 30s\)$/,
  ],
  [
    'ib-flap with a zero count',
    scenario('timeline:\n  - at: 5m\n    event: ib-flap\n    node: 3\n    count: 0\n'),
    /^x\.yaml:8: timeline\[0\]\.count: Too small/,
  ],
  [
    'ib-flap cleared by a remedy',
    scenario(
      'timeline:\n  - at: 5m\n    event: ib-flap\n    node: 3\n    persistence: until-remedy\n',
    ),
    /^x\.yaml:8: timeline\[0\]\.persistence: a link flap ends with a recover/,
  ],
  [
    'close-ticket with an empty closer',
    scenario('timeline:\n  - at: 5m\n    event: close-ticket\n    node: 3\n    by: ""\n'),
    /^x\.yaml:8: timeline\[0\]\.by: Too small/,
  ],
  [
    'jobs expectation of an unknown Job kind',
    scenario('expect:\n  - jobs: reboot_node\n    node: 3\n'),
    /^x\.yaml:5: expect\[0\]\.jobs: Invalid input/,
  ],
  [
    'events expectation with a bad type',
    scenario('expect:\n  - events: AegisRebootSucceeded\n    type: Error\n'),
    /^x\.yaml:6: expect\[0\]\.type: Invalid option: expected one of "Normal"\|"Warning"$/,
  ],
  [
    'evictions expectation on an unknown node',
    scenario('expect:\n  - evictions: 1\n    node: 12\n'),
    /^x\.yaml:6: expect\[0\]\.node: unknown node 12: the fleet has 8 workers/,
  ],
  [
    'evictions with an unknown result',
    scenario('expect:\n  - evictions: 0\n    result: refused\n'),
    /^x\.yaml:6: expect\[0\]\.result: Invalid option/,
  ],
  [
    'noForceDelete: false',
    scenario('expect:\n  - noForceDelete: false\n'),
    /^x\.yaml:5: expect\[0\]\.noForceDelete: Invalid input: expected true$/,
  ],
  [
    'did with an unknown condition',
    scenario('expect:\n  - did: Reboot\n    condition: Xid99\n'),
    /^x\.yaml:6: expect\[0\]\.condition: unknown condition "Xid99"/,
  ],
  [
    'node annotations that are not strings',
    scenario('expect:\n  - node: 3\n    annotations:\n      aegis.io/pause: [true]\n'),
    /^x\.yaml:7: expect\[0\]\.annotations\.aegis\.io\/pause: Invalid input/,
  ],
  [
    'workload on an unknown node',
    scenario('workloads:\n  - name: train\n    nodes: [1, 2, 9]\n'),
    /^x\.yaml:6: workloads\[0\]\.nodes\[2\]: unknown node 9/,
  ],
  [
    'workload needing more pods than it has',
    scenario('workloads:\n  - name: train\n    nodes: "1-3"\n    minAvailable: 4\n'),
    /^x\.yaml:7: workloads\[0\]\.minAvailable: minAvailable 4 is more than the workload's 3 pods$/,
  ],
  [
    'workload with a name Kubernetes refuses',
    scenario('workloads:\n  - name: Train_1\n    nodes: "1-3"\n'),
    /^x\.yaml:5: workloads\[0\]\.name: a workload name is a DNS label/,
  ],
];

describe('parseScenario: restarts, leader overlaps, link flaps, workloads, API expectations', () => {
  for (const [name, text, message] of MALFORMED_NEW) {
    it(`malformed: ${name}`, () => {
      assert.throws(
        () => parseScenario(text, 'x.yaml'),
        (err: unknown) => {
          const code = name.includes('unknown condition')
            ? ErrorCode.UnknownCondition
            : ErrorCode.ScenarioInvalid;
          assert.ok(isHealError(err, code), String(err));
          assert.match(err.message.split('\n')[0] ?? '', message);
          return true;
        },
      );
    });
  }

  it('resolves them when they are well formed', () => {
    const s = parseScenario(
      scenario(`workloads:
  - {name: train, nodes: "1-4", minAvailable: 2}
timeline:
  - {at: 5m, event: ib-flap, node: 3, device: mlx5_4, count: 6, period: 2m, down: 15s}
  - {at: 6m, event: ib-flap, node: 4, device: mlx5_0/1}
  - {at: 10m, event: leader-overlap, for: 5m}
  - {at: 15m, event: leader-overlap, for: 1m}
  - {at: 20m, event: restart}
  - {at: 25m, event: close-ticket, node: 3, status: closed, by: bob, conclusion: cable reseated}
expect:
  - {jobs: restart_node, node: 3, count: 1}
  - {jobs: any, count: {max: 4}, after: 5m, by: 30m}
  - {events: AegisDiagnosis, node: 3, type: Normal, message: ibstat}
  - {evictions: {min: 1}, node: 2, result: evicted, namespace: training}
  - {noForceDelete: true, namespace: training}
  - {did: Reboot, condition: Xid48GPUMemoryDBE, node: 3}
  - {node: 3, annotations: {aegis.io/pause: null, aegis.io/ticketing: "x"}}
`),
      'v.yaml',
    );
    assert.deepEqual(s.workloads, [
      {
        name: 'train',
        nodes: ['gpu-node-0001', 'gpu-node-0002', 'gpu-node-0003', 'gpu-node-0004'],
        minAvailable: 2,
      },
    ]);
    assert.deepEqual(
      s.timeline.map((e) => e.action),
      [
        {
          kind: 'ib-flap',
          nodes: ['gpu-node-0003'],
          device: 'mlx5_4',
          port: '1',
          count: 6,
          periodMs: 120_000,
          downMs: 15_000,
        },
        {
          kind: 'ib-flap',
          nodes: ['gpu-node-0004'],
          device: 'mlx5_0',
          port: '1',
          count: 5,
          periodMs: 60_000,
          downMs: 10_000,
        },
        { kind: 'leader-overlap', forMs: 300_000 },
        { kind: 'leader-overlap', forMs: 60_000 },
        { kind: 'restart' },
        {
          kind: 'close-ticket',
          nodes: ['gpu-node-0003'],
          status: 'closed',
          by: 'bob',
          conclusion: 'cable reseated',
        },
      ],
    );
    assert.deepEqual(
      s.expect.map((e) => e.spec),
      [
        { kind: 'jobs', job: 'restart_node', node: 'gpu-node-0003', count: { min: 1, max: 1 } },
        { kind: 'jobs', job: 'any', count: { max: 4 }, afterMs: 300_000, byMs: 1_800_000 },
        {
          kind: 'events',
          reason: 'AegisDiagnosis',
          node: 'gpu-node-0003',
          type: 'Normal',
          message: 'ibstat',
          count: { min: 1 },
        },
        {
          kind: 'evictions',
          count: { min: 1 },
          node: 'gpu-node-0002',
          result: 'evicted',
          namespace: 'training',
        },
        { kind: 'noForceDelete', namespace: 'training' },
        {
          kind: 'did',
          action: 'Reboot',
          node: 'gpu-node-0003',
          condition: 'Xid48GPUMemoryDBE',
          status: 'Succeeded',
          count: { min: 1 },
        },
        {
          kind: 'node',
          node: 'gpu-node-0003',
          annotations: { 'aegis.io/pause': null, 'aegis.io/ticketing': 'x' },
        },
      ],
    );
    assert.deepEqual(
      s.expect.map((e) => e.description),
      [
        'restart_node Jobs created on gpu-node-0003: exactly 1',
        'Jobs created on any node after 5m by 30m: at most 4',
        'Normal Events AegisDiagnosis on gpu-node-0003 saying "ibstat": at least 1',
        'evictions evicted in training on gpu-node-0002: at least 1',
        'no pod force-deleted in training on any node',
        'Reboot for Xid48GPUMemoryDBE Succeeded on gpu-node-0003: at least 1',
        'gpu-node-0003 ends no annotation aegis.io/pause, annotation aegis.io/ticketing=x',
      ],
    );
  });

  it('close-ticket defaults: a human (alice) resolves it', () => {
    const s = parseScenario(
      scenario('timeline:\n  - {at: 5m, event: close-ticket, node: 1}\n'),
      'v.yaml',
    );
    assert.deepEqual(s.timeline[0]?.action, {
      kind: 'close-ticket',
      nodes: ['gpu-node-0001'],
      status: 'resolved',
      by: 'alice',
    });
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
