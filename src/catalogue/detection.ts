/**
 * Site settings of detection (config `detection:`): IB ports meant to be down and mount points
 * meant to be read-only. They rebuild the PromQL of the entries they concern; everything else in
 * the catalogue is left as it is.
 */
import { DEFAULT_READ_ONLY_MOUNTS, diskConditions } from './disk.js';
import { ibConditions, type IbPortPattern } from './ib.js';
import type { CatalogueEntry } from './types.js';

export { DEFAULT_READ_ONLY_MOUNTS };
export type { IbPortPattern };

/** The `detection:` section of the config, parsed. */
export interface DetectionConfig {
  readonly ignoreIbPorts: readonly IbPortPattern[];
  readonly readOnlyMounts: readonly string[];
}

/** The defaults: no IB port ignored, DEFAULT_READ_ONLY_MOUNTS. */
export const DEFAULT_DETECTION: DetectionConfig = {
  ignoreIbPorts: [],
  readOnlyMounts: DEFAULT_READ_ONLY_MOUNTS,
};

/**
 * Why `regex` cannot be a PromQL label regex, or undefined when it can: it must compile, and use
 * nothing Prometheus's RE2 lacks (lookaround, backreferences). PromQL anchors it at both ends.
 */
export function promRegexProblem(regex: string): string | undefined {
  if (regex === '') return 'is empty';
  try {
    new RegExp(regex, 'u');
  } catch (err) {
    return `is not a regular expression (${err instanceof Error ? err.message : String(err)})`;
  }
  if (/\(\?<?[=!]/.test(regex))
    return 'uses a lookahead or lookbehind, which Prometheus (RE2) lacks';
  if (/\\[1-9]/.test(regex)) return 'uses a backreference, which Prometheus (RE2) lacks';
  return undefined;
}

/**
 * Parses one `detection.ignoreIbPorts` entry, `<HCA>/<port>` (`mlx5_4/1`) or `<HCA>` for every port
 * of the HCA, each part an anchored regex (`mlx5_[4-7]/1`); `nodes` limits it to matching nodes.
 * Returns the pattern, or why the entry is invalid.
 */
export function parseIbPort(entry: string, nodes?: string): IbPortPattern | string {
  const slash = entry.indexOf('/');
  const device = slash < 0 ? entry : entry.slice(0, slash);
  const port = slash < 0 ? '.*' : entry.slice(slash + 1);
  for (const [what, regex] of [
    ['HCA', device],
    ['port', port],
    ['nodes', nodes],
  ] as const) {
    if (regex === undefined) continue;
    const problem = promRegexProblem(regex);
    if (problem !== undefined) {
      return `"${entry}": the ${what} part "${regex}" ${problem} (expected <HCA>/<port>, e.g. mlx5_4/1)`;
    }
  }
  return nodes === undefined ? { device, port } : { device, port, nodes };
}

/**
 * The catalogue with the site's detection settings applied: the IB per-port rules leave out
 * `ignoreIbPorts`, DiskReadOnly leaves out `readOnlyMounts`. Entries the settings do not concern
 * (and entries the catalogue passed in does not have) are untouched.
 */
export function applyDetectionConfig(
  catalogue: readonly CatalogueEntry[],
  detection: DetectionConfig,
): CatalogueEntry[] {
  const rebuilt = new Map(
    [...ibConditions(detection.ignoreIbPorts), ...diskConditions(detection.readOnlyMounts)].map(
      (e) => [e.name, e.expr],
    ),
  );
  return catalogue.map((e) => {
    const expr = rebuilt.get(e.name);
    return expr === undefined || expr === e.expr ? e : { ...e, expr };
  });
}
