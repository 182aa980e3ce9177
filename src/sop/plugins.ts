import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';

/** A loaded plug-in module's SOP export, or the reason it could not be loaded. */
export interface LoadedPlugin {
  readonly origin: string;
  readonly sop: unknown;
}

const PLUGIN_FILE = /\.(m?js|ts)$/;

/**
 * Imports every plug-in file in `dir` (`*.js`, `*.mjs`, `*.ts`). A module exports `sop` (one
 * SOP) or `sops` (an array). A file that fails to import is reported in `problems` and skipped;
 * nothing here throws for a broken plug-in. Modules are imported with a version query so a
 * changed file is really re-imported on reload.
 */
export async function loadPlugins(
  dir: string,
): Promise<{ plugins: LoadedPlugin[]; problems: string[] }> {
  const plugins: LoadedPlugin[] = [];
  const problems: string[] = [];
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => PLUGIN_FILE.test(f) && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
      .sort();
  } catch (err) {
    return { plugins, problems: [`${dir}: cannot read plug-in directory: ${errorMessage(err)}`] };
  }
  if (files.some((f) => f.endsWith('.ts'))) await typeScriptLoader();
  for (const f of files) {
    const path = resolve(join(dir, f));
    try {
      const version = statSync(path).mtimeMs;
      const mod = (await import(`${pathToFileURL(path).href}?v=${version}`)) as {
        sop?: unknown;
        sops?: unknown;
      };
      const list = mod.sops !== undefined ? mod.sops : mod.sop;
      if (list === undefined)
        throw new HealError(ErrorCode.PluginLoadFailed, 'exports neither `sop` nor `sops`');
      for (const sop of Array.isArray(list) ? (list as unknown[]) : [list])
        plugins.push({ origin: path, sop });
    } catch (err) {
      problems.push(`${path}: plug-in failed to load: ${errorMessage(err)}`);
    }
  }
  return { plugins, problems };
}

let tsLoader: Promise<void> | undefined;

/**
 * Makes `.ts` plug-ins importable: the compiled daemon runs without tsx (it costs ~85 MB of
 * memory), so tsx's loader is registered only once a TypeScript plug-in is there. Under tsx
 * (bin/aegis.js, the tests) registering again is harmless.
 */
function typeScriptLoader(): Promise<void> {
  tsLoader ??= import('tsx/esm/api').then(({ register }) => {
    register();
  });
  return tsLoader;
}

/** Calls `onChange` (debounced) when files in `dir` change. Returns a closer. */
export function watchPluginDir(
  dir: string,
  onChange: () => void,
  debounceMs = 200,
): { close(): void } {
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    });
  } catch {
    watcher = undefined;
  }
  return {
    close: () => {
      if (timer !== undefined) clearTimeout(timer);
      watcher?.close();
    },
  };
}
