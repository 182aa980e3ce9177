import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { V1Job, V1Lease, V1Node, V1Pod } from '@kubernetes/client-node';
import { ErrorCode } from '../core/errors.js';
import {
  collectPages,
  decideLease,
  latestPod,
  nextRenewTimeMs,
  toExitCode,
  toHealError,
  toJobPhase,
  toLogLines,
  toNodeInfo,
  toPodInfo,
  toV1Event,
  type NodeConditionFields,
} from './kube-convert.js';

// The client's models are classes with only optional fields; plain objects stand in for them.
const node = (o: object): V1Node => o;
const pod = (o: object): V1Pod => o;
const job = (o: object): V1Job => o;
const lease = (o: object): V1Lease => o;

describe('toNodeInfo', () => {
  const cases: readonly [string, string | undefined, boolean | 'Unknown'][] = [
    ['Ready=True', 'True', true],
    ['Ready=False', 'False', false],
    ['Ready=Unknown', 'Unknown', 'Unknown'],
    ['no Ready condition', undefined, 'Unknown'],
  ];
  for (const [name, status, ready] of cases) {
    it(name, () => {
      const conditions = status === undefined ? [] : [{ type: 'Ready', status }];
      assert.equal(
        toNodeInfo(node({ metadata: { name: 'n' }, status: { conditions } })).ready,
        ready,
      );
    });
  }

  it('keeps cordon, labels, annotations and known taints', () => {
    const info = toNodeInfo(
      node({
        metadata: { name: 'n', resourceVersion: '7', labels: { a: '1' }, annotations: { b: '2' } },
        spec: {
          unschedulable: true,
          taints: [
            { key: 'k', value: 'v', effect: 'NoSchedule' },
            { key: 'x', effect: 'NoExecute' },
            { key: 'odd', effect: 'Weird' },
          ],
        },
      }),
    );
    assert.deepEqual(info, {
      name: 'n',
      resourceVersion: '7',
      ready: 'Unknown',
      unschedulable: true,
      labels: { a: '1' },
      annotations: { b: '2' },
      taints: [
        { key: 'k', value: 'v', effect: 'NoSchedule' },
        { key: 'x', effect: 'NoExecute' },
      ],
    });
  });
});

describe('toNodeInfo: the detectors’ conditions', () => {
  // A GKE node's real status.conditions with node-problem-detector v0.4.1 (test/fixtures/npd).
  const gke = JSON.parse(
    readFileSync(new URL('../../test/fixtures/npd/node-conditions.json', import.meta.url), 'utf8'),
  ) as NodeConditionFields[];

  it("keeps NPD's conditions (not the kubelet's), without the messages of healthy ones", () => {
    const info = toNodeInfo(
      node({ metadata: { name: 'super-node' }, status: { conditions: gke } }),
    );
    assert.equal(info.ready, true);
    assert.deepEqual(
      info.conditions?.map((c) => c.type),
      [
        'FrequentKubeletRestart',
        'FrequentDockerRestart',
        'FrequentContainerdRestart',
        'CorruptDockerOverlay2',
        'KernelDeadlock',
        'ReadonlyFilesystem',
        'FrequentUnregisterNetDevice',
        'OutOfDisk',
      ],
    );
    assert.deepEqual(info.conditions.at(4), {
      type: 'KernelDeadlock',
      status: 'False',
      reason: 'KernelHasNoDeadlock',
      sinceMs: Date.parse('2019-03-07T13:35:01Z'),
      heartbeatMs: Date.parse('2019-03-15T10:49:17Z'),
    });
  });

  it('keeps the message of a True condition; reads Date objects (list) and strings (watch)', () => {
    const at = Date.UTC(2026, 0, 2);
    for (const time of [new Date(at), new Date(at).toISOString()]) {
      const conditions = [
        {
          type: 'aegis.io/GpuHung',
          status: 'True',
          reason: 'NvidiaSmiTimeout',
          message: 'nvidia-smi did not answer within its deadline',
          lastTransitionTime: time,
          lastHeartbeatTime: time,
        },
      ];
      const info = toNodeInfo(node({ metadata: { name: 'n' }, status: { conditions } }));
      assert.deepEqual(info.conditions, [
        {
          type: 'aegis.io/GpuHung',
          status: 'True',
          reason: 'NvidiaSmiTimeout',
          message: 'nvidia-smi did not answer within its deadline',
          sinceMs: at,
          heartbeatMs: at,
        },
      ]);
    }
  });

  it('has no conditions field on a node with only the kubelet’s', () => {
    const info = toNodeInfo(
      node({
        metadata: { name: 'n' },
        status: { conditions: [{ type: 'Ready', status: 'True' }] },
      }),
    );
    assert.equal('conditions' in info, false);
  });
});

