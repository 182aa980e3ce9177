/**
 * Bounded calls of @kubernetes/client-node for the operator tools (kubectl aegis, the console):
 * one deadline per call, errors as HealError.
 */
import * as k8s from '@kubernetes/client-node';
import { ErrorCode, HealError } from '../core/errors.js';
import { toHealError } from './kube-convert.js';

/**
 * One client call bounded by `timeoutMs` (and the caller's `signal`, if any): a call with no
 * answer in time is K8S_UNAVAILABLE saying so, any other failure `toHealError`. `contentType`
 * sets the request's (a patch's) Content-Type.
 */
export async function callWithin<T>(
  what: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  fn: (o: k8s.ConfigurationOptions) => Promise<T>,
  contentType?: string,
): Promise<T> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const deadline = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
  const middleware: k8s.ObservableMiddleware = {
    pre: (request) => {
      request.setSignal(deadline);
      if (contentType !== undefined) request.setHeaderParam('Content-Type', contentType);
      return new k8s.Observable(Promise.resolve(request));
    },
    post: (response) => new k8s.Observable(Promise.resolve(response)),
  };
  try {
    return await fn({ middleware: [middleware], middlewareMergeStrategy: 'append' });
  } catch (err) {
    if (timeout.aborted && signal?.aborted !== true) {
      throw new HealError(ErrorCode.K8sUnavailable, `${what}: no answer in ${timeoutMs} ms`, {
        cause: err,
      });
    }
    throw toHealError(err, what);
  }
}

/** The call's answer, or null when the object does not exist (K8S_NOT_FOUND). */
export async function orNull<T>(work: Promise<T>): Promise<T | null> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof HealError && err.code === ErrorCode.K8sNotFound) return null;
    throw err;
  }
}
