/**
 * The baseline metric families of a healthy fleet (a data table, exempt from the file-size aim).
 * Names, types, labels and healthy values follow the real exporters (see
 * /work/shared/reference/ecosystem.md §C.3 and the captures): XID 0, GPU ~40 °C, memory ~45 °C,
 * ECC and error counters 0, persistence 1, IB state 4 / phys 5 at 5e10 B/s, BMC states 0 (drive
 * fault 1, inverted), GPFS `active` and HEALTHY one-hot, kube-state-metrics Ready=true.
 */
import {
  ALL_ROLES,
  exporterOf,
  jobOf,
  type Exporter,
  type Family,
  type FamilyDef,
  type Scope,
  type Variants,
} from './family.js';
import { RDMA_RESOURCE, type FleetNode } from './fleet-spec.js';
import { unitHash } from './random.js';
import { NODE_NAME_TOKEN, toKsmLabelName } from './series-labels.js';

const NODE: Scope = { kind: 'node' };
const GPU: Scope = { kind: 'gpu' };
const HCA: Scope = { kind: 'hca', label: 'device', withPort: true };
const HCA_NOPORT: Scope = { kind: 'hca', label: 'device', withPort: false };
const SICHEK_HCA: Scope = { kind: 'hca', label: 'ib_dev', withPort: false };
const NICS: Scope = { kind: 'nic', which: 'all' };
const BOND: Scope = { kind: 'nic', which: 'bond' };
const FS: Scope = { kind: 'filesystem' };
const sensors = (types: readonly string[], withType = false): Scope => ({
  kind: 'sensor',
  types,
  withType,
});
const GENERIC_SENSOR_TYPES = [
  'Processor',
  'Memory',
  'Power Supply',
  'Drive Slot',
  'Management Subsystem Health',
  'Critical Interrupt',
];

type Value = FamilyDef['value'];
const constant =
  (v: number): Value =>
  () =>
    v;
/** Integer jitter in [lo, hi] per (node, device), stable for a seed. */
const jitter =
  (lo: number, hi: number, salt: number): Value =>
  (node, device, _variant, seed) =>
    lo + Math.floor(unitHash(seed, salt, node.index, device) * (hi - lo + 1));

function gauge(name: string, help: string, scope: Scope, value: Value, extra: Partial<FamilyDef> = {}): FamilyDef {
  return { name, type: 'gauge', help, scope, value, ...extra };
}

function counter(name: string, help: string, scope: Scope, value: Value = constant(0), extra: Partial<FamilyDef> = {}): FamilyDef {
  return { name, type: 'counter', help, scope, value, ...extra };
}

const ZERO = constant(0);
const ONE = constant(1);

