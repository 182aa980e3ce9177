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
 */
import type { Clock } from '../core/clock.js';
import { HealError } from '../core/errors.js';
import type { Domain, NodeInfo } from '../core/types.js';
import type { Observation } from '../engine/condition-tracker.js';
import type { Metrics } from '../metrics/metrics.js';
import type { OutOfBand } from './out-of-band.js';
import type { BmcTarget } from './types.js';

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
 * Reads the BMCs of the wanted nodes (IPMI ones: the SEL and sensors are IPMI's) and keeps each
 * node's last good reading. `poll` is called every `bmc.health.intervalMs` (in the background);
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
      if ('target' in s && s.target.protocol === 'ipmi') todo.push({ node, target: s.target });
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
      if (bmc.sdrElist === undefined || bmc.selElist === undefined) return;
      // The power status first: a session failure is told apart there (credentials, unreachable).
      await bmc.powerState(signal);
      const sdr = await bmc.sdrElist(signal);
      const sel = await bmc.selElist(signal);
      const now = d.clock.now();
      const findings = [
        ...sdrFindings(parseSdrElist(sdr)),
        ...selFindings(parseSelElist(sel), now - d.selWindowMs),
      ];
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
