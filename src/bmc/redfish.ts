/**
 * Redfish (DMTF DSP0266): the ComputerSystem's `PowerState` read back and its
 * `Actions/ComputerSystem.Reset` posted with a `ResetType` the service allows
 * (`ResetType@Redfish.AllowableValues`). HTTP Basic authentication over HTTPS (a CA file or, for
 * a lab, no verification); plain http only when the site allows it (a loopback proxy, a test).
 *
 * PowerState `PoweringOff` is not yet Off and `PoweringOn` not yet On: a power state is confirmed
 * only by the final value.
 *
 * BMC health (`redfishHealth`, read by health.ts): the system's chassis (Thermal and Power, or
 * ThermalSubsystem/Fans, PowerSubsystem/PowerSupplies and Sensors where a chassis no longer links
 * the former), Memory, Processors and its log services' entries — every request under the same
 * deadline and body bound as power, collections bounded (MAX_HEALTH_MEMBERS, MAX_LOG_PAGES), the
 * same error codes (unreachable, auth, timeout, BMC_ERROR for an unreadable linked resource).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ErrorCode, HealError } from '../core/errors.js';
import {
  bmcError,
  redact,
  type BmcClient,
  type BmcCredentials,
  type BmcTarget,
  type PowerState,
  type RedfishHealthResources,
} from './types.js';

/** How the Redfish service is reached. */
export interface RedfishOptions {
  /** Deadline of one request, ms. */
  readonly timeoutMs: number;
  /** PEM of the CA that signed the BMCs' certificates (default: the system's roots). */
  readonly ca?: string;
  readonly insecureSkipVerify: boolean;
  /** http:// targets are refused unless this is true (credentials would cross in clear). */
  readonly allowInsecureHttp: boolean;
}

export const DEFAULT_REDFISH_OPTIONS: RedfishOptions = {
  timeoutMs: 30_000,
  insecureSkipVerify: false,
  allowInsecureHttp: false,
};

/** Largest Redfish answer read. */
const MAX_BODY_BYTES = 1024 * 1024;

/** Most members of one collection read for health (a DIMM per slot, a sensor per reading). */
export const MAX_HEALTH_MEMBERS = 512;
/** Most chassis of a system, and log services, read for health. */
const MAX_HEALTH_LINKS = 8;
/** Most pages (`@odata.nextLink`) of one log's entries read. */
export const MAX_LOG_PAGES = 16;

interface SystemResource {
  readonly PowerState?: unknown;
  readonly Actions?: {
    readonly '#ComputerSystem.Reset'?: {
      readonly target?: unknown;
      readonly 'ResetType@Redfish.AllowableValues'?: unknown;
    };
  };
}

