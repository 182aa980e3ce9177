/**
 * The validation Job's output read back: real outputs of `dcgmi diag -j`, nccl-tests and
 * perftest from public sources (test/fixtures/validation/README.md) parsed and judged.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAX_TICKET_BYTES, newTicket, parseTicket, serializeTicket } from '../ticket/ticket.js';
import {
  judgeValidation,
  parseDcgmDiag,
  parseNcclTests,
  parsePerftest,
  splitSections,
  validationDiagnosis,
  type ValidationExpectations,
} from './validation.js';

const FIX = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'validation');
const read = (p: string): string => readFileSync(join(FIX, p), 'utf8');
const DCGM_PASS = read('dcgm/dcgm-3.1.0-8gpu-pass.txt');
/** The real DCGM output with one result changed to FAIL (its shape stays DCGM's). */
const DCGM_ONE_FAIL = DCGM_PASS.replace(
  /("name" : "Persistence Mode",\s*"results" :\s*\[\s*\{\s*"gpu_ids" : "0,1,2,3,4,5,6,7",\s*"status" : )"PASS"/,
  '$1"FAIL"',
);
const NCCL_OK = read('nccl/nccl-tests-119-all-reduce-tail.txt');
const NCCL_CUT = read('nccl/tinygrad-36-all-reduce-4gpu-cut.txt');
const NCCL_WRONG = read('nccl/nccl-tests-37-all-gather-out-of-bounds.txt');
const IB_GBITS = read('perftest/perftest-273-write-bw-gbits.txt');
const IB_CUT = read('perftest/perftest-214-loopback-cut.txt');

/** A Job log: each section's output between the markers the entrypoint prints. */
function jobLog(sections: { test: string; args: string; out: string; rc?: number }[]): string[] {
  const lines: string[] = ['2026-12-07T21:00:00Z aegis-ops: validate'];
  for (const s of sections) {
    lines.push(
      `aegis-validate: begin ${s.test} ${s.args}`,
      ...s.out.replace(/\n$/, '').split('\n'),
    );
    if (s.rc !== undefined) lines.push(`aegis-validate: end ${s.test} rc=${s.rc}`);
  }
  return lines;
}

const ALL: ValidationExpectations = {
  dcgmLevel: 3,
  nccl: true,
  ncclMinBusBwGBps: 90,
  ib: true,
};

describe('parsers on real outputs', () => {
  it('dcgmi diag -j (DCGM 3.1.0, 8 GPUs): the warning line and nulls skipped, 17 results, all pass', () => {
    const r = parseDcgmDiag(DCGM_PASS);
    assert.equal(r.version, '3.1.0');
    assert.equal(r.results.length, 9 + 8);
    assert.ok(r.results.every((x) => x.status === 'pass'));
    assert.deepEqual(r.results[0], {
      category: 'Deployment',
      test: 'Denylist',
      gpus: '0,1,2,3,4,5,6,7',
      status: 'pass',
      messages: [],
    });
    assert.deepEqual(
      r.results.filter((x) => x.category === 'Custom').map((x) => x.gpus),
      ['0', '1', '2', '3', '4', '5', '6', '7'],
    );
  });

  it('dcgmi diag: no JSON is a clear error naming the tool', () => {
    assert.throws(
      () => parseDcgmDiag('Error: unable to establish a connection to the specified host'),
      /INVALID_INPUT|dcgmi diag output: no JSON document found/,
    );
    assert.throws(() => parseDcgmDiag('{"DCGM GPU Diagnostic": { "version" }'), /not valid JSON/);
  });

  it('all_reduce_perf (modern format): rows, #wrong counted, the summary', () => {
    const r = parseNcclTests(NCCL_OK);
    assert.equal(r.rows.length, 6);
    assert.deepEqual(r.rows.at(-1), {
      bytes: 133169160,
      busbwOut: 95.74,
      busbwIn: 95.94,
      wrong: 0,
    });
    assert.equal(r.outOfBounds, 0);
    assert.equal(r.avgBusBw, 84.8558);
  });

  it('all_reduce_perf cut off after three rows: rows, no summary', () => {
    const r = parseNcclTests(NCCL_CUT);
    assert.deepEqual(
      r.rows.map((x) => [x.bytes, x.busbwOut, x.busbwIn]),
      [
        [268435456, 25.72, 25.72],
        [536870912, 25.82, 25.83],
        [1073741824, 25.95, 25.95],
      ],
    );
    assert.equal(r.outOfBounds, undefined);
  });

  it('older nccl-tests format: the error column is not a count; the summary says 2 out of bounds', () => {
    const r = parseNcclTests(NCCL_WRONG);
    assert.deepEqual(r.rows, [{ bytes: 4294967296, busbwOut: 129.05, busbwIn: 128.84, wrong: 0 }]);
    assert.equal(r.outOfBounds, 2);
    assert.equal(r.avgBusBw, 128.942);
  });

  it('ib_write_bw --report_gbits: device, unit and the row (tabs in the line)', () => {
    assert.deepEqual(parsePerftest(IB_GBITS), {
      device: 'ib0',
      unit: 'Gb/sec',
      rows: [{ bytes: 8, iterations: 224958464, averageGbps: 0.48 }],
    });
  });

  it('an ib_write_bw loopback cut before its results: the device, no rows', () => {
    assert.deepEqual(parsePerftest(IB_CUT), { device: 'ibp5', rows: [] });
  });
});

describe('the Job log split into sections', () => {
  it('begin/end with rc, skip and missing; lines outside sections ignored', () => {
    const s = splitSections([
      'noise',
      'aegis-validate: begin dcgm level=3',
      '{"a":1}',
      'aegis-validate: end dcgm rc=0',
      'aegis-validate: skip nccl (not asked)',
      'aegis-validate: missing ib ib_write_bw',
      'trailing',
    ]);
    assert.deepEqual(s.get('dcgm'), { test: 'dcgm', args: 'level=3', lines: ['{"a":1}'], rc: 0 });
    assert.equal(s.get('nccl')?.skipped, 'not asked');
    assert.equal(s.get('ib')?.missing, 'ib_write_bw');
  });
});

describe('the verdict', () => {
  it('every test ran to its end and met its floor: passed, results in one line', () => {
    const v = judgeValidation(
      jobLog([
        { test: 'dcgm', args: 'level=3', out: DCGM_PASS, rc: 0 },
        { test: 'nccl', args: 'gpus=8', out: NCCL_OK, rc: 0 },
        { test: 'ib', args: 'device=ib0', out: IB_GBITS, rc: 0 },
      ]),
      { ...ALL, ibMinGbps: 0.4 },
    );
    assert.equal(v.status, 'passed');
    assert.equal(
      v.message,
      'validation passed: DCGM r3 pass (17 results, DCGM 3.1.0); NCCL busbw 95.74 GB/s at 133169160 B >= 90; IB loopback on ib0: 0.48 Gb/s >= 0.4',
    );
    const diag = validationDiagnosis(v);
    assert.deepEqual(
      diag.map((d) => d.cmd),
      [
        'dcgmi diag -r 3 -j',
        'all_reduce_perf -b 512M -e 4G -f 2 -g <gpus> (gpus=8)',
        'ib_write_bw --report_gbits loopback (device=ib0)',
      ],
    );
  });

  it('a failed DCGM result fails the validation, naming the test and the GPUs', () => {
    assert.notEqual(DCGM_ONE_FAIL, DCGM_PASS, 'the derived input differs');
    const v = judgeValidation(
      jobLog([{ test: 'dcgm', args: 'level=3', out: DCGM_ONE_FAIL, rc: 0 }]),
      { dcgmLevel: 3, nccl: false, ib: false },
    );
    assert.equal(v.status, 'failed');
    assert.equal(v.message, 'validation failed: DCGM r3: 1 failed (Persistence Mode)');
    assert.deepEqual(v.checks[0]?.details, ['Persistence Mode GPU 0,1,2,3,4,5,6,7: fail']);
  });

  it('all-reduce bus bandwidth under the floor fails, saying both', () => {
    const v = judgeValidation(jobLog([{ test: 'nccl', args: 'gpus=8', out: NCCL_OK, rc: 0 }]), {
      dcgmLevel: 0,
      nccl: true,
      ncclMinBusBwGBps: 150,
      ib: false,
    });
    assert.equal(v.status, 'failed');
    assert.equal(v.message, 'validation failed: NCCL busbw 95.74 GB/s at 133169160 B < floor 150');
  });

  it('values out of bounds fail whatever the bandwidth', () => {
    const v = judgeValidation(jobLog([{ test: 'nccl', args: 'gpus=8', out: NCCL_WRONG, rc: 0 }]), {
      dcgmLevel: 0,
      nccl: true,
      ib: false,
    });
    assert.equal(v.status, 'failed');
    assert.match(v.message, /wrong results \(2 out of bounds\)/);
  });

  it('an output cut off (no summary, no end line) never passes', () => {
    const v = judgeValidation(jobLog([{ test: 'nccl', args: 'gpus=4', out: NCCL_CUT }]), {
      dcgmLevel: 0,
      nccl: true,
      ib: false,
    });
    assert.equal(v.status, 'failed');
    assert.match(v.message, /output ends before its summary/);
    const ib = judgeValidation(jobLog([{ test: 'ib', args: 'device=ibp5', out: IB_CUT, rc: 0 }]), {
      dcgmLevel: 0,
      nccl: false,
      ib: true,
    });
    assert.equal(ib.status, 'failed');
    assert.match(ib.message, /IB loopback on ibp5: no result rows/);
  });

  it('IB loopback under its floor fails', () => {
    const v = judgeValidation(jobLog([{ test: 'ib', args: 'device=ib0', out: IB_GBITS, rc: 0 }]), {
      dcgmLevel: 0,
      nccl: false,
      ib: true,
      ibMinGbps: 90,
    });
    assert.equal(v.status, 'failed');
    assert.equal(v.message, 'validation failed: IB loopback on ib0: 0.48 Gb/s < floor 90');
  });

  it('a tool missing, or a test asked but absent from the log: cannot run (not a pass, not a fault)', () => {
    const v = judgeValidation(['aegis-validate: missing nccl all_reduce_perf'], {
      dcgmLevel: 0,
      nccl: true,
      ib: false,
    });
    assert.equal(v.status, 'cannot-run');
    assert.match(v.message, /all_reduce_perf not found on the node/);
    assert.equal(judgeValidation([], ALL).status, 'cannot-run');
  });

  it('a test not asked is skipped and judged on nothing', () => {
    const v = judgeValidation(jobLog([{ test: 'dcgm', args: 'level=3', out: DCGM_PASS, rc: 0 }]), {
      dcgmLevel: 3,
      nccl: false,
      ib: false,
    });
    assert.equal(v.status, 'passed');
    assert.deepEqual(
      v.checks.map((c) => c.status),
      ['passed', 'skipped', 'skipped'],
    );
  });
});

describe('results in the ticket stay bounded', () => {
  it('every result of 8 GPUs failing, three validations: details capped, the ticket fits and parses', () => {
    const allFail = DCGM_PASS.replaceAll('"PASS"', '"FAIL"');
    const v = judgeValidation(
      jobLog([
        { test: 'dcgm', args: 'level=3', out: allFail, rc: 0 },
        { test: 'nccl', args: 'gpus=8', out: NCCL_WRONG, rc: 0 },
        { test: 'ib', args: 'device=ib0', out: IB_GBITS, rc: 0 },
      ]),
      { ...ALL, ibMinGbps: 400 },
    );
    assert.equal(v.status, 'failed');
    assert.ok(v.checks.every((c) => c.details.length <= 8));
    const diagnosis = Array.from({ length: 3 }, () => validationDiagnosis(v)).flat();
    const t = {
      ...newTicket({ condition: 'GpuHung', reason: 'x', nowMs: Date.UTC(2026, 0, 1) }),
      diagnosis,
    };
    const text = serializeTicket(t);
    assert.ok(Buffer.byteLength(text) <= MAX_TICKET_BYTES, `${Buffer.byteLength(text)} bytes`);
    const back = parseTicket(text, 'gpu-7');
    assert.ok((back.diagnosis ?? []).length > 0, 'the latest results kept');
    assert.match(back.diagnosis?.at(-1)?.hint ?? '', /^validation ib: failed$/);
  });
});

describe('a validate_node Job whose log could not be read', () => {
  // Seen on this tier while a node's kubelet endpoint was wrong: the Job succeeded, its pod's log
  // could not be read, and the ticket said only "dcgm: no output; nccl: no output; ib: no output"
  // (as if the tools had printed nothing) — the reason was dropped with the lines outside sections.
  it('could not run, naming what the log said instead (the read error)', () => {
    const line =
      'aegis: logs of pod validate-gpu-node-0001-2-g4jbg unavailable: read log of pod validate-gpu-node-0001-2-g4jbg: HTTP 500: Get "https://127.0.0.1:10250/containerLogs/aegis-ops/validate-gpu-node-0001-2-g4jbg/ops?tailLines=200": dial tcp 127.0.0.1:10250: connect: connection refused';
    const v = judgeValidation([line], { dcgmLevel: 3, nccl: true, ib: true });
    assert.equal(v.status, 'cannot-run');
    assert.match(
      v.message,
      /^validation could not run: dcgm: no output; nccl: no output; ib: no output \(no validation output in the Job's log, which ends: aegis: logs of pod validate-gpu-node-0001-2-g4jbg unavailable: .*connection refused\)$/,
    );
  });
});
