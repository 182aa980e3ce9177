/**
 * Transparent decorators of the engine's two ports, for the scenario runner. The ClusterClient one
 * forwards every call to the simulated cluster unchanged and remembers the last node objects the
 * engine saw (every cycle lists them, every write returns one), so the runner can follow tickets
 * and cordons without making API calls of its own (which would consume the simulator's injected
 * failures). The MetricsSource one notes when a rule first returns a node (detection time).
 */
import type { Clock } from '../core/clock.js';
import { TICKET_ANNOTATION, type NodeInfo } from '../core/types.js';
import type {
  ClusterClient,
  DeviceTaintClient,
  EvictionResult,
  JobRequest,
  JobState,
  NodeEvent,
  PodInfo,
} from '../k8s/cluster.js';
import { answerGroup, type SharedGroup } from '../engine/shared-selection.js';
import type { InstantSample, MetricsSource } from '../prom/metrics-source.js';
import { parseTicket, type Ticket } from '../ticket/ticket.js';

/** What the runner last saw of a node. */
export interface NodeView {
  readonly info: NodeInfo;
  /** Parsed ticket; null when there is none or it is unreadable (`corrupt`). */
  readonly ticket: Ticket | null;
  readonly corrupt: boolean;
}

/** The engine's inspection saw a condition on a node (a rule returned it, or the node object). */
export interface Sighting {
  readonly atMs: number;
  readonly node: string;
  readonly condition: string;
}

/** A change of a node's ticket: a new ticket, or a new status or supervisor. */
export interface TicketChange {
  readonly atMs: number;
  readonly node: string;
  readonly status: string;
  readonly supervisor: string;
  readonly condition: string;
  /** True when this change is a new ticket (a new creation time). */
  readonly opened: boolean;
}

/** Forwards to `inner`, observing node objects. */
export class ObservedCluster implements ClusterClient {
  readonly #inner: ClusterClient;
  readonly #clock: Clock;
  readonly #onTicket: (change: TicketChange) => void;
  readonly #onNotReady: (node: string, atMs: number) => void;
  readonly #views = new Map<string, NodeView>();
  readonly #raw = new Map<string, string | undefined>();

  constructor(
    inner: ClusterClient,
    clock: Clock,
    onTicket: (change: TicketChange) => void,
    onNotReady: (node: string, atMs: number) => void = () => undefined,
  ) {
    this.#inner = inner;
    this.#clock = clock;
    this.#onTicket = onTicket;
    this.#onNotReady = onNotReady;
  }

  /** The last view of a node. */
  view(name: string): NodeView | undefined {
    return this.#views.get(name);
  }

  /** Every node seen so far. */
  views(): IterableIterator<NodeView> {
    return this.#views.values();
  }

