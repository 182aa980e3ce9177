/**
 * Runs a scenario: builds a simulated fleet and the real engine on it (the composition of
 * `createEngine`, as the daemon does over a real cluster), applies the timeline at its virtual
 * times, runs an inspection cycle every interval on a manual clock as fast as the machine allows,
 * waits for the steps in flight, and reports what happened against the expectations.
 *
 * Quiet stretches are fast-forwarded (unless `fastForward: false`): when no step runs, every
 * fault sits on a node automation has let go of (a human owns its ticket, it is opted out or
 * paused, or the condition is record-only), no ticket is open for automation, the breaker is
 * closed, and nothing has happened for `quietFor`, the clock jumps to the next scenario event or
 * simulator effect. The cycles skipped would have found the same world and done nothing.
 *
 * The daemon may be restarted, or run as two replicas that both believe they lead, at times the
 * timeline gives (`restart`, `leader-overlap`): see replicas.ts.
 */
import { setMaxListeners } from 'node:events';
import { CATALOGUE, findCondition } from '../catalogue/index.js';
import { SIGNAL_PRESENCE } from '../catalogue/signals.js';
import { ManualClock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import { isControlPlane, isOptedOut, PAUSE_ANNOTATION, type NodeInfo } from '../core/types.js';
import { createEngine } from '../daemon.js';
import { silentLogger, type Logger } from '../engine/logger.js';
import type { CycleReport } from '../engine/controller.js';
import type { FleetSnapshot as FleetSnapshot_ } from '../notify/alerts.js';
import type { StepEvent } from '../engine/runner.js';
import { planSharedSelections } from '../engine/shared-selection.js';
import { createMetrics } from '../metrics/metrics.js';
import type { RecordedEvent } from '../sim/sim-cluster.js';
import { createSimWorld, type SimWorld } from '../sim/sim-world.js';
import { isAutomationOwned, isOpen, type Ticket } from '../ticket/ticket.js';
import {
  categoryOf,
  expandTimeline,
  type ApplyContext,
  type Due,
  type EventCategory,
  type Touch,
} from './apply.js';
import {
  evaluateExpectations,
  type ExpectationResult,
  type FinalNode,
  type MetricSeries,
  type OutcomeEvent,
  type OutcomeJob,
  type OutcomePodOp,
} from './evaluate.js';
import {
  ObservedCluster,
  ObservedMetrics,
  type NodeView,
  type Sighting,
  type TicketChange,
} from './observe.js';
import { Replicas, type Replica, type ReplicaEnd } from './replicas.js';
import type { PeakSeries, Scenario, TimelineEvent } from './schema.js';
import { summarize, type ActionRecord, type Incident, type Totals } from './summary.js';
import { GpuHoursMeter, type GpuHours } from './gpu-hours.js';

/** The fleet at one moment, as the live output shows it. */
export interface FleetSnapshot {
  readonly nodes: number;
  /** Nodes with an injected fault active now (the simulator's truth). */
  readonly faulty: number;
  /** Nodes the engine's last cycle saw as faulty. */
  readonly seen: number;
  readonly cordoned: number;
  readonly cordonedByAegis: number;
  readonly openTickets: number;
  readonly inflight: number;
}

/** Something the live output can show, as it happens. */
export type RunEvent =
  | { readonly kind: 'start'; readonly scenario: Scenario; readonly nodes: number }
  | {
      readonly kind: 'timeline';
      readonly atMs: number;
      readonly category: EventCategory;
      readonly text: string;
      readonly note?: string;
      readonly problem?: string;
    }
  | { readonly kind: 'step'; readonly action: ActionRecord }
  | { readonly kind: 'ticket'; readonly change: TicketChange }
  | { readonly kind: 'progress'; readonly atMs: number; readonly fleet: FleetSnapshot }
  | { readonly kind: 'fast-forward'; readonly fromMs: number; readonly toMs: number }
  | { readonly kind: 'end'; readonly report: ScenarioReport };

/** Options of `runScenario`. */
export interface RunOptions {
  readonly onEvent?: (event: RunEvent) => void;
  /** Virtual time between two progress events (default: about 24 per run, 1m to 1h). */
  readonly progressEveryMs?: number;
  /** Aborts the run (the report covers what ran). */
  readonly signal?: AbortSignal;
  /** Engine log (default: silent). */
  readonly log?: Logger;
  /** Told of the simulation once it is built (the demo's console serves it). */
  readonly onWorld?: (world: SimWorld, cluster: ObservedCluster) => void;
  /** Each cycle's fleet snapshot of every replica (EngineInput.onSnapshot). */
  readonly onSnapshot?: (s: FleetSnapshot_) => void;
  /** Awaited after each cycle with its virtual time (`aegis demo --live` paces the run here). */
  readonly afterCycle?: (atMs: number) => Promise<void>;
}

/** The report of a run; `aegis sim --json` prints it. */
export interface ScenarioReport {
  readonly scenario: {
    readonly name: string;
    readonly source: string;
    readonly description: string;
    readonly seed: number;
    readonly nodes: number;
    readonly durationMs: number;
    readonly intervalMs: number;
  };
  readonly passed: boolean;
  readonly nodes: readonly ReportNode[];
  readonly actions: readonly (ActionRecord & { readonly time: string; readonly offset: string })[];
  readonly tickets: readonly (TicketChange & { readonly time: string })[];
  readonly metrics: Readonly<
    Record<string, number | readonly { labels: Readonly<Record<string, string>>; value: number }[]>
  >;
  readonly expectations: readonly ExpectationResult[];
  readonly summary: {
    readonly incidents: readonly Incident[];
    readonly totals: Totals;
    readonly peaks: Readonly<Record<PeakSeries, number>>;
    /** GPU-hours out of scheduling over the run (cordoned or down nodes, quarantined GPUs). */
    readonly gpuHoursOut: GpuHours;
  };
  readonly run: {
    readonly startTime: string;
    readonly cycles: number;
    readonly skippedCycles: number;
    /** Virtual time at the end, including the wait for steps in flight. */
    readonly endOffsetMs: number;
    readonly unfinishedSteps: number;
    readonly wallMs: number;
    readonly aborted: boolean;
    /** The daemon's processes: one, unless the timeline restarts it or overlaps two leaders. */
    readonly replicas: readonly {
      readonly replica: number;
      readonly epoch: number;
      readonly startOffsetMs: number;
      /** When it stopped leading (null: it led to the end). */
      readonly endOffsetMs: number | null;
      readonly end: ReplicaEnd | null;
    }[];
  };
}

/** One node at the end of a run, with what was done to it through the API. */
export interface ReportNode {
  readonly name: string;
  readonly schedulable: boolean;
  /** The parsed `aegis.io/ticketing` annotation, or null. */
  readonly ticket: Ticket | null;
  /** Every annotation of the node at the end, verbatim (the ticket's raw text included). */
  readonly annotations: Readonly<Record<string, string>>;
  /** Kubernetes Events emitted about the node, in order. */
  readonly events: readonly (OutcomeEvent & { readonly time: string })[];
  /** Jobs created for the node. */
  readonly jobs: readonly (OutcomeJob & { readonly time: string })[];
  /** Pod evictions and deletions on the node the API server accepted. */
  readonly pods: readonly (OutcomePodOp & { readonly time: string })[];
}

const DRAIN_LIMIT_MS = 3_600_000;

/** Runs a scenario to its end and returns the report. Never throws for what happens inside the run. */
export async function runScenario(
  scenario: Scenario,
  options: RunOptions = {},
): Promise<ScenarioReport> {
  const wall0 = performance.now();
  const emit = options.onEvent ?? ((): void => undefined);
  const clock = new ManualClock();
  const start = clock.now();
  const world = createSimWorld({
    nodes: scenario.fleet.nodes,
    gpusPerNode: scenario.fleet.gpusPerNode,
    controlPlaneNodes: scenario.fleet.controlPlaneNodes,
    ...(scenario.fleet.racksOf === undefined ? {} : { racksOf: scenario.fleet.racksOf }),
    ...(scenario.fleet.leavesOf === undefined ? {} : { leavesOf: scenario.fleet.leavesOf }),
    ...(scenario.fleet.bootTimeMs === undefined ? {} : { bootTimeMs: scenario.fleet.bootTimeMs }),
    seed: scenario.seed,
    catalogue: CATALOGUE,
    clock,
  });
  for (const w of scenario.workloads) world.cluster.addWorkload(w);
  const rel = (ms: number): number => ms - start;
  const actions: ActionRecord[] = [];
  const tickets: TicketChange[] = [];
  const touches: Touch[] = [];
  const cleared: { atMs: number; node: string; faultId: string }[] = [];
  let lastActivity = start;
  const active = (): void => {
    lastActivity = clock.now();
  };
  world.faults.subscribe((e) => {
    active();
    if (e.kind === 'cleared')
      cleared.push({ atMs: rel(e.atMs), node: e.fault.node, faultId: e.fault.id });
  });
  const sightings: Sighting[] = [];
  const lastSight = new Map<string, number>();
  /** Records when the engine's inspection starts seeing a condition on a node (edges only). */
  const sight = (node: string, condition: string, atMs: number): void => {
    const key = `${node}\0${condition}`;
    const prev = lastSight.get(key);
    lastSight.set(key, atMs);
    if (prev === undefined || atMs - prev > 2 * scenario.intervalMs) {
      sightings.push({ atMs: rel(atMs), node, condition });
    }
  };
  const observed = new ObservedCluster(
    world.cluster,
    clock,
    (change) => {
      active();
      const c = { ...change, atMs: rel(change.atMs) };
      tickets.push(c);
      emit({ kind: 'ticket', change: c });
    },
    (node, atMs) => {
      sight(node, 'NodeNotReady', atMs);
    },
  );
  const conditionsOf = new Map<string, string[]>();
  for (const e of CATALOGUE)
    if (e.expr !== '') conditionsOf.set(e.expr, [...(conditionsOf.get(e.expr) ?? []), e.name]);
  const prio = new Map(CATALOGUE.map((e) => [e.name, e.priority]));
  const metricsSource = new ObservedMetrics(
    world.metrics,
    conditionsOf,
    sight,
    planSharedSelections(CATALOGUE.filter((e) => e.expr !== '')),
  );
  /** Step events carry their replica when the run has more than one. */
  const multi = scenario.timeline.some(
    (e) => e.action.kind === 'restart' || e.action.kind === 'leader-overlap',
  );
  const stop = new AbortController();
  const signal =
    options.signal === undefined ? stop.signal : AbortSignal.any([stop.signal, options.signal]);
  // Every step in flight and every query waits on this signal: many at once is normal here.
  const maxListeners = 100 + 8 * (scenario.fleet.nodes + scenario.fleet.controlPlaneNodes);
  setMaxListeners(maxListeners, signal);
  const replicas = new Replicas({
    cluster: observed,
    runSignal: signal,
    now: () => clock.now(),
    maxListeners,
    build: (parts) => {
      const metrics = createMetrics();
      const engine = createEngine({
        cluster: parts.cluster,
        fence: parts.fence,
        metricsSource,
        clock,
        config: scenario.config,
        catalogue: CATALOGUE,
        presence: SIGNAL_PRESENCE,
        priorityOf: () => (name) => prio.get(name) ?? 999,
        metrics,
        log: options.log ?? silentLogger,
        ...(options.onSnapshot === undefined ? {} : { onSnapshot: options.onSnapshot }),
        onStep: (e: StepEvent) => {
          // A process that has ended reports nothing more.
          if (!parts.alive()) return;
          active();
          const a: ActionRecord = {
            atMs: rel(e.atMs),
            node: e.node,
            sop: e.sop,
            condition: e.condition,
            action: e.action,
            status: e.status,
            ...(e.message === undefined ? {} : { message: e.message }),
            ...(multi ? { replica: parts.id } : {}),
          };
          actions.push(a);
          emit({ kind: 'step', action: a });
        },
      });
      return { engine, metrics };
    },
  });
  const ctx: ApplyContext = {
    world,
    observed,
    signal,
    daemon: {
      restart: () => {
        replicas.restart();
        return Promise.resolve();
      },
      overlapStart: () => {
        replicas.overlapStart();
        return Promise.resolve();
      },
      overlapEnd: () => {
        replicas.overlapEnd();
        return Promise.resolve();
      },
    },
    touch: (t) => touches.push({ ...t, atMs: rel(t.atMs) }),
  };
  options.onWorld?.(world, observed);
  const queue = expandTimeline(scenario.timeline, start);
  const end = start + scenario.durationMs;
  emit({ kind: 'start', scenario, nodes: scenario.fleet.nodes + scenario.fleet.controlPlaneNodes });

  const applyDue = async (due: Due): Promise<void> => {
    active();
    let problem: string | undefined;
    try {
      problem = await due.run(ctx);
    } catch (err) {
      problem = errorMessage(err);
    }
    const category = due.event === undefined ? 'outage' : categoryOf(due.event.action);
    emit({
      kind: 'timeline',
      atMs: rel(due.atMs),
      category,
      text: due.text,
      ...noteOf(due.event),
      ...(problem === undefined ? {} : { problem }),
    });
  };
  /** Moves the clock to `target`, applying timeline effects at their own times on the way. */
  const advance = async (target: number): Promise<void> => {
    for (let next = queue[0]; next !== undefined && next.atMs <= target; next = queue[0]) {
      await clock.advanceTo(next.atMs);
      queue.shift();
      await applyDue(next);
    }
    await clock.advanceTo(target);
  };
  /**
   * One cycle of every leading replica (side by side during an overlap); a cycle waiting on the
   * clock (slow metrics) gets time moved under it. Returns the newest replica's report.
   */
  const cycle = async (): Promise<CycleReport | undefined> => {
    const reports = new Map<Replica, CycleReport>();
    const state = { pending: 0 };
    const runs = replicas.leading().map((r) => {
      state.pending++;
      const running = r.engine.controller.cycle(r.signal).then(
        (report) => {
          reports.set(r, report);
          r.metrics.cycleSeconds.observe((report.engineMs + report.inspectMs) / 1000);
        },
        () => undefined,
      );
      void running.finally(() => {
        state.pending--;
      });
      return running;
    });
    await flush();
    while (state.pending > 0) {
      const next = clock.nextDeadline();
      if (next === undefined) break;
      await advance(next);
    }
    await Promise.all(runs);
    return reports.get(replicas.primary) ?? [...reports.values()].pop();
  };

  const progressEvery = options.progressEveryMs ?? defaultProgressEvery(scenario.durationMs);
  let nextProgress = start;
  const peaks: Record<PeakSeries, number> = {
    faulty: 0,
    cordoned: 0,
    cordonedByAegis: 0,
    openTickets: 0,
    inflight: 0,
  };
  let lastSeen = 0;
  let lastGauge = -1;
  let cycles = 0;
  let skipped = 0;
  let nextCycle = start;
  const snapshot = (): FleetSnapshot => fleetSnapshot(world, observed, lastSeen, replicas.inflight);
  const gpusOf = new Map(world.fleet.nodes.map((n) => [n.name, n.gpus.length]));
  const gpuHours = new GpuHoursMeter((node) => gpusOf.get(node) ?? 0);

  while (clock.now() < end && !signal.aborted) {
    if (clock.now() >= nextCycle) {
      const report = await cycle();
      cycles++;
      nextCycle += scenario.intervalMs;
      if (report !== undefined) {
        if (report.faultyNodes !== lastSeen || report.started > 0 || report.held > 0) active();
        lastSeen = report.faultyNodes;
      }
      const gauge = (await replicas.primary.metrics.conditionGauge.get()).values.reduce(
        (a, v) => a + v.value,
        0,
      );
      if (gauge !== lastGauge) active();
      lastGauge = gauge;
      await options.afterCycle?.(clock.now());
      gpuHours.sample(world.cluster.nodesNow(), clock.now());
      const snap = snapshot();
      for (const k of Object.keys(peaks) as PeakSeries[]) peaks[k] = Math.max(peaks[k], snap[k]);
      for (; nextProgress <= clock.now(); nextProgress += progressEvery)
        emit({ kind: 'progress', atMs: rel(nextProgress), fleet: snap });
      const ff = scenario.fastForward;
      if (
        ff !== null &&
        clock.now() - lastActivity >= ff.quietForMs &&
        calm(world, observed, scenario, replicas.inflight, replicas.breakerOpen(clock.now()))
      ) {
        world.sync();
        const wake = Math.min(
          queue[0]?.atMs ?? end,
          world.scheduler.nextAt() ?? end,
          clock.nextDeadline() ?? end,
          end,
        );
        const target =
          start + Math.ceil((wake - start) / scenario.intervalMs) * scenario.intervalMs;
        if (target > nextCycle) {
          skipped += Math.round((target - nextCycle) / scenario.intervalMs);
          emit({
            kind: 'fast-forward',
            fromMs: rel(clock.now()),
            toMs: rel(Math.min(target, end)),
          });
          for (; nextProgress < Math.min(target, end); nextProgress += progressEvery)
            emit({ kind: 'progress', atMs: rel(nextProgress), fleet: snap });
          nextCycle = target;
        }
      }
    }
    await advance(Math.min(nextCycle, end));
  }
  await advance(end);
  const gpuHoursOut = gpuHours.result(clock.now());

  // Wait for the steps in flight (no new ones start), up to an hour of virtual time.
  replicas.stopAll();
  const drainUntil = clock.now() + DRAIN_LIMIT_MS;
  while (replicas.inflight > 0 && clock.now() < drainUntil) {
    await flush();
    const next = clock.nextDeadline();
    if (next === undefined) break;
    await clock.advanceTo(Math.min(next, drainUntil));
  }
  const unfinished = replicas.inflight;
  if (unfinished > 0) stop.abort(new Error('scenario over'));
  // Steps of ended processes were aborted with them: wait for them to unwind (they write nothing).
  if (replicas.all().some((r) => !r.alive)) await settle(replicas);
  await replicas.idle();

  const finalNodes = await readFinal(world, observed);
  const series = await metricSeries(replicas.all());
  const events: OutcomeEvent[] = world.cluster.events().map((e) => eventOf(e, rel));
  const jobs: OutcomeJob[] = world.cluster
    .jobsCreated()
    .map((j) => ({ atMs: rel(j.atMs), node: j.node, kind: j.kind, name: j.name }));
  const podOps: OutcomePodOp[] = world.cluster
    .podOperations()
    .map((o) => ({ ...o, atMs: rel(o.atMs) }));
  const final = new Map<string, FinalNode>(
    finalNodes.map((n) => [
      n.name,
      {
        name: n.name,
        schedulable: !n.unschedulable,
        ticket: observed.view(n.name)?.ticket ?? null,
        annotations: n.annotations,
        power: world.cluster.powerState(n.name),
        reboots: world.cluster.rebootCount(n.name),
      },
    ]),
  );
  const expectations = evaluateExpectations(scenario.expect, {
    actions,
    tickets,
    touches,
    nodes: final,
    series,
    peaks,
    breakerTrips: replicas.breakerTrips,
    events,
    jobs,
    podOps,
  });
  const summary = summarize({
    touches,
    actions,
    tickets,
    cleared,
    sightings,
    actionable: (c) => (findCondition(c)?.sop ?? null) !== null,
    parked: (node) => parkedReason(observed.view(node)),
    endMs: rel(clock.now()),
  });
  const iso = (offset: number): string => new Date(start + offset).toISOString();
  const report: ScenarioReport = {
    scenario: {
      name: scenario.name,
      source: scenario.source,
      description: scenario.description,
      seed: scenario.seed,
      nodes: scenario.fleet.nodes,
      durationMs: scenario.durationMs,
      intervalMs: scenario.intervalMs,
    },
    passed: expectations.every((e) => e.passed),
    nodes: [...final.values()].map((n) => {
      const timed = <T extends { atMs: number; node: string }>(
        list: readonly T[],
      ): (T & { time: string })[] =>
        list.filter((x) => x.node === n.name).map((x) => ({ time: iso(x.atMs), ...x }));
      return {
        name: n.name,
        schedulable: n.schedulable,
        ticket: n.ticket,
        annotations: n.annotations,
        events: timed(events),
        jobs: timed(jobs),
        pods: timed(podOps),
      };
    }),
    actions: actions.map((a) => ({ time: iso(a.atMs), offset: offsetText(a.atMs), ...a })),
    tickets: tickets.map((t) => ({ time: iso(t.atMs), ...t })),
    metrics: metricsObject(series),
    expectations,
    summary: { ...summary, peaks, gpuHoursOut },
    run: {
      startTime: new Date(start).toISOString(),
      cycles,
      skippedCycles: skipped,
      endOffsetMs: rel(clock.now()),
      unfinishedSteps: unfinished,
      wallMs: Math.round(performance.now() - wall0),
      aborted: options.signal?.aborted ?? false,
      replicas: replicas.all().map((r) => ({
        replica: r.id,
        epoch: r.epoch,
        startOffsetMs: rel(r.startedMs),
        endOffsetMs: r.endedMs === undefined ? null : rel(r.endedMs),
        end: r.ended ?? null,
      })),
    },
  };
  emit({ kind: 'end', report });
  return report;
}

function noteOf(event: TimelineEvent | undefined): { note?: string } {
  return event?.note === undefined ? {} : { note: event.note };
}

function defaultProgressEvery(durationMs: number): number {
  const steps = [60_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000];
  return steps.find((s) => durationMs / s <= 24) ?? 3_600_000;
}

/** Lets promise chains settle (the clock's own settle, for work not waiting on the clock). */
async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Why automation leaves a node alone, if it does. */
function parkedReason(view: NodeView | undefined): string | undefined {
  if (view === undefined) return undefined;
  const { info, ticket } = view;
  if (isControlPlane(info)) return 'control plane';
  if (isOptedOut(info)) return 'opted out';
  if (info.annotations[PAUSE_ANNOTATION] === 'true') return 'paused';
  if (ticket !== null && isOpen(ticket) && !isAutomationOwned(ticket))
    return `owned by ${ticket.supervisor}`;
  return undefined;
}

/** True when no cycle could do anything until something outside the engine changes (see top). */
function calm(
  world: SimWorld,
  observed: ObservedCluster,
  scenario: Scenario,
  inflight: number,
  breakerOpen: boolean,
): boolean {
  if (inflight > 0 || breakerOpen) return false;
  for (const f of world.faults.active()) {
    if (f.entry.sop !== null && parkedReason(observed.view(f.node)) === undefined) return false;
  }
  for (const v of observed.views()) {
    const t = v.ticket;
    const parked = parkedReason(v) !== undefined;
    if (t !== null && isOpen(t) && !parked) return false;
    const handCordoned = t === null || !isOpen(t);
    if (
      v.info.unschedulable &&
      !parked &&
      !(handCordoned && !scenario.config.sop.uncordonManualCordons)
    )
      return false;
    if (v.info.ready !== true && !parked) return false;
  }
  return true;
}

function fleetSnapshot(
  world: SimWorld,
  observed: ObservedCluster,
  seen: number,
  inflight: number,
): FleetSnapshot {
  let nodes = 0;
  let cordoned = 0;
  let cordonedByAegis = 0;
  let openTickets = 0;
  for (const v of observed.views()) {
    nodes++;
    const t = v.ticket;
    const open = t !== null && isOpen(t);
    if (open) openTickets++;
    if (v.info.unschedulable) {
      cordoned++;
      if (open && t.cordonedByAegis) cordonedByAegis++;
    }
  }
  const faulty = new Set(world.faults.active().map((f) => f.node)).size;
  return { nodes, faulty, seen, cordoned, cordonedByAegis, openTickets, inflight };
}

/** The nodes at the end, read once API failures are lifted (a leftover failNext is retried). */
async function readFinal(world: SimWorld, observed: ObservedCluster): Promise<readonly NodeInfo[]> {
  world.cluster.outage(Number.NEGATIVE_INFINITY);
  world.cluster.failRate(0);
  const signal = new AbortController().signal;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const nodes = await world.cluster.listNodes(signal);
      for (const n of nodes) observed.observe(n);
      return nodes;
    } catch {
      // a queued failNext: the next call gets through
    }
  }
  return [...observed.views()].map((v) => v.info);
}

