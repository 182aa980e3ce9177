/**
 * Validation before return to service (docs/remediation.md): what a `validate_node` Job printed,
 * read back and judged. The Job (deploy/jobs/validate_node.yaml → `entrypoint.sh validate`) runs
 * up to three tests on the node and prints each one's output between marker lines:
 *
 *   aegis-validate: begin dcgm level=3       `dcgmi diag -r 3 -j` (the JSON on one line)
 *   aegis-validate: end dcgm rc=0
 *   aegis-validate: begin nccl gpus=8        `all_reduce_perf -b 512M -e 4G -f 2 -g 8`
 *   aegis-validate: end nccl rc=0
 *   aegis-validate: begin ib device=mlx5_0   `ib_write_bw --report_gbits` to itself (loopback)
 *   aegis-validate: end ib rc=0
 *   aegis-validate: skip nccl (not asked)    a test the site turned off
 *   aegis-validate: missing ib ib_write_bw   a tool the node does not have
 *
 * Pure: lines in, verdict out. The parsers read the tools' own formats (real outputs in
 * test/fixtures/validation/): DCGM's JSON (3.x `test_categories`, or any shape whose results
 * carry a `status`), nccl-tests' result table and summary, perftest's bandwidth table.
 *
 * A verdict is `passed` only when every test asked for ran to its end and met its floor; a test
 * whose output is missing or cut off never passes (a node is not certified on half a check). A
 * tool that is not installed is `cannot-run`: not a fault of the node, and not a pass either.
 */
import { ErrorCode, HealError } from '../core/errors.js';

/** The tests a validation Job can run. */
export type ValidationTest = 'dcgm' | 'nccl' | 'ib';
const TESTS: readonly ValidationTest[] = ['dcgm', 'nccl', 'ib'];

/** Prefix of the Job's marker lines. */
export const VALIDATE_MARK = 'aegis-validate:';

/**
 * Exit codes of a Validate step (the ticket's `exitCode`): a test failed (the node goes to the
 * next rung), or a test could not run (a tool missing, no output: asked again, then a human).
 */
export const VALIDATION_EXIT = { Failed: 30, CannotRun: 31 } as const;

/** One test's part of the Job's output. */
export interface ValidationSection {
  readonly test: ValidationTest;
  /** What the begin line said (`level=3`, `gpus=8`, `device=mlx5_0`). */
  readonly args: string;
  readonly lines: readonly string[];
  /** The tool's exit status; undefined when the end line is missing (output cut off). */
  readonly rc?: number;
  /** Set when the Job skipped the test (`skip`) or lacked its tool (`missing`). */
  readonly skipped?: string;
  readonly missing?: string;
}

