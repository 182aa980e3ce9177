/**
 * The Grafana dashboards in deploy/grafana/, checked without a Grafana server: JSON shape
 * (datasource input, unique ids, targets, units), every target parsed with the Prometheus grammar
 * and naming only metrics that exist, then every target run against a real Prometheus that
 * scrapes a running daemon's /metrics (the real engine remediating faults on the simulator,
 * first in dry-run, then live) and the simulator's exporters with the generated rules loaded:
 * each must return series carrying the labels its legend uses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parser } from '@prometheus-io/lezer-promql';
import { CATALOGUE, metricNamesOf, SIGNAL_PRESENCE } from '../../src/catalogue/index.js';
import type { CatalogueEntry } from '../../src/catalogue/types.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { systemClock } from '../../src/core/clock.js';
import { createEngine, runLoop } from '../../src/daemon.js';
import { DEFAULT_BRIDGE_OPTIONS } from '../../src/engine/bridge.js';
import { silentLogger } from '../../src/engine/logger.js';
import { startMetricsServer } from '../../src/metrics/http-server.js';
import { createMetrics, metricNames, type Metrics } from '../../src/metrics/metrics.js';
import { createPromClient } from '../../src/prom/prom-client.js';
import { generateRules, RULE_FILES } from '../../src/prom/rules.js';
import { startExporterServer } from '../../src/sim/exporter-server.js';
import { createSimWorld } from '../../src/sim/sim-world.js';
import {
  simExporterTargets,
  startPrometheus,
  waitFor,
  type PrometheusServer,
} from '../helpers/prometheus-harness.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FILES = ['aegis-overview.json', 'aegis-fleet.json'] as const;
const DS_UID = '${DS_PROMETHEUS}';
/** Grafana's variables, as the test substitutes them. */
const VARIABLES: Readonly<Record<string, string>> = {
  $__rate_interval: '30s',
  $__interval: '5s',
  $__range: '10m',
  $node: '.*',
};
const signal = new AbortController().signal;

interface Target {
  refId: string;
  expr: string;
  legendFormat?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  fieldConfig?: { defaults?: { unit?: string } };
}
interface Dashboard {
  uid: string;
  title: string;
  __inputs: { name: string; type: string; pluginId: string }[];
  panels: Panel[];
  templating: { list: { name: string; datasource?: { uid?: string }; query?: unknown }[] };
}

const dashboards = FILES.map((f) => ({
  file: f,
  json: JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', f), 'utf8')) as Dashboard,
}));
const queryPanels = (d: Dashboard): Panel[] => d.panels.filter((p) => p.type !== 'row');
const allTargets = dashboards.flatMap(({ file, json }) =>
  queryPanels(json).flatMap((p) => (p.targets ?? []).map((t) => ({ file, panel: p, target: t }))),
);

function substitute(expr: string): string {
  return Object.entries(VARIABLES).reduce((e, [k, v]) => e.replaceAll(k, v), expr);
}

function hasSyntaxError(expr: string): boolean {
  let bad = false;
  parser.parse(expr).iterate({
    enter: (n) => {
      if (n.type.isError) bad = true;
    },
  });
  return bad;
}

