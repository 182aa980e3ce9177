/**
 * `kubectl aegis` on a real API server, as real users: three ServiceAccounts with bearer tokens
 * from the TokenRequest API, in one kubeconfig file with a context each: `oncall` (alice, bound to
 * the shipped ClusterRole aegis-operator), `viewer` (victor, bound to aegis-viewer) and `nobody`
 * (mallory, no binding).
 *
 * Part 1 seeds tickets as the daemon writes them (src/ticket codec) on nodes of their own and runs
 * every command: each read as alice and victor, each write as alice (what it wrote, read back as
 * admin, and the operatorLog naming alice as the apiserver knows her) and as victor (403 → a clear
 * message, exit 1, nothing written). Also: refusals, a 409 staged between read and write, usage
 * errors (exit 2), KUBECONFIG and --context, the executable through kubectl's plugin dispatch, and
 * the exact grants of both ClusterRoles (SubjectAccessReview over every verb).
 *
 * Part 2 is a day of on-call against the real controller (a replica of the daemon on kwok nodes,
 * approval mode on for Reboot and Shutdown): the output of every command it runs is what
 * docs/operators.md shows (set AEGIS_OPERATORS_TRANSCRIPT=<file> to write it out).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AuthenticationV1TokenRequest,
  AuthorizationV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  V1SubjectAccessReview,
} from '@kubernetes/client-node';
import { parse, parseDocument, stringify } from 'yaml';
import { CONTROL_CONFIGMAP, PAUSE_ANNOTATION, TICKET_ANNOTATION } from '../../src/core/types.js';
import { PROCESS_DEPS, type OperatorDeps } from '../../src/kubectl/commands.js';
import type { OperatorCluster } from '../../src/kubectl/kube-client.js';
import { runPlugin } from '../../src/kubectl/main.js';
import type { FleetSummary } from '../../src/kubectl/model.js';
import type { SimWorld } from '../../src/sim/sim-world.js';
import {
  newTicket,
  parseTicket,
  serializeTicket,
  type Ticket,
  type Workflow,
} from '../../src/ticket/ticket.js';
import { applyManifests } from '../helpers/apply-manifests.js';
import {
  CONTROLLER_CONFIG_FILE,
  createFleetWorld,
  createKwokNodes,
  quickClearingCatalogue,
  startReplica,
  testConfig,
  ticketWhere,
  type Replica,
} from '../helpers/k8s-engine.js';
import {
  createObject,
  eventually,
  shippedManifests,
  startTestCluster,
  type TestCluster,
  writeAdminKubeconfig,
} from './setup.js';

const ONCALL_NS = 'oncall';
const ALICE = `system:serviceaccount:${ONCALL_NS}:alice`;
const VICTOR = `system:serviceaccount:${ONCALL_NS}:victor`;
const REPO = join(import.meta.dirname, '..', '..');
const PLUGIN_BIN = join(REPO, 'bin', 'kubectl-aegis.js');

let cluster: TestCluster;
let dir: string;
let kubeconfig: string;
let world: SimWorld;
let replica: Replica | undefined;
/** The day's commands and their output, for docs/operators.md. */
const transcript: string[] = [];

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** `kubectl aegis ARGS` in process, with the test kubeconfig (context `oncall` unless given). */
async function aegis(args: readonly string[], deps: Partial<OperatorDeps> = {}): Promise<Run> {
  let out = '';
  let err = '';
  const code = await runPlugin(
    ['node', 'kubectl-aegis', ...args],
    {
      writeOut: (t) => (out += t),
      writeErr: (t) => (err += t),
    },
    { ...PROCESS_DEPS, env: { ...process.env, KUBECONFIG: kubeconfig }, isTTY: false, ...deps },
  );
  return { code, out, err };
}

/** As `aegis` but asserting exit 0, returning stdout. */
async function ok(...args: string[]): Promise<string> {
  const r = await aegis(args);
  assert.equal(r.code, 0, `kubectl aegis ${args.join(' ')}: ${r.err}`);
  return r.out;
}

/** Runs one command of the day and records it (with its output) in the transcript. */
async function day(...args: string[]): Promise<Run> {
  const r = await aegis(args);
  transcript.push(
    `$ kubectl aegis ${args.join(' ')}\n${r.out}${r.err}${r.code === 0 ? '' : `(exit ${r.code})\n`}`,
  );
  return r;
}

/** The node's annotations, as admin. */
async function annotations(node: string): Promise<Record<string, string>> {
  return (await cluster.adminCore.readNode({ name: node })).metadata?.annotations ?? {};
}

/** The node's ticket, as admin. */
async function ticket(node: string): Promise<Ticket> {
  const raw = (await annotations(node))[TICKET_ANNOTATION];
  assert.ok(raw !== undefined, `${node} has a ticket`);
  return parseTicket(raw, node);
}

/** Sets (or with null removes) annotations of a node as admin (`kubectl annotate --overwrite`). */
async function adminAnnotate(node: string, values: Record<string, string | null>): Promise<void> {
  await KubernetesObjectApi.makeApiClient(cluster.admin).patch(
    {
      apiVersion: 'v1',
      kind: 'Node',
      // null removes the key (a JSON merge patch); the client's type has no room for it.
      metadata: { name: node, annotations: values as Record<string, string> },
    },
    undefined,
    undefined,
    'kubectl-annotate',
    undefined,
    PatchStrategy.MergePatch,
  );
}

/** A ticket as the daemon writes it, `minutesAgo` old. */
function seedTicket(
  condition: string,
  minutesAgo: number,
  change: (t: Ticket, at: (min: number) => string) => Partial<Ticket>,
): string {
  const start = Date.now() - minutesAgo * 60_000;
  const at = (min: number): string => new Date(start + min * 60_000).toISOString();
  const t = newTicket({ condition, reason: `${condition} on the node`, nowMs: start });
  return serializeTicket({ ...t, conditions: [condition], ...change(t, at) });
}

const step = (w: Partial<Workflow> & Pick<Workflow, 'action' | 'status'>): Workflow => w;

