/**
 * The figures table of docs/safety.md, kept by the suite itself: each safety test file checks its
 * own rows against the run it just made (the runs are seeded, so the figures are reproducible),
 * and `npm run safety:figures` (AEGIS_UPDATE_SAFETY_FIGURES=1) rewrites them and the total.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DOC = fileURLToPath(new URL('../../docs/safety.md', import.meta.url));
const BEGIN = '<!-- safety-figures:begin (written by the suite: npm run safety:figures) -->';
const END = '<!-- safety-figures:end -->';
const HEADER = ['| File | Figure | Tried | Must be 0 |', '| --- | --- | --- | --- |'];

interface Row {
  readonly file: string;
  readonly figure: string;
  readonly tried: number;
  readonly bad: number;
}

/** Checks (or, with `update`, rewrites) one row of the table. */
export function checkOrUpdateFiguresRow(row: Row & { readonly update: boolean }): void {
  if (row.update) {
    withLock(() => {
      const text = readFileSync(DOC, 'utf8');
      const rows = parseRows(text).filter((r) => !(r.file === row.file && r.figure === row.figure));
      rows.push(row);
      writeFileSync(DOC, withTable(text, rows));
    });
    return;
  }
  const found = parseRows(readFileSync(DOC, 'utf8')).find(
    (r) => r.file === row.file && r.figure === row.figure,
  );
  const fix = 'run `npm run safety:figures` to regenerate docs/safety.md';
  assert.ok(
    found !== undefined,
    `docs/safety.md has no figures row for ${row.file} (${row.figure}); ${fix}`,
  );
  assert.deepEqual(
    [found.tried, found.bad],
    [row.tried, row.bad],
    `docs/safety.md figures of ${row.file} (${row.figure}) differ from this run; ${fix}`,
  );
}

function section(text: string): { start: number; end: number } {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start === -1 || end < start)
    throw new Error(`docs/safety.md: figures markers missing (${BEGIN})`);
  return { start: start + BEGIN.length, end };
}

function parseRows(text: string): Row[] {
  const { start, end } = section(text);
  const out: Row[] = [];
  for (const line of text.slice(start, end).split('\n')) {
    const m = /^\| `([^`]+)` \| ([^|]+) \| (\d+) \| (\d+) \|$/.exec(line.trim());
    if (m !== null)
      out.push({
        file: m[1] ?? '',
        figure: (m[2] ?? '').trim(),
        tried: Number(m[3]),
        bad: Number(m[4]),
      });
  }
  return out;
}

function withTable(text: string, rows: Row[]): string {
  rows.sort((a, b) => a.file.localeCompare(b.file) || a.figure.localeCompare(b.figure));
  const totals = new Map<string, { tried: number; bad: number; badName: string }>();
  for (const r of rows) {
    const [name = '', badName = ''] = r.figure.split(' / ');
    const t = totals.get(name) ?? { tried: 0, bad: 0, badName };
    totals.set(name, { tried: t.tried + r.tried, bad: t.bad + r.bad, badName });
  }
  const tried = [...totals].map(([n, t]) => `${n} ${t.tried}`).join(' · ');
  const bad = [...totals].map(([, t]) => `${t.badName} ${t.bad}`).join(' · ');
  const table = [
    ...HEADER,
    ...rows.map((r) => `| \`${r.file}\` | ${r.figure} | ${r.tried} | ${r.bad} |`),
    `| **Total** | ${tried} | | ${bad} |`,
  ];
  const { start, end } = section(text);
  return `${text.slice(0, start)}\n${table.join('\n')}\n${text.slice(end)}`;
}

/** Runs `fn` holding a lock directory (test files run in parallel processes). */
function withLock(fn: () => void): void {
  const lock = `${DOC}.lock`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`docs/safety.md: lock ${lock} held for 10 s`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  try {
    fn();
  } finally {
    rmdirSync(lock);
  }
}
