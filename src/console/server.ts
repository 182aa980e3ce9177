/**
 * The operator console's HTTP server (docs/console.md): the page and its assets (bundled, no CDN),
 * a JSON API and a server-sent event stream of fleet changes.
 *
 * Security: every API request is authenticated with the caller's Kubernetes bearer token
 * (TokenReview through `access`), either sent as `Authorization: Bearer` or held server-side in a
 * session the login created (an HttpOnly, SameSite=Strict cookie names it; the token never goes
 * back to the page). Reads need aegis.io `nodes get`; each action its own verb
 * (src/console/access.ts), asked per request (SubjectAccessReview, cached for seconds). Writes are
 * refused across origins: the Origin header must be the console's own (or `allowedOrigins`), and a
 * cookie session must also echo its CSRF token in `X-Aegis-CSRF`. The page holds no secret: the
 * CSRF token comes from /api/session, and the session cookie is not readable by scripts.
 *
 * Actions are the operations of `kubectl aegis` (planNodeAction / planFleetAction in
 * src/kubectl/actions.ts) with the caller as the apiserver named them: one write guarded by the
 * resourceVersion read, recorded in the ticket's operatorLog.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { Config } from '../config/schema.js';
import { ErrorCode, HealError, errorMessage, isHealError } from '../core/errors.js';
import { isValidNodeName, type NodeInfo } from '../core/types.js';
import type { Logger } from '../engine/logger.js';
import { DEFAULT_TOPOLOGY_LABELS, type TopologyLabels } from '../engine/topology.js';
import {
  isNoChange,
  planFleetAction,
  planNodeAction,
  type FleetAction,
  type NodeAction,
} from '../kubectl/actions.js';
import type { ConfigMapRecord } from '../kubectl/kube-client.js';
import {
  toControls,
  viewNode,
  type Leader,
  type SiteContext,
  type Sourced,
} from '../kubectl/model.js';
import type { FleetSnapshot } from '../notify/alerts.js';
import type { PriorityTable } from '../priority/priority-table.js';
import {
  CONSOLE_ACTIONS,
  VIEW_CHECK,
  type Caller,
  type ConsoleAccess,
  type ConsoleAction,
} from './access.js';
import { ASSETS } from './assets.js';
import {
  CELL_STATES,
  CELL_TEXT,
  FleetRows,
  diffRows,
  engineView,
  nodeDetail,
  queueView,
  type CellRow,
  type EngineView,
} from './model.js';

/** What the console reads and writes (the daemon's cluster, or the simulator's). */
export interface ConsoleBackend {
  /** The controller's namespace (aegis-control, the Lease). */
  readonly namespace: string;
  /** Shown in the queue view's header (the cluster, the demo). */
  readonly where: { readonly context: string; readonly server: string };
  listNodes(signal: AbortSignal): Promise<readonly NodeInfo[]>;
  getNode(name: string, signal: AbortSignal): Promise<NodeInfo>;
  /** One merge patch of annotations guarded by `resourceVersion` (409 → K8S_CONFLICT). */
  patchNodeAnnotations(
    name: string,
    resourceVersion: string,
    annotations: Readonly<Record<string, string | null>>,
    signal: AbortSignal,
  ): Promise<NodeInfo>;
  readControl(signal: AbortSignal): Promise<ConfigMapRecord | null>;
  /** Replaces aegis-control guarded by `resourceVersion` (undefined: it does not exist yet). */
  writeControl(
    data: Readonly<Record<string, string>>,
    resourceVersion: string | undefined,
    signal: AbortSignal,
  ): Promise<void>;
  leader(signal: AbortSignal): Promise<Leader>;
  config(): Config;
  priority(): Sourced<PriorityTable>;
}

/** Options of startConsole. */
export interface ConsoleOptions {
  readonly backend: ConsoleBackend;
  readonly access: ConsoleAccess;
  readonly port: number;
  readonly host?: string;
  readonly allowedOrigins?: readonly string[];
  readonly sessionTtlMs?: number;
  readonly now?: () => number;
  readonly log?: Logger;
  readonly topology?: TopologyLabels;
  /** A line shown on top of every page (the demo says it is one). */
  readonly banner?: string;
  /** Coalesces refreshes: at most one per this many ms (default 200). */
  readonly refreshEveryMs?: number;
}

