import { parser } from '@prometheus-io/lezer-promql';
import type { Signal } from './types.js';

/** Every signal, in the order the docs list them. */
export const SIGNALS: readonly Signal[] = [
  'kubernetes',
  'kube-state-metrics',
  'node-exporter',
  'dcgm-exporter',
  'ipmi-exporter',
  'gpfs-exporter',
  'sichek',
  'aegis-nodecheck',
  'node-problem-detector',
  'prometheus',
];

/**
 * Series Prometheus makes itself for every scrape target (not exporter metrics, so not in METRICS):
 * `up` is 0 while the target's last scrape failed (unreachable, timed out, an HTTP error, or an
 * answer Prometheus could not parse), and `scrape_samples_scraped` counts the samples it read
 * (more than 0 with `up` 0: the exporter answered, but with text Prometheus cannot parse).
 */
export const PROMETHEUS_SERIES: readonly string[] = ['up', 'scrape_samples_scraped'];

/**
 * The series of `families` per node and scrape target, keeping the targets whose last scrape
 * succeeded. A target whose scrape fails (`up` 0) keeps its last samples visible for the 5-minute
 * lookback (a parse error writes no staleness markers; Prometheus 2.42,
 * test/prometheus/real-exporters.test.ts): without this, a silent exporter would read as present,
 * its last values as current, for 5 minutes. Every scraped series carries its target's `job` and
 * `instance`, so the match needs no job names; it is made per target, after the series are
 * counted, so it costs one lookup per target rather than per series.
 */
export function scraped(families: string): string {
  return `count by (node, job, instance) (${families}) unless on(job, instance) (up == 0)`;
}

/**
 * Per signal, PromQL returning one series per node whose exporter is reporting now (null: always
 * present): the node has series of the exporter's families and the target that served them is
 * scraped successfully (see `scraped`). The inspector marks a node's rules that read that signal
 * stale when the node is missing here, so a silent or unparsable exporter never reads as healthy
 * nor as a fault. dcgm-exporter is present when any of three families is: vGPU exports no
 * temperature, sampled exports no XID.
 */
export const SIGNAL_PRESENCE: Readonly<Record<Signal, string | null>> = {
  kubernetes: null,
  prometheus: null,
  'kube-state-metrics': `count by (node) (${scraped('kube_node_info')})`,
  'node-exporter': `count by (node) (${scraped('node_boot_time_seconds')})`,
  'dcgm-exporter': `count by (node) (${scraped(
    'DCGM_FI_DEV_GPU_TEMP or DCGM_FI_DEV_SM_CLOCK or DCGM_FI_DEV_XID_ERRORS',
  )})`,
  'ipmi-exporter': `count by (node) (${scraped('ipmi_sensor_state')})`,
  'gpfs-exporter': `count by (node) (${scraped('gpfs_state')})`,
  sichek: `count by (node) (${scraped('sichek_nvidia_device_count or sichek_infiniband_hca_num')})`,
  'aegis-nodecheck': `count by (node) (${scraped('aegis_nodecheck_up')})`,
  'node-problem-detector': `count by (node) (${scraped('problem_gauge or problem_counter')})`,
};

