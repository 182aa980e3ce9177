/**
 * What `kubectl aegis` reads out of the cluster, as plain data: each node's state, the fleet
 * summary (`status`) and the explanation of one node (`explain`). Pure functions over the nodes,
 * their tickets, the aegis-control ConfigMap and the controller's config and priority table as far
 * as the caller may read them; the commands only fetch and print.
 */
import { findCondition } from '../catalogue/index.js';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../core/errors.js';
import { DISABLE_LABEL, PAUSE_ANNOTATION, type NodeInfo } from '../core/types.js';
import { stormLimit } from '../engine/safety.js';
import { describeDomain, parseDomainKey } from '../engine/topology.js';
import { shortTime } from './format.js';
import { bucketOf, type Bucket, type PriorityTable } from '../priority/priority-table.js';
import { BUILTIN_SOP_IDS, isBuiltinSopId } from '../sop/ids.js';
import { readTicket } from '../ticket/ticket-store.js';
import { AEGIS_SUPERVISOR, isOpen, type Ticket, type Workflow } from '../ticket/ticket.js';

/** One state per node, the first that applies in this order. */
export const NODE_STATES = [
  'TicketCorrupt',
  'OptedOut',
  'Paused',
  'Human',
  'CordonedByAegis',
  'Faulty',
  'LeftCordoned',
  'CordonedByHand',
  'Healthy',
] as const;
export type NodeState = (typeof NODE_STATES)[number];

/** What each state means, for `status` and the docs. */
export const NODE_STATE_TEXT: Readonly<Record<NodeState, string>> = {
  TicketCorrupt: 'ticket annotation unreadable: Aegis leaves the node alone until it is repaired',
  OptedOut: `labelled ${DISABLE_LABEL}=true: Aegis never acts on it`,
  Paused: `annotated ${PAUSE_ANNOTATION}=true: Aegis takes no step on it`,
  Human: 'open ticket owned by a human (handed off or taken over)',
  CordonedByAegis: 'open ticket, cordoned by Aegis',
  Faulty: 'open ticket owned by Aegis, not cordoned',
  LeftCordoned: 'cordoned by Aegis, its ticket closed by a human: uncordon by hand when fit',
  CordonedByHand: 'cordoned, not by Aegis',
  Healthy: 'no open ticket, schedulable',
};

/** A node with its ticket read (or why it could not be). */
export interface NodeView {
  readonly node: NodeInfo;
  readonly ticket: Ticket | null;
  /** Why the ticket annotation cannot be read (TICKET_CORRUPT), when it cannot. */
  readonly corrupt?: string;
  readonly state: NodeState;
}

/** Reads a node's ticket and classifies the node. */
export function viewNode(node: NodeInfo): NodeView {
  let ticket: Ticket | null = null;
  let corrupt: string | undefined;
  try {
    ticket = readTicket(node);
  } catch (err) {
    // The first line: a YAML error goes on with a code frame of the annotation.
    corrupt = errorMessage(err).split('\n')[0]?.replace(/:$/, '') ?? '';
  }
  const open = ticket !== null && isOpen(ticket) ? ticket : null;
  const state: NodeState =
    corrupt !== undefined
      ? 'TicketCorrupt'
      : node.labels[DISABLE_LABEL] === 'true'
        ? 'OptedOut'
        : node.annotations[PAUSE_ANNOTATION] === 'true'
          ? 'Paused'
          : open !== null && !isAegis(open.supervisor)
            ? 'Human'
            : open !== null && open.cordonedByAegis && node.unschedulable
              ? 'CordonedByAegis'
              : open !== null
                ? 'Faulty'
                : node.unschedulable && ticket?.cordonedByAegis === true
                  ? 'LeftCordoned'
                  : node.unschedulable
                    ? 'CordonedByHand'
                    : 'Healthy';
  return { node, ticket, ...(corrupt === undefined ? {} : { corrupt }), state };
}

/** True when the supervisor value means automation. */
export function isAegis(supervisor: string): boolean {
  return supervisor === '' || supervisor === AEGIS_SUPERVISOR;
}

/** A Held entry's gate and reason (`<gate>: <reason>`). */
export function parseHold(w: Workflow): { gate: string; reason: string } | undefined {
  if (w.status !== 'Held') return undefined;
  const text = w.message ?? '';
  const at = text.indexOf(': ');
  return at < 0
    ? { gate: text, reason: '' }
    : { gate: text.slice(0, at), reason: text.slice(at + 2) };
}

