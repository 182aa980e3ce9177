/**
 * Every condition names a producer that ships (the Aegis agent, Prometheus, the Kubernetes API)
 * or a third-party exporter that exists, and no rule reads a metric only the simulator emits.
 * Third-party rows are checked against the exporters' own source (test/fixtures/producers).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { runCli, type CliOutput } from '../cli/main.js';
import type { ConditionRow } from '../cli/commands/conditions.js';
import { CATALOGUE, metricNamesOf, SIGNAL_PRESENCE, type Signal } from './index.js';
import {
  METRIC_PRODUCERS,
  PRODUCERS,
  producerOf,
  producersOf,
  selectedMetrics,
  type ProducerId,
} from './producers.js';

const fixture = (path: string): string =>
  readFileSync(new URL(`../../test/fixtures/producers/${path}`, import.meta.url), 'utf8');

/** evidence.tsv: metric → [producer, repo@commit:path:line, the upstream line]. */
const EVIDENCE = new Map(
  fixture('evidence.tsv')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [metric = '', producer = '', where = '', text = ''] = l.split('\t');
      return [metric, { producer, where, text }] as const;
    }),
);

/** The producer behind each exporter signal of the catalogue. */
const PRODUCER_OF_SIGNAL: Readonly<Record<Signal, ProducerId | null>> = {
  kubernetes: 'kubernetes',
  prometheus: null,
  'kube-state-metrics': 'kube-state-metrics',
  'node-exporter': 'node-exporter',
  'dcgm-exporter': 'dcgm-exporter',
  'ipmi-exporter': 'ipmi-exporter',
  'gpfs-exporter': 'gpfs-exporter',
  sichek: 'sichek',
  'aegis-nodecheck': 'aegis-agent',
  'node-problem-detector': 'node-problem-detector',
};

/** Every query the catalogue makes: rules, Kubernetes-signal rule forms, presence. */
const QUERIES: readonly string[] = [
  ...CATALOGUE.flatMap((e) => [e.expr, e.ksmExpr ?? '']),
  ...Object.values(SIGNAL_PRESENCE).map((q) => q ?? ''),
].filter((q) => q !== '');

const READ = [...new Set(QUERIES.flatMap((q) => selectedMetrics(q)))];

/** The upstream line names the metric, or the name's tail its source builds it from. */
function mentions(metric: string, text: string): boolean {
  if (text.includes(metric)) return true;
  const parts = metric.split('_');
  for (let i = 1; i < parts.length; i++) {
    const tail = parts.slice(i).join('_');
    if (text.includes(`"${tail}"`) || text.includes(`"${tail},`)) return true;
  }
  return false;
}

