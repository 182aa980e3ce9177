/**
 * `aegis bench [--sizes 1000,10000,50000] [--cycles N] [--json] [--no-baseline]` (`npm run bench`):
 * the real engine on the simulated fleet, one child process per size (see docs/performance.md).
 * `--one SIZE` (internal) runs a single size in this process and prints its JSON.
 */
import { Option, type Command } from '@commander-js/extra-typings';
import { runBenchSuite } from '../../bench/bench-suite.js';
import {
  QUIET_WARMUP,
  runQuietBench,
  runQuietCycles,
  writeAnswers,
} from '../../bench/quiet-bench.js';
import { formatBenchTable } from '../../bench/format.js';
import { DIRECT_CYCLES, WARMUP_CYCLES, runSizeBench } from '../../bench/size-bench.js';
import { ErrorCode, HealError } from '../../core/errors.js';
import { stdoutOf } from './sim.js';

/** Fewest cycles that leave a measured cycle after the warm-up and the direct cycles. */
const MIN_CYCLES = WARMUP_CYCLES + DIRECT_CYCLES + 2;

function wholeNumber(name: string, min: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      throw new HealError(
        ErrorCode.InvalidInput,
        `--${name}: "${v}" is not a whole number >= ${min}`,
      );
    }
    return n;
  };
}

function sizeList(v: string): number[] {
  return v.split(',').map((s) => wholeNumber('sizes', 1)(s.trim()));
}

/** Registers `aegis bench`. */
export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('Benchmark the engine on the simulated fleet (cycle CPU, queries, latency, RSS)')
    .option('--sizes <list>', 'fleet sizes, comma-separated', sizeList, [1000, 10_000, 50_000])
    .option(
      '--cycles <n>',
      'inspection cycles per size (default 40; fewer for large sizes)',
      wholeNumber('cycles', MIN_CYCLES),
    )
    .option('--json', 'print the report as JSON instead of a table')
    .option('--no-baseline', 'skip the engine-less runs (no estimate of the engine memory share)')
    .option(
      '--quiet',
      'the engine on a quiet fleet instead: one simulator pass answers every cycle (CPU, heap, RSS; 23 cycles unless --cycles)',
    )
    .addOption(
      new Option('--one <nodes>', 'run one size here').argParser(wholeNumber('one', 1)).hideHelp(),
    )
    .addOption(new Option('--no-engine', 'with --one: simulator only').hideHelp())
    .addOption(
      new Option('--answers-for <nodes>', 'write the answers of a quiet fleet')
        .argParser(wholeNumber('answers-for', 1))
        .hideHelp(),
    )
    .addOption(new Option('--out <file>', 'with --answers-for: the JSON file').hideHelp())
    .addOption(
      new Option(
        '--answers-file <file>',
        'with --quiet: answers written by --answers-for',
      ).hideHelp(),
    )
    .action(async (options, cmd) => {
      const write = stdoutOf(cmd);
      const progress = (line: string): void => {
        process.stderr.write(`${line}\n`);
      };
      if (options.answersFor !== undefined) {
        if (options.out === undefined) {
          throw new HealError(ErrorCode.InvalidInput, '--answers-for needs --out FILE');
        }
        writeAnswers(options.answersFor, options.out);
        return;
      }
      if (options.quiet === true && options.one === undefined) {
        const results = [];
        for (const nodes of options.sizes) {
          results.push(
            await runQuietBench({
              nodes,
              cycles: options.cycles ?? QUIET_WARMUP + 20,
              execArgv: process.execArgv,
              entry: process.argv[1] ?? '',
              ...(options.answersFile === undefined ? {} : { answersFile: options.answersFile }),
              onProgress: progress,
            }),
          );
        }
        write(
          options.json === true
            ? `${JSON.stringify(results, null, 2)}\n`
            : results.map(formatQuietLine).join(''),
        );
        return;
      }
      if (options.one !== undefined && options.quiet === true) {
        if (options.answersFile === undefined) {
          throw new HealError(
            ErrorCode.InvalidInput,
            '--one with --quiet needs --answers-file FILE',
          );
        }
        const result = await runQuietCycles({
          nodes: options.one,
          cycles: options.cycles ?? QUIET_WARMUP + 20,
          answersFile: options.answersFile,
          onProgress: progress,
        });
        write(`${JSON.stringify(result)}\n`);
        return;
      }
      if (options.one !== undefined) {
        const nodes = options.one;
        const cycles = options.cycles ?? 40;
        const result = await runSizeBench({
          nodes,
          cycles,
          engine: options.engine,
          onCycle: (i, s) => {
            progress(
              `[${nodes} nodes${options.engine ? '' : ', no engine'}] cycle ${i + 1}/${cycles}: ` +
                (s.direct
                  ? `simulator answering inside the cycle: CycleReport.engineMs ${s.reportEngineMs.toFixed(1)} ms, inspectMs ${s.reportInspectMs.toFixed(0)} ms`
                  : `engine ${s.engineCpuMs.toFixed(1)} ms CPU, metrics source ${(s.sourceCpuMs / 1000).toFixed(1)} s`) +
                `, started ${s.started}, held ${s.held}`,
            );
          },
        });
        write(`${JSON.stringify(result)}\n`);
        return;
      }
      const report = await runBenchSuite({
        sizes: options.sizes,
        ...(options.cycles === undefined ? {} : { cycles: options.cycles }),
        baseline: options.baseline,
        execArgv: process.execArgv,
        entry: process.argv[1] ?? '',
        onProgress: progress,
      });
      write(
        options.json === true ? `${JSON.stringify(report, null, 2)}\n` : formatBenchTable(report),
      );
    });
}

/** One line per size of `aegis bench --quiet`. */
function formatQuietLine(r: Awaited<ReturnType<typeof runQuietBench>>): string {
  const m = r.memory;
  return (
    `${r.nodes} nodes, quiet: engine CPU per cycle p50 ${r.engineCpuMs.p50} ms, ` +
    `p99 ${r.engineCpuMs.p99} ms (${r.engineCpuMs.n} cycles); queries per cycle ` +
    `${r.queriesPerCycle.mean} (${r.queriesPerCycle.min}–${r.queriesPerCycle.max}); ` +
    `engine heap ${m.engineHeapMb} MB (+ ${m.answersHeapMb} MB of a cycle's answers); peak RSS ${m.peakRssMb} MB (world and answers ` +
    `${m.beforeEngineRssMb} MB before the engine); load ${r.load[0].toFixed(1)} → ` +
    `${r.load[1].toFixed(1)}; ${r.wallSeconds} s\n`
  );
}
