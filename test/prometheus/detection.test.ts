/**
 * The key tier: every catalogue PromQL runs on a real Prometheus 2.42. Prometheus scrapes the
 * simulator's exporter server (6 nodes, 1 s) with the generated recording rules loaded
 * (evaluation 1 s). For every entry with PromQL (`expr`, or `ksmExpr` for the Kubernetes-signal
 * ones), its fault is injected on one node (default device), and the daemon's real inspection
 * path (Inspector + the HTTP PromClient) must observe it for that node and device within two
 * scrape intervals of the scrape that made it visible; compatibility mode must see it through `aegis_node_status_condition` one evaluation later.
 * Entries needing history older than the run (`offset`, long `changes`) run against a second
 * Prometheus fed by `promtool tsdb create-blocks-from openmetrics` from the simulator's timeline.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { CATALOGUE, metricNamesOf, SIGNAL_PRESENCE } from '../../src/catalogue/index.js';
import type { CatalogueEntry, Signal } from '../../src/catalogue/types.js';
import { ManualClock, systemClock, type Clock } from '../../src/core/clock.js';
import type { Observation } from '../../src/engine/condition-tracker.js';
import { Inspector, type Inspection } from '../../src/engine/inspector.js';
import { createPromClient } from '../../src/prom/prom-client.js';
import { generateRules, sourceExpr } from '../../src/prom/rules.js';
import { startExporterServer } from '../../src/sim/exporter-server.js';
import { formatSample } from '../../src/sim/exposition.js';
import { exporterOf } from '../../src/sim/family.js';
import { createSimWorld, type SimWorld } from '../../src/sim/sim-world.js';
import {
  ruleStatus,
  simExporterTargets,
  startPrometheus,
  targetStatus,
  waitFor,
  type PrometheusServer,
} from '../helpers/prometheus-harness.js';

const SCRAPE_MS = 1000;
const NODES = 6;
const MIN = 60_000;
/** How long one batch may take before its missing observations are reported as failures. */
const BATCH_DEADLINE_MS = 10 * SCRAPE_MS;
const signal = new AbortController().signal;
const NO_PRESENCE = Object.fromEntries(
  Object.keys(SIGNAL_PRESENCE).map((s) => [s, null]),
) as Record<Signal, null>;

/** How far back a history scenario starts before the backfilled end. */
const HISTORY_SPAN_MS = 3 * 60 * MIN;

/**
 * Entries whose PromQL needs history older than a test run, with the simulator scenario that
 * produces it on `node`, played on a manual clock up to `endMs`, then backfilled.
 */
const HISTORY: Readonly<
  Record<string, (w: SimWorld, clock: ManualClock, node: string, endMs: number) => Promise<void>>
> = {
  // `offset 10m`: the disable label existed 10 minutes ago and is gone now. Backfill writes no
  // staleness markers, so the label must end more than the 5 m lookback before the end.
  NodeInhibitAll: async (w, clock, node, endMs) => {
    await clock.advanceTo(endMs - 40 * MIN);
    w.cluster.setLabel(node, 'aegis.io/disable', 'true');
    await clock.advanceTo(endMs - 7 * MIN);
    w.cluster.setLabel(node, 'aegis.io/disable', null);
  },
  // `changes(...[2h]) >= 4`: two outages (4 Ready changes) within the last two hours.
  NodeFrequentDown: async (w, clock, node, endMs) => {
    for (const startsAgo of [100 * MIN, 40 * MIN]) {
      await clock.advanceTo(endMs - startsAgo);
      const id = w.faults.injectFault({ condition: 'NodeFrequentDown', node, atMs: clock.now() });
      await clock.advance(5 * MIN);
      w.faults.clearFault(id, clock.now());
    }
  },
};

/**
 * Every entry with PromQL. Kubernetes-signal entries (NodeNotReady, NodeCordon) are read from
 * the node object by the inspector and from their `ksmExpr` by the recording rules.
 */
/**
 * Entries whose fault is in the series Prometheus makes itself (`up`, `scrape_samples_scraped`),
 * which an exporter page cannot carry: test/prometheus/real-exporters.test.ts makes a served page
 * really unparsable instead.
 */
