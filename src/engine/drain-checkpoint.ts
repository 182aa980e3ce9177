/**
 * Drains that respect training jobs (docs/remediation.md, "Drains that respect training jobs").
 *
 * Before a pod is evicted, a site may have it asked to checkpoint (`drain.checkpoint.mode`):
 *   - `annotation`: Aegis writes `aegis.io/drain-requested: <RFC 3339 deadline>` on the pod and
 *     waits until the job writes `aegis.io/checkpoint-done`, the pod ends, or the deadline passes;
 *   - `hook`: the same annotation, then one POST to the pod's hook (`aegis.io/checkpoint-hook`,
 *     used only when it matches `hook.allowedUrls`) or the site's (`hook.url`) with the node, the
 *     pod and the deadline. A 2xx answer (other than 202) is the acknowledgement; 202 means "the
 *     checkpoint has begun": the annotation or the pod's end acknowledges it;
 *   - `grace`: no request; the pod is evicted with a longer grace period
 *     (`gracePeriodSeconds`, never shorter than its own), which its preStop hook uses to
 *     checkpoint; the drain waits for it to go for that long.
 * `pods` chooses which pods are asked: those carrying `aegis.io/checkpoint: "true"` (or, for
 * `hook`, a hook annotation), or all. A pod annotated `aegis.io/drain: wait-for-completion` is
 * asked the same way and left to finish for up to `waitForCompletionMaxMs` (0: not honoured).
 * Then every pod goes through the Eviction API as before: PodDisruptionBudgets honoured,
 * DaemonSet and mirror pods left, the same time bound after the wait.
 *
 * The pod carries the request's state, so a daemon killed (or a leader replaced) during the wait
 * neither asks twice nor evicts early: `aegis.io/drain-request-id` names the request (`<node>/<step
 * seq>`) and the deadline is in `aegis.io/drain-requested`; a resumed step finds its own request
 * on the pods and waits for the same deadline. The ticket's Running step says what is awaited.
 */
import { readFile } from 'node:fs/promises';
import type { Clock } from '../core/clock.js';
import { ErrorCode, isHealError } from '../core/errors.js';
import type { ClusterClient, EvictionResult, PodInfo } from '../k8s/cluster.js';
import type { Outcome } from '../sop/sop.js';

/** Written by Aegis: the time by which the pod will be evicted (RFC 3339). */
export const DRAIN_REQUESTED = 'aegis.io/drain-requested';
/** Written by Aegis with DRAIN_REQUESTED: which drain asked (`<node>/<step seq>`). */
export const DRAIN_REQUEST_ID = 'aegis.io/drain-request-id';
/** Written by the job (or by Aegis on the hook's 2xx answer): the checkpoint is done. */
export const CHECKPOINT_DONE = 'aegis.io/checkpoint-done';
/** Set by the pod's owner: `"true"` asks to be signalled before eviction (`pods: annotated`). */
export const CHECKPOINT_OPT_IN = 'aegis.io/checkpoint';
/** Set by the pod's owner: the pod's own checkpoint hook (must match `hook.allowedUrls`). */
export const CHECKPOINT_HOOK = 'aegis.io/checkpoint-hook';
/** Set by the pod's owner: `wait-for-completion` lets the pod finish (up to a limit). */
export const DRAIN_POLICY = 'aegis.io/drain';
export const WAIT_FOR_COMPLETION = 'wait-for-completion';

/** How pods are asked to checkpoint (config `drain`). */
export interface DrainPolicy {
  readonly checkpoint: {
    readonly mode: 'off' | 'annotation' | 'grace' | 'hook';
    readonly pods: 'annotated' | 'all';
    /** How long after the request a pod that did not answer is evicted anyway. */
    readonly timeoutMs: number;
    /** `grace` mode: the eviction's grace period (never shorter than the pod's own). */
    readonly gracePeriodSeconds: number;
    readonly hook: {
      readonly url?: string | undefined;
      readonly allowedUrls: readonly string[];
      readonly timeoutMs: number;
      readonly bearerTokenFile?: string | undefined;
    };
  };
  /** Longest wait for a pod annotated wait-for-completion; 0: the annotation is not honoured. */
  readonly waitForCompletionMaxMs: number;
}

/** Today's drain: nobody is asked, nobody waited for. */
export const DEFAULT_DRAIN_POLICY: DrainPolicy = {
  checkpoint: {
    mode: 'off',
    pods: 'annotated',
    timeoutMs: 10 * 60_000,
    gracePeriodSeconds: 600,
    hook: { allowedUrls: [], timeoutMs: 10_000 },
  },
  waitForCompletionMaxMs: 0,
};

