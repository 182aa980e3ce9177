/**
 * The pure parts of failure domains: topology from labels, the correlation rules turning statuses
 * into domain incidents (threshold, window, joining, release), holds, names, restoring from ticket
 * pointers; and the gates built on them (level limits, a human's release, the breaker's safe
 * self-reset). The simulator tests are test/safety/domains*.test.ts and scenarios/domain-*.yaml.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aCondition, aNode, aTicket, T0 } from '../../test/helpers/builders.js';
import { ConfigSchema, defaultConfig } from '../config/schema.js';
import type { NodeStatus } from '../core/types.js';
import { Action, type Step } from '../sop/sop.js';
import {
  correlate,
  DEFAULT_CORRELATION_RULES,
  earliestBurst,
  holdingIncident,
  incidentName,
  pointerOf,
  restoreIncidents,
  thresholdOf,
  type CorrelationRule,
  type DomainIncident,
} from './domains.js';
import { isHold, levelLimit, SafetyGates } from './safety.js';
import {
  DEFAULT_TOPOLOGY_LABELS,
  domainLevels,
  FleetTopology,
  parseDomainKey,
  placeOf,
} from './topology.js';

const MIN = 60_000;
const LEAF = DEFAULT_TOPOLOGY_LABELS.leaf;
const RACK = DEFAULT_TOPOLOGY_LABELS.rack;
const rule = (name: string): CorrelationRule => {
  const r = DEFAULT_CORRELATION_RULES.find((x) => x.name === name);
  assert.ok(r !== undefined);
  return r;
};
const RULES = DEFAULT_CORRELATION_RULES;

/** Node `n-01`…: 16 per leaf, 8 per rack. */
const nodes = Array.from({ length: 32 }, (_, i) =>
  aNode({
    name: `n-${String(i + 1).padStart(2, '0')}`,
    labels: {
      [LEAF]: `leaf-${String(Math.floor(i / 16) + 1)}`,
      [RACK]: `rack-${String(Math.floor(i / 8) + 1)}`,
    },
  }),
);
const topo = new FleetTopology(nodes);
const name = (i: number): string => `n-${String(i).padStart(2, '0')}`;

function status(node: string, condition: string, sinceMs: number): NodeStatus {
  return { node, conditions: [aCondition({ node, condition, sinceMs })], staleSignals: [] };
}

function run(
  statuses: readonly NodeStatus[],
  nowMs: number,
  open: readonly DomainIncident[] = [],
  rules: readonly CorrelationRule[] = RULES,
): ReturnType<typeof correlate> {
  return correlate({
    statuses,
    placeOf: (n) => topo.place(n),
    sizeOf: (k, v) => topo.size(k, v),
    rules,
    open,
    nowMs,
  });
}

describe('topology from node labels', () => {
  it('reads each domain kind from its label; an absent or empty label is no domain', () => {
    const labels = {
      'topology.kubernetes.io/zone': 'z1',
      [RACK]: 'r7',
      [LEAF]: '',
      'nvidia.com/gpu.clique': 'c0ffee.3',
    };
    assert.deepEqual(placeOf(labels), { zone: 'z1', rack: 'r7', clique: 'c0ffee.3' });
    assert.deepEqual(placeOf({ 'my/rack': 'x' }, { ...DEFAULT_TOPOLOGY_LABELS, rack: 'my/rack' }), {
      rack: 'x',
    });
    assert.equal(topo.size('leaf', 'leaf-1'), 16);
    assert.deepEqual(topo.members('rack', 'rack-2').slice(0, 2), ['n-09', 'n-10']);
    assert.deepEqual(parseDomainKey('leaf/leaf-1'), { kind: 'leaf', value: 'leaf-1' });
    assert.equal(parseDomainKey('shelf/a'), undefined);
    assert.equal(parseDomainKey('leaf/'), undefined);
  });

  it('counts each domain’s nodes and those out of service (cordoned or not Ready)', () => {
    const fleet = nodes.slice(0, 8).map((n, i) => ({
      ...n,
      unschedulable: i === 0,
      ready: i === 1 ? ('Unknown' as const) : true,
    }));
    const levels = domainLevels(fleet, ['rack', 'leaf']);
    assert.deepEqual(levels.get('rack/rack-1'), { size: 8, out: 2 });
    assert.deepEqual(levels.get('leaf/leaf-1'), { size: 8, out: 2 });
    assert.equal(domainLevels(fleet, []).size, 0);
  });
});