const SCRAPE_HEALTH = new Set(['ExporterUnparsable']);

const liveEntries = CATALOGUE.filter(
  (e) => sourceExpr(e) !== '' && HISTORY[e.name] === undefined && !SCRAPE_HEALTH.has(e.name),
);
const nodeName = (i: number): string => `gpu-node-${String(i + 1).padStart(4, '0')}`;
// Every rule asked every cycle (the test bounds detection by scrape intervals); the XID rules
// through their shared selection, as the daemon asks them.
const inspectorOptions = (compatibility: boolean) => ({
  concurrency: 8,
  queryTimeoutMs: 10_000,
  compatibility,
  shareSelections: true,
});

/** One expected detection and what was seen of it. */
interface Probe {
  readonly entry: CatalogueEntry;
  readonly node: string;
  readonly device: string;
  readonly faultId: string;
  /** Exporter paths (scrape jobs) whose next scrape makes the fault visible. */
  readonly jobs: readonly string[];
  visibleMs?: number;
  directMs?: number;
  compatMs?: number;
}

describe('detection on a real Prometheus scraping the simulator', () => {
  let world: SimWorld;
  let prom: PrometheusServer;
  let direct: Inspector;
  let compat: Inspector;
  const failedRules = new Map<string, string>();
  /** Cleanups, run last-in first-out. */
  const cleanup: (() => Promise<void>)[] = [];

  before(async () => {
    world = createSimWorld({ nodes: NODES, seed: 7, catalogue: CATALOGUE, clock: systemClock });
    const exporters = await startExporterServer({ fleet: world, port: 0 });
    cleanup.unshift(() => exporters.close());
    const dir = await mkdtemp(join(tmpdir(), 'aegis-detection-'));
    cleanup.unshift(() => rm(dir, { recursive: true, force: true }));
    const rulesFile = join(dir, 'aegis-recording.rules.yaml');
    await writeFile(rulesFile, generateRules(CATALOGUE).recording);
    prom = await startPrometheus({
      scrapeTargets: simExporterTargets(exporters.url),
      scrapeIntervalMs: SCRAPE_MS,
      ruleFiles: [rulesFile],
    });
    cleanup.unshift(() => prom.stop());
    const metrics = createPromClient({ url: prom.url });
    direct = new Inspector({
      catalogue: CATALOGUE,
      presence: SIGNAL_PRESENCE,
      metrics,
      clock: systemClock,
      options: inspectorOptions(false),
    });
    // Compatibility only: no catalogue query, just aegis_node_status_condition.
    const namesOnly = CATALOGUE.map((e) => ({ ...e, expr: '' }));
    compat = new Inspector({
      catalogue: namesOnly,
      presence: NO_PRESENCE,
      metrics,
      clock: systemClock,
      options: inspectorOptions(true),
    });
    // Ready when every target was scraped, every exporter reports every node, and rules ran since.
    await waitFor(
      async () => (await targetStatus(prom.url)).every((t) => t.health === 'up'),
      30_000,
      { what: 'targets up' },
    );
    await waitFor(async () => (await inspect(direct)).staleByNode.size === 0, 15_000, {
      what: 'every signal present',
    });
    const since = Date.now();
    await waitFor(
      async () => (await ruleStatus(prom.url)).every((r) => r.lastEvaluationMs > since),
      15_000,
      { what: 'rules evaluated' },
    );
  });

  after(async () => {
    for (const done of cleanup) await done();
  });

  async function inspect(inspector: Inspector): Promise<Inspection> {
    const insp = await inspector.inspect(await world.cluster.listNodes(signal), signal);
    for (const name of insp.failedRules)
      failedRules.set(name, insp.errors.find((e) => e.includes(name)) ?? insp.errors.join('; '));
    return insp;
  }

  it('a healthy fleet yields no observation, directly or through the recording rules', async () => {
    const d = await inspect(direct);
    assert.equal(d.failures, 0, d.errors.join('\n'));
    assert.deepEqual(d.observations, []);
    assert.equal(d.staleByNode.size, 0);
    const c = await inspect(compat);
    assert.equal(c.failures, 0, c.errors.join('\n'));
    assert.deepEqual(c.observations, []);
  });

  it(`every catalogue rule (${String(liveEntries.length)}) is detected for its node and device`, async (t) => {
    const probes: Probe[] = [];
    for (let i = 0; i < liveEntries.length; i += NODES) {
      probes.push(...(await runBatch(liveEntries.slice(i, i + NODES))));
    }
    const problems: string[] = [];
    for (const p of probes) {
      const what = `${p.entry.name} on ${p.node}${p.device === '' ? '' : ` (${p.entry.deviceLabel}=${p.device})`}`;
      if (failedRules.has(p.entry.name))
        problems.push(`${what}: query failed: ${failedRules.get(p.entry.name) ?? ''}`);
      else if (p.directMs === undefined)
        problems.push(`${what}: never observed: ${sourceExpr(p.entry)}`);
      else if (p.visibleMs === undefined) problems.push(`${what}: never visible in Prometheus`);
      else if (p.directMs - p.visibleMs > 2 * SCRAPE_MS) {
        problems.push(
          `${what}: observed ${String(p.directMs - p.visibleMs)} ms after it became visible`,
        );
      }
      if (p.compatMs === undefined)
        problems.push(`${what}: not seen through aegis_node_status_condition`);
      else if (p.visibleMs !== undefined && p.compatMs - p.visibleMs > 3 * SCRAPE_MS) {
        problems.push(
          `${what}: compatibility mode saw it ${String(p.compatMs - p.visibleMs)} ms after visible`,
        );
      }
    }
    const maxLag = (at: (p: Probe) => number | undefined): number =>
      Math.round(
        Math.max(
          ...probes.flatMap((p) => {
            const seen = at(p);
            return seen === undefined || p.visibleMs === undefined ? [] : [seen - p.visibleMs];
          }),
        ),
      );
    t.diagnostic(
      `${String(probes.length)} faults; max lag after visible: direct ` +
        `${String(maxLag((p) => p.directMs))} ms, compatibility ${String(maxLag((p) => p.compatMs))} ms`,
    );
    assert.deepEqual(problems, []);
    const bad = (await ruleStatus(prom.url)).filter((r) => r.health !== 'ok');
    assert.deepEqual(
      bad.map((r) => `${r.labels['condition'] ?? r.name}: ${r.lastError}`),
      [],
    );
  });

  /** Injects one fault per node, polls both inspectors until every one is observed, clears them. */
  async function runBatch(entries: readonly CatalogueEntry[]): Promise<Probe[]> {
    const t0 = Date.now();
    const probes = entries.map((entry, i): Probe => {
      const node = nodeName(i);
      const faultId = world.faults.injectFault({ condition: entry.name, node, atMs: t0 });
      const jobs = [...new Set(entry.fault.series.map((c) => exporterOf(c.metric)))];
      return { entry, node, device: world.faults.get(faultId)?.device ?? '', faultId, jobs };
    });
    while (
      Date.now() - t0 < BATCH_DEADLINE_MS &&
      probes.some((p) => p.directMs === undefined || p.compatMs === undefined)
    ) {
      await noteVisibility(probes, t0);
      const atMs = Date.now();
      const [d, c] = await Promise.all([inspect(direct), inspect(compat)]);
      for (const p of probes) {
        const want = (o: Observation): boolean =>
          o.node === p.node &&
          o.condition === p.entry.name &&
          o.id === (p.entry.deviceLabel === '' ? '' : p.device);
        if (p.directMs === undefined && d.observations.some(want)) p.directMs = atMs;
        if (p.compatMs === undefined && c.observations.some(want)) p.compatMs = atMs;
      }
      await delay(100);
    }
    // A scrape that started just before the injection can already carry the fault (the exporter
    // renders after the request arrives): then it is detected before the first scrape that started
    // after t0 has ended. Wait for that scrape, so every probe has its visibility time.
    const settle = Date.now() + 3 * SCRAPE_MS;
    do {
      await noteVisibility(probes, t0);
      if (probes.every((p) => p.visibleMs !== undefined)) break;
      await delay(100);
    } while (Date.now() < settle);
    for (const p of probes) world.faults.clearFault(p.faultId, Date.now());
    return probes;
  }

  /** Visible = end of the first scrape, after injection, of every exporter the fault touches. */
  async function noteVisibility(probes: Probe[], t0: number): Promise<void> {
    const targets = await targetStatus(prom.url);
    for (const p of probes) {
      if (p.visibleMs !== undefined) continue;
      const ends = p.jobs.map((job) => {
        const t = targets.find((x) => x.job === job);
        return t !== undefined && t.lastScrapeMs >= t0
          ? t.lastScrapeMs + t.lastScrapeDurationMs
          : undefined;
      });
      // Kubernetes-object effects with no series (none today) count as visible at once.
      if (ends.every((e) => e !== undefined))
        p.visibleMs = ends.length === 0 ? t0 : Math.max(...ends);
    }
  }
});

