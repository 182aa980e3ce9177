/**
 * BMC health read through Redfish: the DMTF's public-rackmount1 mockup (test/fixtures/redfish,
 * as published) read as the catalogue's BMC conditions, the same conditions the IPMI sensors give
 * (a failed fan → BaseBoardCriticalIssue{fan} naming it, a PSU Critical → {power}, a temperature
 * over its critical threshold → {temperature}, a DIMM Critical → MemoryUnhealthy{DIMM}, a CPU
 * Critical → CpuUnhealthy{CPU}, a recent SEL LogEntry); then the client over HTTPS against the
 * test server: every resource read, the log's pages followed, and the errors (wrong password,
 * no answer, a collection larger than the bound) with the power path's codes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  healthObservations,
  logEntryFindings,
  parseSdrElist,
  redfishFindings,
  sdrFindings,
  type BmcFinding,
} from '../../src/bmc/health.js';
import {
  DEFAULT_REDFISH_OPTIONS,
  MAX_HEALTH_MEMBERS,
  redfishClient,
  type RedfishOptions,
} from '../../src/bmc/redfish.js';
import type { BmcTarget, RedfishHealthResources } from '../../src/bmc/types.js';
import { ErrorCode } from '../../src/core/errors.js';
import { LOG_ENTRIES, startRedfishServer, type RedfishServer } from './redfish-server.js';
import { rejection } from './rejection.js';

const MOCKUP = join(import.meta.dirname, '..', 'fixtures', 'redfish', 'public-rackmount1');
type Doc = Record<string, unknown>;
/** A mockup resource, by its Redfish path (a fresh copy each time). */
const mock = (path: string): Doc =>
  JSON.parse(readFileSync(join(MOCKUP, ...path.split('/').slice(3), 'index.json'), 'utf8')) as Doc;
const members = (path: string): Doc[] =>
  (mock(path)['Members'] as { '@odata.id': string }[]).map((m) => mock(m['@odata.id']));
const SYS = '/redfish/v1/Systems/437XR1138R2';
const CH = '/redfish/v1/Chassis/1U';
const DAY = 86_400_000;
/** The mockup's SEL entries are of 2012-03-07; "now" a year on leaves them out of a 24 h window. */
const NOW = Date.UTC(2013, 2, 7);

/** The mockup as the client reads it from a chassis linking Thermal and Power (v1 resources). */
function legacy(): { -readonly [K in keyof RedfishHealthResources]: Doc[] } {
  return {
    thermal: [mock(`${CH}/Thermal`)],
    power: [mock(`${CH}/Power`)],
    fans: [],
    powerSupplies: [],
    sensors: [],
    memory: members(`${SYS}/Memory`),
    processors: members(`${SYS}/Processors`),
    logEntries: mock(`${SYS}/LogServices/Log1/Entries`)['Members'] as Doc[],
  };
}
/** …and from a chassis that links only ThermalSubsystem, PowerSubsystem and Sensors. */
function subsystems(): { -readonly [K in keyof RedfishHealthResources]: Doc[] } {
  return {
    ...legacy(),
    thermal: [],
    power: [],
    fans: members(`${CH}/ThermalSubsystem/Fans`),
    powerSupplies: members(`${CH}/PowerSubsystem/PowerSupplies`),
    sensors: members(`${CH}/Sensors`),
  };
}
const at = <T>(list: readonly T[], i: number): T => {
  const v = list[i];
  assert.ok(v !== undefined, `no element ${i}`);
  return v;
};
const status = (d: Doc): Doc => d['Status'] as Doc;

/** condition/id → message, for compact assertions. */
function conditions(findings: readonly BmcFinding[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of healthObservations('n1', findings))
    out[o.id === '' ? o.condition : `${o.condition}/${o.id}`] = o.msg;
  return out;
}
const read = (r: RedfishHealthResources, nowMs = NOW): Record<string, string> =>
  conditions(redfishFindings(r, nowMs - DAY));

