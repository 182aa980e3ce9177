import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import { ConfigSchema, type Config } from './schema.js';

/**
 * Loads the config. Precedence: YAML file < AEGIS_* environment variables (only values that
 * differ per deployment: AEGIS_PROMETHEUS_URL, AEGIS_DRY_RUN) < explicit overrides (CLI flags).
 * Errors are CONFIG_INVALID naming the file and the field.
 */
export function loadConfig(opts: {
  file?: string;
  env?: Readonly<Record<string, string | undefined>>;
  overrides?: Readonly<Record<string, unknown>>;
}): Config {
  let raw: Record<string, unknown> = {};
  const where = opts.file ?? '<defaults>';
  if (opts.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new HealError(ErrorCode.ConfigInvalid, `${opts.file}: cannot read config`, {
        cause: err,
      });
    }
    const doc = parseDocument(text);
    if (doc.errors.length > 0) {
      throw new HealError(
        ErrorCode.ConfigInvalid,
        `${opts.file}: ${doc.errors[0]?.message ?? 'bad YAML'}`,
      );
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 10 });
    } catch (err) {
      throw new HealError(
        ErrorCode.ConfigInvalid,
        `${opts.file}: cannot read YAML: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    if (value !== null && (typeof value !== 'object' || Array.isArray(value))) {
      throw new HealError(
        ErrorCode.ConfigInvalid,
        `${opts.file}: the config must be a YAML mapping`,
      );
    }
    raw = (value as Record<string, unknown> | null) ?? {};
  }
  const env = opts.env ?? {};
  if (env['AEGIS_PROMETHEUS_URL'] !== undefined) {
    raw = {
      ...raw,
      prometheus: {
        ...(raw['prometheus'] as object | undefined),
        url: env['AEGIS_PROMETHEUS_URL'],
      },
    };
  }
  if (env['AEGIS_DRY_RUN'] !== undefined) {
    raw = {
      ...raw,
      safety: {
        ...(raw['safety'] as object | undefined),
        dryRun: env['AEGIS_DRY_RUN'] !== 'false',
      },
    };
  }
  for (const [path, value] of Object.entries(opts.overrides ?? {})) setPath(raw, path, value);
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new HealError(
      ErrorCode.ConfigInvalid,
      `${where}: ${z.prettifyError(parsed.error).replaceAll('\n', '; ')}`,
    );
  }
  return parsed.data;
}

const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  if (keys.some((k) => FORBIDDEN_KEYS.has(k) || k === '')) {
    throw new HealError(
      ErrorCode.ConfigInvalid,
      `override ${JSON.stringify(path)}: not a config key`,
    );
  }
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (typeof next !== 'object' || next === null || !Object.hasOwn(cur, k)) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys.at(-1) as string] = value;
}
