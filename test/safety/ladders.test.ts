/**
 * The hidden corners of the SOP ladders (issue 12 items 6, 7 and 12), on the simulator: a drain a
 * PodDisruptionBudget blocks ends with a human, diagnosed once; a flapping node, a GPU whose P2P
 * does not work and a BMC power or current fault are never powered off; a reboot slower than its
 * Job's deadline is a reboot that happened; the device-plugin pod to restart is configured.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../../src/catalogue/index.js';
import type { CatalogueEntry } from '../../src/catalogue/types.js';
import type { Config } from '../../src/config/schema.js';
import { ManualClock } from '../../src/core/clock.js';
import { TICKET_ANNOTATION } from '../../src/core/types.js';
import type { JobKind } from '../../src/k8s/cluster.js';
import type { JobBehaviour } from '../../src/sim/sim-jobs.js';
import { createSimWorld } from '../../src/sim/sim-world.js';
import { countSteps, parseTicket, type Ticket } from '../../src/ticket/ticket.js';
import { sideEffectProblems, type GuardedFleet } from '../fixtures/safety/consistency.js';
import {
  catalogueOf,
  HOUR,
  LADDER_CONDITIONS,
  MIN,
  runFor,
  safetyConfig,
  startEngine,
  type SafetyWorld,
} from '../fixtures/safety/safety-world.js';
import { TicketLedger } from '../fixtures/safety/ticket-ledger.js';
import { useSafetyFigures } from './figures.js';

const figures = useSafetyFigures({ outage: 10 });
const CATALOGUE_UNDER_TEST = catalogueOf([
  ...LADDER_CONDITIONS,
  'NodeFrequentDown',
  'GpuP2PNotSupported',
  'BaseBoardCriticalIssue',
  'GpuRegisterFailed',
]);
const CONFIG = safetyConfig({ safety: { maxCordonedFraction: 0.5 } });

/**
 * The BMC parts the catalogue's one recipe (a fan) cannot inject: the simulator's fault injector
 * gets BaseBoardCriticalIssue variants whose series are the power and current sensors.
 */
const INJECTABLE: readonly CatalogueEntry[] = [
  ...CATALOGUE,
  ...(['power', 'current'] as const).map((part): CatalogueEntry => {
    const base = CATALOGUE.find((e) => e.name === 'BaseBoardCriticalIssue');
    assert.ok(base !== undefined);
    return {
      ...base,
      name: `BaseBoardCriticalIssue.${part}`,
      fault: {
        series: [{ metric: `ipmi_${part}_state`, labels: { name: `${part}-sensor` }, value: 2 }],
      },
    };
  }),
];

/** An 8-node fleet (optionally slow to boot) with the engine on it, a ledger and a cycle guard. */
async function fleet(
  o: { config?: Config; bootTimeMs?: number; jobs?: Partial<Record<JobKind, JobBehaviour>> } = {},
): Promise<GuardedFleet> {
  const clock = new ManualClock();
  const world = createSimWorld({
    nodes: 8,
    seed: 23,
    catalogue: INJECTABLE,
    clock,
    ...(o.bootTimeMs === undefined ? {} : { bootTimeMs: o.bootTimeMs }),
    ...(o.jobs === undefined ? {} : { jobs: o.jobs }),
  });
  const signal = new AbortController().signal;
  const names = (await world.cluster.listNodes(signal)).map((n) => n.name);
  const node = (name: string): ReturnType<SafetyWorld['node']> =>
    world.cluster.getNode(name, signal);
  const sw: SafetyWorld = {
    world,
    clock,
    names,
    node,
    async ticket(name) {
      const raw = (await node(name)).annotations[TICKET_ANNOTATION];
      return raw === undefined ? null : parseTicket(raw, name);
    },
  };
  const inner = startEngine(sw, { config: o.config ?? CONFIG, catalogue: CATALOGUE_UNDER_TEST });
  let thrown = 0;
  return {
    sw,
    life: {
      ...inner,
      cycle: () =>
        inner.cycle().catch(() => {
          thrown++;
          return undefined;
        }),
    },
    ledger: new TicketLedger(world.cluster),
    thrown: () => thrown,
  };
}

/** No cycle threw, no ticket entry lost, every reboot and power-off recorded. */
async function assertConsistent(what: string, f: GuardedFleet): Promise<void> {
  const problems = await sideEffectProblems(f);
  figures.tried('outage');
  figures.bad('outage', problems.length, `${what}: ${problems.join('; ')}`);
  assert.equal(f.thrown(), 0, 'no cycle threw');
  assert.deepEqual(f.ledger.problems, [], 'no ticket entry lost');
  assert.deepEqual(problems, [], 'every reboot and shutdown is recorded, none repeated');
}