// ---------------------------------------------------------------- dcgm-exporter (per GPU)
const DCGM: readonly FamilyDef[] = [
  gauge('DCGM_FI_DEV_SM_CLOCK', 'SM clock frequency (in MHz).', GPU, constant(1980)),
  gauge('DCGM_FI_DEV_MEM_CLOCK', 'Memory clock frequency (in MHz).', GPU, constant(2619)),
  gauge('DCGM_FI_DEV_GPU_TEMP', 'GPU temperature (in C).', GPU, jitter(38, 43, 1)),
  gauge('DCGM_FI_DEV_MEMORY_TEMP', 'Memory temperature (in C).', GPU, jitter(43, 47, 2)),
  gauge('DCGM_FI_DEV_POWER_USAGE', 'Power draw (in W).', GPU, jitter(68, 75, 3)),
  counter('DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', 'Total energy consumption since boot (in mJ).', GPU, jitter(4e9, 5e9, 4), {
    slope: () => 70_000,
  }),
  gauge('DCGM_FI_DEV_GPU_UTIL', 'GPU utilization (in %).', GPU, ZERO),
  gauge('DCGM_FI_DEV_MEM_COPY_UTIL', 'Memory utilization (in %).', GPU, ZERO),
  gauge('DCGM_FI_DEV_ENC_UTIL', 'Encoder utilization (in %).', GPU, ZERO),
  gauge('DCGM_FI_DEV_DEC_UTIL', 'Decoder utilization (in %).', GPU, ZERO),
  gauge('DCGM_FI_DEV_XID_ERRORS', 'Value of the last XID error encountered.', GPU, ZERO),
  gauge('DCGM_FI_DEV_FB_FREE', 'Framebuffer memory free (in MiB).', GPU, constant(81004)),
  gauge('DCGM_FI_DEV_FB_USED', 'Framebuffer memory used (in MiB).', GPU, ZERO),
  gauge('DCGM_FI_DEV_FB_RESERVED', 'Framebuffer memory reserved (in MiB).', GPU, constant(555)),
  counter('DCGM_FI_DEV_PCIE_REPLAY_COUNTER', 'Total number of PCIe retries.', GPU),
  gauge('DCGM_FI_DEV_PCIE_LINK_GEN', 'PCIe current link generation.', GPU, constant(5)),
  gauge('DCGM_FI_DEV_PCIE_LINK_WIDTH', 'PCIe current link width.', GPU, constant(16)),
  counter('DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL', 'Total number of NVLink bandwidth counters for all lanes.', GPU),
  counter('DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL', 'Total number of NVLink flow-control CRC errors.', GPU),
  counter('DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL', 'Total number of NVLink data CRC errors.', GPU),
  counter('DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL', 'Total number of NVLink retries.', GPU),
  counter('DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL', 'Total number of NVLink recovery errors.', GPU),
  counter('DCGM_FI_DEV_ECC_SBE_VOL_TOTAL', 'Total number of single-bit volatile ECC errors.', GPU),
  counter('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 'Total number of double-bit volatile ECC errors.', GPU),
  counter('DCGM_FI_DEV_ECC_SBE_AGG_TOTAL', 'Total number of single-bit persistent ECC errors.', GPU),
  counter('DCGM_FI_DEV_ECC_DBE_AGG_TOTAL', 'Total number of double-bit persistent ECC errors.', GPU),
  counter('DCGM_FI_DEV_ECC_SBE_VOL_SRM', 'Single-bit volatile ECC errors in SRAM.', GPU),
  counter('DCGM_FI_DEV_ECC_DBE_VOL_SRM', 'Double-bit volatile ECC errors in SRAM.', GPU),
  counter('DCGM_FI_DEV_ECC_SBE_AGG_SRM', 'Single-bit aggregate ECC errors in SRAM.', GPU),
  counter('DCGM_FI_DEV_ECC_DBE_AGG_SRM', 'Double-bit aggregate ECC errors in SRAM.', GPU),
  counter('DCGM_FI_DEV_RETIRED_SBE', 'Total number of retired pages due to single-bit errors.', GPU),
  counter('DCGM_FI_DEV_RETIRED_DBE', 'Total number of retired pages due to double-bit errors.', GPU),
  counter('DCGM_FI_DEV_RETIRED_PENDING', 'Total number of pages pending retirement.', GPU),
  counter('DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS', 'Number of remapped rows for uncorrectable errors', GPU),
  counter('DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS', 'Number of remapped rows for correctable errors', GPU),
  gauge('DCGM_FI_DEV_ROW_REMAP_FAILURE', 'Whether remapping of rows has failed', GPU, ZERO),
  gauge('DCGM_FI_DEV_ROW_REMAP_PENDING', 'Whether remapping of rows is pending', GPU, ZERO),
  gauge('DCGM_FI_DEV_CLOCKS_EVENT_REASONS', 'Current clock event reasons (bitmask).', GPU, ZERO),
  gauge('DCGM_FI_DEV_CLOCK_THROTTLE_REASONS', 'Current clock throttle reasons (bitmask).', GPU, ZERO),
  gauge('DCGM_FI_DEV_PERSISTENCE_MODE', 'Persistence mode (1 = enabled).', GPU, ONE),
  counter('DCGM_FI_DEV_THERMAL_VIOLATION', 'Throttling duration due to thermal constraints (in us).', GPU),
  counter('DCGM_FI_DEV_POWER_VIOLATION', 'Throttling duration due to power constraints (in us).', GPU),
  gauge('DCGM_FI_PROF_GR_ENGINE_ACTIVE', 'Ratio of time the graphics engine is active.', GPU, ZERO),
];

// ---------------------------------------------------------------- node-exporter
const NODE_ALL = { roles: ALL_ROLES };
const IB_COUNTERS = [
  ['link_downed_total', 'Number of times the link failed to recover from an error state and went down'],
  ['link_error_recovery_total', 'Number of times the link successfully recovered from an error state'],
  ['symbol_error_total', 'Number of minor link errors detected on one or more physical lanes'],
  ['port_errors_received_total', 'Number of packets containing an error that were received on this port'],
  ['port_discards_received_total', 'Number of inbound packets discarded by the port because the port is down or congested'],
  ['port_discards_transmitted_total', 'Number of outbound packets discarded by the port because the port is down or congested'],
  ['port_constraint_errors_received_total', 'Number of packets received by the switch physical port that are discarded'],
  ['port_constraint_errors_transmitted_total', 'Number of packets not transmitted from the switch physical port'],
  ['port_receive_remote_physical_errors_total', 'Number of packets marked with the EBP delimiter received on the port.'],
  ['port_receive_switch_relay_errors_total', 'Number of packets that could not be forwarded by the switch.'],
  ['local_link_integrity_errors_total', 'Number of times that the count of local physical errors exceeded the threshold'],
  ['excessive_buffer_overrun_errors_total', 'Number of times that OverrunErrors consecutive flow control update periods occurred'],
  ['vl15_dropped_total', 'Number of incoming VL15 packets dropped due to resource limitations'],
] as const;

const NODE_EXPORTER: readonly FamilyDef[] = [
  gauge('node_load1', '1m load average.', NODE, constant(2.1), NODE_ALL),
  gauge('node_load5', '5m load average.', NODE, constant(2.0), NODE_ALL),
  gauge('node_load15', '15m load average.', NODE, constant(1.9), NODE_ALL),
  gauge('node_procs_blocked', 'Number of processes blocked waiting for I/O to complete.', NODE, ZERO, NODE_ALL),
  gauge('node_procs_running', 'Number of processes in runnable state.', NODE, constant(3), NODE_ALL),
  gauge('node_memory_MemTotal_bytes', 'Memory information field MemTotal_bytes.', NODE, (n) => n.capacity.memory ?? 0, NODE_ALL),
  gauge('node_memory_MemAvailable_bytes', 'Memory information field MemAvailable_bytes.', NODE, (n) => Math.round((n.capacity.memory ?? 0) * 0.92), NODE_ALL),
  gauge('node_memory_MemFree_bytes', 'Memory information field MemFree_bytes.', NODE, (n) => Math.round((n.capacity.memory ?? 0) * 0.85), NODE_ALL),
  gauge('node_memory_HardwareCorrupted_bytes', 'Memory information field HardwareCorrupted_bytes.', NODE, ZERO, NODE_ALL),
  gauge('node_boot_time_seconds', 'Node boot time, in unixtime.', NODE, constant(1_766_000_000), NODE_ALL),
  gauge('node_timex_sync_status', 'Is clock synchronized to a reliable server (1 = yes, 0 = no).', NODE, ONE, NODE_ALL),
  gauge('node_textfile_scrape_error', '1 if there was an error opening or reading a file, 0 otherwise', NODE, ZERO, NODE_ALL),
  counter('node_vmstat_oom_kill', '/proc/vmstat information field oom_kill.', NODE, ZERO, NODE_ALL),
  counter('node_edac_correctable_errors_total', 'Total correctable memory errors.', NODE, ZERO, {
    ...NODE_ALL,
    variants: () => EDAC_VARIANTS,
  }),
  counter('node_edac_uncorrectable_errors_total', 'Total uncorrectable memory errors.', NODE, ZERO, {
    ...NODE_ALL,
    variants: () => EDAC_VARIANTS,
  }),
  gauge('node_filesystem_size_bytes', 'Filesystem size in bytes.', FS, (_n, d) => (d === 0 ? 3.84e12 : 2e15), NODE_ALL),
  gauge('node_filesystem_avail_bytes', 'Filesystem space available to non-root users in bytes.', FS, (_n, d) => (d === 0 ? 3.1e12 : 1.2e15), NODE_ALL),
  gauge('node_filesystem_free_bytes', 'Filesystem free space in bytes.', FS, (_n, d) => (d === 0 ? 3.3e12 : 1.2e15), NODE_ALL),
  gauge('node_filesystem_files_free', 'Filesystem total free file nodes.', FS, constant(2.3e8), NODE_ALL),
  gauge('node_filesystem_readonly', 'Filesystem read-only status.', FS, ZERO, NODE_ALL),
  gauge('node_filesystem_device_error', 'Whether an error occurred while getting statistics for the given device.', FS, ZERO, NODE_ALL),
  gauge('node_network_up', 'Value is 1 if operstate is \'up\', 0 otherwise.', NICS, ONE, NODE_ALL),
  gauge('node_network_carrier', 'Network device property: carrier', NICS, ONE, NODE_ALL),
  gauge('node_network_speed_bytes', 'Network device property: speed_bytes', NICS, (n, d) => n.nics[d]?.speedBytes ?? 0, NODE_ALL),
  gauge('node_network_mtu_bytes', 'Network device property: mtu_bytes', NICS, constant(9000), NODE_ALL),
  counter('node_network_carrier_changes_total', 'Network device property: carrier_changes_total', NICS, constant(2), NODE_ALL),
  counter('node_network_carrier_down_changes_total', 'Network device property: carrier_down_changes_total', NICS, constant(1), NODE_ALL),
  counter('node_network_carrier_up_changes_total', 'Network device property: carrier_up_changes_total', NICS, constant(1), NODE_ALL),
  counter('node_network_receive_errs_total', 'Network device statistic receive_errs.', NICS, ZERO, NODE_ALL),
  counter('node_network_transmit_errs_total', 'Network device statistic transmit_errs.', NICS, ZERO, NODE_ALL),
  counter('node_network_receive_drop_total', 'Network device statistic receive_drop.', NICS, ZERO, NODE_ALL),
  counter('node_network_transmit_drop_total', 'Network device statistic transmit_drop.', NICS, ZERO, NODE_ALL),
  gauge('node_bonding_slaves', 'Number of configured slaves per bonding interface.', BOND, constant(2), NODE_ALL),
  gauge('node_bonding_active', 'Number of active slaves per bonding interface.', BOND, constant(2), NODE_ALL),
  gauge('node_infiniband_info', 'Non-numeric data from /sys/class/infiniband/<device>, value is always 1.', HCA_NOPORT, ONE, {
    variants: () => IB_INFO_VARIANTS,
  }),
  gauge('node_infiniband_state_id', 'State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)', HCA, constant(4)),
  gauge('node_infiniband_physical_state_id', 'Physical state of the InfiniBand port (0: no state change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)', HCA, constant(5)),
  gauge('node_infiniband_rate_bytes_per_second', 'Maximum signal transfer rate', HCA, (n, d) => n.hcas[d]?.rateBytesPerSecond ?? 0),
  ...IB_COUNTERS.map(([suffix, help]) => counter(`node_infiniband_${suffix}`, help, HCA)),
  counter('node_infiniband_port_data_received_bytes_total', 'Number of data octets received on all links', HCA, jitter(1e12, 9e12, 11)),
  counter('node_infiniband_port_data_transmitted_bytes_total', 'Number of data octets transmitted on all links', HCA, jitter(1e12, 9e12, 12)),
];
const EDAC_VARIANTS: Variants = [
  { controller: '0', csrow: 'unknown' },
  { controller: '1', csrow: 'unknown' },
];
const IB_INFO_VARIANTS: Variants = [
  { board_id: 'MT_0000000970', firmware_version: '28.43.1014', hca_type: 'MT4129' },
];

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
function ksmFamilies(): readonly FamilyDef[] {
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
        Object.fromEntries(
          Object.entries(node.labels).map(([k, val]) => [toKsmLabelName(k), val]),
        ),
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
    gauge('kube_node_labels', '[STABLE] Kubernetes labels converted to Prometheus labels.', NODE, ONE, {
      ...KSM_ALL,
      variants: labelsOf,
    }),
    gauge('kube_node_spec_unschedulable', '[STABLE] Whether a node can schedule new pods.', NODE, ZERO, KSM_ALL),
    gauge('kube_node_status_condition', '[STABLE] The condition of a cluster node.', NODE, (_n, _d, v) => conditionValue(v), {
      ...KSM_ALL,
      variants: () => CONDITION_VARIANTS,
    }),
    gauge('kube_node_status_capacity', '[STABLE] The capacity for different resources of a node.', NODE, capacityValue(() => 1), {
      ...KSM_ALL,
      variants: resourcesOf,
    }),
    gauge(
      'kube_node_status_allocatable',
      '[STABLE] The allocatable for different resources of a node that are available for scheduling.',
      NODE,
      capacityValue((r) => (r === 'cpu' ? 0.97 : r === 'memory' ? 0.95 : 1)),
      { ...KSM_ALL, variants: resourcesOf },
    ),
    gauge('kube_node_created', '[STABLE] Unix creation timestamp', NODE, constant(1_760_000_000), KSM_ALL),
  ];
}

