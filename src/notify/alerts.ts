import { LEAF_LABEL, RACK_LABEL, TICKET_ANNOTATION, type NodeInfo } from '../core/types.js';
import { AEGIS_SUPERVISOR, countSteps, isOpen, StepStatus, type Ticket } from '../ticket/ticket.js';

/**
 * The alerts Aegis wants a human to see, computed from what the controller knows at the end of a
 * cycle. Pure: a snapshot in, a list of alerts out, no clock and no I/O. The poster
 * (alertmanager.ts) turns the difference between two lists into Alertmanager posts: an alert in the
 * list is firing (refreshed), one that left the list is resolved. An alert is identified by its
 * labels, so labels carry only what stays the same while the state lasts.
 */

/** The alert names (Prometheus style; routing in Alertmanager keys on them). */
export const AlertName = {
  HandedToHuman: 'AegisHandedToHuman',
  BudgetExhausted: 'AegisBudgetExhausted',
  StormBreakerOpen: 'AegisStormBreakerOpen',
  ApprovalPending: 'AegisApprovalPending',
  TicketCorrupt: 'AegisTicketCorrupt',
  SignalStale: 'AegisSignalStale',
} as const;
export type AlertName = (typeof AlertName)[keyof typeof AlertName];

/** Zone label of a node (well-known Kubernetes topology label). */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** Where a node sits, from its topology labels (absent when the node has no such label). */
export interface NodeTopology {
  readonly rack?: string;
  readonly leafSwitch?: string;
  readonly zone?: string;
}

/** The gate that held a node's next step in this cycle. */
export interface NodeHold {
  readonly gate: string;
  readonly action: string;
  readonly reason: string;
}

/** One node the alerts look at: nodes with a ticket annotation, or a step held this cycle. */
export interface SnapshotNode {
  readonly name: string;
  readonly topology: NodeTopology;
  /** The node's ticket (null: none, or unreadable: see `corrupt`). */
  readonly ticket: Ticket | null;
  /** Why the ticket annotation is unreadable (the TICKET_CORRUPT message); absent when readable. */
  readonly corrupt?: string;
  /** The gate that held the node's next step this cycle, if one did. */
  readonly hold?: NodeHold;
}

/** What the controller knows of the fleet at the end of one cycle. */
export interface FleetSnapshot {
  readonly atMs: number;
  /** Nodes in the cluster (the stale-signal threshold is a fraction of it). */
  readonly fleetSize: number;
  readonly nodes: readonly SnapshotNode[];
  readonly breaker: { readonly open: boolean; readonly trippedAtMs?: number };
  /** Signal (exporter) -> nodes on which it is stale or missing this cycle. */
  readonly staleSignals: Readonly<Record<string, number>>;
  /** Nodes with a stale or missing signal this cycle (the console's "stale data" cells). */
  readonly staleNodes?: readonly string[];
}

/** One desired alert: firing while it is in the list. */
export interface Alert {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** When the state began (from the ticket); the poster uses the first time it saw it otherwise. */
  readonly startsAtMs?: number;
}

/** How alerts are built (from `notify.alertmanager` and the catalogue). */
export interface AlertRules {
  /** Added as label `cluster` to every alert (config `clusterName`). */
  readonly clusterName?: string;
  /** A signal stale on at least this many nodes… */
  readonly staleSignalMinNodes: number;
  /** …and on at least this fraction of the fleet raises AegisSignalStale. */
  readonly staleSignalMinFraction: number;
  /** Domain of a condition (the catalogue's), for the `domain` label. */
  readonly domainOf?: (condition: string) => string | undefined;
  /** SOP serving a condition (the registry's), for the `sop` label. */
  readonly sopOf?: (condition: string) => string | undefined;
  /** Ticket steps quoted in a description (default 5). */
  readonly lastSteps?: number;
}

/** Severity label values. */
const CRITICAL = 'critical';
const WARNING = 'warning';

/** Prefix of a repeat-offender hand-off's reason (src/engine/runner.ts). */
const REPEAT_OFFENDER = 'repeat offender';

/** Every alert the snapshot calls for, in a stable order. */
export function desiredAlerts(snapshot: FleetSnapshot, rules: AlertRules): Alert[] {
  const out = fleetAlerts(snapshot, rules);
  const nodes = [...snapshot.nodes].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  for (const node of nodes) out.push(...nodeAlerts(node, rules));
  return out;
}

