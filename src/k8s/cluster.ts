import type { NodeInfo, Taint } from '../core/types.js';

/**
 * The engine's port to Kubernetes, in our own types. Two implementations: the real one
 * (src/k8s/kube-cluster.ts, the only importer of @kubernetes/client-node) and the simulator's
 * in-memory SimCluster. Every method takes an AbortSignal and throws HealError with a K8S_* code.
 */
export interface ClusterClient extends NodeClient, PodClient, JobClient, EventClient {
  /** Stops background work (the real client's node watch); resolves when it has stopped. */
  close?(): Promise<void>;
  /**
   * Calls `listener` when a node changes as the client's watch sees it (the previous version,
   * undefined for a new node). Only clients with a watch have it. Returns the unsubscribe.
   */
  onNodeChange?(listener: (prev: NodeInfo | undefined, next: NodeInfo) => void): () => void;
  /**
   * The fleet-wide operator controls: the data of the ConfigMap `aegis-control` in the
   * controller's namespace (CONTROL_CONFIGMAP), null when it does not exist.
   */
  readControl?(signal: AbortSignal): Promise<Readonly<Record<string, string>> | null>;
  /**
   * Writes the record of a domain incident (src/engine/incidents.ts): the ConfigMap
   * `record.name` in the controller's namespace, created, or replaced whole when it exists.
   */
  writeIncident?(record: IncidentRecord, signal: AbortSignal): Promise<void>;
  /**
   * The data of one Secret of the controller's own namespace, read by name (RBAC grants `get` on
   * that name only), base64-decoded; null when it does not exist. Used for the BMC credentials
   * (`bmc.credentialsSecret`); never logged.
   */
  readSecret?(name: string, signal: AbortSignal): Promise<Readonly<Record<string, string>> | null>;
  /** GPU-level quarantine: DRA DeviceTaintRules and node taints (src/engine/quarantine.ts). */
  readonly deviceTaints?: DeviceTaintClient | undefined;
}

/**
 * A DRA DeviceTaintRule (resource.k8s.io/v1, Kubernetes 1.37; v1beta2 behind a feature gate and
 * an off-by-default API in 1.36): one taint on the devices its selector names.
 */
export interface DeviceTaintRuleInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** slice.spec.driver, pool (node-local drivers use the node's name) and device name. */
  readonly driver: string;
  readonly pool: string;
  readonly device: string;
  readonly key: string;
  readonly value: string;
  readonly effect: 'None' | 'NoSchedule' | 'NoExecute';
}

/** Device taints and node taints (GPU-level quarantine). */
export interface DeviceTaintClient {
  /** True when the apiserver serves `devicetaintrules` in resource.k8s.io/v1. */
  servesDeviceTaintRules(signal: AbortSignal): Promise<boolean>;
  /** Creates the rule; an existing rule of that name is left as it is. */
  createDeviceTaintRule(rule: DeviceTaintRuleInfo, signal: AbortSignal): Promise<void>;
  /** null when no rule of that name exists. */
  getDeviceTaintRule(name: string, signal: AbortSignal): Promise<DeviceTaintRuleInfo | null>;
  /** Deletes the rule; a missing one is not an error. */
  deleteDeviceTaintRule(name: string, signal: AbortSignal): Promise<void>;
  /**
   * Replaces the node's spec.taints under optimistic concurrency: K8S_CONFLICT when
   * `resourceVersion` is no longer the node's.
   */
  setNodeTaints(
    name: string,
    taints: readonly Taint[],
    resourceVersion: string,
    signal: AbortSignal,
  ): Promise<NodeInfo>;
}

/** A domain incident's record: a ConfigMap's name, labels and data. */
export interface IncidentRecord {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly data: Readonly<Record<string, string>>;
}

/** Node reads and writes. */
export interface NodeClient {
  /**
   * Every node. The real client answers from a watch-fed cache, sorted by name (the same array
   * while nothing changed), and lists directly whenever the watch is not established.
   */
  listNodes(signal: AbortSignal): Promise<readonly NodeInfo[]>;
  /** Throws K8S_NOT_FOUND when the node does not exist. */
  getNode(name: string, signal: AbortSignal): Promise<NodeInfo>;
  /**
   * The node as a watch-fed cache holds it, without a request; undefined when there is no such
   * cache, it is not in step with the apiserver, or it lacks the node. It may trail the apiserver
   * by a watch event: use it only as the base of a write under its resourceVersion (a stale one
   * is a 409, and the writer re-reads with getNode).
   */
  peekNode?(name: string): NodeInfo | undefined;
  /** Sets spec.unschedulable (cordon / uncordon). */
  setUnschedulable(name: string, unschedulable: boolean, signal: AbortSignal): Promise<NodeInfo>;
  /**
   * Merges annotations (`null` removes a key) under optimistic concurrency: throws K8S_CONFLICT
   * when `resourceVersion` is no longer the node's current one.
   */
  patchNodeAnnotations(
    name: string,
    annotations: Readonly<Record<string, string | null>>,
    resourceVersion: string,
    signal: AbortSignal,
  ): Promise<NodeInfo>;
  /** Merges labels (`null` removes a key). */
  patchNodeLabels(
    name: string,
    labels: Readonly<Record<string, string | null>>,
    signal: AbortSignal,
  ): Promise<NodeInfo>;
}

