/**
 * `aegis replay` on a real Prometheus (Debian 2.42) whose TSDB was backfilled with
 * `promtool tsdb create-blocks-from openmetrics`: a week of four GPU nodes built from the real
 * exporter captures, with four faults injected at known times and nodes
 * (test/fixtures/replay/week.ts). The replay must find each at its time (within one step) on its
 * node and nothing else; a day of healthy history must give no step at all; a second policy
 * (approval mode) must show its difference; bad input must fail naming what.
 *
 * A sample every 10 minutes (a real scrape is every 15–60 s; the backfill stays small enough to
 * build in seconds) and a 15-minute lookback, so a sample is always in reach. The blocks are
 * written with `--max-block-duration=168h` (two blocks instead of 85 two-hour ones: a tenth of
 * the time) into the data directory of a Prometheus stopped for it, then started again.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCliCaptured, type CliRun } from '../../src/cli/main.js';
import type { ReplayComparison } from '../../src/replay/compare.js';
import type { ReplayReport } from '../../src/replay/replay.js';
import {
  buildWeek,
  DAY,
  HOUR,
  MIN,
  NODES,
  weekFaults,
  type Fault,
} from '../fixtures/replay/week.js';
import {
  runPromtool,
  startPrometheus,
  type PrometheusServer,
} from '../helpers/prometheus-harness.js';

const SAMPLE_MS = 10 * MIN;
const STEP_MS = 30_000;
/** The week: ends on the hour at least an hour ago (the backfill must not reach the head block). */
const END = Math.floor((Date.now() - HOUR) / HOUR) * HOUR;
const START = END - 7 * DAY;
const FAULTS = weekFaults(START);

// ---------------------------------------------------------------- running the command

function replay(args: readonly string[]): Promise<CliRun> {
  return runCliCaptured(['replay', ...args]);
}

const iso = (ms: number): string => new Date(ms).toISOString();