/** The fleet-wide alerts: the storm breaker, stale signals. */
export function fleetAlerts(snapshot: FleetSnapshot, rules: AlertRules): Alert[] {
  const out: Alert[] = [];
  const base = baseLabels(rules);
  if (snapshot.breaker.open) {
    out.push({
      labels: { ...base, alertname: AlertName.StormBreakerOpen, severity: CRITICAL },
      annotations: {
        summary: 'Aegis storm breaker is open: remediation is paused fleet-wide',
        description:
          'Too many nodes became faulty within the storm window. New cordons and every disruptive ' +
          'step wait until the cooldown ends or an operator runs `kubectl aegis breaker reset`.',
      },
      ...(snapshot.breaker.trippedAtMs === undefined
        ? {}
        : { startsAtMs: snapshot.breaker.trippedAtMs }),
    });
  }
  const threshold = Math.max(
    rules.staleSignalMinNodes,
    Math.ceil(rules.staleSignalMinFraction * snapshot.fleetSize),
  );
  for (const [signal, count] of Object.entries(snapshot.staleSignals).sort(byKey)) {
    if (count <= 0 || count < threshold) continue;
    out.push({
      labels: { ...base, alertname: AlertName.SignalStale, severity: WARNING, signal },
      annotations: {
        summary: `${signal} is stale or missing on ${count} of ${snapshot.fleetSize} nodes`,
        description:
          `Aegis cannot read ${signal} for ${count} nodes: no step starts and no ticket closes ` +
          'on their conditions until the data is fresh again. Check the exporter and its scrape.',
      },
    });
  }
  return out;
}

function baseLabels(rules: AlertRules): Record<string, string> {
  return rules.clusterName === undefined ? {} : { cluster: rules.clusterName };
}

/**
 * The alerts of one node. Depends only on the node entry and the rules, so a caller may reuse the
 * answer while the node's ticket (a frozen, shared object) and topology stay the same.
 */
export function nodeAlerts(node: SnapshotNode, rules: AlertRules): Alert[] {
  const t = node.ticket;
  // A node with no open ticket can only be waiting for room in the cordon budget (or be corrupt).
  if (
    node.corrupt === undefined &&
    node.hold?.gate !== 'cordon-budget' &&
    (t === null || !isOpen(t))
  )
    return [];
  const where = {
    ...baseLabels(rules),
    node: node.name,
    ...(node.topology.rack === undefined ? {} : { rack: node.topology.rack }),
    ...(node.topology.leafSwitch === undefined ? {} : { leaf_switch: node.topology.leafSwitch }),
    ...(node.topology.zone === undefined ? {} : { zone: node.topology.zone }),
  };
  if (node.corrupt !== undefined) {
    return [
      {
        labels: { ...where, alertname: AlertName.TicketCorrupt, severity: WARNING },
        annotations: {
          summary: `Aegis ticket on ${node.name} is unreadable; Aegis leaves the node alone`,
          description:
            `${node.corrupt}\nThe annotation ${TICKET_ANNOTATION} is never overwritten: ` +
            'repair or remove it (kubectl annotate node) and Aegis takes the node back.',
        },
      },
    ];
  }
  const out: Alert[] = [];
  const open = t !== null && isOpen(t);
  const ticketLabels =
    t === null
      ? {}
      : {
          condition: t.condition,
          ...optional('domain', rules.domainOf?.(t.condition)),
          ...optional('sop', rules.sopOf?.(t.condition)),
          ticket_status: t.status,
        };
  const labels = { ...where, ...ticketLabels };
  const steps = t === null ? '' : lastSteps(t, rules.lastSteps ?? 5);
  const handOff = open ? handOffOf(t) : undefined;
  if (open && handOff !== undefined) {
    out.push({
      labels: { ...labels, alertname: AlertName.HandedToHuman, severity: CRITICAL },
      annotations: {
        summary: `Aegis handed ${node.name} to ${t.supervisor}: ${t.whySRE ?? t.condition}`,
        description: describe(t, steps),
      },
      ...startsAt(handOff.atIso),
    });
  }
  const budget = exhaustedBudget(node, t, handOff !== undefined);
  if (budget !== undefined) {
    out.push({
      labels: { ...labels, alertname: AlertName.BudgetExhausted, severity: WARNING, budget },
      annotations: {
        summary:
          budget === 'repeat-offender'
            ? `${node.name} was remediated too often; Aegis handed it to ${t?.supervisor ?? 'a human'}`
            : `Cordon budget reached: ${node.name} waits for room to be cordoned`,
        description:
          t === null
            ? (node.hold?.reason ?? '')
            : describe(t, steps, budget === 'cordon' ? node.hold?.reason : undefined),
      },
      ...(budget === 'repeat-offender' ? startsAt(handOff?.atIso) : {}),
    });
  }
  const approval = t?.approval;
  if (open && approval?.state === 'pending') {
    out.push({
      labels: {
        ...labels,
        alertname: AlertName.ApprovalPending,
        severity: WARNING,
        action: approval.action,
      },
      annotations: {
        summary: `${approval.action} of ${node.name} awaits approval (kubectl aegis approve ${node.name})`,
        description: describe(t, steps, approval.reason),
      },
      ...startsAt(approval.requestedAt),
    });
  }
  return out;
}

