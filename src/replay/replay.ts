/**
 * Replays a window of real history through the real engine (`createEngine`, as the daemon and
 * `aegis sim` compose it) in virtual time: a manual clock steps from `fromMs` to `toMs` one
 * inspection interval at a time, and each cycle's queries are answered from range queries of
 * that history (RangeSource: one query_range per rule per chunk of steps). The cluster is the
 * in-memory HistoryCluster rebuilt from kube-state-metrics; nothing is written to any cluster,
 * BMC or notification channel (no Kubernetes client, no BMC connector and no notifier is built).
 *
 * What the history says becomes the report's incidents: a (node, condition) the engine's rules
 * start returning opens a fault, its rule answering without the node again clears it; Ready
 * going false in kube-state-metrics is a NodeNotReady fault; a cordon or uncordon in history is
 * an operator's action. The engine's steps, holds and ticket changes follow, as in `aegis sim`.
 */
import { setMaxListeners } from 'node:events';
import { CATALOGUE, SIGNAL_PRESENCE } from '../catalogue/index.js';
import type { Config } from '../config/schema.js';
import { ManualClock } from '../core/clock.js';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import { isControlPlane, isOptedOut, PAUSE_ANNOTATION } from '../core/types.js';
import { createEngine, siteCatalogue } from '../daemon.js';
import { silentLogger, type Logger } from '../engine/logger.js';
import type { StepEvent } from '../engine/runner.js';
import { planSharedSelections } from '../engine/shared-selection.js';
import { createMetrics } from '../metrics/metrics.js';
import type { InstantSample, MetricsSource } from '../prom/metrics-source.js';
import type { Touch } from '../scenario/apply.js';
import { ObservedCluster, ObservedMetrics, type TicketChange } from '../scenario/observe.js';
import { summarize, type ActionRecord, type Incident, type Totals } from '../scenario/summary.js';
import { isAutomationOwned, isOpen } from '../ticket/ticket.js';
import {
  DEFAULT_JOB_ASSUMPTION,
  HISTORY_QUERIES,
  HistoryCluster,
  type HistoryAt,
  type HistoryChange,
  type JobAssumption,
} from './history-cluster.js';
import type { HistoryReader } from './range-client.js';
import { RangeSource, type RangeSourceStats } from './range-source.js';

/** Options of `runReplay`. */
export interface ReplayOptions {
  readonly reader: HistoryReader;
  /** Where the history came from, for the report (the Prometheus URL). */
  readonly source: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly stepMs: number;
  /** The policy: the config as loaded (see `replayConfig`). */
  readonly config: Config;
  /** Where the config came from, for the report. */
  readonly configName: string;
  readonly jobs?: JobAssumption;
  /** Most steps per range query (default: RangeSource's). */
  readonly maxChunkSteps?: number;
  readonly onEvent?: (e: ReplayEvent) => void;
  readonly signal?: AbortSignal;
  readonly log?: Logger;
}

/** Something the live output shows, as it happens (times are ms since the epoch). */
export type ReplayEvent =
  | { readonly kind: 'start'; readonly nodes: number; readonly options: ReplayOptions }
  | { readonly kind: 'history'; readonly change: HistoryChange }
  | {
      readonly kind: 'fault';
      readonly atMs: number;
      readonly node: string;
      readonly condition: string;
    }
  | {
      readonly kind: 'cleared';
      readonly atMs: number;
      readonly node: string;
      readonly condition: string;
    }
  | { readonly kind: 'step'; readonly atMs: number; readonly action: ActionRecord }
  | { readonly kind: 'ticket'; readonly atMs: number; readonly change: TicketChange };

/** Totals of a replay (the sim's totals plus the replay's own). */
export interface ReplayTotals extends Totals {
  readonly nodesCordoned: number;
  readonly handOffs: number;
  readonly holds: number;
  readonly peakCordoned: number;
  readonly peakCordonedByAegis: number;
  readonly breakerTrips: number;
  readonly jobs: number;
  readonly evictions: number;
}

