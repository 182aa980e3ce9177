/**
 * The API side and time: API server errors, an API outage, conflicts with humans editing the
 * node while Aegis writes, timeouts, a Job that hangs or is deleted, a node flapping Ready /
 * NotReady, clock jumps. Whatever happens: no cycle throws, no ticket entry is lost, and no node
 * is rebooted more often than its tickets record (a repeated reboot is a false remediation).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { ErrorCode, HealError } from '../../src/core/errors.js';
import { TICKET_ANNOTATION } from '../../src/core/types.js';
import type { JobRequest } from '../../src/k8s/cluster.js';
import { countSteps } from '../../src/ticket/ticket.js';
import type { ApiCall, CallHook } from '../fixtures/safety/kill-switch.js';
import {
  catalogueOf,
  HOUR,
  LADDER_CONDITIONS,
  metricSum,
  MIN,
  runFor,
  safetyConfig,
  type SafetyWorld,
} from '../fixtures/safety/safety-world.js';
import {
  createGuardedFleet,
  sideEffectProblems,
  type GuardedFleet,
} from '../fixtures/safety/consistency.js';
import type { TicketLedger } from '../fixtures/safety/ticket-ledger.js';
import { useSafetyFigures } from './figures.js';

const figures = useSafetyFigures({ outage: 8 });
const CATALOGUE = catalogueOf([...LADDER_CONDITIONS, 'NodeFrequentDown']);
const CONFIG = safetyConfig({ safety: { maxCordonedFraction: 0.5 } });
const timeout = (what: string): HealError =>
  new HealError(ErrorCode.K8sUnavailable, `${what}: context deadline exceeded (timeout)`);

/** The guarded fleet of these tests: the ladder catalogue plus NodeFrequentDown. */
function setup(hook?: CallHook): Promise<GuardedFleet> {
  return createGuardedFleet({
    config: CONFIG,
    catalogue: CATALOGUE,
    ...(hook === undefined ? {} : { hook }),
  });
}

/** Tallies and asserts: no cycle threw, no ticket entry lost, every side effect recorded. */
async function assertConsistent(what: string, f: GuardedFleet): Promise<void> {
  const problems = await sideEffectProblems(f);
  figures.bad('outage', problems.length, `${what}: ${problems.join('; ')}`);
  figures.bad('input', f.thrown(), `${what}: ${f.thrown()} cycles threw`);
  assert.equal(f.thrown(), 0, 'no cycle threw');
  assert.deepEqual(f.ledger.problems, [], 'no ticket entry lost');
  assert.deepEqual(problems, [], 'every reboot and shutdown is recorded, none repeated');
}

describe('API server errors and outages during ladders', () => {
  for (const [name, inject] of [
    [
      '20 % of API calls fail for an hour',
      (sw: SafetyWorld) => {
        sw.world.cluster.failRate(0.2);
        sw.world.scheduler.at(sw.clock.now() + HOUR, () => {
          sw.world.cluster.failRate(0);
        });
      },
    ],
    [
      'the API server is down for 10 minutes mid-reboot',
      (sw: SafetyWorld) => {
        sw.world.scheduler.at(sw.clock.now() + 3 * MIN, (t) => {
          sw.world.cluster.outage(t + 10 * MIN);
        });
      },
    ],
  ] as const) {
    it(`${name}: nothing repeated, nothing lost, every ladder ends`, async () => {
      const f = await setup();
      const { sw, life } = f;
      const t0 = sw.clock.now();
      const [a = '', b = '', c = '', d = ''] = sw.names;
      sw.world.faults.injectFault({ condition: 'Xid79GPULost', device: '3', node: a, atMs: t0 });
      sw.world.faults.injectFault({
        condition: 'GpuHung',
        persistence: 'survives-reboot',
        node: b,
        atMs: t0,
      });
      sw.world.faults.injectFault({
        condition: 'Xid48GPUMemoryDBE',
        device: '2',
        node: c,
        atMs: t0 + MIN,
      });
      sw.world.faults.injectFault({ condition: 'GpfsDown', node: d, atMs: t0 + 2 * MIN });
      inject(sw);
      await runFor(sw, life, { durationMs: 4 * HOUR, intervalMs: 20_000 });
      figures.tried('outage');
      await assertConsistent(name, f);
      assert.ok(
        metricSum(await life.metricsText(), 'aegis_errors_total') > 0,
        'errors were counted',
      );
      for (const n of [a, b, c, d]) {
        const t = await sw.ticket(n);
        assert.ok(
          t !== null && !t.workflows.some((w) => w.status === 'Running'),
          `${n}: ladder ended`,
        );
      }
    });
  }
});

