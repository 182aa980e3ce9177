/**
 * Out-of-band power on the real-apiserver tier: a NotReady node (its kubelet simulated by a loop
 * that posts the simulated host's readiness and boot id, as a kubelet does after a boot) is
 * power-cycled through a real ipmi_sim BMC and through the Redfish server on the DMTF mockup, by
 * the bridge over the controller's own client — credentials read from the Secret `aegis-bmc` of
 * `monitoring` under the shipped RBAC, the progress mark written on the Node, the node's pod
 * evicted and force-deleted (under the shipped admission policy) only once the BMC reported Off,
 * then a new boot id. A wrong password in the Secret ends the step naming the refusal.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ipmiClient, DEFAULT_IPMI_OPTIONS } from '../../src/bmc/ipmi.js';
import { createOutOfBand, type OutOfBand } from '../../src/bmc/out-of-band.js';
import { POWER_CYCLE_ANNOTATION, outOfBandBridge } from '../../src/bmc/power-cycle.js';
import { DEFAULT_REDFISH_OPTIONS, redfishClient } from '../../src/bmc/redfish.js';
import { systemClock } from '../../src/core/clock.js';
import { POWER_CYCLE_EXIT } from '../../src/sop/sop.js';
import { startIpmiSim, type IpmiSim } from './ipmi-sim-harness.js';
import { startRedfishServer, type RedfishServer } from './redfish-server.js';
import {
  createNode,
  createObject,
  deadline,
  startTestCluster,
  type TestCluster,
  postKubeletStatus,
} from '../k8s/setup.js';

const IPMI_NODE = 'gpu-bmc-ipmi';
const RF_NODE = 'gpu-bmc-redfish';
const NS = 'default';

let cluster: TestCluster;
let sim: IpmiSim;
let rf: RedfishServer;
const kubelets: NodeJS.Timeout[] = [];

/** Posts the node's Ready condition and boot id through the status subresource (as a kubelet). */
function postStatus(node: string, ready: 'True' | 'Unknown', bootID: string): Promise<void> {
  return postKubeletStatus(cluster, node, { ready: ready === 'True', bootID });
}

/**
 * The node's "kubelet": hung (NotReady, the old boot id) until the host boots again, then Ready
 * with the host's new boot id.
 */
function kubelet(node: string, host: () => { on: boolean; bootId: string }): void {
  const hung = host().bootId;
  let posted = '';
  const t = setInterval(() => {
    const h = host();
    const next = h.on && h.bootId !== hung ? `True ${h.bootId}` : `Unknown ${hung}`;
    if (next === posted) return;
    posted = next;
    const [ready = 'Unknown', boot = ''] = next.split(' ');
    void postStatus(node, ready as 'True' | 'Unknown', boot).catch(() => {
      posted = '';
    });
  }, 200);
  kubelets.push(t);
}

async function podOn(node: string, name: string): Promise<void> {
  await createObject(cluster.admin, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS },
    spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox' }] },
  });
}

async function podExists(name: string): Promise<boolean> {
  try {
    await cluster.adminCore.readNamespacedPod({ name, namespace: NS });
    return true;
  } catch {
    return false;
  }
}

async function setSecret(password: string): Promise<void> {
  await cluster.adminCore
    .deleteNamespacedSecret({ name: 'aegis-bmc', namespace: 'monitoring' })
    .catch(() => undefined);
  await createObject(cluster.admin, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'aegis-bmc', namespace: 'monitoring' },
    stringData: {
      username: sim.username,
      password,
      'rf.username': rf.username,
      'rf.password': rf.password,
    },
  });
}

before(async () => {
  [cluster, sim, rf] = await Promise.all([
    startTestCluster(),
    startIpmiSim(),
    startRedfishServer(),
  ]);
  for (const n of [IPMI_NODE, RF_NODE]) await createNode(cluster, n);
  await postStatus(IPMI_NODE, 'Unknown', sim.host().bootId);
  await postStatus(RF_NODE, 'Unknown', rf.host().bootId);
  await setSecret(sim.password);
});