/** A running console. */
export interface ConsoleHandle {
  readonly url: string;
  readonly server: Server;
  /** Feed of the engine's cycles (EngineInput.onSnapshot). */
  onSnapshot(s: FleetSnapshot): void;
  /** Re-reads the nodes and pushes the changes (a node changed). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

/** Name of the session cookie. */
export const SESSION_COOKIE = 'aegis_console';
/** Header carrying the session's CSRF token on writes. */
export const CSRF_HEADER = 'x-aegis-csrf';
const MAX_BODY = 16 * 1024;
const MAX_SESSIONS = 2_000;
const REAUTH_MS = 60_000;
const HEARTBEAT_MS = 20_000;

interface Session {
  readonly id: string;
  readonly token: string;
  readonly csrf: string;
  readonly createdMs: number;
}

interface Authed {
  readonly caller: Caller;
  readonly session?: Session;
  readonly token: string;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Starts the console on `port` (0: any free port). */
export async function startConsole(opts: ConsoleOptions): Promise<ConsoleHandle> {
  const now = opts.now ?? Date.now;
  const { backend, access } = opts;
  const ttl = opts.sessionTtlMs ?? 8 * 3_600_000;
  const allowed = new Set((opts.allowedOrigins ?? []).map((o) => new URL(o).origin));
  const sessions = new Map<string, Session>();
  const rowsBuilder = new FleetRows(opts.topology ?? DEFAULT_TOPOLOGY_LABELS);
  let rows = new Map<string, CellRow>();
  let rowList: CellRow[] = [];
  let seq = 0;
  let engine: EngineView | undefined;
  const streams = new Set<{ res: ServerResponse; authed: Authed; checkedMs: number }>();
  const life = new AbortController();

  // ---- the fleet's rows, refreshed on each cycle and each node change (coalesced) ----
  let refreshing: Promise<void> | undefined;
  let again = false;
  let lastRefreshMs = Number.NEGATIVE_INFINITY;
  const every = opts.refreshEveryMs ?? 200;
  const doRefresh = async (): Promise<void> => {
    const wait = lastRefreshMs + every - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, every)));
    lastRefreshMs = now();
    const nodes = await backend.listNodes(life.signal);
    const built = rowsBuilder.rows(nodes, engine).rows;
    const { changed, removed } = diffRows(rows, built);
    rowList = built;
    rows = new Map(built.map((r) => [r[0], r]));
    if (changed.length > 0 || removed.length > 0) {
      seq++;
      broadcast('fleet', { seq, changed, removed });
    }
  };
  const refresh = (): Promise<void> => {
    if (refreshing !== undefined) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      try {
        for (let more = true; more && !life.signal.aborted;) {
          again = false;
          await doRefresh();
          more = again;
        }
      } catch (err) {
        if (!life.signal.aborted)
          opts.log?.warn('console: reading the nodes failed', { err: errorMessage(err) });
      } finally {
        refreshing = undefined;
      }
    })();
    return refreshing;
  };

  function broadcast(event: string, data: unknown): void {
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const s of streams) s.res.write(text);
  }

  // ---- identity ----
  const cookieOf = (req: IncomingMessage): string | undefined => {
    const header = req.headers.cookie ?? '';
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      if (part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
    }
    return undefined;
  };
  const sessionOf = (req: IncomingMessage): Session | undefined => {
    const id = cookieOf(req);
    if (id === undefined) return undefined;
    const s = sessions.get(id);
    if (s === undefined) return undefined;
    if (now() - s.createdMs > ttl) {
      sessions.delete(id);
      return undefined;
    }
    return s;
  };
  const authenticate = async (req: IncomingMessage, signal: AbortSignal): Promise<Authed> => {
    const header = req.headers.authorization;
    let token: string | undefined;
    let session: Session | undefined;
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      if (m === null) throw new HttpError(401, 'Authorization: expected "Bearer <token>"');
      token = m[1];
    } else {
      session = sessionOf(req);
      token = session?.token;
    }
    if (token === undefined) throw new HttpError(401, 'not logged in');
    let caller: Caller | null;
    try {
      caller = await access.authenticate(token, signal);
    } catch (err) {
      throw new HttpError(503, `cannot check the token: ${errorMessage(err)}`);
    }
    if (caller === null) {
      if (session !== undefined) sessions.delete(session.id);
      throw new HttpError(401, 'the token is not valid (TokenReview: not authenticated)');
    }
    return { caller, token, ...(session === undefined ? {} : { session }) };
  };
  const may = async (
    a: Authed,
    check: { resource: 'nodes' | 'fleet'; verb: string; name?: string },
    signal: AbortSignal,
  ): Promise<boolean> => {
    try {
      return await access.allowed(a.caller, check, signal);
    } catch (err) {
      throw new HttpError(503, `cannot check access: ${errorMessage(err)}`);
    }
  };
  const requireView = async (a: Authed, signal: AbortSignal): Promise<void> => {
    if (!(await may(a, VIEW_CHECK, signal)))
      throw new HttpError(
        403,
        `${a.caller.username} may not view the console (needs verb get on aegis.io nodes: ClusterRole aegis-console-viewer)`,
      );
  };
  const permissions = async (
    a: Authed,
    signal: AbortSignal,
    node?: string,
  ): Promise<Record<ConsoleAction, boolean>> => {
    const entries = await Promise.all(
      (Object.keys(CONSOLE_ACTIONS) as ConsoleAction[]).map(async (action) => {
        const c = CONSOLE_ACTIONS[action];
        const check =
          c.resource === 'nodes' && node !== undefined
            ? { resource: c.resource, verb: c.verb, name: node }
            : { resource: c.resource, verb: c.verb };
        return [action, await may(a, check, signal)] as const;
      }),
    );
    return Object.fromEntries(entries) as Record<ConsoleAction, boolean>;
  };

  /** Refuses a cross-site write: Origin must be ours; a cookie session must echo its CSRF token. */
  const checkWrite = (req: IncomingMessage, a: Authed | undefined): void => {
    const origin = req.headers.origin;
    const host = req.headers.host;
    if (origin !== undefined) {
      const ours =
        host !== undefined &&
        (origin === `http://${host}` || origin === `https://${host}` || allowed.has(origin));
      if (!ours) throw new HttpError(403, `cross-origin write refused (Origin ${origin})`);
    } else if (req.headers['sec-fetch-site'] !== undefined) {
      if (req.headers['sec-fetch-site'] !== 'same-origin')
        throw new HttpError(403, 'cross-site write refused');
    }
    if (a?.session !== undefined) {
      const sent = req.headers[CSRF_HEADER];
      const expected = Buffer.from(a.session.csrf);
      const got = Buffer.from(typeof sent === 'string' ? sent : '');
      if (got.length !== expected.length || !timingSafeEqual(got, expected))
        throw new HttpError(403, `missing or wrong ${CSRF_HEADER} header (reload the page)`);
    }
  };

  // ---- site context, as `kubectl aegis` builds it ----
  const site = async (signal: AbortSignal): Promise<SiteContext> => {
    const config = backend.config();
    const [control, leader] = await Promise.all([
      backend.readControl(signal).then(
        (cm): Sourced<ReturnType<typeof toControls>> =>
          cm === null
            ? {
                value: toControls(null),
                source: 'no operator controls (aegis-control not found)',
                fromCluster: false,
              }
            : {
                value: toControls(cm.data),
                source: `ConfigMap ${backend.namespace}/aegis-control`,
                fromCluster: true,
              },
        (err: unknown) => ({
          value: toControls(null),
          source: `no operator controls (${errorMessage(err)})`,
          fromCluster: false,
        }),
      ),
      backend.leader(signal).catch((err: unknown): Leader => ({ unknown: errorMessage(err) })),
    ]);
    return {
      namespace: backend.namespace,
      config: { value: config, source: 'the running controller', fromCluster: true },
      priority: backend.priority(),
      controls: control,
      leader,
      nowMs: now(),
    };
  };

  // ---- routes ----
  const json = (
    res: ServerResponse,
    status: number,
    body: unknown,
    req?: IncomingMessage,
  ): void => {
    let payload: Buffer = Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
    };
    if (payload.length > 8192 && /\bgzip\b/.test(req?.headers['accept-encoding'] ?? '')) {
      payload = gzipSync(payload);
      headers['content-encoding'] = 'gzip';
    }
    res.writeHead(status, headers);
    res.end(payload);
  };
  const readBody = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    const type = req.headers['content-type'] ?? '';
    if (!type.startsWith('application/json')) throw new HttpError(415, 'send application/json');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`);
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (text === '') return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new HttpError(400, 'the body is not JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new HttpError(400, 'the body must be a JSON object');
    return parsed as Record<string, unknown>;
  };
  const nodeParam = (name: string): string => {
    const decoded = decodeURIComponent(name);
    if (!isValidNodeName(decoded))
      throw new HttpError(400, `"${decoded}" is not a valid node name`);
    return decoded;
  };

  const meta = {
    states: CELL_STATES.map((s) => ({ id: s, ...CELL_TEXT[s] })),
    actions: Object.fromEntries(
      Object.entries(CONSOLE_ACTIONS).map(([k, v]) => [
        k,
        { resource: v.resource, verb: v.verb, text: v.text },
      ]),
    ),
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://console');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const signal = AbortSignal.any([life.signal, AbortSignal.timeout(30_000)]);

    if (method === 'GET' && !path.startsWith('/api/')) {
      if (path === '/favicon.ico') {
        res.writeHead(204, SECURITY_HEADERS);
        res.end();
        return;
      }
      const asset = ASSETS[path === '/' ? '/index.html' : path];
      if (asset === undefined) throw new HttpError(404, 'not found');
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': asset.type,
        'cache-control': 'no-cache',
      });
      res.end(asset.body);
      return;
    }
    if (path === '/api/login' && method === 'POST') {
      checkWrite(req, undefined);
      const body = await readBody(req);
      const token = typeof body['token'] === 'string' ? body['token'].trim() : '';
      if (token === '' || token.length > 16_384 || /\s/.test(token))
        throw new HttpError(400, 'token: a bearer token is required');
      const caller = await access.authenticate(token, signal).catch((err: unknown) => {
        throw new HttpError(503, `cannot check the token: ${errorMessage(err)}`);
      });
      if (caller === null)
        throw new HttpError(401, 'the token is not valid (TokenReview: not authenticated)');
      const authed: Authed = { caller, token };
      await requireView(authed, signal);
      if (sessions.size >= MAX_SESSIONS) {
        const oldest = sessions.keys().next();
        if (oldest.done !== true) sessions.delete(oldest.value);
      }
      const session: Session = {
        id: randomBytes(24).toString('base64url'),
        token,
        csrf: randomBytes(24).toString('base64url'),
        createdMs: now(),
      };
      sessions.set(session.id, session);
      const secure =
        req.headers['x-forwarded-proto'] === 'https' ||
        (req.socket as { encrypted?: boolean }).encrypted === true;
      res.setHeader(
        'set-cookie',
        `${SESSION_COOKIE}=${session.id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(ttl / 1000)}${secure ? '; Secure' : ''}`,
      );
      json(res, 200, {
        user: caller.username,
        groups: caller.groups,
        csrf: session.csrf,
        may: await permissions({ ...authed, session }, signal),
      });
      return;
    }
    if (path === '/api/logout' && method === 'POST') {
      const s = sessionOf(req);
      checkWrite(
        req,
        s === undefined
          ? undefined
          : { caller: { username: '', groups: [] }, token: '', session: s },
      );
      if (s !== undefined) sessions.delete(s.id);
      res.setHeader(
        'set-cookie',
        `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`,
      );
      json(res, 200, { ok: true });
      return;
    }
    if (path === '/api/meta' && method === 'GET') {
      json(res, 200, {
        ...meta,
        loginHint: access.loginHint,
        ...(opts.banner === undefined ? {} : { banner: opts.banner }),
      });
      return;
    }

    const a = await authenticate(req, signal);
    await requireView(a, signal);

    if (path === '/api/session' && method === 'GET') {
      json(res, 200, {
        user: a.caller.username,
        groups: a.caller.groups,
        ...(a.session === undefined ? {} : { csrf: a.session.csrf }),
        may: await permissions(a, signal),
      });
      return;
    }
    if (path === '/api/fleet' && method === 'GET') {
      if (rowList.length === 0) await refresh();
      json(res, 200, { seq, rows: rowList, engine: engineSummary() }, req);
      return;
    }
    if (path === '/api/events' && method === 'GET') {
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(
        `retry: 3000\nevent: hello\ndata: ${JSON.stringify({ seq, engine: engineSummary() })}\n\n`,
      );
      const stream = { res, authed: a, checkedMs: now() };
      streams.add(stream);
      req.on('close', () => streams.delete(stream));
      return;
    }
    if (path === '/api/queue' && method === 'GET') {
      const nodes = await backend.listNodes(signal);
      const { views } = rowsBuilder.rows(nodes, engine);
      const s = await site(signal);
      json(
        res,
        200,
        { ...queueView(views, s, engine, backend.where), may: await permissions(a, signal) },
        req,
      );
      return;
    }
    const nodeMatch = /^\/api\/nodes\/([^/]+)(?:\/([a-z-]+))?$/.exec(path);
    if (nodeMatch !== null) {
      const name = nodeParam(nodeMatch[1] ?? '');
      const action = nodeMatch[2];
      if (action === undefined && method === 'GET') {
        const node = await getNode(name, signal);
        const detail = nodeDetail(
          node,
          await site(signal),
          engine,
          backend.config(),
          opts.topology,
        );
        json(res, 200, { ...detail, may: await permissions(a, signal, name) });
        return;
      }
      if (action !== undefined && method === 'POST') {
        await nodeAction(req, res, a, name, action, signal);
        return;
      }
    }
    const fleetMatch = /^\/api\/fleet\/([a-z-]+)$/.exec(path);
    if (fleetMatch !== null && method === 'POST') {
      await fleetAction(req, res, a, fleetMatch[1] ?? '', signal);
      return;
    }
    throw new HttpError(404, 'not found');
  };

  const getNode = async (name: string, signal: AbortSignal): Promise<NodeInfo> => {
    try {
      return await backend.getNode(name, signal);
    } catch (err) {
      if (isHealError(err, ErrorCode.K8sNotFound))
        throw new HttpError(404, `node ${name} not found`);
      throw err;
    }
  };

  const confirmOf = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    const body = await readBody(req);
    if (body['confirm'] !== true)
      throw new HttpError(400, 'confirm: every action must be confirmed ({"confirm": true})');
    return body;
  };

  const nodeAction = async (
    req: IncomingMessage,
    res: ServerResponse,
    a: Authed,
    name: string,
    action: string,
    signal: AbortSignal,
  ): Promise<void> => {
    const NODE_ACTIONS: readonly string[] = [
      'approve',
      'dismiss',
      'takeover',
      'release',
      'ack',
      'pause',
      'resume',
    ];
    if (!NODE_ACTIONS.includes(action)) throw new HttpError(404, `no node action "${action}"`);
    checkWrite(req, a);
    const c = CONSOLE_ACTIONS[action as ConsoleAction];
    if (!(await may(a, { resource: c.resource, verb: c.verb, name }, signal)))
      throw new HttpError(
        403,
        `${a.caller.username} may not ${c.text} on node ${name} (needs verb ${c.verb} on aegis.io nodes: ClusterRole aegis-console-operator)`,
      );
    const body = await confirmOf(req);
    const owner =
      typeof body['owner'] === 'string' && body['owner'].trim() !== '' ? body['owner'] : undefined;
    const node = await getNode(name, signal);
    const plan = planNodeAction(
      action as NodeAction,
      viewNode(node),
      a.caller.username,
      now(),
      owner,
    );
    if (isNoChange(plan)) {
      json(res, 200, { changed: false, message: plan.unchanged });
      return;
    }
    await backend.patchNodeAnnotations(name, node.resourceVersion, plan.annotations, signal);
    opts.log?.info('console action', { action, node: name, by: a.caller.username });
    void refresh();
    json(res, 200, {
      changed: true,
      message: plan.done,
      ...(plan.warning === undefined ? {} : { warning: plan.warning }),
    });
  };

  const fleetAction = async (
    req: IncomingMessage,
    res: ServerResponse,
    a: Authed,
    action: string,
    signal: AbortSignal,
  ): Promise<void> => {
    const map: Readonly<Record<string, FleetAction>> = {
      pause: 'pause',
      resume: 'resume',
      'breaker-reset': 'breaker-reset',
    };
    const fa = map[action];
    if (fa === undefined) throw new HttpError(404, `no fleet action "${action}"`);
    checkWrite(req, a);
    const key: ConsoleAction =
      fa === 'breaker-reset' ? 'breaker-reset' : fa === 'pause' ? 'fleet-pause' : 'fleet-resume';
    const c = CONSOLE_ACTIONS[key];
    if (!(await may(a, { resource: c.resource, verb: c.verb }, signal)))
      throw new HttpError(
        403,
        `${a.caller.username} may not ${c.text} (needs verb ${c.verb} on aegis.io fleet: ClusterRole aegis-console-operator)`,
      );
    await confirmOf(req);
    const cm = await backend.readControl(signal);
    const plan = planFleetAction(
      fa,
      cm?.data ?? null,
      toControls(cm?.data ?? null),
      a.caller.username,
      now(),
    );
    if (isNoChange(plan)) {
      json(res, 200, { changed: false, message: plan.unchanged });
      return;
    }
    await backend.writeControl(plan.data, cm?.resourceVersion, signal);
    opts.log?.info('console action', { action: key, by: a.caller.username });
    broadcast('control', { seq });
    json(res, 200, { changed: true, message: plan.done });
  };

  function engineSummary(): { atMs: number; breakerOpen: boolean } | null {
    return engine === undefined ? null : { atMs: engine.atMs, breakerOpen: engine.breakerOpen };
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const [status, message] = statusOf(err);
      if (status >= 500 && !(err instanceof HttpError))
        opts.log?.warn('console request failed', { path: req.url, err: errorMessage(err) });
      if (res.headersSent) {
        res.end();
        return;
      }
      json(res, status, { error: message });
    });
  });
  const timer = setInterval(() => {
    // Heartbeats keep proxies from closing idle streams; the token is re-reviewed every minute.
    for (const s of streams) {
      s.res.write(': heartbeat\n\n');
      if (now() - s.checkedMs < REAUTH_MS) continue;
      s.checkedMs = now();
      access
        .authenticate(s.authed.token, life.signal)
        .then((caller) => {
          if (caller === null) {
            s.res.end();
            streams.delete(s);
          }
        })
        .catch(() => undefined);
    }
  }, HEARTBEAT_MS);
  timer.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = opts.host === undefined || opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host;
  return {
    url: `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${addr.port}`,
    server,
    onSnapshot(s) {
      engine = engineView(s);
      void refresh().then(() => {
        broadcast('cycle', { seq, engine: engineSummary() });
      });
    },
    refresh,
    async close() {
      life.abort(new Error('console closed'));
      clearInterval(timer);
      for (const s of streams) s.res.end();
      streams.clear();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      });
    },
  };
}

/** HTTP status and message of an error. */
function statusOf(err: unknown): [number, string] {
  if (err instanceof HttpError) return [err.status, err.message];
  if (err instanceof HealError) {
    const status: Partial<Record<ErrorCode, number>> = {
      [ErrorCode.OperatorRefused]: 409,
      [ErrorCode.K8sConflict]: 409,
      [ErrorCode.K8sNotFound]: 404,
      [ErrorCode.InvalidInput]: 400,
      [ErrorCode.K8sUnavailable]: 503,
    };
    if (err.code === ErrorCode.K8sConflict)
      return [409, `${err.message}; the ticket changed since it was read: reload and try again`];
    if (err.code === ErrorCode.K8sForbidden)
      return [502, `the controller may not do this: ${err.message}`];
    return [status[err.code] ?? 502, err.message];
  }
  return [500, errorMessage(err)];
}
