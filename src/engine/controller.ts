import {
  BmcHealthPoller,
  bmcReadingWhereNoExporter,
  isBmcFresh,
  type BmcHealthReading,
} from '../bmc/health.js';
import type { OutOfBand } from '../bmc/out-of-band.js';
import type { ValidationPolicy } from '../jobs/validation.js';
import type { CatalogueEntry, Signal } from '../catalogue/types.js';
import type { Config } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { errorMessage, isHealError, ErrorCode } from '../core/errors.js';
import {
  isControlPlane,
  isOptedOut,
  TICKET_ANNOTATION,
  type ConditionInstance,
  type NodeInfo,
  type NodeStatus,
} from '../core/types.js';
import type { ClusterClient } from '../k8s/cluster.js';
import type { Metrics } from '../metrics/metrics.js';
import type { MetricsSource } from '../prom/metrics-source.js';
import type { SopRegistry } from '../sop/registry.js';
import { Action, type NodeView, type SopPolicy, type Step } from '../sop/sop.js';
import {
  AEGIS_SUPERVISOR,
  isAutomationOwned,
  isOpen,
  TicketStatus,
  type Ticket,
} from '../ticket/ticket.js';
import { readTicket, updateTicket } from '../ticket/ticket-store.js';
import { ConditionTracker } from './condition-tracker.js';
import { snapshotNodes, type FleetSnapshot, type NodeHold } from '../notify/alerts.js';
import { UNFENCED, type Fence } from './fence.js';
import { Inspector, type Inspection, type InspectorOptions } from './inspector.js';
import {
  isFresh,
  nodeConditionSources,
  readNodeConditions,
  type NodeConditionSource,
} from './node-conditions.js';
import type { Logger } from './logger.js';
import { runStep, type StepEvent } from './runner.js';
import type { DomainIncident } from './domains.js';
import { IncidentKeeper } from './incidents.js';
import {
  createDeviceQuarantine,
  quarantineConditions,
  releaseHealthy,
  type DeviceQuarantine,
} from './quarantine.js';
import { isHold, SafetyGates } from './safety.js';
import {
  describeProfile,
  needsApproval,
  profileOf,
  profilesConfigured,
  profileVerdict,
  PROFILE_NAMES,
  type NodeProfile,
} from './profiles.js';
import { ReliabilityRecorder } from './reliability.js';
import {
  actionableInOrder,
  Bucket,
  bucketOfPriority,
  urgency,
  type PriorityOf,
} from './scheduler.js';

/** Everything the controller is built from. */
export interface ControllerDeps {
  readonly cluster: ClusterClient;
  readonly metricsSource: MetricsSource;
  readonly clock: Clock;
  readonly config: Config;
  readonly catalogue: readonly CatalogueEntry[];
  readonly presence: Readonly<Record<Signal, string | null>>;
  /** Priority in force; re-read every cycle (hot reload). */
  readonly priorityOf: () => PriorityOf;
  /** SOPs in force; re-read every cycle (plug-in reload). */
  readonly sops: () => SopRegistry;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly onStep?: (e: StepEvent) => void;
  /** The leader lease's fence (its epoch goes into every step this replica begins). */
  readonly fence?: Fence;
  /** Called after every cycle with the fleet as notifications see it (Alertmanager, ticket adapters). */
  readonly onSnapshot?: (s: FleetSnapshot) => void;
  /**
   * Out-of-band access to the BMCs: with `bmc.health` on (by default whenever `bmc.enabled`), the
   * SEL and sensors of the nodes whose ipmi-exporter does not report are read as conditions.
   */
  readonly outOfBand?: OutOfBand;
}

/** What one cycle did (for the simulator, tests and benchmarks). */
export interface CycleReport {
  readonly atMs: number;
  readonly nodes: number;
  readonly faultyNodes: number;
  readonly started: number;
  readonly held: number;
  readonly queries: number;
  readonly queryFailures: number;
  /** Engine time of the cycle, excluding the metrics queries. */
  readonly engineMs: number;
  /** Time spent in the inspection (metrics queries and folding their results). */
  readonly inspectMs: number;
}

interface Candidate {
  readonly info: NodeInfo;
  readonly status: NodeStatus;
  readonly conditionIndex: number;
  readonly condition: ConditionInstance;
  readonly step: Step;
  readonly view: NodeView;
  readonly sopId: string;
  readonly key: [number, number, number];
}

/**
 * One cycle: inspect -> track conditions -> order -> evaluate SOPs -> safety gates -> run steps
 * (asynchronously, one per node at a time) -> reconcile tickets -> metrics. Orchestration only.
 */
export class Controller {
  readonly #d: ControllerDeps;
  readonly #inspector: Inspector;
  readonly #tracker: ConditionTracker;
  readonly #gates: SafetyGates;
  /** Domain incidents (correlated faults in one rack, leaf switch, PDU, NVLink domain). */
  readonly #incidents: IncidentKeeper;
  /** Reliability figures from the tickets (fed by the fleet walk of #recordFleet). */
  readonly #reliability: ReliabilityRecorder;
  /** Nodes whose profile is observe-only (nothing is written for them), as of this cycle's list. */
  #observeOnly: ReadonlySet<string> = new Set();
  #profiledFor: readonly NodeInfo[] | undefined;
  readonly #inflight = new Map<string, Promise<void>>();
  readonly #timing: ReadonlyMap<string, CatalogueEntry>;
  readonly #raisedAt = new Map<string, number>();
  readonly #dryRunSeen = new Map<string, string>();
  readonly #holdSeen = new Map<string, string>();
  readonly #policy: SopPolicy;
  /** GPU-level quarantine (config `quarantine`): released here once the GPU is healthy. */
  readonly #quarantine: DeviceQuarantine | undefined;
  readonly #quarantineConditions: ReadonlySet<string>;
  readonly #tickets = new Map<string, { raw: string; ticket: Ticket | null; error?: Error }>();
  #conditionLabels = new Set<string>();
  #prevFaulty = new Set<string>();
  /** Steps ended so far (in this process). */
  #stepsEnded = 0;
  /**
   * Each node's last ended step: its number in that count (a node list read before it misses its
   * writes), and when the last step that can fix a fault ended (slow-rule answers evaluated
   * before that start nothing).
   */
  readonly #lastEnded = new Map<string, { seq: number; fixedAtMs: number | undefined }>();
  #stopping = false;
  #seeded = false;
  /** Who paused everything through the operator controls (undefined: not paused). */
  #operatorPause: string | undefined;
  /** The operator controls' last breaker reset applied. */
  #breakerResetSeen: string | undefined;
  /** Steps held this cycle, by node (for the notifications' snapshot). */
  #cycleHolds = new Map<string, NodeHold>();
  /** The last inspection (a fast cycle reuses it). */
  #lastInspection: Inspection | undefined;
  /** BMC health as conditions (config `bmc.health`), for nodes without ipmi-exporter. */
  readonly #bmcHealth: BmcHealthPoller | undefined;
  #bmcPoll: Promise<void> | undefined;
  #bmcPolledAtMs = Number.NEGATIVE_INFINITY;
  /** Producers of Node conditions read as observations (node-problem-detector, the agent). */
  readonly #nodeSources: readonly NodeConditionSource[];
  /** Node condition types some detector mapping reads. */
  readonly #detectorTypes: ReadonlySet<string>;
  /** The node list the per-node maps were last pruned against. */
  #prunedFor: readonly NodeInfo[] | undefined;
  #prunedAtMs = Number.NEGATIVE_INFINITY;