/** Why a pod is waited for. */
export type WaitReason = 'checkpoint' | 'completion';

/** What the drain does with one pod that is not terminating yet. */
export type PodPlan =
  | { readonly kind: 'evict'; readonly gracePeriodSeconds?: number }
  | { readonly kind: 'signal'; readonly why: WaitReason; readonly deadlineMs: number }
  | { readonly kind: 'await'; readonly why: WaitReason; readonly deadlineMs: number }
  | {
      readonly kind: 'release';
      readonly why: 'acknowledged' | 'deadline';
      readonly gracePeriodSeconds?: number;
    };

/** The request id of a drain: the node and the ticket step it serves. */
export function requestIdOf(node: string, seq: number | undefined): string {
  return `${node}/${seq === undefined ? '-' : String(seq)}`;
}

/** True when the pod is among those asked to checkpoint (or given a longer grace). */
export function isSelected(pod: PodInfo, policy: DrainPolicy): boolean {
  const { mode, pods } = policy.checkpoint;
  if (mode === 'off') return false;
  if (pods === 'all') return true;
  const a = pod.annotations ?? {};
  return a[CHECKPOINT_OPT_IN] === 'true' || (mode === 'hook' && a[CHECKPOINT_HOOK] !== undefined);
}

function wantsCompletion(pod: PodInfo, policy: DrainPolicy): boolean {
  return (
    policy.waitForCompletionMaxMs > 0 && pod.annotations?.[DRAIN_POLICY] === WAIT_FOR_COMPLETION
  );
}

/** The eviction's grace period for the pod (`grace` mode), undefined for a plain eviction. */
export function graceFor(pod: PodInfo, policy: DrainPolicy): number | undefined {
  if (policy.checkpoint.mode !== 'grace' || !isSelected(pod, policy)) return undefined;
  return Math.max(policy.checkpoint.gracePeriodSeconds, pod.terminationGracePeriodSeconds ?? 0);
}

/**
 * Decides what the drain does with one pod (not terminating). Pure. A pod carrying this
 * request's id was asked already: it is waited for until it acknowledges or its recorded deadline
 * passes, never asked again. A pod carrying another request's id (an earlier drain) is asked anew.
 */
export function planPod(
  pod: PodInfo,
  policy: DrainPolicy,
  requestId: string,
  nowMs: number,
): PodPlan {
  const a = pod.annotations ?? {};
  const grace = graceFor(pod, policy);
  const evict = grace === undefined ? {} : { gracePeriodSeconds: grace };
  const completion = wantsCompletion(pod, policy);
  const mode = policy.checkpoint.mode;
  const checkpoint = (mode === 'annotation' || mode === 'hook') && isSelected(pod, policy);
  if (!completion && !checkpoint) return { kind: 'evict', ...evict };
  const why: WaitReason = completion ? 'completion' : 'checkpoint';
  const recorded = a[DRAIN_REQUESTED] === undefined ? Number.NaN : Date.parse(a[DRAIN_REQUESTED]);
  if (a[DRAIN_REQUEST_ID] === requestId && Number.isFinite(recorded)) {
    if (a[CHECKPOINT_DONE] !== undefined) return { kind: 'release', why: 'acknowledged', ...evict };
    if (nowMs >= recorded) return { kind: 'release', why: 'deadline', ...evict };
    return { kind: 'await', why, deadlineMs: recorded };
  }
  const waitMs = completion ? policy.waitForCompletionMaxMs : policy.checkpoint.timeoutMs;
  // Whole seconds: the deadline written on the pod (RFC 3339) is the one waited for.
  return { kind: 'signal', why, deadlineMs: Math.ceil((nowMs + waitMs) / 1000) * 1000 };
}

/** The hook's URL for a pod: its own when allowed, else the site's; undefined when none. */
export function hookUrlFor(pod: PodInfo, policy: DrainPolicy): string | undefined {
  const own = pod.annotations?.[CHECKPOINT_HOOK];
  if (own !== undefined && isHttpUrl(own) && matchesAny(own, policy.checkpoint.hook.allowedUrls))
    return own;
  return policy.checkpoint.hook.url;
}

function matchesAny(url: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => new RegExp(`^(?:${p})$`).test(url));
}