describe('dashboard JSON', () => {
  it('dashboards have distinct uids', () => {
    assert.equal(new Set(dashboards.map((d) => d.json.uid)).size, dashboards.length);
  });

  for (const { file, json } of dashboards) {
    it(`${file}: a DS_PROMETHEUS datasource input used by every panel, target and variable`, () => {
      assert.deepEqual(
        json.__inputs.map((i) => [i.name, i.type, i.pluginId]),
        [['DS_PROMETHEUS', 'datasource', 'prometheus']],
      );
      for (const p of queryPanels(json)) {
        assert.equal(p.datasource?.uid, DS_UID, `panel ${p.title}`);
        for (const t of p.targets ?? [])
          assert.equal(t.datasource?.uid, DS_UID, `${p.title} ${t.refId}`);
      }
      for (const v of json.templating.list)
        assert.equal(v.datasource?.uid, DS_UID, `variable ${v.name}`);
    });

    it(`${file}: unique panel ids, a grid inside 24 columns, targets with unique refIds, units`, () => {
      const ids = json.panels.map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length, 'duplicate panel ids');
      for (const p of json.panels) {
        assert.ok(
          p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24,
          `${p.title} grid`,
        );
        if (p.type === 'row') continue;
        assert.ok((p.targets ?? []).length > 0, `${p.title} has no target`);
        const refs = (p.targets ?? []).map((t) => t.refId);
        assert.equal(new Set(refs).size, refs.length, `${p.title} refIds`);
        assert.ok((p.fieldConfig?.defaults?.unit ?? '') !== '', `${p.title} has no unit`);
      }
    });
  }

  it('every target parses with the Prometheus grammar', () => {
    const bad = allTargets.filter(({ target }) => hasSyntaxError(substitute(target.expr)));
    assert.deepEqual(
      bad.map(({ file, panel }) => `${file}: ${panel.title}`),
      [],
    );
  });

  it('the overview reads only metrics the daemon defines', () => {
    const defined = new Set(metricNames(createMetrics()));
    const base = (name: string): string => name.replace(/_(bucket|count|sum)$/, '');
    const unknown = allTargets
      .filter(({ file }) => file === 'aegis-overview.json')
      .flatMap(({ panel, target }) =>
        metricNamesOf(substitute(target.expr))
          .filter((m) => !defined.has(base(m)))
          .map((m) => `${panel.title}: ${m}`),
      );
    assert.deepEqual(unknown, []);
  });
});

/** Conditions the test remediates end to end; raised and cleared at once (forMs/clearForMs 0). */
const FAST = new Set(['MemoryPressure', 'Xid79GPULost']);
const FAST_JOB = { pendingMs: 100, durationMs: 300 };