/** The fleet-wide controls (ConfigMap aegis-control). */
export interface Controls {
  readonly paused: boolean;
  readonly pausedBy?: string;
  readonly pausedAt?: string;
  readonly breakerResetAt?: string;
  readonly breakerResetBy?: string;
}

/** aegis-control's data as Controls. */
export function toControls(data: Readonly<Record<string, string>> | null): Controls {
  const d = data ?? {};
  const opt = (key: string): Record<string, string> => {
    const v = d[key];
    return v === undefined || v === '' ? {} : { [key]: v };
  };
  return {
    paused: d['paused'] === 'true',
    ...opt('pausedBy'),
    ...opt('pausedAt'),
    ...opt('breakerResetAt'),
    ...opt('breakerResetBy'),
  };
}

/** Something read from the cluster, or the fallback used and why. */
export interface Sourced<T> {
  readonly value: T;
  /** Where it came from, e.g. `ConfigMap monitoring/aegis-config` or `defaults (…)`. */
  readonly source: string;
  /** True when read from the cluster (not a fallback). */
  readonly fromCluster: boolean;
}

/** The controller's leader, as its Lease says. */
export interface Leader {
  readonly holder?: string;
  readonly renewedAgoMs?: number;
  /** True when the lease expired (no replica renewed it within its duration). */
  readonly expired?: boolean;
  /** Why it is unknown. */
  readonly unknown?: string;
}

/** Everything besides the nodes that `status` and `explain` read. */
export interface SiteContext {
  readonly namespace: string;
  readonly config: Sourced<Config>;
  readonly priority: Sourced<PriorityTable>;
  readonly controls: Sourced<Controls>;
  readonly leader: Leader;
  readonly nowMs: number;
}

/** One condition as a ticket records it, with its priority and SOP. */
export interface ConditionView {
  /** As recorded: `Name` or `Name/device`. */
  readonly recorded: string;
  readonly name: string;
  readonly device?: string;
  readonly known: boolean;
  readonly priority?: number;
  readonly bucket?: Bucket;
  readonly domain?: string;
  readonly sop?: string | null;
  /** True for the condition the ticket serves now. */
  readonly served: boolean;
}

/** A recorded condition with its priority (from the table in force) and catalogue data. */
export function conditionView(
  recorded: string,
  table: PriorityTable,
  served: string | undefined,
): ConditionView {
  const slash = recorded.indexOf('/');
  const name = slash < 0 ? recorded : recorded.slice(0, slash);
  const device = slash < 0 ? undefined : recorded.slice(slash + 1);
  const entry = findCondition(name);
  const canonical = entry?.name ?? name;
  const servedName = served === undefined ? undefined : (findCondition(served)?.name ?? served);
  const isServed = servedName === canonical;
  if (entry === undefined) {
    return {
      recorded,
      name,
      ...(device === undefined ? {} : { device }),
      known: false,
      served: isServed,
    };
  }
  const priority = table.get(entry.name)?.priority ?? entry.priority;
  return {
    recorded,
    name: entry.name,
    ...(device === undefined ? {} : { device }),
    known: true,
    priority,
    bucket: bucketOf(priority),
    domain: entry.domain,
    sop: entry.sop,
    served: isServed,
  };
}

/** A step in the fleet summary. */
export interface StepRef {
  readonly node: string;
  readonly action: string;
  readonly since?: string;
  readonly gate?: string;
  readonly reason?: string;
}

/** `status` as data (also its -o json|yaml). */
export interface FleetSummary {
  readonly context: string;
  readonly server: string;
  readonly namespace: string;
  readonly controller: Leader;
  readonly dryRun: { readonly value: boolean; readonly source: string };
  readonly automation: {
    readonly paused: boolean;
    readonly pausedBy?: string;
    readonly pausedAt?: string;
    /** `safety.paused` in the config (a paused config is not an operator's pause). */
    readonly pausedByConfig: boolean;
  };
  readonly nodes: {
    readonly total: number;
    readonly notReady: readonly string[];
    readonly byState: Readonly<Record<NodeState, readonly string[]>>;
  };
  readonly tickets: {
    readonly open: number;
    readonly byStatus: Readonly<Record<string, number>>;
    readonly byCondition: readonly {
      readonly condition: string;
      readonly bucket?: Bucket;
      readonly priority?: number;
      readonly count: number;
    }[];
    readonly corrupt: readonly string[];
  };
  readonly steps: {
    readonly running: readonly StepRef[];
    readonly held: readonly StepRef[];
    readonly approvalsPending: readonly StepRef[];
  };
  readonly breaker: {
    /** Nodes whose next step the storm breaker holds (Held entries after the last reset). */
    readonly holding: readonly StepRef[];
    readonly resetAt?: string;
    readonly resetBy?: string;
    readonly limit: number;
    readonly windowMs: number;
  };
  readonly cordonBudget: {
    readonly used: number;
    readonly budget: number;
    readonly eligible: number;
    readonly fraction: number;
    readonly holding: readonly StepRef[];
  };
  readonly configSource: string;
}

