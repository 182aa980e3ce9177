import type { Domain } from '../core/types.js';

/**
 * How a condition's device id is used when deciding what is affected (the original's
 * DeviceIDMode column): `none` node-wide, `id` an opaque device id (mlx5_3, sensor name, mount),
 * `index` a GPU index 0-7, `mask` an 8-char GPU bitmask, `all` every device of the domain.
 */
export type DeviceIdMode = 'none' | 'id' | 'index' | 'mask' | 'all';

/**
 * Which exporter a rule is about. Every cycle the inspector asks, per exporter, which nodes it
 * reports for (SIGNAL_PRESENCE: the node has its series and their scrape target's `up` is 1) and,
 * where the exporter reports it, which collectors failed (COLLECTOR_HEALTH). A rule is *stale* on a
 * node when any exporter or collector it reads (inputs.ts, from its PromQL; not only this signal)
 * is missing there: its conditions keep their last state (never healthy, never a new fault).
 */
export type Signal =
  | 'dcgm-exporter'
  | 'node-exporter'
  | 'kube-state-metrics'
  | 'ipmi-exporter'
  | 'gpfs-exporter'
  | 'sichek'
  | 'aegis-nodecheck'
  | 'node-problem-detector'
  | 'prometheus'
  | 'kubernetes';

/** Node-object fields a `kubernetes`-signal condition is read from (no PromQL round trip). */
export type NodeField = 'notReady' | 'unschedulable';

/**
 * One series change the simulator makes so that a condition's rule fires, exactly as the real
 * exporter would show the fault. Label values may contain `{node}` and `{device}` placeholders.
 * The change selects the node's baseline series named `metric` whose labels include `labels`;
 * when none exists the series is created with `node` plus `labels`.
 */
export interface SeriesChange {
  readonly metric: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Gauge value while the fault holds (the baseline comes back when it clears). */
  readonly value?: number;
  /** Counter step added when the fault starts (counters never go back down). */
  readonly add?: number;
  /** The series disappears while the fault holds (device fell off the bus, exporter gone). */
  readonly remove?: boolean;
}

/** How the simulator makes a condition real. */
export interface FaultRecipe {
  readonly series: readonly SeriesChange[];
  /** Node-object effects of the fault. */
  readonly node?: { readonly ready?: boolean | 'Unknown'; readonly unschedulable?: boolean };
  /**
   * Default device id when a scenario names none (e.g. `0` for a GPU, `mlx5_0/1` for an IB port).
   * Label values may use `{device#i}`, the i-th `/`-separated part of the device id (`mlx5_0`, `1`).
   */
  readonly defaultDevice?: string;
}

/**
 * One catalogue entry: everything Aegis knows about a condition. Data, not code: the inspector,
 * the rule generator, the simulator and the docs all read it.
 */
export interface CatalogueEntry {
  /** Condition name, PascalCase, unique. The wire name in tickets, metrics and priority.conf. */
  readonly name: string;
  readonly domain: Domain;
  readonly description: string;
  readonly signal: Signal;
  /**
   * PromQL that returns one series per faulty node (and device), each with a `node` label; the
   * sample value is the magnitude (count, %, MHz) or 1. Empty for `kubernetes`-signal entries,
   * which set `nodeField` instead (their `expr` for rule generation is in `ksmExpr`).
   */
  readonly expr: string;
  /** kube-state-metrics PromQL equivalent of a `kubernetes`-signal entry, for generated rules. */
  readonly ksmExpr?: string;
  readonly nodeField?: NodeField;
  /** Label carrying the device id in `expr` results ('' when node-wide). */
  readonly deviceLabel: string;
  /** Label carrying the PCIe BDF, when the exporter provides one. */
  readonly pciBdfLabel?: string;
  /** How long the rule must hold before the condition is raised (Prometheus `for:`). */
  readonly forMs: number;
  /** How long the rule must stay quiet before the condition clears (flap damping). */
  readonly clearForMs: number;
  /** How the condition clears, in words (for docs and tickets). */
  readonly clear: string;
  /** Default priority (0 NotReady, 1 Cordon, 2-99 Emergency, 100-999 CanIgnore, >999 MustIgnore). */
  readonly priority: number;
  readonly affectsLoad: boolean;
  readonly deviceIdMode: DeviceIdMode;
  /** SOP id (`<domain>.<action>`) that handles it, or null for record-only conditions. */
  readonly sop: string | null;
  /** Older names of the same condition (v1 recording rules, seed names), accepted on input. */
  readonly aliases?: readonly string[];
  readonly fault: FaultRecipe;
}
