/**
 * `aegis bench [--sizes 1000,10000,50000] [--cycles N] [--json] [--no-baseline]` (`npm run bench`):
 * the real engine on the simulated fleet, one child process per size (see docs/performance.md).
 * `--one SIZE` (internal) runs a single size in this process and prints its JSON.
 */
import { Option, type Command } from '@commander-js/extra-typings';
import { runBenchSuite } from '../../bench/bench-suite.js';
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
    .addOption(
      new Option('--one <nodes>', 'run one size here').argParser(wholeNumber('one', 1)).hideHelp(),
    )
    .addOption(new Option('--no-engine', 'with --one: simulator only').hideHelp())
    .action(async (options, cmd) => {
      const write = stdoutOf(cmd);
      const progress = (line: string): void => {
        process.stderr.write(`${line}\n`);
      };
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
