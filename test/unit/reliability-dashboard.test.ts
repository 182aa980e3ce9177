/**
 * deploy/grafana/aegis-reliability.json without a Grafana server: its shape (the datasource input
 * every panel, target and variable uses, unique ids and refIds, a grid inside 24 columns, units),
 * every target parsed with the Prometheus grammar and naming only metrics the daemon defines, and
 * every target evaluated (the in-house PromQL evaluator, src/promql) over the series the daemon
 * exports for a small fleet's tickets: each returns series carrying the labels its legend uses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parser } from '@prometheus-io/lezer-promql';
import { metricNamesOf } from '../../src/catalogue/index.js';
import { ReliabilityRecorder } from '../../src/engine/reliability.js';
import { createMetrics, metricNames } from '../../src/metrics/metrics.js';
import {
  compilePromQL,
  createMemorySeriesSource,
  evaluateInstant,
  type Series,
} from '../../src/promql/index.js';
import { carryOver } from '../../src/ticket/ticket-past.js';
import { newTicket, TicketStatus, type Ticket } from '../../src/ticket/ticket.js';
import { aNode } from '../helpers/builders.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DS_UID = '${DS_PROMETHEUS}';
const VARIABLES: Readonly<Record<string, string>> = {
  $__rate_interval: '5m',
  $group: '.*',
};

interface Target {
  refId: string;
  expr: string;
  legendFormat?: string;
  datasource?: { uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid?: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  fieldConfig?: { defaults?: { unit?: string } };
}
interface Dashboard {
  uid: string;
  __inputs: { name: string; type: string; pluginId: string }[];
  panels: Panel[];
  templating: { list: { name: string; datasource?: { uid?: string }; definition?: string }[] };
}

const json = JSON.parse(
  readFileSync(join(ROOT, 'deploy', 'grafana', 'aegis-reliability.json'), 'utf8'),
) as Dashboard;
const queryPanels = json.panels.filter((p) => p.type !== 'row');
const targets = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, target: t })));
const substitute = (expr: string): string =>
  Object.entries(VARIABLES).reduce((e, [k, v]) => e.replaceAll(k, v), expr);
const defined = new Set(metricNames(createMetrics()));

describe('aegis-reliability.json', () => {
  it('a uid of its own and the DS_PROMETHEUS input on every panel, target and variable', () => {
    const others = ['aegis-overview.json', 'aegis-fleet.json'].map(
      (f) =>
        (JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', f), 'utf8')) as Dashboard).uid,
    );
    assert.ok(!others.includes(json.uid));
    assert.deepEqual(
      json.__inputs.map((i) => [i.name, i.type, i.pluginId]),
      [['DS_PROMETHEUS', 'datasource', 'prometheus']],
    );
    for (const p of queryPanels) {
      assert.equal(p.datasource?.uid, DS_UID, p.title);
      for (const t of p.targets ?? []) assert.equal(t.datasource?.uid, DS_UID, p.title);
    }
    for (const v of json.templating.list) {
      assert.equal(v.datasource?.uid, DS_UID, v.name);
      for (const m of metricNamesOf((v.definition ?? '').replace(/^label_values\((\w+),.*$/, '$1')))
        assert.ok(defined.has(m), `variable ${v.name} reads ${m}`);
    }
  });

  it('unique panel ids, a grid inside 24 columns, targets with unique refIds and a unit', () => {
    const ids = json.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const p of json.panels) {
      assert.ok(p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, p.title);
      if (p.type === 'row') continue;
      const refs = (p.targets ?? []).map((t) => t.refId);
      assert.ok(refs.length > 0, `${p.title} has no target`);
      assert.equal(new Set(refs).size, refs.length, p.title);
      assert.ok((p.fieldConfig?.defaults?.unit ?? '') !== '', `${p.title} has no unit`);
    }
  });

  it('every target parses as PromQL and names only metrics the daemon defines', () => {
    const bad: string[] = [];
    const unknown: string[] = [];
    for (const { panel, target } of targets) {
      const expr = substitute(target.expr);
      parser.parse(expr).iterate({
        enter: (n) => {
          if (n.type.isError) bad.push(`${panel.title}: ${expr}`);
        },
      });
      for (const m of metricNamesOf(expr))
        if (!defined.has(m)) unknown.push(`${panel.title}: ${m}`);
    }
    assert.deepEqual(bad, []);
    assert.deepEqual(unknown, []);
    assert.ok(
      targets.every(({ target }) => /aegis_(reliability|profile)_/.test(target.expr)),
      'every panel reads the reliability or profile metrics',
    );
  });

  it('every target returns series with its legend labels over what the daemon exports', async () => {
    const now = Date.parse('2026-02-01T00:00:00Z');
    const H = 3_600_000;
    const closed = (openMs: number, by: string): Ticket => ({
      ...newTicket({ condition: 'Xid79GPULost', reason: '', nowMs: openMs }),
      status: TicketStatus.Resolved,
      supervisor: by,
      resolvedTime: new Date(openMs + H).toISOString(),
      cordoned: { at: new Date(openMs).toISOString(), until: new Date(openMs + H).toISOString() },
    });
    let lemon: Ticket | null = null;
    for (const [i, by] of ['aegis', 'alice', 'aegis'].entries())
      lemon = carryOver(lemon, closed(now - (10 - i) * 24 * H, by));
    const m = createMetrics();
    const rec = new ReliabilityRecorder(
      {
        gpuCountLabel: 'nvidia.com/gpu.count',
        gpusPerNode: 8,
        lemonTickets: 3,
        lemonWindowMs: 30 * 24 * H,
      },
      'aegis.io/node-group',
    );
    rec.begin(now);
    rec.add(aNode({ name: 'n1', labels: { 'aegis.io/node-group': 'pool-a' } }), lemon as Ticket);
    rec.add(
      aNode({ name: 'n2', labels: { 'aegis.io/node-group': 'pool-b' } }),
      closed(now - 5 * H, 'aegis'),
    );
    rec.flush(m);
    m.profileNodes.set({ profile: 'full' }, 2);
    m.profileWithheld.inc({ profile: 'observe-only', action: 'Cordon' });
    // Two scrapes a minute apart with the same values (an increase() needs two samples).
    const series: Series[] = [];
    for (const metric of await m.registry.getMetricsAsJSON()) {
      if (!/^aegis_(reliability|profile)_/.test(metric.name)) continue;
      for (const v of metric.values)
        series.push({
          labels: { __name__: metric.name, ...(v.labels as Record<string, string>) },
          samples: [
            { t: now - 60_000, v: v.value },
            { t: now, v: v.value },
          ],
        });
    }
    const source = createMemorySeriesSource(series);
    for (const { panel, target } of targets) {
      const result = evaluateInstant(compilePromQL(substitute(target.expr)).expr, source, now);
      assert.ok(result.length > 0, `${panel.title}: no series for ${target.expr}`);
      const legend = [...(target.legendFormat ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map(
        (x) => x[1] ?? '',
      );
      for (const l of legend)
        assert.ok(
          result.some((s) => l in s.labels),
          `${panel.title}: legend label ${l} on none of ${JSON.stringify(result.map((s) => s.labels))}`,
        );
    }
  });
});
