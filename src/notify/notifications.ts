import { CATALOGUE } from '../catalogue/index.js';
import type { Config } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../engine/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Ticket } from '../ticket/ticket.js';
import type { FleetSnapshot } from './alerts.js';
import { alertmanagerFromConfig } from './alertmanager.js';
import { createTicketDispatcherFromConfig, type WriteBack } from './adapters/index.js';

/** The daemon's notifications: Alertmanager alerts and external ticket adapters, both optional. */
export interface Notifications {
  /** Fed with every cycle's snapshot (never blocks, never throws). */
  readonly onSnapshot: ((s: FleetSnapshot) => void) | undefined;
  /** Leadership lost: stop re-posting alerts, forget what the adapters saw. */
  demoted(): void;
  /** Runs the background senders until `signal` aborts; resolves when they have stopped. */
  run(signal: AbortSignal): Promise<void>;
}

/**
 * Builds what `notify:` in the config asks for (nothing by default). Throws CONFIG_INVALID for a bad
 * URL or an unreadable secret file, at start-up.
 */
export function createNotifications(
  config: Config,
  deps: {
    readonly clock: Clock;
    readonly metrics: Metrics;
    readonly log: Logger;
    readonly writeBack: WriteBack;
    readonly sopOf: (condition: string) => string | undefined;
  },
): Notifications {
  const domains = new Map(CATALOGUE.map((e) => [e.name, e.domain]));
  const alerts = alertmanagerFromConfig(config, {
    clock: deps.clock,
    metrics: deps.metrics,
    log: deps.log,
    domainOf: (c) => domains.get(c),
    sopOf: deps.sopOf,
  });
  const tickets = createTicketDispatcherFromConfig(config, {
    clock: deps.clock,
    metrics: deps.metrics,
    log: deps.log,
    writeBack: deps.writeBack,
  });
  if (alerts === undefined && tickets === undefined)
    return { onSnapshot: undefined, demoted: () => undefined, run: () => Promise.resolve() };
  /** Nodes that had a ticket in the last snapshot (one gone since is reported as removed). */
  let ticketed = new Set<string>();
  return {
    onSnapshot(s) {
      alerts?.observe(s);
      if (tickets === undefined) return;
      const now = new Set<string>();
      for (const n of s.nodes) {
        if (n.corrupt !== undefined) continue;
        const t: Ticket | null = n.ticket;
        if (t !== null) now.add(n.name);
        tickets.observe(n.name, t);
      }
      for (const name of ticketed) if (!now.has(name)) tickets.observe(name, null);
      ticketed = now;
    },
    demoted() {
      alerts?.forget();
      tickets?.reset();
      ticketed = new Set();
    },
    async run(signal) {
      await Promise.all([
        alerts?.run(signal),
        new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => {
            resolve();
          });
        }).then(() => tickets?.stop()),
      ]);
    },
  };
}
