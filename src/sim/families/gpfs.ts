/** gpfs_exporter families (mmgetstate, mount, mmhealth, verbs, waiters), as in the gpfs capture. */
import type { FamilyDef, Variants } from '../family.js';
import { NODE_NAME_TOKEN } from '../series-labels.js';
import { constant, NODE, ONE, ZERO, gauge } from './helpers.js';

// ---------------------------------------------------------------- gpfs_exporter (workers)
const GPFS_STATES = ['active', 'arbitrating', 'down', 'unknown'];
const HEALTH_STATUSES = [
  'CHECKING',
  'DEGRADED',
  'DEPEND',
  'DISABLED',
  'FAILED',
  'HEALTHY',
  'STARTING',
  'STOPPED',
  'SUSPENDED',
  'TIPS',
  'UNKNOWN',
];
const HEALTH_ENTITIES = [
  ['FILESYSTEM', NODE_NAME_TOKEN, 'NODE'],
  ['FILESYSTEM', 'fs1', 'FILESYSTEM'],
  ['GPFS', NODE_NAME_TOKEN, 'NODE'],
  ['NETWORK', NODE_NAME_TOKEN, 'NODE'],
  ['NETWORK', 'mlx5_8/1', 'IB_RDMA'],
  ['NODE', NODE_NAME_TOKEN, 'NODE'],
] as const;
/** mmhealth one-hot series; `entityname` of NODE entities is the node's own name. */
const GPFS_HEALTH_VARIANTS: Variants = HEALTH_ENTITIES.flatMap(
  ([component, entityname, entitytype]) =>
    HEALTH_STATUSES.map((status) => ({ component, entityname, entitytype, status })),
);

/** gpfs_exporter families. */
export const GPFS_FAMILIES: readonly FamilyDef[] = [
  gauge('gpfs_state', 'GPFS state', NODE, (_n, _d, v) => (v === 0 ? 1 : 0), {
    variants: () => GPFS_STATE_VARIANTS,
  }),
  gauge(
    'gpfs_mount_status',
    'Status of GPFS filesystems, 1=mounted 0=not mounted',
    { kind: 'mount', label: 'mount' },
    ONE,
  ),
  gauge(
    'gpfs_health_status',
    'GPFS health status',
    NODE,
    (_n, _d, v) => (GPFS_HEALTH_VARIANTS[v]?.status === 'HEALTHY' ? 1 : 0),
    {
      variants: () => GPFS_HEALTH_VARIANTS,
    },
  ),
  gauge('gpfs_verbs_status', 'GPFS verbs status, 1=started 0=not started', NODE, ONE),
  gauge(
    'gpfs_exporter_collect_error',
    'Indicates if error has occurred during collection',
    NODE,
    ZERO,
    {
      variants: () => GPFS_COLLECTORS,
    },
  ),
  gauge('gpfs_exporter_collect_timeout', 'Indicates the collector timed out', NODE, ZERO, {
    variants: () => GPFS_COLLECTORS,
  }),
  // Current waiters as a histogram (mmdiag --waiters): two short waiters on a healthy node.
  gauge('gpfs_waiter_seconds_bucket', 'GPFS waiter in seconds', NODE, constant(2), {
    variants: () => WAITER_BUCKETS,
    histogram: 'gpfs_waiter_seconds',
  }),
  gauge('gpfs_waiter_seconds_sum', 'GPFS waiter in seconds', NODE, constant(0.4), {
    histogram: 'gpfs_waiter_seconds',
  }),
  gauge('gpfs_waiter_seconds_count', 'GPFS waiter in seconds', NODE, constant(2), {
    histogram: 'gpfs_waiter_seconds',
  }),
];
const WAITER_BUCKETS: Variants = ['1', '5', '15', '60', '300', '3600', '+Inf'].map((le) => ({
  le,
}));
const GPFS_STATE_VARIANTS: Variants = GPFS_STATES.map((state) => ({ state }));
const GPFS_COLLECTORS: Variants = ['mmgetstate', 'mmhealth', 'mount', 'verbs', 'waiter'].map(
  (collector) => ({ collector }),
);
