/**
 * Who produces every metric the catalogue reads: a component that ships (the Aegis agent,
 * Prometheus, the Kubernetes API) or a third-party exporter that exists, with what a site must
 * enable. A condition whose metric nothing real produces is silent forever on a real cluster
 * (the simulator would still emit it); producers.test.ts keeps this table and the catalogue in
 * step, and checks each third-party row against the exporter's own source
 * (test/fixtures/producers/evidence.tsv).
 */
import type { Expr } from '../promql/ast.js';
import { parsePromQL } from '../promql/parse.js';
import type { CatalogueEntry } from './types.js';

/** A producer of metrics (or of Node fields). */
export type ProducerId =
  | 'kubernetes'
  | 'prometheus'
  | 'kube-state-metrics'
  | 'node-exporter'
  | 'dcgm-exporter'
  | 'ipmi-exporter'
  | 'gpfs-exporter'
  | 'sichek'
  | 'aegis-agent'
  | 'node-problem-detector';

/** One producer. */
export interface Producer {
  readonly id: ProducerId;
  readonly name: string;
  /** Where it comes from: a public repository, or Aegis itself. */
  readonly project: string;
  /** `aegis`: ships with Aegis (same image); `platform`: Kubernetes or Prometheus; else third-party. */
  readonly kind: 'aegis' | 'platform' | 'third-party';
}

/** Every producer. */
export const PRODUCERS: Readonly<Record<ProducerId, Producer>> = {
  kubernetes: {
    id: 'kubernetes',
    name: 'Kubernetes API (Node objects, read by the controller)',
    project: 'kubernetes/kubernetes',
    kind: 'platform',
  },
  prometheus: {
    id: 'prometheus',
    name: 'Prometheus (the series it writes for every scrape target)',
    project: 'prometheus/prometheus',
    kind: 'platform',
  },
  'kube-state-metrics': {
    id: 'kube-state-metrics',
    name: 'kube-state-metrics',
    project: 'kubernetes/kube-state-metrics',
    kind: 'third-party',
  },
  'node-exporter': {
    id: 'node-exporter',
    name: 'Prometheus node_exporter',
    project: 'prometheus/node_exporter',
    kind: 'third-party',
  },
  'dcgm-exporter': {
    id: 'dcgm-exporter',
    name: 'NVIDIA dcgm-exporter (field names resolved by NVIDIA/go-dcgm)',
    project: 'NVIDIA/dcgm-exporter',
    kind: 'third-party',
  },
  'ipmi-exporter': {
    id: 'ipmi-exporter',
    name: 'ipmi_exporter',
    project: 'prometheus-community/ipmi_exporter',
    kind: 'third-party',
  },
  'gpfs-exporter': {
    id: 'gpfs-exporter',
    name: 'gpfs_exporter',
    project: 'treydock/gpfs_exporter',
    kind: 'third-party',
  },
  sichek: { id: 'sichek', name: 'sichek', project: 'scitix/sichek', kind: 'third-party' },
  'aegis-agent': {
    id: 'aegis-agent',
    name: 'The Aegis node agent (`aegis agent`, deploy/agent/)',
    project: 'aegis (src/agent/)',
    kind: 'aegis',
  },
  'node-problem-detector': {
    id: 'node-problem-detector',
    name: 'node-problem-detector',
    project: 'kubernetes/node-problem-detector',
    kind: 'third-party',
  },
};

/** The producer of one metric, and what turns it on. */
export interface MetricProducer {
  readonly metric: string;
  readonly producer: ProducerId;
  /** Collector, counters-CSV field or flag that makes the producer export it. */
  readonly enable: string;
  /**
   * True when a released version of the producer exports it with the site's settings described
   * in `enable`. False marks a metric no shipped producer exports (the rule is silent on a real
   * cluster); `enable` says why.
   */
  readonly shipped: boolean;
}

const CSV =
  'NVIDIA dcgm-exporter counters CSV (`-f`, or the `dcgm-metrics` ConfigMap of the GPU Operator)';

function rows(
  producer: ProducerId,
  enable: string,
  metrics: readonly string[],
  shipped = true,
): MetricProducer[] {
  return metrics.map((metric) => ({ metric, producer, enable, shipped }));
}

/** dcgm-exporter fields by their state in its shipped `etc/default-counters.csv`. */
function dcgm(
  state: 'enabled' | 'commented' | 'absent',
  fields: readonly string[],
): MetricProducer[] {
  const enable =
    state === 'enabled'
      ? `${CSV}: on in the default CSV`
      : state === 'commented'
        ? `${CSV}: uncomment the line in default-counters.csv`
        : `${CSV}: add the line (a DCGM field the default CSVs do not list)`;
  return rows(
    'dcgm-exporter',
    enable,
    fields.map((f) => `DCGM_FI_DEV_${f}`),
  );
}

