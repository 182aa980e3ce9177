import type { CatalogueEntry } from './types.js';

const MIN = 60_000;

/** Process-level conditions: D-state pile-ups, OOM kills, the PID table. */
export const PROCESS_CONDITIONS: readonly CatalogueEntry[] = [
  {
    name: 'HighDProcessesCount',
    domain: 'Process',
    description:
      'More than 4 processes blocked in uninterruptible I/O wait (D state) for 10 minutes. Low risk.',
    signal: 'node-exporter',
    expr: 'max by (node) (node_procs_blocked) > 4',
    deviceLabel: '',
    forMs: 10 * MIN,
    clearForMs: 10 * MIN,
    clear: 'At most 4 blocked processes for 10 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'process.reboot',
    fault: { series: [{ metric: 'node_procs_blocked', labels: {}, value: 20 }] },
  },
  {
    name: 'OomKillDetected',
    domain: 'Process',
    description: 'The kernel OOM killer killed a process in the last 10 minutes. Record only.',
    signal: 'node-exporter',
    expr: 'max by (node) (increase(node_vmstat_oom_kill[10m])) > 0',
    deviceLabel: '',
    forMs: 0,
    clearForMs: 0,
    clear: 'No OOM kill in the last 10 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: { series: [{ metric: 'node_vmstat_oom_kill', labels: {}, add: 1 }] },
  },
  {
    name: 'ProcessTableNearlyFull',
    domain: 'Process',
    description: 'More than 90 % of pid_max is in use; value = % used.',
    signal: 'node-exporter',
    expr: 'max by (node) (node_processes_pids / node_processes_max_processes) * 100 > 90',
    deviceLabel: '',
    forMs: 5 * MIN,
    clearForMs: 5 * MIN,
    clear: 'Below 90 % for 5 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'process.report',
    fault: {
      series: [
        { metric: 'node_processes_pids', labels: {}, value: 4_000_000 },
        { metric: 'node_processes_max_processes', labels: {}, value: 4_194_304 },
      ],
    },
  },
];