/** A Redfish BMC. */
export function redfishClient(
  target: BmcTarget,
  credentials: BmcCredentials,
  options: RedfishOptions = DEFAULT_REDFISH_OPTIONS,
): BmcClient {
  const scheme = target.scheme ?? 'https';
  const port = target.port ?? (scheme === 'https' ? 443 : 80);
  const hostPart = target.host.includes(':') ? `[${target.host}]` : target.host;
  const describe = `redfish ${scheme}://${hostPart}:${port}`;
  const auth = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  let systemPath = target.systemPath;

  const call = async (
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    signal: AbortSignal,
  ): Promise<{ status: number; json: unknown }> => {
    if (scheme === 'http' && !options.allowInsecureHttp)
      throw bmcError(
        ErrorCode.BmcNotConfigured,
        `${describe}: http:// would send the BMC credentials in clear; use https (or bmc.redfish.allowInsecureHttp for a lab)`,
      );
    try {
      return await send(
        { scheme, host: target.host, port, path, method, auth, body, options },
        signal,
      );
    } catch (err) {
      if (err instanceof HealError) throw err;
      if (signal.aborted) throw err;
      const e = err as NodeJS.ErrnoException;
      const msg = redact(e.message, credentials.password);
      if (e.code === 'BMC_TIMEOUT')
        throw bmcError(
          ErrorCode.BmcTimeout,
          `${describe}: ${method} ${path} got no answer within ${Math.round(options.timeoutMs / 1000)} s`,
        );
      throw bmcError(ErrorCode.BmcUnreachable, `${describe}: ${method} ${path}: ${msg}`);
    }
  };

  const checked = async (
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    signal: AbortSignal,
  ): Promise<unknown> => {
    const { status, json } = await call(method, path, body, signal);
    if (status === 401 || status === 403)
      throw bmcError(
        ErrorCode.BmcAuthFailed,
        `${describe}: ${method} ${path} refused the credentials (HTTP ${status})`,
      );
    if (status < 200 || status >= 300)
      throw bmcError(
        ErrorCode.BmcError,
        `${describe}: ${method} ${path} answered HTTP ${status}${redfishMessage(json)}`,
      );
    return json;
  };

  const system = async (signal: AbortSignal): Promise<SystemResource> => {
    if (systemPath === undefined) {
      const coll = (await checked('GET', '/redfish/v1/Systems', undefined, signal)) as {
        Members?: { '@odata.id'?: unknown }[];
      } | null;
      const members = (coll?.Members ?? [])
        .map((m) => m['@odata.id'])
        .filter((m): m is string => typeof m === 'string');
      if (members.length !== 1 || members[0] === undefined)
        throw bmcError(
          ErrorCode.BmcNotConfigured,
          `${describe}: /redfish/v1/Systems has ${members.length} members; name the node's system in its BMC address (redfish://host/redfish/v1/Systems/<id>)`,
        );
      systemPath = members[0];
    }
    const res = await checked('GET', systemPath, undefined, signal);
    if (typeof res !== 'object' || res === null)
      throw bmcError(ErrorCode.BmcError, `${describe}: ${systemPath} is not a ComputerSystem`);
    return res;
  };

  const reset = async (wanted: readonly string[], signal: AbortSignal): Promise<void> => {
    const sys = await system(signal);
    const action = sys.Actions?.['#ComputerSystem.Reset'];
    const target = typeof action?.target === 'string' ? action.target : undefined;
    if (target === undefined)
      throw bmcError(
        ErrorCode.BmcError,
        `${describe}: ${systemPath ?? '?'} offers no #ComputerSystem.Reset action`,
      );
    const allowed = action?.['ResetType@Redfish.AllowableValues'];
    const allowedList = Array.isArray(allowed)
      ? allowed.filter((v): v is string => typeof v === 'string')
      : undefined;
    const type =
      allowedList === undefined ? wanted[0] : wanted.find((w) => allowedList.includes(w));
    if (type === undefined)
      throw bmcError(
        ErrorCode.BmcError,
        `${describe}: ComputerSystem.Reset allows ${allowedList?.join(', ') ?? 'nothing'}, none of ${wanted.join(', ')}`,
      );
    await checked('POST', target, { ResetType: type }, signal);
  };

  /** A resource's `@odata.id` link `key` (a path on this service), or undefined. */
  const link = (doc: unknown, key: string): string | undefined => {
    const v = (doc as Record<string, unknown> | null)?.[key];
    const id = (v as { '@odata.id'?: unknown } | null | undefined)?.['@odata.id'];
    return typeof id === 'string' && id.startsWith('/redfish/') ? id : undefined;
  };
  const ids = (list: unknown): string[] =>
    (Array.isArray(list) ? (list as unknown[]) : [])
      .map((m) => (m as { '@odata.id'?: unknown } | null)?.['@odata.id'])
      .filter((m): m is string => typeof m === 'string' && m.startsWith('/redfish/'));
  const get = async (path: string, signal: AbortSignal): Promise<Record<string, unknown>> => {
    const doc = await checked('GET', path, undefined, signal);
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
      throw bmcError(ErrorCode.BmcError, `${describe}: GET ${path} is not a Redfish resource`);
    return doc as Record<string, unknown>;
  };
  /** Every member of a collection, each read (at most MAX_HEALTH_MEMBERS, else BMC_ERROR). */
  const members = async (path: string, signal: AbortSignal): Promise<unknown[]> => {
    const list = ids((await get(path, signal))['Members']);
    if (list.length > MAX_HEALTH_MEMBERS)
      throw bmcError(
        ErrorCode.BmcError,
        `${describe}: ${path} has ${list.length} members, more than the ${MAX_HEALTH_MEMBERS} read for health`,
      );
    const out: unknown[] = [];
    for (const m of list) out.push(await get(m, signal));
    return out;
  };
  /** The entries of a log (inline members, as LogEntry collections are served), page by page. */
  const entries = async (path: string, signal: AbortSignal): Promise<unknown[]> => {
    const out: unknown[] = [];
    const seen = new Set<string>();
    let next: string | undefined = path;
    for (let page = 0; next !== undefined && page < MAX_LOG_PAGES; page++) {
      seen.add(next);
      const doc = await get(next, signal);
      const list = doc['Members'];
      if (Array.isArray(list)) out.push(...(list as unknown[]));
      const n = doc['@odata.nextLink'];
      next = typeof n === 'string' && n.startsWith('/redfish/') && !seen.has(n) ? n : undefined;
    }
    return out;
  };

  /**
   * The health resources of the ComputerSystem: its chassis's Thermal and Power (or, where a
   * chassis no longer links them, ThermalSubsystem/Fans, PowerSubsystem/PowerSupplies and
   * Sensors), its Memory and Processors, and its log services' entries.
   */
  const health = async (signal: AbortSignal): Promise<RedfishHealthResources> => {
    const sys = (await system(signal)) as Record<string, unknown>;
    const out = {
      thermal: [] as unknown[],
      power: [] as unknown[],
      fans: [] as unknown[],
      powerSupplies: [] as unknown[],
      sensors: [] as unknown[],
      memory: [] as unknown[],
      processors: [] as unknown[],
      logEntries: [] as unknown[],
    };
    const chassis = ids((sys['Links'] as Record<string, unknown> | undefined)?.['Chassis']);
    for (const c of chassis.slice(0, MAX_HEALTH_LINKS)) {
      const doc = await get(c, signal);
      const thermal = link(doc, 'Thermal');
      const power = link(doc, 'Power');
      if (thermal !== undefined) out.thermal.push(await get(thermal, signal));
      else {
        const sub = link(doc, 'ThermalSubsystem');
        const fans = sub === undefined ? undefined : link(await get(sub, signal), 'Fans');
        if (fans !== undefined) out.fans.push(...(await members(fans, signal)));
        const sensors = link(doc, 'Sensors');
        if (sensors !== undefined) out.sensors.push(...(await members(sensors, signal)));
      }
      if (power !== undefined) out.power.push(await get(power, signal));
      else {
        const sub = link(doc, 'PowerSubsystem');
        const psus = sub === undefined ? undefined : link(await get(sub, signal), 'PowerSupplies');
        if (psus !== undefined) out.powerSupplies.push(...(await members(psus, signal)));
      }
    }
    const memory = link(sys, 'Memory');
    if (memory !== undefined) out.memory.push(...(await members(memory, signal)));
    const processors = link(sys, 'Processors');
    if (processors !== undefined) out.processors.push(...(await members(processors, signal)));
    const logs = link(sys, 'LogServices');
    if (logs !== undefined) {
      const services = ids((await get(logs, signal))['Members']);
      for (const path of services.slice(0, MAX_HEALTH_LINKS)) {
        const svc = await get(path, signal);
        // Only logs that may hold SEL entries: not Event-only logs, dumps or POST codes.
        const type = svc['LogEntryType'];
        if (typeof type === 'string' && type !== 'SEL' && type !== 'Multiple') continue;
        if (svc['ServiceEnabled'] === false) continue;
        const e = link(svc, 'Entries');
        if (e !== undefined) out.logEntries.push(...(await entries(e, signal)));
      }
    }
    return out;
  };

  return {
    describe,
    redfishHealth: health,
    async powerState(signal) {
      const sys = await system(signal);
      return parsePowerState(sys.PowerState, describe);
    },
    powerOff: (signal) => reset(['ForceOff'], signal),
    powerOn: (signal) => reset(['On', 'ForceOn'], signal),
    powerCycle: (signal) => reset(['PowerCycle', 'ForceRestart'], signal),
  };
}