/** Every metric the catalogue reads (rules, Kubernetes-signal rule forms, presence queries). */
export const METRIC_PRODUCERS: readonly MetricProducer[] = [
  // Prometheus's own series per scrape target.
  ...rows('prometheus', 'written by Prometheus for every scrape target', [
    'up',
    'scrape_samples_scraped',
  ]),
  // kube-state-metrics
  ...rows('kube-state-metrics', 'node collector (default)', [
    'kube_node_info',
    'kube_node_spec_unschedulable',
    'kube_node_status_condition',
    'kube_node_status_capacity',
    'kube_node_status_allocatable',
  ]),
  ...rows(
    'kube-state-metrics',
    'node collector; the labels the rules read need `--metric-labels-allowlist=nodes=[…]`',
    ['kube_node_labels'],
  ),
  ...rows('kube-state-metrics', 'pod collector (default)', [
    'kube_pod_info',
    'kube_pod_container_status_terminated_reason',
    'kube_pod_deletion_timestamp',
    'kube_pod_container_status_running',
  ]),
  // node_exporter, by collector
  ...rows('node-exporter', 'stat collector (default)', [
    'node_boot_time_seconds',
    'node_procs_blocked',
  ]),
  ...rows('node-exporter', 'loadavg collector (default)', ['node_load5', 'node_load15']),
  ...rows('node-exporter', 'cpu collector (default; thermal_throttle on x86)', [
    'node_cpu_package_throttles_total',
  ]),
  ...rows('node-exporter', 'meminfo collector (default)', [
    'node_memory_MemAvailable_bytes',
    'node_memory_MemTotal_bytes',
    'node_memory_HardwareCorrupted_bytes',
  ]),
  ...rows('node-exporter', 'edac collector (default)', [
    'node_edac_correctable_errors_total',
    'node_edac_uncorrectable_errors_total',
  ]),
  ...rows('node-exporter', 'filesystem collector (default)', [
    'node_filesystem_avail_bytes',
    'node_filesystem_size_bytes',
    'node_filesystem_files_free',
    'node_filesystem_files',
    'node_filesystem_readonly',
    'node_filesystem_device_error',
  ]),
  ...rows('node-exporter', 'diskstats collector (default)', ['node_disk_io_time_seconds_total']),
  ...rows('node-exporter', 'netclass collector (default)', [
    'node_network_carrier',
    'node_network_carrier_down_changes_total',
  ]),
  ...rows('node-exporter', 'netdev collector (default)', [
    'node_network_receive_errs_total',
    'node_network_transmit_errs_total',
  ]),
  ...rows('node-exporter', 'bonding collector (default)', [
    'node_bonding_slaves',
    'node_bonding_active',
  ]),
  ...rows('node-exporter', 'conntrack collector (default)', [
    'node_nf_conntrack_entries',
    'node_nf_conntrack_entries_limit',
  ]),
  ...rows('node-exporter', 'infiniband collector (default)', [
    'node_infiniband_state_id',
    'node_infiniband_physical_state_id',
    'node_infiniband_link_downed_total',
    'node_infiniband_link_error_recovery_total',
    'node_infiniband_port_errors_received_total',
    'node_infiniband_port_discards_transmitted_total',
    'node_infiniband_symbol_error_total',
  ]),
  ...rows('node-exporter', 'systemd collector (`--collector.systemd`)', [
    'node_systemd_unit_state',
  ]),
  ...rows(
    'node-exporter',
    'systemd collector with `--collector.systemd.enable-start-time-metrics`',
    ['node_systemd_unit_start_time_seconds'],
  ),
  ...rows('node-exporter', 'processes collector (`--collector.processes`)', [
    'node_processes_state',
    'node_processes_pids',
    'node_processes_max_processes',
  ]),
  ...rows('node-exporter', 'vmstat collector (default; oom_kill is in its default fields)', [
    'node_vmstat_oom_kill',
  ]),
  ...rows('node-exporter', 'timex collector (default)', ['node_timex_sync_status']),
  ...rows('node-exporter', 'filefd collector (default)', [
    'node_filefd_allocated',
    'node_filefd_maximum',
  ]),
  ...rows('node-exporter', 'every collector (the exporter reports each one’s success)', [
    'node_scrape_collector_success',
  ]),
  // dcgm-exporter
  ...dcgm('enabled', [
    'GPU_TEMP',
    'MEMORY_TEMP',
    'SM_CLOCK',
    'GPU_UTIL',
    'XID_ERRORS',
    'ROW_REMAP_FAILURE',
    'PCIE_REPLAY_COUNTER',
  ]),
  ...dcgm('commented', [
    'RETIRED_DBE',
    'RETIRED_SBE',
    'RETIRED_PENDING',
    'ECC_DBE_VOL_TOTAL',
    'ECC_SBE_VOL_TOTAL',
    'NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL',
    'NVLINK_REPLAY_ERROR_COUNT_TOTAL',
    'NVLINK_RECOVERY_ERROR_COUNT_TOTAL',
    'THERMAL_VIOLATION',
  ]),
  ...dcgm('absent', [
    'CLOCKS_EVENT_REASONS',
    'PERSISTENCE_MODE',
    'ECC_DBE_AGG_SRM',
    'ECC_DBE_VOL_SRM',
    'ECC_SBE_VOL_SRM',
  ]),
  // ipmi_exporter
  ...rows('ipmi-exporter', 'ipmi collector (default)', [
    'ipmi_fan_speed_state',
    'ipmi_temperature_state',
    'ipmi_voltage_state',
    'ipmi_power_state',
    'ipmi_current_state',
    'ipmi_sensor_state',
  ]),
  ...rows(
    'ipmi-exporter',
    'chassis collector (FreeIPMI: 1 = no fault). The `chassis-native` collector inverts it (1 = fault): use `chassis`',
    ['ipmi_chassis_drive_fault_state'],
  ),
  // gpfs_exporter
  ...rows('gpfs-exporter', 'mmgetstate collector', ['gpfs_state']),
  ...rows('gpfs-exporter', 'mount collector', ['gpfs_mount_status']),
  ...rows('gpfs-exporter', 'verbs collector', ['gpfs_verbs_status']),
  ...rows('gpfs-exporter', 'mmhealth collector', ['gpfs_health_status']),
  ...rows('gpfs-exporter', 'waiter collector', [
    'gpfs_waiter_seconds_count',
    'gpfs_waiter_seconds_bucket',
  ]),
  // sichek
  ...rows('sichek', 'nvidia component (daemon with its metrics endpoint)', [
    'sichek_nvidia_device_count',
    'sichek_nvidia_remapping_pending',
    'sichek_nvidia_all_feature_enabled',
    'sichek_nvidia_pci_gen',
    'sichek_nvidia_pci_gen_max',
    'sichek_nvidia_pci_width',
    'sichek_nvidia_pci_width_max',
    'sichek_nvidia_gpu_idle',
    'sichek_nvidia_p2p_global_connected',
    'sichek_nvidia_ibgda_status',
  ]),
  ...rows('sichek', 'infiniband component (daemon with its metrics endpoint)', [
    'sichek_infiniband_hca_num',
    'sichek_infiniband_hca_pci_num',
    'sichek_infiniband_port_speed_state',
  ]),
  // The Aegis agent
  ...rows('aegis-agent', '`aegis agent` DaemonSet (deploy/agent/)', [
    'aegis_nodecheck_up',
    'aegis_nodecheck_problem',
    'aegis_nodecheck_log_matches',
    'aegis_nodecheck_kernel_module_loaded',
    'aegis_nodecheck_kernel_module_configured',
  ]),
  ...rows(
    'aegis-agent',
    '`aegis agent` DaemonSet (deploy/agent/), run as root to read PCI config space',
    [
      'aegis_nodecheck_hca_pcie_link_speed_gts',
      'aegis_nodecheck_hca_pcie_link_max_speed_gts',
      'aegis_nodecheck_hca_pcie_link_width',
      'aegis_nodecheck_hca_pcie_link_max_width',
      'aegis_nodecheck_hca_pcie_max_read_request_bytes',
    ],
  ),
  // node-problem-detector
  ...rows(
    'node-problem-detector',
    'its Prometheus exporter (on by default, port 20257; `--prometheus-address=0.0.0.0` to be scraped)',
    ['problem_gauge', 'problem_counter'],
  ),
];