describe('history rules on a Prometheus fed by backfill', () => {
  const entries = CATALOGUE.filter((e) => HISTORY[e.name] !== undefined);
  let prom: PrometheusServer | undefined;
  let endMs: number;

  before(async () => {
    endMs = Math.floor((Date.now() - 2 * MIN) / 1000) * 1000;
    const startMs = endMs - HISTORY_SPAN_MS;
    const metrics = [...new Set(entries.flatMap((e) => metricNamesOf(e.expr)))];
    // One simulation per scenario (a manual clock only moves forward); each contributes the
    // series of its own node, and the first one the healthy rest of the fleet.
    const parts: { world: SimWorld; nodes: string[] }[] = [];
    for (const [i, entry] of entries.entries()) {
      const clock = new ManualClock(startMs);
      const world = createSimWorld({ nodes: NODES, seed: 7, catalogue: CATALOGUE, clock });
      await HISTORY[entry.name]?.(world, clock, nodeName(i), endMs);
      await clock.advanceTo(endMs);
      world.sync();
      const rest =
        i === 0 ? world.fleet.nodes.map((n) => n.name).filter((_, k) => k >= entries.length) : [];
      parts.push({ world, nodes: [nodeName(i), ...rest] });
    }
    prom = await startPrometheus({
      backfill: openMetricsHistory(parts, metrics, { startMs, endMs, stepMs: 30_000 }),
    });
  });

  after(async () => {
    await prom?.stop();
  });

  it('every rule whose PromQL needs history older than a run is defined here', () => {
    const needy = CATALOGUE.filter((e) => /\boffset\b/.test(e.expr)).map((e) => e.name);
    assert.deepEqual(
      needy.filter((n) => HISTORY[n] === undefined),
      [],
    );
  });

  for (const entry of entries) {
    it(`${entry.name} is observed at the end of its backfilled scenario, on its node only`, async () => {
      const fixed: Clock = { now: () => endMs, sleep: (ms, s) => systemClock.sleep(ms, s) };
      const inspector = new Inspector({
        catalogue: [entry],
        presence: NO_PRESENCE,
        metrics: createPromClient({ url: prom?.url ?? '' }),
        clock: fixed,
        options: inspectorOptions(false),
      });
      const insp = await inspector.inspect([], signal);
      assert.equal(insp.failures, 0, insp.errors.join('\n'));
      assert.deepEqual(
        insp.observations.map((o) => `${o.node}/${o.condition}`),
        [`${nodeName(entries.indexOf(entry))}/${entry.name}`],
      );
    });
  }
});

/** The simulators' series of `metrics` over a window, as backfillable OpenMetrics text. */
function openMetricsHistory(
  parts: readonly { world: SimWorld; nodes: readonly string[] }[],
  metrics: readonly string[],
  window: { startMs: number; endMs: number; stepMs: number },
): string {
  const lines: string[] = [];
  // OpenMetrics wants each family contiguous and each series in time order: family, series, time.
  for (const metric of metrics) {
    for (const { world, nodes } of parts) {
      for (const node of nodes) {
        for (let t = window.startMs; t <= window.endMs; t += window.stepMs) {
          world.store.forEachAt(metric, t, node, (s) => {
            lines.push(`${formatSample(metric, s, false).trimEnd()} ${String(t / 1000)}`);
          });
        }
      }
    }
  }
  return `${lines.join('\n')}\n# EOF\n`;
}
