import { DEFAULT_SYSTEM_NAMESPACES, namespaceMatcher } from './namespaces.js';
import type { CatalogueEntry } from './types.js';

const MIN = 60_000;

/** The owner of a pod as kube-state-metrics labels `kube_pod_info`. */
const OWNER = 'namespace, created_by_kind, created_by_name';
/** An owner whose pods fail on this many nodes is a broken rollout, not a broken node. */
export const BROKEN_OWNER_MIN_NODES = 3;
/** A terminating pod this long past its grace period (its deletionTimestamp) is stuck. */
export const STUCK_PAST_GRACE_S = 1800;

/**
 * KubeletFailedCreatePodContainer over the given system namespaces. Per node: the owners whose
 * pods there last failed with StartError, leaving out owners failing on
 * BROKEN_OWNER_MIN_NODES nodes or more; fires with 2 owners, or 1 when it is a DaemonSet (its
 * pods work elsewhere, so this node is the odd one). Value = those owners.
 */
export function startErrorExpr(namespaces: readonly string[]): string {
  const ns = namespaceMatcher(namespaces);
  const failing =
    `max by (namespace, pod) (kube_pod_container_status_terminated_reason{reason="StartError",${ns}}) ` +
    `* on(namespace, pod) group_left(node, created_by_kind, created_by_name) ` +
    `max by (namespace, pod, node, created_by_kind, created_by_name) (kube_pod_info{${ns}})`;
  const broken = `count by (${OWNER}) (count by (${OWNER}, node) (${failing})) >= ${BROKEN_OWNER_MIN_NODES}`;
  const local = `(${failing}) unless on(${OWNER}) (${broken})`;
  const daemonSet = `kube_pod_info{created_by_kind="DaemonSet",${ns}}`;
  return (
    `count by (node) (count by (node, ${OWNER}) (${local})) >= 2 or ` +
    `count by (node) (count by (node, ${OWNER}) ((${local}) and on(namespace, pod) ${daemonSet}))`
  );
}

/**
 * NodeHasTerminatingPod over the given system namespaces: system pods more than
 * STUCK_PAST_GRACE_S past their deletionTimestamp, on nodes with two of them or with one whose
 * container the kubelet still reports running. Value = stuck system pods.
 */
export function terminatingPodExpr(namespaces: readonly string[]): string {
  const ns = namespaceMatcher(namespaces);
  const stuck =
    `(time() - max by (namespace, pod) (kube_pod_deletion_timestamp{${ns}}) > ${STUCK_PAST_GRACE_S}) ` +
    `* on(namespace, pod) group_left(node) max by (namespace, pod, node) (kube_pod_info{${ns}})`;
  const running = `max by (namespace, pod) (kube_pod_container_status_running{${ns}}) > 0`;
  return (
    `count by (node) (${stuck}) >= 2 or ` +
    `count by (node) ((${stuck}) and on(namespace, pod) (${running}))`
  );
}

/** The conditions read from pods, whose expressions the system namespaces scope. */
export const POD_CONDITIONS: Readonly<Record<string, (namespaces: readonly string[]) => string>> = {
  KubeletFailedCreatePodContainer: startErrorExpr,
  NodeHasTerminatingPod: terminatingPodExpr,
};

/**
 * The catalogue with its pod-derived conditions scoped to `namespaces` (config
 * `systemNamespaces`); other entries are returned as they are. Throws INVALID_INPUT on a bad
 * pattern.
 */
export function scopePodConditions(
  catalogue: readonly CatalogueEntry[],
  namespaces: readonly string[],
): CatalogueEntry[] {
  return catalogue.map((e) => {
    const build = POD_CONDITIONS[e.name];
    return build === undefined ? e : { ...e, expr: build(namespaces) };
  });
}

