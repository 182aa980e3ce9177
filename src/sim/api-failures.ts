/**
 * Fault injection for the simulated API server (NPD's FakeProblemClient.InjectError): fail the next
 * call of a method with a given error, fail a share of calls at random (seeded), or make every call
 * fail with K8S_UNAVAILABLE until a time.
 */
import { ErrorCode, HealError } from '../core/errors.js';
import { unitHash } from './random.js';

/** Options of `failRate`. */
export interface FailRateOptions {
  /** Only these methods fail (default: all). */
  readonly methods?: readonly string[];
  /** Error thrown (default: K8S_UNAVAILABLE). */
  readonly error?: Error;
}

/** Scheduled and random failures of API calls. */
export class ApiFailures {
  readonly #next = new Map<string, Error[]>();
  readonly #seed: number;
  #rate = 0;
  #rateOptions: FailRateOptions = {};
  #outageUntil = Number.NEGATIVE_INFINITY;
  #calls = 0;

  constructor(seed: number) {
    this.#seed = seed;
  }

  /** The next call of `method` throws `error` (queued: several calls fail in order). */
  failNext(method: string, error: Error = unavailable(method)): void {
    const queue = this.#next.get(method) ?? [];
    queue.push(error);
    this.#next.set(method, queue);
  }

  /** A share (0..1) of calls fail; 0 turns it off. */
  failRate(rate: number, options: FailRateOptions = {}): void {
    this.#rate = rate;
    this.#rateOptions = options;
  }

  /** Every call fails with K8S_UNAVAILABLE until `untilMs`. */
  outage(untilMs: number): void {
    this.#outageUntil = untilMs;
  }

  /** Throws the failure due for this call, if any. */
  check(method: string, nowMs: number): void {
    this.#calls++;
    if (nowMs < this.#outageUntil) {
      throw new HealError(
        ErrorCode.K8sUnavailable,
        `${method}: simulated API server outage until ${new Date(this.#outageUntil).toISOString()}`,
      );
    }
    const queued = this.#next.get(method)?.shift();
    if (queued !== undefined) throw queued;
    if (this.#rate <= 0) return;
    const { methods, error } = this.#rateOptions;
    if (methods !== undefined && !methods.includes(method)) return;
    if (unitHash(this.#seed, this.#calls) < this.#rate) throw error ?? unavailable(method);
  }
}

function unavailable(method: string): HealError {
  return new HealError(ErrorCode.K8sUnavailable, `${method}: simulated API server error (503)`);
}
