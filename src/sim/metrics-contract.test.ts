/**
 * The simulator against the catalogue's exporter contract (METRICS): every metric the catalogue
 * reads exists in the healthy baseline with the same kind, the labels the rules rely on, and the
 * healthy value the contract states (metrics that exist only while something is wrong, such as
 * kube_pod_deletion_timestamp, are exempt from the baseline).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { METRICS } from '../catalogue/index.js';
import { createFleet } from './fleet.js';
import { SeriesStore } from './series-store.js';

const T0 = Date.UTC(2026, 0, 2);
/** Labels set only on a failing series (an empty label is an absent label in Prometheus). */
const FAULT_ONLY_LABELS: Readonly<Record<string, string>> = {
  kube_node_labels: 'label_aegis_io_disable',
  aegis_nodecheck_problem: 'device',
  aegis_nodecheck_log_matches: 'device',
};
/** Exist only while a pod is in trouble: no healthy series to simulate. */
const FAULT_ONLY = new Set([
  'kube_pod_info',
  'kube_pod_container_status_terminated_reason',
  'kube_pod_deletion_timestamp',
  'kube_pod_container_status_running',
]);

describe('simulator × METRICS contract', () => {
  const store = new SeriesStore(createFleet({ nodes: 2, seed: 4 }));
  const families = new Map(store.families().map((f) => [f.name, f]));
  for (const spec of METRICS) {
    it(spec.name, () => {
      if (FAULT_ONLY.has(spec.name)) return;
      const family = families.get(spec.name);
      assert.ok(family !== undefined, `no baseline family for ${spec.name}`);
      assert.equal(family.type, spec.kind);
      const series = store.select(
        spec.name,
        [{ name: 'node', op: '=', value: 'gpu-node-0001' }],
        T0 - 300_000,
        T0,
      );
      assert.ok(series.length > 0, 'no series on a worker');
      for (const s of series) {
        for (const label of spec.labels) {
          if (FAULT_ONLY_LABELS[spec.name] === label) continue;
          assert.ok(
            label in s.labels,
            `${spec.name} lacks label ${label}: ${JSON.stringify(s.labels)}`,
          );
        }
        if (spec.healthy !== null && spec.kind === 'gauge') {
          assert.equal(s.samples.at(-1)?.v, spec.healthy, JSON.stringify(s.labels));
        }
      }
    });
  }
});
