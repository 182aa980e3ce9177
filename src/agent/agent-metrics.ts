/**
 * The agent's /metrics, on its own prom-client registry: the aegis_nodecheck_* series the catalogue
 * reads (names and labels as in src/catalogue/signals.ts and src/sim/families/nodecheck.ts) plus
 * the agent's own. Every scrape rebuilds all series from one snapshot, synchronously, so a scrape
 * never sees half of a change and a device that disappeared loses its series.
 */
import type { ProblemSample } from './check.js';
import type { HcaPcie } from './hca-pcie.js';
import type { LogKey } from './log-window.js';
import { Gauge, Registry, type PromGauge, type PromRegistry } from './prom-lite.js';

/** Everything the series are built from. */
export interface AgentSnapshot {
  readonly problems: readonly ProblemSample[];
  /** Catalogue condition → true, or why it cannot be checked. */
  readonly available: Readonly<Record<string, string | true>>;
  readonly logs: readonly { readonly key: LogKey; readonly count: number }[];
  readonly modulesLoaded: Readonly<Record<string, number>>;
  readonly modulesConfigured: Readonly<Record<string, number>>;
  /** PCIe link and Max Read Request Size of each HCA (absent values: no series). */
  readonly hcaPcie?: readonly HcaPcie[];
  /** Check name (gpu, rdma, ...) → duration of its last run in seconds. */
  readonly durations: Readonly<Record<string, number>>;
  /** 1 after the last Node condition write succeeded, 0 after it failed; undefined before any. */
  readonly conditionWriteOk?: number;
}

/** The registry and its text rendering. */
export interface AgentMetrics {
  readonly registry: PromRegistry;
  render(): Promise<string>;
}

/** Builds the registry; `snapshot` is called once per scrape. */
export function createAgentMetrics(
  snapshot: () => AgentSnapshot,
  writesConditions: boolean,
): AgentMetrics {
  const registry = new Registry();
  // Registered first so that its collect (run in registration order) refreshes the others.
  new Gauge({
    name: 'aegis_nodecheck_up',
    help: 'Always 1 while the node check runs (its presence is the signal).',
    registers: [registry],
    collect() {
      this.set(1);
      fill(g, snapshot());
    },
  });
  const gauge = <L extends string>(name: string, help: string, labelNames: L[]): PromGauge<L> =>
    new Gauge({ name, help, labelNames, registers: [registry] });
  const g: Gauges = {
    problem: gauge(
      'aegis_nodecheck_problem',
      'Magnitude (>= 1) while the check named by `check` (a catalogue condition) fails, else 0.',
      ['check', 'device'],
    ),
    log: gauge(
      'aegis_nodecheck_log_matches',
      'Log lines matching `rule` within the log window (kernel: live + previous boot; mmfs: mmfs.log).',
      ['source', 'rule', 'device'],
    ),
    loaded: gauge(
      'aegis_nodecheck_kernel_module_loaded',
      '1 when the module is in /proc/modules (expected modules only).',
      ['module'],
    ),
    configured: gauge(
      'aegis_nodecheck_kernel_module_configured',
      '1 when the module is listed in modules-load.d.',
      ['module'],
    ),
    pcieSpeed: gauge(
      'aegis_nodecheck_hca_pcie_link_speed_gts',
      'Current PCIe link speed of the HCA in GT/s (sysfs current_link_speed; 0 = Unknown, no link trained).',
      ['device', 'pci_bdf'],
    ),
    pcieMaxSpeed: gauge(
      'aegis_nodecheck_hca_pcie_link_max_speed_gts',
      'Fastest PCIe link speed the HCA can train at in GT/s: the lower of its max_link_speed and its upstream port’s.',
      ['device', 'pci_bdf'],
    ),
    pcieWidth: gauge(
      'aegis_nodecheck_hca_pcie_link_width',
      'Current PCIe link width of the HCA in lanes (sysfs current_link_width).',
      ['device', 'pci_bdf'],
    ),
    pcieMaxWidth: gauge(
      'aegis_nodecheck_hca_pcie_link_max_width',
      'Widest PCIe link the HCA can train at in lanes: the lower of its max_link_width and its upstream port’s.',
      ['device', 'pci_bdf'],
    ),
    mrr: gauge(
      'aegis_nodecheck_hca_pcie_max_read_request_bytes',
      'PCIe Max Read Request Size of the HCA in bytes (Device Control of its PCI Express capability, read from the config space).',
      ['device', 'pci_bdf'],
    ),
    available: gauge(
      'aegis_nodecheck_check_available',
      '1 when the condition could be checked on this node; 0 = cannot check (tool, file or setting missing), never a fault.',
      ['check'],
    ),
    duration: gauge(
      'aegis_nodecheck_check_duration_seconds',
      'Duration of the last run of each agent check.',
      ['check'],
    ),
    write: gauge(
      'aegis_nodecheck_condition_last_write',
      'Outcome of the last Node condition write: result="success" or "failure" (1); absent before the first write.',
      ['result'],
    ),
  };
  if (!writesConditions) registry.removeSingleMetric('aegis_nodecheck_condition_last_write');
  return { registry, render: () => registry.metrics() };
}

type Gauges = Record<
  | 'problem'
  | 'log'
  | 'loaded'
  | 'configured'
  | 'pcieSpeed'
  | 'pcieMaxSpeed'
  | 'pcieWidth'
  | 'pcieMaxWidth'
  | 'mrr'
  | 'available'
  | 'duration'
  | 'write',
  PromGauge<string>
>;

function fill(g: Gauges, s: AgentSnapshot): void {
  for (const gauge of Object.values(g)) gauge.reset();
  for (const p of s.problems)
    g.problem.set(
      p.device === undefined ? { check: p.check } : { check: p.check, device: p.device },
      p.value,
    );
  for (const { key, count } of s.logs) {
    const labels =
      key.device === undefined
        ? { source: key.source, rule: key.rule }
        : { ...key, device: key.device };
    g.log.set(labels, count);
  }
  for (const [module, v] of Object.entries(s.modulesLoaded)) g.loaded.set({ module }, v);
  for (const [module, v] of Object.entries(s.modulesConfigured)) g.configured.set({ module }, v);
  for (const h of s.hcaPcie ?? []) {
    const labels = { device: h.device, pci_bdf: h.pciBdf };
    const set = (gauge: PromGauge<string>, v: number | undefined): void => {
      if (v !== undefined) gauge.set(labels, v);
    };
    set(g.pcieSpeed, h.speedGts);
    set(g.pcieMaxSpeed, h.maxSpeedGts);
    set(g.pcieWidth, h.width);
    set(g.pcieMaxWidth, h.maxWidth);
    set(g.mrr, h.maxReadRequestBytes);
  }
  for (const [check, v] of Object.entries(s.available))
    g.available.set({ check }, v === true ? 1 : 0);
  for (const [check, v] of Object.entries(s.durations)) g.duration.set({ check }, v);
  if (s.conditionWriteOk !== undefined) {
    g.write.set({ result: s.conditionWriteOk === 1 ? 'success' : 'failure' }, 1);
  }
}
