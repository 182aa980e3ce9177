/**
 * The node objects of the simulated cluster and their physical state: resourceVersion bumped on
 * every write, labels and annotations, cordons, readiness (power and fault effects), reboots and
 * power-offs. Every change is mirrored into the series store exactly as kube-state-metrics and the
 * node's exporters would show it (see ksm-sync.ts).
 */
import type { Clock } from '../core/clock.js';
import { ErrorCode, HealError } from '../core/errors.js';
import type { NodeConditionInfo, NodeInfo, Taint } from '../core/types.js';
import type { FaultInjector } from './faults.js';
import type { FleetNode } from './fleet-spec.js';
import {
  publishBoot,
  publishLabels,
  publishPower,
  publishReady,
  publishUnschedulable,
} from './ksm-sync.js';
import type { SeriesStore } from './series-store.js';
import type { SimScheduler } from './sim-scheduler.js';
import { hold } from './track.js';

/** The taint the node lifecycle controller gives a cordoned node. */
const UNSCHEDULABLE_TAINT = 'node.kubernetes.io/unschedulable';

/** Power state of a simulated node. */
export type PowerState = 'on' | 'off' | 'booting';

/** A node object. */
export interface NodeRecord {
  readonly fleet: FleetNode;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  unschedulable: boolean;
  rv: number;
  power: PowerState;
  ready: boolean | 'Unknown';
  info: NodeInfo | undefined;
  /** Status conditions set by node-side detectors (node-problem-detector, the Aegis agent). */
  conditions?: readonly NodeConditionInfo[];
  /** spec.taints written through the API (the cordon's own taint is derived, not kept here). */
  taints?: readonly Taint[];
}

/** A node-side detector's condition as a test or scenario sets it. */
export interface NodeConditionWrite {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message?: string;
}

/** What SimNodes needs. */
export interface SimNodesOptions {
  readonly clock: Clock;
  readonly store: SeriesStore;
  readonly faults: FaultInjector;
  readonly scheduler: SimScheduler;
  readonly bootTimeMs: number;
  /** A kubelet status write (Ready changed). */
  readonly onStatusWrite: (node: string, detail: string, atMs: number) => void;
  /** The node went down: its workload pods are gone. */
  readonly onDown: (node: string, atMs: number) => void;
}

const NO_ANNOTATIONS: Readonly<Record<string, string>> = Object.freeze({});

/** The node objects. */
export class SimNodes {
  readonly #o: SimNodesOptions;
  readonly #nodes = new Map<string, NodeRecord>();
  readonly #reboots = new Map<string, number>();
  #rv = 1000;

