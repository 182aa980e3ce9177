/**
 * Storms: a fault on 30 % of the fleet at once (mixed conditions, a whole rack, a whole leaf
 * switch), several sizes and seeds. The breaker trips; cordons never exceed the cordon budget;
 * disruptive steps never exceed the per-action, per-rack and per-leaf caps at any instant (checked
 * from the tickets before every cordon and Job, and every cycle); holds show in metrics and
 * tickets; remediation resumes after the cooldown; an operator reset resumes it at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SafetyGates } from '../../src/engine/safety.js';
import type { JobRequest } from '../../src/k8s/cluster.js';
import { unitHash } from '../../src/sim/random.js';
import { FleetAudit } from '../fixtures/safety/fleet-audit.js';
import type { ApiCall } from '../fixtures/safety/kill-switch.js';
import {
  catalogueOf,
  createSafetyWorld,
  HOUR,
  LADDER_CONDITIONS,
  metricSum,
  metricValue,
  MIN,
  safetyConfig,
  settleSteps,
  startEngine,
  type EngineLife,
  type SafetyWorld,
} from '../fixtures/safety/safety-world.js';
import { TicketLedger } from '../fixtures/safety/ticket-ledger.js';
import { useSafetyFigures } from './figures.js';

const figures = useSafetyFigures({ storm: 10 });
const CATALOGUE = catalogueOf([...LADDER_CONDITIONS, 'IBLinkAbnormal']);
const CONFIG = safetyConfig({
  safety: {
    maxCordonedFraction: 0.2,
    stormMaxNewFaultyNodes: 2,
    stormMaxNewFaultyFraction: 0.1,
    stormWindowMs: 10 * MIN,
    stormCooldownMs: 30 * MIN,
    maxPerRack: 1,
    maxPerLeaf: 2,
    maxConcurrent: { reboot: 2, shutdown: 1, drain: 4 },
  },
});
const MIXED = [
  'Xid79GPULost',
  'Xid48GPUMemoryDBE',
  'GpuHung',
  'GpfsDown',
  'GpuRowRemappingFailure',
];

type StormKind = 'mixed' | 'rack' | 'leaf';

/** The nodes and conditions of one storm: 30 % of the fleet, or a whole rack/leaf topped up to 30 %. */
function stormSet(
  sw: SafetyWorld,
  kind: StormKind,
  seed: number,
  spare: string,
): { node: string; condition: string }[] {
  const want = Math.ceil(0.3 * sw.names.length);
  const fleet = sw.world.store.fleet;
  const domain = (n: string): string =>
    (kind === 'rack' ? fleet.node(n)?.rack : fleet.node(n)?.leaf) ?? '';
  const first = sw.names.find((n) => n !== spare) ?? '';
  const picked =
    kind === 'mixed' ? [] : sw.names.filter((n) => n !== spare && domain(n) === domain(first));
  const rest = sw.names.filter((n) => n !== spare && !picked.includes(n));
  rest.sort(
    (a, b) =>
      unitHash(seed, a.length, a.charCodeAt(a.length - 1)) -
      unitHash(seed, b.length, b.charCodeAt(b.length - 1)),
  );
  const nodes = [...picked, ...rest].slice(0, Math.max(want, picked.length));
  const condition = (i: number): string =>
    kind === 'rack'
      ? 'GpuHung'
      : kind === 'leaf'
        ? 'IBLinkAbnormal'
        : (MIXED[(i + seed) % MIXED.length] ?? '');
  return nodes.map((node, i) => ({ node, condition: condition(i) }));
}

