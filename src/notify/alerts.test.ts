import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aNode, T0 } from '../../test/helpers/builders.js';
import { LEAF_LABEL, RACK_LABEL, TICKET_ANNOTATION } from '../core/types.js';
import { newTicket, serializeTicket, type Ticket, type Workflow } from '../ticket/ticket.js';
import {
  AlertName,
  desiredAlerts,
  snapshotNodes,
  ZONE_LABEL,
  type Alert,
  type AlertRules,
  type FleetSnapshot,
  type SnapshotNode,
} from './alerts.js';

const RULES: AlertRules = {
  clusterName: 'lab',
  staleSignalMinNodes: 5,
  staleSignalMinFraction: 0.05,
  domainOf: (c) => (c === 'GpuHung' ? 'GPU' : undefined),
  sopOf: (c) => (c === 'GpuHung' ? 'gpu.hung' : undefined),
};

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
    end: iso(atMs + 1000),
    ...(message === undefined ? {} : { message }),
  };
}

/** A ticket as the runner leaves it after a hand-off (runner.ts recordEnd, then: 'assign'). */
function handedOff(why = 'reboot did not clear GpuHung'): Ticket {
  return {
    ...newTicket({ condition: 'GpuHung', reason: 'aegis detect node gpu-a GpuHung', nowMs: T0 }),
    status: 'assigned',
    supervisor: 'sre',
    whySRE: why,
    conclusion: why,
    workflows: [
      step('Cordon', 'Succeeded', T0),
      step('Drain', 'Succeeded', T0 + 10_000),
      step('Reboot', 'Failed', T0 + 20_000, 'job restart-gpu-a-2 failed'),
      step('HandToHuman', 'Succeeded', T0 + 60_000, why),
    ],
  };
}

function snapshot(nodes: SnapshotNode[], over: Partial<FleetSnapshot> = {}): FleetSnapshot {
  return {
    atMs: T0 + 120_000,
    fleetSize: 200,
    nodes,
    breaker: { open: false },
    staleSignals: {},
    ...over,
  };
}

const node = (name: string, ticket: Ticket | null, over: Partial<SnapshotNode> = {}) => ({
  name,
  topology: { rack: 'r12', leafSwitch: 'leaf-3' },
  ticket,
  ...over,
});

const names = (alerts: readonly Alert[]): string[] =>
  alerts.map((a) => `${a.labels['alertname'] ?? ''}/${a.labels['node'] ?? ''}`);

describe('desiredAlerts: hand-off to a human', () => {
  it('raises AegisHandedToHuman with node, condition, domain, SOP, status, rack and switch labels', () => {
    const [alert, ...rest] = desiredAlerts(snapshot([node('gpu-a', handedOff())]), RULES);
    assert.equal(rest.length, 0);
    assert.deepEqual(alert?.labels, {
      cluster: 'lab',
      node: 'gpu-a',
      rack: 'r12',
      leaf_switch: 'leaf-3',
      condition: 'GpuHung',
      domain: 'GPU',
      sop: 'gpu.hung',
      ticket_status: 'assigned',
      alertname: AlertName.HandedToHuman,
      severity: 'critical',
    });
    assert.equal(alert.startsAtMs, T0 + 61_000, 'starts when the hand-off step ended');
    assert.match(alert.annotations['summary'] ?? '', /handed gpu-a to sre: reboot did not clear/);
    const description = alert.annotations['description'] ?? '';
    assert.match(description, /last steps:/);
    assert.match(description, /Reboot Failed - job restart-gpu-a-2 failed/);
    assert.match(description, /HandToHuman Succeeded/);
  });

  it('resolves when an operator acknowledges (closes) the ticket or releases it to Aegis', () => {
    const acked: Ticket = {
      ...handedOff(),
      status: 'closed',
      supervisor: 'alice',
      conclusion: 'acknowledged by alice',
    };
    const released: Ticket = { ...handedOff(), supervisor: 'aegis' };
    assert.deepEqual(desiredAlerts(snapshot([node('gpu-a', acked)]), RULES), []);
    assert.deepEqual(desiredAlerts(snapshot([node('gpu-a', released)]), RULES), []);
  });

  it('is not raised for a takeover without a hand-off (the human already knows)', () => {
    const t: Ticket = {
      ...newTicket({ condition: 'GpuHung', reason: 'r', nowMs: T0 }),
      supervisor: 'bob',
      status: 'assigned',
      workflows: [step('Cordon', 'Succeeded', T0)],
    };
    assert.deepEqual(desiredAlerts(snapshot([node('gpu-a', t)]), RULES), []);
  });

  it('counts a hand-off folded into the counters (a long ticket)', () => {
    const t: Ticket = {
      ...handedOff(),
      workflows: [step('Healthcheck', 'Held', T0 + 70_000, 'stale-signal: metrics are stale')],
      counters: { 'HandToHuman/Succeeded': 1 },
    };
    const alerts = desiredAlerts(snapshot([node('gpu-a', t)]), RULES);
    assert.deepEqual(names(alerts), ['AegisHandedToHuman/gpu-a']);
    assert.equal(alerts[0]?.startsAtMs, undefined, 'no step time left: the poster times it');
  });
});