/** Finished steps of one node, as `Action:Status`. */
const path = (f: GuardedFleet, node: string): string[] =>
  f.life.steps
    .filter((s) => s.node === node && s.status !== 'Running' && s.status !== 'Held')
    .map((s) => `${s.action}:${s.status}`);

async function ticketOf(f: GuardedFleet, node: string): Promise<Ticket> {
  const t = await f.sw.ticket(node);
  assert.ok(t !== null, `${node} has a ticket`);
  return t;
}

describe('blocked drains end (item 6)', () => {
  it('a reboot whose drain a PodDisruptionBudget blocks: 3 attempts 10 min apart, one diagnosis, then a human told why', async () => {
    const f = await fleet();
    const [, node = '', b = '', c = ''] = f.sw.names;
    // Three training pods that must all stay up: every eviction from `node` is refused.
    f.sw.world.cluster.addWorkload({ name: 'train', nodes: [node, b, c], minAvailable: 3 });
    const t0 = f.sw.clock.now();
    f.sw.world.faults.injectFault({ condition: 'Xid79GPULost', device: '1', node, atMs: t0 });
    await runFor(f.sw, f.life, { durationMs: 12 * HOUR, intervalMs: 30_000 });
    await assertConsistent('PDB-blocked drain', f);

    const cancelled = f.life.steps.filter((s) => s.node === node && s.status === 'Canceled');
    assert.equal(cancelled.length, 3, `three blocked attempts (today: 340 in 12 h)`);
    assert.ok(
      cancelled.every((s) => s.action === 'Reboot' && /PodDisruptionBudget/.test(s.message ?? '')),
      'each one cancelled by the budget',
    );
    const gaps = cancelled.slice(1).map((s, i) => s.atMs - (cancelled[i]?.atMs ?? 0));
    assert.ok(
      gaps.every((g) => g >= 10 * MIN),
      `attempts at least 10 min apart: ${gaps.join(', ')}`,
    );
    assert.equal(
      f.ledger.jobsCreated('diagnose_node', node),
      1,
      'one diagnose Job: the ticket keeps the diagnosis (today: 38 in 12 h)',
    );
    const t = await ticketOf(f, node);
    assert.equal(t.status, 'assigned');
    assert.equal(t.supervisor, CONFIG.sop.humanSupervisor);
    assert.match(
      t.whySRE ?? '',
      /^drain blocked: PodDisruptionBudget blocks eviction of training\/train-worker-0, for 3 attempts over \d+ min$/,
    );
    const handedAt = f.life.steps.find((s) => s.node === node && s.action === 'HandToHuman')?.atMs;
    assert.ok(handedAt !== undefined && handedAt - t0 < HOUR, 'handed off within the hour');
    assert.deepEqual(
      f.life.steps.filter((s) => s.node === node && s.atMs > handedAt && s.status === 'Running'),
      [],
      'nothing after the hand-off',
    );
    assert.equal(f.sw.world.cluster.rebootCount(node), 0, 'never rebooted under its pods');
    for (const n of f.sw.names.filter((x) => x !== node))
      assert.equal(path(f, n).length, 0, `${n} untouched`);
  });

  it('the budget frees up between attempts: the second attempt drains and reboots', async () => {
    const f = await fleet();
    const [, node = '', b = '', c = ''] = f.sw.names;
    f.sw.world.cluster.addWorkload({ name: 'train', nodes: [node, b, c], minAvailable: 3 });
    const t0 = f.sw.clock.now();
    f.sw.world.faults.injectFault({ condition: 'Xid79GPULost', device: '1', node, atMs: t0 });
    // After 8 minutes the training pod leaves the node (its scheduler moves it): nothing blocks.
    let freed = false;
    await runFor(f.sw, f.life, {
      durationMs: 3 * HOUR,
      intervalMs: 30_000,
      each: async () => {
        if (freed || f.sw.clock.now() - t0 < 8 * MIN) return;
        freed = true;
        const pods = await f.sw.world.cluster.listPodsOnNode(node, new AbortController().signal);
        const pod = pods.find((p) => p.namespace === 'training');
        assert.ok(pod !== undefined);
        await f.sw.world.cluster.deletePod(
          pod.namespace,
          pod.name,
          0,
          new AbortController().signal,
        );
      },
    });
    await assertConsistent('PDB freed', f);
    const steps = path(f, node);
    assert.deepEqual(
      steps.filter((s) => s.startsWith('Reboot')),
      ['Reboot:Canceled', 'Reboot:Succeeded'],
    );
    assert.equal(f.sw.world.cluster.rebootCount(node), 1);
    assert.ok(!steps.includes('HandToHuman:Succeeded'), steps.join(' '));
  });
});

