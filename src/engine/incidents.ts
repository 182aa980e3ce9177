/**
 * Domain incidents at run time: each cycle's correlation (domains.ts) applied to the cluster. An
 * incident is recorded where operators look — a ConfigMap `aegis-incident-…` in the controller's
 * namespace (`kubectl get cm -l aegis.io/incident`), and a pointer in each member node's ticket
 * (a ticket is opened for a member that has none) — announced once (an Event, a metric; the
 * notifier reads `open`), handed to a human once (the record's supervisor), and ended when the
 * domain recovers: the record says `released`, each member's pointer gets its release time, and
 * the members' held steps go back to their own ladders. Writes that fail are retried on the next
 * cycle; in dry-run nothing is written. docs/failure-domains.md.
 */
import type { Config } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { errorMessage, isHealError, ErrorCode } from '../core/errors.js';
import { TICKET_ANNOTATION, type NodeInfo, type NodeStatus } from '../core/types.js';
import type { ClusterClient, IncidentRecord } from '../k8s/cluster.js';
import type { Metrics } from '../metrics/metrics.js';
import { isAutomationOwned, isOpen, newTicket, type Ticket } from '../ticket/ticket.js';
import { updateTicket } from '../ticket/ticket-store.js';
import { carryOver } from '../ticket/ticket-past.js';
import {
  correlate,
  describeIncident,
  holdingIncident,
  pointerOf,
  restoreIncidents,
  type CorrelationRule,
  type DomainIncident,
  type IncidentPointer,
} from './domains.js';
import type { Logger } from './logger.js';
import { describeDomain, domainKey, TopologyCache } from './topology.js';

/** Label on every incident record (its value is `true`). */
export const INCIDENT_LABEL = 'aegis.io/incident';
/** Most member names an incident record lists (a zone can hold thousands). */
const MAX_LISTED = 2000;

/** What the keeper works with. */
export interface IncidentKeeperDeps {
  readonly cluster: ClusterClient;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly domains: Config['domains'];
  /** Who a domain is handed to (`sop.humanSupervisor`). */
  readonly humanSupervisor: string;
  /** Dry-run: incidents are computed and logged, nothing is written. */
  readonly dryRun: boolean;
  /** True while a step runs on the node: its ticket is not written meanwhile (one writer a node). */
  readonly busy?: (node: string) => boolean;
  /**
   * True for a node nothing may be written for (an observe-only profile, docs/profiles.md): it
   * counts as evidence of the incident, but gets no pointer, no release and no Event.
   */
  readonly readOnly?: (node: string) => boolean;
}

/** Keeps the domain incidents of one leadership. */
export class IncidentKeeper {
  readonly #d: IncidentKeeperDeps;
  readonly #rules: readonly CorrelationRule[];
  readonly #ruleConditions: ReadonlySet<string>;
  readonly #topology: TopologyCache;
  #open: readonly DomainIncident[] = [];
  #restored = false;
  /** Records to write (name -> record), and the last content written of each. */
  readonly #dirty = new Map<string, IncidentRecord>();
  readonly #written = new Map<string, string>();
  readonly #recordInFlight = new Set<string>();
  /** Member pointers written (or not to be written), by incident. */
  readonly #pointed = new Map<string, Set<string>>();
  /** Releases still to write into members' tickets: incident name -> nodes. */
  readonly #toRelease = new Map<string, Set<string>>();
  readonly #ticketInFlight = new Set<string>();

  constructor(deps: IncidentKeeperDeps) {
    this.#d = deps;
    this.#rules = deps.domains.enabled ? deps.domains.rules : [];
    this.#ruleConditions = new Set(this.#rules.flatMap((r) => r.conditions));
    this.#topology = new TopologyCache(deps.domains.labels);
  }

  /** The incidents open now (for the notifier, `kubectl aegis`, tests). */
  get open(): readonly DomainIncident[] {
    return this.#open;
  }

  /** The rules in force. */
  get rules(): readonly CorrelationRule[] {
    return this.#rules;
  }

  /** True while the keeper writes the node's ticket: no step starts on it meanwhile. */
  writing(node: string): boolean {
    return this.#ticketInFlight.has(node);
  }

