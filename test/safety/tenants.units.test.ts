/**
 * The pieces behind "tenants cannot get healthy nodes cordoned" (issue 12, item 8): the
 * `systemNamespaces` setting (defaults, validation, a site's own list scoping both the PromQL and
 * the force delete), the pod fields read from the API (finalizers, deletionTimestamp) and the rule
 * deciding which terminating pod may be force-deleted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { CATALOGUE } from '../../src/catalogue/index.js';
import {
  DEFAULT_SYSTEM_NAMESPACES,
  namespaceMatcher,
  namespacePredicate,
} from '../../src/catalogue/namespaces.js';
import {
  scopePodConditions,
  startErrorExpr,
  terminatingPodExpr,
} from '../../src/catalogue/node.js';
import { loadConfig } from '../../src/config/load.js';
import { ErrorCode, isHealError } from '../../src/core/errors.js';
import { whyNotForceDelete } from '../../src/engine/bridge.js';
import type { PodInfo } from '../../src/k8s/cluster.js';
import { toPodInfo } from '../../src/k8s/kube-convert.js';
import { loadSeries } from '../../src/promql/load-series.js';
import { createMemorySeriesSource } from '../../src/promql/memory-source.js';
import { compilePromQL } from '../../src/promql/parse.js';

const dir = mkdtempSync(join(tmpdir(), 'aegis-tenants-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});
function configFile(text: string): string {
  const p = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(p, text);
  return p;
}

describe('systemNamespaces: the setting', () => {
  it('defaults to the system namespaces of a GPU cluster', () => {
    const c = loadConfig({});
    assert.deepEqual(c.systemNamespaces, DEFAULT_SYSTEM_NAMESPACES);
    for (const ns of ['kube-system', 'gpu-operator', 'network-operator', 'monitoring'])
      assert.ok(c.systemNamespaces.includes(ns), ns);
    assert.ok(!c.systemNamespaces.includes('default'), 'a tenant namespace');
  });

  it('takes names and prefixes', () => {
    const c = loadConfig({ file: configFile('systemNamespaces: [kube-system, calico-*]\n') });
    assert.deepEqual(c.systemNamespaces, ['kube-system', 'calico-*']);
  });

  const bad: [string, string, RegExp][] = [
    ['an empty list', 'systemNamespaces: []\n', /at least one namespace/],
    ['an upper-case name', 'systemNamespaces: [Kube-System]\n', /namespace name/],
    ['a bare *', 'systemNamespaces: ["*"]\n', /prefix ending in \*/],
    ['a regex', 'systemNamespaces: ["kube-.+"]\n', /namespace name/],
  ];
  for (const [name, text, pattern] of bad) {
    it(`rejects ${name}, naming the field`, () => {
      assert.throws(
        () => loadConfig({ file: configFile(text) }),
        (err) =>
          isHealError(err, ErrorCode.ConfigInvalid) &&
          pattern.test(err.message) &&
          err.message.includes('systemNamespaces'),
      );
    });
  }

  it('the PromQL matcher and the predicate agree on names and prefixes', () => {
    const patterns = ['kube-system', 'calico-*'];
    assert.equal(namespaceMatcher(patterns), 'namespace=~"kube-system|calico-.*"');
    const isSystem = namespacePredicate(patterns);
    assert.deepEqual(
      ['kube-system', 'calico-system', 'calico-', 'kube-system2', 'team-a', 'calic'].map(isSystem),
      [true, true, true, false, false, false],
    );
    assert.throws(
      () => namespaceMatcher(['ok', 'not ok']),
      (err) => isHealError(err, ErrorCode.InvalidInput) && err.message.includes('"not ok"'),
    );
  });
});

