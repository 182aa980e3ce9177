import { createHash } from 'node:crypto';
import { getMaxListeners, setMaxListeners } from 'node:events';
import { ruleInputs, type RuleInputs } from '../catalogue/inputs.js';
import { COLLECTOR_HEALTH, collectorKey } from '../catalogue/signals.js';
import type { CatalogueEntry, Signal } from '../catalogue/types.js';
import type { Clock } from '../core/clock.js';
import { mapLimit } from '../core/concurrency.js';
import { parseDurationMs } from '../core/duration.js';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import { toDomain, type NodeInfo } from '../core/types.js';
import type { InstantSample, MetricsSource } from '../prom/metrics-source.js';
import type { Observation } from './condition-tracker.js';
import { presenceMarks } from './presence-marks.js';
import { answerGroup, planSharedSelections, type SharedGroup } from './shared-selection.js';

/** The original's contract metric, read in compatibility mode. */
export const COMPAT_METRIC = 'aegis_node_status_condition';

/**
 * Heartbeat of one recording rule (`aegis rules --tiered`), written in the rule's group right
 * beside it: labels `condition`, `interval` (its group's) and `expr_hash` (ruleHash of the PromQL
 * the rule was generated from). Read in recorded mode through HEARTBEAT_QUERY.
 */
export const HEARTBEAT_METRIC = 'aegis_rule_heartbeat';

/** The heartbeats with the time their group last evaluated them (seconds) as the value. */
export const HEARTBEAT_QUERY = `timestamp(${HEARTBEAT_METRIC})`;

/** Where the rules' answers come from (see InspectorOptions.ruleSource). */
export type RuleSource = 'direct' | 'recorded';

/** Evaluation period assumed for a heartbeat without an `interval` label (Prometheus's default). */
const DEFAULT_EVALUATION_MS = 60_000;

/** Short hash of a rule's PromQL: a recorded answer counts only when it is of the same PromQL. */
export function ruleHash(expr: string): string {
  return createHash('sha256').update(expr.trim()).digest('hex').slice(0, 12);
}

/** What one inspection cycle saw. */
export interface Inspection {
  readonly observations: Observation[];
  /**
   * Rules without a usable answer this cycle (their query failed, or a slow rule has no answer
   * yet or only an expired one): stale on every node.
   */
  readonly failedRules: ReadonlySet<string>;
  /**
   * Slow rules served from an answer evaluated before this cycle: condition -> the time that
   * answer was evaluated at. Rules queried in this cycle are absent.
   */
  readonly answeredAtMs: ReadonlyMap<string, number>;
  /** True when every rule and presence query has a usable answer (nothing stale fleet-wide). */
  readonly complete: boolean;
  /**
   * Per node, the signals (exporters) not reporting for it: no series of the exporter for the
   * node, or the scrape target that served them failing (`up` 0).
   */
  readonly staleByNode: ReadonlyMap<string, ReadonlySet<Signal>>;
  /**
   * Per node, the collectors whose last collection failed (`node-exporter/filesystem`: the
   * exporter answers, one of its collectors does not). Rules reading them are stale on the node.
   */
  readonly failedCollectorsByNode: ReadonlyMap<string, ReadonlySet<string>>;
  /** Signals whose presence (or collector health) query failed: stale on every node. */
  readonly failedSignals: ReadonlySet<Signal>;
  /**
   * Time the presence answers used in this cycle were evaluated at: the cycle's own time, or an
   * earlier cycle's when presence is asked in the background. A rule's silence about a node says
   * "healthy" only as of this time (see ConditionTracker.update).
   */
  readonly presenceAtMs: number;
  /** Queries issued in this cycle (slow rules are issued only when due). */
  readonly queries: number;
  /** Queries answered since the previous cycle (background ones included). */
  readonly answered: number;
  /** Queries that failed since the previous cycle (background ones included). */
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
  /**
   * Longest period between two queries of a slow rule (see rulePeriodMs); 0 queries every rule
   * every cycle.
   */
  readonly slowRuleMaxPeriodMs?: number;
  /** The inspection interval: rules whose period is not longer are queried every cycle. */
  readonly intervalMs?: number;
  /**
   * Slow rules' queries run in the background and the first cycle after an answer arrives uses
   * it (the daemon: a cycle never waits for a long-window query). False: the cycle that issues
   * them waits for them (deterministic, for the simulator).
   */
  readonly backgroundSlowRules?: boolean;
  /**
   * Every-cycle rules that read one metric alone share one filtered query of it and are
   * evaluated here (see shared-selection.ts).
   */
  readonly shareSelections?: boolean;
  /**
   * The presence queries (the costliest of a cycle: every series of an exporter's family) run
   * after the cycle's rule queries, beside it, and the next cycle uses their answer; the first
   * cycle waits for them. False: every cycle waits for its own (deterministic, for the simulator).
   */
  readonly backgroundPresence?: boolean;
  /**
   * `direct` (default): one query per rule for the whole fleet. `recorded`: the store evaluates
   * the rules as recording rules (`aegis rules --tiered`: each at its own period, so the slow ones
   * are spread over many cycles) and a cycle reads their output (`aegis_node_status_condition`)
   * and their heartbeats: two queries whatever the catalogue holds, no rule evaluated on the
   * daemon's behalf. A rule whose heartbeat is missing, older than two of its periods (plus a
   * query's deadline) or of other PromQL than the catalogue's is stale, never healthy; its answer
   * counts as of its evaluation (answeredAtMs).
   */
  readonly ruleSource?: RuleSource;
  /**
   * With backgroundPresence, presence is asked at most this often (0 or unset: every cycle). Its
   * queries read every series of each exporter's family, the costliest a cycle asks; between two
   * runs the cycles use the last answer, which stays usable for two such periods plus a query's
   * deadline. A fault a rule reports needs no presence; what waits is a node's staleness being
   * seen and a fault's absence counting towards its clear (see presenceAtMs), by up to this.
   */
  readonly presenceIntervalMs?: number;
}