describe('aegis replay on a backfilled week of real exporter history', { timeout: 600_000 }, () => {
  let prom: PrometheusServer;
  let dir: string;
  let week: ReplayReport;
  const built = { series: 0, samples: 0, buildMs: 0, startMs: 0 };

  before(async () => {
    const t0 = performance.now();
    const history = buildWeek({ startMs: START, endMs: END, sampleMs: SAMPLE_MS });
    built.series = history.series;
    built.samples = history.samples;
    dir = await mkdtemp(join(tmpdir(), 'aegis-replay-'));
    const file = join(dir, 'week.om');
    await writeFile(file, history.text);
    const t1 = performance.now();
    prom = await startPrometheus({ retention: '30d', lookbackDeltaMs: 15 * MIN });
    await prom.kill();
    const blocks = await runPromtool([
      'tsdb',
      'create-blocks-from',
      'openmetrics',
      '--max-block-duration=168h',
      file,
      join(prom.dir, 'data'),
    ]);
    assert.equal(blocks.code, 0, blocks.stderr);
    await prom.restart();
    built.buildMs = Math.round(t1 - t0);
    built.startMs = Math.round(performance.now() - t1);
    process.stderr.write(
      `# replay history: ${built.series} series, ${built.samples} samples; text built in ${built.buildMs} ms, ` +
        `backfilled and Prometheus ready in ${built.startMs} ms\n`,
    );
  });

  after(async () => {
    await prom.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('finds every injected fault at its time (within one step) on its node, and nothing else', async () => {
    const r = await replay([
      '--prometheus',
      prom.url,
      '--from',
      iso(START),
      '--to',
      iso(END),
      '--json',
    ]);
    assert.equal(r.code, 0, r.err);
    week = JSON.parse(r.out) as ReplayReport;
    process.stderr.write(
      `# replay of a week (${week.run.cycles} cycles at 30 s, ${week.nodes} nodes): ${week.run.wallMs} ms, ` +
        `${week.run.hoursPerSecond} virtual hours per second, ${week.run.reads.rangeQueries} range queries\n`,
    );
    assert.equal(week.nodes, NODES.length);
    for (const f of FAULTS) {
      for (const condition of f.conditions) {
        const seen = week.faults.filter((x) => x.node === f.node && x.condition === condition);
        assert.equal(
          seen.length,
          1,
          `${f.name}: ${condition} seen once on ${f.node}: ${JSON.stringify(week.faults)}`,
        );
        const at = Date.parse(seen[0]?.from ?? '');
        assert.ok(
          at >= f.atMs && at - f.atMs <= STEP_MS,
          `${f.name}: ${condition} seen at ${seen[0]?.from ?? ''}, injected at ${iso(f.atMs)}`,
        );
      }
    }
    // Nothing but the injected faults: no other condition, no other node.
    const expected = new Set(FAULTS.flatMap((f) => f.conditions.map((c) => `${f.node}/${c}`)));
    assert.deepEqual(
      week.faults.map((x) => `${x.node}/${x.condition}`).filter((k) => !expected.has(k)),
      [],
    );
    // One incident per injected fault, at its time and node; steps only on the faulty nodes.
    assert.deepEqual(
      week.incidents.map((i): [string, number] => [i.node, Date.parse(i.time)]),
      FAULTS.map((f): [string, number] => [f.node, f.atMs]).sort((a, b) => a[1] - b[1]),
    );
    const faulty = new Set<string>(FAULTS.map((f) => f.node));
    assert.deepEqual(
      week.actions.filter((a) => !faulty.has(a.node)),
      [],
      'no step on a healthy node',
    );
    // The Xid 79 is acted on (gpu.reboot-once: cordon first) within a step of being seen.
    const xid = FAULTS[0] as Fault;
    const cordon = week.actions.find(
      (a) => a.node === xid.node && a.action === 'Cordon' && a.status === 'Running',
    );
    assert.ok(cordon !== undefined, JSON.stringify(week.actions.slice(0, 10)));
    assert.ok(Date.parse(cordon.time) - xid.atMs <= STEP_MS, cordon.time);
    assert.ok(week.totals.nodesCordoned >= 1);
    assert.ok(week.totals.reboots >= 1, 'the reboot-once ladder reboots the node');
  });

  it('replays a day of healthy history without a single step', async () => {
    const r = await replay([
      '--prometheus',
      prom.url,
      '--from',
      iso(START),
      '--to',
      iso(START + DAY),
      '--json',
    ]);
    assert.equal(r.code, 0, r.err);
    const day = JSON.parse(r.out) as ReplayReport;
    assert.equal(day.run.cycles + day.run.skippedCycles, DAY / STEP_MS + 1, 'every step covered');
    assert.deepEqual(day.faults, []);
    assert.deepEqual(day.actions, []);
    assert.deepEqual(day.incidents, []);
    assert.equal(day.totals.steps, 0);
  });

  it('prints, like aegis sim, the incidents, the steps and the totals', async () => {
    const xid = FAULTS[0] as Fault;
    const r = await replay([
      '--prometheus',
      prom.url,
      '--from',
      iso(xid.atMs - HOUR),
      '--to',
      iso(xid.atMs + 2 * HOUR),
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Aegis replay of http:\/\/127\.0\.0\.1:\d+: .* 4 nodes/);
    assert.match(
      r.out,
      new RegExp(`${iso(xid.atMs).replace('.000Z', 'Z')}  ! gpu-node-02  Xid79GPULost seen`),
    );
    assert.match(r.out, /gpu-node-02 {2}Cordon {7}started/);
    assert.match(r.out, /What happened \(1 incident\)/);
    assert.match(r.out, /Totals: 1 incident, \d+ steps on 1 node, 1 node cordoned, 1 reboot/);
    assert.match(r.out, /virtual hours per second/);
  });

  it('--compare shows what an approval policy changes', async () => {
    const approval = join(dir, 'approval.yaml');
    await writeFile(approval, 'approval:\n  rules:\n    - actions: [Reboot]\n');
    const xid = FAULTS[0] as Fault;
    const window = ['--from', iso(xid.atMs - HOUR), '--to', iso(xid.atMs + 3 * HOUR)];
    const r = await replay(['--prometheus', prom.url, ...window, '--compare', approval, '--json']);
    assert.equal(r.code, 0, r.err);
    const { a, b, differences } = JSON.parse(r.out) as {
      a: ReplayReport;
      b: ReplayReport;
      differences: ReplayComparison;
    };
    assert.ok(a.totals.reboots >= 1);
    assert.equal(b.totals.reboots, 0, 'under approval nothing reboots unapproved');
    assert.ok(b.actions.some((x) => x.action === 'Reboot' && x.status === 'Held'));
    assert.equal(differences.same, false);
    assert.ok(differences.totals.some((t) => t.total === 'reboots'));
    assert.ok(differences.steps.some((s) => s.only === 'a' && s.action === 'Reboot'));
    assert.ok(differences.steps.some((s) => s.only === 'b' && s.status === 'Held'));
    const text = await replay([
      '--prometheus',
      prom.url,
      ...window,
      '--compare',
      approval,
      '--quiet',
    ]);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /Differences: A = the default config, B = .*approval\.yaml/);
    assert.match(text.out, /reboots +[1-9]\d* +0/);
    assert.match(text.out, /A only .* Reboot/);
  });

  it('refuses bad input, naming what is wrong', async () => {
    const base = ['--prometheus', prom.url];
    const cases: [string[], RegExp][] = [
      [[...base, '--from', 'yesterday', '--to', 'now'], /--from: "yesterday" is not a time/],
      [[...base, '--from', iso(END), '--to', iso(START)], /--from .* must be before --to/],
      [
        [...base, '--from', iso(START), '--to', iso(END), '--step', 'fast'],
        /--step: "fast" is not a duration/,
      ],
      [
        [...base, '--from', iso(START), '--to', iso(END), '--jobs', 'maybe'],
        /--jobs: "maybe" must be succeed or fail/,
      ],
      [
        [...base, '--from', iso(START - 30 * DAY), '--to', iso(START - 29 * DAY)],
        /no kube-state-metrics data in http:\/\/127\.0\.0\.1:\d+ between .* \(kube_node_info has no sample\)/,
      ],
      [
        ['--prometheus', 'http://127.0.0.1:1', '--from', iso(START), '--to', iso(END)],
        /Prometheus at http:\/\/127\.0\.0\.1:1 unreachable/,
      ],
      [
        ['--prometheus', 'ftp://x', '--from', iso(START), '--to', iso(END)],
        /"ftp:\/\/x" is not an http/,
      ],
    ];
    for (const [args, re] of cases) {
      const r = await replay(args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.err, re, args.join(' '));
    }
  });
});
