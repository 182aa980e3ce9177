import type { Config } from '../config/schema.js';
import { LEAF_LABEL, RACK_LABEL, isOptedOut, type NodeInfo } from '../core/types.js';
import { Action, DISRUPTIVE_ACTIONS, type Step } from '../sop/sop.js';
import { isOpen, type Ticket } from '../ticket/ticket.js';
import {
  DEFAULT_TOPOLOGY_LABELS,
  describeDomain,
  domainKey,
  domainLevels,
  type DomainKind,
  type DomainLevel,
  type TopologyLabels,
} from './topology.js';

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
    | 'approval'
    | 'level-limit'
    | 'human-released'
    | 'domain-incident';
  readonly reason: string;
}

/** A reservation for an admitted step; release it when the step ends. */
export interface Admission {
  release(): void;
}

type SafetyConfig = Config['safety'];

/** Fleet counts for the cordon budget, and per domain for the level limits (domainLevels). */
export interface FleetCounts {
  eligible: number;
  cordoned: number;
  readonly levels?: ReadonlyMap<string, DomainLevel>;
}

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
  readonly #topology: TopologyLabels;
  /** Domain kinds with a level limit. */
  readonly #levelKinds: readonly DomainKind[];
  /** Cordons admitted and not yet ended, per domain key (level limits). */
  readonly #pendingPerDomain = new Map<string, number>();
  /** True once `settle` has been called: the breaker then closes only on a stable cycle. */
  #settling = false;
  /** A trip whose cooldown has not yet ended on a stable cycle. */
  #awaitingStable = false;
  /** When the breaker last closed (cooldown over, fleet stable) or was reset. */
  #closedAtMs = Number.NEGATIVE_INFINITY;
  /** New incidents admitted since the breaker closed, within one storm window of it. */
  #admittedSinceClose = 0;

  constructor(cfg: SafetyConfig, topology: TopologyLabels = DEFAULT_TOPOLOGY_LABELS) {
    this.#cfg = cfg;
    this.#topology = topology;
    this.#levelKinds = [...new Set(cfg.levelLimits.map((l) => l.domain))];
  }

  /**
   * Whether the storm breaker holds remediation now: during its cooldown, and after it until a
   * stable cycle closes it (see `settle`).
   */
  breakerOpen(nowMs: number): boolean {
    return nowMs < this.#breakerOpenUntilMs || (this.#settling && this.#awaitingStable);
  }

  /**
   * Called once a cycle with whether the fleet is stable: every query answered and no node newly
   * faulty. The breaker's cooldown ends only on such a cycle (a cooldown that ends while the
   * metrics are down or nodes keep failing waits for one), and after it closes the backlog of held
   * incidents is admitted no faster than the breaker's own tolerance per storm window (never all
   * at once, as a reset in the original and NVSentinel replays it).
   */
  settle(nowMs: number, stable: boolean): void {
    this.#settling = true;
    if (!this.#awaitingStable || nowMs < this.#breakerOpenUntilMs || !stable) return;
    this.#awaitingStable = false;
    this.#closed(nowMs);
  }

  #closed(nowMs: number): void {
    this.#closedAtMs = nowMs;
    this.#admittedSinceClose = 0;
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
    this.resetBreaker(atMs);
    return true;
  }

  /** Operator reset of the breaker. */
  resetBreaker(nowMs?: number): void {
    const wasOpen = this.#breakerOpenUntilMs !== 0 || this.#awaitingStable;
    this.#breakerOpenUntilMs = 0;
    this.#awaitingStable = false;
    this.#newFaulty = [];
    if (wasOpen && nowMs !== undefined) this.#closed(nowMs);
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
      this.#awaitingStable = true;
    }
  }

  /** New faulty nodes within the window that the breaker tolerates, for this fleet size. */
  stormLimit(fleetSize: number): number {
    return stormLimit(this.#cfg, fleetSize);
  }

  /**
   * The counts `admit` needs, from the node list: eligible and cordoned nodes for the cordon
   * budget (`counts(node)`: does a cordoned node use it; see fleetCounts), and per domain of the
   * kinds with a level limit, its nodes and those out of service.
   */
  fleetCounts(
    nodes: readonly NodeInfo[],
    counts: (node: NodeInfo) => boolean = () => true,
  ): FleetCounts {
    const levels =
      this.#levelKinds.length === 0
        ? undefined
        : domainLevels(nodes, this.#levelKinds, this.#topology);
    return { ...fleetCounts(nodes, counts), ...(levels === undefined ? {} : { levels }) };
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
    fleet: FleetCounts;
    nowMs: number;
  }): Admission | Hold {
    const { step, node, nowMs } = input;
    const c = this.#cfg;
    const t = input.ticket;
    if (c.paused) return { gate: 'paused', reason: 'automation is paused' };
    if (this.#operatorPause !== undefined)
      return { gate: 'paused', reason: `automation paused by ${this.#operatorPause}` };
    if (node.annotations['aegis.io/pause'] === 'true') {
      return { gate: 'node-paused', reason: 'node annotated aegis.io/pause=true' };
    }
    const disruptive = DISRUPTIVE_ACTIONS.has(step.action);
    // New: no ticket, a closed one, or one on which nothing has run yet (a domain incident's
    // pointer, holds only).
    const newIncident =
      t === null ||
      !isOpen(t) ||
      (!t.cordonedByAegis &&
        t.workflows.every(isHeldEntry) &&
        Object.keys(t.counters).length === 0);
    const newCordon = step.action === Action.Cordon && !node.unschedulable;
    // A node Aegis cordoned that is schedulable again was released by someone else (a human's
    // `kubectl uncordon`): never cordoned again for this ticket, breaker reset or not.
    if (newCordon && t !== null && isOpen(t) && t.cordonedByAegis && step.seq === undefined) {
      return {
        gate: 'human-released',
        reason: 'uncordoned by someone else after Aegis cordoned it; not cordoned again',
      };
    }
    if (this.breakerOpen(nowMs) && (disruptive || (step.action === Action.Cordon && newIncident))) {
      return { gate: 'storm-breaker', reason: 'too many nodes failed at once; remediation paused' };
    }
    const probation = newCordon && newIncident && this.#inProbation(nowMs);
    if (probation) {
      const limit = this.stormLimit(input.fleet.eligible);
      if (this.#admittedSinceClose >= limit)
        return {
          gate: 'storm-breaker',
          reason: `storm breaker closed: at most ${limit} new incidents per storm window while the backlog drains`,
        };
    }
    if (newCordon) {
      const budget = Math.max(1, Math.floor(c.maxCordonedFraction * input.fleet.eligible));
      if (input.fleet.cordoned + this.#pendingCordons >= budget) {
        return { gate: 'cordon-budget', reason: `cordon budget of ${budget} nodes reached` };
      }
      // A node not Ready is out of service already: cordoning it changes no domain's level.
      if (node.ready === true) {
        const level = this.#levelHold(node, input.fleet.levels);
        if (level !== undefined) return level;
      }
    }
    if (disruptive) {
      const hold = this.#disruptiveHold(step, node, input.ticket, nowMs);
      if (hold !== undefined) return hold;
    }
    const total = [...this.#inflight.values()].reduce((a, b) => a + b, 0);
    if (total >= c.maxConcurrent.total)
      return { gate: 'concurrency', reason: `${total} steps in flight` };
    if (probation) this.#admittedSinceClose++;
    return this.#reserve(step, node, newCordon && node.ready === true);
  }

  /** Within one storm window after the breaker closed (the backlog is admitted at its rate). */
  #inProbation(nowMs: number): boolean {
    if (!this.#settling && this.#breakerTrips > 0 && this.#closedAtMs < this.#breakerOpenUntilMs)
      this.#closed(this.#breakerOpenUntilMs); // closed by time alone (no settle calls)
    return nowMs >= this.#closedAtMs && nowMs - this.#closedAtMs < this.#cfg.stormWindowMs;
  }

  /** The domains of `node` with a level limit that a new cordon would exceed. */
  #levelHold(
    node: NodeInfo,
    levels: ReadonlyMap<string, DomainLevel> | undefined,
  ): Hold | undefined {
    if (levels === undefined) return undefined;
    for (const lim of this.#cfg.levelLimits) {
      const value = node.labels[this.#topology[lim.domain]];
      if (value === undefined || value === '') continue;
      const key = domainKey(lim.domain, value);
      const level = levels.get(key);
      if (level === undefined) continue;
      const max = levelLimit(lim, level.size);
      const out = level.out + (this.#pendingPerDomain.get(key) ?? 0);
      if (out + 1 > max)
        return {
          gate: 'level-limit',
          reason: `${describeDomain(lim.domain, value)} has ${out} of ${level.size} nodes out of service (limit ${max})`,
        };
    }
    return undefined;
  }

  #disruptiveHold(
    step: Step,
    node: NodeInfo,
    ticket: Ticket | null,
    nowMs: number,
  ): Hold | undefined {
    const c = this.#cfg;
    // A power cycle through the BMC is a reboot: it shares the reboot limit and its count.
    const reboots = step.action === Action.Reboot || step.action === Action.PowerCycle;
    const limit = reboots
      ? c.maxConcurrent.reboot
      : step.action === Action.Shutdown
        ? c.maxConcurrent.shutdown
        : c.maxConcurrent.drain;
    const now = reboots
      ? (this.#inflight.get(Action.Reboot) ?? 0) + (this.#inflight.get(Action.PowerCycle) ?? 0)
      : (this.#inflight.get(step.action) ?? 0);
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

  #reserve(step: Step, node: NodeInfo, levelCordon: boolean): Admission {
    const disruptive = DISRUPTIVE_ACTIONS.has(step.action);
    const rack = disruptive ? node.labels[RACK_LABEL] : undefined;
    const leaf = disruptive ? node.labels[LEAF_LABEL] : undefined;
    const cordon = step.action === Action.Cordon && !node.unschedulable;
    const domains: string[] = [];
    if (levelCordon)
      for (const kind of this.#levelKinds) {
        const v = node.labels[this.#topology[kind]];
        if (v !== undefined && v !== '') domains.push(domainKey(kind, v));
      }
    bump(this.#inflight, step.action, 1);
    if (rack !== undefined) bump(this.#perRack, rack, 1);
    if (leaf !== undefined) bump(this.#perLeaf, leaf, 1);
    if (cordon) this.#pendingCordons++;
    for (const d of domains) bump(this.#pendingPerDomain, d, 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        bump(this.#inflight, step.action, -1);
        if (rack !== undefined) bump(this.#perRack, rack, -1);
        if (leaf !== undefined) bump(this.#perLeaf, leaf, -1);
        if (cordon) this.#pendingCordons--;
        for (const d of domains) bump(this.#pendingPerDomain, d, -1);
      },
    };
  }
}

/**
 * The most nodes of a domain of `size` that may be out of service under a level limit: the
 * count, the fraction of the domain (at least 1), or the lower of both.
 */
export function levelLimit(
  lim: {
    readonly maxUnhealthy?: number | undefined;
    readonly maxUnhealthyFraction?: number | undefined;
  },
  size: number,
): number {
  let max = Number.POSITIVE_INFINITY;
  if (lim.maxUnhealthy !== undefined) max = lim.maxUnhealthy;
  if (lim.maxUnhealthyFraction !== undefined)
    max = Math.min(max, Math.max(1, Math.floor(lim.maxUnhealthyFraction * size + 1e-9)));
  return max;
}

function isHeldEntry(w: { readonly status: string }): boolean {
  return w.status === 'Held';
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
      (w.action === Action.Reboot ||
        w.action === Action.PowerCycle ||
        w.action === Action.Shutdown) &&
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