/** Seeded nodes of part 1 (deleted before part 2, so the controller never sees them). */
const SEEDS = {
  /** Reboot held for approval. */
  approval: 'seed-approval',
  /** Handed to a human by the ladder. */
  human: 'seed-human',
  /** Held by the storm breaker. */
  storm: 'seed-storm',
  /** A Reboot Running. */
  running: 'seed-running',
  /** Resolved yesterday. */
  resolved: 'seed-resolved',
  /** Cordoned by hand, no ticket. */
  cordoned: 'seed-cordoned',
  /** No ticket at all. */
  healthy: 'seed-healthy',
  /** Unreadable ticket. */
  corrupt: 'seed-corrupt',
} as const;

async function seedNodes(): Promise<void> {
  const tickets: Record<string, string> = {
    [SEEDS.approval]: seedTicket('Xid79GPULost', 30, (_t, at) => ({
      cordonedByAegis: true,
      conditions: ['Xid79GPULost/3', 'GpuPcieReplayErrors/3'],
      nextSeq: 3,
      workflows: [
        step({
          action: 'Cordon',
          status: 'Succeeded',
          seq: 0,
          time: at(0),
          end: at(0),
          condition: 'Xid79GPULost',
        }),
        step({
          action: 'Diagnose',
          status: 'Succeeded',
          seq: 1,
          time: at(1),
          end: at(2),
          exitCode: 0,
          condition: 'Xid79GPULost',
          message: 'GPU 3 fell off the bus',
        }),
        step({
          action: 'Drain',
          status: 'Succeeded',
          seq: 2,
          time: at(3),
          end: at(4),
          condition: 'Xid79GPULost',
        }),
        step({
          action: 'Reboot',
          status: 'Held',
          time: at(5),
          message: 'approval: awaiting approval',
        }),
      ],
      approval: {
        action: 'Reboot',
        state: 'pending',
        requestedAt: at(5),
        reason: 'reboot to recover GPU 3',
      },
      external: [
        { system: 'jira', id: 'GPU-1234', url: 'https://jira.example.com/browse/GPU-1234' },
      ],
    })),
    [SEEDS.human]: seedTicket('GpuRowRemappingFailure', 120, (_t, at) => ({
      status: 'assigned',
      supervisor: 'sre',
      cordonedByAegis: true,
      whySRE: 'GPU needs replacement',
      conclusion: 'GPU needs replacement',
      workflows: [
        step({ action: 'Cordon', status: 'Succeeded', seq: 0, time: at(0), end: at(0) }),
        step({
          action: 'HandToHuman',
          status: 'Succeeded',
          seq: 1,
          time: at(2),
          end: at(2),
          message: 'GPU needs replacement',
        }),
      ],
      nextSeq: 2,
    })),
    [SEEDS.storm]: seedTicket('GpuHung', 10, (_t, at) => ({
      workflows: [
        step({
          action: 'Cordon',
          status: 'Held',
          time: at(1),
          message: 'storm-breaker: too many nodes failed at once; remediation paused',
        }),
      ],
    })),
    [SEEDS.running]: seedTicket('Xid48GPUMemoryDBE', 15, (_t, at) => ({
      cordonedByAegis: true,
      nextSeq: 2,
      workflows: [
        step({ action: 'Cordon', status: 'Succeeded', seq: 0, time: at(0), end: at(0) }),
        step({
          action: 'Reboot',
          status: 'Running',
          seq: 1,
          time: at(10),
          condition: 'Xid48GPUMemoryDBE',
          message: 'reboot to clear the DBE',
        }),
      ],
    })),
    [SEEDS.resolved]: seedTicket('GpuHung', 24 * 60, (_t, at) => ({
      status: 'resolved',
      resolvedTime: at(30),
      updateTime: at(30),
      workflows: [
        step({ action: 'Reboot', status: 'Succeeded', seq: 0, time: at(10), end: at(20) }),
      ],
      nextSeq: 1,
    })),
    [SEEDS.corrupt]: 'condition: [unclosed',
  };
  for (const name of Object.values(SEEDS)) {
    await createObject(cluster.admin, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        ...(tickets[name] === undefined
          ? {}
          : { annotations: { [TICKET_ANNOTATION]: tickets[name] } }),
      },
      ...([SEEDS.approval, SEEDS.human, SEEDS.running, SEEDS.cordoned].includes(name as never)
        ? { spec: { unschedulable: true } }
        : {}),
    });
  }
}