/** Who produces a signal and what a site must enable for the catalogue to see it. */
export const SIGNAL_SOURCES: Readonly<Record<Signal, string>> = {
  kubernetes:
    'The Kubernetes API (node Ready condition and spec.unschedulable), read by Aegis itself.',
  'kube-state-metrics':
    'kube-state-metrics v2; `kube_node_labels` needs `--metric-labels-allowlist=nodes=[aegis.io/disable,' +
    'nvidia.com/gpu.count,nvidia.com/mig.strategy]` (the GPU Feature Discovery labels give GpuDown the number ' +
    'of physical GPUs under time-slicing and MIG; without them it falls back to the GPU capacity).',
  'node-exporter':
    'prometheus/node_exporter >= 1.5 with the default collectors plus `--collector.systemd` ' +
    '(`--collector.systemd.enable-start-time-metrics`), `--collector.processes`; infiniband, bonding, edac, ' +
    'thermal_throttle, vmstat, timex and conntrack are on by default.',
  'dcgm-exporter':
    'NVIDIA dcgm-exporter; enable the ECC, retired-page, NVLink error, persistence, clock-event and ' +
    'violation fields in its counters CSV (they are commented out by default).',
  'ipmi-exporter':
    'prometheus-community/ipmi_exporter (ipmi, bmc and chassis collectors), one target per node.',
  'gpfs-exporter':
    'treydock/gpfs_exporter with the mmgetstate, mount, verbs, mmhealth and waiter collectors.',
  sichek:
    'scitix/sichek daemon with its Prometheus endpoint (metric names as in sichek `components/*/metrics`; ' +
    'the GPU `index` and HCA `ib_dev` labels are renamed to `gpu` / `device` by the rules).',
  'aegis-nodecheck':
    "Aegis's node-check exporter (a DaemonSet; any checker that exports these names works, e.g. an NPD " +
    'plug-in or a textfile collector).',
  'node-problem-detector':
    'kubernetes/node-problem-detector with its Prometheus exporter reachable (`--prometheus-address=0.0.0.0`, ' +
    'port 20257); its Node conditions are read from the node watch as well (src/catalogue/npd.ts).',
  prometheus:
    'Prometheus itself: `up` and `scrape_samples_scraped` of every scrape target (a target whose scrape ' +
    'fails makes its exporter stale for the nodes it serves; one that answers unparsable text raises ' +
    'ExporterUnparsable), and rules that compare an exporter against its own history (exporter-down rules).',
};

/** One metric the catalogue reads: the contract between a site's exporters and Aegis. */
export interface MetricSpec {
  readonly name: string;
  /** The exporter that produces it. */
  readonly signal: Signal;
  readonly kind: 'gauge' | 'counter';
  /** Labels the rules rely on, besides `node` (every series carries `node`, see docs/exporters.md). */
  readonly labels: readonly string[];
  /**
   * Value on a healthy node when one value fits, else null. Counters are read through increase(),
   * so for them the healthy state is "constant"; the value given is the usual start (0).
   */
  readonly healthy: number | null;
  readonly help: string;
  /**
   * The exporter's collector that produces it, where the exporter reports each collector's health
   * (COLLECTOR_HEALTH): a failing collector makes the rules reading this metric stale on that node.
   */
  readonly collector?: string;
}

const DCGM_GPU = ['gpu', 'UUID', 'device', 'modelName', 'pci_bus_id', 'Hostname'];

/** A dcgm-exporter field, per GPU. */
function dcgm(
  name: string,
  kind: MetricSpec['kind'],
  healthy: number | null,
  help: string,
): MetricSpec {
  return { name, signal: 'dcgm-exporter', kind, labels: DCGM_GPU, healthy, help };
}

/**
 * node_exporter's collector of a metric, by name prefix (first match; the collector names of
 * `node_scrape_collector_success{collector}`, see node_exporter's collector/*.go).
 */
const NODE_COLLECTORS: readonly (readonly [prefix: string, collector: string])[] = [
  ['node_boot_time_seconds', 'stat'],
  ['node_procs_', 'stat'],
  ['node_load', 'loadavg'],
  ['node_cpu_package_throttles', 'thermal_throttle'],
  ['node_memory_', 'meminfo'],
  ['node_edac_', 'edac'],
  ['node_filesystem_', 'filesystem'],
  ['node_disk_', 'diskstats'],
  ['node_network_carrier', 'netclass'],
  ['node_network_', 'netdev'],
  ['node_bonding_', 'bonding'],
  ['node_nf_conntrack_', 'conntrack'],
  ['node_infiniband_', 'infiniband'],
  ['node_systemd_', 'systemd'],
  ['node_processes_', 'processes'],
  ['node_vmstat_', 'vmstat'],
  ['node_timex_', 'timex'],
  ['node_filefd_', 'filefd'],
];

