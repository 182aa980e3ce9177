/**
 * The detection cases every metrics backend must answer the same way (test/prometheus/ runs them
 * on a real Prometheus, test/victoriametrics/ on a real VictoriaMetrics fed by Prometheus's
 * remote write). A real Prometheus scrapes the simulator's exporter server (6 nodes, 1 s) with
 * the generated recording rules loaded (evaluation 1 s). For every entry with PromQL (`expr`, or
 * `ksmExpr` for the Kubernetes-signal ones), its fault is injected on one node (default device),
 * and the daemon's real inspection path (Inspector + the HTTP PromClient, pointed at the backend)
 * must observe it for that node and device within two scrape intervals of the scrape that made
 * it visible (plus the backend's ingestion lag); compatibility mode must see it through
 * `aegis_node_status_condition` one evaluation later. Entries needing history older than the run
 * (`offset`, long `changes`) run against a second store fed with the simulator's timeline
 * (Prometheus: `promtool tsdb create-blocks-from openmetrics`; VictoriaMetrics: its import API).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { CATALOGUE, metricNamesOf, SIGNAL_PRESENCE } from '../../src/catalogue/index.js';
import type { NodeReport } from '../../src/cli/commands/inspect.js';
import { runCliCaptured, type CliRun } from '../../src/cli/main.js';
import type { CatalogueEntry, Signal } from '../../src/catalogue/types.js';
import { ManualClock, systemClock, type Clock } from '../../src/core/clock.js';
import type { Observation } from '../../src/engine/condition-tracker.js';
import { Inspector, type Inspection } from '../../src/engine/inspector.js';
import type { MetricsSource } from '../../src/prom/metrics-source.js';
import { createPromClient, type PromFlavor } from '../../src/prom/prom-client.js';
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
  type PrometheusOptions,
  type PrometheusServer,
} from './prometheus-harness.js';

/** A store the detection cases run against, always behind a real Prometheus that scrapes. */
export interface DetectionBackend {
  /** For test names: `a real Prometheus`, `a real VictoriaMetrics`. */
  readonly name: string;
  /** `prometheus.flavor` the daemon is configured with for it. */
  readonly flavor: PromFlavor;
  /**
   * Starts a real Prometheus with `opts` (scrapes, rules) and the store it feeds; `queryUrl` is
   * what `prometheus.url` names (Prometheus itself, or the store it remote-writes to).
   */
  start(opts: PrometheusOptions): Promise<RunningBackend>;
  /** Starts a store holding `history` (OpenMetrics text with timestamps in seconds, `# EOF`). */
  startWithHistory(history: string): Promise<{ queryUrl: string; stop(): Promise<void> }>;
  /**
   * How much later than Prometheus the store may serve a sample Prometheus scraped (0 for
   * Prometheus; remote-write batching and the store's own flush for the others).
   */
  readonly ingestLagMs: number;
}

