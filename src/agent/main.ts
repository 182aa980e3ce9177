/**
 * The agent's own entry point, what the DaemonSet runs: `node dist/agent/main.js [options]`
 * (same image as the controller). It loads only the agent's modules; `node dist/cli/main.js agent`
 * runs the same code but loads the whole CLI first (~140 MB of RSS instead of ~50 MB).
 * Exit status: 0 after SIGTERM/SIGINT, 2 for bad options, 1 for anything else.
 */
import { ErrorCode, errorMessage, isHealError } from '../core/errors.js';
import { runAgentCommand } from './run-agent.js';

process.on('uncaughtException', (err) => {
  process.stderr.write(`aegis-agent: uncaught: ${errorMessage(err)}\n`);
  process.exit(1);
});
process.on('unhandledRejection', (reason) => {
  process.stderr.write(`aegis-agent: unhandled rejection: ${errorMessage(reason)}\n`);
  process.exit(1);
});

try {
  await runAgentCommand(process.argv.slice(2), process.env, {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
  });
} catch (err) {
  process.stderr.write(`aegis-agent: ${errorMessage(err)}\n`);
  process.exitCode = isHealError(err, ErrorCode.ConfigInvalid) ? 2 : 1;
}
