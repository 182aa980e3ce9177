import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../catalogue/index.js';
import type { ConditionInstance, NodeInfo, NodeStatus } from '../core/types.js';
import { evaluateLadder, type LadderSpec } from './ladder.js';
import {
  QUARANTINE_ANNOTATION,
  QUARANTINE_CONDITIONS,
  decideQuarantine,
  quarantinedDevices,
  readQuarantine,
  releasable,
  type QuarantinePolicy,
} from './quarantine.js';
import type { NodeView, SopPolicy } from './sop.js';

const PRIO = new Map(CATALOGUE.map((e) => [e.name, e.priority]));
const policy: QuarantinePolicy = {
  enabled: true,
  conditions: new Set(QUARANTINE_CONDITIONS),
  maxDevices: 1,
  priorityOf: (c) => PRIO.get(c) ?? 999,
};

function cond(condition: string, id = '3'): ConditionInstance {
  const domain = CATALOGUE.find((e) => e.name === condition)?.domain ?? 'GPU';
  return { node: 'n1', domain, condition, id, pciBdf: '', msg: '', value: 1, sinceMs: 0 };
}
const status = (...cs: ConditionInstance[]): NodeStatus => ({
  node: 'n1',
  conditions: cs,
  staleSignals: [],
});

describe('decideQuarantine: which faults isolate a GPU, which are node-wide', () => {
  const cases: [string, ConditionInstance, ConditionInstance[], string[], string][] = [
    ['row-remap failure on one GPU', cond('GpuRowRemappingFailure', '5'), [], [], 'device 5'],
    ['Xid 79: a GPU fallen off the bus', cond('Xid79GPULost', '4'), [], [], 'device 4'],
    ['Xid 64 on one device', cond('Xid64ECCRowremapperFailure', '0'), [], [], 'device 0'],
    ['Xid 95 uncontained ECC', cond('Xid95UncontainedECCError', '7'), [], [], 'device 7'],
    ['NVLink Xid 74 involves the peers', cond('Xid74NVLinkError', '2'), [], [], 'node'],
    ['a hung GPU query is node-wide', cond('GpuHung', ''), [], [], 'node'],
    ['no GPU index', cond('Xid79GPULost', ''), [], [], 'node'],
    ['not an index (a mask)', cond('Xid79GPULost', '01000000'), [], [], 'node'],
    [
      'two GPUs faulty',
      cond('Xid79GPULost', '1'),
      [cond('GpuRowRemappingFailure', '6')],
      [],
      'node',
    ],
    ['a second GPU already quarantined', cond('Xid79GPULost', '1'), [], ['6'], 'node'],
    [
      'the same GPU, two conditions',
      cond('Xid79GPULost', '1'),
      [cond('Xid48GPUMemoryDBE', '1')],
      [],
      'device 1',
    ],
    [
      'a node-wide condition beside it',
      cond('Xid79GPULost', '1'),
      [cond('NodeNotReady', '')],
      [],
      'node',
    ],
    [
      'a record-only condition beside it does not count',
      cond('Xid79GPULost', '1'),
      [cond('XIDApplicationErr', '2')],
      [],
      'device 1',
    ],
    [
      'NodeCordon beside it does not count',
      cond('Xid79GPULost', '1'),
      [cond('NodeCordon', '')],
      [],
      'device 1',
    ],
  ];
  for (const [name, c, others, done, want] of cases) {
    it(name, () => {
      const d = decideQuarantine(c, status(c, ...others), done, policy);
      assert.equal(d.kind === 'device' ? `device ${d.device}` : 'node', want, JSON.stringify(d));
    });
  }

  it('two GPUs are isolated when quarantine.maxDevices allows two', () => {
    const c = cond('Xid79GPULost', '1');
    const d = decideQuarantine(c, status(c, cond('Xid48GPUMemoryDBE', '6')), [], {
      ...policy,
      maxDevices: 2,
    });
    assert.deepEqual(d, { kind: 'device', device: '1' });
  });

  it('off: every fault is node-wide, saying so', () => {
    const c = cond('Xid79GPULost', '1');
    const d = decideQuarantine(c, status(c), [], { ...policy, enabled: false });
    assert.deepEqual(d, { kind: 'node', reason: 'GPU-level quarantine is off' });
  });

  it('every listed condition exists in the catalogue with a GPU device label', () => {
    for (const name of QUARANTINE_CONDITIONS) {
      const e = CATALOGUE.find((x) => x.name === name);
      assert.ok(e !== undefined, name);
      assert.equal(e.domain, 'GPU', name);
      assert.ok(e.deviceLabel !== '', `${name} names its GPU`);
    }
  });
});

