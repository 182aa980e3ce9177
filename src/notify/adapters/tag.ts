import { createHash } from 'node:crypto';
import type { Ticket } from '../../ticket/ticket.js';

/**
 * A short, stable name of one Aegis ticket in a system that has no idempotency key (a Jira label
 * `aegis-<tag>`, a ServiceNow `correlation_id`): the first 16 hex digits of the SHA-256 of
 * `<cluster>/<node>/<creationTime>`. The adapters look for it before they create, so a lost answer
 * or a restart never opens a second external ticket for one Aegis ticket.
 */
export function ticketTag(clusterName: string, node: string, ticket: Ticket): string {
  return createHash('sha256')
    .update(`${clusterName}/${node}/${ticket.creationTime}`)
    .digest('hex')
    .slice(0, 16);
}
