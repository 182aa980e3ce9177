/**
 * Aegis's alerts through a real Alertmanager (Debian `prometheus-alertmanager`) to a webhook
 * receiver served here: snapshots fed through time as the controller would feed them every cycle
 * (hand-offs, an approval, a corrupt ticket, the storm breaker, a stale exporter appear; then an
 * operator acknowledges, approves, repairs, resets), on the wall clock because Alertmanager runs on
 * it. Every event arrives once, grouped by node, and is resolved at the end; the refreshes in
 * between never notify again; a second, dead Alertmanager URL changes nothing for the live one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { backgroundClock } from '../../src/core/clock.js';
import { RACK_LABEL, LEAF_LABEL, TICKET_ANNOTATION } from '../../src/core/types.js';
import { silentLogger } from '../../src/engine/logger.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { AlertmanagerNotifier } from '../../src/notify/alertmanager.js';
import { snapshotNodes, type FleetSnapshot } from '../../src/notify/alerts.js';
import { readTicket } from '../../src/ticket/ticket-store.js';
import { newTicket, serializeTicket, type Ticket, type Workflow } from '../../src/ticket/ticket.js';
import { aNode } from '../helpers/builders.js';
import { freePorts } from '../helpers/k8s-harness.js';
import {
  startAlertmanager,
  startWebhook,
  type AlertmanagerServer,
  type WebhookNotification,
} from './alertmanager-harness.js';

const REFRESH_MS = 1000;
const GROUP_INTERVAL_MS = 1000;

let am: AlertmanagerServer;
let hook: Awaited<ReturnType<typeof startWebhook>>;

before(async () => {
  hook = await startWebhook();
  am = await startAlertmanager({
    webhookUrl: hook.url,
    groupBy: ['node'],
    groupWait: '300ms',
    groupInterval: `${String(GROUP_INTERVAL_MS)}ms`,
    repeatInterval: '1h',
  });
});

after(async () => {
  await am.stop();
  await hook.close();
});

const iso = (ms: number): string => new Date(ms).toISOString();

function step(
  action: string,
  status: Workflow['status'],
  atMs: number,
  message?: string,
): Workflow {
  return {
    action,
    status,
    time: iso(atMs),
    end: iso(atMs + 500),
    ...(message === undefined ? {} : { message }),
  };
}

/** A ticket handed to `sre` the way the runner leaves it. */
function handedOff(t0: number, why: string): Ticket {
  return {
    ...newTicket({ condition: 'GpuHung', reason: 'aegis detect node GpuHung', nowMs: t0 }),
    status: 'assigned',
    supervisor: 'sre',
    whySRE: why,
    conclusion: why,
    workflows: [
      step('Cordon', 'Succeeded', t0),
      step('Reboot', 'Failed', t0 + 1000, 'job restart-gpu-2 failed'),
      step('HandToHuman', 'Succeeded', t0 + 2000, why),
    ],
  };
}

/** `kubectl aegis ack`: closed by a human. */
const acked = (t: Ticket, atMs: number): Ticket => ({
  ...t,
  status: 'closed',
  supervisor: 'alice',
  resolvedTime: iso(atMs),
  updateTime: iso(atMs),
  conclusion: 'acknowledged by alice',
});

/** The fleet as the cluster shows it: node annotations (ticket text), breaker, stale signals. */
interface World {
  annotations: Map<string, string>;
  breakerOpen: boolean;
  staleDcgm: number;
}

function snapshotOf(w: World): FleetSnapshot {
  const nodes = [...w.annotations].map(([name, text]) =>
    aNode({
      name,
      labels: { [RACK_LABEL]: 'r7', [LEAF_LABEL]: 'leaf-2' },
      annotations: { [TICKET_ANNOTATION]: text },
    }),
  );
  return {
    atMs: Date.now(),
    fleetSize: 100,
    nodes: snapshotNodes(nodes, readTicket),
    breaker: { open: w.breakerOpen },
    staleSignals: { 'dcgm-exporter': w.staleDcgm },
  };
}

const groupOf = (n: WebhookNotification): string => n.groupLabels['node'] ?? '(fleet)';

async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline)
      throw new Error(`not met in ${String(timeoutMs)} ms: ${what}\n${am.logTail()}`);
    await delay(50);
  }
}

