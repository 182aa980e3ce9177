/**
 * Who may do what in the console. Every request carries the caller's Kubernetes bearer token:
 * the apiserver says who it is (TokenReview), and whether that person may do each action
 * (SubjectAccessReview on group `aegis.io`), so the console grants nothing the person's RBAC does
 * not. The resources and verbs (docs/console.md, deploy/aegis/console-rbac.yaml):
 *
 *   aegis.io/nodes  get       every view (fleet, node, queue)
 *   aegis.io/nodes  approve   approve / dismiss a step held for approval (resourceName: the node)
 *   aegis.io/nodes  takeover  take a ticket over / release it to Aegis
 *   aegis.io/nodes  ack       acknowledge (close) a ticket
 *   aegis.io/nodes  pause     pause / resume one node
 *   aegis.io/fleet  pause     pause / resume all automation
 *   aegis.io/fleet  reset     reset the storm breaker
 *
 * Answers are cached briefly (REVIEW_CACHE_MS) so a page load does not cost one review per request.
 */
import { createHash, randomBytes } from 'node:crypto';

/** The API group of the console's access checks. */
export const CONSOLE_GROUP = 'aegis.io';

/** Who the apiserver says the caller is. */
export interface Caller {
  readonly username: string;
  readonly groups: readonly string[];
  readonly uid?: string;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

/** One access check: a verb on an aegis.io resource, optionally one node. */
export interface AccessCheck {
  readonly resource: 'nodes' | 'fleet';
  readonly verb: string;
  readonly name?: string;
}

/** Authentication and authorisation of console callers. */
export interface ConsoleAccess {
  /** The caller of a bearer token, or null when the token is not valid. */
  authenticate(token: string, signal: AbortSignal): Promise<Caller | null>;
  /** Whether the caller may do it. */
  allowed(caller: Caller, check: AccessCheck, signal: AbortSignal): Promise<boolean>;
  /** Shown on the login page: where a token comes from. */
  readonly loginHint: string;
}

/** The console's actions and what each needs. */
export const CONSOLE_ACTIONS = {
  approve: { resource: 'nodes', verb: 'approve', text: 'approve the held step' },
  dismiss: { resource: 'nodes', verb: 'approve', text: 'dismiss the held step' },
  takeover: { resource: 'nodes', verb: 'takeover', text: 'take the ticket over' },
  release: { resource: 'nodes', verb: 'takeover', text: 'release the ticket to Aegis' },
  ack: { resource: 'nodes', verb: 'ack', text: 'acknowledge and close the ticket' },
  pause: { resource: 'nodes', verb: 'pause', text: 'pause the node' },
  resume: { resource: 'nodes', verb: 'pause', text: 'resume the node' },
  'fleet-pause': { resource: 'fleet', verb: 'pause', text: 'pause all automation' },
  'fleet-resume': { resource: 'fleet', verb: 'pause', text: 'resume all automation' },
  'breaker-reset': { resource: 'fleet', verb: 'reset', text: 'reset the storm breaker' },
} as const satisfies Record<string, { resource: 'nodes' | 'fleet'; verb: string; text: string }>;
export type ConsoleAction = keyof typeof CONSOLE_ACTIONS;

/** The check for reading anything. */
export const VIEW_CHECK: AccessCheck = { resource: 'nodes', verb: 'get' };

/** How long a review's answer is reused. */
export const REVIEW_CACHE_MS = 10_000;
const CACHE_MAX = 10_000;

/** A short-lived cache of answers, keyed by a string (bounded; oldest dropped). */
class AnswerCache<T> {
  readonly #entries = new Map<string, { value: T; untilMs: number }>();
  readonly ttlMs: number;
  constructor(ttlMs: number) {
    this.ttlMs = ttlMs;
  }

  get(key: string, nowMs: number): T | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (e.untilMs <= nowMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: T, nowMs: number): void {
    if (this.#entries.size >= CACHE_MAX) {
      const first = this.#entries.keys().next();
      if (first.done !== true) this.#entries.delete(first.value);
    }
    this.#entries.set(key, { value, untilMs: nowMs + this.ttlMs });
  }
}

/**
 * Wraps an access with caches: token → caller, and (caller, check) → answer, for `ttlMs`. Tokens
 * are kept only as a SHA-256 digest.
 */
export function cachedAccess(
  inner: ConsoleAccess,
  now: () => number = Date.now,
  ttlMs = REVIEW_CACHE_MS,
): ConsoleAccess {
  const callers = new AnswerCache<Caller | null>(ttlMs);
  const answers = new AnswerCache<boolean>(ttlMs);
  return {
    loginHint: inner.loginHint,
    async authenticate(token, signal) {
      const key = createHash('sha256').update(token).digest('hex');
      const hit = callers.get(key, now());
      if (hit !== undefined) return hit;
      const caller = await inner.authenticate(token, signal);
      callers.set(key, caller, now());
      return caller;
    },
    async allowed(caller, check, signal) {
      const key = JSON.stringify([
        caller.username,
        caller.uid ?? '',
        [...caller.groups].sort(),
        check.resource,
        check.verb,
        check.name ?? '',
      ]);
      const hit = answers.get(key, now());
      if (hit !== undefined) return hit;
      const ok = await inner.allowed(caller, check, signal);
      answers.set(key, ok, now());
      return ok;
    },
  };
}

/** Prefix of every demo token: no real apiserver issues tokens that look like this. */
export const DEMO_TOKEN_PREFIX = 'aegis-demo-';

/** The demo's tokens, one per role. */
export interface DemoTokens {
  readonly operator: string;
  readonly viewer: string;
}

/**
 * The demo's access (`aegis demo` only; the daemon never builds it): two random tokens made at
 * start-up and printed in the console URL, `aegis-demo-operator-<hex>` (every action, as user
 * `demo-operator`) and `aegis-demo-viewer-<hex>` (read only, as `demo-viewer`). There is no
 * apiserver in the demo to review real tokens; these are valid for this process only.
 */
export function demoAccess(): { access: ConsoleAccess; tokens: DemoTokens } {
  const tokens: DemoTokens = {
    operator: `${DEMO_TOKEN_PREFIX}operator-${randomBytes(16).toString('hex')}`,
    viewer: `${DEMO_TOKEN_PREFIX}viewer-${randomBytes(16).toString('hex')}`,
  };
  return {
    access: tableAccess(
      {
        [tokens.operator]: {
          caller: { username: 'demo-operator', groups: ['demo:operators'] },
          verbs: '*',
        },
        [tokens.viewer]: {
          caller: { username: 'demo-viewer', groups: ['demo:viewers'] },
          verbs: ['nodes/get'],
        },
      },
      'This is the demo: use the link printed by `npm start` (its token is made for this run only).',
    ),
    tokens,
  };
}

/**
 * An access from a fixed table of tokens (the demo, tests): each token's caller and the
 * `resource/verb` pairs it may do (`*` for all).
 */
export function tableAccess(
  table: Readonly<Record<string, { caller: Caller; verbs: '*' | readonly string[] }>>,
  loginHint: string,
): ConsoleAccess {
  const byUser = new Map(Object.values(table).map((e) => [e.caller.username, e.verbs]));
  return {
    loginHint,
    authenticate(token) {
      return Promise.resolve(Object.hasOwn(table, token) ? (table[token]?.caller ?? null) : null);
    },
    allowed(caller, check) {
      const verbs = byUser.get(caller.username);
      return Promise.resolve(
        verbs === '*' || (verbs?.includes(`${check.resource}/${check.verb}`) ?? false),
      );
    },
  };
}
