/**
 * One PowerCycle step (src/bmc/power-cycle.ts) against a recording cluster and a scripted BMC:
 * fencing (the node's pods are treated as gone only after the BMC confirms Off), resuming at each
 * recorded phase without a second power-off, the BMC's errors as outcomes naming them, and the
 * password never in an outcome.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { ErrorCode } from '../../src/core/errors.js';
import type { NodeInfo } from '../../src/core/types.js';
import { createOutOfBand } from '../../src/bmc/out-of-band.js';
import {
  POWER_CYCLE_ANNOTATION,
  powerCycleNode,
  type PowerCycleDeps,
} from '../../src/bmc/power-cycle.js';
import { bmcError, type BmcClient, type PowerState } from '../../src/bmc/types.js';
import type { EvictionResult, PodInfo } from '../../src/k8s/cluster.js';
import { POWER_CYCLE_EXIT, type Outcome } from '../../src/sop/sop.js';
import { mergeAnnotations } from './annotations.js';

const PASSWORD = 'pc-test-Secr3t!';
const NODE = 'gpu-7';

/** A node, its pods and its machine, as one test sees them; every call is logged in order. */
class World {
  readonly log: string[] = [];
  power: PowerState = 'On';
  /** The BMC accepts power-off but the machine never goes off (a stuck BMC). */
  stuckOn = false;
  bmcFailure: ErrorCode | undefined;
  node: NodeInfo = {
    name: NODE,
    resourceVersion: '1',
    ready: 'Unknown',
    unschedulable: true,
    labels: {},
    annotations: {},
    taints: [],
    bootId: 'boot-0',
  };
  pods: PodInfo[] = [
    pod('tenant', 'train-0'),
    pod('tenant', 'train-1', { deletionTimestampMs: 1 }),
    pod('kube-system', 'ds-0', { daemonSet: true }),
    pod('tenant', 'pinned', { finalizers: ['x/y'] }),
  ];
  boots = 0;

  bmc(): BmcClient {
    const enter = (op: string): void => {
      this.log.push(`bmc:${op}`);
      if (this.bmcFailure !== undefined) throw bmcError(this.bmcFailure, `bmc says no to ${op}`);
    };
    return {
      describe: 'ipmi://10.0.0.7:623',
      powerState: () => {
        enter('status');
        this.log.push(`=${this.power}`);
        return Promise.resolve(this.power);
      },
      powerOff: () => {
        enter('off');
        if (!this.stuckOn) this.power = 'Off';
        return Promise.resolve();
      },
      powerOn: () => {
        enter('on');
        if (this.power === 'Off') {
          this.power = 'On';
          // The machine boots: a new boot id, Ready.
          this.node = { ...this.node, bootId: `boot-${++this.boots}`, ready: true };
        }
        return Promise.resolve();
      },
      powerCycle: () => Promise.reject(new Error('not used')),
    };
  }

  deps(clock: ManualClock): PowerCycleDeps {
    return this.#deps(clock, this);
  }

  #deps(clock: ManualClock, w: World): PowerCycleDeps {
    return {
      clock,
      outOfBand: createOutOfBand({
        selection: {
          enabled: true,
          defaultProtocol: 'ipmi',
          credentials: '',
          nodes: { [NODE]: 'ipmi://10.0.0.7' },
          allowedAddresses: [],
        },
        credentialsSecret: 'aegis-bmc',
        readSecret: () => Promise.resolve({ username: 'aegis', password: PASSWORD }),
        connectors: { ipmi: () => w.bmc(), redfish: () => w.bmc() },
        timing: {
          powerOffTimeoutMs: 60_000,
          powerOnTimeoutMs: 60_000,
          bootTimeoutMs: 600_000,
          pollMs: 5_000,
        },
        notReadyAfterMs: 600_000,
      }),
      drain: () => {
        w.log.push('drain');
        return Promise.resolve({ status: 'Succeeded' });
      },
      cluster: {
        getNode: () => Promise.resolve(w.node),
        patchNodeAnnotations: (_n, a) => {
          const next = mergeAnnotations(w.node.annotations, a);
          w.node = {
            ...w.node,
            annotations: next,
            resourceVersion: String(Number(w.node.resourceVersion) + 1),
          };
          w.log.push(
            `mark:${a[POWER_CYCLE_ANNOTATION] === null ? '-' : (JSON.parse(a[POWER_CYCLE_ANNOTATION] ?? '{}') as { phase: string }).phase}`,
          );
          return Promise.resolve(w.node);
        },
        listPodsOnNode: () => Promise.resolve(w.pods),
        evictPod: (ns, name): Promise<EvictionResult> => {
          w.log.push(`evict:${ns}/${name}`);
          w.pods = w.pods.map((p) => (p.name === name ? { ...p, deletionTimestampMs: 1 } : p));
          return Promise.resolve('evicted');
        },
        deletePod: (ns, name, grace) => {
          w.log.push(`delete:${ns}/${name}:${grace}`);
          w.pods = w.pods.filter((p) => p.name !== name);
          return Promise.resolve();
        },
      },
    };
  }
}

