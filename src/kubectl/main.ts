/**
 * `kubectl aegis`: the kubectl plugin (bin/kubectl-aegis.js runs it; kubectl finds any executable
 * named kubectl-aegis on the PATH). Exit status: 0 success, 1 error (refused, forbidden, conflict,
 * not found, unreachable), 2 usage (bad flag, bad node name, unknown context).
 */
import { Command, CommanderError } from '@commander-js/extra-typings';
import { ErrorCode, errorMessage, isHealError } from '../core/errors.js';
import { addOperatorCommands, PROCESS_DEPS, type OperatorDeps } from './commands.js';

/** Where the plugin writes (tests capture it). */
export interface PluginOutput {
  readonly writeOut: (text: string) => void;
  readonly writeErr: (text: string) => void;
}

const PROCESS_OUTPUT: PluginOutput = {
  writeOut: (text) => process.stdout.write(text),
  writeErr: (text) => process.stderr.write(text),
};

/** The plugin's program. */
export function buildPlugin(output: PluginOutput, deps: OperatorDeps = PROCESS_DEPS): Command {
  const program = new Command()
    .name('kubectl aegis')
    .description(
      'Operate Aegis, the self-healing controller for GPU clusters, with your own kubeconfig and RBAC',
    )
    .configureOutput({ writeOut: output.writeOut, writeErr: output.writeErr })
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  addOperatorCommands(program, deps);
  return program;
}

/** Runs the plugin on `argv` (process.argv form) and returns the exit status; never exits. */
export async function runPlugin(
  argv: readonly string[],
  output: PluginOutput = PROCESS_OUTPUT,
  deps: OperatorDeps = PROCESS_DEPS,
): Promise<number> {
  try {
    await buildPlugin(output, deps).parseAsync([...argv]);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    output.writeErr(`error: ${errorMessage(err)}\n`);
    if (isHealError(err, ErrorCode.InvalidInput)) return 2;
    if (!isHealError(err) && err instanceof Error && err.stack !== undefined) {
      output.writeErr(`${err.stack}\n`);
    }
    return 1;
  }
}
