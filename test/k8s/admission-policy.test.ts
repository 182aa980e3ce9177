/**
 * The shipped ValidatingAdmissionPolicies (deploy/aegis/admission-policy.yaml) on a real API
 * server: what the controller may make the cluster do is enforced there, not trusted to the
 * controller.
 *
 * - aegis-ops-jobs: in the ops namespace, the controller's own Jobs from the real templates are
 *   admitted, and so are their pods (kube-controller-manager's Job controller creates them, kwok
 *   runs them to completion); a Job or pod with another ServiceAccount, a hostPath the templates do
 *   not use, another image, another command or an extra container is refused with a message naming
 *   the policy, whoever asks (the controller's ServiceAccount or an admin).
 * - aegis-controller-pod-deletes: the controller's cluster-wide `pods: delete` reaches only pods
 *   already terminating and DaemonSet pods; any other pod leaves through the Eviction API (which
 *   honours PodDisruptionBudgets).
 *
 * And, without a cluster: the policy's allowed values are exactly what the templates use.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CoreV1Api,
  KubernetesObjectApi,
  V1DeleteOptions,
  V1Eviction,
  V1ObjectMeta,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { parse, parseDocument } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { ErrorCode, isHealError } from '../../src/core/errors.js';
import { toTemplateVars } from '../../src/jobs/params.js';
import { renderJobTemplate } from '../../src/jobs/render.js';
import { ALL_JOB_KINDS, type JobKind, type JobRequest } from '../../src/k8s/cluster.js';
import { createKubeCluster, type KubeCluster } from '../../src/k8s/kube-cluster.js';
import { DEPLOY_AEGIS_DIR, tokenKubeConfig, type Manifest } from '../helpers/apply-manifests.js';
import {
  JOB_TEMPLATES_DIR,
  createNode,
  createObject,
  deadline,
  eventually,
  shippedManifests,
  startTestCluster,
  type PlainObject,
  type TestCluster,
} from './setup.js';

const OPS_POLICY = 'aegis-ops-jobs';
const DELETE_POLICY = 'aegis-controller-pod-deletes';
const NODE = 'kw-admission';

/** The shipped controller config (its ops namespace and ops image). */
const shipped: Config = loadConfig({
  file: join(DEPLOY_AEGIS_DIR, 'controller-config.yaml'),
  env: {},
});
const OPS_NS = shipped.kubernetes.jobNamespace;
const OPS_IMAGE = shipped.kubernetes.opsImage ?? '';

const PARAMS: Record<JobKind, Record<string, string>> = {
  restart_node: {},
  shutdown_node: {},
  healthcheck_node: {},
  repair_node: {},
  remedy_node: { ACTION: 'DropCache' },
  diagnose_node: { TYPE: 'Xid79GPULost', ID: '0' },
  validate_node: { DCGM_LEVEL: '3', NCCL_GPUS: 'all', IB_DEVICE: 'auto' },
};

function request(kind: JobKind, name: string): JobRequest {
  return { kind, name, node: NODE, params: PARAMS[kind], activeDeadlineSeconds: 600 };
}

/** A template rendered exactly as the controller renders it (plain data, for editing). */
function rendered(kind: JobKind, name: string): JobObject {
  const text = readFileSync(join(JOB_TEMPLATES_DIR, `${kind}.yaml`), 'utf8');
  const vars = { ...toTemplateVars(request(kind, name), { image: OPS_IMAGE }), NAMESPACE: OPS_NS };
  return structuredClone(renderJobTemplate(text, vars, kind)) as unknown as JobObject;
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  [field: string]: unknown;
}
interface PodSpec {
  serviceAccountName?: string;
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; [source: string]: unknown }[];
  [field: string]: unknown;
}
interface JobObject extends PlainObject {
  readonly metadata: PlainObject['metadata'] & { name: string; namespace: string };
  readonly spec: { template: { spec: PodSpec; metadata?: unknown }; [field: string]: unknown };
}

/** The ops container of a Job object. */
function opsContainer(job: JobObject): Container {
  const c = job.spec.template.spec.containers[0];
  assert.ok(c !== undefined);
  return c;
}

/** Server-side dry run of a create: every admission check runs, nothing is stored. */
function dryRunCreate(kc: KubeConfig, obj: PlainObject): Promise<unknown> {
  const { apiVersion, kind, metadata, ...rest } = obj;
  const meta = Object.assign(new V1ObjectMeta(), metadata);
  return KubernetesObjectApi.makeApiClient(kc).create(
    Object.assign({ apiVersion, kind, metadata: meta }, rest),
    undefined,
    'All',
  );
}

