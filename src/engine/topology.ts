/**
 * Where each node sits: its failure domains (zone, rack, leaf switch, NVLink clique, PDU, node
 * group), read from node labels whose keys are configurable (`domains.labels`). Pure: labels in,
 * places out. Used by the correlation rules (domains.ts), the level limits (safety.ts) and the
 * incident records (incidents.ts). docs/failure-domains.md.
 */
import { LEAF_LABEL, RACK_LABEL, type NodeInfo } from '../core/types.js';

/** The kinds of failure domain a node belongs to, one label each. */
export const DOMAIN_KINDS = ['zone', 'rack', 'leaf', 'clique', 'pdu', 'nodeGroup'] as const;
export type DomainKind = (typeof DOMAIN_KINDS)[number];

/** The label key that names each domain kind of a node. */
export type TopologyLabels = Readonly<Record<DomainKind, string>>;

/**
 * Defaults: the well-known Kubernetes zone label, the rack and leaf-switch labels the simulator
 * and the storm caps already use, the NVLink clique label NVIDIA's GPU feature discovery sets on
 * GB200 NVL72 nodes (`<cluster uuid>.<clique id>`), a PDU label and a node-group label.
 */
export const DEFAULT_TOPOLOGY_LABELS: TopologyLabels = {
  zone: 'topology.kubernetes.io/zone',
  rack: RACK_LABEL,
  leaf: LEAF_LABEL,
  clique: 'nvidia.com/gpu.clique',
  pdu: 'topology.aegis.io/pdu',
  nodeGroup: 'aegis.io/node-group',
};

/** How each domain kind reads in words (incident summaries, Events, holds). */
export const DOMAIN_WORDS: Readonly<Record<DomainKind, string>> = {
  zone: 'zone',
  rack: 'rack',
  leaf: 'leaf switch',
  clique: 'NVLink domain',
  pdu: 'PDU',
  nodeGroup: 'node group',
};

/** One node's domains: the kinds whose label the node carries (a label with an empty value is none). */
export type NodePlace = Readonly<Partial<Record<DomainKind, string>>>;

/** The domains of a node from its labels. */
export function placeOf(
  labels: Readonly<Record<string, string>>,
  keys: TopologyLabels = DEFAULT_TOPOLOGY_LABELS,
): NodePlace {
  const out: Partial<Record<DomainKind, string>> = {};
  for (const kind of DOMAIN_KINDS) {
    const v = labels[keys[kind]];
    if (v !== undefined && v !== '') out[kind] = v;
  }
  return out;
}

/** The key of one domain, `<kind>/<value>` (e.g. `leaf/leaf-002`). */
export function domainKey(kind: DomainKind, value: string): string {
  return `${kind}/${value}`;
}

/** Splits a domain key; undefined when it is not one. */
export function parseDomainKey(key: string): { kind: DomainKind; value: string } | undefined {
  const slash = key.indexOf('/');
  if (slash <= 0) return undefined;
  const kind = key.slice(0, slash);
  const value = key.slice(slash + 1);
  if (value === '' || !(DOMAIN_KINDS as readonly string[]).includes(kind)) return undefined;
  return { kind: kind as DomainKind, value };
}

/** `leaf switch leaf-002`. */
export function describeDomain(kind: DomainKind, value: string): string {
  return `${DOMAIN_WORDS[kind]} ${value}`;
}

/**
 * The fleet by domain: each node's place, and each domain's nodes. Built from one node list;
 * `of(nodes)` reuses the last one while the list is the same array (the node cache hands out the
 * same array while nothing changed), so a quiet fleet costs nothing here.
 */
export class FleetTopology {
  readonly #places = new Map<string, NodePlace>();
  readonly #members = new Map<string, string[]>();

  constructor(nodes: readonly NodeInfo[], keys: TopologyLabels = DEFAULT_TOPOLOGY_LABELS) {
    for (const n of nodes) {
      const place = placeOf(n.labels, keys);
      this.#places.set(n.name, place);
      for (const kind of DOMAIN_KINDS) {
        const v = place[kind];
        if (v === undefined) continue;
        const key = domainKey(kind, v);
        let list = this.#members.get(key);
        if (list === undefined) this.#members.set(key, (list = []));
        list.push(n.name);
      }
    }
  }

  /** The place of a node (empty when unknown). */
  place(node: string): NodePlace {
    return this.#places.get(node) ?? {};
  }

  /** Nodes of a domain, in node-list order. */
  members(kind: DomainKind, value: string): readonly string[] {
    return this.#members.get(domainKey(kind, value)) ?? [];
  }

  /** Nodes in a domain. */
  size(kind: DomainKind, value: string): number {
    return this.members(kind, value).length;
  }
}

/** Caches the topology of the last node list it was asked about (see FleetTopology). */
export class TopologyCache {
  readonly #keys: TopologyLabels;
  #nodes: readonly NodeInfo[] | undefined;
  #topology: FleetTopology | undefined;

  constructor(keys: TopologyLabels = DEFAULT_TOPOLOGY_LABELS) {
    this.#keys = keys;
  }

  /** The topology of `nodes`, rebuilt only when the list is another array. */
  of(nodes: readonly NodeInfo[]): FleetTopology {
    if (this.#topology === undefined || nodes !== this.#nodes) {
      this.#nodes = nodes;
      this.#topology = new FleetTopology(nodes, this.#keys);
    }
    return this.#topology;
  }
}

/** Nodes of one domain, and how many of them are out of service (cordoned or not Ready). */
export interface DomainLevel {
  readonly size: number;
  readonly out: number;
}

/**
 * Per domain of the given kinds: its size and the nodes out of service (cordoned by anyone, or not
 * Ready). Keys are domain keys. Opted-out nodes count like any other: they still carry load.
 */
export function domainLevels(
  nodes: readonly NodeInfo[],
  kinds: readonly DomainKind[],
  keys: TopologyLabels = DEFAULT_TOPOLOGY_LABELS,
): Map<string, DomainLevel> {
  const out = new Map<string, { size: number; out: number }>();
  if (kinds.length === 0) return out;
  for (const n of nodes) {
    const down = n.unschedulable || n.ready !== true;
    for (const kind of kinds) {
      const v = n.labels[keys[kind]];
      if (v === undefined || v === '') continue;
      const key = domainKey(kind, v);
      let l = out.get(key);
      if (l === undefined) out.set(key, (l = { size: 0, out: 0 }));
      l.size++;
      if (down) l.out++;
    }
  }
  return out;
}
