/**
 * BMC health as conditions, for nodes whose ipmi-exporter is not deployed: the sensors
 * (`ipmitool sdr elist`) and the System Event Log (`ipmitool sel elist`) read through the same
 * IPMI path as out-of-band power, parsed (pure) and read as the catalogue's BMC conditions, with
 * the severities ipmi-exporter's rules use:
 *
 *   - fan: a fan sensor in warning or critical, a fan failure        → BaseBoardCriticalIssue{fan}
 *   - temperature / voltage / current: critical                      → BaseBoardCriticalIssue{…}
 *   - power supply: failure, AC lost, predictive failure, config     → BaseBoardCriticalIssue{power}
 *   - memory: uncorrectable ECC, parity, device disabled             → MemoryUnhealthy{<sensor>}
 *   - processor: IERR, thermal trip, FRB, machine check              → CpuUnhealthy{<sensor>}
 *   - anything in warning (non-critical thresholds, redundancy
 *     degraded, correctable-ECC logging limit)                      → BaseBoardSensorWarning
 *
 * The sensors give the state now. The SEL adds what the sensors no longer show: an event
 * asserted within the last `selWindowMs` (by the BMC's clock, read as UTC) and not deasserted
 * later. Entries before the BMC's clock was set (`Pre-Init`) have no date and are not counted.
 *
 * A Redfish BMC gives the same findings (`redfishFindings`): each part's `Status.Health`
 * (Warning 1, Critical 2) and its reading against the thresholds the BMC publishes, from the
 * system's chassis (Thermal: Temperatures, Fans; Power: Voltages, PowerSupplies — or, where the
 * chassis no longer links them, ThermalSubsystem fans, PowerSubsystem power supplies and the
 * Sensors collection), its Memory and its CPUs; and its SEL as LogEntries (`EntryType: SEL`,
 * Severity Warning/Critical, `SensorType`), within the same window.
 */
import type { Clock } from '../core/clock.js';
import { HealError } from '../core/errors.js';
import type { Domain, NodeInfo } from '../core/types.js';
import type { Observation } from '../engine/condition-tracker.js';
import type { Metrics } from '../metrics/metrics.js';
import type { OutOfBand } from './out-of-band.js';
import type { BmcTarget, RedfishHealthResources } from './types.js';

/** Severity of one reading, as ipmi-exporter's `*_state` (0 nominal, 1 warning, 2 critical). */
export type Severity = 0 | 1 | 2;

/** What a sensor measures, from its unit, entity and name. */
export type SensorKind =
  'fan' | 'temperature' | 'voltage' | 'current' | 'power' | 'memory' | 'processor' | 'other';

/** One line of `ipmitool sdr elist`. */
export interface SdrReading {
  readonly name: string;
  /** Sensor number, e.g. `2Bh`. */
  readonly number: string;
  /** ipmitool's status: ok, ns, nc, cr, nr, lnc, lcr, lnr, unc, ucr, unr. */
  readonly status: string;
  /** Entity id and instance, e.g. `10.1` (10: power supply). */
  readonly entity: string;
  /** Reading or asserted states, e.g. `300 RPM`, `Presence detected, Failure detected`. */
  readonly value: string;
}

/** One line of `ipmitool sel elist` (or `sel list`). */
export interface SelEntry {
  /** Record id (hex, as printed). */
  readonly id: string;
  /** When the BMC logged it (ms, read as UTC); undefined for Pre-Init entries. */
  readonly atMs?: number;
  /** Sensor type as ipmitool names it (`Power Supply`, `Fan`, `Memory`…). */
  readonly sensorType: string;
  /** Sensor name (elist) or number (`#0x2b`). */
  readonly sensor: string;
  readonly event: string;
  readonly asserted: boolean;
  /** What follows, e.g. `Reading 300 < Threshold 500 RPM`. */
  readonly detail: string;
}

/** A BMC finding: one sensor's severity and why. */
export interface BmcFinding {
  readonly kind: SensorKind;
  readonly sensor: string;
  readonly severity: Severity;
  readonly why: string;
  readonly source: 'sensors' | 'SEL';
}

