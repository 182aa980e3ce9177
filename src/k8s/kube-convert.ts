/**
 * Pure conversions between @kubernetes/client-node objects and our types, plus the mapping of
 * client errors to HealError codes and the lease decision. Type-only imports of the client:
 * src/k8s/kube-cluster.ts stays the one file that loads it.
 */
import type {
  CoreV1Event,
  V1Job,
  V1Lease,
  V1Node,
  V1OwnerReference,
  V1Pod,
  V1Taint,
} from '@kubernetes/client-node';
import { ErrorCode, HealError, errorMessage, isHealError } from '../core/errors.js';
import type { NodeConditionInfo, NodeInfo, Taint } from '../core/types.js';
import type { JobState, NodeEvent, PodInfo } from './cluster.js';
import type { NodeWatchEvent } from './node-cache.js';

/** Annotation the kubelet puts on mirror pods of static pods. */
export const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';
/** Container of the ops Job templates whose exit code is the result. */
export const OPS_CONTAINER = 'ops';
/** Component name on Events and field manager on writes. */
export const AEGIS_COMPONENT = 'aegis';

/**
 * The fields of a Node that toNodeInfo reads. Both a client model (V1Node, from list and read
 * calls) and the plain JSON of a watch event fit it: the condition times are the only dates, a
 * Date in the model and a string in the JSON.
 */
