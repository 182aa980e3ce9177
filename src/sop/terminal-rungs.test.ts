/**
 * Every built-in SOP's whole ladder, climbed with every step succeeding and the condition never
 * clearing, as a table: where each ladder ends (issue 12 item 7). A ladder may end with a power-off
 * only for hardware to replace (the reasoning is beside each ladder in builtin/domains.ts and
 * builtin/node.ts); NodeFrequentDown, GpuP2PNotSupported and the BMC's power and current parts end
 * with a human, as in the original.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aNode, aStatus, POLICY, T0 } from '../../test/helpers/builders.js';
import { CATALOGUE } from '../catalogue/index.js';
import { newTicket, type Ticket, type Workflow } from '../ticket/ticket.js';
import { builtInSops } from './index.js';
import type { ApiBridge, NodeView, Sop, Step } from './sop.js';

const MIN = 60_000;
const TICK = 30 * MIN;

/** A bridge evaluate never uses (evaluate is pure). */
const NO_BRIDGE = new Proxy({} as ApiBridge, {
  get: () => {
    throw new Error('evaluate used the bridge');
  },
});

interface Climb {
  readonly condition: string;
  readonly id?: string;
  readonly level?: number;
  readonly critical?: boolean;
}

/**
 * Climbs a ladder: evaluate, record the step as Succeeded (with what the runner records:
 * cordon flag, remediation time, hand-off), let 30 minutes pass (past every settle period), and
 * again, until a human owns the ticket, the ticket is resolved, or the ladder only waits. The
 * path is the steps in order; a ladder that ends waiting ends with `skip:<reason>`.
 */
function climb(sop: Sop, c: Climb): string[] {
  const inst = sop.createInstance(NO_BRIDGE);
  const recovery = c.condition === 'NodeCordon' || c.condition === 'NodeInhibitAll';
  let unschedulable = recovery;
  let ticket: Ticket | null = recovery
    ? { ...newTicket({ condition: 'GpuHung', reason: 't', nowMs: T0 }), cordonedByAegis: true }
    : null;
  let now = T0;
  const path: string[] = [];
  let waits = 0;
  for (let i = 0; i < 400; i++) {
    now += TICK;
    const view: NodeView = {
      info: aNode({
        unschedulable,
        labels: c.critical === true ? { 'aegis.io/critical': 'true' } : {},
      }),
      ticket,
      nowMs: now,
      policy: { ...POLICY, level: c.level ?? 1 },
    };
    const status = aStatus({
      condition: c.condition,
      id: c.id ?? '',
      sinceMs: T0,
      lastSeenMs: now,
    });
    const v = inst.evaluate(view, status);
    if (v.kind === 'skip') {
      // Watch-and-wait ladders wait up to a day; a ladder still waiting after two has ended.
      if (++waits > 100) {
        path.push(`skip:${v.reason}`);
        break;
      }
      continue;
    }
    waits = 0;
    path.push(v.step.action);
    const t: Ticket = ticket ?? newTicket({ condition: c.condition, reason: 't', nowMs: now });
    ticket = record(t, v.step, c.condition, now);
    if (v.step.action === 'Cordon') unschedulable = true;
    if (v.step.action === 'Uncordon') unschedulable = false;
    if (v.step.action === 'HandToHuman' || v.step.then === 'resolve' || v.step.then === 'close')
      break;
  }
  return path;
}

/** The ticket after a step succeeded, as the runner writes it. */
function record(t: Ticket, step: Step, condition: string, nowMs: number): Ticket {
  const iso = new Date(nowMs).toISOString();
  const w: Workflow = {
    action: step.action,
    status: 'Succeeded',
    time: iso,
    end: iso,
    seq: t.nextSeq,
    condition,
    ...(step.params === undefined ? {} : { params: { ...step.params } }),
  };
  const disruptive = step.action === 'Reboot' || step.action === 'Shutdown';
  return {
    ...t,
    nextSeq: t.nextSeq + 1,
    workflows: [...t.workflows, w],
    cordonedByAegis: step.action === 'Cordon' ? true : t.cordonedByAegis,
    remediations: disruptive ? [...t.remediations, iso] : t.remediations,
    ...(step.action === 'HandToHuman' ? { supervisor: 'sre', status: 'assigned' as const } : {}),
  };
}

