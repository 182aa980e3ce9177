/** The PromQL shapes the condition catalogue uses, over a small simulated GPU fleet. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatSample } from './format.js';
import { loadSeries } from './load-series.js';
import { createMemorySeriesSource } from './memory-source.js';
import { compilePromQL } from './parse.js';

const M = 60_000;
const NOW = 10 * M;

// Samples every minute from 0 to 10m; `a b` switches value halfway through `NxN` notation.
const FLEET = createMemorySeriesSource(
  loadSeries(M, {
    'DCGM_FI_DEV_XID_ERRORS{node="n1",gpu="0",Hostname="n1"}': '0x5 79x5',
    'DCGM_FI_DEV_XID_ERRORS{node="n1",gpu="1",Hostname="n1"}': '0x10',
    'DCGM_FI_DEV_XID_ERRORS{node="n2",gpu="0",Hostname="n2"}': '13x10',
    'DCGM_FI_DEV_CLOCKS_EVENT_REASONS{node="n1",gpu="0"}': '8x10',
    'DCGM_FI_DEV_CLOCKS_EVENT_REASONS{node="n1",gpu="1"}': '0x6 8x4',
    'DCGM_FI_DEV_CLOCKS_EVENT_REASONS{node="n2",gpu="0"}': '24x10',
    'DCGM_FI_DEV_CLOCKS_EVENT_REASONS{node="n2",gpu="1"}': '1x10',
    'DCGM_FI_DEV_GPU_UTIL{node="n1",gpu="0"}': '90x10',
    'DCGM_FI_DEV_GPU_UTIL{node="n1",gpu="1"}': '95x10',
    'DCGM_FI_DEV_GPU_UTIL{node="n2",gpu="0"}': '50x10',
    'DCGM_FI_DEV_GPU_UTIL{node="n2",gpu="1"}': '50x10',
    'kube_node_status_capacity{node="n1",resource="nvidia_com_gpu"}': '8x10',
    'kube_node_status_capacity{node="n2",resource="nvidia_com_gpu"}': '2x10',
    'kube_node_status_capacity{node="n2",resource="cpu"}': '64x10',
    'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{node="n1",gpu="0"}': '100x10',
    'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{node="n2",gpu="0"}': '50x10',
    'DCGM_FI_DEV_ECC_DBE_VOL_SRM{node="n1",gpu="0"}': '20x10',
    'DCGM_FI_DEV_ECC_DBE_VOL_SRM{node="n2",gpu="0"}': '0x10',
    'kube_node_status_condition{node="n1",condition="Ready",status="true"}': '1x10',
    'kube_node_status_condition{node="n2",condition="Ready",status="true"}': '0x10',
    'kube_node_status_condition{node="n2",condition="Ready",status="false"}': '1x10',
    'up{job="dcgm-exporter",instance="n1:9400"}': '1x10',
    'up{job="dcgm-exporter",instance="n2:9400"}': '1x5 0x5',
    'up{job="node-exporter",instance="n2:9100"}': '0x10',
    'node_memory_MemAvailable_bytes{node="n1"}': '8x10',
    'node_memory_MemAvailable_bytes{node="n2"}': '50x10',
    'node_memory_MemTotal_bytes{node="n1"}': '100x10',
    'node_memory_MemTotal_bytes{node="n2"}': '100x10',
    'gpu_temp{Hostname="n1",gpu="0"}': '70x10',
  }),
);

const IB = createMemorySeriesSource(
  // Link-downed counters scraped every 15 min for 25 h: n1 flaps once an hour, n2 twice in total.
  loadSeries(15 * M, {
    'node_infiniband_link_downed_total{node="n1",device="mlx5_0"}': Array.from(
      { length: 101 },
      (_, i) => String(Math.floor(i / 4)),
    ).join(' '),
    'node_infiniband_link_downed_total{node="n2",device="mlx5_0"}': '0x50 1x25 2x24',
  }),
);

const CASES: readonly (readonly [query: string, expected: readonly string[]])[] = [
  ['max by (node, gpu) (DCGM_FI_DEV_XID_ERRORS{} == 79)', ['{gpu="0",node="n1"} 79']],
  [
    '(DCGM_FI_DEV_CLOCKS_EVENT_REASONS % 16 == 8) and (DCGM_FI_DEV_CLOCKS_EVENT_REASONS offset 5m % 16 == 8)',
    ['{gpu="0",node="n1"} 8', '{gpu="0",node="n2"} 8'],
  ],
  [
    'count by (node) (DCGM_FI_DEV_GPU_UTIL) < on(node) (kube_node_status_capacity{resource="nvidia_com_gpu"})',
    ['{node="n1"} 2'],
  ],
  ['DCGM_FI_DEV_ECC_DBE_VOL_TOTAL - DCGM_FI_DEV_ECC_DBE_VOL_SRM > 60', ['{gpu="0",node="n1"} 80']],
  [
    'kube_node_status_condition{condition="Ready",status="true"} == 0',
    ['kube_node_status_condition{condition="Ready",node="n2",status="true"} 0'],
  ],
  ['(up{job="dcgm-exporter"} == 0)', ['up{instance="n2:9400",job="dcgm-exporter"} 0']],
  [
    '100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) > 90',
    ['{node="n1"} 92'],
  ],
  [
    'label_replace(gpu_temp, "node", "$1", "Hostname", "(.*)")',
    ['gpu_temp{Hostname="n1",gpu="0",node="n1"} 70'],
  ],
  [
    'max by (node) (label_replace(DCGM_FI_DEV_XID_ERRORS, "node", "$1", "Hostname", "(.*)")) > 0',
    ['{node="n1"} 79', '{node="n2"} 13'],
  ],
];

describe('catalogue PromQL shapes', () => {
  for (const [query, expected] of CASES) {
    it(query, () => {
      const got = compilePromQL(query).evaluate(FLEET, NOW).map(formatSample).sort();
      assert.deepEqual(got, [...expected].sort());
    });
  }

  it('increase(node_infiniband_link_downed_total[24h]) > 3', () => {
    const q = compilePromQL('increase(node_infiniband_link_downed_total[24h]) > 3');
    const got = q.evaluate(IB, 25 * 60 * M);
    assert.deepEqual(
      got.map((s) => s.labels),
      [{ node: 'n1', device: 'mlx5_0' }],
    );
    // 96 samples span 23h45m of the 24h window; the first is 15 min (one interval) after the
    // window start, so Prometheus extrapolates all the way: 24 * 24h / 23.75h.
    assert.ok(Math.abs((got[0]?.value ?? 0) - (24 * 24) / 23.75) < 1e-9);
  });
});
