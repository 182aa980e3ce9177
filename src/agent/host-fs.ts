/**
 * Reads of host files under the host root. A file that does not exist (or cannot be read) is
 * `undefined`, never an exception: a missing file means "cannot check", and the caller decides.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Joins a host path (absolute, as on the host) onto the host root. */
export function hostPath(hostRoot: string, path: string): string {
  return join(hostRoot, path);
}

/** File content as text, or undefined when it cannot be read. */
export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** First line of a sysfs attribute, trimmed, or undefined. */
export async function readAttr(path: string): Promise<string | undefined> {
  const text = await readText(path);
  return text?.split('\n')[0]?.trim();
}

/** Directory entries (sorted), or undefined when the directory cannot be listed. */
export async function listDir(path: string): Promise<string[] | undefined> {
  try {
    return (await readdir(path)).sort();
  } catch {
    return undefined;
  }
}

/** True when the path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Modification time in ms, or undefined. */
export async function mtimeMs(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}