/** Parses `ipmitool sdr elist` (also `sdr elist full`, `sdr type …`). Unparsable lines are skipped. */
export function parseSdrElist(text: string): SdrReading[] {
  const out: SdrReading[] = [];
  for (const line of text.split('\n')) {
    const parts = line.split('|').map((p) => p.trim());
    if (parts.length < 5) continue;
    const [name = '', number = '', status = '', entity = '', ...rest] = parts;
    if (!/^[0-9A-Fa-f]{2}h$/.test(number) || !/^\d+\.\d+$/.test(entity) || status === '') continue;
    out.push({ name, number, status: status.toLowerCase(), entity, value: rest.join(' | ') });
  }
  return out;
}

/**
 * ipmitool's sensor type names (ipmitool's `sensor_type_desc`), longest first, to split the SEL's
 * `<type> <name>` column.
 */
const SENSOR_TYPES = [
  'Management Subsys Health',
  'System ACPI Power State',
  'System Boot Initiated',
  'Event Logging Disabled',
  'Cable / Interconnect',
  'POST Memory Resize',
  'Physical Security',
  'Platform Security',
  'Drive Slot / Bay',
  'Critical Interrupt',
  'System Firmwares',
  'System Firmware Error',
  'Slot / Connector',
  'OS Critical Stop',
  'Entity Presence',
  'Microcontroller',
  'Cooling Device',
  'Version Change',
  'Module / Board',
  'Platform Alert',
  'Session Audit',
  'Power Supply',
  'System Event',
  'Add-in Card',
  'Monitor ASIC',
  'Temperature',
  'Boot Error',
  'Power Unit',
  'Terminator',
  'Watchdog1',
  'Watchdog2',
  'Processor',
  'FRU State',
  'Other FRU',
  'Chip Set',
  'OS Boot',
  'Voltage',
  'Current',
  'Battery',
  'Chassis',
  'Button',
  'Memory',
  'Other',
  'Fan',
  'LAN',
];

/** Parses `ipmitool sel elist` / `sel list`. Unparsable lines are skipped. */
export function parseSelElist(text: string): SelEntry[] {
  const out: SelEntry[] = [];
  for (const line of text.split('\n')) {
    const parts = line.split('|').map((p) => p.trim());
    if (parts.length < 6) continue;
    const [id = '', date = '', time = '', sensorCol = '', event = '', direction = '', ...rest] =
      parts;
    if (!/^[0-9a-fA-F]+$/.test(id)) continue;
    if (direction !== 'Asserted' && direction !== 'Deasserted') continue;
    const type = SENSOR_TYPES.find((t) => sensorCol === t || sensorCol.startsWith(`${t} `));
    const atMs = parseSelTime(date, time);
    out.push({
      id,
      ...(atMs === undefined ? {} : { atMs }),
      sensorType: type ?? sensorCol,
      sensor: type === undefined ? sensorCol : sensorCol.slice(type.length).trim(),
      event,
      asserted: direction === 'Asserted',
      detail: rest.join(' | '),
    });
  }
  return out;
}

/** `12/07/26` or `06/29/2021`, `19:15:58 UTC` or `08:18:06` → ms (UTC); Pre-Init → undefined. */
function parseSelTime(date: string, time: string): number | undefined {
  const d = /^(\d{2})\/(\d{2})\/(\d{2}|\d{4})$/.exec(date);
  const t = /^(\d{2}):(\d{2}):(\d{2})/.exec(time);
  if (d === null || t === null) return undefined;
  const year = Number(d[3]) < 100 ? 2000 + Number(d[3]) : Number(d[3]);
  const ms = Date.UTC(
    year,
    Number(d[1]) - 1,
    Number(d[2]),
    Number(t[1]),
    Number(t[2]),
    Number(t[3]),
  );
  return Number.isNaN(ms) ? undefined : ms;
}

/** IPMI entity ids (IPMI 2.0 table 43-13) that say what a sensor watches. */
const ENTITY_KIND: Readonly<Record<number, SensorKind>> = {
  3: 'processor',
  8: 'memory',
  10: 'power',
  19: 'power',
  20: 'power',
  29: 'fan',
  30: 'fan',
  32: 'memory',
  65: 'processor',
};

