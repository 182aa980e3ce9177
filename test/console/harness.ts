/**
 * The console over a simulated fleet run by the real engine, for the console's tests and its
 * benchmark: a manual clock, cycles on demand, the demo's token scheme (a fake TokenReview and
 * SubjectAccessReview: an operator token may do everything, a viewer token only read).
 */
import { CATALOGUE } from '../../src/catalogue/index.js';
import { SIGNAL_PRESENCE } from '../../src/catalogue/signals.js';
import { defaultConfig, type Config } from '../../src/config/schema.js';
import { demoAccess, type DemoTokens } from '../../src/console/access.js';
import { startConsole, type ConsoleHandle } from '../../src/console/server.js';
import { simBackend } from '../../src/console/sim-backend.js';
import { ManualClock } from '../../src/core/clock.js';
import { TICKET_ANNOTATION } from '../../src/core/types.js';
import { createEngine, type Engine } from '../../src/daemon.js';
import { silentLogger } from '../../src/engine/logger.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createSimWorld, type SimWorld } from '../../src/sim/sim-world.js';
import { parseTicket, type Ticket } from '../../src/ticket/ticket.js';

/** A console over a running simulation. */
export interface ConsoleSim {
  readonly world: SimWorld;
  readonly clock: ManualClock;
  readonly engine: Engine;
  readonly console: ConsoleHandle;
  readonly tokens: DemoTokens;
  readonly names: readonly string[];
  readonly config: Config;
  /** One engine cycle, then `intervalMs` of virtual time, then the console's refresh. */
  cycle(): Promise<void>;
  ticket(node: string): Promise<Ticket | null>;
  close(): Promise<void>;
}

/** Starts a simulated fleet, the engine and the console on a free port. */
export async function startConsoleSim(
  opts: { nodes?: number; racksOf?: number; config?: Partial<Config>; intervalMs?: number } = {},
): Promise<ConsoleSim> {
  const clock = new ManualClock();
  const world = createSimWorld({
    nodes: opts.nodes ?? 32,
    seed: 7,
    catalogue: CATALOGUE,
    clock,
    ...(opts.racksOf === undefined ? {} : { racksOf: opts.racksOf }),
  });
  const base = defaultConfig();
  const config: Config = {
    ...base,
    ...opts.config,
    safety: { ...base.safety, dryRun: false, ...opts.config?.safety },
  };
  const ac = new AbortController();
  const signal = ac.signal;
  const { access, tokens } = demoAccess();
  const late: { handle?: ConsoleHandle } = {};
  const prio = new Map(CATALOGUE.map((e) => [e.name, e.priority]));
  const engine = createEngine({
    cluster: world.cluster,
    metricsSource: world.metrics,
    clock,
    config,
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    priorityOf: () => (name) => prio.get(name) ?? 999,
    metrics: createMetrics(),
    log: silentLogger,
    onSnapshot: (s) => late.handle?.onSnapshot(s),
  });
  const console = await startConsole({
    backend: simBackend({
      nodes: () => world.cluster.listNodes(signal),
      writer: world.cluster,
      setControl: (data) => {
        world.cluster.setControl(data);
      },
      config,
    }),
    access,
    port: 0,
    host: '127.0.0.1',
    refreshEveryMs: 0,
  });
  late.handle = console;
  const names = (await world.cluster.listNodes(signal)).map((n) => n.name);
  const interval = opts.intervalMs ?? 30_000;
  return {
    world,
    clock,
    engine,
    console,
    tokens,
    names,
    config,
    async cycle() {
      await engine.controller.cycle(signal);
      await clock.advance(interval);
      await console.refresh();
    },
    async ticket(node) {
      const raw = (await world.cluster.getNode(node, signal)).annotations[TICKET_ANNOTATION];
      return raw === undefined ? null : parseTicket(raw, node);
    },
    async close() {
      ac.abort();
      await console.close();
    },
  };
}

/** A fetch against the console, with JSON in and out. */
export async function call(
  url: string,
  init: {
    method?: string;
    body?: unknown;
    cookie?: string;
    csrf?: string;
    origin?: string;
    bearer?: string;
  } = {},
): Promise<{ status: number; body: Record<string, unknown>; cookie?: string }> {
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.cookie !== undefined) headers['cookie'] = init.cookie;
  if (init.csrf !== undefined) headers['x-aegis-csrf'] = init.csrf;
  if (init.origin !== undefined) headers['origin'] = init.origin;
  if (init.bearer !== undefined) headers['authorization'] = `Bearer ${init.bearer}`;
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  const body = (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>;
  const set = res.headers.get('set-cookie');
  return {
    status: res.status,
    body,
    ...(set === null ? {} : { cookie: set.split(';')[0] ?? '' }),
  };
}

/** Logs in with a token (as the page does): the session cookie and CSRF token. */
export async function login(
  base: string,
  token: string,
): Promise<{ cookie: string; csrf: string; may: Record<string, boolean> }> {
  const r = await call(`${base}/api/login`, { body: { token }, origin: base });
  if (r.status !== 200 || r.cookie === undefined)
    throw new Error(`login failed: ${r.status} ${JSON.stringify(r.body)}`);
  return {
    cookie: r.cookie,
    csrf: String(r.body['csrf']),
    may: r.body['may'] as Record<string, boolean>,
  };
}
