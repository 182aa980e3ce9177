/**
 * BMC health as conditions through Redfish, wired into the controller: the real engine on the
 * simulated fleet, one node whose ipmi-exporter is not scraped and one whose exporter reports,
 * both mapped to the Redfish test server (the DMTF's public-rackmount1 mockup over HTTPS, Basic
 * authentication, read through the real client). A failed fan raises BaseBoardCriticalIssue{fan}
 * on the node without exporter — the condition IPMI gives — naming the fan, and clears when the
 * fan is healthy again; the node whose exporter reports is never read; wrong credentials leave
 * the condition held (stale), never cleared, until a reading succeeds again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_REDFISH_OPTIONS, redfishClient } from '../../src/bmc/redfish.js';
import { parseTicket } from '../../src/ticket/ticket.js';
import { startRedfishServer, type RedfishServer } from './redfish-server.js';
import { MIN, startHealthWiring, type HealthWiring } from './health-wiring-harness.js';

const CH = '/redfish/v1/Chassis/1U';

describe('BMC health wired into the controller (Redfish)', () => {
  let rf: RedfishServer;
  let w: HealthWiring;
  let password = '';

  /** The live Thermal and Power of the server's chassis. */
  const fan = (): Record<string, unknown> =>
    ((rf.resource(`${CH}/Thermal`)['Fans'] as Record<string, unknown>[])[0] ?? {})[
      'Status'
    ] as Record<string, unknown>;

  before(async () => {
    rf = await startRedfishServer();
    password = rf.password;
    // The mockup as published has its power supply in Health Warning: the baseline is a healthy host.
    const psu = (rf.resource(`${CH}/Power`)['PowerSupplies'] as Record<string, unknown>[])[0];
    (psu?.['Status'] as Record<string, unknown>)['Health'] = 'OK';
    w = await startHealthWiring({
      address: `redfish://127.0.0.1:${rf.port}`,
      protocol: 'redfish',
      connector: (t, c) =>
        redfishClient(t, c, { ...DEFAULT_REDFISH_OPTIONS, ca: rf.ca, timeoutMs: 5_000 }),
      readSecret: () => Promise.resolve({ username: rf.username, password }),
    });
  });
  after(async () => {
    await rf.close();
  });

  /** The system's GETs the server saw: one per reading (the node whose exporter reports: none). */
  const systemReads = (): number =>
    rf.requests.filter((r) => r === 'GET /redfish/v1/Systems/437XR1138R2 200').length;

  it('a healthy BMC: read for the node without exporter only, nothing raised', async () => {
    await w.readBmcs();
    assert.equal(
      await w.polls('ok'),
      1,
      'one reading: the node whose exporter reports is not read',
    );
    assert.equal(systemReads(), 1);
    assert.ok(rf.requests.includes(`GET ${CH}/Thermal 200`), 'the chassis Thermal read');
    assert.equal(await w.gauge('BaseBoardCriticalIssue'), 0);
    assert.deepEqual(
      w.steps.filter((s) => s.status !== 'DryRun').map((s) => `${s.node}:${s.action}`),
      [],
    );
  });

  it('a failed fan raises BaseBoardCriticalIssue{fan} on that node only, naming the fan', async () => {
    fan()['Health'] = 'Critical';
    await w.readBmcs();
    assert.equal(await w.polls('ok'), 2);
    assert.equal(await w.gauge('BaseBoardCriticalIssue'), 1);
    const cordons = w.steps.filter((s) => s.action === 'Cordon' && s.status === 'Succeeded');
    assert.deepEqual(
      cordons.map((s) => `${s.node}:${s.condition}`),
      [`${w.noExporter}:BaseBoardCriticalIssue`],
    );
    const ticket = parseTicket(await w.ticketOf(w.noExporter), w.noExporter);
    assert.ok(ticket.conditions.includes('BaseBoardCriticalIssue/fan'), ticket.conditions.join());
    assert.match(ticket.reason, /BMC BaseBoard System Fan: Health Critical/);
    assert.equal(await w.ticketOf(w.withExporter), '', 'the node whose exporter reports: not read');
    assert.equal(systemReads(), 2);
  });

  it('the fan healthy again: the condition clears on the next reading', async () => {
    fan()['Health'] = 'OK';
    await w.readBmcs();
    assert.equal(await w.polls('ok'), 3);
    assert.equal(await w.gauge('BaseBoardCriticalIssue'), 0);
  });

  it('wrong credentials: the fault is held (stale), never cleared, until a reading succeeds', async () => {
    fan()['Health'] = 'Critical';
    await w.readBmcs();
    assert.equal(await w.gauge('BaseBoardCriticalIssue'), 1);
    password = 'not-the-password';
    // The fan is repaired meanwhile, but the BMC cannot be read: nothing may clear the fault.
    fan()['Health'] = 'OK';
    await w.readBmcs();
    assert.equal(await w.polls('bmc_auth_failed'), 1);
    const warned = w.log.lines.filter((l) => l.msg.startsWith('BMC health not read'));
    assert.equal(warned.length, 1);
    assert.match(String(warned[0]?.fields?.['err']), /refused the credentials \(HTTP 401\)/);
    assert.doesNotMatch(JSON.stringify(w.log.lines), /not-the-password/);
    assert.equal(
      await w.gauge('BaseBoardCriticalIssue'),
      1,
      'held while the last reading is fresh',
    );
    // Past bmc.health.staleAfterMs: the reading vouches for nothing, the condition is stale, held.
    await w.readBmcs(10 * MIN);
    assert.ok((await w.polls('bmc_auth_failed')) >= 2);
    assert.equal(await w.gauge('BaseBoardCriticalIssue'), 1, 'stale, not cleared');
    password = rf.password;
    await w.readBmcs();
    assert.equal(await w.gauge('BaseBoardCriticalIssue'), 0, 'a good reading clears it');
  });
});