/** What an SDR reading measures. */
export function kindOfReading(r: SdrReading): SensorKind {
  const v = r.value;
  if (/\bRPM\b/.test(v)) return 'fan';
  if (/degrees [CF]\b/.test(v)) return 'temperature';
  if (/\bVolts\b/.test(v)) return 'voltage';
  if (/\bAmps\b/.test(v)) return 'current';
  const entity = ENTITY_KIND[Number(r.entity.split('.')[0])];
  if (entity !== undefined) return entity;
  if (/\bfan\b/i.test(r.name)) return 'fan';
  if (/\b(psu|power supply|ps\d)\b/i.test(r.name)) return 'power';
  if (/\b(dimm|memory|mem)\b/i.test(r.name)) return 'memory';
  if (/\b(cpu|proc)/i.test(r.name)) return 'processor';
  if (/\bWatts\b/.test(v)) return 'power';
  return 'other';
}

/** What a SEL entry's sensor type measures. */
function kindOfSelType(type: string): SensorKind {
  switch (type) {
    case 'Fan':
    case 'Cooling Device':
      return 'fan';
    case 'Temperature':
      return 'temperature';
    case 'Voltage':
      return 'voltage';
    case 'Current':
      return 'current';
    case 'Power Supply':
    case 'Power Unit':
      return 'power';
    case 'Memory':
      return 'memory';
    case 'Processor':
      return 'processor';
    default:
      return 'other';
  }
}

/**
 * Severity of an asserted discrete state (IPMI 2.0 tables 42-2/42-3 as ipmitool words them).
 * Presence, "Transition to Running", "Fully Redundant" and the like are nominal.
 */
export function severityOfState(state: string, kind: SensorKind): Severity {
  const s = state.trim();
  if (
    /^(Failure detected|Predictive failure|Power Supply AC lost|AC lost or out-of-range|AC out-of-range, but present|Config Error|Configuration error)$/i.test(
      s,
    ) &&
    kind !== 'memory'
  )
    return 2;
  if (
    /^(Uncorrectable ECC|Parity|Memory Scrub Failed|Memory Device Disabled|Uncorrectable machine check exception|Correctable ECC logging limit reached)$/i.test(
      s,
    )
  )
    return /Correctable ECC logging limit/i.test(s) ? 1 : 2;
  if (
    /^(IERR|Thermal Trip|FRB1\/BIST failure|FRB2\/Hang in POST failure|FRB3\/Processor.*failure)$/i.test(
      s,
    )
  )
    return 2;
  if (/^(Redundancy Lost|Non-Redundant: Insufficient Resources)$/i.test(s)) return 2;
  if (
    /^(Redundancy Degraded|Redundancy Degraded from Fully Redundant|Redundancy Degraded from Non-redundant|Non-Redundant: Sufficient from Redundant|Non-Redundant: Sufficient from Insufficient)$/i.test(
      s,
    )
  )
    return 1;
  if (/^(Transition to Critical from less severe|Transition to Non-recoverable)/i.test(s)) return 2;
  if (/^Transition to Non-Critical from OK$/i.test(s)) return 1;
  if (kind === 'fan' && /^(Transition to Off Line|Transition to Degraded|Install Error)$/i.test(s))
    return 2;
  return 0;
}

/** Severity of a SEL threshold event (`Upper Critical going high`, `Lower Non-critical going low`). */
function severityOfThresholdEvent(event: string): Severity | undefined {
  const m = /^(Upper|Lower) (Non-critical|Critical|Non-recoverable) going (high|low)$/i.exec(
    event.trim(),
  );
  if (m === null) return undefined;
  return m[2]?.toLowerCase() === 'non-critical' ? 1 : 2;
}

/** The findings of a sensor listing: every sensor not nominal. */
export function sdrFindings(readings: readonly SdrReading[]): BmcFinding[] {
  const out: BmcFinding[] = [];
  for (const r of readings) {
    const kind = kindOfReading(r);
    let severity: Severity = 0;
    let why = '';
    if (/^(lnc|unc|nc)$/.test(r.status)) {
      severity = 1;
      why = `${r.status} (${r.value})`;
    } else if (/^(lcr|ucr|cr|lnr|unr|nr)$/.test(r.status)) {
      severity = 2;
      why = `${r.status} (${r.value})`;
    }
    for (const state of r.value.split(',')) {
      const s = severityOfState(state, kind);
      if (s > severity) {
        severity = s;
        why = state.trim();
      }
    }
    if (severity > 0) out.push({ kind, sensor: r.name, severity, why, source: 'sensors' });
  }
  return out;
}

