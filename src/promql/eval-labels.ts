/** label_replace and label_join, with Go's regexp template expansion (`$1`, `${name}`). */
import { ErrorCode, HealError } from '../core/errors.js';
import type { Call } from './ast.js';
import type { EvalContext, Labels, Vector, VectorSample } from './eval-context.js';
import { evalVector } from './eval-context.js';
import { stringValue } from './parse-context.js';
import { createSignatureMap, FULL_SIGNATURE } from './signature.js';

const NAME_RE = /^[\p{L}\p{Nd}_]+/u;

/**
 * Expands a replacement template as Go's Regexp.ExpandString: `$$` is `$`, `$n`/`${n}` a group by
 * number, `$name`/`${name}` a named group; the longest name wins (`$1x` is the group named `1x`);
 * unknown groups expand to nothing and a malformed `$` stays literal.
 */
export function expandTemplate(template: string, match: RegExpExecArray): string {
  let out = '';
  let rest = template;
  for (let i = rest.indexOf('$'); i >= 0; i = rest.indexOf('$')) {
    out += rest.slice(0, i);
    rest = rest.slice(i + 1);
    if (rest.startsWith('$')) {
      out += '$';
      rest = rest.slice(1);
      continue;
    }
    const braced = rest.startsWith('{');
    const body = braced ? rest.slice(1) : rest;
    const name = NAME_RE.exec(body)?.[0];
    if (name === undefined || (braced && body[name.length] !== '}')) {
      out += '$';
      continue;
    }
    rest = body.slice(name.length + (braced ? 1 : 0));
    out += groupValue(match, name);
  }
  return out + rest;
}

function groupValue(match: RegExpExecArray, name: string): string {
  if (/^\d+$/.test(name) && (name.length === 1 || !name.startsWith('0'))) {
    return match[Number(name)] ?? '';
  }
  return match.groups?.[name] ?? '';
}

/** A copy of `labels` with `name` set to `value`, or removed when `value` is empty. */
function withLabel(labels: Labels, name: string, value: string): Labels {
  const out: Record<string, string> = {};
  for (const k in labels) if (k !== name) out[k] = labels[k] as string;
  if (value !== '') out[name] = value;
  return out;
}

function assertUniqueLabelSets(vec: Vector, call: Call): Vector {
  const seen = createSignatureMap<VectorSample>(FULL_SIGNATURE);
  for (const s of vec) {
    if (seen.add(s) !== undefined) {
      throw new HealError(
        ErrorCode.InvalidInput,
        `PromQL: ${call.text}: vector cannot contain metrics with the same labelset`,
      );
    }
  }
  return vec;
}

/** `label_replace(v, dst, replacement, src, regex)`: sets dst where the anchored regex matches. */
export function labelReplace(ctx: EvalContext, call: Call): Vector {
  const [vecExpr, dstExpr, replExpr, srcExpr] = call.args;
  const regex = call.regex;
  if (vecExpr === undefined || regex === undefined) return [];
  const dst = stringValue(dstExpr ?? vecExpr);
  const replacement = stringValue(replExpr ?? vecExpr);
  const src = stringValue(srcExpr ?? vecExpr);
  const vec = evalVector(ctx, vecExpr);
  for (const s of vec) {
    const match = regex.exec(s.labels[src] ?? '');
    if (match !== null) s.labels = withLabel(s.labels, dst, expandTemplate(replacement, match));
  }
  return assertUniqueLabelSets(vec, call);
}

/** `label_join(v, dst, separator, src...)`: sets dst to the joined source label values. */
export function labelJoin(ctx: EvalContext, call: Call): Vector {
  const [vecExpr, dstExpr, sepExpr, ...srcExprs] = call.args;
  if (vecExpr === undefined) return [];
  const dst = stringValue(dstExpr ?? vecExpr);
  const sep = stringValue(sepExpr ?? vecExpr);
  const srcs = srcExprs.map(stringValue);
  const vec = evalVector(ctx, vecExpr);
  for (const s of vec) {
    const joined = srcs.map((name) => s.labels[name] ?? '').join(sep);
    s.labels = withLabel(s.labels, dst, joined);
  }
  return assertUniqueLabelSets(vec, call);
}
