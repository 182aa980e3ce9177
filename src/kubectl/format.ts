/**
 * kubectl's output conventions: upper-case column headers, columns padded with three spaces,
 * ages as `45s`, `12m`, `3h`, `5d`, `-o json` (2-space indent) and `-o yaml`, colour only when
 * writing to a terminal (and never with NO_COLOR).
 */
import { stringify } from 'yaml';

/** Columns separated like kubectl's tabwriter (padding 3). */
export function table(rows: readonly (readonly string[])[], indent = ''): string {
  if (rows.length === 0) return '';
  const width = (s: string): number => visibleLength(s);
  const cols = Math.max(...rows.map((r) => r.length));
  const widths = Array.from({ length: cols }, (_, i) =>
    Math.max(...rows.map((r) => width(r[i] ?? ''))),
  );
  return rows
    .map(
      (r) =>
        indent +
        r
          .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - width(c) + 3)))
          .join('')
          .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}

/** Length without ANSI colour codes. */
function visibleLength(s: string): number {
  // eslint-disable-next-line no-control-regex -- ANSI escapes are control characters by nature
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/** kubectl's short age (its HumanDuration): 45s, 2m30s, 12m, 4h5m, 30h, 3d4h, 40d, 2y3d; `<unknown>` for no time. */
export function age(fromMs: number | undefined, nowMs: number): string {
  if (fromMs === undefined || Number.isNaN(fromMs)) return '<unknown>';
  const s = Math.max(0, Math.floor((nowMs - fromMs) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 === 0 ? '' : `${s % 60}s`}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return `${h}h${m % 60 === 0 ? '' : `${m % 60}m`}`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return `${d}d${h % 24 === 0 ? '' : `${h % 24}h`}`;
  if (d < 365 * 2) return `${d}d`;
  const y = Math.floor(d / 365);
  if (y < 8) return `${y}y${d % 365 === 0 ? '' : `${d % 365}d`}`;
  return `${y}y`;
}

/** Age of an RFC 3339 time. */
export function ageOf(iso: string | undefined, nowMs: number): string {
  return age(iso === undefined ? undefined : Date.parse(iso), nowMs);
}

/** Output formats of the read commands. */
export type OutputFormat = 'json' | 'yaml' | 'wide';

/** `-o json` / `-o yaml` of any data. */
export function structured(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json'
    ? `${JSON.stringify(value, null, 2)}\n`
    : stringify(value, { lineWidth: 0 });
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, bold: 1, dim: 2 } as const;
/** A colour (or no colour). */
export type Colour = keyof typeof CODES;

/** Paints text, or leaves it alone when colour is off. */
export type Paint = (text: string, colour: Colour) => string;

/** A painter: ANSI codes when `on`, identity otherwise. */
export function painter(on: boolean): Paint {
  return on ? (text, colour) => `\x1b[${CODES[colour]}m${text}\x1b[0m` : (text) => text;
}

/** Whether to colour: stdout is a terminal, NO_COLOR is unset and TERM is not `dumb`. */
export function wantColour(
  isTTY: boolean | undefined,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  return isTTY === true && (env['NO_COLOR'] ?? '') === '' && env['TERM'] !== 'dumb';
}

/** The colour of a step or ticket status word. */
export function statusColour(status: string): Colour | undefined {
  switch (status) {
    case 'Succeeded':
    case 'Healthy':
    case 'resolved':
    case 'released':
      return 'green';
    case 'Failed':
    case 'TicketCorrupt':
    case 'corrupt':
      return 'red';
    case 'Held':
    case 'Running':
    case 'Paused':
    case 'Human':
    case 'assigned':
    case 'pending':
    case 'open':
      return 'yellow';
    default:
      return undefined;
  }
}

/** Paints a status word by statusColour. */
export function paintStatus(paint: Paint, status: string): string {
  const c = statusColour(status);
  return c === undefined ? status : paint(status, c);
}

/** Names, at most `max`, then `+N more`. */
export function someNames(names: readonly string[], max = 5): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max).join(', ')} +${names.length - max} more`;
}

/** RFC 3339 at second precision (what kubectl describe shows), or `-`. */
export function shortTime(iso: string | undefined): string {
  if (iso === undefined) return '-';
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