/** One fault as history showed it to the engine's rules. */
export interface ReplayFault {
  readonly node: string;
  readonly condition: string;
  readonly from: string;
  readonly to: string | null;
}

/** The report of one replay (`aegis replay --json`). */
export interface ReplayReport {
  readonly window: {
    readonly source: string;
    readonly from: string;
    readonly to: string;
    readonly stepMs: number;
  };
  readonly config: string;
  readonly dryRun: boolean;
  readonly assumptions: { readonly jobs: JobAssumption['outcome']; readonly bootTimeMs: number };
  readonly nodes: number;
  readonly faults: readonly ReplayFault[];
  readonly incidents: readonly (Incident & { readonly time: string })[];
  readonly actions: readonly (ActionRecord & { readonly time: string })[];
  readonly holds: readonly { readonly reason: string; readonly count: number }[];
  readonly tickets: readonly (TicketChange & { readonly time: string })[];
  readonly history: readonly (HistoryChange & { readonly time: string })[];
  readonly totals: ReplayTotals;
  readonly run: {
    readonly cycles: number;
    /** Cycles skipped: quiet history, nothing to do (see `calm`). */
    readonly skippedCycles: number;
    readonly wallMs: number;
    /** Virtual hours replayed per wall-clock second. */
    readonly hoursPerSecond: number;
    readonly reads: RangeSourceStats & { readonly podReads: number };
    readonly unfinishedSteps: number;
  };
}

const DRAIN_LIMIT_MS = 3_600_000;
/** Time without any event before quiet stretches are skipped. */
const QUIET_MS = 10 * 60_000;
/** Most cycles one replay runs (a year at 30 s is ~1.05 million). */
export const MAX_CYCLES = 2_000_000;

/** Checks the window; throws INVALID_INPUT naming what is wrong. */
export function checkWindow(fromMs: number, toMs: number, stepMs: number): void {
  if (!Number.isFinite(fromMs)) throw new HealError(ErrorCode.InvalidInput, '--from: not a time');
  if (!Number.isFinite(toMs)) throw new HealError(ErrorCode.InvalidInput, '--to: not a time');
  if (fromMs >= toMs)
    throw new HealError(
      ErrorCode.InvalidInput,
      `--from (${iso(fromMs)}) must be before --to (${iso(toMs)})`,
    );
  if (!Number.isInteger(stepMs) || stepMs < 1000 || stepMs % 1000 !== 0)
    throw new HealError(
      ErrorCode.InvalidInput,
      `--step: must be a whole number of seconds, at least 1s (got ${stepMs} ms)`,
    );
  if ((toMs - fromMs) / stepMs > MAX_CYCLES)
    throw new HealError(
      ErrorCode.InvalidInput,
      `the window ${iso(fromMs)} to ${iso(toMs)} is ${Math.ceil((toMs - fromMs) / stepMs)} steps of ${stepMs / 1000}s: more than ${MAX_CYCLES}; use a larger --step or a shorter window`,
    );
}

/**
 * The config a replay runs with: the file's policy, inspected every `stepMs`, with every query
 * of a cycle answered inside it (deterministic) and, unless `keepDryRun`, dry-run off: a replay
 * writes nothing anyway, and the question is what the policy would have done.
 */
export function replayConfig(config: Config, stepMs: number, keepDryRun: boolean): Config {
  return {
    ...config,
    inspect: {
      ...config.inspect,
      intervalMs: stepMs,
      backgroundSlowRules: false,
      backgroundPresence: false,
    },
    safety: { ...config.safety, dryRun: keepDryRun ? config.safety.dryRun : false },
  };
}

