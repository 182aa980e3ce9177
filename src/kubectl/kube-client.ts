/**
 * The cluster as `kubectl aegis` sees it: the user's own kubeconfig and RBAC (never the
 * controller's credentials), through @kubernetes/client-node. The only file under src/kubectl that
 * loads the client (src/k8s/kube-*.ts is the daemon's adapter; this is the operator's).
 *
 * Every write is one request guarded by the resourceVersion that was read: a node annotation merge
 * patch carrying metadata.resourceVersion, or a ConfigMap replace (PUT) carrying it. A 409 is
 * K8S_CONFLICT and is never retried here: the caller says so and the operator runs the command
 * again on fresh data.
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
// eslint-disable-next-line no-restricted-imports -- the operator CLI's own adapter (see above)
import * as k8s from '@kubernetes/client-node';
import { ErrorCode, HealError, errorMessage } from '../core/errors.js';
import type { NodeInfo } from '../core/types.js';
import { callWithin, orNull } from '../k8s/kube-call.js';
import { toNodeInfo } from '../k8s/kube-convert.js';

/** Who the caller is, as the apiserver authenticated them (SelfSubjectReview). */
export interface Identity {
  readonly username: string;
  readonly groups: readonly string[];
}

/** A ConfigMap's data and the resourceVersion it was read at. */
export interface ConfigMapRecord {
  readonly data: Readonly<Record<string, string>>;
  readonly resourceVersion: string;
}

/** The controller's leader Lease, as far as it says who leads. */
export interface LeaseRecord {
  readonly holder: string | undefined;
  readonly renewTimeMs: number | undefined;
  readonly durationSeconds: number | undefined;
}

/** What the commands need from the cluster. */
export interface OperatorCluster {
  /** Context name and server URL, for the status header. */
  readonly context: string;
  readonly server: string;
  whoami(): Promise<Identity>;
  listNodes(): Promise<NodeInfo[]>;
  /** Throws K8S_NOT_FOUND naming the node when it does not exist. */
  getNode(name: string): Promise<NodeInfo>;
  /**
   * One merge patch of annotations (null removes a key) guarded by `resourceVersion`: 409 →
   * K8S_CONFLICT. Returns the node as written.
   */
  patchNodeAnnotations(
    name: string,
    resourceVersion: string,
    annotations: Readonly<Record<string, string | null>>,
  ): Promise<NodeInfo>;
  /** null when the ConfigMap does not exist. */
  readConfigMap(namespace: string, name: string): Promise<ConfigMapRecord | null>;
  /**
   * Creates the ConfigMap (`resourceVersion` undefined; 409 when it appeared meanwhile) or replaces
   * it guarded by `resourceVersion` (409 when it changed).
   */
  writeConfigMap(
    namespace: string,
    name: string,
    data: Readonly<Record<string, string>>,
    resourceVersion: string | undefined,
  ): Promise<void>;
  /** null when the Lease does not exist. */
  readLease(namespace: string, name: string): Promise<LeaseRecord | null>;
}

/** Where the kubeconfig comes from (kubectl's rules). */
export interface ConnectOptions {
  /** --kubeconfig: this file only. */
  readonly kubeconfig?: string;
  /** --context: this context instead of current-context. */
  readonly context?: string;
  /** Environment (KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Per-request deadline (default 30 s). */
  readonly requestTimeoutMs?: number;
}