/** True for an absolute http(s) URL. */
export function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** A URL as it may be shown: scheme, host and path; no user info, query or fragment. */
export function redactUrl(value: string): string {
  try {
    const u = new URL(value);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** What a checkpoint hook answered. */
export type HookAnswer =
  | { readonly kind: 'acknowledged' | 'accepted' }
  | { readonly kind: 'failed'; readonly why: string };

/** The body POSTed to a checkpoint hook. */
export interface HookRequest {
  readonly node: string;
  readonly namespace: string;
  readonly pod: string;
  /** RFC 3339: the pod is evicted at this time at the latest. */
  readonly deadline: string;
  readonly requestId: string;
}

/**
 * POSTs one request to a checkpoint hook, within `timeoutMs`, without following redirects. The
 * bearer token (`bearerTokenFile`, read at each call) and the URL's user info and query never
 * appear in what is returned. Throws only when `signal` aborts.
 */
export async function callHook(
  url: string,
  request: HookRequest,
  options: { readonly timeoutMs: number; readonly bearerTokenFile?: string | undefined },
  signal: AbortSignal,
): Promise<HookAnswer> {
  const where = redactUrl(url);
  try {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const target = new URL(url);
    if (target.username !== '' || target.password !== '') {
      // fetch refuses credentials in a URL: they become HTTP Basic authentication.
      const user = `${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`;
      headers['authorization'] = `Basic ${Buffer.from(user).toString('base64')}`;
      target.username = '';
      target.password = '';
    }
    if (options.bearerTokenFile !== undefined) {
      const token = (await readFile(options.bearerTokenFile, 'utf8')).trim();
      headers['authorization'] = `Bearer ${token}`;
    }
    const res = await fetch(target, {
      method: 'POST',
      headers,
      body: JSON.stringify(request),
      redirect: 'manual',
      signal: AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs)]),
    });
    await res.body?.cancel();
    if (res.status === 202) return { kind: 'accepted' };
    if (res.status >= 200 && res.status < 300) return { kind: 'acknowledged' };
    return { kind: 'failed', why: `HTTP ${res.status} from ${where}` };
  } catch (err) {
    signal.throwIfAborted();
    return { kind: 'failed', why: `${describeFetchError(err, options.timeoutMs)} (${where})` };
  }
}

/** A fetch failure without its URL: the cause's code, or a timeout. */
function describeFetchError(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))
    return `no answer within ${timeoutMs} ms`;
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  if (typeof cause?.code === 'string') return `request failed: ${cause.code}`;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return `request failed: ${code}`;
  return 'request failed';
}

/** What the drain needs. */
export interface DrainDeps {
  readonly cluster: Pick<
    ClusterClient,
    'listPodsOnNode' | 'evictPod' | 'evictPodWithGrace' | 'patchPodAnnotations'
  >;
  readonly clock: Clock;
  readonly policy: DrainPolicy;
  /** How long pods may take to go once nothing is waited for (BridgeOptions.drainTimeoutMs). */
  readonly drainTimeoutMs: number;
  /** Records what is awaited in the ticket's Running step (best effort). */
  readonly note?: (message: string, signal: AbortSignal) => Promise<void>;
  /** Counts pods by what happened: signalled, acknowledged, deadline, ended. */
  readonly count?: (result: 'signalled' | 'acknowledged' | 'deadline' | 'ended') => void;
  /** The hook client (tests replace it). */
  readonly callHook?: typeof callHook;
}

/** Slack after a grace period before a pod given one counts as stuck. */
const GRACE_SLACK_MS = 30_000;

/** RFC 3339 in whole seconds. */
function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/**
 * Drains the node: asks the pods the policy names to checkpoint, waits for their answers up to
 * their deadlines, then evicts. `seq` (the ticket step) names the request, so the step resumed
 * after a crash finds its own request on the pods. With the default policy this is the plain
 * drain: every pod but DaemonSet and mirror pods evicted, PDBs honoured, bounded by
 * `drainTimeoutMs`.
 */