describe('correlation rules', () => {
  it('thresholds: K nodes, a fraction of the domain, the lower of both, never below 2', () => {
    const r = (o: Partial<CorrelationRule>): CorrelationRule => ({ ...rule('leaf-ib'), ...o });
    assert.equal(thresholdOf(r({ minNodes: 3 }), 100), 3);
    assert.equal(thresholdOf(r({ minNodes: undefined, minFraction: 0.5 }), 5), 3);
    assert.equal(thresholdOf(r({ minNodes: 4, minFraction: 0.5 }), 4), 2);
    assert.equal(thresholdOf(r({ minNodes: undefined, minFraction: 0.1 }), 4), 2);
    assert.equal(thresholdOf(r({ minNodes: undefined, minFraction: undefined }), 4), Infinity);
  });

  it('earliest burst: the first span of the window holding enough start times', () => {
    assert.equal(earliestBurst([0, 15 * MIN, 30 * MIN], 3, 10 * MIN), undefined);
    assert.equal(earliestBurst([50, 0, 10 * MIN + 1, 60, 70], 3, 10 * MIN), 0);
    assert.equal(earliestBurst([0, 20 * MIN, 21 * MIN, 22 * MIN], 3, 10 * MIN), 20 * MIN);
  });

  it('12 nodes under one leaf switch losing IB make one incident naming the switch', () => {
    const st = Array.from({ length: 12 }, (_, i) => status(name(i + 3), 'IBLinkAbnormal', T0 + i));
    const r = run(st, T0 + MIN);
    assert.equal(r.opened.length, 1);
    const i = r.opened[0];
    assert.ok(i !== undefined);
    assert.equal(i.kind, 'leaf');
    assert.equal(i.domain, 'leaf-1');
    assert.equal(i.rule, 'leaf-ib');
    assert.equal(i.members.length, 12);
    assert.deepEqual(i.active, i.members);
    assert.match(i.name, /^aegis-incident-leaf-leaf-1-[0-9a-f]{8}$/);
    assert.equal(r.joined.length, 12);
    assert.equal(i.domainSize, 16);
  });

  it('two nodes of one rack NotReady, or a slow trickle beyond the window, make no incident', () => {
    assert.equal(
      run([status(name(1), 'NodeNotReady', T0), status(name(2), 'NodeNotReady', T0)], T0 + MIN).open
        .length,
      0,
    );
    const trickle = [0, 1, 2].map((k) => status(name(k + 1), 'NodeNotReady', T0 + k * 15 * MIN));
    assert.equal(run(trickle, T0 + 31 * MIN).open.length, 0);
    // Three in one rack, but spread over two racks' worth of nodes: two racks, no incident.
    const split = [1, 2, 9].map((k) => status(name(k), 'NodeNotReady', T0));
    assert.equal(run(split, T0 + MIN).open.length, 0);
  });

  it('conditions of no rule, and nodes without the domain label, never correlate', () => {
    const gpu = [1, 2, 3, 4].map((k) => status(name(k), 'Xid79GPULost', T0));
    assert.equal(run(gpu, T0 + MIN).open.length, 0);
    const unlabelled = correlate({
      statuses: [1, 2, 3].map((k) => status(name(k), 'NodeNotReady', T0)),
      placeOf: () => ({}),
      sizeOf: () => 0,
      rules: RULES,
      open: [],
      nowMs: T0,
    });
    assert.equal(unlabelled.open.length, 0);
  });

  it('an older, separate fault in the domain is not a member; a later one joins', () => {
    const old = status(name(1), 'IBLinkAbnormal', T0 - 3 * 3_600_000);
    const burst = [2, 3, 4].map((k) => status(name(k), 'IBLinkAbnormal', T0 + k));
    const first = run([old, ...burst], T0 + MIN);
    const i = first.opened[0];
    assert.ok(i !== undefined);
    assert.deepEqual(i.members, [name(2), name(3), name(4)]);
    const later = status(name(9), 'IBLinkFrequentDown', T0 + 40 * MIN);
    const next = run([old, ...burst, later], T0 + 41 * MIN, first.open);
    assert.deepEqual(next.joined, [{ incident: i.name, node: name(9) }]);
    assert.deepEqual(next.open[0]?.active, [name(2), name(3), name(4), name(9)]);
    assert.deepEqual(next.open[0].conditions, ['IBLinkAbnormal', 'IBLinkFrequentDown']);
    assert.equal(next.opened.length, 0, 'the same incident, not a second one');
  });

  it('ends once fewer nodes than the threshold are hit for clearForMs, not before', () => {
    const burst = [1, 2, 3, 4].map((k) => status(name(k), 'NodeNotReady', T0));
    let open = run(burst, T0).open;
    // Two still down: below the threshold of 3 from now on.
    let r = run(burst.slice(0, 2), T0 + 10 * MIN, open);
    assert.equal(r.released.length, 0);
    assert.equal(r.open[0]?.belowSinceMs, T0 + 10 * MIN);
    open = r.open;
    r = run(burst.slice(0, 2), T0 + 11 * MIN, open);
    assert.equal(r.released.length, 0, '1 min below is not 2');
    // Back above the threshold: the clock restarts.
    r = run(burst, T0 + 11.5 * MIN, r.open);
    assert.equal(r.open[0]?.belowSinceMs, undefined);
    r = run([], T0 + 12 * MIN, r.open);
    r = run([], T0 + 14 * MIN, r.open);
    assert.equal(r.open.length, 0);
    assert.equal(r.released.length, 1);
    assert.equal(r.released[0]?.releasedAtMs, T0 + 14 * MIN);
    assert.deepEqual(r.released[0].members, [name(1), name(2), name(3), name(4)]);
  });

  it('an incident whose rule left the config ends at once', () => {
    const open = run(
      [1, 2, 3].map((k) => status(name(k), 'NodeNotReady', T0)),
      T0,
    ).open;
    const r = run([], T0 + MIN, open, [rule('leaf-ib')]);
    assert.equal(r.released.length, 1);
  });

  it('a fraction rule: both nodes of a 2-node PDU', () => {
    const pdu = 'topology.aegis.io/pdu';
    const fleet = [
      aNode({ name: 'a', labels: { [pdu]: 'p1' } }),
      aNode({ name: 'b', labels: { [pdu]: 'p1' } }),
    ];
    const t = new FleetTopology(fleet);
    const r = correlate({
      statuses: [status('a', 'NodeNotReady', T0), status('b', 'BaseBoardCriticalIssue', T0)],
      placeOf: (n) => t.place(n),
      sizeOf: (k, v) => t.size(k, v),
      rules: RULES,
      open: [],
      nowMs: T0,
    });
    assert.deepEqual(
      r.opened.map((i) => [i.rule, i.domain, i.threshold]),
      [['pdu-power', 'p1', 2]],
    );
  });

  it('holds an active member’s steps but those the rule allows; released members and others are free', () => {
    const open = run(
      [1, 2, 3].map((k) => status(name(k), 'NodeNotReady', T0)),
      T0,
    ).open;
    assert.ok(holdingIncident(open, RULES, name(1), Action.Reboot) !== undefined);
    assert.ok(holdingIncident(open, RULES, name(1), Action.HandToHuman) !== undefined);
    assert.equal(holdingIncident(open, RULES, name(1), Action.Cordon), undefined);
    assert.equal(holdingIncident(open, RULES, name(4), Action.Reboot), undefined);
    const recovered = run(
      [1, 2].map((k) => status(name(k), 'NodeNotReady', T0)),
      T0 + MIN,
      open,
    );
    assert.equal(holdingIncident(recovered.open, RULES, name(3), Action.Reboot), undefined);
  });

  it('names are DNS labels, stable, and differ between incidents of one domain', () => {
    const a = incidentName('leaf-ib', 'leaf', 'Leaf_02.DC1', T0);
    assert.match(a, /^aegis-incident-leaf-leaf-02-dc1-[0-9a-f]{8}$/);
    assert.equal(a, incidentName('leaf-ib', 'leaf', 'Leaf_02.DC1', T0));
    assert.notEqual(a, incidentName('leaf-ib', 'leaf', 'Leaf_02.DC1', T0 + 1));
    const long = incidentName('r', 'nodeGroup', 'x'.repeat(200), T0);
    assert.ok(long.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(long), long);
  });

  it('restores open incidents from the members’ ticket pointers; released ones stay ended', () => {
    const open = run(
      [1, 2, 3].map((k) => status(name(k), 'NodeNotReady', T0)),
      T0,
    ).open;
    const i = open[0];
    assert.ok(i !== undefined);
    const p = pointerOf(i);
    const restored = restoreIncidents(
      [
        { node: name(2), pointer: p },
        { node: name(1), pointer: p },
        { node: name(3), pointer: { ...p, released: new Date(T0).toISOString() } },
        { node: name(4), pointer: { ...p, name: 'other', domain: 'shelf/1' } },
      ],
      T0 + MIN,
    );
    assert.equal(restored.length, 1);
    assert.equal(restored[0]?.name, i.name);
    assert.deepEqual(restored[0].members, [name(1), name(2)]);
    assert.equal(restored[0].startMs, i.startMs);
    // The next correlation brings it up to date: node 3 (still down, since after the start) joins.
    const r = run(
      [1, 2, 3].map((k) => status(name(k), 'NodeNotReady', T0)),
      T0 + MIN,
      restored,
    );
    assert.equal(r.opened.length, 0);
    assert.deepEqual(r.open[0]?.active, [name(1), name(2), name(3)]);
  });
});