/** A pod as the drain logic needs it. */
export interface PodInfo {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  /** Owned by a DaemonSet: drain leaves it. */
  readonly daemonSet: boolean;
  /** Static/mirror pod: drain leaves it. */
  readonly mirror: boolean;
  /**
   * Set when the pod is terminating: Kubernetes's deletionTimestamp, the end of its grace period
   * (the time of the deletion request plus the grace period).
   */
  readonly deletionTimestampMs?: number;
  readonly labels: Readonly<Record<string, string>>;
  /**
   * metadata.finalizers, when there are any. A pod with finalizers stays until its owner (a
   * controller, a human) removes them; Aegis never force-deletes it.
   */
  readonly finalizers?: readonly string[];
  /**
   * The pod's annotations under `aegis.io/` (the drain's checkpoint protocol,
   * src/engine/drain-checkpoint.ts), when there are any; other annotations are not kept.
   */
  readonly annotations?: Readonly<Record<string, string>>;
  /** spec.terminationGracePeriodSeconds, when set. */
  readonly terminationGracePeriodSeconds?: number;
}

/** Result of one eviction request: `blocked` means a PodDisruptionBudget refused it (HTTP 429). */
export type EvictionResult = 'evicted' | 'blocked' | 'gone';

/** Pod reads and the Eviction API. */
export interface PodClient {
  listPodsOnNode(node: string, signal: AbortSignal): Promise<readonly PodInfo[]>;
  evictPod(namespace: string, name: string, signal: AbortSignal): Promise<EvictionResult>;
  /**
   * The Eviction API with a grace period of its own (DeleteOptions.gracePeriodSeconds), for a
   * checkpoint drain that gives pods a longer preStop. Optional: clients without it cannot run
   * `drain.checkpoint.mode: grace`.
   */
  evictPodWithGrace?(
    namespace: string,
    name: string,
    gracePeriodSeconds: number,
    signal: AbortSignal,
  ): Promise<EvictionResult>;
  /**
   * Merges annotations of a pod (`null` removes a key); null when the pod is gone. Optional:
   * clients without it cannot signal pods (`drain.checkpoint`, wait-for-completion).
   */
  patchPodAnnotations?(
    namespace: string,
    name: string,
    annotations: Readonly<Record<string, string | null>>,
    signal: AbortSignal,
  ): Promise<PodInfo | null>;
  deletePod(
    namespace: string,
    name: string,
    gracePeriodSeconds: number,
    signal: AbortSignal,
  ): Promise<void>;
}

/** The Job templates shipped in deploy/jobs/, by file stem. They run in the ops Jobs' namespace. */
export const JobKind = {
  Restart: 'restart_node',
  Shutdown: 'shutdown_node',
  Healthcheck: 'healthcheck_node',
  Repair: 'repair_node',
  Remedy: 'remedy_node',
  Diagnose: 'diagnose_node',
  /** Validation before return to service (src/jobs/validation.ts): DCGM, NCCL, IB loopback. */
  Validate: 'validate_node',
} as const;
export type JobKind = (typeof JobKind)[keyof typeof JobKind];
export const ALL_JOB_KINDS: readonly JobKind[] = Object.values(JobKind);
/** Default namespace of the ops Jobs (`kubernetes.jobNamespace`; shipped config: `aegis-ops`). */
export const JOB_NAMESPACE = 'monitoring';

/**
 * A request to run one template. `name` is deterministic (derived from the ticket), so creating
 * it twice is a no-op and a restarted daemon finds the Job it launched before crashing.
 * `params` values are validated before they reach a template (see src/jobs/params.ts).
 */
export interface JobRequest {
  readonly kind: JobKind;
  readonly name: string;
  readonly node: string;
  readonly params: Readonly<Record<string, string>>;
  readonly activeDeadlineSeconds: number;
}

/** Observed state of a Job. `exitCode` and `logs` are read back from its pod when it ended. */
export interface JobState {
  readonly name: string;
  readonly phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  readonly exitCode?: number;
  readonly logs?: readonly string[];
}

/** Jobs in the ops Jobs' namespace (`kubernetes.jobNamespace`). */
export interface JobClient {
  /** Creates the Job; succeeds without change when a Job of that name already exists. */
  createJob(request: JobRequest, signal: AbortSignal): Promise<void>;
  /** `null` when no Job of that name exists. */
  getJob(name: string, signal: AbortSignal): Promise<JobState | null>;
  deleteJob(name: string, signal: AbortSignal): Promise<void>;
}

/** A Kubernetes Event about a node. */
export interface NodeEvent {
  readonly node: string;
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

/** Events for every action. */
export interface EventClient {
  emitEvent(event: NodeEvent, signal: AbortSignal): Promise<void>;
}

/** Leader election on a coordination.k8s.io Lease. */
export interface LeaseClient {
  /**
   * Takes the lease if it is free or expired, renews it if `holder` holds it. Returns the
   * lease's epoch (its transition count: it grows by one at every change of holder, so it is a
   * fencing token) when `holder` holds the lease afterwards, null when it does not.
   */
  acquireOrRenew(
    name: string,
    holder: string,
    leaseDurationSeconds: number,
    signal: AbortSignal,
  ): Promise<number | null>;
  /** Gives the lease up if `holder` holds it. */
  release(name: string, holder: string, signal: AbortSignal): Promise<void>;
}
