import type { CatalogueEntry, Signal } from '../catalogue/types.js';
import type { Clock } from '../core/clock.js';
import { mapLimit } from '../core/concurrency.js';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import { toDomain, type NodeInfo } from '../core/types.js';
import type { InstantSample, MetricsSource } from '../prom/metrics-source.js';
import type { Observation } from './condition-tracker.js';

/** The original's contract metric, read in compatibility mode. */
export const COMPAT_METRIC = 'aegis_node_status_condition';

/** What one inspection cycle saw. */
export interface Inspection {
  readonly observations: Observation[];
  /** Rules whose query failed this cycle: stale on every node. */
  readonly failedRules: ReadonlySet<string>;
  /** Per node, the signals (exporters) not reporting for it. */
  readonly staleByNode: ReadonlyMap<string, ReadonlySet<Signal>>;
  /** Signals whose presence query failed: stale on every node. */
  readonly failedSignals: ReadonlySet<Signal>;
  readonly queries: number;
  readonly failures: number;
  /** Condition names in `aegis_node_status_condition` that the catalogue does not know. */
  readonly unknownCompat: readonly string[];
  readonly errors: readonly string[];
}

/** Inspector settings. */
export interface InspectorOptions {
  readonly concurrency: number;
  readonly queryTimeoutMs: number;
  /** Also read the original's `aegis_node_status_condition`. */
  readonly compatibility: boolean;
}

/**
 * Per cycle: one instant query per catalogue rule for the whole fleet (never one per node), one
 * presence query per exporter, bounded concurrency, a deadline per query. Results become
 * observations; failures become stale markers, never faults and never "healthy".
 */
export class Inspector {
  readonly #rules: readonly CatalogueEntry[];
  readonly #byName: ReadonlyMap<string, CatalogueEntry>;
  readonly #presence: readonly (readonly [Signal, string])[];
  readonly #metrics: MetricsSource;
  readonly #clock: Clock;
  readonly #opts: InspectorOptions;
  /** Node names of the last fleet seen, and each one's first position (see #indexOf). */
  #fleetNames: readonly string[] = [];
  #fleetIndex = new Map<string, number>();
  #canonical = new Int32Array(0);

