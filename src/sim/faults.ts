/**
 * Fault injection: applies a catalogue FaultRecipe to one node (and device) of the series store,
 * exactly as the real exporter would show it, and remembers how the fault clears (by itself, on
 * reboot, by a remedy, by a repair, or only by a human). Kubernetes node effects (NotReady,
 * unschedulable) are published to subscribers; SimCluster applies them to its node objects.
 */
import type { Clock } from '../core/clock.js';
import { ErrorCode, HealError } from '../core/errors.js';
import type { CatalogueEntry, SeriesChange } from '../catalogue/types.js';
import type { SeriesStore } from './series-store.js';
import type { SimScheduler } from './sim-scheduler.js';
import { addToCounter, hold, release, type Track } from './track.js';
import { defaultPersistence, type Persistence } from './persistence.js';

export type { Persistence } from './persistence.js';

/** What `injectFault` takes. */
export interface InjectFaultRequest {
  /** Condition name or alias. */
  readonly condition: string;
  readonly node: string;
  /** Device id (`3`, `mlx5_1`, a sensor name, a mount); default: the recipe's `defaultDevice`. */
  readonly device?: string;
  readonly atMs: number;
  /** Default: derived from the condition's SOP (see persistence.ts). */
  readonly persistence?: Persistence;
  /** Remedy action that clears an `until-remedy` fault (default: derived from the SOP). */
  readonly remedy?: string;
  /** Clears the fault by itself after this long. */
  readonly durationMs?: number;
}

/**
 * An InfiniBand link that flaps: `count` times, `periodMs` apart from `atMs`, the port goes down
 * (node-exporter's `node_infiniband_link_downed_total` counts one more, `state_id` reads 1 DOWN
 * and `physical_state_id` 2 Polling) and comes back `downMs` later (4 ACTIVE, 5 LinkUp).
 */
export interface LinkFlapRequest {
  readonly node: string;
  /** The HCA (`mlx5_0` …). */
  readonly device: string;
  /** Its port (default `1`). */
  readonly port?: string;
  readonly atMs: number;
  readonly count: number;
  readonly periodMs: number;
  readonly downMs: number;
  /** Default `survives-reboot` (a cable or switch port): only a `recover` ends the flapping. */
  readonly persistence?: Persistence;
}

/** The condition a flapping link raises (more than 3 link-downs in 24 h); the flap fault's entry. */
export const LINK_FLAP_CONDITION = 'IBLinkFrequentDown';
const LINK_DOWNED = 'node_infiniband_link_downed_total';
const LINK_STATES = [
  { metric: 'node_infiniband_state_id', down: 1 },
  { metric: 'node_infiniband_physical_state_id', down: 2 },
] as const;

/** A fault as the simulator holds it. */
export interface Fault {
  readonly id: string;
  readonly entry: CatalogueEntry;
  readonly node: string;
  readonly device: string;
  readonly sinceMs: number;
  readonly persistence: Persistence;
  readonly remedy: string | undefined;
  readonly clearedMs: number | undefined;
}

/** A change of the fault set, for node effects and logs. */
export interface FaultEvent {
  readonly kind: 'injected' | 'cleared';
  readonly fault: Fault;
  readonly atMs: number;
}

interface FaultRecord {
  fault: Fault;
  readonly holds: Track[];
  /** False while a fault injected for a future time waits for it. */
  applied: boolean;
}

/** Options of `FaultInjector`. */
export interface FaultInjectorOptions {
  readonly store: SeriesStore;
  readonly catalogue: readonly CatalogueEntry[];
  readonly scheduler: SimScheduler;
  /** Faults and clearances stamped in the future wait for this clock (a scenario timeline). */
  readonly clock?: Clock;
}

/** Injects and clears catalogue faults on the simulated fleet. */
export class FaultInjector {
  readonly #store: SeriesStore;
  readonly #catalogue: readonly CatalogueEntry[];
  readonly #scheduler: SimScheduler;
  readonly #now: (() => number) | undefined;
  readonly #faults = new Map<string, FaultRecord>();
  readonly #listeners: ((event: FaultEvent) => void)[] = [];
  #seq = 0;

  constructor(options: FaultInjectorOptions) {
    this.#store = options.store;
    this.#catalogue = options.catalogue;
    this.#scheduler = options.scheduler;
    const clock = options.clock;
    this.#now = clock === undefined ? undefined : () => clock.now();
  }

