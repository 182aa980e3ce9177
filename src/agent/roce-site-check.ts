/**
 * RoCE checks that compare the node with what the site declares (`roce` options); each one
 * without its setting is "cannot check".
 *   RoceHostGatewayNotMatch  a netdev's default route gateway is not `roce.gateways[netdev]`;
 *   RoceHostRouteMiss        a route of `roce.routes` is missing (host routing table,
 *                            <hostRoot>/proc/1/net/route: PID 1's network namespace);
 *   RoceNode*LabelMiss       the label `roce.labels[check]` is missing from the Node;
 *   RoceNodeResourceMiss     the Node has none of the extended resource `roce.resource`;
 *   RoceRegisterFailed       it has fewer than the RoCE netdevs that are up (device = resource).
 * Pod-side RoCE checks need the pods' network namespaces and IBPingFailed needs peers: the agent
 * reports them as "cannot check" (see docs/agent.md).
 */
import {
  checked,
  problem,
  unavailable,
  type Check,
  type CheckReport,
  type ProblemSample,
} from './check.js';
import { hostPath, readText } from './host-fs.js';
import type { NodePort, NodeView } from './node-port.js';
import type { RoceOptions } from './options.js';

/** Label checks the site may configure. */
export const ROCE_LABEL_CHECKS = [
  'RoceNodeLabelMiss',
  'RoceNodeUnitLabelMiss',
  'RoceNodePfNamesLabelMiss',
  'RoceNodeResourceLabelMiss',
  'RoceNodeNetworkLabelMiss',
] as const;
/** Conditions the agent cannot produce from the host. */
export const NOT_PRODUCED = [
  'RocePodOffline',
  'RocePodGatewayNotMatch',
  'RocePodRouteMiss',
  'RocePodDeviceMiss',
  'IBPingFailed',
] as const;
/** Conditions this check reports. */
export const ROCE_SITE_CHECKS = [
  'RoceHostGatewayNotMatch',
  'RoceHostRouteMiss',
  ...ROCE_LABEL_CHECKS,
  'RoceNodeResourceMiss',
  'RoceRegisterFailed',
  ...NOT_PRODUCED,
] as const;

/** One IPv4 route of /proc/net/route. */
export interface Route {
  readonly iface: string;
  readonly destination: string;
  readonly gateway: string;
  readonly prefix: number;
}

/** Parses /proc/net/route (addresses are little-endian hex). */
export function parseRoutes(text: string): Route[] {
  return text
    .split('\n')
    .slice(1)
    .flatMap((line) => {
      const f = line.trim().split(/\s+/);
      if (f.length < 8) return [];
      const mask = hexIp(f[7] ?? '');
      const prefix = mask
        .split('.')
        .reduce((n, o) => n + (Number(o).toString(2).match(/1/g)?.length ?? 0), 0);
      return [
        { iface: f[0] ?? '', destination: hexIp(f[1] ?? ''), gateway: hexIp(f[2] ?? ''), prefix },
      ];
    });
}

function hexIp(hex: string): string {
  const n = parseInt(hex, 16);
  return [0, 8, 16, 24].map((s) => (n >>> s) & 255).join('.');
}

/** Builds the check; `roceUp` counts the RoCE netdevs that are up (from sysfs). */
export function createRoceSiteCheck(opts: {
  hostRoot: string;
  nodeName: string;
  roce: RoceOptions;
  node: NodePort | undefined;
  roceUp: () => Promise<number>;
  intervalMs: number;
}): Check {
  return {
    name: 'roce-site',
    intervalMs: opts.intervalMs,
    covers: ROCE_SITE_CHECKS,
    async run(signal) {
      const routes = await readText(hostPath(opts.hostRoot, '/proc/1/net/route'));
      const node =
        opts.node === undefined
          ? undefined
          : await opts.node.getNode(opts.nodeName, signal).catch(() => undefined);
      return evaluateRoceSite(
        opts.roce,
        routes === undefined ? undefined : parseRoutes(routes),
        node,
        await opts.roceUp(),
      );
    },
  };
}

/** Pure evaluation. */
export function evaluateRoceSite(
  roce: RoceOptions,
  routes: readonly Route[] | undefined,
  node: NodeView | undefined,
  roceUp: number,
): CheckReport {
  const problems: ProblemSample[] = [];
  const available: Record<string, string | true> = unavailable(
    NOT_PRODUCED,
    'needs pod network namespaces or IB peers',
  );
  const gateways = Object.entries(roce.gateways);
  if (gateways.length === 0 || routes === undefined)
    available.RoceHostGatewayNotMatch = 'roce.gateways not configured or no route table';
  else {
    const bad = gateways.filter(
      ([dev, gw]) => !routes.some((r) => r.iface === dev && r.prefix === 0 && r.gateway === gw),
    );
    problems.push(problem('RoceHostGatewayNotMatch', bad.length));
    available.RoceHostGatewayNotMatch = true;
  }
  if (roce.routes.length === 0 || routes === undefined)
    available.RoceHostRouteMiss = 'roce.routes not configured or no route table';
  else {
    const missing = roce.routes.filter(
      (want) => !routes.some((r) => `${r.destination}/${r.prefix} dev ${r.iface}` === want.trim()),
    );
    problems.push(problem('RoceHostRouteMiss', missing.length));
    available.RoceHostRouteMiss = true;
  }
  for (const check of ROCE_LABEL_CHECKS) {
    const label = roce.labels[check];
    if (label === undefined || node === undefined)
      available[check] = 'label not configured or Node not readable';
    else {
      problems.push(problem(check, label in node.labels ? 0 : 1));
      available[check] = true;
    }
  }
  Object.assign(available, resourceChecks(roce, node, roceUp, problems));
  return { problems, available };
}

function resourceChecks(
  roce: RoceOptions,
  node: NodeView | undefined,
  roceUp: number,
  problems: ProblemSample[],
): Record<string, string | true> {
  const names = ['RoceNodeResourceMiss', 'RoceRegisterFailed'];
  if (roce.resource === undefined || node === undefined)
    return unavailable(names, 'roce.resource not configured or Node not readable');
  const have = Number(node.allocatable[roce.resource] ?? '0');
  problems.push(
    have > 0
      ? problem('RoceNodeResourceMiss', 0)
      : problem('RoceNodeResourceMiss', 1, roce.resource),
    have > 0 && have < roceUp
      ? problem('RoceRegisterFailed', roceUp - have, roce.resource)
      : problem('RoceRegisterFailed', 0),
  );
  return checked(names);
}
