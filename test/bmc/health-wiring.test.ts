/**
 * BMC health as conditions, wired into the controller: the real engine on the simulated fleet,
 * one node whose ipmi-exporter is not scraped and one whose exporter reports, both mapped to
 * OpenIPMI's ipmi_sim (a LAN BMC read through ipmitool over RMCP+). A failing fan on the BMC
 * raises BaseBoardCriticalIssue{fan} on the node without exporter (cordon, ticket naming the BMC
 * reading) and clears when the fan is healthy again; the node whose exporter reports is never
 * read through its BMC, so what the exporter reports is never reported twice. And the pure fold:
 * BMC observations count only where the exporter is known absent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bmcReadingWhereNoExporter } from '../../src/bmc/health.js';
import { DEFAULT_IPMI_OPTIONS, ipmiClient } from '../../src/bmc/ipmi.js';
import { createOutOfBand } from '../../src/bmc/out-of-band.js';
import { CATALOGUE } from '../../src/catalogue/index.js';
import { SIGNAL_PRESENCE } from '../../src/catalogue/signals.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import { TICKET_ANNOTATION } from '../../src/core/types.js';
import { createEngine, type Engine } from '../../src/daemon.js';
import { createMemoryLogger } from '../../src/engine/logger.js';
import type { StepEvent } from '../../src/engine/runner.js';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import { createSimWorld, type SimWorld } from '../../src/sim/sim-world.js';
import { parseTicket } from '../../src/ticket/ticket.js';
import { ipmiSimMissing, startIpmiSim, type IpmiSim } from './ipmi-sim-harness.js';

const MIN = 60_000;
const missing = ipmiSimMissing();

describe('BMC health wired into the controller (ipmi_sim)', { skip: missing }, () => {
  let sim: IpmiSim;
  let world: SimWorld;
  let engine: Engine;
  let metrics: Metrics;
  let clock: ManualClock;
  const steps: StepEvent[] = [];
  let noExporter = '';
  let withExporter = '';
  const signal = new AbortController().signal;

  before(async () => {
    sim = await startIpmiSim();
    clock = new ManualClock();
    world = createSimWorld({ nodes: 2, seed: 7, catalogue: CATALOGUE, clock });
    [noExporter = '', withExporter = ''] = (await world.cluster.listNodes(signal)).map(
      (n) => n.name,
    );
    world.metrics.staleExporter(noExporter, 'ipmi-exporter');
    const address = `ipmi://127.0.0.1:${sim.port}`;
    const config = ConfigSchema.parse({
      // Two nodes may both be cordoned; level 0: cordon and ticket, nothing disruptive.
      safety: { dryRun: false, maxCordonedFraction: 1 },
      sop: { level: 0 },
      bmc: {
        enabled: true,
        nodes: { [noExporter]: address, [withExporter]: address },
        health: { intervalMs: MIN, staleAfterMs: 10 * MIN },
      },
      // Raised and cleared at once (the catalogue's 3 h `for` is about ipmi-exporter's scrapes).
      conditions: { BaseBoardCriticalIssue: { forMs: 0, clearForMs: 0 } },
    });
    metrics = createMetrics();
    const prio = new Map(CATALOGUE.map((e) => [e.name, e.priority]));
    engine = createEngine({
      cluster: world.cluster,
      metricsSource: world.metrics,
      clock,
      config,
      catalogue: CATALOGUE,
      presence: SIGNAL_PRESENCE,
      priorityOf: () => (name) => prio.get(name) ?? 999,
      metrics,
      log: createMemoryLogger(),
      onStep: (e) => steps.push(e),
      outOfBand: createOutOfBand({
        selection: {
          enabled: true,
          defaultProtocol: 'ipmi',
          credentials: '',
          nodes: { [noExporter]: address, [withExporter]: address },
          allowedAddresses: [],
        },
        credentialsSecret: 'aegis-bmc',
        readSecret: () => Promise.resolve({ username: sim.username, password: sim.password }),
        connectors: {
          ipmi: (t, c) =>
            ipmiClient(t, c, {
              ...DEFAULT_IPMI_OPTIONS,
              cipherSuite: sim.cipherSuite,
              timeoutMs: 15_000,
            }),
          redfish: () => {
            throw new Error('not here');
          },
        },
        timing: { powerOffTimeoutMs: MIN, powerOnTimeoutMs: MIN, bootTimeoutMs: MIN, pollMs: 1000 },
        notReadyAfterMs: 10 * MIN,
        metrics,
      }),
    });
  });
  after(() => {
    sim.stop();
  });

  /** One cycle that starts a BMC reading, the reading, and the cycle that folds it in. */
  async function readBmcs(): Promise<void> {
    await clock.advance(MIN);
    await engine.controller.cycle(signal);
    await engine.controller.bmcHealthSettled();
    // Two cycles: an absence counts once a presence answer (asked beside the cycles) confirms it.
    for (let i = 0; i < 2; i++) {
      await clock.advance(5_000);
      await engine.controller.cycle(signal);
      await settle();
    }
  }
  /** Lets the steps begun settle (writes on the simulated cluster; Jobs wait for the clock). */
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));
  const gauge = async (condition: string): Promise<number> =>
    (await metrics.conditionGauge.get()).values.find((v) => v.labels.condition === condition)
      ?.value ?? 0;
  const polls = async (): Promise<number> =>
    (await metrics.bmcHealthPolls.get()).values.reduce((n, v) => n + v.value, 0);
  const ticketOf = async (node: string): Promise<string> =>
    (await world.cluster.getNode(node, signal)).annotations[TICKET_ANNOTATION] ?? '';

  it('a healthy BMC: read for the node without exporter only, nothing raised', async () => {
    await readBmcs();
    assert.equal(await polls(), 1, 'one reading: the node whose exporter reports is not read');
    assert.equal(await gauge('BaseBoardCriticalIssue'), 0);
    assert.deepEqual(
      steps.filter((s) => s.status !== 'DryRun').map((s) => `${s.node}:${s.action}`),
      [],
    );
  });

  it('a fan below its critical threshold raises BaseBoardCriticalIssue{fan} on that node only', async () => {
    await sim.console(['sensor_set_value 0x20 0 2 3 1']);
    await readBmcs();
    assert.equal(await polls(), 2);
    assert.equal(await gauge('BaseBoardCriticalIssue'), 1);
    const cordons = steps.filter((s) => s.action === 'Cordon' && s.status === 'Succeeded');
    assert.deepEqual(
      cordons.map((s) => `${s.node}:${s.condition}`),
      [`${noExporter}:BaseBoardCriticalIssue`],
    );
    const ticket = parseTicket(await ticketOf(noExporter), noExporter);
    assert.ok(ticket.conditions.includes('BaseBoardCriticalIssue/fan'), ticket.conditions.join());
    assert.match(ticket.reason, /BMC Fan1: lcr \(300 RPM\)/);
    // The same BMC serves the node whose exporter reports: it is not read, nothing is raised there.
    assert.equal(await ticketOf(withExporter), '');
  });

  it('the fan healthy again: the condition clears on the next reading', async () => {
    await sim.console(['sensor_set_value 0x20 0 2 60 1']);
    await readBmcs();
    assert.equal(await polls(), 3);
    assert.equal(await gauge('BaseBoardCriticalIssue'), 0);
  });

  it("a fault ipmi-exporter reports on the other node is the exporter's alone (the BMC is not read there)", async () => {
    await sim.console(['sensor_set_value 0x20 0 2 3 1']);
    world.faults.injectFault({
      condition: 'BaseBoardCriticalIssue',
      node: withExporter,
      device: 'fan',
      atMs: clock.now(),
    });
    await readBmcs();
    assert.equal(
      await polls(),
      4,
      'still one reading per interval: only the node without exporter',
    );
    const t = parseTicket(await ticketOf(withExporter), withExporter);
    assert.ok(t.conditions.includes('BaseBoardCriticalIssue/fan'), t.conditions.join());
    assert.doesNotMatch(t.reason, /BMC /, 'the exporter, not the BMC, reported it');
    assert.equal(await gauge('BaseBoardCriticalIssue'), 2);
  });
});

describe('the BMC reading folded into a cycle (pure)', () => {
  const reading = {
    observations: [
      {
        node: 'a',
        domain: 'Baseboard' as const,
        condition: 'BaseBoardCriticalIssue',
        id: 'fan',
        pciBdf: '',
        msg: 'BMC Fan1: lcr',
        value: 1,
      },
      {
        node: 'b',
        domain: 'Baseboard' as const,
        condition: 'BaseBoardCriticalIssue',
        id: 'fan',
        pciBdf: '',
        msg: 'BMC Fan1: lcr',
        value: 1,
      },
    ],
    fresh: new Map([
      ['a', new Set(['BaseBoardCriticalIssue'])],
      ['b', new Set(['BaseBoardCriticalIssue'])],
    ]),
  };

  it('keeps only the nodes whose exporter is known absent: observations and what it vouches for', () => {
    const folded = bmcReadingWhereNoExporter(reading, (n) => n === 'a');
    assert.deepEqual(
      folded.observations.map((o) => o.node),
      ['a'],
    );
    assert.deepEqual([...folded.fresh.keys()], ['a']);
  });
});