export interface NodeFields {
  readonly metadata?: {
    readonly name?: string;
    readonly resourceVersion?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec?: {
    readonly unschedulable?: boolean;
    readonly taints?: readonly Pick<V1Taint, 'key' | 'value' | 'effect'>[];
  };
  readonly status?: {
    readonly conditions?: readonly NodeConditionFields[];
    readonly nodeInfo?: { readonly bootID?: string };
  };
}

/** One status condition of a Node, as the model or the watch JSON has it. */
export interface NodeConditionFields {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
  readonly lastTransitionTime?: Date | string;
  readonly lastHeartbeatTime?: Date | string;
}

/** The kubelet's own condition types: Ready is NodeInfo.ready, the pressures come from metrics. */
const KUBELET_CONDITIONS: ReadonlySet<string> = new Set([
  'Ready',
  'MemoryPressure',
  'DiskPressure',
  'PIDPressure',
  'NetworkUnavailable',
]);

/**
 * The conditions node-side detectors set (node-problem-detector, the Aegis agent): every type
 * but the kubelet's own, the message only while True (a healthy node costs no strings).
 * Undefined when there are none.
 */
export function toConditionInfos(
  conditions: readonly NodeConditionFields[] | undefined,
): NodeConditionInfo[] | undefined {
  let out: NodeConditionInfo[] | undefined;
  for (const c of conditions ?? []) {
    if (KUBELET_CONDITIONS.has(c.type) || c.type === '') continue;
    const status = c.status === 'True' || c.status === 'False' ? c.status : 'Unknown';
    const sinceMs = optionalMs(c.lastTransitionTime);
    const heartbeatMs = optionalMs(c.lastHeartbeatTime);
    (out ??= []).push({
      type: c.type,
      status,
      reason: c.reason ?? '',
      ...(status === 'True' && c.message !== undefined && c.message !== ''
        ? { message: c.message }
        : {}),
      ...(sinceMs === undefined ? {} : { sinceMs }),
      ...(heartbeatMs === undefined ? {} : { heartbeatMs }),
    });
  }
  return out;
}

function optionalMs(value: Date | string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const ms = toMs(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/** V1Node (or a watch event's node JSON) → NodeInfo. Ready from the Ready condition; none is 'Unknown'. */
export function toNodeInfo(node: V1Node | NodeFields): NodeInfo {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status;
  const conditions = toConditionInfos(node.status?.conditions);
  return {
    name: node.metadata?.name ?? '',
    resourceVersion: node.metadata?.resourceVersion ?? '',
    ready: ready === 'True' ? true : ready === 'False' ? false : 'Unknown',
    unschedulable: node.spec?.unschedulable === true,
    labels: { ...node.metadata?.labels },
    annotations: { ...node.metadata?.annotations },
    taints: (node.spec?.taints ?? []).flatMap(toTaint),
    ...(node.status?.nodeInfo?.bootID === undefined || node.status.nodeInfo.bootID === ''
      ? {}
      : { bootId: node.status.nodeInfo.bootID }),
    ...(conditions === undefined ? {} : { conditions }),
  };
}

function toTaint(t: Pick<V1Taint, 'key' | 'value' | 'effect'>): Taint[] {
  if (t.effect !== 'NoSchedule' && t.effect !== 'PreferNoSchedule' && t.effect !== 'NoExecute') {
    return [];
  }
  return [
    t.value === undefined
      ? { key: t.key, effect: t.effect }
      : { key: t.key, value: t.value, effect: t.effect },
  ];
}

const POD_PHASES = new Set<string>(['Pending', 'Running', 'Succeeded', 'Failed']);

/**
 * V1Pod → PodInfo: DaemonSet ownership from ownerReferences, mirror pods from their annotation,
 * the deletionTimestamp (end of the grace period) and the finalizers that hold a deleted pod.
 */
export function toPodInfo(pod: V1Pod): PodInfo {
  const phase = pod.status?.phase ?? 'Unknown';
  const deletion = pod.metadata?.deletionTimestamp;
  const finalizers = pod.metadata?.finalizers ?? [];
  return {
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    node: pod.spec?.nodeName ?? '',
    phase: POD_PHASES.has(phase) ? (phase as PodInfo['phase']) : 'Unknown',
    daemonSet: (pod.metadata?.ownerReferences ?? []).some(isDaemonSetOwner),
    mirror: pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined,
    labels: { ...pod.metadata?.labels },
    ...(deletion === undefined ? {} : { deletionTimestampMs: toMs(deletion) }),
    ...(finalizers.length === 0 ? {} : { finalizers: [...finalizers] }),
    ...aegisAnnotationsOf(pod.metadata?.annotations),
    ...(pod.spec?.terminationGracePeriodSeconds === undefined
      ? {}
      : { terminationGracePeriodSeconds: pod.spec.terminationGracePeriodSeconds }),
  };
}

/** The pod's `aegis.io/` annotations (the drain's checkpoint protocol), when it has any. */
function aegisAnnotationsOf(all: Readonly<Record<string, string>> | undefined): {
  annotations?: Record<string, string>;
} {
  const kept = Object.entries(all ?? {}).filter(([k]) => k.startsWith('aegis.io/'));
  return kept.length === 0 ? {} : { annotations: Object.fromEntries(kept) };
}

function isDaemonSetOwner(ref: V1OwnerReference): boolean {
  return ref.kind === 'DaemonSet' && ref.controller === true;
}

/** Dates from the client may be Date objects or (for types it does not know) raw strings. */
function toMs(value: Date | string): number {
  return value instanceof Date ? value.getTime() : Date.parse(value);
}

/** One page of a list call. */
export interface Page<T> {
  readonly items: readonly T[];
  readonly metadata?: { readonly _continue?: string; readonly resourceVersion?: string };
}

/**
 * Follows `continue` tokens until the list is complete. `fetch` gets `{}` first, then
 * `{ _continue: token }` (the client's parameter name).
 */
export async function collectPages<T>(
  fetch: (page: { _continue?: string }) => Promise<Page<T>>,
): Promise<T[]> {
  return (await collectList(fetch)).items;
}

/**
 * collectPages, plus the list's resourceVersion: every page of a paginated list is served from
 * the snapshot of the first one, whose resourceVersion a watch resumes from.
 */
export async function collectList<T>(
  fetch: (page: { _continue?: string }) => Promise<Page<T>>,
): Promise<{ items: T[]; resourceVersion: string }> {
  const items: T[] = [];
  let resourceVersion: string | undefined;
  let token: string | undefined;
  do {
    const page = await fetch(token === undefined ? {} : { _continue: token });
    for (const item of page.items) items.push(item);
    resourceVersion ??= page.metadata?.resourceVersion;
    token = page.metadata?._continue;
  } while (token !== undefined && token !== '');
  return { items, resourceVersion: resourceVersion ?? '' };
}

/**
 * One line of a node watch (type and the object as plain JSON) → our event; undefined for a type
 * we do not know. ERROR carries a Status: its `code` (410 Gone: the resourceVersion is too old).
 */
export function toNodeWatchEvent(type: string, object: unknown): NodeWatchEvent | undefined {
  const obj: Record<string, unknown> =
    typeof object === 'object' && object !== null ? (object as Record<string, unknown>) : {};
  switch (type) {
    case 'ADDED':
    case 'MODIFIED':
    case 'DELETED':
      return { type, node: toNodeInfo(obj) };
    case 'BOOKMARK':
      return {
        type,
        resourceVersion: (obj as NodeFields).metadata?.resourceVersion ?? '',
      };
    case 'ERROR': {
      const { code, message } = obj;
      return {
        type,
        ...(typeof code === 'number' ? { status: code } : {}),
        message: typeof message === 'string' ? message : 'watch error',
      };
    }
    default:
      return undefined;
  }
}

/** Phase of a Job from its terminal conditions (Complete / Failed) and active pods. */
export function toJobPhase(job: V1Job): JobState['phase'] {
  const isTrue = (type: string): boolean =>
    (job.status?.conditions ?? []).some((c) => c.type === type && c.status === 'True');
  if (isTrue('Complete')) return 'Succeeded';
  if (isTrue('Failed')) return 'Failed';
  return (job.status?.active ?? 0) > 0 ? 'Running' : 'Pending';
}

/** The pod of a Job whose result counts: the most recently created one. */
export function latestPod(pods: readonly V1Pod[]): V1Pod | undefined {
  let latest: V1Pod | undefined;
  for (const pod of pods) {
    const at = pod.metadata?.creationTimestamp;
    const best = latest?.metadata?.creationTimestamp;
    if (
      latest === undefined ||
      (at !== undefined && (best === undefined || toMs(at) >= toMs(best)))
    ) {
      latest = pod;
    }
  }
  return latest;
}

/** Exit code of the ops container (or the first container) once it terminated. */
export function toExitCode(pod: V1Pod | undefined): number | undefined {
  const statuses = pod?.status?.containerStatuses ?? [];
  const status = statuses.find((s) => s.name === OPS_CONTAINER) ?? statuses[0];
  return status?.state?.terminated?.exitCode;
}

/** Splits a pod log into lines, dropping the empty string after the final newline. */
export function toLogLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** The fields of a core/v1 Event we send (plain data; kube-cluster.ts makes the client model). */
export interface EventFields {
  readonly apiVersion: 'v1';
  readonly kind: 'Event';
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly involvedObject: {
    readonly apiVersion: string;
    readonly kind: string;
    readonly name: string;
    readonly uid: string;
  };
  readonly type: CoreV1Event['type'];
  readonly reason: string;
  readonly message: string;
  readonly source: { readonly component: string };
  readonly reportingComponent: string;
  readonly reportingInstance: string;
  readonly firstTimestamp: Date;
  readonly lastTimestamp: Date;
  readonly count: number;
}

/** Longest Event name (DNS subdomain) and message we send. */
const MAX_NAME = 253;
const MAX_MESSAGE = 1024;

/**
 * A core/v1 Event about a node, as the kubelet writes them: namespace `default`, involvedObject
 * kind Node with uid = node name (which is what `kubectl describe node` looks up).
 */
export function toV1Event(
  event: NodeEvent,
  at: { readonly nowMs: number; readonly suffix: string; readonly instance: string },
): EventFields {
  const stamp = `${at.nowMs.toString(16)}${at.suffix}`;
  const name = `${event.node.slice(0, MAX_NAME - stamp.length - 1)}.${stamp}`;
  const time = new Date(at.nowMs);
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace: 'default' },
    involvedObject: { apiVersion: 'v1', kind: 'Node', name: event.node, uid: event.node },
    type: event.type,
    reason: event.reason,
    message: event.message.slice(0, MAX_MESSAGE),
    source: { component: AEGIS_COMPONENT },
    reportingComponent: AEGIS_COMPONENT,
    reportingInstance: at.instance.slice(0, 128),
    firstTimestamp: time,
    lastTimestamp: time,
    count: 1,
  };
}

/** What to do with a Lease, given what was read and what this process observed before. */
export type LeaseAction = 'renew' | 'takeover' | 'wait';

/** When this process last saw a lease change (client-go's observedTime). */
export interface LeaseObservation {
  readonly resourceVersion: string;
  readonly observedAtMs: number;
}

/**
 * Decides between renewing, taking over and waiting. Expiry is judged on the local clock from
 * the moment this process last saw the lease change (as client-go does), never by comparing
 * the holder's renewTime with our clock, so clock skew between replicas cannot cause two
 * holders. A fresh process therefore waits one full lease duration before taking over.
 */
export function decideLease(
  lease: V1Lease,
  holder: string,
  nowMs: number,
  observed: LeaseObservation | undefined,
): { readonly action: LeaseAction; readonly observation: LeaseObservation } {
  const resourceVersion = lease.metadata?.resourceVersion ?? '';
  const observation =
    observed?.resourceVersion === resourceVersion
      ? observed
      : { resourceVersion, observedAtMs: nowMs };
  const current = lease.spec?.holderIdentity ?? '';
  if (current === holder) return { action: 'renew', observation };
  if (current === '') return { action: 'takeover', observation };
  const durationMs = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
  const expired = nowMs >= observation.observedAtMs + durationMs;
  return { action: expired ? 'takeover' : 'wait', observation };
}

/**
 * renewTime for a write: now, but always later than the lease's current renewTime. An update
 * that changes nothing is a no-op for the apiserver and does not bump the resourceVersion, so
 * it would not fence a contender's concurrent takeover; a strictly newer renewTime always does.
 */
export function nextRenewTimeMs(lease: V1Lease, nowMs: number): number {
  const previous = lease.spec?.renewTime;
  const previousMs = previous === undefined ? Number.NaN : toMs(previous);
  return Number.isNaN(previousMs) ? nowMs : Math.max(nowMs, previousMs + 1);
}

/**
 * `work`'s result, or `fallback` when it fails with HealError `code`: for the outcomes that are
 * expected values rather than errors (404 on a delete or read, 409 on a create or guarded update).
 */
export async function orIf<T, F>(work: Promise<T>, code: ErrorCode, fallback: F): Promise<T | F> {
  try {
    return await work;
  } catch (err) {
    if (isHealError(err, code)) return fallback;
    throw err;
  }
}

/** HTTP status of a client error (ApiException carries it as a numeric `code`). */
export function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'number' ? err.code : undefined;
}

