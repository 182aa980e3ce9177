import type { CatalogueEntry, DeviceIdMode } from './types.js';

const MIN = 60_000;

/** Grouping of dcgm-exporter results: one series per GPU, keeping its PCI address. MIG instances collapse. */
const GPU = 'node, gpu, pci_bus_id';

/**
 * Present GPUs per node: any of the three families the dcgm-exporter captures always carry
 * (vGPU exports no temperature, sampled captures no XID).
 */
export const DCGM_ANY_GPU_SERIES =
  'DCGM_FI_DEV_GPU_TEMP or DCGM_FI_DEV_SM_CLOCK or DCGM_FI_DEV_XID_ERRORS';

/** GPUs dcgm-exporter reports per node: one per `gpu` index (the MIG instances of a GPU count once). */
const REPORTED_GPUS = `count by (node) (count by (node, gpu) (${DCGM_ANY_GPU_SERIES}))`;

/** MIG instances dcgm-exporter reports per node: one per GPU and `GPU_I_ID`. */
const REPORTED_MIG_INSTANCES =
  'count by (node) (count by (node, gpu, GPU_I_ID) (DCGM_FI_DEV_GPU_TEMP{GPU_I_ID!=""} ' +
  'or DCGM_FI_DEV_SM_CLOCK{GPU_I_ID!=""} or DCGM_FI_DEV_XID_ERRORS{GPU_I_ID!=""}))';

/** The device plugin's `nvidia.com/gpu` capacity: GPUs × time-slicing replicas, or MIG devices (single). */
const GPU_CAPACITY = 'max by (node) (kube_node_status_capacity{resource="nvidia_com_gpu"})';

/** Most GPUs per node read from GPU Feature Discovery's `nvidia.com/gpu.count` label. */
export const GFD_MAX_GPUS = 16;

/**
 * Physical GPUs per node from GPU Feature Discovery's `nvidia.com/gpu.count` label (exported by
 * kube-state-metrics when allow-listed), on nodes whose MIG strategy is not `single` (under it the
 * label counts MIG devices). PromQL cannot read a number out of a label value, so the value is
 * spelt out for 1 to GFD_MAX_GPUS.
 */
const GFD_GPUS =
  'max by (node) (' +
  Array.from(
    { length: GFD_MAX_GPUS },
    (_, i) =>
      `kube_node_labels{label_nvidia_com_gpu_count="${String(i + 1)}",label_nvidia_com_mig_strategy!="single"} * ${String(i + 1)}`,
  ).join(' or ') +
  ')';

/** Nodes whose GPU count GPU Feature Discovery's labels decide (the capacity fallback skips them). */
const GFD_DECIDES =
  'max by (node) (kube_node_labels{label_nvidia_com_gpu_count=~"[1-9]|1[0-6]"} ' +
  'or kube_node_labels{label_nvidia_com_mig_strategy="single"})';

/**
 * GpuDown: GPUs expected minus GPUs dcgm-exporter reports, comparing like with like.
 * - GFD labels, MIG strategy none or mixed: physical GPUs (`nvidia.com/gpu.count`) against the
 *   GPUs reported. Time-slicing multiplies the capacity, not this label; under the mixed strategy
 *   the capacity counts only the GPUs without MIG, the label counts them all.
 * - GFD labels, MIG strategy single: MIG devices advertised (the capacity) against the MIG
 *   instances reported.
 * - No GFD labels: the capacity against the GPUs reported, but only when the capacity is not a
 *   multiple of the GPUs reported (time-slicing replicas, or MIG devices per GPU, are): a lost
 *   GPU among 8 shows (8 % 7), losing exactly half or more of them may not (8 % 4 = 0).
 */
const GPU_DOWN_EXPR =
  `(${GFD_GPUS} - ${REPORTED_GPUS} > 0) ` +
  `or ((${GPU_CAPACITY} - ${REPORTED_MIG_INSTANCES} > 0) ` +
  'and on(node) max by (node) (kube_node_labels{label_nvidia_com_mig_strategy="single"})) ' +
  `or ((${GPU_CAPACITY} - ${REPORTED_GPUS} > 0) and (${GPU_CAPACITY} % ${REPORTED_GPUS} > 0) ` +
  `unless on(node) ${GFD_DECIDES})`;