  constructor(deps: ControllerDeps) {
    this.#d = deps;
    const byName = new Map<string, CatalogueEntry>();
    for (const e of deps.catalogue) byName.set(e.name, e);
    this.#timing = byName;
    this.#inspector = new Inspector({
      catalogue: deps.catalogue,
      presence: deps.presence,
      metrics: deps.metricsSource,
      clock: deps.clock,
      options: inspectorOptions(deps.config),
    });
    this.#tracker = new ConditionTracker((c) => byName.get(c) ?? { forMs: 0, clearForMs: 0 });
    this.#gates = new SafetyGates(deps.config.safety, deps.config.domains.labels);
    this.#incidents = new IncidentKeeper({
      cluster: deps.cluster,
      clock: deps.clock,
      metrics: deps.metrics,
      log: deps.log,
      domains: deps.config.domains,
      humanSupervisor: deps.config.sop.humanSupervisor,
      dryRun: deps.config.safety.dryRun,
      busy: (node) => this.#inflight.has(node),
      // An observe-only node gets no write: no incident pointer, release or Event.
      readOnly: (node) => this.#observeOnly.has(node),
    });
    this.#reliability = new ReliabilityRecorder(
      deps.config.reliability,
      deps.config.domains.labels.nodeGroup,
    );
    this.#nodeSources = nodeConditionSources(deps.config.nodeProblemDetector);
    const health = deps.config.bmc.health;
    this.#bmcHealth =
      deps.outOfBand !== undefined && (health.enabled ?? deps.config.bmc.enabled)
        ? new BmcHealthPoller({
            outOfBand: deps.outOfBand,
            clock: deps.clock,
            // Only where ipmi-exporter is known not to report: it is never read twice.
            wanted: (n) => this.#ipmiExporterAbsent(this.#lastInspection, n.name),
            staleAfterMs: health.staleAfterMs,
            selWindowMs: health.selWindowMs,
            concurrency: health.concurrency,
            metrics: deps.metrics,
            onError: (node, err) => {
              deps.log.warn('BMC health not read; its conditions go stale there', {
                node,
                err: errorMessage(err),
              });
            },
          })
        : undefined;
    this.#detectorTypes = new Set(this.#nodeSources.flatMap((s) => s.mappings.map((m) => m.type)));

    const s = deps.config.sop;
    this.#quarantineConditions = quarantineConditions(deps.config.quarantine);
    this.#policy = {
      level: s.level,
      settleMs: s.settleMs,
      criticalLabels: s.criticalLabels,
      humanSupervisor: s.humanSupervisor,
      uncordonManualCordons: s.uncordonManualCordons,
      maxTicketAgeMs: s.maxTicketAgeMs,
      podSelectors: s.podSelectors,
      blockedDrain: s.blockedDrain,
      validation: validationPolicy(deps.config.validation),
      quarantine: {
        enabled: deps.config.quarantine.enabled,
        conditions: this.#quarantineConditions,
        maxDevices: deps.config.quarantine.maxDevices,
        priorityOf: (c) => deps.priorityOf()(c),
        ...(deps.config.quarantine.repairAfterMs === undefined
          ? {}
          : { repairAfterMs: deps.config.quarantine.repairAfterMs }),
      },
    };
    this.#quarantine = createDeviceQuarantine({
      cluster: deps.cluster,
      clock: deps.clock,
      config: deps.config.quarantine,
    });
    this.#zeroMetrics();
  }

  /** Safety gates (operator reset of the breaker, tests). */
  get gates(): SafetyGates {
    return this.#gates;
  }

  /** Domain incidents open now (for the notifier and tests). */
  get incidents(): readonly DomainIncident[] {
    return this.#incidents.open;
  }

  /** Queries one cycle issues. */
  get queriesPerCycle(): number {
    return this.#inspector.queriesPerCycle;
  }

  /** Every query the inspection may issue. */
  get queries(): string[] {
    return this.#inspector.queries;
  }

  /** Nodes this controller keeps anything about (tests: departed nodes are forgotten). */
  get rememberedNodes(): number {
    const names = new Set<string>([
      ...this.#tickets.keys(),
      ...this.#raisedAt.keys(),
      ...this.#dryRunSeen.keys(),
      ...this.#holdSeen.keys(),
      ...this.#lastEnded.keys(),
      ...this.#tracker.nodes(),
    ]);
    return names.size;
  }

  /** Steps running now. */
  get inflight(): number {
    return this.#inflight.size;
  }

  /** Resolves when every running step has ended. */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight.values()]);
  }

  /**
   * True when a node's change is a detector raising a condition (a Node condition of a mapped
   * type turning True, or changing its reason while True): worth a fast cycle now rather than
   * waiting for the interval. Heartbeats and everything else are not.
   */
  wantsFastCycle(prev: NodeInfo | undefined, next: NodeInfo): boolean {
    const raised = (n: NodeInfo | undefined): Set<string> => {
      const out = new Set<string>();
      for (const c of n?.conditions ?? [])
        if (c.status === 'True' && this.#detectorTypes.has(c.type))
          out.add(`${c.type}/${c.reason}`);
      return out;
    };
    const now = raised(next);
    if (now.size === 0) return false;
    const before = raised(prev);
    for (const k of now) if (!before.has(k)) return true;
    return false;
  }

  /** Resolves when the BMC health reading under way, if any, has ended (tests, shutdown). */
  async bmcHealthSettled(): Promise<void> {
    await this.#bmcPoll;
  }

  /**
   * The BMC health reading folded into this cycle (undefined when `bmc.health` is off), and a
   * new background reading of the BMCs when `bmc.health.intervalMs` has passed since the last.
   */
  #bmcHealthReading(
    nodes: readonly NodeInfo[],
    insp: Inspection,
    atMs: number,
    signal: AbortSignal,
  ): BmcHealthReading | undefined {
    const poller = this.#bmcHealth;
    if (poller === undefined) return undefined;
    if (
      this.#bmcPoll === undefined &&
      atMs - this.#bmcPolledAtMs >= this.#d.config.bmc.health.intervalMs
    ) {
      this.#bmcPolledAtMs = atMs;
      this.#bmcPoll = poller
        .poll(nodes, signal)
        .catch((err: unknown) => {
          if (!signal.aborted)
            this.#d.log.warn('BMC health reading failed', { err: errorMessage(err) });
        })
        .finally(() => {
          this.#bmcPoll = undefined;
        });
    }
    return bmcReadingWhereNoExporter(poller.reading(atMs), (node) =>
      this.#ipmiExporterAbsent(insp, node),
    );
  }

  /** True when the inspection's presence answer left the node out of ipmi-exporter's. */
  #ipmiExporterAbsent(insp: Inspection | undefined, node: string): boolean {
    return insp?.staleByNode.get(node)?.has('ipmi-exporter') === true;
  }

  /** Stops dispatching new steps; running ones finish. */
  stop(): void {
    this.#stopping = true;
  }

  /**
   * Forgets everything learnt while leading before (leadership was lost and is now regained):
   * another replica may have moved every ladder meanwhile, so the next cycle starts as a fresh
   * process would, seeding conditions from the tickets as they are now.
   */
  reset(): void {
    this.#seeded = false;
    this.#tracker.clear();
    this.#tickets.clear();
    this.#raisedAt.clear();
    this.#dryRunSeen.clear();
    this.#holdSeen.clear();
    this.#lastEnded.clear();
    this.#prevFaulty = new Set();
    this.#incidents.reset();
  }

  /**
   * Runs one inspection cycle. Errors are isolated per node and per query; this never throws for
   * them. `fast`: a node's detector conditions changed (the agent or node-problem-detector wrote
   * them): the cycle reuses the last inspection's answers instead of asking Prometheus again, so
   * a host event reaches its cordon and ticket in the time of the node watch and two writes.
   */
  async cycle(signal: AbortSignal, opts: { fast?: boolean } = {}): Promise<CycleReport> {
    const d = this.#d;
    const atMs = d.clock.now();
    const t0 = performance.now();
    let nodes: readonly NodeInfo[];
    // Steps that end after this point may be missing from the node list (their ticket and cordon
    // writes): their nodes wait for the next cycle rather than be decided on the old picture.
    let listedAfter = this.#stepsEnded;
    if (opts.fast !== true) await this.#readControls(signal);
    try {
      nodes = await d.cluster.listNodes(signal);
    } catch (err) {
      d.metrics.errors.inc({ where: 'list-nodes' });
      d.log.warn('cannot list nodes; cycle skipped', { err: errorMessage(err) });
      return {
        atMs,
        nodes: 0,
        faultyNodes: 0,
        started: 0,
        held: 0,
        queries: 0,
        queryFailures: 0,
        engineMs: 0,
        inspectMs: 0,
      };
    }
    const t1 = performance.now();
    this.#pruneGoneNodes(nodes);
    this.#applyProfiles(nodes);
    const last = this.#lastInspection;
    const insp =
      opts.fast === true && last !== undefined
        ? last
        : await this.#inspector.inspect(nodes, signal);
    this.#lastInspection = insp;
    if (opts.fast !== true && d.cluster.onNodeChange !== undefined) {
      // The watch-fed list again, after Prometheus answered (no request): a detector condition
      // raised meanwhile is decided in this cycle instead of waiting for it to end.
      const since = this.#stepsEnded;
      try {
        nodes = await d.cluster.listNodes(signal);
        listedAfter = since;
      } catch {
        // The first list stands.
      }
    }
    const detectors = readNodeConditions(
      nodes,
      this.#nodeSources,
      (c) => this.#timing.get(c),
      atMs,
    );
    const bmc = this.#bmcHealthReading(nodes, insp, atMs, signal);
    const t2 = performance.now();
    const allHealthy = insp.complete;
    const isStale = (node: string, condition: string): boolean => {
      // A fresh detector condition vouches for the conditions it reports on, True or False.
      if (isFresh(detectors, node, condition)) return false;
      // So does a fresh BMC reading, where ipmi-exporter does not report.
      if (bmc !== undefined && isBmcFresh(bmc, node, condition)) return false;
      // Every exporter and collector the rule reads (GpuDown: kube-state-metrics and dcgm-exporter).
      return this.#inspector.isStale(insp, node, condition);
    };
    if (!this.#seeded) this.#seedFromTickets(nodes, atMs);
    const extra =
      bmc === undefined || bmc.observations.length === 0
        ? detectors.observations
        : [...detectors.observations, ...bmc.observations];
    const edges = this.#tracker.update(
      extra.length === 0 ? insp.observations : [...insp.observations, ...extra],
      atMs,
      isStale,
      insp.presenceAtMs,
    );
    const staleOf = (node: string): string[] => [...(insp.staleByNode.get(node) ?? [])];
    const statuses = [
      ...this.#tracker.statuses(staleOf),
      ...this.#interruptedSteps(nodes, staleOf),
    ];
    const priorityOf = d.priorityOf();
    this.#recordInspection(insp, statuses, edges, priorityOf);
    this.#incidents.observe(nodes, statuses, (n) => this.#readableTicket(n), signal);

    const byName = nodesNamed(nodes, statuses);
    const faulty = new Set<string>();
    for (const st of statuses) {
      if (st.conditions.some((c) => c.condition !== 'NodeCordon' && priorityOf(c.condition) <= 99))
        faulty.add(st.node);
    }
    const newlyFaulty = [...faulty].filter(
      (n) => !this.#prevFaulty.has(n) && !(byName.get(n)?.unschedulable ?? false),
    );
    this.#prevFaulty = faulty;
    this.#gates.observeNewFaults(newlyFaulty, nodes.length, atMs);
    this.#gates.settle(atMs, insp.complete && newlyFaulty.length === 0);
    d.metrics.breakerOpen.set(this.#gates.breakerOpen(atMs) ? 1 : 0);

    const candidates = this.#decide(statuses, byName, priorityOf, atMs, listedAfter);
    candidates.sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.key[2] - b.key[2]);
    // Counted only when a step may be admitted: a quiet cycle does no per-node work here.
    const counts =
      candidates.length === 0
        ? { eligible: 0, cordoned: 0 }
        : this.#gates.fleetCounts(nodes, (n) => this.#cordonedByAegis(n));
    let started = 0;
    let held = 0;
    for (const decided of candidates) {
      if (this.#stopping) break;
      let c = decided;
      // The node group's behaviour profile, before anything is written: observe-only writes
      // nothing (the plan is logged and counted), cordon-only hands off what comes after a cordon.
      const profile = this.#profileOf(c.info);
      const verdict = profileVerdict(profile, c.step);
      if (verdict.kind === 'observe') {
        this.#observe(c, profile);
        continue;
      }
      if (verdict.kind === 'replace') {
        this.#withheld(profile, c.step.action);
        c = { ...c, step: verdict.step };
      }
      // Its domain incident's pointer is being written into the ticket: the step waits a cycle.
      if (this.#incidents.writing(c.info.name)) continue;
      // An active member of a domain incident: steps its rule does not allow wait for the domain.
      const resumed = c.step.seq !== undefined;
      const domainHold = this.#incidents.holdOf(c.info.name, c.step.action, resumed);
      if (domainHold !== undefined) {
        if (d.config.safety.dryRun) this.#dryRun(c, domainHold);
        else {
          held++;
          this.#recordHold(c, 'domain-incident', domainHold, signal);
        }
        continue;
      }
      // Never start or resume a step on frozen data: the served condition's rule or exporter is
      // stale (or, for the recovery loop, any signal of the node is). A resumed step's Job keeps
      // running in the cluster meanwhile and is followed once data is fresh. A hand-off touches
      // nothing on the node, so it never waits for fresh data.
      const stale =
        c.step.action === 'HandToHuman' ? undefined : this.#staleData(c, insp, isStale, atMs);
      if (stale !== undefined) {
        held++;
        this.#recordHold(c, 'stale-signal', stale, signal);
        continue;
      }
      // Approval mode: a matching step waits for an operator; dismissed, the node goes to a human.
      const approval = this.#approvalOf(c);
      if (approval.kind === 'dismissed') {
        c = {
          ...c,
          step: {
            action: Action.HandToHuman,
            reason: `${c.step.action} dismissed by ${approval.by}`,
            then: 'assign',
          },
        };
      } else if (approval.kind === 'awaiting') {
        // Dry-run approves nothing and shows everything: the plan says it would wait.
        if (d.config.safety.dryRun) this.#dryRun(c, 'awaiting approval');
        else {
          held++;
          this.#recordHold(c, 'approval', 'awaiting approval', signal);
        }
        continue;
      }
      if (d.config.safety.dryRun) {
        this.#dryRun(c);
        continue;
      }
      const adm = this.#gates.admit({
        step: c.step,
        node: c.info,
        ticket: c.view.ticket,
        fleet: counts,
        nowMs: atMs,
      });
      if (isHold(adm)) {
        held++;
        this.#recordHold(c, adm.gate, adm.reason, signal);
        continue;
      }
      if (c.step.action === 'Cordon' && !c.info.unschedulable) counts.cordoned++;
      started++;
      this.#observeFirstAction(c, atMs);
      this.#dispatch(
        c,
        () => {
          adm.release();
        },
        signal,
      );
    }
    if (allHealthy) this.#reconcileTickets(nodes, faulty, signal);
    if (allHealthy) this.#releaseQuarantines(nodes, insp.staleByNode, signal);
    this.#recordFleet(nodes);
    if (d.onSnapshot !== undefined) {
      const staleSignals: Record<string, number> = {};
      for (const set of insp.staleByNode.values())
        for (const s of set) staleSignals[s] = (staleSignals[s] ?? 0) + 1;
      d.onSnapshot({
        atMs,
        fleetSize: nodes.length,
        nodes: snapshotNodes(nodes, (n) => this.#ticketOf(n), this.#cycleHolds),
        breaker: { open: this.#gates.breakerOpen(atMs) },
        staleSignals,
        staleNodes: [...insp.staleByNode.keys()],
      });
    }
    this.#cycleHolds = new Map();
    const t3 = performance.now();
    return {
      atMs,
      nodes: nodes.length,
      faultyNodes: faulty.size,
      started,
      held,
      queries: insp.queries,
      queryFailures: insp.failures,
      engineMs: t3 - t2 + (t1 - t0),
      inspectMs: t2 - t1,
    };
  }

  #decide(
    statuses: readonly NodeStatus[],
    byName: ReadonlyMap<string, NodeInfo>,
    priorityOf: PriorityOf,
    nowMs: number,
    listedAfter: number,
  ): Candidate[] {
    const d = this.#d;
    const sops = d.sops();
    const out: Candidate[] = [];
    for (const status of statuses) {
      const info = byName.get(status.node);
      if (info === undefined) {
        this.#tracker.forget(status.node);
        continue;
      }
      if (this.#inflight.has(info.name) || isControlPlane(info) || isOptedOut(info)) continue;
      if ((this.#lastEnded.get(info.name)?.seq ?? 0) > listedAfter) continue;
      let ticket: Ticket | null;
      try {
        ticket = this.#ticketOf(info);
      } catch {
        // Counted and logged once per corrupt text (in #ticketOf), not once per cycle.
        continue;
      }
      if (!isAutomationOwned(ticket)) continue;
      const view: NodeView = { info, ticket, nowMs, policy: this.#policy };
      const ordered = actionableInOrder(status.conditions, priorityOf);
      const ackedUntil = acknowledgedUntil(ticket);
      // A new hand-off assigns the whole ticket to a human, which stops every other ladder: it
      // waits while a less urgent condition of the node still has a step of its own to take.
      let handOff: Candidate | undefined;
      let chosen = false;
      for (const [i, cond] of ordered.entries()) {
        // The Cordon bucket (recovery loop) runs only when nothing more urgent is active.
        if (i > 0 && bucketOfPriority(priorityOf(cond.condition)) === Bucket.Cordon) break;
        // A human closed the ticket for this very occurrence: not re-opened until it clears and fires anew.
        if (
          ackedUntil !== undefined &&
          cond.sinceMs <= ackedUntil &&
          ticket?.history.includes(cond.condition) === true
        )
          continue;
        const reg = sops.forCondition(cond.condition);
        if (reg === undefined) continue;
        let verdict;
        try {
          verdict = reg.instance.evaluate(view, { condition: cond, node: status });
        } catch (err) {
          d.metrics.pluginErrors.inc({ plugin: reg.sop.id });
          d.log.warn('SOP evaluate threw; trying the next condition', {
            sop: reg.sop.id,
            node: info.name,
            err: errorMessage(err),
          });
          continue;
        }
        if (verdict.kind !== 'act') continue;
        // A node that is not Ready runs no Job and restarts no pod: a new such step of any
        // condition but NotReady's own waits until the node is back (NotReady is served first).
        if (
          info.ready !== true &&
          verdict.step.seq === undefined &&
          NEEDS_A_RUNNING_NODE.has(verdict.step.action) &&
          bucketOfPriority(priorityOf(cond.condition)) !== Bucket.NotReady
        )
          continue;
        const candidate: Candidate = {
          info,
          status,
          conditionIndex: i,
          condition: cond,
          step: verdict.step,
          view,
          sopId: reg.sop.id,
          key: urgency(cond, priorityOf),
        };
        if (verdict.step.action === Action.HandToHuman && verdict.step.seq === undefined) {
          handOff ??= candidate;
          continue;
        }
        out.push(candidate);
        chosen = true;
        break;
      }
      if (!chosen && handOff !== undefined) out.push(handOff);
    }
    return out;
  }

  #dispatch(c: Candidate, release: () => void, signal: AbortSignal): void {
    const d = this.#d;
    const reg = d.sops().get(c.sopId);
    const cond = actionableInOrder(c.status.conditions, d.priorityOf())[c.conditionIndex];
    if (reg === undefined || cond === undefined) {
      release();
      return;
    }
    const run = runStep(
      {
        cluster: d.cluster,
        clock: d.clock,
        metrics: d.metrics,
        log: d.log,
        humanSupervisor: this.#policy.humanSupervisor,
        fence: d.fence ?? UNFENCED,
        repeatOffender: {
          max: d.config.safety.repeatOffenderMax,
          windowMs: d.config.safety.repeatOffenderWindowMs,
        },
        ...this.#profileField(c.info),
        ...(d.onStep === undefined ? {} : { onStep: d.onStep }),
      },
      {
        sopId: c.sopId,
        instance: reg.instance,
        view: c.view,
        status: { condition: cond, node: c.status },
        step: c.step,
      },
      signal,
    )
      .then(() => undefined)
      .catch((err: unknown) => {
        if (signal.aborted) return;
        d.metrics.errors.inc({
          where: isHealError(err, ErrorCode.TicketCorrupt) ? 'ticket' : 'step',
        });
        d.log.warn('step failed', {
          node: c.info.name,
          sop: c.sopId,
          action: c.step.action,
          err: errorMessage(err),
        });
      })
      .finally(() => {
        release();
        this.#lastEnded.set(c.info.name, {
          seq: ++this.#stepsEnded,
          fixedAtMs: CAN_FIX.has(c.step.action)
            ? d.clock.now()
            : this.#lastEnded.get(c.info.name)?.fixedAtMs,
        });
        this.#inflight.delete(c.info.name);
        d.metrics.inflight.set(
          { action: c.step.action },
          this.#gates.inflight().get(c.step.action) ?? 0,
        );
      });
    this.#inflight.set(c.info.name, run);
    d.metrics.inflight.set(
      { action: c.step.action },
      this.#gates.inflight().get(c.step.action) ?? 0,
    );
  }

  /**
   * Reads the operators' fleet-wide controls (ConfigMap aegis-control): pause everything, reset
   * the storm breaker. An unreadable ConfigMap keeps the last known controls (counted).
   */
  async #readControls(signal: AbortSignal): Promise<void> {
    const d = this.#d;
    if (d.cluster.readControl === undefined) return;
    let data: Readonly<Record<string, string>> | null;
    try {
      data = await d.cluster.readControl(signal);
    } catch (err) {
      d.metrics.errors.inc({ where: 'control' });
      d.log.warn('operator controls unreadable; the last known ones stay in force', {
        err: errorMessage(err),
      });
      return;
    }
    const pausedBy = data?.['paused'] === 'true' ? (data['pausedBy'] ?? 'an operator') : undefined;
    if (pausedBy !== this.#operatorPause)
      d.log.info(pausedBy === undefined ? 'resumed by an operator' : 'paused by an operator', {
        by: pausedBy ?? data?.['resumedBy'] ?? '',
      });
    this.#operatorPause = pausedBy;
    this.#gates.setOperatorPause(pausedBy);
    const reset = data?.['breakerResetAt'];
    if (reset !== undefined && reset !== this.#breakerResetSeen) {
      this.#breakerResetSeen = reset;
      const atMs = Date.parse(reset);
      if (!Number.isNaN(atMs) && this.#gates.operatorReset(atMs)) {
        d.metrics.breakerOpen.set(0);
        d.log.info('storm breaker reset by an operator', { by: data?.['breakerResetBy'] ?? '' });
      }
    }
  }

  /**
   * Where the candidate stands in approval mode: no rule requires approval (or it resumes a step
   * already begun), approved, dismissed by someone, or awaiting an operator.
   */
  #approvalOf(
    c: Candidate,
  ): { kind: 'none' | 'approved' | 'awaiting' } | { kind: 'dismissed'; by: string } {
    if (c.step.seq !== undefined || c.step.action === Action.HandToHuman) return { kind: 'none' };
    const needs =
      needsApproval(this.#profileOf(c.info), c.step) ||
      this.#d.config.approval.rules.some(
        (r) =>
          (r.actions as readonly string[]).includes(c.step.action) &&
          (r.conditions === undefined || r.conditions.includes(c.condition.condition)) &&
          (r.sops === undefined || r.sops.includes(c.sopId)) &&
          (r.nodeSelector === undefined ||
            Object.entries(r.nodeSelector).every(([k, v]) => c.info.labels[k] === v)),
      );
    if (!needs) return { kind: 'none' };
    const a = c.view.ticket?.approval;
    if (a?.action !== c.step.action) return { kind: 'awaiting' };
    if (a.state === 'approved') return { kind: 'approved' };
    if (a.state === 'dismissed') return { kind: 'dismissed', by: a.by ?? 'an operator' };
    return { kind: 'awaiting' };
  }

  #dryRun(c: Candidate, waitingFor?: string): void {
    const plan = `${c.sopId}:${c.step.action}:${c.step.reason}${waitingFor === undefined ? '' : ` (${waitingFor})`}`;
    if (this.#dryRunSeen.get(c.info.name) === plan) return;
    this.#dryRunSeen.set(c.info.name, plan);
    this.#d.metrics.dryRunPlans.inc({ action: c.step.action });
    this.#d.log.info('dry-run: would act', {
      node: c.info.name,
      sop: c.sopId,
      action: c.step.action,
      reason: c.step.reason,
      ...(waitingFor === undefined ? {} : { waitingFor }),
    });
    this.#d.onStep?.({
      atMs: this.#d.clock.now(),
      node: c.info.name,
      sop: c.sopId,
      condition: c.status.conditions[0]?.condition ?? '',
      action: c.step.action,
      status: 'DryRun',
      message: waitingFor === undefined ? c.step.reason : `${c.step.reason} (${waitingFor})`,
    });
  }

  /** Records a hold in the ticket once per distinct reason, so the ticket says why nothing happens. */
  #recordHold(c: Candidate, gate: string, reason: string, signal: AbortSignal): void {
    const d = this.#d;
    d.metrics.held.inc({ gate });
    this.#cycleHolds.set(c.info.name, { gate, action: c.step.action, reason });
    const key = `${gate}:${c.step.action}`;
    if (this.#holdSeen.get(c.info.name) === key) return;
    this.#holdSeen.set(c.info.name, key);
    d.onStep?.({
      atMs: d.clock.now(),
      node: c.info.name,
      sop: c.sopId,
      condition: c.status.conditions[0]?.condition ?? '',
      action: c.step.action,
      status: 'Held',
      message: reason,
    });
    if (c.view.ticket === null || !isOpen(c.view.ticket)) return;
    const now = new Date(d.clock.now()).toISOString();
    updateTicket(
      d,
      c.info.name,
      (t) => {
        if (t === null || !isOpen(t) || !isAutomationOwned(t)) return undefined;
        const last = t.workflows.at(-1);
        // Approval mode: the ticket names the step that waits for an operator.
        const request =
          gate === 'approval' &&
          (t.approval?.action !== c.step.action || t.approval.state === 'dismissed')
            ? {
                approval: {
                  action: c.step.action,
                  state: 'pending' as const,
                  requestedAt: now,
                  reason: c.step.reason.slice(0, 300),
                },
              }
            : {};
        if (
          last?.status === 'Held' &&
          last.message === `${gate}: ${reason}` &&
          !('approval' in request)
        )
          return undefined;
        if (last?.status === 'Running') return undefined;
        return {
          ...t,
          ...request,
          workflows: [
            ...t.workflows,
            {
              action: c.step.action,
              status: 'Held',
              time: now,
              message: `${gate}: ${reason}`,
              ...this.#profileField(c.info),
            },
          ],
        };
      },
      signal,
    ).catch((err: unknown) => {
      d.metrics.errors.inc({ where: 'ticket' });
      d.log.warn('hold not recorded', { node: c.info.name, err: errorMessage(err) });
    });
  }

  /**
   * Releases the GPUs Aegis quarantined once no condition isolating them is active (held through
   * its clear delay) on a node with fresh signals; only what the node's record names is removed.
   */
  #releaseQuarantines(
    nodes: readonly NodeInfo[],
    staleByNode: ReadonlyMap<string, ReadonlySet<string>>,
    signal: AbortSignal,
  ): void {
    const q = this.#quarantine;
    if (q === undefined) return;
    const d = this.#d;
    for (const n of nodes) {
      if (this.#inflight.has(n.name) || (staleByNode.get(n.name)?.size ?? 0) > 0) continue;
      const active = this.#tracker.active(n.name);
      const work = releaseHealthy(q, n, active, this.#quarantineConditions, signal);
      if (work === undefined) continue;
      const done = work
        .then((devices) => {
          d.log.info('GPU quarantine released', { node: n.name, devices: devices.join(',') });
          return d.cluster.emitEvent(
            {
              node: n.name,
              type: 'Normal',
              reason: 'GpuQuarantineReleased',
              message: `GPU ${devices.join(', ')} healthy again: back in scheduling`,
            },
            signal,
          );
        })
        .catch((err: unknown) => {
          d.metrics.errors.inc({ where: 'quarantine' });
          d.log.warn('GPU quarantine not released', { node: n.name, err: errorMessage(err) });
        })
        .finally(() => this.#inflight.delete(n.name));
      this.#inflight.set(n.name, done);
    }
  }

  /**
   * Closes tickets whose node has nothing left to act on. Only after a cycle in which every
   * query succeeded, and never for a node with a stale signal: an outage is not "healthy".
   */
  #reconcileTickets(
    nodes: readonly NodeInfo[],
    faulty: ReadonlySet<string>,
    signal: AbortSignal,
  ): void {
    const d = this.#d;
    const nowMs = d.clock.now();
    for (const n of nodes) {
      if (
        !(TICKET_ANNOTATION in n.annotations) ||
        faulty.has(n.name) ||
        this.#observeOnly.has(n.name) ||
        n.unschedulable ||
        this.#inflight.has(n.name)
      )
        continue;
      if (
        this.#tracker
          .active(n.name)
          .some((c) => c.condition !== 'NodeCordon' && this.#d.priorityOf()(c.condition) <= 99)
      )
        continue;
      const t = this.#readableTicket(n);
      if (t === undefined) continue;
      if (
        t === null ||
        !isOpen(t) ||
        !isAutomationOwned(t) ||
        t.workflows.some((w) => w.status === 'Running')
      )
        continue;
      const done = updateTicket(
        d,
        n.name,
        (cur) => {
          if (cur === null || !isOpen(cur) || !isAutomationOwned(cur)) return undefined;
          const acted = cur.workflows.some(
            (w) => w.status === 'Succeeded' && w.action !== 'Diagnose' && w.action !== 'Cordon',
          );
          return {
            ...cur,
            status: acted ? TicketStatus.Resolved : TicketStatus.Closed,
            resolvedTime: new Date(nowMs).toISOString(),
            updateTime: new Date(nowMs).toISOString(),
            conclusion: acted
              ? 'condition cleared after remediation'
              : 'condition cleared by itself',
          };
        },
        signal,
      )
        .then((res) => {
          if (res.ticket?.status === TicketStatus.Resolved) {
            d.metrics.selfhealSeconds.observe(
              { condition: res.ticket.history[0] ?? res.ticket.condition },
              (nowMs - Date.parse(res.ticket.creationTime)) / 1000,
            );
          }
        })
        .catch((err: unknown) => {
          d.metrics.errors.inc({ where: 'ticket' });
          d.log.warn('ticket not closed', { node: n.name, err: errorMessage(err) });
        })
        .finally(() => this.#inflight.delete(n.name));
      this.#inflight.set(n.name, done);
    }
  }

  /**
   * On the first cycle after a start (or after leadership is regained), the conditions recorded
   * in open tickets are taken as still active (their clear delay counting from now): a restarted
   * daemon must not read "only NodeCordon left" while the real conditions wait out their `for`
   * time again, and so never runs the recovery loop (a healthcheck and another reboot) on a node
   * mid-ladder. The conditions of a ticket a human closed are seeded too, active since the ticket
   * was opened: while they keep being reported they are the occurrence the human decided on, and
   * never re-open a ticket (the decision lives in the ticket, not in this process's memory).
   */
  #seedFromTickets(nodes: readonly NodeInfo[], atMs: number): void {
    this.#seeded = true;
    for (const n of nodes) {
      if (!(TICKET_ANNOTATION in n.annotations)) continue;
      const t = this.#readableTicket(n);
      if (t === undefined) continue;
      if (t === null) continue;
      if (!(isOpen(t) && isAutomationOwned(t)) && acknowledgedUntil(t) === undefined) continue;
      for (const key of t.conditions) {
        const slash = key.indexOf('/');
        const name = slash === -1 ? key : key.slice(0, slash);
        const entry = this.#timing.get(name);
        if (entry === undefined || entry.signal === 'kubernetes') continue;
        this.#tracker.seed(
          {
            node: n.name,
            domain: entry.domain,
            condition: name,
            id: slash === -1 ? '' : key.slice(slash + 1),
            pciBdf: '',
            msg: 'recorded in the ticket before a restart',
            value: 1,
          },
          Date.parse(t.creationTime),
          atMs,
        );
      }
    }
  }

  /**
   * Nodes whose open ticket has a step left Running (a crash, an API error at the final write)
   * but no active condition any more: a synthetic status lets its SOP resume the step.
   */
  #interruptedSteps(nodes: readonly NodeInfo[], staleOf: (node: string) => string[]): NodeStatus[] {
    const out: NodeStatus[] = [];
    for (const n of nodes) {
      if (!(TICKET_ANNOTATION in n.annotations) || this.#inflight.has(n.name)) continue;
      if (this.#tracker.active(n.name).length > 0) continue;
      const t = this.#readableTicket(n);
      if (t === undefined) continue;
      const last = t?.workflows.at(-1);
      if (t === null || !isOpen(t) || last?.status !== 'Running' || last.condition === undefined)
        continue;
      const entry = this.#timing.get(last.condition);
      const sinceMs = Date.parse(last.time ?? t.creationTime);
      out.push({
        node: n.name,
        conditions: [
          {
            node: n.name,
            domain: entry?.domain ?? 'Node',
            condition: last.condition,
            id: '',
            pciBdf: '',
            msg: 'resume',
            value: 1,
            sinceMs,
          },
        ],
        staleSignals: staleOf(n.name),
      });
    }
    return out;
  }

  /**
   * Forgets what is kept per node for nodes that left the cluster. The node list is the same
   * array while nothing changed, so a quiet fleet costs one comparison here.
   */
  #pruneGoneNodes(nodes: readonly NodeInfo[]): void {
    const nowMs = this.#d.clock.now();
    if (nodes === this.#prunedFor || nowMs - this.#prunedAtMs < PRUNE_EVERY_MS) return;
    this.#prunedFor = nodes;
    this.#prunedAtMs = nowMs;
    const names = new Set(nodes.map((n) => n.name));
    for (const map of [
      this.#tickets,
      this.#raisedAt,
      this.#dryRunSeen,
      this.#holdSeen,
      this.#lastEnded,
    ] as Map<string, unknown>[]) {
      for (const name of map.keys()) if (!names.has(name)) map.delete(name);
    }
    for (const name of [...this.#tracker.nodes()]) if (!names.has(name)) this.#tracker.forget(name);
  }

  /** Why the step would act on stale data (undefined: the data is fresh). */
  #staleData(
    c: Candidate,
    insp: Awaited<ReturnType<Inspector['inspect']>>,
    isStale: (node: string, condition: string) => boolean,
    atMs: number,
  ): string | undefined {
    const STALE = 'metrics are stale; waiting for fresh data';
    const node = c.info.name;
    if (c.condition.condition === 'NodeCordon') {
      const nodeStale = !insp.complete || (insp.staleByNode.get(node)?.size ?? 0) > 0;
      return nodeStale ? STALE : undefined;
    }
    // A condition only held by its clear delay (not reported this cycle) starts nothing new.
    const seen = c.condition.lastSeenMs;
    if (c.step.seq === undefined && seen !== undefined && seen < atMs) return STALE;
    // A slow rule's answer from before the node's last step ended may describe the node as it
    // was before that step (a repair, a reboot): the next step waits for an answer after it.
    const answeredAt = insp.answeredAtMs.get(c.condition.condition);
    const stepEnded = this.#lastEnded.get(node)?.fixedAtMs;
    if (
      c.step.seq === undefined &&
      answeredAt !== undefined &&
      stepEnded !== undefined &&
      answeredAt <= stepEnded
    )
      return 'waiting for an answer to the rule newer than the last step';
    return isStale(node, c.condition.condition) ? STALE : undefined;
  }

  /** True when the node's open ticket says Aegis cordoned it. */
  #cordonedByAegis(n: NodeInfo): boolean {
    const t = this.#readableTicket(n);
    return t !== undefined && t !== null && isOpen(t) && t.cordonedByAegis;
  }

  /**
   * The node's ticket; null when it has none, undefined when its annotation is unreadable (the
   * bookkeeping loops skip such a node; the decision loop reports it).
   */
  #readableTicket(n: NodeInfo): Ticket | null | undefined {
    try {
      return this.#ticketOf(n);
    } catch {
      return undefined;
    }
  }

  /** Parsed ticket of a node, cached by the annotation's text (parsing is the costly part). */
  #ticketOf(info: NodeInfo): Ticket | null {
    const raw = info.annotations[TICKET_ANNOTATION];
    if (raw === undefined) {
      this.#tickets.delete(info.name);
      return null;
    }
    const hit = this.#tickets.get(info.name);
    if (hit?.raw === raw) {
      if (hit.error !== undefined) throw hit.error;
      return hit.ticket;
    }
    try {
      const ticket = readTicket(info);
      this.#tickets.set(info.name, { raw, ticket });
      return ticket;
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.#tickets.set(info.name, { raw, ticket: null, error });
      // One corruption, one count: the same text read again next cycle is not a new one.
      this.#d.metrics.ticketCorrupt.inc();
      this.#d.log.warn('ticket annotation unreadable; node skipped and annotation left as is', {
        node: info.name,
        err: error.message,
      });
      throw error;
    }
  }

  /**
   * One observation per incident: the step that opens the node's ticket. A later condition on a
   * node whose ticket is open is the same incident, and its first step is not a first action.
   */
  #observeFirstAction(c: Candidate, nowMs: number): void {
    const raised = this.#raisedAt.get(c.info.name);
    if (raised === undefined) return;
    this.#raisedAt.delete(c.info.name);
    if (c.view.ticket !== null && isOpen(c.view.ticket)) return;
    this.#d.metrics.firstActionSeconds.observe((nowMs - raised) / 1000);
  }

  #recordInspection(
    insp: Awaited<ReturnType<Inspector['inspect']>>,
    statuses: readonly NodeStatus[],
    edges: ReturnType<ConditionTracker['update']>,
    priorityOf: PriorityOf,
  ): void {
    const m = this.#d.metrics;
    m.queries.inc({ result: 'ok' }, insp.answered);
    m.queries.inc({ result: 'error' }, insp.failures);
    m.metricsSourceUp.set(insp.failures === 0 ? 1 : 0);
    const stale = new Map<string, number>();
    for (const set of insp.staleByNode.values())
      for (const s of set) stale.set(s, (stale.get(s) ?? 0) + 1);
    for (const s of Object.keys(this.#d.presence))
      m.staleSignals.set({ signal: s }, stale.get(s) ?? 0);
    for (const e of this.#d.catalogue)
      if (e.expr !== '')
        m.staleRules.set({ condition: e.name }, insp.failedRules.has(e.name) ? 1 : 0);
    for (const e of edges) {
      if (e.kind !== 'raised') continue;
      m.conditionRaised.inc({ condition: e.instance.condition });
      if (
        priorityOf(e.instance.condition) <= 99 &&
        e.instance.condition !== 'NodeCordon' &&
        !this.#raisedAt.has(e.instance.node)
      ) {
        this.#raisedAt.set(e.instance.node, e.atMs);
      }
    }
    const counts = new Map<string, { domain: string; nodes: Set<string> }>();
    for (const st of statuses) {
      for (const c of st.conditions) {
        let v = counts.get(c.condition);
        if (v === undefined) counts.set(c.condition, (v = { domain: c.domain, nodes: new Set() }));
        v.nodes.add(st.node);
      }
    }
    for (const name of this.#conditionLabels) {
      if (!counts.has(name))
        m.conditionGauge.set({ condition: name, domain: this.#timing.get(name)?.domain ?? '' }, 0);
    }
    for (const [name, v] of counts)
      m.conditionGauge.set({ condition: name, domain: v.domain }, v.nodes.size);
    if (insp.errors.length > 0)
      this.#d.log.warn('metrics queries failed; affected signals are stale', {
        failures: insp.failures,
        first: insp.errors[0],
      });
  }

  #recordFleet(nodes: readonly NodeInfo[]): void {
    const m = this.#d.metrics;
    const byStatus = new Map<string, number>();
    let byAegis = 0;
    let byOther = 0;
    this.#reliability.begin(this.#d.clock.now());
    for (const n of nodes) {
      if (!(TICKET_ANNOTATION in n.annotations)) {
        if (n.unschedulable) byOther++;
        continue;
      }
      const t = this.#readableTicket(n) ?? null;
      if (t !== null) byStatus.set(t.status, (byStatus.get(t.status) ?? 0) + 1);
      if (t !== null) this.#reliability.add(n, t);
      if (n.unschedulable) {
        if (t !== null && isOpen(t) && t.cordonedByAegis) byAegis++;
        else byOther++;
      }
    }
    let open = 0;
    for (const s of Object.values(TicketStatus)) {
      const v = byStatus.get(s) ?? 0;
      m.ticketsByStatus.set({ status: s }, v);
      if (s !== TicketStatus.Resolved && s !== TicketStatus.Closed) open += v;
    }
    m.ticketOpen.set(open);
    m.cordonedByAegis.set({ by: 'aegis' }, byAegis);
    m.cordonedByAegis.set({ by: 'other' }, byOther);
    this.#reliability.flush(m);
  }

  /** The node's behaviour profile (docs/profiles.md). */
  #profileOf(n: NodeInfo): NodeProfile {
    return profileOf(n.labels, this.#d.config.profiles);
  }

  /** The profile to record in a ticket entry: only when profiles are configured. */
  #profileField(n: NodeInfo): { profile?: string } {
    const cfg = this.#d.config.profiles;
    return profilesConfigured(cfg) ? { profile: describeProfile(profileOf(n.labels, cfg)) } : {};
  }

  #withheld(p: NodeProfile, action: string): void {
    this.#d.metrics.profileWithheld.inc({ profile: p.profile, action });
  }

  /**
   * Once per node list: the observe-only nodes (nothing is written for them: the incident keeper
   * and the ticket bookkeeping skip them) and the nodes per profile. Nothing without profiles.
   */
  #applyProfiles(nodes: readonly NodeInfo[]): void {
    const cfg = this.#d.config.profiles;
    if (!profilesConfigured(cfg) || nodes === this.#profiledFor) return;
    this.#profiledFor = nodes;
    const observeOnly = new Set<string>();
    const counts = new Map<string, number>(PROFILE_NAMES.map((p) => [p, 0]));
    for (const n of nodes) {
      const p = profileOf(n.labels, cfg).profile;
      counts.set(p, (counts.get(p) ?? 0) + 1);
      if (p === 'observe-only') observeOnly.add(n.name);
    }
    this.#observeOnly = observeOnly;
    for (const [profile, v] of counts) this.#d.metrics.profileNodes.set({ profile }, v);
  }

  /**
   * An observe-only node's plan: nothing is written (no ticket, cordon, Job or Event for the
   * node); the step log shows it as DryRun, the log says what would run, and it is counted once
   * per distinct plan.
   */
  #observe(c: Candidate, p: NodeProfile): void {
    const d = this.#d;
    const why = `profile ${describeProfile(p)}`;
    const plan = `${why}:${c.sopId}:${c.step.action}:${c.step.reason}`;
    if (this.#dryRunSeen.get(c.info.name) === plan) return;
    this.#dryRunSeen.set(c.info.name, plan);
    this.#withheld(p, c.step.action);
    d.log.info('observe-only: would act', {
      node: c.info.name,
      sop: c.sopId,
      action: c.step.action,
      reason: c.step.reason,
      profile: describeProfile(p),
    });
    d.onStep?.({
      atMs: d.clock.now(),
      node: c.info.name,
      sop: c.sopId,
      condition: c.status.conditions[0]?.condition ?? '',
      action: c.step.action,
      status: 'DryRun',
      message: `${c.step.reason} (${why})`,
    });
  }

  #zeroMetrics(): void {
    const m = this.#d.metrics;
    for (const e of this.#d.catalogue) {
      m.conditionGauge.set({ condition: e.name, domain: e.domain }, 0);
      this.#conditionLabels.add(e.name);
    }
    for (const status of ['Succeeded', 'Failed', 'Canceled'])
      m.sopTotal.inc({ sop: 'node.recover', action: 'Uncordon', status }, 0);
    m.ticketOpen.set(0);
    m.breakerOpen.set(0);
    m.metricsSourceUp.set(1);
  }
}

