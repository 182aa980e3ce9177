/**
 * Correlated failures: when several nodes of one failure domain (a leaf switch, a rack, a PDU, an
 * NVLink domain) raise related conditions within a window, they are one domain incident, not N node
 * problems. The rules saying which conditions correlate in which domain are data
 * (`domains.rules`, DEFAULT_CORRELATION_RULES); this module turns one cycle's node statuses into
 * the incidents open after it, the nodes that joined them and the incidents that ended. Pure: no
 * clock, no I/O (incidents.ts records and announces them). docs/failure-domains.md.
 */
import { createHash } from 'node:crypto';
import type { NodeStatus } from '../core/types.js';
import {
  describeDomain,
  domainKey,
  parseDomainKey,
  type DomainKind,
  type NodePlace,
} from './topology.js';

/** Steps a rule may let members take while their incident is open (`allow`). */
export const ALLOWABLE_ACTIONS = [
  'Cordon',
  'Diagnose',
  'Healthcheck',
  'Uncordon',
  'HandToHuman',
] as const;

/** One correlation rule: which conditions, raised on how many nodes of one domain, make an incident. */
export interface CorrelationRule {
  /** Its name (a DNS label): in incident records, ticket pointers and metrics. */
  readonly name: string;
  /** The domain kind the nodes must share. */
  readonly domain: DomainKind;
  /** Catalogue conditions that count (any of them, on a node, makes it a hit). */
  readonly conditions: readonly string[];
  /** At least this many nodes of the domain… */
  readonly minNodes?: number | undefined;
  /** …or at least this fraction of its nodes (rounded up); the lower of the two when both are set. */
  readonly minFraction?: number | undefined;
  /** The hits must begin within this span of each other. */
  readonly windowMs: number;
  /** An incident ends once fewer nodes than the threshold have been hit for this long. */
  readonly clearForMs: number;
  /** Steps a member may still take while its incident is open; every other step is held. */
  readonly allow: readonly string[];
  /** What the members suffer, in words (`lost InfiniBand`). */
  readonly description?: string | undefined;
}

/**
 * The rules in force when the config gives none. Thresholds are at least 2 nodes always, so two
 * independent faults never make an incident below a 2-node threshold's domain; 3 for racks and
 * leaf switches (two nodes of a rack failing on their own is common, three at once is not).
 */
export const DEFAULT_CORRELATION_RULES: readonly CorrelationRule[] = [
  {
    name: 'leaf-ib',
    domain: 'leaf',
    description: 'lost InfiniBand links',
    conditions: [
      'IBLinkAbnormal',
      'IBPortSpeedAbnormal',
      'IBLinkFrequentDown',
      'IBPortDown',
      'IBPhysicalPortDown',
      'IBPingFailed',
    ],
    minNodes: 3,
    windowMs: 10 * 60_000,
    clearForMs: 2 * 60_000,
    allow: ['Cordon'],
  },
  {
    name: 'rack-notready',
    domain: 'rack',
    description: 'went NotReady (rack power or top-of-rack network)',
    conditions: ['NodeNotReady'],
    minNodes: 3,
    windowMs: 10 * 60_000,
    clearForMs: 2 * 60_000,
    allow: ['Cordon'],
  },
  {
    name: 'pdu-power',
    domain: 'pdu',
    description: 'lost power or raised BMC critical faults',
    conditions: ['NodeNotReady', 'BaseBoardCriticalIssue'],
    minNodes: 3,
    minFraction: 0.5,
    windowMs: 10 * 60_000,
    clearForMs: 2 * 60_000,
    allow: ['Cordon'],
  },
  {
    name: 'clique-nvlink',
    domain: 'clique',
    description: 'raised NVLink or fabric faults',
    conditions: [
      'GpuNvlinkError',
      'Xid74NVLinkError',
      'GpuNvlinkInactive',
      'NvidiaFabricManagerNotActive',
      'GpuP2PNotSupported',
    ],
    minNodes: 3,
    windowMs: 10 * 60_000,
    clearForMs: 2 * 60_000,
    allow: ['Cordon'],
  },
  {
    name: 'rack-cooling',
    domain: 'rack',
    description: 'ran hot (rack cooling)',
    conditions: ['HighGpuTemp', 'HighGpuMemoryTemp', 'GpuThermalViolation', 'CpuThermalThrottling'],
    minNodes: 3,
    windowMs: 10 * 60_000,
    clearForMs: 2 * 60_000,
    allow: ['Cordon'],
  },
];

