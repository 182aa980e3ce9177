/**
 * The real ClusterClient and LeaseClient, on @kubernetes/client-node 1.4 (the only file that
 * loads it; conversions live in kube-convert.ts). Every call carries the caller's AbortSignal and
 * a per-request deadline, and every failure is a HealError with a K8S_* code.
 *
 * `listNodes` answers from a watch-fed node cache (node-cache.ts; `watchNodes: false` lists every
 * call instead); the node writes and getNode feed their results into it at once.
 *
 * Writes that must not lose data use optimistic concurrency the apiserver enforces: annotation
 * patches are merge patches carrying metadata.resourceVersion (a stale one is a 409; a JSON
 * patch `test` on the resourceVersion is a 422 instead, which is why it is not used), and Lease
 * updates are full replaces with the resourceVersion that was read.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { backgroundClock, systemClock, type Clock } from '../core/clock.js';
import { ErrorCode, HealError, errorMessage, isHealError } from '../core/errors.js';
import { CONTROL_CONFIGMAP, type NodeInfo } from '../core/types.js';
import { assertNodeName, toTemplateVars } from '../jobs/params.js';
import { renderJobTemplate } from '../jobs/render.js';
import {
  JOB_NAMESPACE,
  type ClusterClient,
  type DeviceTaintClient,
  type DeviceTaintRuleInfo,
  type EvictionResult,
  type IncidentRecord,
  type JobRequest,
  type JobState,
  type LeaseClient,
  type NodeEvent,
} from './cluster.js';
import {
  AEGIS_COMPONENT,
  OPS_CONTAINER,
  decideLease,
  collectList,
  collectPages,
  httpStatus,
  latestPod,
  nextRenewTimeMs,
  orIf,
  toExitCode,
  toHealError,
  toJobPhase,
  toLogLines,
  toNodeInfo,
  toNodeWatchEvent,
  toPodInfo,
  toV1Event,
  type LeaseObservation,
} from './kube-convert.js';
import { NodeInformer, type NodeSource } from './node-cache.js';

/**
 * Default image of the ops Job container; it needs bash and nsenter (util-linux). Ubuntu 24.04
 * (noble-20250404), pinned by digest: a tag can be moved to other content.
 */
export const DEFAULT_OPS_IMAGE =
  'docker.io/library/ubuntu:noble-20250404@sha256:1e622c5f073b4f6bfad6632f2616c7f59ef256e96fe78bf6a595d1dc4376ac02';
/** Lines of a finished Job's pod log read back. */
export const JOB_LOG_TAIL_LINES = 200;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const LIST_PAGE_SIZE = 500;
/** Server-side lifetime of one node watch, randomised as client-go does (5–10 min). */
const WATCH_TIMEOUT_S = { min: 300, max: 600 } as const;
const RELEASE_ATTEMPTS = 3;

/** How to reach the apiserver from outside a pod: a bearer token, and a CA or no TLS check. */
export interface KubeConfigOptions {
  readonly server: string;
  readonly token: string;
  /** Base64 PEM of the CA bundle. */
  readonly caData?: string;
  readonly skipTLSVerify?: boolean;
}

/** Options of createKubeCluster. Exactly one of `kubeConfig` and `inCluster` must be given. */
export interface KubeClusterOptions {
  readonly kubeConfig?: KubeConfigOptions;
  /** Use the pod's ServiceAccount (token and CA under /var/run/secrets/kubernetes.io/). */
  readonly inCluster?: boolean;
  /** Namespace of the leader-election Leases. */
  readonly leaseNamespace: string;
  /** Directory holding `<kind>.yaml` Job templates (deploy/jobs, mounted from a ConfigMap). */
  readonly jobTemplatesDir: string;
  /**
   * Namespace of the ops Jobs (default `monitoring`, JOB_NAMESPACE). Templates set their
   * namespace as `{{NAMESPACE}}`, which renders to this.
   */
  readonly jobNamespace?: string;
  /** Image of the ops container (`{{IMAGE}}`). */
  readonly opsImage?: string;
  /** Per-request deadline on top of the caller's signal. */
  readonly requestTimeoutMs?: number;
  /** Time source for leases and events. */
  readonly clock?: Clock;
  /** reportingInstance of Events (default: the host name, i.e. the pod name). */
  readonly instance?: string;
  /**
   * Serve listNodes from a LIST + WATCH cache (default true). False: a paginated LIST per call.
   * The watch starts with the first listNodes and stops with close().
   */
  readonly watchNodes?: boolean;
  /**
   * Told of each failed node LIST/WATCH of the cache, with the failures in a row (while they last,
   * listNodes lists directly every call).
   */
  readonly onNodeWatchError?: (err: unknown, failuresInARow: number) => void;
}

