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
  StepStatus,
  type Ticket,
  type Workflow,
} from './ticket.js';
import { clipText, excerptLines } from './ticket-bounds.js';

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

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
const BUILT_IN_ACTIONS = ['Cordon', 'Diagnose', 'Drain', 'Reboot', 'Shutdown', 'HandToHuman'];
const ALL_STATUSES = Object.values(StepStatus);

/** Every `Action/Status` count a budget could ask for (folded entries included). */
function budgets(t: Ticket): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of BUILT_IN_ACTIONS)
    for (const s of ALL_STATUSES) out[`${a}/${s}`] = countSteps(t, a, s);
  return out;
}

/** The 200-line diagnosis of a node in trouble, 120 active conditions, a 10 KB reason. */
function hugeTicket(): Ticket {
  const base = withSteps(40);
  const running: Workflow = {
    action: 'Reboot',
    status: 'Running',
    time: new Date(T0 + 99_000).toISOString(),
    seq: 40,
    condition: 'Xid79GPULost',
    params: { type: 'Xid79GPULost', id: '3' },
    bootId: 'b7f3c2a1-boot',
    then: 'resolve',
  };
  return {
    ...base,
    condition: 'Xid79GPULost',
    reason: `aegis detect node gpu-7 Xid79GPULost ${'r'.repeat(10_240)}`,
    conditions: Array.from({ length: 120 }, (_, i) => `IBPortDown/mlx5_${i}`).concat(
      'Xid79GPULost/3',
    ),
    history: Array.from({ length: 30 }, (_, i) => (i === 0 ? 'Xid79GPULost' : `Cond${i}`)),
    workflows: [...base.workflows, running],
    nextSeq: 41,
    whySRE: 'w'.repeat(5000),
    conclusion: 'c'.repeat(5000),
    diagnosis: Array.from({ length: 6 }, (_, d) => ({
      hint: `kernel Xid events ${d}`,
      cmd: 'dmesg -T | grep Xid',
      result: Array.from({ length: 200 }, (_, i) => `line ${d}.${i} ${'x'.repeat(100)}`).join('\n'),
    })),
    remediations: Array.from({ length: 30 }, (_, i) => new Date(T0 + i * 60_000).toISOString()),
    cordonedByAegis: true,
  };
}