/**
 * Nodes with a scrape target that answers with text Prometheus cannot parse: `up` is 0 although
 * samples were read (a target that is unreachable, times out or answers an HTTP error reads none).
 */
export const UNPARSABLE_TARGETS =
  'max by (node) ((up == 0) and on(node, job) (scrape_samples_scraped > 0))';

/** XID codes with a dedicated entry; everything else non-zero is XIDUnclassifiedErr. */
const CLASSIFIED_XIDS = [13, 31, 43, 45, 48, 63, 64, 74, 79, 92, 94, 95, 119, 120];

interface XidSpec {
  readonly code: number;
  readonly name: string;
  readonly description: string;
  readonly priority: number;
  readonly affectsLoad: boolean;
  readonly deviceIdMode: DeviceIdMode;
  readonly sop: string | null;
  readonly aliases?: readonly string[];
}

/**
 * An XID entry. DCGM_FI_DEV_XID_ERRORS holds the *last* XID of the GPU (not a count); it stays set
 * until the next XID or a driver reload, so the rule fires at once and clears after a reboot.
 */
function xid(spec: XidSpec): CatalogueEntry {
  return {
    name: spec.name,
    domain: 'GPU',
    description: spec.description,
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_XID_ERRORS == ${spec.code})`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 10 * MIN,
    clear: 'The GPU last XID is no longer this code (driver reload, reboot or a newer XID).',
    priority: spec.priority,
    affectsLoad: spec.affectsLoad,
    deviceIdMode: spec.deviceIdMode,
    sop: spec.sop,
    ...(spec.aliases === undefined ? {} : { aliases: spec.aliases }),
    fault: {
      defaultDevice: '0',
      series: [{ metric: 'DCGM_FI_DEV_XID_ERRORS', labels: { gpu: '{device}' }, value: spec.code }],
    },
  };
}

/** A condition the node check reports through aegis_nodecheck_problem{check=<name>}. */
function nodeCheckGpu(
  base: Omit<CatalogueEntry, 'domain' | 'signal' | 'expr' | 'deviceLabel' | 'fault'>,
  perDevice: boolean,
  defaultDevice: string,
): CatalogueEntry {
  const by = perDevice ? 'node, device' : 'node';
  return {
    ...base,
    domain: 'GPU',
    signal: 'aegis-nodecheck',
    expr: `max by (${by}) (aegis_nodecheck_problem{check="${base.name}"}) > 0`,
    deviceLabel: perDevice ? 'device' : '',
    fault: {
      ...(perDevice ? { defaultDevice } : {}),
      series: [
        {
          metric: 'aegis_nodecheck_problem',
          labels: perDevice ? { check: base.name, device: '{device}' } : { check: base.name },
          value: 1,
        },
      ],
    },
  };
}

/** Renames sichek's GPU `index` label to `gpu`, as dcgm-exporter names it. */
function sichekGpu(expr: string): string {
  return `label_replace(${expr}, "gpu", "$1", "index", "(.*)")`;
}

const XID_ENTRIES: readonly CatalogueEntry[] = [
  xid({
    code: 48,
    name: 'Xid48GPUMemoryDBE',
    description: 'XID 48: double-bit ECC error in GPU memory.',
    priority: 9,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'gpu.reboot',
    aliases: ['XIDECCMemoryErr'],
  }),
  xid({
    code: 63,
    name: 'Xid63ECCRowremapperPending',
    description: 'XID 63: a row remap was recorded; it takes effect at the next GPU reset.',
    priority: 9,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'gpu.reboot',
  }),
  xid({
    code: 64,
    name: 'Xid64ECCRowremapperFailure',
    description: 'XID 64: row remapping failed (no spare row).',
    priority: 9,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.reboot',
  }),
  xid({
    code: 95,
    name: 'Xid95UncontainedECCError',
    description: 'XID 95: uncontained ECC error; every process on the GPU is affected.',
    priority: 9,
    affectsLoad: true,
    deviceIdMode: 'index',
    sop: 'gpu.reboot',
  }),
  xid({
    code: 74,
    name: 'Xid74NVLinkError',
    description: 'XID 74: NVLink error.',
    priority: 2,
    affectsLoad: true,
    deviceIdMode: 'index',
    sop: 'gpu.reboot-once',
  }),
  xid({
    code: 79,
    name: 'Xid79GPULost',
    description: 'XID 79: the GPU has fallen off the bus.',
    priority: 2,
    affectsLoad: true,
    deviceIdMode: 'index',
    sop: 'gpu.reboot-once',
    aliases: ['XIDHWSystemErr'],
  }),
  xid({
    code: 94,
    name: 'Xid94ContainedECCError',
    description:
      'XID 94: contained ECC error; the faulting application was killed, the GPU needs a reset.',
    priority: 50,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.reboot',
  }),
  xid({
    code: 119,
    name: 'Xid119GspRpcTimeout',
    description: 'XID 119: GSP RPC timeout; the GPU stops answering until it is reset.',
    priority: 9,
    affectsLoad: true,
    deviceIdMode: 'index',
    sop: 'gpu.reboot',
  }),
  xid({
    code: 120,
    name: 'Xid120GspError',
    description: 'XID 120: GSP error; the GPU needs a reset.',
    priority: 9,
    affectsLoad: true,
    deviceIdMode: 'index',
    sop: 'gpu.reboot',
  }),
  xid({
    code: 92,
    name: 'Xid92HighSingleBitECCErrorRate',
    description: 'XID 92: high single-bit ECC error rate. Low risk, record only.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
  }),
  {
    name: 'XIDApplicationErr',
    domain: 'GPU',
    description:
      'XID 13, 31, 43 or 45: faults raised by the application (illegal access, MMU fault, stopped or ' +
      'pre-empted context). The GPU itself is healthy. Record only.',
    signal: 'dcgm-exporter',
    expr:
      `max by (${GPU}) (DCGM_FI_DEV_XID_ERRORS == 13 or DCGM_FI_DEV_XID_ERRORS == 31 ` +
      'or DCGM_FI_DEV_XID_ERRORS == 43 or DCGM_FI_DEV_XID_ERRORS == 45)',
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 10 * MIN,
    clear: 'The GPU last XID changes.',
    priority: 999,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: {
      defaultDevice: '0',
      series: [{ metric: 'DCGM_FI_DEV_XID_ERRORS', labels: { gpu: '{device}' }, value: 13 }],
    },
  },
  {
    name: 'XIDUnclassifiedErr',
    domain: 'GPU',
    description: `Any other non-zero XID (not ${CLASSIFIED_XIDS.join(', ')}). Record only; value = the XID.`,
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_XID_ERRORS != 0 ${CLASSIFIED_XIDS.map((c) => `!= ${c}`).join(' ')})`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 10 * MIN,
    clear: 'The GPU last XID changes.',
    priority: 999,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: {
      defaultDevice: '0',
      series: [{ metric: 'DCGM_FI_DEV_XID_ERRORS', labels: { gpu: '{device}' }, value: 61 }],
    },
  },
];

