import { ErrorCode, HealError } from '../core/errors.js';
import { BASEBOARD_CONDITIONS } from './baseboard.js';
import { CPU_CONDITIONS } from './cpu.js';
import { DISK_CONDITIONS } from './disk.js';
import { GPFS_CONDITIONS } from './gpfs.js';
import { GPU_CONDITIONS } from './gpu.js';
import { IB_CONDITIONS } from './ib.js';
import { MEMORY_CONDITIONS } from './memory.js';
import { NETWORK_CONDITIONS } from './network.js';
import { NODE_CONDITIONS } from './node.js';
import { NPD_CONDITIONS } from './npd.js';
import { PEERMEM_CONDITIONS } from './peermem.js';
import { PROCESS_CONDITIONS } from './process.js';
import { ROCE_CONDITIONS } from './roce.js';
import { SCRAPE_CONDITIONS } from './scrape.js';
import { SYSTEM_CONDITIONS } from './system.js';
import type { CatalogueEntry } from './types.js';

export type {
  CatalogueEntry,
  DeviceIdMode,
  FaultRecipe,
  NodeField,
  SeriesChange,
  Signal,
} from './types.js';
export {
  COLLECTOR_HEALTH,
  collectorKey,
  METRICS,
  metricNamesOf,
  PROMETHEUS_SERIES,
  SIGNAL_PRESENCE,
  SIGNAL_SOURCES,
  SIGNALS,
} from './signals.js';
export type { MetricSpec } from './signals.js';
export { ruleInputs } from './inputs.js';
export type { RuleInputs } from './inputs.js';
export {
  applyDetectionConfig,
  DEFAULT_DETECTION,
  parseIbPort,
  type DetectionConfig,
  type IbPortPattern,
} from './detection.js';

/**
 * Every condition Aegis knows, in domain order (the order of docs/conditions.md and priority.conf).
 * Add a condition to its domain file; this list only concatenates them (see README.md).
 */
export const CATALOGUE: readonly CatalogueEntry[] = [
  ...NODE_CONDITIONS,
  ...CPU_CONDITIONS,
  ...MEMORY_CONDITIONS,
  ...DISK_CONDITIONS,
  ...NETWORK_CONDITIONS,
  ...BASEBOARD_CONDITIONS,
  ...GPU_CONDITIONS,
  ...IB_CONDITIONS,
  ...ROCE_CONDITIONS,
  ...GPFS_CONDITIONS,
  ...SYSTEM_CONDITIONS,
  ...SCRAPE_CONDITIONS,
  ...PROCESS_CONDITIONS,
  ...PEERMEM_CONDITIONS,
  // node-problem-detector's inputs, across domains (npd.ts)
  ...NPD_CONDITIONS,
];

/** Builds the lookup of names and aliases; throws CATALOGUE_INVALID on a duplicate. */
function indexCatalogue(entries: readonly CatalogueEntry[]): ReadonlyMap<string, CatalogueEntry> {
  const byName = new Map<string, CatalogueEntry>();
  const add = (key: string, entry: CatalogueEntry): void => {
    const other = byName.get(key);
    if (other !== undefined) {
      throw new HealError(
        ErrorCode.CatalogueInvalid,
        `catalogue: "${key}" names both ${other.name} and ${entry.name} (names and aliases must be unique)`,
      );
    }
    byName.set(key, entry);
  };
  for (const entry of entries) add(entry.name, entry);
  for (const entry of entries) for (const alias of entry.aliases ?? []) add(alias, entry);
  return byName;
}

/**
 * A name index over any list of entries: exact names and aliases first, then a case-insensitive
 * match when exactly one entry fits (the v1 rules emit `GPUHWSlowdown` for `GpuHWSlowdown`).
 */
export function createConditionIndex(
  entries: readonly CatalogueEntry[],
): (nameOrAlias: string) => CatalogueEntry | undefined {
  const exact = indexCatalogue(entries);
  const folded = new Map<string, CatalogueEntry | null>();
  for (const [key, entry] of exact) {
    const k = key.toLowerCase();
    const seen = folded.get(k);
    folded.set(k, seen === undefined || seen === entry ? entry : null);
  }
  return (nameOrAlias) =>
    exact.get(nameOrAlias) ?? folded.get(nameOrAlias.toLowerCase()) ?? undefined;
}

const findInCatalogue = createConditionIndex(CATALOGUE);

/** The catalogue entry for a condition name or alias (case-insensitive when unambiguous). */
export function findCondition(nameOrAlias: string): CatalogueEntry | undefined {
  return findInCatalogue(nameOrAlias);
}

/** Canonical condition names, in catalogue order. */
export function conditionNames(): readonly string[] {
  return CATALOGUE.map((e) => e.name);
}
