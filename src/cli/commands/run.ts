/** `aegis run`: the daemon. */
import type { Command } from '@commander-js/extra-typings';
import { CATALOGUE } from '../../catalogue/index.js';
import { loadConfig } from '../../config/load.js';
import { errorMessage } from '../../core/errors.js';
import { createJsonLogger } from '../../engine/logger.js';
import type { PriorityOf } from '../../engine/scheduler.js';
import { runDaemon } from '../../main.js';
import { defaultPriorityTable, type PriorityTable } from '../../priority/priority-table.js';
import { createPriorityWatcher } from '../../priority/priority-watcher.js';

/** Priority lookup over a table: unknown conditions are CanIgnore (999). */
export function priorityLookup(table: PriorityTable): PriorityOf {
  return (condition) => table.get(condition)?.priority ?? 999;
}

/** Registers `aegis run`. */
export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('Run the self-healing daemon against the cluster and Prometheus')
    .option('--config <file>', 'config YAML (see deploy/aegis/config.yaml)')
    .option('--dry-run', 'compute and log every step without writing')
    .option('--no-dry-run', 'act (overrides the config)')
    .option('--prometheus-url <url>', 'Prometheus base URL')
    .action(async (options) => {
      const overrides: Record<string, unknown> = {};
      if (options.dryRun !== undefined) overrides['safety.dryRun'] = options.dryRun;
      if (options.prometheusUrl !== undefined) overrides['prometheus.url'] = options.prometheusUrl;
      const config = loadConfig({
        ...(options.config === undefined ? {} : { file: options.config }),
        env: process.env,
        overrides,
      });
      const log = createJsonLogger();
      let table = defaultPriorityTable(CATALOGUE);
      const watcher =
        config.priorityFile === undefined
          ? { current: () => table, close: () => undefined }
          : createPriorityWatcher({
              path: config.priorityFile,
              onChange: (t) => {
                table = t;
                log.info('priority table reloaded', { file: config.priorityFile });
              },
              onError: (err) => {
                log.warn('priority table edit rejected; the last good table stays in force', {
                  err: errorMessage(err),
                });
              },
            });
      table = watcher.current();
      const ac = new AbortController();
      const stop = (): void => {
        ac.abort(new Error('signal'));
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      await runDaemon({
        config,
        priority: {
          current: () => priorityLookup(watcher.current()),
          close: () => {
            watcher.close();
          },
        },
        log,
        signal: ac.signal,
      });
    });
}
