/** The bench report as a plain-text table (the JSON report carries every figure). */
import type { BenchReport, SizeReport } from './bench-suite.js';
import type { Summary } from './stats.js';

const COLUMNS = [
  'nodes',
  'cycles',
  'engine CPU/cycle p50/p99 ms',
  'queries/cycle',
  'visible→1st action p50/p99 ms',
  'acted/faults',
  'peak RSS MB',
  'sim-only RSS MB',
  'engine heap MB',
  'metrics source CPU/cycle s',
] as const;

/** Renders the report: one row per size, then the notes. */
export function formatBenchTable(report: BenchReport): string {
  const rows = report.sizes.map(row);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const m = report.machine;
  return [
    `aegis bench: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGb} GB, Node ${m.node}`,
    line(COLUMNS),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    ...notes(report),
    '',
  ].join('\n');
}

function row(s: SizeReport): string[] {
  const e = s.engine;
  const q = e.queriesPerCycle;
  return [
    String(s.nodes),
    String(e.cycles),
    pair(e.engineCpuMs),
    q.min === q.max ? String(q.min) : `${q.mean} (${q.min}-${q.max})`,
    pair(e.firstAction.visibleToActionMs),
    `${e.firstAction.acted}/${e.firstAction.faults}`,
    String(e.memory.peakRssMb),
    s.baseline === undefined ? '-' : String(s.baseline.memory.peakRssMb),
    s.engineShareHeapMb === undefined ? '-' : String(s.engineShareHeapMb),
    (e.sourceCpuMs.p50 / 1000).toFixed(1),
  ];
}

function pair(v: Summary): string {
  return `${v.p50.toFixed(1)} / ${v.p99.toFixed(1)}`;
}

function notes(report: BenchReport): string[] {
  const out = [
    'engine CPU: main-thread time on a CPU during controller.cycle() (wall minus run-queue wait) on',
    "prefetched answers: the metrics source (the simulator's PromQL) runs before the cycle and is",
    'timed apart; the warm-up cycles and the two direct cycles are excluded.',
    'peak RSS: the benchmark process (simulator + engine); sim-only: the same fleet without the engine;',
    'engine heap: V8 heap after a full GC at the end, with the engine minus without.',
  ];
  for (const s of report.sizes) {
    if (s.cyclesNote !== undefined) out.push(`${s.nodes} nodes: ${s.cyclesNote}.`);
    out.push(
      `${s.nodes} nodes: load average ${s.load[0].toFixed(1)} -> ${s.load[1].toFixed(1)}; ` +
        `process CPU/cycle p50 ${s.engine.engineProcessCpuMs.p50} ms; ` +
        `CycleReport.engineMs p50 ${s.engine.reportEngineMs.p50} ms; ` +
        `peak RSS engine minus sim-only ${s.engineShareRssMb ?? '-'} MB.`,
    );
  }
  return out;
}