// ---------------------------------------------------------------- ipmi_exporter (per BMC sensor)
const IPMI: readonly FamilyDef[] = [
  gauge('ipmi_up', "'1' if a scrape of the IPMI device was successful, '0' otherwise.", NODE, ONE, {
    ...NODE_ALL,
    variants: () => IPMI_COLLECTORS,
  }),
  gauge('ipmi_chassis_power_state', 'Current power state (1=on, 0=off).', NODE, ONE, NODE_ALL),
  gauge('ipmi_chassis_drive_fault_state', 'Current drive fault state (1=false, 0=true).', NODE, ONE, NODE_ALL),
  gauge('ipmi_sensor_state', 'Indicates the severity of the state reported by an IPMI sensor (0=nominal, 1=warning, 2=critical).', sensors(GENERIC_SENSOR_TYPES, true), ZERO, NODE_ALL),
  gauge('ipmi_fan_speed_rpm', 'Fan speed in rotations per minute.', sensors(['Fan']), jitter(5400, 5800, 21), NODE_ALL),
  gauge('ipmi_fan_speed_state', 'Reported state of a fan speed sensor (0=nominal, 1=warning, 2=critical).', sensors(['Fan']), ZERO, NODE_ALL),
  gauge('ipmi_temperature_celsius', 'Temperature reading in degree Celsius.', sensors(['Temperature']), jitter(28, 45, 22), NODE_ALL),
  gauge('ipmi_temperature_state', 'Reported state of a temperature sensor (0=nominal, 1=warning, 2=critical).', sensors(['Temperature']), ZERO, NODE_ALL),
  gauge('ipmi_voltage_volts', 'Voltage reading in Volts.', sensors(['Voltage']), (n, d) => [12.1, 5.02, 3.31][d] ?? 1, NODE_ALL),
  gauge('ipmi_voltage_state', 'Reported state of a voltage sensor (0=nominal, 1=warning, 2=critical).', sensors(['Voltage']), ZERO, NODE_ALL),
  gauge('ipmi_current_amperes', 'Current reading in Amperes.', sensors(['Current']), constant(6.4), NODE_ALL),
  gauge('ipmi_current_state', 'Reported state of a current sensor (0=nominal, 1=warning, 2=critical).', sensors(['Current']), ZERO, NODE_ALL),
  gauge('ipmi_power_watts', 'Power reading in Watts.', sensors(['Power']), jitter(1400, 1600, 23), NODE_ALL),
  gauge('ipmi_power_state', 'Reported state of a power sensor (0=nominal, 1=warning, 2=critical).', sensors(['Power']), ZERO, NODE_ALL),
];
const IPMI_COLLECTORS: Variants = ['bmc', 'chassis', 'ipmi', 'sel'].map((collector) => ({ collector }));

