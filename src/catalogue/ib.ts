import type { CatalogueEntry, DeviceIdMode } from './types.js';

const MIN = 60_000;

/** Renames sichek's `ib_dev` label to `device`, as node-exporter names the HCA. */
function sichekIb(expr: string): string {
  return `label_replace(${expr}, "device", "$1", "ib_dev", "(.*)")`;
}

/**
 * The agent's HCA PCIe series (src/agent/hca-pcie.ts), labelled `device` (HCA) and `pci_bdf`.
 * The maxima are the lower of the HCA's and its upstream port's, so a slow slot is not a fault.
 */
export const HCA_PCIE = {
  speed: 'aegis_nodecheck_hca_pcie_link_speed_gts',
  maxSpeed: 'aegis_nodecheck_hca_pcie_link_max_speed_gts',
  width: 'aegis_nodecheck_hca_pcie_link_width',
  maxWidth: 'aegis_nodecheck_hca_pcie_link_max_width',
  mrr: 'aegis_nodecheck_hca_pcie_max_read_request_bytes',
} as const;

interface IbCheck {
  readonly name: string;
  readonly description: string;
  readonly priority: number;
  readonly deviceIdMode: DeviceIdMode;
  readonly sop: string | null;
}

/** An HCA condition the node check reports through aegis_nodecheck_problem{check=<name>,device=<HCA>}. */
function nodeCheckIb(spec: IbCheck): CatalogueEntry {
  return {
    ...spec,
    domain: 'IB',
    signal: 'aegis-nodecheck',
    expr: `max by (node, device) (aegis_nodecheck_problem{check="${spec.name}"}) > 0`,
    deviceLabel: 'device',
    forMs: MIN,
    clearForMs: 10 * MIN,
    clear: 'The node check passes for 10 minutes.',
    affectsLoad: false,
    fault: {
      defaultDevice: 'mlx5_0',
      series: [
        {
          metric: 'aegis_nodecheck_problem',
          labels: { check: spec.name, device: '{device}' },
          value: 1,
        },
      ],
    },
  };
}

/**
 * The label carrying an IB port's device id: `<HCA>/<port>` (`mlx5_0/1`), node-exporter's
 * `device` and `port` joined, so two ports of one HCA are two devices.
 */
export const IB_PORT_LABEL = 'ib_port';

/**
 * IB ports meant to be down (not cabled by design), left out of the per-port rules: `device` and
 * `port` are anchored regexes (PromQL `=~`), `nodes` limits the entry to matching node names.
 */
export interface IbPortPattern {
  readonly device: string;
  readonly port: string;
  readonly nodes?: string;
}

/** A PromQL string literal (Go escapes: backslash, quote, control characters). */
function quote(text: string): string {
  return JSON.stringify(text);
}

/**
 * Per-port PromQL over one node-exporter InfiniBand family: `inner(selector)` aggregated per
 * (node, HCA, port), the ignored ports left out, then one series per (node, `ib_port`).
 */
function perPort(
  metric: string,
  inner: (selector: string) => string,
  ignore: readonly IbPortPattern[],
): string {
  let byPort = `max by (node, device, port) (${inner(metric)})`;
  if (ignore.length > 0) {
    const ignored = ignore
      .map((p) => {
        const node = p.nodes === undefined ? '' : `,node=~${quote(p.nodes)}`;
        return `${metric}{device=~${quote(p.device)},port=~${quote(p.port)}${node}}`;
      })
      .join(' or ');
    byPort = `(${byPort} unless on(node, device, port) (${ignored}))`;
  }
  return `max by (node, ${IB_PORT_LABEL}) (label_join(${byPort}, "${IB_PORT_LABEL}", "/", "device", "port"))`;
}

/** The recipe's labels of a per-port series: `{device}` is `<HCA>/<port>`. */
const PORT_LABELS = { device: '{device#0}', port: '{device#1}' };

