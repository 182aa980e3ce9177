/**
 * A domain incident on a real control plane (etcd, kube-apiserver, kube-controller-manager,
 * kwok): six kwok nodes carrying the topology labels (zone, rack, leaf switch, node group), the
 * engine running as the controller ServiceAccount under the shipped RBAC and admission policies.
 * Four nodes under leaf switch leaf-001 lose an IB link (exporter series of the simulated fleet):
 * one incident is recorded as a ConfigMap in `monitoring` (written through the narrow
 * `configmaps: create, update` grant the policy aegis-incident-records admits), every member's
 * ticket points at it, an Event announces it, no member gets a diagnosis Job; when the links are
 * back the record says released, the pointers carry their release time and the members are
 * health-checked, uncordoned and their tickets closed. `kubectl aegis incidents` (the plugin, with
 * an admin kubeconfig) lists the open incident with its members and the record's summary.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { CATALOGUE } from '../../src/catalogue/index.js';
import { SIGNAL_PRESENCE } from '../../src/catalogue/signals.js';
import type { Config } from '../../src/config/schema.js';
import { systemClock } from '../../src/core/clock.js';
import { createEngine, type Engine } from '../../src/daemon.js';
import { createMemoryLogger } from '../../src/engine/logger.js';
import { INCIDENT_LABEL } from '../../src/engine/incidents.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import type { SimWorld } from '../../src/sim/sim-world.js';
import { PROCESS_DEPS } from '../../src/kubectl/commands.js';
import { runPlugin } from '../../src/kubectl/main.js';
import {
  createFleetWorld,
  jobsOf,
  MONITORING,
  nodeEvents,
  shippedPriority,
  TEST_BRIDGE_OPTIONS,
  testConfig,
  ticketOf,
} from '../helpers/k8s-engine.js';
import {
  createNode,
  eventually,
  startTestCluster,
  writeAdminKubeconfig,
  type TestCluster,
} from './setup.js';

const IB = ['IBLinkAbnormal', 'IBPortDown', 'IBPhysicalPortDown'];
/** The IB conditions raised at once and cleared after 1 s (the catalogue waits 1 and 5 min). */
const CATALOGUE_FAST = CATALOGUE.map((e) =>
  IB.includes(e.name) ? { ...e, forMs: 0, clearForMs: 1_000 } : e,
);

let cluster: TestCluster;
let world: SimWorld;
let engine: Engine;
let running = true;
let loop: Promise<void> = Promise.resolve();
const log = createMemoryLogger();
const faults: string[] = [];