describe('the public-rackmount1 mockup read as BMC conditions', () => {
  it('as published: only its power supply, in Health Warning, is a finding (a warning)', () => {
    for (const r of [legacy(), subsystems()]) {
      const f = redfishFindings(r, NOW - DAY);
      assert.equal(f.length, 1, JSON.stringify(f));
      assert.deepEqual(
        { kind: at(f, 0).kind, severity: at(f, 0).severity, why: at(f, 0).why },
        { kind: 'power', severity: 1, why: 'Health Warning' },
      );
    }
    assert.deepEqual(read(legacy()), {
      BaseBoardSensorWarning: 'BMC Power Supply Bay: Health Warning',
    });
    assert.deepEqual(read(subsystems()), {
      BaseBoardSensorWarning: 'BMC Power Supply Bay 1: Health Warning',
    });
  });

  it('healthy (the PSU back to OK): no finding, through either model', () => {
    const a = legacy();
    status(at(at(a.power, 0)['PowerSupplies'] as Doc[], 0))['Health'] = 'OK';
    const b = subsystems();
    status(at(b.powerSupplies, 0))['Health'] = 'OK';
    assert.deepEqual(redfishFindings(a, NOW - DAY), []);
    assert.deepEqual(redfishFindings(b, NOW - DAY), []);
  });

  /** The mockup with its PSU healthy, changed by `change`. */
  const healthy = (change: (r: ReturnType<typeof legacy>) => void): ReturnType<typeof legacy> => {
    const r = legacy();
    status(at(at(r.power, 0)['PowerSupplies'] as Doc[], 0))['Health'] = 'OK';
    change(r);
    return r;
  };
  const fan = (r: ReturnType<typeof legacy>): Doc => at(at(r.thermal, 0)['Fans'] as Doc[], 0);
  const temp = (r: ReturnType<typeof legacy>, i: number): Doc =>
    at(at(r.thermal, 0)['Temperatures'] as Doc[], i);

  it('a fan Critical: the condition IPMI gives for a fan below its critical threshold, naming the fan', () => {
    const ipmi = conditions(
      sdrFindings(
        parseSdrElist(
          readFileSync(join(import.meta.dirname, 'fixtures', 'ipmi_sim', 'sdr-faults.txt'), 'utf8'),
        ).filter((s) => s.name === 'Fan1'),
      ),
    );
    assert.deepEqual(Object.keys(ipmi), ['BaseBoardCriticalIssue/fan']);
    const rf = read(healthy((r) => (status(fan(r))['Health'] = 'Critical')));
    assert.deepEqual(Object.keys(rf), Object.keys(ipmi));
    assert.equal(rf['BaseBoardCriticalIssue/fan'], 'BMC BaseBoard System Fan: Health Critical');
  });

  it("a fan's reading at its LowerThresholdFatal (0 RPM): the same condition, with the reading", () => {
    assert.deepEqual(read(healthy((r) => (fan(r)['Reading'] = 0))), {
      'BaseBoardCriticalIssue/fan':
        'BMC BaseBoard System Fan: reading 0 RPM <= LowerThresholdFatal 0',
    });
  });

  it('a fan of ThermalSubsystem Critical, and a Sensor reading below LowerCritical: fan', () => {
    const r = subsystems();
    status(at(r.powerSupplies, 0))['Health'] = 'OK';
    status(at(r.fans, 0))['Health'] = 'Critical';
    const bay2 = r.sensors.find((s) => s['Id'] === 'FanBay2');
    assert.ok(bay2 !== undefined);
    bay2['Reading'] = 0;
    assert.deepEqual(read(r), {
      'BaseBoardCriticalIssue/fan':
        'BMC Fan Bay 1: Health Critical; Chassis Fan #2: reading 0 % <= LowerCritical 0',
    });
  });

  it('a PSU Critical, or its input lost: BaseBoardCriticalIssue{power}', () => {
    const a = legacy();
    status(at(at(a.power, 0)['PowerSupplies'] as Doc[], 0))['Health'] = 'Critical';
    assert.deepEqual(read(a), {
      'BaseBoardCriticalIssue/power': 'BMC Power Supply Bay: Health Critical',
    });
    const b = subsystems();
    at(b.powerSupplies, 0)['LineInputStatus'] = 'LossOfInput';
    assert.deepEqual(read(b), {
      'BaseBoardCriticalIssue/power': 'BMC Power Supply Bay 1: LineInputStatus LossOfInput',
    });
    // Bay 2 is Absent: whatever its health says, there is nothing there.
    status(at(b.powerSupplies, 1))['Health'] = 'Critical';
    assert.equal(Object.keys(read(b)).length, 1);
  });

  it('a temperature over its critical threshold: {temperature}; over non-critical: a warning', () => {
    assert.deepEqual(read(healthy((r) => (temp(r, 0)['ReadingCelsius'] = 46))), {
      'BaseBoardCriticalIssue/temperature':
        'BMC CPU1 Temp: reading 46 C >= UpperThresholdCritical 45',
    });
    assert.deepEqual(read(healthy((r) => (temp(r, 0)['ReadingCelsius'] = 43))), {
      BaseBoardSensorWarning: 'BMC CPU1 Temp: reading 43 C >= UpperThresholdNonCritical 42',
    });
    // CPU2 Temp is Disabled: a reading there is not compared.
    assert.deepEqual(read(healthy((r) => (temp(r, 1)['ReadingCelsius'] = 99))), {});
    const s = subsystems();
    status(at(s.powerSupplies, 0))['Health'] = 'OK';
    const cpu = s.sensors.find((x) => x['Id'] === 'CPUTemp1');
    assert.ok(cpu !== undefined);
    cpu['Reading'] = 51;
    assert.deepEqual(read(s), {
      'BaseBoardCriticalIssue/temperature':
        'BMC CPU #1 Temperature: reading 51 Cel >= UpperFatal 50',
    });
  });

  it('a DIMM Critical: MemoryUnhealthy{DIMM}; a CPU Critical: CpuUnhealthy{CPU}; not an FPGA', () => {
    const byId = (list: Doc[], id: string): Doc => {
      const d = list.find((x) => x['Id'] === id);
      assert.ok(d !== undefined, id);
      return d;
    };
    assert.deepEqual(
      read(healthy((r) => (status(byId(r.memory, 'DIMM1'))['Health'] = 'Critical'))),
      { 'MemoryUnhealthy/DIMM1': 'BMC DIMM1: Health Critical' },
    );
    assert.deepEqual(
      read(healthy((r) => (status(byId(r.memory, 'DIMM2'))['Health'] = 'Warning'))),
      { BaseBoardSensorWarning: 'BMC DIMM2: Health Warning' },
    );
    assert.deepEqual(
      read(healthy((r) => (status(byId(r.processors, 'CPU1'))['Health'] = 'Critical'))),
      { 'CpuUnhealthy/CPU1': 'BMC CPU1: Health Critical' },
    );
    assert.deepEqual(
      read(healthy((r) => (status(byId(r.processors, 'FPGA1'))['Health'] = 'Critical'))),
      {},
    );
  });
});

