import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { findCondition } from '../catalogue/index.js';
import { DEFAULT_NPD_MAPPING } from '../catalogue/npd.js';
import type { NodeInfo } from '../core/types.js';
import { toConditionInfos, type NodeConditionFields } from '../k8s/kube-convert.js';
import { ConditionTracker } from './condition-tracker.js';
import {
  AGENT_STALE_AFTER_MS,
  isFresh,
  nodeConditionSources,
  readNodeConditions,
  type NodeConditionSource,
} from './node-conditions.js';

/** A GKE node's real conditions with NPD v0.4.1, all healthy (test/fixtures/npd/README.md). */
const GKE = JSON.parse(
  readFileSync(new URL('../../test/fixtures/npd/node-conditions.json', import.meta.url), 'utf8'),
) as NodeConditionFields[];
/** Its last NPD heartbeat. */
const HEARTBEAT = Date.parse('2019-03-15T10:49:17Z');
const NOW = HEARTBEAT + 60_000;
const SOURCES = nodeConditionSources({
  problems: DEFAULT_NPD_MAPPING.problems,
  staleAfterMs: 900_000,
});

function node(name: string, conditions: readonly NodeConditionFields[]): NodeInfo {
  const infos = toConditionInfos(conditions);
  return {
    name,
    resourceVersion: '1',
    ready: true,
    unschedulable: false,
    labels: {},
    annotations: {},
    taints: [],
    ...(infos === undefined ? {} : { conditions: infos }),
  };
}

/** The GKE conditions with one of them changed. */
function withCondition(
  change: Partial<NodeConditionFields> & { readonly type: string },
): NodeConditionFields[] {
  return GKE.map((c) => (c.type === change.type ? { ...c, ...change } : c));
}

const read = (nodes: readonly NodeInfo[], nowMs = NOW, sources = SOURCES) =>
  readNodeConditions(nodes, sources, findCondition, nowMs);

describe('readNodeConditions: node-problem-detector', () => {
  it('sees nothing on a healthy node, and vouches for every NPD condition it reports on', () => {
    const r = read([node('n1', GKE)]);
    assert.deepEqual(r.observations, []);
    assert.deepEqual([...(r.fresh.get('n1') ?? [])].sort(), [
      'NpdCorruptDockerOverlay2',
      'NpdFrequentContainerRuntimeRestart',
      'NpdFrequentKubeletRestart',
      'NpdFrequentUnregisterNetDevice',
      'NpdKernelDeadlock',
      'NpdReadonlyFilesystem',
    ]);
  });

  it('turns a True NPD condition into an observation of its catalogue condition', () => {
    const bad = withCondition({
      type: 'KernelDeadlock',
      status: 'True',
      reason: 'DockerHung',
      message: 'kernel: INFO: task docker:20744 blocked for more than 120 seconds.',
      lastTransitionTime: '2019-03-15T10:48:00Z',
    });
    const r = read([node('n1', GKE), node('n2', bad)]);
    assert.deepEqual(r.observations, [
      {
        node: 'n2',
        domain: 'System',
        condition: 'NpdKernelDeadlock',
        id: '',
        pciBdf: '',
        msg: 'KernelDeadlock=True reason=DockerHung (node-problem-detector): kernel: INFO: task docker:20744 blocked for more than 120 seconds.',
        value: 1,
      },
    ]);
  });

  it('gives one observation when two NPD types map to one condition', () => {
    const bad = withCondition({ type: 'FrequentDockerRestart', status: 'True' }).map((c) =>
      c.type === 'FrequentContainerdRestart' ? { ...c, status: 'True' } : c,
    );
    const r = read([node('n1', bad)]);
    assert.deepEqual(
      r.observations.map((o) => o.condition),
      ['NpdFrequentContainerRuntimeRestart'],
    );
  });

  it('honours a reason in the mapping', () => {
    const sources: NodeConditionSource[] = [
      {
        name: 'node-problem-detector',
        signal: 'node-problem-detector',
        mappings: [
          { type: 'KernelDeadlock', reason: 'AUFSUmountHung', condition: 'NpdKernelDeadlock' },
        ],
        staleAfterMs: 0,
      },
    ];
    const docker = withCondition({ type: 'KernelDeadlock', status: 'True', reason: 'DockerHung' });
    const aufs = withCondition({
      type: 'KernelDeadlock',
      status: 'True',
      reason: 'AUFSUmountHung',
    });
    const r = read([node('a', docker), node('b', aufs)], NOW, sources);
    assert.deepEqual(
      r.observations.map((o) => o.node),
      ['b'],
    );
    // The type is reported on both: both are fresh (the reason only picks the fault).
    assert.ok(isFresh(r, 'a', 'NpdKernelDeadlock') && isFresh(r, 'b', 'NpdKernelDeadlock'));
  });

  it('trusts nothing whose heartbeat is older than staleAfterMs (NPD stopped writing)', () => {
    const bad = withCondition({
      type: 'ReadonlyFilesystem',
      status: 'True',
      reason: 'FilesystemIsReadOnly',
    });
    const late = HEARTBEAT + 900_001;
    const r = read([node('n1', bad)], late);
    assert.deepEqual(r.observations, []);
    assert.equal(r.fresh.get('n1')?.has('NpdReadonlyFilesystem') ?? false, false);
    // Within the bound it is seen.
    assert.equal(read([node('n1', bad)], HEARTBEAT + 900_000).observations.length, 1);
  });

  it('vouches only for conditions of its own signal (a shared target keeps its producer)', () => {
    const sources: NodeConditionSource[] = [
      {
        name: 'node-problem-detector',
        signal: 'node-problem-detector',
        // KernelDeadlock is read from the Aegis agent: NPD may raise it, not declare it fresh.
        mappings: [{ type: 'KernelDeadlock', condition: 'KernelDeadlock' }],
        staleAfterMs: 0,
      },
    ];
    const bad = withCondition({ type: 'KernelDeadlock', status: 'True', reason: 'DockerHung' });
    const r = read([node('n1', GKE), node('n2', bad)], NOW, sources);
    assert.deepEqual(
      r.observations.map((o) => [o.node, o.condition, o.domain]),
      [['n2', 'KernelDeadlock', 'System']],
    );
    assert.equal(r.fresh.size, 0);
  });

  it('ignores Unknown status and types nothing maps', () => {
    const odd = [
      ...withCondition({ type: 'KernelDeadlock', status: 'Unknown' }),
      { type: 'SomethingElse', status: 'True', reason: 'X' },
    ];
    const r = read([node('n1', odd)]);
    assert.deepEqual(r.observations, []);
    assert.equal(r.fresh.get('n1')?.has('NpdKernelDeadlock'), false);
  });
});

