/**
 * Failure domains on the simulated fleet with the real engine: a leaf switch losing IB on many
 * nodes is one domain incident (recorded in a ConfigMap and in each member's ticket, announced
 * once, members held, released when the switch recovers); a restarted daemon resumes it from the
 * tickets without a second announcement; dry-run writes nothing; and the same fleet without
 * failure domains shows the defect of issue 16 (a hand-off per node, members left without a
 * ticket behind the cordon budget). The scenarios (scenarios/domain-*.yaml) run through
 * test/scenarios/scenarios.test.ts; this file also runs three of them with the features off to
 * show that their expectations fail without them.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../../src/catalogue/index.js';
import { SIGNAL_PRESENCE } from '../../src/catalogue/signals.js';
import { defaultConfig, type Config } from '../../src/config/schema.js';
import { createEngine, type Engine } from '../../src/daemon.js';
import { silentLogger } from '../../src/engine/logger.js';
import type { StepEvent } from '../../src/engine/runner.js';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/runner.js';
import type { SimWorld } from '../../src/sim/sim-world.js';
import { createSimHarness, type SimHarness } from '../helpers/sim-harness.js';

const MIN = 60_000;
const ROOT = join(import.meta.dirname, '..', '..');

/** A 40-node fleet (leaf-001: nodes 1-32) whose storm breaker tolerates 10 new faulty nodes. */
async function fleet(config: Partial<Config> = {}): Promise<SimHarness> {
  const base = defaultConfig();
  return createSimHarness({
    nodes: 40,
    config: {
      ...config,
      safety: { ...base.safety, dryRun: false, stormMaxNewFaultyFraction: 0.25, ...config.safety },
    },
  });
}

/** IB down on nodes 3..10 (leaf-001) from now; returns the fault ids. */
function leafDown(h: SimHarness): string[] {
  const ids: string[] = [];
  for (let i = 2; i < 10; i++)
    ids.push(
      h.world.faults.injectFault({
        condition: 'IBLinkAbnormal',
        node: h.node(i),
        device: 'mlx5_2/1',
        atMs: h.clock.now(),
        persistence: 'until-repair',
      }),
    );
  return ids;
}

const members = (h: SimHarness): string[] => Array.from({ length: 8 }, (_, k) => h.node(k + 2));

