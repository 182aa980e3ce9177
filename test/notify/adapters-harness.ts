import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../src/core/clock.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { createMemoryLogger } from '../../src/engine/logger.js';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import {
  createTicketAdapters,
  createTicketDispatcher,
  type TicketAdaptersConfig,
  type TicketDispatcher,
} from '../../src/notify/adapters/index.js';
import { newTicket, StepStatus, TicketStatus, type Ticket } from '../../src/ticket/ticket.js';

/** One request as the local server saw it. */
export interface Seen {
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** What the server answers; `hang` never answers (a timeout). */
export type Answer = { status: number; json?: unknown; headers?: Record<string, string> } | 'hang';

/** A loopback HTTP server recording every request and answering through `handler`. */
export class Recorder {
  readonly seen: Seen[] = [];
  readonly #server: Server;
  #hanging: (() => void)[] = [];

  constructor(handler: (req: Seen, recorder: Recorder) => Answer) {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const u = new URL(req.url ?? '/', 'http://127.0.0.1');
        const seen: Seen = {
          method: req.method ?? '',
          url: req.url ?? '',
          path: u.pathname,
          query: u.searchParams,
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        };
        this.seen.push(seen);
        const answer = handler(seen, this);
        if (answer === 'hang') {
          this.#hanging.push(() => res.destroy());
          return;
        }
        const body = answer.json === undefined ? '' : JSON.stringify(answer.json);
        res.writeHead(answer.status, {
          ...(body === '' ? {} : { 'Content-Type': 'application/json' }),
          ...answer.headers,
        });
        res.end(body);
      });
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const h of this.#hanging) h();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => {
      this.#server.close(() => {
        resolve();
      });
    });
  }
}

/**
 * A clock whose sleeps return at once (after a macrotask) and move time: retries are tested
 * without waiting, and the delays asked for are recorded.
 */
export class FastClock implements Clock {
  readonly sleeps: number[] = [];
  #now = Date.UTC(2026, 4, 4, 10, 0, 0);

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    this.#now += ms;
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      setImmediate(resolve);
    });
  }
}

/** Secret files in a temporary directory (never in the repository). */
export class Secrets {
  readonly dir = mkdtempSync(join(tmpdir(), 'aegis-adapters-'));

  file(name: string, value: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, `${value}\n`);
    return path;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The node's ticket as the cluster holds it, with the write-back port over it. */
export class TicketStore {
  current: Ticket | null = null;
  readonly writes: { node: string; before: Ticket; after: Ticket | undefined }[] = [];

