/**
 * BMC health as conditions, the pure part: real `ipmitool sdr elist` / `sel elist` output (of
 * OpenIPMI's ipmi_sim, and of a real HP ProLiant DL360 G7 and a Dell server from public pages)
 * parsed and read as the catalogue's BMC conditions.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../../src/catalogue/index.js';
import {
  BMC_HEALTH_CONDITIONS,
  healthObservations,
  parseSdrElist,
  parseSelElist,
  sdrFindings,
  selFindings,
} from '../../src/bmc/health.js';

const FIX = join(import.meta.dirname, 'fixtures');
const read = (p: string): string => readFileSync(join(FIX, p), 'utf8');
/** The SEL clock of the ipmi_sim fixtures: entries at 12/07/26 19:15:58 UTC. */
const SIM_SEL_NOW = Date.UTC(2026, 11, 7, 20, 0, 0);
const DAY = 86_400_000;

/** condition/id → value, for compact assertions. */
function summary(node: string, sdr: string, sel: string, nowMs: number): Record<string, number> {
  const findings = [
    ...sdrFindings(parseSdrElist(sdr)),
    ...selFindings(parseSelElist(sel), nowMs - DAY),
  ];
  const out: Record<string, number> = {};
  for (const o of healthObservations(node, findings)) {
    assert.equal(o.node, node);
    out[o.id === '' ? o.condition : `${o.condition}/${o.id}`] = o.value;
  }
  return out;
}

describe('parsing ipmitool output', () => {
  it('sdr elist: name, number, status, entity, reading of every line (ipmi_sim)', () => {
    const rows = parseSdrElist(read('ipmi_sim/sdr-faults.txt'));
    assert.deepEqual(
      rows.map((r) => `${r.name}|${r.number}|${r.status}|${r.entity}|${r.value}`),
      [
        'CPU1 Temp|01h|ucr|3.1|92 degrees C',
        'Fan1|02h|lcr|29.1|300 RPM',
        'PSU1 Status|03h|ok|10.1|Presence detected, Failure detected',
        'PSU2 Status|04h|ok|10.2|Presence detected',
        'DIMM A1 Memory|05h|ok|32.1|Uncorrectable ECC',
      ],
    );
  });

  it('sel elist: hex ids, Pre-Init entries undated, sensor type split from the name, direction', () => {
    const rows = parseSelElist(read('ipmi_sim/sel-recovered.txt'));
    assert.equal(rows.length, 12);
    assert.deepEqual(rows[0], {
      id: '1',
      sensorType: 'Power Supply',
      sensor: 'PSU1 Status',
      event: 'Presence detected',
      asserted: true,
      detail: '',
    });
    const fan = rows.find((r) => r.id === 'a');
    assert.equal(fan?.sensorType, 'Fan');
    assert.equal(fan.sensor, 'Fan1');
    assert.equal(fan.event, 'Lower Critical going low');
    assert.equal(fan.asserted, false);
    assert.equal(fan.atMs, Date.UTC(2026, 11, 7, 19, 15, 59));
    assert.equal(fan.detail, 'Reading 6000 > Threshold 500 RPM');
  });

  it('sel list (numbers, not names; four-digit years, no time zone) of a real HP BMC', () => {
    const rows = parseSelElist(read('public/hp-dl360g7-sel-list.txt'));
    assert.deepEqual(
      rows.map((r) => [r.id, r.sensorType, r.sensor, r.event, r.atMs]),
      [
        [
          '0',
          'Memory',
          '#0x2b',
          'Correctable ECC logging limit reached',
          Date.UTC(2021, 5, 29, 8, 18, 6),
        ],
        [
          '1',
          'Memory',
          '#0x2b',
          'Correctable ECC logging limit reached',
          Date.UTC(2021, 10, 3, 15, 1, 48),
        ],
      ],
    );
  });

  it('skips what is not a listing line (headers, errors, blank)', () => {
    assert.deepEqual(
      parseSdrElist('SEL has no entries\n\nGet HPM.x Capabilities request failed\n'),
      [],
    );
    assert.deepEqual(parseSelElist('SEL has no entries\n'), []);
  });
});

