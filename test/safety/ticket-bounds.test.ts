/**
 * Tickets never freeze a ladder (issue 12, item 4). A diagnose Job printing 150 lines of kernel Xid
 * events once made the ticket too large for its annotation: the final write of the step threw
 * TICKET_TOO_LARGE, the entry stayed Running, and the step was resumed and failed again every
 * cycle (0 reboots, hundreds of errors in 2 h). Here the real engine runs the Xid 79 ladder on the
 * simulated fleet with such a Job and must finish the ladder; the full output goes to Events, the
 * ticket keeps an excerpt that names the Job.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, HealError } from '../../src/core/errors.js';
import { TICKET_ANNOTATION } from '../../src/core/types.js';
import { jobName } from '../../src/jobs/job-name.js';
import { countSteps, MAX_TICKET_BYTES, parseTicket, type Ticket } from '../../src/ticket/ticket.js';
import {
  createGuardedFleet,
  sideEffectProblems,
  type GuardedFleet,
} from '../fixtures/safety/consistency.js';
import type { CallHook } from '../fixtures/safety/kill-switch.js';
import {
  catalogueOf,
  HOUR,
  LADDER_CONDITIONS,
  metricSum,
  runFor,
  safetyConfig,
} from '../fixtures/safety/safety-world.js';
import { useSafetyFigures } from './figures.js';

const figures = useSafetyFigures();
const CATALOGUE = catalogueOf([...LADDER_CONDITIONS, 'KubeletMemoryPressure']);
const CONFIG = safetyConfig({ safety: { maxCordonedFraction: 0.5 } });

/**
 * Kernel log lines as `dmesg -T` prints them, from public reports: the Xid 13 and Xid 109 lines
 * from leptonai/gpud pull request #46 (its `dmesg --ctime` capture), the Xid 79 text from
 * NVIDIA/NVSentinel issue #155 (a comment quoting the driver's message). A node whose kernel log
 * holds many Xid events prints them over and over; the test repeats them with advancing times.
 */
const XID_LINES: readonly string[] = [
  "NVRM: Xid (PCI:0000:cb:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter",
  'NVRM: Xid (PCI:0000:cb:00): 109, pid=1797828, name=pt_main_thread, Ch 00000008, errorString CTX SWITCH TIMEOUT, Info 0x58005',
  'NVRM: Xid (PCI:0000:44:00): 79, GPU has fallen off the bus',
];

/** `dmesg -T` time prefix, e.g. `[Fri Aug 30 11:43:09 2024]`. */
function ctime(ms: number): string {
  const d = new Date(ms);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()] ?? '';
  const mon =
    ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][
      d.getUTCMonth()
    ] ?? '';
  const hms = d.toISOString().slice(11, 19);
  return `[${day} ${mon} ${String(d.getUTCDate()).padStart(2, ' ')} ${hms} ${d.getUTCFullYear()}]`;
}

/** The diagnose Job's output in the entrypoint's protocol: one record of `lines` result lines. */
function xidDiagnosis(lines: number): string[] {
  const t0 = Date.UTC(2024, 7, 30, 11, 43, 9);
  return [
    'hint: kernel Xid events (Xid 79)',
    'cmd: dmesg -T | grep Xid | grep 79',
    ...Array.from(
      { length: lines },
      (_, i) => `result: ${ctime(t0 + i * 1000)} ${XID_LINES[i % XID_LINES.length] ?? ''}`,
    ),
  ];
}

/** An Xid 79 fleet whose diagnose Job on the faulty node prints `output`. */
async function xidFleet(
  output: readonly string[],
  hook?: CallHook,
): Promise<GuardedFleet & { node: string }> {
  const f = await createGuardedFleet({
    config: CONFIG,
    catalogue: CATALOGUE,
    ...(hook === undefined ? {} : { hook }),
  });
  const node = f.sw.names[1] ?? '';
  f.sw.world.cluster.setJobBehaviour('diagnose_node', { logs: output }, node);
  f.sw.world.faults.injectFault({
    condition: 'Xid79GPULost',
    device: '1',
    node,
    atMs: f.sw.clock.now(),
  });
  return { ...f, node };
}