describe('toPodInfo', () => {
  it('tells DaemonSet pods (controller owner) and mirror pods', () => {
    const ds = toPodInfo(
      pod({
        metadata: {
          name: 'a',
          namespace: 'ns',
          ownerReferences: [{ kind: 'DaemonSet', name: 'd', controller: true }],
        },
        spec: { nodeName: 'n' },
        status: { phase: 'Running' },
      }),
    );
    assert.equal(ds.daemonSet, true);
    assert.equal(ds.mirror, false);
    const mirror = toPodInfo(
      pod({ metadata: { name: 'b', annotations: { 'kubernetes.io/config.mirror': 'h' } } }),
    );
    assert.equal(mirror.mirror, true);
    assert.equal(mirror.phase, 'Unknown');
  });

  it('carries the deletion timestamp of a terminating pod, from a Date or a string', () => {
    const at = Date.UTC(2026, 0, 2);
    for (const deletionTimestamp of [new Date(at), new Date(at).toISOString()]) {
      const info = toPodInfo(pod({ metadata: { name: 'c', deletionTimestamp } }));
      assert.equal(info.deletionTimestampMs, at);
    }
    assert.equal('deletionTimestampMs' in toPodInfo(pod({ metadata: { name: 'd' } })), false);
  });
});

describe('Job results', () => {
  const cases: readonly [string, object, string][] = [
    ['Complete', { conditions: [{ type: 'Complete', status: 'True' }] }, 'Succeeded'],
    ['Failed', { conditions: [{ type: 'Failed', status: 'True' }] }, 'Failed'],
    [
      'FailureTarget only',
      { conditions: [{ type: 'FailureTarget', status: 'True' }], active: 1 },
      'Running',
    ],
    ['active pod', { active: 1 }, 'Running'],
    ['nothing yet', {}, 'Pending'],
  ];
  for (const [name, status, phase] of cases) {
    it(`phase for ${name}`, () => {
      assert.equal(toJobPhase(job({ status })), phase);
    });
  }

  it('reads the exit code of the latest pod, preferring the ops container', () => {
    const older = pod({
      metadata: { name: 'p1', creationTimestamp: new Date(1000) },
      status: { containerStatuses: [{ name: 'ops', state: { terminated: { exitCode: 1 } } }] },
    });
    const newer = pod({
      metadata: { name: 'p2', creationTimestamp: new Date(2000) },
      status: {
        containerStatuses: [
          { name: 'sidecar', state: { terminated: { exitCode: 9 } } },
          { name: 'ops', state: { terminated: { exitCode: 24 } } },
        ],
      },
    });
    const latest = latestPod([older, newer]);
    assert.equal(latest?.metadata?.name, 'p2');
    assert.equal(toExitCode(latest), 24);
    assert.equal(toExitCode(undefined), undefined);
  });

  it('splits logs into lines without a trailing empty one', () => {
    assert.deepEqual(toLogLines('a\nb\n'), ['a', 'b']);
    assert.deepEqual(toLogLines(''), []);
  });
});