/**
 * The findings of a SEL: events asserted at or after `sinceMs` and not deasserted by a later entry
 * of the same sensor and event. Undated (Pre-Init) entries are not counted.
 */
export function selFindings(entries: readonly SelEntry[], sinceMs: number): BmcFinding[] {
  const open = new Map<string, SelEntry>();
  for (const e of entries) {
    const key = `${e.sensorType}\u0000${e.sensor}\u0000${e.event}`;
    if (e.asserted) open.set(key, e);
    else open.delete(key);
  }
  const out: BmcFinding[] = [];
  for (const e of open.values()) {
    if (e.atMs === undefined || e.atMs < sinceMs) continue;
    const kind = kindOfSelType(e.sensorType);
    const severity = severityOfThresholdEvent(e.event) ?? severityOfState(e.event, kind);
    if (severity === 0) continue;
    out.push({
      kind,
      sensor: e.sensor,
      severity,
      why: `${e.event} at ${new Date(e.atMs).toISOString()}${e.detail === '' ? '' : ` (${e.detail})`}`,
      source: 'SEL',
    });
  }
  return out;
}

// ---- Redfish -------------------------------------------------------------------------------

type Doc = Readonly<Record<string, unknown>>;

const asDoc = (v: unknown): Doc | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Doc) : undefined;
const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const asNumber = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;
const asList = (v: unknown): Doc[] =>
  Array.isArray(v) ? (v as unknown[]).map(asDoc).filter((d): d is Doc => d !== undefined) : [];

/** Redfish `Status.Health` (and a LogEntry's `Severity`): OK, Warning, Critical. */
function redfishSeverity(value: unknown): Severity | undefined {
  switch (value) {
    case 'OK':
      return 0;
    case 'Warning':
      return 1;
    case 'Critical':
      return 2;
    default:
      return undefined;
  }
}

/** A threshold: the property (or `Thresholds` key) naming it, its value, direction, severity. */
interface Threshold {
  readonly name: string;
  readonly value: number;
  readonly upper: boolean;
  readonly severity: Severity;
}

/** Thermal/Power v1 thresholds: `UpperThresholdCritical` and the like, beside the reading. */
function legacyThresholds(r: Doc): Threshold[] {
  const out: Threshold[] = [];
  for (const [suffix, severity] of [
    ['NonCritical', 1],
    ['Critical', 2],
    ['Fatal', 2],
  ] as const)
    for (const upper of [true, false]) {
      const name = `${upper ? 'Upper' : 'Lower'}Threshold${suffix}`;
      const value = asNumber(r[name]);
      if (value !== undefined) out.push({ name, value, upper, severity });
    }
  return out;
}

/** Sensor v1 thresholds: `Thresholds.{Upper,Lower}{Caution,Critical,Fatal}.Reading`. */
function sensorThresholds(r: Doc): Threshold[] {
  const t = asDoc(r['Thresholds']);
  const out: Threshold[] = [];
  if (t === undefined) return out;
  for (const [suffix, severity] of [
    ['Caution', 1],
    ['Critical', 2],
    ['Fatal', 2],
  ] as const)
    for (const upper of [true, false]) {
      const name = `${upper ? 'Upper' : 'Lower'}${suffix}`;
      const value = asNumber(asDoc(t[name])?.['Reading']);
      if (value !== undefined) out.push({ name, value, upper, severity });
    }
  return out;
}

/**
 * One Redfish part judged as the BMC reports it: its `Status.Health` (OK, Warning, Critical), and
 * its reading against the thresholds the BMC gives (at or beyond a threshold: crossed, as
 * `LowerThresholdFatal: 0` and a fan reading 0). An `Absent` part is nothing; the reading of a
 * part not `Enabled` (Disabled, StandbyOffline…) is not compared, its health still counts.
 */
