/**
 * Job template rendering. Pure: the caller reads the file, this parses it and substitutes
 * `{{NAME}}` placeholders. Substitution happens on the parsed tree, never on the YAML text, so a
 * value can only ever become (part of) one scalar: it cannot add keys, list items or documents.
 * Values are validated before they get here (see params.ts).
 */
import { parse } from 'yaml';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';

/** Placeholder values by name. A scalar that is exactly `{{X}}` takes X's type (numbers stay numbers). */
export type TemplateVars = Readonly<Record<string, string | number>>;

const WHOLE = /^\{\{([A-Z][A-Z0-9_]*)\}\}$/;
const ANY = /\{\{([A-Z][A-Z0-9_]*)\}\}/g;

/**
 * Parses a template's YAML text (one document) and renders it with `vars`. `source` names the
 * template in errors. Throws CONFIG_INVALID for a broken template (bad YAML, unknown placeholder).
 */
export function renderTemplate(text: string, vars: TemplateVars, source: string): unknown {
  let tree = parsedTemplates.get(text);
  if (tree === undefined) {
    try {
      tree = parse(text, { prettyErrors: true, uniqueKeys: true }) as unknown;
    } catch (err) {
      throw new HealError(ErrorCode.ConfigInvalid, `template ${source}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    if (parsedTemplates.size >= PARSED_TEMPLATES_MAX) parsedTemplates.clear();
    parsedTemplates.set(text, tree);
  }
  return substitute(tree, vars, source);
}

/**
 * Parsed templates by their text: the file is still read for every Job (a changed ConfigMap takes
 * effect at once) but parsed once per content (2.5 ms a Job in a burst of 100). Substitution
 * builds a new tree and never changes this one.
 */
const parsedTemplates = new Map<string, unknown>();
const PARSED_TEMPLATES_MAX = 64;

/** A rendered Job manifest: a plain object, checked only for its kind and metadata. */
export interface RenderedJob {
  readonly apiVersion: 'batch/v1';
  readonly kind: 'Job';
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly [field: string]: unknown;
}

/** Renders a Job template and checks that the result is a batch/v1 Job object. */
export function renderJobTemplate(text: string, vars: TemplateVars, source: string): RenderedJob {
  const job = renderTemplate(text, vars, source);
  if (!isRecord(job) || job.apiVersion !== 'batch/v1' || job.kind !== 'Job') {
    throw new HealError(ErrorCode.ConfigInvalid, `template ${source} is not a batch/v1 Job`);
  }
  const { metadata } = job;
  if (!isRecord(metadata)) {
    throw new HealError(ErrorCode.ConfigInvalid, `template ${source} has no metadata`);
  }
  return { ...job, apiVersion: 'batch/v1', kind: 'Job', metadata };
}

function substitute(node: unknown, vars: TemplateVars, source: string): unknown {
  if (typeof node === 'string') return substituteString(node, vars, source);
  if (Array.isArray(node)) return node.map((item: unknown) => substitute(item, vars, source));
  if (isRecord(node)) {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) out[key] = substitute(value, vars, source);
    return out;
  }
  return node;
}

function substituteString(text: string, vars: TemplateVars, source: string): string | number {
  const whole = WHOLE.exec(text);
  if (whole !== null) return lookup(whole[1] ?? '', vars, source);
  return text.replace(ANY, (_match, name: string) => String(lookup(name, vars, source)));
}

function lookup(name: string, vars: TemplateVars, source: string): string | number {
  if (!Object.hasOwn(vars, name)) {
    throw new HealError(ErrorCode.ConfigInvalid, `template ${source} uses unknown {{${name}}}`);
  }
  return vars[name] ?? '';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