/** A node-exporter metric, with its collector. */
function nodeExp(
  name: string,
  kind: MetricSpec['kind'],
  labels: readonly string[],
  healthy: number | null,
  help: string,
): MetricSpec {
  const collector = NODE_COLLECTORS.find(([prefix]) => name.startsWith(prefix))?.[1];
  if (collector === undefined) throw new Error(`signals: no node_exporter collector for ${name}`);
  return { name, signal: 'node-exporter', kind, labels, healthy, help, collector };
}

/** A sichek gauge. */
function sichek(
  name: string,
  labels: readonly string[],
  healthy: number | null,
  help: string,
): MetricSpec {
  return { name, signal: 'sichek', kind: 'gauge', labels, healthy, help };
}

/** An Aegis agent gauge per Mellanox HCA PCI function (`device` = HCA, `pci_bdf` = its address). */
function hcaPcie(name: string, healthy: number | null, help: string): MetricSpec {
  return {
    name,
    signal: 'aegis-nodecheck',
    kind: 'gauge',
    labels: ['device', 'pci_bdf'],
    healthy,
    help,
  };
}

/** Every metric any catalogue expression or presence query reads (a test keeps the two in step). */
export const METRICS: readonly MetricSpec[] = [
  // kube-state-metrics
  {
    name: 'kube_node_info',
    signal: 'kube-state-metrics',
    kind: 'gauge',
    labels: [],
    healthy: 1,
    help: 'One series per node.',
  },
  {
    name: 'kube_node_labels',
    signal: 'kube-state-metrics',
    kind: 'gauge',
    labels: ['label_aegis_io_disable', 'label_nvidia_com_gpu_count'],
    healthy: 1,
    help:
      "Allowlisted node labels as label_* labels: `aegis.io/disable`, and GPU Feature Discovery's " +
      '`nvidia.com/gpu.count` (physical GPUs; MIG devices under the single strategy) and ' +
      '`nvidia.com/mig.strategy` (set only when MIG is on).',
  },
  {
    name: 'kube_node_spec_unschedulable',
    signal: 'kube-state-metrics',
    kind: 'gauge',
    labels: [],
    healthy: 0,
    help: '1 when the node is cordoned.',
  },
  {
    name: 'kube_node_status_condition',
    signal: 'kube-state-metrics',
    kind: 'gauge',
    labels: ['condition', 'status'],
    healthy: null,
    help: 'One-hot over status true/false/unknown per condition; healthy: Ready true=1, pressures false=1.',
  },
  {
    name: 'kube_node_status_capacity',
    signal: 'kube-state-metrics',
    kind: 'gauge',
    labels: ['resource', 'unit'],
    healthy: null,
    help: 'Capacity per resource; the rules read resource="nvidia_com_gpu", "rdma_hca_shared_devices_all" and "cpu" (the core count, instead of counting per-CPU series).',
  },
  {
    name: 'kube_node_status_allocatable',
    signal: 'kube-state-metrics',
    kind: 'gauge',
    labels: ['resource', 'unit'],
    healthy: null,
    help: 'Allocatable per resource; equals capacity for nvidia_com_gpu on a healthy node.',
  },
  {
    name: 'kube_pod_info',
    signal: 'kube-state-metrics',
    kind: 'gauge',
    labels: ['namespace', 'pod', 'created_by_kind', 'created_by_name'],
    healthy: 1,
    help: 'Pod to node mapping (its `node` label is the pod node) and the pod owner (`created_by_kind`, `created_by_name`).',
  },
  {
    name: 'kube_pod_container_status_terminated_reason',
    signal: 'kube-state-metrics',
    kind: 'gauge',
    labels: ['namespace', 'pod', 'container', 'reason'],
    healthy: null,
    help: 'Last termination reason of a container; reason="StartError" is a fault.',
  },
  {
    name: 'kube_pod_deletion_timestamp',
    signal: 'kube-state-metrics',
    kind: 'gauge',
    labels: ['namespace', 'pod'],
    healthy: null,
    help: 'The pod deletionTimestamp, Unix time: deletion request plus grace period (present only while terminating).',
  },
  {
    name: 'kube_pod_container_status_running',
    signal: 'kube-state-metrics',
    kind: 'gauge',
    labels: ['namespace', 'pod', 'container'],
    healthy: null,
    help: 'Whether the kubelet reports the container running; 1 on a pod long past its deletionTimestamp means the kubelet has not stopped it.',
  },
  // node-exporter
  {
    name: 'node_scrape_collector_success',
    signal: 'node-exporter',
    kind: 'gauge',
    labels: ['collector'],
    healthy: 1,
    help: '0 when the collector failed this scrape: the rules reading its metrics are stale on the node.',
  },
  nodeExp('node_boot_time_seconds', 'gauge', [], null, 'Boot time; a change is a reboot.'),
  nodeExp('node_load5', 'gauge', [], null, '5-minute load average.'),
  nodeExp('node_load15', 'gauge', [], null, '15-minute load average.'),
  nodeExp(
    'node_cpu_package_throttles_total',
    'counter',
    ['package'],
    0,
    'Thermal throttle events per CPU package (socket).',
  ),
  nodeExp('node_memory_MemAvailable_bytes', 'gauge', [], null, 'Available memory.'),
  nodeExp('node_memory_MemTotal_bytes', 'gauge', [], null, 'Total memory.'),
  nodeExp(
    'node_memory_HardwareCorrupted_bytes',
    'gauge',
    [],
    0,
    'Memory taken offline as poisoned.',
  ),
  nodeExp(
    'node_edac_correctable_errors_total',
    'counter',
    ['controller'],
    0,
    'EDAC correctable errors.',
  ),
  nodeExp(
    'node_edac_uncorrectable_errors_total',
    'counter',
    ['controller'],
    0,
    'EDAC uncorrectable errors.',
  ),
  nodeExp(
    'node_filesystem_avail_bytes',
    'gauge',
    ['device', 'fstype', 'mountpoint'],
    null,
    'Free space for users.',
  ),
  nodeExp(
    'node_filesystem_size_bytes',
    'gauge',
    ['device', 'fstype', 'mountpoint'],
    null,
    'Filesystem size.',
  ),
  nodeExp(
    'node_filesystem_files_free',
    'gauge',
    ['device', 'fstype', 'mountpoint'],
    null,
    'Free inodes.',
  ),
  nodeExp(
    'node_filesystem_files',
    'gauge',
    ['device', 'fstype', 'mountpoint'],
    null,
    'Total inodes.',
  ),
  nodeExp(
    'node_filesystem_readonly',
    'gauge',
    ['device', 'fstype', 'mountpoint'],
    0,
    '1 when mounted read-only.',
  ),
  nodeExp(
    'node_filesystem_device_error',
    'gauge',
    ['device', 'fstype', 'mountpoint'],
    0,
    '1 when stat() failed.',
  ),
  nodeExp(
    'node_disk_io_time_seconds_total',
    'counter',
    ['device'],
    null,
    'Seconds the device was busy.',
  ),
  nodeExp('node_network_carrier', 'gauge', ['device'], 1, 'Carrier of an up interface.'),
  nodeExp(
    'node_network_carrier_down_changes_total',
    'counter',
    ['device'],
    null,
    'Carrier losses.',
  ),
  nodeExp('node_network_receive_errs_total', 'counter', ['device'], 0, 'Receive errors.'),
  nodeExp('node_network_transmit_errs_total', 'counter', ['device'], 0, 'Transmit errors.'),
  nodeExp('node_bonding_slaves', 'gauge', ['master'], null, 'Slaves of the bond.'),
  nodeExp(
    'node_bonding_active',
    'gauge',
    ['master'],
    null,
    'Active slaves of the bond; equals slaves when healthy.',
  ),
  nodeExp('node_nf_conntrack_entries', 'gauge', [], null, 'Conntrack entries in use.'),
  nodeExp('node_nf_conntrack_entries_limit', 'gauge', [], null, 'Conntrack table size.'),
  nodeExp(
    'node_infiniband_state_id',
    'gauge',
    ['device', 'port'],
    4,
    'Port logical state: 4 = ACTIVE.',
  ),
  nodeExp(
    'node_infiniband_physical_state_id',
    'gauge',
    ['device', 'port'],
    5,
    'Port physical state: 5 = LinkUp.',
  ),
  nodeExp(
    'node_infiniband_link_downed_total',
    'counter',
    ['device', 'port'],
    0,
    'Link-down events.',
  ),
  nodeExp(
    'node_infiniband_link_error_recovery_total',
    'counter',
    ['device', 'port'],
    0,
    'Link retrains.',
  ),
  nodeExp(
    'node_infiniband_port_errors_received_total',
    'counter',
    ['device', 'port'],
    0,
    'Receive errors.',
  ),
  nodeExp(
    'node_infiniband_port_discards_transmitted_total',
    'counter',
    ['device', 'port'],
    0,
    'Transmit discards.',
  ),
  nodeExp('node_infiniband_symbol_error_total', 'counter', ['device', 'port'], 0, 'Symbol errors.'),
  nodeExp(
    'node_systemd_unit_state',
    'gauge',
    ['name', 'state'],
    null,
    'One-hot unit state (systemd collector).',
  ),
  nodeExp(
    'node_systemd_unit_start_time_seconds',
    'gauge',
    ['name'],
    null,
    'Unit start time (systemd collector).',
  ),
  nodeExp(
    'node_processes_state',
    'gauge',
    ['state'],
    null,
    'Processes per state (processes collector).',
  ),
  nodeExp('node_processes_pids', 'gauge', [], null, 'PIDs in use (processes collector).'),
  nodeExp('node_processes_max_processes', 'gauge', [], null, 'pid_max (processes collector).'),
  nodeExp('node_procs_blocked', 'gauge', [], 0, 'Processes blocked on I/O (D state).'),
  nodeExp(
    'node_vmstat_oom_kill',
    'counter',
    [],
    0,
    'OOM kills (vmstat collector, oom_kill field).',
  ),
  nodeExp('node_timex_sync_status', 'gauge', [], 1, '1 when the kernel clock is synchronised.'),
  nodeExp('node_filefd_allocated', 'gauge', [], null, 'Allocated file descriptors.'),
  nodeExp('node_filefd_maximum', 'gauge', [], null, 'Maximum file descriptors.'),
  // dcgm-exporter
  dcgm('DCGM_FI_DEV_GPU_TEMP', 'gauge', null, 'GPU temperature (°C), ~30-60 healthy.'),
  dcgm(
    'DCGM_FI_DEV_MEMORY_TEMP',
    'gauge',
    null,
    'HBM temperature (°C); 0 on vGPU; 9223372036854775794 = blank.',
  ),
  dcgm('DCGM_FI_DEV_SM_CLOCK', 'gauge', null, 'SM clock (MHz).'),
  dcgm('DCGM_FI_DEV_GPU_UTIL', 'gauge', null, 'GPU utilisation (%).'),
  dcgm(
    'DCGM_FI_DEV_XID_ERRORS',
    'gauge',
    0,
    'Last XID of the GPU (0 = none); newer exporters add err_code/err_msg.',
  ),
  dcgm(
    'DCGM_FI_DEV_CLOCKS_EVENT_REASONS',
    'gauge',
    0,
    'Clock event reason bitmask (0x8 HW slowdown, 0x80 power brake).',
  ),
  dcgm('DCGM_FI_DEV_PERSISTENCE_MODE', 'gauge', 1, 'Persistence mode (1 = on).'),
  dcgm('DCGM_FI_DEV_ROW_REMAP_FAILURE', 'gauge', 0, 'Row remapping failed.'),
  dcgm('DCGM_FI_DEV_RETIRED_DBE', 'counter', 0, 'Pages retired for double-bit errors.'),
  dcgm('DCGM_FI_DEV_RETIRED_SBE', 'counter', 0, 'Pages retired for single-bit errors.'),
  dcgm('DCGM_FI_DEV_RETIRED_PENDING', 'counter', 0, 'Pages pending retirement.'),
  dcgm('DCGM_FI_DEV_ECC_DBE_AGG_SRM', 'counter', 0, 'Lifetime uncorrectable SRAM ECC errors.'),
  dcgm(
    'DCGM_FI_DEV_ECC_DBE_VOL_SRM',
    'counter',
    0,
    'Uncorrectable SRAM ECC errors since driver load.',
  ),
  dcgm(
    'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL',
    'counter',
    0,
    'Uncorrectable ECC errors since driver load.',
  ),
  dcgm(
    'DCGM_FI_DEV_ECC_SBE_VOL_SRM',
    'counter',
    0,
    'Correctable SRAM ECC errors since driver load.',
  ),
  dcgm('DCGM_FI_DEV_ECC_SBE_VOL_TOTAL', 'counter', 0, 'Correctable ECC errors since driver load.'),
  dcgm('DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL', 'counter', 0, 'NVLink CRC flit errors.'),
  dcgm('DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL', 'counter', 0, 'NVLink replay errors.'),
  dcgm('DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL', 'counter', 0, 'NVLink recovery errors.'),
  dcgm('DCGM_FI_DEV_PCIE_REPLAY_COUNTER', 'counter', 0, 'PCIe replays.'),
  dcgm('DCGM_FI_DEV_THERMAL_VIOLATION', 'counter', 0, 'Time throttled for thermal reasons (µs).'),
  // ipmi_exporter
  ...[
    'ipmi_fan_speed_state',
    'ipmi_temperature_state',
    'ipmi_voltage_state',
    'ipmi_power_state',
    'ipmi_current_state',
  ].map((name): MetricSpec => ({
    name,
    signal: 'ipmi-exporter',
    kind: 'gauge',
    labels: ['id', 'name'],
    healthy: 0,
    help: 'Sensor state: 0 nominal, 1 warning, 2 critical (NaN when unreadable).',
    collector: 'ipmi',
  })),
  {
    name: 'ipmi_sensor_state',
    signal: 'ipmi-exporter',
    kind: 'gauge',
    labels: ['id', 'name', 'type'],
    healthy: 0,
    help: 'Generic sensor state: 0 nominal, 1 warning, 2 critical; Entity Presence 2 is a known false critical.',
    collector: 'ipmi',
  },
  {
    name: 'ipmi_chassis_drive_fault_state',
    signal: 'ipmi-exporter',
    kind: 'gauge',
    labels: [],
    healthy: 1,
    help: 'Inverted: 1 = no drive fault, 0 = fault.',
    collector: 'chassis',
  },
  {
    name: 'ipmi_up',
    signal: 'ipmi-exporter',
    kind: 'gauge',
    labels: ['collector'],
    healthy: 1,
    help: '0 when the collector (ipmi, chassis, bmc, sel) failed: the rules reading its metrics are stale on the node.',
  },
  // gpfs_exporter
  {
    name: 'gpfs_state',
    signal: 'gpfs-exporter',
    kind: 'gauge',
    labels: ['state'],
    healthy: null,
    help: 'One-hot mmgetstate (active, arbitrating, down, unknown); healthy: active=1.',
    collector: 'mmgetstate',
  },
  {
    name: 'gpfs_mount_status',
    signal: 'gpfs-exporter',
    kind: 'gauge',
    labels: ['mount'],
    healthy: 1,
    help: '1 when an fstab GPFS filesystem is mounted.',
    collector: 'mount',
  },
  {
    name: 'gpfs_verbs_status',
    signal: 'gpfs-exporter',
    kind: 'gauge',
    labels: [],
    healthy: 1,
    help: '1 when verbs RDMA is started.',
    collector: 'verbs',
  },
  {
    name: 'gpfs_health_status',
    signal: 'gpfs-exporter',
    kind: 'gauge',
    labels: ['component', 'entityname', 'entitytype', 'status'],
    healthy: null,
    help: 'One-hot mmhealth status per entity; HEALTHY or TIPS is healthy.',
    collector: 'mmhealth',
  },
  {
    name: 'gpfs_waiter_seconds_count',
    signal: 'gpfs-exporter',
    kind: 'gauge',
    labels: [],
    healthy: null,
    help: 'Current waiters (histogram snapshot).',
    collector: 'waiter',
  },
  {
    name: 'gpfs_waiter_seconds_bucket',
    signal: 'gpfs-exporter',
    kind: 'gauge',
    labels: ['le'],
    healthy: null,
    help: 'Current waiters by age; healthy: bucket le="300" equals the count.',
    collector: 'waiter',
  },
  {
    name: 'gpfs_exporter_collect_error',
    signal: 'gpfs-exporter',
    kind: 'gauge',
    labels: ['collector'],
    healthy: 0,
    help: '1 when the collector failed: the rules reading its metrics are stale on the node.',
  },
  {
    name: 'gpfs_exporter_collect_timeout',
    signal: 'gpfs-exporter',
    kind: 'gauge',
    labels: ['collector'],
    healthy: 0,
    help: '1 when the collector timed out: the rules reading its metrics are stale on the node.',
  },
  // sichek
  sichek('sichek_nvidia_device_count', [], null, 'GPUs seen by NVML.'),
  sichek('sichek_nvidia_remapping_pending', ['index'], 0, 'Row remap pending (1 = yes).'),
  sichek(
    'sichek_nvidia_all_feature_enabled',
    ['index'],
    1,
    'Every supported NVLink of the GPU enabled.',
  ),
  sichek('sichek_nvidia_pci_gen', ['index'], null, 'Current PCIe generation.'),
  sichek('sichek_nvidia_pci_gen_max', ['index'], null, 'Maximum PCIe generation.'),
  sichek(
    'sichek_nvidia_pci_width',
    ['index'],
    null,
    'Current PCIe width; equals the maximum when healthy.',
  ),
  sichek('sichek_nvidia_pci_width_max', ['index'], null, 'Maximum PCIe width.'),
  sichek('sichek_nvidia_gpu_idle', ['index'], null, 'GPU idle clock event (1 = idle).'),
  sichek(
    'sichek_nvidia_p2p_global_connected',
    ['status'],
    1,
    'Every GPU pair can do P2P (status="connected").',
  ),
  sichek(
    'sichek_nvidia_ibgda_status',
    ['status'],
    1,
    'Driver configured for IBGDA (status="enabled").',
  ),
  sichek('sichek_infiniband_hca_num', [], null, 'Mellanox HCA PCI functions found.'),
  sichek(
    'sichek_infiniband_hca_pci_num',
    [],
    null,
    'HCAs registered in the RDMA stack; equals hca_num when healthy.',
  ),
  sichek(
    'sichek_infiniband_port_speed_state',
    ['ib_dev'],
    0,
    '1 when the port rate is below spec.',
  ),
  // aegis node check (defined by Aegis)
  {
    name: 'aegis_nodecheck_up',
    signal: 'aegis-nodecheck',
    kind: 'gauge',
    labels: [],
    healthy: 1,
    help: 'Always 1 while the node check runs (its presence is the signal).',
  },
  {
    name: 'aegis_nodecheck_problem',
    signal: 'aegis-nodecheck',
    kind: 'gauge',
    labels: ['check', 'device'],
    healthy: 0,
    help:
      'Magnitude (>= 1) while the check named by `check` (an Aegis condition name) fails, else 0; ' +
      '`device` names the GPU mask, HCA or disk for per-device checks and is absent otherwise.',
  },
  {
    name: 'aegis_nodecheck_log_matches',
    signal: 'aegis-nodecheck',
    kind: 'gauge',
    labels: ['source', 'rule', 'device'],
    healthy: 0,
    help:
      'Log lines matching `rule` in the last hour (source="kernel": dmesg plus the previous boot from ' +
      'pstore/journal; source="mmfs": mmfs.log); `device` when the line names an interface.',
  },
  {
    name: 'aegis_nodecheck_kernel_module_loaded',
    signal: 'aegis-nodecheck',
    kind: 'gauge',
    labels: ['module'],
    healthy: 1,
    help: '1 when the module is in /proc/modules (one series per expected module).',
  },
  {
    name: 'aegis_nodecheck_kernel_module_configured',
    signal: 'aegis-nodecheck',
    kind: 'gauge',
    labels: ['module'],
    healthy: 1,
    help: '1 when the module is listed in /etc/modules-load.d.',
  },
  hcaPcie(
    'aegis_nodecheck_hca_pcie_link_speed_gts',
    null,
    'Current PCIe link speed of the HCA in GT/s (sysfs `current_link_speed`; 0 = Unknown, no link).',
  ),
  hcaPcie(
    'aegis_nodecheck_hca_pcie_link_max_speed_gts',
    null,
    'Fastest speed the HCA link can train at: the lower of the HCA’s and its upstream port’s `max_link_speed`.',
  ),
  hcaPcie(
    'aegis_nodecheck_hca_pcie_link_width',
    null,
    'Current PCIe link width of the HCA in lanes (sysfs `current_link_width`).',
  ),
  hcaPcie(
    'aegis_nodecheck_hca_pcie_link_max_width',
    null,
    'Widest link the HCA can train at: the lower of the HCA’s and its upstream port’s `max_link_width`.',
  ),
  hcaPcie(
    'aegis_nodecheck_hca_pcie_max_read_request_bytes',
    4096,
    'PCIe Max Read Request Size of the HCA in bytes (Device Control, read from its PCI config space as root).',
  ),
  // node-problem-detector (pkg/problemmetrics/problem_metrics.go)
  {
    name: 'problem_gauge',
    signal: 'node-problem-detector',
    kind: 'gauge',
    labels: ['type', 'reason'],
    healthy: 0,
    help: 'Whether a specific type of problem is affecting the node or not (1 while an NPD permanent problem holds).',
  },
  {
    name: 'problem_counter',
    signal: 'node-problem-detector',
    kind: 'counter',
    labels: ['reason'],
    healthy: 0,
    help: 'Number of times a specific type of problem have occurred (NPD temporary problems).',
  },
];

