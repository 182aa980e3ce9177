/** node-exporter families (host, filesystems, NICs, bonding, InfiniBand, systemd, EDAC). */
import type { FamilyDef, Variants } from '../family.js';
import {
  NODE_ALL,
  BOND,
  CORE,
  PACKAGE,
  CPU,
  DISK,
  FS,
  HCA,
  HCA_NOPORT,
  NICS,
  NODE,
  ONE,
  ZERO,
  constant,
  counter,
  gauge,
  jitter,
} from './helpers.js';

// ---------------------------------------------------------------- node-exporter
const IB_COUNTERS = [
  [
    'link_downed_total',
    'Number of times the link failed to recover from an error state and went down',
  ],
  [
    'link_error_recovery_total',
    'Number of times the link successfully recovered from an error state',
  ],
  ['symbol_error_total', 'Number of minor link errors detected on one or more physical lanes'],
  [
    'port_errors_received_total',
    'Number of packets containing an error that were received on this port',
  ],
  [
    'port_discards_received_total',
    'Number of inbound packets discarded by the port because the port is down or congested',
  ],
  [
    'port_discards_transmitted_total',
    'Number of outbound packets discarded by the port because the port is down or congested',
  ],
  [
    'port_constraint_errors_received_total',
    'Number of packets received by the switch physical port that are discarded',
  ],
  [
    'port_constraint_errors_transmitted_total',
    'Number of packets not transmitted from the switch physical port',
  ],
  [
    'port_receive_remote_physical_errors_total',
    'Number of packets marked with the EBP delimiter received on the port.',
  ],
  [
    'port_receive_switch_relay_errors_total',
    'Number of packets that could not be forwarded by the switch.',
  ],
  [
    'local_link_integrity_errors_total',
    'Number of times that the count of local physical errors exceeded the threshold',
  ],
  [
    'excessive_buffer_overrun_errors_total',
    'Number of times that OverrunErrors consecutive flow control update periods occurred',
  ],
  ['vl15_dropped_total', 'Number of incoming VL15 packets dropped due to resource limitations'],
] as const;

