import type { ConditionInstance, Domain, NodeStatus } from '../core/types.js';

/** One observation of a rule firing for a node (and device) in this cycle. */
export interface Observation {
  readonly node: string;
  readonly domain: Domain;
  readonly condition: string;
  readonly id: string;
  readonly pciBdf: string;
  readonly msg: string;
  readonly value: number;
}

/** Timing of one condition, from the catalogue (and config overrides). */
export interface ConditionTiming {
  readonly forMs: number;
  readonly clearForMs: number;
}

/** A raise or clear edge, for metrics and logs. */
export interface ConditionEdge {
  readonly kind: 'raised' | 'cleared';
  readonly instance: ConditionInstance;
  readonly atMs: number;
}

interface TrackState {
  obs: Observation;
  firstSeenMs: number;
  lastSeenMs: number;
  activeSinceMs?: number;
  quietSinceMs?: number;
  /** Times this condition was raised recently (flap damping). */
  raises: number[];
}

const FLAP_WINDOW_MS = 3_600_000;
const FLAP_RAISES = 3;
const FLAP_HOLD_FACTOR = 4;

/**
 * Turns per-cycle observations into conditions with `for` durations, clear delays, flap damping
 * and `since` times (NPD's condition manager, Prometheus's `for:`). Work per cycle is
 * proportional to what fired and what is active, not to the fleet size.
 *
 * Stale signals: when `isStale(node, condition)` is true for a condition that was not observed,
 * its state is frozen — an active condition stays active (never read as healthy) and a pending
 * one does not progress (never read as a new fault).
 */
export class ConditionTracker {
  readonly #timing: (condition: string) => ConditionTiming;
  readonly #state = new Map<string, Map<string, TrackState>>();

  constructor(timing: (condition: string) => ConditionTiming) {
    this.#timing = timing;
  }

  /**
   * Folds one cycle's observations in; returns the edges it caused. `confirmedAtMs` is the time
   * the presence answers were evaluated at (the cycle's own time unless presence is asked in the
   * background): a condition's absence counts towards its clear only once a presence answer at or
   * after the cycle that first missed it says the node's exporter was reporting then. An exporter
   * that fell silent between two presence answers thus never reads as a cleared fault.
   */
  update(
    observations: Iterable<Observation>,
    nowMs: number,
    isStale: (node: string, condition: string) => boolean,
    confirmedAtMs = nowMs,
  ): ConditionEdge[] {
    const edges: ConditionEdge[] = [];
    const seen = new Set<TrackState>();
    for (const obs of observations) {
      const perNode = this.#nodeMap(obs.node);
      const key = obs.id === '' ? obs.condition : `${obs.condition}/${obs.id}`;
      let st = perNode.get(key);
      if (st === undefined) {
        st = { obs, firstSeenMs: nowMs, lastSeenMs: nowMs, raises: [] };
        perNode.set(key, st);
      }
      st.obs = obs;
      st.lastSeenMs = nowMs;
      if (!Number.isFinite(st.firstSeenMs)) st.firstSeenMs = nowMs;
      delete st.quietSinceMs;
      seen.add(st);
      if (
        st.activeSinceMs === undefined &&
        nowMs - st.firstSeenMs >= this.#timing(obs.condition).forMs
      ) {
        st.activeSinceMs = st.firstSeenMs;
        st.raises = st.raises.filter((t) => nowMs - t < FLAP_WINDOW_MS).concat(nowMs);
        edges.push({ kind: 'raised', instance: toInstance(st), atMs: nowMs });
      }
    }
    for (const [node, perNode] of this.#state) {
      for (const [key, st] of perNode) {
        if (seen.has(st)) continue;
        if (isStale(node, st.obs.condition)) {
          // Quiet time counts only on fresh data: after an outage it starts again.
          delete st.quietSinceMs;
          continue;
        }
        if (st.activeSinceMs === undefined) {
          if (st.raises.length === 0) perNode.delete(key);
          else st.firstSeenMs = Number.POSITIVE_INFINITY;
          continue;
        }
        st.quietSinceMs ??= nowMs;
        if (
          st.quietSinceMs <= confirmedAtMs &&
          nowMs - st.quietSinceMs >= this.#clearDelay(st, nowMs)
        ) {
          edges.push({ kind: 'cleared', instance: toInstance(st), atMs: nowMs });
          delete st.activeSinceMs;
          delete st.quietSinceMs;
          st.firstSeenMs = Number.POSITIVE_INFINITY;
          if (st.raises.every((t) => nowMs - t >= FLAP_WINDOW_MS)) perNode.delete(key);
        }
      }
      if (perNode.size === 0) this.#state.delete(node);
    }
    return edges;
  }

  /**
   * Marks a condition active without an observation (restored from a ticket after a restart).
   * It is treated as not seen: its clear delay counts from `nowMs`, and an observation keeps it.
   */
  seed(obs: Observation, sinceMs: number, nowMs: number): void {
    const perNode = this.#nodeMap(obs.node);
    const key = obs.id === '' ? obs.condition : `${obs.condition}/${obs.id}`;
    if (perNode.has(key)) return;
    perNode.set(key, {
      obs,
      firstSeenMs: sinceMs,
      lastSeenMs: sinceMs,
      activeSinceMs: sinceMs,
      quietSinceMs: nowMs,
      raises: [],
    });
  }

  /** Active conditions of one node. */
  active(node: string): ConditionInstance[] {
    const out: ConditionInstance[] = [];
    for (const st of this.#state.get(node)?.values() ?? []) {
      if (st.activeSinceMs !== undefined) out.push(toInstance(st));
    }
    return out;
  }

  /** Nodes with at least one tracked condition. */
  nodes(): IterableIterator<string> {
    return this.#state.keys();
  }

  /** Snapshot of every node with an active condition. */
  statuses(staleSignals: (node: string) => readonly string[]): NodeStatus[] {
    const out: NodeStatus[] = [];
    for (const node of this.#state.keys()) {
      const conditions = this.active(node);
      if (conditions.length > 0) out.push({ node, conditions, staleSignals: staleSignals(node) });
    }
    return out;
  }

  /** Forgets every node (leadership regained: what was learnt before may be out of date). */
  clear(): void {
    this.#state.clear();
  }

  /** Forgets a node (deleted from the cluster). */
  forget(node: string): void {
    this.#state.delete(node);
  }

  #nodeMap(node: string): Map<string, TrackState> {
    let m = this.#state.get(node);
    if (m === undefined) {
      m = new Map();
      this.#state.set(node, m);
    }
    return m;
  }

  #clearDelay(st: TrackState, nowMs: number): number {
    const base = this.#timing(st.obs.condition).clearForMs;
    const recent = st.raises.filter((t) => nowMs - t < FLAP_WINDOW_MS).length;
    return recent >= FLAP_RAISES ? Math.max(base, 60_000) * FLAP_HOLD_FACTOR : base;
  }
}

function toInstance(st: TrackState): ConditionInstance {
  const o = st.obs;
  return {
    node: o.node,
    domain: o.domain,
    condition: o.condition,
    id: o.id,
    pciBdf: o.pciBdf,
    msg: o.msg,
    value: o.value,
    sinceMs: st.activeSinceMs ?? st.firstSeenMs,
    lastSeenMs: st.lastSeenMs,
  };
}
