/**
 * The safety suite's tally: what each test tried and what went wrong, printed at the end of
 * each test file as one `SAFETY FIGURES:` line per figure, and asserted: every "bad" figure
 * (duplicate reboots, nodes touched beyond the budget, false remediations, crashes) must be 0.
 */
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { after } from 'node:test';
import { isHealError, type ErrorCode } from '../../src/core/errors.js';
import { checkOrUpdateFiguresRow } from './figures-doc.js';

/** The four figures issue #6 asks for: what was tried, and what must never happen. */
export const FIGURES = {
  crash: { tried: 'kill points tried', bad: 'duplicate reboots', row: 'kill points' },
  storm: {
    tried: 'storm scenarios run',
    bad: 'nodes touched beyond the budget',
    row: 'storm scenarios',
  },
  outage: { tried: 'outages injected', bad: 'false remediations', row: 'outages' },
  input: { tried: 'malformed inputs tried', bad: 'crashes', row: 'malformed inputs' },
} as const;

/** JSON text of any value (`undefined` for undefined and functions, whatever its type says). */
const toJson: (v: unknown) => string | undefined = JSON.stringify;
const describe = (err: unknown): string =>
  err instanceof Error ? `${err.name}: ${err.message}` : String(err);

/** One of the four figures. */
export type FigureKind = keyof typeof FIGURES;

/** A tally of the figures one test file produces (one per file: no module-level state). */
export class SafetyFigures {
  readonly #tried = new Map<FigureKind, number>();
  readonly #bad = new Map<FigureKind, number>();
  readonly #details: string[] = [];

  /** Counts `n` attempts (kill points, storm scenarios, outages, malformed inputs). */
  tried(kind: FigureKind, n = 1): void {
    this.#tried.set(kind, (this.#tried.get(kind) ?? 0) + n);
  }

  /** Counts `n` violations, with what happened (printed with the figures). */
  bad(kind: FigureKind, n: number, detail: string): void {
    if (n <= 0) return;
    this.#bad.set(kind, (this.#bad.get(kind) ?? 0) + n);
    this.#details.push(`${FIGURES[kind].bad}: ${detail}`);
  }

  /**
   * Records a violation that is not one of the four figures (bad input accepted, an operator
   * setting undone…): printed with the figures; the test that found it fails on its own.
   */
  violation(detail: string): void {
    this.#details.push(detail);
  }

  /**
   * Feeds one malformed input to a parser: accepted (then `check` must hold) or a HealError of
   * one of `codes`. Anything else thrown is a crash (tallied); an accepted input failing `check`
   * is a violation. Returns whether the input was handled well.
   */
  probe<T>(
    what: string,
    input: unknown,
    o: { parse: () => T; codes: readonly ErrorCode[]; check?: (v: T) => void },
  ): boolean {
    this.tried('input');
    const shown = (toJson(input) ?? String(input)).slice(0, 120);
    let value: T;
    try {
      value = o.parse();
    } catch (err) {
      if (isHealError(err) && o.codes.includes(err.code) && err.message.length > 0) return true;
      this.bad('input', 1, `${what} on ${shown}: ${describe(err)}`.slice(0, 400));
      return false;
    }
    try {
      o.check?.(value);
      return true;
    } catch (err) {
      this.violation(`${what} accepted ${shown}: ${describe(err)}`.slice(0, 400));
      return false;
    }
  }

  /** Attempts of a figure so far. */
  triedOf(kind: FigureKind): number {
    return this.#tried.get(kind) ?? 0;
  }

  /** Violations of a figure so far. */
  badOf(kind: FigureKind): number {
    return this.#bad.get(kind) ?? 0;
  }

  /** One labelled line per figure this file tallied. */
  lines(): string[] {
    return (Object.keys(FIGURES) as FigureKind[])
      .filter((k) => this.#tried.has(k) || this.#bad.has(k))
      .map(
        (k) =>
          `SAFETY FIGURES: ${FIGURES[k].tried}=${this.triedOf(k)} ${FIGURES[k].bad}=${this.badOf(k)}`,
      );
  }

  /** Violations recorded, in words. */
  details(): readonly string[] {
    return this.#details;
  }
}

/**
 * Creates the file's tally and registers the `after()` hook that prints its figures and asserts
 * that every bad figure is 0 and that the file tried what it claims (`minTried`).
 */
export function useSafetyFigures(
  minTried: Partial<Record<FigureKind, number>> = {},
): SafetyFigures {
  const figures = new SafetyFigures();
  after(() => {
    for (const line of figures.lines()) console.log(line);
    for (const d of figures.details()) console.log(`SAFETY VIOLATION: ${d}`);
    for (const k of Object.keys(FIGURES) as FigureKind[]) {
      assert.equal(figures.badOf(k), 0, `${FIGURES[k].bad} must be 0`);
    }
    for (const [k, min] of Object.entries(minTried) as [FigureKind, number][]) {
      assert.ok(figures.triedOf(k) >= min, `${FIGURES[k].tried}: ${figures.triedOf(k)} < ${min}`);
    }
    // The figures in docs/safety.md are this run's, never typed by hand: a whole-file run checks
    // its row (the runs are seeded), and AEGIS_UPDATE_SAFETY_FIGURES=1 rewrites it.
    const file = process.argv[1];
    const partial = process.execArgv.some((a) => a.startsWith('--test-name-pattern'));
    if (file === undefined || !file.endsWith('.test.ts') || partial) return;
    for (const k of Object.keys(FIGURES) as FigureKind[]) {
      if (figures.triedOf(k) === 0 && figures.badOf(k) === 0) continue;
      checkOrUpdateFiguresRow({
        file: basename(file),
        figure: `${FIGURES[k].row} / ${FIGURES[k].bad}`,
        tried: figures.triedOf(k),
        bad: figures.badOf(k),
        update: process.env['AEGIS_UPDATE_SAFETY_FIGURES'] === '1',
      });
    }
  });
  return figures;
}