describe('ticket bounds', () => {
  it('200 lines of diagnosis, 121 active conditions and a 10 KB reason fit and read back', (t) => {
    const big = hugeTicket();
    const text = serializeTicket(big);
    t.diagnostic(`${bytes(text)} bytes`);
    assert.ok(bytes(text) <= MAX_TICKET_BYTES, `${bytes(text)} bytes`);
    const back = parseTicket(text, 'gpu-7');
    assert.deepEqual(budgets(back), budgets(big), 'budgets stay exact');
    assert.deepEqual(back.workflows.at(-1), big.workflows.at(-1), 'the Running step is intact');
    assert.equal(back.supervisor, big.supervisor);
    assert.equal(back.cordonedByAegis, true);
    assert.equal(back.nextSeq, 41);
    assert.deepEqual(back.remediations, big.remediations.slice(-back.remediations.length));
    assert.ok(back.remediations.length >= 10, 'the repeat-offender window keeps 10');
    // Excerpts: the head, the size and a digest of what was left out.
    assert.ok(back.reason.startsWith('aegis detect node gpu-7 Xid79GPULost rrr'));
    assert.match(back.reason, /… \[10277 bytes, sha256:[0-9a-f]{12}\]$/);
    assert.ok(back.conditions.includes('Xid79GPULost/3'), 'the served condition is kept');
    assert.equal(back.history[0], 'Xid79GPULost', 'the first condition served is kept');
    assert.equal(back.history.at(-1), 'Cond29');
    const d = back.diagnosis?.at(-1);
    assert.ok(d !== undefined, 'the latest diagnosis is kept');
    assert.equal(d.lines, 200);
    assert.ok(d.result.startsWith('line 5.0 '), d.result.slice(0, 40));
    assert.ok(d.result.endsWith(`line 5.199 ${'x'.repeat(100)}`));
    assert.match(d.result, /… \d+ of 200 lines omitted …/);
    assert.ok((back.omitted?.diagnosis ?? 0) >= 2, 'left-out diagnosis records are counted');
    assert.equal(back.omitted?.history, 30 - back.history.length);
    // Writing it again (a later step) keeps it within the bound and the budgets exact.
    const again = serializeTicket({
      ...back,
      workflows: [...back.workflows, { action: 'Drain', status: 'Succeeded', seq: 41 }],
    });
    assert.ok(bytes(again) <= MAX_TICKET_BYTES);
    const back2 = parseTicket(again, 'gpu-7');
    assert.equal(countSteps(back2, 'Drain', 'Succeeded'), 1);
    assert.equal(countSteps(back2, 'Reboot'), countSteps(big, 'Reboot'));
    assert.equal(back2.diagnosis?.at(-1)?.lines, 200, 'an excerpt keeps its original count');
  });

  it('sizes are UTF-8 bytes: 1.6 K characters of multi-byte text are 4 KB, over the bound', () => {
    const t = { ...withSteps(2), reason: '°'.repeat(400), conclusion: '日本語'.repeat(400) };
    assert.ok(serializeTicket({ ...t, reason: '', conclusion: '' }).length < 1000);
    const text = serializeTicket(t);
    assert.ok(bytes(text) <= MAX_TICKET_BYTES, `${bytes(text)} bytes (${text.length} chars)`);
    assert.ok(parseTicket(text, 'n').conclusion?.startsWith('日本語'));
  });

  it('resolvedTime is never after updateTime: a write that resolves a ticket updates it', () => {
    const resolved = new Date(T0 + 3_600_000).toISOString();
    for (const updateTime of [undefined, new Date(T0 + 60_000).toISOString()]) {
      const t: Ticket = {
        ...withSteps(2),
        status: 'resolved',
        resolvedTime: resolved,
        ...(updateTime === undefined ? {} : { updateTime }),
      };
      const back = parseTicket(serializeTicket(t), 'n');
      assert.equal(back.resolvedTime, resolved);
      assert.equal(back.updateTime, resolved, `updateTime was ${updateTime ?? 'unset'}`);
    }
    const later = new Date(T0 + 7_200_000).toISOString();
    const kept = parseTicket(
      serializeTicket({ ...withSteps(1), resolvedTime: resolved, updateTime: later }),
      'n',
    );
    assert.equal(kept.updateTime, later, 'a later update is kept');
  });

  it("a clipped supervisor is still a human's; excerpts of excerpts keep the original's size", () => {
    const t = { ...withSteps(1), supervisor: `aegis${'-'.repeat(4000)}` };
    const back = parseTicket(serializeTicket(t), 'n');
    assert.ok(bytes(back.supervisor) <= 256);
    assert.equal(isAutomationOwned(back), false);
    const once = clipText('y'.repeat(5000), 200);
    assert.equal(clipText(once, 100).slice(-36), once.slice(-36), 'same size and digest');
    assert.ok(bytes(clipText(once, 100)) <= 100);
    const lines = Array.from({ length: 300 }, (_, i) => `l${i}`).join('\n');
    const ex = excerptLines(lines, 400);
    assert.match(excerptLines(ex, 100, 300), /… \d+ of 300 lines omitted …/);
    assert.ok(excerptLines(ex, 100, 300).startsWith('l0\n'));
    assert.ok(excerptLines(ex, 100, 300).endsWith('\nl299'));
  });

  it('never fails to fit any ticket, keeps the budgets and the Running step exact', (t) => {
    t.diagnostic(`largest ticket ${checkFits(ticketArb(1), 250)} bytes`);
  });

  it('never fails to fit tickets made of huge values (the last level)', (t) => {
    t.diagnostic(`largest ticket ${checkFits(ticketArb(30), 40)} bytes`);
  });

  it('the worst ticket: every field huge, control and multi-byte characters everywhere', (t) => {
    const nasty = (n: number, seed: string): string => `${seed}\u0001\u0085é\u2028"\\: #`.repeat(n);
    const running: Workflow = {
      action: nasty(50, 'A'),
      status: 'Running',
      time: new Date(T0).toISOString(),
      message: nasty(100, 'm'),
      seq: 123_456,
      condition: nasty(50, 'c'),
      exitCode: -123_456,
      params: Object.fromEntries(
        Array.from({ length: 12 }, (_, i) => [nasty(20, `k${i}`), nasty(50, `v${i}`)]),
      ),
      bootId: nasty(40, 'b'),
      then: 'resolve',
    };
    const done = Array.from({ length: 50 }, (_, i) => ({
      ...running,
      status: 'Succeeded' as const,
      action: nasty(10, `a${i}`),
    }));
    const worst: Ticket = {
      ...newTicket({ condition: nasty(100, 'C'), reason: nasty(1000, 'R'), nowMs: T0 }),
      supervisor: nasty(1000, 'S'),
      status: 'resolving',
      conditions: Array.from({ length: 150 }, (_, i) => nasty(20, `x${i}`)),
      history: Array.from({ length: 60 }, (_, i) => nasty(20, `h${i}`)),
      workflows: [...done, { ...running, seq: 1 }, running],
      counters: Object.fromEntries(
        Array.from({ length: 80 }, (_, i) => [
          i % 2 === 0 ? `${nasty(5, `q${i}`)}/Succeeded` : nasty(5, `Diagnosed:${i}`),
          7,
        ]),
      ),
      nextSeq: 999_999_999,
      whySRE: nasty(1000, 'W'),
      conclusion: nasty(1000, 'Z'),
      diagnosis: Array.from({ length: 12 }, () => ({
        hint: nasty(100, 'h'),
        cmd: nasty(100, 'c'),
        result: nasty(1000, 'r\n'),
      })),
      remediations: Array.from({ length: 40 }, (_, i) => new Date(T0 + i).toISOString()),
      cordonedByAegis: true,
      leaderEpoch: 999_999_999,
    };
    const text = serializeTicket(worst);
    t.diagnostic(`${bytes(text)} bytes`);
    assert.ok(bytes(text) <= MAX_TICKET_BYTES, `${bytes(text)} bytes`);
    const back = parseTicket(text, 'n');
    assert.equal(back.status, 'resolving');
    assert.equal(isAutomationOwned(back), false, "the supervisor is still a human's");
    assert.equal(back.nextSeq, 999_999_999);
    assert.equal(back.leaderEpoch, 999_999_999);
    assert.equal(back.cordonedByAegis, true);
    assert.deepEqual(back.remediations, worst.remediations.slice(-10));
    const last = back.workflows.at(-1);
    assert.equal(last?.status, 'Running', 'the newest Running step is kept');
    assert.equal(last.seq, 123_456);
    assert.equal(last.then, 'resolve');
    const succeeded = (tk: Ticket): number =>
      Object.entries(tk.counters)
        .filter(([k]) => k.endsWith('/Succeeded'))
        .reduce((n, [, v]) => n + v, 0) +
      tk.workflows.filter((w) => w.status === 'Succeeded').length;
    assert.equal(succeeded(back), succeeded(worst), 'Succeeded steps are all still counted');
  });
});

