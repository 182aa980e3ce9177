import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  watch,
  type FSWatcher,
  type Stats,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';

/** A loaded plug-in module's SOP export, or the reason it could not be loaded. */
export interface LoadedPlugin {
  readonly origin: string;
  readonly sop: unknown;
}

/** Options of `loadPlugins`. */
export interface LoadPluginsOptions {
  /**
   * Owners the directory, its plug-in files and every directory above them may have: root and
   * the daemon's own uid (default). See `checkPluginPath`.
   */
  readonly trustedUids?: readonly number[];
  /**
   * Most plug-in module versions (distinct file contents) imported over the process's life
   * (`sop.pluginMaxVersions`). Node never unloads an ES module, so each changed plug-in costs
   * one module instance until the process exits; past this bound a changed file is not
   * imported (its last loaded version stays in force) and a restart loads it.
   */
  readonly maxModuleVersions?: number;
}

/** Default of `LoadPluginsOptions.maxModuleVersions` (and `sop.pluginMaxVersions`). */
export const DEFAULT_MAX_PLUGIN_VERSIONS = 64;

const PLUGIN_FILE = /\.(m?js|ts)$/;

/**
 * Module URLs imported in this process (each one a module instance Node keeps for good), and
 * per plug-in path the URL last imported for it.
 */
const importedVersions = new Set<string>();
const lastVersionOf = new Map<string, string>();

/** Module versions imported so far in this process (for tests and the docs' figures). */
export function pluginModuleVersions(): number {
  return importedVersions.size;
}

/**
 * Imports every plug-in file in `dir` (`*.js`, `*.mjs`, `*.ts`). A module exports `sop` (one
 * SOP) or `sops` (an array). A file that fails to import is reported in `problems` and skipped;
 * nothing here throws for a broken plug-in.
 *
 * Only code that root or the daemon's own uid controls is run (`checkPluginPath`): a directory
 * that another user owns or that group/others may write is refused whole, a file likewise.
 *
 * Modules are imported by content: the URL carries the SHA-256 of the file, so an unchanged
 * file (touched, or re-published by a ConfigMap update) reuses its module and is never evaluated
 * again, while a changed one is really re-imported. Each new content costs one module instance
 * for the rest of the process (ES modules cannot be unloaded), bounded by `maxModuleVersions`.
 */