describe('config: domains and level limits', () => {
  it('defaults load; rules name real conditions (aliases read as names); bad rules say where', () => {
    const c = defaultConfig();
    assert.equal(c.domains.enabled, true);
    assert.equal(c.domains.labels.clique, 'nvidia.com/gpu.clique');
    assert.deepEqual(
      c.domains.rules.map((r) => r.name),
      RULES.map((r) => r.name),
    );
    const ok = ConfigSchema.parse({
      domains: { rules: [{ name: 'ib', domain: 'leaf', conditions: ['IBDown'], minNodes: 2 }] },
    });
    assert.deepEqual(ok.domains.rules[0]?.conditions, ['IBLost']);
    assert.equal(ok.domains.rules[0].windowMs, 10 * MIN);
    const bad = ConfigSchema.safeParse({
      domains: {
        rules: [
          { name: 'x', domain: 'leaf', conditions: ['Nope'], minNodes: 2 },
          { name: 'y', domain: 'shelf', conditions: ['IBLost'], minNodes: 2 },
          { name: 'z', domain: 'rack', conditions: ['IBLost'] },
        ],
      },
      safety: { levelLimits: [{ domain: 'rack' }] },
    });
    assert.equal(bad.success, false);
    const where = bad.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    assert.ok(
      where.some((w) => w.startsWith('domains.rules.0.conditions.0: unknown condition "Nope"')),
      where.join('\n'),
    );
    assert.ok(
      where.some((w) => w.startsWith('domains.rules.1.domain')),
      where.join('\n'),
    );
    assert.ok(
      where.some((w) => w === 'domains.rules.2: needs minNodes or minFraction'),
      where.join('\n'),
    );
    assert.ok(
      where.some((w) => w === 'safety.levelLimits.0: needs maxUnhealthy or maxUnhealthyFraction'),
      where.join('\n'),
    );
  });
});

