/**
 * `aegis demo` (`npm start`): a realistic day on a 64-node simulated GPU fleet (scenarios/demo.yaml)
 * run by the real engine, with live progress and a closing summary of what happened and how fast.
 */
import { fileURLToPath } from 'node:url';
import type { Command } from '@commander-js/extra-typings';
import { runScenarioCommand, stdoutOf } from './sim.js';

/** The built-in demo scenario shipped with the package. */
export const DEMO_SCENARIO = fileURLToPath(
  new URL('../../../scenarios/demo.yaml', import.meta.url),
);

/** Registers `aegis demo`. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'Show the self-healing loop on a simulated 64-node fleet through a bad day (npm start)',
    )
    .option('--quiet', 'no live progress, only the summary')
    .option('--json', 'print the JSON report instead')
    .action(async (options, cmd) => {
      await runScenarioCommand(DEMO_SCENARIO, options, stdoutOf(cmd));
    });
}