const NODE_CHECK_ENTRIES: readonly CatalogueEntry[] = [
  nodeCheckGpu(
    {
      name: 'GpuHung',
      description: 'The node check timed out querying the GPUs (nvidia-smi / NVML hang).',
      forMs: MIN,
      clearForMs: 10 * MIN,
      clear: 'GPU queries answer again for 10 minutes.',
      priority: 3,
      affectsLoad: false,
      deviceIdMode: 'all',
      sop: 'gpu.reboot',
    },
    false,
    '',
  ),
  nodeCheckGpu(
    {
      name: 'GpuCheckFailed',
      description:
        'The node GPU check failed; id = 8-character GPU bitmask (01000000 = GPU 1), value = failures.',
      forMs: 0,
      clearForMs: 10 * MIN,
      clear: 'The GPU check passes for 10 minutes.',
      priority: 3,
      affectsLoad: false,
      deviceIdMode: 'mask',
      sop: 'gpu.reboot',
    },
    true,
    '01000000',
  ),
  nodeCheckGpu(
    {
      name: 'GpuErrResetRequired',
      description:
        'The driver asks for a GPU reset (NVML recovery action or dmesg NvErrResetRequired).',
      forMs: 0,
      clearForMs: 10 * MIN,
      clear: 'No GPU asks for a reset (after the reboot).',
      priority: 50,
      affectsLoad: false,
      deviceIdMode: 'all',
      sop: 'gpu.reboot',
    },
    false,
    '',
  ),
];

