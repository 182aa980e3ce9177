/**
 * Builds AgentOptions from the command line, the environment and the config file (precedence in
 * options.ts). Uses node:util parseArgs, not commander: the agent's own entry point stays free of
 * the CLI's dependencies (memory budget). `aegis agent ...` hands its arguments here unchanged.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseDurationMs } from '../core/duration.js';
import { isHealError } from '../core/errors.js';
import { DEFAULT_AGENT_OPTIONS, invalid, type AgentOptions } from './options.js';
import { mergeConfigFile } from './options-file.js';

/** Flags of `aegis agent` with their help text; `multiple` flags may repeat. */
export const AGENT_FLAGS = {
  config: { type: 'string', help: 'JSON or YAML file with any AgentOptions field' },
  'node-name': { type: 'string', help: 'Kubernetes node name (default: $NODE_NAME)' },
  'host-root': { type: 'string', help: 'where the host filesystem is mounted (default /host)' },
  'listen-host': { type: 'string', help: 'address of /metrics (default 0.0.0.0)' },
  port: { type: 'string', help: 'port of /metrics (default 9464)' },
  'tool-mode': {
    type: 'string',
    help: 'host (nsenter into the host) | direct (run files under the root)',
  },
  'driver-root': { type: 'string', help: 'NVIDIA driver root on the host, or auto' },
  'tool-timeout': { type: 'string', help: 'deadline of each tool run (default 45s)' },
  kmsg: { type: 'string', help: 'kernel log device under the host root (default /dev/kmsg)' },
  'log-window': { type: 'string', help: 'window of aegis_nodecheck_log_matches (default 1h)' },
  'gpfs-required': { type: 'boolean', help: 'GPFS must be installed on this node' },
  'ignore-port': { type: 'string', multiple: true, help: 'HCA, HCA/port or netdev down by design' },
  'dns-name': { type: 'string', multiple: true, help: 'name the DNS check resolves' },
  'dns-server': { type: 'string', multiple: true, help: 'DNS server (default: /etc/resolv.conf)' },
  'no-conditions': { type: 'boolean', help: 'do not write Node conditions' },
  'kube-server': { type: 'string', help: 'API server URL (default: in-cluster)' },
  'kube-token-file': { type: 'string', help: 'bearer token file (with --kube-server)' },
  'kube-ca-file': { type: 'string', help: 'CA bundle file (with --kube-server)' },
  help: { type: 'boolean', help: 'print this help' },
} as const;

/** What the command line asked for: run with options, or print help. */
export type AgentInvocation =
  | { readonly kind: 'run'; readonly options: AgentOptions }
  | { readonly kind: 'help'; readonly text: string };

/** Help text listing every flag. */
export function agentHelp(): string {
  const rows = Object.entries(AGENT_FLAGS).map(
    ([name, f]) => `  --${name}${f.type === 'string' ? ' <value>' : ''}`.padEnd(34) + f.help,
  );
  return `Usage: aegis agent [options]\n\nThe node-side checks (DaemonSet).\n\n${rows.join('\n')}\n`;
}

/** Parses argv (without the command name) against `env`; throws CONFIG_INVALID on bad input. */
export async function parseAgentInvocation(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<AgentInvocation> {
  let values: ReturnType<typeof parseFlags>;
  try {
    values = parseFlags(argv);
  } catch (err) {
    if (isHealError(err)) throw err;
    invalid('command line', err instanceof Error ? err.message : String(err));
  }
  if (values.help === true) return { kind: 'help', text: agentHelp() };
  let merged: Record<string, unknown> = { ...DEFAULT_AGENT_OPTIONS };
  if (values.config !== undefined) {
    const text = await readFile(values.config, 'utf8').catch((err: unknown) =>
      invalid('--config', `cannot read ${values.config ?? ''}: ${String(err)}`),
    );
    merged = await mergeConfigFile(merged, text, values.config);
  }
  return { kind: 'run', options: applyFlags(merged, values, env) };
}

function parseFlags(argv: readonly string[]) {
  const options = Object.fromEntries(
    Object.entries(AGENT_FLAGS).map(([k, f]) => [
      k,
      'multiple' in f ? { type: f.type, multiple: true } : { type: f.type },
    ]),
  ) as { [K in keyof typeof AGENT_FLAGS]: { type: (typeof AGENT_FLAGS)[K]['type'] } };
  return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false })
    .values as Partial<Record<keyof typeof AGENT_FLAGS, string | boolean | string[]>> & {
    config?: string;
    help?: boolean;
  };
}

