/**
 * Every shipped Job template, created by the adapter (as the controller ServiceAccount) on a real
 * control plane: kube-controller-manager runs the Job controller, kwok runs the pods and serves
 * their logs. Results come back as the phase, the exit code and the log lines.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BatchV1Api } from '@kubernetes/client-node';
import { parseDocument } from 'yaml';
import { ErrorCode, isHealError } from '../../src/core/errors.js';
import { ALL_JOB_KINDS, JobKind, type JobRequest, type JobState } from '../../src/k8s/cluster.js';
import type { KubeCluster } from '../../src/k8s/kube-cluster.js';
import { jobName } from '../../src/jobs/job-name.js';
import { KWOK_EXIT_CODE_ANNOTATION, writePodLog } from '../helpers/k8s-harness.js';
import {
  JOB_TEMPLATES_DIR,
  OPS_IMAGE,
  OPS_NAMESPACE,
  createNode,
  deadline,
  eventually,
  startTestCluster,
  type TestCluster,
} from './setup.js';

const NODE = 'kw-jobs';
let cluster: TestCluster;
let failingTemplates: string;

before(async () => {
  cluster = await startTestCluster({ kcm: true, kwok: true });
  await createNode(cluster, NODE, { kwok: true });
  failingTemplates = templatesFailingWith(23);
});

after(async () => {
  rmSync(failingTemplates, { recursive: true, force: true });
  await cluster.stop();
});

/** A copy of the shipped templates whose pods kwok fails with `code` (via a pod annotation). */
function templatesFailingWith(code: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'aegis-templates-'));
  for (const kind of ALL_JOB_KINDS) {
    const doc = parseDocument(readFileSync(join(JOB_TEMPLATES_DIR, `${kind}.yaml`), 'utf8'));
    doc.setIn(
      ['spec', 'template', 'metadata', 'annotations', KWOK_EXIT_CODE_ANNOTATION],
      String(code),
    );
    writeFileSync(join(dir, `${kind}.yaml`), doc.toString());
  }
  return dir;
}

const PARAMS: Record<JobKind, Record<string, string>> = {
  restart_node: {},
  shutdown_node: {},
  healthcheck_node: {},
  repair_node: {},
  remedy_node: { ACTION: 'DropCache' },
  diagnose_node: { TYPE: 'GpuRowRemappingFailure', ID: '0000:07:00.0' },
  validate_node: { DCGM_LEVEL: '3', NCCL_GPUS: 'all', IB_DEVICE: 'auto' },
};

function request(kind: JobKind, seq: number): JobRequest {
  return {
    kind,
    name: jobName(kind, NODE, seq),
    node: NODE,
    params: PARAMS[kind],
    activeDeadlineSeconds: 600,
  };
}

async function finished(kube: KubeCluster, name: string): Promise<JobState> {
  return eventually(`job ${name} finished`, async () => {
    const state = await kube.getJob(name, deadline());
    return state?.phase === 'Succeeded' || state?.phase === 'Failed' ? state : undefined;
  });
}

describe('Jobs from the shipped templates', () => {
  for (const kind of ALL_JOB_KINDS) {
    it(`${kind} completes; exit code and log lines are read back`, async (t) => {
      const started = Date.now();
      await writePodLog(cluster.stack, [
        'hint: row remapper state',
        'cmd: nvidia-smi -q -d ROW_REMAPPER',
        'result: ok',
      ]);
      const kube = cluster.controller();
      const req = request(kind, 1);
      await kube.createJob(req, deadline());
      const state = await finished(kube, req.name);
      t.diagnostic(`${kind}: ${state.phase} in ${Date.now() - started} ms`);
      assert.equal(state.phase, 'Succeeded');
      assert.equal(state.exitCode, 0);
      assert.deepEqual(state.logs, [
        'hint: row remapper state',
        'cmd: nvidia-smi -q -d ROW_REMAPPER',
        'result: ok',
      ]);
    });
  }

  it('the created Job is the rendered template: pinned, labelled, bounded', async () => {
    const batch = cluster.admin.makeApiClient(BatchV1Api);
    const job = await batch.readNamespacedJob({
      name: jobName(JobKind.Remedy, NODE, 1),
      namespace: OPS_NAMESPACE,
    });
    const pod = job.spec?.template.spec;
    const container = pod?.containers[0];
    assert.ok(pod !== undefined && container !== undefined);
    assert.equal(job.spec?.activeDeadlineSeconds, 600);
    assert.equal(job.metadata?.labels?.['aegis.io/job-kind'], 'remedy_node');
    assert.equal(pod.nodeName, NODE);
    assert.deepEqual(container.args, ['remedy', 'DropCache']);
    assert.equal(container.image, OPS_IMAGE);
  });

  it('creating the same Job again succeeds without change', async () => {
    const kube = cluster.controller();
    const req = request(JobKind.Healthcheck, 1);
    const batch = cluster.admin.makeApiClient(BatchV1Api);
    const before = await batch.readNamespacedJob({ name: req.name, namespace: OPS_NAMESPACE });
    await kube.createJob(req, deadline());
    const again = await batch.readNamespacedJob({ name: req.name, namespace: OPS_NAMESPACE });
    assert.equal(again.metadata?.uid, before.metadata?.uid);
  });

  it('a failing pod gives phase Failed and its exit code (healthcheck 23 = GpuCheckFailed)', async () => {
    const kube = cluster.controller({ jobTemplatesDir: failingTemplates });
    const req = request(JobKind.Healthcheck, 2);
    await kube.createJob(req, deadline());
    const state = await finished(kube, req.name);
    assert.equal(state.phase, 'Failed');
    assert.equal(state.exitCode, 23);
  });

  it('getJob of an unknown Job is null; deleteJob removes it (foreground) and is idempotent', async () => {
    const kube = cluster.controller();
    assert.equal(await kube.getJob('no-such-job', deadline()), null);
    const name = jobName(JobKind.Repair, NODE, 1);
    await kube.deleteJob(name, deadline());
    await eventually(`${name} deleted`, async () =>
      (await kube.getJob(name, deadline())) === null ? true : undefined,
    );
    await kube.deleteJob(name, deadline());
  });

  it('rejects invalid params before calling the server', async () => {
    const kube = cluster.controller();
    const bad: JobRequest = {
      ...request(JobKind.Remedy, 9),
      params: { ACTION: 'DropCache; reboot' },
    };
    await assert.rejects(kube.createJob(bad, deadline()), (err: unknown) =>
      isHealError(err, ErrorCode.InvalidInput),
    );
    assert.equal(await kube.getJob(bad.name, deadline()), null);
  });
});