const DCGM_ENTRIES: readonly CatalogueEntry[] = [
  {
    name: 'HighGpuTemp',
    domain: 'GPU',
    description: 'GPU core temperature above 80 °C for 5 minutes; value = °C.',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_GPU_TEMP) > 80`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 5 * MIN,
    clearForMs: 5 * MIN,
    clear: 'At or below 80 °C for 5 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'gpu.report',
    fault: {
      defaultDevice: '0',
      series: [{ metric: 'DCGM_FI_DEV_GPU_TEMP', labels: { gpu: '{device}' }, value: 92 }],
    },
  },
  {
    name: 'HighGpuMemoryTemp',
    domain: 'GPU',
    description:
      'GPU memory (HBM) temperature above 95 °C for 5 minutes; value = °C. The DCGM blank sentinel ' +
      '(9223372036854775794, unsupported field) is filtered out.',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_MEMORY_TEMP < 1e9) > 95`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 5 * MIN,
    clearForMs: 5 * MIN,
    clear: 'At or below 95 °C for 5 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'gpu.report',
    fault: {
      defaultDevice: '0',
      series: [{ metric: 'DCGM_FI_DEV_MEMORY_TEMP', labels: { gpu: '{device}' }, value: 101 }],
    },
  },
  {
    name: 'GpuRowRemappingFailure',
    domain: 'GPU',
    description: 'Row remapping failed on the GPU: it must be replaced (NVIDIA RMA policy).',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_ROW_REMAP_FAILURE) > 0`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 10 * MIN,
    clear: 'The GPU is replaced.',
    priority: 8,
    affectsLoad: true,
    deviceIdMode: 'none',
    sop: 'gpu.replace',
    fault: {
      defaultDevice: '0',
      series: [{ metric: 'DCGM_FI_DEV_ROW_REMAP_FAILURE', labels: { gpu: '{device}' }, value: 1 }],
    },
  },
  {
    name: 'GpuTooManyPageRetired',
    domain: 'GPU',
    description: 'At least 64 retired pages (DBE + SBE) on a pre-Ampere GPU: replace it.',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_RETIRED_DBE + DCGM_FI_DEV_RETIRED_SBE) >= 64`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 10 * MIN,
    clear: 'The GPU is replaced.',
    priority: 8,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.replace',
    fault: {
      defaultDevice: '0',
      series: [
        { metric: 'DCGM_FI_DEV_RETIRED_DBE', labels: { gpu: '{device}' }, add: 40 },
        { metric: 'DCGM_FI_DEV_RETIRED_SBE', labels: { gpu: '{device}' }, add: 30 },
      ],
    },
  },
  {
    name: 'GpuAggSramUncorrectable',
    domain: 'GPU',
    description: 'More than 4 uncorrectable SRAM ECC errors over the GPU lifetime: replace it.',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_ECC_DBE_AGG_SRM) > 4`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 10 * MIN,
    clear: 'The GPU is replaced.',
    priority: 8,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.replace',
    fault: {
      defaultDevice: '0',
      series: [{ metric: 'DCGM_FI_DEV_ECC_DBE_AGG_SRM', labels: { gpu: '{device}' }, add: 5 }],
    },
  },
  {
    name: 'GpuVolSramUncorrectable',
    domain: 'GPU',
    description: 'Uncorrectable SRAM ECC error since the last driver load.',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_ECC_DBE_VOL_SRM) > 0`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 10 * MIN,
    clear: 'The volatile counter resets (driver reload or reboot).',
    priority: 9,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.reboot',
    fault: {
      defaultDevice: '0',
      series: [{ metric: 'DCGM_FI_DEV_ECC_DBE_VOL_SRM', labels: { gpu: '{device}' }, value: 1 }],
    },
  },
  {
    name: 'GpuVolDramUncorrectable',
    domain: 'GPU',
    description:
      'More than 60 uncorrectable DRAM ECC errors since the last driver load (v1 rule). Record only.',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_ECC_DBE_VOL_TOTAL - DCGM_FI_DEV_ECC_DBE_VOL_SRM) > 60`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 10 * MIN,
    clear: 'The volatile counters reset (driver reload or reboot).',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.reboot',
    fault: {
      defaultDevice: '0',
      series: [
        { metric: 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', labels: { gpu: '{device}' }, value: 61 },
        { metric: 'DCGM_FI_DEV_ECC_DBE_VOL_SRM', labels: { gpu: '{device}' }, value: 0 },
      ],
    },
  },
  {
    name: 'GpuVolDramCorrectable',
    domain: 'GPU',
    description:
      'More than 1000 correctable DRAM ECC errors since the last driver load (v1 rule). Record only.',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_ECC_SBE_VOL_TOTAL - DCGM_FI_DEV_ECC_SBE_VOL_SRM) > 1000`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 10 * MIN,
    clear: 'The volatile counters reset (driver reload or reboot).',
    priority: 999,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: null,
    fault: {
      defaultDevice: '0',
      series: [
        { metric: 'DCGM_FI_DEV_ECC_SBE_VOL_TOTAL', labels: { gpu: '{device}' }, value: 1001 },
        { metric: 'DCGM_FI_DEV_ECC_SBE_VOL_SRM', labels: { gpu: '{device}' }, value: 0 },
      ],
    },
  },
  {
    name: 'GpuSmClkSlowDown',
    domain: 'GPU',
    description:
      'SM clock below 1000 MHz while the GPU is more than 80 % busy, for 10 minutes; value = MHz.',
    signal: 'dcgm-exporter',
    expr:
      `(max by (${GPU}) (DCGM_FI_DEV_SM_CLOCK) < 1000) ` +
      `and on(node, gpu) (max by (${GPU}) (DCGM_FI_DEV_GPU_UTIL) > 80)`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 10 * MIN,
    clearForMs: 10 * MIN,
    clear: 'SM clock normal under load for 10 minutes.',
    priority: 51,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.report',
    fault: {
      defaultDevice: '0',
      series: [
        { metric: 'DCGM_FI_DEV_SM_CLOCK', labels: { gpu: '{device}' }, value: 300 },
        { metric: 'DCGM_FI_DEV_GPU_UTIL', labels: { gpu: '{device}' }, value: 100 },
      ],
    },
  },
  {
    name: 'GpuHWSlowdown',
    domain: 'GPU',
    description: 'The HW-slowdown clock event (bit 0x8) is set for 5 minutes.',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_CLOCKS_EVENT_REASONS % 16) >= 8`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 5 * MIN,
    clearForMs: 10 * MIN,
    clear: 'The HW-slowdown bit is clear for 10 minutes.',
    priority: 99,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.report',
    aliases: ['GPUHWSlowdown'],
    fault: {
      defaultDevice: '0',
      series: [
        { metric: 'DCGM_FI_DEV_CLOCKS_EVENT_REASONS', labels: { gpu: '{device}' }, value: 8 },
      ],
    },
  },
  {
    name: 'GpuHWPowerBrakeSlowdown',
    domain: 'GPU',
    description:
      'The HW power-brake clock event (bit 0x80, external power brake from the PSU) is set. Record only.',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_CLOCKS_EVENT_REASONS % 256) >= 128`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 5 * MIN,
    clearForMs: 10 * MIN,
    clear: 'The power-brake bit is clear for 10 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: null,
    fault: {
      defaultDevice: '0',
      series: [
        { metric: 'DCGM_FI_DEV_CLOCKS_EVENT_REASONS', labels: { gpu: '{device}' }, value: 128 },
      ],
    },
  },
  {
    name: 'GpuThermalViolation',
    domain: 'GPU',
    description:
      'The GPU was thermally throttled more than 10 % of the last 10 minutes (violation time in µs).',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (increase(DCGM_FI_DEV_THERMAL_VIOLATION[10m])) > 60000000`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 0,
    clear: 'Throttled less than 10 % of a 10-minute window.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.report',
    fault: {
      defaultDevice: '0',
      series: [
        { metric: 'DCGM_FI_DEV_THERMAL_VIOLATION', labels: { gpu: '{device}' }, add: 120_000_000 },
      ],
    },
  },
  {
    name: 'GpuNvlinkError',
    domain: 'GPU',
    description:
      'NVLink recovery errors (a link went down and retrained) in the last 10 minutes. The health check also ' +
      'raises it (exit 24, NCCL test failure).',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (increase(DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL[10m])) > 0`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 10 * MIN,
    clear: 'No recovery error for 20 minutes.',
    priority: 3,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.reboot',
    fault: {
      defaultDevice: '0',
      series: [
        {
          metric: 'DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL',
          labels: { gpu: '{device}' },
          add: 2,
        },
      ],
    },
  },
  {
    name: 'GpuNvlinkCrcErrors',
    domain: 'GPU',
    description:
      'More than 100 NVLink CRC flit errors in 10 minutes (a degrading link). Record only.',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (increase(DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL[10m])) > 100`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 0,
    clear: 'At most 100 CRC errors in the last 10 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.report',
    fault: {
      defaultDevice: '0',
      series: [
        {
          metric: 'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL',
          labels: { gpu: '{device}' },
          add: 1000,
        },
      ],
    },
  },
  {
    name: 'GpuNvlinkReplayErrors',
    domain: 'GPU',
    description: 'More than 100 NVLink replay errors in 10 minutes. Record only.',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (increase(DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL[10m])) > 100`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 0,
    clear: 'At most 100 replay errors in the last 10 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.report',
    fault: {
      defaultDevice: '0',
      series: [
        {
          metric: 'DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL',
          labels: { gpu: '{device}' },
          add: 1000,
        },
      ],
    },
  },
  {
    name: 'GpuPcieReplayErrors',
    domain: 'GPU',
    description: 'More than 100 PCIe replays in an hour (a link-health precursor). Record only.',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (increase(DCGM_FI_DEV_PCIE_REPLAY_COUNTER[1h])) > 100`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 0,
    clear: 'At most 100 replays in the last hour.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.report',
    fault: {
      defaultDevice: '0',
      series: [
        { metric: 'DCGM_FI_DEV_PCIE_REPLAY_COUNTER', labels: { gpu: '{device}' }, add: 1000 },
      ],
    },
  },
  {
    name: 'GpuPageRetirementPending',
    domain: 'GPU',
    description:
      'Pages are pending retirement (pre-Ampere); they retire at the next reboot. Record only.',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_RETIRED_PENDING) > 0`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 0,
    clearForMs: 10 * MIN,
    clear: 'No page pending (after a reboot).',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.reboot',
    fault: {
      defaultDevice: '0',
      series: [{ metric: 'DCGM_FI_DEV_RETIRED_PENDING', labels: { gpu: '{device}' }, value: 1 }],
    },
  },
  {
    name: 'GpuPersistenceModeNotEnabled',
    domain: 'GPU',
    description: 'GPU persistence mode is off (nvidia-persistenced not running).',
    signal: 'dcgm-exporter',
    expr: `max by (${GPU}) (DCGM_FI_DEV_PERSISTENCE_MODE == bool 0) > 0`,
    deviceLabel: 'gpu',
    pciBdfLabel: 'pci_bus_id',
    forMs: 2 * MIN,
    clearForMs: 5 * MIN,
    clear: 'Persistence mode on for 5 minutes.',
    priority: 3,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'gpu.persistence',
    aliases: ['GPUPersistenceModeNotEnabled'],
    fault: {
      defaultDevice: '0',
      series: [{ metric: 'DCGM_FI_DEV_PERSISTENCE_MODE', labels: { gpu: '{device}' }, value: 0 }],
    },
  },
  {
    name: 'GpuDown',
    domain: 'GPU',
    description:
      'Fewer GPUs report to dcgm-exporter than the node has: a GPU fell off the bus and its series ' +
      "vanished; value = missing GPUs. Like is compared with like: GPU Feature Discovery's " +
      '`nvidia.com/gpu.count` (physical GPUs, through kube_node_labels) against the GPUs reported, ' +
      'the MIG instances of a GPU counting once, so time-slicing replicas and the MIG mixed strategy ' +
      'read right; under the MIG single strategy, MIG devices advertised against MIG instances ' +
      'reported. Without the GFD labels the nvidia.com/gpu capacity is used (value = capacity minus ' +
      'GPUs reported), and only when it is not a multiple of the GPUs reported (as time-slicing ' +
      'replicas make it).',
    signal: 'dcgm-exporter',
    expr: GPU_DOWN_EXPR,
    deviceLabel: '',
    forMs: MIN,
    clearForMs: 10 * MIN,
    clear: 'Every GPU reports again for 10 minutes.',
    priority: 2,
    affectsLoad: true,
    deviceIdMode: 'all',
    sop: 'gpu.reboot-once',
    fault: {
      defaultDevice: '0',
      series: [
        { metric: 'DCGM_FI_DEV_GPU_TEMP', labels: { gpu: '{device}' }, remove: true },
        { metric: 'DCGM_FI_DEV_SM_CLOCK', labels: { gpu: '{device}' }, remove: true },
        { metric: 'DCGM_FI_DEV_XID_ERRORS', labels: { gpu: '{device}' }, remove: true },
      ],
    },
  },
  {
    name: 'GpuMetricsHang',
    domain: 'GPU',
    description:
      'A node with GPU capacity has no dcgm-exporter series at all (exporter down or hung): every GPU rule ' +
      'of the node is stale. The SOP restarts the exporter pod. Not raised while a scrape target of the ' +
      'node answers with text Prometheus cannot parse (ExporterUnparsable): a restart cannot fix that.',
    signal: 'kube-state-metrics',
    expr:
      'max by (node) (kube_node_status_capacity{resource="nvidia_com_gpu"} > 0) ' +
      `unless on(node) count by (node) (${DCGM_ANY_GPU_SERIES}) ` +
      `unless on(node) ${UNPARSABLE_TARGETS}`,
    deviceLabel: '',
    forMs: 3 * MIN,
    clearForMs: 2 * MIN,
    clear: 'dcgm-exporter reports for the node again.',
    priority: 99,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'gpu.exporter-restart',
    aliases: ['DcgmExporterDown'],
    fault: {
      series: [
        { metric: 'DCGM_FI_DEV_GPU_TEMP', labels: {}, remove: true },
        { metric: 'DCGM_FI_DEV_SM_CLOCK', labels: {}, remove: true },
        { metric: 'DCGM_FI_DEV_XID_ERRORS', labels: {}, remove: true },
      ],
    },
  },
];