const safetyCfg = defaultConfig().safety;
const step = (action: Step['action'], seq?: number): Step => ({
  action,
  reason: 't',
  ...(seq === undefined ? {} : { seq }),
});

describe('level limits', () => {
  it('the limit: a count, a fraction (at least 1), the lower of both', () => {
    assert.equal(levelLimit({ maxUnhealthy: 3 }, 100), 3);
    assert.equal(levelLimit({ maxUnhealthyFraction: 0.25 }, 10), 2);
    assert.equal(levelLimit({ maxUnhealthyFraction: 0.25 }, 2), 1);
    assert.equal(levelLimit({ maxUnhealthy: 5, maxUnhealthyFraction: 0.25 }, 8), 2);
    assert.equal(levelLimit({ maxUnhealthy: 0 }, 8), 0);
  });

  it('a new cordon in a rack at its limit is held, counting cordons in flight; other racks are free', () => {
    const g = new SafetyGates({ ...safetyCfg, levelLimits: [{ domain: 'rack', maxUnhealthy: 2 }] });
    const fleet = nodes.slice(0, 16).map((n, i) => ({ ...n, unschedulable: i === 0 }));
    const counts = g.fleetCounts(fleet);
    const admit = (i: number): ReturnType<SafetyGates['admit']> =>
      g.admit({
        step: step(Action.Cordon),
        node: fleet[i] ?? aNode(),
        ticket: null,
        fleet: { ...counts, eligible: 1000 },
        nowMs: T0,
      });
    const first = admit(1);
    assert.equal(isHold(first), false, 'rack-1: 1 out + this one = 2');
    const second = admit(2);
    assert.ok(isHold(second) && second.gate === 'level-limit', JSON.stringify(second));
    assert.match(second.reason, /rack rack-1 has 2 of 8 nodes out of service \(limit 2\)/);
    assert.equal(isHold(admit(9)), false, 'rack-2 has room');
    if (!isHold(first)) first.release();
    // Released without the cordon showing in the node list: the list counts it from then on.
    assert.equal(isHold(admit(2)), false);
  });

  it('a node already not Ready is cordoned whatever its domain’s level (no capacity changes)', () => {
    const g = new SafetyGates({ ...safetyCfg, levelLimits: [{ domain: 'rack', maxUnhealthy: 0 }] });
    const node = { ...(nodes[0] ?? aNode()), ready: false };
    const fleet = g.fleetCounts([node, ...nodes.slice(1, 8)]);
    const a = g.admit({
      step: step(Action.Cordon),
      node,
      ticket: null,
      fleet: { ...fleet, eligible: 1000 },
      nowMs: T0,
    });
    assert.equal(isHold(a), false);
  });
});

