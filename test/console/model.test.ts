/**
 * The console's data: each node's cell state (what the fleet view colours), the ticket timeline
 * (ordered, with Jobs and who acted) and Grafana links.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultConfig } from '../../src/config/schema.js';
import {
  CELL_STATES,
  FleetRows,
  diffRows,
  grafanaLinks,
  timeline,
} from '../../src/console/model.js';
import {
  DISABLE_LABEL,
  PAUSE_ANNOTATION,
  TICKET_ANNOTATION,
  type NodeInfo,
} from '../../src/core/types.js';
import { newTicket, serializeTicket, type Ticket } from '../../src/ticket/ticket.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

function node(name: string, over: Partial<NodeInfo> = {}, ticket?: Ticket): NodeInfo {
  return {
    name,
    labels: {},
    annotations: ticket === undefined ? {} : { [TICKET_ANNOTATION]: serializeTicket(ticket) },
    unschedulable: false,
    ready: true,
    resourceVersion: '1',
    ...over,
  } as NodeInfo;
}

const open = (over: Partial<Ticket> = {}): Ticket => ({
  ...newTicket({ condition: 'Xid79GPULost', reason: 'r', nowMs: T0 }),
  ...over,
});

describe('console cells', () => {
  it('classifies every state the fleet view shows', () => {
    const rows = new FleetRows();
    const nodes = [
      node('healthy'),
      node('faulty', {}, open()),
      node('cordoned-aegis', { unschedulable: true }, open({ cordonedByAegis: true })),
      node(
        'held',
        {},
        open({ workflows: [{ action: 'Reboot', status: 'Held', message: 'rack-cap: busy' }] }),
      ),
      node('human', {}, open({ supervisor: 'alice', status: 'assigned' })),
      node('cordoned-hand', { unschedulable: true }),
      node('stale'),
      node('paused', { annotations: { [PAUSE_ANNOTATION]: 'true' } }),
      node('opted-out', { labels: { [DISABLE_LABEL]: 'true' } }),
      node('corrupt', { annotations: { [TICKET_ANNOTATION]: '{not: [yaml' } }),
    ];
    const engine = { atMs: T0, breakerOpen: false, holds: new Map(), stale: new Set(['stale']) };
    const { rows: built } = rows.rows(nodes, engine);
    for (const r of built) assert.equal(CELL_STATES[r[1]], r[0], r[0]);
    // A node held by the engine this cycle (its ticket not yet saying so) is held too.
    const h = rows.rows([node('faulty', {}, open())], {
      ...engine,
      holds: new Map([['faulty', { gate: 'concurrency', action: 'Drain', reason: 'x' }]]),
    });
    assert.equal(CELL_STATES[h.rows[0]?.[1] ?? -1], 'held');
  });

  it('diffs rows: only changed cells and departed nodes', () => {
    const a = new FleetRows().rows([node('n1'), node('n2')], undefined).rows;
    const before = new Map(a.map((r) => [r[0], r]));
    const b = new FleetRows().rows(
      [node('n1', { unschedulable: true, resourceVersion: '2' })],
      undefined,
    ).rows;
    const d = diffRows(before, b);
    assert.deepEqual(
      d.changed.map((r) => r[0]),
      ['n1'],
    );
    assert.deepEqual(d.removed, ['n2']);
  });
});

describe('console node view data', () => {
  it('the timeline is in time order, names each Job and who acted', () => {
    const t = open({
      workflows: [
        { action: 'Cordon', status: 'Succeeded', time: '2026-01-01T00:00:01Z', seq: 0 },
        {
          action: 'Reboot',
          status: 'Held',
          time: '2026-01-01T00:02:00Z',
          message: 'approval: awaiting approval',
        },
      ],
      operatorLog: [{ action: 'approve', by: 'alice', at: '2026-01-01T00:03:00Z' }],
    });
    const tl = timeline('gpu-1', {
      ...t,
      workflows: [
        ...t.workflows,
        {
          action: 'Reboot',
          status: 'Succeeded',
          time: '2026-01-01T00:04:00Z',
          seq: 2,
          exitCode: 0,
        },
      ],
    });
    assert.deepEqual(
      tl.map((e) => [e.what, e.status ?? '', e.job ?? '', e.by ?? '']),
      [
        ['ticket opened', '', '', ''],
        ['Cordon #0', 'Succeeded', '', ''],
        ['Reboot', 'Held', '', ''],
        ['approve', '', '', 'alice'],
        ['Reboot #2', 'Succeeded', 'reboot-gpu-1-2', ''],
      ],
    );
  });

  it('Grafana links only with a URL, the node name escaped into the path', () => {
    const g = defaultConfig().console.grafana;
    assert.deepEqual(grafanaLinks('gpu-1', g), []);
    const links = grafanaLinks('gpu 1', { ...g, url: 'https://grafana.example/' });
    assert.equal(
      links[0]?.url,
      'https://grafana.example/d/aegis-fleet/aegis-fleet?var-node=gpu%201',
    );
  });
});
