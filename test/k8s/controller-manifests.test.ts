/**
 * The controller run from the shipped manifests, as far as this API server allows. deploy/aegis is
 * applied for real (server-side apply as admin, generators reading ../jobs, ../ops and
 * ../priority.conf, admission policies included); then the controller's inputs are read back from
 * the applied ConfigMaps (as an admin: the kubelet mounts them for the pod, the controller's
 * ServiceAccount may not read them), and `aegis run --config <file>` — the Deployment's own command
 * line — runs as a separate process on them, against this API server (controller token) and a
 * Prometheus API served from the simulated fleet. Its ops Jobs land in the shipped ops namespace,
 * with the shipped ops image, through the shipped admission policy.
 *
 * The Deployment's pods never run here: kube-controller-manager runs no Deployment/ReplicaSet
 * controller in this harness, and kwok could only pretend a container runs, never run this
 * process. What a pod would get from its mounts (config, priority table, Job templates) and its
 * ServiceAccount (token, CA) the process gets as files instead; the config says so with
 * `kubernetes.inCluster: false` and the server, token and CA files. Nothing else is changed except
 * the Prometheus URL, the metrics port, and `--no-dry-run` on the command line (the shipped config
 * is dry-run, and this test wants a cordon).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { parseDocument } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { systemClock } from '../../src/core/clock.js';
import { ALL_JOB_KINDS } from '../../src/k8s/cluster.js';
import { parsePriorityTable } from '../../src/priority/priority-table.js';
import type { SimWorld } from '../../src/sim/sim-world.js';
import { DEPLOY_AEGIS_DIR, tokenKubeConfig } from '../helpers/apply-manifests.js';
import { freePorts } from '../helpers/k8s-harness.js';
import {
  MONITORING,
  createFleetWorld,
  createKwokNodes,
  jobsOf,
  ticketWhere,
  workflowLine,
} from '../helpers/k8s-engine.js';
import { startSimPromApi, type SimPromApi } from '../helpers/sim-prom-api.js';
import {
  OPS_IMAGE,
  OPS_NAMESPACE,
  eventually,
  startTestCluster,
  type TestCluster,
} from './setup.js';

const REPO = dirname(dirname(DEPLOY_AEGIS_DIR));
const NODE = 'gpu-node-0002';
const XID = 'Xid79GPULost';
const STOP_GRACE_MS = 20_000;

let cluster: TestCluster;
let world: SimWorld;
let prom: SimPromApi;
let dir = '';
let child: ChildProcess | undefined;
let exited: Promise<number | null> | undefined;
let output = '';
let metricsUrl = '';
let configFile = '';

before(async () => {
  cluster = await startTestCluster({ kcm: true, kwok: true });
  world = createFleetWorld(4);
  await createKwokNodes(cluster, world);
  prom = await startSimPromApi({ source: world.metrics, clock: systemClock });
  dir = mkdtempSync(join(tmpdir(), 'aegis-run-'));
});

after(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
  await prom.close();
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The last lines the process logged (for assertion messages). */
function tail(): string {
  return output.trimEnd().split('\n').slice(-15).join('\n');
}