describe('notifications through a real Alertmanager', () => {
  it('every event arrives once at the webhook, grouped by node, and is resolved at the end', async () => {
    const metrics = createMetrics();
    const [deadPort = 0] = await freePorts(1);
    const notifier = new AlertmanagerNotifier(
      {
        urls: [am.url, `http://127.0.0.1:${String(deadPort)}`],
        refreshMs: REFRESH_MS,
        timeoutMs: 2000,
        backoffMs: 200,
        maxBackoffMs: 1000,
      },
      {
        clock: backgroundClock,
        metrics,
        log: silentLogger,
        rules: {
          clusterName: 'lab',
          staleSignalMinNodes: 5,
          staleSignalMinFraction: 0.05,
          domainOf: () => 'GPU',
          sopOf: () => 'gpu.hung',
        },
      },
    );
    const stop = new AbortController();
    const running = notifier.run(stop.signal);
    const world: World = { annotations: new Map(), breakerOpen: false, staleDcgm: 0 };
    // The controller's cycles: a snapshot every 200 ms.
    const cycles = (async () => {
      while (!stop.signal.aborted) {
        notifier.observe(snapshotOf(world));
        await delay(200);
      }
    })();
    const t0 = Date.now() - 60_000;
    const acted = { atMs: Number.NaN };
    try {
      // 1. A hand-off on gpu-a; a storm trips the breaker and dcgm-exporter goes stale on 40 nodes.
      const gpuA = handedOff(t0, 'reboot did not clear GpuHung');
      world.annotations.set('gpu-a', serializeTicket(gpuA));
      world.breakerOpen = true;
      world.staleDcgm = 40;
      await until(() => hook.notifications.length >= 2, 'gpu-a and fleet notifications');
      // 2. An approval waits on gpu-b, gpu-c's ticket is corrupt, gpu-d is a repeat offender.
      const gpuB: Ticket = {
        ...newTicket({ condition: 'GpuHung', reason: 'aegis detect node GpuHung', nowMs: t0 }),
        status: 'resolving',
        workflows: [
          step('Cordon', 'Succeeded', t0),
          step('Reboot', 'Held', t0 + 5000, 'approval: awaiting approval'),
        ],
        approval: {
          action: 'Reboot',
          state: 'pending',
          requestedAt: iso(t0 + 5000),
          reason: 'awaiting approval',
        },
      };
      const gpuD = handedOff(t0, 'repeat offender: too many remediations in the window');
      world.annotations.set('gpu-b', serializeTicket(gpuB));
      world.annotations.set('gpu-c', 'condition: GpuHung\nstatus: [not, a, status\n');
      world.annotations.set('gpu-d', serializeTicket(gpuD));
      await until(() => hook.notifications.length >= 5, 'gpu-b, gpu-c, gpu-d notifications');
      // Alertmanager holds our alerts as posted: startsAt from the ticket, endsAt 3 refreshes ahead.
      const held = (await (await fetch(`${am.url}/api/v2/alerts`)).json()) as {
        labels: Record<string, string>;
        startsAt: string;
        endsAt: string;
      }[];
      const handOffA = held.find(
        (a) => a.labels['node'] === 'gpu-a' && a.labels['alertname'] === 'AegisHandedToHuman',
      );
      assert.equal(Date.parse(handOffA?.startsAt ?? ''), t0 + 2500, 'starts at the hand-off');
      const ahead = Date.parse(handOffA?.endsAt ?? '') - Date.now();
      assert.ok(
        ahead > REFRESH_MS && ahead <= 3 * REFRESH_MS + 500,
        `endsAt ${String(ahead)} ms ahead`,
      );
      assert.equal(held.length, 7);
      // Several refreshes: Alertmanager must not notify again.
      await delay(3.5 * REFRESH_MS);
      assert.equal(hook.notifications.length, 5, 'refreshes re-notify nothing');
      // 3. The operators act: ack gpu-a and gpu-d, approve gpu-b, repair gpu-c, reset the breaker;
      // dcgm-exporter is back.
      const now = Date.now();
      acted.atMs = now;
      world.annotations.set('gpu-a', serializeTicket(acked(gpuA, now)));
      world.annotations.set(
        'gpu-b',
        serializeTicket({
          ...gpuB,
          approval: {
            action: 'Reboot',
            state: 'approved',
            requestedAt: iso(t0 + 5000),
            by: 'alice',
            at: iso(now),
          },
        }),
      );
      world.annotations.set(
        'gpu-c',
        serializeTicket(acked(handedOff(t0, 'repaired by hand'), now)),
      );
      world.annotations.set('gpu-d', serializeTicket(acked(gpuD, now)));
      world.breakerOpen = false;
      world.staleDcgm = 0;
      await until(() => hook.notifications.length >= 10, 'every resolution');
      await delay(2.5 * GROUP_INTERVAL_MS);
    } finally {
      stop.abort();
      await cycles;
      await running;
    }

    const byGroup = new Map<string, WebhookNotification[]>();
    for (const n of hook.notifications)
      byGroup.set(groupOf(n), [...(byGroup.get(groupOf(n)) ?? []), n]);
    const firing = (g: string): string[] =>
      (byGroup.get(g)?.[0]?.alerts ?? [])
        .map((a) => `${a.status}:${a.labels['alertname'] ?? ''}`)
        .sort();
    assert.deepEqual([...byGroup.keys()].sort(), ['(fleet)', 'gpu-a', 'gpu-b', 'gpu-c', 'gpu-d']);
    for (const [group, list] of byGroup) {
      assert.deepEqual(
        list.map((n) => n.status),
        ['firing', 'resolved'],
        `${group}: one notification when it fired, one when it was resolved`,
      );
      const resolved = list[1]?.alerts ?? [];
      assert.ok(resolved.length > 0 && resolved.every((a) => a.status === 'resolved'), group);
      // Resolved by Aegis's post when the state ended, not by the alert expiring 3 refreshes later.
      for (const a of resolved) {
        const late = Date.parse(a.endsAt) - acted.atMs;
        assert.ok(late >= 0 && late < REFRESH_MS, `${group}: resolved ${String(late)} ms after`);
      }
      assert.deepEqual(
        resolved.map((a) => a.fingerprint).sort(),
        (list[0]?.alerts ?? []).map((a) => a.fingerprint).sort(),
        `${group}: the same alerts resolved`,
      );
    }
    assert.deepEqual(firing('gpu-a'), ['firing:AegisHandedToHuman']);
    assert.deepEqual(firing('gpu-b'), ['firing:AegisApprovalPending']);
    assert.deepEqual(firing('gpu-c'), ['firing:AegisTicketCorrupt']);
    assert.deepEqual(firing('gpu-d'), ['firing:AegisBudgetExhausted', 'firing:AegisHandedToHuman']);
    assert.deepEqual(firing('(fleet)'), [
      'firing:AegisSignalStale',
      'firing:AegisStormBreakerOpen',
    ]);
    const a = byGroup.get('gpu-a')?.[0]?.alerts[0];
    assert.deepEqual(a?.labels, {
      alertname: 'AegisHandedToHuman',
      cluster: 'lab',
      condition: 'GpuHung',
      domain: 'GPU',
      leaf_switch: 'leaf-2',
      node: 'gpu-a',
      rack: 'r7',
      severity: 'critical',
      sop: 'gpu.hung',
      ticket_status: 'assigned',
    });
    assert.match(a.annotations['description'] ?? '', /Reboot Failed - job restart-gpu-2 failed/);

    // The dead URL failed on its own timer; the live one was never held up by it.
    const values =
      (await metrics.registry.getMetricsAsJSON()).find(
        (m) => m.name === 'aegis_notifications_total',
      )?.values ?? [];
    const count = (receiver: string, result: string): number =>
      values.find((v) => v.labels['receiver'] === receiver && v.labels['result'] === result)
        ?.value ?? 0;
    const [live, dead] = notifier.status();
    assert.ok(count(live?.receiver ?? '', 'ok') >= 5, 'live Alertmanager: refreshes and changes');
    assert.equal(count(live?.receiver ?? '', 'error'), 0);
    assert.ok(count(dead?.receiver ?? '', 'error') >= 3, 'dead Alertmanager: retried with backoff');
    assert.equal(count(dead?.receiver ?? '', 'ok'), 0);
  });
});