/** Field manager of every write (shows in managedFields who wrote what). */
export const FIELD_MANAGER = 'kubectl-aegis';
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * The kubeconfig as kubectl would load it: --kubeconfig, else every file in KUBECONFIG (merged, the
 * first file's current-context wins), else ~/.kube/config, else the pod's ServiceAccount when
 * running in a cluster. --context selects a context. Throws INVALID_INPUT naming what is missing.
 */
export function loadKubeConfig(options: ConnectOptions): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  const read = (file: string, into: k8s.KubeConfig): void => {
    if (!existsSync(file)) {
      throw new HealError(ErrorCode.InvalidInput, `kubeconfig ${file}: no such file`);
    }
    try {
      into.loadFromFile(file);
    } catch (err) {
      throw new HealError(
        ErrorCode.InvalidInput,
        `kubeconfig ${file}: cannot be read: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  };
  const env = options.env;
  const list = (env['KUBECONFIG'] ?? '').split(delimiter).filter((f) => f !== '');
  const home = env['HOME'];
  const homeConfig = home === undefined ? undefined : join(home, '.kube', 'config');
  if (options.kubeconfig !== undefined) {
    read(options.kubeconfig, kc);
  } else if (list.length > 0) {
    // Like kubectl: files of KUBECONFIG that do not exist are skipped; the first one read gives
    // the current-context, the others add what it lacks.
    const found = list.filter((f) => existsSync(f));
    const [first, ...rest] = found;
    if (first === undefined) {
      throw new HealError(
        ErrorCode.InvalidInput,
        `KUBECONFIG names no existing file (${list.join(delimiter)})`,
      );
    }
    read(first, kc);
    for (const file of rest) {
      const more = new k8s.KubeConfig();
      read(file, more);
      kc.mergeConfig(more, true);
    }
  } else if (homeConfig !== undefined && existsSync(homeConfig)) {
    read(homeConfig, kc);
  } else if (env['KUBERNETES_SERVICE_HOST'] !== undefined) {
    kc.loadFromCluster();
  } else {
    throw new HealError(
      ErrorCode.InvalidInput,
      'no kubeconfig: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config',
    );
  }
  if (options.context !== undefined) {
    if (kc.getContextObject(options.context) === null) {
      const known = kc.getContexts().map((c) => c.name);
      throw new HealError(
        ErrorCode.InvalidInput,
        `context "${options.context}" is not in the kubeconfig (contexts: ${known.join(', ') || 'none'})`,
      );
    }
    kc.setCurrentContext(options.context);
  }
  if (kc.getCurrentCluster() === null) {
    throw new HealError(
      ErrorCode.InvalidInput,
      `kubeconfig: context "${kc.getCurrentContext()}" names no cluster (use --context)`,
    );
  }
  return kc;
}

/** The cluster through the user's kubeconfig. */
export function connectKube(options: ConnectOptions): OperatorCluster {
  const kc = loadKubeConfig(options);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const authn = kc.makeApiClient(k8s.AuthenticationV1Api);
  const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const call = <T>(
    what: string,
    fn: (o: k8s.ConfigurationOptions) => Promise<T>,
    contentType?: string,
  ): Promise<T> => callWithin(what, timeoutMs, undefined, fn, contentType);
  return {
    context: kc.getCurrentContext(),
    server: kc.getCurrentCluster()?.server ?? '',
    async whoami() {
      const review = await call('create selfsubjectreview (who am I)', (o) =>
        authn.createSelfSubjectReview(
          {
            body: make(k8s.V1SelfSubjectReview, {
              apiVersion: 'authentication.k8s.io/v1',
              kind: 'SelfSubjectReview',
            }),
          },
          o,
        ),
      );
      const user = review.status?.userInfo;
      if (user?.username === undefined || user.username === '') {
        throw new HealError(
          ErrorCode.K8sUnavailable,
          'create selfsubjectreview: the apiserver did not say who you are',
        );
      }
      return { username: user.username, groups: user.groups ?? [] };
    },
    async listNodes() {
      const nodes: NodeInfo[] = [];
      let cont: string | undefined;
      do {
        const page = await call('list nodes', (o) =>
          core.listNode({ limit: 500, ...(cont === undefined ? {} : { _continue: cont }) }, o),
        );
        for (const n of page.items) nodes.push(toNodeInfo(n));
        cont = page.metadata?._continue;
      } while (cont !== undefined && cont !== '');
      return nodes;
    },
    async getNode(name) {
      return toNodeInfo(await call(`get node ${name}`, (o) => core.readNode({ name }, o)));
    },
    async patchNodeAnnotations(name, resourceVersion, annotations) {
      if (resourceVersion === '') {
        throw new HealError(ErrorCode.InvalidInput, `patch node ${name}: no resourceVersion`);
      }
      const body = { metadata: { resourceVersion, annotations } };
      const node = await call(
        `patch node ${name}`,
        (o) => core.patchNode({ name, body, fieldManager: FIELD_MANAGER }, o),
        k8s.PatchStrategy.MergePatch,
      );
      return toNodeInfo(node);
    },
    async readConfigMap(namespace, name) {
      const cm = await orNull(
        call(`get configmap ${namespace}/${name}`, (o) =>
          core.readNamespacedConfigMap({ name, namespace }, o),
        ),
      );
      if (cm === null) return null;
      return { data: { ...cm.data }, resourceVersion: cm.metadata?.resourceVersion ?? '' };
    },
    async writeConfigMap(namespace, name, data, resourceVersion) {
      const body = make(k8s.V1ConfigMap, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: make(k8s.V1ObjectMeta, {
          name,
          namespace,
          labels: { 'app.kubernetes.io/part-of': 'aegis' },
          ...(resourceVersion === undefined ? {} : { resourceVersion }),
        }),
        data: { ...data },
      });
      if (resourceVersion === undefined) {
        await call(`create configmap ${namespace}/${name}`, (o) =>
          core.createNamespacedConfigMap({ namespace, body, fieldManager: FIELD_MANAGER }, o),
        );
      } else {
        await call(`update configmap ${namespace}/${name}`, (o) =>
          core.replaceNamespacedConfigMap(
            { name, namespace, body, fieldManager: FIELD_MANAGER },
            o,
          ),
        );
      }
    },
    async readLease(namespace, name) {
      const lease = await orNull(
        call(`get lease ${namespace}/${name}`, (o) =>
          coordination.readNamespacedLease({ name, namespace }, o),
        ),
      );
      if (lease === null) return null;
      const renew = lease.spec?.renewTime;
      const renewMs = renew === undefined ? Number.NaN : new Date(renew).getTime();
      return {
        holder: lease.spec?.holderIdentity ?? undefined,
        renewTimeMs: Number.isNaN(renewMs) ? undefined : renewMs,
        durationSeconds: lease.spec?.leaseDurationSeconds ?? undefined,
      };
    },
  };
}

function make<T extends object>(ctor: new () => T, fields: Partial<T>): T {
  return Object.assign(new ctor(), fields);
}
