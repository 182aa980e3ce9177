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
import { parseTicket } from '../../src/ticket/ticket.js';
import { ipmiSimMissing, startIpmiSim, type IpmiSim } from './ipmi-sim-harness.js';
import { startHealthWiring, type HealthWiring } from './health-wiring-harness.js';

const missing = ipmiSimMissing();

describe('BMC health wired into the controller (ipmi_sim)', { skip: missing }, () => {
  let sim: IpmiSim;
  let w: HealthWiring;

  before(async () => {
    sim = await startIpmiSim();
    w = await startHealthWiring({
      address: `ipmi://127.0.0.1:${sim.port}`,
      protocol: 'ipmi',
      connector: (t, c) =>
        ipmiClient(t, c, {
          ...DEFAULT_IPMI_OPTIONS,
          cipherSuite: sim.cipherSuite,
          timeoutMs: 15_000,
        }),
      readSecret: () => Promise.resolve({ username: sim.username, password: sim.password }),
    });
  });
  after(() => {
    sim.stop();
  });

  it('a healthy BMC: read for the node without exporter only, nothing raised', async () => {
    await w.readBmcs();
    assert.equal(await w.polls(), 1, 'one reading: the node whose exporter reports is not read');
    assert.equal(await w.gauge('BaseBoardCriticalIssue'), 0);
    assert.deepEqual(
      w.steps.filter((s) => s.status !== 'DryRun').map((s) => `${s.node}:${s.action}`),
      [],
    );
  });

  it('a fan below its critical threshold raises BaseBoardCriticalIssue{fan} on that node only', async () => {
    await sim.console(['sensor_set_value 0x20 0 2 3 1']);
    await w.readBmcs();
    assert.equal(await w.polls(), 2);
    assert.equal(await w.gauge('BaseBoardCriticalIssue'), 1);
    const cordons = w.steps.filter((s) => s.action === 'Cordon' && s.status === 'Succeeded');
    assert.deepEqual(
      cordons.map((s) => `${s.node}:${s.condition}`),
      [`${w.noExporter}:BaseBoardCriticalIssue`],
    );
    const ticket = parseTicket(await w.ticketOf(w.noExporter), w.noExporter);
    assert.ok(ticket.conditions.includes('BaseBoardCriticalIssue/fan'), ticket.conditions.join());
    assert.match(ticket.reason, /BMC Fan1: lcr \(300 RPM\)/);
    // The same BMC serves the node whose exporter reports: it is not read, nothing is raised there.
    assert.equal(await w.ticketOf(w.withExporter), '');
  });

  it('the fan healthy again: the condition clears on the next reading', async () => {
    await sim.console(['sensor_set_value 0x20 0 2 60 1']);
    await w.readBmcs();
    assert.equal(await w.polls(), 3);
    assert.equal(await w.gauge('BaseBoardCriticalIssue'), 0);
  });

  it("a fault ipmi-exporter reports on the other node is the exporter's alone (the BMC is not read there)", async () => {
    await sim.console(['sensor_set_value 0x20 0 2 3 1']);
    w.world.faults.injectFault({
      condition: 'BaseBoardCriticalIssue',
      node: w.withExporter,
      device: 'fan',
      atMs: w.clock.now(),
    });
    await w.readBmcs();
    assert.equal(
      await w.polls(),
      4,
      'still one reading per interval: only the node without exporter',
    );
    const t = parseTicket(await w.ticketOf(w.withExporter), w.withExporter);
    assert.ok(t.conditions.includes('BaseBoardCriticalIssue/fan'), t.conditions.join());
    assert.doesNotMatch(t.reason, /BMC /, 'the exporter, not the BMC, reported it');
    assert.equal(await w.gauge('BaseBoardCriticalIssue'), 2);
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
