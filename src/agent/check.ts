/**
 * The check contract. A check runs on its own interval and returns a report: the problem samples
 * of the catalogue conditions it covers, and for each of them whether it could be checked at all.
 * A condition that cannot be checked (tool or file missing, site setting absent) gets no problem
 * sample and `aegis_nodecheck_check_available{check} 0`: it is stale to the controller, never
 * healthy and never a fault.
 */
import type { HcaPcie } from './hca-pcie.js';

/** One aegis_nodecheck_problem sample. */
export interface ProblemSample {
  /** Catalogue condition name. */
  readonly check: string;
  /** GPU mask, HCA, netdev or disk for per-device checks. */
  readonly device?: string;
  /** 0 while the check passes, else the magnitude (failing devices, failures). */
  readonly value: number;
}

/** What one run of a check found. */
export interface CheckReport {
  readonly problems: readonly ProblemSample[];
  /** Condition name → could it be checked; with the reason when not. */
  readonly available: Readonly<Record<string, string | true>>;
  /** Kernel module → 1 loaded / 0 not (modules check only). */
  readonly modulesLoaded?: Readonly<Record<string, number>>;
  /** Kernel module → 1 configured to load at boot / 0 not (modules check only). */
  readonly modulesConfigured?: Readonly<Record<string, number>>;
  /** PCIe link and Max Read Request Size of each HCA (HCA PCIe check only). */
  readonly hcaPcie?: readonly HcaPcie[];
}

/** One node check. */
export interface Check {
  readonly name: string;
  readonly intervalMs: number;
  /** Catalogue conditions the reports cover (all of them get an availability series). */
  readonly covers: readonly string[];
  run(signal: AbortSignal): Promise<CheckReport>;
}

/** A passing or failing sample. */
export function problem(check: string, value: number, device?: string): ProblemSample {
  return device === undefined ? { check, value } : { check, device, value };
}

/** Availability map marking `names` as not checkable for `reason`. */
export function unavailable(names: readonly string[], reason: string): Record<string, string> {
  return Object.fromEntries(names.map((n) => [n, reason]));
}

/** Availability map marking `names` as checked. */
export function checked(names: readonly string[]): Record<string, true> {
  return Object.fromEntries(names.map((n) => [n, true as const]));
}

/** A report where nothing could be checked. */
export function nothingChecked(names: readonly string[], reason: string): CheckReport {
  return { problems: [], available: unavailable(names, reason) };
}
