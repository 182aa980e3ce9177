/**
 * deploy/aegis against a real apiserver: every object applies (server-side apply, as admin),
 * the applier agrees with `kubectl kustomize`, the controller config parses, the namespaces carry
 * the Pod Security levels the README states (the shared `monitoring` none), and the shipped RBAC
 * grants exactly what the controller calls and nothing else (403 → K8S_FORBIDDEN).
 *
 * Without a cluster (same file, static): the Deployment's rollout arithmetic against its
 * PodDisruptionBudget, and every image under deploy/ pinned by digest.
 *
 * The rollout check is static: this harness runs no Deployment/ReplicaSet controller and no
 * scheduler, and kwok would mark the pods Ready by its own stages, never by our probe. The model
 * below is the Deployment controller's RollingUpdate arithmetic (pkg/controller/deployment:
 * maxSurge rounds up, maxUnavailable down, both 0 means 1 unavailable; new pods are added up to
 * replicas + maxSurge, old ones removed while available pods stay ≥ replicas − maxUnavailable).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AppsV1Api,
  AuthorizationV1Api,
  BatchV1Api,
  CoreV1Api,
  CoordinationV1Api,
  KubernetesObjectApi,
  V1ConfigMap,
  V1ObjectMeta,
  V1SubjectAccessReview,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { parse, parseAllDocuments } from 'yaml';
import { ConfigSchema } from '../../src/config/schema.js';
import { ErrorCode, isHealError } from '../../src/core/errors.js';
import { toTemplateVars } from '../../src/jobs/params.js';
import { renderJobTemplate } from '../../src/jobs/render.js';
import { DEPLOY_AEGIS_DIR, tokenKubeConfig, type Manifest } from '../helpers/apply-manifests.js';
import { CONTROLLER_USER } from '../helpers/k8s-harness.js';
import {
  JOB_TEMPLATES_DIR,
  OPS_IMAGE,
  OPS_NAMESPACE,
  createNode,
  createObject,
  deadline,
  shippedManifests,
  startTestCluster,
  type PlainObject,
  type TestCluster,
} from './setup.js';

const DEPLOY_DIR = join(DEPLOY_AEGIS_DIR, '..');

let cluster: TestCluster;
let controllerKc: KubeConfig;

before(async () => {
  cluster = await startTestCluster();
  const { stack } = cluster;
  controllerKc = tokenKubeConfig(stack.server, stack.caData, stack.controllerToken);
});

after(async () => {
  await cluster.stop();
});

/** HTTP status of a rejected client call. */
async function statusOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return 200;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'number' ? code : -1;
  }
}

/** Creates `obj` as a server-side dry run (authorization and admission run, nothing is stored). */
function dryRunCreate(kc: KubeConfig, obj: PlainObject): Promise<KubernetesObject> {
  const { apiVersion, kind, metadata, ...rest } = obj;
  const meta = Object.assign(new V1ObjectMeta(), metadata);
  return KubernetesObjectApi.makeApiClient(kc).create(
    Object.assign({ apiVersion, kind, metadata: meta }, rest),
    undefined,
    'All',
  );
}

/** The remedy Job exactly as the controller renders it from the real template. */
function renderedJob(name: string): PlainObject & { spec: { template: { spec: object } } } {
  const text = readFileSync(join(JOB_TEMPLATES_DIR, 'remedy_node.yaml'), 'utf8');
  const request = {
    kind: 'remedy_node' as const,
    name,
    node: 'rbac-node',
    params: { ACTION: 'DropCache' },
    activeDeadlineSeconds: 600,
  };
  const vars = { ...toTemplateVars(request, { image: OPS_IMAGE }), NAMESPACE: OPS_NAMESPACE };
  return structuredClone(renderJobTemplate(text, vars, 'remedy_node')) as unknown as PlainObject & {
    spec: { template: { spec: object } };
  };
}

