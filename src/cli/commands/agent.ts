/**
 * `aegis agent`: the node-side checks (DaemonSet). The options are the agent's own
 * (src/agent/options-parse.ts, `aegis agent --help`); commander passes them through unparsed so
 * the lean entry point (src/agent/main.ts) and this command accept exactly the same flags.
 */
import type { Command } from '@commander-js/extra-typings';

/** Registers `aegis agent`. */
export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('Run the node agent: host checks as aegis_nodecheck_* metrics and Node conditions')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]', 'agent options (aegis agent --help)')
    .action(async (args: string[]) => {
      // Loaded on use: the other commands never pay for the agent's modules.
      const { runAgentCommand } = await import('../../agent/run-agent.js');
      await runAgentCommand(args, process.env, {
        out: (t) => process.stdout.write(t),
        err: (t) => process.stderr.write(t),
      });
    });
}
