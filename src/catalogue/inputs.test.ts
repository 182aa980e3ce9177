import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CATALOGUE,
  COLLECTOR_HEALTH,
  findCondition,
  ruleInputs,
  SIGNAL_PRESENCE,
} from './index.js';

const inputsOf = (name: string): ReturnType<typeof ruleInputs> =>
  ruleInputs(findCondition(name)?.expr ?? '');

describe('rule inputs, derived from the PromQL', () => {
  it('every exporter a rule joins is an input (GpuDown: kube-state-metrics and dcgm-exporter)', () => {
    assert.deepEqual(inputsOf('GpuDown').signals, ['kube-state-metrics', 'dcgm-exporter']);
    assert.deepEqual(inputsOf('HighLoad').signals, ['kube-state-metrics', 'node-exporter']);
  });

  it('an exporter read only to see it absent, or as an `unless` filter, is exempt', () => {
    assert.deepEqual(inputsOf('GpuMetricsHang'), {
      signals: ['kube-state-metrics'],
      collectors: [],
      exempt: ['dcgm-exporter'],
    });
    assert.deepEqual(inputsOf('NodeExporterDown').exempt, ['node-exporter']);
    assert.deepEqual(
      inputsOf('IpmiExporterDown').signals,
      [],
      'its own history beside the absence',
    );
    assert.deepEqual(inputsOf('CPUPressure').exempt, ['dcgm-exporter'], 'busy GPUs filter it out');
    // The disable label read now and ten minutes ago: both readings are needed.
    assert.deepEqual(inputsOf('NodeInhibitAll').signals, ['kube-state-metrics']);
  });

  it('names the collectors of the metrics read, where the exporter reports collector health', () => {
    assert.deepEqual(inputsOf('DiskReadOnly').collectors, ['node-exporter/filesystem']);
    assert.deepEqual(inputsOf('IBLinkAbnormal').collectors, ['node-exporter/infiniband']);
    assert.deepEqual(inputsOf('GpfsMountLost').collectors, ['gpfs-exporter/mount']);
    assert.deepEqual(inputsOf('Xid79GPULost').collectors, [], 'dcgm-exporter reports none');
  });

  it('every signal a rule reads has a presence query, and every collector a health query', () => {
    for (const e of CATALOGUE) {
      const r = ruleInputs(e.expr);
      for (const s of r.signals) assert.ok(SIGNAL_PRESENCE[s] !== null, `${e.name}: ${s}`);
      for (const c of r.collectors) {
        const signal = c.split('/')[0] as keyof typeof COLLECTOR_HEALTH;
        assert.match(
          COLLECTOR_HEALTH[signal] ?? '',
          new RegExp(c.split('/')[1] ?? '-'),
          `${e.name}: ${c}`,
        );
      }
    }
  });
});
