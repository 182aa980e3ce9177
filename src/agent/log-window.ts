/**
 * Counts of log matches within a sliding window ("in the last hour"), per key. Memory is bounded:
 * at most MAX_KEYS keys (new keys beyond it are counted under the key's rule without a device) and
 * MAX_EVENTS timestamps per key (a flood keeps the newest; the count then saturates at MAX_EVENTS).
 */

const MAX_KEYS = 256;
const MAX_EVENTS = 1_000;

/** Labels of one counted series. */
export interface LogKey {
  readonly source: string;
  readonly rule: string;
  readonly device?: string;
}

/** A sliding-window counter. */
export class LogWindow {
  readonly #windowMs: number;
  readonly #events = new Map<string, { key: LogKey; at: number[] }>();

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Records one match at `atMs`. */
  record(key: LogKey, atMs: number): void {
    let id = idOf(key);
    if (!this.#events.has(id) && this.#events.size >= MAX_KEYS) {
      key = { source: key.source, rule: key.rule };
      id = idOf(key);
    }
    let entry = this.#events.get(id);
    if (entry === undefined) {
      entry = { key, at: [] };
      this.#events.set(id, entry);
    }
    entry.at.push(atMs);
    if (entry.at.length > MAX_EVENTS) entry.at.splice(0, entry.at.length - MAX_EVENTS);
  }

  /** Every key seen (also those whose count fell to 0) with its count in the window ending at `nowMs`. */
  counts(nowMs: number): { key: LogKey; count: number }[] {
    const from = nowMs - this.#windowMs;
    const out: { key: LogKey; count: number }[] = [];
    for (const entry of this.#events.values()) {
      while (entry.at.length > 0 && (entry.at[0] ?? 0) <= from) entry.at.shift();
      out.push({ key: entry.key, count: entry.at.filter((t) => t <= nowMs).length });
    }
    return out;
  }

  /** Count of one key in the window ending at `nowMs`. */
  count(key: LogKey, nowMs: number): number {
    const entry = this.#events.get(idOf(key));
    if (entry === undefined) return 0;
    return entry.at.filter((t) => t > nowMs - this.#windowMs && t <= nowMs).length;
  }
}

function idOf(key: LogKey): string {
  return `${key.source}\0${key.rule}\0${key.device ?? ''}`;
}
