/**
 * Runs the agent from its command line until SIGTERM/SIGINT: parses the options, builds the real
 * Kubernetes port (unless conditions are off), starts, and on a signal closes everything. Shared by
 * the lean entry point (main.ts, what the DaemonSet runs) and `aegis agent` in the full CLI.
 */
import { parseAgentInvocation } from './options-parse.js';
import { startAgent } from './agent.js';
import { createKubeNodePort, inClusterEndpoint } from './kube-node-port.js';
import type { AgentOptions } from './options.js';
import type { NodePort } from './node-port.js';

/** Output streams (tests capture them). */
export interface AgentIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** Parses `argv`, runs until a termination signal; resolves when the agent has stopped. */
export async function runAgentCommand(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: AgentIo,
): Promise<void> {
  const invocation = await parseAgentInvocation(argv, env);
  if (invocation.kind === 'help') {
    io.out(invocation.text);
    return;
  }
  const options = invocation.options;
  const agent = await startAgent(options, {
    ...nodePortOf(options, env),
    log: (line) => {
      io.err(`aegis-agent: ${line}\n`);
    },
  });
  io.err(
    `aegis-agent: node ${options.nodeName}, host root ${options.hostRoot}, metrics on ${agent.url}/metrics\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await agent.close();
}

function nodePortOf(options: AgentOptions, env: NodeJS.ProcessEnv): { nodePort?: NodePort } {
  if (!options.conditions) return {};
  const endpoint =
    options.kubeServer === undefined
      ? inClusterEndpoint(env)
      : {
          server: options.kubeServer,
          tokenFile: options.kubeTokenFile ?? '',
          ...(options.kubeCaFile === undefined ? {} : { caFile: options.kubeCaFile }),
        };
  return { nodePort: createKubeNodePort(endpoint) };
}