/**
 * How often a rule needs asking. A rule that must hold for `for:` before it counts changes its
 * verdict slowly: asking it every `for/10` adds at most a tenth of its own delay. A rule over a
 * range of ten minutes or more (error counts per 10 minutes, hour or day) reads hundreds to tens
 * of thousands of samples per series and is asked every `window/120` (5 s for `[10m]`, 30 s for
 * `[1h]`–`[1d]` at the default cap); a counter step shows in it at once, so its detection waits
 * up to that period. Other rules are asked every cycle. Capped at `maxPeriodMs`; 0 when
 * `maxPeriodMs` is 0 (every cycle).
 */
export function rulePeriodMs(entry: CatalogueEntry, maxPeriodMs: number): number {
  if (maxPeriodMs <= 0) return 0;
  const windowMs = longestRangeMs(entry.expr);
  const byWindow = windowMs >= LONG_WINDOW_MS ? windowMs / 120 : 0;
  return Math.min(maxPeriodMs, Math.max(entry.forMs / 10, byWindow));
}

/** Ranges from which a rule is asked on its own period rather than every cycle. */
export const LONG_WINDOW_MS = 600_000;

/** Longest range (`[1d]`, or a subquery's `[1h:1m]`) an expression reads; 0 when none. */
export function longestRangeMs(expr: string): number {
  let longest = 0;
  for (const m of expr.matchAll(/\[((?:\d+(?:ms|[smhdwy]))+)(?::[^\]]*)?\]/g)) {
    try {
      longest = Math.max(longest, parseDurationMs(m[1] ?? ''));
    } catch {
      // Not a duration (a label matcher's regex class, say): not a range.
    }
  }
  return longest;
}

/** One presence query: which nodes an exporter reports for, or which of its collectors fail. */
interface PresenceQuery {
  readonly kind: 'presence' | 'collectors';
  readonly signal: Signal;
  readonly expr: string;
}

/** The newest answers of the presence queries (by index in #presence), evaluated at `atMs`. */
interface PresenceAnswer {
  readonly atMs: number;
  readonly samples: ReadonlyMap<number, readonly InstantSample[]>;
  /** Indexes of the queries that failed. */
  readonly failed: ReadonlySet<number>;
}

/** A rule asked less often than every cycle, and its last answer. */
interface SlowRule {
  readonly entry: CatalogueEntry;
  readonly periodMs: number;
  /** Spreads the first re-query of the slow rules over their period (0 to 1). */
  readonly phase: number;
  nextDueMs: number;
  answer: readonly InstantSample[] | undefined;
  answeredAtMs: number;
  failed: boolean;
  inflight: boolean;
}

/**
 * Per cycle: one instant query per catalogue rule for the whole fleet (never one per node), one
 * presence query per exporter, bounded concurrency, a deadline per query. Results become
 * observations; failures become stale markers, never faults and never "healthy".
 */
