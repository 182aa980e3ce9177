import type { CatalogueEntry, DeviceIdMode } from './types.js';

const MIN = 60_000;

interface RoceCheck {
  readonly name: string;
  readonly description: string;
  readonly priority: number;
  readonly affectsLoad?: boolean;
  readonly deviceIdMode: Extract<DeviceIdMode, 'all' | 'id'>;
  readonly sop: string;
}

/**
 * A RoCE condition from the node check (aegis_nodecheck_problem{check=<name>}). RoCE host, route, label
 * and SR-IOV checks depend on the site's interface names and node labels, which no generic exporter
 * knows, so the node check owns them; `all` conditions are node-wide, `id` ones name the device.
 */
function roce(spec: RoceCheck): CatalogueEntry {
  const perDevice = spec.deviceIdMode === 'id';
  return {
    name: spec.name,
    domain: 'RoCE',
    description: spec.description,
    signal: 'aegis-nodecheck',
    expr: `max by (${perDevice ? 'node, device' : 'node'}) (aegis_nodecheck_problem{check="${spec.name}"}) > 0`,
    deviceLabel: perDevice ? 'device' : '',
    forMs: 2 * MIN,
    clearForMs: 10 * MIN,
    clear: 'The node check passes for 10 minutes.',
    priority: spec.priority,
    affectsLoad: spec.affectsLoad ?? false,
    deviceIdMode: spec.deviceIdMode,
    sop: spec.sop,
    fault: {
      ...(perDevice ? { defaultDevice: 'mlx5_0' } : {}),
      series: [
        {
          metric: 'aegis_nodecheck_problem',
          labels: perDevice ? { check: spec.name, device: '{device}' } : { check: spec.name },
          value: 1,
        },
      ],
    },
  };
}

/** RoCE (RDMA over Ethernet) conditions. */
export const ROCE_CONDITIONS: readonly CatalogueEntry[] = [
  roce({
    name: 'RoceDeviceBroken',
    description: 'The RoCE host inspection failed; value = failed devices.',
    priority: 4,
    deviceIdMode: 'all',
    sop: 'roce.report',
  }),
  roce({
    name: 'RoceHostOffline',
    description: 'A host RoCE NIC is offline.',
    priority: 51,
    deviceIdMode: 'all',
    sop: 'roce.report',
  }),
  roce({
    name: 'RoceHostGatewayNotMatch',
    description: 'The host RoCE gateway does not match the expected one.',
    priority: 51,
    deviceIdMode: 'all',
    sop: 'roce.report',
  }),
  roce({
    name: 'RoceHostRouteMiss',
    description: 'A host RoCE route is missing.',
    priority: 51,
    deviceIdMode: 'all',
    sop: 'roce.report',
  }),
  roce({
    name: 'RocePodOffline',
    description: 'The pod-side RoCE interface is offline.',
    priority: 51,
    deviceIdMode: 'all',
    sop: 'roce.report',
  }),
  roce({
    name: 'RocePodGatewayNotMatch',
    description: 'The pod-side RoCE gateway does not match.',
    priority: 51,
    deviceIdMode: 'all',
    sop: 'roce.report',
  }),
  roce({
    name: 'RoceNodeLabelMiss',
    description: 'The node RoCE label is missing.',
    priority: 51,
    deviceIdMode: 'all',
    sop: 'roce.report',
  }),
  roce({
    name: 'RoceVfDeviceMiss',
    description: 'An SR-IOV virtual function is missing; id = device.',
    priority: 51,
    deviceIdMode: 'id',
    sop: 'roce.report',
  }),
  roce({
    name: 'RoceSriovInitError',
    description: 'SR-IOV initialisation failed; id = device.',
    priority: 51,
    deviceIdMode: 'id',
    sop: 'roce.report',
  }),
  roce({
    name: 'RoceNodeUnitLabelMiss',
    description: 'The node RoCE unit label is missing.',
    priority: 51,
    deviceIdMode: 'all',
    sop: 'roce.report',
  }),
  roce({
    name: 'RoceNodePfNamesLabelMiss',
    description: 'The node RoCE PF-names label is missing.',
    priority: 51,
    deviceIdMode: 'all',
    sop: 'roce.report',
  }),
  roce({
    name: 'RoceNodeResourceLabelMiss',
    description: 'The node RoCE resource label is missing.',
    priority: 51,
    deviceIdMode: 'all',
    sop: 'roce.report',
  }),
  roce({
    name: 'RoceNodeNetworkLabelMiss',
    description: 'The node RoCE network label is missing.',
    priority: 51,
    deviceIdMode: 'all',
    sop: 'roce.report',
  }),
  roce({
    name: 'RoceNodeResourceMiss',
    description: 'The RoCE extended resource is missing from the node; id = device.',
    priority: 51,
    deviceIdMode: 'id',
    sop: 'roce.device-plugin',
  }),
  roce({
    name: 'RoceRegisterFailed',
    description:
      'A RoCE NIC is not registered to the node by the SR-IOV device plugin; id = device.',
    priority: 50,
    deviceIdMode: 'id',
    sop: 'roce.device-plugin',
  }),
  roce({
    name: 'RocePodRouteMiss',
    description: 'A pod-side RoCE route is missing (a constant of the original, never registered).',
    priority: 100,
    deviceIdMode: 'all',
    sop: 'roce.report',
  }),
  roce({
    name: 'RocePodDeviceMiss',
    description:
      'The pod-side RoCE device is missing (a constant of the original, never registered).',
    priority: 100,
    deviceIdMode: 'all',
    sop: 'roce.report',
  }),
];
