/**
 * The human output of a scenario run: live lines a person can follow (timeline events, every step
 * as it happens, ticket changes, a fleet summary line every so often, all in virtual time) and the
 * closing table of what happened and how fast.
 */
import { formatDurationMs } from '../core/duration.js';
import { formatMaybe } from './evaluate.js';
import type { FleetSnapshot, RunEvent, ScenarioReport } from './runner.js';
import { clockOf, type Incident } from './summary.js';

/** Where text goes (a stream's `write`, or a test's buffer). */
export type Write = (text: string) => void;

const MARK = { fault: '!', operator: '>', outage: '~' } as const;
const QUIET_REPEAT_MS = 4 * 3_600_000;
const MIN_SHOWN_JUMP_MS = 10 * 60_000;

/** Returns an `onEvent` handler printing the live view; `quiet` prints only the start line. */
export function createLiveReporter(
  write: Write,
  opts: { quiet?: boolean } = {},
): (event: RunEvent) => void {
  const started = new Map<string, number>();
  let lastFleet = '';
  let lastFleetAt = -Infinity;
  const line = (atMs: number, text: string): void => {
    write(`[${clockOf(atMs)}] ${text}\n`);
  };
  return (e) => {
    if (e.kind === 'start') {
      const s = e.scenario;
      write(
        `Aegis simulation "${s.name}": ${e.nodes} nodes, ${formatDurationMs(s.durationMs)} of fleet time, ` +
          `inspection every ${formatDurationMs(s.intervalMs)}${s.config.safety.dryRun ? ', dry-run' : ''}\n`,
      );
      if (s.description !== '' && opts.quiet !== true) write(`${s.description.trim()}\n\n`);
      return;
    }
    if (opts.quiet === true) return;
    switch (e.kind) {
      case 'end':
        return;
      case 'timeline': {
        const mark = MARK[e.category];
        const note = e.note === undefined ? '' : ` — ${e.note}`;
        line(e.atMs, `${mark} ${e.text}${note}${e.problem === undefined ? '' : ` (${e.problem})`}`);
        return;
      }
      case 'step': {
        const a = e.action;
        const key = `${a.node}/${a.action}/${a.replica ?? 0}`;
        const who = a.replica === undefined ? '' : ` [replica ${a.replica}]`;
        const what = `${a.node}  ${a.action.padEnd(12)}`;
        switch (a.status) {
          case 'Running':
            started.set(key, a.atMs);
            line(a.atMs, `  ${what} started   ${a.sop} (${a.condition})${who}`);
            return;
          case 'Held':
            line(a.atMs, `  ${what} held      ${a.message ?? ''}${who}`);
            return;
          case 'DryRun':
            line(
              a.atMs,
              `  ${what} dry-run   would run ${a.sop} (${a.condition}): ${a.message ?? ''}`,
            );
            return;
          default: {
            const t0 = started.get(key);
            started.delete(key);
            const took =
              t0 === undefined
                ? ''
                : ` in ${formatDurationMs(Math.round((a.atMs - t0) / 1000) * 1000)}`;
            const msg = a.status === 'Succeeded' || a.message === undefined ? '' : `: ${a.message}`;
            line(a.atMs, `  ${what} ${a.status.toLowerCase()}${took}${msg}${who}`);
          }
        }
        return;
      }
      case 'ticket': {
        const c = e.change;
        const what = c.opened
          ? `ticket opened for ${c.condition}`
          : c.status === 'assigned' || c.supervisor !== 'aegis'
            ? `ticket ${c.status}, supervisor ${c.supervisor}`
            : `ticket ${c.status}`;
        line(c.atMs, `  ${c.node}  ${what}`);
        return;
      }
      case 'progress': {
        // An unchanged fleet is repeated at most every few hours.
        const text = fleetLine(e.fleet);
        if (text === lastFleet && e.atMs - lastFleetAt < QUIET_REPEAT_MS) return;
        lastFleet = text;
        lastFleetAt = e.atMs;
        line(e.atMs, `= ${text}`);
        return;
      }
      case 'fast-forward':
        if (e.toMs - e.fromMs >= MIN_SHOWN_JUMP_MS)
          line(e.fromMs, `… quiet: fast-forward to ${clockOf(e.toMs)}`);
        return;
    }
  };
}

/** `64 nodes · 2 faulty (engine sees 1) · 3 cordoned · 2 tickets open · 1 step running`. */
export function fleetLine(f: FleetSnapshot): string {
  const seen = f.seen === f.faulty ? '' : ` (engine sees ${f.seen})`;
  return `fleet: ${plural(f.nodes, 'node')} · ${f.faulty} faulty${seen} · ${f.cordoned} cordoned · ${plural(f.openTickets, 'ticket')} open · ${plural(f.inflight, 'step')} running`;
}