describe('a node a human released is never cordoned again', () => {
  it('Aegis cordoned it, someone uncordoned it: the next Cordon of that ticket is held', () => {
    const g = new SafetyGates(safetyCfg);
    const released = aTicket([{ action: 'Cordon' }], { cordonedByAegis: true });
    const a = g.admit({
      step: step(Action.Cordon),
      node: aNode({ unschedulable: false }),
      ticket: released,
      fleet: { eligible: 100, cordoned: 0 },
      nowMs: T0,
    });
    assert.ok(isHold(a) && a.gate === 'human-released');
    // A new ticket (the old one closed) is a new occurrence: cordoned as usual.
    const closed = { ...released, status: 'closed' as const };
    const b = g.admit({
      step: step(Action.Cordon),
      node: aNode({ unschedulable: false }),
      ticket: closed,
      fleet: { eligible: 100, cordoned: 0 },
      nowMs: T0,
    });
    assert.equal(isHold(b), false);
  });
});

describe('storm breaker: safe self-reset', () => {
  const cfg = { ...safetyCfg, stormMinNewFaultyNodes: 2, stormMaxNewFaultyNodes: 2 };
  const trip = (g: SafetyGates): void => {
    g.observeNewFaults(['a', 'b', 'c'], 100, T0);
  };
  const cordon = (g: SafetyGates, i: number, nowMs: number): ReturnType<SafetyGates['admit']> =>
    g.admit({
      step: step(Action.Cordon),
      node: aNode({ name: `x${String(i)}` }),
      ticket: null,
      fleet: { eligible: 100, cordoned: 0 },
      nowMs,
    });

  it('stays open past its cooldown until a stable cycle (fresh data, no new faulty node)', () => {
    const g = new SafetyGates(cfg);
    trip(g);
    g.settle(T0, false);
    const end = T0 + cfg.stormCooldownMs;
    g.settle(end, false);
    assert.equal(g.breakerOpen(end), true, 'not stable: still open');
    g.settle(end + 5_000, true);
    assert.equal(g.breakerOpen(end + 5_000), false);
  });

  it('after it closes, the backlog of new incidents is admitted at its own rate, not all at once', () => {
    const g = new SafetyGates(cfg);
    trip(g);
    const end = T0 + cfg.stormCooldownMs;
    g.settle(end, true);
    const admitted = [0, 1, 2, 3, 4].map((i) => !isHold(cordon(g, i, end)));
    assert.deepEqual(admitted, [true, true, false, false, false], 'stormLimit = 2 per window');
    const held = cordon(g, 9, end);
    assert.ok(isHold(held) && held.gate === 'storm-breaker');
    assert.match(held.reason, /at most 2 new incidents per storm window/);
    assert.equal(isHold(cordon(g, 5, end + cfg.stormWindowMs)), false, 'next window');
  });

  it('an operator reset also drains the backlog at that rate', () => {
    const g = new SafetyGates(cfg);
    trip(g);
    g.settle(T0 + 1000, true);
    assert.equal(g.operatorReset(T0 + 60_000), true);
    assert.equal(g.breakerOpen(T0 + 60_000), false);
    const admitted = [0, 1, 2].map((i) => !isHold(cordon(g, i, T0 + 60_000)));
    assert.deepEqual(admitted, [true, true, false]);
  });

  it('a ticket on which nothing has run yet (a domain incident’s pointer) is a new incident for the breaker', () => {
    const g = new SafetyGates(cfg);
    trip(g);
    const pointerOnly = aTicket([{ action: 'Reboot', status: 'Held' }]);
    const a = g.admit({
      step: step(Action.Cordon),
      node: aNode(),
      ticket: pointerOnly,
      fleet: { eligible: 100, cordoned: 0 },
      nowMs: T0,
    });
    assert.ok(isHold(a) && a.gate === 'storm-breaker');
  });
});