/** Status and message of a refused call (200 and '' when it was accepted). */
async function outcome(call: () => Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await call();
    return { status: 200, message: '' };
  } catch (err) {
    const e = err as { code?: unknown; body?: unknown };
    let message = typeof e.body === 'string' ? e.body : JSON.stringify(e.body ?? String(err));
    try {
      const parsed = (JSON.parse(message) as { message?: unknown }).message;
      if (typeof parsed === 'string') message = parsed;
    } catch {
      // not JSON: keep the body as it is
    }
    return { status: typeof e.code === 'number' ? e.code : -1, message };
  }
}

/** Asserts the call is refused by `policy` with a message matching `why`. */
async function assertRefused(
  call: () => Promise<unknown>,
  policy: string,
  why: RegExp,
): Promise<string> {
  const { status, message } = await outcome(call);
  assert.equal(status, 403, `refused (got ${status}: ${message})`);
  assert.match(message, new RegExp(`ValidatingAdmissionPolicy '${policy}'`));
  assert.match(message, why);
  return message;
}

let cluster: TestCluster;
let controllerKc: KubeConfig;
let kube: KubeCluster;

before(async () => {
  cluster = await startTestCluster({ kcm: true, kwok: true });
  const { stack } = cluster;
  controllerKc = tokenKubeConfig(stack.server, stack.caData, stack.controllerToken);
  kube = createKubeCluster({
    kubeConfig: { server: stack.server, token: stack.controllerToken, caData: stack.caData },
    leaseNamespace: shipped.kubernetes.namespace,
    jobNamespace: OPS_NS,
    jobTemplatesDir: JOB_TEMPLATES_DIR,
    opsImage: OPS_IMAGE,
    watchNodes: false,
  });
  await createNode(cluster, NODE, { kwok: true });
  // A policy takes effect once the API server has compiled it: wait for the first refusal.
  const probe = rendered('healthcheck_node', 'probe');
  opsContainer(probe).image = 'busybox@sha256:' + 'f'.repeat(64);
  await eventually(
    'the admission policies in force',
    async () => {
      const { status } = await outcome(() =>
        dryRunCreate(cluster.admin, { ...probe, metadata: { ...probe.metadata } }),
      );
      return status === 403 ? true : undefined;
    },
    20_000,
  );
});

after(async () => {
  await cluster.stop();
});

describe('aegis-ops-jobs: the allowed values are what the templates use', () => {
  it('ServiceAccount, image, command, ConfigMaps, hostPaths (read-only ones apart): exactly', async () => {
    const manifests = (await shippedManifests()).objects;
    const params = manifests.find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name === 'aegis-ops-admission',
    ) as (Manifest & { data: Record<string, string> }) | undefined;
    assert.ok(params !== undefined, 'the params ConfigMap is shipped');
    assert.equal(params.metadata.namespace, OPS_NS);
    const list = (s: string | undefined): string[] =>
      (s ?? '')
        .split(',')
        .filter((x) => x !== '')
        .sort();

    const need = {
      serviceAccounts: new Set<string>(),
      images: new Set<string>(),
      commands: new Set<string>(),
      configMaps: new Set<string>(),
      hostPaths: new Set<string>(),
      readOnlyHostPaths: new Set<string>(),
    };
    const files = readdirSync(JOB_TEMPLATES_DIR).filter((f) => f.endsWith('.yaml'));
    assert.deepEqual(files.sort(), ALL_JOB_KINDS.map((k) => `${k}.yaml`).sort());
    for (const file of files) {
      const job = parse(readFileSync(join(JOB_TEMPLATES_DIR, file), 'utf8')) as JobObject;
      assert.equal(job.metadata.namespace, '{{NAMESPACE}}', `${file}: namespace is the ops one`);
      const spec = job.spec.template.spec;
      need.serviceAccounts.add(spec.serviceAccountName ?? '(none)');
      for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
        need.images.add(c.image === '{{IMAGE}}' ? OPS_IMAGE : c.image);
        need.commands.add((c.command ?? []).join(' '));
      }
      for (const v of spec.volumes ?? []) {
        const cm = v.configMap as { name: string } | undefined;
        const hp = v.hostPath as { path: string } | undefined;
        if (cm !== undefined) need.configMaps.add(cm.name);
        if (hp === undefined) continue;
        const mounts = spec.containers.flatMap((c) =>
          (c.volumeMounts ?? []).filter((m) => m.name === v.name),
        );
        const readOnly = mounts.length > 0 && mounts.every((m) => m.readOnly === true);
        (readOnly ? need.readOnlyHostPaths : need.hostPaths).add(hp.path);
      }
    }
    const d = params.data;
    assert.deepEqual([...need.serviceAccounts], [d.serviceAccountName], 'one ServiceAccount');
    assert.deepEqual([...need.images], [d.image], 'one image');
    assert.equal(d.image, OPS_IMAGE, 'the admitted image is controller-config opsImage');
    assert.deepEqual([...need.commands], [d.command], 'one command');
    assert.deepEqual([...need.configMaps].sort(), list(d.configMaps));
    assert.deepEqual([...need.hostPaths].sort(), list(d.hostPaths), 'read-write hostPaths');
    assert.deepEqual(
      [...need.readOnlyHostPaths].sort(),
      list(d.readOnlyHostPaths),
      'read-only hostPaths',
    );
    // The ServiceAccount exists in the ops namespace and mounts no token.
    const sa = manifests.find(
      (o) => o.kind === 'ServiceAccount' && o.metadata.name === d.serviceAccountName,
    ) as (Manifest & { automountServiceAccountToken?: boolean }) | undefined;
    assert.equal(sa?.metadata.namespace, OPS_NS);
    assert.equal(sa.automountServiceAccountToken, false);
  });

  it('the binding covers the ops namespace, with the params from it, failing closed', async () => {
    const manifests = (await shippedManifests()).objects;
    const binding = manifests.find(
      (o) => o.kind === 'ValidatingAdmissionPolicyBinding' && o.metadata.name === OPS_POLICY,
    ) as (Manifest & { spec: Record<string, unknown> }) | undefined;
    assert.ok(binding !== undefined);
    assert.deepEqual(binding.spec.validationActions, ['Deny']);
    assert.deepEqual(binding.spec.paramRef, {
      name: 'aegis-ops-admission',
      namespace: OPS_NS,
      parameterNotFoundAction: 'Deny',
    });
    assert.deepEqual(binding.spec.matchResources, {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': OPS_NS } },
    });
  });
});