describe('every dashboard query returns series on a Prometheus scraping a running daemon', () => {
  let prom: PrometheusServer;
  /** Cleanups, run last-in first-out. */
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    const world = createSimWorld({
      nodes: 6,
      seed: 7,
      catalogue: CATALOGUE,
      clock: systemClock,
      bootTimeMs: 1000,
      jobs: {
        diagnose_node: FAST_JOB,
        healthcheck_node: FAST_JOB,
        remedy_node: FAST_JOB,
        restart_node: FAST_JOB,
        shutdown_node: FAST_JOB,
        repair_node: FAST_JOB,
      },
    });
    const exporters = await startExporterServer({ fleet: world, port: 0 });
    closers.unshift(() => exporters.close());
    const metrics = createMetrics();
    const daemon = await startMetricsServer({
      metrics,
      port: 0,
      host: '127.0.0.1',
      ready: () => true,
    });
    closers.unshift(() => daemon.close());
    const dir = await mkdtemp(join(tmpdir(), 'aegis-dashboards-'));
    closers.unshift(() => rm(dir, { recursive: true, force: true }));
    const rules = generateRules(CATALOGUE);
    const ruleFiles = [join(dir, RULE_FILES.recording), join(dir, RULE_FILES.alerting)];
    await writeFile(ruleFiles[0] ?? '', rules.recording);
    await writeFile(ruleFiles[1] ?? '', rules.alerting);
    prom = await startPrometheus({
      scrapeTargets: [...simExporterTargets(exporters.url), { job: 'aegis', urls: [daemon.url] }],
      scrapeIntervalMs: 1000,
      ruleFiles,
    });
    closers.unshift(() => prom.stop());
    await waitFor(async () => (await query('up == 1')).length === 7, 30_000, {
      what: 'every target up',
    });

    const now = Date.now();
    const steps: string[] = [];
    const catalogue: CatalogueEntry[] = CATALOGUE.map((e) =>
      FAST.has(e.name) ? { ...e, forMs: 0, clearForMs: 0 } : e,
    );
    const engineOf = (dryRun: boolean) =>
      createEngine({
        cluster: world.cluster,
        metricsSource: createPromClient({ url: prom.url }),
        clock: systemClock,
        config: ConfigSchema.parse({
          prometheus: { url: prom.url, timeoutMs: '5s' },
          // Longer than a scrape plus a cycle: a remedy is judged on data scraped after it.
          sop: { settleMs: '5s' },
          safety: {
            dryRun,
            maxCordonedFraction: 0.2,
            maxPerRack: 8,
            maxPerLeaf: 8,
            nodeCooldownMs: 0,
          },
          leaderElection: { enabled: false },
        }),
        catalogue,
        presence: SIGNAL_PRESENCE,
        priorityOf: () => (name) => catalogue.find((e) => e.name === name)?.priority ?? 999,
        metrics,
        log: silentLogger,
        onStep: (e) =>
          steps.push(
            `${String(e.atMs - now)} ${e.node} ${e.action} ${e.status} ${e.message ?? ''}`,
          ),
        bridgeOptions: { ...DEFAULT_BRIDGE_OPTIONS, jobPollMs: 200, drainTimeoutMs: 5_000 },
      });
    const run = (dryRun: boolean): { stop: () => Promise<void> } => {
      const ctl = new AbortController();
      const loop = runLoop({
        engine: engineOf(dryRun),
        clock: systemClock,
        intervalMs: 1000,
        metrics,
        log: silentLogger,
        signal: ctl.signal,
      });
      return {
        stop: async () => {
          ctl.abort();
          await loop;
        },
      };
    };

    // Memory pressure (cordon until it clears, then the recovery loop: healthcheck, uncordon,
    // ticket closed) and PCIe replays (CanIgnore: recorded and alerted, never acted on); one
    // failed node listing (a run-time error).
    const pressure = world.faults.injectFault({
      condition: 'MemoryPressure',
      node: 'gpu-node-0001',
      atMs: now,
    });
    world.faults.injectFault({
      condition: 'GpuPcieReplayErrors',
      node: 'gpu-node-0003',
      atMs: now,
    });
    world.cluster.failNext('listNodes');
    // First as a dry-run daemon, then live (the usual roll-out), on the same metrics.
    const shadow = run(true);
    await waitFor(async () => (await sum(metrics, 'aegis_dry_run_steps_total')) > 0, 30_000, {
      what: 'dry-run plans',
    });
    await shadow.stop();
    const live = run(false);
    closers.unshift(live.stop);
    await waitFor(() => steps.some((s) => s.includes('gpu-node-0001 Cordon Succeeded')), 30_000, {
      what: 'gpu-node-0001 cordoned',
    });
    // XID 79 now: its cordon waits for the cordon budget of 1 node (a held step).
    world.faults.injectFault({
      condition: 'Xid79GPULost',
      node: 'gpu-node-0002',
      atMs: Date.now(),
    });
    await waitFor(async () => (await sum(metrics, 'aegis_safety_held_total')) > 0, 30_000, {
      what: 'a held step',
    });
    // The pressure goes away: the recovery loop uncordons and closes the ticket.
    world.faults.clearFault(pressure, Date.now());
    await waitFor(async () => (await sum(metrics, 'aegis_selfheal_seconds_count')) > 0, 60_000, {
      what: 'a ticket closed',
    }).catch((err: unknown) => {
      throw new Error(`${String(err)}\nsteps:\n${steps.join('\n')}`, { cause: err });
    });
    // Series born at their first observation need a few samples before increase() sees them.
    await waitFor(
      async () =>
        (await query('count_over_time(aegis_selfheal_seconds_count[1m]) >= 3')).length > 0,
      15_000,
      {
        what: 'the resolved ticket scraped',
      },
    );
  });

  after(async () => {
    for (const close of closers) await close();
  });

  async function query(
    expr: string,
  ): Promise<readonly { labels: Readonly<Record<string, string>> }[]> {
    return createPromClient({ url: prom.url }).query(expr, Date.now(), signal);
  }

  for (const { file, panel, target } of allTargets) {
    it(`${file}: ${panel.title} (${target.refId})`, async () => {
      const result = await query(substitute(target.expr));
      assert.ok(result.length > 0, `no series for ${target.expr}`);
      // A legend label may be absent on some series (Prometheus drops empty labels, e.g. `id`
      // of node-wide conditions) but must exist on at least one: a misspelt label never does.
      const legendLabels = [...(target.legendFormat ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map(
        (m) => m[1] ?? '',
      );
      for (const l of legendLabels) {
        assert.ok(
          result.some((s) => l in s.labels),
          `legend label ${l} on none of ${JSON.stringify(result.map((s) => s.labels))}`,
        );
      }
    });
  }
});

/** Sum of a metric's samples in the daemon's registry (`_count` names a histogram's count). */
async function sum(metrics: Metrics, name: string): Promise<number> {
  const base = name.replace(/_count$/, '');
  const got = await metrics.registry.getSingleMetric(base)?.get();
  return (got?.values ?? [])
    .filter((v) => ((v as { metricName?: string }).metricName ?? base) === name)
    .reduce((a, v) => a + v.value, 0);
}