const BY_METRIC: ReadonlyMap<string, MetricProducer> = new Map(
  METRIC_PRODUCERS.map((m) => [m.metric, m]),
);

/** The producer row of a metric, or undefined when the table does not know it. */
export function producerOf(metric: string): MetricProducer | undefined {
  return BY_METRIC.get(metric);
}

/** The metrics a PromQL expression selects (parsed with src/promql), in order of first use. */
export function selectedMetrics(expr: string): string[] {
  const out: string[] = [];
  const walk = (e: Expr): void => {
    switch (e.kind) {
      case 'vectorSelector':
        if (!out.includes(e.metric)) out.push(e.metric);
        return;
      case 'matrixSelector':
        walk(e.selector);
        return;
      case 'call':
        e.args.forEach(walk);
        return;
      case 'aggregate':
        if (e.param !== undefined) walk(e.param);
        walk(e.expr);
        return;
      case 'binary':
        walk(e.lhs);
        walk(e.rhs);
        return;
      case 'unary':
      case 'paren':
        walk(e.expr);
        return;
      case 'number':
      case 'string':
        return;
    }
  };
  walk(parsePromQL(expr));
  return out;
}

/** Every metric an entry reads: its rule, and for a Kubernetes-signal entry its rule form. */
export function metricsOfEntry(entry: CatalogueEntry): string[] {
  const names = [entry.expr, entry.ksmExpr ?? '']
    .filter((x) => x !== '')
    .flatMap((x) => selectedMetrics(x));
  return [...new Set(names)];
}

/**
 * The producers an entry depends on, in order of first use: the Kubernetes API for a condition
 * read from the Node object (its kube-state-metrics form follows), then the producer of each
 * metric it reads (unknown metrics are left out; producers.test.ts makes sure there are none).
 */
export function producersOf(entry: CatalogueEntry): ProducerId[] {
  const out: ProducerId[] = entry.signal === 'kubernetes' ? ['kubernetes'] : [];
  for (const m of metricsOfEntry(entry)) {
    const p = producerOf(m)?.producer;
    if (p !== undefined && !out.includes(p)) out.push(p);
  }
  return out;
}
