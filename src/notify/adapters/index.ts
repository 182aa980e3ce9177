import type { Clock } from '../../core/clock.js';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../engine/logger.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { TicketAdapter } from './adapter.js';
import { createTicketDispatcher, type TicketDispatcher, type WriteBack } from './dispatcher.js';
import type { RetryPolicy } from './http.js';
import { createJiraAdapter } from './jira.js';
import { createServiceNowAdapter } from './servicenow.js';
import { createWebhookAdapter } from './webhook.js';

export type { ExternalRef, TicketAdapter } from './adapter.js';
export type { DispatcherDeps, TicketDispatcher, WriteBack } from './dispatcher.js';
export { createTicketDispatcher } from './dispatcher.js';
export { diffTicket, eventKey, type TicketEvent, type TicketEventKind } from './events.js';
export { webhookSignature } from './webhook.js';

export type TicketAdaptersConfig = Config['notify']['adapters'];

export interface TicketAdapterDeps {
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Config `clusterName`: in every webhook body and in the tags that name tickets externally. */
  readonly clusterName: string;
  /** Jitter source in [0, 1) (tests). */
  readonly random?: () => number;
}

/** The retry policy of every adapter request, from the config. */
export function retryPolicy(config: TicketAdaptersConfig): RetryPolicy {
  return {
    maxAttempts: config.maxAttempts,
    initialBackoffMs: config.initialBackoffMs,
    maxBackoffMs: config.maxBackoffMs,
    timeoutMs: config.timeoutMs,
  };
}

/**
 * The enabled adapters, each checked (its secret files are readable and not empty): throws
 * CONFIG_INVALID naming the config key and the file otherwise.
 */
export function createTicketAdapters(
  config: TicketAdaptersConfig,
  deps: TicketAdapterDeps,
): TicketAdapter[] {
  const common = { ...deps, policy: retryPolicy(config) };
  const adapters: TicketAdapter[] = [];
  if (config.webhook !== undefined && config.webhook.enabled)
    adapters.push(createWebhookAdapter(config.webhook, common));
  if (config.jira !== undefined && config.jira.enabled)
    adapters.push(createJiraAdapter(config.jira, common));
  if (config.servicenow !== undefined && config.servicenow.enabled)
    adapters.push(createServiceNowAdapter(config.servicenow, common));
  for (const a of adapters) a.check();
  return adapters;
}

/**
 * The daemon's entry point: the dispatcher over the enabled adapters, or undefined when none is
 * enabled (the default). Throws CONFIG_INVALID for an unreadable secret file.
 */
export function createTicketDispatcherFromConfig(
  config: Config,
  deps: Omit<TicketAdapterDeps, 'clusterName'> & { readonly writeBack: WriteBack },
): TicketDispatcher | undefined {
  const a = config.notify.adapters;
  const adapters = createTicketAdapters(a, { ...deps, clusterName: config.clusterName });
  if (adapters.length === 0) return undefined;
  return createTicketDispatcher(adapters, deps, {
    queueSize: a.queueSize,
    concurrency: a.concurrency,
  });
}
