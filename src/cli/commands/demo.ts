/**
 * `aegis demo` (`npm start`): a realistic day on a 64-node simulated GPU fleet (scenarios/demo.yaml)
 * run by the real engine, with live progress and a closing summary of what happened and how fast.
 *
 * In a terminal it also serves the operator console (docs/console.md) and prints its URL; after
 * the simulated day the console keeps serving the final state until Ctrl-C. `--live` paces the
 * simulation so the fleet can be watched healing in the browser. Without a terminal (CI) it runs
 * and exits as before, unless `--console` asks for the console.
 */
import { fileURLToPath } from 'node:url';
import { Option, type Command } from '@commander-js/extra-typings';
import { demoAccess } from '../../console/access.js';
import { startConsole, type ConsoleHandle } from '../../console/server.js';
import { simBackend } from '../../console/sim-backend.js';
import { ErrorCode, HealError } from '../../core/errors.js';
import { loadScenarioFile } from '../../scenario/load.js';
import type { ObservedCluster } from '../../scenario/observe.js';
import type { SimWorld } from '../../sim/sim-world.js';
import { runScenarioCommand, stdoutOf } from './sim.js';

/** The built-in demo scenario shipped with the package. */
export const DEMO_SCENARIO = fileURLToPath(
  new URL('../../../scenarios/demo.yaml', import.meta.url),
);
/** The console's port in the demo (any free port when taken). */
export const DEMO_CONSOLE_PORT = 9401;
/** `--live`: virtual seconds per wall-clock second. */
const DEFAULT_LIVE_SPEED = 120;

/** Registers `aegis demo`. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'Show the self-healing loop on a simulated 64-node fleet through a bad day (npm start)',
    )
    .option('--quiet', 'no live progress, only the summary')
    .option('--json', 'print the JSON report instead')
    .option(
      '--live [speed]',
      `pace the simulation to watch it in the console: virtual seconds per second (default ${DEFAULT_LIVE_SPEED})`,
    )
    .option('--console', 'serve the operator console even when stdout is not a terminal')
    .option('--no-console', 'do not serve the operator console')
    .addOption(
      new Option('--console-port <port>', `console port (default ${DEMO_CONSOLE_PORT})`).argParser(
        (v) => {
          const n = Number(v);
          if (!Number.isInteger(n) || n < 0 || n > 65535)
            throw new HealError(ErrorCode.InvalidInput, `--console-port: "${v}" is not a port`);
          return n;
        },
      ),
    )
    .action(async (options, cmd) => {
      const write = stdoutOf(cmd);
      const speed =
        options.live === undefined
          ? undefined
          : options.live === true
            ? DEFAULT_LIVE_SPEED
            : Number(options.live);
      if (speed !== undefined && !(speed > 0 && Number.isFinite(speed)))
        throw new HealError(
          ErrorCode.InvalidInput,
          `--live: "${String(options.live)}" is not a speed`,
        );
      const asked = cmd.getOptionValueSource('console') === 'cli';
      const serve = options.json !== true && options.console && (asked || process.stdout.isTTY);
      if (!serve) {
        await runScenarioCommand(DEMO_SCENARIO, options, write);
        return;
      }
      const scenario = await loadScenarioFile(DEMO_SCENARIO);
      let sim: { world: SimWorld; observed: ObservedCluster } | undefined;
      const { access, tokens } = demoAccess();
      const backend = simBackend({
        nodes: () => (sim === undefined ? [] : [...sim.observed.views()].map((v) => v.info)),
        writer: {
          patchNodeAnnotations: (name, annotations, rv, signal) => {
            if (sim === undefined) throw new HealError(ErrorCode.K8sUnavailable, 'not started');
            return sim.observed.patchNodeAnnotations(name, annotations, rv, signal);
          },
        },
        setControl: (data) => sim?.world.cluster.setControl(data),
        config: scenario.config,
        leaseHolder: () => sim?.world.cluster.leaseHolder(scenario.config.leaderElection.leaseName),
        where: { context: 'demo', server: 'simulated API server (scenarios/demo.yaml)' },
      });
      const start = (port: number): Promise<ConsoleHandle> =>
        startConsole({
          backend,
          access,
          port,
          host: '127.0.0.1',
          banner:
            'Demo: a simulated fleet, not a cluster. Its login tokens are made for this run only.',
        });
      const port = options.consolePort ?? DEMO_CONSOLE_PORT;
      const console_ = await start(port).catch((err: unknown) => {
        if ((err as { code?: string }).code === 'EADDRINUSE' && options.consolePort === undefined)
          return start(0);
        throw err;
      });
      write(
        `Operator console: ${console_.url}/#token=${tokens.operator}\n` +
          `  (read only:     ${console_.url}/#token=${tokens.viewer})\n\n`,
      );
      let failed: Error | undefined;
      try {
        await runScenarioCommand(DEMO_SCENARIO, options, write, {
          onWorld: (world, observed) => {
            sim = { world, observed };
          },
          onSnapshot: (s) => {
            console_.onSnapshot(s);
          },
          ...(speed === undefined
            ? {}
            : {
                afterCycle: () =>
                  new Promise<void>((resolve) => {
                    setTimeout(resolve, (scenario.intervalMs / speed) | 0);
                  }),
              }),
        });
      } catch (err) {
        failed = err instanceof Error ? err : new Error(String(err));
      }
      await console_.refresh();
      write(
        `\nThe console keeps serving the final state: ${console_.url}/#token=${tokens.operator}\nPress Ctrl-C to stop.\n`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => {
          resolve();
        });
      });
      await console_.close();
      if (failed !== undefined) throw failed;
    });
}