/** One domain incident as the engine holds it. */
export interface DomainIncident {
  /** Name of its record (a ConfigMap), e.g. `aegis-incident-leaf-leaf-002-1a2b3c4d`. */
  readonly name: string;
  readonly rule: string;
  readonly kind: DomainKind;
  /** The domain's label value (`leaf-002`). */
  readonly domain: string;
  /** When the first hit of the incident began (a node hit since then belongs to it). */
  readonly startMs: number;
  readonly openedAtMs: number;
  /** Every node that has been a member, sorted. */
  readonly members: readonly string[];
  /** Members raising a condition of the rule now, sorted: their steps are held. */
  readonly active: readonly string[];
  /** Conditions of the rule seen on members, sorted. */
  readonly conditions: readonly string[];
  /** Nodes in the domain. */
  readonly domainSize: number;
  /** Hit nodes that keep it open. */
  readonly threshold: number;
  /** Since when fewer than `threshold` nodes have been hit (undefined: not). */
  readonly belowSinceMs?: number;
  /** Set once it ended. */
  readonly releasedAtMs?: number;
}

/** What one cycle of correlation found. */
export interface Correlation {
  /** Incidents open after this cycle (the new ones included), in name order. */
  readonly open: readonly DomainIncident[];
  /** Incidents opened this cycle. */
  readonly opened: readonly DomainIncident[];
  /** Incidents that ended this cycle (with `releasedAtMs`): their members go back to their ladders. */
  readonly released: readonly DomainIncident[];
  /** Nodes that became members this cycle (the members of new incidents included). */
  readonly joined: readonly { readonly incident: string; readonly node: string }[];
}

/** What `correlate` reads. */
export interface CorrelateInput {
  readonly statuses: readonly NodeStatus[];
  readonly placeOf: (node: string) => NodePlace;
  readonly sizeOf: (kind: DomainKind, value: string) => number;
  readonly rules: readonly CorrelationRule[];
  /** The incidents open before this cycle. */
  readonly open: readonly DomainIncident[];
  readonly nowMs: number;
}

/** The nodes of one domain hit by one rule: per node, since when and by which conditions. */
interface Hits {
  readonly rule: CorrelationRule;
  readonly kind: DomainKind;
  readonly value: string;
  readonly nodes: Map<string, { sinceMs: number; conditions: Set<string> }>;
}

/** Hit nodes that make (and keep) an incident in a domain of `size` nodes: never fewer than 2. */
export function thresholdOf(rule: CorrelationRule, size: number): number {
  const candidates: number[] = [];
  if (rule.minNodes !== undefined) candidates.push(rule.minNodes);
  if (rule.minFraction !== undefined) candidates.push(Math.ceil(rule.minFraction * size - 1e-9));
  if (candidates.length === 0) return Number.POSITIVE_INFINITY;
  return Math.max(2, Math.min(...candidates));
}

/** Identity of an incident slot: one open incident per rule and domain. */
function slotOf(rule: string, kind: DomainKind, value: string): string {
  return `${rule}@${domainKey(kind, value)}`;
}

/**
 * One cycle: the rules' hits in each domain, the open incidents updated (members joining, the
 * threshold no longer met, ended), and new incidents where at least the threshold of nodes were hit
 * within the window. Deterministic: the same input gives the same output.
 */