function judge(
  kind: SensorKind,
  name: string,
  r: Doc,
  reading?: { value: number | undefined; unit: string; thresholds: readonly Threshold[] },
  extra?: { severity: Severity; why: string },
): BmcFinding | undefined {
  const status = asDoc(r['Status']);
  const state = asString(status?.['State']);
  if (state === 'Absent') return undefined;
  const seen: { severity: Severity; why: string }[] = [];
  const raise = (s: Severity, why: string): void => {
    if (s > 0) seen.push({ severity: s, why });
  };
  const health = asString(status?.['Health']);
  const hs = redfishSeverity(health);
  if (hs !== undefined && health !== undefined)
    raise(hs, `Health ${health}${state !== undefined && state !== 'Enabled' ? ` (${state})` : ''}`);
  const value = reading?.value;
  if (
    reading !== undefined &&
    value !== undefined &&
    (state === undefined || state === 'Enabled')
  ) {
    // The thresholds are listed mildest first (non-critical, critical, fatal): the last crossed.
    let worst: Threshold | undefined;
    for (const t of reading.thresholds)
      if (t.upper ? value >= t.value : value <= t.value) worst = t;
    if (worst !== undefined)
      raise(
        worst.severity,
        `reading ${value}${reading.unit === '' ? '' : ` ${reading.unit}`} ${worst.upper ? '>=' : '<='} ${worst.name} ${worst.value}`,
      );
  }
  if (extra !== undefined) raise(extra.severity, extra.why);
  const severity = seen.reduce<Severity>((m, x) => (x.severity > m ? x.severity : m), 0);
  if (severity === 0) return undefined;
  const whys = seen.filter((x) => x.severity === severity).map((x) => x.why);
  return { kind, sensor: name, severity, why: whys.join('; '), source: 'sensors' };
}

const nameOf = (r: Doc, ...keys: string[]): string => {
  for (const k of keys) {
    const v = r[k];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
    if (typeof v === 'number') return String(v);
  }
  return '?';
};

/** What a Sensor (Sensors collection) measures, from its ReadingType and name. */
function kindOfSensor(r: Doc): SensorKind {
  switch (r['ReadingType']) {
    case 'Temperature':
      return 'temperature';
    case 'Voltage':
      return 'voltage';
    case 'Current':
      return 'current';
    case 'Power':
      return 'power';
    case 'Rotational':
      return 'fan';
    default:
      break;
  }
  if (r['ReadingUnits'] === 'Cel') return 'temperature';
  return /\bfan/i.test(`${nameOf(r, 'Name')} ${nameOf(r, 'Id')}`) ? 'fan' : 'other';
}

/** What a SEL LogEntry's `SensorType` (Redfish's names of the IPMI sensor types) measures. */
function kindOfLogSensorType(type: string): SensorKind {
  switch (type) {
    case 'Temperature':
      return 'temperature';
    case 'Voltage':
      return 'voltage';
    case 'Current':
      return 'current';
    case 'Fan':
    case 'CoolingDevice':
    case 'Cooling Device':
      return 'fan';
    case 'Power Supply / Converter':
    case 'PowerUnit':
      return 'power';
    case 'Memory':
      return 'memory';
    case 'Processor':
      return 'processor';
    default:
      return 'other';
  }
}

/**
 * The findings of a SEL read through Redfish (`EntryType: SEL` LogEntries): an entry of Severity
 * Warning or Critical created at or after `sinceMs` and not closed by a later entry of the same
 * sensor (`SensorType` and `SensorNumber`) with Severity OK or EntryCode `Deassert`, nor marked
 * `Resolved`. Entries without a `Created` date are not counted. Pure.
 */