  /** Records a node object (from the engine's calls, or the runner's final read). */
  observe(info: NodeInfo): void {
    if (info.ready !== true) this.#onNotReady(info.name, this.#clock.now());
    const raw = info.annotations[TICKET_ANNOTATION];
    const prev = this.#views.get(info.name);
    if (prev !== undefined && this.#raw.get(info.name) === raw) {
      this.#views.set(info.name, { ...prev, info });
      return;
    }
    this.#raw.set(info.name, raw);
    let ticket: Ticket | null = null;
    let corrupt = false;
    if (raw !== undefined) {
      try {
        ticket = parseTicket(raw, info.name);
      } catch {
        corrupt = true;
      }
    }
    this.#views.set(info.name, { info, ticket, corrupt });
    const before = prev?.ticket ?? null;
    if (ticket === null) return;
    const opened = before === null || before.creationTime !== ticket.creationTime;
    if (opened || before.status !== ticket.status || before.supervisor !== ticket.supervisor) {
      this.#onTicket({
        atMs: this.#clock.now(),
        node: info.name,
        status: ticket.status,
        supervisor: ticket.supervisor,
        condition: ticket.condition,
        opened,
      });
    }
  }

  /** Device and node taints (GPU-level quarantine), passed through. */
  get deviceTaints(): DeviceTaintClient | undefined {
    return this.#inner.deviceTaints;
  }

  async listNodes(signal: AbortSignal): Promise<readonly NodeInfo[]> {
    const nodes = await this.#inner.listNodes(signal);
    for (const n of nodes) this.observe(n);
    return nodes;
  }

  async getNode(name: string, signal: AbortSignal): Promise<NodeInfo> {
    return this.#seen(await this.#inner.getNode(name, signal));
  }

  async setUnschedulable(
    name: string,
    unschedulable: boolean,
    signal: AbortSignal,
  ): Promise<NodeInfo> {
    return this.#seen(await this.#inner.setUnschedulable(name, unschedulable, signal));
  }

  async patchNodeAnnotations(
    name: string,
    annotations: Readonly<Record<string, string | null>>,
    resourceVersion: string,
    signal: AbortSignal,
  ): Promise<NodeInfo> {
    return this.#seen(
      await this.#inner.patchNodeAnnotations(name, annotations, resourceVersion, signal),
    );
  }

  async patchNodeLabels(
    name: string,
    labels: Readonly<Record<string, string | null>>,
    signal: AbortSignal,
  ): Promise<NodeInfo> {
    return this.#seen(await this.#inner.patchNodeLabels(name, labels, signal));
  }

  listPodsOnNode(node: string, signal: AbortSignal): Promise<readonly PodInfo[]> {
    return this.#inner.listPodsOnNode(node, signal);
  }

  evictPod(namespace: string, name: string, signal: AbortSignal): Promise<EvictionResult> {
    return this.#inner.evictPod(namespace, name, signal);
  }

  deletePod(
    namespace: string,
    name: string,
    gracePeriodSeconds: number,
    signal: AbortSignal,
  ): Promise<void> {
    return this.#inner.deletePod(namespace, name, gracePeriodSeconds, signal);
  }

  createJob(request: JobRequest, signal: AbortSignal): Promise<void> {
    return this.#inner.createJob(request, signal);
  }

  getJob(name: string, signal: AbortSignal): Promise<JobState | null> {
    return this.#inner.getJob(name, signal);
  }

  deleteJob(name: string, signal: AbortSignal): Promise<void> {
    return this.#inner.deleteJob(name, signal);
  }

  emitEvent(event: NodeEvent, signal: AbortSignal): Promise<void> {
    return this.#inner.emitEvent(event, signal);
  }

  #seen(info: NodeInfo): NodeInfo {
    this.observe(info);
    return info;
  }
}

/**
 * Forwards queries to `inner`, reporting each (node, condition) a rule returns. A rule the
 * inspector answers from a shared selection (the XID rules: one `DCGM_FI_DEV_XID_ERRORS != 0`
 * query for all of them) is evaluated here over that query's answer, as the inspector does.
 */
export class ObservedMetrics implements MetricsSource {
  readonly #inner: MetricsSource;
  readonly #conditionsOf: ReadonlyMap<string, readonly string[]>;
  readonly #onSeen: (node: string, condition: string, atMs: number) => void;
  readonly #shared: ReadonlyMap<string, SharedGroup>;

  constructor(
    inner: MetricsSource,
    conditionsOf: ReadonlyMap<string, readonly string[]>,
    onSeen: (node: string, condition: string, atMs: number) => void,
    shared: readonly SharedGroup[] = [],
  ) {
    this.#inner = inner;
    this.#conditionsOf = conditionsOf;
    this.#onSeen = onSeen;
    this.#shared = new Map(shared.map((g) => [g.query, g]));
  }

  async query(expr: string, atMs: number, signal: AbortSignal): Promise<readonly InstantSample[]> {
    const samples = await this.#inner.query(expr, atMs, signal);
    const conditions = this.#conditionsOf.get(expr);
    if (conditions !== undefined) this.#seen(samples, conditions, atMs);
    const group = this.#shared.get(expr);
    if (group !== undefined && samples.length > 0) {
      for (const [condition, answer] of answerGroup(group, samples, atMs))
        this.#seen(answer, [condition], atMs);
    }
    return samples;
  }

  #seen(samples: readonly InstantSample[], conditions: readonly string[], atMs: number): void {
    for (const s of samples) {
      const node = s.labels['node'];
      if (node !== undefined) for (const c of conditions) this.#onSeen(node, c, atMs);
    }
  }
}
