import type { Config } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../engine/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { refuseTokenOverHttp } from '../prom/prom-client.js';
import type { Ticket } from '../ticket/ticket.js';
import {
  AlertName,
  fleetAlerts,
  nodeAlerts,
  type Alert,
  type AlertRules,
  type FleetSnapshot,
  type NodeTopology,
} from './alerts.js';
import { createJsonPoster, type PostResult } from './http-post.js';

/**
 * Posts Aegis's alerts to Alertmanager (API v2, `POST /api/v2/alerts`), the way Prometheus does:
 * every firing alert is re-posted every `refreshMs` with `endsAt` = now + 3 × refreshMs (so
 * Alertmanager resolves it by itself if Aegis goes away), an alert that left the list is posted
 * once with `endsAt` = now (resolved). Each Alertmanager URL has its own timer, backoff and
 * record of what it has confirmed. `observe()`/`update()` only change memory and wake the timers:
 * a cycle never waits for Alertmanager.
 */

/** Settings of the poster (config `notify.alertmanager`). */
export interface AlertmanagerOptions {
  readonly urls: readonly string[];
  readonly refreshMs: number;
  readonly timeoutMs: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  readonly bearerTokenFile?: string;
  readonly caFile?: string;
  readonly insecureSkipVerify?: boolean;
  readonly allowInsecureBearerToken?: boolean;
}

/** What the poster is built with. */
export interface AlertmanagerDeps {
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** How alerts are built from a snapshot (observe()). */
  readonly rules: AlertRules;
}

/** One Alertmanager's state, for tests and logs. */
export interface TargetStatus {
  readonly receiver: string;
  /** Failed posts in a row (0 after a success). */
  readonly failures: number;
  /** When the next post is due (ms since epoch). */
  readonly nextAttemptMs: number;
  readonly lastOkMs: number | undefined;
  readonly inFlight: boolean;
  /** Alerts not yet confirmed by this Alertmanager in their current state. */
  readonly queued: number;
}

/** Alerts per request (Prometheus's notifier sends at most 256 too). */
const MAX_BATCH = 256;

interface Firing {
  readonly alert: Alert;
  readonly startsAtMs: number;
  /** State version in which it appeared or last changed. */
  readonly version: number;
}

interface Ended {
  readonly alert: Alert;
  readonly startsAtMs: number;
  readonly endsAtMs: number;
}

interface Target {
  readonly url: URL;
  readonly receiver: string;
  failures: number;
  nextAttemptMs: number;
  lastOkMs: number | undefined;
  /** State version this Alertmanager confirmed last. */
  okVersion: number;
  inFlight: boolean;
  wake: AbortController;
  /** Resolutions not yet confirmed, by alert key. */
  readonly ended: Map<string, Ended>;
}

/** The Alertmanager poster. */
export class AlertmanagerNotifier {
  readonly #o: AlertmanagerOptions;
  readonly #d: AlertmanagerDeps;
  readonly #targets: Target[];
  readonly #post: ReturnType<typeof createJsonPoster>;
  #firing = new Map<string, Firing>();
  #version = 0;
  #running = false;
  /** Each ticket's alerts, while the ticket object lives (observe()). */
  readonly #byTicket = new WeakMap<
    Ticket,
    { name: string; topology: NodeTopology; alerts: readonly Alert[] }
  >();
  /** Each alert object's key (alerts reused from #byTicket keep theirs). */
  readonly #keys = new WeakMap<Alert, string>();
  /** When update() was last called (undefined: never, or forgotten since). */
  #updatedAtMs: number | undefined;