/**
 * When a human closed or resolved the ticket, the conditions it served that have been active
 * since before it was opened are acknowledged: the same occurrence never re-opens a ticket (a
 * 24 h counter window would otherwise re-cordon a node the human just fixed).
 */
function acknowledgedUntil(ticket: Ticket | null): number | undefined {
  if (
    ticket === null ||
    isOpen(ticket) ||
    ticket.supervisor === '' ||
    ticket.supervisor === AEGIS_SUPERVISOR
  )
    return undefined;
  return Date.parse(ticket.creationTime);
}

/**
 * The NodeInfo of every node that has a status (the only nodes the cycle looks up by name). The
 * last node of a name wins, as in a Map of the whole list; a quiet fleet costs nothing here.
 */
function nodesNamed(
  nodes: readonly NodeInfo[],
  statuses: readonly NodeStatus[],
): Map<string, NodeInfo> {
  const out = new Map<string, NodeInfo>();
  if (statuses.length === 0) return out;
  const wanted = new Set(statuses.map((s) => s.node));
  for (const n of nodes) if (wanted.has(n.name)) out.set(n.name, n);
  return out;
}

/** Steps that need the node's kubelet: a Job scheduled on it, or pods restarted there. */
const NEEDS_A_RUNNING_NODE: ReadonlySet<Action> = new Set<Action>([
  Action.Diagnose,
  Action.Remedy,
  Action.RestartPod,
  Action.Repair,
  Action.Reboot,
  Action.Shutdown,
  Action.Healthcheck,
  Action.Validate,
]);

