/**
 * The human output of `aegis replay`: live lines in the history's own time (faults as the rules
 * saw them, every step, every hold and why, ticket changes, cordons found in history), then the
 * incidents, the totals and the replay's speed; for `--compare`, the differences.
 */
import { formatDurationMs } from '../core/duration.js';
import { formatMaybe } from '../scenario/evaluate.js';
import { plural, table, truncate } from '../scenario/report.js';
import type { Incident } from '../scenario/summary.js';
import type { ReplayComparison } from './compare.js';
import { iso, type ReplayEvent, type ReplayReport } from './replay.js';

/** Where text goes. */
export type Write = (text: string) => void;

/** An `onEvent` handler printing the live view (`quiet`: only the start line). */
export function createReplayPrinter(
  write: Write,
  opts: { quiet?: boolean; label?: string } = {},
): (e: ReplayEvent) => void {
  const tag = opts.label === undefined ? '' : `[${opts.label}] `;
  const line = (atMs: number, text: string): void => {
    write(`${tag}${iso(atMs)}  ${text}\n`);
  };
  return (e) => {
    if (e.kind === 'start') {
      const o = e.options;
      write(
        `${tag}Aegis replay of ${o.source}: ${iso(o.fromMs)} to ${iso(o.toMs)} ` +
          `(${formatDurationMs(o.toMs - o.fromMs)}), ${plural(e.nodes, 'node')}, a cycle every ` +
          `${formatDurationMs(o.stepMs)}, policy ${o.configName}` +
          `${o.config.safety.dryRun ? ' (dry-run)' : ''}; nothing is written to any cluster\n`,
      );
      return;
    }
    if (opts.quiet === true) return;
    switch (e.kind) {
      case 'history':
        line(e.change.atMs, `> ${e.change.node}  ${e.change.what} (in history)`);
        return;
      case 'fault':
        line(e.atMs, `! ${e.node}  ${e.condition} seen`);
        return;
      case 'cleared':
        line(e.atMs, `  ${e.node}  ${e.condition} no longer seen`);
        return;
      case 'step': {
        const a = e.action;
        const what = `${a.node}  ${a.action.padEnd(12)}`;
        switch (a.status) {
          case 'Running':
            line(e.atMs, `  ${what} started   ${a.sop} (${a.condition})`);
            return;
          case 'Held':
            line(e.atMs, `  ${what} held      ${a.message ?? ''}`);
            return;
          case 'DryRun':
            line(
              e.atMs,
              `  ${what} dry-run   would run ${a.sop} (${a.condition}): ${a.message ?? ''}`,
            );
            return;
          default:
            line(
              e.atMs,
              `  ${what} ${a.status.toLowerCase()}${a.message === undefined || a.status === 'Succeeded' ? '' : `: ${a.message}`}`,
            );
        }
        return;
      }
      case 'ticket': {
        const c = e.change;
        const what = c.opened
          ? `ticket opened for ${c.condition}`
          : c.supervisor !== 'aegis'
            ? `ticket ${c.status}, supervisor ${c.supervisor}`
            : `ticket ${c.status}`;
        line(e.atMs, `  ${c.node}  ${what}`);
        return;
      }
    }
  };
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

/** The closing summary of one replay. */
export function writeReplaySummary(r: ReplayReport, write: Write, title = 'What happened'): void {
  write(`\n${title} (${plural(r.incidents.length, 'incident')})\n`);
  const rows: string[][] = [['node', 'incident', 'seen at', 'first action', 'outcome']];
  for (const i of r.incidents) {
    const first =
      i.firstAction === null
        ? '-'
        : `${i.firstAction.action} +${formatMaybe(i.firstActionAfterMs)}`;
    let outcome = OUTCOME_TEXT[i.outcome];
    if (i.outcome === 'human') outcome = `handed to ${i.detail} after ${formatMaybe(i.durationMs)}`;
    else if (i.detail !== '') outcome = `${outcome} (${i.detail})`;
    if (i.outcome === 'healed' || i.outcome === 'cleared')
      outcome += ` in ${formatMaybe(i.durationMs)}`;
    if (i.reboots > 0) outcome += `, ${plural(i.reboots, 'reboot')}`;
    rows.push([i.node, truncate(i.what, 40), i.time, first, outcome]);
  }
  if (r.incidents.length > 0) write(table(rows));
  if (r.holds.length > 0) {
    write('\nHolds\n');
    for (const h of r.holds) write(`  ${String(h.count).padStart(5)} × ${h.reason}\n`);
  }
  const t = r.totals;
  write(
    `\nTotals: ${plural(t.incidents, 'incident')}, ${plural(t.steps, 'step')} on ${plural(t.nodesTouched, 'node')}, ` +
      `${plural(t.nodesCordoned, 'node')} cordoned, ${plural(t.reboots, 'reboot')}, ${plural(t.handOffs, 'hand-off')}, ` +
      `${plural(t.holds, 'hold')}, peak ${t.peakCordoned} cordoned (${t.peakCordonedByAegis} by Aegis), ` +
      `${plural(t.breakerTrips, 'breaker trip')}, ${plural(t.jobs, 'Job')}, ${plural(t.evictions, 'eviction')}\n`,
  );
  const run = r.run;
  write(
    `Replayed ${formatDurationMs(Date.parse(r.window.to) - Date.parse(r.window.from))} of history ` +
      `(${run.cycles} cycles${run.skippedCycles > 0 ? `, ${run.skippedCycles} quiet ones skipped` : ''}) in ${(run.wallMs / 1000).toFixed(1)} s: ${run.hoursPerSecond} virtual hours per second; ` +
      `${run.reads.rangeQueries} range queries, ${run.reads.offGrid + run.reads.podReads} instant ones` +
      `${run.unfinishedSteps > 0 ? `; ${plural(run.unfinishedSteps, 'step')} cut short at the end` : ''}\n` +
      `Assumed: every Job ${r.assumptions.jobs === 'succeed' ? 'succeeds (health checks judged by the history)' : 'fails'}, ` +
      `a reboot takes ${formatDurationMs(r.assumptions.bootTimeMs)}\n`,
  );
}

/** The differences of a comparison. */
export function writeComparison(c: ReplayComparison, write: Write): void {
  write(`\nDifferences: A = ${c.a}, B = ${c.b}\n`);
  if (c.same) {
    write('  none: both policies took the same steps with the same outcomes\n');
    return;
  }
  if (c.totals.length > 0) {
    const rows = [['total', 'A', 'B']];
    for (const d of c.totals) rows.push([d.total, show(d.a), show(d.b)]);
    write(table(rows));
  }
  if (c.steps.length > 0) {
    write(`\nSteps taken by one policy only (${c.steps.length})\n`);
    for (const s of c.steps)
      write(
        `  ${s.only.toUpperCase()} only  ${s.time}  ${s.node}  ${s.action} ${s.status.toLowerCase()} (${s.condition})` +
          `${s.message === undefined ? '' : `: ${s.message}`}\n`,
      );
  }
  if (c.outcomes.length > 0) {
    write(`\nIncidents that end differently (${c.outcomes.length})\n`);
    for (const o of c.outcomes) write(`  ${o.time}  ${o.node}  ${o.what}: A ${o.a}; B ${o.b}\n`);
  }
}

function show(v: number | null): string {
  return v === null ? '-' : String(v);
}
