import type { CatalogueEntry } from './types.js';

const MIN = 60_000;

/** Interfaces that are not physical NICs or bonds: never reported. */
const VIRTUAL_NIC =
  'device!~"lo|veth.*|cali.*|cilium.*|docker.*|cni.*|flannel.*|tunl.*|vxlan.*|kube-ipvs.*|virbr.*|nodelocaldns|ib.*"';

/** Host Ethernet conditions: bonds, links, flaps, errors, conntrack, DNS. */
export const NETWORK_CONDITIONS: readonly CatalogueEntry[] = [
  {
    name: 'NetworkLinkDown',
    domain: 'Network',
    description:
      'Bond slaves are down (node-exporter bonding collector: slaves - active); id = bond, value = slaves down. ' +
      'The SOP only reports: a bond with a live slave still carries traffic.',
    signal: 'node-exporter',
    expr: 'max by (node, device) (label_replace(node_bonding_slaves - node_bonding_active, "device", "$1", "master", "(.*)")) > 0',
    deviceLabel: 'device',
    forMs: MIN,
    clearForMs: 5 * MIN,
    clear: 'Every bond slave active for 5 minutes.',
    priority: 50,
    affectsLoad: false,
    deviceIdMode: 'id',
    sop: 'network.report',
    fault: {
      defaultDevice: 'bond0',
      series: [
        { metric: 'node_bonding_slaves', labels: { master: '{device}' }, value: 2 },
        { metric: 'node_bonding_active', labels: { master: '{device}' }, value: 1 },
      ],
    },
  },
  {
    name: 'NetworkLinkFrequentDown',
    domain: 'Network',
    description: 'A NIC lost carrier more than 3 times in an hour (flapping link); id = interface.',
    signal: 'node-exporter',
    expr: `max by (node, device) (increase(node_network_carrier_down_changes_total{${VIRTUAL_NIC}}[1h])) > 3`,
    deviceLabel: 'device',
    forMs: 0,
    clearForMs: 30 * MIN,
    clear: 'No more than 3 carrier losses in an hour, for 30 minutes.',
    priority: 51,
    affectsLoad: false,
    deviceIdMode: 'id',
    sop: 'network.report',
    fault: {
      defaultDevice: 'eth0',
      series: [
        {
          metric: 'node_network_carrier_down_changes_total',
          labels: { device: '{device}' },
          add: 5,
        },
      ],
    },
  },
  {
    name: 'ICETxTimeout',
    domain: 'Network',
    description:
      'The kernel logged a transmit timeout (NETDEV WATCHDOG / ice "Detected Tx Unit Hang") in the last hour; ' +
      'id = interface. The NIC usually needs a driver reload or a reboot.',
    signal: 'aegis-nodecheck',
    expr: 'max by (node, device) (aegis_nodecheck_log_matches{source="kernel",rule="ice_tx_timeout"}) > 0',
    deviceLabel: 'device',
    forMs: 0,
    clearForMs: 0,
    clear: 'No transmit timeout in the node check window (1 hour).',
    priority: 51,
    affectsLoad: true,
    deviceIdMode: 'id',
    sop: 'network.reboot',
    fault: {
      defaultDevice: 'ens1f0',
      series: [
        {
          metric: 'aegis_nodecheck_log_matches',
          labels: { source: 'kernel', rule: 'ice_tx_timeout', device: '{device}' },
          value: 1,
        },
      ],
    },
  },
  {
    name: 'NetworkInterfaceDown',
    domain: 'Network',
    description:
      'A NIC that is administratively up has no carrier (cable, optic or switch port). Record only.',
    signal: 'node-exporter',
    expr: `max by (node, device) (node_network_carrier{${VIRTUAL_NIC}} == bool 0) > 0`,
    deviceLabel: 'device',
    forMs: 2 * MIN,
    clearForMs: 5 * MIN,
    clear: 'Carrier back for 5 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'id',
    sop: 'network.report',
    aliases: ['LinkDown'],
    fault: {
      defaultDevice: 'eth0',
      series: [{ metric: 'node_network_carrier', labels: { device: '{device}' }, value: 0 }],
    },
  },
  {
    name: 'ConntrackFull',
    domain: 'Network',
    description:
      'The conntrack table is more than 90 % full (new connections get dropped); value = % used.',
    signal: 'node-exporter',
    expr: 'max by (node) (node_nf_conntrack_entries / node_nf_conntrack_entries_limit) * 100 > 90',
    deviceLabel: '',
    forMs: 5 * MIN,
    clearForMs: 5 * MIN,
    clear: 'Conntrack usage below 90 % for 5 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: {
      series: [
        { metric: 'node_nf_conntrack_entries', labels: {}, value: 262_000 },
        { metric: 'node_nf_conntrack_entries_limit', labels: {}, value: 262_144 },
      ],
    },
  },
  {
    name: 'NetworkTransmitErr',
    domain: 'Network',
    description: 'More than 100 transmit errors on a NIC in 10 minutes; id = interface.',
    signal: 'node-exporter',
    expr: `max by (node, device) (increase(node_network_transmit_errs_total{${VIRTUAL_NIC}}[10m])) > 100`,
    deviceLabel: 'device',
    forMs: 0,
    clearForMs: 0,
    clear: 'At most 100 transmit errors in the last 10 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'id',
    sop: null,
    fault: {
      defaultDevice: 'eth0',
      series: [
        { metric: 'node_network_transmit_errs_total', labels: { device: '{device}' }, add: 1000 },
      ],
    },
  },
  {
    name: 'NetworkReceiveErr',
    domain: 'Network',
    description: 'More than 100 receive errors on a NIC in 10 minutes; id = interface.',
    signal: 'node-exporter',
    expr: `max by (node, device) (increase(node_network_receive_errs_total{${VIRTUAL_NIC}}[10m])) > 100`,
    deviceLabel: 'device',
    forMs: 0,
    clearForMs: 0,
    clear: 'At most 100 receive errors in the last 10 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'id',
    sop: null,
    fault: {
      defaultDevice: 'eth0',
      series: [
        { metric: 'node_network_receive_errs_total', labels: { device: '{device}' }, add: 1000 },
      ],
    },
  },
  {
    name: 'DnsTestFailed',
    domain: 'Network',
    description: 'The node check could not resolve the cluster DNS test name.',
    signal: 'aegis-nodecheck',
    expr: 'max by (node) (aegis_nodecheck_problem{check="DnsTestFailed"}) > 0',
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 5 * MIN,
    clear: 'DNS resolution works again for 5 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'network.report',
    fault: {
      series: [{ metric: 'aegis_nodecheck_problem', labels: { check: 'DnsTestFailed' }, value: 1 }],
    },
  },
];
