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
 * Jira Cloud, REST API v3 (https://developer.atlassian.com/cloud/jira/platform/rest/v3/):
 *
 * - opened: `POST /rest/api/3/issue` with `fields.project.key`, `fields.issuetype.name`,
 *   `fields.summary`, `fields.description` (Atlassian Document Format) and `fields.labels`
 *   (`aegis`, `aegis-<tag>` naming the Aegis ticket, and the configured labels); answer 201
 *   `{"id", "key", "self"}`. The issue key is written back (`external` system `jira`).
 * - step, handoff: `POST /rest/api/3/issue/{key}/comment` with `body` in ADF; answer 201.
 * - closed: the same comment, then `POST /rest/api/3/issue/{key}/transitions` with
 *   `{"transition": {"id": closeTransitionId}}` when configured; answer 204.
 *
 * Jira has no idempotency key for creates: before creating (and before retrying a create that
 * timed out or failed with 5xx) the adapter looks for the issue by its `aegis-<tag>` label with
 * `POST /rest/api/3/search/jql` (`{"jql", "fields": ["key"], "maxResults": 1}` → `{"issues": [...]}`),
 * so a restart or a lost answer does not open a second issue.
 * Auth: basic, `email:apiToken` (the token read from `apiTokenFile` at every request).
 */

export const JIRA_SYSTEM = 'jira';

export interface JiraConfig {
  readonly baseUrl: string;
  readonly email: string;
  readonly apiTokenFile: string;
  readonly projectKey: string;
  readonly issueType: string;
  readonly closeTransitionId?: string | undefined;
  readonly labels: readonly string[];
  readonly events: readonly TicketEventKind[];
}

/** Atlassian Document Format: paragraphs, then a bullet list (empty texts are left out). */
export function adfDoc(paragraphs: readonly string[], bullets: readonly string[] = []): unknown {
  const para = (text: string): unknown => ({
    type: 'paragraph',
    content: [{ type: 'text', text }],
  });
  const content: unknown[] = paragraphs.filter((p) => p !== '').map(para);
  const items = bullets.filter((b) => b !== '');
  if (items.length > 0)
    content.push({
      type: 'bulletList',
      content: items.map((b) => ({ type: 'listItem', content: [para(b)] })),
    });
  return { type: 'doc', version: 1, content };
}

/** The issue description: what, where, why, and the last steps. */
function description(e: TicketEvent, clusterName: string): unknown {
  const t = e.ticket;
  const domain = domainOf(t.condition);
  return adfDoc(
    [
      eventSummary(e),
      `Cluster ${clusterName}, node ${e.node}, condition ${t.condition}${domain === '' ? '' : ` (${domain})`}, status ${t.status}, supervisor ${t.supervisor}.`,
      t.reason === '' ? '' : `Reason: ${t.reason}`,
      t.conditions.length === 0 ? '' : `Active conditions: ${t.conditions.join(', ')}`,
      `The whole timeline: kubectl aegis ticket ${e.node}`,
      t.workflows.length === 0 ? '' : 'Steps:',
    ],
    lastSteps(t, 10).map(stepLine),
  );
}

export function createJiraAdapter(
  config: JiraConfig,
  deps: HttpDeps & { readonly policy: RetryPolicy; readonly clusterName: string },
): TicketAdapter {
  const token = new SecretFile('notify.adapters.jira.apiTokenFile', config.apiTokenFile);
  const base = config.baseUrl.replace(/\/+$/, '');
  const headers = async (): Promise<Record<string, string>> => ({
    Authorization: `Basic ${Buffer.from(`${config.email}:${await token.read()}`).toString('base64')}`,
    Accept: 'application/json',
    'Content-Type': 'application/json',
    'User-Agent': 'aegis-ticket-adapter/1',
  });
  const send = (req: Omit<HttpRequest, 'headers'>, stop: AbortSignal, policy = deps.policy) =>
    sendWithRetry(JIRA_SYSTEM, { ...req, headers }, policy, deps, stop);
  const refOf = (key: string): ExternalRef => ({
    system: JIRA_SYSTEM,
    id: key,
    url: `${base}/browse/${encodeURIComponent(key)}`,
  });
  const label = (e: TicketEvent): string =>
    `aegis-${ticketTag(deps.clusterName, e.node, e.ticket)}`;

  /** The issue already opened for this ticket, if the search finds one (a failed search: none). */
  const find = async (e: TicketEvent, stop: AbortSignal): Promise<ExternalRef | undefined> => {
    try {
      const res = await send(
        {
          method: 'POST',
          url: `${base}/rest/api/3/search/jql`,
          body: JSON.stringify({
            jql: `project = "${config.projectKey}" AND labels = "${label(e)}"`,
            fields: ['key'],
            maxResults: 1,
          }),
        },
        stop,
        { ...deps.policy, maxAttempts: Math.min(2, deps.policy.maxAttempts) },
      );
      const found = parseJson(JIRA_SYSTEM, 'search', res) as {
        issues?: { key?: unknown }[];
      } | null;
      const key = found?.issues?.[0]?.key;
      return typeof key === 'string' && key !== '' ? refOf(key) : undefined;
    } catch (err) {
      if (err instanceof DeliveryError) return undefined;
      throw err;
    }
  };

  const create = async (e: TicketEvent, stop: AbortSignal): Promise<ExternalRef> => {
    const existing = await find(e, stop);
    if (existing !== undefined) return existing;
    const body = JSON.stringify({
      fields: {
        project: { key: config.projectKey },
        issuetype: { name: config.issueType },
        summary: eventTitle(e).slice(0, 255),
        description: description(e, deps.clusterName),
        labels: ['aegis', label(e), ...config.labels],
      },
    });
    const res = await send(
      {
        method: 'POST',
        url: `${base}/rest/api/3/issue`,
        body,
        beforeRetry: async () => {
          const found = await find(e, stop);
          return found === undefined
            ? undefined
            : { status: 200, headers: new Headers(), text: JSON.stringify({ key: found.id }) };
        },
      },
      stop,
    );
    const created = parseJson(JIRA_SYSTEM, 'create issue', res) as { key?: unknown } | null;
    if (typeof created?.key !== 'string' || created.key === '')
      throw new DeliveryError(
        'rejected',
        `${JIRA_SYSTEM}: create issue answered ${res.status} without an issue key`,
        res.status,
      );
    return refOf(created.key);
  };

  const comment = async (ref: ExternalRef, e: TicketEvent, stop: AbortSignal): Promise<void> => {
    await send(
      {
        method: 'POST',
        url: `${base}/rest/api/3/issue/${encodeURIComponent(ref.id)}/comment`,
        body: JSON.stringify({
          body: adfDoc([eventSummary(e), `Idempotency key: ${e.key}`]),
        }),
      },
      stop,
    );
  };

  return {
    system: JIRA_SYSTEM,
    events: new Set(config.events),
    check: () => {
      token.check();
    },
    deliver: async (event, known, stop) => {
      if (event.kind === 'opened') {
        if (known !== undefined) return { ref: known, skipped: true };
        return { ref: await create(event, stop) };
      }
      // An update for a ticket never opened here: open it now, unless it is already over.
      if (known === undefined && event.kind === 'closed') return { skipped: true };
      const ref = known ?? (await create(event, stop));
      await comment(ref, event, stop);
      if (event.kind === 'closed' && config.closeTransitionId !== undefined) {
        await send(
          {
            method: 'POST',
            url: `${base}/rest/api/3/issue/${encodeURIComponent(ref.id)}/transitions`,
            body: JSON.stringify({ transition: { id: config.closeTransitionId } }),
          },
          stop,
        );
      }
      return { ref };
    },
  };
}
