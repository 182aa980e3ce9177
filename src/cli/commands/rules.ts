/**
 * `aegis rules [--out DIR] [--interval DURATION]`: writes the Prometheus recording and alerting
 * rules generated from the catalogue (deploy/prometheus/ holds the committed copies).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Command, CommandUnknownOpts } from '@commander-js/extra-typings';

import { CATALOGUE } from '../../catalogue/index.js';
import { parseDurationMs } from '../../core/duration.js';
import { ErrorCode, HealError, errorMessage } from '../../core/errors.js';
import { generateRules, RULE_FILES } from '../../prom/rules.js';

/** Writes through the command's configured output (tests capture it). */
function write(cmd: CommandUnknownOpts, text: string): void {
  const output = cmd.configureOutput();
  if (output.writeOut === undefined) process.stdout.write(text);
  else output.writeOut(text);
}

/** Writes both rule files into `dir` (created if missing); returns the paths and skipped entries. */
export function writeRuleFiles(
  dir: string,
  intervalMs?: number,
  tiered = false,
): { paths: string[]; skipped: readonly { name: string; reason: string }[] } {
  const rules = generateRules(CATALOGUE, {
    ...(intervalMs === undefined ? {} : { intervalMs }),
    ...(tiered ? { tiered: {} } : {}),
  });
  const files: [string, string][] = [
    [join(dir, RULE_FILES.recording), rules.recording],
    [join(dir, RULE_FILES.alerting), rules.alerting],
  ];
  try {
    mkdirSync(dir, { recursive: true });
    for (const [path, text] of files) writeFileSync(path, text);
  } catch (err) {
    throw new HealError(
      ErrorCode.InvalidInput,
      `${dir}: cannot write rule files: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
  return { paths: files.map(([path]) => path), skipped: rules.skipped };
}

/** Registers `aegis rules`. */
export function registerRulesCommand(program: Command): void {
  program
    .command('rules')
    .description(
      `Write Prometheus rules generated from the catalogue: ${RULE_FILES.recording} ` +
        `(aegis_node_status_condition) and ${RULE_FILES.alerting}`,
    )
    .option('--out <dir>', 'directory to write the two files into', '.')
    .option('--interval <duration>', 'evaluation interval of every rule group (e.g. 30s)')
    .option(
      '--tiered',
      'for inspect.ruleSource recorded: each rule at its own period (--interval the fastest, ' +
        'default 5s; slow rules up to 30s), with heartbeats',
    )
    .action((options, cmd) => {
      const intervalMs =
        options.interval === undefined
          ? undefined
          : parseDurationMs(options.interval, '--interval');
      const { paths, skipped } = writeRuleFiles(options.out, intervalMs, options.tiered === true);
      for (const path of paths) write(cmd, `wrote ${path}\n`);
      for (const s of skipped) write(cmd, `skipped ${s.name}: ${s.reason}\n`);
    });
}
