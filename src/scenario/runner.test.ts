/**
 * The scenario runner: the incident summary's detection times, and the daemon's replicas
 * (`restart`, `leader-overlap`) as the timeline starts and stops them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseScenario } from './load.js';
import { runScenario } from './runner.js';
import { parseTicket } from '../ticket/ticket.js';

const XID79 = `
seed: 7
fleet: { nodes: 4 }
duration: 40m
timeline:
  - { at: 5m, event: fault, node: 3, condition: Xid79GPULost, device: 3 }
expect:
  - { did: Reboot, node: 3 }
`;

describe('scenario runner', () => {
  it('an Xid incident has its detection time (the XID rules share one query)', async () => {
    const report = await runScenario(parseScenario(XID79, 'xid.yaml'));
    const incident = report.summary.incidents.find((i) => i.node === 'gpu-node-0003');
    assert.ok(incident !== undefined);
    assert.equal(incident.what, 'Xid79GPULost');
    // The fault is injected at 5m and the cycle at 5m sees it.
    assert.equal(incident.detectedAtMs, 300_000);
    assert.equal(incident.detectedAfterMs, 0);
    assert.equal(report.summary.totals.medianDetectMs, 0);
  });
});

/** Xid 79 on node 3 at 5m (reboot Job 6m10s-9m10s, healed at 21m), plus `extra` timeline items. */
const xidWith = (extra: string, more = ''): string => `
seed: 7
fleet: { nodes: 4 }
duration: 40m
${more}
timeline:
  - { at: 5m, event: fault, node: 3, condition: Xid79GPULost, device: 3, persistence: until-reboot }
${extra}
expect:
  - { jobs: restart_node, node: 3, count: 1 }
  - { node: 3, schedulable: true, ticket: { status: resolved } }
`;

describe('scenario runner: the daemon restarted, two leaders overlapping', () => {
  it('restart: the process ends mid-reboot, a fresh one at the next epoch finishes the ladder', async () => {
    const report = await runScenario(
      parseScenario(xidWith('  - { at: 7m, event: restart }'), 'restart.yaml'),
    );
    assert.deepEqual(report.run.replicas, [
      { replica: 0, epoch: 0, startOffsetMs: 0, endOffsetMs: 420_000, end: 'restart' },
      { replica: 1, epoch: 1, startOffsetMs: 420_000, endOffsetMs: null, end: null },
    ]);
    // The ended process reports nothing more; the new one follows the reboot Job by name.
    assert.deepEqual(
      report.actions.filter((a) => a.replica === 0 && a.atMs > 420_000),
      [],
    );
    assert.ok(report.actions.some((a) => a.replica === 1 && a.action === 'Reboot'));
    assert.deepEqual(
      report.expectations.map((e) => [e.description, e.passed]),
      [
        ['restart_node Jobs created on gpu-node-0003: exactly 1', true],
        ['gpu-node-0003 ends schedulable, ticket resolved', true],
      ],
    );
    const node = report.nodes.find((n) => n.name === 'gpu-node-0003');
    assert.equal(node?.ticket?.leaderEpoch, 1, 'the new process wrote the ticket at its epoch');
    // The reboot began in the ended process; the new one, knowing only the ticket, saw it through.
    const reboots = report.actions.filter((a) => a.action === 'Reboot' && a.status !== 'Held');
    assert.deepEqual(
      reboots.map((a) => [a.replica, a.status]),
      [
        [0, 'Running'],
        [1, 'Running'],
        [1, 'Succeeded'],
      ],
    );
  });

  it('leader-overlap: both replicas cycle until the old one learns it lost the lease', async () => {
    const report = await runScenario(
      parseScenario(xidWith('  - { at: 5m05s, event: leader-overlap, for: 15m }'), 'overlap.yaml'),
    );
    assert.deepEqual(report.run.replicas, [
      { replica: 0, epoch: 0, startOffsetMs: 0, endOffsetMs: 1_205_000, end: 'lost-lease' },
      { replica: 1, epoch: 1, startOffsetMs: 305_000, endOffsetMs: null, end: null },
    ]);
    const during = (r: number): number =>
      report.actions.filter((a) => a.replica === r && a.atMs >= 305_000 && a.atMs < 1_205_000)
        .length;
    assert.ok(during(0) > 0, 'the old replica still acts during the overlap');
    assert.ok(during(1) > 0, 'the new replica acts during the overlap');
    assert.deepEqual(
      report.actions.filter(
        (a) => a.replica === 0 && a.atMs >= 1_205_000 && a.status === 'Running',
      ),
      [],
      'the old replica starts nothing once it knows it lost the lease',
    );
    assert.equal(report.nodes.find((n) => n.name === 'gpu-node-0003')?.ticket?.leaderEpoch, 1);
    assert.ok(report.passed, JSON.stringify(report.expectations));
  });

  it('the report has every node raw annotations, Events, Jobs, evictions and deletions', async () => {
    const report = await runScenario(
      parseScenario(
        xidWith('', 'workloads:\n  - { name: train, nodes: "1-4", minAvailable: 3 }').replace(
          'expect:',
          `expect:
  - { evictions: 1, node: 3, result: evicted, namespace: training }
  - { evictions: 0, node: 3 }
  - { noForceDelete: true }
  - { events: AegisRebootSucceeded, node: 3, type: Normal, count: 1 }
  - { events: any, node: 2, count: 0 }
  - { jobs: any, node: 2, count: 1 }`,
        ),
        'report.yaml',
      ),
    );
    const node = report.nodes.find((n) => n.name === 'gpu-node-0003');
    assert.ok(node !== undefined);
    const raw = node.annotations['aegis.io/ticketing'];
    assert.ok(raw !== undefined);
    assert.deepEqual(parseTicket(raw, node.name), node.ticket, 'the raw annotation, verbatim');
    assert.deepEqual(
      node.pods.map((p) => [p.kind, p.namespace, p.name, p.kind === 'evict' ? p.result : '']),
      [['evict', 'training', 'train-worker-2', 'evicted']],
    );
    assert.deepEqual(
      node.jobs.map((j) => j.kind),
      ['diagnose_node', 'restart_node', 'healthcheck_node'],
    );
    assert.ok(node.events.some((e) => e.reason === 'AegisRebootSucceeded' && e.type === 'Normal'));
    for (const e of node.events) assert.match(e.time, /^2026-01-01T00:/);
    assert.deepEqual(report.nodes.find((n) => n.name === 'gpu-node-0002')?.events, []);
    assert.deepEqual(
      report.expectations.map((e) => [e.passed, e.detail]),
      [
        [true, 'found 1: training/train-worker-2 gpu-node-0003 at 00:06:10 (expected exactly 1)'],
        [false, 'found 1: training/train-worker-2 gpu-node-0003 at 00:06:10 (expected exactly 0)'],
        [true, 'found 0 (expected at most 0)'],
        [true, 'found 1: AegisRebootSucceeded gpu-node-0003 at 00:09:40 (expected exactly 1)'],
        [true, 'found 0 (expected exactly 0)'],
        [false, 'found 0 (expected exactly 1)'],
        [true, 'found 1: restart_node gpu-node-0003 at 00:06:40 (expected exactly 1)'],
        [true, 'schedulable, ticket resolved (aegis, Xid79GPULost), 1 reboots'],
      ],
    );
  });
});
