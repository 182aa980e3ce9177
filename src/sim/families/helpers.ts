/** Building blocks of the baseline family tables. */
import { ALL_ROLES, type FamilyDef, type Scope } from '../family.js';
import { unitHash } from '../random.js';

/** Scope. */
export const NODE: Scope = { kind: 'node' };
/** Scope. */
export const GPU: Scope = { kind: 'gpu', style: 'dcgm' };
/** Scope. */
export const GPU_INDEX: Scope = { kind: 'gpu', style: 'index' };
/** Scope. */
export const CPU: Scope = { kind: 'cpu' };
/** Scope. */
export const CORE: Scope = { kind: 'core' };
/** Scope. */
export const PACKAGE: Scope = { kind: 'package' };
/** Scope. */
export const DISK: Scope = { kind: 'disk' };
/** Scope. */
export const HCA: Scope = { kind: 'hca', label: 'device', withPort: true };
/** Scope. */
export const HCA_NOPORT: Scope = { kind: 'hca', label: 'device', withPort: false };
/** Scope. */
export const SICHEK_HCA: Scope = { kind: 'hca', label: 'ib_dev', withPort: false };
/** Scope. */
export const NICS: Scope = { kind: 'nic', which: 'all', label: 'device' };
/** Scope. */
export const BOND: Scope = { kind: 'nic', which: 'bond', label: 'master' };
/** Scope. */
export const FS: Scope = { kind: 'filesystem' };
/** Sensors of these IPMI types. */
export const sensors = (types: readonly string[], withType = false): Scope => ({
  kind: 'sensor',
  types,
  withType,
});
/** IPMI sensor types ipmi_exporter reports as ipmi_sensor_state. */
export const GENERIC_SENSOR_TYPES = [
  'Processor',
  'Memory',
  'Power Supply',
  'Drive Slot',
  'Management Subsystem Health',
  'Critical Interrupt',
];

/** Baseline value function. */
export type Value = FamilyDef['value'];
/** The same value everywhere. */
export const constant =
  (v: number): Value =>
  () =>
    v;
/** Integer jitter in [lo, hi] per (node, device), stable for a seed. */
export const jitter =
  (lo: number, hi: number, salt: number): Value =>
  (node, device, _variant, seed) =>
    lo + Math.floor(unitHash(seed, salt, node.index, device) * (hi - lo + 1));

/** A gauge family. */
export function gauge(
  name: string,
  help: string,
  scope: Scope,
  value: Value,
  extra: Partial<FamilyDef> = {},
): FamilyDef {
  return { name, type: 'gauge', help, scope, value, ...extra };
}

/** A counter family. */
export function counter(
  name: string,
  help: string,
  scope: Scope,
  value: Value = constant(0),
  extra: Partial<FamilyDef> = {},
): FamilyDef {
  return { name, type: 'counter', help, scope, value, ...extra };
}

/** Healthy zero. */
export const ZERO = constant(0);
/** Healthy one. */
export const ONE = constant(1);

/** Extra fields of a family every node (control planes too) has. */
export const NODE_ALL = { roles: ALL_ROLES };