/** Per-node maps are pruned of departed nodes at most this often. */
const PRUNE_EVERY_MS = 60_000;

/**
 * Steps that can change what the rules see (a repair, a reboot, a restarted exporter). A cordon,
 * a diagnosis or a health check leaves the faults as they were, so older answers still hold.
 */
const CAN_FIX: ReadonlySet<Action> = new Set<Action>([
  Action.Drain,
  Action.Remedy,
  Action.RestartPod,
  Action.Repair,
  Action.Reboot,
  Action.PowerCycle,
  Action.Shutdown,
  Action.ForceDeletePods,
  Action.Uncordon,
]);

/** Validation before return to service as the SOPs read it (config `validation`). */
export function validationPolicy(v: Config['validation']): ValidationPolicy {
  return {
    enabled: v.enabled,
    dcgmLevel: v.dcgm.level,
    ncclGpus: v.nccl.gpus,
    ...(v.nccl.minBusBandwidthGBps === undefined
      ? {}
      : { ncclMinBusBwGBps: v.nccl.minBusBandwidthGBps }),
    ibDevice: v.ib.device,
    ...(v.ib.minBandwidthGbps === undefined ? {} : { ibMinGbps: v.ib.minBandwidthGbps }),
    certifyForMs: v.certifyForMs,
  };
}

/** The inspector's settings from the configuration. */
export function inspectorOptions(config: Config): InspectorOptions {
  const i = config.inspect;
  return {
    concurrency: i.concurrency,
    queryTimeoutMs: config.prometheus.timeoutMs,
    compatibility: i.compatibility,
    slowRuleMaxPeriodMs: i.slowRuleMaxPeriodMs,
    intervalMs: i.intervalMs,
    backgroundSlowRules: i.backgroundSlowRules,
    shareSelections: i.shareSelections,
    backgroundPresence: i.backgroundPresence,
    ruleSource: i.ruleSource,
    presenceIntervalMs: i.presenceIntervalMs,
  };
}
