/**
 * deploy/aegis against a real apiserver: every object applies (server-side apply, as admin),
 * the applier agrees with `kubectl kustomize`, the controller config parses, and the shipped
 * RBAC grants what the controller needs and refuses what it must not do (403 → K8S_FORBIDDEN).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CoordinationV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';
import { parse } from 'yaml';
import { ConfigSchema } from '../../src/config/schema.js';
import { ErrorCode, isHealError } from '../../src/core/errors.js';
import { DEPLOY_AEGIS_DIR, tokenKubeConfig } from '../helpers/apply-manifests.js';
import {
  createNode,
  createObject,
  deadline,
  shippedManifests,
  startTestCluster,
  type TestCluster,
} from './setup.js';

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

describe('deploy/aegis', () => {
  it('applies cleanly, Deployment included, and starts in well under a minute', (t) => {
    for (const note of cluster.notes) t.diagnostic(note);
    t.diagnostic(`stack ready in ${cluster.stack.startupMs} ms`);
    assert.ok(cluster.stack.startupMs < 30_000);
    for (const id of [
      'Namespace//monitoring',
      'ServiceAccount/monitoring/aegis-controller',
      'ClusterRole//aegis-controller',
      'ClusterRoleBinding//aegis-controller',
      'Role/monitoring/aegis-controller',
      'RoleBinding/monitoring/aegis-controller',
      'ConfigMap/monitoring/aegis-config',
      'ConfigMap/monitoring/aegis-priority',
      'ConfigMap/monitoring/aegis-job-templates',
      'ConfigMap/monitoring/aegis-ops',
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

  it('ships a controller config the schema accepts', () => {
    const text = readFileSync(join(DEPLOY_AEGIS_DIR, 'controller-config.yaml'), 'utf8');
    const config = ConfigSchema.parse(parse(text));
    assert.equal(config.safety.dryRun, true);
    assert.equal(config.metricsPort, 9400);
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
      .map((doc) => parse(doc) as { kind: string; metadata: { name: string } } | null)
      .filter((o) => o !== null);
    const key = (o: { kind: string; metadata: { name: string } }): string =>
      `${o.kind}/${o.metadata.name}`;
    assert.deepEqual(theirs.map(key).sort(), ours.map(key).sort());
    for (const obj of theirs) {
      const mine = ours.find((o) => key(o) === key(obj));
      assert.deepEqual(mine, obj, key(obj));
    }
  });
});

describe('shipped RBAC, as the controller ServiceAccount', () => {
  it('allows what the controller does', async () => {
    await createNode(cluster, 'rbac-node');
    const core = controllerKc.makeApiClient(CoreV1Api);
    const batch = controllerKc.makeApiClient(BatchV1Api);
    const leases = controllerKc.makeApiClient(CoordinationV1Api);
    assert.equal(await statusOf(() => core.listNode()), 200);
    assert.equal(await statusOf(() => core.listPodForAllNamespaces()), 200);
    assert.equal(await statusOf(() => batch.listNamespacedJob({ namespace: 'monitoring' })), 200);
    assert.equal(
      await statusOf(() => core.listNamespacedConfigMap({ namespace: 'monitoring' })),
      200,
    );
    assert.equal(
      await statusOf(() => leases.readNamespacedLease({ name: 'none', namespace: 'monitoring' })),
      404,
    );
  });

  const forbidden: readonly [string, (kc: KubeConfig) => Promise<unknown>][] = [
    [
      'read Secrets',
      (kc) => kc.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: 'monitoring' }),
    ],
    [
      'read ConfigMaps outside monitoring',
      (kc) => kc.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: 'kube-system' }),
    ],
    [
      'create Jobs outside monitoring',
      (kc) =>
        createObject(kc, {
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: { name: 'x', namespace: 'default' },
        }),
    ],
    ['delete Nodes', (kc) => kc.makeApiClient(CoreV1Api).deleteNode({ name: 'rbac-node' })],
    [
      'create Pods',
      (kc) =>
        createObject(kc, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'x', namespace: 'monitoring' },
        }),
    ],
    [
      'list Leases',
      (kc) => kc.makeApiClient(CoordinationV1Api).listNamespacedLease({ namespace: 'monitoring' }),
    ],
    [
      'exec into Pods',
      (kc) =>
        kc
          .makeApiClient(CoreV1Api)
          .connectPostNamespacedPodExec({ namespace: 'monitoring', name: 'x', command: 'sh' }),
    ],
  ];
  for (const [what, call] of forbidden) {
    it(`refuses to ${what} (403)`, async () => {
      assert.equal(await statusOf(() => call(controllerKc)), 403);
    });
  }

  it('maps a 403 to K8S_FORBIDDEN in the adapter (a lease outside monitoring)', async () => {
    const kube = cluster.controller({ leaseNamespace: 'default' });
    await assert.rejects(
      kube.acquireOrRenew('aegis-controller', 'a', 15, deadline()),
      (err: unknown) => isHealError(err, ErrorCode.K8sForbidden),
    );
  });
});
