/**
 * The agent's settings: every field, its default and its meaning. Sources, in order of
 * precedence: defaults < the config file (`--config`, JSON or YAML, same shape as AgentOptions with
 * durations as strings like "60s") < environment (NODE_NAME, AEGIS_AGENT_HOST_ROOT) < flags.
 * parseAgentOptions validates everything and throws CONFIG_INVALID naming the field.
 */
import { ErrorCode, HealError } from '../core/errors.js';

/** How host tools run: in the host's mount namespace (production) or as files under the root (tests). */
export type ToolMode = 'host' | 'direct';

/** Check intervals, in milliseconds. */
export interface AgentIntervals {
  readonly gpuMs: number;
  readonly smartMs: number;
  readonly gpfsMs: number;
  readonly sysfsMs: number;
  readonly modulesMs: number;
  readonly dnsMs: number;
  readonly mmfsLogMs: number;
  readonly previousBootMs: number;
  readonly conditionsResyncMs: number;
}

/** RoCE expectations that only the site knows; a check without its setting is "cannot check". */
export interface RoceOptions {
  /** Catalogue check name (e.g. RoceNodeUnitLabelMiss) → node label key that must be present. */
  readonly labels: Readonly<Record<string, string>>;
  /** Extended resource the SR-IOV device plugin registers (e.g. rdma/roce_a). */
  readonly resource?: string;
  /** Virtual functions every RoCE PF must have. */
  readonly expectedVfs?: number;
  /** Netdev → expected IPv4 default gateway. */
  readonly gateways: Readonly<Record<string, string>>;
  /** Required routes, "<destination>/<prefix> dev <netdev>". */
  readonly routes: readonly string[];
}

/** Everything the agent needs to run. */
export interface AgentOptions {
  readonly nodeName: string;
  /** Where the host's filesystem is mounted (each needed path under it). */
  readonly hostRoot: string;
  readonly listenHost: string;
  readonly port: number;
  readonly toolMode: ToolMode;
  /** Root of the NVIDIA tools on the host: "auto" (GPU Operator /run/nvidia/driver, else /). */
  readonly driverRoot: string;
  readonly toolTimeoutMs: number;
  /** Kernel log device, a path under the host root. */
  readonly kmsgPath: string;
  readonly kmsgPollMs: number;
  /** "In the last hour" of aegis_nodecheck_log_matches. */
  readonly logWindowMs: number;
  readonly intervals: AgentIntervals;
  readonly dnsNames: readonly string[];
  readonly dnsServers: readonly string[];
  readonly dnsTimeoutMs: number;
  /** A node without GPFS is then GpfsNotInstalled instead of "cannot check". */
  readonly gpfsRequired: boolean;
  readonly gpfsBinDir: string;
  readonly mmfsLogPath: string;
  /** HCAs, "hca/port" or netdevs that are down or unused by design (allow-list). */
  readonly ignorePorts: readonly string[];
  /** HCA name regex → link layer it must run (IBProtoclAbnormal). */
  readonly expectLinkLayer: Readonly<Record<string, 'InfiniBand' | 'Ethernet'>>;
  readonly roce: RoceOptions;
  /** Write Node conditions (the fast path). */
  readonly conditions: boolean;
  /** Out-of-cluster API access (tests, debugging); in a pod the ServiceAccount is used. */
  readonly kubeServer?: string;
  readonly kubeTokenFile?: string;
  readonly kubeCaFile?: string;
}

/** Defaults: production values for a DaemonSet pod. */
export const DEFAULT_AGENT_OPTIONS: Omit<AgentOptions, 'nodeName'> = {
  hostRoot: '/host',
  listenHost: '0.0.0.0',
  port: 9464,
  toolMode: 'host',
  driverRoot: 'auto',
  toolTimeoutMs: 45_000,
  kmsgPath: '/dev/kmsg',
  kmsgPollMs: 50,
  logWindowMs: 3_600_000,
  intervals: {
    gpuMs: 60_000,
    smartMs: 600_000,
    gpfsMs: 60_000,
    sysfsMs: 15_000,
    modulesMs: 60_000,
    dnsMs: 30_000,
    mmfsLogMs: 5_000,
    previousBootMs: 300_000,
    conditionsResyncMs: 600_000,
  },
  dnsNames: ['kubernetes.default.svc.cluster.local'],
  dnsServers: [],
  dnsTimeoutMs: 5_000,
  gpfsRequired: false,
  gpfsBinDir: '/usr/lpp/mmfs/bin',
  mmfsLogPath: '/var/adm/ras/mmfs.log.latest',
  ignorePorts: [],
  expectLinkLayer: {},
  roce: { labels: {}, gateways: {}, routes: [] },
  conditions: true,
};

/** Throws CONFIG_INVALID for `field`. */
export function invalid(field: string, why: string): never {
  throw new HealError(ErrorCode.ConfigInvalid, `agent option ${field}: ${why}`);
}
