import { createHmac } from 'node:crypto';
import type { ExternalRef, TicketAdapter } from './adapter.js';
import {
  domainOf,
  eventSummary,
  eventTitle,
  lastSteps,
  type TicketEvent,
  type TicketEventKind,
} from './events.js';
import { SecretFile, sendWithRetry, type HttpDeps, type RetryPolicy } from './http.js';
import type { Workflow } from '../../ticket/ticket.js';

/**
 * The generic webhook: every event POSTed as JSON to one URL.
 *
 * Headers: `X-Aegis-Event`, `X-Aegis-Idempotency-Key` (the event's key, the same on every retry),
 * `X-Aegis-Timestamp` (Unix seconds of this attempt) and `X-Aegis-Signature: sha256=<hex>`, the
 * HMAC-SHA256 with the shared key of `<timestamp>.<raw body>`: the timestamp is signed with the
 * body, so a receiver that refuses old timestamps (5 minutes) refuses a replayed request. The body
 * is the same on every retry. A 2xx answer `{"id": "...", "url": "..."}` (optional) names the
 * receiver's ticket, written back into the Aegis ticket as `external` system `webhook`.
 */

export const WEBHOOK_SYSTEM = 'webhook';
/** Entries of the ticket's timeline sent with every event. */
const STEPS_SENT = 10;

export interface WebhookConfig {
  readonly url: string;
  readonly hmacKeyFile: string;
  readonly events: readonly TicketEventKind[];
}

/** The JSON body of one event (schema version 1). */
export function webhookBody(e: TicketEvent, clusterName: string): Record<string, unknown> {
  const t = e.ticket;
  const step = (w: Workflow): Record<string, unknown> => ({
    ...(w.seq === undefined ? {} : { seq: w.seq }),
    action: w.action,
    status: w.status,
    ...(w.time === undefined ? {} : { time: w.time }),
    ...(w.end === undefined ? {} : { end: w.end }),
    ...(w.message === undefined ? {} : { message: w.message }),
    ...(w.exitCode === undefined ? {} : { exitCode: w.exitCode }),
    ...(w.condition === undefined ? {} : { condition: w.condition }),
  });
  return {
    version: 1,
    event: e.kind,
    idempotencyKey: e.key,
    at: e.at,
    cluster: clusterName,
    node: e.node,
    condition: t.condition,
    domain: domainOf(t.condition),
    title: eventTitle(e),
    summary: eventSummary(e),
    ticket: {
      status: t.status,
      supervisor: t.supervisor,
      creationTime: t.creationTime,
      ...(t.updateTime === undefined ? {} : { updateTime: t.updateTime }),
      ...(t.resolvedTime === undefined ? {} : { resolvedTime: t.resolvedTime }),
      reason: t.reason,
      conditions: t.conditions,
      history: t.history,
      ...(t.whySRE === undefined ? {} : { whySRE: t.whySRE }),
      ...(t.conclusion === undefined ? {} : { conclusion: t.conclusion }),
      ...(t.approval === undefined ? {} : { approval: t.approval }),
    },
    ...(e.step === undefined ? {} : { step: step(e.step) }),
    ...(e.to === undefined ? {} : { handedTo: e.to }),
    ...(e.closedBecause === undefined ? {} : { closedBecause: e.closedBecause }),
    steps: lastSteps(t, STEPS_SENT).map(step),
  };
}

/** `sha256=<hex>` of HMAC-SHA256(key, `<timestamp>.<body>`). */
export function webhookSignature(key: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', key).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Reads the receiver's ticket from a 2xx answer, when it names one. */
function refFromAnswer(text: string): ExternalRef | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { id, url } = value as { id?: unknown; url?: unknown };
  if (typeof id !== 'string' || id === '' || id.length > 120) return undefined;
  return {
    system: WEBHOOK_SYSTEM,
    id,
    ...(typeof url === 'string' && url !== '' && url.length <= 300 ? { url } : {}),
  };
}

export function createWebhookAdapter(
  config: WebhookConfig,
  deps: HttpDeps & { readonly policy: RetryPolicy; readonly clusterName: string },
): TicketAdapter {
  const key = new SecretFile('notify.adapters.webhook.hmacKeyFile', config.hmacKeyFile);
  return {
    system: WEBHOOK_SYSTEM,
    events: new Set(config.events),
    check: () => {
      key.check();
    },
    deliver: async (event, known, stop) => {
      const body = JSON.stringify(webhookBody(event, deps.clusterName));
      const res = await sendWithRetry(
        WEBHOOK_SYSTEM,
        {
          method: 'POST',
          url: config.url,
          body,
          headers: async () => {
            const ts = String(Math.floor(deps.clock.now() / 1000));
            return {
              'Content-Type': 'application/json',
              'User-Agent': 'aegis-ticket-adapter/1',
              'X-Aegis-Event': event.kind,
              'X-Aegis-Idempotency-Key': event.key,
              'X-Aegis-Timestamp': ts,
              'X-Aegis-Signature': webhookSignature(await key.read(), ts, body),
            };
          },
        },
        deps.policy,
        deps,
        stop,
      );
      const ref = known ?? refFromAnswer(res.text);
      return ref === undefined ? {} : { ref };
    },
  };
}