describe('timeouts while following a Job', () => {
  const rebootJob = (c: ApiCall): boolean =>
    c.method === 'createJob' && (c.args[0] as JobRequest).kind === 'restart_node';
  const cases: readonly [string, (c: ApiCall, created: boolean) => boolean][] = [
    [
      'a timeout polling the reboot Job after it was created',
      (c, created) =>
        created &&
        c.method === 'getJob' &&
        c.phase === 'before' &&
        String(c.args[0]).startsWith('reboot-'),
    ],
    [
      'a timeout answering the reboot Job creation (the server created it)',
      (c) => rebootJob(c) && c.phase === 'after',
    ],
    [
      'a timeout writing "Succeeded" after the reboot',
      (c) =>
        c.method === 'patchNodeAnnotations' &&
        c.phase === 'before' &&
        /action: Reboot\n\s+status: Succeeded/.test(
          Object.values(c.args[1] as Record<string, string>)[0] ?? '',
        ),
    ],
    [
      'a timeout writing "Succeeded" after the uncordon that ends the ladder',
      (c) =>
        c.method === 'patchNodeAnnotations' &&
        c.phase === 'before' &&
        /action: Uncordon\n\s+status: Succeeded/.test(
          Object.values(c.args[1] as Record<string, string>)[0] ?? '',
        ),
    ],
  ];
  for (const [name, when] of cases) {
    it(`${name}: the node is rebooted once, the ticket closes`, async () => {
      let fired = false;
      let created = false;
      const hook: CallHook = (c) => {
        if (rebootJob(c) && c.phase === 'after') created = true;
        if (fired || !when(c, created)) return;
        fired = true;
        throw timeout(c.method);
      };
      const f = await setup(hook);
      const { sw, life, ledger } = f;
      const node = sw.names[3] ?? '';
      sw.world.faults.injectFault({
        condition: 'Xid79GPULost',
        device: '3',
        node,
        atMs: sw.clock.now(),
      });
      await runFor(sw, life, { durationMs: 2 * HOUR, intervalMs: 10_000 });
      figures.tried('outage');
      assert.ok(fired, 'the timeout was injected');
      await assertConsistent(name, f);
      assert.equal(sw.world.cluster.rebootCount(node), 1, 'one reboot for one Xid 79');
      assert.equal(ledger.jobsCreated('restart_node', node), 1, 'one reboot Job');
      assert.equal((await sw.ticket(node))?.status, 'resolved');
    });
  }
});

describe('conflicts: a human edits the node while Aegis writes its ticket', () => {
  it('another annotation written between every other read and write of the ticket: both survive', async () => {
    let edits = 0;
    let armed = true;
    const hook: CallHook = (c, ks) => {
      if (c.method !== 'patchNodeAnnotations' || c.phase !== 'before') return;
      if (armed) ks.sim.setAnnotation(String(c.args[0]), 'ops.example.com/note', `edit ${++edits}`);
      armed = !armed;
    };
    const f = await setup(hook);
    const { sw, life } = f;
    const node = sw.names[2] ?? '';
    sw.world.faults.injectFault({
      condition: 'Xid79GPULost',
      device: '3',
      node,
      atMs: sw.clock.now(),
    });
    await runFor(sw, life, { durationMs: HOUR, intervalMs: 10_000 });
    figures.tried('outage');
    await assertConsistent('annotation conflicts', f);
    const info = await sw.node(node);
    assert.ok(edits >= 5, `${edits} conflicting edits`);
    assert.equal(
      info.annotations['ops.example.com/note'],
      `edit ${edits}`,
      "the human's last edit survived",
    );
    assert.equal((await sw.ticket(node))?.status, 'resolved', "and Aegis's ticket is complete");
  });

  it("a human's edit of the ticket itself between Aegis's read and write survives the retry", async () => {
    const ctx: { ledger?: TicketLedger; edits: string[] } = { edits: [] };
    const hook: CallHook = (c, ks) => {
      if (ctx.edits.length > 0 || c.method !== 'patchNodeAnnotations' || c.phase !== 'before')
        return;
      const mine = (c.args[1] as Record<string, string>)[TICKET_ANNOTATION] ?? '';
      if (!/action: Diagnose\n\s+status: Succeeded/.test(mine) || ctx.ledger === undefined) return;
      ctx.edits.push(String(c.args[0]));
      const name = String(c.args[0]);
      ctx.ledger.scan();
      const current = parse(ctx.ledger.lastRaw(name) ?? '') as Record<string, unknown>;
      ks.sim.setAnnotation(
        name,
        TICKET_ANNOTATION,
        stringify({ ...current, whySRE: 'checked by alice' }),
      );
    };
    const f = await setup(hook);
    const { sw, life, ledger } = f;
    ctx.ledger = ledger;
    const node = sw.names[2] ?? '';
    sw.world.faults.injectFault({
      condition: 'Xid79GPULost',
      device: '3',
      node,
      atMs: sw.clock.now(),
    });
    await runFor(sw, life, { durationMs: HOUR, intervalMs: 10_000 });
    figures.tried('outage');
    assert.equal(ctx.edits.length, 1, 'the human edited the ticket');
    await assertConsistent('ticket edit conflict', f);
    const t = await sw.ticket(node);
    assert.ok(t !== null);
    assert.equal(t.whySRE, 'checked by alice', "the human's field survived");
    assert.equal(countSteps(t, 'Diagnose', 'Succeeded'), 1, "Aegis's entry too");
  });
});
