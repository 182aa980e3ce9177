import type { CatalogueEntry } from './types.js';

const MIN = 60_000;

/** nvidia-peermem (GPUDirect RDMA) conditions from the node check. */
export const PEERMEM_CONDITIONS: readonly CatalogueEntry[] = [
  {
    name: 'PeerMemModuleNotReady',
    domain: 'PeerMem',
    description:
      'The nvidia_peermem module is not loaded: GPUDirect RDMA is off and NCCL falls back to host copies.',
    signal: 'aegis-nodecheck',
    expr: 'max by (node) (aegis_nodecheck_kernel_module_loaded{module="nvidia_peermem"} == bool 0) > 0',
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 10 * MIN,
    clear: 'The module is loaded for 10 minutes.',
    priority: 50,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'peermem.config',
    fault: {
      series: [
        {
          metric: 'aegis_nodecheck_kernel_module_loaded',
          labels: { module: 'nvidia_peermem' },
          value: 0,
        },
      ],
    },
  },
  {
    name: 'PeerMemModuleNotConfig',
    domain: 'PeerMem',
    description:
      'nvidia_peermem is not configured to load at boot (/etc/modules-load.d). Low risk.',
    signal: 'aegis-nodecheck',
    expr: 'max by (node) (aegis_nodecheck_kernel_module_configured{module="nvidia_peermem"} == bool 0) > 0',
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 10 * MIN,
    clear: 'The module is configured for 10 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'peermem.config',
    fault: {
      series: [
        {
          metric: 'aegis_nodecheck_kernel_module_configured',
          labels: { module: 'nvidia_peermem' },
          value: 0,
        },
      ],
    },
  },
];