before(async () => {
  cluster = await startTestCluster({ kcm: true, kwok: true });
  world = createFleetWorld(6);
  for (const node of world.fleet.nodes) {
    await createNode(cluster, node.name, {
      kwok: true,
      labels: {
        ...node.labels,
        'topology.kubernetes.io/zone': 'zone-a',
        'aegis.io/node-group': 'pool-a',
      },
    });
  }
  await eventually('kwok nodes Ready', async () => {
    const { items } = await cluster.adminCore.listNode();
    const ready = items.filter((n) =>
      n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    return ready.length === world.fleet.nodes.length ? true : undefined;
  });
  const config: Config = testConfig({
    'leaderElection.enabled': false,
    // Six nodes: the breaker would trip on 4 new faulty nodes; here the incident alone holds them.
    'safety.stormMinNewFaultyNodes': 10,
    'safety.maxCordonedFraction': 0.5,
    'domains.rules': [
      {
        name: 'leaf-ib',
        domain: 'leaf',
        conditions: ['IBLinkAbnormal'],
        minNodes: 3,
        windowMs: '10m',
        clearForMs: '1s',
      },
    ],
  });
  engine = createEngine({
    cluster: cluster.controller({ clock: systemClock }),
    metricsSource: world.metrics,
    clock: systemClock,
    config,
    catalogue: CATALOGUE_FAST,
    presence: SIGNAL_PRESENCE,
    priorityOf: shippedPriority,
    metrics: createMetrics(),
    log,
    bridgeOptions: TEST_BRIDGE_OPTIONS,
  });
  const signal = new AbortController().signal;
  loop = (async () => {
    while (running) {
      await engine.controller.cycle(signal);
      await delay(500);
    }
  })();
});

after(async () => {
  running = false;
  await loop;
  await engine.controller.idle();
  await cluster.stop();
  rmSync(kubeDir, { recursive: true, force: true });
});

const kubeDir = mkdtempSync(join(tmpdir(), 'aegis-incidents-'));

/** `kubectl aegis ARGS` in process, as the cluster admin (a kubeconfig file, as kubectl has). */
async function kubectlAegis(
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const kubeconfig = join(kubeDir, 'kubeconfig');
  writeAdminKubeconfig(cluster, kubeconfig);
  let out = '';
  let err = '';
  const code = await runPlugin(
    ['node', 'kubectl-aegis', ...args],
    { writeOut: (t) => (out += t), writeErr: (t) => (err += t) },
    { ...PROCESS_DEPS, env: { KUBECONFIG: kubeconfig }, isTTY: false },
  );
  return { code, out, err };
}

const MEMBERS = ['gpu-node-0001', 'gpu-node-0002', 'gpu-node-0003', 'gpu-node-0004'];

async function records(): Promise<V1ConfigMap[]> {
  const { items } = await cluster.adminCore.listNamespacedConfigMap({
    namespace: MONITORING,
    labelSelector: `${INCIDENT_LABEL}=true`,
  });
  return items;
}

function logTail(): string {
  return log.lines
    .slice(-8)
    .map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.fields ?? {})}`)
    .join('\n');
}

describe('a domain incident on a real API server', () => {
  it('four nodes under one leaf switch lose IB: one incident recorded in a ConfigMap, pointed at by every member, announced', async (t) => {
    const t0 = Date.now();
    for (const node of MEMBERS)
      faults.push(
        world.faults.injectFault({
          condition: 'IBLinkAbnormal',
          node,
          device: 'mlx5_1/1',
          atMs: Date.now(),
          persistence: 'until-repair',
        }),
      );
    const [cm] = await eventually('incident record', async () => {
      const r = await records();
      return r.length > 0 ? r : undefined;
    }).catch((err: unknown) => {
      throw new Error(logTail(), { cause: err });
    });
    assert.ok(cm !== undefined);
    const name = cm.metadata?.name ?? '';
    assert.match(name, /^aegis-incident-leaf-leaf-001-[0-9a-f]{8}$/);
    assert.equal(cm.data?.['status'], 'open');
    assert.equal(cm.data['domain'], 'leaf/leaf-001');
    assert.equal(cm.data['supervisor'], 'sre');
    assert.deepEqual(cm.data['members']?.split('\n'), MEMBERS);
    assert.equal(cm.metadata?.labels?.['aegis.io/domain'], 'leaf-001');
    assert.equal(cm.metadata.managedFields?.[0]?.manager, 'aegis', "the controller's write");
    for (const node of MEMBERS) {
      const tk = await eventually(`${node} points at the incident`, async () => {
        const x = await ticketOf(cluster, node);
        return x?.incident?.name === name ? x : undefined;
      });
      assert.equal(tk.incident?.domain, 'leaf/leaf-001');
    }
    for (const other of ['gpu-node-0005', 'gpu-node-0006'])
      assert.equal(await ticketOf(cluster, other), null, `${other} left alone`);
    const events = await eventually('the announcement', async () => {
      const e = (await nodeEvents(cluster, MEMBERS[0] ?? '')).filter(
        (x) => x.reason === 'AegisDomainIncident',
      );
      return e.length > 0 ? e : undefined;
    });
    assert.equal(events.length, 1);
    assert.match(events[0]?.message ?? '', /leaf switch leaf-001: 4 of 6 nodes/);
    t.diagnostic(`recorded and pointed at within ${String(Date.now() - t0)} ms`);
  });

  it('kubectl aegis incidents lists it: open, its members, the summary of its record', async () => {
    const json = await kubectlAegis('incidents', '-o', 'json');
    assert.equal(json.code, 0, json.err);
    const list = JSON.parse(json.out) as {
      kind: string;
      items: {
        name: string;
        domain: string;
        status: string;
        members: string[];
        summary?: string;
      }[];
    };
    assert.equal(list.kind, 'IncidentList');
    assert.equal(list.items.length, 1);
    const [incident] = list.items;
    assert.ok(incident !== undefined);
    assert.match(incident.name, /^aegis-incident-leaf-leaf-001-[0-9a-f]{8}$/);
    assert.equal(incident.domain, 'leaf/leaf-001');
    assert.equal(incident.status, 'open');
    assert.deepEqual(incident.members, MEMBERS);
    assert.match(incident.summary ?? '', /leaf-001/, 'the summary read from the ConfigMap');
    const table = await kubectlAegis('incidents');
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, /^NAME +DOMAIN +RULE +STATUS +MEMBERS +HELD +AGE$/m);
    assert.match(
      table.out,
      /aegis-incident-leaf-leaf-001-[0-9a-f]{8} +leaf switch leaf-001 +leaf-ib +open +4 /,
    );
  });

  it('members are cordoned (within the budget) but get no diagnosis Job while the incident is open', async () => {
    await eventually('a member cordoned', async () => {
      for (const node of MEMBERS)
        if ((await cluster.adminCore.readNode({ name: node })).spec?.unschedulable === true)
          return true;
      return undefined;
    });
    await delay(3_000);
    for (const node of MEMBERS) {
      assert.deepEqual(await jobsOf(cluster, node, 'diagnose_node'), [], `${node}: no Job`);
      const tk = await ticketOf(cluster, node);
      assert.equal(tk?.supervisor, 'aegis', `${node}: no hand-off of its own`);
    }
    const tickets = await Promise.all(MEMBERS.map((n) => ticketOf(cluster, n)));
    assert.ok(
      tickets.some((tk) =>
        tk?.workflows.some(
          (w) => w.status === 'Held' && (w.message ?? '').startsWith('domain-incident:'),
        ),
      ),
      'a ticket says its next step waits for the domain',
    );
  });

  it('the links come back: the record says released, the pointers carry it, members are uncordoned and closed', async (t) => {
    const t0 = Date.now();
    for (const id of faults) world.faults.clearFault(id, Date.now());
    await eventually(
      'record released',
      async () => ((await records())[0]?.data?.['status'] === 'released' ? true : undefined),
      60_000,
    );
    for (const node of MEMBERS) {
      const tk = await eventually(
        `${node} released and closed`,
        async () => {
          const x = await ticketOf(cluster, node);
          const n = await cluster.adminCore.readNode({ name: node });
          return x?.incident?.released !== undefined &&
            (x.status === 'resolved' || x.status === 'closed') &&
            n.spec?.unschedulable !== true
            ? x
            : undefined;
        },
        90_000,
      ).catch((err: unknown) => {
        throw new Error(logTail(), { cause: err });
      });
      assert.ok(tk.incident?.released !== undefined);
    }
    assert.equal(engine.controller.incidents.length, 0);
    assert.equal((await records()).length, 1, 'one record, kept as history');
    const ended = (await nodeEvents(cluster, MEMBERS[0] ?? '')).filter(
      (x) => x.reason === 'AegisDomainIncidentEnded',
    );
    assert.equal(ended.length, 1);
    t.diagnostic(`released and back in service within ${String(Date.now() - t0)} ms`);
  });
});