describe('BMC findings as catalogue conditions', () => {
  it('a healthy ipmi_sim BMC: nothing', () => {
    assert.deepEqual(summary('n1', read('ipmi_sim/sdr-healthy.txt'), '', SIM_SEL_NOW), {});
  });

  it('fan below critical, PSU failed, CPU over critical, DIMM uncorrectable ECC: one observation each', () => {
    assert.deepEqual(
      summary('n1', read('ipmi_sim/sdr-faults.txt'), read('ipmi_sim/sel-faults.txt'), SIM_SEL_NOW),
      {
        // The fan's sensor and its two SEL events (non-critical and critical going low).
        'BaseBoardCriticalIssue/fan': 3,
        'BaseBoardCriticalIssue/power': 2,
        'BaseBoardCriticalIssue/temperature': 2,
        'MemoryUnhealthy/DIMM A1 Memory': 2,
        // CPU1 Temp's upper non-critical SEL event.
        BaseBoardSensorWarning: 1,
      },
    );
  });

  it('after the fan and the temperature recovered (deasserted): the PSU and the DIMM remain', () => {
    assert.deepEqual(
      summary(
        'n1',
        read('ipmi_sim/sdr-recovered.txt'),
        read('ipmi_sim/sel-recovered.txt'),
        SIM_SEL_NOW,
      ),
      { 'BaseBoardCriticalIssue/power': 2, 'MemoryUnhealthy/DIMM A1 Memory': 2 },
    );
  });

  it('SEL events older than the window are history; the sensors still say what is failed now', () => {
    const later = SIM_SEL_NOW + 2 * DAY;
    assert.deepEqual(
      summary('n1', read('ipmi_sim/sdr-recovered.txt'), read('ipmi_sim/sel-recovered.txt'), later),
      { 'BaseBoardCriticalIssue/power': 1, 'MemoryUnhealthy/DIMM A1 Memory': 1 },
    );
  });

  it('a real HP DL360 G7: failed PSU 1 (critical), lost redundancy and ECC logging limit (warnings)', () => {
    const obs = healthObservations(
      'hp',
      sdrFindings(parseSdrElist(read('public/hp-dl360g7-sdr-elist-full.txt'))),
    );
    const byKey = new Map(obs.map((o) => [`${o.condition}/${o.id}`, o]));
    assert.equal(byKey.get('BaseBoardCriticalIssue/power')?.value, 1);
    assert.match(
      byKey.get('BaseBoardCriticalIssue/power')?.msg ?? '',
      /Power Supply 1: Failure detected/,
    );
    assert.equal(byKey.get('BaseBoardSensorWarning/')?.value, 2);
    assert.match(
      byKey.get('BaseBoardSensorWarning/')?.msg ?? '',
      /Memory: Correctable ECC logging limit reached/,
    );
    // 'Temp 4 | ns | Disabled', 'Fully Redundant', 'Transition to Running': nominal.
    assert.equal(obs.length, 2);
  });

  it('its SEL (correctable ECC logging limit, 2021): a warning within the window, nothing long after', () => {
    const sel = parseSelElist(read('public/hp-dl360g7-sel-list.txt'));
    const at = Date.UTC(2021, 10, 3, 16, 0, 0);
    assert.deepEqual(
      healthObservations('hp', selFindings(sel, at - DAY)).map((o) => [o.condition, o.value]),
      [['BaseBoardSensorWarning', 1]],
    );
    assert.deepEqual(healthObservations('hp', selFindings(sel, Date.UTC(2024, 0, 1))), []);
  });

  it('a healthy Dell power subsystem (sdr type "Power Supply"): nothing', () => {
    assert.deepEqual(sdrFindings(parseSdrElist(read('public/dell-sdr-type-power-supply.txt'))), []);
  });

  it('every condition it produces is in the catalogue, of the ipmi-exporter signal', () => {
    const byName = new Map(CATALOGUE.map((e) => [e.name, e]));
    for (const c of BMC_HEALTH_CONDITIONS) {
      const e = byName.get(c);
      assert.ok(e !== undefined, `${c} is a catalogue condition`);
      assert.equal(e.signal, 'ipmi-exporter');
    }
    const obs = healthObservations(
      'n1',
      sdrFindings(parseSdrElist(read('ipmi_sim/sdr-faults.txt'))),
    );
    for (const o of obs) {
      assert.ok(BMC_HEALTH_CONDITIONS.includes(o.condition));
      assert.equal(o.domain, byName.get(o.condition)?.domain);
    }
  });
});