/** Kubernetes-level node conditions (the original's `default` type). */
export const NODE_CONDITIONS: readonly CatalogueEntry[] = [
  {
    name: 'NodeNotReady',
    domain: 'Node',
    description:
      'The node Ready condition is False or Unknown (kubelet down, node hung or powered off).',
    signal: 'kubernetes',
    expr: '',
    nodeField: 'notReady',
    ksmExpr: 'kube_node_status_condition{condition="Ready",status="true"} == 0',
    deviceLabel: '',
    forMs: 30_000,
    clearForMs: 2 * MIN,
    clear: 'The node reports Ready again for 2 minutes.',
    priority: 0,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'node.notready',
    fault: {
      node: { ready: false },
      series: [
        {
          metric: 'kube_node_status_condition',
          labels: { condition: 'Ready', status: 'true' },
          value: 0,
        },
        {
          metric: 'kube_node_status_condition',
          labels: { condition: 'Ready', status: 'false' },
          value: 1,
        },
      ],
    },
  },
  {
    name: 'NodeInhibitAll',
    domain: 'Node',
    description:
      'The aegis.io/disable=true label was removed in the last 10 minutes: the node is handed back to automation. ' +
      'Priority 98, not 0 as in the original: at 0 it shared the NotReady slot with NodeNotReady (last one ' +
      'iterated won, defect 8), and uncordoning must never pre-empt NotReady handling or a hardware fault. At 98 ' +
      'it is the last Emergency item, unique, so the order is deterministic; a node with real faults is repaired ' +
      'first and the plain NodeCordon recovery path uncordons it later.',
    signal: 'kube-state-metrics',
    expr:
      'max by (node) (kube_node_labels{label_aegis_io_disable="true"} offset 10m) ' +
      'unless on(node) max by (node) (kube_node_labels{label_aegis_io_disable="true"})',
    deviceLabel: '',
    forMs: 0,
    clearForMs: 0,
    clear:
      'Ten minutes after the label was removed (the detection window), or when it is set again.',
    priority: 98,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'node.inhibit',
    fault: {
      series: [
        { metric: 'kube_node_labels', labels: { label_aegis_io_disable: 'true' }, remove: true },
      ],
    },
  },
  {
    name: 'NodeCordon',
    domain: 'Node',
    description:
      'The node is cordoned (spec.unschedulable). Served only when no Emergency item is left: the recovery ' +
      'loop runs a health check and uncordons.',
    signal: 'kubernetes',
    expr: '',
    nodeField: 'unschedulable',
    ksmExpr: 'kube_node_spec_unschedulable == 1',
    deviceLabel: '',
    forMs: 0,
    clearForMs: 0,
    clear: 'The node is uncordoned.',
    priority: 1,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'node.recover',
    fault: {
      node: { unschedulable: true },
      series: [{ metric: 'kube_node_spec_unschedulable', labels: {}, value: 1 }],
    },
  },
  {
    name: 'NodeFrequentDown',
    domain: 'Node',
    description:
      'The node went NotReady at least twice in 2 hours (4 or more changes of its Ready status). One recipe ' +
      'application makes one outage; a scenario injects it twice (or flaps NodeNotReady) to raise it.',
    signal: 'kube-state-metrics',
    expr: 'sum by (node) (changes(kube_node_status_condition{condition="Ready",status="true"}[2h])) >= 4',
    deviceLabel: '',
    forMs: 0,
    clearForMs: 30 * MIN,
    clear: 'No Ready flap for 2 hours.',
    priority: 8,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'node.reboot',
    fault: {
      node: { ready: false },
      series: [
        {
          metric: 'kube_node_status_condition',
          labels: { condition: 'Ready', status: 'true' },
          value: 0,
        },
      ],
    },
  },
  {
    name: 'KubeletFailedCreatePodContainer',
    domain: 'Node',
    description:
      'The container runtime could not create containers (StartError) on the node, with node-level ' +
      "evidence, in the system namespaces only (config `systemNamespaces`): a system DaemonSet's pod " +
      'fails here, or pods of two system owners fail here. An owner whose pods fail on 3 or more nodes is ' +
      "a broken rollout, not a broken node, and does not count; a tenant's broken pod never raises it. " +
      'Value = system owners failing on the node.',
    signal: 'kube-state-metrics',
    expr: startErrorExpr(DEFAULT_SYSTEM_NAMESPACES),
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 10 * MIN,
    clear:
      'No system pod on the node is left in StartError (or the evidence is no longer node-level).',
    priority: 50,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'node.restart-kubelet',
    fault: {
      series: [
        {
          metric: 'kube_pod_info',
          labels: {
            namespace: 'gpu-operator',
            pod: 'nvidia-device-plugin-daemonset-{node}',
            node: '{node}',
            created_by_kind: 'DaemonSet',
            created_by_name: 'nvidia-device-plugin-daemonset',
          },
          value: 1,
        },
        {
          metric: 'kube_pod_container_status_terminated_reason',
          labels: {
            namespace: 'gpu-operator',
            pod: 'nvidia-device-plugin-daemonset-{node}',
            container: 'nvidia-device-plugin',
            reason: 'StartError',
          },
          value: 1,
        },
      ],
    },
  },
  {
    name: 'NodeHasTerminatingPod',
    domain: 'Node',
    description:
      'System pods on the node are stuck terminating more than 30 minutes past their grace period, with ' +
      'node-level evidence: the kubelet still reports a container of one of them running (it has not ' +
      "stopped it), or two or more are stuck. System namespaces only (config `systemNamespaces`): a tenant's " +
      'pod held by its finalizer never raises it. Value = stuck system pods.',
    signal: 'kube-state-metrics',
    expr: terminatingPodExpr(DEFAULT_SYSTEM_NAMESPACES),
    deviceLabel: '',
    forMs: 0,
    clearForMs: 5 * MIN,
    clear: 'No system pod on the node is stuck terminating with node-level evidence.',
    priority: 50,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'node.terminating-pods',
    fault: {
      series: [
        {
          metric: 'kube_pod_info',
          labels: {
            namespace: 'gpu-operator',
            pod: 'nvidia-dcgm-exporter-{node}',
            node: '{node}',
            created_by_kind: 'DaemonSet',
            created_by_name: 'nvidia-dcgm-exporter',
          },
          value: 1,
        },
        {
          metric: 'kube_pod_deletion_timestamp',
          labels: { namespace: 'gpu-operator', pod: 'nvidia-dcgm-exporter-{node}' },
          value: 1_700_000_000,
        },
        {
          metric: 'kube_pod_container_status_running',
          labels: {
            namespace: 'gpu-operator',
            pod: 'nvidia-dcgm-exporter-{node}',
            container: 'nvidia-dcgm-exporter',
          },
          value: 1,
        },
      ],
    },
  },
  {
    name: 'NodeHasRestarted',
    domain: 'Node',
    description: 'The node booted in the last hour (node_boot_time_seconds changed). Record only.',
    signal: 'node-exporter',
    expr: 'max by (node) (changes(node_boot_time_seconds[1h])) > 0',
    deviceLabel: '',
    forMs: 0,
    clearForMs: 0,
    clear: 'One hour after the boot.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    aliases: ['NodeHasRestart'],
    fault: { series: [{ metric: 'node_boot_time_seconds', labels: {}, value: 1_767_225_000 }] },
  },
  {
    name: 'NodeExporterDown',
    domain: 'Node',
    description:
      'node-exporter reports nothing for a node Kubernetes knows: every node-exporter rule of that node is ' +
      'stale. Record only.',
    signal: 'kube-state-metrics',
    expr: 'max by (node) (kube_node_info) unless on(node) count by (node) (node_boot_time_seconds)',
    deviceLabel: '',
    forMs: 5 * MIN,
    clearForMs: 2 * MIN,
    clear: 'node-exporter reports for the node again.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: { series: [{ metric: 'node_boot_time_seconds', labels: {}, remove: true }] },
  },
  {
    name: 'KubeletOffline',
    domain: 'Node',
    description: 'The kubelet systemd unit is not active (node-exporter systemd collector).',
    signal: 'node-exporter',
    expr: 'max by (node) (node_systemd_unit_state{name="kubelet.service",state="active"} == bool 0) > 0',
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 5 * MIN,
    clear: 'kubelet.service is active again.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'node.restart-kubelet',
    fault: {
      series: [
        {
          metric: 'node_systemd_unit_state',
          labels: { name: 'kubelet.service', state: 'active' },
          value: 0,
        },
      ],
    },
  },
  {
    name: 'ContainerRuntimeOffline',
    domain: 'Node',
    description: 'The containerd systemd unit is not active (node-exporter systemd collector).',
    signal: 'node-exporter',
    expr: 'max by (node) (node_systemd_unit_state{name="containerd.service",state="active"} == bool 0) > 0',
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 5 * MIN,
    clear: 'containerd.service is active again.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'node.restart-kubelet',
    fault: {
      series: [
        {
          metric: 'node_systemd_unit_state',
          labels: { name: 'containerd.service', state: 'active' },
          value: 0,
        },
      ],
    },
  },
  {
    name: 'KubeletHasRestarted',
    domain: 'Node',
    description:
      'The kubelet unit restarted in the last hour (its start time changed). Record only.',
    signal: 'node-exporter',
    expr: 'max by (node) (changes(node_systemd_unit_start_time_seconds{name="kubelet.service"}[1h])) > 0',
    deviceLabel: '',
    forMs: 0,
    clearForMs: 0,
    clear: 'One hour after the restart.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: {
      series: [
        {
          metric: 'node_systemd_unit_start_time_seconds',
          labels: { name: 'kubelet.service' },
          value: 1_767_225_000,
        },
      ],
    },
  },
];
