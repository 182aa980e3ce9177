/**
 * Deterministic hashing for the simulator: every generated id and baseline jitter is a pure
 * function of the fleet seed and a few integers, so nothing random has to be stored per node.
 */

/** 32-bit avalanche hash of a seed and any number of integers (murmur3 finaliser per step). */
export function hash32(seed: number, ...keys: readonly number[]): number {
  let h = seed >>> 0 || 0x9e3779b9;
  for (const k of keys) {
    h = Math.imul(h ^ (k >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** A number in [0, 1) derived from the seed and keys. */
export function unitHash(seed: number, ...keys: readonly number[]): number {
  return hash32(seed, ...keys) / 0x1_0000_0000;
}

/** `n` lowercase hex digits derived from the seed and keys. */
export function hexHash(n: number, seed: number, ...keys: readonly number[]): string {
  let out = '';
  for (let i = 0; out.length < n; i++) {
    out += hash32(seed, ...keys, i)
      .toString(16)
      .padStart(8, '0');
  }
  return out.slice(0, n);
}
