/**
 * A watch-fed cache of the fleet's nodes, informer-style: one LIST, then a WATCH from the list's
 * resourceVersion, so an inspection cycle reads memory instead of listing every node.
 *
 * - `NodeCache` is the pure part: it applies lists, watch events and our own writes, keeps them
 *   in order by resourceVersion, builds the snapshot and decides the retry delay.
 * - `NodeInformer` runs the LIST → WATCH → re-WATCH / re-LIST loop over a `NodeSource` (the
 *   client-node wiring is in kube-cluster.ts) and answers `listNodes`.
 *
 * Staleness is never silent: `listNodes` serves the cache only while it is seeded and a watch is
 * established; otherwise it does a direct LIST (which reseeds the cache) and throws if that fails.
 */
import type { Clock } from '../core/clock.js';
import type { NodeInfo } from '../core/types.js';

/** A complete list of nodes at one resourceVersion. */
export interface NodeList {
  readonly items: readonly NodeInfo[];
  readonly resourceVersion: string;
}

/** One watch event, in our terms. */
export type NodeWatchEvent =
  | { readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'; readonly node: NodeInfo }
  | { readonly type: 'BOOKMARK'; readonly resourceVersion: string }
  /** The apiserver's Status in the stream; 410 means the resourceVersion is too old. */
  | { readonly type: 'ERROR'; readonly status?: number; readonly message: string };

/** Callbacks of one watch. `onEnd` is called once: `undefined` for a clean end, else the error. */
export interface NodeWatchHandlers {
  readonly onEvent: (event: NodeWatchEvent) => void;
  readonly onEnd: (err?: unknown) => void;
}

/** Where lists and watches come from (client-node in production, a fake in tests). */
export interface NodeSource {
  /** A full (paginated) list; throws HealError with a K8S_* code. */
  list(signal: AbortSignal): Promise<NodeList>;
  /**
   * Starts a watch from `resourceVersion`. Resolves once the stream is established or has
   * already ended (then `onEnd` was called); returns the function that stops it.
   */
  watch(resourceVersion: string, handlers: NodeWatchHandlers): Promise<() => void>;
}

/** First retry delay after a failed list or watch; doubles up to `MAX_BACKOFF_MS`. */
export const MIN_BACKOFF_MS = 200;
export const MAX_BACKOFF_MS = 5_000;
/** A watch that ends cleanly after this long (a server-side timeout) is resumed at once. */
export const HEALTHY_WATCH_MS = 1_000;

/** The HTTP status a watch ended with (Watch errors carry `statusCode`, API errors `code`). */
export function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, statusCode } = err as { code?: unknown; statusCode?: unknown };
  if (typeof code === 'number') return code;
  return typeof statusCode === 'number' ? statusCode : undefined;
}

/** An ERROR event of a watch stream, as the error it ends the watch with. */
export class WatchStatusError extends Error {
  override readonly name = 'WatchStatusError';
  readonly code: number | undefined;

  constructor(status: number | undefined, message: string) {
    super(`watch nodes: ${status === undefined ? '' : `HTTP ${status}: `}${message}`);
    this.code = status;
  }
}

const DECIMAL = /^\d+$/;

/**
 * True when resourceVersion `a` is known to be older than `b`. etcd's are decimal integers; when
 * either is not, nothing is known and the caller accepts the newer data.
 */
export function isOlder(a: string, b: string): boolean {
  if (!DECIMAL.test(a) || !DECIMAL.test(b)) return false;
  return BigInt(a) < BigInt(b);
}

/** Code-unit order of names: the apiserver's (etcd key) order for RFC 1123 names. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The pure cache: no I/O, no timers; every input is a list, an event or a write result. */
/** A node stored in the cache: its previous version (undefined when new) and the new one. */
export type NodeChangeListener = (prev: NodeInfo | undefined, next: NodeInfo) => void;

