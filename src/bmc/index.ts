/**
 * Out-of-band power and BMC health (docs/remediation.md): the port the engine is given, built
 * from the `bmc` config block.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import type { Fence } from '../engine/fence.js';
import type { Metrics } from '../metrics/metrics.js';
import { ipmiClient, type IpmiOptions } from './ipmi.js';
import { createOutOfBand, type OutOfBand, type SecretReader } from './out-of-band.js';
import { redfishClient, type RedfishOptions } from './redfish.js';
import type { BmcConnector, BmcProtocol } from './types.js';

export type { OutOfBand, SecretReader } from './out-of-band.js';
export type { BmcClient, BmcConnector, BmcTarget, PowerState } from './types.js';

/** The real connectors (ipmitool, Redfish over HTTPS) for a `bmc` config. */
export function realConnectors(bmc: Config['bmc']): Record<BmcProtocol, BmcConnector> {
  const ipmi: IpmiOptions = {
    command: bmc.ipmi.command,
    privilege: bmc.ipmi.privilege,
    timeoutMs: bmc.ipmi.timeoutMs,
    sessionTimeoutSeconds: bmc.ipmi.sessionTimeoutSeconds,
    retries: bmc.ipmi.retries,
    ...(bmc.ipmi.cipherSuite === undefined ? {} : { cipherSuite: bmc.ipmi.cipherSuite }),
  };
  let ca: string | undefined;
  if (bmc.redfish.caFile !== undefined) {
    try {
      ca = readFileSync(bmc.redfish.caFile, 'utf8');
    } catch (err) {
      throw new HealError(
        ErrorCode.ConfigInvalid,
        `bmc.redfish.caFile ${bmc.redfish.caFile}: ${errorMessage(err)}`,
      );
    }
  }
  const redfish: RedfishOptions = {
    timeoutMs: bmc.redfish.timeoutMs,
    insecureSkipVerify: bmc.redfish.insecureSkipVerify,
    allowInsecureHttp: bmc.redfish.allowInsecureHttp,
    ...(ca === undefined ? {} : { ca }),
  };
  return {
    ipmi: (target, credentials) => ipmiClient(target, credentials, ipmi),
    redfish: (target, credentials) => redfishClient(target, credentials, redfish),
  };
}

/**
 * The engine's out-of-band port for a config; undefined when `bmc.enabled` is false or no
 * Secret reader is available. `connectors` replaces the real clients (the simulator, tests).
 */
export function outOfBandFromConfig(
  config: Config,
  deps: {
    readSecret: SecretReader | undefined;
    fence?: Fence;
    metrics?: Metrics;
    connectors?: Readonly<Record<BmcProtocol, BmcConnector>>;
  },
): OutOfBand | undefined {
  const bmc = config.bmc;
  if (!bmc.enabled || deps.readSecret === undefined) return undefined;
  return createOutOfBand({
    selection: {
      enabled: bmc.enabled,
      defaultProtocol: bmc.defaultProtocol,
      credentials: bmc.credentials ?? '',
      nodes: bmc.nodes,
      allowedAddresses: bmc.allowedAddresses,
      ...(bmc.addressAnnotation === undefined ? {} : { addressAnnotation: bmc.addressAnnotation }),
      ...(bmc.addressLabel === undefined ? {} : { addressLabel: bmc.addressLabel }),
      ...(bmc.addressTemplate === undefined ? {} : { addressTemplate: bmc.addressTemplate }),
    },
    credentialsSecret: bmc.credentialsSecret,
    readSecret: deps.readSecret,
    connectors: deps.connectors ?? realConnectors(bmc),
    timing: {
      powerOffTimeoutMs: bmc.powerOffTimeoutMs,
      powerOnTimeoutMs: bmc.powerOnTimeoutMs,
      bootTimeoutMs: bmc.bootTimeoutMs,
      pollMs: bmc.pollMs,
    },
    notReadyAfterMs: bmc.notReadyAfterMs,
    ...(deps.fence === undefined ? {} : { fence: deps.fence }),
    ...(deps.metrics === undefined ? {} : { metrics: deps.metrics }),
  });
}
