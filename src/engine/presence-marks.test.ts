import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { presenceMarks, type FleetPositions } from './presence-marks.js';

type Sample = { readonly labels: Readonly<Record<string, string>> };

const nodeOf = (s: Sample): string => s.labels['node'] ?? s.labels['Hostname'] ?? '';

/** The fleet as the inspector indexes it: first position of each name. */
function positionsOf(names: readonly string[], index = new Map<string, number>()): FleetPositions {
  const canonical = new Int32Array(names.length);
  names.forEach((name, i) => {
    const first = index.get(name);
    if (first === undefined) index.set(name, i);
    canonical[i] = first ?? i;
  });
  return { names, canonical, index };
}

/** The implementation before the guesses: one Map lookup per sample. */
function reference(samples: readonly Sample[], fleet: FleetPositions): Uint8Array {
  const marks = new Uint8Array(fleet.names.length);
  for (const s of samples) {
    const name = nodeOf(s);
    const i = name === '' ? undefined : fleet.index.get(name);
    if (i !== undefined) marks[i] = 1;
  }
  return marks;
}

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/** Lookups so far (a call, so the checker does not narrow the field to its last assignment). */
const lookups = (m: CountingMap): number => m.gets;

/** A Map that counts its lookups. */
class CountingMap extends Map<string, number> {
  gets = 0;
  override get(key: string): number | undefined {
    this.gets++;
    return super.get(key);
  }
}

describe('presence marks', () => {
  it('marks the same positions as one Map lookup per sample, over 300 randomised rounds', () => {
    const rand = rng(18);
    let previous: Int32Array | undefined;
    let names: string[] = [];
    let order: string[] = [];
    for (let round = 0; round < 300; round++) {
      // The fleet changes now and then: nodes added, removed, renamed, duplicated.
      if (round % 7 === 0 || names.length === 0) {
        const size = 1 + Math.floor(rand() * 60);
        names = Array.from({ length: size }, () => `n${Math.floor(rand() * 80)}`);
        if (rand() < 0.5) names.sort();
      }
      const fleet = positionsOf(names);
      // The answer: most of the fleet, unknown and empty names, duplicates, DCGM's Hostname;
      // in the fleet's order, the previous answer's order, or shuffled.
      if (round % 5 === 0 || order.length === 0) {
        order = names.filter(() => rand() < 0.9);
        for (let i = 0; i < 3; i++) if (rand() < 0.5) order.push(`gone${Math.floor(rand() * 5)}`);
        if (rand() < 0.3) order.push('');
        if (rand() < 0.3 && order.length > 0) order.push(order[0] ?? '');
        const mode = rand();
        if (mode < 0.4) shuffle(order, rand);
        else if (mode < 0.5) order.reverse();
      } else if (rand() < 0.2) {
        // A small change to a stable order: one sample dropped, one moved.
        order = order.filter((_, i) => i !== Math.floor(rand() * order.length));
        const moved = order.shift();
        if (moved !== undefined) order.splice(Math.floor(rand() * (order.length + 1)), 0, moved);
      }
      const samples: Sample[] = order.map((n) =>
        rand() < 0.2 ? { labels: { Hostname: n } } : { labels: { node: n } },
      );
      const got = presenceMarks(samples, fleet, nodeOf, previous);
      assert.deepEqual(got.marks, reference(samples, fleet), `round ${round}`);
      assert.equal(got.positions.length, samples.length);
      got.positions.forEach((at, k) => {
        const name = nodeOf(samples[k] as Sample);
        if (at >= 0) assert.equal(names[at], name, `round ${round}: sample ${k} found at ${at}`);
        else assert.equal(fleet.index.has(name), false, `round ${round}: sample ${k} missed`);
      });
      // The next round guesses from this one's positions, whatever the fleet becomes.
      previous = rand() < 0.9 ? got.positions : undefined;
    }
  });

  it('does not look names up when the answer is in the fleet order or the previous answer order', () => {
    const names = Array.from({ length: 1000 }, (_, i) => `gpu-node-${String(i).padStart(6, '0')}`);
    const index = new CountingMap();
    const fleet = positionsOf(names, index);
    index.gets = 0;
    const sorted = names.map((n) => ({ labels: { node: n } }));
    const first = presenceMarks(sorted, fleet, nodeOf);
    assert.equal(index.gets, 0, 'fleet order: every guess right');
    assert.equal(
      first.marks.every((m) => m === 1),
      true,
    );

    // Another order (as Prometheus may group), stable from one answer to the next.
    const shuffled = shuffle([...sorted], rng(1));
    const a = presenceMarks(shuffled, fleet, nodeOf);
    const lookedUp = lookups(index);
    assert.ok(lookedUp > 900, `a new order is looked up (${lookedUp} lookups)`);
    index.gets = 0;
    const b = presenceMarks(
      shuffled.map((s) => ({ labels: { ...s.labels } })),
      fleet,
      nodeOf,
      a.positions,
    );
    assert.equal(index.gets, 0, "the same order again: every guess from the previous answer's");
    assert.deepEqual(b.marks, a.marks);
  });

  it('checks every guess: a wrong or out-of-range guess falls back to the index', () => {
    const fleet = positionsOf(['a', 'b', 'c', 'b']);
    const guesses = Int32Array.from([3, 99, -1, 0]);
    const got = presenceMarks(
      [
        { labels: { node: 'b' } },
        { labels: { node: 'c' } },
        { labels: { node: 'x' } },
        { labels: {} },
      ],
      fleet,
      nodeOf,
      guesses,
    );
    // 'b' found at 3 (its guess) marks its first position, 1, as the index would.
    assert.deepEqual([...got.marks], [0, 1, 1, 0]);
    assert.deepEqual([...got.positions], [3, 2, -1, -1]);
  });
});
