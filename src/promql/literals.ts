/** PromQL literal decoding: Go-style quoted strings, numbers and durations. */
import { ErrorCode, HealError } from '../core/errors.js';

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
};

const ESCAPE_RE =
  /\\(?:([abfnrtv\\])|(["'])|x([0-9a-fA-F]{2})|([0-7]{3})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([^]?))/g;

/**
 * Decodes a PromQL string literal (double, single or back quotes), with Prometheus's escapes
 * (strutil.Unquote: Go escapes; only the enclosing quote may be escaped). `where` names the spot.
 */
export function unquoteString(raw: string, where: string): string {
  const quote = raw[0];
  const bad = (why: string): HealError =>
    new HealError(ErrorCode.InvalidInput, `PromQL: ${why} in string ${raw} ${where}`);
  if (raw.length < 2 || raw[raw.length - 1] !== quote) throw bad('unterminated quoted string');
  const body = raw.slice(1, -1);
  if (quote === '`') return body;
  return body.replace(
    ESCAPE_RE,
    (_m, simple?: string, q?: string, hex?: string, oct?: string, u4?: string, u8?: string) => {
      if (simple !== undefined) return SIMPLE_ESCAPES[simple] ?? simple;
      if (q !== undefined) {
        if (q !== quote) throw bad(`invalid escape \\${q}`);
        return q;
      }
      const code = hex ?? oct ?? u4 ?? u8;
      if (code === undefined) throw bad('invalid escape sequence');
      const value = Number.parseInt(code, oct === undefined ? 16 : 8);
      if (value > 0x10ffff || (value >= 0xd800 && value < 0xe000)) throw bad('invalid code point');
      return String.fromCodePoint(value);
    },
  );
}

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  y: 31_536_000_000,
};

const DURATION_RE = /^(?:\d+(?:ms|[smhdwy]))+$/;
const DURATION_PART_RE = /(\d+)(ms|[smhdwy])/g;

/** True when `text` is a unit duration such as `5m` or `1h30m`. */
function isDurationText(text: string): boolean {
  return DURATION_RE.test(text);
}

/** Milliseconds of a duration literal: `1h30m`, or a plain number of seconds (`300`, `1.5`). */
export function parseDurationLiteral(text: string, where: string): number {
  if (isDurationText(text)) {
    let total = 0;
    for (const m of text.matchAll(DURATION_PART_RE)) {
      total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    }
    return total;
  }
  const seconds = parseUnsignedNumber(text);
  if (!Number.isFinite(seconds)) {
    throw new HealError(ErrorCode.InvalidInput, `PromQL: "${text}" is not a duration ${where}`);
  }
  return Math.round(seconds * 1000);
}

function parseUnsignedNumber(text: string): number {
  const lower = text.toLowerCase();
  if (lower === 'inf') return Infinity;
  if (lower === 'nan') return NaN;
  if (isDurationText(text)) return parseDurationLiteral(text, '') / 1000;
  const cleaned = text.replaceAll('_', '');
  // Number('') is 0 and Number('0x') is NaN; both are malformed here.
  return cleaned === '' ? NaN : Number(cleaned);
}

/** Value of a number literal (`12`, `-1.5e3`, `0x1f`, `Inf`, `NaN`, or a duration in seconds). */
export function parseNumberLiteral(text: string, where: string): number {
  const sign = text.startsWith('-') ? -1 : 1;
  const body = text.startsWith('-') || text.startsWith('+') ? text.slice(1).trim() : text;
  const value = parseUnsignedNumber(body);
  if (Number.isNaN(value) && body.toLowerCase() !== 'nan') {
    throw new HealError(ErrorCode.InvalidInput, `PromQL: "${text}" is not a number ${where}`);
  }
  return sign * value;
}