/** The fleet summary from every node and the site context. */
export function summarise(
  views: readonly NodeView[],
  site: SiteContext,
  where: { context: string; server: string },
): FleetSummary {
  const cfg = site.config.value;
  const byState = Object.fromEntries(NODE_STATES.map((s) => [s, [] as string[]])) as Record<
    NodeState,
    string[]
  >;
  const byStatus: Record<string, number> = {};
  const byCondition = new Map<string, number>();
  const running: StepRef[] = [];
  const held: StepRef[] = [];
  const approvals: StepRef[] = [];
  const notReady: string[] = [];
  const corrupt: string[] = [];
  let open = 0;
  let eligible = 0;
  let cordonedByAegis = 0;
  const resetAtMs = Date.parse(site.controls.value.breakerResetAt ?? '');
  for (const v of views) {
    const name = v.node.name;
    byState[v.state].push(name);
    if (v.node.ready !== true) notReady.push(name);
    if (v.node.labels[DISABLE_LABEL] !== 'true') {
      eligible++;
      if (v.node.unschedulable && v.ticket !== null && isOpen(v.ticket) && v.ticket.cordonedByAegis)
        cordonedByAegis++;
    }
    if (v.corrupt !== undefined) corrupt.push(name);
    const t = v.ticket;
    if (t === null || !isOpen(t)) continue;
    open++;
    byStatus[t.status] = (byStatus[t.status] ?? 0) + 1;
    const cond = findCondition(t.condition)?.name ?? t.condition;
    byCondition.set(cond, (byCondition.get(cond) ?? 0) + 1);
    for (const w of t.workflows) {
      if (w.status === 'Running')
        running.push({
          node: name,
          action: w.action,
          ...(w.time === undefined ? {} : { since: w.time }),
        });
    }
    const last = t.workflows.at(-1);
    const hold = last === undefined ? undefined : parseHold(last);
    if (last !== undefined && hold !== undefined) {
      held.push({
        node: name,
        action: last.action,
        gate: hold.gate,
        reason: hold.reason,
        ...(last.time === undefined ? {} : { since: last.time }),
      });
    }
    if (t.approval?.state === 'pending') {
      approvals.push({
        node: name,
        action: t.approval.action,
        since: t.approval.requestedAt,
        ...(t.approval.reason === undefined ? {} : { reason: t.approval.reason }),
      });
    }
  }
  const breakerHolding = held.filter(
    (h) =>
      h.gate === 'storm-breaker' &&
      (Number.isNaN(resetAtMs) || h.since === undefined || Date.parse(h.since) > resetAtMs),
  );
  const fraction = cfg.safety.maxCordonedFraction;
  const controls = site.controls.value;
  return {
    context: where.context,
    server: where.server,
    namespace: site.namespace,
    controller: site.leader,
    dryRun: { value: cfg.safety.dryRun, source: site.config.source },
    automation: {
      paused: controls.paused || cfg.safety.paused,
      ...(controls.pausedBy === undefined ? {} : { pausedBy: controls.pausedBy }),
      ...(controls.pausedAt === undefined ? {} : { pausedAt: controls.pausedAt }),
      pausedByConfig: cfg.safety.paused,
    },
    nodes: { total: views.length, notReady, byState },
    tickets: {
      open,
      byStatus,
      byCondition: [...byCondition]
        .map(([condition, count]) => {
          const p =
            site.priority.value.get(condition)?.priority ?? findCondition(condition)?.priority;
          return {
            condition,
            ...(p === undefined ? {} : { priority: p, bucket: bucketOf(p) }),
            count,
          };
        })
        .sort(
          (a, b) =>
            (a.priority ?? Infinity) - (b.priority ?? Infinity) ||
            a.condition.localeCompare(b.condition),
        ),
      corrupt,
    },
    steps: { running, held, approvalsPending: approvals },
    breaker: {
      holding: breakerHolding,
      ...(controls.breakerResetAt === undefined ? {} : { resetAt: controls.breakerResetAt }),
      ...(controls.breakerResetBy === undefined ? {} : { resetBy: controls.breakerResetBy }),
      limit: stormLimit(cfg.safety, eligible),
      windowMs: cfg.safety.stormWindowMs,
    },
    cordonBudget: {
      used: cordonedByAegis,
      budget: Math.max(1, Math.floor(fraction * eligible)),
      eligible,
      fraction,
      holding: held.filter((h) => h.gate === 'cordon-budget'),
    },
    configSource: site.config.source,
  };
}

