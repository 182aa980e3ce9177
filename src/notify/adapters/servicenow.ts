import type { ExternalRef, TicketAdapter } from './adapter.js';
import {
  domainOf,
  eventSummary,
  eventTitle,
  lastSteps,
  stepLine,
  type TicketEvent,
  type TicketEventKind,
} from './events.js';
import {
  DeliveryError,
  SecretFile,
  parseJson,
  sendWithRetry,
  type HttpDeps,
  type HttpRequest,
  type RetryPolicy,
} from './http.js';
import { ticketTag } from './tag.js';

/**
 * ServiceNow, Table API (ServiceNow docs, "Table API": POST/PATCH/GET /api/now/table/{tableName}):
 *
 * - opened: `POST /api/now/table/<table>?sysparm_fields=sys_id,number` (with
 *   `sysparm_input_display_value=true` when `inputDisplayValue`, so `cmdb_ci` and the configured
 *   reference fields take names) with `short_description`, `description`, `cmdb_ci` (the node),
 *   `correlation_id` (`aegis-<tag>`), `correlation_display` (`Aegis`) and the configured `fields`;
 *   answer 201 `{"result": {"sys_id", "number"}}`. The sys_id is written back (`external` system
 *   `servicenow`, url `<instance>/<table>.do?sys_id=<sys_id>`).
 * - step, handoff: `PATCH /api/now/table/<table>/<sys_id>` with `work_notes`; answer 200.
 * - closed: the same PATCH with `work_notes`, `state` (`resolveState`, 6 = Resolved),
 *   `close_code` and `close_notes`.
 *
 * Before creating (and before retrying a create that timed out or failed with 5xx) the adapter
 * looks for the record by its `correlation_id`
 * (`GET /api/now/table/<table>?sysparm_query=correlation_id=<id>&sysparm_fields=sys_id,number&sysparm_limit=1`),
 * so a lost answer or a restart never opens a second incident. Auth: basic (`username` and the
 * password from `passwordFile`) or an OAuth bearer token from `tokenFile`, read at every request.
 */

export const SERVICENOW_SYSTEM = 'servicenow';

export interface ServiceNowConfig {
  readonly instanceUrl: string;
  readonly table: string;
  readonly username?: string | undefined;
  readonly passwordFile?: string | undefined;
  readonly tokenFile?: string | undefined;
  readonly cmdbCi: boolean;
  readonly inputDisplayValue: boolean;
  readonly fields: Readonly<Record<string, string>>;
  readonly resolveState: string;
  readonly closeCode: string;
  readonly events: readonly TicketEventKind[];
}

/** The record's description: what, where, why, and the last steps. */
function description(e: TicketEvent, clusterName: string): string {
  const t = e.ticket;
  const domain = domainOf(t.condition);
  const lines = [
    eventSummary(e),
    `Cluster ${clusterName}, node ${e.node}, condition ${t.condition}${domain === '' ? '' : ` (${domain})`}, status ${t.status}, supervisor ${t.supervisor}.`,
    ...(t.reason === '' ? [] : [`Reason: ${t.reason}`]),
    ...(t.conditions.length === 0 ? [] : [`Active conditions: ${t.conditions.join(', ')}`]),
    `The whole timeline: kubectl aegis ticket ${e.node}`,
    ...(t.workflows.length === 0
      ? []
      : ['Steps:', ...lastSteps(t, 10).map((w) => `- ${stepLine(w)}`)]),
  ];
  return lines.join('\n');
}

