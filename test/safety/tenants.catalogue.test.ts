/**
 * Tenants cannot get healthy nodes cordoned (issue 12, item 8), at the level of the catalogue's
 * PromQL: the pod-derived conditions read only the system namespaces and need node-level
 * evidence, and the pressure conditions leave a node alone while every GPU is at work. Each case
 * is evaluated by our PromQL engine and, when promtool is installed, by the real Prometheus
 * engine (`promtool test rules`) against the same expectations.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../../src/catalogue/index.js';
import { loadSeries } from '../../src/promql/load-series.js';
import { createMemorySeriesSource } from '../../src/promql/memory-source.js';
import { compilePromQL } from '../../src/promql/parse.js';

/** Samples every minute from 0 to 2 h; the expressions are evaluated at 2 h. */
const STEPS = 120;
const NOW_S = STEPS * 60;
const KSM = 'job="kube-state-metrics"';

type SeriesSpec = Record<string, string>;
const flat = (v: number): string => `${v}x${STEPS}`;

/** One pod as kube-state-metrics shows it (`kube_pod_info` with its owner). */
function pod(ns: string, name: string, node: string, kind: string, owner: string): SeriesSpec {
  return {
    [`kube_pod_info{${KSM},namespace="${ns}",pod="${name}",node="${node}",created_by_kind="${kind}",created_by_name="${owner}"}`]:
      flat(1),
  };
}
/** A container of the pod whose runtime could not create it. */
function startError(ns: string, name: string): SeriesSpec {
  return {
    [`kube_pod_container_status_terminated_reason{${KSM},namespace="${ns}",pod="${name}",container="main",reason="StartError"}`]:
      flat(1),
  };
}
/**
 * The pod is terminating: its deletionTimestamp (the end of its grace period) was `agoS` seconds
 * before now; `running` says whether the kubelet still reports its container running.
 */
function terminating(ns: string, name: string, agoS: number, running: boolean): SeriesSpec {
  return {
    [`kube_pod_deletion_timestamp{${KSM},namespace="${ns}",pod="${name}"}`]: flat(NOW_S - agoS),
    [`kube_pod_container_status_running{${KSM},namespace="${ns}",pod="${name}",container="main"}`]:
      flat(running ? 1 : 0),
  };
}
/** Node load per core in % (64 cores). */
function cpuLoad(node: string, percent: number): SeriesSpec {
  return {
    [`node_load5{job="node-exporter",node="${node}"}`]: flat((64 * percent) / 100),
    [`kube_node_status_capacity{${KSM},node="${node}",resource="cpu",unit="core"}`]: flat(64),
  };
}
/** Memory in use in %. */
function memoryUsed(node: string, percent: number): SeriesSpec {
  const total = 2_000_000_000_000;
  return {
    [`node_memory_MemTotal_bytes{job="node-exporter",node="${node}"}`]: flat(total),
    [`node_memory_MemAvailable_bytes{job="node-exporter",node="${node}"}`]: flat(
      (total * (100 - percent)) / 100,
    ),
  };
}
/** dcgm-exporter's utilisation of each GPU of the node, in %. */
function gpuUtil(node: string, utils: readonly number[]): SeriesSpec {
  return Object.fromEntries(
    utils.map((u, gpu) => [
      `DCGM_FI_DEV_GPU_UTIL{job="dcgm-exporter",node="${node}",Hostname="${node}",gpu="${gpu}"}`,
      flat(u),
    ]),
  );
}

/** One situation and what each condition must return for it (node → value; absent = quiet). */
interface Case {
  readonly name: string;
  readonly condition: string;
  readonly series: SeriesSpec;
  readonly expect: Readonly<Record<string, number>>;
}

const START_ERROR = 'KubeletFailedCreatePodContainer';
const TERMINATING = 'NodeHasTerminatingPod';