/** Splits the Job's log lines into its tests' sections. Lines outside any section are ignored. */
export function splitSections(lines: readonly string[]): Map<ValidationTest, ValidationSection> {
  const out = new Map<ValidationTest, ValidationSection>();
  let cur: { test: ValidationTest; args: string; lines: string[] } | undefined;
  for (const raw of lines) {
    const line = raw.replace(/\r$/, '');
    const at = line.indexOf(VALIDATE_MARK);
    if (at !== 0) {
      cur?.lines.push(line);
      continue;
    }
    const m = /^(begin|end|skip|missing) (dcgm|nccl|ib)\b ?(.*)$/.exec(
      line.slice(VALIDATE_MARK.length).trim(),
    );
    if (m === null) continue;
    const [, verb = '', name = '', rest = ''] = m;
    const test = name as ValidationTest;
    if (verb === 'begin') {
      cur = { test, args: rest, lines: [] };
      out.set(test, { test, args: rest, lines: cur.lines });
    } else if (verb === 'end') {
      const rc = /rc=(\d+)/.exec(rest);
      const prev = out.get(test);
      if (prev !== undefined && rc !== null) out.set(test, { ...prev, rc: Number(rc[1]) });
      cur = undefined;
    } else if (verb === 'skip') {
      out.set(test, { test, args: '', lines: [], skipped: rest.replace(/^\((.*)\)$/, '$1') });
    } else {
      out.set(test, { test, args: '', lines: [], missing: rest });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// DCGM diagnostics

/** One result of a DCGM diagnostic test. */
export interface DcgmResult {
  readonly category: string;
  readonly test: string;
  /** GPU ids as DCGM printed them (`0,1,2`, `3`), or '' when none. */
  readonly gpus: string;
  /** Normalised: pass, fail, warn, skip, or DCGM's word in lower case. */
  readonly status: string;
  /** Warning and error messages attached to the result. */
  readonly messages: readonly string[];
}

/** What `dcgmi diag -j` reported. */
export interface DcgmReport {
  readonly version?: string;
  readonly results: readonly DcgmResult[];
  /** DCGM's `runtime_error` (the diagnostic did not run), if any. */
  readonly runtimeError?: string;
}

/**
 * Parses `dcgmi diag -j` output. Text before the first `{` and after the last `}` is ignored (DCGM
 * may print a warning line first). The document is walked structurally: every object with a
 * string `status` is a result, named by the nearest `name` above it and the category above that,
 * so both the 3.x shape (`DCGM GPU Diagnostic` → `test_categories` → `tests` → `results`) and
 * later ones are read. Throws INVALID_INPUT when there is no JSON document.
 */
export function parseDcgmDiag(text: string): DcgmReport {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  if (start === -1 || end <= start)
    throw new HealError(ErrorCode.InvalidInput, 'dcgmi diag output: no JSON document found');
  let doc: unknown;
  try {
    doc = JSON.parse(text.slice(start, end + 1));
  } catch (err) {
    throw new HealError(
      ErrorCode.InvalidInput,
      `dcgmi diag output: not valid JSON (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  const results: DcgmResult[] = [];
  let version: string | undefined;
  let runtimeError: string | undefined;
  const walk = (v: unknown, category: string, test: string): void => {
    if (Array.isArray(v)) {
      for (const item of v) walk(item, category, test);
      return;
    }
    if (typeof v !== 'object' || v === null) return;
    const o = v as Record<string, unknown>;
    if (typeof o['version'] === 'string' && version === undefined) version = o['version'];
    const rte = o['runtime_error'] ?? o['runtimeError'];
    if (typeof rte === 'string' && rte !== '') runtimeError = rte;
    const cat = typeof o['category'] === 'string' ? o['category'] : category;
    const name = typeof o['name'] === 'string' ? o['name'] : test;
    const status = o['status'];
    if (typeof status === 'string' || isStatusObject(status)) {
      results.push({
        category: cat,
        test: name,
        gpus: gpusOf(o),
        status: normaliseStatus(typeof status === 'string' ? status : statusWord(status)),
        messages: messagesOf(o),
      });
    }
    for (const [k, child] of Object.entries(o)) {
      if (k === 'status' || k === 'warnings' || k === 'info') continue;
      walk(child, cat, name);
    }
  };
  walk(doc, '', '');
  return {
    ...(version === undefined ? {} : { version }),
    results,
    ...(runtimeError === undefined ? {} : { runtimeError }),
  };
}

function isStatusObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'result' in v;
}

function statusWord(v: Record<string, unknown>): string {
  const r = v['result'];
  return typeof r === 'string' ? r : String(r);
}

function normaliseStatus(s: string): string {
  const w = s.trim().toLowerCase();
  if (w === 'pass' || w === 'passed') return 'pass';
  if (w === 'fail' || w === 'failed' || w === 'failure') return 'fail';
  if (w === 'warn' || w === 'warning') return 'warn';
  if (w === 'skip' || w === 'skipped' || w === 'not run') return 'skip';
  return w;
}

function gpusOf(o: Record<string, unknown>): string {
  for (const k of ['gpu_ids', 'gpu_id', 'entity_id', 'entityId']) {
    const v = o[k];
    if (typeof v === 'string' || typeof v === 'number') return String(v);
  }
  return '';
}

function messagesOf(o: Record<string, unknown>): string[] {
  const out: string[] = [];
  const add = (v: unknown): void => {
    if (typeof v === 'string' && v !== '') out.push(v);
    else if (Array.isArray(v)) for (const x of v) add(x);
    else if (typeof v === 'object' && v !== null) {
      const r = v as Record<string, unknown>;
      add(r['warning'] ?? r['message'] ?? r['error']);
    }
  };
  add(o['warnings']);
  add(o['errors']);
  return out;
}

// ---------------------------------------------------------------------------------------------
// nccl-tests

/** One row of an nccl-tests result table. */
export interface NcclRow {
  readonly bytes: number;
  /** Bus bandwidth, GB/s, out of place and in place. */
  readonly busbwOut: number;
  readonly busbwIn: number;
  /** Wrong values counted (`#wrong` column), out of place + in place; 0 for older formats. */
  readonly wrong: number;
}

/** What an nccl-tests run printed. */
export interface NcclReport {
  readonly rows: readonly NcclRow[];
  /** `Out of bounds values : N OK|FAILED`; undefined when the summary is missing (cut off). */
  readonly outOfBounds?: number;
  readonly avgBusBw?: number;
}

/**
 * Parses nccl-tests output (`all_reduce_perf` and its siblings): the result rows (size, count,
 * type, [redop, [root,]] then time, algbw, busbw, #wrong|error for out of place and in place) and
 * the summary lines. `mpirun` prefixes (`[1,0]<stdout>:`) and NCCL INFO lines are ignored. In the
 * older format the last column is a relative error, not a count, and only the summary judges it.
 */
export function parseNcclTests(text: string): NcclReport {
  const rows: NcclRow[] = [];
  let counts = false;
  let outOfBounds: number | undefined;
  let avgBusBw: number | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^\[\d+,\d+\]<std(out|err)>:/, '');
    if (/#wrong/.test(line)) counts = true;
    const oob = /Out of bounds values\s*:\s*(\d+)/.exec(line);
    if (oob !== null) outOfBounds = Number(oob[1]);
    const avg = /Avg bus bandwidth\s*:\s*([0-9.eE+-]+)/.exec(line);
    if (avg !== null) avgBusBw = Number(avg[1]);
    const t = line.trim().split(/\s+/);
    if (t.length < 11 || !/^\d+$/.test(t[0] ?? '') || !/^\d+$/.test(t[1] ?? '')) continue;
    const tail = t.slice(-8);
    const num = (s: string | undefined): number => (s === undefined ? Number.NaN : Number(s));
    const busbwOut = num(tail[2]);
    const busbwIn = num(tail[6]);
    if (Number.isNaN(busbwOut)) continue;
    const wrongOf = (s: string | undefined): number =>
      counts && s !== undefined && /^\d+$/.test(s) ? Number(s) : 0;
    rows.push({
      bytes: Number(t[0]),
      busbwOut,
      busbwIn: Number.isNaN(busbwIn) ? busbwOut : busbwIn,
      wrong: wrongOf(tail[3]) + wrongOf(tail[7]),
    });
  }
  return {
    rows,
    ...(outOfBounds === undefined ? {} : { outOfBounds }),
    ...(avgBusBw === undefined ? {} : { avgBusBw }),
  };
}

// ---------------------------------------------------------------------------------------------
// perftest

/** One row of a perftest bandwidth table. */
export interface PerftestRow {
  readonly bytes: number;
  readonly iterations: number;
  /** Average bandwidth in Gb/s (converted from MB/s when the run did not use --report_gbits). */
  readonly averageGbps: number;
}

/** What `ib_write_bw` (or another perftest bandwidth test) printed. */
export interface PerftestReport {
  readonly device?: string;
  readonly unit?: 'Gb/sec' | 'MB/sec';
  readonly rows: readonly PerftestRow[];
}

/**
 * Parses perftest's bandwidth output: the device from the settings block and the rows under the
 * `#bytes #iterations BW peak[…] BW average[…] MsgRate[Mpps]` header. MB/sec (perftest's MB: 2^20
 * bytes) is converted to Gb/s.
 */
export function parsePerftest(text: string): PerftestReport {
  let unit: PerftestReport['unit'];
  let device: string | undefined;
  const rows: PerftestRow[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const dev = /Device\s*:\s*(\S+)/.exec(line);
    if (dev !== null && device === undefined) device = dev[1];
    const head =
      /^#bytes\s+#iterations\s+BW peak\[(Gb\/sec|MB\/sec)\]\s+BW average\[(Gb\/sec|MB\/sec)\]/.exec(
        line,
      );
    if (head !== null) {
      unit = head[2] as PerftestReport['unit'];
      continue;
    }
    if (unit === undefined) continue;
    const t = line.split(/\s+/);
    if (t.length < 4 || !/^\d+$/.test(t[0] ?? '') || !/^\d+$/.test(t[1] ?? '')) continue;
    const avg = Number(t[3]);
    if (Number.isNaN(avg)) continue;
    rows.push({
      bytes: Number(t[0]),
      iterations: Number(t[1]),
      averageGbps: unit === 'Gb/sec' ? avg : (avg * 1_048_576 * 8) / 1e9,
    });
  }
  return {
    ...(device === undefined ? {} : { device }),
    ...(unit === undefined ? {} : { unit }),
    rows,
  };
}

// ---------------------------------------------------------------------------------------------
// The verdict

/** What the site asked for (config `validation`), so the judge knows what must have run. */
export interface ValidationExpectations {
  /** DCGM diagnostic level; 0: not asked. */
  readonly dcgmLevel: number;
  readonly nccl: boolean;
  /** Floor of the all-reduce bus bandwidth at the largest size, GB/s; undefined: no floor. */
  readonly ncclMinBusBwGBps?: number;
  readonly ib: boolean;
  /** Floor of the loopback's average bandwidth at the largest size, Gb/s; undefined: no floor. */
  readonly ibMinGbps?: number;
}

/** One test's verdict. */
export interface CheckVerdict {
  readonly test: ValidationTest;
  readonly status: 'passed' | 'failed' | 'cannot-run' | 'skipped';
  /** One line: what was measured and against what. */
  readonly summary: string;
  /** The command, for the ticket's diagnosis record. */
  readonly cmd: string;
  /** Detail lines (failed DCGM results, wrong values…), at most 8. */
  readonly details: readonly string[];
}

/** The whole validation's verdict. */
export interface ValidationVerdict {
  readonly status: 'passed' | 'failed' | 'cannot-run';
  /** For the ticket's step message (bounded by the caller). */
  readonly message: string;
  readonly checks: readonly CheckVerdict[];
}

const MAX_DETAILS = 8;

/** Judges a validation Job's log lines against what was asked. Pure. */
export function judgeValidation(
  lines: readonly string[],
  expect: ValidationExpectations,
): ValidationVerdict {
  const sections = splitSections(lines);
  const asked: Record<ValidationTest, boolean> = {
    dcgm: expect.dcgmLevel > 0,
    nccl: expect.nccl,
    ib: expect.ib,
  };
  const checks: CheckVerdict[] = [];
  for (const test of TESTS) {
    const cmd = commandOf(test, expect, sections.get(test));
    if (!asked[test]) {
      checks.push({ test, status: 'skipped', summary: `${test} not asked`, cmd, details: [] });
      continue;
    }
    const s = sections.get(test);
    if (s === undefined) {
      checks.push({ test, status: 'cannot-run', summary: `${test}: no output`, cmd, details: [] });
    } else if (s.missing !== undefined) {
      checks.push({
        test,
        status: 'cannot-run',
        summary: `${test}: ${s.missing} not found on the node`,
        cmd,
        details: [],
      });
    } else if (s.skipped !== undefined) {
      checks.push({
        test,
        status: 'cannot-run',
        summary: `${test} asked but skipped by the Job (${s.skipped})`,
        cmd,
        details: [],
      });
    } else {
      checks.push(judgeSection(s, expect, cmd));
    }
  }
  const ran = checks.filter((c) => c.status !== 'skipped');
  const status: ValidationVerdict['status'] = ran.some((c) => c.status === 'failed')
    ? 'failed'
    : ran.some((c) => c.status === 'cannot-run')
      ? 'cannot-run'
      : 'passed';
  const head =
    status === 'passed'
      ? 'validation passed'
      : status === 'failed'
        ? 'validation failed'
        : 'validation could not run';
  const parts = (status === 'passed' ? ran : ran.filter((c) => c.status !== 'passed')).map(
    (c) => c.summary,
  );
  let message = parts.length === 0 ? `${head} (no test asked)` : `${head}: ${parts.join('; ')}`;
  // No section at all: say what the log held instead (the client's "logs of pod … unavailable:
  // <why>" when the log could not be read, an entrypoint error), not only "no output".
  const said = sections.size === 0 ? lines.findLast((l) => l.trim() !== '')?.trim() : undefined;
  if (status !== 'passed' && said !== undefined)
    message += ` (no validation output in the Job's log, which ends: ${said.length > 300 ? `${said.slice(0, 120)}…${said.slice(-170)}` : said})`;
  return { status, message, checks };
}

function commandOf(
  test: ValidationTest,
  expect: ValidationExpectations,
  s: ValidationSection | undefined,
): string {
  switch (test) {
    case 'dcgm':
      return `dcgmi diag -r ${expect.dcgmLevel} -j`;
    case 'nccl':
      return `all_reduce_perf -b 512M -e 4G -f 2 -g <gpus> (${s?.args ?? ''})`.replace(' ()', '');
    case 'ib':
      return `ib_write_bw --report_gbits loopback (${s?.args ?? ''})`.replace(' ()', '');
  }
}

function judgeSection(
  s: ValidationSection,
  expect: ValidationExpectations,
  cmd: string,
): CheckVerdict {
  const text = s.lines.join('\n');
  const cut = s.rc === undefined ? ' (output cut off before its end)' : '';
  const fail = (summary: string, details: string[] = []): CheckVerdict => ({
    test: s.test,
    status: 'failed',
    summary,
    cmd,
    details: details.slice(0, MAX_DETAILS),
  });
  const pass = (summary: string, details: string[] = []): CheckVerdict => ({
    test: s.test,
    status: 'passed',
    summary,
    cmd,
    details: details.slice(0, MAX_DETAILS),
  });
  if (s.rc === 126 || s.rc === 127)
    return {
      test: s.test,
      status: 'cannot-run',
      summary: `${s.test}: tool could not be run (exit ${s.rc})`,
      cmd,
      details: [],
    };
  switch (s.test) {
    case 'dcgm': {
      let r: DcgmReport;
      try {
        r = parseDcgmDiag(text);
      } catch (err) {
        return fail(
          `DCGM r${expect.dcgmLevel}: ${err instanceof Error ? err.message : String(err)}${cut}`,
          s.lines.slice(-3).map((l) => l.slice(0, 160)),
        );
      }
      if (r.runtimeError !== undefined)
        return fail(`DCGM r${expect.dcgmLevel} did not run: ${r.runtimeError.slice(0, 120)}`);
      const failed = r.results.filter((x) => x.status === 'fail');
      const skipped = r.results.filter((x) => x.status === 'skip').length;
      const warned = r.results.filter((x) => x.status === 'warn').length;
      const details = failed.map(
        (x) =>
          `${x.test}${x.gpus === '' ? '' : ` GPU ${x.gpus}`}: fail${x.messages.length === 0 ? '' : ` (${x.messages[0]?.slice(0, 120) ?? ''})`}`,
      );
      if (failed.length > 0)
        return fail(
          `DCGM r${expect.dcgmLevel}: ${failed.length} failed (${[...new Set(failed.map((x) => x.test))].slice(0, 3).join(', ')})`,
          details,
        );
      if (r.results.length === 0) return fail(`DCGM r${expect.dcgmLevel}: no results${cut}`);
      if (s.rc === undefined) return fail(`DCGM r${expect.dcgmLevel}: output cut off`);
      if (s.rc !== 0) return fail(`DCGM r${expect.dcgmLevel}: dcgmi exited ${s.rc}`);
      const extra = [skipped > 0 ? `${skipped} skipped` : '', warned > 0 ? `${warned} warned` : '']
        .filter((x) => x !== '')
        .join(', ');
      return pass(
        `DCGM r${expect.dcgmLevel} pass (${r.results.length} results${extra === '' ? '' : `, ${extra}`}${r.version === undefined ? '' : `, DCGM ${r.version}`})`,
      );
    }
    case 'nccl': {
      const r = parseNcclTests(text);
      const last = r.rows.reduce<NcclRow | undefined>(
        (a, b) => (a === undefined || b.bytes >= a.bytes ? b : a),
        undefined,
      );
      if (last === undefined) return fail(`NCCL all-reduce: no result rows${cut}`);
      const wrong = r.rows.reduce((n, x) => n + x.wrong, 0);
      if ((r.outOfBounds ?? 0) > 0 || wrong > 0)
        return fail(
          `NCCL all-reduce: wrong results (${r.outOfBounds ?? wrong} out of bounds)`,
          r.rows.filter((x) => x.wrong > 0).map((x) => `${x.bytes} B: ${x.wrong} wrong`),
        );
      if (r.outOfBounds === undefined || s.rc === undefined)
        return fail(`NCCL all-reduce: output ends before its summary${cut}`);
      if (s.rc !== 0) return fail(`NCCL all-reduce: exited ${s.rc}`);
      const busbw = Math.min(last.busbwOut, last.busbwIn);
      const at = formatBytes(last.bytes);
      if (expect.ncclMinBusBwGBps !== undefined && busbw < expect.ncclMinBusBwGBps)
        return fail(`NCCL busbw ${busbw} GB/s at ${at} < floor ${expect.ncclMinBusBwGBps}`);
      return pass(
        `NCCL busbw ${busbw} GB/s at ${at}${expect.ncclMinBusBwGBps === undefined ? '' : ` >= ${expect.ncclMinBusBwGBps}`}`,
      );
    }
    case 'ib': {
      const r = parsePerftest(text);
      const last = r.rows.reduce<PerftestRow | undefined>(
        (a, b) => (a === undefined || b.bytes >= a.bytes ? b : a),
        undefined,
      );
      const dev = r.device ?? /device=(\S+)/.exec(s.args)?.[1] ?? '?';
      if (last === undefined) return fail(`IB loopback on ${dev}: no result rows${cut}`);
      if (s.rc === undefined) return fail(`IB loopback on ${dev}: output cut off`);
      if (s.rc !== 0) return fail(`IB loopback on ${dev}: exited ${s.rc}`);
      const gbps = Math.round(last.averageGbps * 100) / 100;
      if (expect.ibMinGbps !== undefined && gbps < expect.ibMinGbps)
        return fail(`IB loopback on ${dev}: ${gbps} Gb/s < floor ${expect.ibMinGbps}`);
      if (gbps <= 0) return fail(`IB loopback on ${dev}: no bandwidth`);
      return pass(
        `IB loopback on ${dev}: ${gbps} Gb/s${expect.ibMinGbps === undefined ? '' : ` >= ${expect.ibMinGbps}`}`,
      );
    }
  }
}

function formatBytes(n: number): string {
  if (n >= 1 << 30 && n % (1 << 30) === 0) return `${n / (1 << 30)} GiB`;
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  return `${n} B`;
}

/** The ticket's diagnosis records of a verdict: one per test that ran. */
export function validationDiagnosis(
  v: ValidationVerdict,
): { hint: string; cmd: string; result: string }[] {
  return v.checks
    .filter((c) => c.status !== 'skipped')
    .map((c) => ({
      hint: `validation ${c.test}: ${c.status}`,
      cmd: c.cmd,
      result: [c.summary, ...c.details].join('\n'),
    }));
}

// ---------------------------------------------------------------------------------------------
// Policy and the step's parameters

/** The node annotation a passed validation writes: RFC 3339 time until which it is certified. */
export const CERTIFIED_UNTIL_ANNOTATION = 'aegis.io/certified-until';

/** Validation as the site configured it (config `validation`), for the ladders and the judge. */
export interface ValidationPolicy {
  readonly enabled: boolean;
  /** DCGM diagnostic level; 0: not run. */
  readonly dcgmLevel: number;
  /** GPUs of the all-reduce: `all`, a count, or 0 (not run). */
  readonly ncclGpus: 'all' | number;
  readonly ncclMinBusBwGBps?: number;
  /** HCA of the loopback: `auto`, `none` (not run), or a name. */
  readonly ibDevice: string;
  readonly ibMinGbps?: number;
  /** A pass certifies the node for this long. */
  readonly certifyForMs: number;
}

/** The validate_node Job's parameters for a policy (validated again in src/jobs/params.ts). */
export function validationParams(p: ValidationPolicy): Record<string, string> {
  return {
    DCGM_LEVEL: String(p.dcgmLevel),
    NCCL_GPUS: String(p.ncclGpus),
    IB_DEVICE: p.ibDevice,
  };
}

/**
 * What the judge expects of a Job run with `params` (what was asked is read from the step's own
 * parameters, recorded in the ticket, so a resumed step is judged on what it ran) and the
 * policy's floors.
 */
export function expectationsOf(
  params: Readonly<Record<string, string>>,
  p: ValidationPolicy | undefined,
): ValidationExpectations {
  const level = Number(params['DCGM_LEVEL'] ?? '0');
  return {
    dcgmLevel: Number.isInteger(level) ? level : 0,
    nccl: (params['NCCL_GPUS'] ?? '0') !== '0',
    ...(p?.ncclMinBusBwGBps === undefined ? {} : { ncclMinBusBwGBps: p.ncclMinBusBwGBps }),
    ib: (params['IB_DEVICE'] ?? 'none') !== 'none',
    ...(p?.ibMinGbps === undefined ? {} : { ibMinGbps: p.ibMinGbps }),
  };
}