/** Runs a replay (see the top of the file). Throws for bad input and unreadable history. */
export async function runReplay(o: ReplayOptions): Promise<ReplayReport> {
  checkWindow(o.fromMs, o.toMs, o.stepMs);
  const wall0 = performance.now();
  const emit = o.onEvent ?? ((): void => undefined);
  const jobs = o.jobs ?? DEFAULT_JOB_ASSUMPTION;
  const stop = new AbortController();
  const signal = o.signal === undefined ? stop.signal : AbortSignal.any([stop.signal, o.signal]);
  setMaxListeners(0, signal);

  const nodes = await fleetSize(o, signal);
  const source = new RangeSource(o.reader, {
    fromMs: o.fromMs,
    toMs: o.toMs,
    stepMs: o.stepMs,
    nodes,
    ...(o.maxChunkSteps === undefined ? {} : { maxChunkSteps: o.maxChunkSteps }),
  });
  const clock = new ManualClock(o.fromMs);
  const rel = (ms: number): number => ms - o.fromMs;
  const catalogue = siteCatalogue(CATALOGUE, o.config);
  const entries = new Map(catalogue.map((e) => [e.name, e]));
  const actionable = (c: string): boolean =>
    c === 'NodeNotReady' ? true : (entries.get(c)?.sop ?? null) !== null;

  // ── faults as history shows them: (node, condition) episodes
  const open = new Map<
    string,
    { node: string; condition: string; fromMs: number; seenMs: number }
  >();
  const faults: { node: string; condition: string; fromMs: number; toMs: number | null }[] = [];
  const touches: Touch[] = [];
  const cleared: { atMs: number; node: string; faultId: string }[] = [];
  const sightings: { atMs: number; node: string; condition: string }[] = [];
  let faultSeq = 0;
  const faultIds = new Map<string, string>();
  const seen = (node: string, condition: string, atMs: number): void => {
    const key = `${node}\0${condition}`;
    const ep = open.get(key);
    if (ep !== undefined) {
      ep.seenMs = atMs;
      return;
    }
    open.set(key, { node, condition, fromMs: atMs, seenMs: atMs });
    const id = `h${++faultSeq}`;
    faultIds.set(key, id);
    touches.push({ atMs: rel(atMs), node, kind: 'fault', what: condition, faultId: id });
    sightings.push({ atMs: rel(atMs), node, condition });
    emit({ kind: 'fault', atMs, node, condition });
  };
  const clear = (key: string, atMs: number): void => {
    const ep = open.get(key);
    if (ep === undefined) return;
    open.delete(key);
    faults.push({ node: ep.node, condition: ep.condition, fromMs: ep.fromMs, toMs: atMs });
    cleared.push({ atMs: rel(atMs), node: ep.node, faultId: faultIds.get(key) ?? '' });
    emit({ kind: 'cleared', atMs, node: ep.node, condition: ep.condition });
  };

  // ── the metrics the engine reads: history, observed
  const conditionsOf = new Map<string, string[]>();
  for (const e of catalogue)
    if (e.expr !== '') conditionsOf.set(e.expr, [...(conditionsOf.get(e.expr) ?? []), e.name]);
  const shared = planSharedSelections(catalogue.filter((e) => e.expr !== ''));
  const sharedOf = new Map(shared.map((g) => [g.query, g.rules.map((r) => r.entry.name)]));
  /** Conditions whose rule answered at the current step (their silence clears a fault). */
  const answered = new Set<string>();
  /** A read of history that failed: the replay stops (stale history would replay a fiction). */
  let readError: unknown;
  const asked: MetricsSource = {
    async query(expr, atMs, s): Promise<readonly InstantSample[]> {
      const out = await source.query(expr, atMs, s).catch((err: unknown) => {
        if (!s.aborted) readError ??= err;
        throw err;
      });
      for (const c of conditionsOf.get(expr) ?? []) answered.add(c);
      for (const c of sharedOf.get(expr) ?? []) answered.add(c);
      return out;
    },
  };
  const metricsSource = new ObservedMetrics(asked, conditionsOf, seen, shared);

  // ── the cluster: history, observed for tickets
  let podReads = 0;
  const io = new Set<Promise<unknown>>();
  const cluster = new HistoryCluster({
    clock,
    jobs,
    knownLabels: knownLabelKeys(o.config),
    pods: (expr, atMs) => {
      podReads++;
      const p = o.reader.query(expr, atMs, signal);
      io.add(p);
      void p.finally(() => io.delete(p)).catch(() => undefined);
      return p;
    },
    faultsOn: (node) => {
      const out: string[] = [];
      for (const ep of open.values())
        if (ep.node === node && ep.condition !== 'NodeNotReady' && actionable(ep.condition))
          out.push(ep.condition);
      return out;
    },
  });
  const tickets: TicketChange[] = [];
  const observed = new ObservedCluster(cluster, clock, (change) => {
    const c = { ...change, atMs: rel(change.atMs) };
    tickets.push(c);
    emit({ kind: 'ticket', atMs: change.atMs, change: c });
  });

  // ── the engine
  const actions: ActionRecord[] = [];
  const prio = new Map(CATALOGUE.map((e) => [e.name, e.priority]));
  const engine = createEngine({
    cluster: observed,
    metricsSource,
    clock,
    config: o.config,
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    priorityOf: () => (name) => prio.get(name) ?? 999,
    metrics: createMetrics(),
    log: o.log ?? silentLogger,
    onStep: (e: StepEvent) => {
      const a: ActionRecord = {
        atMs: rel(e.atMs),
        node: e.node,
        sop: e.sop,
        condition: e.condition,
        action: e.action,
        status: e.status,
        ...(e.message === undefined ? {} : { message: e.message }),
      };
      actions.push(a);
      emit({ kind: 'step', atMs: e.atMs, action: a });
    },
  });
  const controller = engine.controller;

  /** Lets steps run up to `target`, one timer at a time, waiting for their reads of history. */
  const advance = async (target: number): Promise<void> => {
    for (;;) {
      await settleIo(io);
      const next = clock.nextDeadline();
      if (next === undefined || next > target) break;
      await clock.advanceTo(next);
    }
    await clock.advanceTo(target);
    await settleIo(io);
  };
  const historyAt = async (atMs: number): Promise<HistoryAt> => {
    const keys = Object.keys(HISTORY_QUERIES) as (keyof HistoryAt)[];
    const answers = await Promise.all(
      keys.map((k) => source.query(HISTORY_QUERIES[k], atMs, signal)),
    );
    return Object.fromEntries(keys.map((k, i) => [k, answers[i] ?? []])) as unknown as HistoryAt;
  };

  const history: HistoryChange[] = [];
  let peakCordoned = 0;
  let peakByAegis = 0;
  let cycles = 0;
  let skipped = 0;
  let maxNodes = 0;
  let lastActivity = o.fromMs;
  const active = (): void => {
    lastActivity = clock.now();
  };
  const lastStep = Math.floor((o.toMs - o.fromMs) / o.stepMs);
  emit({ kind: 'start', nodes, options: o });
  for (let k = 0; k <= lastStep && !signal.aborted;) {
    const t = o.fromMs + k * o.stepMs;
    await advance(t);
    const h = await historyAt(t).catch((err: unknown) => {
      throw stopped(t, err);
    });
    for (const change of cluster.applyHistory(h, t)) {
      active();
      history.push(change);
      emit({ kind: 'history', change });
      if (change.what === 'cordon' || change.what === 'uncordon')
        touches.push({ atMs: rel(t), node: change.node, kind: 'operator', what: change.what });
    }
    maxNodes = Math.max(maxNodes, cluster.size);
    for (const name of cluster.names()) {
      if (cluster.historyNotReady(name)) seen(name, 'NodeNotReady', t);
    }
    answered.clear();
    const before = actions.length + tickets.length + touches.length + cleared.length;
    await controller.cycle(signal);
    cycles++;
    if (readError !== undefined) {
      stop.abort(readError);
      await controller.idle();
      throw stopped(t, readError);
    }
    // A fault clears when its rule answered this step without the node (or Ready came back).
    for (const [key, ep] of open) {
      if (ep.seenMs === t) continue;
      if (ep.condition === 'NodeNotReady' || answered.has(ep.condition)) clear(key, t);
    }
    if (actions.length + tickets.length + touches.length + cleared.length !== before) active();
    peakCordoned = Math.max(peakCordoned, cluster.cordoned);
    let byAegis = 0;
    for (const v of observed.views()) {
      const tk = v.ticket;
      if (v.info.unschedulable && tk !== null && isOpen(tk) && tk.cordonedByAegis) byAegis++;
    }
    peakByAegis = Math.max(peakByAegis, byAegis);
    // Quiet history and nothing for the engine to do: the cycles until history changes would
    // see the same answers and do nothing (as `aegis sim` fast-forwards).
    let next = k + 1;
    if (
      clock.now() - lastActivity >= QUIET_MS &&
      calm(controller, observed, open.values(), actionable, o.config, clock.now())
    ) {
      next = Math.max(next, source.nextChange(k));
      skipped += next - k - 1;
    }
    k = next;
  }
  // The window is over: no new step starts; those in flight finish (up to an hour).
  controller.stop();
  const drainUntil = clock.now() + DRAIN_LIMIT_MS;
  while (controller.inflight > 0 && clock.now() < drainUntil) {
    await settleIo(io);
    const next = clock.nextDeadline();
    if (next === undefined) break;
    await clock.advanceTo(Math.min(next, drainUntil));
  }
  const unfinished = controller.inflight;
  if (unfinished > 0) stop.abort(new Error('replay over'));
  await controller.idle();
  for (const ep of open.values())
    faults.push({ node: ep.node, condition: ep.condition, fromMs: ep.fromMs, toMs: null });
  faults.sort((a, b) => a.fromMs - b.fromMs || a.node.localeCompare(b.node));

  const summary = summarize({
    touches,
    actions,
    tickets,
    cleared,
    sightings,
    actionable,
    parked: () => undefined,
    endMs: rel(clock.now()),
  });
  const writes = cluster.writes();
  const holdReasons = new Map<string, number>();
  for (const a of actions) {
    if (a.status !== 'Held') continue;
    const reason = a.message ?? '';
    holdReasons.set(reason, (holdReasons.get(reason) ?? 0) + 1);
  }
  const wallMs = performance.now() - wall0;
  const hours = (o.toMs - o.fromMs) / 3_600_000;
  const at = (offset: number): string => iso(o.fromMs + offset);
  return {
    window: { source: o.source, from: iso(o.fromMs), to: iso(o.toMs), stepMs: o.stepMs },
    config: o.configName,
    dryRun: o.config.safety.dryRun,
    assumptions: { jobs: jobs.outcome, bootTimeMs: jobs.bootTimeMs },
    nodes: maxNodes,
    faults: faults.map((f) => ({
      node: f.node,
      condition: f.condition,
      from: iso(f.fromMs),
      to: f.toMs === null ? null : iso(f.toMs),
    })),
    incidents: summary.incidents.map((i) => ({ time: at(i.startMs), ...i })),
    actions: actions.map((a) => ({ time: at(a.atMs), ...a })),
    holds: [...holdReasons].map(([reason, count]) => ({ reason, count })),
    tickets: tickets.map((t) => ({ time: at(t.atMs), ...t })),
    history: history.map((h) => ({ time: iso(h.atMs), ...h })),
    totals: {
      ...summary.totals,
      nodesCordoned: new Set(
        actions.filter((a) => a.action === 'Cordon' && a.status === 'Succeeded').map((a) => a.node),
      ).size,
      handOffs: summary.incidents.filter((i) => i.outcome === 'human').length,
      holds: actions.filter((a) => a.status === 'Held').length,
      peakCordoned,
      peakCordonedByAegis: peakByAegis,
      breakerTrips: controller.gates.breakerTrips,
      jobs: writes.jobs.length,
      evictions: writes.evictions,
    },
    run: {
      cycles,
      skippedCycles: skipped,
      wallMs: Math.round(wallMs),
      hoursPerSecond: Math.round((hours / Math.max(wallMs / 1000, 1e-3)) * 10) / 10,
      reads: { ...source.stats, podReads },
      unfinishedSteps: unfinished,
    },
  };
}

