import type { CatalogueEntry } from './types.js';

const MIN = 60_000;

/** A kernel log event seen by the node check in the current or previous boot's log in the last hour. */
function kernelLog(
  name: string,
  rule: string,
  spec: Pick<CatalogueEntry, 'description' | 'priority' | 'affectsLoad' | 'sop'>,
): CatalogueEntry {
  return {
    name,
    domain: 'System',
    ...spec,
    signal: 'aegis-nodecheck',
    expr: `max by (node) (aegis_nodecheck_log_matches{source="kernel",rule="${rule}"}) > 0`,
    deviceLabel: '',
    forMs: 0,
    clearForMs: 0,
    clear: 'No such kernel log line in the node check window (1 hour).',
    deviceIdMode: 'none',
    fault: {
      series: [
        { metric: 'aegis_nodecheck_log_matches', labels: { source: 'kernel', rule }, value: 1 },
      ],
    },
  };
}

/** Operating-system conditions: kernel health, load, time sync, limits, and the node-side checkers. */
export const SYSTEM_CONDITIONS: readonly CatalogueEntry[] = [
  kernelLog('KernelPanic', 'panic', {
    description:
      'The kernel panicked (read after the reboot from pstore / the previous boot journal by the node check).',
    priority: 51,
    affectsLoad: true,
    sop: 'system.report',
  }),
  kernelLog('KernelDeadlock', 'hung_task', {
    description: 'A task was blocked for more than 120 s (hung_task). Record only.',
    priority: 100,
    affectsLoad: false,
    sop: 'system.reboot',
  }),
  kernelLog('KernelSoftLockup', 'soft_lockup', {
    description: 'The kernel reported a soft or hard lockup of a CPU. Record only.',
    priority: 100,
    affectsLoad: false,
    sop: 'system.report',
  }),
  {
    name: 'HighZombieProcessesCount',
    domain: 'System',
    description:
      'More than 50 000 zombie processes (PID exhaustion ahead). The original had an SOP but no priority ' +
      '(silently 999); it is now an explicit 100 with the reboot ladder for sites that raise it.',
    signal: 'node-exporter',
    expr: 'max by (node) (node_processes_state{state="Z"}) > 50000',
    deviceLabel: '',
    forMs: 10 * MIN,
    clearForMs: 10 * MIN,
    clear: 'At most 50 000 zombies for 10 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'system.reboot',
    fault: { series: [{ metric: 'node_processes_state', labels: { state: 'Z' }, value: 60_000 }] },
  },
  {
    name: 'HighLoad',
    domain: 'System',
    description:
      'The 15-minute load average is more than twice the core count; value = load per core.',
    signal: 'node-exporter',
    expr: 'max by (node) (node_load15) / max by (node) (kube_node_status_capacity{resource="cpu"}) > 2',
    deviceLabel: '',
    forMs: 15 * MIN,
    clearForMs: 10 * MIN,
    clear: 'Load per core at most 2 for 10 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    aliases: ['HighAverageLoad'],
    fault: { series: [{ metric: 'node_load15', labels: {}, value: 8192 }] },
  },
  {
    name: 'NodeClockUnsynced',
    domain: 'System',
    description:
      'The kernel clock is not synchronised (NTP/PTP); NCCL and MPI timeouts depend on it.',
    signal: 'node-exporter',
    expr: 'max by (node) (node_timex_sync_status == bool 0) > 0',
    deviceLabel: '',
    forMs: 10 * MIN,
    clearForMs: 10 * MIN,
    clear: 'Synchronised for 10 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'system.report',
    fault: { series: [{ metric: 'node_timex_sync_status', labels: {}, value: 0 }] },
  },
  {
    name: 'PidPressure',
    domain: 'System',
    description: 'The kubelet reports PIDPressure.',
    signal: 'kube-state-metrics',
    expr: 'max by (node) (kube_node_status_condition{condition="PIDPressure",status="true"}) == 1',
    deviceLabel: '',
    forMs: MIN,
    clearForMs: 5 * MIN,
    clear: 'The kubelet clears PIDPressure for 5 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: {
      series: [
        {
          metric: 'kube_node_status_condition',
          labels: { condition: 'PIDPressure', status: 'true' },
          value: 1,
        },
        {
          metric: 'kube_node_status_condition',
          labels: { condition: 'PIDPressure', status: 'false' },
          value: 0,
        },
      ],
    },
  },
  {
    name: 'FileDescriptorsExhausted',
    domain: 'System',
    description:
      'More than 90 % of the system-wide file descriptors are allocated; value = % used.',
    signal: 'node-exporter',
    expr: 'max by (node) (node_filefd_allocated / node_filefd_maximum) * 100 > 90',
    deviceLabel: '',
    forMs: 5 * MIN,
    clearForMs: 5 * MIN,
    clear: 'Below 90 % for 5 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: {
      series: [
        { metric: 'node_filefd_allocated', labels: {}, value: 9_500_000 },
        { metric: 'node_filefd_maximum', labels: {}, value: 10_000_000 },
      ],
    },
  },
  {
    name: 'NodeCheckDown',
    domain: 'System',
    description:
      'The Aegis node check reported for the node in the last day but reports nothing now: its rules are ' +
      'stale. Record only; clears by itself after a day of silence.',
    signal: 'prometheus',
    expr: 'count by (node) (max_over_time(aegis_nodecheck_up[1d])) unless on(node) count by (node) (aegis_nodecheck_up)',
    deviceLabel: '',
    forMs: 10 * MIN,
    clearForMs: 2 * MIN,
    clear: 'The node check reports again.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: { series: [{ metric: 'aegis_nodecheck_up', labels: {}, remove: true }] },
  },
  {
    name: 'SichekDown',
    domain: 'System',
    description:
      'sichek reported for the node in the last day but reports nothing now: its rules are stale. Record ' +
      'only; clears by itself after a day of silence.',
    signal: 'prometheus',
    expr:
      'count by (node) (max_over_time(sichek_nvidia_device_count[1d]) or max_over_time(sichek_infiniband_hca_num[1d])) ' +
      'unless on(node) count by (node) (sichek_nvidia_device_count or sichek_infiniband_hca_num)',
    deviceLabel: '',
    forMs: 10 * MIN,
    clearForMs: 2 * MIN,
    clear: 'sichek reports again.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: {
      series: [
        { metric: 'sichek_nvidia_device_count', labels: {}, remove: true },
        { metric: 'sichek_infiniband_hca_num', labels: {}, remove: true },
      ],
    },
  },
];
