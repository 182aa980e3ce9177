/**
 * The inspector's recorded mode (`inspect.ruleSource: recorded`): the store evaluates the rules
 * (`aegis rules --tiered`) and a cycle reads their output and heartbeats. A fake store here
 * evaluates the generated recording rules with the project's PromQL engine over the same series
 * the direct queries read, and stamps the heartbeats as Prometheus would.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { CATALOGUE } from '../catalogue/index.js';
import { SIGNAL_PRESENCE } from '../catalogue/signals.js';
import { ManualClock } from '../core/clock.js';
import { ConfigSchema } from '../config/schema.js';
import type { NodeInfo } from '../core/types.js';
import type { InstantSample, MetricsSource } from '../prom/metrics-source.js';
import { generateRules } from '../prom/rules.js';
import { compilePromQL, createMemorySeriesSource, type Series } from '../promql/index.js';
import { aNode } from '../../test/helpers/builders.js';
import { inspectorOptions } from './controller.js';
import {
  COMPAT_METRIC,
  HEARTBEAT_METRIC,
  HEARTBEAT_QUERY,
  Inspector,
  ruleHash,
  type InspectorOptions,
} from './inspector.js';

const T0 = Date.UTC(2026, 0, 1);
const SEC = 1000;
const NODES: NodeInfo[] = Array.from({ length: 4 }, (_, n) => aNode({ name: `n${String(n)}` }));
const signal = new AbortController().signal;

interface RecordingRule {
  record: string;
  expr: string;
  labels: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; interval: string; rules: RecordingRule[] }[];
}

const TIERED = parse(
  generateRules(CATALOGUE, { intervalMs: SEC, tiered: {} }).recording,
) as RuleFile;

/** A recorded rule asked every cycle (not a shared selection): one of its faults is on n1. */
const RECORDED_RULE = 'GpuRowRemappingFailure';

/**
 * XID faults on n0 (79 on GPU 2) and n2 (13 on GPU 5), a failed row remapping on n1's GPU 3;
 * every other GPU reports 0.
 */
function xidSeries(): Series[] {
  const series: Series[] = [];
  for (const node of NODES)
    for (let g = 0; g < 8; g++) {
      const code = node.name === 'n0' && g === 2 ? 79 : node.name === 'n2' && g === 5 ? 13 : 0;
      const labels = {
        node: node.name,
        gpu: String(g),
        pci_bus_id: `0000:0${String(g)}:00.0`,
      };
      series.push({
        labels: { __name__: 'DCGM_FI_DEV_XID_ERRORS', ...labels },
        samples: [{ t: T0 - 10 * SEC, v: code }],
      });
      series.push({
        labels: { __name__: 'DCGM_FI_DEV_ROW_REMAP_FAILURE', ...labels },
        samples: [{ t: T0 - 10 * SEC, v: node.name === 'n1' && g === 3 ? 1 : 0 }],
      });
    }
  return series;
}

/**
 * A store holding `series` that answers rule queries itself (direct mode) and, for recorded mode,
 * the output of the tiered recording rules and their heartbeats, evaluated at `evaluatedAtMs`.
 */
class FakeStore implements MetricsSource {
  readonly asked: string[] = [];
  readonly failing = new Set<string>();
  /** Conditions whose rules are not loaded (no recording, no heartbeat). */
  readonly unloaded = new Set<string>();
  /** Condition -> expr_hash label to write instead of the right one. */
  readonly wrongHash = new Map<string, string>();
  evaluatedAtMs = T0;
  readonly #memory;

  constructor(series: Series[]) {
    this.#memory = createMemorySeriesSource(series);
  }