/**
 * The most nodes kube-state-metrics names at once in the window (sizes the range queries).
 * Throws INVALID_INPUT when it names none: there is no cluster to replay.
 */
async function fleetSize(o: ReplayOptions, signal: AbortSignal): Promise<number> {
  // About 500 points over the window, never finer than the step.
  const coarse = Math.max(o.stepMs, Math.ceil((o.toMs - o.fromMs) / 500 / 1000) * 1000);
  const series = await o.reader.queryRange(
    'count(kube_node_info)',
    o.fromMs,
    o.toMs,
    coarse,
    signal,
  );
  let most = 0;
  for (const s of series) for (const [, v] of s.points) most = Math.max(most, v);
  if (most === 0)
    throw new HealError(
      ErrorCode.InvalidInput,
      `no kube-state-metrics data in ${o.source} between ${iso(o.fromMs)} and ${iso(o.toMs)} ` +
        '(kube_node_info has no sample): the replay rebuilds the nodes from it; pick a window ' +
        'Prometheus still holds, with kube-state-metrics scraped',
    );
  return most;
}

/** The error a replay stops with when history could not be read at `atMs`. */
function stopped(atMs: number, err: unknown): HealError {
  return new HealError(
    err instanceof HealError ? err.code : ErrorCode.PromUnavailable,
    `replay stopped at ${iso(atMs)}: history could not be read: ${errorMessage(err)}`,
    { cause: err },
  );
}

