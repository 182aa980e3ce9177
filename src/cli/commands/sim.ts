/**
 * `aegis sim --scenario FILE [--json] [--quiet]`: runs a scenario on the simulated fleet with the
 * real engine. Without --json it prints live progress and a summary; with --json one report on
 * stdout. Exits non-zero when an expectation fails. `aegis sim generate` draws a scenario at the
 * fault rates of the Llama 3 training run.
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from '@commander-js/extra-typings';
import { ErrorCode, HealError, errorMessage } from '../../core/errors.js';
import { generateScenario } from '../../scenario/generator.js';
import { loadScenarioFile } from '../../scenario/load.js';
import { createLiveReporter, writeSummary } from '../../scenario/report.js';
import { runScenario, type RunOptions, type ScenarioReport } from '../../scenario/runner.js';

/** Thrown when a scenario's expectations fail: exit status 1, the summary says which. */
export class ExpectationsFailed extends Error {
  override readonly name = 'ExpectationsFailed';

  constructor(report: ScenarioReport) {
    const failed = report.expectations.filter((e) => !e.passed).length;
    super(
      `scenario "${report.scenario.name}": ${failed} of ${report.expectations.length} expectations failed`,
    );
    // The summary already explains the failure; a stack trace would only hide it.
    delete this.stack;
  }
}

/** Runs a scenario file with live output (or JSON); throws ExpectationsFailed when one fails. */
export async function runScenarioCommand(
  file: string,
  opts: { json?: boolean; quiet?: boolean },
  write: (text: string) => void,
  /** More run options (the demo's console hooks). */
  more: Pick<RunOptions, 'onWorld' | 'onSnapshot' | 'afterCycle'> = {},
): Promise<ScenarioReport> {
  const scenario = await loadScenarioFile(file);
  const ac = new AbortController();
  const stop = (): void => {
    ac.abort(new Error('interrupted'));
  };
  process.once('SIGINT', stop);
  let report: ScenarioReport;
  try {
    report = await runScenario(scenario, {
      ...more,
      signal: ac.signal,
      ...(opts.json === true
        ? {}
        : { onEvent: createLiveReporter(write, { quiet: opts.quiet === true }) }),
    });
  } finally {
    process.off('SIGINT', stop);
  }
  if (opts.json === true) write(`${JSON.stringify(report, null, 2)}\n`);
  else writeSummary(report, write);
  if (!report.passed) throw new ExpectationsFailed(report);
  return report;
}

/** The command's stdout writer (tests capture it through configureOutput). */
export function stdoutOf(cmd: {
  configureOutput(): { writeOut?: (s: string) => void };
}): (text: string) => void {
  const out = cmd.configureOutput().writeOut;
  return out ?? ((text) => process.stdout.write(text));
}

function positiveInt(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new HealError(
        ErrorCode.InvalidInput,
        `--${name}: "${v}" is not a positive whole number`,
      );
    return n;
  };
}

/** Registers `aegis sim` and `aegis sim generate`. */
export function registerSimCommand(program: Command): void {
  const sim = program
    .command('sim')
    .description(
      'Run a scenario on the simulated fleet with the real engine (see docs/scenarios.md)',
    )
    .option('--scenario <file>', 'scenario YAML (see scenarios/)')
    .option('--json', 'print one JSON report on stdout instead of live progress')
    .option('--quiet', 'no live progress, only the summary')
    .action(async (options, cmd) => {
      if (options.scenario === undefined) {
        throw new HealError(
          ErrorCode.InvalidInput,
          'aegis sim needs --scenario FILE (or: aegis sim generate --help)',
        );
      }
      await runScenarioCommand(options.scenario, options, stdoutOf(cmd));
    });
  sim
    .command('generate')
    .description(
      'Draw a scenario at the Llama 3 fault rates (419 interruptions / 54 days / 16,384 GPUs)',
    )
    .requiredOption('--nodes <n>', 'fleet size', positiveInt('nodes'))
    .requiredOption('--days <d>', 'virtual days to cover (fractions allowed)', (v) => {
      const d = Number(v);
      if (!(d > 0 && d <= 60))
        throw new HealError(ErrorCode.InvalidInput, `--days: "${v}" must be a number in (0, 60]`);
      return d;
    })
    .option('--seed <s>', 'random seed', positiveInt('seed'), 1)
    .option('--gpus-per-node <g>', 'GPUs per node', positiveInt('gpus-per-node'), 8)
    .option('--name <name>', 'scenario name (default: from the parameters)')
    .option('--out <file>', 'write the scenario here instead of stdout')
    .action(async (options, cmd) => {
      const text = generateScenario({
        nodes: options.nodes,
        days: options.days,
        seed: options.seed,
        gpusPerNode: options.gpusPerNode,
        ...(options.name === undefined ? {} : { name: options.name }),
      });
      if (options.out === undefined) {
        stdoutOf(cmd)(text);
        return;
      }
      try {
        await writeFile(options.out, text);
      } catch (err) {
        throw new HealError(ErrorCode.InvalidInput, `--out ${options.out}: ${errorMessage(err)}`, {
          cause: err,
        });
      }
    });
}