  /** Throws CONFIG_INVALID for a URL that is not http(s), or a token over plain http. */
  constructor(opts: AlertmanagerOptions, deps: AlertmanagerDeps) {
    this.#o = opts;
    this.#d = deps;
    this.#targets = opts.urls.map((u, i) => {
      refuseTokenOverHttp({
        url: u,
        hasToken: opts.bearerTokenFile !== undefined,
        allowed: opts.allowInsecureBearerToken === true,
        fields: {
          url: `notify.alertmanager.urls[${i}]`,
          token: 'notify.alertmanager.bearerTokenFile',
          allow: 'notify.alertmanager.allowInsecureBearerToken',
        },
      });
      const base = new URL(u.endsWith('/') ? u : `${u}/`);
      return {
        url: new URL('api/v2/alerts', base),
        receiver: `alertmanager@${base.host}`,
        failures: 0,
        nextAttemptMs: 0,
        lastOkMs: undefined,
        okVersion: 0,
        inFlight: false,
        wake: new AbortController(),
        ended: new Map(),
      };
    });
    this.#post = createJsonPoster(opts, deps.clock);
    for (const t of this.#targets) {
      for (const result of ['ok', 'error', 'rejected'])
        deps.metrics.notifications.inc({ receiver: t.receiver, result }, 0);
    }
    this.#gauges();
  }

  /**
   * The alerts a cycle's snapshot calls for (desiredAlerts), handed to update(). A node's alerts
   * are computed again only when its ticket object changed (the controller's tickets are parsed once
   * per annotation text and shared), so a quiet cycle of a large fleet costs map look-ups.
   */
  observe(snapshot: FleetSnapshot): void {
    const rules = this.#d.rules;
    const out = fleetAlerts(snapshot, rules);
    for (const node of snapshot.nodes) {
      const t = node.ticket;
      if (t === null || node.corrupt !== undefined || node.hold !== undefined) {
        out.push(...nodeAlerts(node, rules));
        continue;
      }
      const hit = this.#byTicket.get(t);
      if (hit?.name === node.name && sameTopology(hit.topology, node.topology)) {
        out.push(...hit.alerts);
        continue;
      }
      const alerts = nodeAlerts(node, rules);
      this.#byTicket.set(t, { name: node.name, topology: node.topology, alerts });
      out.push(...alerts);
    }
    this.update(out);
  }

  /**
   * The alerts that should be firing now. New, changed and ended alerts are posted at once (unless
   * an Alertmanager is in backoff); the rest wait for the next refresh. Synchronous, no I/O.
   */
  update(alerts: readonly Alert[]): void {
    const now = this.#d.clock.now();
    this.#updatedAtMs = now;
    const version = this.#version + 1;
    const next = new Map<string, Firing>();
    let changed = false;
    for (const alert of alerts) {
      let key = this.#keys.get(alert);
      if (key === undefined) this.#keys.set(alert, (key = alertKey(alert.labels)));
      if (next.has(key)) continue;
      const prev = this.#firing.get(key);
      if (
        prev !== undefined &&
        (prev.alert === alert || sameRecord(prev.alert.annotations, alert.annotations))
      ) {
        next.set(key, prev);
        continue;
      }
      changed = true;
      next.set(key, { alert, startsAtMs: prev?.startsAtMs ?? alert.startsAtMs ?? now, version });
      // Firing again before its resolution was delivered: Alertmanager never saw it end.
      for (const t of this.#targets) t.ended.delete(key);
    }
    for (const [key, prev] of this.#firing) {
      if (next.has(key)) continue;
      changed = true;
      const ended = { alert: prev.alert, startsAtMs: prev.startsAtMs, endsAtMs: now };
      for (const t of this.#targets) t.ended.set(key, ended);
    }
    this.#firing = next;
    if (changed) {
      this.#version = version;
      for (const t of this.#targets) {
        if (t.failures > 0) continue;
        t.nextAttemptMs = Math.min(t.nextAttemptMs, now);
        t.wake.abort();
      }
    }
    this.#gauges();
  }

  /** Drops every alert without resolving it (leadership lost: the new leader posts the same ones). */
  forget(): void {
    this.#updatedAtMs = undefined;
    this.#firing = new Map();
    for (const t of this.#targets) t.ended.clear();
    this.#gauges();
  }

  /** Each Alertmanager's state. */
  status(): TargetStatus[] {
    return this.#targets.map((t) => ({
      receiver: t.receiver,
      failures: t.failures,
      nextAttemptMs: t.nextAttemptMs,
      lastOkMs: t.lastOkMs,
      inFlight: t.inFlight,
      queued: this.#queued(t),
    }));
  }

  /** Runs every Alertmanager's timer until `signal` aborts. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#running) throw new Error('AlertmanagerNotifier.run() called twice');
    this.#running = true;
    try {
      await Promise.all(this.#targets.map((t) => this.#loop(t, signal)));
    } finally {
      this.#running = false;
    }
  }

  async #loop(t: Target, signal: AbortSignal): Promise<void> {
    const clock = this.#d.clock;
    for (;;) {
      if (signal.aborted) return;
      const waitMs = t.nextAttemptMs - clock.now();
      if (waitMs <= 0) {
        await this.#send(t, signal);
        continue;
      }
      try {
        await clock.sleep(waitMs, AbortSignal.any([signal, t.wake.signal]));
      } catch {
        // Woken (an alert changed) or stopped: the loop looks again.
      }
      if (t.wake.signal.aborted) t.wake = new AbortController();
    }
  }

  /** One round for one Alertmanager: every firing alert, and the resolutions it has not confirmed. */
  async #send(t: Target, signal: AbortSignal): Promise<void> {
    const now = this.#d.clock.now();
    // No cycle has handed alerts over for 2 refreshes (this replica lost the lead, or its loop is
    // stuck): stop vouching for them. Alertmanager lets them expire; the leader posts its own.
    if (this.#updatedAtMs !== undefined && now - this.#updatedAtMs > 2 * this.#o.refreshMs) {
      this.#d.log.warn('no alerts handed over for two refreshes; Alertmanager lets them expire', {
        receiver: t.receiver,
        alerts: this.#firing.size,
      });
      this.forget();
    }
    const version = this.#version;
    const { refreshMs } = this.#o;
    // Past 3 refreshes after its end, the last firing post has expired in Alertmanager too.
    for (const [key, e] of t.ended) if (now - e.endsAtMs >= 3 * refreshMs) t.ended.delete(key);
    const ended = [...t.ended];
    const endsAt = new Date(now + 3 * refreshMs).toISOString();
    const body = [
      ...[...this.#firing.values()].map((f) => postable(f.alert, f.startsAtMs, endsAt)),
      ...ended.map(([, e]) => postable(e.alert, e.startsAtMs, new Date(e.endsAtMs).toISOString())),
    ];
    let result: PostResult = { status: 200, text: '' };
    t.inFlight = true;
    try {
      for (let i = 0; i < body.length && result.status >= 200 && result.status < 300;) {
        result = await this.#post(t.url, body.slice(i, i + MAX_BATCH), signal);
        i += MAX_BATCH;
        if (signal.aborted) return;
        this.#d.metrics.notifications.inc({ receiver: t.receiver, result: resultOf(result) });
      }
    } finally {
      t.inFlight = false;
    }
    if (signal.aborted) return;
    const after = this.#d.clock.now();
    switch (resultOf(result)) {
      case 'ok':
        t.failures = 0;
        t.lastOkMs = after;
        t.okVersion = version;
        for (const [key, e] of ended) if (t.ended.get(key) === e) t.ended.delete(key);
        t.nextAttemptMs = this.#version === version ? now + refreshMs : after;
        break;
      case 'rejected':
        // A 4xx will not pass by retrying: the next refresh tries again, no backoff.
        t.failures = 0;
        t.nextAttemptMs = now + refreshMs;
        this.#d.log.warn('Alertmanager rejected the alerts', {
          receiver: t.receiver,
          status: result.status,
          answer: result.text.slice(0, 300),
        });
        break;
      case 'error': {
        t.failures++;
        const delayMs = Math.min(
          this.#o.maxBackoffMs,
          this.#o.backoffMs * 2 ** Math.min(t.failures - 1, 30),
        );
        t.nextAttemptMs = after + delayMs;
        // Logged at the 1st, 2nd, 4th, 8th… failure in a row (counted every time).
        if ((t.failures & (t.failures - 1)) === 0)
          this.#d.log.warn('Alertmanager unreachable; retrying with backoff', {
            receiver: t.receiver,
            failures: t.failures,
            retryInMs: delayMs,
            err: result.status === 0 ? result.text : `HTTP ${result.status}: ${result.text}`,
          });
        break;
      }
    }
    this.#gauges();
  }

  #queued(t: Target): number {
    let n = t.ended.size;
    for (const f of this.#firing.values()) if (f.version > t.okVersion) n++;
    return n;
  }

  #gauges(): void {
    const m = this.#d.metrics;
    for (const t of this.#targets) m.notifyQueue.set({ receiver: t.receiver }, this.#queued(t));
    const byName = new Map<string, number>(Object.values(AlertName).map((n) => [n, 0]));
    for (const f of this.#firing.values()) {
      const name = f.alert.labels['alertname'] ?? '';
      byName.set(name, (byName.get(name) ?? 0) + 1);
    }
    for (const [alertname, n] of byName) m.notifyAlerts.set({ alertname }, n);
  }
}

