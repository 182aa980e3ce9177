/**
 * Hot reload of priority.conf. A ConfigMap mount replaces the file by swapping the `..data` symlink
 * of its directory, which fs.watch on the file itself misses, so the directory is watched; a poll
 * re-reads the file as well, for file systems where fs.watch says nothing (NFS, some overlays).
 * Both paths call one `check()`, which reloads only when the text changed: a good edit replaces the
 * table in force and calls onChange; a bad edit (or a missing file) calls onError once per distinct
 * text and keeps the last good table.
 */
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import { parsePriorityTable, type PriorityTable } from './priority-table.js';

/** Options of createPriorityWatcher. */
export interface PriorityWatcherOptions {
  readonly path: string;
  /** Parses the file text (default: parsePriorityTable over the catalogue, source = the path). */
  readonly load?: (text: string, source: string) => PriorityTable;
  /** Called with the new table after a good edit. */
  readonly onChange?: (table: PriorityTable) => void;
  /** Called when an edit is rejected; the previous table stays in force. */
  readonly onError?: (err: HealError) => void;
  /** Poll period, ms (default 5000; 0 turns polling off). */
  readonly pollIntervalMs?: number;
}

/** A priority table that follows its file. */
export interface PriorityWatcher {
  /** The table in force. */
  current(): PriorityTable;
  /** Re-reads the file now (the watch and the poll call this); true when a new table took effect. */
  check(): boolean;
  /** Stops watching. */
  close(): void;
}

const DEFAULT_POLL_MS = 5000;
const DEBOUNCE_MS = 50;

/**
 * Loads `path` (a start-up error throws: a controller must not start on a bad table) and keeps the
 * table in step with the file until close().
 */
export function createPriorityWatcher(options: PriorityWatcherOptions): PriorityWatcher {
  const { path } = options;
  const load = options.load ?? ((text, source) => parsePriorityTable(text, { source }));
  let lastText = readText(path);
  let table = load(lastText, path);

  const check = (): boolean => {
    let text: string;
    try {
      text = readText(path);
    } catch (err) {
      const key = `\0missing:${errorMessage(err)}`;
      if (key !== lastText) {
        lastText = key;
        options.onError?.(toHealError(err, path));
      }
      return false;
    }
    if (text === lastText) return false;
    lastText = text;
    try {
      table = load(text, path);
    } catch (err) {
      options.onError?.(toHealError(err, path));
      return false;
    }
    options.onChange?.(table);
    return true;
  };

  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      check();
    }, DEBOUNCE_MS);
    timer.unref();
  };
  const watcher = watchDirectory(path, schedule, options.onError);
  const pollMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;
  const poller = pollMs > 0 ? setInterval(check, pollMs) : undefined;
  poller?.unref();

  return {
    current: () => table,
    check,
    close: () => {
      watcher?.close();
      if (poller !== undefined) clearInterval(poller);
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

/** Reads the file, throwing a PRIORITY_INVALID HealError that names it. */
function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new HealError(
      ErrorCode.PriorityInvalid,
      `${path}: cannot read priority table: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
}

/** Wraps anything thrown by a load into a HealError naming the file. */
function toHealError(err: unknown, path: string): HealError {
  if (err instanceof HealError) return err;
  return new HealError(ErrorCode.PriorityInvalid, `${path}: ${errorMessage(err)}`, { cause: err });
}

/** Watches the directory of `path` for events on the file or the ConfigMap `..data` swap. */
function watchDirectory(
  path: string,
  onEvent: () => void,
  onError: ((err: HealError) => void) | undefined,
): FSWatcher | undefined {
  const name = basename(path);
  try {
    const watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file === null || file === name || file.startsWith('..')) onEvent();
    });
    watcher.on('error', (err) => onError?.(toHealError(err, path)));
    return watcher;
  } catch (err) {
    // No inotify (or too many watches): the poll alone keeps the table fresh.
    onError?.(toHealError(err, path));
    return undefined;
  }
}
