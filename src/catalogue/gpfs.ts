import type { CatalogueEntry } from './types.js';

const MIN = 60_000;

/** A GPFS status check only the node check sees (sichek-style mmhealth / mmgetstate verdicts). */
function gpfsCheck(name: string, description: string): CatalogueEntry {
  return {
    name,
    domain: 'GPFS',
    description,
    signal: 'aegis-nodecheck',
    expr: `max by (node) (aegis_nodecheck_problem{check="${name}"}) > 0`,
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 10 * MIN,
    clear: 'The node check passes for 10 minutes.',
    priority: 49,
    affectsLoad: false,
    deviceIdMode: 'all',
    sop: 'gpfs.report',
    fault: { series: [{ metric: 'aegis_nodecheck_problem', labels: { check: name }, value: 1 }] },
  };
}

/** A GPFS log event seen by the node check in mmfs.log in the last hour. */
function gpfsLog(name: string, rule: string, description: string): CatalogueEntry {
  return {
    name,
    domain: 'GPFS',
    description,
    signal: 'aegis-nodecheck',
    expr: `max by (node) (aegis_nodecheck_log_matches{source="mmfs",rule="${rule}"}) > 0`,
    deviceLabel: '',
    forMs: 0,
    clearForMs: 0,
    clear: 'No such log line in the node check window (1 hour).',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'all',
    sop: 'gpfs.report',
    fault: {
      series: [
        { metric: 'aegis_nodecheck_log_matches', labels: { source: 'mmfs', rule }, value: 1 },
      ],
    },
  };
}