async function get(path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${metricsUrl}${path}`);
  return { status: res.status, text: await res.text() };
}

describe('the controller from the shipped manifests', () => {
  it('deploy/aegis applied completely; its Deployment exists but no pod of it can run here', async () => {
    const kinds = new Set(cluster.applied.map((id) => id.split('/')[0]));
    for (const kind of [
      'Namespace',
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'ConfigMap',
      'Deployment',
      'Service',
      'PodDisruptionBudget',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ]) {
      assert.ok(kinds.has(kind), `${kind} applied`);
    }
    assert.deepEqual(cluster.notes, [], 'no stand-in file was needed');
    const apps = cluster.admin.makeApiClient(AppsV1Api);
    const d = await apps.readNamespacedDeployment({
      name: 'aegis-controller',
      namespace: MONITORING,
    });
    assert.deepEqual(d.spec?.template.spec?.containers[0]?.args, [
      'run',
      '--config',
      '/etc/aegis/config.yaml',
    ]);
    const pods = await cluster.adminCore.listNamespacedPod({
      namespace: MONITORING,
      labelSelector: 'app.kubernetes.io/name=aegis-controller',
    });
    assert.equal(pods.items.length, 0, 'no Deployment controller here: no controller pod');
  });

  it('its inputs read back from the applied ConfigMaps (mounted files: the controller may not read them)', async () => {
    const { stack } = cluster;
    const core = cluster.adminCore;
    const asController = tokenKubeConfig(stack.server, stack.caData, stack.controllerToken);
    await assert.rejects(
      asController
        .makeApiClient(CoreV1Api)
        .readNamespacedConfigMap({ name: 'aegis-config', namespace: MONITORING }),
      (err: unknown) => (err as { code?: unknown }).code === 403,
    );
    const data = async (name: string): Promise<Record<string, string>> =>
      (await core.readNamespacedConfigMap({ name, namespace: MONITORING })).data ?? {};
    const configText = (await data('aegis-config'))['config.yaml'] ?? '';
    const priorityText = (await data('aegis-priority'))['priority.conf'] ?? '';
    const templates = await data('aegis-job-templates');
    const shipped = loadConfig({ file: write('shipped-config.yaml', configText), env: {} });
    assert.equal(shipped.safety.dryRun, true, 'shipped dry-run');
    assert.equal(
      parsePriorityTable(priorityText, { source: 'aegis-priority' }).get(XID)?.priority,
      2,
    );
    assert.deepEqual(Object.keys(templates).sort(), ALL_JOB_KINDS.map((k) => `${k}.yaml`).sort());
    for (const [file, text] of Object.entries(templates)) write(join('jobs', file), text);
    const [metricsPort] = (await freePorts(1)) as [number];
    metricsUrl = `http://127.0.0.1:${metricsPort}`;
    // Out of cluster: what the pod's mounts and ServiceAccount would provide, as files.
    const doc = parseDocument(configText);
    doc.setIn(['kubernetes', 'inCluster'], false);
    doc.setIn(['kubernetes', 'server'], stack.server);
    doc.setIn(['kubernetes', 'tokenFile'], write('token', stack.controllerToken));
    doc.setIn(['kubernetes', 'caFile'], write('ca.crt', Buffer.from(stack.caData, 'base64')));
    doc.setIn(['kubernetes', 'jobTemplatesDir'], join(dir, 'jobs'));
    doc.setIn(['priorityFile'], write('priority.conf', priorityText));
    doc.setIn(['prometheus', 'url'], prom.url);
    doc.setIn(['metricsPort'], metricsPort);
    configFile = write('config.yaml', doc.toString());
    assert.equal(loadConfig({ file: configFile, env: {} }).kubernetes.inCluster, false);
  });

  it('`aegis run --config` takes the lease, cordons the faulty node, opens a ticket', async (t) => {
    world.faults.injectFault({ condition: XID, node: NODE, atMs: Date.now() });
    const started = Date.now();
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'run', '--config', configFile, '--no-dry-run'],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: withoutAegisEnv() },
    );
    child = proc;
    exited = new Promise((resolve) => {
      proc.once('exit', (code) => {
        resolve(code);
      });
    });
    proc.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    proc.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const leases = cluster.admin.makeApiClient(CoordinationV1Api);
    const holder = await eventually('the process holds the lease', async () => {
      const lease = await leases.readNamespacedLease({
        name: 'aegis-controller',
        namespace: MONITORING,
      });
      return lease.spec?.holderIdentity;
    }).catch((err: unknown) => {
      throw new Error(`no lease; process output:\n${tail()}`, { cause: err });
    });
    assert.match(holder, new RegExp(`-${proc.pid ?? 0}$`), 'holder is <host>-<pid>');
    const ticket = await ticketWhere(cluster, NODE, 'Cordon Succeeded', (tk) =>
      workflowLine(tk).includes('Cordon Succeeded'),
    ).catch((err: unknown) => {
      throw new Error(`no cordon; process output:\n${tail()}`, { cause: err });
    });
    t.diagnostic(`lease taken and ${NODE} cordoned ${Date.now() - started} ms after spawn`);
    const node = await cluster.adminCore.readNode({ name: NODE });
    assert.equal(node.spec?.unschedulable, true);
    assert.equal(ticket.condition, XID);
    for (const other of ['gpu-node-0001', 'gpu-node-0003', 'gpu-node-0004']) {
      const n = await cluster.adminCore.readNode({ name: other });
      assert.notEqual(n.spec?.unschedulable, true, `${other} left alone`);
    }
    // The next cycle (shipped interval: 5 s) runs the diagnose Job from the read-back templates.
    const [diagnose] = await eventually('diagnose Job', async () => {
      const jobs = await jobsOf(cluster, NODE, 'diagnose_node');
      return jobs.length > 0 ? jobs : undefined;
    });
    assert.equal(diagnose?.metadata?.namespace, OPS_NAMESPACE, 'in the ops namespace');
    assert.equal(
      diagnose.spec?.template.spec?.containers[0]?.image,
      OPS_IMAGE,
      'the ops image of the shipped config',
    );
    assert.match(OPS_IMAGE, /@sha256:[0-9a-f]{64}$/, 'pinned by digest');
  });

  it('serves /metrics with the aegis_* series, /healthz and /readyz', async () => {
    assert.equal((await get('/healthz')).status, 200);
    assert.equal((await get('/readyz')).status, 200);
    const { status, text } = await get('/metrics');
    assert.equal(status, 200);
    for (const re of [
      /^aegis_leader 1$/m,
      /^aegis_condition_gauge\{condition="Xid79GPULost",domain="GPU"\} 1$/m,
      /^aegis_sop_total\{sop="gpu\.reboot-once",action="Cordon",status="Succeeded"\} 1$/m,
      /^aegis_ticket_open_total 1$/m,
      /^aegis_nodes_cordoned\{by="aegis"\} 1$/m,
      /^aegis_metrics_source_up 1$/m,
      /^# TYPE aegis_selfheal_seconds histogram$/m,
    ]) {
      assert.match(text, re);
    }
    assert.ok(prom.queries > 0);
  });

  it('on SIGTERM it stops cleanly and gives the lease up', async () => {
    const proc = child as ChildProcess;
    proc.kill('SIGTERM');
    const timeout = new Promise<'timeout'>((resolve) =>
      setTimeout(() => {
        resolve('timeout');
      }, STOP_GRACE_MS).unref(),
    );
    const code = await Promise.race([exited, timeout]);
    assert.equal(code, 0, tail());
    const leases = cluster.admin.makeApiClient(CoordinationV1Api);
    const lease = await leases.readNamespacedLease({
      name: 'aegis-controller',
      namespace: MONITORING,
    });
    assert.equal(lease.spec?.holderIdentity, undefined, 'released');
    assert.match(output, /"msg":"aegis stopped"/);
  });
});

/** This process's environment without AEGIS_* (they would override the config file). */
function withoutAegisEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AEGIS_')));
}

/** Writes a file under the test's temp dir; returns its path. */
function write(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  return path;
}