/** Metric names an expression selects, in order of first use (parsed with the Prometheus grammar). */
export function metricNamesOf(expr: string): readonly string[] {
  const names: string[] = [];
  const cursor = parser.parse(expr).cursor();
  do {
    if (cursor.name === 'Identifier') {
      const name = expr.slice(cursor.from, cursor.to);
      if (!names.includes(name)) names.push(name);
    }
  } while (cursor.next());
  return names;
}

/** Collectors of a signal that produce a metric the catalogue reads, sorted. */
function collectorsOf(signal: Signal): string {
  const names = new Set<string>();
  for (const m of METRICS)
    if (m.signal === signal && m.collector !== undefined) names.add(m.collector);
  return [...names].sort().join('|');
}

/**
 * Per exporter that reports the health of each of its collectors, PromQL returning one series per
 * (node, collector) whose last collection failed, over the collectors the catalogue reads. A rule
 * reading a metric of a failing collector is stale on that node (never healthy, never a new fault)
 * although the exporter itself answers: node_exporter keeps serving the other collectors when one
 * fails (a hung NFS mount stalls `filesystem`, a missing sysfs tree fails `infiniband`).
 */
export const COLLECTOR_HEALTH: Readonly<Partial<Record<Signal, string>>> = {
  'node-exporter': `max by (node, collector) (node_scrape_collector_success{collector=~"${collectorsOf('node-exporter')}"} == 0)`,
  'ipmi-exporter': `max by (node, collector) (ipmi_up{collector=~"${collectorsOf('ipmi-exporter')}"} == 0)`,
  'gpfs-exporter':
    `max by (node, collector) (gpfs_exporter_collect_error{collector=~"${collectorsOf('gpfs-exporter')}"} == 1 ` +
    `or gpfs_exporter_collect_timeout{collector=~"${collectorsOf('gpfs-exporter')}"} == 1)`,
};

/** The key of one collector of a signal in staleness reports: `node-exporter/filesystem`. */
export function collectorKey(signal: Signal, collector: string): string {
  return `${signal}/${collector}`;
}