function applyFlags(
  base: Record<string, unknown>,
  v: Partial<Record<keyof typeof AGENT_FLAGS, string | boolean | string[]>>,
  env: NodeJS.ProcessEnv,
): AgentOptions {
  const o = { ...base } as Record<string, unknown>;
  const str = (k: keyof typeof AGENT_FLAGS): string | undefined =>
    typeof v[k] === 'string' ? v[k] : undefined;
  const list = (k: keyof typeof AGENT_FLAGS): string[] | undefined =>
    Array.isArray(v[k]) ? v[k] : undefined;
  o.nodeName = str('node-name') ?? env.NODE_NAME ?? o.nodeName;
  o.hostRoot = str('host-root') ?? env.AEGIS_AGENT_HOST_ROOT ?? o.hostRoot;
  o.listenHost = str('listen-host') ?? o.listenHost;
  if (str('port') !== undefined) o.port = Number(str('port'));
  o.toolMode = str('tool-mode') ?? o.toolMode;
  o.driverRoot = str('driver-root') ?? o.driverRoot;
  if (str('tool-timeout') !== undefined)
    o.toolTimeoutMs = duration(str('tool-timeout'), '--tool-timeout');
  o.kmsgPath = str('kmsg') ?? o.kmsgPath;
  if (str('log-window') !== undefined) o.logWindowMs = duration(str('log-window'), '--log-window');
  if (v['gpfs-required'] === true) o.gpfsRequired = true;
  o.ignorePorts = list('ignore-port') ?? o.ignorePorts;
  o.dnsNames = list('dns-name') ?? o.dnsNames;
  o.dnsServers = list('dns-server') ?? o.dnsServers;
  if (v['no-conditions'] === true) o.conditions = false;
  o.kubeServer = str('kube-server') ?? o.kubeServer;
  o.kubeTokenFile = str('kube-token-file') ?? o.kubeTokenFile;
  o.kubeCaFile = str('kube-ca-file') ?? o.kubeCaFile;
  return validate(o);
}

function duration(text: string | undefined, field: string): number {
  try {
    return parseDurationMs(text ?? '', field);
  } catch (err) {
    invalid(field, err instanceof Error ? err.message : String(err));
  }
}

/** Checks the merged object field by field. */
export function validate(o: Record<string, unknown>): AgentOptions {
  if (
    typeof o.nodeName !== 'string' ||
    !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(o.nodeName)
  ) {
    invalid(
      'nodeName',
      `"${String(o.nodeName)}" is not a node name (set NODE_NAME or --node-name)`,
    );
  }
  if (typeof o.hostRoot !== 'string' || !o.hostRoot.startsWith('/')) {
    invalid('hostRoot', 'must be an absolute path');
  }
  if (!Number.isInteger(o.port) || (o.port as number) < 0 || (o.port as number) > 65535) {
    invalid('port', `${String(o.port)} is not a port`);
  }
  if (o.toolMode !== 'host' && o.toolMode !== 'direct') invalid('toolMode', 'host or direct');
  if (
    typeof o.driverRoot !== 'string' ||
    (o.driverRoot !== 'auto' && !o.driverRoot.startsWith('/'))
  ) {
    invalid('driverRoot', 'auto or an absolute path on the host');
  }
  for (const k of ['toolTimeoutMs', 'kmsgPollMs', 'logWindowMs', 'dnsTimeoutMs'] as const) {
    if (typeof o[k] !== 'number' || !(o[k] > 0)) invalid(k, 'must be a positive duration');
  }
  if (o.kubeServer !== undefined && o.kubeTokenFile === undefined) {
    invalid('kubeTokenFile', 'required with kubeServer');
  }
  return o as unknown as AgentOptions;
}