describe('desiredAlerts: budgets', () => {
  it('a repeat offender handed to a human raises the hand-off and AegisBudgetExhausted', () => {
    const t = handedOff('repeat offender: too many remediations in the window');
    const alerts = desiredAlerts(snapshot([node('gpu-a', t)]), RULES);
    assert.deepEqual(names(alerts), ['AegisHandedToHuman/gpu-a', 'AegisBudgetExhausted/gpu-a']);
    assert.equal(alerts[1]?.labels['budget'], 'repeat-offender');
    assert.equal(alerts[1].startsAtMs, T0 + 61_000);
  });

  it('a cordon held by the cordon budget this cycle raises it, with no ticket yet', () => {
    const hold = {
      gate: 'cordon-budget',
      action: 'Cordon',
      reason: 'cordon budget of 20 nodes reached',
    };
    const [alert, ...rest] = desiredAlerts(snapshot([node('gpu-b', null, { hold })]), RULES);
    assert.equal(rest.length, 0);
    assert.equal(alert?.labels['alertname'], AlertName.BudgetExhausted);
    assert.equal(alert.labels['budget'], 'cordon');
    assert.equal(alert.labels['ticket_status'], undefined);
    assert.match(alert.annotations['description'] ?? '', /cordon budget of 20 nodes reached/);
    // Another gate is not a budget; the hold gone, the alert goes.
    const other = { gate: 'rack-cap', action: 'Reboot', reason: 'rack r12 already has 1' };
    assert.deepEqual(desiredAlerts(snapshot([node('gpu-b', null, { hold: other })]), RULES), []);
    assert.deepEqual(desiredAlerts(snapshot([node('gpu-b', null)]), RULES), []);
  });

  it('an open ticket whose last entry is a cordon-budget hold raises it until the next step', () => {
    const held: Ticket = {
      ...newTicket({ condition: 'GpuHung', reason: 'r', nowMs: T0 }),
      workflows: [step('Cordon', 'Held', T0, 'cordon-budget: cordon budget of 20 nodes reached')],
    };
    assert.deepEqual(names(desiredAlerts(snapshot([node('gpu-b', held)]), RULES)), [
      'AegisBudgetExhausted/gpu-b',
    ]);
    const moved: Ticket = {
      ...held,
      workflows: [...held.workflows, step('Cordon', 'Running', T0)],
    };
    assert.deepEqual(desiredAlerts(snapshot([node('gpu-b', moved)]), RULES), []);
  });
});

describe('desiredAlerts: fleet-wide alerts', () => {
  it('raises AegisStormBreakerOpen while the breaker is open, from when it tripped', () => {
    const open = desiredAlerts(snapshot([], { breaker: { open: true, trippedAtMs: T0 } }), RULES);
    assert.deepEqual(
      open.map((a) => a.labels),
      [{ cluster: 'lab', alertname: AlertName.StormBreakerOpen, severity: 'critical' }],
    );
    assert.equal(open[0]?.startsAtMs, T0);
    assert.deepEqual(desiredAlerts(snapshot([], { breaker: { open: false } }), RULES), []);
  });

  it('raises AegisSignalStale for a signal stale on max(minNodes, fraction of the fleet) nodes', () => {
    // 200 nodes × 0.05 = 10 nodes.
    const stale = (n: number) =>
      desiredAlerts(
        snapshot([], { staleSignals: { 'dcgm-exporter': n, 'node-exporter': 0 } }),
        RULES,
      );
    assert.deepEqual(stale(9), []);
    const [alert] = stale(10);
    assert.deepEqual(alert?.labels, {
      cluster: 'lab',
      alertname: AlertName.SignalStale,
      severity: 'warning',
      signal: 'dcgm-exporter',
    });
    assert.match(
      alert.annotations['summary'] ?? '',
      /dcgm-exporter is stale or missing on 10 of 200/,
    );
    // A small fleet: the floor of 5 nodes holds.
    const small = desiredAlerts(
      snapshot([], { fleetSize: 8, staleSignals: { 'dcgm-exporter': 4 } }),
      RULES,
    );
    assert.deepEqual(small, []);
  });
});

