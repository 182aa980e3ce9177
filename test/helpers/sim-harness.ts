import { CATALOGUE } from '../../src/catalogue/index.js';
import { SIGNAL_PRESENCE } from '../../src/catalogue/signals.js';
import { defaultConfig, type Config } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import { TICKET_ANNOTATION, type NodeInfo } from '../../src/core/types.js';
import { createEngine, type Engine } from '../../src/daemon.js';
import { silentLogger } from '../../src/engine/logger.js';
import type { StepEvent } from '../../src/engine/runner.js';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import { createSimWorld, type SimWorld } from '../../src/sim/sim-world.js';
import { parseTicket, type Ticket } from '../../src/ticket/ticket.js';

/** A simulated fleet with the real engine on top, driven by a manual clock. */
export interface SimHarness {
  readonly world: SimWorld;
  readonly clock: ManualClock;
  readonly engine: Engine;
  readonly metrics: Metrics;
  readonly steps: StepEvent[];
  readonly signal: AbortSignal;
  node(i: number): string;
  get(name: string): Promise<NodeInfo>;
  ticket(name: string): Promise<Ticket | null>;
  /** Runs cycles every `intervalMs` of virtual time for `durationMs`. */
  run(durationMs: number, intervalMs?: number): Promise<void>;
  /** Steps of one node with a given status, as `Action`. */
  actions(node: string, status?: string): string[];
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** Builds a harness; config defaults to the product defaults with dry-run off. */
export async function createSimHarness(
  opts: {
    nodes?: number;
    config?: DeepPartial<Config>;
    plugins?: { sop: unknown; origin: string }[];
  } = {},
): Promise<SimHarness> {
  const clock = new ManualClock();
  const world = createSimWorld({ nodes: opts.nodes ?? 8, seed: 7, catalogue: CATALOGUE, clock });
  const base = defaultConfig();
  const c = opts.config ?? {};
  const config: Config = {
    ...base,
    ...(c as Partial<Config>),
    safety: { ...base.safety, dryRun: false, ...(c.safety as Partial<Config['safety']>) },
    sop: { ...base.sop, ...(c.sop as Partial<Config['sop']>) },
    inspect: { ...base.inspect, ...(c.inspect as Partial<Config['inspect']>) },
  };
  const prio = new Map(CATALOGUE.map((e) => [e.name, e.priority]));
  const metrics = createMetrics();
  const steps: StepEvent[] = [];
  const engine = createEngine({
    cluster: world.cluster,
    metricsSource: world.metrics,
    clock,
    config,
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    priorityOf: () => (name) => prio.get(name) ?? 999,
    metrics,
    log: silentLogger,
    onStep: (e) => steps.push(e),
    ...(opts.plugins === undefined ? {} : { plugins: opts.plugins }),
  });
  const signal = new AbortController().signal;
  const names = (await world.cluster.listNodes(signal)).map((n) => n.name);
  return {
    world,
    clock,
    engine,
    metrics,
    steps,
    signal,
    node: (i) => names[i] as string,
    get: (name) => world.cluster.getNode(name, signal),
    async ticket(name) {
      const raw = (await world.cluster.getNode(name, signal)).annotations[TICKET_ANNOTATION];
      return raw === undefined ? null : parseTicket(raw, name);
    },
    async run(durationMs, intervalMs = 5_000) {
      const end = clock.now() + durationMs;
      while (clock.now() < end) {
        await engine.controller.cycle(signal);
        await clock.advance(intervalMs);
      }
    },
    actions: (node, status = 'Succeeded') =>
      steps.filter((s) => s.node === node && s.status === status).map((s) => s.action),
  };
}
