/**
 * Presence answers folded into per-fleet-position marks (1 = the answer names the node).
 *
 * A presence answer names every node of the fleet, so this runs over N samples per exporter in
 * every cycle (8 × 100,000 at 100,000 nodes). Looking each name up in a name → position `Map`
 * costs a hash of a string the answer has just brought (new every cycle): 300–1,000 ns a sample
 * on this machine, 160–170 ms a cycle at 100,000 nodes, most of a quiet cycle. An answer's
 * order is usually the same from one evaluation to the next (the store reads the same series in
 * the same index order) and often the fleet's own (both sorted by name). So a sample's position is
 * first guessed — where the same sample of the previous answer was, then the position after the
 * last match — and the guess checked by comparing the name at that position; only a failed guess
 * goes to the `Map`. The marks are the same as with the `Map` alone in every case (a checked
 * guess resolves to the name's first position, as the `Map` does): only the cost changes.
 */

/** The fleet as positions: names in list order, each name's first position, and the index. */
export interface FleetPositions {
  /** Node name at each position of the node list. */
  readonly names: readonly string[];
  /** `canonical[i]`: the first position holding `names[i]` (a duplicated name reads as its first). */
  readonly canonical: Int32Array;
  /** Name → first position. */
  readonly index: ReadonlyMap<string, number>;
}

/** Marks of one answer, and where each of its samples was found (the next answer's guesses). */
export interface PresenceMarks {
  readonly marks: Uint8Array;
  /** Per sample of the answer, the position its name was found at; -1 when not in the fleet. */
  readonly positions: Int32Array;
}

/**
 * Marks, per fleet position, the nodes `samples` name (`nodeOf`; '' names none). `previous` is
 * the `positions` of the previous answer to the same query (any fleet: every guess is checked).
 */
export function presenceMarks<S>(
  samples: readonly S[],
  fleet: FleetPositions,
  nodeOf: (s: S) => string,
  previous?: Int32Array,
): PresenceMarks {
  const { names, canonical, index } = fleet;
  const size = names.length;
  const marks = new Uint8Array(size);
  const positions = new Int32Array(samples.length).fill(-1);
  const guesses = previous ?? new Int32Array(0);
  let next = 0;
  for (let k = 0; k < samples.length; k++) {
    const sample = samples[k];
    if (sample === undefined) continue;
    const name = nodeOf(sample);
    if (name === '') continue;
    let at = k < guesses.length ? (guesses[k] ?? -1) : -1;
    if (at < 0 || at >= size || names[at] !== name) {
      at = next < size && names[next] === name ? next : (index.get(name) ?? -1);
    }
    if (at < 0) continue;
    positions[k] = at;
    marks[canonical[at] ?? at] = 1;
    next = at + 1;
  }
  return { marks, positions };
}