describe('toHealError', () => {
  const cases: readonly [number | undefined, ErrorCode][] = [
    [409, ErrorCode.K8sConflict],
    [404, ErrorCode.K8sNotFound],
    [403, ErrorCode.K8sForbidden],
    [401, ErrorCode.K8sForbidden],
    [422, ErrorCode.InvalidInput],
    [429, ErrorCode.K8sUnavailable],
    [503, ErrorCode.K8sUnavailable],
    [undefined, ErrorCode.K8sUnavailable],
  ];
  for (const [status, code] of cases) {
    it(`HTTP ${String(status)} → ${code}`, () => {
      const body = JSON.stringify({ kind: 'Status', message: 'the object has been modified' });
      const err = status === undefined ? new Error('connect ECONNREFUSED') : { code: status, body };
      const healed = toHealError(err, 'patch node n');
      assert.equal(healed.code, code);
      assert.equal(healed.cause, err);
      assert.match(healed.message, /^patch node n: /);
      if (status !== undefined) assert.match(healed.message, /the object has been modified/);
    });
  }
});

describe('decideLease', () => {
  const spec = { holderIdentity: 'a', leaseDurationSeconds: 15 };
  const held = lease({ metadata: { resourceVersion: '5' }, spec });

  it('renews for the holder, takes a lease with no holder at once', () => {
    assert.equal(decideLease(held, 'a', 0, undefined).action, 'renew');
    const free = lease({ metadata: { resourceVersion: '6' }, spec: { leaseDurationSeconds: 1 } });
    assert.equal(decideLease(free, 'b', 0, undefined).action, 'takeover');
  });

  it('waits one full duration from its own first observation, then takes over', () => {
    const first = decideLease(held, 'b', 1_000, undefined);
    assert.equal(first.action, 'wait');
    assert.equal(decideLease(held, 'b', 15_999, first.observation).action, 'wait');
    assert.equal(decideLease(held, 'b', 16_000, first.observation).action, 'takeover');
  });

  it('restarts the wait when the lease changed (the holder renewed)', () => {
    const first = decideLease(held, 'b', 0, undefined);
    const renewed = lease({ metadata: { resourceVersion: '9' }, spec });
    const again = decideLease(renewed, 'b', 20_000, first.observation);
    assert.equal(again.action, 'wait');
    assert.equal(again.observation.observedAtMs, 20_000);
  });

  it('always writes a renewTime newer than the current one', () => {
    const at = Date.UTC(2026, 0, 1);
    const current = lease({ spec: { renewTime: new Date(at).toISOString() } });
    assert.equal(nextRenewTimeMs(current, at), at + 1);
    assert.equal(nextRenewTimeMs(current, at + 50), at + 50);
    assert.equal(nextRenewTimeMs(lease({}), at), at);
  });
});

describe('helpers', () => {
  it('collectPages follows continue tokens', async () => {
    const pages: Record<string, { items: number[]; metadata?: { _continue?: string } }> = {
      '': { items: [1, 2], metadata: { _continue: 't1' } },
      t1: { items: [3], metadata: { _continue: '' } },
    };
    const seen: string[] = [];
    const items = await collectPages((p) => {
      seen.push(p._continue ?? '');
      return Promise.resolve(pages[p._continue ?? ''] ?? { items: [] });
    });
    assert.deepEqual(items, [1, 2, 3]);
    assert.deepEqual(seen, ['', 't1']);
  });

  it('toV1Event names the event after the node and keeps it a valid length', () => {
    const e = toV1Event(
      { node: 'n'.repeat(253), type: 'Normal', reason: 'R', message: 'm'.repeat(5000) },
      { nowMs: 1, suffix: 'abcd', instance: 'pod-1' },
    );
    assert.ok(e.metadata.name.length <= 253);
    assert.ok(e.metadata.name.endsWith('.1abcd'));
    assert.equal(e.message.length, 1024);
    assert.deepEqual(e.involvedObject, {
      apiVersion: 'v1',
      kind: 'Node',
      name: 'n'.repeat(253),
      uid: 'n'.repeat(253),
    });
  });
});
