/**
 * Loads a scenario file: YAML parsed with node ranges kept, checked by the strict schema, then
 * resolved against the catalogue and the fleet. Every problem is reported as
 * `file:line: path: message` (all of them, in line order) before anything runs.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { z } from 'zod';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import type { Issue } from './refs.js';
import { resolveScenario } from './resolve.js';
import { ScenarioFileSchema, type Scenario } from './schema.js';

type Path = readonly (string | number)[];

/** Reads and validates a scenario file. Throws HealError SCENARIO_INVALID (or UNKNOWN_CONDITION). */
export async function loadScenarioFile(path: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new HealError(
      ErrorCode.ScenarioInvalid,
      `${path}: cannot read the scenario: ${errorMessage(err)}`,
      { cause: err },
    );
  }
  return parseScenario(text, path);
}

/** Validates scenario text; `source` names it in messages (a path, or `<stdin>`). */
export function parseScenario(text: string, source: string): Scenario {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const msgs = doc.errors.map((e) => {
      const line = e.linePos?.[0].line ?? lines.linePos(e.pos[0]).line;
      return `${source}:${line}: bad YAML: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`;
    });
    throw new HealError(ErrorCode.ScenarioInvalid, msgs.join('\n'));
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new HealError(ErrorCode.ScenarioInvalid, `${source}:1: bad YAML: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HealError(
      ErrorCode.ScenarioInvalid,
      `${source}:1: a scenario is a mapping with fleet, duration, timeline and expect`,
    );
  }
  const lineOf = (path: Path): number => locate(doc, lines, path);
  const parsed = ScenarioFileSchema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i): Issue => ({
      path: [
        ...(i.path as (string | number)[]),
        ...(i.code === 'unrecognized_keys' ? [i.keys[0] ?? ''] : []),
      ],
      message: i.message,
    }));
    throw failure(
      source,
      [...issues, ...partialIssues(value as Record<string, unknown>, lineOf)],
      lineOf,
    );
  }
  const resolved = resolveScenario(parsed.data, lineOf);
  if (Array.isArray(resolved)) throw failure(source, resolved, lineOf);
  const data = parsed.data;
  return {
    name: data.name ?? basename(source).replace(/\.ya?ml$/, ''),
    description: data.description ?? '',
    source,
    seed: data.seed,
    ...resolved,
  };
}

/** Formats a document path: `timeline[3].condition`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path)
    out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out;
}

/**
 * When the top level has problems, still checks the parts that parsed (timeline, expectations),
 * provided the fleet and duration did, so one run reports every problem.
 */
function partialIssues(value: Record<string, unknown>, lineOf: (p: Path) => number): Issue[] {
  const shape = ScenarioFileSchema.shape;
  const data: Record<string, unknown> = {};
  for (const key of Object.keys(shape) as (keyof typeof shape)[]) {
    const part = shape[key].safeParse(value[key]);
    if (part.success) data[key] = part.data;
    else if (key === 'fleet' || key === 'duration') return [];
  }
  const file = { seed: 1, workloads: [], timeline: [], expect: [], ...data } as unknown as z.infer<
    typeof ScenarioFileSchema
  >;
  const resolved = resolveScenario(file, lineOf);
  return Array.isArray(resolved) ? resolved : [];
}

function failure(source: string, issues: readonly Issue[], lineOf: (p: Path) => number): HealError {
  const seen = new Set<string>();
  const unique = issues.filter((i) => {
    const key = `${formatPath(i.path)}\n${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const located = unique.map((i) => ({ ...i, line: lineOf(i.path) }));
  located.sort((a, b) => a.line - b.line);
  const text = located.map(
    (i) =>
      `${source}:${i.line}: ${i.path.length === 0 ? '' : `${formatPath(i.path)}: `}${i.message}`,
  );
  const onlyConditions = located.every((i) => i.unknownCondition === true);
  return new HealError(
    onlyConditions ? ErrorCode.UnknownCondition : ErrorCode.ScenarioInvalid,
    text.join('\n'),
  );
}

/** Line of the deepest node of `path` that exists (the key's line for a mapping entry). */
function locate(doc: Document, lines: LineCounter, path: Path): number {
  let node: unknown = doc.contents;
  let line = lineAt(node, lines) ?? 1;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg),
      );
      if (pair === undefined) break;
      line = lineAt(pair.key, lines) ?? line;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined) break;
      line = lineAt(item, lines) ?? line;
      node = item;
    } else break;
  }
  return line;
}

function lineAt(node: unknown, lines: LineCounter): number | undefined {
  if (node === null || typeof node !== 'object' || !('range' in node)) return undefined;
  const range = (node as { range?: readonly number[] | null }).range;
  const start = range?.[0];
  return start === undefined ? undefined : lines.linePos(start).line;
}