/** IBM Spectrum Scale (GPFS) client conditions: treydock/gpfs_exporter plus the node check. */
export const GPFS_CONDITIONS: readonly CatalogueEntry[] = [
  {
    name: 'GpfsDown',
    domain: 'GPFS',
    description: 'The GPFS daemon is down (mmgetstate: down).',
    signal: 'gpfs-exporter',
    expr: 'max by (node) (gpfs_state{state="down"}) > 0',
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 10 * MIN,
    clear: 'The daemon is active for 10 minutes.',
    priority: 2,
    affectsLoad: true,
    deviceIdMode: 'all',
    sop: 'gpfs.repair',
    fault: {
      series: [
        { metric: 'gpfs_state', labels: { state: 'active' }, value: 0 },
        { metric: 'gpfs_state', labels: { state: 'down' }, value: 1 },
      ],
    },
  },
  {
    name: 'GpfsMountLost',
    domain: 'GPFS',
    description:
      'A GPFS filesystem listed in fstab is not mounted; id = mount point. (The gpfs_exporter capture shows ' +
      '/fs/ess at 0: by this definition that node has lost a mount.)',
    signal: 'gpfs-exporter',
    expr: 'max by (node, mount) (gpfs_mount_status == bool 0) > 0',
    deviceLabel: 'mount',
    forMs: MIN,
    clearForMs: 10 * MIN,
    clear: 'The filesystem is mounted for 10 minutes.',
    priority: 10,
    affectsLoad: false,
    deviceIdMode: 'id',
    sop: 'gpfs.repair',
    fault: {
      defaultDevice: '/gpfs/fs1',
      series: [{ metric: 'gpfs_mount_status', labels: { mount: '{device}' }, value: 0 }],
    },
  },
  {
    name: 'GpfsInactive',
    domain: 'GPFS',
    description:
      'The GPFS daemon has been neither active nor down for 10 minutes (stuck arbitrating or unknown). The ' +
      'original gave it priority 9 and no SOP, which starved every later Emergency item; it now gets the ' +
      'GpfsDown repair ladder.',
    signal: 'gpfs-exporter',
    expr: 'max by (node) (gpfs_state{state=~"arbitrating|unknown"}) > 0',
    deviceLabel: '',
    forMs: 10 * MIN,
    clearForMs: 10 * MIN,
    clear: 'The daemon is active for 10 minutes.',
    priority: 9,
    affectsLoad: true,
    deviceIdMode: 'all',
    sop: 'gpfs.repair',
    fault: {
      series: [
        { metric: 'gpfs_state', labels: { state: 'active' }, value: 0 },
        { metric: 'gpfs_state', labels: { state: 'arbitrating' }, value: 1 },
      ],
    },
  },
  {
    name: 'GpfsThreadDeadlock',
    domain: 'GPFS',
    description:
      'A GPFS waiter has been blocked longer than 300 s for 10 minutes (mmdiag --waiters); value = such ' +
      'waiters. Low risk; the SOP breaks the deadlock when re-prioritised.',
    signal: 'gpfs-exporter',
    expr: 'max by (node) (gpfs_waiter_seconds_count) - max by (node) (gpfs_waiter_seconds_bucket{le="300"}) > 0',
    deviceLabel: '',
    forMs: 10 * MIN,
    clearForMs: 5 * MIN,
    clear: 'No waiter older than 300 s for 5 minutes.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: 'gpfs.break-deadlock',
    fault: {
      series: [
        { metric: 'gpfs_waiter_seconds_count', labels: {}, value: 30 },
        { metric: 'gpfs_waiter_seconds_bucket', labels: { le: '300' }, value: 25 },
      ],
    },
  },
  {
    name: 'GpfsTestFailed',
    domain: 'GPFS',
    description: 'The node check GPFS read/write probe failed; value = failures.',
    signal: 'aegis-nodecheck',
    expr: 'max by (node) (aegis_nodecheck_problem{check="GpfsTestFailed"}) > 0',
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 10 * MIN,
    clear: 'The probe passes for 10 minutes.',
    priority: 50,
    affectsLoad: false,
    deviceIdMode: 'all',
    sop: 'gpfs.report',
    fault: {
      series: [
        { metric: 'aegis_nodecheck_problem', labels: { check: 'GpfsTestFailed' }, value: 1 },
      ],
    },
  },
  {
    name: 'GpfsIBNotConfig',
    domain: 'GPFS',
    description: 'GPFS verbs RDMA is not started: the client talks over TCP instead of InfiniBand.',
    signal: 'gpfs-exporter',
    expr: 'max by (node) (gpfs_verbs_status == bool 0) > 0',
    deviceLabel: '',
    forMs: 5 * MIN,
    clearForMs: 10 * MIN,
    clear: 'Verbs RDMA started for 10 minutes.',
    priority: 51,
    affectsLoad: false,
    deviceIdMode: 'all',
    sop: 'gpfs.report',
    fault: { series: [{ metric: 'gpfs_verbs_status', labels: {}, value: 0 }] },
  },
  {
    name: 'GpfsRdmaError',
    domain: 'GPFS',
    description: 'mmhealth reports the IB_RDMA network entity FAILED or DEGRADED.',
    signal: 'gpfs-exporter',
    expr: 'max by (node) (gpfs_health_status{component="NETWORK",entitytype="IB_RDMA",status=~"FAILED|DEGRADED"}) > 0',
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 10 * MIN,
    clear: 'IB_RDMA healthy for 10 minutes.',
    priority: 49,
    affectsLoad: false,
    deviceIdMode: 'all',
    sop: 'gpfs.report',
    fault: {
      series: [
        {
          metric: 'gpfs_health_status',
          labels: { component: 'NETWORK', entitytype: 'IB_RDMA', status: 'FAILED' },
          value: 1,
        },
      ],
    },
  },
  {
    name: 'GpfsNodeNotHealthy',
    domain: 'GPFS',
    description:
      'mmhealth reports the node or its GPFS component FAILED or DEGRADED (TIPS is healthy).',
    signal: 'gpfs-exporter',
    expr: 'max by (node) (gpfs_health_status{component=~"NODE|GPFS",entitytype="NODE",status=~"FAILED|DEGRADED"}) > 0',
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 10 * MIN,
    clear: 'Healthy (or TIPS) for 10 minutes.',
    priority: 49,
    affectsLoad: false,
    deviceIdMode: 'all',
    sop: 'gpfs.report',
    fault: {
      series: [
        {
          metric: 'gpfs_health_status',
          labels: { component: 'GPFS', entitytype: 'NODE', status: 'FAILED' },
          value: 1,
        },
      ],
    },
  },
  {
    name: 'GpfsNotMounted',
    domain: 'GPFS',
    description: 'No GPFS filesystem is mounted on the node at all.',
    signal: 'gpfs-exporter',
    expr: 'max by (node) (max by (node) (gpfs_mount_status) == bool 0) > 0',
    deviceLabel: '',
    forMs: 2 * MIN,
    clearForMs: 10 * MIN,
    clear: 'A GPFS filesystem is mounted for 10 minutes.',
    priority: 49,
    affectsLoad: false,
    deviceIdMode: 'all',
    sop: 'gpfs.report',
    fault: { series: [{ metric: 'gpfs_mount_status', labels: {}, value: 0 }] },
  },
  gpfsCheck('GpfsNotStarted', 'The GPFS daemon was never started on this boot.'),
  gpfsCheck('GpfsNotInCluster', 'The node is not a member of the GPFS cluster.'),
  gpfsCheck('GpfsNotInstalled', 'GPFS is not installed on a node that should have it.'),
  gpfsLog(
    'GpfsExpelledFromCluster',
    'expelled',
    'mmfs.log shows the node was expelled from the cluster.',
  ),
  gpfsLog(
    'GpfsQuorumConnectionDown',
    'quorum_connection_down',
    'mmfs.log shows lost connections to quorum nodes.',
  ),
  {
    name: 'GpfsExporterDown',
    domain: 'GPFS',
    description:
      'gpfs_exporter reported for the node in the last day but reports nothing now: the GPFS rules of the ' +
      'node are stale. Record only; clears by itself after a day of silence.',
    signal: 'prometheus',
    expr: 'count by (node) (max_over_time(gpfs_state[1d])) unless on(node) count by (node) (gpfs_state)',
    deviceLabel: '',
    forMs: 10 * MIN,
    clearForMs: 2 * MIN,
    clear: 'gpfs_exporter reports for the node again.',
    priority: 100,
    affectsLoad: false,
    deviceIdMode: 'none',
    sop: null,
    fault: { series: [{ metric: 'gpfs_state', labels: {}, remove: true }] },
  },
];
