/**
 * `aegis inspect` against a real Prometheus scraping the simulator's exporters (the same
 * exposition the exporters serve: dcgm-exporter, node-exporter, kube-state-metrics, ipmi,
 * gpfs, the node checks and node-problem-detector): the command line end to end, JSON and text.
 * A healthy node stays healthy; a GPU fault is seen on its node and device; a node-problem-detector
 * problem is seen as its catalogue condition; an exporter that falls silent on a node makes its
 * signal stale there and raises nothing but the rule made to notice it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { CATALOGUE, SIGNAL_PRESENCE } from '../../src/catalogue/index.js';
import type { NodeReport } from '../../src/cli/commands/inspect.js';
import { runCli, type CliOutput } from '../../src/cli/main.js';
import { systemClock } from '../../src/core/clock.js';
import { startExporterServer } from '../../src/sim/exporter-server.js';
import { createSimWorld, type SimWorld } from '../../src/sim/sim-world.js';
import {
  simExporterTargets,
  startPrometheus,
  waitFor,
  type PrometheusServer,
} from '../helpers/prometheus-harness.js';

const SCRAPE_MS = 1000;
const HEALTHY = 'gpu-node-0001';
const FAULTY = 'gpu-node-0002';
const SILENT = 'gpu-node-0003';
const NPD = 'gpu-node-0004';

async function inspectCli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const output: CliOutput = {
    writeOut: (t) => {
      out += t;
    },
    writeErr: (t) => {
      err += t;
    },
  };
  const code = await runCli(['node', 'aegis', 'inspect', ...args], output);
  return { code, out, err };
}

async function instant(url: string, expr: string): Promise<number> {
  const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
  return Number(body.data.result[0]?.value[1] ?? 'NaN');
}

describe('aegis inspect against a real Prometheus', () => {
  let world: SimWorld;
  let prom: PrometheusServer;
  const cleanup: (() => Promise<void>)[] = [];

  before(async () => {
    world = createSimWorld({ nodes: 4, seed: 5, catalogue: CATALOGUE, clock: systemClock });
    const exporters = await startExporterServer({ fleet: world, port: 0 });
    cleanup.unshift(() => exporters.close());
    prom = await startPrometheus({
      scrapeTargets: simExporterTargets(exporters.url),
      scrapeIntervalMs: SCRAPE_MS,
    });
    cleanup.unshift(() => prom.stop());
    // Ready: every exporter's presence query names every node.
    const presence = Object.values(SIGNAL_PRESENCE).filter((q): q is string => q !== null);
    await waitFor(
      async () => {
        for (const q of presence) if ((await instant(prom.url, `count(${q})`)) !== 4) return false;
        return true;
      },
      30_000,
      { what: 'every exporter scraped for every node' },
    );
  });

  after(async () => {
    for (const done of cleanup) await done();
  });

  it('sees every node healthy before anything happens', async () => {
    const r = await inspectCli('--prometheus', prom.url, '--json');
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
        (await instant(prom.url, `count(DCGM_FI_DEV_XID_ERRORS{node="${FAULTY}"} == 79)`)) === 1 &&
        Number.isNaN(await instant(prom.url, `count(DCGM_FI_DEV_GPU_TEMP{node="${SILENT}"})`)),
      15_000,
      { what: 'the fault and the silence visible in Prometheus' },
    );
    await delay(SCRAPE_MS);

    const r = await inspectCli('--prometheus', prom.url, '--json');
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
    const text = await inspectCli('--prometheus', prom.url, '--node', FAULTY);
    assert.equal(text.code, 0, text.err);
    assert.match(
      text.out,
      /^gpu-node-0002\n {2}Xid79GPULost {2}device=3 {2}value=79 {2}since \S+Z$/m,
    );
    assert.doesNotMatch(text.out, /gpu-node-0001/);
  });
});
