import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parser } from '@prometheus-io/lezer-promql';

import { ALL_DOMAINS } from '../core/types.js';
import { isBuiltinSopId } from '../sop/ids.js';
import {
  CATALOGUE,
  COLLECTOR_HEALTH,
  conditionNames,
  findCondition,
  METRICS,
  metricNamesOf,
  PROMETHEUS_SERIES,
  SIGNAL_PRESENCE,
  SIGNALS,
} from './index.js';
import type { CatalogueEntry } from './index.js';

const SEED_NAMES = [
  'NodeNotReady',
  'NodeCordon',
  'NodeFrequentDown',
  'KubeletFailedCreatePodContainer',
  'CPUPressure',
  'CpuUnhealthy',
  'DiskUnhealthy',
  'GpfsDown',
  'GpfsMountLost',
  'GpfsInactive',
  'GpuHung',
  'GpuDown',
  'XIDECCMemoryErr',
  'GpuNvlinkInactive',
  'IBDown',
  'IBLinkFrequentDown',
  'NetworkLinkFrequentDown',
  'ICETxTimeout',
  'MemoryPressure',
  'KubeletMemoryPressure',
  'KernelPanic',
  'HighLoad',
];

/**
 * The original's 82 rows (aegis-original.md §4.1): name, priority, Helm AffectsLoad, IDMode. Two
 * deliberate changes: NodeInhibitAll 0 -> 98 (slot collision) and HighZombieProcessesCount gets 100.
 */
const ORIGINAL = `
NodeNotReady:0:F:- NodeInhibitAll:98:F:- NodeCordon:1:F:- NodeFrequentDown:8:F:- KubeletFailedCreatePodContainer:50:F:-
NodeHasTerminatingPod:50:F:- NodeHasRestarted:100:F:- CPUPressure:50:F:- CpuUnhealthy:99:F:id MemoryPressure:99:F:-
KubeletMemoryPressure:90:F:- MemoryUnhealthy:99:F:id DiskPressure:99:F:id DiskUnhealthy:99:F:id NetworkLinkDown:50:F:id
BaseBoardCriticalIssue:99:F:id GpuHung:3:F:all GpuCheckFailed:3:F:mask GpuErrResetRequired:50:F:all
GpuRegisterFailed:50:F:- HighGpuTemp:100:F:- HighGpuMemoryTemp:100:F:- Xid48GPUMemoryDBE:9:F:-
Xid63ECCRowremapperPending:9:F:- Xid64ECCRowremapperFailure:9:F:index Xid95UncontainedECCError:9:T:index
Xid74NVLinkError:2:T:index Xid79GPULost:2:T:index GpuRowRemappingPending:9:F:- GpuRowRemappingFailure:8:T:-
GpuTooManyPageRetired:8:F:index GpuAggSramUncorrectable:8:F:index GpuVolSramUncorrectable:9:F:index
GpuSmClkSlowDown:51:F:index NvidiaFabricManagerNotActive:2:T:all GpuPcieLinkDegraded:51:F:index
GpuHWSlowdown:99:F:index GpuNvlinkInactive:3:F:index GpuNvlinkError:3:F:index GpuPersistenceModeNotEnabled:3:F:-
GpuMetricsHang:99:F:- GpuP2PNotSupported:4:F:- GPUIbgdaNotEnabled:50:F:- IBLost:3:F:all IBModuleLost:10:F:all
IBNetDriverFailedLoad:10:F:id IBPCIeMRRNotAlign:10:F:id IBPortSpeedAbnormal:10:F:id IBProtoclAbnormal:10:F:id
IBLinkAbnormal:10:F:id IBPCIeSpeedAbnormal:10:F:id IBPCIeWidthAbnormal:10:F:id IBLinkFrequentDown:50:F:id
IBRegisterFailed:50:F:- RoceDeviceBroken:4:F:all RoceHostOffline:51:F:all RoceHostGatewayNotMatch:51:F:all
RoceHostRouteMiss:51:F:all RocePodOffline:51:F:all RocePodGatewayNotMatch:51:F:all RoceNodeLabelMiss:51:F:all
RoceVfDeviceMiss:51:F:id RoceSriovInitError:51:F:id RoceNodeUnitLabelMiss:51:F:all RoceNodePfNamesLabelMiss:51:F:all
RoceNodeResourceLabelMiss:51:F:all RoceNodeNetworkLabelMiss:51:F:all RoceNodeResourceMiss:51:F:id
RoceRegisterFailed:50:F:id GpfsDown:2:T:all GpfsMountLost:10:F:id GpfsInactive:9:T:all GpfsThreadDeadlock:100:F:-
GpfsTestFailed:50:F:all GpfsIBNotConfig:51:F:all GpfsRdmaError:49:F:all GpfsNodeNotHealthy:49:F:all
GpfsNotMounted:49:F:all GpfsNotStarted:49:F:all GpfsNotInCluster:49:F:all GpfsNotInstalled:49:F:all
HighZombieProcessesCount:100:F:-`;

