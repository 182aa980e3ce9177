/**
 * The priority table: the original's `priority.conf` format, accepted as is.
 *
 *     # comment
 *     Condition:Priority[:AffectsLoad[:DeviceIDMode]]
 *
 * Two to four colon-separated fields; blank lines and lines starting with `#` are ignored; white
 * space around fields is trimmed. AffectsLoad takes Go's ParseBool spellings (1 t T TRUE true True,
 * 0 f F FALSE false False); DeviceIDMode is one of all, index, mask, id, `-` (none). A file only
 * overrides: conditions it does not name keep their catalogue defaults, and so do the optional
 * fields a line leaves out (the original defaulted them to false / `-`, which silently switched
 * device-aware handling off for two-column files).
 */
import { CATALOGUE, createConditionIndex } from '../catalogue/index.js';
import type { CatalogueEntry, DeviceIdMode } from '../catalogue/index.js';
import { ErrorCode, HealError } from '../core/errors.js';

/** The five queues of the original, by priority range. */
export const Bucket = {
  NotReady: 'NotReady',
  Cordon: 'Cordon',
  Emergency: 'Emergency',
  CanIgnore: 'CanIgnore',
  MustIgnore: 'MustIgnore',
} as const;
export type Bucket = (typeof Bucket)[keyof typeof Bucket];

/** Bucket of a priority: 0 NotReady, 1 Cordon, 2-99 Emergency, 100-999 CanIgnore, >999 MustIgnore. */
export function bucketOf(priority: number): Bucket {
  if (priority <= 0) return Bucket.NotReady;
  if (priority === 1) return Bucket.Cordon;
  if (priority <= 99) return Bucket.Emergency;
  if (priority <= 999) return Bucket.CanIgnore;
  return Bucket.MustIgnore;
}

/** One row of the table in force. */
export interface PriorityEntry {
  readonly priority: number;
  readonly affectsLoad: boolean;
  readonly deviceIdMode: DeviceIdMode;
  /** Where the row comes from: `catalogue`, or `<file>:<line>`. */
  readonly source: string;
}

/** Canonical condition name -> its priority row, in catalogue order. */
export type PriorityTable = ReadonlyMap<string, PriorityEntry>;

/** What parsePriorityTable needs besides the text. */
export interface ParsePriorityOptions {
  /** Named in every error (`priority.conf:12: ...`). */
  readonly source: string;
  /** Conditions the file may name, with their defaults (default: the catalogue). */
  readonly knownConditions?: readonly CatalogueEntry[];
}

const TRUE_WORDS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);
const MODES: Readonly<Record<string, DeviceIdMode>> = {
  all: 'all',
  index: 'index',
  mask: 'mask',
  id: 'id',
  '-': 'none',
};

/** The table the catalogue defines, before any file. */
export function defaultPriorityTable(
  entries: readonly CatalogueEntry[] = CATALOGUE,
): PriorityTable {
  return new Map(
    entries.map((e) => [
      e.name,
      {
        priority: e.priority,
        affectsLoad: e.affectsLoad,
        deviceIdMode: e.deviceIdMode,
        source: 'catalogue',
      },
    ]),
  );
}

/**
 * Parses a priority.conf and merges it over the defaults. Collects every problem and throws one
 * PRIORITY_INVALID HealError listing them as `source:line: field: problem`, separated by `; `.
 */