  query(expr: string, atMs: number): Promise<readonly InstantSample[]> {
    this.asked.push(expr);
    if (this.failing.has(expr)) return Promise.reject(new Error(`down: ${expr}`));
    if (Object.values(SIGNAL_PRESENCE).includes(expr))
      return Promise.resolve(NODES.map((n) => ({ labels: { node: n.name }, value: 1 })));
    if (expr === COMPAT_METRIC || expr === HEARTBEAT_QUERY)
      return Promise.resolve(this.#recorded(expr === HEARTBEAT_QUERY));
    return Promise.resolve(compilePromQL(expr).evaluate(this.#memory, atMs));
  }

  #recorded(heartbeats: boolean): InstantSample[] {
    const out: InstantSample[] = [];
    for (const g of TIERED.groups)
      for (const r of g.rules) {
        const condition = r.labels['condition'] ?? '';
        if (this.unloaded.has(condition)) continue;
        if (r.record === HEARTBEAT_METRIC) {
          if (!heartbeats) continue;
          const labels = { ...r.labels };
          const hash = this.wrongHash.get(condition);
          if (hash !== undefined) labels['expr_hash'] = hash;
          out.push({ labels, value: this.evaluatedAtMs / 1000 });
          continue;
        }
        if (heartbeats) continue;
        for (const s of compilePromQL(r.expr).evaluate(this.#memory, this.evaluatedAtMs))
          out.push({ labels: { ...s.labels, ...r.labels }, value: s.value });
      }
    return out;
  }
}

function inspector(
  store: MetricsSource,
  clock: ManualClock,
  options: Partial<InspectorOptions> = {},
): Inspector {
  return new Inspector({
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    metrics: store,
    clock,
    options: {
      concurrency: 8,
      queryTimeoutMs: 10 * SEC,
      compatibility: false,
      slowRuleMaxPeriodMs: 30 * SEC,
      intervalMs: SEC,
      backgroundSlowRules: false,
      shareSelections: true,
      ruleSource: 'recorded',
      ...options,
    },
  });
}

const xids = (r: Awaited<ReturnType<Inspector['inspect']>>): string[] =>
  r.observations
    .filter((o) => /^X[iI][dD]/.test(o.condition) || o.condition === RECORDED_RULE)
    .map((o) => `${o.node}/${o.condition}/${o.id}/${o.pciBdf}/${String(o.value)}/${o.msg}`)
    .sort();

describe('inspector: recorded mode', () => {
  it('reads the recordings and heartbeats (two queries, plus the shared XID one) instead of one query per rule', async () => {
    const store = new FakeStore(xidSeries());
    const insp = inspector(store, new ManualClock(T0));
    const r = await insp.inspect(NODES, signal);
    const presence = Object.values(SIGNAL_PRESENCE).filter((e) => e !== null);
    const rules = store.asked.filter((e) => !presence.includes(e) && !e.includes('collector'));
    const xid = 'DCGM_FI_DEV_XID_ERRORS != 0';
    assert.deepEqual(rules.sort(), [COMPAT_METRIC, HEARTBEAT_QUERY, xid].sort());
    assert.deepEqual(insp.cycleQueries, [xid, HEARTBEAT_QUERY, COMPAT_METRIC]);
    assert.equal(insp.queriesEveryCycle, insp.queriesPerCycle);
    assert.equal(r.complete, true, r.errors.join('\n'));
    assert.equal(r.failedRules.size, 0);
  });

  it('observes exactly what the direct queries observe on the same series', async () => {
    const store = new FakeStore(xidSeries());
    const direct = await inspector(store, new ManualClock(T0), { ruleSource: 'direct' }).inspect(
      NODES,
      signal,
    );
    const recorded = await inspector(store, new ManualClock(T0)).inspect(NODES, signal);
    assert.equal(xids(direct).length, 3, xids(direct).join(' '));
    assert.ok(xids(recorded).some((o) => o.startsWith(`n1/${RECORDED_RULE}/3/0000:03:00.0/1/`)));
    assert.deepEqual(xids(recorded), xids(direct));
  });

  it('a rule whose recording is not loaded is stale, never healthy, and the error says what to load', async () => {
    const store = new FakeStore(xidSeries());
    store.unloaded.add(RECORDED_RULE);
    const r = await inspector(store, new ManualClock(T0)).inspect(NODES, signal);
    assert.equal(r.failedRules.has(RECORDED_RULE), true);
    assert.equal(r.complete, false);
    assert.match(
      r.errors.join('\n'),
      /1 without a heartbeat.*aegis rules --tiered.*GpuRowRemappingFailure/,
    );
    assert.equal(
      r.observations.some((o) => o.condition === RECORDED_RULE),
      false,
    );
  });

  it('a recording without heartbeats at all (rules generated without --tiered) makes every rule stale', async () => {
    const store = new FakeStore(xidSeries());
    for (const e of CATALOGUE) store.unloaded.add(e.name);
    const r = await inspector(store, new ManualClock(T0)).inspect(NODES, signal);
    // Every rule but the 12 XID rules answered by the shared query.
    assert.equal(r.failedRules.size, CATALOGUE.filter((e) => e.expr !== '').length - 12);
    assert.equal(r.failedRules.has(RECORDED_RULE), true);
  });

  it('a recording of other PromQL than the catalogue is stale (a rule file from another version)', async () => {
    const store = new FakeStore(xidSeries());
    store.wrongHash.set(RECORDED_RULE, ruleHash('DCGM_FI_DEV_ROW_REMAP_FAILURE > 1'));
    const r = await inspector(store, new ManualClock(T0)).inspect(NODES, signal);
    assert.deepEqual([...r.failedRules], [RECORDED_RULE]);
    assert.match(r.errors.join('\n'), /other PromQL than the catalogue/);
    assert.deepEqual(
      r.observations.filter((o) => o.condition === RECORDED_RULE),
      [],
    );
  });

  it('counts an answer as of its evaluation, and a group that stopped evaluating goes stale', async () => {
    const store = new FakeStore(xidSeries());
    const clock = new ManualClock(T0);
    const insp = inspector(store, clock);
    await clock.advance(3 * SEC);
    const fresh = await insp.inspect(NODES, signal);
    assert.equal(fresh.failedRules.size, 0);
    assert.equal(fresh.answeredAtMs.get(RECORDED_RULE), T0, 'evaluated 3 s before the cycle');
    // Its group runs every 1 s: two periods plus the 10 s deadline is 12 s.
    await clock.advance(9 * SEC + 1);
    const late = await insp.inspect(NODES, signal);
    assert.equal(late.failedRules.has(RECORDED_RULE), true);
    assert.match(late.errors.join('\n'), /not evaluated for more than two of their periods/);
    // A rule in a 30 s group is still current 12 s after its evaluation.
    const slow = TIERED.groups.find((g) => g.interval === '30s')?.rules[0]?.labels['condition'];
    assert.ok(slow !== undefined);
    assert.equal(late.failedRules.has(slow), false, slow);
  });

  it('a failed read of the recordings or the heartbeats makes every rule stale', async () => {
    for (const failing of [COMPAT_METRIC, HEARTBEAT_QUERY]) {
      const store = new FakeStore(xidSeries());
      store.failing.add(failing);
      const r = await inspector(store, new ManualClock(T0)).inspect(NODES, signal);
      assert.equal(r.failedRules.size, CATALOGUE.filter((e) => e.expr !== '').length - 12);
      assert.equal(r.complete, false);
      assert.equal(
        r.observations.some((o) => o.condition === RECORDED_RULE),
        false,
        failing,
      );
    }
  });
});

describe('config: inspect.ruleSource', () => {
  it('defaults to direct, accepts recorded, rejects anything else, and reaches the inspector', () => {
    assert.equal(inspectorOptions(ConfigSchema.parse({})).ruleSource, 'direct');
    const recorded = ConfigSchema.parse({ inspect: { ruleSource: 'recorded' } });
    assert.equal(inspectorOptions(recorded).ruleSource, 'recorded');
    assert.throws(() => ConfigSchema.parse({ inspect: { ruleSource: 'alerts' } }), /ruleSource/);
  });
});

describe('inspector: presence period', () => {
  it('asks presence at most every presenceIntervalMs, and its answer stays usable in between', async () => {
    const store = new FakeStore(xidSeries());
    const clock = new ManualClock(T0);
    const insp = inspector(store, clock, {
      backgroundPresence: true,
      presenceIntervalMs: 5 * SEC,
      queryTimeoutMs: SEC,
    });
    const dcgm = SIGNAL_PRESENCE['dcgm-exporter'] as string;
    const askedAt: number[] = [];
    for (let t = 0; t < 12; t++) {
      const before = store.asked.filter((e) => e === dcgm).length;
      store.evaluatedAtMs = clock.now();
      const r = await insp.inspect(NODES, signal);
      await new Promise((resolve) => setImmediate(resolve));
      if (store.asked.filter((e) => e === dcgm).length > before) askedAt.push(t);
      assert.equal(r.failedSignals.size, 0, `t=${String(t)}: presence expired`);
      assert.equal(r.complete, true, `t=${String(t)}: ${r.errors.join(' ')}`);
      await clock.advance(SEC);
    }
    // The first cycle asks its own; the background runs then start 5 s apart.
    assert.deepEqual(askedAt, [0, 1, 6, 11]);
  });

  it('a failed presence run makes its signals stale at the next cycle, whatever the period', async () => {
    const store = new FakeStore(xidSeries());
    const clock = new ManualClock(T0);
    const insp = inspector(store, clock, {
      backgroundPresence: true,
      presenceIntervalMs: 5 * SEC,
      queryTimeoutMs: SEC,
    });
    await insp.inspect(NODES, signal);
    await clock.advance(SEC);
    await insp.inspect(NODES, signal); // background run at T0 + 1 s
    await new Promise((resolve) => setImmediate(resolve));
    for (const e of Object.values(SIGNAL_PRESENCE)) if (e !== null) store.failing.add(e);
    let t = 1;
    let r = await insp.inspect(NODES, signal);
    while (r.failedSignals.size === 0 && t < 30) {
      await clock.advance(SEC);
      t++;
      r = await insp.inspect(NODES, signal);
      await new Promise((resolve) => setImmediate(resolve));
    }
    // The run at T0 + 6 s fails in the background: the next cycle is stale (the last good answer
    // is 6 s old, well within 2 × 5 s + 1 s, but a failed answer is never used).
    assert.equal(t, 7);
  });
});