const HUMAN = 'HandToHuman';

/**
 * Where every built-in ladder ends (level 1, a node that is not critical), keyed by SOP, or by
 * `SOP condition[/id]` where one condition or device id has other rungs.
 */
const TERMINAL: Readonly<Record<string, string>> = {
  'node.notready': `Cordon ForceDeletePods ${HUMAN}`,
  'node.recover': 'Healthcheck Uncordon',
  'node.inhibit': 'Healthcheck Uncordon',
  'node.reboot': `Cordon Reboot Reboot ${HUMAN}`,
  'node.restart-kubelet': `Cordon Remedy Remedy ${HUMAN}`,
  'node.terminating-pods': `Cordon ForceDeletePods ${HUMAN}`,
  'cpu.pressure': 'Cordon skip:cordoned until the pressure clears',
  'cpu.replace': `Cordon Diagnose Shutdown ${HUMAN}`,
  'memory.pressure': 'Cordon skip:cordoned until the pressure clears',
  'memory.drop-cache': `Remedy Remedy Remedy ${HUMAN}`,
  'memory.replace': `Cordon Diagnose Shutdown ${HUMAN}`,
  'disk.pressure': `Cordon ${HUMAN}`,
  'disk.replace': `Cordon Diagnose ${HUMAN}`,
  'baseboard.replace': `Cordon Diagnose Shutdown ${HUMAN}`,
  'baseboard.replace BaseBoardCriticalIssue/power': `Diagnose ${HUMAN}`,
  'baseboard.replace BaseBoardCriticalIssue/current': `Cordon Diagnose ${HUMAN}`,
  'network.report': `Diagnose ${HUMAN}`,
  'network.reboot': `Cordon Reboot ${HUMAN}`,
  'gpu.reboot': `Cordon Diagnose Reboot Reboot Shutdown ${HUMAN}`,
  'gpu.reboot GpuP2PNotSupported': `Cordon Diagnose Reboot Reboot ${HUMAN}`,
  'gpu.reboot-once': `Cordon Diagnose Reboot Shutdown ${HUMAN}`,
  'gpu.replace': `Cordon Diagnose Shutdown ${HUMAN}`,
  'gpu.report': `Cordon Diagnose ${HUMAN}`,
  'gpu.fabricmanager': `Cordon Remedy Remedy Reboot ${HUMAN}`,
  'gpu.persistence': `Cordon Remedy Remedy ${HUMAN}`,
  'gpu.device-plugin': `Cordon RestartPod RestartPod RestartPod Reboot ${HUMAN}`,
  'gpu.exporter-restart': `RestartPod RestartPod RestartPod ${HUMAN}`,
  'ib.report': `Cordon Diagnose ${HUMAN}`,
  'ib.reboot-once': `Cordon Diagnose Reboot Shutdown ${HUMAN}`,
  'ib.device-plugin': `Cordon RestartPod RestartPod RestartPod ${HUMAN}`,
  'roce.report': `Cordon Diagnose ${HUMAN}`,
  'roce.device-plugin': `Cordon RestartPod RestartPod ${HUMAN}`,
  'gpfs.repair': `Cordon Repair Repair Repair Repair Repair Reboot ${HUMAN}`,
  'gpfs.report': `Cordon Diagnose ${HUMAN}`,
  'gpfs.break-deadlock': `Remedy Remedy ${HUMAN}`,
  'system.reboot': `Cordon Reboot Reboot ${HUMAN}`,
  'system.report': `Cordon Diagnose ${HUMAN}`,
  'process.report': `Cordon Diagnose ${HUMAN}`,
  'process.reboot': `Cordon Reboot ${HUMAN}`,
  'peermem.config': `Cordon Remedy Remedy Reboot ${HUMAN}`,
};

