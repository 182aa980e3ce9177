import { ErrorCode, HealError } from './errors.js';

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Parses a Prometheus-style duration (`90s`, `1h30m`, `500ms`, `2d`) into milliseconds.
 * Throws INVALID_INPUT naming `where` on anything else.
 */
export function parseDurationMs(text: string, where = 'duration'): number {
  const trimmed = text.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(trimmed); m !== null; m = re.exec(trimmed)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    consumed = re.lastIndex;
  }
  if (trimmed === '' || consumed !== trimmed.length || !Number.isFinite(total)) {
    throw new HealError(
      ErrorCode.InvalidInput,
      `${where}: "${text}" is not a duration (use forms like 30s, 5m, 1h30m)`,
    );
  }
  return total;
}

/** Formats milliseconds as a short Prometheus-style duration (`1h30m`, `45s`, `250ms`). */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 1000 !== 0) return `${ms}ms`;
  let rest = ms / 1000;
  let out = '';
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
