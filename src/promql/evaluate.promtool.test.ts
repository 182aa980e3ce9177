/**
 * Conformance with the real Prometheus engine: our results for a set of expressions are written as
 * the expected samples of a `promtool test rules` file, and promtool (Debian's Prometheus 2.x)
 * checks them. Times sit off the sample grid, because Prometheus 2 ranges are closed at the start
 * and Prometheus 3 ranges (which we follow) are open; away from that boundary the two agree.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { evaluateInstant } from './evaluate.js';
import { formatLabels } from './format.js';
import { loadSeries } from './load-series.js';
import { createMemorySeriesSource } from './memory-source.js';
import { parsePromQL } from './parse.js';

const INPUT: Readonly<Record<string, string>> = {
  'DCGM_FI_DEV_XID_ERRORS{node="n1",gpu="0",Hostname="n1"}': '0x20 79x40',
  'DCGM_FI_DEV_XID_ERRORS{node="n1",gpu="1",Hostname="n1"}': '0x60',
  'DCGM_FI_DEV_XID_ERRORS{node="n2",gpu="0",Hostname="n2"}': '13x60',
  'DCGM_FI_DEV_CLOCKS_EVENT_REASONS{node="n1",gpu="0"}': '8x60',
  'DCGM_FI_DEV_CLOCKS_EVENT_REASONS{node="n1",gpu="1"}': '0x27 8x32',
  'DCGM_FI_DEV_CLOCKS_EVENT_REASONS{node="n2",gpu="0"}': '24x60',
  'DCGM_FI_DEV_GPU_UTIL{node="n1",gpu="0"}': '90+1x60',
  'DCGM_FI_DEV_GPU_UTIL{node="n1",gpu="1"}': '10+2x60',
  'DCGM_FI_DEV_GPU_UTIL{node="n2",gpu="0"}': '50x60',
  'kube_node_status_capacity{node="n1",resource="nvidia_com_gpu"}': '8x60',
  'kube_node_status_capacity{node="n2",resource="nvidia_com_gpu"}': '1x60',
  'kube_node_status_capacity{node="n2",resource="cpu"}': '64x60',
  'node_info{node="n1",rack="r1"}': '1x60',
  'node_info{node="n2",rack="r2"}': '1x60',
  'up{job="dcgm-exporter",instance="n1"}': '1x60',
  'up{job="dcgm-exporter",instance="n2"}': '1x25 0x35',
  'c_total{node="n1"}': '1000+10x30 50+10x30',
  'c_total{node="n2"}': '5000+7x60',
  'c_total{node="n3"}': '_x20 3000+3x40',
  'gone{node="n1"}': '5x20 _x40',
};

const EXPRESSIONS: readonly string[] = [
  'max by (node, gpu) (DCGM_FI_DEV_XID_ERRORS{} == 79)',
  '(DCGM_FI_DEV_CLOCKS_EVENT_REASONS % 16 == 8) and (DCGM_FI_DEV_CLOCKS_EVENT_REASONS offset 5m % 16 == 8)',
  'count by (node) (DCGM_FI_DEV_GPU_UTIL) < on(node) (kube_node_status_capacity{resource="nvidia_com_gpu"})',
  'count by (node) (DCGM_FI_DEV_GPU_UTIL) > bool on(node) kube_node_status_capacity{resource="nvidia_com_gpu"}',
  '(up{job="dcgm-exporter"} == 0)',
  'label_replace(DCGM_FI_DEV_XID_ERRORS, "host", "h-$1", "Hostname", "n(.*)")',
  'increase(c_total[10m])',
  'rate(c_total[15m]) > 0.5',
  'delta(DCGM_FI_DEV_GPU_UTIL[10m])',
  'irate(c_total[5m])',
  'idelta(DCGM_FI_DEV_GPU_UTIL[5m])',
  'changes(DCGM_FI_DEV_XID_ERRORS[1h])',
  'resets(c_total[1h])',
  'max_over_time(DCGM_FI_DEV_GPU_UTIL[10m]) - min_over_time(DCGM_FI_DEV_GPU_UTIL[10m])',
  'sum_over_time(DCGM_FI_DEV_XID_ERRORS[5m]) / count_over_time(DCGM_FI_DEV_XID_ERRORS[5m])',
  'last_over_time(gone[30m])',
  'absent_over_time(gone[5m])',
  'absent(gone{node="n1"})',
  'absent(up)',
  'DCGM_FI_DEV_GPU_UTIL * on(node) group_left(rack) node_info',
  'node_info * on(node) group_right(rack) DCGM_FI_DEV_GPU_UTIL',
  'DCGM_FI_DEV_GPU_UTIL - ignoring(gpu) group_left DCGM_FI_DEV_GPU_UTIL{gpu="0"}',
  'DCGM_FI_DEV_GPU_UTIL or on(node) node_info',
  'DCGM_FI_DEV_GPU_UTIL unless on(node) node_info{rack="r2"}',
  'sum without (gpu, Hostname) (DCGM_FI_DEV_XID_ERRORS)',
  'avg by (node) (DCGM_FI_DEV_GPU_UTIL)',
  'quantile(0.75, DCGM_FI_DEV_GPU_UTIL)',
  'topk(1, DCGM_FI_DEV_GPU_UTIL)',
  'bottomk by (node) (1, DCGM_FI_DEV_GPU_UTIL)',
  'group by (rack) (node_info)',
  'clamp(DCGM_FI_DEV_GPU_UTIL, 20, 100) / 3',
  'timestamp(up) - time()',
  'scalar(sum(kube_node_status_capacity{resource="nvidia_com_gpu"})) * 2',
  '-DCGM_FI_DEV_GPU_UTIL ^ 2 + 1',
  '2 ^ 3 ^ 2 - 1',
  'c_total - c_total offset 10m',
  'deriv(DCGM_FI_DEV_GPU_UTIL[10m])',
  'predict_linear(c_total[15m], 3600)',
  'avg_over_time(DCGM_FI_DEV_GPU_UTIL[7m])',
  'stddev(DCGM_FI_DEV_GPU_UTIL)',
  'stdvar by (node) (DCGM_FI_DEV_GPU_UTIL)',
  'sum by (node) (rate(c_total[5m]))',
  'count without (gpu) (DCGM_FI_DEV_GPU_UTIL != 50)',
  'DCGM_FI_DEV_GPU_UTIL % -7 atan2 2',
  'round(DCGM_FI_DEV_GPU_UTIL / 7, 0.5) + abs(-DCGM_FI_DEV_GPU_UTIL) - sgn(DCGM_FI_DEV_GPU_UTIL)',
  'sqrt(DCGM_FI_DEV_GPU_UTIL) + ln(DCGM_FI_DEV_GPU_UTIL) + exp(DCGM_FI_DEV_GPU_UTIL / 100)',
  'sort_desc(DCGM_FI_DEV_GPU_UTIL)',
  'hour() + minute()',
  'vector(1) - 1 < bool vector(time())',
  'label_join(node_info, "where", "/", "rack", "node")',
  'label_replace(node_info, "x", "${1}x$1x$$-$", "node", "n(.)")',
  'changes((DCGM_FI_DEV_XID_ERRORS[1h])) + on(node, gpu) group_left absent_over_time(gone[5m])',
  'max_over_time(up[1h]) unless ignoring(job) min_over_time(up[1h]) > 0',
];

const EVAL_TIMES = ['10m30s', '30m30s', '45m30s'] as const;

function yamlValue(v: number): string {
  if (Number.isNaN(v)) return '.nan';
  if (v === Infinity) return '.inf';
  if (v === -Infinity) return '-.inf';
  return String(v);
}

function buildTestFile(): string {
  const source = createMemorySeriesSource(loadSeries(60_000, INPUT));
  const lines = ['evaluation_interval: 1m', 'tests:', '  - interval: 1m', '    input_series:'];
  for (const [series, values] of Object.entries(INPUT)) {
    lines.push(
      `      - series: ${JSON.stringify(series)}`,
      `        values: ${JSON.stringify(values)}`,
    );
  }
  lines.push('    promql_expr_test:');
  for (const expr of EXPRESSIONS) {
    for (const evalTime of EVAL_TIMES) {
      const [m = '0', s = '0'] = evalTime.replace('s', '').split('m');
      const atMs = (Number(m) * 60 + Number(s)) * 1000;
      const samples = evaluateInstant(parsePromQL(expr), source, atMs);
      lines.push(`      - expr: ${JSON.stringify(expr)}`, `        eval_time: ${evalTime}`);
      lines.push(samples.length === 0 ? '        exp_samples: []' : '        exp_samples:');
      for (const sample of samples) {
        lines.push(
          `          - labels: ${JSON.stringify(formatLabels(sample.labels))}`,
          `            value: ${yamlValue(sample.value)}`,
        );
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

describe('conformance with promtool (real Prometheus engine)', () => {
  it(
    `${EXPRESSIONS.length} expressions x ${EVAL_TIMES.length} times`,
    { skip: hasPromtool ? false : 'promtool not installed (Debian package "prometheus")' },
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'aegis-promql-'));
      try {
        const file = join(dir, 'conformance.test.yml');
        writeFileSync(file, buildTestFile());
        let output = '';
        try {
          output = execFileSync('promtool', ['test', 'rules', file], { encoding: 'utf8' });
        } catch (err) {
          const failed = err as { stdout?: string; stderr?: string };
          assert.fail(`promtool disagrees:\n${failed.stdout ?? ''}${failed.stderr ?? ''}`);
        }
        assert.match(output, /SUCCESS/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