export async function drainNode(
  deps: DrainDeps,
  node: string,
  signal: AbortSignal,
  request: { readonly seq?: number | undefined } = {},
): Promise<Outcome> {
  const { cluster, clock, policy } = deps;
  const requestId = requestIdOf(node, request.seq);
  const pollMs = Math.min(5_000, deps.drainTimeoutMs / 10);
  let until = clock.now() + deps.drainTimeoutMs;
  const released = new Map<string, 'acknowledged' | 'deadline' | 'ended'>();
  let awaitedBefore = new Set<string>();
  const hookFailures: string[] = [];
  let lastNote = '';
  const note = async (message: string): Promise<void> => {
    if (message === lastNote || deps.note === undefined) return;
    lastNote = message;
    try {
      await deps.note(message.slice(0, 200), signal);
    } catch (err) {
      // The ticket line is for people; the pods carry the state. Lost leadership still stops.
      if (signal.aborted || isHealError(err, ErrorCode.NotLeader)) throw err;
    }
  };
  const release = (key: string, why: 'acknowledged' | 'deadline' | 'ended'): void => {
    if (released.has(key)) return;
    released.set(key, why);
    deps.count?.(why);
  };
  for (;;) {
    const now = clock.now();
    const pods = (await cluster.listPodsOnNode(node, signal)).filter(
      (p) => !p.daemonSet && !p.mirror && p.phase !== 'Succeeded' && p.phase !== 'Failed',
    );
    const present = new Set(pods.map(keyOf));
    // A pod waited for that finished or went answered by ending.
    for (const key of awaitedBefore) if (!present.has(key)) release(key, 'ended');
    if (pods.length === 0) {
      if (lastNote !== '') await note(`drained; ${summary(released, hookFailures)}`);
      return {
        status: 'Succeeded',
        message: released.size === 0 ? 'drained' : `drained; ${summary(released, hookFailures)}`,
      };
    }
    const blocked: string[] = [];
    const awaiting: { key: string; why: WaitReason; deadlineMs: number }[] = [];
    const toSignal: { pod: PodInfo; why: WaitReason; deadlineMs: number }[] = [];
    for (const pod of pods) {
      const key = keyOf(pod);
      if (pod.deletionTimestampMs !== undefined) {
        // Evicted with a longer grace: its preStop may use all of it.
        if (graceFor(pod, policy) !== undefined)
          until = Math.max(until, pod.deletionTimestampMs + GRACE_SLACK_MS);
        if (awaitedBefore.has(key)) release(key, 'ended');
        continue;
      }
      const plan = planPod(pod, policy, requestId, now);
      if (plan.kind === 'signal') {
        toSignal.push({ pod, why: plan.why, deadlineMs: plan.deadlineMs });
        continue;
      }
      if (plan.kind === 'await') {
        awaiting.push({ key, why: plan.why, deadlineMs: plan.deadlineMs });
        continue;
      }
      if (plan.kind === 'release') release(key, plan.why);
      const result = await evict(deps, pod, plan.gracePeriodSeconds, signal);
      if (result === 'blocked') blocked.push(key);
      if (plan.gracePeriodSeconds !== undefined && result === 'evicted')
        until = Math.max(until, clock.now() + plan.gracePeriodSeconds * 1000 + GRACE_SLACK_MS);
    }
    let answered = false;
    if (toSignal.length > 0) {
      const annotate = cluster.patchPodAnnotations?.bind(cluster);
      if (annotate === undefined)
        return {
          status: 'Failed',
          message: `cannot ask ${plural(toSignal.length, 'pod')} to checkpoint: this cluster client cannot annotate pods`,
        };
      for (const s of toSignal) {
        // The request is written on the pod before anything else: from here on a restarted
        // daemon finds it and waits for the same deadline instead of asking again.
        const after = await annotate(
          s.pod.namespace,
          s.pod.name,
          {
            [DRAIN_REQUESTED]: iso(s.deadlineMs),
            [DRAIN_REQUEST_ID]: requestId,
            [CHECKPOINT_DONE]: null,
          },
          signal,
        );
        if (after === null) continue; // gone meanwhile
        deps.count?.('signalled');
        awaiting.push({ key: keyOf(s.pod), why: s.why, deadlineMs: s.deadlineMs });
      }
      if (policy.checkpoint.mode === 'hook') {
        const answers = await Promise.all(
          toSignal.map((s) => askHook(deps, node, requestId, s.pod, s.deadlineMs, signal)),
        );
        for (const [i, answer] of answers.entries()) {
          const s = toSignal[i];
          if (s === undefined) continue;
          if (answer.kind === 'failed') hookFailures.push(`${keyOf(s.pod)}: ${answer.why}`);
          if (answer.kind !== 'acknowledged') continue;
          const after = await annotate(
            s.pod.namespace,
            s.pod.name,
            { [CHECKPOINT_DONE]: `hook ${iso(clock.now())}` },
            signal,
          );
          if (after !== null) answered = true;
        }
      }
    }
    awaitedBefore = new Set(awaiting.map((a) => a.key));
    if (awaiting.length > 0) {
      const deadline = Math.max(...awaiting.map((a) => a.deadlineMs));
      await note(waitingMessage(awaiting, deadline, hookFailures.length));
      // Evictions get the whole drain time once the last answer is in.
      until = Math.max(until, deadline + deps.drainTimeoutMs);
      if (!answered)
        await clock.sleep(Math.max(1, Math.min(pollMs, deadline - clock.now())), signal);
      continue;
    }
    if (clock.now() >= until) {
      await withdraw(deps, node, requestId, signal);
      return {
        status: 'Failed',
        message:
          blocked.length > 0
            ? `PodDisruptionBudget blocks eviction of ${blocked.slice(0, 5).join(', ')}`
            : `${pods.length} pods still terminating`,
      };
    }
    await clock.sleep(pollMs, signal);
  }
}

