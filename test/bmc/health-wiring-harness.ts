/**
 * The rig of the BMC-health wiring tests (ipmi_sim and Redfish): the real engine on a simulated
 * fleet of two nodes, the first with its ipmi-exporter not scraped and the second reporting, both
 * mapped to one BMC at `address`, read through `connectors` with the credentials `readSecret`
 * gives. Level 0 (cordon and ticket, nothing disruptive), both nodes may be cordoned, and
 * BaseBoardCriticalIssue raised and cleared at once (the catalogue's 3 h `for` is about
 * ipmi-exporter's scrapes).
 */
import { createOutOfBand, type SecretReader } from '../../src/bmc/out-of-band.js';
import type { BmcConnector, BmcProtocol } from '../../src/bmc/types.js';
import { CATALOGUE } from '../../src/catalogue/index.js';
import { SIGNAL_PRESENCE } from '../../src/catalogue/signals.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import { TICKET_ANNOTATION } from '../../src/core/types.js';
import { createEngine, type Engine } from '../../src/daemon.js';
import { createMemoryLogger } from '../../src/engine/logger.js';
import type { StepEvent } from '../../src/engine/runner.js';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import { createSimWorld, type SimWorld } from '../../src/sim/sim-world.js';

export const MIN = 60_000;

/** A started rig. */
export interface HealthWiring {
  readonly world: SimWorld;
  readonly engine: Engine;
  readonly metrics: Metrics;
  readonly clock: ManualClock;
  readonly log: ReturnType<typeof createMemoryLogger>;
  readonly steps: StepEvent[];
  /** The node whose ipmi-exporter is not scraped (its BMC is read). */
  readonly noExporter: string;
  /** The node whose ipmi-exporter reports (its BMC is never read). */
  readonly withExporter: string;
  /**
   * `advanceMs` on, one cycle that starts a BMC reading, the reading, then two cycles that fold it
   * in (an absence counts once a presence answer, asked beside the cycles, confirms it).
   */
  readBmcs(advanceMs?: number): Promise<void>;
  /** The condition's gauge (nodes with it active). */
  gauge(condition: string): Promise<number>;
  /** BMC health readings, of one result or all. */
  polls(result?: string): Promise<number>;
  /** The node's ticket annotation ('' when none). */
  ticketOf(node: string): Promise<string>;
}

export async function startHealthWiring(opts: {
  /** `ipmi://host:port` or `redfish://host:port`. */
  readonly address: string;
  readonly protocol: BmcProtocol;
  readonly connector: BmcConnector;
  readonly readSecret: SecretReader;
}): Promise<HealthWiring> {
  const signal = new AbortController().signal;
  const clock = new ManualClock();
  const world = createSimWorld({ nodes: 2, seed: 7, catalogue: CATALOGUE, clock });
  const [noExporter = '', withExporter = ''] = (await world.cluster.listNodes(signal)).map(
    (n) => n.name,
  );
  world.metrics.staleExporter(noExporter, 'ipmi-exporter');
  const nodes = { [noExporter]: opts.address, [withExporter]: opts.address };
  const config = ConfigSchema.parse({
    safety: { dryRun: false, maxCordonedFraction: 1 },
    sop: { level: 0 },
    bmc: { enabled: true, nodes, health: { intervalMs: MIN, staleAfterMs: 10 * MIN } },
    conditions: { BaseBoardCriticalIssue: { forMs: 0, clearForMs: 0 } },
  });
  const metrics = createMetrics();
  const log = createMemoryLogger();
  const steps: StepEvent[] = [];
  const prio = new Map(CATALOGUE.map((e) => [e.name, e.priority]));
  const elsewhere: BmcConnector = () => {
    throw new Error('not here');
  };
  const engine = createEngine({
    cluster: world.cluster,
    metricsSource: world.metrics,
    clock,
    config,
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    priorityOf: () => (name) => prio.get(name) ?? 999,
    metrics,
    log,
    onStep: (e) => steps.push(e),
    outOfBand: createOutOfBand({
      selection: {
        enabled: true,
        defaultProtocol: 'ipmi',
        credentials: '',
        nodes,
        allowedAddresses: [],
      },
      credentialsSecret: 'aegis-bmc',
      readSecret: opts.readSecret,
      connectors: {
        ipmi: opts.protocol === 'ipmi' ? opts.connector : elsewhere,
        redfish: opts.protocol === 'redfish' ? opts.connector : elsewhere,
      },
      timing: { powerOffTimeoutMs: MIN, powerOnTimeoutMs: MIN, bootTimeoutMs: MIN, pollMs: 1000 },
      notReadyAfterMs: 10 * MIN,
      metrics,
    }),
  });
  /** Lets the steps begun settle (writes on the simulated cluster; Jobs wait for the clock). */
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));
  return {
    world,
    engine,
    metrics,
    clock,
    log,
    steps,
    noExporter,
    withExporter,
    async readBmcs(advanceMs = MIN) {
      await clock.advance(advanceMs);
      await engine.controller.cycle(signal);
      await engine.controller.bmcHealthSettled();
      for (let i = 0; i < 2; i++) {
        await clock.advance(5_000);
        await engine.controller.cycle(signal);
        await settle();
      }
    },
    gauge: async (condition) =>
      (await metrics.conditionGauge.get()).values.find((v) => v.labels.condition === condition)
        ?.value ?? 0,
    polls: async (result) =>
      (await metrics.bmcHealthPolls.get()).values
        .filter((v) => result === undefined || v.labels.result === result)
        .reduce((n, v) => n + v.value, 0),
    ticketOf: async (node) =>
      (await world.cluster.getNode(node, signal)).annotations[TICKET_ANNOTATION] ?? '',
  };
}
