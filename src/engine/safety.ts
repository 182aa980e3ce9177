import type { Config } from '../config/schema.js';
import { LEAF_LABEL, RACK_LABEL, isOptedOut, type NodeInfo } from '../core/types.js';
import { Action, DISRUPTIVE_ACTIONS, type Step } from '../sop/sop.js';
import type { Ticket } from '../ticket/ticket.js';

/** Why a step was held back. */
export interface Hold {
  readonly gate:
    | 'paused'
    | 'node-paused'
    | 'cordon-budget'
    | 'storm-breaker'
    | 'concurrency'
    | 'rack-cap'
    | 'leaf-cap'
    | 'node-cooldown'
    | 'approval';
  readonly reason: string;
}

/** A reservation for an admitted step; release it when the step ends. */
export interface Admission {
  release(): void;
}

type SafetyConfig = Config['safety'];

/**
 * The layered limits between a decided step and its execution. Reservations are taken
 * synchronously at admission, so limits are atomic within the (single, leader-elected) daemon:
 * two steps can never both pass a gate that has room for one.
 */
export class SafetyGates {
  readonly #cfg: SafetyConfig;
  readonly #inflight = new Map<string, number>();
  readonly #perRack = new Map<string, number>();
  readonly #perLeaf = new Map<string, number>();
  #pendingCordons = 0;
  /** Times at which nodes became newly faulty (storm detection). */
  #newFaulty: { node: string; atMs: number }[] = [];
  #breakerOpenUntilMs = 0;
  #breakerTrips = 0;
  /** When the breaker last tripped (an operator's reset applies to trips before it). */
  #breakerTrippedAtMs = Number.NEGATIVE_INFINITY;
  /** Set by an operator (ConfigMap aegis-control), beside the config's `paused`. */
  #operatorPause: string | undefined;

  constructor(cfg: SafetyConfig) {
    this.#cfg = cfg;
  }

  /** Whether the storm breaker holds remediation now. */
  breakerOpen(nowMs: number): boolean {
    return nowMs < this.#breakerOpenUntilMs;
  }

  /** How many times the breaker tripped. */
  get breakerTrips(): number {
    return this.#breakerTrips;
  }

  /** An operator paused everything (`by`) or resumed (undefined). */
  setOperatorPause(by: string | undefined): void {
    this.#operatorPause = by;
  }