function pod(namespace: string, name: string, o: Partial<PodInfo> = {}): PodInfo {
  return {
    namespace,
    name,
    node: NODE,
    phase: 'Running',
    daemonSet: false,
    mirror: false,
    labels: {},
    ...o,
  };
}

/** Runs a step while virtual time flows. */
async function run(
  w: World,
  req: Partial<Parameters<typeof powerCycleNode>[1]> = {},
): Promise<Outcome> {
  const clock = new ManualClock();
  const state = { done: false };
  const p = powerCycleNode(
    w.deps(clock),
    { node: NODE, seq: 4, ...req },
    new AbortController().signal,
  ).finally(() => {
    state.done = true;
  });
  for (let i = 0; i < 1000 && !isDone(state); i++) await clock.advance(1_000);
  return p;
}
function isDone(s: { readonly done: boolean }): boolean {
  return s.done;
}

describe('a power cycle through the BMC', () => {
  it('off, confirmed Off, the pods fenced, on, confirmed On, back with a new boot id', async () => {
    const w = new World();
    const o = await run(w);
    assert.equal(o.status, 'Succeeded', o.message);
    assert.match(
      o.message ?? '',
      /power-cycled through ipmi:\/\/10\.0\.0\.7:623: off confirmed, 2 pods force-deleted; left 1: tenant\/pinned \(finalizers\), on confirmed, back with a new boot id/,
    );
    assert.deepEqual(w.log, [
      'bmc:status',
      '=On',
      'mark:off',
      'bmc:off',
      'bmc:status',
      '=Off',
      'evict:tenant/train-0',
      'delete:tenant/train-0:0',
      'delete:tenant/train-1:0',
      'mark:on',
      'bmc:on',
      'bmc:status',
      '=On',
      'mark:-',
    ]);
    assert.equal(w.node.bootId, 'boot-1');
    assert.equal(w.node.annotations[POWER_CYCLE_ANNOTATION], undefined, 'the mark is removed');
  });

  it('fencing: while the BMC does not confirm Off, no pod is touched and the step fails saying so', async () => {
    const w = new World();
    w.stuckOn = true;
    const o = await run(w);
    assert.equal(o.status, 'Failed');
    assert.equal(o.exitCode, POWER_CYCLE_EXIT.Timeout + POWER_CYCLE_EXIT.AfterCommand);
    assert.match(
      o.message ?? '',
      /did not report the node off within 60 s; its pods were left alone \(not fenced\)/,
    );
    assert.equal(w.log.filter((l) => l.startsWith('evict') || l.startsWith('delete')).length, 0);
    assert.ok(!w.log.includes('bmc:on'), 'never powered on');
  });

  it('a Ready node is drained before the power-off', async () => {
    const w = new World();
    w.node = { ...w.node, ready: true };
    await run(w);
    assert.ok(w.log.indexOf('drain') < w.log.indexOf('bmc:off'));
  });

  it('resumed after the power-off was recorded and sent: no second power-off', async () => {
    const w = new World();
    w.power = 'Off';
    w.node = {
      ...w.node,
      annotations: { [POWER_CYCLE_ANNOTATION]: JSON.stringify({ seq: 4, phase: 'off', at: 'x' }) },
    };
    const o = await run(w, { resumeSinceMs: 0, resumeBootId: 'boot-0' });
    assert.equal(o.status, 'Succeeded', o.message);
    assert.ok(!w.log.includes('bmc:off'));
    assert.equal(w.boots, 1);
  });

  it('resumed after the power-off was recorded but never reached the BMC: sent now, once', async () => {
    const w = new World();
    w.node = {
      ...w.node,
      annotations: { [POWER_CYCLE_ANNOTATION]: JSON.stringify({ seq: 4, phase: 'off', at: 'x' }) },
    };
    const o = await run(w, { resumeSinceMs: 0, resumeBootId: 'boot-0' });
    assert.equal(o.status, 'Succeeded', o.message);
    assert.equal(w.log.filter((l) => l === 'bmc:off').length, 1);
  });

  it('resumed after the power-on was recorded: never powered off again, at most powered on', async () => {
    const w = new World();
    w.power = 'Off';
    w.node = {
      ...w.node,
      annotations: { [POWER_CYCLE_ANNOTATION]: JSON.stringify({ seq: 4, phase: 'on', at: 'x' }) },
    };
    const o = await run(w, { resumeSinceMs: 0, resumeBootId: 'boot-0' });
    assert.equal(o.status, 'Succeeded', o.message);
    assert.ok(!w.log.includes('bmc:off'));
    assert.ok(
      !w.log.some((l) => l.startsWith('evict') || l.startsWith('delete')),
      'already fenced',
    );
    assert.equal(w.log.filter((l) => l === 'bmc:on').length, 1);
  });

  it('resumed after the node came back: succeeds without any BMC command', async () => {
    const w = new World();
    w.node = { ...w.node, bootId: 'boot-9', ready: true };
    const o = await run(w, { resumeSinceMs: 0, resumeBootId: 'boot-0' });
    assert.equal(o.status, 'Succeeded');
    assert.ok(!w.log.some((l) => l.startsWith('bmc:')));
  });

  it('a mark of another step is not ours: the step starts from the beginning', async () => {
    const w = new World();
    w.node = {
      ...w.node,
      annotations: { [POWER_CYCLE_ANNOTATION]: JSON.stringify({ seq: 1, phase: 'on', at: 'x' }) },
    };
    const o = await run(w);
    assert.equal(o.status, 'Succeeded');
    assert.equal(w.log.filter((l) => l === 'bmc:off').length, 1);
  });

  it('a node the BMC reports off already is not powered on (someone shut it down)', async () => {
    const w = new World();
    w.power = 'Off';
    const o = await run(w);
    assert.equal(o.status, 'Failed');
    assert.equal(o.exitCode, POWER_CYCLE_EXIT.FoundOff);
    assert.ok(!w.log.includes('bmc:on'));
  });

  for (const [code, exit] of [
    [ErrorCode.BmcUnreachable, POWER_CYCLE_EXIT.Unreachable],
    [ErrorCode.BmcAuthFailed, POWER_CYCLE_EXIT.AuthFailed],
    [ErrorCode.BmcTimeout, POWER_CYCLE_EXIT.Timeout],
    [ErrorCode.BmcError, POWER_CYCLE_EXIT.BmcError],
  ] as const) {
    it(`${code}: Failed with exit ${exit}, naming the error, nothing sent, no pod touched`, async () => {
      const w = new World();
      w.bmcFailure = code;
      const o = await run(w);
      assert.equal(o.status, 'Failed');
      assert.equal(o.exitCode, exit);
      assert.match(o.message ?? '', /bmc says no to status \(no power command sent\)/);
      assert.deepEqual(w.log, ['bmc:status']);
      assert.ok(!(o.message ?? '').includes(PASSWORD));
    });
  }

  it('no credentials in the Secret: BMC_NOT_CONFIGURED naming the missing keys', async () => {
    const w = new World();
    const deps = w.deps(new ManualClock());
    const o = await powerCycleNode(
      {
        ...deps,
        outOfBand: createOutOfBand({
          selection: {
            enabled: true,
            defaultProtocol: 'ipmi',
            credentials: 'rack9',
            nodes: { [NODE]: '10.0.0.7' },
            allowedAddresses: [],
          },
          credentialsSecret: 'aegis-bmc',
          readSecret: () => Promise.resolve({ username: 'aegis', password: PASSWORD }),
          connectors: { ipmi: () => w.bmc(), redfish: () => w.bmc() },
          timing: deps.outOfBand.timing,
          notReadyAfterMs: 1,
        }),
      },
      { node: NODE, seq: 1 },
      new AbortController().signal,
    );
    assert.equal(o.exitCode, POWER_CYCLE_EXIT.NotConfigured);
    assert.match(
      o.message ?? '',
      /Secret aegis-bmc has no non-empty keys rack9\.username and rack9\.password/,
    );
    assert.deepEqual(w.log, []);
  });
});