after(async () => {
  for (const t of kubelets) clearInterval(t);
  sim.stop();
  await rf.close();
  await cluster.stop();
});

/** The bridge's out-of-band side over the controller's client (as its ServiceAccount). */
function bridge(): ReturnType<typeof outOfBandBridge> {
  const kube = cluster.controller();
  const outOfBand: OutOfBand = createOutOfBand({
    selection: {
      enabled: true,
      defaultProtocol: 'ipmi',
      credentials: '',
      nodes: {
        [IPMI_NODE]: `ipmi://127.0.0.1:${sim.port}`,
        [RF_NODE]: { address: `redfish://127.0.0.1:${rf.port}`, credentials: 'rf' },
      },
      allowedAddresses: [],
    },
    credentialsSecret: 'aegis-bmc',
    readSecret: (name, signal) => kube.readSecret?.(name, signal) ?? Promise.resolve(null),
    connectors: {
      ipmi: (t, c) => ipmiClient(t, c, { ...DEFAULT_IPMI_OPTIONS, cipherSuite: sim.cipherSuite }),
      redfish: (t, c) => redfishClient(t, c, { ...DEFAULT_REDFISH_OPTIONS, ca: rf.ca }),
    },
    timing: {
      powerOffTimeoutMs: 20_000,
      powerOnTimeoutMs: 20_000,
      bootTimeoutMs: 30_000,
      pollMs: 250,
    },
    notReadyAfterMs: 1,
  });
  return outOfBandBridge({
    cluster: kube,
    clock: systemClock,
    outOfBand,
    drain: () => Promise.resolve({ status: 'Succeeded' }),
  });
}

describe('a NotReady node power-cycled on the real apiserver', () => {
  it('through ipmi_sim: wrong password first (named, nothing sent), then the right one: one cycle', async () => {
    await setSecret('not-the-password');
    const log0 = sim.powerLog().length;
    const failed = await bridge().powerCycle({ node: IPMI_NODE, seq: 1 }, deadline(60_000));
    assert.equal(failed.status, 'Failed');
    assert.equal(failed.exitCode, POWER_CYCLE_EXIT.AuthFailed);
    assert.match(failed.message ?? '', /refused the credentials .*RAKP 2 HMAC is invalid/);
    assert.ok(!(failed.message ?? '').includes('not-the-password'));
    assert.deepEqual(sim.powerLog().slice(log0), []);

    await setSecret(sim.password);
    await podOn(IPMI_NODE, 'job-on-ipmi-node');
    kubelet(IPMI_NODE, () => sim.host());
    const before = sim.host().bootId;
    const o = await bridge().powerCycle({ node: IPMI_NODE, seq: 2 }, deadline(90_000));
    assert.equal(o.status, 'Succeeded', o.message);
    assert.match(
      o.message ?? '',
      /off confirmed, 1 pod force-deleted, on confirmed, back with a new boot id/,
    );
    assert.deepEqual(sim.powerLog().slice(log0), ['0', '1']);
    const node = await cluster.adminCore.readNode({ name: IPMI_NODE });
    assert.notEqual(node.status?.nodeInfo?.bootID, before);
    assert.equal(node.status?.nodeInfo?.bootID, sim.host().bootId);
    assert.equal(node.metadata?.annotations?.[POWER_CYCLE_ANNOTATION], undefined);
    assert.equal(await podExists('job-on-ipmi-node'), false, 'the fenced pod is gone');
  });

  it('through the Redfish mockup: ForceOff, On, one cycle', async () => {
    await podOn(RF_NODE, 'job-on-rf-node');
    kubelet(RF_NODE, () => ({ on: rf.host().power === 'On', bootId: rf.host().bootId }));
    const resets0 = rf.resets.length;
    const o = await bridge().powerCycle({ node: RF_NODE, seq: 1 }, deadline(90_000));
    assert.equal(o.status, 'Succeeded', o.message);
    assert.deepEqual(rf.resets.slice(resets0), ['ForceOff', 'On']);
    assert.equal(await podExists('job-on-rf-node'), false);
  });
});