  /** The catalogue entry of a condition name or alias, or undefined. */
  findEntry(nameOrAlias: string): CatalogueEntry | undefined {
    return this.#catalogue.find(
      (e) => e.name === nameOrAlias || e.aliases?.includes(nameOrAlias) === true,
    );
  }

  /** Applies the condition's recipe from `atMs`; returns the fault id. */
  injectFault(request: InjectFaultRequest): string {
    const entry = this.findEntry(request.condition);
    if (entry === undefined) {
      throw new HealError(
        ErrorCode.UnknownCondition,
        `no catalogue condition "${request.condition}"`,
      );
    }
    if (this.#store.fleet.node(request.node) === undefined) {
      throw new HealError(ErrorCode.InvalidInput, `no simulated node "${request.node}"`);
    }
    const derived = defaultPersistence(entry.sop);
    const id = `fault-${++this.#seq}`;
    const fault: Fault = {
      id,
      entry,
      node: request.node,
      device: request.device ?? entry.fault.defaultDevice ?? '',
      sinceMs: request.atMs,
      persistence: request.persistence ?? derived.persistence,
      remedy: request.remedy ?? derived.remedy,
      clearedMs: undefined,
    };
    const record: FaultRecord = { fault, holds: [], applied: false };
    this.#faults.set(id, record);
    this.#at(request.atMs, (t) => {
      this.#applyRecord(record, t);
    });
    if (request.durationMs !== undefined) {
      const until = request.atMs + request.durationMs;
      this.#at(until, (t) => this.clearFault(id, t));
    }
    return id;
  }

  /**
   * A flapping IB link (see LinkFlapRequest), held as a fault of IBLinkFrequentDown so that reboots
   * and `recover` treat it like any other: once cleared, the remaining flaps do not happen (the
   * counter keeps what it counted). Returns the fault id.
   */
  injectLinkFlap(request: LinkFlapRequest): string {
    const entry = this.findEntry(LINK_FLAP_CONDITION);
    if (entry === undefined) {
      throw new HealError(
        ErrorCode.UnknownCondition,
        `no catalogue condition "${LINK_FLAP_CONDITION}"`,
      );
    }
    if (this.#store.fleet.node(request.node) === undefined) {
      throw new HealError(ErrorCode.InvalidInput, `no simulated node "${request.node}"`);
    }
    if (request.count < 1 || request.downMs <= 0 || request.periodMs <= request.downMs) {
      throw new HealError(
        ErrorCode.InvalidInput,
        `link flap on ${request.node}: needs count >= 1 and 0 < down < period`,
      );
    }
    const id = `fault-${++this.#seq}`;
    const port = request.port ?? '1';
    const fault: Fault = {
      id,
      entry,
      node: request.node,
      // The condition's own device id: the port (`mlx5_0/1`) when its rule is per port.
      device:
        entry.fault.defaultDevice?.includes('/') === true
          ? `${request.device}/${port}`
          : request.device,
      sinceMs: request.atMs,
      persistence: request.persistence ?? 'survives-reboot',
      remedy: undefined,
      clearedMs: undefined,
    };
    const record: FaultRecord = { fault, holds: [], applied: false };
    this.#faults.set(id, record);
    const labels = { device: request.device, port };
    const track = (metric: string, counter: boolean): Track => {
      const found = this.#store.match(metric, request.node, labels);
      return found[0] ?? this.#store.create(metric, request.node, labels, counter);
    };
    for (let k = 0; k < request.count; k++) {
      const downAt = request.atMs + k * request.periodMs;
      this.#at(downAt, (t) => {
        // A clear stamped before this drop ends the flapping (one stamped after it, applied
        // first because effects run lazily, still lets this drop happen up to the clear).
        const cleared = record.fault.clearedMs;
        if (cleared !== undefined && cleared <= t) return;
        if (!record.applied) {
          record.applied = true;
          this.#emit({ kind: 'injected', fault: record.fault, atMs: t });
        }
        addToCounter(track(LINK_DOWNED, true), 1, t);
        for (const s of LINK_STATES) {
          const tr = track(s.metric, false);
          hold(tr, id, s.down, t);
          if (!record.holds.includes(tr)) record.holds.push(tr);
        }
        const upAt = Math.min(t + request.downMs, cleared ?? Number.POSITIVE_INFINITY);
        this.#at(upAt, (u) => {
          for (const s of LINK_STATES) release(track(s.metric, false), id, u);
        });
      });
    }
    return id;
  }

  #applyRecord(record: FaultRecord, atMs: number): void {
    if (record.fault.clearedMs !== undefined) return;
    for (const change of record.fault.entry.fault.series) this.#apply(record, change, atMs);
    record.applied = true;
    this.#emit({ kind: 'injected', fault: record.fault, atMs });
  }

  /** Runs now when `atMs` is not in the future (or there is no clock), else at `atMs`. */
  #at(atMs: number, run: (atMs: number) => void): void {
    if (this.#now === undefined || atMs <= this.#now()) run(atMs);
    else this.#scheduler.at(atMs, run);
  }

  /** Clears a fault from `atMs`: gauges return to baseline, removed series come back, counters stay. */
  clearFault(id: string, atMs: number): boolean {
    const record = this.#faults.get(id);
    if (record === undefined || record.fault.clearedMs !== undefined) return false;
    if (this.#now !== undefined && atMs > this.#now()) {
      this.#scheduler.at(atMs, (t) => this.clearFault(id, t));
      return true;
    }
    for (const track of record.holds) release(track, id, atMs);
    const wasApplied = record.applied;
    record.fault = { ...record.fault, clearedMs: atMs };
    if (wasApplied) this.#emit({ kind: 'cleared', fault: record.fault, atMs });
    return true;
  }

  /** Active faults (applied, not cleared), of one node or of the fleet. */
  active(node?: string): Fault[] {
    const out: Fault[] = [];
    for (const { fault, applied } of this.#faults.values()) {
      if (!applied || fault.clearedMs !== undefined) continue;
      if (node === undefined || fault.node === node) out.push(fault);
    }
    return out;
  }

  /** A fault by id (active or cleared). */
  get(id: string): Fault | undefined {
    return this.#faults.get(id)?.fault;
  }

  /** Clears the node's active faults that `pred` selects; returns them. */
  clearWhere(node: string, pred: (fault: Fault) => boolean, atMs: number): Fault[] {
    const cleared = this.active(node).filter(pred);
    for (const f of cleared) this.clearFault(f.id, atMs);
    return cleared;
  }

  /** A reboot (or power cycle) clears `transient` and `until-reboot` faults. */
  onReboot(node: string, atMs: number): Fault[] {
    return this.clearWhere(
      node,
      (f) => f.persistence === 'transient' || f.persistence === 'until-reboot',
      atMs,
    );
  }

  /** A remedy action clears the `until-remedy` faults it fixes. */
  onRemedy(node: string, action: string, atMs: number): Fault[] {
    return this.clearWhere(
      node,
      (f) => f.persistence === 'until-remedy' && f.remedy === action,
      atMs,
    );
  }

  /** A repair Job clears `until-repair` faults. */
  onRepair(node: string, atMs: number): Fault[] {
    return this.clearWhere(node, (f) => f.persistence === 'until-repair', atMs);
  }

  /** Calls `listener` on every injection and clearance. */
  subscribe(listener: (event: FaultEvent) => void): void {
    this.#listeners.push(listener);
  }

  #apply(record: FaultRecord, change: SeriesChange, atMs: number): void {
    const { fault } = record;
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(change.labels)) {
      const value = fillDevice(v, fault.device).replaceAll('{node}', fault.node);
      // A part the device id does not have (`mlx5_0` for `{device#1}`) selects every value.
      if (value !== '' || v === '') labels[k] = value;
    }
    let tracks = this.#store.match(change.metric, fault.node, labels);
    if (tracks.length === 0) {
      tracks = [this.#store.create(change.metric, fault.node, labels, change.add !== undefined)];
    }
    for (const track of tracks) {
      if (change.add !== undefined) addToCounter(track, change.add, atMs);
      if (change.remove === true) {
        hold(track, fault.id, null, atMs);
        record.holds.push(track);
      } else if (change.value !== undefined) {
        hold(track, fault.id, change.value, atMs);
        record.holds.push(track);
      }
    }
  }

  #emit(event: FaultEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}

/**
 * Fills `{device}` with the whole device id and `{device#i}` with its i-th `/`-separated part (an
 * IB port id `mlx5_0/1` is HCA `mlx5_0`, port `1`; a missing part is empty).
 */
function fillDevice(value: string, device: string): string {
  const parts = device.split('/');
  return value
    .replaceAll(/\{device#(\d)\}/g, (_m, i: string) => parts[Number(i)] ?? '')
    .replaceAll('{device}', device);
}