  constructor(options: SimNodesOptions) {
    this.#o = options;
    for (const fleet of options.store.fleet.nodes) {
      this.#nodes.set(fleet.name, {
        fleet,
        labels: fleet.labels,
        annotations: NO_ANNOTATIONS,
        unschedulable: false,
        rv: this.#rv,
        power: 'on',
        ready: true,
        info: undefined,
      });
    }
    options.faults.subscribe((event) => {
      const r = this.#nodes.get(event.fault.node);
      if (r === undefined) return;
      if (event.fault.entry.fault.node?.unschedulable === true) {
        this.setUnschedulable(r, event.kind === 'injected', event.atMs);
      }
      this.#refresh(r, event.atMs);
    });
  }

  /** The node, or K8S_NOT_FOUND. */
  get(name: string): NodeRecord {
    const r = this.#nodes.get(name);
    if (r === undefined) throw new HealError(ErrorCode.K8sNotFound, `node "${name}" not found`);
    return r;
  }

  /** True when the node exists. */
  has(name: string): boolean {
    return this.#nodes.has(name);
  }

  /** Every node object. */
  all(): NodeInfo[] {
    return [...this.#nodes.values()].map((r) => this.info(r));
  }

  /** The immutable NodeInfo of the current version (cached until the next write). */
  info(r: NodeRecord): NodeInfo {
    r.info ??= {
      name: r.fleet.name,
      resourceVersion: String(r.rv),
      ready: r.ready,
      unschedulable: r.unschedulable,
      labels: r.labels,
      annotations: r.annotations,
      taints: [
        ...(r.unschedulable ? [{ key: UNSCHEDULABLE_TAINT, effect: 'NoSchedule' as const }] : []),
        ...(r.taints ?? []),
      ],
      bootId: `${r.fleet.name}-boot-${String(this.#reboots.get(r.fleet.name) ?? 0)}`,
      ...(r.conditions === undefined ? {} : { conditions: r.conditions }),
    };
    return r.info;
  }

  /**
   * A detector writes a Node condition (as node-problem-detector or the Aegis agent does): its
   * transition time moves only when the status changes, its heartbeat is `atMs`. Mirrored into
   * `kube_node_status_condition{condition, status}` as kube-state-metrics exports every condition.
   */
  setCondition(r: NodeRecord, c: NodeConditionWrite, atMs = this.#o.clock.now()): void {
    const prev = r.conditions?.find((x) => x.type === c.type);
    const next: NodeConditionInfo = {
      type: c.type,
      status: c.status,
      reason: c.reason,
      ...(c.status === 'True' && c.message !== undefined ? { message: c.message } : {}),
      sinceMs: prev !== undefined && prev.status === c.status ? (prev.sinceMs ?? atMs) : atMs,
      heartbeatMs: atMs,
    };
    r.conditions = [...(r.conditions ?? []).filter((x) => x.type !== c.type), next];
    this.#bump(r);
    for (const status of ['true', 'false', 'unknown'] as const) {
      const track = this.#o.store.create(
        'kube_node_status_condition',
        r.fleet.name,
        { condition: c.type, status },
        false,
      );
      hold(track, 'k8s', status === c.status.toLowerCase() ? 1 : 0, atMs);
    }
  }

  /** True when pods can start on the node. */
  isReady(name: string): boolean {
    return this.#nodes.get(name)?.ready === true;
  }

  /** True when new pods may be scheduled there. */
  isSchedulable(name: string): boolean {
    return this.isReady(name) && this.#nodes.get(name)?.unschedulable === false;
  }

  /** Cordon or uncordon (no write when unchanged). */
  setUnschedulable(r: NodeRecord, unschedulable: boolean, atMs = this.#o.clock.now()): void {
    if (r.unschedulable === unschedulable) return;
    r.unschedulable = unschedulable;
    this.#bump(r);
    publishUnschedulable(this.#o.store, r.fleet.name, unschedulable, atMs);
  }

  /** Replaces the node's taints (the cordon's own taint follows spec.unschedulable instead). */
  setTaints(r: NodeRecord, taints: readonly Taint[]): void {
    const kept = taints.filter((t) => t.key !== UNSCHEDULABLE_TAINT);
    if (kept.length === 0) delete r.taints;
    else r.taints = kept;
    this.#bump(r);
  }

  /** Merges annotations (`null` removes). */
  patchAnnotations(r: NodeRecord, patch: Readonly<Record<string, string | null>>): void {
    r.annotations = merge(r.annotations, patch);
    this.#bump(r);
  }

  /** Merges labels (`null` removes); kube_node_labels follows. */
  patchLabels(r: NodeRecord, patch: Readonly<Record<string, string | null>>): void {
    r.labels = merge(r.labels, patch);
    this.#bump(r);
    const original = sameRecord(r.labels, r.fleet.labels);
    if (original) r.labels = r.fleet.labels;
    publishLabels(this.#o.store, r.fleet.name, r.labels, original, this.#o.clock.now());
  }

  /** Reboots the node from `atMs` (a reboot Job); returns when it is back up. */
  reboot(name: string, atMs: number): number {
    this.#reboots.set(name, (this.#reboots.get(name) ?? 0) + 1);
    this.#o.onDown(name, atMs);
    return this.#boot(this.get(name), atMs);
  }

  /** Powers the node off from `atMs` (a shutdown Job); the BMC still answers. */
  powerOff(name: string, atMs: number): void {
    const r = this.get(name);
    r.power = 'off';
    this.#o.store.setNodeUp(name, false, atMs);
    publishPower(this.#o.store, name, false, atMs);
    this.#o.onDown(name, atMs);
    this.#refresh(r, atMs);
  }

  /** A human powers the node on: it boots (a power cycle counts as a reboot for faults). */
  powerOn(name: string, atMs: number): boolean {
    const r = this.get(name);
    if (r.power !== 'off') return false;
    publishPower(this.#o.store, name, true, atMs);
    this.#boot(r, atMs);
    return true;
  }

  /**
   * The BMC powers the node on (after its power-off): it boots with a new boot id (a power cycle
   * counts as a reboot). False when it was not off.
   */
  powerOnByBmc(name: string, atMs: number): boolean {
    const r = this.get(name);
    if (r.power !== 'off') return false;
    this.#reboots.set(name, (this.#reboots.get(name) ?? 0) + 1);
    publishPower(this.#o.store, name, true, atMs);
    this.#boot(r, atMs);
    return true;
  }

  /** Reboots so far. */
  rebootCount(name: string): number {
    return this.#reboots.get(name) ?? 0;
  }

  #boot(r: NodeRecord, atMs: number): number {
    const name = r.fleet.name;
    const { store, faults, scheduler } = this.#o;
    r.power = 'booting';
    store.setNodeUp(name, false, atMs);
    store.resetVolatileCounters(name, atMs);
    faults.onReboot(name, atMs);
    this.#refresh(r, atMs);
    const upAt = atMs + this.#o.bootTimeMs;
    scheduler.at(upAt, (t) => {
      if (r.power !== 'booting') return;
      r.power = 'on';
      store.setNodeUp(name, true, t);
      publishBoot(store, name, t);
      this.#refresh(r, t);
    });
    return upAt;
  }

  /** Recomputes Ready from power and fault effects; a change is a kubelet status write. */
  #refresh(r: NodeRecord, atMs: number): void {
    let ready: boolean | 'Unknown' = r.power === 'on' ? true : 'Unknown';
    if (r.power === 'on') {
      for (const f of this.#o.faults.active(r.fleet.name)) {
        const effect = f.entry.fault.node?.ready;
        if (effect !== undefined && effect !== true) ready = effect;
      }
    }
    if (ready === r.ready) return;
    r.ready = ready;
    this.#bump(r);
    this.#o.onStatusWrite(r.fleet.name, `Ready=${String(ready)}`, atMs);
    publishReady(this.#o.store, r.fleet.name, ready, atMs);
  }

  #bump(r: NodeRecord): void {
    r.rv = ++this.#rv;
    r.info = undefined;
  }
}

function merge(
  base: Readonly<Record<string, string>>,
  patch: Readonly<Record<string, string | null>>,
): Record<string, string> {
  const removed = new Set(Object.keys(patch).filter((k) => patch[k] === null));
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (!removed.has(k)) out[k] = v;
  for (const [k, v] of Object.entries(patch)) if (v !== null) out[k] = v;
  return out;
}

function sameRecord(
  a: Readonly<Record<string, string>>,
  b: Readonly<Record<string, string>>,
): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