/** Builds the audited engine: every cordon and every new reboot/shutdown Job is checked first. */
function auditedEngine(sw: SafetyWorld): {
  life: EngineLife;
  audit: FleetAudit;
  ledger: TicketLedger;
} {
  const ledger = new TicketLedger(sw.world.cluster);
  const ref: { gates?: SafetyGates } = {};
  const audit = new FleetAudit({
    world: sw.world,
    ledger,
    safety: CONFIG.safety,
    breakerOpen: () => ref.gates?.breakerOpen(sw.clock.now()) ?? false,
  });
  const hook = (c: ApiCall): void => {
    if (c.phase !== 'before') return;
    if (c.method === 'setUnschedulable' && c.args[1] === true)
      audit.sample({ cordon: String(c.args[0]) });
    if (c.method === 'createJob') {
      const req = c.args[0] as JobRequest;
      if (req.kind === 'restart_node' || req.kind === 'shutdown_node')
        audit.sample({ job: req.node });
    }
  };
  const life = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE, hook });
  ref.gates = life.engine.controller.gates;
  return { life, audit, ledger };
}

/** Held gates written into tickets, e.g. `storm-breaker`, `rack-cap`. */
function heldGatesInTickets(ledger: TicketLedger): Set<string> {
  const out = new Set<string>();
  for (const n of ledger.nodes()) {
    for (const w of ledger.lastTicket(n)?.workflows ?? []) {
      if (w.status === 'Held') out.add((w.message ?? '').split(':')[0] ?? '');
    }
  }
  return out;
}

/**
 * One storm: a lone fault first (its ticket shows the breaker's hold), the storm 30 s later,
 * faults cleared after 20 min when `clears`, then a fresh fault after the cooldown.
 */
async function storm(
  nodes: number,
  seed: number,
  kind: StormKind,
  clears: boolean,
): Promise<Set<string>> {
  const sw = await createSafetyWorld({ nodes, seed, racksOf: 4, leavesOf: 8 });
  const { life, audit, ledger } = auditedEngine(sw);
  const t0 = sw.clock.now();
  const lone = sw.names.at(-1) ?? '';
  sw.world.faults.injectFault({
    condition: 'Xid48GPUMemoryDBE',
    device: '5',
    node: lone,
    atMs: t0,
  });
  const set = stormSet(sw, kind, seed, lone);
  const ids = set.map((s) => sw.world.faults.injectFault({ ...s, atMs: t0 + 30_000 }));
  const fresh = sw.names.find((n) => n !== lone && !set.some((s) => s.node === n));
  let breakerSeen = false;
  let freshCordonedAt: number | undefined;
  for (let t = t0; t < t0 + 3 * HOUR; t = sw.clock.now()) {
    await life.cycle();
    audit.sample();
    if (metricValue(await life.metricsText(), 'aegis_storm_breaker_open') === 1) breakerSeen = true;
    if (clears && t >= t0 + 20 * MIN && t < t0 + 20 * MIN + 30_000)
      for (const id of ids) sw.world.faults.clearFault(id, t);
    if (fresh !== undefined && t >= t0 + 45 * MIN && t < t0 + 45 * MIN + 30_000) {
      sw.world.faults.injectFault({ condition: 'Xid79GPULost', device: '1', node: fresh, atMs: t });
    }
    if (
      fresh !== undefined &&
      freshCordonedAt === undefined &&
      (await sw.node(fresh)).unschedulable
    )
      freshCordonedAt = t;
    await sw.clock.advance(30_000);
  }
  await settleSteps(sw, life);
  figures.tried('storm');
  const violations = audit.violations();
  figures.bad(
    'storm',
    violations.length,
    `${kind} storm on ${nodes} nodes (seed ${seed}): ${violations.join('; ')}`,
  );
  const text = await life.metricsText();
  assert.deepEqual(violations, [], 'no node touched beyond a limit');
  assert.ok(life.engine.controller.gates.breakerTrips >= 1, 'the breaker tripped');
  assert.ok(breakerSeen, 'aegis_storm_breaker_open showed 1');
  assert.ok(
    metricSum(text, 'aegis_safety_held_total', 'gate="storm-breaker"') > 0,
    'breaker holds counted',
  );
  assert.ok((audit.peaks.get('cordoned') ?? 0) <= audit.cordonBudget);
  assert.ok(
    sw.world.cluster.rebootCount(lone) >= 1,
    'the lone fault was remediated once the breaker closed',
  );
  if (clears) {
    assert.ok(
      freshCordonedAt !== undefined && freshCordonedAt <= t0 + 46 * MIN,
      'a fault after the cooldown is acted on at once',
    );
  } else {
    assert.equal(
      audit.peaks.get('cordoned'),
      audit.cordonBudget,
      'persisting faults fill the cordon budget, no more',
    );
    assert.ok(
      metricSum(text, 'aegis_safety_held_total', 'gate="cordon-budget"') > 0,
      'cordon-budget holds counted',
    );
  }
  assert.ok((audit.peaks.get('Reboot') ?? 0) <= CONFIG.safety.maxConcurrent.reboot);
  return heldGatesInTickets(ledger);
}