function keyOf(pod: PodInfo): string {
  return `${pod.namespace}/${pod.name}`;
}

function evict(
  deps: DrainDeps,
  pod: PodInfo,
  gracePeriodSeconds: number | undefined,
  signal: AbortSignal,
): Promise<EvictionResult> {
  const withGrace = deps.cluster.evictPodWithGrace?.bind(deps.cluster);
  // A client that cannot set a grace period evicts with the pod's own: never a shorter one.
  if (gracePeriodSeconds === undefined || withGrace === undefined)
    return deps.cluster.evictPod(pod.namespace, pod.name, signal);
  return withGrace(pod.namespace, pod.name, gracePeriodSeconds, signal);
}

async function askHook(
  deps: DrainDeps,
  node: string,
  requestId: string,
  pod: PodInfo,
  deadlineMs: number,
  signal: AbortSignal,
): Promise<HookAnswer> {
  const url = hookUrlFor(pod, deps.policy);
  if (url === undefined) return { kind: 'failed', why: 'no hook URL (hook.url unset)' };
  const hook = deps.policy.checkpoint.hook;
  return (deps.callHook ?? callHook)(
    url,
    { node, namespace: pod.namespace, pod: pod.name, deadline: iso(deadlineMs), requestId },
    { timeoutMs: hook.timeoutMs, bearerTokenFile: hook.bearerTokenFile },
    signal,
  );
}

/**
 * A drain that gave up withdraws its requests (best effort): the pods left running are no longer
 * asked, and the next attempt (another step) asks anew.
 */
async function withdraw(
  deps: DrainDeps,
  node: string,
  requestId: string,
  signal: AbortSignal,
): Promise<void> {
  const annotate = deps.cluster.patchPodAnnotations?.bind(deps.cluster);
  if (annotate === undefined) return;
  try {
    for (const pod of await deps.cluster.listPodsOnNode(node, signal)) {
      if (
        pod.annotations?.[DRAIN_REQUEST_ID] !== requestId ||
        pod.deletionTimestampMs !== undefined
      )
        continue;
      await annotate(
        pod.namespace,
        pod.name,
        { [DRAIN_REQUESTED]: null, [DRAIN_REQUEST_ID]: null, [CHECKPOINT_DONE]: null },
        signal,
      );
    }
  } catch (err) {
    if (signal.aborted || isHealError(err, ErrorCode.NotLeader)) throw err;
  }
}

function waitingMessage(
  awaiting: readonly { why: WaitReason }[],
  deadlineMs: number,
  hookFailures: number,
): string {
  const checkpoint = awaiting.filter((a) => a.why === 'checkpoint').length;
  const completion = awaiting.length - checkpoint;
  const parts = [
    ...(checkpoint > 0 ? [`checkpoint of ${plural(checkpoint, 'pod')}`] : []),
    ...(completion > 0 ? [`completion of ${plural(completion, 'pod')}`] : []),
  ];
  const failed = hookFailures > 0 ? ` (hook failed for ${plural(hookFailures, 'pod')})` : '';
  return `waiting for ${parts.join(' and ')}, deadline ${iso(deadlineMs)}${failed}`;
}

function summary(
  released: ReadonlyMap<string, 'acknowledged' | 'deadline' | 'ended'>,
  hookFailures: readonly string[],
): string {
  const n = (why: string): number => [...released.values()].filter((w) => w === why).length;
  const parts = [
    `${n('acknowledged')} acknowledged`,
    `${n('ended')} ended`,
    `${n('deadline')} evicted at the deadline`,
  ];
  const failed =
    hookFailures.length === 0 ? '' : `; hook failed: ${hookFailures.slice(0, 2).join('; ')}`;
  return `checkpoint: ${parts.join(', ')}${failed}`;
}