// ---------------------------------------------------------------- gpfs_exporter (workers)
const GPFS_STATES = ['active', 'arbitrating', 'down', 'unknown'];
const HEALTH_STATUSES = ['CHECKING', 'DEGRADED', 'DEPEND', 'DISABLED', 'FAILED', 'HEALTHY', 'STARTING', 'STOPPED', 'SUSPENDED', 'TIPS', 'UNKNOWN'];
const HEALTH_ENTITIES = [
  ['FILESYSTEM', NODE_NAME_TOKEN, 'NODE'],
  ['FILESYSTEM', 'fs1', 'FILESYSTEM'],
  ['GPFS', NODE_NAME_TOKEN, 'NODE'],
  ['NETWORK', NODE_NAME_TOKEN, 'NODE'],
  ['NETWORK', 'mlx5_8/1', 'IB_RDMA'],
  ['NODE', NODE_NAME_TOKEN, 'NODE'],
] as const;
/** mmhealth one-hot series; `entityname` of NODE entities is the node's own name. */
const GPFS_HEALTH_VARIANTS: Variants = HEALTH_ENTITIES.flatMap(([component, entityname, entitytype]) =>
  HEALTH_STATUSES.map((status) => ({ component, entityname, entitytype, status })),
);

const GPFS: readonly FamilyDef[] = [
  gauge('gpfs_state', 'GPFS state', NODE, (_n, _d, v) => (v === 0 ? 1 : 0), {
    variants: () => GPFS_STATE_VARIANTS,
  }),
  gauge('gpfs_mount_status', 'Status of GPFS filesystems, 1=mounted 0=not mounted', { kind: 'mount', label: 'mount' }, ONE),
  gauge('gpfs_health_status', 'GPFS health status', NODE, (_n, _d, v) => (GPFS_HEALTH_VARIANTS[v]?.status === 'HEALTHY' ? 1 : 0), {
    variants: () => GPFS_HEALTH_VARIANTS,
  }),
  gauge('gpfs_verbs_status', 'GPFS verbs status, 1=started 0=not started', NODE, ONE),
  gauge('gpfs_exporter_collect_error', 'Indicates if error has occurred during collection', NODE, ZERO, {
    variants: () => GPFS_COLLECTORS,
  }),
  gauge('gpfs_exporter_collect_timeout', 'Indicates the collector timed out', NODE, ZERO, {
    variants: () => GPFS_COLLECTORS,
  }),
];
const GPFS_STATE_VARIANTS: Variants = GPFS_STATES.map((state) => ({ state }));
const GPFS_COLLECTORS: Variants = ['mmgetstate', 'mmhealth', 'mount', 'verbs', 'waiter'].map((collector) => ({ collector }));