/** Both ports in one object. */
export type KubeCluster = ClusterClient & LeaseClient;

interface Apis {
  readonly core: k8s.CoreV1Api;
  readonly batch: k8s.BatchV1Api;
  readonly coordination: k8s.CoordinationV1Api;
  readonly custom: k8s.CustomObjectsApi;
}

/**
 * Builds the real cluster client. Throws CONFIG_INVALID on contradictory options. close() stops
 * the node watch (the client keeps working, listing nodes per call).
 */
export function createKubeCluster(
  options: KubeClusterOptions,
): KubeCluster & { close(): Promise<void> } {
  const kc = toKubeConfig(options);
  shareOneAgent(kc);
  const apis: Apis = {
    core: kc.makeApiClient(k8s.CoreV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    coordination: kc.makeApiClient(k8s.CoordinationV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
  };
  const call = makeCaller(options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
  const ctx: Context = {
    apis,
    call,
    clock: options.clock ?? systemClock,
    options,
    observed: new Map(),
  };
  const informer =
    options.watchNodes === false
      ? undefined
      : new NodeInformer(nodeSource(kc, ctx), {
          clock: backgroundClock,
          ...(options.onNodeWatchError === undefined ? {} : { onError: options.onNodeWatchError }),
        });
  return {
    ...nodeMethods(ctx, informer),
    ...podMethods(ctx),
    ...jobMethods(ctx),
    ...leaseMethods(ctx),
    emitEvent: (event, signal) => emitEvent(ctx, event, signal),
    readControl: async (signal) => {
      const work = call(`get configmap ${CONTROL_CONFIGMAP}`, signal, (o) =>
        apis.core.readNamespacedConfigMap(
          { name: CONTROL_CONFIGMAP, namespace: options.leaseNamespace },
          o,
        ),
      );
      const cm = await orIf(work, ErrorCode.K8sNotFound, null);
      return cm === null ? null : { ...(cm.data ?? {}) };
    },
    writeIncident: (record, signal) => writeIncident(ctx, record, signal),
    readSecret: async (name, signal) => {
      // The controller's own namespace only, by name (RBAC: get with resourceNames).
      const work = call(`get secret ${name}`, signal, (o) =>
        apis.core.readNamespacedSecret({ name, namespace: options.leaseNamespace }, o),
      );
      const secret = await orIf(work, ErrorCode.K8sNotFound, null);
      if (secret === null) return null;
      const data: Record<string, string> = {};
      for (const [k, v] of Object.entries(secret.data ?? {}))
        data[k] = Buffer.from(v, 'base64').toString('utf8');
      return data;
    },
    deviceTaints: deviceTaintMethods(ctx, (node) => informer?.upsert(node) ?? node),
    close: () => informer?.close() ?? Promise.resolve(),
    ...(informer === undefined
      ? {}
      : { onNodeChange: (listener) => informer.cache.listen(listener) }),
  };
}

function toKubeConfig(options: KubeClusterOptions): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  const { kubeConfig, inCluster = false } = options;
  if ((kubeConfig === undefined) === !inCluster) {
    throw new HealError(ErrorCode.ConfigInvalid, 'give exactly one of kubeConfig and inCluster');
  }
  if (kubeConfig === undefined) {
    kc.loadFromCluster();
    return kc;
  }
  kc.loadFromOptions({
    clusters: [
      {
        name: 'aegis',
        server: kubeConfig.server,
        caData: kubeConfig.caData,
        skipTLSVerify: kubeConfig.skipTLSVerify ?? false,
      },
    ],
    users: [{ name: 'aegis', token: kubeConfig.token }],
    contexts: [{ name: 'aegis', cluster: 'aegis', user: 'aegis' }],
    currentContext: 'aegis',
  });
  return kc;
}

/**
 * client-node builds a new https.Agent for every request (KubeConfig.createAgent, called from
 * applySecurityAuthentication), so every call paid a TCP and TLS handshake with the apiserver:
 * ~500 of them when a burst of faults starts 100 step flows. One keep-alive agent, made on the
 * first request with the options client-node computed (CA, client certificate, skipTLSVerify,
 * server name), serves every request instead; the bearer token stays a per-request header
 * (test/k8s/nodes.test.ts counts the connections).
 */
function shareOneAgent(kc: k8s.KubeConfig): void {
  type MakeAgent = (cluster: unknown, options: Record<string, unknown>) => unknown;
  const target = kc as unknown as { createAgent: MakeAgent };
  const make = target.createAgent.bind(kc);
  let agent: unknown;
  target.createAgent = (cluster, options) =>
    (agent ??= make(cluster, { ...options, keepAlive: true }));
}

/** Runs one API call under the caller's signal plus a request deadline, mapping failures. */
type Call = <T>(
  what: string,
  signal: AbortSignal,
  fn: (opts: k8s.ConfigurationOptions) => Promise<T>,
  contentType?: k8s.PatchStrategy,
) => Promise<T>;

function makeCaller(timeoutMs: number): Call {
  return async (what, signal, fn, contentType) => {
    signal.throwIfAborted();
    const deadline = AbortSignal.timeout(timeoutMs);
    const combined = AbortSignal.any([signal, deadline]);
    try {
      return await fn(requestOptions(combined, contentType));
    } catch (err) {
      signal.throwIfAborted(); // the caller's abort wins, as the AbortError it is
      if (deadline.aborted) {
        throw new HealError(ErrorCode.K8sUnavailable, `${what}: no answer in ${timeoutMs} ms`, {
          cause: err,
        });
      }
      throw toHealError(err, what);
    }
  };
}

/** Per-request middleware: the abort signal and, for patches, the Content-Type. */
function requestOptions(
  signal: AbortSignal,
  contentType: k8s.PatchStrategy | undefined,
): k8s.ConfigurationOptions {
  const middleware: k8s.ObservableMiddleware = {
    pre: (request) => {
      request.setSignal(signal);
      if (contentType !== undefined) request.setHeaderParam('Content-Type', contentType);
      return new k8s.Observable(Promise.resolve(request));
    },
    post: (response) => new k8s.Observable(Promise.resolve(response)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

interface Context {
  readonly apis: Apis;
  readonly call: Call;
  readonly clock: Clock;
  readonly options: KubeClusterOptions;
  /** Last observed resourceVersion of each Lease and when it was seen (for expiry). */
  readonly observed: Map<string, LeaseObservation>;
}

const MERGE = k8s.PatchStrategy.MergePatch;

type NodeMethods =
  | 'listNodes'
  | 'getNode'
  | 'peekNode'
  | 'setUnschedulable'
  | 'patchNodeAnnotations'
  | 'patchNodeLabels';

/** Every node, one paginated LIST. */
async function listAllNodes(
  { apis, call }: Context,
  signal: AbortSignal,
): Promise<{ items: NodeInfo[]; resourceVersion: string }> {
  const list = await collectList((page) =>
    call('list nodes', signal, (o) => apis.core.listNode({ limit: LIST_PAGE_SIZE, ...page }, o)),
  );
  return { items: list.items.map(toNodeInfo), resourceVersion: list.resourceVersion };
}

/** The node cache's LIST and WATCH on client-node (watch lines are plain JSON, not models). */
function nodeSource(kc: k8s.KubeConfig, ctx: Context): NodeSource {
  const watcher = new k8s.Watch(kc);
  return {
    list: (signal) => listAllNodes(ctx, signal),
    async watch(resourceVersion, { onEvent, onEnd }) {
      const { min, max } = WATCH_TIMEOUT_S;
      const controller = await watcher.watch(
        '/api/v1/nodes',
        {
          resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: min + Math.floor(Math.random() * (max - min)),
        },
        (type: string, object: unknown) => {
          const event = toNodeWatchEvent(type, object);
          if (event !== undefined) onEvent(event);
        },
        (err: unknown) => {
          onEnd(err ?? undefined);
        },
      );
      return () => {
        controller.abort();
      };
    },
  };
}

function nodeMethods(
  ctx: Context,
  informer: NodeInformer | undefined,
): Pick<ClusterClient, NodeMethods> {
  const { apis, call } = ctx;
  /** Our own reads and writes go into the cache at once (the watch brings them later). */
  const seen = (node: NodeInfo): NodeInfo => informer?.upsert(node) ?? node;
  const patch = (
    name: string,
    body: object,
    what: string,
    signal: AbortSignal,
  ): Promise<NodeInfo> =>
    call(
      what,
      signal,
      (o) => apis.core.patchNode({ name, body, fieldManager: AEGIS_COMPONENT }, o),
      MERGE,
    ).then((node) => seen(toNodeInfo(node)));
  return {
    async listNodes(signal) {
      if (informer !== undefined) return informer.list(signal);
      return (await listAllNodes(ctx, signal)).items;
    },
    async getNode(name, signal) {
      const node = await call(`get node ${name}`, signal, (o) => apis.core.readNode({ name }, o));
      return seen(toNodeInfo(node));
    },
    peekNode(name) {
      return informer?.synced === true ? informer.cache.get(name) : undefined;
    },
    setUnschedulable(name, unschedulable, signal) {
      return patch(
        name,
        { spec: { unschedulable } },
        `set node ${name} unschedulable=${String(unschedulable)}`,
        signal,
      );
    },
    async patchNodeAnnotations(name, annotations, resourceVersion, signal) {
      if (resourceVersion === '') {
        // An empty resourceVersion would make the patch unconditional.
        throw new HealError(
          ErrorCode.InvalidInput,
          `patch annotations of node ${name}: no resourceVersion`,
        );
      }
      // A merge patch carrying metadata.resourceVersion: the apiserver answers 409 when stale.
      const body = { metadata: { resourceVersion, annotations } };
      return patch(name, body, `patch annotations of node ${name}`, signal);
    },
    patchNodeLabels(name, labels, signal) {
      return patch(name, { metadata: { labels } }, `patch labels of node ${name}`, signal);
    },
  };
}

/** DeviceTaintRules live in resource.k8s.io/v1 from Kubernetes 1.37 (GA, served by default). */
const DTR = { group: 'resource.k8s.io', version: 'v1', plural: 'devicetaintrules' } as const;

/** DRA DeviceTaintRules (through the generic object API: client-node 1.4 predates them) and node taints. */
function deviceTaintMethods(
  { apis, call }: Context,
  seen: (node: NodeInfo) => NodeInfo,
): DeviceTaintClient {
  return {
    async servesDeviceTaintRules(signal) {
      const work = call('discover resource.k8s.io/v1', signal, (o) =>
        apis.custom.getAPIResources({ group: DTR.group, version: DTR.version }, o),
      );
      const list = await orIf(work, ErrorCode.K8sNotFound, null);
      return list?.resources.some((r) => r.name === DTR.plural) ?? false;
    },
    async createDeviceTaintRule(rule, signal) {
      const body = {
        apiVersion: `${DTR.group}/${DTR.version}`,
        kind: 'DeviceTaintRule',
        metadata: { name: rule.name, labels: rule.labels },
        spec: {
          deviceSelector: { driver: rule.driver, pool: rule.pool, device: rule.device },
          taint: { key: rule.key, value: rule.value, effect: rule.effect },
        },
      };
      const work = call(`create devicetaintrule ${rule.name}`, signal, (o) =>
        apis.custom.createClusterCustomObject({ ...DTR, body, fieldManager: AEGIS_COMPONENT }, o),
      );
      await orIf(work, ErrorCode.K8sConflict, null); // exists already: created before a crash
    },
    async getDeviceTaintRule(name, signal) {
      const work = call(`get devicetaintrule ${name}`, signal, (o) =>
        apis.custom.getClusterCustomObject({ ...DTR, name }, o),
      );
      const obj = (await orIf(work, ErrorCode.K8sNotFound, null)) as RawDeviceTaintRule | null;
      return obj === null ? null : toDeviceTaintRule(obj);
    },
    async deleteDeviceTaintRule(name, signal) {
      const work = call(`delete devicetaintrule ${name}`, signal, (o) =>
        apis.custom.deleteClusterCustomObject({ ...DTR, name }, o),
      );
      await orIf(work, ErrorCode.K8sNotFound, null);
    },
    async setNodeTaints(name, taints, resourceVersion, signal) {
      if (resourceVersion === '') {
        throw new HealError(
          ErrorCode.InvalidInput,
          `set taints of node ${name}: no resourceVersion`,
        );
      }
      // A merge patch replaces the list whole; metadata.resourceVersion makes a stale one a 409.
      const body = {
        metadata: { resourceVersion },
        spec: { taints: taints.map((t) => ({ key: t.key, value: t.value, effect: t.effect })) },
      };
      const node = await call(
        `set taints of node ${name}`,
        signal,
        (o) => apis.core.patchNode({ name, body, fieldManager: AEGIS_COMPONENT }, o),
        MERGE,
      );
      return seen(toNodeInfo(node));
    },
  };
}

interface RawDeviceTaintRule {
  readonly metadata?: { readonly name?: string; readonly labels?: Record<string, string> };
  readonly spec?: {
    readonly deviceSelector?: { driver?: string; pool?: string; device?: string };
    readonly taint?: { key?: string; value?: string; effect?: string };
  };
}

function toDeviceTaintRule(o: RawDeviceTaintRule): DeviceTaintRuleInfo {
  const sel = o.spec?.deviceSelector ?? {};
  const taint = o.spec?.taint ?? {};
  const effect =
    taint.effect === 'NoExecute' || taint.effect === 'None' ? taint.effect : 'NoSchedule';
  return {
    name: o.metadata?.name ?? '',
    labels: o.metadata?.labels ?? {},
    driver: sel.driver ?? '',
    pool: sel.pool ?? '',
    device: sel.device ?? '',
    key: taint.key ?? '',
    value: taint.value ?? '',
    effect,
  };
}

function podMethods({
  apis,
  call,
}: Context): Pick<
  ClusterClient,
  'listPodsOnNode' | 'evictPod' | 'evictPodWithGrace' | 'patchPodAnnotations' | 'deletePod'
> {
  const evict = async (
    namespace: string,
    name: string,
    gracePeriodSeconds: number | undefined,
    signal: AbortSignal,
  ): Promise<EvictionResult> => {
    const body = make(k8s.V1Eviction, {
      apiVersion: 'policy/v1',
      kind: 'Eviction',
      metadata: make(k8s.V1ObjectMeta, { name, namespace }),
      ...(gracePeriodSeconds === undefined
        ? {}
        : { deleteOptions: make(k8s.V1DeleteOptions, { gracePeriodSeconds }) }),
    });
    try {
      await call(`evict pod ${namespace}/${name}`, signal, (o) =>
        apis.core.createNamespacedPodEviction({ name, namespace, body }, o),
      );
      return 'evicted';
    } catch (err) {
      if (isHealError(err) && httpStatus(err.cause) === 429) return 'blocked';
      if (isHealError(err, ErrorCode.K8sNotFound)) return 'gone';
      throw err;
    }
  };
  return {
    async listPodsOnNode(node, signal) {
      assertNodeName(node); // it goes into a field selector
      const fieldSelector = `spec.nodeName=${node}`;
      const pods = await collectPages((page) =>
        call(`list pods on node ${node}`, signal, (o) =>
          apis.core.listPodForAllNamespaces({ fieldSelector, limit: LIST_PAGE_SIZE, ...page }, o),
        ),
      );
      return pods.map(toPodInfo);
    },
    evictPod(namespace, name, signal): Promise<EvictionResult> {
      return evict(namespace, name, undefined, signal);
    },
    evictPodWithGrace(namespace, name, gracePeriodSeconds, signal): Promise<EvictionResult> {
      return evict(namespace, name, gracePeriodSeconds, signal);
    },
    async patchPodAnnotations(namespace, name, annotations, signal) {
      const work = call(
        `annotate pod ${namespace}/${name}`,
        signal,
        (o) =>
          apis.core.patchNamespacedPod(
            { name, namespace, body: { metadata: { annotations } }, fieldManager: AEGIS_COMPONENT },
            o,
          ),
        MERGE,
      ).then(toPodInfo);
      return orIf(work, ErrorCode.K8sNotFound, null); // gone
    },
    async deletePod(namespace, name, gracePeriodSeconds, signal) {
      const work = call(`delete pod ${namespace}/${name}`, signal, (o) =>
        apis.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds }, o),
      );
      await orIf(work, ErrorCode.K8sNotFound, null); // already gone
    },
  };
}

function jobMethods(ctx: Context): Pick<ClusterClient, 'createJob' | 'getJob' | 'deleteJob'> {
  const { apis, call } = ctx;
  const namespace = jobNamespaceOf(ctx);
  return {
    async createJob(request, signal) {
      const body = await renderJob(ctx, request, signal);
      const work = call(`create job ${request.name}`, signal, (o) =>
        apis.batch.createNamespacedJob({ namespace, body, fieldManager: AEGIS_COMPONENT }, o),
      );
      // Deterministic names: an existing Job is the one we launched before (maybe before a crash).
      await orIf(work, ErrorCode.K8sConflict, null);
    },
    async getJob(name, signal) {
      const read = call(`get job ${name}`, signal, (o) =>
        apis.batch.readNamespacedJob({ name, namespace }, o),
      );
      const job = await orIf(read, ErrorCode.K8sNotFound, null);
      if (job === null) return null;
      const phase = toJobPhase(job);
      if (phase !== 'Succeeded' && phase !== 'Failed') return { name, phase };
      return { name, phase, ...(await readJobResult(ctx, name, signal)) };
    },
    async deleteJob(name, signal) {
      const work = call(`delete job ${name}`, signal, (o) =>
        apis.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Foreground' }, o),
      );
      await orIf(work, ErrorCode.K8sNotFound, null); // already gone
    },
  };
}

/** Reads `<dir>/<kind>.yaml`, validates every value and renders the Job object. */
async function renderJob(
  ctx: Context,
  request: JobRequest,
  signal: AbortSignal,
): Promise<k8s.V1Job> {
  const namespace = jobNamespaceOf(ctx);
  const vars = {
    ...toTemplateVars(request, { image: ctx.options.opsImage ?? DEFAULT_OPS_IMAGE }),
    NAMESPACE: namespace,
  };
  const file = join(ctx.options.jobTemplatesDir, `${request.kind}.yaml`);
  let text: string;
  try {
    text = await readFile(file, { encoding: 'utf8', signal });
  } catch (err) {
    signal.throwIfAborted();
    throw new HealError(ErrorCode.ConfigInvalid, `cannot read Job template ${file}`, {
      cause: err,
    });
  }
  const job = renderJobTemplate(text, vars, file);
  if (job.metadata.name !== request.name || job.metadata.namespace !== namespace) {
    throw new HealError(
      ErrorCode.ConfigInvalid,
      `Job template ${file} must set metadata.name "{{NAME}}" and metadata.namespace ` +
        `"{{NAMESPACE}}" (the ops Jobs' namespace, ${namespace}); it renders to namespace ` +
        JSON.stringify(job.metadata.namespace ?? null),
    );
  }
  // The client serializes a V1Job by its attribute map (unknown fields are dropped).
  return Object.assign(new k8s.V1Job(), job);
}

/** Exit code and log tail of the Job's latest pod. Logs that cannot be read become one line saying why. */
async function readJobResult(
  ctx: Context,
  job: string,
  signal: AbortSignal,
): Promise<Pick<JobState, 'exitCode' | 'logs'>> {
  const { apis, call } = ctx;
  const namespace = jobNamespaceOf(ctx);
  const pods = await call(`list pods of job ${job}`, signal, (o) =>
    apis.core.listNamespacedPod(
      { namespace, labelSelector: `batch.kubernetes.io/job-name=${job}` },
      o,
    ),
  );
  const pod = latestPod(pods.items);
  const name = pod?.metadata?.name;
  if (pod === undefined || name === undefined) return {};
  const exitCode = toExitCode(pod);
  let logs: readonly string[];
  try {
    const text = await call(`read log of pod ${name}`, signal, (o) =>
      apis.core.readNamespacedPodLog(
        { name, namespace, container: OPS_CONTAINER, tailLines: JOB_LOG_TAIL_LINES },
        o,
      ),
    );
    logs = toLogLines(text);
  } catch (err) {
    signal.throwIfAborted();
    // The verdict is the exit code; logs are evidence. Keep the reason instead of failing the read.
    logs = [`aegis: logs of pod ${name} unavailable: ${errorMessage(err)}`];
  }
  return exitCode === undefined ? { logs } : { exitCode, logs };
}

/** Namespace of the ops Jobs and their pods. */
function jobNamespaceOf(ctx: Context): string {
  return ctx.options.jobNamespace ?? JOB_NAMESPACE;
}

async function emitEvent(
  { apis, call, clock, options }: Context,
  event: NodeEvent,
  signal: AbortSignal,
): Promise<void> {
  const fields = toV1Event(event, {
    nowMs: clock.now(),
    suffix: randomBytes(4).toString('hex'),
    instance: options.instance ?? hostname(),
  });
  const body = Object.assign(new k8s.CoreV1Event(), fields);
  await call(`create event ${event.reason} on node ${event.node}`, signal, (o) =>
    apis.core.createNamespacedEvent({ namespace: 'default', body }, o),
  );
}

/**
 * A domain incident's record: the ConfigMap created in the controller's namespace, or replaced
 * whole (no read: the leader is its only writer, and a ConfigMap update needs no resourceVersion)
 * when it exists. The RBAC grants create and update on ConfigMaps there, and the admission policy
 * aegis-incident-records narrows both to `aegis-incident-*` records (deploy/aegis/rbac.yaml).
 */
async function writeIncident(
  { apis, call, options }: Context,
  record: IncidentRecord,
  signal: AbortSignal,
): Promise<void> {
  const namespace = options.leaseNamespace;
  const body = make(k8s.V1ConfigMap, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: make(k8s.V1ObjectMeta, {
      name: record.name,
      namespace,
      labels: { ...record.labels },
    }),
    data: { ...record.data },
  });
  const created = call(`create configmap ${record.name}`, signal, (o) =>
    apis.core.createNamespacedConfigMap({ namespace, body, fieldManager: AEGIS_COMPONENT }, o),
  );
  const isNew = await orIf(
    created.then(() => true),
    ErrorCode.K8sConflict,
    false,
  );
  if (isNew) return;
  await call(`update configmap ${record.name}`, signal, (o) =>
    apis.core.replaceNamespacedConfigMap(
      { name: record.name, namespace, body, fieldManager: AEGIS_COMPONENT },
      o,
    ),
  );
}

/** The lease as read (metadata carries the resourceVersion that guards the update), with a new spec. */
function withSpec(lease: k8s.V1Lease, spec: k8s.V1LeaseSpec): k8s.V1Lease {
  return Object.assign(new k8s.V1Lease(), lease, { spec });
}

/** A client model instance from its fields (the client's classes are plain data holders). */
function make<T extends object>(ctor: new () => T, fields: Partial<T>): T {
  return Object.assign(new ctor(), fields);
}

function leaseMethods(ctx: Context): LeaseClient {
  const { apis, call, clock } = ctx;
  const namespace = ctx.options.leaseNamespace;
  const read = (name: string, signal: AbortSignal): Promise<k8s.V1Lease | null> => {
    const work = call(`get lease ${name}`, signal, (o) =>
      apis.coordination.readNamespacedLease({ name, namespace }, o),
    );
    return orIf(work, ErrorCode.K8sNotFound, null);
  };
  /** Replace guarded by the resourceVersion that was read; false when someone else wrote first. */
  const replace = (lease: k8s.V1Lease, name: string, signal: AbortSignal): Promise<boolean> => {
    const work = call(`update lease ${name}`, signal, (o) =>
      apis.coordination.replaceNamespacedLease({ name, namespace, body: lease }, o),
    );
    return orIf(
      work.then(() => true),
      ErrorCode.K8sConflict,
      false,
    );
  };
  /** First holder ever: create; false when another replica created it first. */
  const create = (name: string, holder: string, seconds: number, signal: AbortSignal) => {
    const now = new k8s.V1MicroTime(clock.now());
    const body = make(k8s.V1Lease, {
      metadata: make(k8s.V1ObjectMeta, { name, namespace }),
      spec: make(k8s.V1LeaseSpec, {
        holderIdentity: holder,
        leaseDurationSeconds: seconds,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: 0,
      }),
    });
    const work = call(`create lease ${name}`, signal, (o) =>
      apis.coordination.createNamespacedLease({ namespace, body }, o),
    );
    return orIf(
      work.then(() => true),
      ErrorCode.K8sConflict,
      false,
    );
  };
  return {
    async acquireOrRenew(name, holder, leaseDurationSeconds, signal) {
      const current = await read(name, signal);
      if (current === null)
        return (await create(name, holder, leaseDurationSeconds, signal)) ? 0 : null;
      const nowMs = clock.now();
      const { action, observation } = decideLease(current, holder, nowMs, ctx.observed.get(name));
      ctx.observed.set(name, observation);
      if (action === 'wait') return null;
      const renewTime = new k8s.V1MicroTime(nextRenewTimeMs(current, nowMs));
      const spec = Object.assign(new k8s.V1LeaseSpec(), current.spec, {
        leaseDurationSeconds,
        renewTime,
      });
      if (action === 'takeover') {
        spec.holderIdentity = holder;
        spec.acquireTime = renewTime;
        spec.leaseTransitions = (spec.leaseTransitions ?? 0) + 1;
      }
      return (await replace(withSpec(current, spec), name, signal))
        ? (spec.leaseTransitions ?? 0)
        : null;
    },
    async release(name, holder, signal) {
      for (let attempt = 1; attempt <= RELEASE_ATTEMPTS; attempt++) {
        const current = await read(name, signal);
        if (current?.spec?.holderIdentity !== holder) return;
        // As client-go does: no holder, a 1 s duration, so the next contender takes it at once.
        const spec = Object.assign(new k8s.V1LeaseSpec(), current.spec, {
          leaseDurationSeconds: 1,
          renewTime: new k8s.V1MicroTime(nextRenewTimeMs(current, clock.now())),
        });
        delete spec.holderIdentity;
        if (await replace(withSpec(current, spec), name, signal)) return;
      }
      throw new HealError(ErrorCode.K8sConflict, `release lease ${name}: kept conflicting`);
    },
  };
}