/** What holds a node's next step, with what to do about it. */
export const GATE_TEXT: Readonly<Record<string, string>> = {
  paused: 'automation is paused fleet-wide (kubectl aegis resume, or safety.paused in the config)',
  'node-paused': `the node carries ${PAUSE_ANNOTATION}=true (kubectl aegis resume NODE)`,
  'storm-breaker':
    'the storm breaker tripped: too many nodes failed at once (kubectl aegis breaker reset once the cause is understood)',
  'cordon-budget':
    'the cordon budget (safety.maxCordonedFraction of eligible nodes) is used up by nodes Aegis cordoned',
  concurrency:
    'too many steps of this kind are in flight (safety.maxConcurrent); it runs when one ends',
  'rack-cap': 'another disruptive step runs in the same rack (safety.maxPerRack)',
  'leaf-cap': 'other disruptive steps run under the same leaf switch (safety.maxPerLeaf)',
  'node-cooldown': 'the node was remediated recently (safety.nodeCooldownMs)',
  approval: "the step needs an operator's approval (kubectl aegis approve NODE, or dismiss NODE)",
  'stale-signal': 'the metrics behind the decision are stale: no step runs on stale data',
  'domain-incident':
    'the node is an active member of a domain incident (kubectl aegis incidents): its steps wait until the domain recovers; a human has the domain',
  'level-limit':
    'its domain has as many nodes out of service as its level limit allows (safety.levelLimits)',
  'human-released':
    'someone uncordoned the node after Aegis cordoned it: Aegis does not cordon it again',
};

/** `explain NODE` as data (also its -o json|yaml). */
export interface Explanation {
  readonly node: string;
  readonly state: NodeState;
  readonly stateText: string;
  readonly ready: boolean | 'Unknown';
  readonly unschedulable: boolean;
  readonly paused: boolean;
  readonly fleetPaused: boolean;
  readonly optedOut: boolean;
  readonly supervisor?: string;
  readonly ticket?: {
    readonly status: string;
    readonly condition: string;
    readonly reason: string;
    readonly creationTime: string;
    readonly cordonedByAegis: boolean;
  };
  readonly corrupt?: string;
  readonly conditions: readonly ConditionView[];
  readonly prioritySource: string;
  readonly nodeConditions: readonly { type: string; reason: string; message?: string }[];
  readonly sop?: { readonly id: string; readonly description?: string };
  readonly lastStep?: Workflow;
  readonly running?: Workflow;
  readonly hold?: { readonly gate: string; readonly reason: string; readonly since?: string };
  readonly approval?: NonNullable<Ticket['approval']>;
  /** The domain incident the node's ticket points at (docs/failure-domains.md). */
  readonly incident?: NonNullable<Ticket['incident']>;
  /** The node-group behaviour profile its last step was decided under (docs/profiles.md). */
  readonly profile?: string;
  /** Sentences, most important first. */
  readonly why: readonly string[];
}