describe("systemNamespaces: a site's own list scopes the pod-derived conditions", () => {
  const series = createMemorySeriesSource(
    loadSeries(60_000, {
      'kube_pod_info{namespace="team-a",pod="agent-n1",node="n1",created_by_kind="DaemonSet",created_by_name="agent"}':
        '1x120',
      'kube_pod_container_status_terminated_reason{namespace="team-a",pod="agent-n1",container="c",reason="StartError"}':
        '1x120',
      'kube_pod_deletion_timestamp{namespace="team-a",pod="agent-n1"}': '0x120',
      'kube_pod_container_status_running{namespace="team-a",pod="agent-n1",container="c"}': '1x120',
    }),
  );
  const nodes = (expr: string): string[] =>
    compilePromQL(expr)
      .evaluate(series, 120 * 60_000)
      .map((s) => s.labels.node ?? '');

  it('out of scope by default, in scope once the site lists the namespace', () => {
    assert.deepEqual(nodes(startErrorExpr(DEFAULT_SYSTEM_NAMESPACES)), []);
    assert.deepEqual(nodes(terminatingPodExpr(DEFAULT_SYSTEM_NAMESPACES)), []);
    assert.deepEqual(nodes(startErrorExpr(['kube-system', 'team-*'])), ['n1']);
    assert.deepEqual(nodes(terminatingPodExpr(['team-a'])), ['n1']);
  });

  it('scopePodConditions rewrites exactly the pod-derived entries', () => {
    const scoped = scopePodConditions(CATALOGUE, ['team-a']);
    const changed = scoped.filter((e, i) => e !== CATALOGUE[i]).map((e) => e.name);
    assert.deepEqual(changed.sort(), ['KubeletFailedCreatePodContainer', 'NodeHasTerminatingPod']);
    assert.equal(
      scopePodConditions(CATALOGUE, DEFAULT_SYSTEM_NAMESPACES).find(
        (e) => e.name === 'NodeHasTerminatingPod',
      )?.expr,
      CATALOGUE.find((e) => e.name === 'NodeHasTerminatingPod')?.expr,
      'the catalogue itself is scoped to the defaults',
    );
  });
});

/** A pod as the client's JSON (the conversion reads plain fields only). */
const apiPod = (o: object): V1Pod => o;

describe('force delete: which terminating pod may go', () => {
  const NOW = Date.UTC(2026, 0, 2);
  const isSystem = namespacePredicate(DEFAULT_SYSTEM_NAMESPACES);
  const pod = (o: Partial<PodInfo>): PodInfo => ({
    namespace: 'kube-system',
    name: 'p',
    node: 'n1',
    phase: 'Running',
    daemonSet: true,
    mirror: false,
    labels: {},
    deletionTimestampMs: NOW - 60_000,
    ...o,
  });
  const cases: [string, PodInfo, string | undefined][] = [
    ['a system pod past its grace period', pod({}), undefined],
    ["a tenant's pod past its grace period", pod({ namespace: 'team-a' }), 'tenant namespace'],
    ["a tenant's pod in `default`", pod({ namespace: 'default' }), 'tenant namespace'],
    ['a system pod held by a finalizer', pod({ finalizers: ['x.io/f'] }), 'finalizers'],
    [
      'a system pod within its grace period',
      pod({ deletionTimestampMs: NOW + 1000 }),
      'within its grace period',
    ],
  ];
  for (const [name, p, why] of cases) {
    it(`${name}: ${why ?? 'force-deleted'}`, () => {
      assert.equal(whyNotForceDelete(p, NOW, isSystem), why);
    });
  }

  it('the API pod carries its finalizers and deletionTimestamp', () => {
    const at = new Date(NOW);
    const info = toPodInfo(
      apiPod({
        metadata: {
          name: 'a',
          namespace: 'team-a',
          deletionTimestamp: at,
          finalizers: ['example.com/checkpoint-upload'],
        },
        spec: { nodeName: 'n1', containers: [] },
        status: { phase: 'Running' },
      }),
    );
    assert.deepEqual(info.finalizers, ['example.com/checkpoint-upload']);
    assert.equal(info.deletionTimestampMs, NOW);
    const plain = toPodInfo(apiPod({ metadata: { name: 'b' } }));
    assert.equal('finalizers' in plain, false);
  });
});
