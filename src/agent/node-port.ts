/**
 * The agent's only Kubernetes port: read its own Node, and patch the Node's status conditions.
 * kube-node-port.ts is the real adapter (the pod's ServiceAccount); tests use an in-memory fake.
 */

/** A Node condition as the agent writes it (the Kubernetes NodeCondition fields). */
export interface NodeCondition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  /** RFC 3339. */
  readonly lastTransitionTime: string;
  /** RFC 3339. */
  readonly lastHeartbeatTime: string;
}

/** What the agent reads of its Node. */
export interface NodeView {
  readonly labels: Readonly<Record<string, string>>;
  /** status.allocatable quantities as strings. */
  readonly allocatable: Readonly<Record<string, string>>;
  readonly conditions: readonly NodeCondition[];
}

/** Read the Node; patch its conditions (a strategic-merge patch keyed by condition type). */
export interface NodePort {
  getNode(name: string, signal: AbortSignal): Promise<NodeView>;
  patchConditions(
    name: string,
    conditions: readonly NodeCondition[],
    signal: AbortSignal,
  ): Promise<void>;
}
