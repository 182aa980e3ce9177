/**
 * Timed effects of the simulation (a reboot finishing, a Job ending, a transient fault clearing),
 * run lazily: every entry point of the simulator first calls `runUntil(clock.now())`, and each
 * effect runs with its own scheduled time, so change points are stamped exactly even when nobody
 * looked at the simulation in between. No timers, no sleeps.
 */

interface Scheduled {
  readonly at: number;
  readonly seq: number;
  readonly run: (atMs: number) => void;
}

/** A time-ordered queue of simulation effects. */
export class SimScheduler {
  #events: Scheduled[] = [];
  #seq = 0;
  #ranUntil = Number.NEGATIVE_INFINITY;

  /** Schedules `run(atMs)`; effects due at the same time run in scheduling order. */
  at(atMs: number, run: (atMs: number) => void): void {
    const event = { at: atMs, seq: this.#seq++, run };
    let i = this.#events.length;
    while (i > 0 && this.#events[i - 1]!.at > atMs) i--;
    this.#events.splice(i, 0, event);
  }

  /** Runs every effect due at or before `tMs`, including ones scheduled while running. */
  runUntil(tMs: number): void {
    for (;;) {
      const next = this.#events[0];
      if (next === undefined || next.at > tMs) break;
      this.#events.shift();
      next.run(next.at);
    }
    this.#ranUntil = Math.max(this.#ranUntil, tMs);
  }

  /** Number of effects not yet run. */
  get pending(): number {
    return this.#events.length;
  }

  /** Time of the next effect, if any (lets a demo loop jump the clock straight to it). */
  nextAt(): number | undefined {
    return this.#events[0]?.at;
  }

  /** Latest time `runUntil` reached. */
  get ranUntil(): number {
    return this.#ranUntil;
  }
}
