/**
 * Writes the agent's Node conditions: once at start (after reading the Node's current ones, for
 * latches and transition times), then whenever a condition's status, reason or message changes,
 * and every `resyncMs` as a heartbeat (restoring a condition someone removed). Writes are
 * serialised and coalesced: while one PATCH is in flight, only the latest inputs are kept. A failed
 * write is retried with capped exponential backoff; the agent never stops for the API server.
 */
import type { Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import { desiredConditions, toNodeConditions, type ConditionInputs } from './node-conditions.js';
import type { NodeCondition, NodePort } from './node-port.js';

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

/** Settings of the publisher. */
export interface ConditionPublisherOptions {
  readonly port: NodePort;
  readonly nodeName: string;
  readonly clock: Clock;
  readonly bootTimeMs: number;
  readonly resyncMs: number;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
  /** Called after each write attempt (metrics). */
  readonly onWrite?: (ok: boolean) => void;
}

/** The publisher; `update` is cheap and synchronous, the writes happen in the background. */
export class ConditionPublisher {
  readonly #o: ConditionPublisherOptions;
  #current: readonly NodeCondition[] | undefined;
  #pending: ConditionInputs | undefined;
  #lastKey = '';
  #lastWriteMs = -Infinity;
  #running = false;
  #retryMs = RETRY_MIN_MS;

  constructor(opts: ConditionPublisherOptions) {
    this.#o = opts;
  }

  /** New inputs; a write follows when the conditions they give differ from the last written. */
  update(inputs: ConditionInputs): void {
    this.#pending = inputs;
    if (!this.#running) void this.#drain();
  }

  /** Conditions last read from or written to the Node. */
  get current(): readonly NodeCondition[] {
    return this.#current ?? [];
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#pending !== undefined && !this.#o.signal.aborted) {
        const inputs = this.#pending;
        this.#pending = undefined;
        if (!(await this.#publish(inputs))) {
          this.#pending ??= inputs;
          await this.#o.clock.sleep(this.#retryMs, this.#o.signal).catch(() => undefined);
          this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
        } else this.#retryMs = RETRY_MIN_MS;
      }
    } finally {
      this.#running = false;
    }
  }

  /** One write if needed; false when it failed. */
  async #publish(inputs: ConditionInputs): Promise<boolean> {
    const { port, nodeName, clock, signal } = this.#o;
    try {
      this.#current ??= (await port.getNode(nodeName, signal)).conditions;
      const desired = desiredConditions(inputs);
      if (desired.length === 0) return true; // nothing known yet: nothing to say
      const key = JSON.stringify(desired);
      const now = clock.now();
      if (key === this.#lastKey && now - this.#lastWriteMs < this.#o.resyncMs) return true;
      const next = toNodeConditions(desired, this.#current, {
        iso: new Date(now).toISOString(),
        bootTimeMs: this.#o.bootTimeMs,
      });
      await port.patchConditions(nodeName, next, signal);
      this.#current = [
        ...this.#current.filter((c) => !next.some((n) => n.type === c.type)),
        ...next,
      ];
      this.#lastKey = key;
      this.#lastWriteMs = now;
      this.#o.onWrite?.(true);
      return true;
    } catch (err) {
      if (signal.aborted) return true;
      this.#o.log(`node conditions of ${nodeName}: ${errorMessage(err)}`);
      this.#o.onWrite?.(false);
      return false;
    }
  }
}