// ---------------------------------------------------------------- sichek (node checker)
const SICHEK_IB_COUNTERS: Variants = ['link_downed', 'symbol_error', 'port_rcv_errors', 'port_xmit_discards'].map(
  (counter_name) => ({ counter_name }),
);
const SICHEK: readonly FamilyDef[] = [
  gauge('sichek_infiniband_hca_pci_num', 'Number of InfiniBand HCAs found on the PCI bus.', NODE, (n) => n.hcas.length),
  gauge('sichek_infiniband_pcie_speed', 'PCIe link speed of the HCA (GT/s).', SICHEK_HCA, (n, d) => n.hcas[d]?.pcieSpeedGts ?? 0),
  gauge('sichek_infiniband_pcie_width', 'PCIe link width of the HCA.', SICHEK_HCA, (n, d) => n.hcas[d]?.pcieWidth ?? 0),
  counter('sichek_infiniband_counter', 'InfiniBand port counter.', SICHEK_HCA, ZERO, { variants: () => SICHEK_IB_COUNTERS }),
  gauge('sichek_nvidia_remapping_pending', 'Whether a GPU has row remapping pending.', { kind: 'gpu' }, ZERO),
];

/** Exporters Prometheus scrapes per node; each gets an `up` series (1 up, 0 down). */
export const SCRAPED_EXPORTERS: readonly Exporter[] = ['dcgm', 'node', 'ipmi', 'gpfs', 'nodecheck'];
const UP_VARIANTS: Variants = SCRAPED_EXPORTERS.map(() => ({}));
const UP: FamilyDef = gauge('up', 'Whether the target was scraped successfully.', NODE, ONE, {
  roles: ALL_ROLES,
  variants: () => UP_VARIANTS,
  upOf: (variant) => SCRAPED_EXPORTERS[variant] ?? 'node',
});

/** Every baseline family, indexed; call once per store (KSM caches live in the result). */
export function buildFamilies(): readonly Family[] {
  const defs = [...DCGM, ...NODE_EXPORTER, ...ksmFamilies(), ...IPMI, ...GPFS, ...SICHEK, UP];
  return defs.map((def, index) => ({
    ...def,
    index,
    exporter: exporterOf(def.name),
    job: jobOf(def.name),
  }));
}