/** A started backend. */
export interface RunningBackend {
  /** The Prometheus that scrapes (targets, rule health). */
  readonly prom: PrometheusServer;
  readonly queryUrl: string;
  /**
   * Resolves once the store serves every target's scrape that started at or after `sinceMs`
   * (at once on Prometheus, which scraped it; within `ingestLagMs` on a store fed by remote write).
   */
  caughtUp(sinceMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** The real Prometheus itself as the backend. */
export const PROMETHEUS_BACKEND: DetectionBackend = {
  name: 'a real Prometheus',
  flavor: 'prometheus',
  ingestLagMs: 0,
  start: async (opts) => {
    const prom = await startPrometheus(opts);
    return { prom, queryUrl: prom.url, caughtUp: async () => {}, stop: () => prom.stop() };
  },
  startWithHistory: async (history) => {
    const prom = await startPrometheus({ backfill: history });
    return { queryUrl: prom.url, stop: () => prom.stop() };
  },
};

const SCRAPE_MS = 1000;
/**
 * Nodes of the simulated fleet: one fault per node per batch, so the every-rule test takes
 * ceil(rules / NODES) batches of up to ~3 scrapes (plus the store's lag) each.
 */
const NODES = 20;
const MIN = 60_000;
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

/**
 * Every catalogue rule detected on its node and device through `backend` (live), and the rules
 * needing older history on a store fed with it.
 */
export function detectionCases(backend: DetectionBackend): void {
  describe(`detection on ${backend.name} scraping the simulator`, () => {
    let world: SimWorld;
    let prom: PrometheusServer;
    let store: RunningBackend;
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
      store = await backend.start({
        scrapeTargets: simExporterTargets(exporters.url),
        scrapeIntervalMs: SCRAPE_MS,
        ruleFiles: [rulesFile],
      });
      cleanup.unshift(() => store.stop());
      prom = store.prom;
      const metrics = createPromClient({ url: store.queryUrl, flavor: backend.flavor });
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
      await waitFor(
        async () => (await inspect(direct)).staleByNode.size === 0,
        15_000 + backend.ingestLagMs,
        { what: 'every signal present' },
      );
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

    /** Longest poll of both inspectors in the every-rule test (the resolution of its lags). */
    let slowestPollMs = 0;

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
        else if (p.directMs - p.visibleMs > 2 * SCRAPE_MS + backend.ingestLagMs + slowestPollMs) {
          problems.push(
            `${what}: observed ${String(p.directMs - p.visibleMs)} ms after it became visible`,
          );
        }
        if (p.compatMs === undefined)
          problems.push(`${what}: not seen through aegis_node_status_condition`);
        else if (
          p.visibleMs !== undefined &&
          p.compatMs - p.visibleMs > 3 * SCRAPE_MS + backend.ingestLagMs + slowestPollMs
        ) {
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
        `${String(probes.length)} faults; slowest poll ${String(slowestPollMs)} ms; max lag after visible: direct ` +
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
        Date.now() - t0 < 10 * SCRAPE_MS + backend.ingestLagMs &&
        probes.some((p) => p.directMs === undefined || p.compatMs === undefined)
      ) {
        await noteVisibility(probes, t0);
        const atMs = Date.now();
        const [d, c] = await Promise.all([inspect(direct), inspect(compat)]);
        // A fault that turned visible just after `atMs` is seen one poll later: the lag can be
        // measured no finer than the poll (a whole inspection; seconds on a slower store).
        slowestPollMs = Math.max(slowestPollMs, Date.now() - atMs + 100);
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

  describe(`history rules on ${backend.name} fed with the simulator's timeline`, () => {
    const entries = CATALOGUE.filter((e) => HISTORY[e.name] !== undefined);
    let store: { queryUrl: string; stop(): Promise<void> } | undefined;
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
      store = await backend.startWithHistory(
        openMetricsHistory(parts, metrics, { startMs, endMs, stepMs: 30_000 }),
      );
    });

    after(async () => {
      await store?.stop();
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
          metrics: createPromClient({ url: store?.queryUrl ?? '', flavor: backend.flavor }),
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
}

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
const HEALTHY = 'gpu-node-0001';
const FAULTY = 'gpu-node-0002';
const SILENT = 'gpu-node-0003';
const NPD = 'gpu-node-0004';

function inspectCli(...args: string[]): Promise<CliRun> {
  return runCliCaptured(['inspect', ...args]);
}

/** The first sample's value of `expr` now (NaN when empty), through the daemon's client. */
function instantOf(metrics: MetricsSource): (expr: string) => Promise<number> {
  const signal = new AbortController().signal;
  return async (expr) => (await metrics.query(expr, Date.now(), signal))[0]?.value ?? Number.NaN;
}

// ---------------------------------------------------------------- aegis inspect

/**
 * `aegis inspect` against `backend` scraping the simulator's exporters (the same exposition the
 * exporters serve): the command line end to end, JSON and text. A healthy node stays healthy; a
 * GPU fault is seen on its node and device; a node-problem-detector problem is seen as its
 * catalogue condition; an exporter that falls silent on a node makes its signal stale there and
 * raises nothing but the rule made to notice it.
 */
export function inspectCases(backend: DetectionBackend): void {
  describe(`aegis inspect against ${backend.name}`, () => {
    let world: SimWorld;
    let url: string;
    /** `--prometheus URL --config FILE` (the config names the backend's flavor). */
    let target: string[];
    let instant: (expr: string) => Promise<number>;
    const cleanup: (() => Promise<void>)[] = [];

    before(async () => {
      world = createSimWorld({ nodes: 4, seed: 5, catalogue: CATALOGUE, clock: systemClock });
      const exporters = await startExporterServer({ fleet: world, port: 0 });
      cleanup.unshift(() => exporters.close());
      const store = await backend.start({
        scrapeTargets: simExporterTargets(exporters.url),
        scrapeIntervalMs: SCRAPE_MS,
      });
      cleanup.unshift(() => store.stop());
      url = store.queryUrl;
      const dir = await mkdtemp(join(tmpdir(), 'aegis-inspect-'));
      cleanup.unshift(() => rm(dir, { recursive: true, force: true }));
      await writeFile(join(dir, 'aegis.yaml'), `prometheus:\n  flavor: ${backend.flavor}\n`);
      target = ['--prometheus', url, '--config', join(dir, 'aegis.yaml')];
      instant = instantOf(createPromClient({ url, flavor: backend.flavor }));
      // Ready: every exporter's presence query names every node.
      const presence = Object.values(SIGNAL_PRESENCE).filter((q): q is string => q !== null);
      await waitFor(
        async () => {
          for (const q of presence) if ((await instant(`count(${q})`)) !== 4) return false;
          return true;
        },
        30_000 + backend.ingestLagMs,
        { what: 'every exporter scraped for every node' },
      );
    });

    after(async () => {
      for (const done of cleanup) await done();
    });

    it('sees every node healthy before anything happens', async () => {
      const r = await inspectCli(...target, '--json');
      assert.equal(r.code, 0, r.err);
      const nodes = JSON.parse(r.out) as NodeReport[];
      assert.deepEqual(
        nodes.map((n) => [n.node, n.conditions.length, n.stale.length]),
        [
          [HEALTHY, 0, 0],
          [FAULTY, 0, 0],
          [SILENT, 0, 0],
          [NPD, 0, 0],
        ],
      );
    });

    it('sees a fault on its node and device, an NPD problem, and a silent exporter as stale', async () => {
      const atMs = Date.now();
      world.faults.injectFault({ condition: 'Xid79GPULost', node: FAULTY, device: '3', atMs });
      world.faults.injectFault({ condition: 'NpdReadonlyFilesystem', node: NPD, atMs });
      world.metrics.staleExporter(SILENT, 'dcgm-exporter');
      // Two scrapes: the new samples, and the silent node's series marked stale by Prometheus.
      await waitFor(
        async () =>
          (await instant(`count(DCGM_FI_DEV_XID_ERRORS{node="${FAULTY}"} == 79)`)) === 1 &&
          Number.isNaN(await instant(`count(DCGM_FI_DEV_GPU_TEMP{node="${SILENT}"})`)),
        15_000 + backend.ingestLagMs,
        { what: `the fault and the silence visible in ${backend.name}` },
      );
      await delay(SCRAPE_MS);

      const r = await inspectCli(...target, '--json');
      assert.equal(r.code, 0, r.err);
      const nodes = new Map((JSON.parse(r.out) as NodeReport[]).map((n) => [n.node, n]));

      assert.deepEqual(nodes.get(HEALTHY), { node: HEALTHY, conditions: [], stale: [] });

      const faulty = nodes.get(FAULTY);
      assert.ok(faulty);
      assert.deepEqual(
        faulty.conditions.map((c) => [c.name, c.device, c.value, c.pending]),
        [['Xid79GPULost', '3', 79, false]],
      );
      assert.ok(Date.parse(faulty.conditions.at(0)?.since ?? '') <= Date.now());
      assert.deepEqual(faulty.stale, []);

      const silent = nodes.get(SILENT);
      assert.ok(silent);
      assert.deepEqual(
        silent.stale.map((s) => s.signal),
        ['dcgm-exporter'],
      );
      assert.match(silent.stale.at(0)?.reason ?? '', /exporter silent on the node/);
      assert.deepEqual(
        silent.conditions.map((c) => c.name),
        ['GpuMetricsHang'],
      );

      assert.deepEqual(
        nodes.get(NPD)?.conditions.map((c) => [c.name, c.value]),
        [['NpdReadonlyFilesystem', 1]],
      );
      assert.deepEqual(nodes.get(NPD)?.stale, []);

      // The text form, for one node.
      const text = await inspectCli(...target, '--node', FAULTY);
      assert.equal(text.code, 0, text.err);
      assert.match(
        text.out,
        /^gpu-node-0002\n {2}Xid79GPULost {2}device=3 {2}value=79 {2}since \S+Z$/m,
      );
      assert.doesNotMatch(text.out, /gpu-node-0001/);
    });
  });
}
