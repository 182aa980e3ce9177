/**
 * Concurrent writers on one node's annotations, on a real API server: while the controller (as
 * its ServiceAccount) writes the ticket for an XID 79 on gpu-node-0002, an admin keeps
 * annotating the node (`kubectl annotate`: merge patches without a resourceVersion), and then a
 * human takes the ticket over by setting its supervisor (`kubectl edit`: a write guarded by the
 * resourceVersion it read).
 *
 * The races are staged, not hoped for: the controller's client lets the admin write just before
 * the first attempt of every ticket write, so that patch carries a stale resourceVersion and the
 * API server answers 409; and the human's edit lands just before the patch that would begin the
 * step after the diagnosis (the Reboot). A background admin adds unstaged races on top.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { TICKET_ANNOTATION } from '../../src/core/types.js';
import type { SimWorld } from '../../src/sim/sim-world.js';
import { parseTicket, serializeTicket, type Ticket } from '../../src/ticket/ticket.js';
import {
  createFleetWorld,
  createKwokNodes,
  jobsOf,
  nodeEvents,
  quickClearingCatalogue,
  startReplica,
  testConfig,
  ticketOf,
  ticketWhere,
  workflowLine,
  type ClusterProbe,
  type Replica,
} from '../helpers/k8s-engine.js';
import { startTestCluster, type TestCluster } from './setup.js';

const NODE = 'gpu-node-0002';
const XID = 'Xid79GPULost';
const HUMAN = 'alice';
const HAMMER_EVERY_MS = 100;

let cluster: TestCluster;
let world: SimWorld;
let replica: Replica | undefined;
/** Every annotation the admin wrote, with its last value. */
const adminWrote = new Map<string, string>();
let stopHammer = (): Promise<void> => Promise.resolve();
let takeoverAtMs = 0;

before(async () => {
  cluster = await startTestCluster({ kcm: true, kwok: true });
  world = createFleetWorld(4);
  await createKwokNodes(cluster, world);
});

after(async () => {
  await stopHammer();
  await replica?.stop();
  await cluster.stop();
});

/** HTTP status of a failed client call. */
function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** `kubectl annotate --overwrite`: a merge patch of one key, no resourceVersion. */
async function adminAnnotate(key: string, value: string): Promise<void> {
  await KubernetesObjectApi.makeApiClient(cluster.admin).patch(
    { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE, annotations: { [key]: value } } },
    undefined,
    undefined,
    'kubectl-annotate',
    undefined,
    PatchStrategy.MergePatch,
  );
  adminWrote.set(key, value);
}

/**
 * `kubectl edit` of the ticket: read, set the supervisor, write back guarded by the
 * resourceVersion read; on a 409, read again and redo the edit.
 */
async function humanTakesOver(): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(cluster.admin);
  for (let attempt = 1; attempt <= 10; attempt++) {
    const node = await cluster.adminCore.readNode({ name: NODE });
    const raw = node.metadata?.annotations?.[TICKET_ANNOTATION] ?? '';
    const edited: Ticket = { ...parseTicket(raw, NODE), supervisor: HUMAN };
    try {
      await api.patch(
        {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: {
            name: NODE,
            resourceVersion: node.metadata?.resourceVersion ?? '',
            annotations: { [TICKET_ANNOTATION]: serializeTicket(edited) },
          },
        },
        undefined,
        undefined,
        'kubectl-edit',
        undefined,
        PatchStrategy.MergePatch,
      );
      return;
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
    }
  }
  throw new Error('the human edit kept conflicting');
}

/** An admin annotating the node every HAMMER_EVERY_MS; the returned stop waits for the last write. */
function startHammer(): () => Promise<void> {
  let running = true;
  const loop = async (): Promise<void> => {
    for (let i = 0; running; i++) {
      await adminAnnotate(`ops.example.com/hammer-${i % 8}`, `round-${i}`);
      await delay(HAMMER_EVERY_MS);
    }
  };
  const done = loop();
  return async () => {
    running = false;
    await done;
  };
}

/**
 * The staged races. The first attempt of every ticket write is preceded by an admin annotation,
 * so it conflicts and is retried (a retry re-applies the same change: same text, not raced
 * again). Once the controller has recorded the diagnosis, the patch that would begin the next
 * step is preceded by the human's takeover instead.
 */