export function correlate(input: CorrelateInput): Correlation {
  const { nowMs } = input;
  const rules = new Map(input.rules.map((r) => [r.name, r]));
  const hits = collectHits(input);
  const open: DomainIncident[] = [];
  const opened: DomainIncident[] = [];
  const released: DomainIncident[] = [];
  const joined: { incident: string; node: string }[] = [];
  const taken = new Set<string>();

  for (const prev of input.open) {
    const slot = slotOf(prev.rule, prev.kind, prev.domain);
    taken.add(slot);
    const rule = rules.get(prev.rule);
    if (rule === undefined) {
      // Its rule was removed from the config: the incident ends now.
      released.push({ ...prev, active: [], releasedAtMs: nowMs });
      continue;
    }
    const hit = hits.get(slot);
    const members = new Set(prev.members);
    const active: string[] = [];
    const conditions = new Set(prev.conditions);
    for (const [node, h] of hit?.nodes ?? []) {
      if (!members.has(node) && h.sinceMs < prev.startMs) continue; // an older, separate fault
      if (!members.has(node)) {
        members.add(node);
        joined.push({ incident: prev.name, node });
      }
      active.push(node);
      for (const c of h.conditions) conditions.add(c);
    }
    const size = Math.max(input.sizeOf(prev.kind, prev.domain), members.size);
    const threshold = thresholdOf(rule, size);
    const below = active.length < threshold;
    const belowSinceMs = below ? (prev.belowSinceMs ?? nowMs) : undefined;
    const next: DomainIncident = {
      ...withoutBelow(prev),
      members: [...members].sort(),
      active: active.sort(),
      conditions: [...conditions].sort(),
      domainSize: size,
      threshold,
      ...(belowSinceMs === undefined ? {} : { belowSinceMs }),
    };
    if (belowSinceMs !== undefined && nowMs - belowSinceMs >= rule.clearForMs)
      released.push({ ...next, releasedAtMs: nowMs });
    else open.push(next);
  }

  for (const [slot, hit] of hits) {
    if (taken.has(slot)) continue;
    const size = Math.max(input.sizeOf(hit.kind, hit.value), hit.nodes.size);
    const threshold = thresholdOf(hit.rule, size);
    if (hit.nodes.size < threshold) continue;
    const startMs = earliestBurst(
      [...hit.nodes.values()].map((h) => h.sinceMs),
      threshold,
      hit.rule.windowMs,
    );
    if (startMs === undefined) continue;
    const members = [...hit.nodes]
      .filter(([, h]) => h.sinceMs >= startMs)
      .map(([n]) => n)
      .sort();
    const conditions = new Set<string>();
    for (const n of members) for (const c of hit.nodes.get(n)?.conditions ?? []) conditions.add(c);
    const incident: DomainIncident = {
      name: incidentName(hit.rule.name, hit.kind, hit.value, startMs),
      rule: hit.rule.name,
      kind: hit.kind,
      domain: hit.value,
      startMs,
      openedAtMs: nowMs,
      members,
      active: members,
      conditions: [...conditions].sort(),
      domainSize: size,
      threshold,
    };
    open.push(incident);
    opened.push(incident);
    for (const node of members) joined.push({ incident: incident.name, node });
  }
  open.sort(byName);
  opened.sort(byName);
  released.sort(byName);
  return { open, opened, released, joined };
}

function byName(a: DomainIncident, b: DomainIncident): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function withoutBelow(i: DomainIncident): DomainIncident {
  if (i.belowSinceMs === undefined) return i;
  const copy = { ...i };
  delete (copy as { belowSinceMs?: number }).belowSinceMs;
  return copy;
}

function collectHits(input: CorrelateInput): Map<string, Hits> {
  const byCondition = new Map<string, CorrelationRule[]>();
  for (const r of input.rules)
    for (const c of r.conditions) byCondition.set(c, [...(byCondition.get(c) ?? []), r]);
  const hits = new Map<string, Hits>();
  if (byCondition.size === 0) return hits;
  for (const st of input.statuses) {
    let place: NodePlace | undefined;
    for (const c of st.conditions) {
      const rules = byCondition.get(c.condition);
      if (rules === undefined) continue;
      place ??= input.placeOf(st.node);
      for (const rule of rules) {
        const value = place[rule.domain];
        if (value === undefined) continue;
        const slot = slotOf(rule.name, rule.domain, value);
        let h = hits.get(slot);
        if (h === undefined)
          hits.set(slot, (h = { rule, kind: rule.domain, value, nodes: new Map() }));
        const prev = h.nodes.get(st.node);
        if (prev === undefined)
          h.nodes.set(st.node, { sinceMs: c.sinceMs, conditions: new Set([c.condition]) });
        else {
          prev.sinceMs = Math.min(prev.sinceMs, c.sinceMs);
          prev.conditions.add(c.condition);
        }
      }
    }
  }
  return hits;
}

/**
 * The start of the earliest span of `windowMs` holding at least `count` of the times, or
 * undefined when no span does.
 */