export class Inspector {
  readonly #rules: readonly CatalogueEntry[];
  /** Slow rules by name (a subset of #rules). */
  readonly #slow = new Map<string, SlowRule>();
  /** Every-cycle rules answered from a shared selection. */
  readonly #shared: readonly SharedGroup[];
  readonly #sharedNames: ReadonlySet<string>;
  /** Rules asked every cycle on their own (neither slow nor in a shared selection). */
  readonly #cycleRules: readonly CatalogueEntry[];
  /** True in recorded mode (ruleSource `recorded`). */
  readonly #recorded: boolean;
  /** Rule name -> ruleHash of its PromQL (recorded mode). */
  readonly #hashes = new Map<string, string>();
  /** Failures of background queries that settled since the last cycle. */
  #backgroundErrors: string[] = [];
  /** Background queries answered since the last cycle. */
  #backgroundAnswered = 0;
  /** Time of the previous cycle. */
  #prevCycleMs = Number.NEGATIVE_INFINITY;
  /** Newest presence answers (background presence), and whether a run is asking now. */
  #presenceAnswer: PresenceAnswer | undefined;
  #presenceInflight = false;
  /** When the last background presence run was asked (evaluation time). */
  #presenceAskedMs = Number.NEGATIVE_INFINITY;
  readonly #byName: ReadonlyMap<string, CatalogueEntry>;
  /** What each condition (and alias) reads: its staleness inputs. */
  readonly #inputs: ReadonlyMap<string, RuleInputs>;
  /** Presence queries, then collector-health queries of the signals that have presence. */
  readonly #presence: readonly PresenceQuery[];
  readonly #metrics: MetricsSource;
  readonly #clock: Clock;
  readonly #opts: InspectorOptions;
  /** Node names of the last fleet seen, and each one's first position (see #indexOf). */
  #fleetNames: readonly string[] = [];
  #fleetIndex = new Map<string, number>();
  #canonical = new Int32Array(0);
  /** Per presence query, where each sample of its last answer was found (presence-marks.ts). */
  readonly #presenceOrder = new Map<number, Int32Array>();