describe('aegis-ops-jobs on the API server', () => {
  for (const kind of ALL_JOB_KINDS) {
    it(`the controller's ${kind} Job from the real template is admitted, its pod too, and completes`, async () => {
      const name = `adm-${kind.replace('_', '-')}`;
      await kube.createJob(request(kind, name), deadline());
      const state = await eventually(`Job ${name} finished`, async () => {
        const s = await kube.getJob(name, deadline());
        return s?.phase === 'Succeeded' || s?.phase === 'Failed' ? s : undefined;
      });
      assert.equal(state.phase, 'Succeeded', 'its pod was admitted, ran and completed');
      const pods = await cluster.adminCore.listNamespacedPod({
        namespace: OPS_NS,
        labelSelector: `batch.kubernetes.io/job-name=${name}`,
      });
      const pod = pods.items[0]?.spec;
      assert.equal(pod?.serviceAccountName, 'aegis-ops');
      assert.equal(pod.containers[0]?.image, OPS_IMAGE);
    });
  }

  const refusals: readonly [string, RegExp, (job: JobObject) => void][] = [
    [
      'another ServiceAccount',
      /run as ServiceAccount aegis-ops, not aegis-controller/,
      (job) => {
        job.spec.template.spec.serviceAccountName = 'aegis-controller';
      },
    ],
    [
      'no ServiceAccount (the namespace default)',
      /run as ServiceAccount aegis-ops, not \(none\)/,
      (job) => {
        delete job.spec.template.spec.serviceAccountName;
      },
    ],
    [
      'a ServiceAccount token',
      /get no ServiceAccount token/,
      (job) => {
        job.spec.template.spec.automountServiceAccountToken = true;
      },
    ],
    [
      'a hostPath the templates do not use (/)',
      /refused volume hostPath \//,
      (job) => {
        job.spec.template.spec.volumes?.push({ name: 'host', hostPath: { path: '/' } });
        opsContainer(job).volumeMounts?.push({ name: 'host', mountPath: '/host' });
      },
    ],
    [
      "the allowed hostPath's parent (/var/lib)",
      /refused volume hostPath \/var\/lib$/,
      (job) => {
        job.spec.template.spec.volumes?.push({ name: 'parent', hostPath: { path: '/var/lib' } });
      },
    ],
    [
      'a Secret volume',
      /refused volume creds/,
      (job) => {
        job.spec.template.spec.volumes?.push({ name: 'creds', secret: { secretName: 'x' } });
      },
    ],
    [
      'another image',
      /run image docker\.io\/library\/ubuntu:noble-20250404@sha256:1e62.*, not docker\.io\/library\/ubuntu:24\.04/,
      (job) => {
        opsContainer(job).image = 'docker.io/library/ubuntu:24.04';
      },
    ],
    [
      'another command',
      /run the ops entrypoint/,
      (job) => {
        opsContainer(job).command = ['/bin/sh', '-c', 'id'];
      },
    ],
    [
      'an init container',
      /no init or ephemeral containers/,
      (job) => {
        job.spec.template.spec.initContainers = [{ ...opsContainer(job), name: 'init' }];
      },
    ],
    [
      'the host network',
      /neither the host network nor host IPC/,
      (job) => {
        job.spec.template.spec.hostNetwork = true;
      },
    ],
  ];
  for (const [what, why, edit] of refusals) {
    it(`refuses the controller a Job with ${what}, naming the policy`, async () => {
      const job = rendered('remedy_node', 'adm-refused');
      edit(job);
      await assertRefused(() => createObject(controllerKc, job), OPS_POLICY, why);
    });
  }

  it('admits a hostPath the templates mount read-only only when mounted read-only', async (t) => {
    const name = 'aegis-ops-admission';
    const read = await cluster.adminCore.readNamespacedConfigMap({ name, namespace: OPS_NS });
    const original: Record<string, string> = { ...read.data };
    const objects = KubernetesObjectApi.makeApiClient(cluster.admin);
    const withData = (data: Record<string, string>): KubernetesObject =>
      ({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: Object.assign(new V1ObjectMeta(), { name, namespace: OPS_NS }),
        data,
      }) as KubernetesObject;
    let path = (original.readOnlyHostPaths ?? '').split(',').find((p) => p !== '');
    if (path === undefined) {
      // No template mounts one read-only (yet): try the rule on a stand-in value.
      path = '/run/aegis-test-ro';
      t.diagnostic(`the templates mount no hostPath read-only: trying the rule with ${path}`);
      await objects.replace(withData({ ...original, readOnlyHostPaths: path }));
    }
    try {
      const job = (readOnly: boolean): JobObject => {
        const j = rendered('healthcheck_node', 'adm-ro');
        j.spec.template.spec.volumes?.push({ name: 'ro-host', hostPath: { path } });
        opsContainer(j).volumeMounts?.push({ name: 'ro-host', mountPath: '/ro', readOnly });
        return j;
      };
      await eventually('read-only mount admitted', async () => {
        const { status } = await outcome(() => dryRunCreate(controllerKc, job(true)));
        return status === 200 ? true : undefined;
      });
      await assertRefused(() => dryRunCreate(controllerKc, job(false)), OPS_POLICY, /read-only/);
    } finally {
      await objects.replace(withData(original));
    }
  });

  it('the controller reports a refused template as K8S_FORBIDDEN naming the policy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aegis-templates-'));
    try {
      for (const kind of ALL_JOB_KINDS) {
        const doc = parseDocument(readFileSync(join(JOB_TEMPLATES_DIR, `${kind}.yaml`), 'utf8'));
        const volumes = doc.getIn(['spec', 'template', 'spec', 'volumes']) as {
          add(v: unknown): void;
        };
        volumes.add(doc.createNode({ name: 'root', hostPath: { path: '/' } }));
        writeFileSync(join(dir, `${kind}.yaml`), doc.toString());
      }
      const tampered = createKubeCluster({
        kubeConfig: {
          server: cluster.stack.server,
          token: cluster.stack.controllerToken,
          caData: cluster.stack.caData,
        },
        leaseNamespace: shipped.kubernetes.namespace,
        jobNamespace: OPS_NS,
        jobTemplatesDir: dir,
        opsImage: OPS_IMAGE,
        watchNodes: false,
      });
      await assert.rejects(
        tampered.createJob(request('repair_node', 'adm-tampered'), deadline()),
        (err: unknown) =>
          isHealError(err, ErrorCode.K8sForbidden) &&
          err.message.includes(`ValidatingAdmissionPolicy '${OPS_POLICY}'`) &&
          err.message.includes('hostPath /'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('applies to everyone: an admin cannot run another image as a bare pod there either', async () => {
    const job = rendered('diagnose_node', 'adm-pod');
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'adm-bare-pod', namespace: OPS_NS },
      spec: { ...job.spec.template.spec },
    };
    pod.spec.containers = [{ ...opsContainer(job), image: 'docker.io/library/alpine:3.20' }];
    await assertRefused(() => createObject(cluster.admin, pod), OPS_POLICY, /run image/);
    // The same pod with the ops image is admitted (server-side dry run).
    pod.spec.containers = [opsContainer(job)];
    assert.equal((await outcome(() => dryRunCreate(cluster.admin, pod))).status, 200);
  });

  it('stays in its namespace: a Job elsewhere is not its business', async () => {
    const job = rendered('repair_node', 'adm-elsewhere');
    job.metadata.namespace = 'default';
    opsContainer(job).image = 'docker.io/library/alpine:3.20';
    assert.equal((await outcome(() => dryRunCreate(cluster.admin, job))).status, 200);
  });
});