const OTHER_ENTRIES: readonly CatalogueEntry[] = [
  {
    name: 'GpuRegisterFailed',
    domain: 'GPU',
    description:
      'Allocatable nvidia.com/gpu is below capacity (device plugin marked GPUs unhealthy); value = missing.',
    signal: 'kube-state-metrics',
    expr:
      'max by (node) (kube_node_status_capacity{resource="nvidia_com_gpu"} ' +
      '- kube_node_status_allocatable{resource="nvidia_com_gpu"}) > 0',
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 5 * MIN,
    clear: 'Allocatable equals capacity for 5 minutes.',
    priority: 50,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'gpu.device-plugin',
    fault: {
      series: [
        { metric: 'kube_node_status_capacity', labels: { resource: 'nvidia_com_gpu' }, value: 8 },
        {
          metric: 'kube_node_status_allocatable',
          labels: { resource: 'nvidia_com_gpu' },
          value: 7,
        },
      ],
    },
  },
  {
    name: 'NvidiaFabricManagerNotActive',
    domain: 'GPU',
    description:
      'The nvidia-fabricmanager unit is not active (NVSwitch systems cannot run multi-GPU jobs).',
    signal: 'node-exporter',
    expr: 'max by (node) (node_systemd_unit_state{name="nvidia-fabricmanager.service",state="active"} == bool 0) > 0',
    deviceLabel: '',
    forMs: MIN,
    clearForMs: 5 * MIN,
    clear: 'nvidia-fabricmanager.service is active for 5 minutes.',
    priority: 2,
    affectsLoad: true,
    deviceIdMode: 'all',
    sop: 'gpu.fabricmanager',
    fault: {
      series: [
        {
          metric: 'node_systemd_unit_state',
          labels: { name: 'nvidia-fabricmanager.service', state: 'active' },
          value: 0,
        },
        {
          metric: 'node_systemd_unit_state',
          labels: { name: 'nvidia-fabricmanager.service', state: 'failed' },
          value: 1,
        },
      ],
    },
  },
  {
    name: 'GpuRowRemappingPending',
    domain: 'GPU',
    description: 'A row remap is pending on the GPU (sichek); it needs a GPU reset to take effect.',
    signal: 'sichek',
    expr: `max by (node, gpu) (${sichekGpu('sichek_nvidia_remapping_pending')}) > 0`,
    deviceLabel: 'gpu',
    forMs: 0,
    clearForMs: 10 * MIN,
    clear: 'No remap pending (after the reset).',
    priority: 9,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'gpu.reboot',
    aliases: ['GPURowRemappingPending'],
    fault: {
      defaultDevice: '0',
      series: [
        { metric: 'sichek_nvidia_remapping_pending', labels: { index: '{device}' }, value: 1 },
      ],
    },
  },
  {
    name: 'GpuPcieLinkDegraded',
    domain: 'GPU',
    description:
      'The GPU PCIe link runs below its maximum width, or below its maximum generation while the GPU is not ' +
      'idle (GPUs drop the generation when idle); value = current width or generation (sichek).',
    signal: 'sichek',
    expr:
      `max by (node, gpu) (${sichekGpu('sichek_nvidia_pci_width < sichek_nvidia_pci_width_max')}) ` +
      `or max by (node, gpu) (${sichekGpu(
        '(sichek_nvidia_pci_gen < sichek_nvidia_pci_gen_max) unless on(node, index) (sichek_nvidia_gpu_idle == 1)',
      )})`,
    deviceLabel: 'gpu',
    forMs: 5 * MIN,
    clearForMs: 10 * MIN,
    clear: 'Full width and generation for 10 minutes.',
    priority: 51,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.reboot-once',
    fault: {
      defaultDevice: '0',
      series: [
        { metric: 'sichek_nvidia_pci_width', labels: { index: '{device}' }, value: 8 },
        { metric: 'sichek_nvidia_pci_width_max', labels: { index: '{device}' }, value: 16 },
      ],
    },
  },
  {
    name: 'GpuNvlinkInactive',
    domain: 'GPU',
    description:
      'An NVLink of the GPU is supported but not enabled (sichek all_feature_enabled = 0).',
    signal: 'sichek',
    expr: `max by (node, gpu) (${sichekGpu('sichek_nvidia_all_feature_enabled == bool 0')}) > 0`,
    deviceLabel: 'gpu',
    forMs: MIN,
    clearForMs: 10 * MIN,
    clear: 'Every NVLink active for 10 minutes.',
    priority: 3,
    affectsLoad: false,
    deviceIdMode: 'index',
    sop: 'gpu.reboot',
    fault: {
      defaultDevice: '0',
      series: [
        { metric: 'sichek_nvidia_all_feature_enabled', labels: { index: '{device}' }, value: 0 },
      ],
    },
  },
  {
    name: 'GpuP2PNotSupported',
    domain: 'GPU',
    description: 'GPU peer-to-peer access is not possible between every GPU pair (sichek).',
    signal: 'sichek',
    expr: 'max by (node) (sichek_nvidia_p2p_global_connected{status="connected"} == bool 0) > 0',
    deviceLabel: '',
    forMs: MIN,
    clearForMs: 10 * MIN,
    clear: 'P2P works between every pair for 10 minutes.',
    priority: 4,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'gpu.reboot',
    fault: {
      series: [
        { metric: 'sichek_nvidia_p2p_global_connected', labels: { status: 'connected' }, value: 0 },
      ],
    },
  },
  {
    name: 'GPUIbgdaNotEnabled',
    domain: 'GPU',
    description:
      'The driver is not configured for IBGDA (EnableStreamMemOPs and PeerMappingOverride), per sichek.',
    signal: 'sichek',
    expr: 'max by (node) (sichek_nvidia_ibgda_status{status="enabled"} == bool 0) > 0',
    deviceLabel: '',
    forMs: MIN,
    clearForMs: 10 * MIN,
    clear: 'IBGDA enabled (after the driver is reconfigured).',
    priority: 50,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'gpu.report',
    fault: {
      series: [{ metric: 'sichek_nvidia_ibgda_status', labels: { status: 'enabled' }, value: 0 }],
    },
  },
];

/** GPU conditions: dcgm-exporter, sichek, the node check and kube-state-metrics. */
export const GPU_CONDITIONS: readonly CatalogueEntry[] = [
  ...NODE_CHECK_ENTRIES,
  ...XID_ENTRIES,
  ...DCGM_ENTRIES,
  ...OTHER_ENTRIES,
];