/** node-exporter families. */
export const NODE_EXPORTER_FAMILIES: readonly FamilyDef[] = [
  gauge('node_load1', '1m load average.', NODE, constant(2.1), NODE_ALL),
  counter('node_cpu_seconds_total', 'Seconds the CPUs spent in each mode.', CPU, ZERO, {
    ...NODE_ALL,
    variants: () => CPU_MODES,
    slope: (_n, _d, v) => CPU_MODE_SHARE[v] ?? 0,
  }),
  counter(
    'node_cpu_core_throttles_total',
    'Number of times this CPU core has been throttled.',
    CORE,
    ZERO,
    NODE_ALL,
  ),
  counter(
    'node_cpu_package_throttles_total',
    'Number of times this CPU package has been throttled.',
    PACKAGE,
    ZERO,
    NODE_ALL,
  ),
  counter('node_disk_io_time_seconds_total', 'Total seconds spent doing I/Os.', DISK, ZERO, {
    ...NODE_ALL,
    slope: () => 0.02,
  }),
  gauge(
    'node_filefd_allocated',
    'File descriptor statistics: allocated.',
    NODE,
    constant(21_000),
    NODE_ALL,
  ),
  gauge(
    'node_filefd_maximum',
    'File descriptor statistics: maximum.',
    NODE,
    constant(9.223372036854776e18),
    NODE_ALL,
  ),
  gauge(
    'node_nf_conntrack_entries',
    'Number of currently allocated flow entries for connection tracking.',
    NODE,
    constant(12_000),
    NODE_ALL,
  ),
  gauge(
    'node_nf_conntrack_entries_limit',
    'Maximum size of connection tracking table.',
    NODE,
    constant(262_144),
    NODE_ALL,
  ),
  gauge('node_processes_pids', 'Number of PIDs', NODE, constant(2_100), NODE_ALL),
  gauge(
    'node_processes_max_processes',
    'Number of max PIDs limit',
    NODE,
    constant(4_194_304),
    NODE_ALL,
  ),
  gauge(
    'node_processes_state',
    'Number of processes in each state.',
    NODE,
    (_n, _d, v) => PROCESS_STATE_COUNTS[v] ?? 0,
    {
      ...NODE_ALL,
      variants: () => PROCESS_STATES,
    },
  ),
  gauge('node_load5', '5m load average.', NODE, constant(2.0), NODE_ALL),
  gauge('node_load15', '15m load average.', NODE, constant(1.9), NODE_ALL),
  gauge(
    'node_procs_blocked',
    'Number of processes blocked waiting for I/O to complete.',
    NODE,
    ZERO,
    NODE_ALL,
  ),
  gauge(
    'node_procs_running',
    'Number of processes in runnable state.',
    NODE,
    constant(3),
    NODE_ALL,
  ),
  gauge(
    'node_memory_MemTotal_bytes',
    'Memory information field MemTotal_bytes.',
    NODE,
    (n) => n.capacity.memory ?? 0,
    NODE_ALL,
  ),
  gauge(
    'node_memory_MemAvailable_bytes',
    'Memory information field MemAvailable_bytes.',
    NODE,
    (n) => Math.round((n.capacity.memory ?? 0) * 0.92),
    NODE_ALL,
  ),
  gauge(
    'node_memory_MemFree_bytes',
    'Memory information field MemFree_bytes.',
    NODE,
    (n) => Math.round((n.capacity.memory ?? 0) * 0.85),
    NODE_ALL,
  ),
  gauge(
    'node_memory_HardwareCorrupted_bytes',
    'Memory information field HardwareCorrupted_bytes.',
    NODE,
    ZERO,
    NODE_ALL,
  ),
  gauge(
    'node_systemd_unit_state',
    'Systemd unit',
    NODE,
    (_n, _d, v) => (UNIT_STATE_VARIANTS[v]?.state === 'active' ? 1 : 0),
    { variants: () => UNIT_STATE_VARIANTS },
  ),
  gauge(
    'node_systemd_unit_start_time_seconds',
    'Start time of the unit since unix epoch in seconds.',
    NODE,
    constant(1_766_000_100),
    { variants: () => UNIT_VARIANTS },
  ),
  gauge(
    'node_scrape_collector_success',
    'node_exporter: Whether a collector succeeded.',
    NODE,
    ONE,
    { ...NODE_ALL, variants: () => COLLECTOR_VARIANTS },
  ),
  gauge(
    'node_boot_time_seconds',
    'Node boot time, in unixtime.',
    NODE,
    constant(1_766_000_000),
    NODE_ALL,
  ),
  gauge(
    'node_timex_sync_status',
    'Is clock synchronized to a reliable server (1 = yes, 0 = no).',
    NODE,
    ONE,
    NODE_ALL,
  ),
  gauge(
    'node_textfile_scrape_error',
    '1 if there was an error opening or reading a file, 0 otherwise',
    NODE,
    ZERO,
    NODE_ALL,
  ),
  counter('node_vmstat_oom_kill', '/proc/vmstat information field oom_kill.', NODE, ZERO, NODE_ALL),
  counter('node_edac_correctable_errors_total', 'Total correctable memory errors.', NODE, ZERO, {
    ...NODE_ALL,
    variants: () => EDAC_VARIANTS,
  }),
  counter(
    'node_edac_uncorrectable_errors_total',
    'Total uncorrectable memory errors.',
    NODE,
    ZERO,
    {
      ...NODE_ALL,
      variants: () => EDAC_VARIANTS,
    },
  ),
  gauge(
    'node_filesystem_size_bytes',
    'Filesystem size in bytes.',
    FS,
    (_n, d) => [3.84e12, 7.68e12][d] ?? 2e15,
    NODE_ALL,
  ),
  gauge(
    'node_filesystem_avail_bytes',
    'Filesystem space available to non-root users in bytes.',
    FS,
    (_n, d) => [3.1e12, 6.1e12][d] ?? 1.2e15,
    NODE_ALL,
  ),
  gauge(
    'node_filesystem_free_bytes',
    'Filesystem free space in bytes.',
    FS,
    (_n, d) => [3.3e12, 6.5e12][d] ?? 1.2e15,
    NODE_ALL,
  ),
  gauge('node_filesystem_files', 'Filesystem total file nodes.', FS, constant(2.4e8), NODE_ALL),
  gauge(
    'node_filesystem_files_free',
    'Filesystem total free file nodes.',
    FS,
    constant(2.3e8),
    NODE_ALL,
  ),
  gauge('node_filesystem_readonly', 'Filesystem read-only status.', FS, ZERO, NODE_ALL),
  gauge(
    'node_filesystem_device_error',
    'Whether an error occurred while getting statistics for the given device.',
    FS,
    ZERO,
    NODE_ALL,
  ),
  gauge('node_network_up', "Value is 1 if operstate is 'up', 0 otherwise.", NICS, ONE, NODE_ALL),
  gauge('node_network_carrier', 'Network device property: carrier', NICS, ONE, NODE_ALL),
  gauge(
    'node_network_speed_bytes',
    'Network device property: speed_bytes',
    NICS,
    (n, d) => n.nics[d]?.speedBytes ?? 0,
    NODE_ALL,
  ),
  gauge(
    'node_network_mtu_bytes',
    'Network device property: mtu_bytes',
    NICS,
    constant(9000),
    NODE_ALL,
  ),
  counter(
    'node_network_carrier_changes_total',
    'Network device property: carrier_changes_total',
    NICS,
    constant(2),
    NODE_ALL,
  ),
  counter(
    'node_network_carrier_down_changes_total',
    'Network device property: carrier_down_changes_total',
    NICS,
    constant(1),
    NODE_ALL,
  ),
  counter(
    'node_network_carrier_up_changes_total',
    'Network device property: carrier_up_changes_total',
    NICS,
    constant(1),
    NODE_ALL,
  ),
  counter(
    'node_network_receive_errs_total',
    'Network device statistic receive_errs.',
    NICS,
    ZERO,
    NODE_ALL,
  ),
  counter(
    'node_network_transmit_errs_total',
    'Network device statistic transmit_errs.',
    NICS,
    ZERO,
    NODE_ALL,
  ),
  counter(
    'node_network_receive_drop_total',
    'Network device statistic receive_drop.',
    NICS,
    ZERO,
    NODE_ALL,
  ),
  counter(
    'node_network_transmit_drop_total',
    'Network device statistic transmit_drop.',
    NICS,
    ZERO,
    NODE_ALL,
  ),
  gauge(
    'node_bonding_slaves',
    'Number of configured slaves per bonding interface.',
    BOND,
    constant(2),
    NODE_ALL,
  ),
  gauge(
    'node_bonding_active',
    'Number of active slaves per bonding interface.',
    BOND,
    constant(2),
    NODE_ALL,
  ),
  gauge(
    'node_infiniband_info',
    'Non-numeric data from /sys/class/infiniband/<device>, value is always 1.',
    HCA_NOPORT,
    ONE,
    {
      variants: () => IB_INFO_VARIANTS,
    },
  ),
  gauge(
    'node_infiniband_state_id',
    'State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)',
    HCA,
    constant(4),
  ),
  gauge(
    'node_infiniband_physical_state_id',
    'Physical state of the InfiniBand port (0: no state change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)',
    HCA,
    constant(5),
  ),
  gauge(
    'node_infiniband_rate_bytes_per_second',
    'Maximum signal transfer rate',
    HCA,
    (n, d) => n.hcas[d]?.rateBytesPerSecond ?? 0,
  ),
  ...IB_COUNTERS.map(([suffix, help]) => counter(`node_infiniband_${suffix}`, help, HCA)),
  counter(
    'node_infiniband_port_data_received_bytes_total',
    'Number of data octets received on all links',
    HCA,
    jitter(1e12, 9e12, 11),
  ),
  counter(
    'node_infiniband_port_data_transmitted_bytes_total',
    'Number of data octets transmitted on all links',
    HCA,
    jitter(1e12, 9e12, 12),
  ),
];
const CPU_MODES: Variants = ['idle', 'user', 'system', 'iowait'].map((mode) => ({ mode }));
/** CPU-seconds per second per mode of a mostly idle host. */
const CPU_MODE_SHARE: readonly number[] = [0.97, 0.02, 0.01, 0];
const PROCESS_STATES: Variants = ['D', 'I', 'R', 'S', 'Z'].map((state) => ({ state }));
const PROCESS_STATE_COUNTS: readonly number[] = [0, 310, 3, 1_780, 0];
const UNITS_WATCHED = [
  'kubelet.service',
  'containerd.service',
  'nvidia-fabricmanager.service',
  'nvidia-persistenced.service',
];
const UNIT_STATES = ['activating', 'active', 'deactivating', 'failed', 'inactive'];
const UNIT_STATE_VARIANTS: Variants = UNITS_WATCHED.flatMap((name) =>
  UNIT_STATES.map((state) => ({ name, state, type: 'service' })),
);
const UNIT_VARIANTS: Variants = UNITS_WATCHED.map((name) => ({ name, type: 'service' }));
const EDAC_VARIANTS: Variants = [
  { controller: '0', csrow: 'unknown' },
  { controller: '1', csrow: 'unknown' },
];
const IB_INFO_VARIANTS: Variants = [
  { board_id: 'MT_0000000970', firmware_version: '28.43.1014', hca_type: 'MT4129' },
];
/** node_exporter collectors the catalogue reads (node_scrape_collector_success, 1 = succeeded). */
const COLLECTOR_VARIANTS: Variants = [
  'bonding',
  'conntrack',
  'diskstats',
  'edac',
  'filefd',
  'filesystem',
  'infiniband',
  'loadavg',
  'meminfo',
  'netclass',
  'netdev',
  'processes',
  'stat',
  'systemd',
  'thermal_throttle',
  'timex',
  'vmstat',
].map((collector) => ({ collector }));
