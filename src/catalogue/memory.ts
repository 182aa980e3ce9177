import { ALL_GPUS_BUSY } from './cpu.js';
import type { CatalogueEntry } from './types.js';

const MIN = 60_000;

/** Host memory conditions: pressure, kubelet eviction pressure, DIMM health and ECC. */
export const MEMORY_CONDITIONS: readonly CatalogueEntry[] = [
  {
    name: 'MemoryPressure',
    domain: 'Memory',
    description:
      'More than 90 % of the node memory is in use (MemAvailable / MemTotal); value = % used. A node whose ' +
      'every GPU is at work (DCGM_FI_DEV_GPU_UTIL > 0 on each) is busy with its own jobs: left alone, as in ' +
      'the original.',
    signal: 'node-exporter',
    expr:
      '((1 - max by (node) (node_memory_MemAvailable_bytes) / max by (node) (node_memory_MemTotal_bytes)) * 100 > 90) ' +
      `unless on(node) (${ALL_GPUS_BUSY})`,
    deviceLabel: '',
    forMs: 5 * MIN,
    clearForMs: 5 * MIN,
    clear: 'Memory use below 90 % for 5 minutes.',
    priority: 99,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'memory.pressure',
    fault: {
      series: [{ metric: 'node_memory_MemAvailable_bytes', labels: {}, value: 100_000_000 }],
    },
  },
  {
    name: 'KubeletMemoryPressure',
    domain: 'Memory',
    description: 'The kubelet reports MemoryPressure (eviction threshold reached).',
    signal: 'kube-state-metrics',
    expr: 'max by (node) (kube_node_status_condition{condition="MemoryPressure",status="true"}) == 1',
    deviceLabel: '',
    forMs: MIN,
    clearForMs: 5 * MIN,
    clear: 'The kubelet clears MemoryPressure for 5 minutes.',
    priority: 90,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'memory.drop-cache',
    fault: {
      series: [
        {
          metric: 'kube_node_status_condition',
          labels: { condition: 'MemoryPressure', status: 'true' },
          value: 1,
        },
        {
          metric: 'kube_node_status_condition',
          labels: { condition: 'MemoryPressure', status: 'false' },
          value: 0,
        },
      ],
    },
  },
  {
    name: 'MemoryUnhealthy',
    domain: 'Memory',
    description: 'The BMC reports a memory (DIMM) sensor critical; id = sensor name.',
    signal: 'ipmi-exporter',
    expr: 'max by (node, name) (ipmi_sensor_state{type="Memory"}) > 1',
    deviceLabel: 'name',
    forMs: 10 * MIN,
    clearForMs: 30 * MIN,
    clear: 'Every memory sensor below critical for 30 minutes.',
    priority: 99,
    affectsLoad: false,
    deviceIdMode: 'id',
    sop: 'memory.replace',
    fault: {
      defaultDevice: 'DIMM_A1',
      series: [
        { metric: 'ipmi_sensor_state', labels: { name: '{device}', type: 'Memory' }, value: 2 },
      ],
    },
  },
  {
    name: 'MemoryUncorrectableErrors',
    domain: 'Memory',
    description:
      'EDAC counted uncorrectable host memory errors in the last 24 hours; id = memory controller.',
    signal: 'node-exporter',
    expr: 'sum by (node, controller) (increase(node_edac_uncorrectable_errors_total[24h])) > 0',
    deviceLabel: 'controller',
    forMs: 0,
    clearForMs: 0,
    clear: '24 hours without a new uncorrectable error.',
    priority: 99,
    affectsLoad: true,
    deviceIdMode: 'id',
    sop: 'memory.replace',
    fault: {
      defaultDevice: '0',
      series: [
        {
          metric: 'node_edac_uncorrectable_errors_total',
          labels: { controller: '{device}' },
          add: 1,
        },
      ],
    },
  },
  {
    name: 'MemoryCorrectableErrors',
    domain: 'Memory',
    description:
      'More than 100 correctable host memory errors in an hour (a DIMM going bad). Record only.',
    signal: 'node-exporter',
    expr: 'sum by (node, controller) (increase(node_edac_correctable_errors_total[1h])) > 100',
    deviceLabel: 'controller',
    forMs: 0,
    clearForMs: 0,
    clear: 'Fewer than 100 correctable errors in the last hour.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'id',
    sop: null,
    fault: {
      defaultDevice: '0',
      series: [
        {
          metric: 'node_edac_correctable_errors_total',
          labels: { controller: '{device}' },
          add: 500,
        },
      ],
    },
  },
  {
    name: 'MemoryHardwareCorrupted',
    domain: 'Memory',
    description:
      'The kernel took memory pages offline as hardware-corrupted (poisoned); value = bytes.',
    signal: 'node-exporter',
    expr: 'max by (node) (node_memory_HardwareCorrupted_bytes) > 0',
    deviceLabel: '',
    forMs: 0,
    clearForMs: 10 * MIN,
    clear: 'No corrupted page left (after a reboot or DIMM replacement).',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'memory.replace',
    fault: { series: [{ metric: 'node_memory_HardwareCorrupted_bytes', labels: {}, value: 4096 }] },
  },
];