function stagedRaces(): ClusterProbe {
  let previous = '';
  let induced = 0;
  let diagnosed = false;
  return {
    async beforeAnnotationPatch(node, annotations) {
      const raw = annotations[TICKET_ANNOTATION];
      if (node !== NODE || raw === undefined || raw === null || takeoverAtMs > 0) return;
      const last = parseTicket(raw, node).workflows.at(-1);
      if (diagnosed && last?.status === 'Running') {
        await humanTakesOver();
        takeoverAtMs = Date.now();
        return;
      }
      if (last?.action === 'Diagnose' && last.status === 'Succeeded') diagnosed = true;
      if (raw === previous) return;
      previous = raw;
      await adminAnnotate(`ops.example.com/race-${induced++}`, `before-${last?.action ?? ''}`);
    },
  };
}

describe('concurrent annotation writers on a real API server', () => {
  it('conflicting writes of other annotations are retried; no writer loses data', async (t) => {
    replica = startReplica({
      cluster,
      world,
      holder: 'aegis-conflict',
      config: testConfig(),
      catalogue: quickClearingCatalogue([XID]),
      probe: stagedRaces(),
    });
    stopHammer = startHammer();
    world.faults.injectFault({ condition: XID, node: NODE, atMs: Date.now() });
    const ticket = await ticketWhere(
      cluster,
      NODE,
      'Diagnose Succeeded',
      (tk) => workflowLine(tk).includes('Diagnose Succeeded'),
      { replicas: [replica] },
    );
    await stopHammer();
    const { stats } = replica.observed;
    t.diagnostic(
      `${stats.annotationPatches} ticket patches, ${stats.annotationConflicts} answered 409`,
    );
    assert.ok(stats.annotationConflicts >= 4, `conflicts: ${stats.annotationConflicts}`);
    assert.deepEqual(workflowLine(ticket), ['Cordon Succeeded', 'Diagnose Succeeded']);
    assert.deepEqual(
      ticket.workflows.map((w) => w.seq),
      [0, 1],
      'each step recorded once, under its own seq',
    );
    const node = await cluster.adminCore.readNode({ name: NODE });
    const annotations = node.metadata?.annotations ?? {};
    for (const [key, value] of adminWrote) {
      assert.equal(annotations[key], value, `admin's ${key} kept`);
    }
    assert.ok([...adminWrote.keys()].some((k) => k.includes('race-')));
    const errors = (await replica.metrics.errors.get()).values.filter((v) => v.value > 0);
    assert.deepEqual(
      errors.map((v) => v.labels),
      [],
      'no ticket write lost its races',
    );
  });

  it("a human's supervisor edit racing the controller's write is kept", async () => {
    await ticketWhere(cluster, NODE, `supervisor ${HUMAN}`, (tk) => tk.supervisor === HUMAN);
    assert.ok(takeoverAtMs > 0, 'the takeover raced the patch beginning the next step');
    // Give the controller six cycles to (wrongly) act or to overwrite the edit.
    await delay(3_000);
    const ticket = await ticketOf(cluster, NODE);
    assert.equal(ticket?.supervisor, HUMAN);
    assert.equal(ticket.status, 'created');
    const node = await cluster.adminCore.readNode({ name: NODE });
    for (const [key, value] of adminWrote) {
      assert.equal(node.metadata?.annotations?.[key], value, `admin's ${key} kept`);
    }
  });

  it('the takeover stops automation: the step the controller was beginning does not run', async () => {
    const ticket = await ticketOf(cluster, NODE);
    const started = (replica as Replica).steps.filter(
      (s) => s.node === NODE && s.status === 'Running',
    );
    const reboots = await jobsOf(cluster, NODE, 'restart_node');
    // A step that did not run may be recorded as Canceled (or Held); nothing else may appear.
    const ran = (line: string): boolean => !/(Canceled|Held)$/.test(line);
    const events = (await nodeEvents(cluster, NODE)).map((e) => e.reason ?? '');
    assert.deepEqual(
      {
        workflows: workflowLine(ticket).filter(ran),
        stepsStarted: started.map((s) => s.action),
        rebootJobs: reboots.map((j) => j.metadata?.name),
        rebootEvents: events.filter((r) => r.startsWith('AegisReboot') && ran(r)),
      },
      {
        workflows: ['Cordon Succeeded', 'Diagnose Succeeded'],
        stepsStarted: ['Cordon', 'Diagnose'],
        rebootJobs: [],
        rebootEvents: [],
      },
      'DEFECT (src/engine/runner.ts recordBegin): the begin-write re-applied after the 409 ' +
        'ignores the supervisor it re-read and starts the step anyway',
    );
    const node = await cluster.adminCore.readNode({ name: NODE });
    assert.equal(node.spec?.unschedulable, true, 'left cordoned for the human');
  });
});