/** Steps begun (or resumed) on `node` with `action`. */
function began(f: GuardedFleet, node: string, action: string): number {
  return f.life.steps.filter(
    (s) => s.node === node && s.action === action && s.status === 'Running',
  ).length;
}

/** Every ticket the engine wrote to `node`, parsed, in order. */
function writtenTickets(f: GuardedFleet, node: string): Ticket[] {
  return f.sw.world.cluster
    .writes()
    .filter((w) => w.by === 'client' && w.method === 'patchNodeAnnotations' && w.target === node)
    .map((w) => (JSON.parse(w.detail) as Record<string, string | null>)[TICKET_ANNOTATION])
    .filter((raw): raw is string => typeof raw === 'string')
    .map((raw) => parseTicket(raw, node));
}

async function assertConsistent(what: string, f: GuardedFleet): Promise<void> {
  figures.tried('outage');
  const problems = await sideEffectProblems(f);
  figures.bad('outage', problems.length, `${what}: ${problems.join('; ')}`);
  assert.deepEqual(problems, [], 'every reboot is recorded, none repeated');
  assert.equal(f.thrown(), 0, 'no cycle threw');
  assert.deepEqual(f.ledger.problems, [], 'every ticket written parses, no entry lost');
}

describe('tickets never freeze a ladder', () => {
  it('a 150-line Xid diagnosis: the ladder reboots once, no step is retried, the output is in Events', async (t) => {
    const output = xidDiagnosis(150);
    const f = await xidFleet(output);
    const { node } = f;
    await runFor(f.sw, f.life, { durationMs: 2 * HOUR, intervalMs: 30_000 });
    await assertConsistent('150-line diagnosis', f);
    const errors = metricSum(await f.life.metricsText(), 'aegis_errors_total');
    assert.equal(began(f, node, 'Diagnose'), 1, `the diagnose step ran once (errors: ${errors})`);
    assert.equal(f.sw.world.cluster.rebootCount(node), 1, 'the ladder went on to its one reboot');
    assert.equal(errors, 0, 'no error counted');

    const sizes = writtenTickets(f, node).length;
    const raw = (await f.sw.node(node)).annotations[TICKET_ANNOTATION] ?? '';
    t.diagnostic(`ticket ${Buffer.byteLength(raw)} B after ${sizes} writes`);
    assert.ok(Buffer.byteLength(raw) <= MAX_TICKET_BYTES, `ticket is ${Buffer.byteLength(raw)} B`);
    const ticket = await f.sw.ticket(node);
    assert.ok(ticket !== null);
    assert.equal(countSteps(ticket, 'Reboot', 'Succeeded'), 1);
    assert.ok(!ticket.workflows.some((w) => w.status === 'Running'), 'no step left Running');
    const diag = ticket.workflows.find((w) => w.action === 'Diagnose');
    assert.equal(diag?.status, 'Succeeded');
    const job = jobName('diagnose_node', node, diag.seq ?? -1);
    const entry = ticket.diagnosis?.at(-1);
    assert.ok(entry !== undefined, 'an excerpt of the diagnosis is in the ticket');
    assert.equal(entry.job, job, 'the excerpt names the Job (kubectl logs job/<name>)');
    assert.equal(entry.lines, 150, 'and how many lines the output had');
    const results = output.slice(2).map((l) => l.slice('result: '.length));
    assert.ok(entry.result.startsWith(results[0] ?? '?'), 'the excerpt keeps the first line');
    assert.ok(entry.result.endsWith(results.at(-1) ?? '?'), 'and the last one');
    assert.match(entry.result, /… \d+ of 150 lines omitted …/);

    // The output is in Events on the node, each within the Event message bound.
    const events = f.sw.world.cluster
      .events(node)
      .filter((e) => e.reason === 'AegisDiagnosis' && e.message.includes(`job/${job}`));
    t.diagnostic(`${events.length} AegisDiagnosis Events`);
    assert.ok(events.length >= 2 && events.length <= 8, `${events.length} diagnosis Events`);
    for (const e of events) assert.ok(e.message.length <= 1024, `${e.message.length} chars`);
    const text = events.map((e) => e.message).join('\n');
    const carried = results.filter((l) => text.includes(l)).length;
    t.diagnostic(`Events carry the last ${carried} of 150 lines`);
    assert.ok(carried >= 40, `${carried} lines in Events`);
    for (const line of results.slice(-carried)) assert.ok(text.includes(line), line);
    assert.ok(carried < results.length, 'more than the Events hold (8 of 1 KB)');
    assert.ok(
      events[0]?.message.includes(`lines left out: kubectl logs job/${job}`),
      'the first Event says where the rest is',
    );
  });

  it('the API server refusing the full ticket write: the step ends with the bare result, never loops', async () => {
    // An admission policy capping annotation values at 2000 bytes (HTTP 422) refuses the write
    // that carries the diagnosis; the write without it fits.
    let refused = 0;
    const hook: CallHook = (call) => {
      if (call.phase !== 'before' || call.method !== 'patchNodeAnnotations') return;
      const value = (call.args[1] as Record<string, string | null>)[TICKET_ANNOTATION] ?? '';
      if (Buffer.byteLength(value) <= 2000) return;
      refused++;
      throw new HealError(
        ErrorCode.InvalidInput,
        'HTTP 422: admission webhook "annotation-size.example.com" denied the request: annotation value longer than 2000 bytes',
      );
    };
    const f = await xidFleet(xidDiagnosis(150), hook);
    const { node } = f;
    await runFor(f.sw, f.life, { durationMs: 2 * HOUR, intervalMs: 30_000 });
    await assertConsistent('full write refused', f);
    assert.ok(refused >= 1, 'the full write was refused');
    assert.equal(began(f, node, 'Diagnose'), 1, `the diagnose step ran once (${refused} refusals)`);
    assert.equal(f.sw.world.cluster.rebootCount(node), 1, 'the ladder went on to its one reboot');
    const ticket = await f.sw.ticket(node);
    const diag = ticket?.workflows.find((w) => w.action === 'Diagnose');
    assert.equal(diag?.status, 'Succeeded');
    assert.match(diag.message ?? '', /recorded without details: HTTP 422/);
    assert.ok(
      f.sw.world.cluster.events(node).some((e) => e.reason === 'AegisDiagnosis'),
      'the output still reaches the Events',
    );
  });

  it('a ticket corrupted by hand while the step runs: a Warning Event, the node left alone, resumed once repaired', async () => {
    const state = { good: '', broken: false };
    const f = await xidFleet(xidDiagnosis(20), (call, life) => {
      // Right after the diagnose Job is created, a human breaks the ticket.
      if (state.broken || call.phase !== 'after' || call.method !== 'createJob') return;
      const req = call.args[0] as { kind: string; node: string };
      if (req.kind !== 'diagnose_node') return;
      state.broken = true;
      state.good = currentTicket(life.sim, req.node);
      life.sim.setAnnotation(req.node, TICKET_ANNOTATION, 'condition: [unclosed');
    });
    const { node } = f;
    await runFor(f.sw, f.life, { durationMs: HOUR, intervalMs: 30_000 });
    assert.ok(state.broken && state.good !== '', 'the ticket was broken mid-step');
    const warned = f.sw.world.cluster
      .events(node)
      .filter((e) => e.reason === 'AegisStepNotRecorded');
    assert.equal(warned.length, 1, 'one Warning Event says the result was not recorded');
    assert.match(
      warned[0]?.message ?? '',
      /^Diagnose #\d+ ended Succeeded but the ticket could not be written \(node gpu-node-0002: annotation aegis\.io\/ticketing is not valid YAML/,
    );
    assert.equal(began(f, node, 'Diagnose'), 1, 'not retried while the ticket is corrupt');
    assert.equal(f.sw.world.cluster.rebootCount(node), 0, 'nothing done to the node');
    assert.equal(
      (await f.sw.node(node)).annotations[TICKET_ANNOTATION],
      'condition: [unclosed',
      'the corrupt ticket is never overwritten',
    );
    // The human restores the ticket: the step is resumed (its Job followed) and the ladder ends.
    f.sw.world.cluster.setAnnotation(node, TICKET_ANNOTATION, state.good);
    await runFor(f.sw, f.life, { durationMs: HOUR, intervalMs: 30_000 });
    await assertConsistent('ticket corrupted mid-step', f);
    assert.equal(f.sw.world.cluster.rebootCount(node), 1);
    const diag = (await f.sw.ticket(node))?.workflows.find((w) => w.action === 'Diagnose');
    assert.equal(diag?.status, 'Succeeded');
    assert.equal(
      f.sw.world.cluster.jobsCreated(node).filter((j) => j.kind === 'diagnose_node').length,
      1,
      'the resumed step followed its Job, no second one',
    );
  });
});

