/**
 * InfiniBand and RoCE host checks from sysfs (ib-sysfs.ts). Ports, HCAs and netdevs on the
 * allow-list (`ignorePorts`: "mlx5_2", "mlx5_2/1" or "enp27s0f1np1") are down or unused by design
 * and never counted.
 *   IBNetDriverFailedLoad{device=hca}  an InfiniBand HCA without a network device;
 *   IBProtoclAbnormal{device=hca}      an HCA whose link layer is not the one configured for it
 *                                      (`expectLinkLayer`; without it: cannot check);
 *   RoceHostOffline                    RoCE ports not ACTIVE or whose netdev is not up (value = count);
 *   RoceDeviceBroken                   RoCE HCAs without ports or without a netdev (value = count);
 *   RoceVfDeviceMiss{device=netdev}    a PF created fewer VFs than sriov_numvfs asks for;
 *   RoceSriovInitError{device=netdev}  a PF has fewer VFs than `roce.expectedVfs`.
 */
import {
  checked,
  problem,
  unavailable,
  type Check,
  type CheckReport,
  type ProblemSample,
} from './check.js';
import { linkLayerOf, readRdmaDevices, type RdmaDevice } from './ib-sysfs.js';

/** Conditions this check reports. */
export const RDMA_CHECKS = [
  'IBNetDriverFailedLoad',
  'IBProtoclAbnormal',
  'RoceHostOffline',
  'RoceDeviceBroken',
  'RoceVfDeviceMiss',
  'RoceSriovInitError',
] as const;

/** Settings of the RDMA check. */
export interface RdmaCheckOptions {
  readonly hostRoot: string;
  readonly intervalMs: number;
  readonly ignorePorts: readonly string[];
  readonly expectLinkLayer: Readonly<Record<string, string>>;
  readonly expectedVfs?: number;
}

/** Builds the RDMA check. */
export function createRdmaCheck(opts: RdmaCheckOptions): Check {
  return {
    name: 'rdma',
    intervalMs: opts.intervalMs,
    covers: RDMA_CHECKS,
    async run() {
      const devices = await readRdmaDevices(opts.hostRoot);
      if (devices === undefined) {
        return { problems: [], available: unavailable(RDMA_CHECKS, 'no /sys/class/infiniband') };
      }
      return evaluateRdma(devices, opts);
    },
  };
}

/** Pure evaluation of the sysfs snapshot. */
export function evaluateRdma(
  devices: readonly RdmaDevice[],
  opts: Pick<RdmaCheckOptions, 'ignorePorts' | 'expectLinkLayer' | 'expectedVfs'>,
): CheckReport {
  const ignored = (...ids: string[]): boolean => ids.some((id) => opts.ignorePorts.includes(id));
  const active = devices.filter((d) => !ignored(d.name));
  const ib = active.filter((d) => linkLayerOf(d) === 'InfiniBand');
  const roce = active.filter((d) => linkLayerOf(d) === 'Ethernet');
  const problems: ProblemSample[] = [
    ...perDevice(
      'IBNetDriverFailedLoad',
      ib,
      (d) => d.netdevs !== undefined && d.netdevs.length === 0,
    ),
    ...linkLayerProblems(active, opts.expectLinkLayer),
    problem(
      'RoceHostOffline',
      roce.reduce((n, d) => n + offlinePorts(d, ignored), 0),
    ),
    problem('RoceDeviceBroken', roce.filter(isBroken).length),
    ...vfProblems(roce, opts.expectedVfs),
  ];
  const available = {
    ...checked(RDMA_CHECKS),
    ...(Object.keys(opts.expectLinkLayer).length === 0
      ? unavailable(['IBProtoclAbnormal'], 'expectLinkLayer not configured')
      : {}),
    ...(opts.expectedVfs === undefined
      ? unavailable(['RoceSriovInitError'], 'roce.expectedVfs not configured')
      : {}),
  };
  return { problems, available };
}

function perDevice(
  check: string,
  devices: readonly RdmaDevice[],
  failing: (d: RdmaDevice) => boolean,
): ProblemSample[] {
  const bad = devices.filter(failing);
  return bad.length === 0 ? [problem(check, 0)] : bad.map((d) => problem(check, 1, d.name));
}

function linkLayerProblems(
  devices: readonly RdmaDevice[],
  expect: Readonly<Record<string, string>>,
): ProblemSample[] {
  const rules = Object.entries(expect).map(([re, layer]) => [new RegExp(re), layer] as const);
  if (rules.length === 0) return [];
  return perDevice('IBProtoclAbnormal', devices, (d) => {
    const want = rules.find(([re]) => re.test(d.name))?.[1];
    const have = linkLayerOf(d);
    return want !== undefined && have !== undefined && have !== want;
  });
}

function offlinePorts(d: RdmaDevice, ignored: (...ids: string[]) => boolean): number {
  const ports = d.ports.filter((p) => !ignored(`${d.name}/${p.port}`));
  const downPorts = ports.filter(
    (p) => p.state !== undefined && !p.state.endsWith('ACTIVE'),
  ).length;
  const downNetdevs = (d.netdevs ?? []).filter(
    (n) => !ignored(n.name) && n.operstate !== undefined && n.operstate !== 'up',
  ).length;
  return Math.max(downPorts, downNetdevs);
}

function isBroken(d: RdmaDevice): boolean {
  return d.ports.length === 0 || (d.netdevs !== undefined && d.netdevs.length === 0);
}

function vfProblems(roce: readonly RdmaDevice[], expectedVfs: number | undefined): ProblemSample[] {
  const pfs = roce.filter((d) => d.sriovNumVfs !== undefined);
  const netdevOf = (d: RdmaDevice): string => d.netdevs?.[0]?.name ?? d.name;
  const missing = perDevice(
    'RoceVfDeviceMiss',
    pfs,
    (d) => (d.virtfns ?? 0) < (d.sriovNumVfs ?? 0),
  );
  const init =
    expectedVfs === undefined
      ? []
      : perDevice('RoceSriovInitError', pfs, (d) => (d.sriovNumVfs ?? 0) < expectedVfs);
  const rename = (s: ProblemSample): ProblemSample => {
    const dev = pfs.find((d) => d.name === s.device);
    return dev === undefined ? s : problem(s.check, s.value, netdevOf(dev));
  };
  return [...missing.map(rename), ...init.map(rename)];
}