describe('readNodeConditions: the Aegis agent (aegis.io/…)', () => {
  const agent = (
    type: string,
    status: string,
    reason: string,
    heartbeat = NOW,
  ): NodeConditionFields => ({
    type,
    status,
    reason,
    message: 'Xid 79 on GPU 0000:1b:00.0 (kernel log, this boot)',
    lastTransitionTime: new Date(heartbeat).toISOString(),
    lastHeartbeatTime: new Date(heartbeat).toISOString(),
  });

  it('maps GpuXid by its reason, GpuHung, and vouches for its own (aegis-nodecheck) conditions', () => {
    const r = read([
      node('n1', [
        agent('aegis.io/GpuXid', 'True', 'Xid79'),
        agent('aegis.io/GpuHung', 'False', 'GpuResponsive'),
      ]),
      node('n2', [agent('aegis.io/GpuHung', 'True', 'NvidiaSmiTimeout')]),
    ]);
    assert.deepEqual(
      r.observations.map((o) => [o.node, o.condition, o.domain]),
      [
        ['n1', 'Xid79GPULost', 'GPU'],
        ['n2', 'GpuHung', 'GPU'],
      ],
    );
    // GpuHung is the agent's own signal; the XIDs are dcgm-exporter's and stay its.
    assert.ok(isFresh(r, 'n1', 'GpuHung'));
    assert.equal(isFresh(r, 'n1', 'Xid79GPULost'), false);
  });

  it('goes stale after AGENT_STALE_AFTER_MS without a write', () => {
    const old = NOW - AGENT_STALE_AFTER_MS - 1;
    const r = read([node('n1', [agent('aegis.io/GpuHung', 'True', 'NvidiaSmiTimeout', old)])]);
    assert.deepEqual(r.observations, []);
  });
});

describe('node conditions through the ConditionTracker', () => {
  it('raise, hold while NPD is silent, and clear only on a fresh False', () => {
    const tracker = new ConditionTracker(() => ({ forMs: 0, clearForMs: 0 }));
    const bad = withCondition({
      type: 'ReadonlyFilesystem',
      status: 'True',
      reason: 'FilesystemIsReadOnly',
      lastHeartbeatTime: '2019-03-15T10:49:17Z',
    });
    // NPD's metrics are not scraped: the inspector calls every NPD condition stale.
    const inspectorStale = (): boolean => true;
    const cycle = (nodes: NodeInfo[], at: number) => {
      const r = read(nodes, at);
      return tracker.update(r.observations, at, (n, c) => !isFresh(r, n, c) && inspectorStale());
    };
    assert.deepEqual(
      cycle([node('n1', bad)], NOW).map((e) => [e.kind, e.instance.condition]),
      [['raised', 'NpdReadonlyFilesystem']],
    );
    // NPD stops writing: its last word (True) ages out; the condition is held, not cleared.
    assert.deepEqual(cycle([node('n1', bad)], HEARTBEAT + 3_600_000), []);
    // NPD is back and says False: cleared.
    const healthy = withCondition({
      type: 'ReadonlyFilesystem',
      lastHeartbeatTime: new Date(HEARTBEAT + 3_660_000).toISOString(),
    });
    assert.deepEqual(
      cycle([node('n1', healthy)], HEARTBEAT + 3_670_000).map((e) => e.kind),
      ['cleared'],
    );
  });
});