export function createServiceNowAdapter(
  config: ServiceNowConfig,
  deps: HttpDeps & { readonly policy: RetryPolicy; readonly clusterName: string },
): TicketAdapter {
  const secret =
    config.tokenFile !== undefined
      ? new SecretFile('notify.adapters.servicenow.tokenFile', config.tokenFile)
      : new SecretFile('notify.adapters.servicenow.passwordFile', config.passwordFile ?? '');
  const instance = config.instanceUrl.replace(/\/+$/, '');
  const tableUrl = `${instance}/api/now/table/${config.table}`;
  const headers = async (): Promise<Record<string, string>> => ({
    Authorization:
      config.tokenFile !== undefined
        ? `Bearer ${await secret.read()}`
        : `Basic ${Buffer.from(`${config.username ?? ''}:${await secret.read()}`).toString('base64')}`,
    Accept: 'application/json',
    'Content-Type': 'application/json',
    'User-Agent': 'aegis-ticket-adapter/1',
  });
  const send = (req: Omit<HttpRequest, 'headers'>, stop: AbortSignal, policy = deps.policy) =>
    sendWithRetry(SERVICENOW_SYSTEM, { ...req, headers }, policy, deps, stop);
  const refOf = (sysId: string): ExternalRef => ({
    system: SERVICENOW_SYSTEM,
    id: sysId,
    url: `${instance}/${config.table}.do?sys_id=${encodeURIComponent(sysId)}`,
  });
  const correlation = (e: TicketEvent): string =>
    `aegis-${ticketTag(deps.clusterName, e.node, e.ticket)}`;
  const sysIdOf = (value: unknown): string | undefined => {
    const id = (value as { sys_id?: unknown } | null | undefined)?.sys_id;
    return typeof id === 'string' && /^[0-9a-f]{32}$/.test(id) ? id : undefined;
  };

  /** The record already opened for this ticket, if the query finds one (a failed query: none). */
  const find = async (e: TicketEvent, stop: AbortSignal): Promise<ExternalRef | undefined> => {
    const q = new URLSearchParams({
      sysparm_query: `correlation_id=${correlation(e)}`,
      sysparm_fields: 'sys_id,number',
      sysparm_limit: '1',
    });
    try {
      const res = await send({ method: 'GET', url: `${tableUrl}?${q.toString()}` }, stop, {
        ...deps.policy,
        maxAttempts: Math.min(2, deps.policy.maxAttempts),
      });
      const found = parseJson(SERVICENOW_SYSTEM, 'query', res) as { result?: unknown[] } | null;
      const id = Array.isArray(found?.result) ? sysIdOf(found.result[0]) : undefined;
      return id === undefined ? undefined : refOf(id);
    } catch (err) {
      if (err instanceof DeliveryError) return undefined;
      throw err;
    }
  };

  const create = async (e: TicketEvent, stop: AbortSignal): Promise<ExternalRef> => {
    const existing = await find(e, stop);
    if (existing !== undefined) return existing;
    const q = new URLSearchParams({ sysparm_fields: 'sys_id,number' });
    if (config.inputDisplayValue) q.set('sysparm_input_display_value', 'true');
    const body = JSON.stringify({
      ...config.fields,
      short_description: eventTitle(e).slice(0, 160),
      description: description(e, deps.clusterName),
      ...(config.cmdbCi ? { cmdb_ci: e.node } : {}),
      correlation_id: correlation(e),
      correlation_display: 'Aegis',
    });
    const res = await send(
      {
        method: 'POST',
        url: `${tableUrl}?${q.toString()}`,
        body,
        beforeRetry: async () => {
          const found = await find(e, stop);
          return found === undefined
            ? undefined
            : {
                status: 200,
                headers: new Headers(),
                text: JSON.stringify({ result: { sys_id: found.id } }),
              };
        },
      },
      stop,
    );
    const created = parseJson(SERVICENOW_SYSTEM, 'create record', res) as {
      result?: unknown;
    } | null;
    const id = sysIdOf(created?.result);
    if (id === undefined)
      throw new DeliveryError(
        'rejected',
        `${SERVICENOW_SYSTEM}: create record answered ${res.status} without a sys_id`,
        res.status,
      );
    return refOf(id);
  };

  const update = async (
    ref: ExternalRef,
    fields: Record<string, string>,
    stop: AbortSignal,
  ): Promise<void> => {
    await send(
      {
        method: 'PATCH',
        url: `${tableUrl}/${encodeURIComponent(ref.id)}?sysparm_fields=sys_id`,
        body: JSON.stringify(fields),
      },
      stop,
    );
  };

  return {
    system: SERVICENOW_SYSTEM,
    events: new Set(config.events),
    check: () => {
      secret.check();
    },
    deliver: async (event, known, stop) => {
      if (event.kind === 'opened') {
        if (known !== undefined) return { ref: known, skipped: true };
        return { ref: await create(event, stop) };
      }
      if (known === undefined && event.kind === 'closed') return { skipped: true };
      const ref = known ?? (await create(event, stop));
      const notes = `${eventSummary(event)}\n(Aegis event ${event.key})`;
      await update(
        ref,
        event.kind === 'closed'
          ? {
              work_notes: notes,
              state: config.resolveState,
              close_code: config.closeCode,
              close_notes: eventSummary(event),
            }
          : { work_notes: notes },
        stop,
      );
      return { ref };
    },
  };
}