describe('ticket times and identity', () => {
  it('resolvedTime is never after updateTime, also when the controller closes a ticket', async () => {
    // Memory pressure: a remedy and no cordon, so the controller's reconciliation resolves the
    // ticket once the condition has cleared (the runner resolves the Xid one at its last step).
    const f = await createGuardedFleet({ config: CONFIG, catalogue: CATALOGUE });
    const node = f.sw.names[3] ?? '';
    f.sw.world.faults.injectFault({
      condition: 'KubeletMemoryPressure',
      node,
      atMs: f.sw.clock.now(),
    });
    const x = f.sw.names[1] ?? '';
    f.sw.world.faults.injectFault({
      condition: 'Xid79GPULost',
      device: '1',
      node: x,
      atMs: f.sw.clock.now(),
    });
    await runFor(f.sw, f.life, { durationMs: 2 * HOUR, intervalMs: 30_000 });
    await assertConsistent('resolved tickets', f);
    for (const n of [node, x]) {
      const resolved = writtenTickets(f, n).filter((t) => t.resolvedTime !== undefined);
      assert.ok(resolved.length > 0, `${n}: a ticket was resolved`);
      for (const t of resolved) {
        assert.ok(
          t.updateTime !== undefined &&
            Date.parse(t.updateTime) >= Date.parse(t.resolvedTime ?? ''),
          `${n}: updateTime ${t.updateTime ?? '-'} before resolvedTime ${t.resolvedTime ?? '-'}`,
        );
      }
    }
  });

  it('a resolved ticket keeps the condition it was opened for', async () => {
    const f = await xidFleet(xidDiagnosis(3));
    await runFor(f.sw, f.life, { durationMs: 2 * HOUR, intervalMs: 30_000 });
    const t = await f.sw.ticket(f.node);
    assert.equal(t?.status, 'resolved');
    assert.ok(
      t.history.includes('NodeCordon'),
      'the recovery loop served NodeCordon under the same ticket',
    );
    assert.equal(t.condition, 'Xid79GPULost', 'opened for Xid 79, still says so');
    assert.equal(t.history[0], 'Xid79GPULost');
  });
});

/** The ticket annotation of `node` as the cluster holds it now. */
function currentTicket(
  sim: { writes(): readonly { method: string; target: string; detail: string }[] },
  node: string,
): string {
  const last = sim
    .writes()
    .filter((w) => w.method === 'patchNodeAnnotations' && w.target === node)
    .at(-1);
  return last === undefined
    ? ''
    : ((JSON.parse(last.detail) as Record<string, string | null>)[TICKET_ANNOTATION] ?? '');
}
