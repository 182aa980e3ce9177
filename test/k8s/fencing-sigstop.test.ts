/**
 * Two daemon processes (`aegis run`, the controller's ServiceAccount token) on one real API server:
 * the leader is frozen with SIGSTOP past its lease, the standby takes over and carries the ladder
 * to its reboot, then the old leader is thawed with SIGCONT. A paused process resumes exactly where
 * it stopped — mid-cycle, mid-step, with its timers all due at once — believing it still leads.
 * The fence must stop it: zero steps begun or ended by the stale leader after it was frozen,
 * exactly one reboot Job ever. The standby is Ready (/readyz 200) while it does not lead.
 *
 * The reboot Job is created suspended (a copy of deploy/jobs whose restart_node template adds
 * `spec.suspend: true`), so the Reboot step stays Running while the old leader is thawed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { systemClock } from '../../src/core/clock.js';
import type { SimWorld } from '../../src/sim/sim-world.js';
import { DEPLOY_AEGIS_DIR } from '../helpers/apply-manifests.js';
import { freePorts } from '../helpers/k8s-harness.js';
import {
  MONITORING,
  createFleetWorld,
  createKwokNodes,
  jobsOf,
  templatesWith,
  ticketOf,
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
const LEASE_S = 4;

interface Daemon {
  readonly proc: ChildProcess;
  readonly metricsUrl: string;
  readonly exited: Promise<number | null>;
  output: string;
}

let cluster: TestCluster;
let world: SimWorld;
let prom: SimPromApi;
let dir = '';
let templates = '';
const daemons: Daemon[] = [];

before(async () => {
  cluster = await startTestCluster({ kcm: true, kwok: true });
  world = createFleetWorld(3);
  await createKwokNodes(cluster, world);
  prom = await startSimPromApi({ source: world.metrics, clock: systemClock });
  dir = mkdtempSync(join(tmpdir(), 'aegis-fence-'));
  templates = templatesWith('restart_node', (doc) => {
    doc.setIn(['spec', 'suspend'], true);
  });
});

after(async () => {
  for (const d of daemons) {
    if (d.proc.exitCode === null && d.proc.signalCode === null) {
      d.proc.kill('SIGCONT');
      d.proc.kill('SIGKILL');
      await d.exited;
    }
  }
  await prom.close();
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(templates, { recursive: true, force: true });
});

/** Starts `aegis run` with a short lease, on the test cluster and the simulated fleet's metrics. */
async function startDaemon(name: string): Promise<Daemon> {
  const { stack } = cluster;
  const [port] = (await freePorts(1)) as [number];
  const write = (file: string, content: string | Buffer): string => {
    const path = join(dir, `${name}-${file}`);
    writeFileSync(path, content);
    return path;
  };
  const config = {
    prometheus: { url: prom.url, timeoutMs: '3s' },
    safety: { dryRun: false, nodeCooldownMs: '1s' },
    sop: { settleMs: '2s' },
    inspect: { intervalMs: '500ms' },
    kubernetes: {
      inCluster: false,
      server: stack.server,
      tokenFile: write('token', stack.controllerToken),
      caFile: write('ca.crt', Buffer.from(stack.caData, 'base64')),
      namespace: MONITORING,
      jobTemplatesDir: templates,
      // The shipped ops namespace and image: the only ones the shipped RBAC and policy allow.
      jobNamespace: OPS_NAMESPACE,
      opsImage: OPS_IMAGE,
    },
    metricsPort: port,
    leaderElection: {
      leaseDurationSeconds: LEASE_S,
      renewIntervalMs: '1s',
      fenceMarginMs: '1s',
    },
  };
  const file = write('config.yaml', stringify(config));
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'run', '--config', file],
    {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AEGIS_'))),
    },
  );
  const d: Daemon = {
    proc,
    metricsUrl: `http://127.0.0.1:${port}`,
    exited: new Promise((resolve) => {
      proc.once('exit', (code) => {
        resolve(code);
      });
    }),
    output: '',
  };
  proc.stdout.on('data', (c: Buffer) => (d.output += c.toString('utf8')));
  proc.stderr.on('data', (c: Buffer) => (d.output += c.toString('utf8')));
  daemons.push(d);
  return d;
}

async function holder(): Promise<string | undefined> {
  const api = cluster.admin.makeApiClient(CoordinationV1Api);
  const lease = await api.readNamespacedLease({ name: 'aegis-controller', namespace: MONITORING });
  return lease.spec?.holderIdentity;
}