/** Why the node is in its state, from its ticket, annotations and the fleet controls. */
export function explain(view: NodeView, site: SiteContext): Explanation {
  const { node, ticket } = view;
  const table = site.priority.value;
  const open = ticket !== null && isOpen(ticket) ? ticket : null;
  const paused = node.annotations[PAUSE_ANNOTATION] === 'true';
  const optedOut = node.labels[DISABLE_LABEL] === 'true';
  const controls = site.controls.value;
  const fleetPaused = controls.paused || site.config.value.safety.paused;
  const recorded =
    open === null ? [] : open.conditions.length > 0 ? open.conditions : [open.condition];
  const conditions = recorded
    .map((c) => conditionView(c, table, open?.condition))
    .sort((a, b) => (a.priority ?? Infinity) - (b.priority ?? Infinity));
  if (open !== null && !conditions.some((c) => c.served)) {
    conditions.unshift(conditionView(open.condition, table, open.condition));
  }
  const served = conditions.find((c) => c.served);
  const sopId = served?.sop ?? undefined;
  const last = open?.workflows.at(-1);
  const running = open?.workflows.find((w) => w.status === 'Running');
  const holdParts = last === undefined ? undefined : parseHold(last);
  const hold =
    holdParts === undefined
      ? undefined
      : { ...holdParts, ...(last?.time === undefined ? {} : { since: last.time }) };
  const why: string[] = [];
  if (view.corrupt !== undefined) {
    why.push(
      `The ticket annotation cannot be read (${view.corrupt}). Aegis never overwrites it and leaves the node alone: repair or remove it by hand.`,
    );
  }
  if (optedOut) why.push(`The node is labelled ${DISABLE_LABEL}=true: Aegis never acts on it.`);
  if (paused)
    why.push(
      `The node is paused (${PAUSE_ANNOTATION}=true): Aegis takes no step on it until kubectl aegis resume ${node.name}.`,
    );
  if (fleetPaused) {
    why.push(
      controls.paused
        ? `Automation is paused fleet-wide by ${controls.pausedBy ?? 'an operator'}${controls.pausedAt === undefined ? '' : ` since ${shortTime(controls.pausedAt)}`} (kubectl aegis resume).`
        : 'Automation is paused fleet-wide by the config (safety.paused).',
    );
  }
  if (open !== null && !isAegis(open.supervisor)) {
    why.push(
      `The ticket is owned by ${open.supervisor}${open.whySRE === undefined ? '' : ` (handed off: ${open.whySRE})`}: Aegis does nothing on this node until kubectl aegis release ${node.name} or ack ${node.name}.`,
    );
  }
  if (open?.approval?.state === 'pending') {
    why.push(
      `${open.approval.action} waits for approval since ${shortTime(open.approval.requestedAt)}: kubectl aegis approve ${node.name} (or dismiss ${node.name} to hand the node to a human).`,
    );
  }
  const incident = ticket?.incident;
  if (incident !== undefined && open !== null) {
    why.push(
      incident.released === undefined
        ? `The node is a member of domain incident ${incident.name} (${describeIncidentDomain(incident.domain)}, rule ${incident.rule}) since ${shortTime(incident.since)}: steps the rule does not allow wait until the domain recovers, and the domain is handed to a human once (kubectl aegis incidents).`
        : `The node was a member of domain incident ${incident.name} (${describeIncidentDomain(incident.domain)}), released at ${shortTime(incident.released)}: it is back on its own ladder.`,
    );
  }
  if (running !== undefined) {
    why.push(
      `${running.action}${running.seq === undefined ? '' : ` #${running.seq}`} is running since ${shortTime(running.time)}${running.message === undefined ? '' : `: ${running.message}`}.`,
    );
  } else if (
    hold !== undefined &&
    last !== undefined &&
    !(hold.gate === 'approval' && open?.approval?.state === 'pending')
  ) {
    const text = GATE_TEXT[hold.gate];
    why.push(
      `The next step, ${last.action}, is held by ${hold.gate}${hold.reason === '' ? '' : ` (${hold.reason})`}${hold.since === undefined ? '' : ` since ${shortTime(hold.since)}`}${text === undefined ? '' : `: ${text}`}.`,
    );
  }
  if (open !== null && served !== undefined) {
    why.push(
      `It serves ${served.recorded}${served.priority === undefined ? '' : ` (priority ${served.priority}, ${served.bucket ?? ''})`}${sopId === undefined ? '' : ` with SOP ${sopId}`}${conditions.length > 1 ? `, the most urgent of ${conditions.length} active conditions` : ''}.`,
    );
  }
  if (open === null && view.corrupt === undefined && view.state !== 'LeftCordoned') {
    why.push(
      node.unschedulable
        ? 'The node is cordoned, not by Aegis (no open ticket): someone ran kubectl cordon; Aegis leaves it as it is.'
        : 'No open ticket: Aegis sees nothing wrong with this node.',
    );
  }
  if (ticket !== null && open === null && ticket.cordonedByAegis && node.unschedulable) {
    why.push(
      `Aegis cordoned the node and the ticket was ${ticket.status}${ticket.conclusion === undefined ? '' : ` (${ticket.conclusion})`}: Aegis no longer uncordons it; kubectl uncordon ${node.name} when the node is fit.`,
    );
  }
  if (open?.cordonedByAegis === true && node.unschedulable) {
    why.push(
      'Aegis cordoned the node; it uncordons it once the condition clears and a health check passes.',
    );
  }
  const nodeConditions = (node.conditions ?? [])
    .filter((c) => c.status === 'True')
    .map((c) => ({
      type: c.type,
      reason: c.reason,
      ...(c.message === undefined ? {} : { message: c.message }),
    }));
  return {
    node: node.name,
    state: view.state,
    stateText: NODE_STATE_TEXT[view.state],
    ready: node.ready,
    unschedulable: node.unschedulable,
    paused,
    fleetPaused,
    optedOut,
    ...(ticket === null ? {} : { supervisor: ticket.supervisor }),
    ...(ticket === null
      ? {}
      : {
          ticket: {
            status: ticket.status,
            condition: ticket.condition,
            reason: ticket.reason,
            creationTime: ticket.creationTime,
            cordonedByAegis: ticket.cordonedByAegis,
          },
        }),
    ...(view.corrupt === undefined ? {} : { corrupt: view.corrupt }),
    conditions,
    prioritySource: site.priority.source,
    nodeConditions,
    ...(sopId === undefined
      ? {}
      : {
          sop: {
            id: sopId,
            ...(isBuiltinSopId(sopId) ? { description: BUILTIN_SOP_IDS[sopId] } : {}),
          },
        }),
    ...(last === undefined ? {} : { lastStep: last }),
    ...(running === undefined ? {} : { running }),
    ...(hold === undefined ? {} : { hold }),
    ...(open?.approval === undefined ? {} : { approval: open.approval }),
    ...(ticket?.incident === undefined ? {} : { incident: ticket.incident }),
    ...(last?.profile === undefined ? {} : { profile: last.profile }),
    why,
  };
}