export function logEntryFindings(entries: readonly unknown[], sinceMs: number): BmcFinding[] {
  const dated = entries
    .map(asDoc)
    .filter((e): e is Doc => e !== undefined && e['EntryType'] === 'SEL')
    .map((e, i) => ({ e, i, atMs: Date.parse(asString(e['Created']) ?? '') }))
    .filter((x) => !Number.isNaN(x.atMs))
    .sort((a, b) => a.atMs - b.atMs || a.i - b.i);
  const open = new Map<string, { e: Doc; atMs: number; severity: Severity }>();
  for (const { e, atMs } of dated) {
    const type = asString(e['SensorType']) ?? '';
    const num = asNumber(e['SensorNumber']);
    const key = `${type}\u0000${num ?? ''}`;
    const severity = redfishSeverity(e['Severity']);
    if (e['Resolved'] === true || e['EntryCode'] === 'Deassert' || severity === 0) {
      open.delete(key);
      continue;
    }
    if (severity === undefined) continue;
    const prev = open.get(key);
    if (prev === undefined || prev.severity <= severity) open.set(key, { e, atMs, severity });
  }
  const out: BmcFinding[] = [];
  for (const { e, atMs, severity } of open.values()) {
    if (atMs < sinceMs) continue;
    const type = asString(e['SensorType']) ?? '';
    const num = asNumber(e['SensorNumber']);
    const message = asString(e['Message']);
    const code = asString(e['EntryCode']);
    const what = [message, code === undefined ? undefined : `(${code})`]
      .filter((w) => w !== undefined)
      .join(' ');
    out.push({
      kind: kindOfLogSensorType(type),
      sensor: `${type === '' ? 'sensor' : type}${num === undefined ? '' : ` #${num}`}`,
      severity,
      why: `${what === '' ? `Severity ${severity === 2 ? 'Critical' : 'Warning'}` : what} at ${new Date(atMs).toISOString()}`,
      source: 'SEL',
    });
  }
  return out;
}

/**
 * The findings of a Redfish health reading (see RedfishHealthResources): every part not OK, by
 * the BMC's own `Status.Health` and by its readings against the BMC's thresholds, read as the IPMI
 * sensors are (a fan Critical or below its critical threshold is a fan finding, a PSU Critical a
 * power finding, a DIMM Critical a memory finding…), and the SEL entries of the last `sinceMs`.
 * Processors other than CPUs (GPUs, FPGAs, accelerators in the Processors collection) are left to
 * their own signals. Pure.
 */
export function redfishFindings(res: RedfishHealthResources, sinceMs: number): BmcFinding[] {
  const out: BmcFinding[] = [];
  const push = (f: BmcFinding | undefined): void => {
    if (f !== undefined) out.push(f);
  };
  for (const thermal of res.thermal.map(asDoc)) {
    for (const t of asList(thermal?.['Temperatures']))
      push(
        judge('temperature', nameOf(t, 'Name', 'MemberId'), t, {
          value: asNumber(t['ReadingCelsius']),
          unit: 'C',
          thresholds: legacyThresholds(t),
        }),
      );
    for (const f of asList(thermal?.['Fans']))
      push(
        judge('fan', nameOf(f, 'Name', 'FanName', 'MemberId'), f, {
          value: asNumber(f['Reading']) ?? asNumber(f['ReadingRPM']),
          unit: asString(f['ReadingUnits']) ?? (f['ReadingRPM'] === undefined ? '' : 'RPM'),
          thresholds: legacyThresholds(f),
        }),
      );
  }
  for (const power of res.power.map(asDoc)) {
    for (const v of asList(power?.['Voltages']))
      push(
        judge('voltage', nameOf(v, 'Name', 'MemberId'), v, {
          value: asNumber(v['ReadingVolts']),
          unit: 'V',
          thresholds: legacyThresholds(v),
        }),
      );
    for (const p of asList(power?.['PowerSupplies']))
      push(judge('power', nameOf(p, 'Name', 'MemberId'), p));
  }
  for (const f of res.fans.map(asDoc))
    if (f !== undefined) push(judge('fan', nameOf(f, 'Name', 'Id'), f));
  for (const p of res.powerSupplies.map(asDoc)) {
    if (p === undefined) continue;
    const line = asString(p['LineInputStatus']);
    const lost = line === 'LossOfInput' || line === 'OutOfRange';
    push(
      judge(
        'power',
        nameOf(p, 'Name', 'Id'),
        p,
        undefined,
        lost ? { severity: 2, why: `LineInputStatus ${line}` } : undefined,
      ),
    );
  }
  for (const s of res.sensors.map(asDoc)) {
    if (s === undefined) continue;
    push(
      judge(kindOfSensor(s), nameOf(s, 'Name', 'Id'), s, {
        value: asNumber(s['Reading']),
        unit: asString(s['ReadingUnits']) ?? '',
        thresholds: sensorThresholds(s),
      }),
    );
  }
  for (const m of res.memory.map(asDoc))
    if (m !== undefined) push(judge('memory', nameOf(m, 'Id', 'Name'), m));
  for (const p of res.processors.map(asDoc)) {
    if (p === undefined) continue;
    const type = p['ProcessorType'];
    if (type !== undefined && type !== 'CPU') continue;
    push(judge('processor', nameOf(p, 'Id', 'Name'), p));
  }
  out.push(...logEntryFindings(res.logEntries, sinceMs));
  return out;
}