describe('a leaf switch losing IB on 8 nodes', () => {
  it('is one domain incident: recorded, pointed at from every member, announced once, members held, released on recovery', async () => {
    const h = await fleet();
    await h.run(2 * MIN, 20_000);
    const ids = leafDown(h);
    await h.run(20 * MIN, 20_000);

    const open = h.engine.controller.incidents;
    assert.equal(open.length, 1);
    const inc = open[0];
    assert.ok(inc !== undefined);
    assert.equal(inc.kind, 'leaf');
    assert.equal(inc.domain, 'leaf-001');
    assert.deepEqual(inc.members, [...members(h)].sort());
    const records = h.world.cluster.incidentRecords();
    assert.deepEqual([...records.keys()], [inc.name]);
    const rec = records.get(inc.name);
    assert.equal(rec?.labels['aegis.io/incident'], 'true');
    assert.equal(rec.labels['aegis.io/domain'], 'leaf-001');
    assert.equal(rec.data['status'], 'open');
    assert.equal(rec.data['supervisor'], 'sre');
    assert.match(
      rec.data['summary'] ?? '',
      /^leaf switch leaf-001: 8 of 32 nodes lost InfiniBand links \(IBLinkAbnormal, /,
    );
    assert.equal(rec.data['members']?.split('\n').length, 8);
    for (const n of members(h)) {
      const t = await h.ticket(n);
      assert.equal(t?.incident?.name, inc.name, `${n} points at the incident`);
      assert.equal(t.incident.domain, 'leaf/leaf-001');
      assert.equal(t.incident.released, undefined);
    }
    const held = await Promise.all(members(h).map((n) => h.ticket(n)));
    assert.ok(
      held.some((t) =>
        t?.workflows.some(
          (w) =>
            w.status === 'Held' &&
            w.message?.startsWith(`domain-incident: member of domain incident ${inc.name}`),
        ),
      ),
      'a member ticket says why its next step waits',
    );
    const announced = h.world.cluster.events().filter((e) => e.reason === 'AegisDomainIncident');
    assert.equal(announced.length, 1);
    assert.match(
      announced[0]?.message ?? '',
      /leaf switch leaf-001: 8 of 32 nodes lost InfiniBand/,
    );
    assert.match(announced[0]?.message ?? '', /handed to sre/);
    const text = await h.metrics.registry.metrics();
    assert.match(text, /aegis_domain_incidents\{kind="leaf",domain="leaf-001",rule="leaf-ib"\} 8/);
    assert.match(text, /aegis_domain_incidents_opened_total\{kind="leaf",rule="leaf-ib"\} 1/);

    // The switch is back.
    for (const id of ids) h.world.faults.clearFault(id, h.clock.now());
    await h.run(40 * MIN, 20_000);
    await h.engine.controller.idle();
    assert.equal(h.engine.controller.incidents.length, 0);
    assert.equal(records.get(inc.name)?.data['status'], 'released');
    assert.equal(records.get(inc.name)?.labels['aegis.io/status'], 'released');
    assert.equal(
      h.world.cluster.events().filter((e) => e.reason === 'AegisDomainIncidentEnded').length,
      1,
    );
    for (const n of members(h)) {
      const t = await h.ticket(n);
      assert.ok(t?.incident?.released !== undefined, `${n}: pointer released`);
      assert.ok(t.status === 'resolved' || t.status === 'closed', `${n}: ${t.status}`);
      assert.equal((await h.get(n)).unschedulable, false, `${n} back in service`);
    }
    for (const a of ['Diagnose', 'Reboot', 'Drain', 'HandToHuman'])
      assert.deepEqual(
        h.steps.filter((s) => s.action === a && s.status === 'Running').map((s) => s.node),
        [],
        `no ${a}`,
      );
    assert.doesNotMatch(await h.metrics.registry.metrics(), /aegis_domain_incidents\{/);
  });

  it('without failure domains (the defect): a hand-off per cordoned node and members with no ticket behind the cordon budget', async () => {
    const base = defaultConfig();
    const h = await fleet({ domains: { ...base.domains, enabled: false } });
    leafDown(h);
    await h.run(60 * MIN, 20_000);
    await h.engine.controller.idle();
    const handOffs = h.steps.filter((s) => s.action === 'HandToHuman' && s.status === 'Succeeded');
    const tickets = await Promise.all(members(h).map((n) => h.ticket(n)));
    const without = tickets.filter((t) => t === null).length;
    console.log(
      `DOMAINS FIGURES without domains: ${handOffs.length} hand-offs, ${without} of 8 members without a ticket; with: 0 and 0`,
    );
    assert.equal(handOffs.length, 4, 'one per node the cordon budget (4 of 40) let through');
    assert.equal(without, 4);
    assert.equal(
      h.world.cluster.events().filter((e) => e.reason === 'AegisDomainIncident').length,
      0,
    );
  });
});

/** A second engine (a restarted daemon) over the same simulated world. */
function restartEngine(
  world: SimWorld,
  h: SimHarness,
  config: Config,
): {
  engine: Engine;
  metrics: Metrics;
  steps: StepEvent[];
} {
  const prio = new Map(CATALOGUE.map((e) => [e.name, e.priority]));
  const metrics = createMetrics();
  const steps: StepEvent[] = [];
  const engine = createEngine({
    cluster: world.cluster,
    metricsSource: world.metrics,
    clock: h.clock,
    config,
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    priorityOf: () => (name) => prio.get(name) ?? 999,
    metrics,
    log: silentLogger,
    onStep: (e) => steps.push(e),
  });
  return { engine, metrics, steps };
}

describe('a restarted daemon during a domain incident', () => {
  it('restores it from the members’ tickets: no second incident or announcement, members still held, released on recovery', async () => {
    const h = await fleet();
    const ids = leafDown(h);
    await h.run(10 * MIN, 20_000);
    await h.engine.controller.idle();
    const before = h.engine.controller.incidents[0];
    assert.ok(before !== undefined);
    const config = {
      ...defaultConfig(),
      safety: { ...defaultConfig().safety, dryRun: false, stormMaxNewFaultyFraction: 0.25 },
    };
    const next = restartEngine(h.world, h, config);
    const signal = new AbortController().signal;
    const cycles = async (ms: number): Promise<void> => {
      const end = h.clock.now() + ms;
      while (h.clock.now() < end) {
        await next.engine.controller.cycle(signal);
        await h.clock.advance(20_000);
      }
    };
    await cycles(10 * MIN);
    assert.deepEqual(
      next.engine.controller.incidents.map((i) => [i.name, i.members.length]),
      [[before.name, 8]],
    );
    assert.equal(
      h.world.cluster.events().filter((e) => e.reason === 'AegisDomainIncident').length,
      1,
    );
    assert.doesNotMatch(
      await next.metrics.registry.metrics(),
      /aegis_domain_incidents_opened_total\{/,
    );
    assert.ok(
      next.steps.some((s) => s.status === 'Held' && s.message?.includes(before.name) === true),
    );
    for (const id of ids) h.world.faults.clearFault(id, h.clock.now());
    await cycles(20 * MIN);
    await next.engine.controller.idle();
    assert.equal(next.engine.controller.incidents.length, 0);
    assert.equal(
      h.world.cluster.events().filter((e) => e.reason === 'AegisDomainIncidentEnded').length,
      1,
    );
    assert.equal(h.world.cluster.incidentRecords().get(before.name)?.data['status'], 'released');
    assert.equal([...h.world.cluster.incidentRecords().keys()].length, 1);
  });
});

describe('dry-run', () => {
  it('computes the incident and shows the holds in the plan; writes no record, pointer or Event', async () => {
    const base = defaultConfig();
    // Members may not even be cordoned here, so that the plan's first step shows the hold.
    const rules = base.domains.rules.map((r) => ({ ...r, allow: [] }));
    const h = await fleet({
      safety: { ...base.safety, dryRun: true, stormMaxNewFaultyFraction: 0.25 },
      domains: { ...base.domains, rules },
    });
    leafDown(h);
    await h.run(10 * MIN, 20_000);
    assert.equal(h.engine.controller.incidents.length, 1);
    assert.equal(h.world.cluster.incidentRecords().size, 0);
    assert.deepEqual(
      h.world.cluster.writes().filter((w) => w.by === 'client'),
      [],
    );
    assert.equal(h.world.cluster.events().length, 0);
    assert.ok(
      h.steps.some(
        (s) => s.status === 'DryRun' && s.message?.includes('member of domain incident') === true,
      ),
      'the plan says the member would wait',
    );
  });
});

describe('the scenarios fail their expectations without the features (regression)', () => {
  const cases: [string, (c: Config) => Config, RegExp][] = [
    [
      'domain-leaf-switch.yaml',
      (c) => ({ ...c, domains: { ...c.domains, enabled: false } }),
      /one domain incident|hand-off per node|a ticket for every member|diagnosis Job/,
    ],
    [
      'domain-rack-power.yaml',
      (c) => ({ ...c, domains: { ...c.domains, enabled: false } }),
      /one domain incident|force-deleted|hand-off per node|a ticket for every member/,
    ],
    [
      'domain-level-limit.yaml',
      (c) => ({ ...c, safety: { ...c.safety, levelLimits: [] } }),
      /level limit|exactly 3|at most 3|ends schedulable/,
    ],
  ];
  for (const [file, off, expected] of cases) {
    it(`${file} with the feature off fails`, async () => {
      const scenario = await loadScenarioFile(join(ROOT, 'scenarios', file));
      const report = await runScenario({ ...scenario, config: off(scenario.config) });
      const failed = report.expectations.filter((e) => !e.passed);
      assert.ok(failed.length > 0, 'some expectation fails');
      assert.ok(
        failed.some((e) => expected.test(e.description)),
        failed.map((e) => e.description).join('; '),
      );
      console.log(
        `DOMAINS FIGURES ${file} without the feature: ${failed.map((e) => `✗ ${e.description} (${e.detail})`).join('; ')}`,
      );
    });
  }
});
