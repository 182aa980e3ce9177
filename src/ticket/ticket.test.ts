import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isHealError, ErrorCode } from '../core/errors.js';
import {
  countSteps,
  isAutomationOwned,
  MAX_TICKET_BYTES,
  newTicket,
  parseTicket,
  serializeTicket,
  type Ticket,
} from './ticket.js';

const T0 = Date.UTC(2026, 0, 1);

function withSteps(n: number): Ticket {
  const t = newTicket({ condition: 'GpuHung', reason: 'r', nowMs: T0 });
  return {
    ...t,
    workflows: Array.from({ length: n }, (_, i) => ({
      action: i % 3 === 0 ? 'Reboot' : 'Diagnose',
      status: 'Succeeded' as const,
      time: new Date(T0 + i * 1000).toISOString(),
      message: 'x'.repeat(80),
      seq: i,
    })),
  };
}

describe('ticket codec', () => {
  it('round-trips a ticket', () => {
    const t = withSteps(3);
    assert.deepEqual(parseTicket(serializeTicket(t), 'n1'), t);
  });

  it('parses a text once: the same frozen ticket for every reader; corrupt text is never kept', () => {
    const raw = serializeTicket(withSteps(2));
    const a = parseTicket(raw, 'n1');
    assert.equal(parseTicket(raw, 'n2'), a, 'the same object');
    assert.ok(
      Object.isFrozen(a) && Object.isFrozen(a.workflows) && Object.isFrozen(a.workflows[0]),
    );
    assert.throws(() => {
      (a.workflows as unknown[]).push({});
    }, TypeError);
    const copy: Ticket = { ...a, workflows: [...a.workflows, ...withSteps(1).workflows] };
    assert.equal(copy.workflows.length, 3, 'copies change freely');
    for (const node of ['n1', 'n2']) {
      assert.throws(
        () => parseTicket('condition: [', node),
        (err: unknown) =>
          isHealError(err, ErrorCode.TicketCorrupt) && err.message.includes(`node ${node}:`),
      );
    }
  });

  it('reads the original format (no timestamps, seed example)', () => {
    const raw = [
      'condition: GPUCheckFailed',
      'reason: too many reboot',
      'supervisor: alice,bob',
      'status: resolving',
      'creationTime: "2026-01-01T00:00:00Z"',
      'workflows:',
      '  - action: cordon',
      '    status: Succeeded',
      '  - action: reboot',
      '    status: Failed',
    ].join('\n');
    const t = parseTicket(`|\n${raw}`, 'dev1');
    assert.equal(t.supervisor, 'alice,bob');
    assert.equal(t.workflows.length, 2);
    assert.equal(isAutomationOwned(t), false);
  });

  const corrupt: [string, string][] = [
    ['not yaml', 'condition: [unclosed'],
    ['unknown status', 'condition: X\nstatus: exploded\ncreationTime: "2026-01-01T00:00:00Z"'],
    ['missing creationTime', 'condition: X\nstatus: created'],
    [
      'bad workflow',
      'condition: X\nstatus: created\ncreationTime: "2026-01-01T00:00:00Z"\nworkflows: [{action: 1}]',
    ],
    ['a scalar', '42'],
  ];
  for (const [name, raw] of corrupt) {
    it(`rejects ${name} with TICKET_CORRUPT naming the node`, () => {
      assert.throws(
        () => parseTicket(raw, 'gpu-node-7'),
        (err) => isHealError(err, ErrorCode.TicketCorrupt) && err.message.includes('gpu-node-7'),
      );
    });
  }

  it('folds old entries into counters so the annotation stays bounded and budgets stay exact', () => {
    const t = withSteps(200);
    const text = serializeTicket(t);
    assert.ok(text.length <= MAX_TICKET_BYTES, `ticket is ${text.length} bytes`);
    const back = parseTicket(text, 'n');
    assert.ok(back.workflows.length < 200);
    assert.equal(countSteps(back, 'Reboot', 'Succeeded'), countSteps(t, 'Reboot', 'Succeeded'));
    assert.equal(countSteps(back, 'Diagnose'), countSteps(t, 'Diagnose'));
  });

  it('never crashes on arbitrary input: parses or throws TICKET_CORRUPT', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        try {
          parseTicket(s, 'n');
        } catch (err) {
          assert.ok(isHealError(err, ErrorCode.TicketCorrupt), String(err));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a human supervisor stops automation while the ticket is open, not after it is closed', () => {
    const t = { ...newTicket({ condition: 'X', reason: '', nowMs: T0 }), supervisor: 'alice' };
    assert.equal(isAutomationOwned(t), false);
    assert.equal(isAutomationOwned({ ...t, status: 'closed' }), true);
    assert.equal(isAutomationOwned(null), true);
  });
});