/**
 * When Aegis handed the open ticket to a human: a HandToHuman step succeeded (folded entries count)
 * and the supervisor is not Aegis. `atIso` is the step's end (absent once folded away). A human's
 * takeover without a hand-off is not one (the human already knows).
 */
function handOffOf(t: Ticket): { readonly atIso?: string } | undefined {
  if (t.supervisor === '' || t.supervisor === AEGIS_SUPERVISOR) return undefined;
  if (countSteps(t, 'HandToHuman', StepStatus.Succeeded) === 0) return undefined;
  const step = t.workflows.findLast(
    (w) => w.action === 'HandToHuman' && w.status === StepStatus.Succeeded,
  );
  const atIso = step?.end ?? step?.time;
  return atIso === undefined ? {} : { atIso };
}

/** Which budget stopped automation on the node, if one did. */
function exhaustedBudget(
  node: SnapshotNode,
  t: Ticket | null,
  handedOff: boolean,
): 'cordon' | 'repeat-offender' | undefined {
  if (handedOff && t?.whySRE?.startsWith(REPEAT_OFFENDER) === true) return 'repeat-offender';
  if (node.hold?.gate === 'cordon-budget') return 'cordon';
  const last = t?.workflows.at(-1);
  if (
    t !== null &&
    isOpen(t) &&
    last?.status === StepStatus.Held &&
    last.message?.startsWith('cordon-budget:') === true
  )
    return 'cordon';
  return undefined;
}

/** The description: the ticket's reason, who holds it, why, and its last steps. */
function describe(t: Ticket, steps: string, why?: string): string {
  return [
    t.reason,
    `ticket ${t.status}, supervisor ${t.supervisor}`,
    ...(why === undefined || why === '' ? [] : [`why: ${why}`]),
    ...(t.whySRE === undefined ? [] : [`handed to a human: ${t.whySRE}`]),
    ...(steps === '' ? [] : ['last steps:', steps]),
  ]
    .filter((l) => l !== '')
    .join('\n');
}

/** The last `n` workflow entries, one line each: time, action, status, message. */
export function lastSteps(t: Ticket, n: number): string {
  return t.workflows
    .slice(-n)
    .map((w) =>
      [w.time ?? '', w.action, w.status, w.message === undefined ? '' : `- ${w.message}`]
        .filter((p) => p !== '')
        .join(' '),
    )
    .join('\n');
}

function startsAt(iso: string | undefined): { startsAtMs?: number } {
  const ms = iso === undefined ? Number.NaN : Date.parse(iso);
  return Number.isFinite(ms) ? { startsAtMs: ms } : {};
}

function optional(key: string, value: string | undefined): Record<string, string> {
  return value === undefined || value === '' ? {} : { [key]: value };
}

function byKey(a: [string, unknown], b: [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** Topology of a node from its labels. */
export function topologyOf(labels: Readonly<Record<string, string>>): NodeTopology {
  return {
    ...optionalTopo('rack', labels[RACK_LABEL]),
    ...optionalTopo('leafSwitch', labels[LEAF_LABEL]),
    ...optionalTopo('zone', labels[ZONE_LABEL]),
  };
}

function optionalTopo(key: keyof NodeTopology, v: string | undefined): NodeTopology {
  return v === undefined || v === '' ? {} : { [key]: v };
}

/**
 * The snapshot's nodes, from the cycle's node list: every node with a ticket annotation (its
 * ticket, or why it is unreadable) and every node whose step was held this cycle. `ticketOf`
 * returns the parsed ticket or throws for an unreadable one (the controller's cached reader).
 */
export function snapshotNodes(
  nodes: readonly NodeInfo[],
  ticketOf: (node: NodeInfo) => Ticket | null,
  holds: ReadonlyMap<string, NodeHold> = new Map(),
): SnapshotNode[] {
  const out: SnapshotNode[] = [];
  const anyHold = holds.size > 0;
  for (const n of nodes) {
    const hold = anyHold ? holds.get(n.name) : undefined;
    if (!(TICKET_ANNOTATION in n.annotations) && hold === undefined) continue;
    let ticket: Ticket | null = null;
    let corrupt: string | undefined;
    try {
      ticket = ticketOf(n);
    } catch (err) {
      corrupt = err instanceof Error ? err.message : String(err);
    }
    out.push({
      name: n.name,
      topology: topologyOf(n.labels),
      ticket,
      ...(corrupt === undefined ? {} : { corrupt }),
      ...(hold === undefined ? {} : { hold }),
    });
  }
  return out;
}
