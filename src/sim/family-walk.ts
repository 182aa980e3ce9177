/**
 * Per-select state of one family walk in the series store: which variants a selector can match at
 * all (decided once per shared variant list, so `status="FAILED"` skips the other ten statuses of
 * every node), and the constant or linear sample pairs shared by every untouched series.
 */
import type { Sample } from '../promql/series.js';
import type { Family, Variants } from './family.js';
import type { CompiledSelector } from './label-match.js';
import { NODE_NAME_TOKEN } from './series-labels.js';

/** Per-select state of one family walk: variant pre-filter and shared constant samples. */
export class FamilyWalk {
  readonly selector: CompiledSelector;
  readonly #family: Family;
  readonly #first: number;
  readonly #end: number;
  readonly #shared = new Map<number, Sample[]>();
  readonly #linear = new Map<number, Map<number, Sample[]>>();
  readonly #kept = new Map<Variants, number[]>();

  constructor(family: Family, selector: CompiledSelector, first: number, end: number) {
    this.#family = family;
    this.selector = selector;
    this.#first = first;
    this.#end = end;
  }

  /** Indices of variants whose own labels can match (computed once per shared variant list). */
  variantsToVisit(variants: Variants): readonly number[] {
    let kept = this.#kept.get(variants);
    if (kept === undefined) {
      kept = [];
      for (let i = 0; i < variants.length; i++) {
        const variant = variants[i] ?? {};
        if (this.#family.upOf !== undefined || this.selector.mayMatch(variant, NODE_NAME_TOKEN)) {
          kept.push(i);
        }
      }
      this.#kept.set(variants, kept);
    }
    return kept;
  }

  /** Window start and end samples of a steadily growing counter, shared like constants. */
  linear(base: number, slope: number): Sample[] {
    let bySlope = this.#linear.get(slope);
    if (bySlope === undefined) {
      bySlope = new Map();
      this.#linear.set(slope, bySlope);
    }
    let samples = bySlope.get(base);
    if (samples === undefined) {
      const at = (t: number): Sample => ({ t, v: base + (slope * t) / 1000 });
      samples = this.#first === this.#end ? [at(this.#end)] : [at(this.#first), at(this.#end)];
      bySlope.set(base, samples);
    }
    return samples;
  }

  /** Two samples (window start and end) of a constant value, shared by every series of it. */
  constant(value: number): Sample[] {
    let samples = this.#shared.get(value);
    if (samples === undefined) {
      samples =
        this.#first === this.#end
          ? [{ t: this.#end, v: value }]
          : [
              { t: this.#first, v: value },
              { t: this.#end, v: value },
            ];
      this.#shared.set(value, samples);
    }
    return samples;
  }
}