/** Redfish `PowerState` → On/Off; `PoweringOn` is not yet On, `PoweringOff` not yet Off. */
export function parsePowerState(value: unknown, where: string): PowerState {
  switch (value) {
    case 'On':
    case 'PoweringOff':
      return 'On';
    case 'Off':
    case 'PoweringOn':
      return 'Off';
    default:
      throw bmcError(
        ErrorCode.BmcError,
        `${where}: PowerState ${JSON.stringify(value)} is not one of On, Off, PoweringOn, PoweringOff`,
      );
  }
}

/** The first message of a Redfish error body, for the ticket (` (...)` or ''). */
function redfishMessage(json: unknown): string {
  const err = (json as { error?: { message?: unknown; '@Message.ExtendedInfo'?: unknown } } | null)
    ?.error;
  const info = Array.isArray(err?.['@Message.ExtendedInfo'])
    ? (err['@Message.ExtendedInfo'][0] as { Message?: unknown } | undefined)?.Message
    : undefined;
  const msg = typeof info === 'string' ? info : typeof err?.message === 'string' ? err.message : '';
  return msg === '' ? '' : ` (${msg.slice(0, 160)})`;
}

function send(
  r: {
    scheme: 'https' | 'http';
    host: string;
    port: number;
    path: string;
    method: 'GET' | 'POST';
    auth: string;
    body: unknown;
    options: RedfishOptions;
  },
  signal: AbortSignal,
): Promise<{ status: number; json: unknown }> {
  const payload = r.body === undefined ? undefined : Buffer.from(JSON.stringify(r.body));
  const headers: Record<string, string> = {
    Authorization: r.auth,
    Accept: 'application/json',
    'OData-Version': '4.0',
    ...(payload === undefined
      ? {}
      : { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) }),
  };
  return new Promise((resolve, reject) => {
    const common = {
      host: r.host,
      port: r.port,
      path: r.path,
      method: r.method,
      headers,
      signal,
      timeout: r.options.timeoutMs,
    };
    const req =
      r.scheme === 'https'
        ? httpsRequest({
            ...common,
            rejectUnauthorized: !r.options.insecureSkipVerify,
            ...(r.options.ca === undefined ? {} : { ca: r.options.ca }),
          })
        : httpRequest(common);
    req.on('timeout', () => {
      const e = new Error('timeout') as NodeJS.ErrnoException;
      e.code = 'BMC_TIMEOUT';
      req.destroy(e);
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          req.destroy(new Error('answer larger than 1 MB'));
          return;
        }
        chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        if (text.trim() !== '') {
          try {
            json = JSON.parse(text);
          } catch {
            json = null;
          }
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.end(payload);
  });
}