/** The catalogue conditions BMC findings stand for (all of the ipmi-exporter signal). */
export const BMC_HEALTH_CONDITIONS: readonly string[] = [
  'BaseBoardCriticalIssue',
  'BaseBoardSensorWarning',
  'MemoryUnhealthy',
  'CpuUnhealthy',
];

const MAX_MESSAGE = 200;

/**
 * Observations for one node from its findings, in the condition tracker's shape (one per
 * condition and device, value = findings behind it). Pure.
 */
export function healthObservations(node: string, findings: readonly BmcFinding[]): Observation[] {
  const groups = new Map<
    string,
    { domain: Domain; condition: string; id: string; items: BmcFinding[] }
  >();
  const add = (domain: Domain, condition: string, id: string, f: BmcFinding): void => {
    const key = `${condition}\u0000${id}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { domain, condition, id, items: [] }));
    g.items.push(f);
  };
  for (const f of findings) {
    if (f.kind === 'memory' && f.severity === 2) add('Memory', 'MemoryUnhealthy', f.sensor, f);
    else if (f.kind === 'processor' && f.severity === 2) add('CPU', 'CpuUnhealthy', f.sensor, f);
    else if (f.kind === 'fan') add('Baseboard', 'BaseBoardCriticalIssue', 'fan', f);
    else if (
      f.severity === 2 &&
      (f.kind === 'temperature' ||
        f.kind === 'voltage' ||
        f.kind === 'current' ||
        f.kind === 'power')
    )
      add('Baseboard', 'BaseBoardCriticalIssue', f.kind, f);
    else if (f.severity === 1) add('Baseboard', 'BaseBoardSensorWarning', '', f);
  }
  return [...groups.values()].map((g) => {
    const text = `BMC ${g.items
      .map((f) => `${f.source === 'SEL' ? 'SEL ' : ''}${f.sensor}: ${f.why}`)
      .join('; ')}`;
    return {
      node,
      domain: g.domain,
      condition: g.condition,
      id: g.id,
      pciBdf: '',
      msg: text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE - 1)}…` : text,
      value: g.items.length,
    };
  });
}

/** What the BMC health poller says this cycle (the shape of the Node-condition reading). */
export interface BmcHealthReading {
  /** Observations of every node read recently enough. */
  readonly observations: Observation[];
  /**
   * Per node, the conditions a fresh reading reports on, True or False: where the BMC was read
   * within `staleAfterMs`, its conditions are not stale although no ipmi-exporter is scraped.
   */
  readonly fresh: ReadonlyMap<string, ReadonlySet<string>>;
}

/** What the poller needs. */
export interface BmcHealthDeps {
  readonly outOfBand: OutOfBand;
  readonly clock: Clock;
  /** Nodes whose BMC is read (those without ipmi-exporter). */
  readonly wanted: (node: NodeInfo) => boolean;
  readonly staleAfterMs: number;
  /** SEL entries older than this (BMC clock) are history, not a condition. */
  readonly selWindowMs: number;
  readonly concurrency: number;
  readonly metrics?: Metrics;
  /** Told of each node whose BMC could not be read (a log line). */
  readonly onError?: (node: string, err: unknown) => void;
}

/**
 * Reads the BMCs of the wanted nodes (IPMI: sensors and SEL through ipmitool; Redfish: the
 * resources of `redfishHealth`) and keeps each node's last good reading: a reading that fails
 * keeps nothing new, so the node's conditions age out to stale, never cleared by silence. `poll` is called every `bmc.health.intervalMs` (in the background);
 * `reading(now)` is what the cycle folds in, beside the inspection.
 */
export class BmcHealthPoller {
  readonly #d: BmcHealthDeps;
  readonly #last = new Map<string, { atMs: number; observations: Observation[] }>();

  constructor(deps: BmcHealthDeps) {
    this.#d = deps;
  }