const CASES: readonly Case[] = [
  // ---------------------------------------------------------------- StartError
  {
    name: "one tenant's broken pod (StartError in a tenant namespace)",
    condition: START_ERROR,
    series: {
      ...pod('team-a', 'train-0', 'n1', 'Job', 'train'),
      ...startError('team-a', 'train-0'),
    },
    expect: {},
  },
  {
    name: "three tenants' broken pods on one node (tenant namespaces are out of scope)",
    condition: START_ERROR,
    series: {
      ...pod('team-a', 'a-0', 'n1', 'Job', 'a'),
      ...startError('team-a', 'a-0'),
      ...pod('team-b', 'b-0', 'n1', 'ReplicaSet', 'b-5d8f'),
      ...startError('team-b', 'b-0'),
      ...pod('default', 'c-0', 'n1', 'StatefulSet', 'c'),
      ...startError('default', 'c-0'),
    },
    expect: {},
  },
  {
    name: 'one system Deployment pod (one owner, not a DaemonSet: not node-level evidence)',
    condition: START_ERROR,
    series: {
      ...pod('monitoring', 'grafana-7c9d-x2', 'n1', 'ReplicaSet', 'grafana-7c9d'),
      ...startError('monitoring', 'grafana-7c9d-x2'),
    },
    expect: {},
  },
  {
    name: "a system DaemonSet's pod fails on this node only",
    condition: START_ERROR,
    series: {
      ...pod(
        'gpu-operator',
        'nvidia-device-plugin-daemonset-k2',
        'n1',
        'DaemonSet',
        'nvidia-device-plugin-daemonset',
      ),
      ...startError('gpu-operator', 'nvidia-device-plugin-daemonset-k2'),
      ...pod(
        'gpu-operator',
        'nvidia-device-plugin-daemonset-q8',
        'n2',
        'DaemonSet',
        'nvidia-device-plugin-daemonset',
      ),
    },
    expect: { n1: 1 },
  },
  {
    name: 'pods of two system owners fail on one node',
    condition: START_ERROR,
    series: {
      ...pod('monitoring', 'grafana-7c9d-x2', 'n1', 'ReplicaSet', 'grafana-7c9d'),
      ...startError('monitoring', 'grafana-7c9d-x2'),
      ...pod('kube-system', 'coredns-5d78-a1', 'n1', 'ReplicaSet', 'coredns-5d78'),
      ...startError('kube-system', 'coredns-5d78-a1'),
      ...pod('kube-system', 'coredns-5d78-b2', 'n2', 'ReplicaSet', 'coredns-5d78'),
    },
    expect: { n1: 2 },
  },
  {
    name: 'a broken DaemonSet rollout fails on three nodes (the DaemonSet, not the nodes)',
    condition: START_ERROR,
    series: Object.assign(
      {},
      ...['n1', 'n2', 'n3'].flatMap((n) => [
        pod('gpu-operator', `dcgm-exporter-${n}`, n, 'DaemonSet', 'nvidia-dcgm-exporter'),
        startError('gpu-operator', `dcgm-exporter-${n}`),
      ]),
    ) as SeriesSpec,
    expect: {},
  },
  {
    name: 'two DaemonSets broken everywhere give no node two owners of its own',
    condition: START_ERROR,
    series: Object.assign(
      {},
      ...['n1', 'n2', 'n3'].flatMap((n) => [
        pod('gpu-operator', `dcgm-exporter-${n}`, n, 'DaemonSet', 'nvidia-dcgm-exporter'),
        startError('gpu-operator', `dcgm-exporter-${n}`),
        pod('gpu-operator', `device-plugin-${n}`, n, 'DaemonSet', 'nvidia-device-plugin'),
        startError('gpu-operator', `device-plugin-${n}`),
      ]),
    ) as SeriesSpec,
    expect: {},
  },
  // ---------------------------------------------------------------- Terminating
  {
    name: "a tenant's pod held Terminating by a finalizer (its containers stopped)",
    condition: TERMINATING,
    series: {
      ...pod('team-a', 'train-0', 'n1', 'Job', 'train'),
      ...terminating('team-a', 'train-0', 2 * 3600, false),
    },
    expect: {},
  },
  {
    name: "a tenant's pod stuck with a running container (tenant namespaces are out of scope)",
    condition: TERMINATING,
    series: {
      ...pod('team-a', 'train-0', 'n1', 'Job', 'train'),
      ...terminating('team-a', 'train-0', 2 * 3600, true),
      ...pod('team-b', 'infer-0', 'n1', 'ReplicaSet', 'infer-6f'),
      ...terminating('team-b', 'infer-0', 2 * 3600, false),
    },
    expect: {},
  },
  {
    name: 'one system pod held by a finalizer (containers stopped: the kubelet did its part)',
    condition: TERMINATING,
    series: {
      ...pod('monitoring', 'agent-x', 'n1', 'ReplicaSet', 'agent'),
      ...terminating('monitoring', 'agent-x', 2 * 3600, false),
    },
    expect: {},
  },
  {
    name: 'a system pod whose container the kubelet never stopped, 40 min past its grace period',
    condition: TERMINATING,
    series: {
      ...pod('gpu-operator', 'dcgm-exporter-n1', 'n1', 'DaemonSet', 'nvidia-dcgm-exporter'),
      ...terminating('gpu-operator', 'dcgm-exporter-n1', 40 * 60, true),
    },
    expect: { n1: 1 },
  },
  {
    name: 'a system pod still running 10 min past its grace period (not yet stuck)',
    condition: TERMINATING,
    series: {
      ...pod('gpu-operator', 'dcgm-exporter-n1', 'n1', 'DaemonSet', 'nvidia-dcgm-exporter'),
      ...terminating('gpu-operator', 'dcgm-exporter-n1', 10 * 60, true),
    },
    expect: {},
  },
  {
    name: 'two system pods stuck past their grace period on one node',
    condition: TERMINATING,
    series: {
      ...pod('kube-system', 'kube-proxy-n1', 'n1', 'DaemonSet', 'kube-proxy'),
      ...terminating('kube-system', 'kube-proxy-n1', 3600, false),
      ...pod('network-operator', 'rdma-shared-dp-n1', 'n1', 'DaemonSet', 'rdma-shared-dp-ds'),
      ...terminating('network-operator', 'rdma-shared-dp-n1', 3600, false),
      ...pod('team-a', 'train-0', 'n1', 'Job', 'train'),
      ...terminating('team-a', 'train-0', 3600, true),
    },
    expect: { n1: 2 },
  },
  // ---------------------------------------------------------------- pressure vs busy GPUs
  {
    name: 'CPU saturated while every GPU works on its job',
    condition: 'CPUPressure',
    series: { ...cpuLoad('n1', 150), ...gpuUtil('n1', [97, 95, 99, 88, 100, 93, 96, 91]) },
    expect: {},
  },
  {
    name: 'CPU saturated with one GPU idle',
    condition: 'CPUPressure',
    series: { ...cpuLoad('n1', 150), ...gpuUtil('n1', [97, 95, 99, 0, 100, 93, 96, 91]) },
    expect: { n1: 150 },
  },
  {
    name: 'CPU saturated and no GPU reported (dcgm-exporter silent: act, as the original did)',
    condition: 'CPUPressure',
    series: { ...cpuLoad('n1', 150) },
    expect: { n1: 150 },
  },
  {
    name: 'memory full while every GPU works on its job',
    condition: 'MemoryPressure',
    series: { ...memoryUsed('n1', 95), ...gpuUtil('n1', [97, 95, 99, 88, 100, 93, 96, 91]) },
    expect: {},
  },
  {
    name: 'memory full with every GPU idle',
    condition: 'MemoryPressure',
    series: { ...memoryUsed('n1', 95), ...gpuUtil('n1', [0, 0, 0, 0, 0, 0, 0, 0]) },
    expect: { n1: 95 },
  },
];