describe('metric producers', () => {
  it('src/promql and the Prometheus grammar agree on what the catalogue reads', () => {
    for (const q of QUERIES) {
      assert.deepEqual([...selectedMetrics(q)].sort(), [...metricNamesOf(q)].sort(), q);
    }
    assert.ok(READ.length > 90, `only ${String(READ.length)} metrics`);
  });

  it('has a producer for every metric a rule or presence query reads', () => {
    assert.deepEqual(
      READ.filter((m) => producerOf(m) === undefined),
      [],
    );
  });

  it('lists each metric once', () => {
    const names = METRIC_PRODUCERS.map((m) => m.metric);
    assert.equal(new Set(names).size, names.length);
  });

  it('backs every third-party metric with the line of the exporter’s source that defines it', () => {
    for (const row of METRIC_PRODUCERS) {
      if (PRODUCERS[row.producer].kind !== 'third-party' || !row.shipped) continue;
      const e = EVIDENCE.get(row.metric);
      assert.ok(e !== undefined, `${row.metric}: no upstream evidence`);
      assert.equal(e.producer, row.producer, row.metric);
      // dcgm-exporter resolves CSV field names through NVIDIA/go-dcgm's table.
      const repo =
        row.producer === 'dcgm-exporter' ? 'NVIDIA/go-dcgm' : PRODUCERS[row.producer].project;
      assert.ok(e.where.startsWith(`${repo}@`), `${row.metric}: ${e.where} is not ${repo}`);
      assert.ok(mentions(row.metric, e.text), `${row.metric}: "${e.text}" does not name it`);
    }
  });

  it('has the evidence check with teeth', () => {
    assert.equal(
      mentions('node_filesystem_avail_bytes', 'BuildFQName(namespace, subsystem, "avail_bytes"),'),
      true,
    );
    assert.equal(
      mentions('node_filesystem_avail_bytes', 'BuildFQName(namespace, subsystem, "size_bytes"),'),
      false,
    );
    assert.equal(
      mentions('sichek_infiniband_pcie_mrr', 'PCIEMRR string `json:"pcie_mrr" yaml:"pcie_mrr"`'),
      true,
    );
  });

  it("finds every aegis_nodecheck_* series in the agent's own /metrics registry", () => {
    const source = readFileSync(new URL('../agent/agent-metrics.ts', import.meta.url), 'utf8');
    for (const row of METRIC_PRODUCERS.filter((r) => r.producer === 'aegis-agent')) {
      assert.ok(source.includes(`'${row.metric}'`), `the agent does not register ${row.metric}`);
    }
  });

  it('gives every condition a producer, including the one of its own signal', () => {
    for (const e of CATALOGUE) {
      const producers = producersOf(e);
      assert.ok(producers.length > 0, `${e.name}: no producer`);
      const own = PRODUCER_OF_SIGNAL[e.signal];
      if (own !== null)
        assert.ok(producers.includes(own), `${e.name}: ${own} not among ${producers.join(', ')}`);
    }
  });

  it('names the producers in `aegis conditions --json`', async () => {
    let out = '';
    const output: CliOutput = {
      writeOut: (t) => {
        out += t;
      },
      writeErr: () => undefined,
    };
    assert.equal(await runCli(['node', 'aegis', 'conditions', '--json'], output), 0);
    const rows = JSON.parse(out) as ConditionRow[];
    assert.equal(rows.length, CATALOGUE.length);
    for (const r of rows) {
      assert.ok(r.producers.length > 0, r.name);
      for (const p of r.producers) assert.ok(p in PRODUCERS, `${r.name}: ${p}`);
    }
    assert.deepEqual(rows.find((r) => r.name === 'GpuHung')?.producers, ['aegis-agent']);
    assert.deepEqual(rows.find((r) => r.name === 'NodeNotReady')?.producers, [
      'kubernetes',
      'kube-state-metrics',
    ]);
  });

  /** Conditions reading a metric no released producer exports (only the simulator emits it). */
  const unshipped = CATALOGUE.filter((e) =>
    [e.expr, e.ksmExpr ?? '']
      .filter((x) => x !== '')
      .flatMap((x) => selectedMetrics(x))
      .some((m) => producerOf(m)?.shipped === false),
  ).map((e) => e.name);

  it('has no condition that reads a metric only the simulator emits', () => {
    assert.deepEqual(unshipped, []);
    assert.equal(
      METRIC_PRODUCERS.filter((r) => !r.shipped).length,
      0,
      'a row marked not shipped is left in the table',
    );
  });

  it('reads the HCA PCIe link and MRR from the agent, which registers every series', () => {
    const source = readFileSync(new URL('../agent/agent-metrics.ts', import.meta.url), 'utf8');
    for (const name of ['IBPCIeMRRNotAlign', 'IBPCIeSpeedAbnormal', 'IBPCIeWidthAbnormal']) {
      const entry = CATALOGUE.find((e) => e.name === name);
      assert.ok(entry !== undefined, name);
      assert.deepEqual(producersOf(entry), ['aegis-agent'], name);
      for (const m of selectedMetrics(entry.expr)) {
        assert.match(m, /^aegis_nodecheck_hca_pcie_/, `${name} reads ${m}`);
        assert.ok(source.includes(`'${m}'`), `the agent does not register ${m}`);
      }
    }
  });
});