export async function loadPlugins(
  dir: string,
  options: LoadPluginsOptions = {},
): Promise<{ plugins: LoadedPlugin[]; problems: string[] }> {
  const plugins: LoadedPlugin[] = [];
  const problems: string[] = [];
  const trusted = new Set(options.trustedUids ?? defaultTrustedUids());
  const maxVersions = options.maxModuleVersions ?? DEFAULT_MAX_PLUGIN_VERSIONS;
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => PLUGIN_FILE.test(f) && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
      .sort();
  } catch (err) {
    return { plugins, problems: [`${dir}: cannot read plug-in directory: ${errorMessage(err)}`] };
  }
  const checked = new Map<string, string | undefined>();
  const dirProblem = checkPluginPath(dir, 'directory', trusted, checked);
  if (dirProblem !== undefined)
    return { plugins, problems: [`${dir}: plug-in directory refused: ${dirProblem}`] };
  if (files.some((f) => f.endsWith('.ts'))) await typeScriptLoader();
  for (const f of files) {
    const path = resolve(join(dir, f));
    try {
      const unsafe = checkPluginPath(path, 'file', trusted, checked);
      if (unsafe !== undefined) {
        problems.push(`${path}: plug-in refused: ${unsafe}`);
        continue;
      }
      const url = versionUrl(path, maxVersions, problems);
      if (url === undefined) continue;
      const mod = (await import(url)) as { sop?: unknown; sops?: unknown };
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

/**
 * The URL to import `path` by: its content's hash. A content never imported before is a new
 * module instance; past `max` of them the last version imported for this path is used instead
 * (or the file is skipped if it has none), reported in `problems`.
 */
function versionUrl(path: string, max: number, problems: string[]): string | undefined {
  const hash = createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 32);
  const url = `${pathToFileURL(path).href}?sha256=${hash}`;
  if (importedVersions.has(url)) {
    lastVersionOf.set(path, url);
    return url;
  }
  if (importedVersions.size >= max) {
    const last = lastVersionOf.get(path);
    problems.push(
      `${path}: changed, but ${importedVersions.size} plug-in module versions are already loaded ` +
        `in this process (sop.pluginMaxVersions: ${max}; a module cannot be unloaded); ` +
        (last === undefined
          ? 'not loaded until the daemon restarts'
          : 'its previous version stays in force until the daemon restarts'),
    );
    return last;
  }
  importedVersions.add(url);
  lastVersionOf.set(path, url);
  return url;
}

/**
 * Root, and the uid the daemon runs as. Root because the shipped deployment mounts plug-ins
 * from a ConfigMap, which the kubelet writes as root while the daemon runs as 65532. The
 * daemon's own uid because whoever can write as that uid can already act as the daemon (read
 * its ServiceAccount token, signal or trace the process), so trusting it adds no one; it is
 * what a plug-in directory looks like outside a container (`node dist/cli/main.js run` as a
 * service user). Any other owner could make the daemon run its code: refused.
 */
function defaultTrustedUids(): number[] {
  const own = process.getuid?.();
  return own === undefined || own === 0 ? [0] : [0, own];
}

/**
 * Why the loader must not run code from `path`, or undefined when it may: `path` itself (the
 * plug-in directory, or a plug-in file after following its symlinks) must be owned by a trusted
 * uid and not be writable by group or others; every directory above it (up to `/`) must be
 * owned by a trusted uid and not writable by group or others unless sticky (`/tmp`: others
 * cannot rename or remove what they do not own). A file or directory on a read-only mount
 * counts as not writable whatever its mode: a ConfigMap volume's directory is 0777 (or 1777)
 * but mounted read-only, and only the kubelet (root) can change it.
 */
export function checkPluginPath(
  path: string,
  kind: 'directory' | 'file',
  trusted: ReadonlySet<number>,
  cache = new Map<string, string | undefined>(),
): string | undefined {
  let real: string;
  let st: Stats;
  try {
    real = realpathSync(path);
    st = statSync(real);
  } catch (err) {
    return `cannot inspect ${path}: ${errorMessage(err)}`;
  }
  if (kind === 'file' && !st.isFile()) return `${real} is not a regular file`;
  if (kind === 'directory' && !st.isDirectory()) return `${real} is not a directory`;
  const own = unsafeEntry(real, st, trusted, false);
  if (own !== undefined) return own;
  for (let p = dirname(real); ; p = dirname(p)) {
    let why = cache.get(p);
    if (!cache.has(p)) {
      try {
        why = unsafeEntry(p, statSync(p), trusted, true);
      } catch (err) {
        why = `cannot inspect ${p}: ${errorMessage(err)}`;
      }
      cache.set(p, why);
    }
    if (why !== undefined) return why;
    if (dirname(p) === p) return undefined;
  }
}

function unsafeEntry(
  path: string,
  st: Stats,
  trusted: ReadonlySet<number>,
  stickyOk: boolean,
): string | undefined {
  const mode = `0${(st.mode & 0o7777).toString(8).padStart(3, '0')}`;
  if (!trusted.has(st.uid)) {
    return `${path} is owned by uid ${st.uid} (mode ${mode}); plug-ins and every directory above them must be owned by ${[...trusted].map((u) => `uid ${u}`).join(' or ')}`;
  }
  const writable = (st.mode & 0o022) !== 0;
  const sticky = (st.mode & 0o1000) !== 0;
  if (writable && !(stickyOk && sticky) && !onReadOnlyMount(path)) {
    return `${path} has mode ${mode}: group or others may write it (chmod go-w ${path})`;
  }
  return undefined;
}

/** True when `path` is on a read-only mount (nobody can write it through this mount). */
function onReadOnlyMount(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EROFS';
  }
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