/** The PromQL functions and aggregations the simulator's evaluator implements. */
const SUPPORTED_FUNCTIONS = new Set([
  'rate',
  'irate',
  'increase',
  'delta',
  'changes',
  'resets',
  'max_over_time',
  'min_over_time',
  'avg_over_time',
  'count_over_time',
  'last_over_time',
  'absent_over_time',
  'abs',
  'clamp_min',
  'clamp_max',
  'label_replace',
  'label_join',
  'time',
  'timestamp',
]);
const SUPPORTED_AGGREGATIONS = new Set(['sum', 'count', 'min', 'max', 'avg', 'group']);

interface Inspection {
  readonly errors: number;
  readonly functions: readonly string[];
  readonly aggregations: readonly string[];
  readonly byLabels: readonly (readonly string[])[];
}

/** Walks the Prometheus grammar tree of `expr`. */
function inspect(expr: string): Inspection {
  let errors = 0;
  const functions: string[] = [];
  const aggregations: string[] = [];
  const byLabels: string[][] = [];
  const cursor = parser.parse(expr).cursor();
  do {
    const text = expr.slice(cursor.from, cursor.to);
    if (cursor.type.isError) errors++;
    if (cursor.name === 'FunctionIdentifier') functions.push(text);
    if (cursor.name === 'AggregateOp') aggregations.push(text);
    if (cursor.name === 'AggregateModifier' && text.startsWith('by')) {
      byLabels.push(
        text
          .replace(/^by\s*\(|\)$/g, '')
          .split(',')
          .map((l) => l.trim()),
      );
    }
  } while (cursor.next());
  return { errors, functions, aggregations, byLabels };
}

const exprsOf = (e: CatalogueEntry): string[] => [e.expr, e.ksmExpr ?? ''].filter((x) => x !== '');
const labelValues = (e: CatalogueEntry): string[] =>
  e.fault.series.flatMap((s) => Object.values(s.labels));

