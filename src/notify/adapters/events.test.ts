import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newTicket, StepStatus, TicketStatus, type Ticket } from '../../ticket/ticket.js';
import { diffTicket, eventSummary, eventTitle, type TicketEvent } from './events.js';

const T0 = Date.UTC(2026, 4, 4, 9, 0, 0);
const iso = (s: number): string => new Date(T0 + s * 1000).toISOString();
const N = 'gpu-3';

const opened: Ticket = {
  ...newTicket({ condition: 'Xid79GPULost', reason: 'XID 79 on GPU 3', nowMs: T0 }),
  nextSeq: 5,
  workflows: [{ action: 'Cordon', status: StepStatus.Running, time: iso(0), seq: 4 }],
};
const cordoned: Ticket = {
  ...opened,
  updateTime: iso(2),
  workflows: [{ ...opened.workflows[0]!, status: StepStatus.Succeeded, end: iso(2) }],
};
const held: Ticket = {
  ...cordoned,
  workflows: [
    ...cordoned.workflows,
    {
      action: 'Reboot',
      status: StepStatus.Held,
      time: iso(3),
      message: 'approval: awaiting approval',
    },
  ],
};
const heldAgain: Ticket = {
  ...held,
  workflows: [
    ...held.workflows,
    { action: 'Reboot', status: StepStatus.Held, time: iso(9), message: 'budget: reboots 2/2' },
  ],
};
const assigned: Ticket = {
  ...held,
  status: TicketStatus.Assigned,
  supervisor: 'sre',
  conclusion: 'approval dismissed by bob',
  updateTime: iso(20),
};
const takenOver: Ticket = { ...assigned, supervisor: 'carol', updateTime: iso(30) };
const acked: Ticket = {
  ...takenOver,
  status: TicketStatus.Closed,
  supervisor: 'carol',
  resolvedTime: iso(40),
  conclusion: 'acknowledged by carol',
};
const resolved: Ticket = {
  ...cordoned,
  status: TicketStatus.Resolved,
  resolvedTime: iso(60),
  conclusion: 'condition cleared after remediation',
};

const kinds = (es: readonly TicketEvent[]): string[] =>
  es.map((e) => `${e.kind}:${e.key.slice(`${N}/${opened.creationTime}/`.length)}`);

describe('diffTicket', () => {
  const cases: [string, Ticket | null, Ticket | null, string[]][] = [
    ['nothing to nothing', null, null, []],
    ['a ticket appears with its first step', null, opened, ['opened:4/opened']],
    ['the same version again', opened, opened, []],
    ['a step ends', opened, cordoned, ['step:4/step']],
    [
      'a Held entry is a step event keyed by nextSeq and its time',
      cordoned,
      held,
      [`step:5/held-${Date.parse(iso(3))}`],
    ],
    ['a second hold is a new event', held, heldAgain, [`step:5/held-${Date.parse(iso(9))}`]],
    ['hand-off to a human', held, assigned, ['handoff:4/handoff-sre']],
    [
      'a takeover from sre to carol is a new hand-off',
      assigned,
      takenOver,
      ['handoff:4/handoff-carol'],
    ],
    [
      'ack closes (no hand-off event for the closing supervisor)',
      takenOver,
      acked,
      ['closed:4/closed'],
    ],
    ['resolved by the daemon', cordoned, resolved, ['closed:4/closed']],
    [
      'first sight of a whole life at once',
      null,
      acked,
      ['opened:4/opened', 'step:4/step', `step:5/held-${Date.parse(iso(3))}`, 'closed:4/closed'],
    ],
    ['an open ticket removed', assigned, null, ['closed:4/closed']],
    ['a closed ticket removed: nothing', acked, null, []],
  ];
  for (const [name, prev, next, want] of cases) {
    it(name, () => {
      assert.deepEqual(kinds(diffTicket(N, prev, next)), want);
    });
  }

  it('an open ticket replaced by a newer one: closed (replaced) then opened, each its own key', () => {
    const newer: Ticket = {
      ...newTicket({ condition: 'GpuHung', reason: 'hung', nowMs: T0 + 86_400_000 }),
      nextSeq: 9,
      workflows: [{ action: 'Cordon', status: StepStatus.Running, time: iso(86_400), seq: 8 }],
    };
    const es = diffTicket(N, assigned, newer);
    assert.deepEqual(
      es.map((e) => [e.kind, e.key, e.closedBecause]),
      [
        ['closed', `${N}/${assigned.creationTime}/4/closed`, 'replaced'],
        ['opened', `${N}/${newer.creationTime}/8/opened`, undefined],
      ],
    );
    assert.equal(es[0]!.ticket, assigned);
    assert.match(eventSummary(es[0]!), /replaced by a newer ticket while open/);
  });

  it('entries folded away by the size bound are not reported again', () => {
    // The bound folded the Cordon entry into counters; a new entry ended.
    const folded: Ticket = {
      ...cordoned,
      counters: { 'Cordon/Succeeded': 1 },
      workflows: [
        { action: 'Drain', status: StepStatus.Succeeded, time: iso(5), end: iso(6), seq: 5 },
      ],
      nextSeq: 6,
    };
    assert.deepEqual(kinds(diffTicket(N, cordoned, folded)), ['step:5/step']);
  });

  it('keys are stable: the same transition diffed twice gives the same keys', () => {
    assert.deepEqual(
      diffTicket(N, null, acked).map((e) => e.key),
      diffTicket(N, null, acked).map((e) => e.key),
    );
  });

  it('titles and summaries name the node, condition, domain and what happened', () => {
    const [e] = diffTicket(N, cordoned, held);
    assert.equal(eventTitle(e!), '[Aegis] gpu-3: Xid79GPULost (GPU)');
    assert.equal(eventSummary(e!), `Step Reboot Held ${iso(3)}: approval: awaiting approval`);
    const [h] = diffTicket(N, held, assigned);
    assert.equal(eventSummary(h!), 'Node gpu-3 handed to sre: approval dismissed by bob');
    assert.equal(
      eventTitle({ ...h!, ticket: { ...assigned, condition: 'NotInCatalogue' } }),
      '[Aegis] gpu-3: NotInCatalogue',
    );
  });
});
