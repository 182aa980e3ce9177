import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../catalogue/index.js';
import {
  AGENT_CONDITION_TYPES,
  AGENT_NODE_CONDITIONS,
  catalogueConditionOf,
  desiredConditions,
  toNodeConditions,
} from './node-conditions.js';

const BOOT = Date.parse('2026-03-01T10:00:00Z');
const NOW = new Date(BOOT + 600_000).toISOString();
const known = { xids: [], gpuHung: false, panicInWindow: false, lockups: 0 };

describe('AGENT_NODE_CONDITIONS (the table the controller imports)', () => {
  it('names only catalogue conditions, under aegis.io/ types with a healthy reason', () => {
    for (const c of AGENT_NODE_CONDITIONS) {
      assert.ok(
        CATALOGUE.some((e) => e.name === c.condition),
        `${c.condition} is not in the catalogue`,
      );
      assert.ok(c.type in AGENT_CONDITION_TYPES, c.type);
      assert.match(c.type, /^aegis\.io\/[A-Z][A-Za-z]+$/);
    }
  });

  it('covers every Xid of the catalogue that must act (priority < 100)', () => {
    const urgent = CATALOGUE.filter((e) => /^Xid\d+/.test(e.name) && e.priority < 100).map(
      (e) => e.name,
    );
    const covered = AGENT_NODE_CONDITIONS.filter((c) => c.type === 'aegis.io/GpuXid').map(
      (c) => c.condition,
    );
    assert.deepEqual([...covered].sort(), [...urgent].sort());
  });

  it('maps (type, reason) back to the catalogue condition', () => {
    assert.equal(catalogueConditionOf('aegis.io/GpuXid', 'Xid79'), 'Xid79GPULost');
    assert.equal(
      catalogueConditionOf('aegis.io/KernelPanic', 'PanicOnPreviousBoot'),
      'KernelPanic',
    );
    assert.equal(catalogueConditionOf('aegis.io/GpuXid', 'NoFatalXid'), undefined);
  });
});

describe('desired conditions', () => {
  it('healthy: every known condition False with its healthy reason', () => {
    const d = desiredConditions(known);
    assert.deepEqual(
      d.map((c) => [c.type, c.status, c.reason]),
      [
        ['aegis.io/GpuXid', 'False', 'NoFatalXid'],
        ['aegis.io/GpuHung', 'False', 'GpuResponsive'],
        ['aegis.io/KernelPanic', 'False', 'NoPanicOnPreviousBoot'],
        ['aegis.io/SoftLockup', 'False', 'NoSoftLockup'],
      ],
    );
  });

  it('the most urgent fatal Xid is the reason; the message names every GPU; Xid 13 alone is not fatal', () => {
    const d = desiredConditions({
      ...known,
      xids: [
        { pci: '0000:07:00', xid: 48 },
        { pci: '0000:06:00', xid: 79 },
        { pci: '0000:cb:00', xid: 13 },
      ],
    });
    const xid = d.find((c) => c.type === 'aegis.io/GpuXid');
    assert.equal(xid?.status, 'True');
    assert.equal(xid.reason, 'Xid79');
    assert.match(xid.message, /Xid 48 on GPU 0000:07:00, Xid 79 on GPU 0000:06:00/);
    const appOnly = desiredConditions({ ...known, xids: [{ pci: '0000:cb:00', xid: 13 }] });
    assert.equal(appOnly.find((c) => c.type === 'aegis.io/GpuXid')?.status, 'False');
  });

  it('unknown inputs are not written (never False for what could not be checked)', () => {
    assert.deepEqual(
      desiredConditions({
        xids: undefined,
        gpuHung: undefined,
        panicInWindow: undefined,
        lockups: undefined,
      }),
      [],
    );
  });

  it('keeps the transition time while the status holds, and a True Xid latched since this boot', () => {
    const current = [
      {
        type: 'aegis.io/GpuXid',
        status: 'True' as const,
        reason: 'Xid79',
        message: 'm',
        lastTransitionTime: new Date(BOOT + 60_000).toISOString(),
        lastHeartbeatTime: '',
      },
      {
        type: 'aegis.io/SoftLockup',
        status: 'False' as const,
        reason: 'NoSoftLockup',
        message: 'm',
        lastTransitionTime: '2026-02-01T00:00:00.000Z',
        lastHeartbeatTime: '',
      },
    ];
    const next = toNodeConditions(desiredConditions(known), current, {
      iso: NOW,
      bootTimeMs: BOOT,
    });
    assert.equal(next.find((c) => c.type === 'aegis.io/GpuXid')?.status, 'True');
    assert.equal(
      next.find((c) => c.type === 'aegis.io/SoftLockup')?.lastTransitionTime,
      '2026-02-01T00:00:00.000Z',
    );
    assert.equal(next.find((c) => c.type === 'aegis.io/GpuHung')?.lastTransitionTime, NOW);
    // A True Xid from the previous boot is cleared.
    const stale = [{ ...current[0]!, lastTransitionTime: new Date(BOOT - 60_000).toISOString() }];
    const cleared = toNodeConditions(desiredConditions(known), stale, {
      iso: NOW,
      bootTimeMs: BOOT,
    });
    assert.equal(cleared.find((c) => c.type === 'aegis.io/GpuXid')?.status, 'False');
  });
});