describe('SEL entries read through Redfish (LogEntry, EntryType SEL)', () => {
  const entries = (): Doc[] => mock(`${SYS}/LogServices/Log1/Entries`)['Members'] as Doc[];
  const created = Date.parse('2012-03-07T14:45:00Z');

  it("the mockup's two Critical temperature entries, within the window: {temperature}", () => {
    const f = logEntryFindings(entries(), created - DAY);
    assert.deepEqual(
      f.map((x) => `${x.kind}|${x.sensor}|${x.severity}|${x.source}`),
      ['temperature|Temperature #1|2|SEL', 'temperature|Temperature #2|2|SEL'],
    );
    assert.deepEqual(Object.keys(conditions(f)), ['BaseBoardCriticalIssue/temperature']);
    assert.match(
      conditions(f)['BaseBoardCriticalIssue/temperature'] ?? '',
      /^BMC SEL Temperature #1: Temperature threshold exceeded \(Upper Critical - going high\) at 2012-03-07T14:44:00\.000Z/,
    );
  });

  it('older than the window: history, not a condition', () => {
    assert.deepEqual(logEntryFindings(entries(), created + 1), []);
  });

  it('closed by a later entry of the same sensor (Severity OK, Deassert) or Resolved', () => {
    const [e1 = {}, e2 = {}] = entries();
    const closed = {
      ...e1,
      Id: '3',
      Created: '2012-03-07T15:00:00Z',
      Severity: 'OK',
      EntryCode: 'Deassert',
    };
    assert.deepEqual(
      logEntryFindings([e1, e2, closed], 0).map((x) => x.sensor),
      ['Temperature #2'],
    );
    // Newest first (as some BMCs list them): the order is the entries' Created, not the list's.
    assert.deepEqual(
      logEntryFindings([closed, e2, e1], 0).map((x) => x.sensor),
      ['Temperature #2'],
    );
    assert.deepEqual(logEntryFindings([{ ...e1, Resolved: true }], 0), []);
    // Undated or not SEL: not counted.
    assert.deepEqual(
      logEntryFindings(
        [
          { ...e1, Created: undefined },
          { ...e2, EntryType: 'Event' },
        ],
        0,
      ),
      [],
    );
  });
});

