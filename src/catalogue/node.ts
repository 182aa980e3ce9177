import type { CatalogueEntry } from './types.js';

const MIN = 60_000;

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
      'A container on the node last terminated with reason StartError (the runtime could not create it).',
    signal: 'kube-state-metrics',
    expr:
      'sum by (node) (kube_pod_container_status_terminated_reason{reason="StartError"} ' +
      '* on(namespace, pod) group_left(node) max by (namespace, pod, node) (kube_pod_info)) > 0',
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 10 * MIN,
    clear: 'No container on the node is left in StartError.',
    priority: 50,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'node.restart-kubelet',
    fault: {
      series: [
        {
          metric: 'kube_pod_info',
          labels: { namespace: 'default', pod: 'startfail-{node}', node: '{node}' },
          value: 1,
        },
        {
          metric: 'kube_pod_container_status_terminated_reason',
          labels: {
            namespace: 'default',
            pod: 'startfail-{node}',
            container: 'main',
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
      'Pods on the node have been terminating for more than 30 minutes; value = number of stuck pods.',
    signal: 'kube-state-metrics',
    expr:
      'count by (node) ((time() - kube_pod_deletion_timestamp > 1800) ' +
      '* on(namespace, pod) group_left(node) max by (namespace, pod, node) (kube_pod_info))',
    deviceLabel: '',
    forMs: 0,
    clearForMs: 5 * MIN,
    clear: 'No pod on the node has been terminating for more than 30 minutes.',
    priority: 50,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'node.terminating-pods',
    fault: {
      series: [
        {
          metric: 'kube_pod_info',
          labels: { namespace: 'default', pod: 'stuck-{node}', node: '{node}' },
          value: 1,
        },
        {
          metric: 'kube_pod_deletion_timestamp',
          labels: { namespace: 'default', pod: 'stuck-{node}' },
          value: 1_700_000_000,
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
