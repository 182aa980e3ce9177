import assert from 'node:assert/strict';
import { getMaxListeners, setMaxListeners } from 'node:events';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../catalogue/index.js';
import { COLLECTOR_HEALTH, SIGNAL_PRESENCE } from '../catalogue/signals.js';
import type { CatalogueEntry } from '../catalogue/types.js';
import { ManualClock } from '../core/clock.js';
import { ErrorCode, HealError } from '../core/errors.js';
import type { NodeInfo } from '../core/types.js';
import type { InstantSample, MetricsSource } from '../prom/metrics-source.js';
import { compilePromQL, createMemorySeriesSource, type Series } from '../promql/index.js';
import { aNode } from '../../test/helpers/builders.js';
import { ConditionTracker } from './condition-tracker.js';
import { Inspector, longestRangeMs, rulePeriodMs, type InspectorOptions } from './inspector.js';

const T0 = Date.UTC(2026, 0, 1);
const SEC = 1000;
const entry = (name: string): CatalogueEntry => {
  const e = CATALOGUE.find((c) => c.name === name);
  assert.ok(e !== undefined, name);
  return e;
};
const NODES: NodeInfo[] = ['n1', 'n2'].map((name) => aNode({ name }));

const PRESENCE_QUERIES = new Set(Object.values(SIGNAL_PRESENCE).filter((e) => e !== null));

/** Answers every presence query with both nodes; rules per `faults` (expr -> samples). */
class FakeSource implements MetricsSource {
  readonly asked: string[] = [];
  readonly faults = new Map<string, InstantSample[]>();
  readonly failing = new Set<string>();
  /** Queries that stay unanswered until `release()`. */
  readonly holding = new Set<string>();
  /** Presence query -> nodes it leaves out (their exporter is silent). */
  readonly silent = new Map<string, Set<string>>();
  #held: (() => void)[] = [];