describe('storm: a fault on 30 % of the nodes at once', () => {
  const gates = new Set<string>();
  const cases: [number, number, StormKind, boolean][] = [
    [10, 1, 'mixed', true],
    [16, 2, 'mixed', false],
    [20, 3, 'mixed', false],
    [12, 4, 'rack', true],
    [20, 5, 'rack', false],
    [16, 6, 'leaf', true],
    [20, 7, 'leaf', false],
    [14, 8, 'mixed', true],
    [18, 9, 'rack', false],
    [20, 10, 'mixed', true],
  ];
  for (const [nodes, seed, kind, clears] of cases) {
    it(`${kind} storm on ${nodes} nodes, seed ${seed}${clears ? ', cleared after 20 min' : ', persisting'}: limits hold, remediation resumes`, async () => {
      for (const g of await storm(nodes, seed, kind, clears)) gates.add(g);
    });
  }

  it('holds are written into the tickets they hold back, gate by gate', () => {
    assert.ok(gates.has('storm-breaker'), `gates seen: ${[...gates].join(', ')}`);
    assert.ok(
      [...gates].some((g) => g !== 'storm-breaker'),
      `a cap or cooldown hold too: ${[...gates].join(', ')}`,
    );
  });
});

describe('storm breaker: operator reset', () => {
  it('a daemon restarted during a storm trips its breaker again before touching anything', async () => {
    const sw = await createSafetyWorld({ nodes: 16, seed: 22, racksOf: 4, leavesOf: 8 });
    const first = auditedEngine(sw);
    for (const node of sw.names.slice(0, 6)) {
      sw.world.faults.injectFault({
        condition: 'Xid48GPUMemoryDBE',
        device: '3',
        node,
        atMs: sw.clock.now(),
      });
    }
    for (let i = 0; i < 4; i++) {
      await first.life.cycle();
      await sw.clock.advance(30_000);
    }
    assert.ok(first.life.engine.controller.gates.breakerOpen(sw.clock.now()), 'tripped');
    first.life.cluster.kill();
    const second = auditedEngine(sw);
    await second.life.cycle();
    figures.tried('storm');
    assert.ok(
      second.life.engine.controller.gates.breakerOpen(sw.clock.now()),
      'tripped again at once',
    );
    assert.deepEqual(
      second.life.steps.filter((s) => s.status === 'Running'),
      [],
      'nothing started',
    );
    const violations = second.audit.violations();
    figures.bad('storm', violations.length, `restart during a storm: ${violations.join('; ')}`);
    assert.deepEqual(violations, []);
  });

  it('an operator reset resumes remediation before the cooldown ends, within the limits', async () => {
    const sw = await createSafetyWorld({ nodes: 16, seed: 21, racksOf: 4, leavesOf: 8 });
    const { life, audit } = auditedEngine(sw);
    const t0 = sw.clock.now();
    for (const node of sw.names.slice(0, 6)) {
      sw.world.faults.injectFault({ condition: 'Xid48GPUMemoryDBE', device: '2', node, atMs: t0 });
    }
    const cordons = (): number =>
      life.steps.filter((s) => s.action === 'Cordon' && s.status === 'Succeeded').length;
    for (let i = 0; i < 10; i++) {
      await life.cycle();
      audit.sample();
      await sw.clock.advance(30_000);
    }
    assert.ok(life.engine.controller.gates.breakerOpen(sw.clock.now()), 'tripped');
    assert.equal(cordons(), 0, 'nothing cordoned while the breaker is open');
    life.engine.controller.gates.resetBreaker();
    for (let i = 0; i < 4; i++) {
      await life.cycle();
      audit.sample();
      await sw.clock.advance(30_000);
    }
    figures.tried('storm');
    assert.equal(metricValue(await life.metricsText(), 'aegis_storm_breaker_open'), 0);
    assert.ok(cordons() >= 1, 'remediation resumed right after the reset');
    assert.ok(sw.clock.now() < t0 + 30 * MIN, 'well before the cooldown would have ended');
    const violations = audit.violations();
    figures.bad('storm', violations.length, `operator reset: ${violations.join('; ')}`);
    assert.deepEqual(violations, []);
    assert.ok(
      (audit.peaks.get('cordoned') ?? 0) <= audit.cordonBudget,
      'the cordon budget still holds after the reset',
    );
  });
});