  /**
   * An operator reset the breaker at `atMs`: a trip before that ends now; a storm that trips it
   * again afterwards holds again.
   */
  operatorReset(atMs: number): boolean {
    if (!(this.#breakerTrippedAtMs <= atMs) || this.#breakerOpenUntilMs === 0) return false;
    this.resetBreaker();
    return true;
  }

  /** Operator reset of the breaker. */
  resetBreaker(): void {
    this.#breakerOpenUntilMs = 0;
    this.#newFaulty = [];
  }

  /**
   * Records nodes that became faulty this cycle and trips the breaker when too many did within
   * the window: a switch or PDU failure must not become N reboots.
   */
  observeNewFaults(nodes: readonly string[], fleetSize: number, nowMs: number): void {
    for (const node of nodes) this.#newFaulty.push({ node, atMs: nowMs });
    this.#newFaulty = this.#newFaulty.filter((f) => nowMs - f.atMs < this.#cfg.stormWindowMs);
    // Only an arrival of new faulty nodes can trip or extend the breaker: a quiet cycle inside
    // the window must not push the end of the cooldown forward.
    if (nodes.length === 0) return;
    const distinct = new Set(this.#newFaulty.map((f) => f.node)).size;
    if (distinct > stormLimit(this.#cfg, fleetSize)) {
      if (!this.breakerOpen(nowMs)) this.#breakerTrips++;
      this.#breakerOpenUntilMs = nowMs + this.#cfg.stormCooldownMs;
      this.#breakerTrippedAtMs = nowMs;
    }
  }

  /** New faulty nodes within the window that the breaker tolerates, for this fleet size. */
  stormLimit(fleetSize: number): number {
    return stormLimit(this.#cfg, fleetSize);
  }

  /** In-flight steps by action (for metrics). */
  inflight(): ReadonlyMap<string, number> {
    return this.#inflight;
  }

  /**
   * Decides whether `step` on `node` may run now. On success the step's reservations are held
   * until `release()`.
   */
  admit(input: {
    step: Step;
    node: NodeInfo;
    ticket: Ticket | null;
    fleet: { eligible: number; cordoned: number };
    nowMs: number;
  }): Admission | Hold {
    const { step, node, nowMs } = input;
    const c = this.#cfg;
    if (c.paused) return { gate: 'paused', reason: 'automation is paused' };
    if (this.#operatorPause !== undefined)
      return { gate: 'paused', reason: `automation paused by ${this.#operatorPause}` };
    if (node.annotations['aegis.io/pause'] === 'true') {
      return { gate: 'node-paused', reason: 'node annotated aegis.io/pause=true' };
    }
    const disruptive = DISRUPTIVE_ACTIONS.has(step.action);
    const newIncident =
      input.ticket === null ||
      input.ticket.status === 'resolved' ||
      input.ticket.status === 'closed';
    if (this.breakerOpen(nowMs) && (disruptive || (step.action === Action.Cordon && newIncident))) {
      return { gate: 'storm-breaker', reason: 'too many nodes failed at once; remediation paused' };
    }
    if (step.action === Action.Cordon && !node.unschedulable) {
      const budget = Math.max(1, Math.floor(c.maxCordonedFraction * input.fleet.eligible));
      if (input.fleet.cordoned + this.#pendingCordons >= budget) {
        return { gate: 'cordon-budget', reason: `cordon budget of ${budget} nodes reached` };
      }
    }
    if (disruptive) {
      const hold = this.#disruptiveHold(step, node, input.ticket, nowMs);
      if (hold !== undefined) return hold;
    }
    const total = [...this.#inflight.values()].reduce((a, b) => a + b, 0);
    if (total >= c.maxConcurrent.total)
      return { gate: 'concurrency', reason: `${total} steps in flight` };
    return this.#reserve(step, node);
  }

  #disruptiveHold(
    step: Step,
    node: NodeInfo,
    ticket: Ticket | null,
    nowMs: number,
  ): Hold | undefined {
    const c = this.#cfg;
    const limit =
      step.action === Action.Reboot
        ? c.maxConcurrent.reboot
        : step.action === Action.Shutdown
          ? c.maxConcurrent.shutdown
          : c.maxConcurrent.drain;
    const now = this.#inflight.get(step.action) ?? 0;
    if (now >= limit)
      return { gate: 'concurrency', reason: `${now} ${step.action} in flight (limit ${limit})` };
    const rack = node.labels[RACK_LABEL];
    if (rack !== undefined && (this.#perRack.get(rack) ?? 0) >= c.maxPerRack) {
      return {
        gate: 'rack-cap',
        reason: `rack ${rack} already has ${c.maxPerRack} disruptive steps`,
      };
    }
    const leaf = node.labels[LEAF_LABEL];
    if (leaf !== undefined && (this.#perLeaf.get(leaf) ?? 0) >= c.maxPerLeaf) {
      return {
        gate: 'leaf-cap',
        reason: `leaf switch ${leaf} already has ${c.maxPerLeaf} disruptive steps`,
      };
    }
    if (step.seq === undefined && ticket !== null) {
      const lastEnd = lastDisruptiveEnd(ticket);
      if (lastEnd !== undefined && nowMs - lastEnd < c.nodeCooldownMs) {
        return { gate: 'node-cooldown', reason: 'node is cooling down after its last remediation' };
      }
    }
    return undefined;
  }

  #reserve(step: Step, node: NodeInfo): Admission {
    const disruptive = DISRUPTIVE_ACTIONS.has(step.action);
    const rack = disruptive ? node.labels[RACK_LABEL] : undefined;
    const leaf = disruptive ? node.labels[LEAF_LABEL] : undefined;
    const cordon = step.action === Action.Cordon && !node.unschedulable;
    bump(this.#inflight, step.action, 1);
    if (rack !== undefined) bump(this.#perRack, rack, 1);
    if (leaf !== undefined) bump(this.#perLeaf, leaf, 1);
    if (cordon) this.#pendingCordons++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        bump(this.#inflight, step.action, -1);
        if (rack !== undefined) bump(this.#perRack, rack, -1);
        if (leaf !== undefined) bump(this.#perLeaf, leaf, -1);
        if (cordon) this.#pendingCordons--;
      },
    };
  }
}

/** True when the value is a hold rather than an admission. */
export function isHold(v: Admission | Hold): v is Hold {
  return 'gate' in v;
}

/**
 * Counts eligible and cordoned nodes for the cordon budget (opted-out nodes excluded).
 * `counts(node)` says whether a cordoned node uses the budget; the controller passes "cordoned
 * by Aegis", so a human's cordons never block automation (a defect of the original GateKeeper).
 */
export function fleetCounts(
  nodes: readonly NodeInfo[],
  counts: (node: NodeInfo) => boolean = () => true,
): { eligible: number; cordoned: number } {
  let eligible = 0;
  let cordoned = 0;
  for (const n of nodes) {
    if (isOptedOut(n)) continue;
    eligible++;
    if (n.unschedulable && counts(n)) cordoned++;
  }
  return { eligible, cordoned };
}

function bump(m: Map<string, number>, k: string, d: number): void {
  const v = (m.get(k) ?? 0) + d;
  if (v <= 0) m.delete(k);
  else m.set(k, v);
}

function lastDisruptiveEnd(ticket: Ticket): number | undefined {
  for (let i = ticket.workflows.length - 1; i >= 0; i--) {
    const w = ticket.workflows[i];
    if (
      w !== undefined &&
      (w.action === Action.Reboot || w.action === Action.Shutdown) &&
      w.status === 'Succeeded'
    ) {
      return Date.parse(w.end ?? w.time ?? '');
    }
  }
  return undefined;
}

/**
 * The storm breaker's tolerance: the LOWER of a count and a fraction of the fleet, so it protects a
 * small cluster too (20 of 64 nodes failing at once is a storm, though fewer than 20 + 1), never
 * below a floor (a few independent faults at once are not a storm in a small fleet). The breaker
 * trips when more nodes than this became faulty within the window.
 */
export function stormLimit(
  cfg: {
    readonly stormMaxNewFaultyNodes: number;
    readonly stormMaxNewFaultyFraction: number;
    readonly stormMinNewFaultyNodes: number;
  },
  fleetSize: number,
): number {
  return Math.max(
    cfg.stormMinNewFaultyNodes,
    Math.min(cfg.stormMaxNewFaultyNodes, Math.floor(cfg.stormMaxNewFaultyFraction * fleetSize)),
  );
}