/** Conditions (and ids) a power-off cannot fix: their ladders must never end in Shutdown. */
const NEVER_POWER_OFF: readonly Climb[] = [
  { condition: 'NodeFrequentDown' },
  { condition: 'GpuP2PNotSupported' },
  { condition: 'BaseBoardCriticalIssue', id: 'power' },
  { condition: 'BaseBoardCriticalIssue', id: 'current' },
];

const conditionsOf = (sop: Sop): string[] => [
  ...CATALOGUE.filter((e) => e.sop === sop.id).map((e) => e.name),
  ...(sop.handles ?? []),
];
const sopOf = (condition: string): Sop => {
  const id = CATALOGUE.find((e) => e.name === condition)?.sop;
  const sop = builtInSops.find((s) => s.id === id);
  assert.ok(sop !== undefined, `${condition} has a built-in SOP`);
  return sop;
};
/** The table row of one condition (and id) of an SOP. */
const expected = (sop: Sop, condition: string, id = ''): string | undefined =>
  TERMINAL[`${sop.id} ${condition}${id === '' ? '' : `/${id}`}`] ??
  (id === '' ? undefined : TERMINAL[`${sop.id} ${condition}`]) ??
  TERMINAL[sop.id];

describe('every built-in ladder ends where the table says (level 1, every step succeeds)', () => {
  it('the table has a row for every built-in SOP and no row for an unknown one', () => {
    const ids = new Set<string>(builtInSops.map((s) => s.id));
    for (const s of builtInSops) assert.ok(s.id in TERMINAL, `${s.id} has a row`);
    for (const key of Object.keys(TERMINAL))
      assert.ok(ids.has(key.split(' ')[0] ?? ''), `${key} names a built-in SOP`);
  });
  for (const sop of builtInSops) {
    it(`${sop.id}: every condition it serves`, () => {
      const conds = conditionsOf(sop);
      assert.ok(conds.length > 0, `${sop.id} serves a condition`);
      for (const condition of conds) {
        const want = expected(sop, condition);
        assert.equal(climb(sop, { condition }).join(' '), want, `${sop.id} for ${condition}`);
      }
    });
  }
  it('BaseBoardCriticalIssue: fan, temperature, voltage, pcie and sysHealth are powered off; power and current go to a human', () => {
    const sop = sopOf('BaseBoardCriticalIssue');
    for (const id of ['fan', 'temperature', 'voltage', 'pcie', 'sysHealth', 'power', 'current']) {
      const path = climb(sop, { condition: 'BaseBoardCriticalIssue', id }).join(' ');
      assert.equal(path, expected(sop, 'BaseBoardCriticalIssue', id), id);
    }
  });
});

describe('never power off for what a power-off cannot fix', () => {
  for (const c of NEVER_POWER_OFF) {
    it(`${c.condition}${c.id === undefined ? '' : `/${c.id}`} ends with a human, never Shutdown`, () => {
      const path = climb(sopOf(c.condition), c);
      assert.ok(!path.includes('Shutdown'), path.join(' '));
      assert.equal(path.at(-1), HUMAN, path.join(' '));
    });
  }
  it('at level 0 no ladder reboots, drains or powers off', () => {
    for (const sop of builtInSops) {
      for (const condition of conditionsOf(sop)) {
        const path = climb(sop, { condition, level: 0 });
        for (const a of ['Reboot', 'Shutdown', 'Drain'])
          assert.ok(!path.includes(a), `${sop.id} ${condition}: ${path.join(' ')}`);
      }
    }
  });
  it('a critical node is never powered off: the ladder hands off instead', () => {
    for (const sop of builtInSops) {
      for (const condition of conditionsOf(sop)) {
        const path = climb(sop, { condition, critical: true });
        assert.ok(!path.includes('Shutdown'), `${sop.id} ${condition}: ${path.join(' ')}`);
      }
    }
  });
});