/** Tickets whose text fields are huge with the weight `big` (against 3 for short ones). */
function ticketArb(big: number): fc.Arbitrary<Ticket> {
  const text = fc.oneof(
    { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: big, arbitrary: fc.string({ unit: 'binary', maxLength: 2000 }) },
    { weight: big, arbitrary: fc.string({ unit: 'grapheme', minLength: 500, maxLength: 4000 }) },
    { weight: big, arbitrary: fc.nat({ max: 5000 }).map((n) => '\u0001\u0085é'.repeat(n)) },
  );
  const workflow: fc.Arbitrary<Workflow> = fc.record(
    {
      action: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...BUILT_IN_ACTIONS) },
        { weight: 1, arbitrary: text.filter((s) => s.length > 0) },
      ),
      status: fc.constantFrom('Succeeded', 'Failed', 'Canceled', 'Held' as const),
      time: fc.constant(new Date(T0).toISOString()),
      message: text,
      seq: fc.nat({ max: 1000 }),
      condition: text,
      exitCode: fc.integer({ min: -1, max: 255 }),
      params: fc.dictionary(text, text, { maxKeys: 12 }).map((d) => ({ ...d })),
      bootId: text,
    },
    { requiredKeys: ['action', 'status'] },
  );
  return fc
    .record({
      condition: text,
      reason: text,
      supervisor: fc.oneof(fc.constant('aegis'), text),
      status: fc.constantFrom('created', 'assigned', 'resolving', 'resolved', 'closed' as const),
      creationTime: fc.constant(new Date(T0).toISOString()),
      conditions: fc.array(text, { maxLength: 150 }),
      history: fc.array(text, { maxLength: 60 }),
      workflows: fc.array(workflow, { maxLength: 80 }),
      running: fc.option(workflow, { nil: undefined }),
      counters: fc
        .dictionary(
          fc.oneof(
            fc
              .constantFrom(...BUILT_IN_ACTIONS)
              .chain((a) => fc.constantFrom(...ALL_STATUSES).map((s) => `${a}/${s}`)),
            text,
          ),
          fc.nat({ max: 50 }),
          { maxKeys: 80 },
        )
        .map((d) => ({ ...d })),
      nextSeq: fc.nat({ max: 10_000 }),
      whySRE: text,
      conclusion: text,
      diagnosis: fc.array(fc.record({ hint: text, cmd: text, result: text }), { maxLength: 12 }),
      remediations: fc.array(fc.constant(new Date(T0).toISOString()), { maxLength: 40 }),
      cordonedByAegis: fc.boolean(),
      leaderEpoch: fc.nat({ max: 1_000_000 }),
    })
    .map(({ running, ...rest }) => ({
      ...rest,
      workflows:
        running === undefined
          ? rest.workflows
          : [...rest.workflows, { ...running, status: 'Running' as const }],
    }));
}