/** `leaf/leaf-002` as words: `leaf switch leaf-002`. */
export function describeIncidentDomain(key: string): string {
  const d = parseDomainKey(key);
  return d === undefined ? key : describeDomain(d.kind, d.value);
}

/** One domain incident as the members' tickets point at it (`kubectl aegis incidents`). */
export interface IncidentView {
  readonly name: string;
  /** `leaf/leaf-002`. */
  readonly domain: string;
  readonly rule: string;
  /** `open` while a member's pointer is not released, else `released`. */
  readonly status: 'open' | 'released';
  /** The earliest `since` of the pointers. */
  readonly since: string;
  /** The latest release time, once released. */
  readonly released?: string;
  /** Every node whose ticket points at it. */
  readonly members: readonly string[];
  /** Members held now: an open ticket whose pointer is not released. */
  readonly held: readonly string[];
  /** The record's summary, when the ConfigMap could be read. */
  readonly summary?: string;
}

/**
 * The domain incidents the nodes' tickets point at, open first, then by start. Built from the
 * pointers alone (nodes are what an operator may list; the records are ConfigMaps the viewer role
 * may not read), so it shows what the daemon restores after a restart.
 */
export function incidentsOf(views: readonly NodeView[]): IncidentView[] {
  const by = new Map<
    string,
    { p: NonNullable<Ticket['incident']>; members: string[]; held: string[]; released: string[] }
  >();
  for (const v of views) {
    const p = v.ticket?.incident;
    if (v.ticket === null || p === undefined) continue;
    let e = by.get(p.name);
    if (e === undefined) by.set(p.name, (e = { p, members: [], held: [], released: [] }));
    if (Date.parse(p.since) < Date.parse(e.p.since)) e.p = { ...e.p, since: p.since };
    e.members.push(v.node.name);
    if (p.released === undefined && isOpen(v.ticket)) e.held.push(v.node.name);
    if (p.released !== undefined) e.released.push(p.released);
  }
  const out: IncidentView[] = [...by.values()].map((e) => {
    const open = e.held.length > 0 || e.released.length < e.members.length;
    const released = e.released.sort().at(-1);
    return {
      name: e.p.name,
      domain: e.p.domain,
      rule: e.p.rule,
      status: open ? 'open' : 'released',
      since: e.p.since,
      ...(open || released === undefined ? {} : { released }),
      members: e.members.sort(),
      held: e.held.sort(),
    };
  });
  return out.sort(
    (a, b) =>
      (a.status === b.status ? 0 : a.status === 'open' ? -1 : 1) ||
      Date.parse(a.since) - Date.parse(b.since) ||
      a.name.localeCompare(b.name),
  );
}
