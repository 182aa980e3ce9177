import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { FakeNodePort } from '../../test/agent/fake-node-port.js';
import { ManualClock } from '../core/clock.js';
import { ConditionPublisher } from './condition-publisher.js';

const healthy = { xids: [], gpuHung: false, panicInWindow: false, lockups: 0 };
const xid79 = { ...healthy, xids: [{ pci: '0000:06:00', xid: 79 }] };

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await tick();
}

function publisher(port: FakeNodePort, clock: ManualClock, resyncMs = 600_000) {
  const logs: string[] = [];
  const p = new ConditionPublisher({
    port,
    nodeName: 'gpu-001',
    clock,
    bootTimeMs: clock.now() - 60_000,
    resyncMs,
    signal: new AbortController().signal,
    log: (l) => logs.push(l),
  });
  return { p, logs };
}

describe('Node condition publisher', () => {
  it('reads the Node once, writes at start, then only on change', async () => {
    const port = new FakeNodePort();
    const clock = new ManualClock();
    const { p } = publisher(port, clock);
    p.update(healthy);
    await settle();
    p.update(healthy);
    await settle();
    assert.equal(port.gets, 1);
    assert.equal(port.patches.length, 1);
    p.update(xid79);
    await settle();
    assert.equal(port.patches.length, 2);
    assert.deepEqual(
      [port.condition('aegis.io/GpuXid')?.status, port.condition('aegis.io/GpuXid')?.reason],
      ['True', 'Xid79'],
    );
  });

  it('re-writes every resync interval (heartbeat) even without a change', async () => {
    const port = new FakeNodePort();
    const clock = new ManualClock();
    const { p } = publisher(port, clock, 60_000);
    p.update(healthy);
    await settle();
    await clock.advance(61_000);
    p.update(healthy);
    await settle();
    assert.equal(port.patches.length, 2);
  });

  it('coalesces: while a write fails and backs off, only the latest inputs are written', async () => {
    const port = new FakeNodePort();
    const clock = new ManualClock();
    const { p, logs } = publisher(port, clock);
    port.failNext(2);
    p.update(healthy);
    await settle();
    p.update(xid79);
    await clock.advance(500);
    await settle();
    await clock.advance(1000);
    await settle();
    assert.equal(port.patches.length, 1);
    assert.equal(port.condition('aegis.io/GpuXid')?.status, 'True');
    assert.equal(logs.length, 2);
    assert.match(logs[0] ?? '', /node conditions of gpu-001: get node gpu-001: injected failure/);
  });
});