/**
 * The final aegis_* series over the run's replicas, as Prometheus would sum them up: counters and
 * histograms add up over the processes; gauges are the last replica's (the one leading at the end).
 */
async function metricSeries(replicas: readonly Replica[]): Promise<MetricSeries[]> {
  const out = new Map<string, MetricSeries>();
  const last = replicas[replicas.length - 1];
  for (const r of replicas) {
    for (const m of await r.metrics.registry.getMetricsAsJSON()) {
      const gauge = String(m.type) === 'gauge';
      if (gauge && r !== last) continue;
      for (const v of m.values) {
        const name = (v as { metricName?: string }).metricName ?? m.name;
        if (name.endsWith('_bucket')) continue;
        const labels: Record<string, string> = {};
        for (const [k, x] of Object.entries(v.labels)) if (x !== undefined) labels[k] = String(x);
        const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
        const prev = out.get(key);
        out.set(key, { name, labels, value: (prev?.value ?? 0) + v.value });
      }
    }
  }
  return [...out.values()];
}

function eventOf(e: RecordedEvent, rel: (ms: number) => number): OutcomeEvent {
  return { atMs: rel(e.atMs), node: e.node, type: e.type, reason: e.reason, message: e.message };
}

/** Lets the aborted steps of ended processes unwind (their waits reject at once). */
async function settle(replicas: Replicas): Promise<void> {
  for (let i = 0; i < 20; i++) {
    if (replicas.all().every((r) => r.alive || r.engine.controller.inflight === 0)) return;
    await flush();
  }
}

/** `{name: value}` for unlabelled metrics, `{name: [{labels, value}]}` (non-zero series) otherwise. */
function metricsObject(series: readonly MetricSeries[]): ScenarioReport['metrics'] {
  const out: Record<
    string,
    number | { labels: Readonly<Record<string, string>>; value: number }[]
  > = {};
  for (const s of series) {
    if (Object.keys(s.labels).length === 0) {
      out[s.name] = s.value;
      continue;
    }
    const list = out[s.name];
    const arr = Array.isArray(list) ? list : [];
    if (s.value !== 0) arr.push({ labels: s.labels, value: s.value });
    out[s.name] = arr;
  }
  return out;
}

function offsetText(ms: number): string {
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  return `${String(h).padStart(2, '0')}:${String(Math.floor((total % 3600) / 60)).padStart(2, '0')}:${String(total % 60).padStart(2, '0')}`;
}