/**
 * Wraps a client error as HealError: 409 K8S_CONFLICT, 404 K8S_NOT_FOUND, 401/403 K8S_FORBIDDEN,
 * 400/422 INVALID_INPUT, anything else (network errors, 429, 5xx) K8S_UNAVAILABLE.
 */
export function toHealError(err: unknown, what: string): HealError {
  const status = httpStatus(err);
  const detail = status === undefined ? errorMessage(err) : `HTTP ${status}: ${statusMessage(err)}`;
  const message = `${what}: ${detail}`;
  return new HealError(codeFor(status), message, { cause: err });
}

function codeFor(status: number | undefined): ErrorCode {
  switch (status) {
    case undefined:
      return ErrorCode.K8sUnavailable;
    case 409:
      return ErrorCode.K8sConflict;
    case 404:
      return ErrorCode.K8sNotFound;
    case 401:
    case 403:
      return ErrorCode.K8sForbidden;
    case 400:
    case 422:
      return ErrorCode.InvalidInput;
    default:
      return ErrorCode.K8sUnavailable;
  }
}

/** The apiserver's Status.message from an ApiException body (a JSON string or an object). */
function statusMessage(err: unknown): string {
  const body: unknown =
    typeof err === 'object' && err !== null && 'body' in err ? err.body : undefined;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body) as unknown;
    } catch {
      return body.slice(0, 300);
    }
  }
  if (typeof parsed === 'object' && parsed !== null && 'message' in parsed) {
    return String(parsed.message);
  }
  return 'no details';
}
