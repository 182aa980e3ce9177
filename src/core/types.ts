/**
 * The vocabulary every part of Aegis shares. Nothing here knows Kubernetes or Prometheus types:
 * adapters convert at the edge (see src/k8s/ and src/prom/).
 */

/** Fault domains, as in the original `type` label (its `default` is our `Node`). */
export const Domain = {
  Node: 'Node',
  CPU: 'CPU',
  Memory: 'Memory',
  Disk: 'Disk',
  Network: 'Network',
  Baseboard: 'Baseboard',
  GPU: 'GPU',
  IB: 'IB',
  RoCE: 'RoCE',
  GPFS: 'GPFS',
  System: 'System',
  Process: 'Process',
  PeerMem: 'PeerMem',
} as const;
export type Domain = (typeof Domain)[keyof typeof Domain];
export const ALL_DOMAINS: readonly Domain[] = Object.values(Domain);

/** Maps the original's lowercase `type` label values (and our own names) to a Domain. */
export function toDomain(raw: string): Domain | undefined {
  const key = raw.toLowerCase();
  if (key === 'default') return Domain.Node;
  return ALL_DOMAINS.find((d) => d.toLowerCase() === key);
}

/**
 * One active condition on one node (the original's AegisNodeStatus entry).
 * `id` is the device id within the domain ('' when the condition is node-wide).
 */
export interface ConditionInstance {
  readonly node: string;
  readonly domain: Domain;
  readonly condition: string;
  readonly id: string;
  readonly pciBdf: string;
  readonly msg: string;
  readonly value: number;
  /** When the condition was first seen active (ms since epoch). */
  readonly sinceMs: number;
  /**
   * When a rule last reported it (ms). Older than `sinceMs`-relative events means the condition
   * is only being held by its clear delay or a stale signal, not seen again.
   */
  readonly lastSeenMs?: number;
}

/**
 * Snapshot of one node's health for one cycle.
 * `staleSignals` lists catalogue rules whose source could not be read this cycle: their
 * conditions keep their previous state and must never be read as healthy or as a fault.
 */
export interface NodeStatus {
  readonly node: string;
  readonly conditions: readonly ConditionInstance[];
  readonly staleSignals: readonly string[];
}

/** Taint on a node, in our terms. */
export interface Taint {
  readonly key: string;
  readonly value?: string;
  readonly effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** What the engine knows of a Kubernetes node object. */
export interface NodeInfo {
  readonly name: string;
  readonly resourceVersion: string;
  /** Ready condition: true, false, or unknown (kubelet stopped posting). */
  readonly ready: boolean | 'Unknown';
  readonly unschedulable: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly taints: readonly Taint[];
  /** status.nodeInfo.bootID: changes on every boot (how a reboot is verified). */
  readonly bootId?: string;
  /**
   * Status conditions other than the kubelet's own (Ready, MemoryPressure, DiskPressure,
   * PIDPressure, NetworkUnavailable): node-problem-detector's, the Aegis agent's `aegis.io/…`.
   * Absent when the node has none. Read by src/engine/node-conditions.ts.
   */
  readonly conditions?: readonly NodeConditionInfo[];
}

/** One Node status condition set by a node-side detector (see NodeInfo.conditions). */
export interface NodeConditionInfo {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  /** The condition's message, kept only while its status is True. */
  readonly message?: string;
  /** lastTransitionTime (ms since epoch), when set. */
  readonly sinceMs?: number;
  /** lastHeartbeatTime (ms since epoch), when set: when the detector last wrote it. */
  readonly heartbeatMs?: number;
}

/** Well-known label, annotation and taint keys. */
export const TICKET_ANNOTATION = 'aegis.io/ticketing';
export const DISABLE_LABEL = 'aegis.io/disable';
export const PAUSE_ANNOTATION = 'aegis.io/pause';
/**
 * Fleet-wide operator controls: a ConfigMap of this name in the controller's namespace, written by
 * `kubectl aegis pause|resume|breaker reset` (and the console), read by the daemon every cycle.
 * Keys: `paused` ("true" pauses every step), `pausedBy`, `breakerResetAt` (RFC 3339: a breaker
 * tripped before it is reset), `breakerResetBy`.
 */
export const CONTROL_CONFIGMAP = 'aegis-control';
export const CORDONED_BY_ANNOTATION = 'aegis.io/cordoned-by';
export const RACK_LABEL = 'topology.aegis.io/rack';
export const LEAF_LABEL = 'topology.aegis.io/leaf-switch';
export const CONTROL_PLANE_LABELS: readonly string[] = [
  'node-role.kubernetes.io/control-plane',
  'node-role.kubernetes.io/master',
];

/** True for control-plane nodes, which Aegis never touches. */
export function isControlPlane(node: NodeInfo): boolean {
  return CONTROL_PLANE_LABELS.some((l) => l in node.labels);
}

/** True when an operator opted the node out with `aegis.io/disable=true`. */
export function isOptedOut(node: NodeInfo): boolean {
  return node.labels[DISABLE_LABEL] === 'true';
}

/** Kubernetes node-name rule (RFC 1123 subdomain), also our guard before names reach Jobs or shells. */
export const NODE_NAME_PATTERN =
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** True when `name` is a valid node name of at most 253 characters. */
export function isValidNodeName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && NODE_NAME_PATTERN.test(name);
}