/** Label keys the engine reads from nodes: restored from kube-state-metrics' mangled names. */
function knownLabelKeys(config: Config): string[] {
  const keys = new Set<string>([
    'node-role.kubernetes.io/control-plane',
    'node-role.kubernetes.io/master',
    'aegis.io/disable',
    ...Object.values(config.domains.labels),
    ...config.sop.criticalLabels.map((l) => l.split('=')[0] ?? l),
    ...config.approval.rules.flatMap((r) => Object.keys(r.nodeSelector ?? {})),
    ...Object.values(config.sop.podSelectors).map((s) => s.split('=')[0] ?? s),
  ]);
  return [...keys].filter((k) => k !== '');
}

/**
 * True when no cycle can do anything until history changes: no step running, the breaker closed,
 * no fault with an SOP open, no ticket open for automation, every node Ready, no cordon the
 * engine would lift.
 */
function calm(
  controller: {
    readonly inflight: number;
    readonly gates: { breakerOpen(nowMs: number): boolean };
  },
  observed: ObservedCluster,
  faults: Iterable<{ readonly condition: string }>,
  actionable: (condition: string) => boolean,
  config: Config,
  nowMs: number,
): boolean {
  if (controller.inflight > 0 || controller.gates.breakerOpen(nowMs)) return false;
  for (const f of faults) if (actionable(f.condition)) return false;
  for (const v of observed.views()) {
    const t = v.ticket;
    const open = t !== null && isOpen(t);
    // A node automation has let go of (a human owns its ticket, opted out, paused, control
    // plane) stays as it is whatever its state.
    if (
      (open && !isAutomationOwned(t)) ||
      isControlPlane(v.info) ||
      isOptedOut(v.info) ||
      v.info.annotations[PAUSE_ANNOTATION] === 'true'
    )
      continue;
    if (open || v.info.ready !== true) return false;
    if (v.info.unschedulable && config.sop.uncordonManualCordons) return false;
  }
  return true;
}

async function settleIo(io: ReadonlySet<Promise<unknown>>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    for (let j = 0; j < 3; j++) await new Promise<void>((r) => setImmediate(r));
    if (io.size === 0) return;
    await Promise.allSettled([...io]);
  }
}

/** ISO 8601 time, to the second. */
export function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}
