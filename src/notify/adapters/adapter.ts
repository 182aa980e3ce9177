import type { TicketEvent, TicketEventKind } from './events.js';

/** A ticket in an external system, as written back into the Aegis ticket's `external` list. */
export interface ExternalRef {
  /** Short, stable system name (`webhook`, `jira`, `servicenow`): the `external[].system` key. */
  readonly system: string;
  readonly id: string;
  readonly url?: string | undefined;
}

/**
 * One external system. `deliver` sends one event, retrying each request itself (so an event made
 * of two requests never repeats the first), and resolves with the system's ticket when it has one
 * (created now, or already known); it throws DeliveryError when the event cannot be delivered.
 */
export interface TicketAdapter {
  /** `external[].system` and the `adapter` metric label. */
  readonly system: string;
  /** Events this adapter is told about (config `events`). */
  readonly events: ReadonlySet<TicketEventKind>;
  /** Checks what can be checked before the first event (secret files): throws CONFIG_INVALID. */
  check(): void;
  /**
   * Sends one event. `known` is the system's ticket for this Aegis ticket when one is known (from
   * the ticket's `external` list, or created earlier by this process). Resolves `skipped` when the
   * event has nothing to do in this system (an update for a ticket it never opened).
   */
  deliver(
    event: TicketEvent,
    known: ExternalRef | undefined,
    stop: AbortSignal,
  ): Promise<{ ref?: ExternalRef; skipped?: boolean }>;
}
