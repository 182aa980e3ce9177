/**
 * The agent's config file: JSON, or YAML (the YAML parser is loaded only for a file that is not
 * JSON, ~8 MB of RSS). Keys are AgentOptions fields, with durations as strings ("60s") and without
 * the `Ms` suffix; unknown keys are rejected so a typo is never silently ignored.
 *
 *   { "gpfsRequired": true, "intervals": { "gpu": "30s" }, "ignorePorts": ["mlx5_2"],
 *     "expectLinkLayer": { "^mlx5_[0-7]$": "InfiniBand" }, "roce": { "resource": "rdma/roce" } }
 */
import { parseDurationMs } from '../core/duration.js';
import { invalid } from './options.js';

const DURATIONS = ['toolTimeout', 'kmsgPoll', 'logWindow', 'dnsTimeout'] as const;
const INTERVALS = [
  'gpu',
  'smart',
  'gpfs',
  'sysfs',
  'modules',
  'dns',
  'mmfsLog',
  'previousBoot',
  'conditionsResync',
] as const;
const PLAIN = [
  'nodeName',
  'hostRoot',
  'listenHost',
  'port',
  'toolMode',
  'driverRoot',
  'kmsgPath',
  'dnsNames',
  'dnsServers',
  'gpfsRequired',
  'gpfsBinDir',
  'mmfsLogPath',
  'ignorePorts',
  'expectLinkLayer',
  'roce',
  'conditions',
  'kubeServer',
  'kubeTokenFile',
  'kubeCaFile',
] as const;
const ROCE_KEYS = ['labels', 'resource', 'expectedVfs', 'gateways', 'routes'];

/** Parses `text` (from `where`) and merges it over `base`. */
export async function mergeConfigFile(
  base: Record<string, unknown>,
  text: string,
  where: string,
): Promise<Record<string, unknown>> {
  const doc = await parseDocument(text, where);
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(doc)) {
    if ((DURATIONS as readonly string[]).includes(key)) {
      out[`${key}Ms`] = durationOf(value, `${where}: ${key}`);
    } else if (key === 'intervals') {
      out.intervals = mergeIntervals(base.intervals, value, where);
    } else if ((PLAIN as readonly string[]).includes(key)) {
      out[key] = key === 'roce' ? mergeRoce(base.roce, value, where) : value;
    } else {
      invalid(`${where}: ${key}`, 'unknown key');
    }
  }
  return out;
}

async function parseDocument(text: string, where: string): Promise<Record<string, unknown>> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    try {
      const yaml = await import('yaml');
      doc = yaml.parse(text);
    } catch (err) {
      invalid(where, `neither JSON nor YAML: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    invalid(where, 'must be a mapping of option names to values');
  }
  return doc as Record<string, unknown>;
}

function durationOf(value: unknown, where: string): number {
  if (typeof value !== 'string') invalid(where, 'must be a duration string like "30s"');
  try {
    return parseDurationMs(value, where);
  } catch (err) {
    invalid(where, err instanceof Error ? err.message : String(err));
  }
}

function mergeIntervals(base: unknown, value: unknown, where: string): Record<string, number> {
  if (typeof value !== 'object' || value === null)
    invalid(`${where}: intervals`, 'must be a mapping');
  const out = { ...(base as Record<string, number>) };
  for (const [k, v] of Object.entries(value)) {
    if (!(INTERVALS as readonly string[]).includes(k))
      invalid(`${where}: intervals.${k}`, 'unknown');
    out[`${k}Ms`] = durationOf(v, `${where}: intervals.${k}`);
  }
  return out;
}

function mergeRoce(base: unknown, value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) invalid(`${where}: roce`, 'must be a mapping');
  for (const k of Object.keys(value)) {
    if (!ROCE_KEYS.includes(k)) invalid(`${where}: roce.${k}`, 'unknown key');
  }
  return { ...(base as Record<string, unknown>), ...value };
}
