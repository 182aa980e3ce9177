/**
 * The system namespaces: where the node-level agents of a GPU cluster run (GPU and network
 * operators, CNI, kube-proxy, monitoring agents). Pod-derived conditions read only pods of these
 * namespaces, and only their pods are ever force-deleted: a tenant's pod never speaks for the
 * node it runs on, and never loses its finalizers or its grace period to Aegis.
 *
 * A pattern is a namespace name (`kube-system`) or a prefix ending in `*` (`calico-*`).
 */
import { ErrorCode, HealError } from '../core/errors.js';

/**
 * The defaults, each with why it holds node-level agents:
 * - `kube-system`: kube-proxy, CNI (Cilium, Flannel, Calico manifests), CSI node plugins, static pods;
 * - `gpu-operator`, `nvidia-gpu-operator`: the NVIDIA GPU Operator (driver, container toolkit,
 *   device plugin, dcgm-exporter, MIG manager; the second name is OpenShift's);
 * - `network-operator`, `nvidia-network-operator`: the NVIDIA Network Operator (MOFED driver,
 *   RDMA shared device plugin, SR-IOV device plugin, Multus, IPoIB/whereabouts);
 * - `monitoring`: node-exporter, kube-state-metrics, the exporters Aegis reads (and the original's
 *   namespace for Aegis's ops Jobs); `aegis-ops`: the ops Jobs' namespace in the shipped manifests
 *   (`kubernetes.jobNamespace`);
 * - `calico-system`, `tigera-operator`, `kube-flannel`: CNI installed by the Tigera operator or
 *   the Flannel manifest outside kube-system.
 */
export const DEFAULT_SYSTEM_NAMESPACES: readonly string[] = [
  'kube-system',
  'gpu-operator',
  'nvidia-gpu-operator',
  'network-operator',
  'nvidia-network-operator',
  'monitoring',
  'aegis-ops',
  'calico-system',
  'tigera-operator',
  'kube-flannel',
];

/** A namespace name (RFC 1123 label) or a prefix of one followed by `*`. */
const PATTERN_RE = /^(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?|[a-z0-9][-a-z0-9]{0,61}\*)$/;

/** True when `pattern` is a namespace name or a `prefix*`. */
export function isNamespacePattern(pattern: string): boolean {
  return PATTERN_RE.test(pattern);
}

/** Throws INVALID_INPUT naming `where` unless every pattern is valid and there is at least one. */
export function assertNamespacePatterns(patterns: readonly string[], where: string): void {
  if (patterns.length === 0) {
    throw new HealError(ErrorCode.InvalidInput, `${where}: at least one namespace is needed`);
  }
  for (const p of patterns) {
    if (!isNamespacePattern(p)) {
      throw new HealError(
        ErrorCode.InvalidInput,
        `${where}: "${p}" is not a namespace name or a prefix ending in * (e.g. kube-system, calico-*)`,
      );
    }
  }
}

/**
 * The PromQL label matcher selecting the namespaces, e.g. `namespace=~"kube-system|calico-.*"`.
 * Names hold only [-a-z0-9], so nothing needs escaping in the RE2 regex (anchored by Prometheus).
 */
export function namespaceMatcher(patterns: readonly string[]): string {
  assertNamespacePatterns(patterns, 'system namespaces');
  const alternatives = patterns.map((p) => (p.endsWith('*') ? `${p.slice(0, -1)}.*` : p));
  return `namespace=~"${alternatives.join('|')}"`;
}

/** A predicate: is this namespace one of the patterns? */
export function namespacePredicate(patterns: readonly string[]): (namespace: string) => boolean {
  assertNamespacePatterns(patterns, 'system namespaces');
  const exact = new Set(patterns.filter((p) => !p.endsWith('*')));
  const prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (ns) => exact.has(ns) || prefixes.some((p) => ns.startsWith(p));
}
