import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fixture, kernelLines } from '../../test/agent/fake-host.js';
import { classifyKernelMessage, stripLogPrefix } from './kernel-rules.js';
import { parseKmsgRecord } from './kmsg-record.js';

describe('kernel rules on real kernel log lines (fixtures/host/agent/kernel/lines.tsv)', () => {
  for (const { rule, device, source, line } of kernelLines()) {
    it(`${rule === '-' ? 'no rule' : rule} ← ${source}: ${line.slice(0, 70)}`, () => {
      const match = classifyKernelMessage(stripLogPrefix(line));
      if (rule === '-') {
        assert.equal(match, undefined);
        return;
      }
      assert.equal(match?.rule, rule);
      assert.equal(match.device ?? '', device);
    });
  }

  it('reads the Xid code', () => {
    const codes = kernelLines()
      .filter((l) => l.rule === 'xid')
      .map((l) => classifyKernelMessage(stripLogPrefix(l.line))?.xid);
    assert.deepEqual(codes, [48, 74, 79, 79, 45, 94, 119, 13, 31]);
  });

  it('finds the five Xid 119 of a real dmesg -T capture and nothing else', () => {
    const matches = fixture('kernel/dmesg-xid-119.log')
      .split('\n')
      .map((l) => classifyKernelMessage(stripLogPrefix(l)))
      .filter((m) => m !== undefined);
    assert.equal(matches.length, 5);
    for (const m of matches) assert.deepEqual(m, { rule: 'xid', device: '0000:9b:00', xid: 119 });
  });
});

describe('/dev/kmsg records', () => {
  it('parses every record of a real kmsg capture, none of which matches a rule', () => {
    const lines = fixture('kernel/kmsg-gpud-1.log').trim().split('\n');
    const records = lines.map(parseKmsgRecord);
    assert.equal(records.filter((r) => r === undefined).length, 0);
    assert.deepEqual(records[0], {
      priority: 6,
      seq: 3964,
      usec: 206764307,
      message: 'nvidia-nvswitch2: open (major=510)',
    });
    assert.equal(records.filter((r) => r && classifyKernelMessage(r.message)).length, 0);
  });

  it('unescapes a multi-line record, so the fallen-off-the-bus message is one match', () => {
    const r = parseKmsgRecord(
      '3,100,1843308145,-;NVRM: The NVIDIA GPU 0000:b3:00.0\\x0a               NVRM: (PCI ID: 10de:26b5) installed in this system has\\x0a               NVRM: fallen off the bus and is not responding to commands.',
    );
    assert.equal(r?.priority, 3);
    assert.deepEqual(classifyKernelMessage(r.message), {
      rule: 'xid',
      device: '0000:b3:00.0',
      xid: 79,
    });
  });

  it('ignores continuation lines and garbage', () => {
    assert.equal(parseKmsgRecord(' SUBSYSTEM=pci'), undefined);
    assert.equal(parseKmsgRecord('not a record'), undefined);
    assert.equal(parseKmsgRecord('x,1,2,-;message'), undefined);
  });
});