  async query(expr: string): Promise<readonly InstantSample[]> {
    this.asked.push(expr);
    if (this.holding.has(expr)) await new Promise<void>((r) => this.#held.push(r));
    if (this.failing.has(expr)) throw new HealError(ErrorCode.PromUnavailable, `down: ${expr}`);
    if (PRESENCE_QUERIES.has(expr))
      return NODES.filter((n) => this.silent.get(expr)?.has(n.name) !== true).map((n) => ({
        labels: { node: n.name },
        value: 1,
      }));
    return this.faults.get(expr) ?? [];
  }

  release(): void {
    for (const r of this.#held.splice(0)) r();
  }

  countOf(expr: string): number {
    return this.asked.filter((e) => e === expr).length;
  }
}

function inspector(
  source: MetricsSource,
  clock: ManualClock,
  options: Partial<InspectorOptions> = {},
): Inspector {
  return new Inspector({
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    metrics: source,
    clock,
    options: {
      concurrency: 8,
      queryTimeoutMs: 10 * SEC,
      compatibility: false,
      slowRuleMaxPeriodMs: 30 * SEC,
      intervalMs: SEC,
      backgroundSlowRules: false,
      ...options,
    },
  });
}

const signal = new AbortController().signal;
const conditionsOf = (i: Awaited<ReturnType<Inspector['inspect']>>): string[] =>
  i.observations.map((o) => `${o.node}/${o.condition}`);

describe('rule periods', () => {
  it('reads the longest range window of an expression', () => {
    assert.equal(longestRangeMs('increase(x[10m]) + max_over_time(y[1d])'), 86_400_000);
    assert.equal(longestRangeMs('max_over_time(rate(x[5m])[1h:1m])'), 3_600_000);
    assert.equal(longestRangeMs('x{a=~"[0-9]+"} > 0'), 0);
    assert.equal(longestRangeMs('x > 0'), 0);
  });

  it('asks a rule every for/10 or long-window/120, capped, and every cycle when neither', () => {
    const max = 30 * SEC;
    assert.equal(rulePeriodMs(entry('Xid79GPULost'), max), 0);
    assert.equal(rulePeriodMs(entry('GpuHung'), max), 6 * SEC); // for: 1m
    assert.equal(rulePeriodMs(entry('OomKillDetected'), max), 5 * SEC); // [10m]
    assert.equal(rulePeriodMs(entry('NodeHasRestarted'), max), max); // [1h]
    assert.equal(rulePeriodMs(entry('IBSymbolError'), max), max); // [24h]
    assert.equal(rulePeriodMs(entry('BaseBoardCriticalIssue'), max), max); // for: 3h
    assert.equal(rulePeriodMs(entry('IBSymbolError'), 0), 0, '0 turns it off');
  });

  it('every rule without for: or a range of ten minutes or more is asked every cycle', () => {
    const clock = new ManualClock(T0);
    const insp = inspector(new FakeSource(), clock);
    const slow = insp.slowRulePeriods;
    for (const e of CATALOGUE) {
      if (e.expr === '' || e.forMs > 0 || longestRangeMs(e.expr) >= 600_000) continue;
      assert.equal(slow.has(e.name), false, e.name);
    }
    assert.ok(slow.size > 50, `${slow.size} slow rules`);
    assert.equal(insp.queriesEveryCycle, insp.queriesPerCycle - slow.size);
  });

  it('lists the queries a cycle waits for: every-cycle rules (shared ones once), no presence', () => {
    const insp = inspector(new FakeSource(), new ManualClock(T0), { shareSelections: true });
    const cycle = insp.cycleQueries;
    const presence = [...PRESENCE_QUERIES, ...Object.values(COLLECTOR_HEALTH)];
    assert.equal(cycle.length, insp.queriesEveryCycle - presence.length);
    assert.equal(new Set(cycle).size, cycle.length);
    assert.ok(cycle.every((q) => !presence.includes(q)));
    assert.ok(cycle.includes('DCGM_FI_DEV_XID_ERRORS != 0'));
    assert.ok(!cycle.includes(entry('Xid79GPULost').expr), 'asked through the shared query');
    assert.ok(!cycle.includes(entry('GpuHung').expr), 'a slow rule');
  });
});

describe('inspector: slow rules', () => {
  it('asks each rule as often as its period says, and slow rules far less than every cycle', async () => {
    const clock = new ManualClock(T0);
    const source = new FakeSource();
    const insp = inspector(source, clock);
    const cycles = 120;
    let queries = 0;
    for (let i = 0; i < cycles; i++) {
      const r = await insp.inspect(NODES, signal);
      assert.equal(r.complete, true, `cycle ${i}`);
      queries += r.queries;
      await clock.advance(SEC);
    }
    const xid = entry('Xid79GPULost').expr;
    assert.equal(source.countOf(xid), cycles);
    for (const [name, period] of insp.slowRulePeriods) {
      const asked = source.countOf(entry(name).expr);
      const expected = (cycles * SEC) / period;
      assert.ok(
        asked >= expected - 1 && asked <= expected + 2,
        `${name}: asked ${asked} times, period ${period} ms`,
      );
    }
    const perCycle = queries / cycles;
    assert.ok(perCycle < insp.queriesEveryCycle + 12, `${perCycle} queries per cycle`);
    assert.ok(perCycle < insp.queriesPerCycle / 2, `${perCycle} of ${insp.queriesPerCycle}`);
  });

  it('reuses a slow rule answer between its queries, says how old it is, and drops it once cleared', async () => {
    const clock = new ManualClock(T0);
    const source = new FakeSource();
    const insp = inspector(source, clock);
    const expr = entry('GpuHung').expr;
    source.faults.set(expr, [{ labels: { node: 'n2' }, value: 1 }]);
    const first = await insp.inspect(NODES, signal);
    assert.ok(conditionsOf(first).includes('n2/GpuHung'));
    assert.equal(first.answeredAtMs.has('GpuHung'), false, 'asked in this cycle');
    let reused = 0;
    for (let i = 0; i < 12; i++) {
      await clock.advance(SEC);
      const r = await insp.inspect(NODES, signal);
      assert.ok(conditionsOf(r).includes('n2/GpuHung'), `cycle ${i}`);
      const at = r.answeredAtMs.get('GpuHung');
      if (at !== undefined) {
        reused++;
        assert.ok(at < clock.now() && clock.now() - at <= 6 * SEC, 'answer age within a period');
      }
    }
    assert.ok(reused >= 8, `${reused} cycles served from the last answer`);
    source.faults.delete(expr);
    let clearedAfter = -1;
    for (let i = 1; i <= 8 && clearedAfter < 0; i++) {
      await clock.advance(SEC);
      if (!conditionsOf(await insp.inspect(NODES, signal)).includes('n2/GpuHung')) clearedAfter = i;
    }
    assert.ok(clearedAfter >= 1 && clearedAfter <= 6, `cleared after ${clearedAfter} s`);
  });

  it('a failed slow query makes its rule stale (not healthy) and is retried the next cycle', async () => {
    const clock = new ManualClock(T0);
    const source = new FakeSource();
    const insp = inspector(source, clock);
    const expr = entry('IBSymbolError').expr;
    await insp.inspect(NODES, signal);
    source.failing.add(expr);
    let failedAt = -1;
    for (let i = 1; i <= 31 && failedAt < 0; i++) {
      await clock.advance(SEC);
      const r = await insp.inspect(NODES, signal);
      if (r.failedRules.has('IBSymbolError')) {
        failedAt = i;
        assert.equal(r.complete, false);
        assert.equal(r.failures, 1);
        assert.match(r.errors.join('\n'), /down: /);
      }
    }
    assert.ok(failedAt > 0, 'the failure was seen');
    const asked = source.countOf(expr);
    await clock.advance(SEC);
    const still = await insp.inspect(NODES, signal);
    assert.equal(source.countOf(expr), asked + 1, 'retried at once, not a period later');
    assert.ok(still.failedRules.has('IBSymbolError'));
    source.failing.delete(expr);
    await clock.advance(SEC);
    const back = await insp.inspect(NODES, signal);
    assert.equal(back.failedRules.has('IBSymbolError'), false);
    assert.equal(back.complete, true);
  });

  it('in the background, a slow query never holds a cycle, and its answer serves the next one', async () => {
    const clock = new ManualClock(T0);
    const source = new FakeSource();
    const insp = inspector(source, clock, { backgroundSlowRules: true });
    const expr = entry('GpfsMountLost').expr;
    source.faults.set(expr, [{ labels: { node: 'n1', mount: '/gpfs' }, value: 1 }]);
    source.holding.add(expr);
    const first = await insp.inspect(NODES, signal);
    assert.equal(first.complete, false, 'no answer yet');
    assert.ok(first.failedRules.has('GpfsMountLost'), 'stale until it answers');
    assert.equal(first.failures, 0, 'pending is not a failure');
    assert.equal(conditionsOf(first).includes('n1/GpfsMountLost'), false);
    await clock.advance(SEC);
    const second = await insp.inspect(NODES, signal);
    assert.ok(second.failedRules.has('GpfsMountLost'), 'still pending');
    source.holding.delete(expr);
    source.release();
    await clock.advance(SEC);
    const third = await insp.inspect(NODES, signal);
    assert.ok(conditionsOf(third).includes('n1/GpfsMountLost'));
    assert.equal(third.answeredAtMs.get('GpfsMountLost'), T0, 'evaluated at the first cycle');
  });

  it('a background query past its deadline fails the rule instead of leaving it pending', async () => {
    const clock = new ManualClock(T0);
    const source = new FakeSource();
    const insp = inspector(source, clock, { backgroundSlowRules: true, queryTimeoutMs: 3 * SEC });
    const expr = entry('IBSymbolError').expr;
    source.holding.add(expr);
    await insp.inspect(NODES, signal);
    await clock.advance(4 * SEC);
    const r = await insp.inspect(NODES, signal);
    assert.ok(r.failedRules.has('IBSymbolError'));
    assert.match(r.errors.join('\n'), /timed out after 3000ms/);
    source.release();
  });

  it('with the period cap at 0 every rule is asked every cycle', async () => {
    const clock = new ManualClock(T0);
    const source = new FakeSource();
    const insp = inspector(source, clock, { slowRuleMaxPeriodMs: 0 });
    assert.equal(insp.slowRulePeriods.size, 0);
    for (let i = 0; i < 3; i++) {
      const r = await insp.inspect(NODES, signal);
      assert.equal(r.queries, insp.queriesPerCycle);
      await clock.advance(SEC);
    }
  });
});

describe('inspector: shared selections', () => {
  it('asks the XID metric once and observes exactly what the separate rules observe', async () => {
    const series: Series[] = [];
    const codes = [0, 79, 13, 48, 31, 0, 94, 999, 74, 0, 63, 120];
    for (let n = 0; n < 12; n++)
      for (let g = 0; g < 8; g++)
        series.push({
          labels: {
            __name__: 'DCGM_FI_DEV_XID_ERRORS',
            node: `n${n}`,
            gpu: String(g),
            pci_bus_id: `0000:${g}`,
          },
          samples: [{ t: T0, v: g === n % 8 ? (codes[n] ?? 0) : 0 }],
        });
    const memory = createMemorySeriesSource(series);
    const asked: string[] = [];
    const source: MetricsSource = {
      query: (expr, atMs) => {
        asked.push(expr);
        return Promise.resolve(compilePromQL(expr).evaluate(memory, atMs));
      },
    };
    const nodes = Array.from({ length: 12 }, (_, n) => aNode({ name: `n${n}` }));
    const run = async (shareSelections: boolean): Promise<string[]> => {
      const insp = inspector(source, new ManualClock(T0), { shareSelections });
      const r = await insp.inspect(nodes, signal);
      assert.equal(r.complete, true);
      return r.observations
        .filter((o) => o.condition.startsWith('Xid') || o.condition.startsWith('XID'))
        .map((o) => `${o.node}/${o.condition}/${o.id}/${o.value}`)
        .sort();
    };
    const separate = await run(false);
    const separateAsked = asked.splice(0).length;
    const shared = await run(true);
    assert.deepEqual(shared, separate);
    assert.equal(separate.length, 9, separate.join(' '));
    assert.equal(asked.filter((e) => e.includes('DCGM_FI_DEV_XID_ERRORS ==')).length, 0);
    assert.equal(asked.filter((e) => e === 'DCGM_FI_DEV_XID_ERRORS != 0').length, 1);
    assert.equal(separateAsked - asked.length, 11, 'twelve XID queries became one');
  });
});

describe('inspector: the caller signal', () => {
  it('accepts a signal with no listener limit, and raises a low one to fit its queries', async () => {
    const unlimited = new AbortController().signal;
    setMaxListeners(0, unlimited);
    const insp = inspector(new FakeSource(), new ManualClock(T0), { concurrency: 4 });
    assert.equal((await insp.inspect(NODES, unlimited)).complete, true);
    const low = new AbortController().signal;
    setMaxListeners(2, low);
    await insp.inspect(NODES, low);
    assert.equal(getMaxListeners(low), 12);
  });
});

describe('inspector: presence in the background', () => {
  const DCGM = SIGNAL_PRESENCE['dcgm-exporter'] as string;
  const presenceExprs = new Set([...PRESENCE_QUERIES, ...Object.values(COLLECTOR_HEALTH)]);

  it('the first cycle asks presence itself; later ones use the previous answer, asked after their rules', async () => {
    const clock = new ManualClock(T0);
    const source = new FakeSource();
    const insp = inspector(source, clock, { backgroundPresence: true });
    const first = await insp.inspect(NODES, signal);
    assert.equal(first.presenceAtMs, T0);
    assert.equal(first.complete, true);
    await clock.advance(SEC);
    source.asked.length = 0;
    const second = await insp.inspect(NODES, signal);
    await new Promise((resolve) => setImmediate(resolve)); // the background run asks them all
    assert.equal(second.presenceAtMs, T0, "the first cycle's answer");
    assert.equal(second.complete, true);
    assert.equal(second.staleByNode.size, 0);
    assert.equal(
      source.asked.filter((e) => presenceExprs.has(e)).length,
      presenceExprs.size,
      'presence still asked every cycle',
    );
    const firstPresence = source.asked.findIndex((e) => presenceExprs.has(e));
    assert.ok(firstPresence > 0, 'asked');
    assert.ok(
      source.asked.slice(firstPresence).every((e) => presenceExprs.has(e)),
      'every rule query before the first presence query',
    );
    await clock.advance(SEC);
    const third = await insp.inspect(NODES, signal);
    assert.equal(third.presenceAtMs, T0 + SEC, "the second cycle's answer");
  });

  it('an exporter that falls silent is stale from the cycle after the one that asked', async () => {
    const clock = new ManualClock(T0);
    const source = new FakeSource();
    const insp = inspector(source, clock, { backgroundPresence: true });
    await insp.inspect(NODES, signal);
    source.silent.set(DCGM, new Set(['n2']));
    await clock.advance(SEC);
    const asked = await insp.inspect(NODES, signal);
    assert.equal(asked.staleByNode.size, 0, 'the answer in use predates the silence');
    await clock.advance(SEC);
    const after = await insp.inspect(NODES, signal);
    assert.deepEqual([...(after.staleByNode.get('n2') ?? [])], ['dcgm-exporter']);
    assert.equal(after.staleByNode.has('n1'), false);
    assert.equal(after.presenceAtMs, T0 + SEC);
  });

  it('a failed presence query makes its signal stale in the next cycle, and is asked again', async () => {
    const clock = new ManualClock(T0);
    const source = new FakeSource();
    const insp = inspector(source, clock, { backgroundPresence: true });
    await insp.inspect(NODES, signal);
    source.failing.add(DCGM);
    await clock.advance(SEC);
    await insp.inspect(NODES, signal);
    source.failing.delete(DCGM);
    await clock.advance(SEC);
    const failed = await insp.inspect(NODES, signal);
    assert.ok(failed.failedSignals.has('dcgm-exporter'));
    assert.equal(failed.complete, false);
    assert.match(
      failed.errors.join('\n'),
      /down: count by \(node\) \(count by \(node, job, instance\) \(DCGM/,
    );
    await clock.advance(SEC);
    const back = await insp.inspect(NODES, signal);
    assert.equal(back.failedSignals.size, 0);
    assert.equal(back.complete, true);
  });

  it('presence that stops answering makes every signal stale, never present', async () => {
    const clock = new ManualClock(T0);
    const source = new FakeSource();
    // Every presence and collector query in flight at once, so the run fails at one deadline.
    const insp = inspector(source, clock, {
      backgroundPresence: true,
      queryTimeoutMs: 60 * SEC,
      concurrency: 16,
    });
    await insp.inspect(NODES, signal);
    for (const e of presenceExprs) source.holding.add(e);
    const cycles = [];
    const asked: number[] = [];
    for (let i = 0; i < 64; i++) {
      await clock.advance(SEC);
      cycles.push(await insp.inspect(NODES, signal));
      asked.push(source.countOf(DCGM));
    }
    assert.equal(cycles[0]?.failedSignals.size, 0, 'the last answer serves a while');
    assert.deepEqual(
      asked.slice(0, 60),
      Array.from({ length: 60 }, () => 2),
      'asked by the first cycle and the run still out, no other run meanwhile',
    );
    const expired = cycles.findIndex((c) => c.failedSignals.size > 0);
    // The run asked at T0 + 1 s hits its 60 s deadline: the cycle at T0 + 61 s sees it fail.
    assert.equal(expired, 60);
    assert.match(cycles[60]?.errors.join('\n') ?? '', /timed out after 60000ms/);
    assert.equal(cycles.at(-1)?.failedSignals.size, PRESENCE_QUERIES.size);
    assert.equal(cycles.at(-1)?.complete, false);
    for (const e of presenceExprs) source.holding.delete(e);
    source.release();
  });
});

describe('inspector: staleness per input and per collector', () => {
  const KSM = SIGNAL_PRESENCE['kube-state-metrics'] as string;
  const DCGM = SIGNAL_PRESENCE['dcgm-exporter'] as string;
  const NODE_EXPORTER = SIGNAL_PRESENCE['node-exporter'] as string;
  const NODE_COLLECTORS = COLLECTOR_HEALTH['node-exporter'] as string;
  const GPU_DOWN = entry('GpuDown').expr;

  it('GpuDown reads kube-state-metrics and dcgm-exporter: either one silent for a node makes it stale there', async () => {
    const source = new FakeSource();
    const insp = inspector(source, new ManualClock(T0));
    source.silent.set(KSM, new Set(['n2']));
    const ksmSilent = await insp.inspect(NODES, signal);
    assert.deepEqual([...(ksmSilent.staleByNode.get('n2') ?? [])], ['kube-state-metrics']);
    assert.equal(insp.isStale(ksmSilent, 'n2', 'GpuDown'), true, 'kube-state-metrics silent');
    assert.equal(insp.isStale(ksmSilent, 'n1', 'GpuDown'), false);
    // The condition's own signal says nothing about it: the old check read only dcgm-exporter.
    assert.equal(insp.signalOf('GpuDown'), 'dcgm-exporter');
    source.silent.clear();
    source.silent.set(DCGM, new Set(['n1']));
    const dcgmSilent = await insp.inspect(NODES, signal);
    assert.equal(insp.isStale(dcgmSilent, 'n1', 'GpuDown'), true, 'dcgm-exporter silent');
    assert.equal(insp.isStale(dcgmSilent, 'n2', 'GpuDown'), false);
  });

  it('an exporter read only to see it absent, or only as a filter, does not make the rule stale', async () => {
    const source = new FakeSource();
    const insp = inspector(source, new ManualClock(T0));
    source.silent.set(DCGM, new Set(['n1']));
    source.silent.set(NODE_EXPORTER, new Set(['n2']));
    const r = await insp.inspect(NODES, signal);
    assert.equal(insp.isStale(r, 'n1', 'GpuMetricsHang'), false, 'it detects the silence');
    assert.equal(insp.isStale(r, 'n1', 'CPUPressure'), false, 'busy GPUs only filter it');
    assert.equal(insp.isStale(r, 'n2', 'NodeExporterDown'), false, 'it detects the silence');
    assert.equal(insp.isStale(r, 'n2', 'CPUPressure'), true, 'its load is node-exporter');
    assert.deepEqual(insp.inputsOf('GpuMetricsHang')?.exempt, ['dcgm-exporter']);
  });

  it('a failing collector makes the rules reading it stale on that node only', async () => {
    const source = new FakeSource();
    const insp = inspector(source, new ManualClock(T0));
    source.faults.set(NODE_COLLECTORS, [
      { labels: { node: 'n1', collector: 'filesystem' }, value: 0 },
    ]);
    const r = await insp.inspect(NODES, signal);
    assert.equal(r.complete, true);
    assert.deepEqual([...(r.failedCollectorsByNode.get('n1') ?? [])], ['node-exporter/filesystem']);
    assert.equal(insp.isStale(r, 'n1', 'DiskReadOnly'), true);
    assert.equal(insp.isStale(r, 'n1', 'DiskPressure'), true);
    assert.equal(
      insp.isStale(r, 'n2', 'DiskReadOnly'),
      false,
      'only the node whose collector failed',
    );
    assert.equal(insp.isStale(r, 'n1', 'HighLoad'), false, 'loadavg still collects');
    assert.deepEqual(insp.staleInputs(r, 'n1'), [
      { input: 'node-exporter/filesystem', reason: 'the collector failed its last collection' },
    ]);
  });

  it('a failed collector query makes its exporter stale everywhere (unknown is not healthy)', async () => {
    const source = new FakeSource();
    const insp = inspector(source, new ManualClock(T0));
    source.failing.add(NODE_COLLECTORS);
    const r = await insp.inspect(NODES, signal);
    assert.equal(r.complete, false);
    assert.ok(r.failedSignals.has('node-exporter'));
    assert.equal(insp.isStale(r, 'n2', 'DiskReadOnly'), true);
    assert.equal(insp.isStale(r, 'n2', 'Xid79GPULost'), false, 'dcgm-exporter rules are fine');
  });

  it('an input going silent clears nothing: GpuDown stays active while kube-state-metrics is gone', async () => {
    const clock = new ManualClock(T0);
    const source = new FakeSource();
    const insp = inspector(source, clock);
    const tracker = new ConditionTracker((c) => ({
      forMs: 0,
      clearForMs: entry(c).clearForMs,
    }));
    const edges: string[] = [];
    const cycle = async (): Promise<void> => {
      const r = await insp.inspect(NODES, signal);
      const isStale = (node: string, c: string): boolean => insp.isStale(r, node, c);
      for (const e of tracker.update(r.observations, clock.now(), isStale, r.presenceAtMs))
        edges.push(`${e.kind} ${e.instance.node}/${e.instance.condition}`);
      await clock.advance(SEC);
    };
    source.faults.set(GPU_DOWN, [{ labels: { node: 'n1' }, value: 1 }]);
    await cycle();
    assert.deepEqual(edges, ['raised n1/GpuDown']);
    // kube-state-metrics goes down: its GPU count vanishes, so does GpuDown's answer.
    source.faults.delete(GPU_DOWN);
    source.silent.set(KSM, new Set(['n1', 'n2']));
    for (let i = 0; i < (entry('GpuDown').clearForMs * 2) / SEC; i += 10) {
      await cycle();
      await clock.advance(9 * SEC);
    }
    assert.deepEqual(edges, ['raised n1/GpuDown'], 'not cleared while an input is stale');
    // Back, and the GPU really is back: now it clears after its delay.
    source.silent.clear();
    for (let i = 0; i < (entry('GpuDown').clearForMs * 2) / SEC; i += 10) {
      await cycle();
      await clock.advance(9 * SEC);
    }
    assert.deepEqual(edges, ['raised n1/GpuDown', 'cleared n1/GpuDown']);
  });
});