/** `1 node`, `2 nodes`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

const OUTCOME_TEXT: Readonly<Record<Incident['outcome'], string>> = {
  healed: 'healed',
  cleared: 'cleared, closed',
  human: 'handed to',
  'cleared before action': 'cleared before any action',
  'left alone': 'left alone',
  'record only': 'recorded only',
  'dry-run': 'dry-run',
  held: 'held by a safety gate',
  open: 'still in progress',
  'not acted on': 'not acted on',
};

/** Writes the closing summary: the incident table, totals, expectations and run statistics. */
export function writeSummary(report: ScenarioReport, write: Write): void {
  const { incidents, totals } = report.summary;
  write(`\nWhat happened (${incidents.length} incident${incidents.length === 1 ? '' : 's'})\n`);
  const rows: string[][] = [
    ['node', 'incident', 'fault at', 'seen', 'first action', 'healed in', 'outcome'],
  ];
  for (const i of incidents) {
    const first =
      i.firstAction === null
        ? '-'
        : `${i.firstAction.action} +${formatMaybe(i.firstActionAfterMs)}`;
    const healed =
      i.outcome === 'healed' || i.outcome === 'cleared' ? formatMaybe(i.durationMs) : '-';
    let outcome = OUTCOME_TEXT[i.outcome];
    if (i.outcome === 'human') outcome = `handed to ${i.detail} after ${formatMaybe(i.durationMs)}`;
    else if (i.detail !== '') outcome = `${outcome} (${i.detail})`;
    if (i.reboots > 0) outcome += `, ${i.reboots} reboot${i.reboots === 1 ? '' : 's'}`;
    if (i.unprompted) outcome += ' [no injected fault]';
    const seen = i.detectedAfterMs === null ? '-' : `+${formatMaybe(i.detectedAfterMs)}`;
    rows.push([i.node, truncate(i.what, 34), clockOf(i.startMs), seen, first, healed, outcome]);
  }
  if (incidents.length > 0) write(table(rows));
  const by = Object.entries(totals.byOutcome).map(
    ([k, v]) => `${v} ${OUTCOME_TEXT[k as Incident['outcome']].replace('handed to', 'to a human')}`,
  );
  write(`\nTotals: ${by.length === 0 ? 'no incidents' : by.join(', ')}\n`);
  write(
    `  seen: median ${formatMaybe(totals.medianDetectMs)} · first action: median ${formatMaybe(totals.medianFirstActionMs)}, max ${formatMaybe(totals.maxFirstActionMs)} after the fault · ` +
      `healed: median ${formatMaybe(totals.medianHealMs)}, max ${formatMaybe(totals.maxHealMs)}\n`,
  );
  const p = report.summary.peaks;
  write(
    `  ${plural(totals.steps, 'step')} on ${plural(totals.nodesTouched, 'node')}, ${plural(totals.reboots, 'reboot')} · ` +
      `peak ${p.cordoned} cordoned, ${plural(p.openTickets, 'ticket')} open, ${plural(p.inflight, 'step')} at once` +
      `${totals.unprompted > 0 ? ` · ${plural(totals.unprompted, 'incident')} without an injected fault` : ''}\n`,
  );
  const g = report.summary.gpuHoursOut;
  write(
    `  GPU-hours out of scheduling: ${g.total.toFixed(1)} (${g.wholeNode.toFixed(1)} on cordoned or down nodes, ` +
      `${g.quarantined.toFixed(1)} of GPUs quarantined alone)\n`,
  );
  const failed = report.expectations.filter((x) => !x.passed);
  if (report.expectations.length > 0) {
    write(
      `\nExpectations: ${report.expectations.length - failed.length}/${report.expectations.length} passed\n`,
    );
    for (const x of report.expectations)
      write(
        `  ${x.passed ? '✓' : '✗'} ${x.description}${x.passed ? '' : ` — ${x.detail} (line ${x.line})`}\n`,
      );
  }
  const r = report.run;
  write(
    `\nRan ${formatDurationMs(report.scenario.durationMs)} of fleet time in ${(r.wallMs / 1000).toFixed(1)} s of wall time ` +
      `(${r.cycles} cycles${r.skippedCycles > 0 ? `, ${r.skippedCycles} quiet ones skipped` : ''}${r.unfinishedSteps > 0 ? `, ${r.unfinishedSteps} steps cut short` : ''}${r.aborted ? ', interrupted' : ''})\n`,
  );
}

/** `s` cut to `n` characters, the last one an ellipsis when cut. */
export function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** Rows as an indented text table, each column as wide as its widest cell (the last left as is). */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows
    .map(
      (r) =>
        `  ${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] ?? 0))).join('  ')}\n`,
    )
    .join('');
}