  constructor(deps: {
    catalogue: readonly CatalogueEntry[];
    presence: Readonly<Record<Signal, string | null>>;
    /**
     * Per signal, the query naming its failing collectors (node, collector); default
     * COLLECTOR_HEALTH. Asked only for signals that have a presence query.
     */
    collectors?: Readonly<Partial<Record<Signal, string>>>;
    metrics: MetricsSource;
    clock: Clock;
    options: InspectorOptions;
  }) {
    this.#rules = deps.catalogue.filter((e) => e.expr !== '');
    const byName = new Map<string, CatalogueEntry>();
    const inputs = new Map<string, RuleInputs>();
    for (const e of deps.catalogue) {
      const read = ruleInputs(e.expr);
      for (const name of [e.name, ...(e.aliases ?? [])]) {
        byName.set(name, e);
        inputs.set(name, read);
      }
    }
    this.#byName = byName;
    this.#inputs = inputs;
    const present = Object.entries(deps.presence).filter(
      (p): p is [Signal, string] => p[1] !== null && p[1] !== '',
    );
    const collectors = deps.collectors ?? COLLECTOR_HEALTH;
    this.#presence = [
      ...present.map(([signal, expr]): PresenceQuery => ({ kind: 'presence', signal, expr })),
      ...present.flatMap(([signal]): PresenceQuery[] => {
        const expr = collectors[signal];
        return expr === undefined || expr === '' ? [] : [{ kind: 'collectors', signal, expr }];
      }),
    ];
    this.#metrics = deps.metrics;
    this.#clock = deps.clock;
    this.#opts = deps.options;
    this.#recorded = deps.options.ruleSource === 'recorded';
    const maxPeriod = deps.options.slowRuleMaxPeriodMs ?? 0;
    const interval = deps.options.intervalMs ?? 0;
    this.#rules.forEach((entry, i) => {
      const periodMs = rulePeriodMs(entry, maxPeriod);
      if (periodMs <= interval || this.#recorded) return;
      this.#slow.set(entry.name, {
        entry,
        periodMs,
        phase: (i * GOLDEN) % 1,
        nextDueMs: Number.NEGATIVE_INFINITY,
        answer: undefined,
        answeredAtMs: Number.NEGATIVE_INFINITY,
        failed: false,
        inflight: false,
      });
    });
    // Recorded mode keeps the shared selections of the every-cycle rules (one cheap query for the
    // XIDs instead of a recording rule each, see sharedInRecordedMode): `aegis rules --tiered`
    // leaves those rules out.
    this.#shared =
      deps.options.shareSelections === true
        ? planSharedSelections(
            this.#recorded
              ? this.#rules.filter((e) => rulePeriodMs(e, maxPeriod) <= interval)
              : this.#rules.filter((e) => !this.#slow.has(e.name)),
          )
        : [];
    this.#sharedNames = new Set(this.#shared.flatMap((g) => g.rules.map((r) => r.entry.name)));
    if (this.#recorded)
      for (const e of this.#rules)
        if (!this.#sharedNames.has(e.name)) this.#hashes.set(e.name, ruleHash(e.expr));
    this.#cycleRules = this.#recorded
      ? []
      : this.#rules.filter((e) => !this.#slow.has(e.name) && !this.#sharedNames.has(e.name));
  }

  /** True when a cycle reads `aegis_node_status_condition` (compatibility or recorded mode). */
  get #readsCompat(): boolean {
    return this.#opts.compatibility || this.#recorded;
  }

  /** Number of queries a cycle issues when every rule is due (independent of the fleet size). */
  get queriesPerCycle(): number {
    const rules = this.#recorded
      ? 1 + this.#shared.length
      : this.#rules.length - this.#sharedNames.size + this.#shared.length;
    return rules + this.#presence.length + (this.#readsCompat ? 1 : 0);
  }

  /** Every query the inspector may issue (each once). */
  get queries(): string[] {
    return [
      ...this.#presence.map((p) => p.expr),
      ...this.#shared.map((g) => g.query),
      ...(this.#recorded
        ? [HEARTBEAT_QUERY]
        : this.#rules.filter((e) => !this.#sharedNames.has(e.name)).map((e) => e.expr)),
      ...(this.#readsCompat ? [COMPAT_METRIC] : []),
    ];
  }

  /**
   * The queries a cycle waits for: rules asked every cycle (shared ones once), compatibility; in
   * recorded mode the heartbeats and the recorded metric.
   */
  get cycleQueries(): string[] {
    return [
      ...this.#shared.map((g) => g.query),
      ...this.#cycleRules.map((e) => e.expr),
      ...(this.#recorded ? [HEARTBEAT_QUERY] : []),
      ...(this.#readsCompat ? [COMPAT_METRIC] : []),
    ];
  }

  /** Rules answered from a shared selection, by the query they share. */
  get sharedSelections(): ReadonlyMap<string, readonly string[]> {
    return new Map(this.#shared.map((g) => [g.query, g.rules.map((r) => r.entry.name)]));
  }

  /** Queries every cycle issues: presence, rules asked every cycle, compatibility. */
  get queriesEveryCycle(): number {
    return this.queriesPerCycle - this.#slow.size;
  }

  /** Period of each slow rule (rules absent are asked every cycle). */
  get slowRulePeriods(): ReadonlyMap<string, number> {
    return new Map([...this.#slow].map(([name, r]) => [name, r.periodMs]));
  }

  /** Runs one cycle over `nodes`. Never throws for query failures: they are reported as stale. */
  async inspect(nodes: readonly NodeInfo[], signal: AbortSignal): Promise<Inspection> {
    const atMs = this.#clock.now();
    // Each query in flight listens on `signal`: this cycle's, the slow rules' and presence's.
    const listeners = 3 * this.#opts.concurrency;
    const max = maxListenersOf(signal);
    if (max !== 0 && max < listeners) setMaxListeners(listeners, signal);
    type Job =
      | { kind: 'rule'; entry: CatalogueEntry }
      | { kind: 'presence'; index: number; expr: string }
      | { kind: 'shared'; group: SharedGroup }
      | { kind: 'compat' }
      | { kind: 'heartbeat' };
    // In the background, presence is asked after this cycle's rules and used by the next cycle;
    // a cycle with no earlier answer (the first) asks it itself.
    const presenceLater =
      this.#opts.backgroundPresence === true && this.#presenceAnswer !== undefined;
    const jobs: Job[] = [
      ...(presenceLater
        ? []
        : this.#presence.map((p, index): Job => ({ kind: 'presence', index, expr: p.expr }))),
      ...this.#shared.map((group): Job => ({ kind: 'shared', group })),
      ...this.#cycleRules.map((entry): Job => ({ kind: 'rule', entry })),
      ...(this.#recorded ? [{ kind: 'heartbeat' } as Job] : []),
      ...(this.#readsCompat ? [{ kind: 'compat' } as Job] : []),
    ];
    const exprOf = (job: Job): string => {
      switch (job.kind) {
        case 'rule':
          return job.entry.expr;
        case 'presence':
          return job.expr;
        case 'shared':
          return job.group.query;
        case 'compat':
          return COMPAT_METRIC;
        case 'heartbeat':
          return HEARTBEAT_QUERY;
      }
    };
    const due = [...this.#slow.values()].filter((r) => !r.inflight && r.nextDueMs <= atMs);
    const slowRun = this.#askSlow(due, atMs, signal);
    const [results] = await Promise.all([
      mapLimit(jobs, this.#opts.concurrency, (job) => this.#query(exprOf(job), atMs, signal)),
      this.#opts.backgroundSlowRules === true ? undefined : slowRun,
    ]);
    // One presence run at a time: while the last one is still out, this cycle asks none.
    const presenceAsked =
      presenceLater &&
      !this.#presenceInflight &&
      atMs - this.#presenceAskedMs >= (this.#opts.presenceIntervalMs ?? 0);
    if (presenceAsked) void this.#askPresence(atMs, signal);
    const answers = new Map<string, readonly InstantSample[]>();
    const failedRules = new Set<string>();
    const presenceSamples = new Map<number, readonly InstantSample[]>();
    const presenceFailed = new Set<number>();
    const errors = this.#backgroundErrors;
    this.#backgroundErrors = [];
    let failures = errors.length;
    let answered = this.#backgroundAnswered;
    this.#backgroundAnswered = 0;
    const observations: Observation[] = [];
    const unknownCompat = new Set<string>();
    // Recorded mode: the recorded metric and the heartbeats (undefined when their query failed).
    let recordedSamples: readonly InstantSample[] | undefined;
    let heartbeats: readonly InstantSample[] | undefined;
    results.forEach((r, i) => {
      const job = jobs[i] as Job;
      if (r.status === 'rejected') {
        failures++;
        errors.push(errorMessage(r.reason));
        if (job.kind === 'rule') failedRules.add(job.entry.name);
        else if (job.kind === 'presence') presenceFailed.add(job.index);
        else if (job.kind === 'shared')
          for (const m of job.group.rules) failedRules.add(m.entry.name);
        return;
      }
      answered++;
      if (job.kind === 'presence') {
        presenceSamples.set(job.index, r.value);
      } else if (job.kind === 'rule') {
        answers.set(job.entry.name, r.value);
      } else if (job.kind === 'shared') {
        for (const [name, samples] of answerGroup(job.group, r.value, atMs))
          answers.set(name, samples);
      } else if (job.kind === 'heartbeat') {
        heartbeats = r.value;
      } else if (this.#recorded) {
        recordedSamples = r.value;
      } else {
        for (const s of r.value) {
          const o = this.#fromCompat(s);
          if (o === undefined) unknownCompat.add(s.labels['condition'] ?? '');
          else observations.push(o);
        }
      }
    });
    const answeredAtMs = new Map<string, number>();
    const prevCycleMs = this.#prevCycleMs;
    this.#prevCycleMs = atMs;
    if (!presenceLater && this.#presence.length > 0) {
      this.#presenceAnswer = { atMs, samples: presenceSamples, failed: presenceFailed };
    }
    const { present, failedSignals, failedCollectorsByNode, presenceAtMs } = this.#presenceNow(
      nodes,
      atMs,
      prevCycleMs,
    );
    for (const r of this.#slow.values()) {
      // An answer is usable until two periods (plus a query's deadline) have passed without a
      // newer one, unless it is from the previous cycle (the newest a background query can
      // give): a slow rule that stopped answering goes stale, never silently healthy.
      const expired =
        atMs - r.answeredAtMs > 2 * r.periodMs + this.#opts.queryTimeoutMs &&
        r.answeredAtMs < prevCycleMs;
      if (r.answer === undefined || r.failed || expired) {
        failedRules.add(r.entry.name);
        continue;
      }
      answers.set(r.entry.name, r.answer);
      if (r.answeredAtMs < atMs) answeredAtMs.set(r.entry.name, r.answeredAtMs);
    }
    const recorded = this.#recorded
      ? this.#fromRecorded(recordedSamples, heartbeats, atMs, {
          failedRules,
          answeredAtMs,
          unknownCompat,
          errors,
          observations,
        })
      : undefined;
    // Rules in catalogue order, whichever tier answered them.
    for (const entry of this.#rules) {
      for (const s of answers.get(entry.name) ?? []) {
        const o = toObservation(entry, s);
        if (o !== undefined) observations.push(o);
      }
      for (const o of recorded?.get(entry.name) ?? []) observations.push(o);
    }
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
      answeredAtMs,
      complete: failures === 0 && failedRules.size === 0 && failedSignals.size === 0,
      staleByNode,
      failedCollectorsByNode,
      failedSignals,
      presenceAtMs,
      queries: jobs.length + due.length + (presenceAsked ? this.#presence.length : 0),
      answered,
      failures,
      unknownCompat: [...unknownCompat],
      errors,
    };
  }

  /**
   * Asks the due slow rules, at most a quarter of the concurrency at a time so they never crowd
   * out the every-cycle queries. Resolves when all have settled; never rejects.
   */
  async #askSlow(due: readonly SlowRule[], atMs: number, signal: AbortSignal): Promise<void> {
    for (const r of due) {
      r.inflight = true;
      // The first answer is followed by a re-query spread over the period (phase), so the slow
      // rules do not all come due in the same cycle again.
      r.nextDueMs =
        atMs + (r.answer === undefined && !r.failed ? r.periodMs * r.phase : r.periodMs);
    }
    const limit = Math.max(1, Math.floor(this.#opts.concurrency / 4));
    const results = await mapLimit(due, limit, (r) => this.#query(r.entry.expr, atMs, signal));
    results.forEach((res, i) => {
      const r = due[i] as SlowRule;
      r.inflight = false;
      if (res.status === 'rejected') {
        r.failed = true;
        // Asked again in the next cycle rather than a period later.
        r.nextDueMs = atMs;
        this.#backgroundErrors.push(errorMessage(res.reason));
        return;
      }
      this.#backgroundAnswered++;
      r.failed = false;
      r.answer = res.value;
      r.answeredAtMs = atMs;
    });
  }

  /**
   * The presence to use now: the newest answer, unless it is older than two intervals plus a
   * query's deadline and not from the previous cycle (presence that stopped answering makes
   * every signal stale, never present).
   */
  #presenceNow(
    nodes: readonly NodeInfo[],
    atMs: number,
    prevCycleMs: number,
  ): {
    present: Map<Signal, Uint8Array>;
    failedSignals: Set<Signal>;
    failedCollectorsByNode: Map<string, Set<string>>;
    presenceAtMs: number;
  } {
    const present = new Map<Signal, Uint8Array>();
    const failedSignals = new Set<Signal>();
    const failedCollectorsByNode = new Map<string, Set<string>>();
    const answer = this.#presenceAnswer;
    if (this.#presence.length === 0 || answer === undefined) {
      for (const p of this.#presence) failedSignals.add(p.signal);
      return { present, failedSignals, failedCollectorsByNode, presenceAtMs: atMs };
    }
    const periodMs = Math.max(this.#opts.intervalMs ?? 0, this.#opts.presenceIntervalMs ?? 0);
    const maxAgeMs = 2 * periodMs + this.#opts.queryTimeoutMs;
    const expired = atMs - answer.atMs > maxAgeMs && answer.atMs < prevCycleMs;
    const index = this.#indexOf(nodes);
    this.#presence.forEach((p, i) => {
      const samples = answer.samples.get(i);
      if (expired || answer.failed.has(i) || samples === undefined) {
        failedSignals.add(p.signal);
        return;
      }
      if (p.kind === 'presence') {
        const fleet = { names: this.#fleetNames, canonical: this.#canonical, index };
        const found = presenceMarks(samples, fleet, nodeOf, this.#presenceOrder.get(i));
        this.#presenceOrder.set(i, found.positions);
        present.set(p.signal, found.marks);
        return;
      }
      for (const s of samples) {
        const node = nodeOf(s);
        const collector = s.labels['collector'] ?? '';
        if (node === '' || collector === '' || !index.has(node)) continue;
        let set = failedCollectorsByNode.get(node);
        if (set === undefined) failedCollectorsByNode.set(node, (set = new Set()));
        set.add(collectorKey(p.signal, collector));
      }
    });
    return { present, failedSignals, failedCollectorsByNode, presenceAtMs: answer.atMs };
  }

  /**
   * Asks every presence query, evaluated at `atMs` (the rules' instant of the cycle that asks),
   * and keeps the answers for the next cycle. Called when no run is out; never rejects.
   */
  async #askPresence(atMs: number, signal: AbortSignal): Promise<void> {
    this.#presenceInflight = true;
    this.#presenceAskedMs = atMs;
    try {
      const results = await mapLimit(this.#presence, this.#opts.concurrency, (p) =>
        this.#query(p.expr, atMs, signal),
      );
      const samples = new Map<number, readonly InstantSample[]>();
      const failed = new Set<number>();
      results.forEach((res, i) => {
        if (res.status === 'rejected') {
          failed.add(i);
          this.#backgroundErrors.push(errorMessage(res.reason));
          return;
        }
        this.#backgroundAnswered++;
        samples.set(i, res.value);
      });
      if (atMs > (this.#presenceAnswer?.atMs ?? Number.NEGATIVE_INFINITY)) {
        this.#presenceAnswer = { atMs, samples, failed };
      }
    } finally {
      this.#presenceInflight = false;
    }
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

  /** Signal of a condition (the exporter it is about; staleness reads `inputsOf`). */
  signalOf(condition: string): Signal | undefined {
    return this.#byName.get(condition)?.signal;
  }

  /** What a condition's rule reads (its exporters and collectors), derived from its PromQL. */
  inputsOf(condition: string): RuleInputs | undefined {
    return this.#inputs.get(condition);
  }

  /**
   * True when `condition` on `node` has no usable data in `insp`: its query failed, or an exporter
   * it reads (any of them: GpuDown reads kube-state-metrics and dcgm-exporter) is not reporting
   * for the node or its presence is unknown, or a collector it reads failed on the node. Such a
   * condition keeps its state: never cleared, never newly raised from silence.
   */
  isStale(insp: Inspection, node: string, condition: string): boolean {
    if (insp.failedRules.has(condition)) return true;
    const inputs = this.#inputs.get(condition);
    if (inputs === undefined) return false;
    const stale = insp.staleByNode.get(node);
    for (const s of inputs.signals) {
      if (insp.failedSignals.has(s) || stale?.has(s) === true) return true;
    }
    const failed = insp.failedCollectorsByNode.get(node);
    if (failed !== undefined) for (const c of inputs.collectors) if (failed.has(c)) return true;
    return false;
  }

  /**
   * The inputs unusable for `node` in `insp`, with why: exporters not reporting (or their scrape
   * failing), presence queries that failed, collectors that failed. Empty when all are usable.
   */
  staleInputs(insp: Inspection, node: string): { input: string; reason: string }[] {
    const out: { input: string; reason: string }[] = [];
    for (const s of insp.failedSignals) {
      out.push({ input: s, reason: 'its presence or collector query failed (unknown, so stale)' });
    }
    for (const s of insp.staleByNode.get(node) ?? []) {
      if (insp.failedSignals.has(s)) continue;
      out.push({
        input: s,
        reason: 'no series for the node, or the scrape of its target fails (up 0)',
      });
    }
    for (const c of insp.failedCollectorsByNode.get(node) ?? []) {
      out.push({ input: c, reason: 'the collector failed its last collection' });
    }
    return out;
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

  /**
   * Recorded mode: the observations of the rules whose recording is current, by rule name. A rule
   * is current when its heartbeat is there, of the catalogue's PromQL, and no older than two of
   * its group's periods plus a query's deadline; every other rule is stale (failedRules), with
   * one error per reason naming them. Current answers older than the cycle get answeredAtMs.
   * Samples of conditions that are not rules read from recordings (node fields, shared
   * selections) go through compatibility mode when it is on, and are dropped otherwise (unknown
   * names are listed either way).
   */
  #fromRecorded(
    samples: readonly InstantSample[] | undefined,
    heartbeats: readonly InstantSample[] | undefined,
    atMs: number,
    out: {
      failedRules: Set<string>;
      answeredAtMs: Map<string, number>;
      unknownCompat: Set<string>;
      errors: string[];
      observations: Observation[];
    },
  ): Map<string, Observation[]> {
    const byRule = new Map<string, Observation[]>();
    if (samples === undefined || heartbeats === undefined) {
      for (const name of this.#hashes.keys()) out.failedRules.add(name);
      return byRule;
    }
    const beats = new Map<string, { atMs: number; periodMs: number; hash: string }>();
    for (const s of heartbeats) {
      const name = this.#byName.get(s.labels['condition'] ?? '')?.name;
      if (name === undefined || !Number.isFinite(s.value)) continue;
      const beat = {
        atMs: s.value * 1000,
        periodMs: periodLabelMs(s.labels['interval']),
        hash: s.labels['expr_hash'] ?? '',
      };
      if (!this.#hashes.has(name)) continue;
      const seen = beats.get(name);
      // Two rule files recording the same rule: the one of the catalogue's PromQL counts.
      if (seen === undefined || (seen.hash !== this.#hashes.get(name) && beat.hash !== ''))
        beats.set(name, beat);
    }
    const missing: string[] = [];
    const other: string[] = [];
    const old: string[] = [];
    const evaluatedAt = new Map<string, number>();
    for (const [name, hash] of this.#hashes) {
      const beat = beats.get(name);
      if (beat === undefined) missing.push(name);
      else if (beat.hash !== hash) other.push(name);
      else if (atMs - beat.atMs > 2 * beat.periodMs + this.#opts.queryTimeoutMs) old.push(name);
      else {
        evaluatedAt.set(name, beat.atMs);
        if (beat.atMs < atMs) out.answeredAtMs.set(name, beat.atMs);
        continue;
      }
      out.failedRules.add(name);
    }
    const report = (names: readonly string[], why: string): void => {
      if (names.length === 0) return;
      const some = names.slice(0, 5).join(', ');
      const more = names.length > 5 ? ` and ${String(names.length - 5)} more` : '';
      out.errors.push(`recorded rules: ${String(names.length)} ${why} (${some}${more}): stale`);
    };
    report(missing, 'without a heartbeat: load the rule file `aegis rules --tiered` writes');
    report(other, 'recorded from other PromQL than the catalogue: regenerate the rule file');
    report(old, 'not evaluated for more than two of their periods');
    for (const s of samples) {
      const entry = this.#byName.get(s.labels['condition'] ?? '');
      if (entry !== undefined && this.#hashes.has(entry.name)) {
        if (!evaluatedAt.has(entry.name)) continue;
        const o = recordedObservation(entry, s);
        if (o === undefined) continue;
        const list = byRule.get(entry.name);
        if (list === undefined) byRule.set(entry.name, [o]);
        else list.push(o);
        continue;
      }
      if (entry === undefined) out.unknownCompat.add(s.labels['condition'] ?? '');
      else if (this.#opts.compatibility) {
        const o = this.#fromCompat(s);
        if (o !== undefined) out.observations.push(o);
      }
    }
    return byRule;
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

/**
 * The signal's listener limit; 0 when unlimited (node's getMaxListeners throws for an EventTarget
 * whose limit was set to 0, as if it were not one).
 */
function maxListenersOf(signal: AbortSignal): number {
  try {
    return getMaxListeners(signal);
  } catch {
    return 0;
  }
}

/** Golden-ratio fraction: consecutive rules get well-spread phases. */
const GOLDEN = 0.6180339887498949;

function nodeOf(s: InstantSample): string {
  return s.labels['node'] ?? s.labels['Hostname'] ?? '';
}

/** A heartbeat's `interval` label in ms; DEFAULT_EVALUATION_MS when absent or unreadable. */
function periodLabelMs(label: string | undefined): number {
  if (label === undefined || label === '') return DEFAULT_EVALUATION_MS;
  try {
    return parseDurationMs(label);
  } catch {
    return DEFAULT_EVALUATION_MS;
  }
}

/**
 * The observation of a recorded sample (`node`, `id`, `pci_bdf`, as `aegis rules` writes them):
 * the same as the rule's own answer would give.
 */
function recordedObservation(entry: CatalogueEntry, s: InstantSample): Observation | undefined {
  const node = s.labels['node'] ?? '';
  if (node === '' || Number.isNaN(s.value)) return undefined;
  const id = entry.deviceLabel === '' ? '' : (s.labels['id'] ?? '');
  return {
    node,
    domain: entry.domain,
    condition: entry.name,
    id,
    pciBdf: entry.pciBdfLabel === undefined ? '' : (s.labels['pci_bdf'] ?? ''),
    msg: observationMsg(entry, id, s.value),
    value: s.value,
  };
}

function observationMsg(entry: CatalogueEntry, id: string, value: number): string {
  return `${entry.name}${id === '' ? '' : ` ${entry.deviceLabel}=${id}`} value=${value}`;
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
    msg: observationMsg(entry, id, s.value),
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