  readonly writeBack = (node: string, mutate: (t: Ticket) => Ticket | undefined): Promise<void> => {
    if (this.current === null) return Promise.resolve();
    const before = this.current;
    const after = mutate(before);
    this.writes.push({ node, before, after });
    if (after !== undefined) this.current = after;
    return Promise.resolve();
  };
}

/** The adapters' config block, parsed by the real schema (defaults and checks of the daemon). */
export function adaptersConfig(block: Record<string, unknown>): TicketAdaptersConfig {
  return ConfigSchema.parse({ notify: { adapters: block } }).notify.adapters;
}

export interface Harness {
  readonly dispatcher: TicketDispatcher;
  readonly metrics: Metrics;
  readonly log: ReturnType<typeof createMemoryLogger>;
  readonly clock: FastClock;
  readonly store: TicketStore;
}

/** A dispatcher over the adapters of `block`, with a fast clock and no jitter. */
export function harness(block: Record<string, unknown>, clusterName = 'lab'): Harness {
  const metrics = createMetrics();
  const log = createMemoryLogger();
  const clock = new FastClock();
  const store = new TicketStore();
  const config = adaptersConfig(block);
  const adapters = createTicketAdapters(config, {
    clock,
    metrics,
    log,
    clusterName,
    random: () => 0,
  });
  const dispatcher = createTicketDispatcher(
    adapters,
    { metrics, log, writeBack: store.writeBack },
    { queueSize: config.queueSize, concurrency: config.concurrency },
  );
  return { dispatcher, metrics, log, clock, store };
}

const T0 = Date.UTC(2026, 4, 4, 9, 0, 0);
const iso = (s: number): string => new Date(T0 + s * 1000).toISOString();

/**
 * The life of one ticket, as the daemon and an operator write it: opened with a Cordon, a Reboot
 * that fails, a hand-off to `sre`, then `kubectl aegis ack` by alice. Each version keeps what the
 * previous one had (the `external` list the adapters wrote back included), as the cluster would.
 */
export const lifecycle: readonly ((t: Ticket | null) => Ticket)[] = [
  // opened: the first step, Cordon, Running
  () => ({
    ...newTicket({
      condition: 'Xid79GPULost',
      reason: 'aegis detect node gpu-7 Xid79GPULost, type: GPU 3, reason: XID 79',
      nowMs: T0,
    }),
    conditions: ['Xid79GPULost/3'],
    updateTime: iso(0),
    nextSeq: 1,
    cordonedByAegis: true,
    workflows: [
      {
        action: 'Cordon',
        status: StepStatus.Running,
        time: iso(0),
        seq: 0,
        condition: 'Xid79GPULost',
        message: 'cordon before repair',
      },
    ],
  }),
  // Cordon Succeeded, Reboot Running
  (t) => ({
    ...t!,
    updateTime: iso(5),
    nextSeq: 2,
    workflows: [
      { ...t!.workflows[0]!, status: StepStatus.Succeeded, end: iso(2), message: 'cordoned' },
      {
        action: 'Reboot',
        status: StepStatus.Running,
        time: iso(5),
        seq: 1,
        condition: 'Xid79GPULost',
        message: 'reboot to clear XID 79',
      },
    ],
  }),
  // Reboot Failed, HandToHuman Running
  (t) => ({
    ...t!,
    updateTime: iso(300),
    nextSeq: 3,
    workflows: [
      t!.workflows[0]!,
      {
        ...t!.workflows[1]!,
        status: StepStatus.Failed,
        end: iso(300),
        exitCode: 1,
        message: 'node did not come back',
      },
      {
        action: 'HandToHuman',
        status: StepStatus.Running,
        time: iso(300),
        seq: 2,
        condition: 'Xid79GPULost',
        then: 'assign',
      },
    ],
  }),
  // HandToHuman Succeeded: assigned to sre
  (t) => ({
    ...t!,
    updateTime: iso(301),
    status: TicketStatus.Assigned,
    supervisor: 'sre',
    whySRE: 'reboot failed: hardware suspected',
    conclusion: 'reboot failed: hardware suspected',
    workflows: [
      t!.workflows[0]!,
      t!.workflows[1]!,
      { ...t!.workflows[2]!, status: StepStatus.Succeeded, end: iso(301) },
    ],
  }),
  // kubectl aegis ack NODE, by alice
  (t) => ({
    ...t!,
    status: TicketStatus.Closed,
    supervisor: 'alice',
    updateTime: iso(4000),
    resolvedTime: iso(4000),
    conclusion: 'acknowledged by alice',
    operatorLog: [{ action: 'ack', by: 'alice', at: iso(4000) }],
  }),
];

/** Runs the lifecycle through the dispatcher, waiting for delivery after each version. */
export async function runLifecycle(h: Harness, node = 'gpu-7'): Promise<void> {
  h.dispatcher.observe(node, null);
  for (const next of lifecycle) {
    const t = next(h.store.current);
    // The daemon's write keeps the external ids already written back.
    h.store.current =
      h.store.current?.external === undefined ? t : { ...t, external: h.store.current.external };
    h.dispatcher.observe(node, h.store.current);
    await h.dispatcher.idle();
    // The write-back produced a new version: the watch sees it too (no event expected).
    h.dispatcher.observe(node, h.store.current);
    await h.dispatcher.idle();
  }
}
