/**
 * Smoke test of the benchmark (not a timed assertion): a tiny fleet, in process and through the
 * CLI's child processes, yields the documented JSON shape with finite figures.
 */
import assert from 'node:assert/strict';
import { CATALOGUE } from '../../src/catalogue/index.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { BenchReport } from '../../src/bench/bench-suite.js';
import { formatBenchTable } from '../../src/bench/format.js';
import { QUIET_WARMUP, type QuietResult } from '../../src/bench/quiet-bench.js';
import { runSizeBench, type SizeResult } from '../../src/bench/size-bench.js';
import type { Summary } from '../../src/bench/stats.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

function assertFiniteSummary(name: string, s: Summary): void {
  assert.ok(s.n > 0, `${name}: no samples`);
  for (const k of ['p50', 'p99', 'max', 'mean'] as const) {
    assert.ok(Number.isFinite(s[k]) && s[k] >= 0, `${name}.${k} = ${String(s[k])}`);
  }
  assert.ok(s.p50 <= s.p99 && s.p99 <= s.max, `${name}: p50 <= p99 <= max`);
}

function assertEngineRun(r: SizeResult, nodes: number): void {
  assert.equal(r.nodes, nodes);
  assert.equal(r.engine, true);
  assert.equal(r.gpusPerNode, 8);
  assert.equal(r.faultyNodes, Math.max(1, Math.round(nodes / 100)));
  assertFiniteSummary('engineCpuMs', r.engineCpuMs);
  assertFiniteSummary('engineWallMs', r.engineWallMs);
  assertFiniteSummary('reportEngineMs', r.reportEngineMs);
  assertFiniteSummary('sourceCpuMs', r.sourceCpuMs);
  assertFiniteSummary('direct.reportInspectMs', r.direct.reportInspectMs);
  const q = r.queriesPerCycle;
  const rules = CATALOGUE.filter((e) => e.expr !== '').length;
  assert.ok(q.min > 0 && q.min <= q.mean && q.mean <= q.max, JSON.stringify(q));
  assert.ok(q.max < rules, `fewer queries than rules (shared XID selection): ${q.max}`);
  assert.ok(q.mean < rules / 2, `slow rules asked only when due: ${q.mean} per cycle`);
  assert.equal(r.sourceMisses, 0, 'every engine query was prefetched');
  const fa = r.firstAction;
  assert.equal(fa.faults, r.faultyNodes);
  assert.ok(fa.acted > 0, 'at least one fault was acted on');
  assertFiniteSummary('visibleToActionMs', fa.visibleToActionMs);
  assertFiniteSummary('injectToActionMs', fa.injectToActionMs);
  for (const v of [r.memory.floorRssMb, r.memory.worldRssMb, r.memory.peakRssMb]) {
    assert.ok(Number.isFinite(v) && v > 0);
  }
}

describe('aegis bench (smoke)', () => {
  it('one size in process: finite cycle, latency and memory figures', async () => {
    assertEngineRun(await runSizeBench({ nodes: 120, cycles: 7 }), 120);
  });

  it('the CLI runs a size in child processes and prints the report', () => {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', CLI, 'bench', '--sizes', '100', '--cycles', '6', '--json'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout) as BenchReport;
    assert.ok(report.machine.cpus > 0);
    assert.equal(report.sizes.length, 1);
    const size = report.sizes[0];
    assert.ok(size !== undefined);
    assertEngineRun(size.engine, 100);
    assert.equal(size.baseline?.engine, false);
    assert.ok(Number.isFinite(size.engineShareRssMb));
    assert.ok(Number.isFinite(size.engineShareHeapMb), 'children run with --expose-gc');
    assert.match(formatBenchTable(report), /\| 100 +\| 6 +\|/);
  });

  it('--quiet: the engine on a quiet fleet answered by one simulator pass, in child processes', () => {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', CLI, 'bench', '--quiet', '--sizes', '100', '--cycles', '6', '--json'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(run.status, 0, run.stderr);
    const results = JSON.parse(run.stdout) as QuietResult[];
    assert.equal(results.length, 1);
    const r = results[0];
    assert.ok(r !== undefined);
    assert.equal(r.nodes, 100);
    assert.equal(r.engineCpuMs.n, 6 - QUIET_WARMUP, 'the warm-up cycles are left out');
    assertFiniteSummary('engineCpuMs', r.engineCpuMs);
    assert.equal(r.misses, 0, 'every query the engine asked was in the pass');
    assert.ok(r.queriesPerCycle.min > 0 && r.queriesPerCycle.max < r.answers.queries);
    assert.ok(r.answers.samples > 0);
    const m = r.memory;
    assert.ok(Number.isFinite(m.engineHeapMb), 'the cycles child runs with --expose-gc');
    assert.ok(Number.isFinite(m.answersHeapMb) && m.answersHeapMb >= 0, 'heap of the answers');
    assert.ok(m.heapBeforeEngineMb > 0 && m.peakRssMb >= m.beforeEngineRssMb);
  });

  it('rejects a cycle count that leaves nothing to measure', () => {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', CLI, 'bench', '--sizes', '100', '--cycles', '3'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--cycles/);
  });
});