/** The users: ServiceAccounts with a bound role each, and a kubeconfig with a context each. */
async function createUsers(): Promise<void> {
  await createObject(cluster.admin, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: ONCALL_NS },
  });
  const users = [
    { sa: 'alice', context: 'oncall', role: 'aegis-operator' },
    { sa: 'victor', context: 'viewer', role: 'aegis-viewer' },
    { sa: 'mallory', context: 'nobody', role: undefined },
  ];
  const tokens: Record<string, string> = {};
  for (const u of users) {
    await createObject(cluster.admin, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: u.sa, namespace: ONCALL_NS },
    });
    if (u.role !== undefined) {
      await createObject(cluster.admin, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: `oncall-${u.sa}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: u.role },
        subjects: [{ kind: 'ServiceAccount', name: u.sa, namespace: ONCALL_NS }],
      });
    }
    const tr = await cluster.adminCore.createNamespacedServiceAccountToken({
      name: u.sa,
      namespace: ONCALL_NS,
      body: Object.assign(new AuthenticationV1TokenRequest(), {
        spec: { audiences: [], expirationSeconds: 3600 },
      }),
    });
    tokens[u.sa] = tr.status?.token ?? '';
    assert.ok(tokens[u.sa] !== '', `token for ${u.sa}`);
  }
  const { stack } = cluster;
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'gpu-prod',
          cluster: { server: stack.server, 'certificate-authority-data': stack.caData },
        },
      ],
      users: users.map((u) => ({ name: u.sa, user: { token: tokens[u.sa] } })),
      contexts: users.map((u) => ({
        name: u.context,
        context: { cluster: 'gpu-prod', user: u.sa },
      })),
      'current-context': 'oncall',
    }),
    { mode: 0o600 },
  );
}

before(async () => {
  cluster = await startTestCluster({ kwok: true, kcm: true });
  dir = mkdtempSync(join(tmpdir(), 'kubectl-aegis-'));
  kubeconfig = join(dir, 'kubeconfig');
  await createUsers();
  await seedNodes();
});

after(async () => {
  await replica?.stop();
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
  const file = process.env['AEGIS_OPERATORS_TRANSCRIPT'];
  if (file !== undefined && transcript.length > 0) writeFileSync(file, transcript.join('\n'));
});

describe('kubectl aegis: reads, as an operator and as a viewer', () => {
  it('status: nodes by state, tickets by condition, steps running/held, breaker, budgets', async () => {
    for (const context of ['oncall', 'viewer']) {
      // The operator's run goes to the transcript (docs/operators.md › other states).
      const run =
        context === 'oncall' ? await day('status') : await aegis(['--context', context, 'status']);
      assert.equal(run.code, 0, run.err);
      const text = run.out;
      for (const want of [
        /^Context:\s+\S+ \(https:\/\/127\.0\.0\.1:\d+\)$/m,
        /^Mode:\s+dry-run/m, // the shipped aegis-config says dry-run
        /^Storm breaker:\s+TRIPPED: holding 1 node\(s\): seed-storm/m,
        /^Cordon budget:\s+3 of 1 used by Aegis/m,
        /^Human\s+1\s+seed-human$/m,
        /^TicketCorrupt\s+1\s+seed-corrupt$/m,
        /^CordonedByHand\s+1\s+seed-cordoned$/m,
        /^Awaiting approval:\s+1: seed-approval Reboot/m,
      ]) {
        assert.match(text, want, `${context}:\n${text}`);
      }
      assert.ok(!text.includes('\u001b'), 'no colour when not a terminal');
    }
    const json = JSON.parse(await ok('status', '-o', 'json')) as FleetSummary & { kind: string };
    assert.equal(json.kind, 'FleetStatus');
    assert.deepEqual(json.nodes.byState.CordonedByAegis, [SEEDS.approval, SEEDS.running]);
    assert.deepEqual(json.nodes.byState.Faulty, [SEEDS.storm]);
    assert.deepEqual(
      json.steps.running.map((s) => `${s.node} ${s.action}`),
      [`${SEEDS.running} Reboot`],
    );
    assert.deepEqual(json.steps.held.map((s) => `${s.node} ${s.gate ?? ''}`).sort(), [
      `${SEEDS.approval} approval`,
      `${SEEDS.storm} storm-breaker`,
    ]);
    assert.equal(json.tickets.open, 4);
    assert.deepEqual(json.tickets.byStatus, { created: 3, assigned: 1 });
    assert.equal(json.dryRun.source, 'ConfigMap monitoring/aegis-config');
    const yaml = parse(await ok('status', '-o', 'yaml')) as FleetSummary;
    assert.equal(yaml.tickets.open, 4);
  });

  it('tickets: open ones by default, --all adds closed, -o wide|json|yaml', async () => {
    for (const context of ['oncall', 'viewer']) {
      const run =
        context === 'oncall'
          ? await day('tickets')
          : await aegis(['--context', context, 'tickets']);
      const text = run.out;
      const lines = text.trimEnd().split('\n');
      assert.match(lines[0] ?? '', /^NODE\s+STATUS\s+SUPERVISOR\s+CONDITION\s+LAST STEP\s+AGE$/);
      assert.deepEqual(
        lines.slice(1).map((l) =>
          l
            .split(/\s{3,}/)
            .slice(0, 2)
            .join(' '),
        ),
        [
          `${SEEDS.approval} created`,
          `${SEEDS.corrupt} corrupt`,
          `${SEEDS.human} assigned`,
          `${SEEDS.running} created`,
          `${SEEDS.storm} created`,
        ],
      );
      assert.match(
        text,
        /seed-approval\s+created\s+aegis\s+Xid79GPULost\s+Reboot Held \(approval\)\s+30m/,
      );
    }
    assert.match(
      await ok('tickets', '--all'),
      /seed-resolved\s+resolved\s+aegis\s+GpuHung\s+Reboot Succeeded\s+24h/,
    );
    const wide = await ok('tickets', '-o', 'wide');
    assert.match(
      wide.split('\n')[0] ?? '',
      /PRIORITY\s+CONDITIONS\s+APPROVAL\s+EXTERNAL\s+UPDATED$/,
    );
    assert.match(
      wide,
      /seed-approval .*2 \(Emergency\)\s+Xid79GPULost\/3, GpuPcieReplayErrors\/3\s+Reboot pending\s+jira:GPU-1234/,
    );
    const list = JSON.parse(await ok('tickets', '-o', 'json')) as {
      kind: string;
      items: { node: string; ticket?: Ticket; corrupt?: string }[];
    };
    assert.equal(list.kind, 'TicketList');
    assert.equal(list.items.length, 5);
    assert.match(list.items.find((i) => i.node === SEEDS.corrupt)?.corrupt ?? '', /not valid YAML/);
    assert.equal(
      list.items.find((i) => i.node === SEEDS.approval)?.ticket?.approval?.state,
      'pending',
    );
    const yaml = parse(await ok('tickets', '--all', '-o', 'yaml')) as { items: unknown[] };
    assert.equal(yaml.items.length, 6);
  });

  it('ticket NODE: the whole timeline; -o json is the ticket; no ticket or no node → exit 1', async () => {
    const text = await ok('--context', 'viewer', 'ticket', SEEDS.approval);
    for (const want of [
      /^Status:\s+created/m,
      /^Active conditions:\s+Xid79GPULost\/3, GpuPcieReplayErrors\/3$/m,
      /^History:\s+Xid79GPULost$/m,
      /^Approval:\s+Reboot pending, requested \S+Z \(reboot to recover GPU 3\)$/m,
      /^External:\s+jira GPU-1234 https:\/\/jira\.example\.com\/browse\/GPU-1234$/m,
      /^ {2}SEQ\s+ACTION\s+STATUS\s+STARTED\s+ENDED\s+EXIT\s+CONDITION\s+MESSAGE$/m,
      /^ {2}1\s+Diagnose\s+Succeeded\s+\S+Z\s+\S+Z\s+0\s+Xid79GPULost\s+GPU 3 fell off the bus$/m,
      /^ {2}-\s+Reboot\s+Held\s+\S+Z\s+-\s+-\s+-\s+approval: awaiting approval$/m,
    ]) {
      assert.match(text, want, text);
    }
    const json = JSON.parse(await ok('ticket', SEEDS.approval, '-o', 'json')) as { ticket: Ticket };
    assert.deepEqual(json.ticket, await ticket(SEEDS.approval));
    const none = await aegis(['ticket', SEEDS.healthy]);
    assert.equal(none.code, 1);
    assert.match(none.err, /node seed-healthy has no ticket/);
    const missing = await aegis(['ticket', 'no-such-node']);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /^error: node no-such-node not found$/m);
    const corrupt = await aegis(['ticket', SEEDS.corrupt]);
    assert.equal(corrupt.code, 1);
    assert.match(corrupt.err, /annotation aegis\.io\/ticketing is not valid YAML/);
  });

  it('explain NODE: conditions by priority from the priority table in force, SOP, what holds the next step', async () => {
    const text = await ok('--context', 'viewer', 'explain', SEEDS.approval);
    for (const want of [
      /^State:\s+CordonedByAegis: open ticket, cordoned by Aegis$/m,
      /^SOP:\s+gpu\.reboot-once: cordon, ticket, diagnose, drain, reboot/m,
      /^Active conditions \(priorities from ConfigMap monitoring\/aegis-priority\):$/m,
      /^ {2}\*\s+2\s+Emergency\s+Xid79GPULost\/3\s+GPU\s+gpu\.reboot-once$/m,
      /^ {2}\s+100\s+CanIgnore\s+GpuPcieReplayErrors\/3\s+GPU\s+gpu\.report$/m,
      /Reboot waits for approval since \S+: kubectl aegis approve seed-approval/,
    ]) {
      assert.match(text, want, text);
    }
    assert.doesNotMatch(text, /is held by approval/, 'the pending approval is said once');
    assert.match(
      (await day('explain', SEEDS.storm)).out,
      /held by storm-breaker \(too many nodes failed at once; remediation paused\).*kubectl aegis breaker reset/,
    );
    assert.match(
      await ok('explain', SEEDS.human),
      /owned by sre \(handed off: GPU needs replacement\)/,
    );
    assert.match(
      await ok('explain', SEEDS.running),
      /Reboot #1 is running since \S+: reboot to clear the DBE/,
    );
    assert.match(await ok('explain', SEEDS.cordoned), /cordoned, not by Aegis/);
    assert.match(await ok('explain', SEEDS.healthy), /No open ticket: Aegis sees nothing wrong/);
    assert.match(
      await ok('explain', SEEDS.corrupt),
      /^ {2}- The ticket annotation cannot be read \(node seed-corrupt: annotation aegis\.io\/ticketing is not valid YAML: [^\n]+\)\. Aegis never overwrites it/m,
    );
    const json = JSON.parse(await ok('explain', SEEDS.approval, '-o', 'json')) as {
      hold: { gate: string };
      conditions: { recorded: string; priority: number; served: boolean }[];
    };
    assert.equal(json.hold.gate, 'approval');
    assert.deepEqual(
      json.conditions.map((c) => [c.recorded, c.priority, c.served]),
      [
        ['Xid79GPULost/3', 2, true],
        ['GpuPcieReplayErrors/3', 100, false],
      ],
    );
  });

  it('a user with no Aegis role is told which role reading needs (exit 1)', async () => {
    const r = await aegis(['--context', 'nobody', 'tickets']);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /list nodes: HTTP 403: .*cannot list resource "nodes".*; reading needs the ClusterRole aegis-viewer \(deploy\/aegis\/operator-rbac\.yaml\)/,
    );
  });
});

/** Every write command as the viewer: 403 with a clear message, exit 1, nothing written. */
describe('kubectl aegis: every write is denied to a viewer', () => {
  const writes: readonly (readonly string[])[] = [
    ['takeover', SEEDS.approval, '--as', 'victor'],
    ['release', SEEDS.human],
    ['ack', SEEDS.human],
    ['approve', SEEDS.approval],
    ['dismiss', SEEDS.approval],
    ['pause', SEEDS.healthy],
    ['resume', SEEDS.healthy],
    ['pause'],
    ['resume'],
    ['breaker', 'reset'],
  ];
  for (const args of writes) {
    it(`${args.join(' ')}: forbidden`, async () => {
      const node = args[1] !== undefined && args[0] !== 'breaker' ? args[1] : undefined;
      if (args[0] === 'resume' && node !== undefined)
        await adminAnnotate(node, { [PAUSE_ANNOTATION]: 'true' });
      if (args[0] === 'resume' && node === undefined)
        await setControl({ paused: 'true', pausedBy: 'admin' });
      const before = node === undefined ? undefined : await annotations(node);
      const control = await readControl();
      const r = await aegis(['--context', 'viewer', ...args]);
      assert.equal(r.code, 1, r.out);
      assert.match(
        r.err,
        node === undefined
          ? /^error: update configmap monitoring\/aegis-control: HTTP 403: configmaps "aegis-control" is forbidden: User "system:serviceaccount:oncall:victor" cannot update resource "configmaps" .*; this write needs the ClusterRole aegis-operator/m
          : /^error: patch node seed-[a-z]+: HTTP 403: nodes "seed-[a-z]+" is forbidden: User "system:serviceaccount:oncall:victor" cannot patch resource "nodes" .*; this write needs the ClusterRole aegis-operator \(deploy\/aegis\/operator-rbac\.yaml\)$/m,
      );
      if (node !== undefined) assert.deepEqual(await annotations(node), before, 'node unchanged');
      assert.deepEqual(await readControl(), control, 'aegis-control unchanged');
      if (args[0] === 'resume' && node !== undefined)
        await adminAnnotate(node, { [PAUSE_ANNOTATION]: null });
      if (args[0] === 'resume' && node === undefined) await setControl({ paused: 'false' });
    });
  }
});

async function readControl(): Promise<Record<string, string>> {
  const cm = await cluster.adminCore.readNamespacedConfigMap({
    name: CONTROL_CONFIGMAP,
    namespace: 'monitoring',
  });
  return cm.data ?? {};
}

async function setControl(data: Record<string, string>): Promise<void> {
  const cm = await cluster.adminCore.readNamespacedConfigMap({
    name: CONTROL_CONFIGMAP,
    namespace: 'monitoring',
  });
  cm.data = data;
  await cluster.adminCore.replaceNamespacedConfigMap({
    name: CONTROL_CONFIGMAP,
    namespace: 'monitoring',
    body: cm,
  });
}

describe('kubectl aegis: writes, as an operator', () => {
  it('approve: pending → approved by the caller; a second approve is refused', async () => {
    assert.equal(
      await ok('approve', SEEDS.approval),
      `node/${SEEDS.approval} Reboot approved by ${ALICE}\n`,
    );
    const t = await ticket(SEEDS.approval);
    assert.equal(t.approval?.state, 'approved');
    assert.equal(t.approval.by, ALICE);
    assert.ok(Date.now() - Date.parse(t.approval.at ?? '') < 60_000);
    assert.deepEqual(
      t.operatorLog?.map((l) => [l.action, l.by]),
      [['approve', ALICE]],
    );
    assert.equal(t.workflows.length, 4, 'the timeline is kept');
    const again = await aegis(['approve', SEEDS.approval]);
    assert.equal(again.code, 1);
    assert.match(
      again.err,
      /^error: node seed-approval: no step is waiting for approval: Reboot was already approved by system:serviceaccount:oncall:alice at \S+$/m,
    );
    const none = await aegis(['dismiss', SEEDS.storm]);
    assert.equal(none.code, 1);
    assert.match(none.err, /^error: node seed-storm: no step is waiting for approval$/m);
  });

  it('dismiss: pending → dismissed by the caller', async () => {
    await adminAnnotate(SEEDS.approval, {
      [TICKET_ANNOTATION]: serializeTicket({
        ...(await ticket(SEEDS.approval)),
        approval: { action: 'Reboot', state: 'pending', requestedAt: new Date().toISOString() },
      }),
    });
    assert.match(
      await ok('dismiss', SEEDS.approval),
      /Reboot dismissed by .*alice: Aegis hands the node to a human/,
    );
    const t = await ticket(SEEDS.approval);
    assert.equal(t.approval?.state, 'dismissed');
    assert.equal(t.approval.by, ALICE);
    assert.deepEqual(
      t.operatorLog?.map((l) => l.action),
      ['approve', 'dismiss'],
    );
  });

  it('takeover --as NAME: the named human owns the ticket; release hands it back', async () => {
    assert.equal(
      await ok('takeover', SEEDS.storm, '--as', 'bob'),
      `node/${SEEDS.storm} taken over by bob (was: aegis)\n`,
    );
    let t = await ticket(SEEDS.storm);
    assert.deepEqual([t.supervisor, t.status], ['bob', 'assigned']);
    assert.deepEqual(t.operatorLog?.at(-1), {
      action: 'takeover',
      by: ALICE,
      at: t.operatorLog?.at(-1)?.at,
      note: 'supervisor aegis -> bob',
    });
    assert.equal(
      await ok('takeover', SEEDS.storm, '--as', 'bob'),
      `node/${SEEDS.storm} is already owned by bob\n`,
    );
    assert.equal(
      await ok('release', SEEDS.storm),
      `node/${SEEDS.storm} released to Aegis (was: bob)\n`,
    );
    t = await ticket(SEEDS.storm);
    assert.deepEqual([t.supervisor, t.status], ['aegis', 'created']);
    assert.deepEqual(
      t.operatorLog?.map((l) => `${l.action} ${l.by}`),
      [`takeover ${ALICE}`, `release ${ALICE}`],
    );
    assert.equal(
      await ok('release', SEEDS.storm),
      `node/${SEEDS.storm} is already owned by Aegis\n`,
    );
    // Without --as the caller takes it; no ticket → refused.
    assert.match(
      await ok('takeover', SEEDS.storm),
      /taken over by system:serviceaccount:oncall:alice/,
    );
    await ok('release', SEEDS.storm);
    const refused = await aegis(['takeover', SEEDS.healthy, '--as', 'bob']);
    assert.equal(refused.code, 1);
    assert.match(
      refused.err,
      /^error: node seed-healthy: has no ticket: Aegis has not acted on this node$/m,
    );
    const aegisName = await aegis(['takeover', SEEDS.storm, '--as', 'aegis']);
    assert.equal(aegisName.code, 2);
    assert.match(aegisName.err, /--as: "aegis" means automation; use kubectl aegis release NODE/);
  });

  it('ack: the ticket is closed by the caller; refused while a step runs, and once closed', async () => {
    assert.equal(
      await ok('ack', SEEDS.human),
      `node/${SEEDS.human} ticket closed (acknowledged by ${ALICE})\n`,
    );
    const t = await ticket(SEEDS.human);
    assert.equal(t.status, 'closed');
    assert.equal(t.supervisor, ALICE);
    assert.equal(t.conclusion, `acknowledged by ${ALICE}`);
    assert.ok(t.resolvedTime !== undefined && t.updateTime === t.resolvedTime);
    assert.deepEqual(
      t.operatorLog?.map((l) => `${l.action} ${l.by}`),
      [`ack ${ALICE}`],
    );
    assert.match(
      await ok('explain', SEEDS.human),
      /Aegis cordoned the node and the ticket was closed \(acknowledged by .*alice\): Aegis no longer uncordons it; kubectl uncordon seed-human when the node is fit\./,
    );
    const again = await aegis(['ack', SEEDS.human]);
    assert.equal(again.code, 1);
    assert.match(
      again.err,
      /^error: node seed-human: the ticket is already closed \(acknowledged by .*alice\)$/m,
    );
    const running = await aegis(['ack', SEEDS.running]);
    assert.equal(running.code, 1);
    assert.match(
      running.err,
      /Reboot #1 is running since \S+: wait for it to end before closing the ticket/,
    );
    assert.equal((await ticket(SEEDS.running)).status, 'created', 'nothing written');
  });

  it('pause NODE / resume NODE: the annotation, recorded in the ticket; corrupt ticket: annotation only, with a warning', async () => {
    assert.equal(await ok('pause', SEEDS.running), `node/${SEEDS.running} paused\n`);
    assert.equal((await annotations(SEEDS.running))[PAUSE_ANNOTATION], 'true');
    assert.equal(await ok('pause', SEEDS.running), `node/${SEEDS.running} is already paused\n`);
    assert.match(await ok('explain', SEEDS.running), /^State:\s+Paused/m);
    assert.equal(await ok('resume', SEEDS.running), `node/${SEEDS.running} resumed\n`);
    assert.equal((await annotations(SEEDS.running))[PAUSE_ANNOTATION], undefined);
    assert.equal(await ok('resume', SEEDS.running), `node/${SEEDS.running} is not paused\n`);
    assert.deepEqual(
      (await ticket(SEEDS.running)).operatorLog?.map((l) => `${l.action} ${l.by}`),
      [`pause ${ALICE}`, `resume ${ALICE}`],
    );
    // No ticket: just the annotation. A corrupt one is never rewritten.
    await ok('pause', SEEDS.healthy);
    assert.equal((await annotations(SEEDS.healthy))[TICKET_ANNOTATION], undefined);
    const before = (await annotations(SEEDS.corrupt))[TICKET_ANNOTATION];
    const r = await aegis(['pause', SEEDS.corrupt]);
    assert.equal(r.code, 0);
    assert.match(
      r.err,
      /^warning: node seed-corrupt: the ticket cannot be read, so this pause is not recorded in it$/m,
    );
    const after = await annotations(SEEDS.corrupt);
    assert.deepEqual([after[PAUSE_ANNOTATION], after[TICKET_ANNOTATION]], ['true', before]);
    const refused = await aegis(['ack', SEEDS.corrupt]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /the ticket cannot be read .* it is never overwritten/);
  });

  it('pause / resume (fleet) and breaker reset write aegis-control; re-applying deploy/aegis keeps them', async () => {
    assert.equal(
      await ok('pause'),
      `automation paused fleet-wide by ${ALICE} (ConfigMap monitoring/aegis-control)\n`,
    );
    let data = await readControl();
    assert.equal(data['paused'], 'true');
    assert.equal(data['pausedBy'], ALICE);
    assert.match(
      await ok('pause'),
      /^automation is already paused by system:serviceaccount:oncall:alice$/m,
    );
    assert.match(
      await ok('status'),
      /^Automation:\s+PAUSED by system:serviceaccount:oncall:alice since \S+Z$/m,
    );
    assert.match(
      await ok('explain', SEEDS.storm),
      /Automation is paused fleet-wide by .*alice since/,
    );
    // A re-apply of the shipped manifests never resumes a paused fleet.
    await applyManifests(cluster.admin, (await shippedManifests()).objects);
    assert.equal((await readControl())['paused'], 'true');
    assert.match(await ok('resume'), /^automation resumed fleet-wide by .*alice/m);
    assert.equal((await readControl())['paused'], 'false');
    assert.match(await ok('status'), /^Automation:\s+running$/m);
    const before = Date.now();
    assert.match(
      await ok('breaker', 'reset'),
      /^storm breaker reset by .*alice at \S+Z \(ConfigMap monitoring\/aegis-control\)$/m,
    );
    data = await readControl();
    assert.equal(data['breakerResetBy'], ALICE);
    assert.ok(Date.parse(data['breakerResetAt'] ?? '') >= before - 1000);
    // The Held entry predates the reset: the breaker no longer holds it as far as the cluster shows.
    assert.match(
      await ok('status'),
      /^Storm breaker:\s+no ticket shows a step held by it .*; last reset by .*alice at/m,
    );
  });

  it('the aegis-control ConfigMap is created when missing (by whoever may create it)', async () => {
    await cluster.adminCore.deleteNamespacedConfigMap({
      name: CONTROL_CONFIGMAP,
      namespace: 'monitoring',
    });
    const denied = await aegis(['pause']);
    assert.equal(denied.code, 1);
    assert.match(
      denied.err,
      /^error: ConfigMap monitoring\/aegis-control does not exist and you may not create it: apply deploy\/aegis, which ships it \(create configmap monitoring\/aegis-control: HTTP 403: /m,
    );
    // An admin's kubeconfig creates it (the shipped manifests do too).
    const adminConfig = join(dir, 'admin.kubeconfig');
    writeAdminKubeconfig(cluster, adminConfig);
    const r = await aegis(['--kubeconfig', adminConfig, 'breaker', 'reset']);
    assert.equal(r.code, 0, r.err);
    assert.equal((await readControl())['breakerResetBy'], 'admin');
  });

  it('a write raced between its read and its write: 409, a clear message, exit 1, nothing overwritten', async () => {
    const racing: OperatorDeps['connect'] = async (o) => {
      const real = await PROCESS_DEPS.connect(o);
      const raced: OperatorCluster = {
        ...real,
        context: real.context,
        server: real.server,
        async patchNodeAnnotations(name, rv, values) {
          // Someone else's edit lands first (another operator, the controller).
          await adminAnnotate(name, { 'ops.example.com/note': 'edited meanwhile' });
          return real.patchNodeAnnotations(name, rv, values);
        },
      };
      return raced;
    };
    const before = (await annotations(SEEDS.storm))[TICKET_ANNOTATION];
    const r = await aegis(['takeover', SEEDS.storm, '--as', 'carol'], { connect: racing });
    assert.equal(r.code, 1);
    assert.equal(
      r.err,
      `error: node ${SEEDS.storm}: the ticket changed since it was read; run the command again\n`,
    );
    const after = await annotations(SEEDS.storm);
    assert.equal(after[TICKET_ANNOTATION], before, 'the ticket was not overwritten');
    assert.equal(after['ops.example.com/note'], 'edited meanwhile');
    // Run again: it works on the fresh read.
    assert.match(await ok('takeover', SEEDS.storm, '--as', 'carol'), /taken over by carol/);
    await ok('release', SEEDS.storm);
  });
});

describe('kubectl aegis: kubectl conventions', () => {
  it('usage errors exit 2: a bad -o, a bad node name, an unknown context, an unknown command', async () => {
    for (const [args, want] of [
      [['tickets', '-o', 'xml'], /argument 'xml' is invalid. Allowed choices are wide, json, yaml/],
      [['explain', 'Bad_Node'], /"Bad_Node" is not a valid node name/],
      [
        ['--context', 'staging', 'status'],
        /context "staging" is not in the kubeconfig \(contexts: oncall, viewer, nobody\)/,
      ],
      [['reboot', SEEDS.healthy], /unknown command 'reboot'/],
      [['takeover'], /missing required argument 'node'/],
    ] as const) {
      const r = await aegis(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, want);
    }
  });

  it('colour only on a terminal, and never with NO_COLOR', async () => {
    const tty = await aegis(['tickets'], { isTTY: true });
    assert.ok(tty.out.includes('Reboot \u001b[33mHeld\u001b[0m (approval)'), tty.out);
    const noColor = await aegis(['tickets'], {
      isTTY: true,
      env: { ...process.env, KUBECONFIG: kubeconfig, NO_COLOR: '1' },
    });
    assert.ok(!noColor.out.includes('\u001b'));
  });

  it('the executable: KUBECONFIG (a missing entry skipped) and --context honoured; kubectl finds it as a plugin', (t) => {
    const env = {
      ...process.env,
      KUBECONFIG: `${join(dir, 'missing')}${delimiter}${kubeconfig}`,
    };
    const read = spawnSync(process.execPath, [PLUGIN_BIN, '--context', 'viewer', 'tickets'], {
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(read.status, 0, read.stderr);
    assert.match(read.stdout, /^NODE\s+STATUS/);
    const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
    if (kubectl.status !== 0) {
      t.skip('kubectl is not installed: plugin dispatch not checked');
      return;
    }
    const pathDir = mkdtempSync(join(dir, 'bin-'));
    symlinkSync(PLUGIN_BIN, join(pathDir, 'kubectl-aegis'));
    const viaKubectl = spawnSync(
      'kubectl',
      ['aegis', '--context', 'viewer', 'pause', SEEDS.storm],
      {
        env: { ...env, PATH: `${pathDir}${delimiter}${process.env['PATH'] ?? ''}` },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(viaKubectl.status, 1, viaKubectl.stderr);
    assert.match(viaKubectl.stderr, /cannot patch resource "nodes".*aegis-operator/);
  });
});

/** Resources the two ClusterRoles are checked against, and the verbs. */
const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];
const RESOURCES: readonly (readonly [group: string, resource: string, names: readonly string[]])[] =
  [
    ['', 'nodes', ['', 'gpu-node-0001']],
    ['', 'configmaps', ['', 'aegis-control', 'aegis-config', 'aegis-priority', 'kube-root-ca.crt']],
    ['', 'secrets', ['']],
    ['', 'pods', ['']],
    ['', 'pods/eviction', ['']],
    ['', 'events', ['']],
    ['batch', 'jobs', ['']],
    ['coordination.k8s.io', 'leases', ['', 'aegis-controller']],
  ];
const READS = [
  'get nodes ',
  'get nodes gpu-node-0001',
  'list nodes ',
  'list nodes gpu-node-0001',
  'get configmaps aegis-control',
  'get configmaps aegis-config',
  'get configmaps aegis-priority',
  'get coordination.k8s.io/leases aegis-controller',
];
const EXPECTED = {
  'aegis-viewer': [...READS].sort(),
  'aegis-operator': [
    ...READS,
    'patch nodes ',
    'patch nodes gpu-node-0001',
    'update configmaps aegis-control',
  ].sort(),
};

describe('shipped operator RBAC (SubjectAccessReview over every verb)', () => {
  for (const [role, user] of [
    ['aegis-operator', ALICE],
    ['aegis-viewer', VICTOR],
  ] as const) {
    it(`${role} grants exactly what the plugin needs`, async () => {
      const authz = cluster.admin.makeApiClient(AuthorizationV1Api);
      const allowed: string[] = [];
      for (const verb of VERBS) {
        for (const [group, res, names] of RESOURCES) {
          for (const name of names) {
            const [resource, subresource] = res.split('/');
            const review = await authz.createSubjectAccessReview({
              body: Object.assign(new V1SubjectAccessReview(), {
                spec: {
                  user,
                  groups: [
                    'system:serviceaccounts',
                    `system:serviceaccounts:${ONCALL_NS}`,
                    'system:authenticated',
                  ],
                  resourceAttributes: {
                    verb,
                    group,
                    resource,
                    ...(subresource === undefined ? {} : { subresource }),
                    ...(res === 'nodes' ? {} : { namespace: 'monitoring' }),
                    ...(name === '' ? {} : { name }),
                  },
                },
              }),
            });
            if (review.status?.allowed === true)
              allowed.push(`${verb} ${group === '' ? '' : `${group}/`}${res} ${name}`);
          }
        }
      }
      assert.deepEqual(allowed.sort(), EXPECTED[role]);
    });
  }
});

describe('a day of on-call, with the real controller', () => {
  const FAULTY = 'gpu-node-0002';
  const RMA = 'gpu-node-0003';
  const MAINT = 'gpu-node-0005';
  let xid = '';

  before(async () => {
    for (const name of Object.values(SEEDS)) await cluster.adminCore.deleteNode({ name });
    await setControl({});
    world = createFleetWorld(6);
    await createKwokNodes(cluster, world);
    // The controller's config in the cluster is the one the replica runs: acting, approval mode
    // for reboots and shutdowns.
    const approval = { rules: [{ actions: ['Reboot', 'Shutdown'] }] };
    const doc = parseDocument(readFileSync(CONTROLLER_CONFIG_FILE, 'utf8'));
    doc.setIn(['safety', 'dryRun'], false);
    // Six nodes: the shipped 10 % would let Aegis cordon one node only.
    doc.setIn(['safety', 'maxCordonedFraction'], 0.5);
    doc.setIn(['approval'], approval);
    const cm = await cluster.adminCore.readNamespacedConfigMap({
      name: 'aegis-config',
      namespace: 'monitoring',
    });
    cm.data = { 'config.yaml': doc.toString() };
    await cluster.adminCore.replaceNamespacedConfigMap({
      name: 'aegis-config',
      namespace: 'monitoring',
      body: cm,
    });
    replica = startReplica({
      cluster,
      world,
      holder: 'aegis-controller-7d9f6b-x2k4q',
      config: testConfig({
        'approval.rules': approval.rules,
        'safety.maxCordonedFraction': 0.5,
      }),
      catalogue: quickClearingCatalogue(['Xid79GPULost', 'GpuRowRemappingFailure']),
    });
    await eventually('the controller leads', async () => {
      const r = await aegis(['status']);
      return /Controller:\s+aegis-controller-7d9f6b-x2k4q/.test(r.out) ? true : undefined;
    });
  });

  it('08:00 handover: a quiet fleet', async () => {
    const r = await day('status');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Healthy\s+6/m);
    assert.match(r.out, /^Mode:\s+acting$/m);
  });

  it('an XID 79 and a failing GPU: cordoned, diagnosed, the reboot and the shutdown wait for approval', async () => {
    xid = world.faults.injectFault({ condition: 'Xid79GPULost', node: FAULTY, atMs: Date.now() });
    world.faults.injectFault({ condition: 'GpuRowRemappingFailure', node: RMA, atMs: Date.now() });
    await ticketWhere(
      cluster,
      FAULTY,
      'Reboot awaiting approval',
      (t) => t.approval?.state === 'pending',
      {
        timeoutMs: 60_000,
        replicas: [replica],
      },
    );
    await ticketWhere(
      cluster,
      RMA,
      'Shutdown awaiting approval',
      (t) => t.approval?.state === 'pending',
      {
        timeoutMs: 60_000,
        replicas: [replica],
      },
    );
    const status = await day('status');
    assert.match(status.out, /^Awaiting approval:\s+2:/m);
    await day('tickets', '-o', 'wide');
    const tickets = await day('tickets');
    assert.match(
      tickets.out,
      /gpu-node-0002\s+created\s+aegis\s+Xid79GPULost\s+Reboot Held \(approval\)/,
    );
    const explain = await day('explain', FAULTY);
    assert.match(explain.out, /Reboot waits for approval/);
  });

  it('a viewer cannot approve; the on-call engineer approves the reboot and it runs', async () => {
    const denied = await day('--context', 'viewer', 'approve', FAULTY);
    assert.equal(denied.code, 1);
    const approved = await day('approve', FAULTY);
    assert.equal(approved.code, 0, approved.err);
    const done = await ticketWhere(
      cluster,
      FAULTY,
      'Reboot Succeeded',
      (t) => t.workflows.some((w) => w.action === 'Reboot' && w.status === 'Succeeded'),
      { timeoutMs: 60_000, replicas: [replica] },
    );
    const reboot = done.workflows.find((w) => w.action === 'Reboot' && w.status === 'Succeeded');
    assert.match(reboot?.message ?? '', /.*/);
    assert.deepEqual(
      done.operatorLog?.map((l) => `${l.action} ${l.by}`),
      [`approve ${ALICE}`],
    );
    world.faults.clearFault(xid, Date.now());
    await ticketWhere(cluster, FAULTY, 'resolved', (t) => t.status === 'resolved', {
      timeoutMs: 60_000,
      replicas: [replica],
    });
    const r = await day('ticket', FAULTY);
    assert.match(r.out, /Reboot\s+Succeeded/);
    assert.match(r.out, /approve\s+system:serviceaccount:oncall:alice/);
  });

  it('the GPU needs replacing: dismiss the shutdown, the node goes to a human; take it over, ack after the RMA', async () => {
    const dismissed = await day('dismiss', RMA);
    assert.equal(dismissed.code, 0, dismissed.err);
    await ticketWhere(cluster, RMA, 'handed to a human', (t) => t.status === 'assigned', {
      timeoutMs: 60_000,
      replicas: [replica],
    });
    await day('explain', RMA);
    assert.equal((await day('takeover', RMA, '--as', 'alice')).code, 0);
    assert.equal((await day('ack', RMA)).code, 0);
    const left = (await day('explain', RMA)).out;
    assert.match(left, /^State:\s+LeftCordoned/m);
    assert.match(left, /kubectl uncordon gpu-node-0003 when the node is fit/);
    const t = await ticket(RMA);
    assert.equal(t.status, 'closed');
    assert.deepEqual(
      t.operatorLog?.map((l) => l.action),
      ['dismiss', 'takeover', 'ack'],
    );
  });

  it('maintenance: pause a node, then the fleet; resume both; reset the breaker', async () => {
    assert.equal((await day('pause', MAINT)).code, 0);
    await day('explain', MAINT);
    assert.equal((await day('resume', MAINT)).code, 0);
    assert.equal((await day('pause')).code, 0);
    const paused = await day('status');
    assert.match(paused.out, /^Automation:\s+PAUSED/m);
    assert.equal((await day('resume')).code, 0);
    assert.equal((await day('breaker', 'reset')).code, 0);
    const end = await day('tickets', '--all');
    assert.match(end.out, /gpu-node-0002\s+resolved/);
    assert.match(end.out, /gpu-node-0003\s+closed/);
    const yaml = parse((await day('ticket', RMA, '-o', 'yaml')).out) as { ticket: Ticket };
    assert.equal(yaml.ticket.status, 'closed');
  });
});
