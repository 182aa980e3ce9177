/**
 * Label-set signatures for vector matching, set operators and `without` grouping. A signature is an
 * order-independent hash of the selected label pairs (no per-series sort or string building), and
 * every hash hit is confirmed label by label, so a collision can never merge two different label
 * sets.
 */
import type { Labels } from './eval-context.js';
import { METRIC_NAME } from './eval-context.js';

/** How to compare label sets: a hash, and the exact equality it stands for. */
export interface Signature {
  hash(labels: Labels): number;
  same(a: Labels, b: Labels): boolean;
}

/** FNV-1a of `name`, a separator and `value`: one label pair's contribution. */
function pairHash(name: string, value: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0xff, 0x01000193);
  for (let i = 0; i < value.length; i++) h = Math.imul(h ^ value.charCodeAt(i), 0x01000193);
  return h;
}

/**
 * Combines summed pair hashes (a sum, so label order does not matter) into a small integer: V8
 * keeps 30-bit integers unboxed, which makes Map lookups cheap. Collisions are expected now and
 * then and are resolved by `same`.
 */
function finish(sum: number): number {
  let h = sum | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) & 0x3fffffff;
}

/** Signature over the values of `names` only (`on(...)`, `by (...)`); absent equals empty. */
export function signatureOn(names: readonly string[]): Signature {
  return {
    hash(labels) {
      let sum = 0;
      for (const n of names) {
        const v = labels[n];
        if (v !== undefined && v !== '') sum = (sum + pairHash(n, v)) | 0;
      }
      return finish(sum);
    },
    same(a, b) {
      for (const n of names) if ((a[n] ?? '') !== (b[n] ?? '')) return false;
      return true;
    },
  };
}

/** Signature over every label except `__name__` and `names` (`ignoring(...)`, `without (...)`). */
export function signatureWithout(names: readonly string[]): Signature {
  const ignored = new Set(names);
  // Most uses ignore nothing but the name; skip the set lookups then.
  const counts =
    ignored.size === 0
      ? (k: string) => k !== METRIC_NAME
      : (k: string) => k !== METRIC_NAME && !ignored.has(k);
  const count = (labels: Labels): number => {
    let n = 0;
    for (const k in labels) if (labels[k] !== '' && counts(k)) n++;
    return n;
  };
  return {
    hash(labels) {
      let sum = 0;
      for (const k in labels) {
        const v = labels[k] as string;
        if (v !== '' && counts(k)) sum = (sum + pairHash(k, v)) | 0;
      }
      return finish(sum);
    },
    same(a, b) {
      if (a === b) return true;
      for (const k in a) {
        const v = a[k] as string;
        if (v !== '' && counts(k) && b[k] !== v) return false;
      }
      return count(a) === count(b);
    },
  };
}

/** Signature over the whole label set, `__name__` included (duplicate detection). */
export const FULL_SIGNATURE: Signature = signatureWithout([]);

/** Entries keyed by their labels' signature; at most one entry per signature. */
export interface SignatureMap<V extends { readonly labels: Labels }> {
  /** The entry whose labels have the same signature as `labels`. */
  get(labels: Labels): V | undefined;
  /** Adds `entry` unless one with the same signature exists; returns that existing one. */
  add(entry: V): V | undefined;
}

/** A SignatureMap; hash collisions between different signatures go to a rarely used overflow. */
export function createSignatureMap<V extends { readonly labels: Labels }>(
  sig: Signature,
): SignatureMap<V> {
  const primary = new Map<number, V>();
  const overflow = new Map<number, V[]>();
  const find = (labels: Labels, h: number): V | undefined => {
    const first = primary.get(h);
    if (first === undefined || sig.same(first.labels, labels)) return first;
    return overflow.get(h)?.find((e) => sig.same(e.labels, labels));
  };
  return {
    get: (labels) => find(labels, sig.hash(labels)),
    add(entry) {
      const h = sig.hash(entry.labels);
      const existing = find(entry.labels, h);
      if (existing !== undefined) return existing;
      if (!primary.has(h)) primary.set(h, entry);
      else overflow.set(h, [...(overflow.get(h) ?? []), entry]);
      return undefined;
    },
  };
}