  /** Forgets everything (leadership lost and regained): the next cycle restores from tickets. */
  reset(): void {
    this.#open = [];
    this.#restored = false;
    this.#dirty.clear();
    this.#written.clear();
    this.#pointed.clear();
    this.#toRelease.clear();
  }

  /**
   * Why the member's step is held, or undefined when it is not: an active member of an open
   * incident, a step its rule does not allow, not the resumption of a step already begun.
   */
  holdOf(node: string, action: string, resumed: boolean): string | undefined {
    if (resumed || this.#open.length === 0) return undefined;
    const i = holdingIncident(this.#open, this.#rules, node, action);
    if (i === undefined) return undefined;
    return `member of domain incident ${i.name} (${describeDomain(i.kind, i.domain)}); held until the domain recovers`;
  }

  /**
   * One cycle: restores the open incidents from the members' tickets on the first, correlates the
   * statuses, and records, announces and ends incidents. Never throws; writes run in the
   * background (each at most once at a time) and are retried next cycle when they fail.
   */
  observe(
    nodes: readonly NodeInfo[],
    statuses: readonly NodeStatus[],
    ticketOf: (n: NodeInfo) => Ticket | null | undefined,
    signal: AbortSignal,
  ): void {
    if (this.#rules.length === 0) return;
    const nowMs = this.#d.clock.now();
    if (!this.#restored) this.#restore(nodes, ticketOf, nowMs);
    const relevant =
      this.#open.length > 0 ||
      statuses.some((s) => s.conditions.some((c) => this.#ruleConditions.has(c.condition)));
    if (relevant) this.#correlate(nodes, statuses, nowMs, signal);
    this.#flush(nodes, statuses, nowMs, signal);
  }

  #correlate(
    nodes: readonly NodeInfo[],
    statuses: readonly NodeStatus[],
    nowMs: number,
    signal: AbortSignal,
  ): void {
    const topo = this.#topology.of(nodes);
    const r = correlate({
      statuses,
      placeOf: (n) => topo.place(n),
      sizeOf: (k, v) => topo.size(k, v),
      rules: this.#rules,
      open: this.#open,
      nowMs,
    });
    this.#open = r.open;
    const m = this.#d.metrics;
    for (const i of r.opened) {
      const rule = this.#rule(i.rule);
      m.domainIncidentsOpened.inc({ kind: i.kind, rule: i.rule });
      this.#d.log.warn('domain incident opened; members held and the domain handed to a human', {
        incident: i.name,
        domain: domainKey(i.kind, i.domain),
        rule: i.rule,
        members: i.members.length,
        supervisor: this.#d.humanSupervisor,
      });
      this.#event(i, 'Warning', 'AegisDomainIncident', this.#summary(i, rule), signal);
    }
    for (const i of r.released) {
      m.domainIncidents.remove({ kind: i.kind, domain: i.domain, rule: i.rule });
      this.#d.log.info('domain incident ended; members back to their own ladders', {
        incident: i.name,
        domain: domainKey(i.kind, i.domain),
        members: i.members.length,
      });
      this.#event(
        i,
        'Normal',
        'AegisDomainIncidentEnded',
        `${i.name}: ${describeDomain(i.kind, i.domain)} recovered; ${String(i.members.length)} member nodes back to their own ladders`,
        signal,
      );
      this.#dirty.set(i.name, this.#record(i));
      this.#toRelease.set(i.name, new Set(i.members));
      this.#pointed.delete(i.name);
    }
    for (const i of r.open) {
      m.domainIncidents.set({ kind: i.kind, domain: i.domain, rule: i.rule }, i.active.length);
      const rec = this.#record(i);
      if (this.#written.get(i.name) !== JSON.stringify(rec)) this.#dirty.set(i.name, rec);
    }
  }

  /** Open incidents from the pointers in open tickets (a restart, leadership regained). */
  #restore(
    nodes: readonly NodeInfo[],
    ticketOf: (n: NodeInfo) => Ticket | null | undefined,
    nowMs: number,
  ): void {
    this.#restored = true;
    const pointers: { node: string; pointer: IncidentPointer }[] = [];
    for (const n of nodes) {
      if (!(TICKET_ANNOTATION in n.annotations)) continue;
      const t = ticketOf(n);
      if (t === undefined || t === null || !isOpen(t) || t.incident === undefined) continue;
      if (!isAutomationOwned(t)) continue; // a human's ticket: the human decides
      pointers.push({ node: n.name, pointer: t.incident });
    }
    if (pointers.length === 0) return;
    this.#open = restoreIncidents(pointers, nowMs);
    for (const i of this.#open) this.#pointed.set(i.name, new Set(i.members));
    if (this.#open.length > 0)
      this.#d.log.info('domain incidents restored from tickets', {
        incidents: this.#open.map((i) => i.name),
      });
  }