describe('never power off for what a power-off cannot fix (item 7)', () => {
  it('a node flapping NotReady for 10 hours: NodeFrequentDown reboots twice, then a human; never powered off', async () => {
    const f = await fleet();
    const node = f.sw.names[4] ?? '';
    const t0 = f.sw.clock.now();
    for (let t = t0; t < t0 + 10 * HOUR; t += 25 * MIN)
      f.sw.world.faults.injectFault({
        condition: 'NodeNotReady',
        node,
        atMs: t,
        durationMs: 70_000,
      });
    await runFor(f.sw, f.life, { durationMs: 11 * HOUR, intervalMs: 30_000 });
    await assertConsistent('flapping node', f);
    const frequent = f.life.steps.filter(
      (s) => s.node === node && s.condition === 'NodeFrequentDown' && s.status === 'Succeeded',
    );
    assert.deepEqual(
      frequent.map((s) => s.action),
      ['Reboot', 'Reboot', 'HandToHuman'],
    );
    assert.ok(!path(f, node).some((s) => s.startsWith('Shutdown')), path(f, node).join(' '));
    assert.equal(f.sw.world.cluster.powerState(node), 'on');
    assert.equal((await ticketOf(f, node)).status, 'assigned');
  });

  it('GpuP2PNotSupported surviving reboots: two reboots, then a human (as the original); never powered off', async () => {
    const f = await fleet();
    const node = f.sw.names[5] ?? '';
    f.sw.world.faults.injectFault({
      condition: 'GpuP2PNotSupported',
      node,
      atMs: f.sw.clock.now(),
      persistence: 'survives-reboot',
    });
    await runFor(f.sw, f.life, { durationMs: 3 * HOUR, intervalMs: 30_000 });
    await assertConsistent('P2P not supported', f);
    assert.deepEqual(path(f, node), [
      'Cordon:Succeeded',
      'Diagnose:Succeeded',
      'Reboot:Succeeded',
      'Reboot:Succeeded',
      'HandToHuman:Succeeded',
    ]);
    assert.equal(f.sw.world.cluster.powerState(node), 'on');
  });

  it('BaseBoardCriticalIssue: power is not cordoned and goes to a human, current goes to a human, a fan is powered off', async () => {
    const f = await fleet();
    const [, , , power = '', current = '', fan = ''] = f.sw.names;
    const t0 = f.sw.clock.now();
    f.sw.world.faults.injectFault({
      condition: 'BaseBoardCriticalIssue.power',
      node: power,
      atMs: t0,
    });
    f.sw.world.faults.injectFault({
      condition: 'BaseBoardCriticalIssue.current',
      node: current,
      atMs: t0,
    });
    f.sw.world.faults.injectFault({ condition: 'BaseBoardCriticalIssue', node: fan, atMs: t0 });
    // The BMC rule needs the fault for 3 hours.
    await runFor(f.sw, f.life, { durationMs: 4 * HOUR, intervalMs: 60_000 });
    await assertConsistent('baseboard parts', f);
    assert.deepEqual(path(f, power), ['Diagnose:Succeeded', 'HandToHuman:Succeeded']);
    assert.equal((await f.sw.node(power)).unschedulable, false, 'power: not cordoned');
    assert.deepEqual(path(f, current), [
      'Cordon:Succeeded',
      'Diagnose:Succeeded',
      'HandToHuman:Succeeded',
    ]);
    for (const n of [power, current]) assert.equal(f.sw.world.cluster.powerState(n), 'on', n);
    assert.ok(path(f, fan).includes('Shutdown:Succeeded'), 'a failed fan is powered off');
    assert.equal(f.sw.world.cluster.powerState(fan), 'off');
  });
});

