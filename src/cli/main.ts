/**
 * The `aegis` command line. The only file (with src/main.ts) that ends the process: every command
 * throws, and runCli maps what it throws to an exit code: 2 for bad input or configuration (a
 * HealError of those codes, or a usage error), 1 for anything else. bin/aegis.js imports this file.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Command, CommanderError } from '@commander-js/extra-typings';

import { ErrorCode, errorMessage, isHealError, type ErrorCode as Code } from '../core/errors.js';
import { registerAgentCommand } from './commands/agent.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerConditionsCommand } from './commands/conditions.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerInspectCommand } from './commands/inspect.js';
import { registerPriorityCommand } from './commands/priority.js';
import { registerReplayCommand } from './commands/replay.js';
import { registerRulesCommand } from './commands/rules.js';
import { registerRunCommand } from './commands/run.js';
import { registerSimCommand } from './commands/sim.js';
import { registerCtlCommand } from '../kubectl/commands.js';

/** Adds one subcommand (with its options and action) to the program. */
export type CommandRegistrar = (program: Command) => void;

// ───────────────────────────────────────────────────────────────────────────────────────────────
// COMMANDS: every `aegis` subcommand, one registrar per file under ./commands/. To add one (run,
// sim, demo, rules, bench, …), write ./commands/<name>.ts exporting `register<Name>Command` and
// append it here. The order is the order of `aegis --help`.
// ───────────────────────────────────────────────────────────────────────────────────────────────
export const COMMANDS: readonly CommandRegistrar[] = [
  registerRunCommand,
  registerInspectCommand,
  registerConditionsCommand,
  registerPriorityCommand,
  registerRulesCommand,
  registerSimCommand,
  registerReplayCommand,
  registerDemoCommand,
  registerBenchCommand,
  registerAgentCommand,
  registerCtlCommand,
];

/** Error codes that mean "fix your input or configuration": exit status 2. */
const INPUT_ERRORS: ReadonlySet<Code> = new Set<Code>([
  ErrorCode.ConfigInvalid,
  ErrorCode.PriorityInvalid,
  ErrorCode.CatalogueInvalid,
  ErrorCode.UnknownCondition,
  ErrorCode.ScenarioInvalid,
  ErrorCode.InvalidInput,
]);

/** Where the program writes (tests capture it; the default is the process streams). */
export interface CliOutput {
  readonly writeOut: (text: string) => void;
  readonly writeErr: (text: string) => void;
}

const PROCESS_OUTPUT: CliOutput = {
  writeOut: (text) => process.stdout.write(text),
  writeErr: (text) => process.stderr.write(text),
};

/** The program with every registered command; output goes to `output`. */
export function buildProgram(output: CliOutput = PROCESS_OUTPUT): Command {
  const program = new Command()
    .name('aegis')
    .description('Self-healing controller for GPU Kubernetes clusters')
    .configureOutput({ writeOut: output.writeOut, writeErr: output.writeErr })
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  for (const register of COMMANDS) register(program);
  return program;
}

/** Runs the CLI on `argv` (process.argv form) and returns the exit status; never exits. */
export async function runCli(
  argv: readonly string[],
  output: CliOutput = PROCESS_OUTPUT,
): Promise<number> {
  try {
    await buildProgram(output).parseAsync([...argv]);
    return 0;
  } catch (err) {
    return exitStatusOf(err, output);
  }
}

/** What a run of the CLI printed, and its exit status. */
export interface CliRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs `aegis ...args` in this process, its stdout and stderr kept instead of printed. */
export async function runCliCaptured(args: readonly string[]): Promise<CliRun> {
  let out = '';
  let err = '';
  const code = await runCli(['node', 'aegis', ...args], {
    writeOut: (t) => {
      out += t;
    },
    writeErr: (t) => {
      err += t;
    },
  });
  return { code, out, err };
}

/** Maps a thrown value to an exit status, printing one line for errors commander did not print. */
function exitStatusOf(err: unknown, output: CliOutput): number {
  if (err instanceof CommanderError) {
    // Commander already printed help, the version or its usage message.
    return err.exitCode === 0 ? 0 : 2;
  }
  output.writeErr(`aegis: ${errorMessage(err)}\n`);
  if (isHealError(err) && INPUT_ERRORS.has(err.code)) return 2;
  if (!isHealError(err) && err instanceof Error && err.stack !== undefined) {
    output.writeErr(`${err.stack}\n`);
  }
  return 1;
}

/** True when this module is the program being run (bin/aegis.js or `node src/cli/main.ts`). */
function isCliEntry(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  let real: string;
  try {
    real = realpathSync(entry);
  } catch {
    return false; // not a file path (e.g. `node -e`): not the CLI
  }
  const isBin = basename(dirname(real)) === 'bin' && /^aegis(\.js)?$/.test(basename(real));
  return isBin || real === fileURLToPath(import.meta.url);
}

if (isCliEntry()) {
  process.on('uncaughtException', (err) => {
    process.stderr.write(`aegis: uncaught: ${errorMessage(err)}\n`);
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(`aegis: unhandled rejection: ${errorMessage(reason)}\n`);
    process.exit(1);
  });
  // `aegis conditions --json | head` closes the pipe early: that is success, not a crash.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    process.exit(err.code === 'EPIPE' ? 0 : 1);
  });
  process.exitCode = await runCli(process.argv);
}