export function parsePriorityTable(text: string, options: ParsePriorityOptions): PriorityTable {
  const known = options.knownConditions ?? CATALOGUE;
  const find = createConditionIndex(known);
  const table = new Map(defaultPriorityTable(known));
  const seenAt = new Map<string, number>();
  const problems: string[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const where = `${options.source}:${i + 1}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const parsed = parseLine(line, where, find, problems);
    if (parsed === undefined) continue;
    const first = seenAt.get(parsed.name);
    if (first !== undefined) {
      problems.push(
        `${where}: duplicate entry for ${parsed.name} (first at line ${first}${
          parsed.written === parsed.name ? '' : `; "${parsed.written}" is an alias`
        })`,
      );
      continue;
    }
    seenAt.set(parsed.name, i + 1);
    const base = table.get(parsed.name);
    if (base === undefined) continue;
    table.set(parsed.name, {
      priority: parsed.priority,
      affectsLoad: parsed.affectsLoad ?? base.affectsLoad,
      deviceIdMode: parsed.deviceIdMode ?? base.deviceIdMode,
      source: where,
    });
  }
  if (problems.length > 0) {
    throw new HealError(ErrorCode.PriorityInvalid, problems.join('; '));
  }
  return table;
}

interface ParsedLine {
  readonly name: string;
  readonly written: string;
  readonly priority: number;
  readonly affectsLoad: boolean | undefined;
  readonly deviceIdMode: DeviceIdMode | undefined;
}

/** One non-comment line; pushes its problems and returns undefined when it has any. */
function parseLine(
  line: string,
  where: string,
  find: (name: string) => CatalogueEntry | undefined,
  problems: string[],
): ParsedLine | undefined {
  const fields = line.split(':').map((f) => f.trim());
  if (fields.length < 2 || fields.length > 4) {
    problems.push(
      `${where}: expected Condition:Priority[:AffectsLoad[:DeviceIDMode]], got ${fields.length} field(s) in "${line}"`,
    );
    return undefined;
  }
  const [written = '', prioText = '', loadText, modeText] = fields;
  const before = problems.length;
  const entry = find(written);
  if (entry === undefined) problems.push(`${where}: condition: unknown condition "${written}"`);
  const priority = /^\d+$/.test(prioText) ? Number(prioText) : Number.NaN;
  if (!Number.isSafeInteger(priority)) {
    problems.push(`${where}: priority: "${prioText}" is not a non-negative integer`);
  }
  let affectsLoad: boolean | undefined;
  if (loadText !== undefined) {
    if (TRUE_WORDS.has(loadText)) affectsLoad = true;
    else if (FALSE_WORDS.has(loadText)) affectsLoad = false;
    else
      problems.push(`${where}: AffectsLoad: "${loadText}" is not a boolean (true/false, t/f, 1/0)`);
  }
  let deviceIdMode: DeviceIdMode | undefined;
  if (modeText !== undefined) {
    deviceIdMode = Object.hasOwn(MODES, modeText) ? MODES[modeText] : undefined;
    if (deviceIdMode === undefined) {
      problems.push(`${where}: DeviceIDMode: "${modeText}" is not one of all, index, mask, id, -`);
    }
  }
  if (problems.length > before || entry === undefined) return undefined;
  return { name: entry.name, written, priority, affectsLoad, deviceIdMode };
}

/** Writes a table in the priority.conf format, grouped by domain with comments, four fields per line. */
export function formatPriorityTable(
  table: PriorityTable,
  entries: readonly CatalogueEntry[] = CATALOGUE,
): string {
  const domainOf = new Map(entries.map((e) => [e.name, e.domain]));
  const out = [
    '# Aegis priority table: Condition:Priority[:AffectsLoad[:DeviceIDMode]]',
    '# 0 NotReady, 1 Cordon, 2-99 Emergency (acted on, lowest first), 100-999 CanIgnore, >999 MustIgnore.',
    '# Conditions left out keep their catalogue defaults. DeviceIDMode: all, index, mask, id, - (none).',
  ];
  let domain: string | undefined;
  for (const [name, row] of table) {
    const d = domainOf.get(name) ?? 'Other';
    if (d !== domain) {
      out.push('', `# ${d}`);
      domain = d;
    }
    const mode = row.deviceIdMode === 'none' ? '-' : row.deviceIdMode;
    out.push(`${name}:${row.priority}:${row.affectsLoad}:${mode}`);
  }
  return `${out.join('\n')}\n`;
}