describe('the quarantine record and its release', () => {
  const node = (raw?: string): NodeInfo => ({
    name: 'n1',
    resourceVersion: '1',
    ready: true,
    unschedulable: false,
    labels: {},
    annotations: raw === undefined ? {} : { [QUARANTINE_ANNOTATION]: raw },
    taints: [],
  });
  const rec = JSON.stringify({
    v: 1,
    devices: [
      { device: '3', via: 'rule', name: 'aegis-gpu-n1-3', condition: 'Xid79GPULost', since: 'x' },
    ],
  });

  it('reads the devices Aegis recorded; a hand-edited annotation reads as empty', () => {
    assert.deepEqual(quarantinedDevices(node(rec)), ['3']);
    assert.deepEqual(readQuarantine(node('{not json')).devices, []);
    assert.deepEqual(readQuarantine(node('{"v":2,"devices":[]}')).devices, []);
  });

  it('a device is released only when no isolating condition names it', () => {
    const r = readQuarantine(node(rec));
    const set = new Set(QUARANTINE_CONDITIONS);
    assert.deepEqual(releasable(r, [cond('Xid79GPULost', '3')], set), []);
    assert.deepEqual(releasable(r, [cond('Xid48GPUMemoryDBE', '3')], set), []);
    assert.deepEqual(releasable(r, [cond('Xid79GPULost', '5')], set), ['3']);
    assert.deepEqual(releasable(r, [], set), ['3']);
  });
});

describe('a ladder with quarantine on', () => {
  const spec: LadderSpec = {
    id: 'gpu.reboot-once',
    description: 'test',
    diagnose: true,
    reboot: { max: 1 },
    shutdown: true,
  };
  const sopPolicy: SopPolicy = {
    level: 1,
    settleMs: 0,
    criticalLabels: [],
    humanSupervisor: 'sre',
    uncordonManualCordons: false,
    maxTicketAgeMs: 48 * 3_600_000,
    quarantine: policy,
  };
  const view = (annotations: Record<string, string> = {}, unschedulable = false): NodeView => ({
    info: {
      name: 'n1',
      resourceVersion: '1',
      ready: true,
      unschedulable,
      labels: {},
      annotations,
      taints: [],
    },
    ticket: null,
    nowMs: 1_000_000,
    policy: sopPolicy,
  });
  const c = cond('Xid79GPULost', '4');

  it('a one-GPU fault quarantines the device instead of cordoning the node', () => {
    const v = evaluateLadder(spec, view(), { condition: c, node: status(c) }, undefined, true);
    assert.ok(v.kind === 'act');
    assert.equal(v.step.action, 'Quarantine');
    assert.deepEqual(v.step.params, {
      device: '4',
      condition: 'Xid79GPULost',
    });
  });

  it('a quarantined device is diagnosed, never drained or rebooted', () => {
    const raw = JSON.stringify({
      v: 1,
      devices: [{ device: '4', via: 'rule', name: 'r', condition: 'Xid79GPULost', since: 'x' }],
    });
    const v = evaluateLadder(
      spec,
      view({ [QUARANTINE_ANNOTATION]: raw }),
      {
        condition: c,
        node: status(c),
      },
      undefined,
      true,
    );
    assert.equal(v.kind === 'act' ? v.step.action : v.reason, 'Diagnose');
  });

  it('two faulty GPUs: the node is cordoned as before', () => {
    const v = evaluateLadder(
      spec,
      view(),
      { condition: c, node: status(c, cond('Xid48GPUMemoryDBE', '2')) },
      undefined,
      true,
    );
    assert.equal(v.kind === 'act' ? v.step.action : v.reason, 'Cordon');
  });

  it('without a quarantine bridge the ladder cordons', () => {
    const v = evaluateLadder(spec, view(), { condition: c, node: status(c) }, undefined, false);
    assert.equal(v.kind === 'act' ? v.step.action : v.reason, 'Cordon');
  });
});