export function earliestBurst(
  times: readonly number[],
  count: number,
  windowMs: number,
): number | undefined {
  const t = [...times].sort((a, b) => a - b);
  for (let i = 0; i + count - 1 < t.length; i++) {
    const first = t[i] as number;
    if ((t[i + count - 1] as number) - first <= windowMs) return first;
  }
  return undefined;
}

/**
 * The name of an incident's record: `aegis-incident-<kind>-<domain>-<hash>`, a DNS label (the
 * domain value lowercased, other characters as `-`, cut to 28), the hash of rule, domain and start
 * telling incidents of one domain apart.
 */
export function incidentName(
  rule: string,
  kind: DomainKind,
  value: string,
  startMs: number,
): string {
  const hash = createHash('sha256')
    .update(`${rule}\0${kind}\0${value}\0${String(startMs)}`)
    .digest('hex')
    .slice(0, 8);
  const safe =
    value
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/-+/g, '-')
      .slice(0, 28)
      .replace(/^-+|-+$/g, '') || 'x';
  return `aegis-incident-${kind.toLowerCase()}-${safe}-${hash}`;
}

/** The open incident holding `node`'s `action` (a member hit now, the action not allowed), if any. */
export function holdingIncident(
  open: readonly DomainIncident[],
  rules: readonly CorrelationRule[],
  node: string,
  action: string,
): DomainIncident | undefined {
  for (const i of open) {
    if (!i.active.includes(node)) continue;
    const rule = rules.find((r) => r.name === i.rule);
    if (rule === undefined || !rule.allow.includes(action)) return i;
  }
  return undefined;
}

/** One sentence about an incident: `leaf switch leaf-002: 12 of 16 nodes lost InfiniBand links (IBLinkAbnormal)`. */
export function describeIncident(i: DomainIncident, rule: CorrelationRule | undefined): string {
  const n = i.releasedAtMs === undefined ? i.active.length : i.members.length;
  const what = rule?.description ?? 'raised correlated faults';
  const conds = i.conditions.length === 0 ? '' : ` (${i.conditions.join(', ')})`;
  return `${describeDomain(i.kind, i.domain)}: ${n} of ${i.domainSize} nodes ${what}${conds}`;
}

/** The pointer an incident leaves in a member's ticket (the ticket's `incident` field). */
export interface IncidentPointer {
  readonly name: string;
  /** `<kind>/<value>`. */
  readonly domain: string;
  readonly rule: string;
  /** The incident's start (RFC 3339). */
  readonly since: string;
  /** When the incident ended and the node went back to its ladder (RFC 3339). */
  readonly released?: string | undefined;
}

/** A member's ticket pointer to the incident. */
export function pointerOf(i: DomainIncident): IncidentPointer {
  return {
    name: i.name,
    domain: domainKey(i.kind, i.domain),
    rule: i.rule,
    since: new Date(i.startMs).toISOString(),
  };
}

/**
 * The incidents still open according to the members' tickets (after a restart, or leadership
 * regained): one per pointer name not released, its members the nodes pointing at it. Pointers
 * whose domain cannot be read are left out. The next `correlate` brings them up to date.
 */
export function restoreIncidents(
  pointers: readonly { readonly node: string; readonly pointer: IncidentPointer }[],
  nowMs: number,
): DomainIncident[] {
  const named = new Map<string, { p: IncidentPointer; nodes: string[] }>();
  for (const { node, pointer } of pointers) {
    if (pointer.released !== undefined) continue;
    const e = named.get(pointer.name);
    if (e === undefined) named.set(pointer.name, { p: pointer, nodes: [node] });
    else e.nodes.push(node);
  }
  const out: DomainIncident[] = [];
  for (const [name, { p, nodes }] of named) {
    const domain = parseDomainKey(p.domain);
    const startMs = Date.parse(p.since);
    if (domain === undefined || Number.isNaN(startMs)) continue;
    const members = [...nodes].sort();
    out.push({
      name,
      rule: p.rule,
      kind: domain.kind,
      domain: domain.value,
      startMs,
      openedAtMs: Math.min(startMs, nowMs),
      members,
      active: members,
      conditions: [],
      domainSize: members.length,
      threshold: 2,
    });
  }
  return out.sort(byName);
}