describe('the Redfish client reading health (HTTPS, the test server)', () => {
  let rf: RedfishServer;
  before(async () => {
    rf = await startRedfishServer();
  });
  after(async () => {
    await rf.close();
  });
  afterEach(() => {
    rf.restore();
  });
  const target: () => BmcTarget = () => ({
    node: 'gpu-rf-1',
    protocol: 'redfish',
    host: '127.0.0.1',
    port: rf.port,
    scheme: 'https',
    credentials: '',
    source: 'test',
  });
  const options = (o: Partial<RedfishOptions> = {}): RedfishOptions => ({
    ...DEFAULT_REDFISH_OPTIONS,
    ca: rf.ca,
    timeoutMs: 5_000,
    ...o,
  });
  const health = (password = rf.password, o: Partial<RedfishOptions> = {}) => {
    const c = redfishClient(target(), { username: rf.username, password }, options(o));
    assert.ok(c.redfishHealth !== undefined);
    return c.redfishHealth(AbortSignal.timeout(10_000));
  };

  it('reads the chassis Thermal and Power, Memory, Processors and every page of the log', async () => {
    rf.addLogEntry({
      ...((mock(LOG_ENTRIES)['Members'] as Doc[])[0] ?? {}),
      '@odata.id': `${LOG_ENTRIES}/3`,
      Id: '3',
      Created: new Date(NOW - 60_000).toISOString(),
    });
    const r = await health();
    assert.equal(r.thermal.length, 1);
    assert.equal(r.power.length, 1);
    assert.deepEqual([r.fans.length, r.powerSupplies.length, r.sensors.length], [0, 0, 0]);
    assert.equal(r.memory.length, 4);
    assert.equal(r.processors.length, 3);
    assert.equal(r.logEntries.length, 3, 'the entry on the second page read');
    assert.ok(rf.requests.includes(`GET ${LOG_ENTRIES} 200`));
    assert.deepEqual(read(r), {
      BaseBoardSensorWarning: 'BMC Power Supply Bay: Health Warning',
      'BaseBoardCriticalIssue/temperature':
        'BMC SEL Temperature #1: Temperature threshold exceeded (Upper Critical - going high) at 2013-03-06T23:59:00.000Z',
    });
  });

  it('a chassis without Thermal and Power: ThermalSubsystem fans, PowerSubsystem PSUs, Sensors', async () => {
    const chassis = rf.resource(CH);
    delete chassis['Thermal'];
    delete chassis['Power'];
    status(rf.resource(`${CH}/ThermalSubsystem/Fans/CPU1`))['Health'] = 'Critical';
    const r = await health();
    assert.deepEqual(
      [r.thermal.length, r.power.length, r.fans.length, r.powerSupplies.length, r.sensors.length],
      [0, 0, 4, 2, 41],
    );
    assert.deepEqual(read(r), {
      BaseBoardSensorWarning: 'BMC Power Supply Bay 1: Health Warning',
      'BaseBoardCriticalIssue/fan': 'BMC Fan for CPU 1: Health Critical',
    });
  });

  it('wrong password: BMC_AUTH_FAILED, the password in no message', async () => {
    const e = await rejection(health('wrong-password'));
    assert.equal(e.code, ErrorCode.BmcAuthFailed);
    assert.ok(!e.message.includes('wrong-password'));
    assert.ok(!e.message.includes(rf.password));
  });

  it('a BMC that stops answering: BMC_TIMEOUT within the request deadline', async () => {
    rf.hang(true);
    try {
      const t0 = Date.now();
      const e = await rejection(health(rf.password, { timeoutMs: 300 }));
      assert.equal(e.code, ErrorCode.BmcTimeout);
      assert.ok(Date.now() - t0 < 3_000);
    } finally {
      rf.hang(false);
    }
  });

  it('a linked resource missing, or a collection larger than the bound: BMC_ERROR, no partial reading', async () => {
    rf.resource(CH)['Power'] = { '@odata.id': `${CH}/NoSuchPower` };
    const missing = await rejection(health());
    assert.equal(missing.code, ErrorCode.BmcError);
    assert.match(missing.message, /NoSuchPower answered HTTP 404/);
    rf.restore();
    const memory = rf.resource(`${SYS}/Memory`);
    memory['Members'] = Array.from({ length: MAX_HEALTH_MEMBERS + 1 }, (_, i) => ({
      '@odata.id': `${SYS}/Memory/DIMM${i}`,
    }));
    const big = await rejection(health());
    assert.equal(big.code, ErrorCode.BmcError);
    assert.match(big.message, new RegExp(`Memory has ${MAX_HEALTH_MEMBERS + 1} members`));
  });
});