  /** Reads every wanted node's BMC once (at most `concurrency` at a time). */
  async poll(nodes: readonly NodeInfo[], signal: AbortSignal): Promise<void> {
    const d = this.#d;
    const todo: { node: NodeInfo; target: BmcTarget }[] = [];
    const names = new Set<string>();
    for (const node of nodes) {
      names.add(node.name);
      if (!d.wanted(node)) continue;
      const s = d.outOfBand.select(node);
      if ('target' in s) todo.push({ node, target: s.target });
    }
    for (const name of this.#last.keys()) if (!names.has(name)) this.#last.delete(name);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const item = todo[next++];
        if (item === undefined) return;
        await this.#read(item.node.name, item.target, signal);
      }
    };
    await Promise.all(Array.from({ length: Math.min(d.concurrency, todo.length) }, worker));
  }

  async #read(node: string, target: BmcTarget, signal: AbortSignal): Promise<void> {
    const d = this.#d;
    try {
      const bmc = await d.outOfBand.open(target, signal);
      let findings: BmcFinding[];
      let now: number;
      if (bmc.redfishHealth !== undefined) {
        // Redfish: the ComputerSystem first (credentials, unreachable told apart there).
        const res = await bmc.redfishHealth(signal);
        now = d.clock.now();
        findings = redfishFindings(res, now - d.selWindowMs);
      } else if (bmc.sdrElist !== undefined && bmc.selElist !== undefined) {
        // The power status first: a session failure is told apart there (credentials, unreachable).
        await bmc.powerState(signal);
        const sdr = await bmc.sdrElist(signal);
        const sel = await bmc.selElist(signal);
        now = d.clock.now();
        findings = [
          ...sdrFindings(parseSdrElist(sdr)),
          ...selFindings(parseSelElist(sel), now - d.selWindowMs),
        ];
      } else return;
      this.#last.set(node, { atMs: now, observations: healthObservations(node, findings) });
      d.metrics?.bmcHealthPolls.inc({ result: 'ok' });
    } catch (err) {
      if (signal.aborted) throw err;
      d.metrics?.bmcHealthPolls.inc({
        result: err instanceof HealError ? err.code.toLowerCase() : 'error',
      });
      d.onError?.(node, err);
    }
  }

  /** The observations and freshness of the readings not older than `staleAfterMs`. */
  reading(nowMs: number): BmcHealthReading {
    const observations: Observation[] = [];
    const fresh = new Map<string, ReadonlySet<string>>();
    const vouched: ReadonlySet<string> = new Set(BMC_HEALTH_CONDITIONS);
    for (const [node, r] of this.#last) {
      if (nowMs - r.atMs > this.#d.staleAfterMs) continue;
      observations.push(...r.observations);
      fresh.set(node, vouched);
    }
    return { observations, fresh };
  }
}

/**
 * True when a fresh BMC reading reports on `condition` for `node` (see BmcHealthReading): the
 * controller folds the poller's reading in as it folds the Node conditions, e.g.
 *
 *   const bmc = poller.reading(now);
 *   tracker.update([...inspection.observations, ...nodeReading.observations, ...bmc.observations],
 *     now, (node, c) => !isFresh(nodeReading, node, c) && !isBmcFresh(bmc, node, c) && stale(node, c));
 */
export function isBmcFresh(reading: BmcHealthReading, node: string, condition: string): boolean {
  return reading.fresh.get(node)?.has(condition) === true;
}

/**
 * The reading as the cycle folds it: only the nodes whose ipmi-exporter is known not to report
 * (`exporterAbsent`: its presence query answered and left the node out). Where the exporter
 * reports — or may: its presence is unknown — the BMC's observations are dropped and it vouches
 * for nothing, so a condition the exporter reports is never reported twice (nor contradicted).
 * Pure.
 */
export function bmcReadingWhereNoExporter(
  reading: BmcHealthReading,
  exporterAbsent: (node: string) => boolean,
): BmcHealthReading {
  const fresh = new Map<string, ReadonlySet<string>>();
  for (const [node, set] of reading.fresh) if (exporterAbsent(node)) fresh.set(node, set);
  return {
    observations: reading.observations.filter((o) => exporterAbsent(o.node)),
    fresh,
  };
}
