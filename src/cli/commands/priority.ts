/** `aegis priority check FILE` and `aegis priority print [--file FILE]`. */
import { readFileSync } from 'node:fs';

import type { Command, CommandUnknownOpts } from '@commander-js/extra-typings';

import { ErrorCode, HealError, errorMessage } from '../../core/errors.js';
import {
  defaultPriorityTable,
  formatPriorityTable,
  parsePriorityTable,
  type PriorityTable,
} from '../../priority/priority-table.js';

/** Reads and parses a priority file; every failure is a PRIORITY_INVALID HealError naming it. */
export function loadPriorityFile(path: string): PriorityTable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new HealError(ErrorCode.PriorityInvalid, `${path}: cannot read: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  return parsePriorityTable(text, { source: path });
}

/** Rows a file sets explicitly (the rest are catalogue defaults). */
export function explicitEntries(table: PriorityTable): number {
  return [...table.values()].filter((row) => row.source !== 'catalogue').length;
}

/** Writes through the command's configured output (tests capture it). */
function write(cmd: CommandUnknownOpts, text: string): void {
  const output = cmd.configureOutput();
  if (output.writeOut === undefined) process.stdout.write(text);
  else output.writeOut(text);
}

/** Registers `aegis priority`. */
export function registerPriorityCommand(program: Command): void {
  const priority = program.command('priority').description('Check or print the priority table');
  priority
    .command('check')
    .description('Validate a priority.conf; exit 2 with the problems when it is invalid')
    .argument('<file>', 'priority.conf to check')
    .action((file, _options, cmd) => {
      const table = loadPriorityFile(file);
      write(cmd, `ok: ${explicitEntries(table)} entries (${file})\n`);
    });
  priority
    .command('print')
    .description('Print the priority table in force: the catalogue defaults, merged with --file')
    .option('--file <file>', 'priority.conf to merge over the defaults')
    .action((options, cmd) => {
      const table =
        options.file === undefined ? defaultPriorityTable() : loadPriorityFile(options.file);
      write(cmd, formatPriorityTable(table));
    });
}