export class NodeCache {
  readonly #nodes = new Map<string, NodeInfo>();
  /** Sorted names; undefined after a node was added or removed. */
  #names: string[] | undefined = [];
  /** The last snapshot handed out; undefined after any change. */
  #snapshot: readonly NodeInfo[] | undefined = Object.freeze([]);
  /** Position of the cache in the event stream: every change up to it is reflected. */
  #rv = '';
  /** Where the next watch starts; '' when a list is needed first (never listed, or 410 Gone). */
  #resumeRv = '';
  #seeded = false;
  #watching = false;
  #failures = 0;
  readonly #listeners = new Set<NodeChangeListener>();

  /** Calls `listener` with every node that changed in the cache (added or updated). */
  listen(listener: NodeChangeListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** True while the cache may be served: seeded by a list and a watch is established. */
  get synced(): boolean {
    return this.#seeded && this.#watching;
  }

  /** Where the next watch starts; '' when the next step must be a list. */
  resumeRv(): string {
    return this.#resumeRv;
  }

  get size(): number {
    return this.#nodes.size;
  }

  get(name: string): NodeInfo | undefined {
    return this.#nodes.get(name);
  }

  /** Every node, sorted by name; the same array object as long as nothing changed. */
  snapshot(): readonly NodeInfo[] {
    if (this.#snapshot === undefined) {
      this.#names ??= [...this.#nodes.keys()].sort(byName);
      const nodes = this.#nodes;
      this.#snapshot = Object.freeze(this.#names.map((n) => nodes.get(n) as NodeInfo));
    }
    return this.#snapshot;
  }

  /**
   * Reseeds from a complete list. A list older than what the cache already reflects is ignored
   * (returns false). A node we wrote after the list was taken keeps our newer version.
   */
  replace(list: NodeList): boolean {
    if (this.#rv !== '' && isOlder(list.resourceVersion, this.#rv)) return false;
    const listed = new Set<string>();
    for (const node of list.items) {
      listed.add(node.name);
      this.#put(node);
    }
    for (const [name, cached] of [...this.#nodes]) {
      // Absent from the list: deleted before it, unless our own write made it newer.
      if (!listed.has(name) && !isOlder(list.resourceVersion, cached.resourceVersion)) {
        this.#remove(name);
      }
    }
    this.#rv = list.resourceVersion;
    this.#resumeRv = list.resourceVersion;
    this.#seeded = true;
    return true;
  }

  /** Applies one watch event. ERROR events are the informer's business and change nothing. */
  apply(event: NodeWatchEvent): void {
    if (event.type === 'ERROR') return;
    const rv = event.type === 'BOOKMARK' ? event.resourceVersion : event.node.resourceVersion;
    // At or before the cache's position: already reflected (a replay after a newer list).
    if (rv !== '' && (rv === this.#rv || isOlder(rv, this.#rv))) return;
    if (event.type === 'DELETED') {
      const cached = this.#nodes.get(event.node.name);
      if (cached !== undefined && !isOlder(rv, cached.resourceVersion)) this.#remove(cached.name);
    } else if (event.type !== 'BOOKMARK') {
      this.#put(event.node);
    }
    if (rv !== '') {
      this.#rv = rv;
      this.#resumeRv = rv;
    }
  }

  /**
   * The result of our own write or read: visible at once, unless the cache already has newer.
   * One at or before the stream position is already reflected, or superseded: a node whose
   * deletion the watch delivered before our write's answer arrived must not come back.
   */
  upsert(node: NodeInfo): void {
    const rv = node.resourceVersion;
    if (rv !== '' && (rv === this.#rv || isOlder(rv, this.#rv))) return;
    this.#put(node);
  }

  /** A watch is established: the cache is served from now on (once seeded). */
  watchOpened(): void {
    this.#watching = true;
  }

  /**
   * A watch ended after `lastedMs` (`err` undefined for a clean end). Returns the delay before the
   * next attempt: none after a clean end of a healthy watch (the server's timeout), else the
   * backoff, which a healthy watch resets. A 410 Gone makes the next attempt a list.
   */
  watchClosed(err: unknown, lastedMs: number): number {
    this.#watching = false;
    if (statusOf(err) === 410) this.#resumeRv = '';
    if (lastedMs >= HEALTHY_WATCH_MS) this.#failures = 0;
    if (err === undefined && lastedMs >= HEALTHY_WATCH_MS) return 0;
    return this.#backoff();
  }

  /** A list (or the start of a watch) failed: the delay before the next attempt. */
  attemptFailed(): number {
    this.#watching = false;
    return this.#backoff();
  }

  /** The watch is gone (ended, failed or stopped): stop serving the cache at once. */
  watchLost(): void {
    this.#watching = false;
  }

  #backoff(): number {
    const delay = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(this.#failures, 16));
    this.#failures++;
    return delay;
  }

  /** Stores `node` unless the cache holds a newer version; a same-version node changes nothing. */
  #put(node: NodeInfo): void {
    const cached = this.#nodes.get(node.name);
    if (cached !== undefined) {
      if (cached.resourceVersion === node.resourceVersion && node.resourceVersion !== '') return;
      if (isOlder(node.resourceVersion, cached.resourceVersion)) return;
    } else {
      this.#names = undefined;
    }
    this.#nodes.set(node.name, node);
    this.#snapshot = undefined;
    for (const listener of this.#listeners) listener(cached, node);
  }

  #remove(name: string): void {
    if (this.#nodes.delete(name)) {
      this.#names = undefined;
      this.#snapshot = undefined;
    }
  }
}

/** Options of NodeInformer. */
export interface NodeInformerOptions {
  /** Time source of the retry delays and the idle watchdog (its sleeps must not hold the process). */
  readonly clock: Clock;
  /**
   * A watch that delivers nothing (no event, no bookmark) for this long is presumed dead and
   * restarted from its resourceVersion. The apiserver sends a bookmark about once a minute.
   */
  readonly idleTimeoutMs?: number;
  /**
   * Told of every failed list or watch start and every watch that ended with an error, with the
   * number of failures in a row: while they last, listNodes lists directly (one LIST a cycle).
   */
  readonly onError?: (err: unknown, failuresInARow: number) => void;
}

/** Default of `idleTimeoutMs`. */
export const WATCH_IDLE_TIMEOUT_MS = 150_000;

/**
 * Keeps a NodeCache in step with the apiserver and answers `list`. The loop starts with the first
 * `list` (so a client that never lists nodes never watches) and stops with `close`.
 */
export class NodeInformer {
  readonly cache = new NodeCache();
  readonly #source: NodeSource;
  readonly #clock: Clock;
  readonly #idleMs: number;
  readonly #onError: ((err: unknown, failuresInARow: number) => void) | undefined;
  #failuresInARow = 0;
  readonly #closed = new AbortController();
  #wake = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(source: NodeSource, options: NodeInformerOptions) {
    this.#source = source;
    this.#clock = options.clock;
    this.#idleMs = options.idleTimeoutMs ?? WATCH_IDLE_TIMEOUT_MS;
    this.#onError = options.onError;
  }

  /** True when `list` answers from the cache. */
  get synced(): boolean {
    return this.cache.synced;
  }

  /** The nodes, from the cache when synced, else from a direct list that reseeds it. */
  async list(signal: AbortSignal): Promise<readonly NodeInfo[]> {
    signal.throwIfAborted();
    if (this.cache.synced) return this.cache.snapshot();
    try {
      const list = await this.#source.list(signal);
      if (this.cache.replace(list)) this.#kick(); // a fresh resourceVersion: watch from it now
      return this.cache.snapshot();
    } finally {
      this.#start();
    }
  }

  /** Applies the result of our own write or read. */
  upsert(node: NodeInfo): NodeInfo {
    this.cache.upsert(node);
    return node;
  }

  /** Stops the watch and its retry loop; resolves when they ended. `list` then lists directly. */
  close(): Promise<void> {
    this.#closed.abort();
    this.cache.watchLost();
    return this.#loop ?? Promise.resolve();
  }

  #start(): void {
    if (this.#loop !== undefined || this.#closed.signal.aborted) return;
    this.#loop = this.#run();
  }

  /** Ends the current retry delay early, or skips the next one. */
  #kick(): void {
    this.#wake.abort();
  }

  async #run(): Promise<void> {
    const closed = this.#closed.signal;
    const isClosed = (): boolean => closed.aborted;
    while (!isClosed()) {
      // A kick counts from the start of an attempt: one during its failure skips the delay after it.
      if (this.#wake.signal.aborted) this.#wake = new AbortController();
      let delayMs: number;
      try {
        if (this.cache.resumeRv() === '') {
          this.cache.replace(await this.#source.list(closed));
          // Watching from '' would replay every node as ADDED: list again after a delay instead.
          if (this.cache.resumeRv() === '') throw new Error('list nodes: no resourceVersion');
        }
        delayMs = await this.#watchOnce(this.cache.resumeRv());
      } catch (err) {
        if (isClosed()) break;
        this.#report(err);
        delayMs = this.cache.attemptFailed();
      }
      const wake = this.#wake.signal;
      if (delayMs > 0 && !isClosed() && !wake.aborted) {
        await this.#clock.sleep(delayMs, AbortSignal.any([closed, wake])).catch(() => undefined);
      }
    }
  }

  /** Runs one watch to its end; returns the delay before the next attempt. */
  async #watchOnce(resourceVersion: string): Promise<number> {
    const cache = this.cache;
    const closed = this.#closed.signal;
    let lastSeen = this.#clock.now();
    const state = { ended: false };
    let end!: (err: unknown) => void;
    const done = new Promise<unknown>((resolve) => {
      end = (err) => {
        if (state.ended) return;
        state.ended = true;
        cache.watchLost(); // synchronously: no list may be answered from a watch that is gone
        resolve(err);
      };
    });
    const stop = await this.#source.watch(resourceVersion, {
      onEvent: (event) => {
        if (state.ended) return;
        lastSeen = this.#clock.now();
        if (event.type === 'ERROR') end(new WatchStatusError(event.status, event.message));
        else cache.apply(event);
      },
      onEnd: (err) => {
        end(err ?? undefined);
      },
    });
    const onClose = (): void => {
      end(undefined);
    };
    closed.addEventListener('abort', onClose, { once: true });
    if (closed.aborted) onClose();
    const openedAt = this.#clock.now();
    lastSeen = openedAt;
    if (!state.ended) cache.watchOpened();
    const watchdog = new AbortController();
    void this.#watchdog(watchdog.signal, () => lastSeen, end);
    const err = await done;
    watchdog.abort();
    closed.removeEventListener('abort', onClose);
    stop();
    const lastedMs = this.#clock.now() - openedAt;
    if (lastedMs >= HEALTHY_WATCH_MS) this.#failuresInARow = 0;
    if (err !== undefined && !closed.aborted) this.#report(err);
    return cache.watchClosed(err, lastedMs);
  }

  #report(err: unknown): void {
    this.#failuresInARow++;
    try {
      this.#onError?.(err, this.#failuresInARow);
    } catch {
      // A reporting hook never stops the loop.
    }
  }

  /** Ends the watch when it has been silent for longer than the idle timeout. */
  async #watchdog(
    signal: AbortSignal,
    lastSeen: () => number,
    end: (err: unknown) => void,
  ): Promise<void> {
    const every = Math.max(1, Math.floor(this.#idleMs / 4));
    while (!signal.aborted) {
      try {
        await this.#clock.sleep(every, signal);
      } catch {
        return;
      }
      if (this.#clock.now() - lastSeen() > this.#idleMs) {
        end(new Error(`watch nodes: nothing received for ${this.#idleMs} ms`));
        return;
      }
    }
  }
}