describe('a reboot slower than its deadline is not a failed reboot (item 12)', () => {
  it('a node that takes 25 minutes to boot (Job deadline 20 min): the Reboot is Succeeded, one reboot, the ladder ends healed', async () => {
    const f = await fleet({ bootTimeMs: 25 * MIN });
    const node = f.sw.names[3] ?? '';
    f.sw.world.faults.injectFault({
      condition: 'Xid79GPULost',
      device: '1',
      node,
      atMs: f.sw.clock.now(),
    });
    await runFor(f.sw, f.life, { durationMs: 3 * HOUR, intervalMs: 30_000 });
    await assertConsistent('slow boot', f);
    const reboot = f.life.steps.find(
      (s) => s.node === node && s.action === 'Reboot' && s.status !== 'Running',
    );
    assert.equal(reboot?.status, 'Succeeded', `${reboot?.status ?? '?'}: ${reboot?.message ?? ''}`);
    assert.match(reboot.message ?? '', /new boot id/);
    assert.equal(f.sw.world.cluster.rebootCount(node), 1, 'rebooted once');
    assert.deepEqual(path(f, node).slice(-2), ['Healthcheck:Succeeded', 'Uncordon:Succeeded']);
    const t = await ticketOf(f, node);
    assert.equal(t.status, 'resolved');
    assert.equal(countSteps(t, 'Reboot', 'Failed'), 0);
  });

  it('a reboot Job that never completes after the node came back: Succeeded at the deadline', async () => {
    const f = await fleet({ jobs: { restart_node: { durationMs: 100 * HOUR } } });
    const node = f.sw.names[3] ?? '';
    f.sw.world.faults.injectFault({
      condition: 'Xid79GPULost',
      device: '1',
      node,
      atMs: f.sw.clock.now(),
    });
    await runFor(f.sw, f.life, { durationMs: 2 * HOUR, intervalMs: 30_000 });
    await assertConsistent('hung reboot Job', f);
    assert.deepEqual(
      path(f, node).filter((s) => s.startsWith('Reboot') || s.startsWith('Shutdown')),
      ['Reboot:Succeeded'],
    );
    assert.equal(f.sw.world.cluster.rebootCount(node), 1);
  });

  it('a reboot Job that fails without rebooting is still Failed (the boot id did not change)', async () => {
    const f = await fleet({ jobs: { restart_node: { outcome: 'Failed', durationMs: 30_000 } } });
    const node = f.sw.names[3] ?? '';
    f.sw.world.faults.injectFault({
      condition: 'Xid79GPULost',
      device: '1',
      node,
      atMs: f.sw.clock.now(),
    });
    await runFor(f.sw, f.life, { durationMs: 2 * HOUR, intervalMs: 30_000 });
    await assertConsistent('failing reboot Job', f);
    const reboots = path(f, node).filter((s) => s.startsWith('Reboot'));
    assert.deepEqual(reboots, ['Reboot:Failed', 'Reboot:Failed']);
    assert.equal(f.sw.world.cluster.rebootCount(node), 0);
  });
});

describe('the device-plugin restart selector is configuration (item 12)', () => {
  it('defaults to the GPU Operator label; a site running the plain device plugin configures its own and the pod is restarted', async () => {
    assert.equal(CONFIG.sop.podSelectors.gpuDevicePlugin, 'app=nvidia-device-plugin-daemonset');
    // The simulated fleet runs the plain k8s-device-plugin (pods labelled name=nvidia-device-plugin-ds).
    for (const [selector, restarted] of [
      [undefined, false],
      ['name=nvidia-device-plugin-ds', true],
    ] as const) {
      const config = safetyConfig({
        safety: { maxCordonedFraction: 0.5 },
        sop:
          selector === undefined
            ? {}
            : { podSelectors: { ...CONFIG.sop.podSelectors, gpuDevicePlugin: selector } },
      });
      const f = await fleet({ config });
      const node = f.sw.names[2] ?? '';
      f.sw.world.faults.injectFault({
        condition: 'GpuRegisterFailed',
        node,
        atMs: f.sw.clock.now(),
      });
      await runFor(f.sw, f.life, { durationMs: HOUR, intervalMs: 30_000 });
      await assertConsistent(`device plugin ${selector ?? 'default'}`, f);
      const restart = f.life.steps.find(
        (s) => s.node === node && s.action === 'RestartPod' && s.status !== 'Running',
      );
      const want = selector ?? 'app=nvidia-device-plugin-daemonset';
      const deleted = f.sw.world.cluster
        .writes()
        .filter((w) => w.method === 'deletePod' && w.target.startsWith('gpu-operator/'));
      if (restarted) {
        assert.equal(restart?.status, 'Succeeded');
        assert.equal(deleted.length, 1, 'the plug-in pod was deleted once');
        assert.deepEqual(path(f, node).slice(-2), ['Healthcheck:Succeeded', 'Uncordon:Succeeded']);
      } else {
        assert.equal(restart?.status, 'Failed');
        assert.match(restart.message ?? '', new RegExp(`no pod matching ${want}`));
        assert.equal(deleted.length, 0);
      }
    }
  });

  it('a selector that is not one key=value term is refused at start-up', async () => {
    const { ConfigSchema } = await import('../../src/config/schema.js');
    for (const bad of ['app', 'app=a,b=c', 'app in (x)', '=x', 'a=b=c', 'a=$(reboot)']) {
      const r = ConfigSchema.safeParse({ sop: { podSelectors: { gpuDevicePlugin: bad } } });
      assert.equal(r.success, false, bad);
      figures.tried('input');
    }
  });
});
