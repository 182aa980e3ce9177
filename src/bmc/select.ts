/**
 * Which BMC serves a node. Pure: the node object and the config in, a target (or why none) out.
 *
 * In order: the config mapping `bmc.nodes` (a node name → its address), the node's annotation or
 * label named by `bmc.addressAnnotation` / `bmc.addressLabel`, then `bmc.addressTemplate`
 * (`{node}` replaced by the node name). An address read from the node object is used only when
 * it matches one of `bmc.allowedAddresses` (anchored regexes over the host): whoever can write the
 * node (its own kubelet can set annotations and most labels) must not be able to point Aegis, and
 * the BMC credentials it sends, at a host of their choosing.
 */
import type { NodeInfo } from '../core/types.js';
import type { BmcProtocol, BmcTarget } from './types.js';

/** What selection reads from the config (`bmc` block). */
export interface BmcSelectionConfig {
  readonly enabled: boolean;
  readonly defaultProtocol: BmcProtocol;
  readonly credentials: string;
  readonly nodes: Readonly<
    Record<string, string | { address: string; credentials?: string | undefined }>
  >;
  readonly addressAnnotation?: string;
  readonly addressLabel?: string;
  readonly allowedAddresses: readonly string[];
  readonly addressTemplate?: string;
}

/** A parsed address (no node, no credentials). */
export type BmcAddress = Omit<BmcTarget, 'node' | 'credentials' | 'source'>;

const HOST =
  /^(?:[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\])$/;
const SYSTEM_PATH = /^\/redfish\/v1\/Systems\/[A-Za-z0-9._~%-]{1,128}$/;
/** Keys of the credentials Secret: `<prefix>.username`, `<prefix>.password`. */
export const CREDENTIALS_PREFIX = /^[A-Za-z0-9][-A-Za-z0-9_]{0,62}$/;

/**
 * Parses `ipmi://host[:port]`, `redfish://host[:port][/redfish/v1/Systems/<id>]` (https),
 * `https://…`, `http://…` (Redfish) or a bare `host[:port]` (the default protocol). Returns the
 * address, or a message saying what is wrong. Credentials in the address are refused.
 */
export function parseBmcAddress(text: string, defaultProtocol: BmcProtocol): BmcAddress | string {
  const raw = text.trim();
  if (raw === '') return 'is empty';
  const m = /^(?:([a-z]+):\/\/)?([^/]*)(\/.*)?$/.exec(raw);
  if (m === null) return `"${raw}" is not a BMC address`;
  const scheme = m[1];
  const authority = m[2] ?? '';
  const path = m[3];
  if (authority.includes('@'))
    return `"${raw}" carries credentials; they belong in the credentials Secret`;
  let protocol: BmcProtocol;
  let httpScheme: 'https' | 'http' | undefined;
  switch (scheme) {
    case undefined:
      protocol = defaultProtocol;
      httpScheme = protocol === 'redfish' ? 'https' : undefined;
      break;
    case 'ipmi':
      protocol = 'ipmi';
      break;
    case 'redfish':
    case 'https':
      protocol = 'redfish';
      httpScheme = 'https';
      break;
    case 'http':
      protocol = 'redfish';
      httpScheme = 'http';
      break;
    default:
      return `"${raw}": scheme ${scheme}:// is not ipmi, redfish, https or http`;
  }
  const hp = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(authority);
  if (hp === null || !HOST.test(hp[1] ?? '')) return `"${raw}": "${authority}" is not host[:port]`;
  const host = (hp[1] ?? '').replace(/^\[|\]$/g, '');
  const port = hp[2] === undefined ? undefined : Number(hp[2]);
  if (port !== undefined && (port < 1 || port > 65535))
    return `"${raw}": port ${port} is out of range`;
  if (path !== undefined && path !== '/' && path !== '') {
    if (protocol !== 'redfish') return `"${raw}": an IPMI address has no path`;
    if (!SYSTEM_PATH.test(path)) return `"${raw}": the path must be /redfish/v1/Systems/<id>`;
  }
  return {
    protocol,
    host,
    ...(port === undefined ? {} : { port }),
    ...(httpScheme === undefined ? {} : { scheme: httpScheme }),
    ...(path !== undefined && SYSTEM_PATH.test(path) ? { systemPath: path } : {}),
  };
}

/** A compiled selection: `select(node)` is pure and cheap (called by `evaluate`). */
export interface BmcSelector {
  /** The node's BMC, or why there is none (`reason`). */
  select(node: NodeInfo): { target: BmcTarget } | { reason: string };
}

/** Compiles the selection config (regexes once). Bad config has been refused by the schema. */
export function bmcSelector(config: BmcSelectionConfig): BmcSelector {
  const allowed = config.allowedAddresses.map((r) => new RegExp(`^(?:${r})$`));
  const build = (
    node: string,
    address: string,
    credentials: string,
    source: string,
    fromNodeObject: boolean,
  ): { target: BmcTarget } | { reason: string } => {
    const parsed = parseBmcAddress(address, config.defaultProtocol);
    if (typeof parsed === 'string') return { reason: `BMC address from ${source} ${parsed}` };
    if (fromNodeObject && !allowed.some((r) => r.test(parsed.host)))
      return {
        reason: `BMC host ${parsed.host} from ${source} matches no bmc.allowedAddresses entry; not used`,
      };
    return { target: { ...parsed, node, credentials, source } };
  };
  return {
    select(node) {
      if (!config.enabled) return { reason: 'out-of-band power is off (bmc.enabled: false)' };
      const mapped = config.nodes[node.name];
      if (mapped !== undefined) {
        const entry = typeof mapped === 'string' ? { address: mapped } : mapped;
        return build(
          node.name,
          entry.address,
          entry.credentials ?? config.credentials,
          'bmc.nodes',
          false,
        );
      }
      const a = config.addressAnnotation;
      const fromAnnotation = a === undefined ? undefined : node.annotations[a];
      if (a !== undefined && fromAnnotation !== undefined)
        return build(node.name, fromAnnotation, config.credentials, `annotation ${a}`, true);
      const l = config.addressLabel;
      const fromLabel = l === undefined ? undefined : node.labels[l];
      if (l !== undefined && fromLabel !== undefined)
        return build(node.name, fromLabel, config.credentials, `label ${l}`, true);
      if (config.addressTemplate !== undefined)
        return build(
          node.name,
          config.addressTemplate.split('{node}').join(node.name),
          config.credentials,
          'bmc.addressTemplate',
          false,
        );
      return { reason: `no BMC is mapped for node ${node.name}` };
    },
  };
}

/** How a target is named in messages (`ipmi://10.0.0.5:623`, `redfish https://bmc7:443`). */
export function describeTarget(t: BmcAddress): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  if (t.protocol === 'ipmi') return `ipmi://${host}:${t.port ?? 623}`;
  const scheme = t.scheme ?? 'https';
  return `redfish ${scheme}://${host}:${t.port ?? (scheme === 'https' ? 443 : 80)}`;
}
