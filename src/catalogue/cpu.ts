import type { CatalogueEntry } from './types.js';

const MIN = 60_000;

/**
 * Nodes whose every GPU is at work: dcgm-exporter reports each GPU's utilisation above 0 %. The
 * original skipped CPU and memory pressure when every GPU had a pod (it read the pod labels of
 * dcgm-exporter, which a scrape config names `pod` or `exported_pod`); utilisation is the signal
 * every dcgm-exporter has. A node without GPU series (dcgm-exporter silent) is not "busy", so
 * pressure there is acted on, as in the original.
 */
export const ALL_GPUS_BUSY = 'min by (node) (DCGM_FI_DEV_GPU_UTIL) > 0';

/** Host CPU conditions: saturation from node-exporter, processor health from the BMC. */
export const CPU_CONDITIONS: readonly CatalogueEntry[] = [
  {
    name: 'CPUPressure',
    domain: 'CPU',
    description:
      'CPU saturated: the 5-minute load average is at least 90 % of the core count; value = load per core in %. ' +
      'A gauge, so the condition holds exactly as long as the saturation. A node whose every GPU is at work ' +
      '(DCGM_FI_DEV_GPU_UTIL > 0 on each) is busy with its own jobs, not faulty: left alone, as in the original.',
    signal: 'node-exporter',
    expr:
      '(max by (node) (node_load5) / max by (node) (kube_node_status_capacity{resource="cpu"}) * 100 > 90) ' +
      `unless on(node) (${ALL_GPUS_BUSY})`,
    deviceLabel: '',
    forMs: 10 * MIN,
    clearForMs: 5 * MIN,
    clear: 'Load per core below 90 % for 5 minutes.',
    priority: 50,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'cpu.pressure',
    fault: { series: [{ metric: 'node_load5', labels: {}, value: 4096 }] },
  },
  {
    name: 'CpuUnhealthy',
    domain: 'CPU',
    description:
      'The BMC reports a processor sensor in warning or critical state; id = sensor name.',
    signal: 'ipmi-exporter',
    expr: 'max by (node, name) (ipmi_sensor_state{type="Processor"}) > 0',
    deviceLabel: 'name',
    forMs: 10 * MIN,
    clearForMs: 30 * MIN,
    clear: 'Every processor sensor nominal for 30 minutes.',
    priority: 99,
    affectsLoad: false,
    deviceIdMode: 'id',
    sop: 'cpu.replace',
    fault: {
      defaultDevice: 'CPU1 Status',
      series: [
        { metric: 'ipmi_sensor_state', labels: { name: '{device}', type: 'Processor' }, value: 2 },
      ],
    },
  },
  {
    name: 'CpuThermalThrottling',
    domain: 'CPU',
    description:
      'CPU packages were thermally throttled more than 100 times in 10 minutes (cooling problem). Record only.',
    signal: 'node-exporter',
    expr: 'sum by (node) (increase(node_cpu_package_throttles_total[10m])) > 100',
    deviceLabel: '',
    forMs: 0,
    clearForMs: 0,
    clear: 'Fewer than 100 throttle events in the last 10 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: {
      series: [{ metric: 'node_cpu_package_throttles_total', labels: { package: '0' }, add: 1000 }],
    },
  },
  {
    name: 'CpuMachineCheckError',
    domain: 'CPU',
    description:
      'The kernel logged a machine check exception in the last hour (node check, rule `mce`).',
    signal: 'aegis-nodecheck',
    expr: 'max by (node) (aegis_nodecheck_log_matches{source="kernel",rule="mce"}) > 0',
    deviceLabel: '',
    forMs: 0,
    clearForMs: 0,
    clear: 'No machine check in the node check window (1 hour).',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'cpu.replace',
    fault: {
      series: [
        {
          metric: 'aegis_nodecheck_log_matches',
          labels: { source: 'kernel', rule: 'mce' },
          value: 1,
        },
      ],
    },
  },
];
