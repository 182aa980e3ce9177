/**
 * Out-of-band power and health through a node's BMC: the shared types of the IPMI client
 * (ipmitool over RMCP+), the Redfish client and the simulator's BMC.
 */
import { ErrorCode, HealError } from '../core/errors.js';

/** How a BMC is spoken to. */
export type BmcProtocol = 'ipmi' | 'redfish';

/** The chassis power as the BMC reports it. */
export type PowerState = 'On' | 'Off';

/** Which BMC serves a node, and under which credentials (keys of the credentials Secret). */
export interface BmcTarget {
  readonly node: string;
  readonly protocol: BmcProtocol;
  /** Host name or IP address (IPv6 without brackets). */
  readonly host: string;
  /** UDP port (IPMI, default 623) or TCP port (Redfish, default 443). */
  readonly port?: number;
  /** Redfish only: `https` (default) or `http` (allowed only with `redfish.allowInsecureHttp`). */
  readonly scheme?: 'https' | 'http';
  /** Redfish only: the ComputerSystem's path (default: the only member of /redfish/v1/Systems). */
  readonly systemPath?: string;
  /**
   * Prefix of the keys in the credentials Secret: `<prefix>.username` and `<prefix>.password`;
   * empty for the default `username` and `password`.
   */
  readonly credentials: string;
  /** Where the selection came from (config mapping, annotation, label, template), for messages. */
  readonly source: string;
}

/** Credentials read from the Secret. Never logged, never written to a ticket or an Event. */
export interface BmcCredentials {
  readonly username: string;
  readonly password: string;
}

/** One BMC, opened with its credentials. Every method takes the caller's signal. */
export interface BmcClient {
  /** Where it points, for messages (`ipmi://10.0.0.5:623`); never carries credentials. */
  readonly describe: string;
  powerState(signal: AbortSignal): Promise<PowerState>;
  powerOff(signal: AbortSignal): Promise<void>;
  powerOn(signal: AbortSignal): Promise<void>;
  /** A one-shot power cycle (IPMI `chassis power cycle`); PowerCycle uses off + on instead. */
  powerCycle(signal: AbortSignal): Promise<void>;
  /** Raw `ipmitool sel elist` / `sdr elist` text (IPMI only; see health.ts). */
  selElist?(signal: AbortSignal): Promise<string>;
  sdrElist?(signal: AbortSignal): Promise<string>;
  /** The Redfish resources BMC health is read from (Redfish only; see redfishFindings). */
  redfishHealth?(signal: AbortSignal): Promise<RedfishHealthResources>;
}

/**
 * The Redfish resources BMC health is read from, as the service served them (JSON, unchecked:
 * health.ts reads only the fields it knows and skips the rest). A reading is complete or fails
 * (a linked resource that cannot be read fails it): a partial reading would clear faults.
 */
export interface RedfishHealthResources {
  /** Each chassis's `Thermal` (Temperatures[], Fans[]), where the chassis links one. */
  readonly thermal: readonly unknown[];
  /** Each chassis's `Power` (PowerSupplies[], Voltages[]), where the chassis links one. */
  readonly power: readonly unknown[];
  /** `ThermalSubsystem/Fans` members, of a chassis without `Thermal`. */
  readonly fans: readonly unknown[];
  /** `PowerSubsystem/PowerSupplies` members, of a chassis without `Power`. */
  readonly powerSupplies: readonly unknown[];
  /** `Sensors` members, of a chassis without `Thermal` or without `Power`. */
  readonly sensors: readonly unknown[];
  /** The ComputerSystem's `Memory` members. */
  readonly memory: readonly unknown[];
  /** The ComputerSystem's `Processors` members. */
  readonly processors: readonly unknown[];
  /** The entries of the ComputerSystem's log services (`LogServices/<id>/Entries`, all pages read). */
  readonly logEntries: readonly unknown[];
}

/** Builds a client for a target (one per protocol; the simulator and tests bring their own). */
export type BmcConnector = (target: BmcTarget, credentials: BmcCredentials) => BmcClient;

/** A BMC error: the code says what kind (unreachable, auth, timeout, refused). */
export function bmcError(code: ErrorCode, message: string, cause?: unknown): HealError {
  return new HealError(code, message, cause === undefined ? undefined : { cause });
}

/** The BMC error codes. */
export const BMC_ERROR_CODES: ReadonlySet<string> = new Set<string>([
  ErrorCode.BmcUnreachable,
  ErrorCode.BmcAuthFailed,
  ErrorCode.BmcTimeout,
  ErrorCode.BmcError,
  ErrorCode.BmcNotConfigured,
]);

/**
 * Removes every occurrence of `secret` from `text` (belt and braces: no tool output or error that
 * reaches a message, a log line or a ticket may carry the password, whatever the tool printed).
 */
export function redact(text: string, ...secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length > 0) out = out.split(s).join('<redacted>');
  return out;
}