async function metric(d: Daemon, re: RegExp): Promise<number> {
  const text = await (await fetch(`${d.metricsUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (re.test(line)) sum += Number(line.split(' ').at(-1));
  return sum;
}

/** Steps this process recorded as ended (any status). */
const stepsEnded = (d: Daemon): Promise<number> => metric(d, /^aegis_sop_total\{/);

describe('a leader frozen past its lease (SIGSTOP) and thawed (SIGCONT)', () => {
  let a: Daemon;
  let b: Daemon;
  let endedByA = 0;

  it('one process leads; the other is a Ready standby', async () => {
    a = await startDaemon('a');
    const holderA = await eventually('a holds the lease', async () => {
      const h = await holder();
      return h?.endsWith(`-${a.proc.pid ?? 0}`) === true ? h : undefined;
    }).catch((err: unknown) => {
      throw new Error(`no lease; a said:\n${a.output.slice(-2000)}`, { cause: err });
    });
    b = await startDaemon('b');
    const ready = await eventually('b is Ready', async () => {
      const res = await fetch(`${b.metricsUrl}/readyz`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    });
    assert.equal(ready, true, 'a standby that never cycled is Ready');
    assert.equal(await metric(b, /^aegis_leader /), 0, 'b does not lead');
    assert.equal(await holder(), holderA);
  });

  it('frozen after the cordon, the leader is replaced and the standby reaches the reboot', async (t) => {
    world.faults.injectFault({ condition: XID, node: NODE, atMs: Date.now() });
    await ticketWhere(cluster, NODE, 'Cordon Succeeded', (tk) =>
      workflowLine(tk).includes('Cordon Succeeded'),
    );
    endedByA = await stepsEnded(a);
    a.proc.kill('SIGSTOP');
    const frozenAt = Date.now();
    await eventually(
      'b holds the lease',
      async () => ((await holder())?.endsWith(`-${b.proc.pid ?? 0}`) === true ? true : undefined),
      30_000,
    );
    t.diagnostic(`b took the lease ${Date.now() - frozenAt} ms after a froze (lease ${LEASE_S} s)`);
    const ticket = await ticketWhere(
      cluster,
      NODE,
      'Reboot Running',
      (tk) => tk.workflows.at(-1)?.action === 'Reboot' && tk.workflows.at(-1)?.status === 'Running',
      { timeoutMs: 60_000 },
    ).catch((err: unknown) => {
      throw new Error(`b said:\n${b.output.slice(-3000)}`, { cause: err });
    });
    assert.ok(endedByA >= 1, 'a ended its cordon before it froze');
    // The step is recorded Running before its Job is created: wait for the Job.
    const jobs = await eventually('the reboot Job', async () => {
      const found = await jobsOf(cluster, NODE, 'restart_node');
      return found.length > 0 ? found : undefined;
    });
    assert.equal(jobs.length, 1);
    assert.deepEqual(
      ticket.workflows.filter((w) => w.status === 'Running').length,
      1,
      'one Running step',
    );
  });

  it('thawed, the old leader begins and ends nothing: exactly one reboot Job ever', async (t) => {
    const before = await ticketOf(cluster, NODE);
    assert.ok(before !== null);
    a.proc.kill('SIGCONT');
    // Long enough for every timer of the thawed process to fire, and for a few of its cycles.
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    const aLeads = await metric(a, /^aegis_leader /);
    assert.equal(aLeads, 0, 'the thawed process knows it does not lead');
    assert.equal(await stepsEnded(a), endedByA, 'a ended nothing after it froze');
    const after = await ticketOf(cluster, NODE);
    assert.ok(after !== null);
    assert.deepEqual(
      workflowLine(after).slice(0, workflowLine(before).length),
      workflowLine(before),
      'nothing rewritten',
    );
    assert.ok(
      after.workflows.filter((w) => w.status === 'Running').length <= 1,
      `one Running step at most: ${workflowLine(after).join(', ')}`,
    );
    const reboots = await jobsOf(cluster, NODE, 'restart_node');
    assert.equal(reboots.length, 1, 'exactly one reboot Job ever');
    assert.equal((await jobsOf(cluster, NODE, 'shutdown_node')).length, 0, 'never powered off');
    assert.ok((after.leaderEpoch ?? 0) >= 1, 'the ticket names the new leader epoch');
    t.diagnostic(`ticket: ${workflowLine(after).join(' → ')} (epoch ${String(after.leaderEpoch)})`);
    assert.match(a.output, /no longer holds the leader lease|lease ran out|lost the leader lease/);
  });
});
