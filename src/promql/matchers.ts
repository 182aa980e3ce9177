/** Label matchers and RE2-style regexes, compiled once per parsed expression. */
import { ErrorCode, HealError } from '../core/errors.js';
import type { CompiledMatcher } from './ast.js';
import type { LabelMatcher } from './series.js';

const LEADING_FLAGS_RE = /^\(\?([imsU]+)\)/;

/**
 * Compiles a Prometheus (RE2) regex fully anchored, as Prometheus does (`^(?s:re)$`: `.` also
 * matches newlines). Handles a leading `(?i)` flag group and `(?P<name>...)` groups; other RE2-only
 * syntax that JavaScript rejects throws INVALID_INPUT naming `where`.
 */
export function compileAnchoredRegex(pattern: string, where: string): RegExp {
  let body = pattern;
  let flags = 's';
  const leading = LEADING_FLAGS_RE.exec(body);
  if (leading !== null) {
    const letters = leading[1] ?? '';
    if (/[mU]/.test(letters)) {
      throw new HealError(
        ErrorCode.PromQLUnsupported,
        `PromQL: regex flags (?${letters}) in "${pattern}" ${where}`,
      );
    }
    if (letters.includes('i')) flags += 'i';
    body = body.slice(leading[0].length);
  }
  body = body.replaceAll('(?P<', '(?<');
  try {
    return new RegExp(`^(?:${body})$`, flags);
  } catch (err) {
    throw new HealError(
      ErrorCode.InvalidInput,
      `PromQL: invalid regular expression "${pattern}" ${where}`,
      { cause: err },
    );
  }
}

/** Precompiles a selector matcher; `where` (e.g. `at line 1, column 5`) goes into regex errors. */
export function compileMatcher(matcher: LabelMatcher, where: string): CompiledMatcher {
  const { name, op, value } = matcher;
  switch (op) {
    case '=':
      return { name, op, value, matches: (v) => v === value };
    case '!=':
      return { name, op, value, matches: (v) => v !== value };
    case '=~': {
      const re = compileAnchoredRegex(value, where);
      return { name, op, value, matches: (v) => re.test(v) };
    }
    case '!~': {
      const re = compileAnchoredRegex(value, where);
      return { name, op, value, matches: (v) => !re.test(v) };
    }
  }
}

/** True when `m` already carries a precompiled test (matchers coming from parsePromQL do). */
export function isCompiledMatcher(m: LabelMatcher): m is CompiledMatcher {
  return typeof (m as Partial<CompiledMatcher>).matches === 'function';
}

/** A predicate over label sets for `matchers`, reusing precompiled tests where present. */
export function toLabelsPredicate(
  matchers: readonly LabelMatcher[],
): (labels: Readonly<Record<string, string>>) => boolean {
  const compiled = matchers.map((m) =>
    isCompiledMatcher(m) ? m : compileMatcher(m, `in matcher ${m.name}${m.op}"${m.value}"`),
  );
  return (labels) => {
    for (const m of compiled) {
      if (!m.matches(labels[m.name] ?? '')) return false;
    }
    return true;
  };
}
