/** kube-state-metrics node families (one cluster-wide exporter; every series has `node`). */
import { ALL_ROLES, type FamilyDef, type Variants } from '../family.js';
import type { FleetNode } from '../fleet-spec.js';
import { toKsmLabelName } from '../series-labels.js';
import { NODE, ONE, ZERO, constant, gauge, type Value } from './helpers.js';

// ---------------------------------------------------------------- kube-state-metrics (per node)
const CONDITIONS = ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure'];
const STATUSES = ['true', 'false', 'unknown'];
const CONDITION_VARIANTS: Variants = CONDITIONS.flatMap((condition) =>
  STATUSES.map((status) => ({ condition, status })),
);
const UNITS: Readonly<Record<string, string>> = {
  cpu: 'core',
  memory: 'byte',
  ephemeral_storage: 'byte',
};
const NODE_INFO_VARIANTS: Variants = [
  {
    kernel_version: '6.8.0-60-generic',
    os_image: 'Ubuntu 24.04.2 LTS',
    container_runtime_version: 'containerd://1.7.27',
    kubelet_version: 'v1.33.4',
    kubeproxy_version: 'deprecated',
    pod_cidr: '',
  },
];
const KSM_ALL = { roles: ALL_ROLES };

/** Healthy value of kube_node_status_condition: Ready=true and *Pressure=false are 1. */
function conditionValue(variant: number): number {
  const c = CONDITION_VARIANTS[variant];
  if (c === undefined || c.status === 'unknown') return 0;
  return (c.condition === 'Ready') === (c.status === 'true') ? 1 : 0;
}

/** kube-state-metrics families; the caches live per call (per store), never at module level. */
export function ksmFamilies(): readonly FamilyDef[] {
  const resources = new WeakMap<object, Variants>();
  const resourcesOf = (node: FleetNode): Variants => {
    let v = resources.get(node.capacity);
    if (v === undefined) {
      v = Object.keys(node.capacity).map((resource) => ({
        resource,
        unit: UNITS[resource] ?? 'integer',
      }));
      resources.set(node.capacity, v);
    }
    return v;
  };
  const capacityValue =
    (fraction: (resource: string) => number): Value =>
    (node, _d, variant) => {
      const resource = resourcesOf(node)[variant]?.resource ?? '';
      return Math.round((node.capacity[resource] ?? 0) * fraction(resource) * 100) / 100;
    };
  const labels = new WeakMap<object, Variants>();
  const labelsOf = (node: FleetNode): Variants => {
    let v = labels.get(node.labels);
    if (v === undefined) {
      v = [
        Object.fromEntries(Object.entries(node.labels).map(([k, val]) => [toKsmLabelName(k), val])),
      ];
      labels.set(node.labels, v);
    }
    return v;
  };
  return [
    gauge('kube_node_info', '[STABLE] Information about a cluster node.', NODE, ONE, {
      ...KSM_ALL,
      variants: () => NODE_INFO_VARIANTS,
    }),
    gauge(
      'kube_node_labels',
      '[STABLE] Kubernetes labels converted to Prometheus labels.',
      NODE,
      ONE,
      {
        ...KSM_ALL,
        variants: labelsOf,
      },
    ),
    gauge(
      'kube_node_spec_unschedulable',
      '[STABLE] Whether a node can schedule new pods.',
      NODE,
      ZERO,
      KSM_ALL,
    ),
    gauge(
      'kube_node_status_condition',
      '[STABLE] The condition of a cluster node.',
      NODE,
      (_n, _d, v) => conditionValue(v),
      {
        ...KSM_ALL,
        variants: () => CONDITION_VARIANTS,
      },
    ),
    gauge(
      'kube_node_status_capacity',
      '[STABLE] The capacity for different resources of a node.',
      NODE,
      capacityValue(() => 1),
      {
        ...KSM_ALL,
        variants: resourcesOf,
      },
    ),
    gauge(
      'kube_node_status_allocatable',
      '[STABLE] The allocatable for different resources of a node that are available for scheduling.',
      NODE,
      capacityValue((r) => (r === 'cpu' ? 0.97 : r === 'memory' ? 0.95 : 1)),
      { ...KSM_ALL, variants: resourcesOf },
    ),
    gauge(
      'kube_node_created',
      '[STABLE] Unix creation timestamp',
      NODE,
      constant(1_760_000_000),
      KSM_ALL,
    ),
  ];
}