/** The identity of an alert: its label set (Alertmanager's fingerprint is over the same). */
export function alertKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function sameTopology(a: NodeTopology, b: NodeTopology): boolean {
  return a.rack === b.rack && a.leafSwitch === b.leafSwitch && a.zone === b.zone;
}

function sameRecord(
  a: Readonly<Record<string, string>>,
  b: Readonly<Record<string, string>>,
): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/** An alert as Alertmanager's API v2 takes it (`postableAlert`). */
function postable(
  alert: Alert,
  startsAtMs: number,
  endsAt: string,
): {
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  startsAt: string;
  endsAt: string;
} {
  return {
    labels: alert.labels,
    annotations: alert.annotations,
    startsAt: new Date(startsAtMs).toISOString(),
    endsAt,
  };
}

function resultOf(r: PostResult): 'ok' | 'error' | 'rejected' {
  if (r.status >= 200 && r.status < 300) return 'ok';
  if (r.status >= 400 && r.status < 500) return 'rejected';
  return 'error';
}

/**
 * The poster the config asks for, or undefined when `notify.alertmanager.urls` is empty (off).
 * Throws CONFIG_INVALID for a bad URL or a token over plain http.
 */
export function alertmanagerFromConfig(
  config: Config,
  deps: Omit<AlertmanagerDeps, 'rules'> & Pick<AlertRules, 'domainOf' | 'sopOf'>,
): AlertmanagerNotifier | undefined {
  const am = config.notify.alertmanager;
  if (am.urls.length === 0) return undefined;
  return new AlertmanagerNotifier(
    {
      urls: am.urls,
      refreshMs: am.refreshMs,
      timeoutMs: am.timeoutMs,
      backoffMs: am.backoffMs,
      maxBackoffMs: am.maxBackoffMs,
      insecureSkipVerify: am.insecureSkipVerify,
      allowInsecureBearerToken: am.allowInsecureBearerToken,
      ...(am.bearerTokenFile === undefined ? {} : { bearerTokenFile: am.bearerTokenFile }),
      ...(am.caFile === undefined ? {} : { caFile: am.caFile }),
    },
    {
      clock: deps.clock,
      metrics: deps.metrics,
      log: deps.log,
      rules: {
        clusterName: config.clusterName,
        staleSignalMinNodes: am.staleSignalMinNodes,
        staleSignalMinFraction: am.staleSignalMinFraction,
        ...(deps.domainOf === undefined ? {} : { domainOf: deps.domainOf }),
        ...(deps.sopOf === undefined ? {} : { sopOf: deps.sopOf }),
      },
    },
  );
}
