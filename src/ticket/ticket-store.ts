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
 *
 * The first try works on the watch-fed cache's copy of the node when the client has one
 * (`peekNode`, no GET): it is written only if it is still the node's current version, else the
 * apiserver answers 409 and the loop reads the node. A decision not to write is never taken on
 * the cached copy: that needs a fresh read.
 */
export async function updateTicket(
  deps: { cluster: NodeClient; clock: Clock },
  nodeName: string,
  change: (ticket: Ticket | null, node: NodeInfo) => Ticket | undefined,
  signal: AbortSignal,
): Promise<{ node: NodeInfo; ticket: Ticket | null }> {
  const write = async (
    base: NodeInfo,
    next: Ticket,
  ): Promise<{ node: NodeInfo; ticket: Ticket }> => ({
    node: await deps.cluster.patchNodeAnnotations(
      nodeName,
      { [TICKET_ANNOTATION]: serializeTicket(next) },
      base.resourceVersion,
      signal,
    ),
    ticket: next,
  });
  const cached = deps.cluster.peekNode?.(nodeName);
  const optimistic = cached === undefined ? undefined : change(readTicket(cached), cached);
  if (cached !== undefined && optimistic !== undefined) {
    try {
      return await write(cached, optimistic);
    } catch (err) {
      if (!isHealError(err, ErrorCode.K8sConflict)) throw err;
    }
  }
  for (let attempt = 1; ; attempt++) {
    const node = await deps.cluster.getNode(nodeName, signal);
    const current = readTicket(node);
    const next = change(current, node);
    if (next === undefined) return { node, ticket: current };
    try {
      return await write(node, next);
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
