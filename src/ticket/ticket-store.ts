import type { Clock } from '../core/clock.js';
import { ErrorCode, HealError, isHealError } from '../core/errors.js';
import { TICKET_ANNOTATION, type NodeInfo } from '../core/types.js';
import type { NodeClient } from '../k8s/cluster.js';
import { parseTicket, serializeTicket, type Ticket } from './ticket.js';

const MAX_ATTEMPTS = 6;
const FIRST_BACKOFF_MS = 50;

/**
 * Reads the ticket on a node: null when there is none. Throws TICKET_CORRUPT for an
 * unreadable annotation, which callers report and never overwrite.
 */
export function readTicket(node: NodeInfo): Ticket | null {
  const raw = node.annotations[TICKET_ANNOTATION];
  if (raw === undefined || raw.trim() === '') return null;
  return parseTicket(raw, node.name);
}

/**
 * Read-modify-write of the ticket annotation under optimistic concurrency: re-reads and
 * re-applies `change` on a conflict, with bounded jittered backoff, so a concurrent writer's
 * data (another annotation, a human's supervisor edit) is never lost. `change` returning
 * undefined means "no write". Returns the node as written (or as read when nothing changed).
 */
export async function updateTicket(
  deps: { cluster: NodeClient; clock: Clock },
  nodeName: string,
  change: (ticket: Ticket | null, node: NodeInfo) => Ticket | undefined,
  signal: AbortSignal,
): Promise<{ node: NodeInfo; ticket: Ticket | null }> {
  for (let attempt = 1; ; attempt++) {
    const node = await deps.cluster.getNode(nodeName, signal);
    const current = readTicket(node);
    const next = change(current, node);
    if (next === undefined) return { node, ticket: current };
    try {
      const written = await deps.cluster.patchNodeAnnotations(
        nodeName,
        { [TICKET_ANNOTATION]: serializeTicket(next) },
        node.resourceVersion,
        signal,
      );
      return { node: written, ticket: next };
    } catch (err) {
      if (!isHealError(err, ErrorCode.K8sConflict) || attempt === MAX_ATTEMPTS) {
        if (isHealError(err, ErrorCode.K8sConflict)) {
          throw new HealError(
            ErrorCode.K8sConflict,
            `node ${nodeName}: ticket write lost ${MAX_ATTEMPTS} races`,
            {
              cause: err,
            },
          );
        }
        throw err;
      }
      const jitter = 1 + Math.random() * 0.2;
      await deps.clock.sleep(FIRST_BACKOFF_MS * 2 ** (attempt - 1) * jitter, signal);
    }
  }
}