/** A per-port counter that grew too fast: `increase(metric[window]) > threshold`. Record only. */
function ibCounter(
  name: string,
  metric: string,
  window: string,
  threshold: number,
  description: string,
  ignore: readonly IbPortPattern[],
): CatalogueEntry {
  return {
    name,
    domain: 'IB',
    description,
    signal: 'node-exporter',
    expr: `${perPort(metric, (m) => `increase(${m}[${window}])`, ignore)} > ${threshold}`,
    deviceLabel: IB_PORT_LABEL,
    forMs: 0,
    clearForMs: 0,
    clear: `At most ${threshold} in the last ${window}.`,
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'id',
    sop: 'ib.report',
    fault: {
      defaultDevice: 'mlx5_0/1',
      series: [{ metric, labels: PORT_LABELS, add: threshold * 2 }],
    },
  };
}

/**
 * InfiniBand HCA and link conditions, with the per-port rules (node-exporter's `device`/`port`
 * series: link state, link-downs, error counters) leaving out the ports in `ignore`.
 */
export function ibConditions(ignore: readonly IbPortPattern[]): CatalogueEntry[] {
  return [
    {
      name: 'IBLost',
      domain: 'IB',
      description:
        'Fewer HCAs are registered in the RDMA stack than Mellanox HCA PCI functions exist (sichek hca_num - ' +
        'hca_pci_num); value = HCAs lost.',
      signal: 'sichek',
      expr: 'max by (node) (sichek_infiniband_hca_num) - max by (node) (sichek_infiniband_hca_pci_num) > 0',
      deviceLabel: '',
      forMs: MIN,
      clearForMs: 10 * MIN,
      clear: 'Every HCA registered for 10 minutes.',
      priority: 3,
      affectsLoad: false,
      deviceIdMode: 'all',
      sop: 'ib.report',
      aliases: ['IBDown'],
      fault: {
        series: [
          { metric: 'sichek_infiniband_hca_num', labels: {}, value: 9 },
          { metric: 'sichek_infiniband_hca_pci_num', labels: {}, value: 8 },
        ],
      },
    },
    {
      name: 'IBModuleLost',
      domain: 'IB',
      description: 'IB / RDMA kernel modules are not loaded; value = modules missing.',
      signal: 'aegis-nodecheck',
      expr:
        'count by (node) (aegis_nodecheck_kernel_module_loaded' +
        '{module=~"mlx5_core|mlx5_ib|ib_core|ib_uverbs|ib_umad|ib_cm|rdma_cm|rdma_ucm|ib_ipoib"} == 0) > 0',
      deviceLabel: '',
      forMs: MIN,
      clearForMs: 10 * MIN,
      clear: 'Every module loaded for 10 minutes.',
      priority: 10,
      affectsLoad: false,
      deviceIdMode: 'all',
      sop: 'ib.report',
      aliases: ['IBModuleNotInstalled'],
      fault: {
        series: [
          {
            metric: 'aegis_nodecheck_kernel_module_loaded',
            labels: { module: 'mlx5_ib' },
            value: 0,
          },
        ],
      },
    },
    nodeCheckIb({
      name: 'IBNetDriverFailedLoad',
      description: 'The HCA has no network device (the net driver failed to bind); id = HCA.',
      priority: 10,
      deviceIdMode: 'id',
      sop: 'ib.report',
    }),
    {
      name: 'IBPCIeMRRNotAlign',
      domain: 'IB',
      description:
        'The HCA PCIe Max Read Request Size is not 4096 bytes (the agent reads it from the PCI config ' +
        'space); id = HCA, value = MRR in bytes.',
      signal: 'aegis-nodecheck',
      expr: `max by (node, device, pci_bdf) (${HCA_PCIE.mrr}) != 4096`,
      deviceLabel: 'device',
      pciBdfLabel: 'pci_bdf',
      forMs: MIN,
      clearForMs: 10 * MIN,
      clear: 'MRR is 4096 for 10 minutes.',
      priority: 10,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: 'ib.report',
      fault: {
        defaultDevice: 'mlx5_0',
        series: [{ metric: HCA_PCIE.mrr, labels: { device: '{device}' }, value: 512 }],
      },
    },
    {
      name: 'IBPortSpeedAbnormal',
      domain: 'IB',
      description:
        'The IB port rate is below the node spec (sichek port_speed_state = 1); id = HCA.',
      signal: 'sichek',
      expr: `max by (node, device) (${sichekIb('sichek_infiniband_port_speed_state')}) == 1`,
      deviceLabel: 'device',
      forMs: MIN,
      clearForMs: 10 * MIN,
      clear: 'Port at full rate for 10 minutes.',
      priority: 10,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: 'ib.report',
      fault: {
        defaultDevice: 'mlx5_0',
        series: [
          {
            metric: 'sichek_infiniband_port_speed_state',
            labels: { ib_dev: '{device}' },
            value: 1,
          },
        ],
      },
    },
    nodeCheckIb({
      name: 'IBProtoclAbnormal',
      description:
        'The HCA port runs the wrong link layer or protocol (e.g. Ethernet on an IB port); id = HCA.',
      priority: 10,
      deviceIdMode: 'id',
      sop: 'ib.report',
    }),
    {
      name: 'IBLinkAbnormal',
      domain: 'IB',
      description:
        'The IB port is not ACTIVE (state 4) or not LinkUp (physical state 5); id = HCA/port (`mlx5_0/1`), ' +
        'value = the state id. Ports meant to be down are left out (config `detection.ignoreIbPorts`).',
      signal: 'node-exporter',
      expr:
        `${perPort('node_infiniband_state_id', (m) => `${m} != 4`, ignore)} ` +
        `or ${perPort('node_infiniband_physical_state_id', (m) => `${m} != 5`, ignore)}`,
      deviceLabel: IB_PORT_LABEL,
      forMs: MIN,
      clearForMs: 5 * MIN,
      clear: 'ACTIVE and LinkUp for 5 minutes.',
      priority: 10,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: 'ib.report',
      fault: {
        defaultDevice: 'mlx5_0/1',
        series: [
          { metric: 'node_infiniband_state_id', labels: PORT_LABELS, value: 1 },
          { metric: 'node_infiniband_physical_state_id', labels: PORT_LABELS, value: 2 },
        ],
      },
    },
    {
      name: 'IBPCIeSpeedAbnormal',
      domain: 'IB',
      description:
        "The HCA PCIe link trained slower than it can (current speed below the lower of the HCA's and " +
        "its upstream port's maximum, read by the agent from sysfs); id = HCA, value = GT/s.",
      signal: 'aegis-nodecheck',
      expr: `max by (node, device, pci_bdf) (${HCA_PCIE.speed} < ${HCA_PCIE.maxSpeed})`,
      deviceLabel: 'device',
      pciBdfLabel: 'pci_bdf',
      forMs: 5 * MIN,
      clearForMs: 10 * MIN,
      clear: 'PCIe speed at its maximum for 10 minutes.',
      priority: 10,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: 'ib.reboot-once',
      aliases: ['IBPcieDowngraded'],
      fault: {
        defaultDevice: 'mlx5_0',
        series: [{ metric: HCA_PCIE.speed, labels: { device: '{device}' }, value: 8 }],
      },
    },
    {
      name: 'IBPCIeWidthAbnormal',
      domain: 'IB',
      description:
        "The HCA PCIe link trained narrower than it can (current width below the lower of the HCA's and " +
        "its upstream port's maximum, read by the agent from sysfs); id = HCA, value = lanes.",
      signal: 'aegis-nodecheck',
      expr: `max by (node, device, pci_bdf) (${HCA_PCIE.width} < ${HCA_PCIE.maxWidth})`,
      deviceLabel: 'device',
      pciBdfLabel: 'pci_bdf',
      forMs: 5 * MIN,
      clearForMs: 10 * MIN,
      clear: 'PCIe width at its maximum for 10 minutes.',
      priority: 10,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: 'ib.reboot-once',
      fault: {
        defaultDevice: 'mlx5_0',
        series: [{ metric: HCA_PCIE.width, labels: { device: '{device}' }, value: 8 }],
      },
    },
    {
      name: 'IBLinkFrequentDown',
      domain: 'IB',
      description:
        'The IB link went down more than 3 times in 24 hours; id = HCA/port, value = link-down count.',
      signal: 'node-exporter',
      expr: `${perPort('node_infiniband_link_downed_total', (m) => `increase(${m}[24h])`, ignore)} > 3`,
      deviceLabel: IB_PORT_LABEL,
      forMs: 0,
      clearForMs: 0,
      clear: 'At most 3 link-downs in the last 24 hours.',
      priority: 50,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: 'ib.report',
      fault: {
        defaultDevice: 'mlx5_0/1',
        series: [{ metric: 'node_infiniband_link_downed_total', labels: PORT_LABELS, add: 5 }],
      },
    },
    {
      name: 'IBRegisterFailed',
      domain: 'IB',
      description:
        'The RDMA shared device plugin registered no device (rdma/hca_shared_devices_all capacity is 0).',
      signal: 'kube-state-metrics',
      expr: 'max by (node) (kube_node_status_capacity{resource="rdma_hca_shared_devices_all"} == bool 0) > 0',
      deviceLabel: '',
      forMs: 2 * MIN,
      clearForMs: 5 * MIN,
      clear: 'RDMA capacity back for 5 minutes.',
      priority: 50,
      affectsLoad: false,
      deviceIdMode: 'none',
      sop: 'ib.device-plugin',
      fault: {
        series: [
          {
            metric: 'kube_node_status_capacity',
            labels: { resource: 'rdma_hca_shared_devices_all' },
            value: 0,
          },
        ],
      },
    },
    ibCounter(
      'IBReceivedError',
      'node_infiniband_port_errors_received_total',
      '24h',
      1000,
      'More than 1000 receive errors on the IB port in 24 hours; id = HCA/port. Record only.',
      ignore,
    ),
    {
      ...ibCounter(
        'IBTrasmittedError',
        'node_infiniband_port_discards_transmitted_total',
        '24h',
        1000,
        'More than 1000 transmit discards on the IB port in 24 hours; id = HCA/port (name spelt as in v1). Record only.',
        ignore,
      ),
      aliases: ['IBTransmittedError'],
    },
    ibCounter(
      'IBSymbolError',
      'node_infiniband_symbol_error_total',
      '24h',
      1000,
      'More than 1000 symbol errors on the IB port in 24 hours (a bad cable or optic); id = HCA/port. Record only.',
      ignore,
    ),
    ibCounter(
      'IBLinkErrorRecovery',
      'node_infiniband_link_error_recovery_total',
      '1h',
      10,
      'The IB link retrained more than 10 times in an hour; id = HCA/port. Record only.',
      ignore,
    ),
    {
      name: 'IBPortDown',
      domain: 'IB',
      description:
        'The IB port logical state is not ACTIVE; id = HCA/port, value = state id. Legacy name, record only.',
      signal: 'node-exporter',
      expr: perPort('node_infiniband_state_id', (m) => `${m} != 4`, ignore),
      deviceLabel: IB_PORT_LABEL,
      forMs: MIN,
      clearForMs: 5 * MIN,
      clear: 'ACTIVE for 5 minutes.',
      priority: 999,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: null,
      fault: {
        defaultDevice: 'mlx5_0/1',
        series: [{ metric: 'node_infiniband_state_id', labels: PORT_LABELS, value: 1 }],
      },
    },
    {
      name: 'IBPhysicalPortDown',
      domain: 'IB',
      description:
        'The IB port physical state is not LinkUp; id = HCA/port, value = physical state id. Legacy name, ' +
        'record only.',
      signal: 'node-exporter',
      expr: perPort('node_infiniband_physical_state_id', (m) => `${m} != 5`, ignore),
      deviceLabel: IB_PORT_LABEL,
      forMs: MIN,
      clearForMs: 5 * MIN,
      clear: 'LinkUp for 5 minutes.',
      priority: 999,
      affectsLoad: false,
      deviceIdMode: 'id',
      sop: null,
      fault: {
        defaultDevice: 'mlx5_0/1',
        series: [{ metric: 'node_infiniband_physical_state_id', labels: PORT_LABELS, value: 2 }],
      },
    },
    nodeCheckIb({
      name: 'IBPingFailed',
      description:
        'The node check could not reach its IB ping peers from the HCA; id = HCA. Legacy name, record only.',
      priority: 999,
      deviceIdMode: 'id',
      sop: null,
    }),
  ];
}

/** InfiniBand HCA and link conditions (no port ignored; config: applyDetectionConfig). */
export const IB_CONDITIONS: readonly CatalogueEntry[] = ibConditions([]);