describe('desiredAlerts: approval and corrupt tickets', () => {
  it('raises AegisApprovalPending while the approval is pending, labelled with the action', () => {
    const base = {
      ...newTicket({ condition: 'GpuHung', reason: 'r', nowMs: T0 }),
      status: 'resolving' as const,
      workflows: [
        step('Cordon', 'Succeeded', T0),
        step('Reboot', 'Held', T0 + 5000, 'approval: awaiting approval'),
      ],
    };
    const pending: Ticket = {
      ...base,
      approval: {
        action: 'Reboot',
        state: 'pending',
        requestedAt: iso(T0 + 5000),
        reason: 'awaiting approval',
      },
    };
    const [alert, ...rest] = desiredAlerts(snapshot([node('gpu-c', pending)]), RULES);
    assert.equal(rest.length, 0);
    assert.equal(alert?.labels['alertname'], AlertName.ApprovalPending);
    assert.equal(alert.labels['action'], 'Reboot');
    assert.equal(alert.startsAtMs, T0 + 5000);
    assert.match(alert.annotations['summary'] ?? '', /kubectl aegis approve gpu-c/);
    for (const state of ['approved', 'dismissed'] as const) {
      const decided: Ticket = {
        ...base,
        approval: {
          action: 'Reboot',
          state,
          requestedAt: iso(T0 + 5000),
          by: 'alice',
          at: iso(T0 + 9000),
        },
      };
      assert.deepEqual(desiredAlerts(snapshot([node('gpu-c', decided)]), RULES), [], state);
    }
  });

  it('raises AegisTicketCorrupt for an unreadable ticket, and only that for the node', () => {
    const corrupt = 'node gpu-d: annotation aegis.io/ticketing is not valid YAML: bad indentation';
    const [alert, ...rest] = desiredAlerts(snapshot([node('gpu-d', null, { corrupt })]), RULES);
    assert.equal(rest.length, 0);
    assert.equal(alert?.labels['alertname'], AlertName.TicketCorrupt);
    assert.equal(alert.labels['node'], 'gpu-d');
    assert.match(alert.annotations['description'] ?? '', /bad indentation/);
    assert.deepEqual(desiredAlerts(snapshot([node('gpu-d', null)]), RULES), [], 'repaired');
  });
});

describe('snapshotNodes', () => {
  it('keeps nodes with a ticket annotation or a hold, with topology, ticket or corruption', () => {
    const good = serializeTicket(handedOff());
    const nodes = [
      aNode({ name: 'plain' }),
      aNode({
        name: 'gpu-a',
        labels: { [RACK_LABEL]: 'r1', [LEAF_LABEL]: 'leaf-1', [ZONE_LABEL]: 'z1' },
        annotations: { [TICKET_ANNOTATION]: good },
      }),
      aNode({ name: 'gpu-d', annotations: { [TICKET_ANNOTATION]: 'x: [' } }),
      aNode({ name: 'held' }),
    ];
    const hold = { gate: 'cordon-budget', action: 'Cordon', reason: 'full' };
    const out = snapshotNodes(
      nodes,
      (n) => {
        if (n.name === 'gpu-d') throw new Error('node gpu-d: not valid YAML');
        return n.name === 'gpu-a' ? handedOff() : null;
      },
      new Map([['held', hold]]),
    );
    assert.deepEqual(
      out.map((n) => n.name),
      ['gpu-a', 'gpu-d', 'held'],
    );
    assert.deepEqual(out[0]?.topology, { rack: 'r1', leafSwitch: 'leaf-1', zone: 'z1' });
    assert.equal(out[0].ticket?.supervisor, 'sre');
    assert.equal(out[1]?.corrupt, 'node gpu-d: not valid YAML');
    assert.deepEqual(out[2]?.hold, hold);
    const alerts = desiredAlerts(snapshot(out), RULES);
    assert.deepEqual(names(alerts), [
      'AegisHandedToHuman/gpu-a',
      'AegisTicketCorrupt/gpu-d',
      'AegisBudgetExhausted/held',
    ]);
    assert.equal(alerts[0]?.labels['zone'], 'z1');
  });
});
