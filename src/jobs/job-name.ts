/**
 * Deterministic Kubernetes names for Jobs. A restarted daemon recomputes the same name from the
 * ticket and finds the Job it launched before crashing, so names must depend only on their inputs.
 */
import { createHash } from 'node:crypto';
import type { JobKind } from '../k8s/cluster.js';

/** Longest DNS-1123 label, and longest label value. */
export const MAX_NAME_LENGTH = 63;
const HASH_LENGTH = 10;

/** Short verb per kind, as in the original (`reboot-<node>`, `healthcheck-<node>`, …). */
const KIND_PREFIX: Readonly<Record<JobKind, string>> = {
  restart_node: 'reboot',
  shutdown_node: 'shutdown',
  healthcheck_node: 'healthcheck',
  repair_node: 'repair',
  remedy_node: 'remedy',
  diagnose_node: 'diagnose',
  validate_node: 'validate',
};

/**
 * `<verb>-<node>-<seq>` as a DNS-1123 label of at most 63 characters. When the node or seq needs
 * rewriting (dots, upper case) or the name is too long, a hash of the raw inputs is appended, so
 * distinct inputs never collide on the shortened form.
 */
export function jobName(kind: JobKind, node: string, seq: number | string): string {
  const raw = `${KIND_PREFIX[kind]}-${node}-${String(seq)}`;
  const clean = raw.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
  if (clean === raw && clean.length <= MAX_NAME_LENGTH && !clean.endsWith('-')) return clean;
  const hash = shortHash(`${kind}\0${node}\0${String(seq)}`);
  const head = clean.slice(0, MAX_NAME_LENGTH - HASH_LENGTH - 1).replace(/-+$/, '');
  return `${head}-${hash}`;
}

/**
 * A valid label value for `value` (a node name): itself when it fits in 63 characters, otherwise
 * a prefix plus a hash of the whole. The full name is kept in an annotation by the templates.
 */
export function toLabelValue(value: string): string {
  if (value.length <= MAX_NAME_LENGTH) return value;
  const head = value.slice(0, MAX_NAME_LENGTH - HASH_LENGTH - 1).replace(/[-._]+$/, '');
  return `${head}-${shortHash(value)}`;
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, HASH_LENGTH);
}
