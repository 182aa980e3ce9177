/**
 * Shared setup of the real-apiserver tests: start a stack, apply the shipped deploy/aegis
 * manifests as admin (RBAC included), and build the controller's KubeCluster with the token of
 * its own ServiceAccount, so every test runs under the shipped least-privilege RBAC.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  CoreV1Api,
  KubernetesObjectApi,
  V1ObjectMeta,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { loadConfig } from '../../src/config/load.js';
import type { Clock } from '../../src/core/clock.js';
import { createKubeCluster, type KubeCluster } from '../../src/k8s/kube-cluster.js';
import {
  DEPLOY_AEGIS_DIR,
  applyManifests,
  renderKustomization,
  tokenKubeConfig,
  type Manifest,
} from '../helpers/apply-manifests.js';
import {
  KWOK_NODE_LABEL,
  startKubeStack,
  type KubeStack,
  type KubeStackOptions,
} from '../helpers/k8s-harness.js';

/** The real Job templates. */
export const JOB_TEMPLATES_DIR = join(DEPLOY_AEGIS_DIR, '..', 'jobs');
const SHIPPED_KUBERNETES = loadConfig({
  file: join(DEPLOY_AEGIS_DIR, 'controller-config.yaml'),
  env: {},
}).kubernetes;
/** Namespace of the ops Jobs in the shipped config (`aegis-ops`). */
export const OPS_NAMESPACE = SHIPPED_KUBERNETES.jobNamespace;
/** The ops image of the shipped config: the only one the shipped admission policy admits. */
export const OPS_IMAGE = SHIPPED_KUBERNETES.opsImage ?? '';
const PRIORITY_FILE = join(DEPLOY_AEGIS_DIR, '..', 'priority.conf');

/** A started stack with the shipped manifests applied. */
export interface TestCluster {
  readonly stack: KubeStack;
  readonly admin: KubeConfig;
  readonly adminCore: CoreV1Api;
  /** What was applied, as Kind/namespace/name. */
  readonly applied: readonly string[];
  /** Notes for the test log (e.g. a stand-in file used). */
  readonly notes: readonly string[];
  stop(): Promise<void>;
  /** The controller's client, as its ServiceAccount. */
  controller(options?: {
    clock?: Clock;
    jobTemplatesDir?: string;
    leaseNamespace?: string;
  }): KubeCluster;
}

/** deploy/aegis rendered; deploy/priority.conf gets a one-line stand-in until it exists. */
export async function shippedManifests(): Promise<{ objects: Manifest[]; notes: string[] }> {
  const notes: string[] = [];
  const missingFiles: Record<string, string> = {};
  if (!existsSync(PRIORITY_FILE)) {
    notes.push('deploy/priority.conf is missing: applied a one-line stand-in for aegis-priority');
    missingFiles['../priority.conf'] = 'NodeNotReady:0\n';
  }
  return { objects: await renderKustomization(DEPLOY_AEGIS_DIR, { missingFiles }), notes };
}

/** Starts the stack and applies deploy/aegis as admin. */
export async function startTestCluster(options: KubeStackOptions = {}): Promise<TestCluster> {
  const stack = await startKubeStack(options);
  try {
    const admin = tokenKubeConfig(stack.server, stack.caData, stack.adminToken);
    const { objects, notes } = await shippedManifests();
    const applied = await applyManifests(admin, objects);
    return {
      stack,
      admin,
      adminCore: admin.makeApiClient(CoreV1Api),
      applied,
      notes,
      stop: () => stack.stop(),
      controller: (o = {}) =>
        createKubeCluster({
          kubeConfig: { server: stack.server, token: stack.controllerToken, caData: stack.caData },
          leaseNamespace: o.leaseNamespace ?? 'monitoring',
          jobTemplatesDir: o.jobTemplatesDir ?? JOB_TEMPLATES_DIR,
          jobNamespace: OPS_NAMESPACE,
          opsImage: OPS_IMAGE,
          ...(o.clock === undefined ? {} : { clock: o.clock }),
        }),
    };
  } catch (err) {
    await stack.stop();
    throw err;
  }
}

/** Any object as plain data. */
export interface PlainObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: Readonly<Record<string, unknown>> & { readonly name: string };
  readonly [field: string]: unknown;
}

/**
 * Creates any object from plain data through the generic API (the typed APIs want instances of
 * the client's model classes).
 */
export function createObject(kc: KubeConfig, obj: PlainObject): Promise<KubernetesObject> {
  const { apiVersion, kind, metadata, ...rest } = obj;
  const meta = Object.assign(new V1ObjectMeta(), metadata);
  return KubernetesObjectApi.makeApiClient(kc).create(
    Object.assign({ apiVersion, kind, metadata: meta }, rest),
  );
}

/** Creates a Node object as admin; `kwok: true` lets kwok keep it Ready and run its pods. */
export async function createNode(
  cluster: TestCluster,
  name: string,
  options: { kwok?: boolean; labels?: Record<string, string> } = {},
): Promise<void> {
  const labels = {
    ...options.labels,
    ...(options.kwok === true ? { [KWOK_NODE_LABEL]: 'fake' } : {}),
  };
  await createObject(cluster.admin, { apiVersion: 'v1', kind: 'Node', metadata: { name, labels } });
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await delay(200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: last });
}

/** A signal for one test step. */
export function deadline(ms = 20_000): AbortSignal {
  return AbortSignal.timeout(ms);
}

/**
 * Posts a node's status as its kubelet would (the status subresource, as admin): Ready True or
 * Unknown with the boot id, and, given `kubeletPort`, where the apiserver reaches its kubelet API
 * (127.0.0.1: kwok serves the pods' logs there once it runs the node's pods).
 */
export async function postKubeletStatus(
  cluster: TestCluster,
  node: string,
  status: { readonly ready: boolean; readonly bootID: string; readonly kubeletPort?: number },
): Promise<void> {
  const now = new Date();
  const { ready, bootID, kubeletPort } = status;
  await cluster.adminCore.patchNodeStatus({
    name: node,
    body: [
      {
        op: 'add',
        path: '/status/conditions',
        value: [
          {
            type: 'Ready',
            status: ready ? 'True' : 'Unknown',
            reason: ready ? 'KubeletReady' : 'NodeStatusUnknown',
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
      },
      {
        op: 'add',
        path: '/status/nodeInfo',
        value: {
          bootID,
          machineID: '',
          systemUUID: '',
          kernelVersion: '',
          osImage: '',
          containerRuntimeVersion: '',
          kubeletVersion: 'fake',
          kubeProxyVersion: '',
          operatingSystem: 'linux',
          architecture: 'amd64',
        },
      },
      ...(kubeletPort === undefined
        ? []
        : [
            {
              op: 'add',
              path: '/status/addresses',
              value: [{ type: 'InternalIP', address: '127.0.0.1' }],
            },
            {
              op: 'add',
              path: '/status/daemonEndpoints',
              value: { kubeletEndpoint: { Port: kubeletPort } },
            },
          ]),
    ],
  });
}

/** Writes a kubeconfig file (mode 0600) that speaks to the stack as the cluster admin. */
export function writeAdminKubeconfig(cluster: TestCluster, file: string): void {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'c',
        cluster: {
          server: cluster.stack.server,
          'certificate-authority-data': cluster.stack.caData,
        },
      },
    ],
    users: [{ name: 'admin', user: { token: cluster.stack.adminToken } }],
    contexts: [{ name: 'admin', context: { cluster: 'c', user: 'admin' } }],
    'current-context': 'admin',
  };
  writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
}