/** One shipped object by kind and name. */
async function shipped<T = Record<string, unknown>>(
  kind: string,
  name: string,
  namespace?: string,
): Promise<Manifest & T> {
  const { objects } = await shippedManifests();
  const found = objects.find(
    (o) =>
      o.kind === kind &&
      o.metadata.name === name &&
      (namespace === undefined || o.metadata.namespace === namespace),
  );
  assert.ok(found !== undefined, `${kind} ${name} is shipped`);
  return found as Manifest & T;
}

describe('deploy/aegis', () => {
  it('applies cleanly, Deployment and admission policies included, and starts in well under a minute', (t) => {
    for (const note of cluster.notes) t.diagnostic(note);
    t.diagnostic(`stack ready in ${cluster.stack.startupMs} ms`);
    assert.ok(cluster.stack.startupMs < 30_000);
    for (const id of [
      'Namespace//monitoring',
      'Namespace//aegis-ops',
      'ServiceAccount/monitoring/aegis-controller',
      'ServiceAccount/aegis-ops/aegis-ops',
      'ClusterRole//aegis-controller',
      'ClusterRoleBinding//aegis-controller',
      'Role/monitoring/aegis-controller',
      'RoleBinding/monitoring/aegis-controller',
      'Role/aegis-ops/aegis-controller',
      'RoleBinding/aegis-ops/aegis-controller',
      'Role/default/aegis-controller-events',
      'RoleBinding/default/aegis-controller-events',
      'ValidatingAdmissionPolicy//aegis-ops-jobs',
      'ValidatingAdmissionPolicyBinding//aegis-ops-jobs',
      'ValidatingAdmissionPolicy//aegis-controller-pod-deletes',
      'ValidatingAdmissionPolicyBinding//aegis-controller-pod-deletes',
      'ValidatingAdmissionPolicy//aegis-controller-pod-annotations',
      'ValidatingAdmissionPolicyBinding//aegis-controller-pod-annotations',
      'ConfigMap/aegis-ops/aegis-ops-admission',
      'ConfigMap/monitoring/aegis-config',
      'ConfigMap/monitoring/aegis-priority',
      'ConfigMap/monitoring/aegis-job-templates',
      'ConfigMap/aegis-ops/aegis-ops',
      'Deployment/monitoring/aegis-controller',
      'Service/monitoring/aegis-metrics',
      'PodDisruptionBudget/monitoring/aegis-controller',
    ]) {
      assert.ok(cluster.applied.includes(id), `${id} applied`);
    }
  });

  it('the Deployment runs 2 non-root, read-only replicas probing /readyz and /healthz on 9400', async () => {
    const apps = cluster.admin.makeApiClient(AppsV1Api);
    const d = await apps.readNamespacedDeployment({
      name: 'aegis-controller',
      namespace: 'monitoring',
    });
    assert.equal(d.spec?.replicas, 2);
    const pod = d.spec.template.spec;
    const c = pod?.containers[0];
    assert.ok(pod !== undefined && c !== undefined);
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
    assert.deepEqual(c.args, ['run', '--config', '/etc/aegis/config.yaml']);
    assert.equal(c.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(c.livenessProbe?.httpGet?.path, '/healthz');
    assert.equal(c.ports?.[0]?.containerPort, 9400);
    assert.ok(pod.affinity?.podAntiAffinity !== undefined);
  });

  it('ships a controller config the schema accepts: Jobs in their own namespace', () => {
    const text = readFileSync(join(DEPLOY_AEGIS_DIR, 'controller-config.yaml'), 'utf8');
    const config = ConfigSchema.parse(parse(text));
    assert.equal(config.safety.dryRun, true);
    assert.equal(config.metricsPort, 9400);
    assert.equal(config.kubernetes.namespace, 'monitoring');
    assert.equal(config.kubernetes.jobNamespace, 'aegis-ops');
    // The default stays the original's namespace; a bad name is refused, naming the field.
    assert.equal(ConfigSchema.parse({}).kubernetes.jobNamespace, 'monitoring');
    const bad = ConfigSchema.safeParse({ kubernetes: { jobNamespace: 'Ops_Jobs' } });
    assert.equal(bad.success, false);
    assert.match(JSON.stringify(bad.error.issues), /jobNamespace.*DNS-1123/);
  });

  it('renders what kubectl kustomize renders', async (t) => {
    const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
    if (kubectl.status !== 0) {
      t.skip('kubectl is not installed: comparison with kustomize not run');
      return;
    }
    const ours = (await shippedManifests()).objects;
    const res = spawnSync(
      'kubectl',
      ['kustomize', '--load-restrictor', 'LoadRestrictionsNone', DEPLOY_AEGIS_DIR],
      { encoding: 'utf8' },
    );
    if (res.status !== 0 && /priority\.conf/.test(res.stderr)) {
      t.skip('deploy/priority.conf is missing: kubectl kustomize cannot run yet');
      return;
    }
    assert.equal(res.status, 0, res.stderr);
    const theirs = res.stdout
      .split(/^---$/m)
      .map(
        (doc) =>
          parse(doc) as { kind: string; metadata: { name: string; namespace?: string } } | null,
      )
      .filter((o) => o !== null);
    const key = (o: { kind: string; metadata: { name: string; namespace?: string } }): string =>
      `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    assert.deepEqual(theirs.map(key).sort(), ours.map(key).sort());
    for (const obj of theirs) {
      const mine = ours.find((o) => key(o) === key(obj));
      assert.deepEqual(mine, obj, key(obj));
    }
  });
});

describe('namespaces and Pod Security', () => {
  it('leaves the shared `monitoring` namespace unlabelled: no Pod Security level is imposed on it', async () => {
    const ns = await shipped<{ metadata: { labels?: Record<string, string> } }>(
      'Namespace',
      'monitoring',
    );
    assert.equal(ns.metadata.labels, undefined, 'no labels shipped on monitoring');
    const live = await cluster.adminCore.readNamespace({ name: 'monitoring' });
    const psa = Object.keys(live.metadata?.labels ?? {}).filter((k) =>
      k.startsWith('pod-security.kubernetes.io/'),
    );
    assert.deepEqual(psa, []);
  });

  it('the ops namespace is `privileged` — and the ops pods need it: refused under baseline', async () => {
    const live = await cluster.adminCore.readNamespace({ name: OPS_NAMESPACE });
    assert.equal(live.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'privileged');
    const job = renderedJob('psa-probe');
    const pod = (namespace: string): PlainObject => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'psa-probe', namespace },
      spec: job.spec.template.spec,
    });
    await createObject(cluster.admin, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'psa-baseline',
        labels: { 'pod-security.kubernetes.io/enforce': 'baseline' },
      },
    });
    assert.equal(await statusOf(() => dryRunCreate(cluster.admin, pod('psa-baseline'))), 403);
    assert.equal(await statusOf(() => dryRunCreate(cluster.admin, pod(OPS_NAMESPACE))), 200);
  });

  it("the controller's own pod meets `restricted`, so `monitoring` may enforce it", async () => {
    await createObject(cluster.admin, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'psa-restricted',
        labels: { 'pod-security.kubernetes.io/enforce': 'restricted' },
      },
    });
    const d = await shipped<{ spec: { template: { spec: object } } }>(
      'Deployment',
      'aegis-controller',
    );
    const status = await statusOf(() =>
      dryRunCreate(cluster.admin, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'controller-probe', namespace: 'psa-restricted' },
        spec: d.spec.template.spec,
      }),
    );
    assert.equal(status, 200);
  });
});

/** What the controller may do: `verb resource[/subresource] namespace` ('' = cluster scope). */
const EXPECTED_GRANTS = [
  // Nodes: watch, read after a write, cordon/annotate/label (patch).
  ...['get', 'list', 'watch', 'patch'].map((v) => `${v} nodes `),
  // Drain, everywhere: list pods on a node, evict; delete (narrowed by aegis-controller-pod-deletes).
  ...['monitoring', 'aegis-ops', 'default', 'kube-system'].flatMap((ns) => [
    `list pods ${ns}`,
    `delete pods ${ns}`,
    // A checkpoint drain's request on a pod (narrowed by aegis-controller-pod-annotations).
    `patch pods ${ns}`,
    `create pods/eviction ${ns}`,
  ]),
  // The ops Jobs and their results, in the ops namespace only.
  'create batch/jobs aegis-ops',
  'get batch/jobs aegis-ops',
  'delete batch/jobs aegis-ops',
  'get pods/log aegis-ops',
  // Leader election.
  'get coordination.k8s.io/leases monitoring',
  'create coordination.k8s.io/leases monitoring',
  'update coordination.k8s.io/leases monitoring',
  // Node events.
  'create events default',
  // Domain incident records (narrowed to aegis-incident-* by the policy aegis-incident-records).
  'create configmaps monitoring',
  'update configmaps monitoring',
  // GPU-level quarantine: one DeviceTaintRule per quarantined GPU, by name.
  ...['create', 'get', 'delete'].map((v) => `${v} resource.k8s.io/devicetaintrules `),
  // The operator console (src/console/kube-access.ts): who a bearer token is, and may they.
  'create authentication.k8s.io/tokenreviews ',
  'create authorization.k8s.io/subjectaccessreviews ',
].sort();

/** API groups in the resource names above (anything else is the core group). */
const GROUPS = new Set([
  'batch',
  'apps',
  'coordination.k8s.io',
  'rbac.authorization.k8s.io',
  'admissionregistration.k8s.io',
  'resource.k8s.io',
  'authentication.k8s.io',
  'authorization.k8s.io',
]);

describe('shipped RBAC, as the controller ServiceAccount', () => {
  it('grants exactly what src/k8s/kube-cluster.ts and the console call (SubjectAccessReview over every verb)', async (t) => {
    const authz = cluster.admin.makeApiClient(AuthorizationV1Api);
    const verbs = [
      'get',
      'list',
      'watch',
      'create',
      'update',
      'patch',
      'delete',
      'deletecollection',
    ];
    const namespaced = [
      'pods',
      'pods/eviction',
      'pods/log',
      'pods/exec',
      'pods/attach',
      'events',
      'configmaps',
      'secrets',
      'serviceaccounts',
      'serviceaccounts/token',
      'batch/jobs',
      'batch/cronjobs',
      'apps/daemonsets',
      'coordination.k8s.io/leases',
      'rbac.authorization.k8s.io/roles',
      'rbac.authorization.k8s.io/rolebindings',
    ];
    const clusterScoped = [
      'nodes',
      'resource.k8s.io/devicetaintrules',
      'authentication.k8s.io/tokenreviews',
      'authorization.k8s.io/subjectaccessreviews',
      'namespaces',
      'rbac.authorization.k8s.io/clusterroles',
      'rbac.authorization.k8s.io/clusterrolebindings',
      'admissionregistration.k8s.io/validatingadmissionpolicies',
      'admissionregistration.k8s.io/validatingadmissionpolicybindings',
    ];
    const asks: [string, string, string][] = [];
    for (const verb of verbs) {
      for (const r of clusterScoped) asks.push([verb, r, '']);
      for (const ns of ['monitoring', 'aegis-ops', 'default', 'kube-system']) {
        for (const r of namespaced) asks.push([verb, r, ns]);
      }
    }
    const allowed: string[] = [];
    for (let i = 0; i < asks.length; i += 50) {
      const batch = asks.slice(i, i + 50);
      const answers = await Promise.all(
        batch.map(async ([verb, r, namespace]) => {
          const parts = r.split('/');
          const group = GROUPS.has(parts[0] ?? '') ? (parts.shift() ?? '') : '';
          const [resource, subresource] = parts;
          const review = await authz.createSubjectAccessReview({
            body: Object.assign(new V1SubjectAccessReview(), {
              spec: {
                user: CONTROLLER_USER,
                groups: [
                  'system:serviceaccounts',
                  'system:serviceaccounts:monitoring',
                  'system:authenticated',
                ],
                resourceAttributes: {
                  verb,
                  group,
                  resource,
                  ...(subresource === undefined ? {} : { subresource }),
                  ...(namespace === '' ? {} : { namespace }),
                },
              },
            }),
          });
          return review.status?.allowed === true;
        }),
      );
      batch.forEach(([verb, r, ns], j) => {
        if (answers[j] === true) allowed.push(`${verb} ${r} ${ns}`);
      });
    }
    t.diagnostic(`${asks.length} access reviews, ${allowed.length} allowed`);
    assert.deepEqual(allowed.sort(), EXPECTED_GRANTS);
  });

  it('allows what the controller does', async () => {
    await createNode(cluster, 'rbac-node');
    const core = controllerKc.makeApiClient(CoreV1Api);
    const batch = controllerKc.makeApiClient(BatchV1Api);
    const leases = controllerKc.makeApiClient(CoordinationV1Api);
    assert.equal(await statusOf(() => core.listNode()), 200);
    assert.equal(await statusOf(() => core.listPodForAllNamespaces()), 200);
    assert.equal(await statusOf(() => dryRunCreate(controllerKc, renderedJob('rbac-job'))), 200);
    assert.equal(
      await statusOf(() => batch.readNamespacedJob({ name: 'none', namespace: OPS_NAMESPACE })),
      404,
    );
    assert.equal(await statusOf(() => core.listNamespacedPod({ namespace: OPS_NAMESPACE })), 200);
    assert.equal(
      await statusOf(() => leases.readNamespacedLease({ name: 'none', namespace: 'monitoring' })),
      404,
    );
    // The operator controls: that one ConfigMap (shipped empty by operator-rbac.yaml), no other.
    assert.equal(
      await statusOf(() =>
        core.readNamespacedConfigMap({ name: 'aegis-control', namespace: 'monitoring' }),
      ),
      200,
    );
    assert.equal(
      await statusOf(() =>
        core.readNamespacedConfigMap({ name: 'aegis-config', namespace: 'monitoring' }),
      ),
      403,
    );
  });

  it('writes its incident records: created, then replaced whole (the admission policy admits them)', async () => {
    const kube = cluster.controller();
    const labels = { 'aegis.io/incident': 'true', 'aegis.io/status': 'open' };
    const rec = { name: 'aegis-incident-rbac', labels, data: { status: 'open' } };
    await kube.writeIncident?.(rec, deadline());
    await kube.writeIncident?.(
      {
        ...rec,
        labels: { ...labels, 'aegis.io/status': 'released' },
        data: { status: 'released' },
      },
      deadline(),
    );
    const cm = await cluster.adminCore.readNamespacedConfigMap({
      name: 'aegis-incident-rbac',
      namespace: 'monitoring',
    });
    assert.deepEqual(cm.data, { status: 'released' });
    assert.equal(cm.metadata?.labels?.['aegis.io/status'], 'released');
  });

  const forbidden: readonly [string, (kc: KubeConfig) => Promise<unknown>][] = [
    [
      'read Secrets',
      (kc) => kc.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: 'monitoring' }),
    ],
    [
      'read ConfigMaps, even its own (they are mounted files)',
      (kc) => kc.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: 'monitoring' }),
    ],
    [
      'create Jobs in the shared monitoring namespace',
      (kc) =>
        dryRunCreate(kc, { ...renderedJob('x'), metadata: { name: 'x', namespace: 'monitoring' } }),
    ],
    [
      'create Jobs in default',
      (kc) =>
        dryRunCreate(kc, { ...renderedJob('x'), metadata: { name: 'x', namespace: 'default' } }),
    ],
    [
      'list Jobs',
      (kc) => kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: OPS_NAMESPACE }),
    ],
    ['delete Nodes', (kc) => kc.makeApiClient(CoreV1Api).deleteNode({ name: 'rbac-node' })],
    [
      'create Pods',
      (kc) =>
        createObject(kc, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'x', namespace: OPS_NAMESPACE },
        }),
    ],
    [
      'list Leases',
      (kc) => kc.makeApiClient(CoordinationV1Api).listNamespacedLease({ namespace: 'monitoring' }),
    ],
    [
      'create Events outside default',
      (kc) =>
        createObject(kc, {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name: 'x', namespace: 'monitoring' },
          involvedObject: { kind: 'Node', name: 'rbac-node' },
        }),
    ],
    [
      'rewrite a ConfigMap other than its incident records, its own config included (admission policy aegis-incident-records)',
      (kc) =>
        kc.makeApiClient(CoreV1Api).replaceNamespacedConfigMap({
          name: 'aegis-config',
          namespace: 'monitoring',
          body: Object.assign(new V1ConfigMap(), {
            metadata: Object.assign(new V1ObjectMeta(), { name: 'aegis-config' }),
            data: { 'config.yaml': 'safety:\n  dryRun: false\n' },
          }),
        }),
    ],
    [
      'create a ConfigMap that is not an incident record (aegis-incident-records)',
      (kc) =>
        createObject(kc, {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'x', namespace: 'monitoring', labels: { 'aegis.io/incident': 'true' } },
        }),
    ],
    [
      'create an incident record without its label (aegis-incident-records)',
      (kc) =>
        createObject(kc, {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'aegis-incident-x', namespace: 'monitoring' },
        }),
    ],
    [
      'read its incident records back (it only writes them)',
      (kc) =>
        kc
          .makeApiClient(CoreV1Api)
          .readNamespacedConfigMap({ name: 'aegis-incident-rbac', namespace: 'monitoring' }),
    ],
    [
      'exec into Pods',
      (kc) =>
        kc
          .makeApiClient(CoreV1Api)
          .connectPostNamespacedPodExec({ namespace: OPS_NAMESPACE, name: 'x', command: 'sh' }),
    ],
    [
      'change its admission policy',
      (kc) =>
        KubernetesObjectApi.makeApiClient(kc).delete({
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'ValidatingAdmissionPolicy',
          metadata: Object.assign(new V1ObjectMeta(), { name: 'aegis-ops-jobs' }),
        }),
    ],
  ];
  for (const [what, call] of forbidden) {
    it(`refuses to ${what} (403)`, async () => {
      assert.equal(await statusOf(() => call(controllerKc)), 403);
    });
  }

  it('reads the BMC credentials Secret by name only (aegis-bmc, decoded), no other Secret', async () => {
    const kube = cluster.controller();
    assert.equal(await kube.readSecret?.('aegis-bmc', deadline()), null, 'absent: null, not 403');
    await createObject(cluster.admin, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'aegis-bmc', namespace: 'monitoring' },
      stringData: { username: 'aegis', password: 'bmc-Pa55' },
    });
    await createObject(cluster.admin, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'other-secret', namespace: 'monitoring' },
      stringData: { token: 'x' },
    });
    assert.deepEqual(await kube.readSecret?.('aegis-bmc', deadline()), {
      username: 'aegis',
      password: 'bmc-Pa55',
    });
    await assert.rejects(
      kube.readSecret?.('other-secret', deadline()) ?? Promise.resolve(),
      (err) => isHealError(err, ErrorCode.K8sForbidden),
    );
    const authz = cluster.admin.makeApiClient(AuthorizationV1Api);
    const can = async (verb: string, name: string, namespace: string): Promise<boolean> =>
      (
        await authz.createSubjectAccessReview({
          body: Object.assign(new V1SubjectAccessReview(), {
            spec: {
              user: CONTROLLER_USER,
              groups: [
                'system:serviceaccounts',
                'system:serviceaccounts:monitoring',
                'system:authenticated',
              ],
              resourceAttributes: { verb, resource: 'secrets', name, namespace },
            },
          }),
        })
      ).status?.allowed === true;
    assert.equal(await can('get', 'aegis-bmc', 'monitoring'), true);
    assert.equal(await can('get', 'aegis-bmc', 'aegis-ops'), false, 'its own namespace only');
    assert.equal(await can('get', 'other-secret', 'monitoring'), false);
    for (const verb of ['list', 'watch', 'update', 'patch', 'delete'])
      assert.equal(await can(verb, 'aegis-bmc', 'monitoring'), false, `no ${verb}`);
  });

  it('maps a 403 to K8S_FORBIDDEN in the adapter (a lease outside monitoring)', async () => {
    const kube = cluster.controller({ leaseNamespace: 'default' });
    await assert.rejects(
      kube.acquireOrRenew('aegis-controller', 'a', 15, deadline()),
      (err: unknown) => isHealError(err, ErrorCode.K8sForbidden),
    );
  });
});

/** maxSurge / maxUnavailable as the Deployment controller resolves them (default 25 %). */
function resolveFenceposts(
  replicas: number,
  surge: number | string | undefined,
  unavailable: number | string | undefined,
): { maxSurge: number; maxUnavailable: number } {
  const value = (v: number | string | undefined, roundUp: boolean): number => {
    const raw = v ?? '25%';
    if (typeof raw === 'number') return raw;
    const pct = (Number(raw.replace('%', '')) * replicas) / 100;
    return roundUp ? Math.ceil(pct) : Math.floor(pct);
  };
  const maxSurge = value(surge, true);
  let maxUnavailable = value(unavailable, false);
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { maxSurge, maxUnavailable };
}

interface Rollout {
  readonly completed: boolean;
  /** Fewest Ready pods (old and new) at any moment of the rollout. */
  readonly minReady: number;
  /** Most pods at once. */
  readonly maxPods: number;
}

/**
 * A RollingUpdate of `replicas` pods, step by step. `newPodsBecomeReady`: whether a new pod
 * passes its readiness probe while the old leader still holds the lease (true when readiness is
 * "healthy process"; false when it is "has cycled", which only the leader does).
 */
function simulateRollout(
  replicas: number,
  fence: { maxSurge: number; maxUnavailable: number },
  newPodsBecomeReady: boolean,
): Rollout {
  let oldPods = replicas;
  let newPods = 0;
  let newReady = 0;
  let minReady = replicas;
  let maxPods = replicas;
  for (let step = 0; step < 100; step++) {
    const before = `${oldPods}/${newPods}/${newReady}`;
    // Scale the new ReplicaSet up, within replicas + maxSurge pods in all.
    const up = Math.min(replicas + fence.maxSurge - (oldPods + newPods), replicas - newPods);
    if (up > 0) newPods += up;
    maxPods = Math.max(maxPods, oldPods + newPods);
    minReady = Math.min(minReady, oldPods + newReady);
    if (newPodsBecomeReady) newReady = newPods;
    // Scale the old one down while Ready pods stay at least replicas - maxUnavailable.
    const down = Math.min(oldPods, oldPods + newReady - (replicas - fence.maxUnavailable));
    if (down > 0) oldPods -= down;
    minReady = Math.min(minReady, oldPods + newReady);
    if (oldPods === 0 && newReady === replicas) return { completed: true, minReady, maxPods };
    if (`${oldPods}/${newPods}/${newReady}` === before) break;
  }
  return { completed: false, minReady, maxPods };
}

interface DeploymentSpec {
  replicas: number;
  minReadySeconds?: number;
  progressDeadlineSeconds?: number;
  strategy: {
    type: string;
    rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string };
  };
  template: {
    spec: {
      affinity?: { podAntiAffinity?: Record<string, unknown> };
      containers: { readinessProbe?: { httpGet?: { path?: string } } }[];
    };
  };
}

describe('rollout of the shipped Deployment against its PodDisruptionBudget (static)', () => {
  it('completes with 2 replicas, never below 2 Ready, leaving the PDB its disruption for drains', async () => {
    const d = await shipped<{ spec: DeploymentSpec }>('Deployment', 'aegis-controller');
    const pdb = await shipped<{
      spec: { minAvailable?: number; unhealthyPodEvictionPolicy?: string };
    }>('PodDisruptionBudget', 'aegis-controller');
    const { replicas, strategy } = d.spec;
    assert.equal(replicas, 2);
    assert.equal(strategy.type, 'RollingUpdate');
    const fence = resolveFenceposts(
      replicas,
      strategy.rollingUpdate?.maxSurge,
      strategy.rollingUpdate?.maxUnavailable,
    );
    const rollout = simulateRollout(replicas, fence, true);
    assert.equal(rollout.completed, true, 'the rollout completes');
    // The standby is Ready throughout: the old leader is never the only Ready replica, so a
    // rollout never spends the PDB's one allowed disruption and a drain can still evict one.
    assert.equal(rollout.minReady, replicas, 'both replicas stay Ready during the rollout');
    const minAvailable = pdb.spec.minAvailable ?? 0;
    assert.ok(replicas - minAvailable >= 1, 'the PDB allows one voluntary disruption');
    assert.ok(rollout.minReady - minAvailable >= 1, 'and still does in the middle of a rollout');
    // The surge pod must be schedulable next to the others: anti-affinity only preferred.
    assert.equal(
      d.spec.template.spec.affinity?.podAntiAffinity
        ?.requiredDuringSchedulingIgnoredDuringExecution,
      undefined,
    );
    assert.equal(rollout.maxPods, replicas + fence.maxSurge);
    // A not-Ready replica never blocks a drain.
    assert.equal(pdb.spec.unhealthyPodEvictionPolicy, 'AlwaysAllow');
    // A new pod proves itself Ready for a while before an old one goes, within the deadline.
    const minReady = d.spec.minReadySeconds ?? 0;
    assert.ok(minReady > 0 && minReady < (d.spec.progressDeadlineSeconds ?? 600));
    assert.equal(d.spec.template.spec.containers[0]?.readinessProbe?.httpGet?.path, '/readyz');
  });

  it('the model: with readiness "has cycled" (leader only) any strategy stalls; the old one also spent the PDB', () => {
    for (const [surge, unavailable] of [
      [1, 0],
      [0, 1],
    ] as const) {
      const stalled = simulateRollout(2, resolveFenceposts(2, surge, unavailable), false);
      assert.equal(stalled.completed, false, `maxSurge ${surge}, maxUnavailable ${unavailable}`);
    }
    // The manifests before this change: maxSurge 0, maxUnavailable 1 → one Ready pod mid-rollout,
    // i.e. the PDB (minAvailable 1) blocks every drain of the remaining replica's node meanwhile.
    const before = simulateRollout(2, resolveFenceposts(2, 0, 1), true);
    assert.equal(before.completed, true);
    assert.equal(before.minReady, 1);
  });
});

/** Every `image`-like string under deploy/ (YAML and JSON), with where it was found. */
function imagesUnder(dir: string): { where: string; image: string }[] {
  const found: { where: string; image: string }[] = [];
  const visit = (node: unknown, where: string): void => {
    if (Array.isArray(node)) {
      node.forEach((item: unknown, i) => {
        visit(item, `${where}[${String(i)}]`);
      });
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      if (typeof value === 'string' && /^(image|.*Image)$/.test(key)) {
        found.push({ where: `${where}.${key}`, image: value });
      } else {
        visit(value, `${where}.${key}`);
      }
    }
  };
  const walk = (path: string): void => {
    for (const entry of readdirSync(path)) {
      const full = join(path, entry);
      if (statSync(full).isDirectory()) {
        walk(full);
        continue;
      }
      const rel = relative(DEPLOY_DIR, full);
      if (/\.ya?ml$/.test(entry)) {
        for (const doc of parseAllDocuments(readFileSync(full, 'utf8'))) visit(doc.toJS(), rel);
      } else if (entry.endsWith('.json')) {
        visit(JSON.parse(readFileSync(full, 'utf8')), rel);
      }
    }
  };
  walk(dir);
  return found;
}

describe('images pinned by digest (static)', () => {
  it('no image under deploy/ is referenced by a mutable tag alone', () => {
    const images = imagesUnder(DEPLOY_DIR);
    const concrete = images.filter((i) => !i.image.includes('{{'));
    // The controller's Deployment, the ops image of the config and of the admission params.
    assert.ok(concrete.length >= 3, `found ${JSON.stringify(images)}`);
    const unpinned = concrete.filter((i) => !/@sha256:[0-9a-f]{64}$/.test(i.image));
    assert.deepEqual(unpinned, [], 'every image carries @sha256:<digest>');
    // The templates' one placeholder is filled from the (pinned) config.
    assert.ok(images.filter((i) => i.image.includes('{{')).every((i) => i.image === '{{IMAGE}}'));
  });
});
