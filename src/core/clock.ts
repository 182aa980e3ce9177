/** Time source injected everywhere time is read or waited on, so tests and the simulator control it. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The wall clock; with `unref`, its sleeps do not keep the process alive. */
function wallClock(unref: boolean): Clock {
  return {
    now: () => Date.now(),
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason as Error);
          return;
        }
        const timer = setTimeout(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }, ms);
        if (unref) timer.unref();
        const onAbort = (): void => {
          clearTimeout(timer);
          reject(signal?.reason as Error);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
      }),
  };
}

/** The real wall clock. */
export const systemClock: Clock = wallClock(false);

/**
 * The wall clock for background loops (retries, watchdogs) that must not stop a daemon or a
 * test run from exiting.
 */
export const backgroundClock: Clock = wallClock(true);

interface Sleeper {
  readonly at: number;
  readonly seq: number;
  readonly resolve: () => void;
}

/**
 * A clock that moves only when told: tests call `advance()`, the simulator steps it fast.
 * Sleepers wake in deadline order; `advance` yields to the microtask queue between wake-ups so
 * code awakened by one timer can schedule the next before time moves on.
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #sleepers: Sleeper[] = [];

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  /** Number of pending sleepers (for tests and the simulator's idle detection). */
  get pending(): number {
    return this.#sleepers.length;
  }

  /** Deadline of the earliest sleeper, if any. */
  nextDeadline(): number | undefined {
    return this.#sleepers[0]?.at;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const sleeper: Sleeper = {
        at: this.#now + Math.max(0, ms),
        seq: this.#seq++,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(signal?.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#insert(sleeper);
    });
  }

  /** Moves time forward by `ms`, waking every sleeper due on the way, in order. */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.#now + ms);
  }

  /** Moves time to `targetMs` (never backwards), waking sleepers due on the way. */
  async advanceTo(targetMs: number): Promise<void> {
    await settle();
    for (;;) {
      const next = this.#sleepers[0];
      if (next === undefined || next.at > targetMs) break;
      this.#sleepers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.resolve();
      await settle();
    }
    this.#now = Math.max(this.#now, targetMs);
    await settle();
  }

  /** Jumps the clock without waking anyone (to test clock jumps). Sleepers keep their deadlines. */
  jump(ms: number): void {
    this.#now += ms;
  }

  #insert(sleeper: Sleeper): void {
    const i = this.#sleepers.findIndex((s) => s.at > sleeper.at);
    if (i === -1) this.#sleepers.push(sleeper);
    else this.#sleepers.splice(i, 0, sleeper);
  }
}

/** Lets pending promise callbacks run (a few macrotask turns, so chained awaits settle). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
}
