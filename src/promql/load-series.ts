/** Series written in Prometheus's promqltest `load` notation, for tests and small scenarios. */
import { ErrorCode, HealError } from '../core/errors.js';
import { parsePromQL } from './parse.js';
import type { Sample, Series } from './series.js';

const EXPANDING_RE = /^([-+]?[^x+-]+)(?:([+-])([^x]+))?x(\d+)$/;

function parseValue(text: string, where: string): number {
  const value =
    text === 'Inf' || text === '+Inf' ? Infinity : text === '-Inf' ? -Infinity : Number(text);
  if (Number.isNaN(value) && text !== 'NaN') {
    throw new HealError(ErrorCode.InvalidInput, `load: "${text}" is not a value in ${where}`);
  }
  return value;
}

/** Values of one token: `7`, `_` (no sample), `1+2x3` (1 3 5 7), `0-1x2`, `5x2` (5 5 5), `_x3` (3 gaps). */
function expandToken(token: string, where: string): (number | undefined)[] {
  if (token === '_' || token === 'stale') return [undefined];
  const m = EXPANDING_RE.exec(token);
  if (m === null) return [parseValue(token, where)];
  const [, startText = '', sign, stepText, countText = '0'] = m;
  const count = Number(countText);
  // As in promqltest, `_xN` is N gaps while `vxN` is N+1 values.
  if (startText === '_') return new Array<undefined>(count).fill(undefined);
  const start = parseValue(startText, where);
  const step = stepText === undefined ? 0 : (sign === '-' ? -1 : 1) * parseValue(stepText, where);
  return Array.from({ length: count + 1 }, (_, i) => start + i * step);
}

/**
 * Builds series from promqltest-style lines: keys are selectors with `=` matchers
 * (`up{job="a"}`), values are tokens, one sample every `intervalMs` starting at `startMs` (0).
 * Example: `loadSeries(300_000, { 'http_requests_total{path="/foo"}': '0+10x10' })`.
 */
export function loadSeries(
  intervalMs: number,
  spec: Readonly<Record<string, string>>,
  startMs = 0,
): Series[] {
  return Object.entries(spec).map(([selector, valuesText]) => {
    const expr = parsePromQL(selector);
    if (expr.kind !== 'vectorSelector' || expr.matchers.some((m) => m.op !== '=')) {
      throw new HealError(ErrorCode.InvalidInput, `load: "${selector}" is not a plain series name`);
    }
    const labels: Record<string, string> = { __name__: expr.metric };
    for (const m of expr.matchers) labels[m.name] = m.value;
    const values = valuesText
      .trim()
      .split(/\s+/)
      .flatMap((token) => expandToken(token, selector));
    const samples: Sample[] = [];
    values.forEach((v, i) => {
      if (v !== undefined) samples.push({ t: startMs + i * intervalMs, v });
    });
    return { labels, samples };
  });
}