  constructor(deps: {
    catalogue: readonly CatalogueEntry[];
    presence: Readonly<Record<Signal, string | null>>;
    metrics: MetricsSource;
    clock: Clock;
    options: InspectorOptions;
  }) {
    this.#rules = deps.catalogue.filter((e) => e.expr !== '');
    const byName = new Map<string, CatalogueEntry>();
    for (const e of deps.catalogue) {
      byName.set(e.name, e);
      for (const a of e.aliases ?? []) byName.set(a, e);
    }
    this.#byName = byName;
    this.#presence = Object.entries(deps.presence).filter(
      (p): p is [Signal, string] => p[1] !== null && p[1] !== '',
    );
    this.#metrics = deps.metrics;
    this.#clock = deps.clock;
    this.#opts = deps.options;
  }

  /** Number of queries one cycle issues (independent of the fleet size). */
  get queriesPerCycle(): number {
    return this.#rules.length + this.#presence.length + (this.#opts.compatibility ? 1 : 0);
  }

  /** Runs one cycle over `nodes`. Never throws for query failures: they are reported as stale. */
  async inspect(nodes: readonly NodeInfo[], signal: AbortSignal): Promise<Inspection> {
    const atMs = this.#clock.now();
    type Job =
      | { kind: 'rule'; entry: CatalogueEntry }
      | { kind: 'presence'; signal: Signal; expr: string }
      | { kind: 'compat' };
    const jobs: Job[] = [
      ...this.#presence.map(([s, expr]): Job => ({ kind: 'presence', signal: s, expr })),
      ...this.#rules.map((entry): Job => ({ kind: 'rule', entry })),
      ...(this.#opts.compatibility ? [{ kind: 'compat' } as Job] : []),
    ];
    const results = await mapLimit(jobs, this.#opts.concurrency, (job) =>
      this.#query(
        job.kind === 'rule' ? job.entry.expr : job.kind === 'presence' ? job.expr : COMPAT_METRIC,
        atMs,
        signal,
      ),
    );
    const observations: Observation[] = [];
    const failedRules = new Set<string>();
    const failedSignals = new Set<Signal>();
    const present = new Map<Signal, Uint8Array>();
    const index = this.#indexOf(nodes);
    const errors: string[] = [];
    const unknownCompat = new Set<string>();
    let failures = 0;
    results.forEach((r, i) => {
      const job = jobs[i] as Job;
      if (r.status === 'rejected') {
        failures++;
        errors.push(errorMessage(r.reason));
        if (job.kind === 'rule') failedRules.add(job.entry.name);
        else if (job.kind === 'presence') failedSignals.add(job.signal);
        return;
      }
      if (job.kind === 'presence') {
        present.set(job.signal, presenceMarks(r.value, index, nodes.length));
      } else if (job.kind === 'rule') {
        for (const s of r.value) {
          const o = toObservation(job.entry, s);
          if (o !== undefined) observations.push(o);
        }
      } else {
        for (const s of r.value) {
          const o = this.#fromCompat(s);
          if (o === undefined) unknownCompat.add(s.labels['condition'] ?? '');
          else observations.push(o);
        }
      }
    });
    for (const node of nodes) {
      if (node.ready !== true)
        observations.push(nodeFieldObservation(this.#byName, 'NodeNotReady', node));
      if (node.unschedulable)
        observations.push(nodeFieldObservation(this.#byName, 'NodeCordon', node));
    }
    const staleByNode = new Map<string, Set<Signal>>();
    const canonical = this.#canonical;
    for (const [sig, marks] of present) {
      for (let i = 0; i < nodes.length; i++) {
        if (marks[canonical[i] ?? i] === 1) continue;
        const name = (nodes[i] as NodeInfo).name;
        let set = staleByNode.get(name);
        if (set === undefined) staleByNode.set(name, (set = new Set()));
        set.add(sig);
      }
    }
    return {
      observations,
      failedRules,
      staleByNode,
      failedSignals,
      queries: jobs.length,
      failures,
      unknownCompat: [...unknownCompat],
      errors,
    };
  }

  /**
   * Name -> position of the fleet, rebuilt only when the node list changes (cycles see the same
   * fleet almost always). `#canonical[i]` is the first position holding node i's name, so a
   * duplicated name reads the same presence as its first occurrence.
   */
  #indexOf(nodes: readonly NodeInfo[]): ReadonlyMap<string, number> {
    const names = this.#fleetNames;
    let same = names.length === nodes.length;
    for (let i = 0; same && i < nodes.length; i++) same = names[i] === nodes[i]?.name;
    if (same) return this.#fleetIndex;
    const index = new Map<string, number>();
    const canonical = new Int32Array(nodes.length);
    nodes.forEach((node, i) => {
      const first = index.get(node.name);
      if (first === undefined) index.set(node.name, i);
      canonical[i] = first ?? i;
    });
    this.#fleetNames = nodes.map((n) => n.name);
    this.#fleetIndex = index;
    this.#canonical = canonical;
    return index;
  }

  /** Signal of a condition (for staleness checks). */
  signalOf(condition: string): Signal | undefined {
    return this.#byName.get(condition)?.signal;
  }

  async #query(expr: string, atMs: number, signal: AbortSignal): Promise<readonly InstantSample[]> {
    const ctl = new AbortController();
    const onAbort = (): void => {
      ctl.abort(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const deadline = this.#clock.sleep(this.#opts.queryTimeoutMs, ctl.signal).then(() => {
      throw new HealError(
        ErrorCode.PromUnavailable,
        `query timed out after ${this.#opts.queryTimeoutMs}ms: ${expr}`,
      );
    });
    try {
      return await Promise.race([this.#metrics.query(expr, atMs, ctl.signal), deadline]);
    } finally {
      ctl.abort(new Error('query settled'));
      deadline.catch(() => undefined);
      signal.removeEventListener('abort', onAbort);
    }
  }

  #fromCompat(s: InstantSample): Observation | undefined {
    const entry = this.#byName.get(s.labels['condition'] ?? '');
    const node = s.labels['node'] ?? '';
    if (entry === undefined || node === '') return undefined;
    const code = Number.parseInt(s.labels['code'] ?? '', 10);
    return {
      node,
      domain: toDomain(s.labels['type'] ?? '') ?? entry.domain,
      condition: entry.name,
      id: s.labels['id'] ?? '',
      pciBdf: s.labels['pci_bdf'] ?? '',
      msg: s.labels['msg'] ?? '',
      value: Number.isInteger(code) ? code : s.value,
    };
  }
}

/** Marks, per fleet position, the nodes a presence answer names (1 = present). */
function presenceMarks(
  samples: readonly InstantSample[],
  index: ReadonlyMap<string, number>,
  size: number,
): Uint8Array {
  const marks = new Uint8Array(size);
  for (const s of samples) {
    const name = nodeOf(s);
    const i = name === '' ? undefined : index.get(name);
    if (i !== undefined) marks[i] = 1;
  }
  return marks;
}

function nodeOf(s: InstantSample): string {
  return s.labels['node'] ?? s.labels['Hostname'] ?? '';
}

function toObservation(entry: CatalogueEntry, s: InstantSample): Observation | undefined {
  const node = nodeOf(s);
  if (node === '' || Number.isNaN(s.value)) return undefined;
  const id = entry.deviceLabel === '' ? '' : (s.labels[entry.deviceLabel] ?? '');
  return {
    node,
    domain: entry.domain,
    condition: entry.name,
    id,
    pciBdf: entry.pciBdfLabel === undefined ? '' : (s.labels[entry.pciBdfLabel] ?? ''),
    msg: `${entry.name}${id === '' ? '' : ` ${entry.deviceLabel}=${id}`} value=${s.value}`,
    value: s.value,
  };
}

function nodeFieldObservation(
  byName: ReadonlyMap<string, CatalogueEntry>,
  name: string,
  node: NodeInfo,
): Observation {
  const entry = byName.get(name);
  return {
    node: node.name,
    domain: entry?.domain ?? 'Node',
    condition: name,
    id: '',
    pciBdf: '',
    msg: name === 'NodeNotReady' ? `Ready=${String(node.ready)}` : 'spec.unschedulable=true',
    value: 1,
  };
}
