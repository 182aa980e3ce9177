/**
 * Redfish against a server built on the DMTF's public-rackmount1 mockup (over HTTPS, Basic
 * authentication) that honours ComputerSystem.Reset and reports PowerState: power state read
 * back, a one-shot power cycle with a ResetType the mockup allows, a whole PowerCycle step (off
 * confirmed through PoweringOff, pods fenced only then, on confirmed through PoweringOn, new boot
 * id), and the errors: wrong password, nothing listening, no answer, http:// refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createOutOfBand, type OutOfBand } from '../../src/bmc/out-of-band.js';
import { powerCycleNode } from '../../src/bmc/power-cycle.js';
import {
  DEFAULT_REDFISH_OPTIONS,
  redfishClient,
  type RedfishOptions,
} from '../../src/bmc/redfish.js';
import type { BmcTarget } from '../../src/bmc/types.js';
import { systemClock } from '../../src/core/clock.js';
import { ErrorCode } from '../../src/core/errors.js';
import type { NodeInfo } from '../../src/core/types.js';
import type { PodInfo } from '../../src/k8s/cluster.js';
import { POWER_CYCLE_EXIT } from '../../src/sop/sop.js';
import { mergeAnnotations } from './annotations.js';
import { startRedfishServer, type RedfishServer } from './redfish-server.js';
import { rejection } from './rejection.js';

let rf: RedfishServer;
before(async () => {
  rf = await startRedfishServer({ transitionMs: 300 });
});
after(async () => {
  await rf.close();
});

const NODE = 'gpu-rf-1';
const target = (o: Partial<BmcTarget> = {}): BmcTarget => ({
  node: NODE,
  protocol: 'redfish',
  host: '127.0.0.1',
  port: rf.port,
  scheme: 'https',
  credentials: '',
  source: 'test',
  ...o,
});
const options = (o: Partial<RedfishOptions> = {}): RedfishOptions => ({
  ...DEFAULT_REDFISH_OPTIONS,
  ca: rf.ca,
  timeoutMs: 5_000,
  ...o,
});
const signal = (): AbortSignal => AbortSignal.timeout(30_000);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function outOfBand(password = rf.password): OutOfBand {
  return createOutOfBand({
    selection: {
      enabled: true,
      defaultProtocol: 'redfish',
      credentials: '',
      nodes: { [NODE]: `redfish://127.0.0.1:${rf.port}` },
      allowedAddresses: [],
    },
    credentialsSecret: 'aegis-bmc',
    readSecret: () => Promise.resolve({ username: rf.username, password }),
    connectors: {
      redfish: (t, c) => redfishClient(t, c, options()),
      ipmi: () => {
        throw new Error('not here');
      },
    },
    timing: {
      powerOffTimeoutMs: 10_000,
      powerOnTimeoutMs: 10_000,
      bootTimeoutMs: 10_000,
      pollMs: 100,
    },
    notReadyAfterMs: 1,
  });
}

describe('Redfish client against the public-rackmount1 mockup', () => {
  it('reads PowerState through the Systems collection (one member: 437XR1138R2)', async () => {
    const bmc = redfishClient(
      target(),
      { username: rf.username, password: rf.password },
      options(),
    );
    assert.equal(await bmc.powerState(signal()), 'On');
    assert.ok(rf.requests.includes('GET /redfish/v1/Systems 200'));
    assert.ok(rf.requests.includes('GET /redfish/v1/Systems/437XR1138R2 200'));
  });

  it('a one-shot power cycle uses a ResetType the mockup allows (no PowerCycle there: ForceRestart)', async () => {
    const bmc = redfishClient(
      target(),
      { username: rf.username, password: rf.password },
      options(),
    );
    const before = rf.host().bootId;
    await bmc.powerCycle(signal());
    assert.equal(rf.resets.at(-1), 'ForceRestart');
    assert.equal(await bmc.powerState(signal()), 'Off', 'PoweringOn is not On yet');
    for (let i = 0; i < 50 && (await bmc.powerState(signal())) !== 'On'; i++) await sleep(50);
    assert.notEqual(rf.host().bootId, before);
  });

  it('wrong password: HTTP 401 → BMC_AUTH_FAILED; the password nowhere in the message', async () => {
    const bmc = redfishClient(
      target(),
      { username: rf.username, password: 'Not-Right-1' },
      options(),
    );
    const e = await rejection(bmc.powerState(signal()));
    assert.equal(e.code, ErrorCode.BmcAuthFailed);
    assert.match(e.message, /GET \/redfish\/v1\/Systems refused the credentials \(HTTP 401\)/);
    assert.ok(!e.message.includes('Not-Right-1'));
  });

  it('nothing listening: BMC_UNREACHABLE', async () => {
    const bmc = redfishClient(target({ port: 1 }), { username: 'u', password: 'p' }, options());
    const e = await rejection(bmc.powerState(signal()));
    assert.equal(e.code, ErrorCode.BmcUnreachable);
    assert.match(e.message, /ECONNREFUSED/);
  });

  it('no answer: BMC_TIMEOUT', async () => {
    rf.hang(true);
    try {
      const bmc = redfishClient(
        target(),
        { username: rf.username, password: rf.password },
        options({ timeoutMs: 300 }),
      );
      const e = await rejection(bmc.powerState(signal()));
      assert.equal(e.code, ErrorCode.BmcTimeout);
      assert.match(e.message, /got no answer within 0 s/);
    } finally {
      rf.hang(false);
    }
  });

  it('http:// is refused unless allowed (the credentials would cross in clear)', async () => {
    const bmc = redfishClient(
      target({ scheme: 'http' }),
      { username: 'u', password: 'p' },
      options(),
    );
    const e = await rejection(bmc.powerState(signal()));
    assert.equal(e.code, ErrorCode.BmcNotConfigured);
  });

  it('a certificate the client does not trust: BMC_UNREACHABLE naming the TLS error', async () => {
    const bmc = redfishClient(
      target(),
      { username: rf.username, password: rf.password },
      { ...DEFAULT_REDFISH_OPTIONS, timeoutMs: 5_000 },
    );
    const e = await rejection(bmc.powerState(signal()));
    assert.equal(e.code, ErrorCode.BmcUnreachable);
    assert.match(e.message, /self[- ]signed|certificate/i);
  });
});

describe('a PowerCycle step through Redfish', () => {
  it('ForceOff, Off confirmed (after PoweringOff), pods fenced while off, On, new boot id', async () => {
    const events: string[] = [];
    let pods: PodInfo[] = [
      {
        namespace: 'team-b',
        name: 'infer-0',
        node: NODE,
        phase: 'Running',
        daemonSet: false,
        mirror: false,
        labels: {},
        deletionTimestampMs: 5,
      },
    ];
    let annotations: Record<string, string> = {};
    const node = (): NodeInfo => ({
      name: NODE,
      resourceVersion: '1',
      ready: rf.host().power === 'On' ? true : 'Unknown',
      unschedulable: true,
      labels: {},
      annotations,
      taints: [],
      bootId: rf.host().bootId,
    });
    const before = rf.host().bootId;
    const resets0 = rf.resets.length;
    const o = await powerCycleNode(
      {
        clock: systemClock,
        outOfBand: outOfBand(),
        drain: () => Promise.resolve({ status: 'Succeeded' }),
        cluster: {
          getNode: () => Promise.resolve(node()),
          patchNodeAnnotations: (_n, a) => {
            annotations = mergeAnnotations(annotations, a);
            return Promise.resolve(node());
          },
          listPodsOnNode: () => Promise.resolve(pods),
          evictPod: () => Promise.resolve('evicted'),
          deletePod: (_ns, name) => {
            events.push(`delete ${name} while ${rf.host().power}`);
            pods = [];
            return Promise.resolve();
          },
        },
      },
      { node: NODE, seq: 3 },
      signal(),
    );
    assert.equal(o.status, 'Succeeded', o.message);
    assert.match(
      o.message ?? '',
      /power-cycled through redfish https:\/\/127\.0\.0\.1:\d+: off confirmed, 1 pod force-deleted, on confirmed, back with a new boot id/,
    );
    assert.deepEqual(rf.resets.slice(resets0), ['ForceOff', 'On']);
    assert.deepEqual(events, ['delete infer-0 while Off']);
    assert.notEqual(rf.host().bootId, before);
  });

  it('wrong password: Failed (exit 72) naming HTTP 401, no Reset posted', async () => {
    const resets0 = rf.resets.length;
    const o = await powerCycleNode(
      {
        clock: systemClock,
        outOfBand: outOfBand('nope-nope'),
        drain: () => Promise.resolve({ status: 'Succeeded' }),
        cluster: {
          getNode: () =>
            Promise.resolve({
              name: NODE,
              resourceVersion: '1',
              ready: 'Unknown',
              unschedulable: true,
              labels: {},
              annotations: {},
              taints: [],
              bootId: 'x',
            }),
          patchNodeAnnotations: () => Promise.reject(new Error('no write expected')),
          listPodsOnNode: () => Promise.reject(new Error('no pods expected')),
          evictPod: () => Promise.reject(new Error('no eviction expected')),
          deletePod: () => Promise.reject(new Error('no deletion expected')),
        },
      },
      { node: NODE, seq: 4 },
      signal(),
    );
    assert.equal(o.status, 'Failed');
    assert.equal(o.exitCode, POWER_CYCLE_EXIT.AuthFailed);
    assert.match(o.message ?? '', /refused the credentials \(HTTP 401\) \(no power command sent\)/);
    assert.equal(rf.resets.length, resets0);
  });
});