describe('per-node limits: cooldown and repeat offender', () => {
  it('a second reboot waits out the node cooldown; a node that keeps failing goes to a human after repeatOffenderMax remediations', async () => {
    const sw = await createSafetyWorld({ nodes: 6, seed: 51 });
    const config = safetyConfig({ safety: { maxCordonedFraction: 0.5 } });
    const life = startEngine(sw, { config, catalogue: CATALOGUE });
    const ledger = new TicketLedger(sw.world.cluster);
    const [hung = '', recurring = ''] = sw.names.slice(1);
    const fault = (node: string, condition: string): void => {
      sw.world.faults.injectFault({
        condition,
        device: '1',
        node,
        atMs: sw.clock.now(),
        persistence: condition === 'GpuHung' ? 'survives-reboot' : 'until-reboot',
      });
    };
    fault(hung, 'GpuHung');
    let recurrences = 0;
    for (let i = 0; i < (8 * HOUR) / 20_000; i++) {
      await life.cycle();
      const ticket = await sw.ticket(recurring);
      const closed = ticket === null || ticket.status === 'resolved' || ticket.status === 'closed';
      if (sw.world.faults.active(recurring).length === 0 && closed) {
        fault(recurring, 'Xid48GPUMemoryDBE');
        recurrences++;
      }
      await sw.clock.advance(20_000);
    }
    await settleSteps(sw, life);
    figures.tried('storm');
    ledger.scan();
    const hungReboots = life.steps.filter((s) => s.node === hung && s.action === 'Reboot');
    const firstEnd = hungReboots.find((s) => s.status === 'Succeeded')?.atMs ?? Infinity;
    const secondStart = hungReboots.filter((s) => s.status === 'Running')[1]?.atMs ?? -Infinity;
    assert.ok(
      secondStart - firstEnd >= config.safety.nodeCooldownMs,
      `second reboot ${(secondStart - firstEnd) / 60_000} min after the first`,
    );
    const t = await sw.ticket(recurring);
    assert.ok(recurrences >= 2, `${recurrences} recurrences`);
    assert.ok(t !== null);
    assert.equal(t.status, 'assigned', 'handed to a human');
    assert.match(t.whySRE ?? '', /repeat offender/);
    const real = sw.world.cluster.rebootCount(recurring);
    const recorded = ledger.reboots(recurring).succeeded;
    assert.ok(
      real <= config.safety.repeatOffenderMax,
      `${real} reboots, repeat-offender limit ${config.safety.repeatOffenderMax}`,
    );
    if (real !== recorded)
      figures.violation(
        `${recurring}: tickets record ${recorded} successful reboots, the node rebooted ${real} times (Job names reused across tickets)`,
      );
    assert.equal(recorded, real, 'every reboot a ticket records as Succeeded really happened');
  });
});