describe('catalogue shape', () => {
  it('has a syntax check with teeth', () => {
    assert.ok(inspect('sum(rate(foo[5m])').errors > 0);
    assert.deepEqual(inspect('max by (node, gpu) (x)').byLabels, [['node', 'gpu']]);
  });

  it('has at least 95 entries across all 13 domains', () => {
    assert.ok(CATALOGUE.length >= 95, `only ${CATALOGUE.length} entries`);
    const domains = new Set(CATALOGUE.map((e) => e.domain));
    assert.deepEqual(
      [...ALL_DOMAINS].filter((d) => !domains.has(d)),
      [],
    );
  });

  it('has unique names and aliases, also case-insensitively across entries', () => {
    const owner = new Map<string, string>();
    for (const e of CATALOGUE) {
      for (const key of [e.name, ...(e.aliases ?? [])]) {
        const prev = owner.get(key.toLowerCase());
        assert.ok(
          prev === undefined || prev === e.name,
          `${key} names both ${String(prev)} and ${e.name}`,
        );
        owner.set(key.toLowerCase(), e.name);
      }
    }
    assert.equal(new Set(conditionNames()).size, CATALOGUE.length);
  });

  it('resolves every seed name (as entry or alias)', () => {
    for (const name of SEED_NAMES) assert.ok(findCondition(name), `${name} is missing`);
    assert.equal(findCondition('IBDown')?.name, 'IBLost');
    assert.equal(findCondition('gpuhwslowdown')?.name, 'GpuHWSlowdown');
    assert.equal(findCondition('NoSuchCondition'), undefined);
  });

  it('keeps the original names, priorities, AffectsLoad and IDMode of all 82 rows', () => {
    const rows = ORIGINAL.trim().split(/\s+/);
    assert.equal(rows.length, 82);
    for (const row of rows) {
      const [name = '', priority, load, mode] = row.split(':');
      const e = findCondition(name);
      assert.ok(e?.name === name, `${name} is missing`);
      assert.equal(e.priority, Number(priority), `${name} priority`);
      assert.equal(e.affectsLoad, load === 'T', `${name} affectsLoad`);
      assert.equal(e.deviceIdMode, mode === '-' ? 'none' : mode, `${name} deviceIdMode`);
    }
  });

  it('gives the NotReady (0) and Cordon (1) slots exactly one owner each', () => {
    assert.deepEqual(
      CATALOGUE.filter((e) => e.priority === 0).map((e) => e.name),
      ['NodeNotReady'],
    );
    assert.deepEqual(
      CATALOGUE.filter((e) => e.priority === 1).map((e) => e.name),
      ['NodeCordon'],
    );
  });

  for (const e of CATALOGUE) {
    describe(e.name, () => {
      it('names a built-in SOP when Emergency (2..99), and only built-in SOPs', () => {
        if (e.priority >= 2 && e.priority <= 99)
          assert.ok(e.sop !== null, 'Emergency entry without SOP');
        if (e.sop !== null) assert.ok(isBuiltinSopId(e.sop), `unknown SOP ${e.sop}`);
      });

      it('has non-negative integer priority and durations', () => {
        for (const n of [e.priority, e.forMs, e.clearForMs])
          assert.ok(Number.isSafeInteger(n) && n >= 0);
        assert.ok(e.description.length > 0 && e.clear.length > 0);
      });

      it('has PromQL that parses, uses only the supported subset and groups by node and device', () => {
        for (const expr of exprsOf(e)) {
          const info = inspect(expr);
          assert.equal(info.errors, 0, `syntax error in ${expr}`);
          for (const f of info.functions)
            assert.ok(SUPPORTED_FUNCTIONS.has(f), `unsupported ${f}()`);
          for (const a of info.aggregations)
            assert.ok(SUPPORTED_AGGREGATIONS.has(a), `unsupported ${a}`);
        }
        if (e.signal === 'kubernetes') return;
        const info = inspect(e.expr);
        assert.ok(
          info.byLabels.some((l) => l.includes('node')),
          'no `by (node ...)` aggregation',
        );
        if (e.deviceLabel !== '') {
          assert.ok(
            info.byLabels.some((l) => l.includes(e.deviceLabel)),
            `${e.deviceLabel} not in a by clause`,
          );
        }
      });

      it('reads a metric of its own signal', () => {
        if (e.signal === 'kubernetes' || e.signal === 'prometheus') return;
        const own = new Set(METRICS.filter((m) => m.signal === e.signal).map((m) => m.name));
        assert.ok(
          metricNamesOf(e.expr).some((m) => own.has(m)),
          `reads no ${e.signal} metric`,
        );
      });

      it('has a fault recipe that acts on what the rule reads', () => {
        const read = new Set(exprsOf(e).flatMap((x) => metricNamesOf(x)));
        assert.ok(e.fault.series.length > 0 || e.fault.node !== undefined, 'empty recipe');
        for (const s of e.fault.series)
          assert.ok(read.has(s.metric), `${s.metric} is not in the expr`);
        for (const s of e.fault.series) {
          const ops = [s.value !== undefined, s.add !== undefined, s.remove === true].filter(
            Boolean,
          );
          assert.equal(ops.length, 1, `${s.metric}: exactly one of value, add, remove`);
        }
        if (labelValues(e).some((v) => v.includes('{device}')))
          assert.ok(e.fault.defaultDevice !== undefined);
      });

      if (e.signal === 'kubernetes') {
        it('is read from the node object, with a kube-state-metrics form and a node effect', () => {
          assert.equal(e.expr, '');
          assert.ok(
            e.nodeField !== undefined && e.ksmExpr !== undefined && e.fault.node !== undefined,
          );
        });
      }
    });
  }
});

describe('signals and metrics', () => {
  it('has a presence query for every exporter signal, grouped by node', () => {
    for (const s of SIGNALS) {
      const q = SIGNAL_PRESENCE[s];
      if (s === 'kubernetes' || s === 'prometheus') {
        assert.equal(q, null);
        continue;
      }
      assert.ok(q !== null, `${s} has no presence query`);
      const info = inspect(q);
      assert.equal(info.errors, 0);
      assert.deepEqual(info.byLabels[0], ['node']);
    }
  });

  it('lists exactly the metrics the rules and presence queries read', () => {
    const names = METRICS.map((m) => m.name);
    assert.equal(new Set(names).size, names.length, 'duplicate MetricSpec');
    const used = new Set(
      [
        ...CATALOGUE.flatMap(exprsOf),
        ...Object.values(SIGNAL_PRESENCE).filter((q) => q !== null),
        ...Object.values(COLLECTOR_HEALTH),
      ]
        .flatMap((q) => metricNamesOf(q))
        .filter((m) => !PROMETHEUS_SERIES.includes(m)),
    );
    assert.deepEqual([...used].filter((m) => !names.includes(m)).sort(), [], 'used but not listed');
    assert.deepEqual(names.filter((m) => !used.has(m)).sort(), [], 'listed but unused');
  });

  it('names every presence metric after its own signal', () => {
    for (const s of SIGNALS) {
      const q = SIGNAL_PRESENCE[s];
      if (q === null) continue;
      for (const m of metricNamesOf(q)) {
        if (PROMETHEUS_SERIES.includes(m)) continue;
        assert.equal(METRICS.find((x) => x.name === m)?.signal, s, m);
      }
    }
  });
});