  /** Starts the writes still owed: records, member pointers, releases. */
  #flush(
    nodes: readonly NodeInfo[],
    statuses: readonly NodeStatus[],
    nowMs: number,
    signal: AbortSignal,
  ): void {
    if (this.#d.dryRun) {
      this.#dirty.clear();
      this.#toRelease.clear();
      return;
    }
    if (this.#dirty.size === 0 && this.#open.length === 0 && this.#toRelease.size === 0) return;
    for (const [name, rec] of this.#dirty) this.#writeRecord(name, rec, signal);
    const present = new Set(nodes.map((n) => n.name));
    let byNode: Map<string, NodeStatus> | undefined;
    for (const i of this.#open) {
      let done = this.#pointed.get(i.name);
      if (done === undefined) this.#pointed.set(i.name, (done = new Set()));
      for (const node of i.active) {
        if (done.has(node) || this.#ticketInFlight.has(node) || !present.has(node)) continue;
        if (this.#d.busy?.(node) === true || this.#d.readOnly?.(node) === true) continue;
        byNode ??= new Map(statuses.map((s) => [s.node, s]));
        const condition = conditionOf(byNode.get(node), this.#rule(i.rule));
        this.#writePointer(i, node, condition, nowMs, signal);
      }
    }
    for (const [name, left] of this.#toRelease) {
      for (const node of left) {
        if (this.#ticketInFlight.has(node) || this.#d.busy?.(node) === true) continue;
        if (this.#d.readOnly?.(node) === true) {
          left.delete(node);
          continue;
        }
        if (!present.has(node)) {
          left.delete(node);
          continue;
        }
        this.#writeRelease(name, node, nowMs, signal);
      }
      if (left.size === 0) this.#toRelease.delete(name);
    }
  }

  #writeRecord(name: string, rec: IncidentRecord, signal: AbortSignal): void {
    const write = this.#d.cluster.writeIncident?.bind(this.#d.cluster);
    if (write === undefined) {
      this.#dirty.delete(name);
      return;
    }
    if (this.#recordInFlight.has(name)) return;
    this.#recordInFlight.add(name);
    this.#dirty.delete(name);
    const text = JSON.stringify(rec);
    write(rec, signal)
      .then(() => {
        this.#written.set(name, text);
      })
      .catch((err: unknown) => {
        if (!this.#dirty.has(name)) this.#dirty.set(name, rec);
        this.#d.metrics.errors.inc({ where: 'incident' });
        this.#d.log.warn('incident record not written; retried next cycle', {
          incident: name,
          err: errorMessage(err),
        });
      })
      .finally(() => this.#recordInFlight.delete(name));
  }

  /** Points the member's ticket at the incident (opening a ticket when it has no open one). */
  #writePointer(
    i: DomainIncident,
    node: string,
    condition: string,
    nowMs: number,
    signal: AbortSignal,
  ): void {
    const pointer = pointerOf(i);
    const now = new Date(nowMs).toISOString();
    const summary = this.#summary(i, this.#rule(i.rule));
    this.#ticketWrite(
      node,
      (t) => {
        if (t !== null && isOpen(t)) {
          // A human owns it: the human decides; nothing is written.
          if (!isAutomationOwned(t)) return undefined;
          if (t.incident?.name === i.name && t.incident.released === undefined) return undefined;
          return { ...t, incident: pointer, updateTime: now };
        }
        const fresh = newTicket({
          condition,
          reason: `member of domain incident ${i.name}: ${summary}`.slice(0, 300),
          nowMs,
        });
        return {
          // As a ticket the runner opens: sequence numbers, remediations and history carry over.
          ...carryOver(t, fresh),
          conditions: [condition],
          incident: pointer,
          updateTime: now,
        };
      },
      () => this.#pointed.get(i.name)?.add(node),
      signal,
    );
  }

  #writeRelease(name: string, node: string, nowMs: number, signal: AbortSignal): void {
    const released = new Date(nowMs).toISOString();
    this.#ticketWrite(
      node,
      (t) => {
        if (t === null || t.incident?.name !== name || t.incident.released !== undefined)
          return undefined;
        if (!isAutomationOwned(t)) return undefined; // a human's ticket is left as it is
        return { ...t, incident: { ...t.incident, released }, updateTime: released };
      },
      () => this.#toRelease.get(name)?.delete(node),
      signal,
    );
  }

  /** One ticket write at a time per node; `done` when written or nothing is to be written. */
  #ticketWrite(
    node: string,
    change: (t: Ticket | null) => Ticket | undefined,
    done: () => void,
    signal: AbortSignal,
  ): void {
    this.#ticketInFlight.add(node);
    updateTicket(this.#d, node, change, signal)
      .then(done)
      .catch((err: unknown) => {
        // A corrupt ticket is reported where it is read, never overwritten: nothing to retry.
        if (isHealError(err, ErrorCode.TicketCorrupt)) done();
        this.#d.metrics.errors.inc({ where: 'ticket' });
        this.#d.log.warn('incident pointer not written in the ticket', {
          node,
          err: errorMessage(err),
        });
      })
      .finally(() => this.#ticketInFlight.delete(node));
  }

  #event(
    i: DomainIncident,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    signal: AbortSignal,
  ): void {
    const node = i.members.find((n) => this.#d.readOnly?.(n) !== true);
    if (this.#d.dryRun || node === undefined) return;
    this.#d.cluster
      .emitEvent({ node, type, reason, message: message.slice(0, 1000) }, signal)
      .catch((err: unknown) => {
        this.#d.metrics.errors.inc({ where: 'event' });
        this.#d.log.warn('event not recorded', { node, err: errorMessage(err) });
      });
  }

  #rule(name: string): CorrelationRule | undefined {
    return this.#rules.find((r) => r.name === name);
  }

  #summary(i: DomainIncident, rule: CorrelationRule | undefined): string {
    const allowed = rule?.allow.join(', ') ?? 'nothing';
    return `${i.name}: ${describeIncident(i, rule)}; members' steps other than ${allowed} held; handed to ${this.#d.humanSupervisor}`;
  }

  /** The ConfigMap of an incident. */
  #record(i: DomainIncident): IncidentRecord {
    const rule = this.#rule(i.rule);
    const list = (names: readonly string[]): string =>
      names.length <= MAX_LISTED
        ? names.join('\n')
        : `${names.slice(0, MAX_LISTED).join('\n')}\n… and ${String(names.length - MAX_LISTED)} more`;
    const status = i.releasedAtMs === undefined ? 'open' : 'released';
    return {
      name: i.name,
      labels: {
        'app.kubernetes.io/part-of': 'aegis',
        [INCIDENT_LABEL]: 'true',
        'aegis.io/status': status,
        'aegis.io/domain-kind': i.kind,
        'aegis.io/domain': i.domain,
        'aegis.io/rule': i.rule,
      },
      data: {
        summary: describeIncident(i, rule),
        status,
        domain: domainKey(i.kind, i.domain),
        rule: i.rule,
        supervisor: this.#d.humanSupervisor,
        started: new Date(i.startMs).toISOString(),
        opened: new Date(i.openedAtMs).toISOString(),
        ...(i.releasedAtMs === undefined
          ? {}
          : { released: new Date(i.releasedAtMs).toISOString() }),
        held: `every step of an active member but ${rule?.allow.join(', ') ?? 'none'}`,
        conditions: i.conditions.join(', '),
        members: list(i.members),
        active: list(i.active),
      },
    };
  }
}

/** The node's first active condition the rule counts (the condition of a ticket opened for it). */
function conditionOf(st: NodeStatus | undefined, rule: CorrelationRule | undefined): string {
  const c = st?.conditions.find((x) => rule?.conditions.includes(x.condition) === true);
  return c?.condition ?? rule?.conditions[0] ?? 'DomainIncident';
}