/**
 * Serialises `runs` tickets of `arb`: each fits, reads back, keeps what the engine relies on.
 * Returns the largest size seen.
 */
function checkFits(arb: fc.Arbitrary<Ticket>, runs: number): number {
  let largest = 0;
  fc.assert(
    fc.property(arb, (tk) => {
      const out = serializeTicket(tk);
      largest = Math.max(largest, bytes(out));
      assert.ok(bytes(out) <= MAX_TICKET_BYTES, `${bytes(out)} bytes`);
      const back = parseTicket(out, 'n');
      assert.equal(back.status, tk.status);
      assert.equal(isAutomationOwned(back), isAutomationOwned(tk));
      assert.equal(back.nextSeq, tk.nextSeq);
      assert.equal(back.cordonedByAegis, tk.cordonedByAegis);
      assert.equal(back.leaderEpoch, tk.leaderEpoch);
      assert.deepEqual(back.remediations, tk.remediations.slice(-back.remediations.length));
      assert.ok(back.remediations.length >= Math.min(10, tk.remediations.length));
      const fewCounters = Object.keys(tk.counters).length <= 12;
      const plainActions = tk.workflows.every((w) => BUILT_IN_ACTIONS.includes(w.action));
      if (fewCounters && plainActions) assert.deepEqual(budgets(back), budgets(tk));
      const run = tk.workflows.findLast((w) => w.status === 'Running');
      if (run !== undefined && BUILT_IN_ACTIONS.includes(run.action) && isPlain(run)) {
        const kept = back.workflows.findLast((w) => w.status === 'Running');
        assert.deepEqual(
          kept,
          { ...run, ...(run.message === undefined ? {} : { message: kept?.message }) },
          'the Running step is kept as it was (its message may be clipped)',
        );
      }
    }),
    { numRuns: runs, seed: 12 },
  );
  return largest;
}

/** A step whose identifiers are short printable ASCII (every real one): kept exactly. */
function isPlain(w: Workflow): boolean {
  const ok = (s: string | undefined): boolean => s === undefined || /^[\x20-\x7e]{0,32}$/.test(s);
  return (
    ok(w.condition) &&
    ok(w.bootId) &&
    Object.entries(w.params ?? {}).every(([k, v]) => ok(k) && ok(v)) &&
    Object.keys(w.params ?? {}).length <= 4
  );
}