describe('aegis-controller-pod-deletes on the API server', () => {
  const core = (): CoreV1Api => controllerKc.makeApiClient(CoreV1Api);
  /** A pod bound to a node no kubelet serves: a deletion leaves it terminating. */
  const pod = (name: string, extra: Readonly<Record<string, unknown>> = {}): PlainObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', ...extra },
    spec: {
      nodeName: 'no-kubelet',
      containers: [{ name: 'app', image: 'app@sha256:' + 'a'.repeat(64) }],
    },
  });

  it("refuses the controller a tenant's running pod; the Eviction API still takes it", async () => {
    await createObject(cluster.admin, pod('tenant-a'));
    await assertRefused(
      () => core().deleteNamespacedPod({ name: 'tenant-a', namespace: 'default' }),
      DELETE_POLICY,
      /deletes only pods already terminating or DaemonSet pods; evict default\/tenant-a/,
    );
    const body = Object.assign(new V1Eviction(), {
      metadata: Object.assign(new V1ObjectMeta(), { name: 'tenant-a', namespace: 'default' }),
    });
    await core().createNamespacedPodEviction({ name: 'tenant-a', namespace: 'default', body });
    const evicted = await cluster.adminCore.readNamespacedPod({
      name: 'tenant-a',
      namespace: 'default',
    });
    assert.ok(evicted.metadata?.deletionTimestamp !== undefined, 'evicted: terminating');
  });

  it('lets the controller force-delete a pod stuck terminating', async () => {
    await createObject(cluster.admin, pod('stuck-b'));
    await cluster.adminCore.deleteNamespacedPod({ name: 'stuck-b', namespace: 'default' });
    const body = Object.assign(new V1DeleteOptions(), { gracePeriodSeconds: 0 });
    await core().deleteNamespacedPod({
      name: 'stuck-b',
      namespace: 'default',
      gracePeriodSeconds: 0,
      body,
    });
    const { status } = await outcome(() =>
      cluster.adminCore.readNamespacedPod({ name: 'stuck-b', namespace: 'default' }),
    );
    assert.equal(status, 404, 'gone');
  });

  it('lets the controller restart a DaemonSet pod (delete; the DaemonSet recreates it)', async () => {
    const labels = { app: 'device-plugin' };
    const ds = await createObject(cluster.admin, {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'device-plugin', namespace: 'default' },
      spec: {
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { containers: [{ name: 'p', image: 'p@sha256:' + 'b'.repeat(64) }] },
        },
      },
    });
    await createObject(
      cluster.admin,
      pod('device-plugin-x', {
        labels,
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'DaemonSet',
            name: 'device-plugin',
            uid: ds.metadata?.uid ?? '',
            controller: true,
          },
        ],
      }),
    );
    await core().deleteNamespacedPod({ name: 'device-plugin-x', namespace: 'default' });
    const after = await cluster.adminCore.readNamespacedPod({
      name: 'device-plugin-x',
      namespace: 'default',
    });
    assert.ok(after.metadata?.deletionTimestamp !== undefined, 'deleted: terminating');
  });
});

describe('aegis-ops-jobs fails closed', () => {
  it('without its params ConfigMap, every ops Job is refused', async () => {
    await cluster.adminCore.deleteNamespacedConfigMap({
      name: 'aegis-ops-admission',
      namespace: OPS_NS,
    });
    const job = rendered('healthcheck_node', 'adm-no-params');
    let last = { status: 0, message: '' };
    await eventually('refused without params', async () => {
      last = await outcome(() => dryRunCreate(controllerKc, job));
      // Refused as Invalid (422): the binding cannot be configured.
      return last.status >= 400 &&
        last.message.includes(`ValidatingAdmissionPolicy '${OPS_POLICY}'`) &&
        last.message.includes('no params found')
        ? true
        : undefined;
    }).catch((err: unknown) => {
      throw new Error(`last answer: ${JSON.stringify(last)}`, { cause: err });
    });
  });
});