function exprOf(condition: string): string {
  const entry = CATALOGUE.find((e) => e.name === condition);
  assert.ok(entry !== undefined, condition);
  return entry.expr;
}

function evaluate(expr: string, series: SeriesSpec): Record<string, number> {
  const source = createMemorySeriesSource(loadSeries(60_000, series));
  const out: Record<string, number> = {};
  for (const s of compilePromQL(expr).evaluate(source, NOW_S * 1000)) {
    out[s.labels.node ?? '(no node)'] = Math.round(s.value * 1000) / 1000;
  }
  return out;
}

describe('tenants: pod-derived and pressure conditions need node-level evidence (PromQL)', () => {
  for (const c of CASES) {
    it(`${c.condition}: ${c.name}`, () => {
      assert.deepEqual(evaluate(exprOf(c.condition), c.series), c.expect, exprOf(c.condition));
    });
  }
});

/** The same cases as a `promtool test rules` file (expected samples are the cases' own). */
function promtoolFile(cases: readonly Case[], exprFor: (c: Case) => string): string {
  const lines = ['evaluation_interval: 1m', 'tests:'];
  for (const c of cases) {
    lines.push('  - interval: 1m', '    input_series:');
    for (const [series, values] of Object.entries(c.series)) {
      lines.push(
        `      - series: ${JSON.stringify(series)}`,
        `        values: ${JSON.stringify(values)}`,
      );
    }
    lines.push('    promql_expr_test:', `      - expr: ${JSON.stringify(exprFor(c))}`);
    lines.push(`        eval_time: ${STEPS}m`);
    const nodes = Object.entries(c.expect);
    lines.push(nodes.length === 0 ? '        exp_samples: []' : '        exp_samples:');
    for (const [node, value] of nodes) {
      lines.push(`          - labels: '{node="${node}"}'`, `            value: ${value}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Runs promtool on the cases; returns its complaint, or '' when it agrees. */
function promtoolDisagreement(cases: readonly Case[], exprFor: (c: Case) => string): string {
  const dir = mkdtempSync(join(tmpdir(), 'aegis-tenants-'));
  try {
    const file = join(dir, 'tenants.test.yml');
    writeFileSync(file, promtoolFile(cases, exprFor));
    try {
      execFileSync('promtool', ['test', 'rules', file], { encoding: 'utf8' });
      return '';
    } catch (err) {
      const failed = err as { stdout?: string; stderr?: string };
      return `${failed.stdout ?? ''}${failed.stderr ?? ''}`;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

describe('tenants: the real Prometheus engine agrees', () => {
  it(
    `${CASES.length} cases through promtool test rules`,
    { skip: hasPromtool ? false : 'promtool not installed (Debian package "prometheus")' },
    () => {
      assert.equal(
        promtoolDisagreement(CASES, (c) => exprOf(c.condition)),
        '',
      );
    },
  );
});
