/**
 * Out-of-band access to the nodes' BMCs as the engine uses it: which BMC serves a node (pure),
 * and a client for it opened with credentials read, by name, from the Secret in the controller's
 * own namespace. Power commands are fenced like every other write (a replica that may have lost
 * the leader lease sends none) and counted in `aegis_bmc_requests_total`.
 */
import { ErrorCode, HealError, isHealError } from '../core/errors.js';
import type { NodeInfo } from '../core/types.js';
import { assertHeld, UNFENCED, type Fence } from '../engine/fence.js';
import type { Metrics } from '../metrics/metrics.js';
import { bmcSelector, type BmcSelectionConfig } from './select.js';
import {
  bmcError,
  type BmcClient,
  type BmcConnector,
  type BmcCredentials,
  type BmcProtocol,
  type BmcTarget,
} from './types.js';

/** Timing of a power cycle. */
export interface PowerCycleTiming {
  /** The BMC must report Off within this after the power-off. */
  readonly powerOffTimeoutMs: number;
  /** …and On within this after the power-on. */
  readonly powerOnTimeoutMs: number;
  /** The node must show a new boot id and be Ready within this after the BMC reported On. */
  readonly bootTimeoutMs: number;
  /** Polling period of the BMC and of the node. */
  readonly pollMs: number;
}

/** Reads a Secret of the controller's namespace by name: its data, decoded; null when absent. */
export type SecretReader = (
  name: string,
  signal: AbortSignal,
) => Promise<Readonly<Record<string, string>> | null>;

/** The engine's out-of-band port. */
export interface OutOfBand {
  /** The node's BMC, or why there is none. Pure: config and the node object only. */
  select(node: NodeInfo): { target: BmcTarget } | { reason: string };
  /** A client for the target, with the credentials of the Secret (BMC_NOT_CONFIGURED without). */
  open(target: BmcTarget, signal: AbortSignal): Promise<BmcClient>;
  readonly timing: PowerCycleTiming;
  /** A node NotReady this long is power-cycled. */
  readonly notReadyAfterMs: number;
}

/** What createOutOfBand needs. */
export interface OutOfBandDeps {
  readonly selection: BmcSelectionConfig;
  readonly credentialsSecret: string;
  readonly readSecret: SecretReader;
  readonly connectors: Readonly<Record<BmcProtocol, BmcConnector>>;
  readonly timing: PowerCycleTiming;
  readonly notReadyAfterMs: number;
  readonly fence?: Fence;
  readonly metrics?: Metrics;
}

/** Builds the port. */
export function createOutOfBand(deps: OutOfBandDeps): OutOfBand {
  const selector = bmcSelector(deps.selection);
  const fence = deps.fence ?? UNFENCED;
  return {
    select: (node) => selector.select(node),
    timing: deps.timing,
    notReadyAfterMs: deps.notReadyAfterMs,
    async open(target, signal) {
      const credentials = await readCredentials(
        deps.readSecret,
        deps.credentialsSecret,
        target,
        signal,
      );
      const client = deps.connectors[target.protocol](target, credentials);
      return instrumented(client, target, fence, deps.metrics);
    },
  };
}

/** The node's username and password from the Secret; BMC_NOT_CONFIGURED naming what is missing. */
async function readCredentials(
  read: SecretReader,
  secret: string,
  target: BmcTarget,
  signal: AbortSignal,
): Promise<BmcCredentials> {
  let data: Readonly<Record<string, string>> | null;
  try {
    data = await read(secret, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    if (isHealError(err, ErrorCode.K8sForbidden))
      throw bmcError(
        ErrorCode.BmcNotConfigured,
        `Secret ${secret} cannot be read (RBAC grants get on Secrets by resourceNames only: is bmc.credentialsSecret the name in deploy/aegis/rbac.yaml?)`,
        err,
      );
    throw err;
  }
  if (data === null)
    throw bmcError(
      ErrorCode.BmcNotConfigured,
      `Secret ${secret} (bmc.credentialsSecret) does not exist in the controller's namespace`,
    );
  const key = (k: string): string => (target.credentials === '' ? k : `${target.credentials}.${k}`);
  const username = data[key('username')];
  const password = data[key('password')];
  if (username === undefined || username === '' || password === undefined || password === '')
    throw bmcError(
      ErrorCode.BmcNotConfigured,
      `Secret ${secret} has no non-empty keys ${key('username')} and ${key('password')} for node ${target.node}`,
    );
  return { username, password };
}

/** Fences the power commands and counts every request by protocol, operation and result. */
function instrumented(
  client: BmcClient,
  target: BmcTarget,
  fence: Fence,
  metrics: Metrics | undefined,
): BmcClient {
  const count = async <T>(op: string, write: boolean, run: () => Promise<T>): Promise<T> => {
    if (write) assertHeld(fence, `${op} of node ${target.node} through ${client.describe}`);
    try {
      const out = await run();
      metrics?.bmcRequests.inc({ protocol: target.protocol, op, result: 'ok' });
      return out;
    } catch (err) {
      metrics?.bmcRequests.inc({
        protocol: target.protocol,
        op,
        result: err instanceof HealError ? err.code.toLowerCase() : 'error',
      });
      throw err;
    }
  };
  const fenced = (signal: AbortSignal): AbortSignal => {
    const left = fence.remainingMs();
    return Number.isFinite(left)
      ? AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, Math.floor(left)))])
      : signal;
  };
  const health = client.redfishHealth?.bind(client);
  return {
    describe: client.describe,
    powerState: (signal) => count('power-status', false, () => client.powerState(signal)),
    powerOff: (signal) => count('power-off', true, () => client.powerOff(fenced(signal))),
    powerOn: (signal) => count('power-on', true, () => client.powerOn(fenced(signal))),
    powerCycle: (signal) => count('power-cycle', true, () => client.powerCycle(fenced(signal))),
    ...(client.selElist === undefined
      ? {}
      : {
          selElist: (signal: AbortSignal) =>
            count('sel', false, () => client.selElist?.(signal) ?? Promise.resolve('')),
        }),
    ...(client.sdrElist === undefined
      ? {}
      : {
          sdrElist: (signal: AbortSignal) =>
            count('sdr', false, () => client.sdrElist?.(signal) ?? Promise.resolve('')),
        }),
    ...(health === undefined
      ? {}
      : {
          redfishHealth: (signal: AbortSignal) => count('health', false, () => health(signal)),
        }),
  };
}
