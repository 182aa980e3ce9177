/**
 * The console's calls to the apiserver with the daemon's own ServiceAccount (deploy/aegis/rbac.yaml
 * grants them): TokenReview (who the caller is), SubjectAccessReview (may they do this action on
 * aegis.io), the ConfigMap aegis-control (fleet-wide pause, breaker reset: read with its
 * resourceVersion, replaced under it) and the leader Lease. The console's own adapter, like
 * src/kubectl/kube-client.ts is the operator CLI's.
 */
import { readFileSync } from 'node:fs';
// eslint-disable-next-line no-restricted-imports -- the console's own adapter (see above)
import * as k8s from '@kubernetes/client-node';
import { ErrorCode, HealError } from '../core/errors.js';
import { CONTROL_CONFIGMAP } from '../core/types.js';
import { callWithin, orNull } from '../k8s/kube-call.js';
import type { ConfigMapRecord, LeaseRecord } from '../kubectl/kube-client.js';
import { CONSOLE_GROUP, type Caller, type ConsoleAccess } from './access.js';

/** How to reach the apiserver (the daemon's `kubernetes` config). */
export type KubeTarget =
  | { readonly inCluster: true }
  | {
      readonly inCluster?: false;
      readonly server: string;
      readonly token: string;
      readonly caData?: string;
      readonly skipTLSVerify: boolean;
    };

/** What the console asks the apiserver as the daemon. */
export interface ConsoleKube {
  readonly access: ConsoleAccess;
  readControl(signal: AbortSignal): Promise<ConfigMapRecord | null>;
  writeControl(
    data: Readonly<Record<string, string>>,
    resourceVersion: string | undefined,
    signal: AbortSignal,
  ): Promise<void>;
  readLease(name: string, signal: AbortSignal): Promise<LeaseRecord | null>;
}

/** The daemon's kubeconfig from its config (as src/main.ts builds the engine's). */
export function kubeTargetOf(k: {
  inCluster: boolean;
  server?: string | undefined;
  tokenFile?: string | undefined;
  caFile?: string | undefined;
  insecureSkipVerify: boolean;
}): KubeTarget {
  if (k.inCluster) return { inCluster: true };
  return {
    server: k.server ?? 'https://127.0.0.1:6443',
    token: k.tokenFile === undefined ? '' : readFileSync(k.tokenFile, 'utf8').trim(),
    ...(k.caFile === undefined ? {} : { caData: readFileSync(k.caFile).toString('base64') }),
    skipTLSVerify: k.insecureSkipVerify,
  };
}

/** The console's apiserver calls, in `namespace` (the controller's). */
export function createConsoleKube(
  target: KubeTarget,
  namespace: string,
  requestTimeoutMs = 10_000,
): ConsoleKube {
  const kc = new k8s.KubeConfig();
  if (target.inCluster === true) kc.loadFromCluster();
  else {
    kc.loadFromOptions({
      clusters: [
        {
          name: 'aegis',
          server: target.server,
          ...(target.caData === undefined ? {} : { caData: target.caData }),
          skipTLSVerify: target.skipTLSVerify,
        },
      ],
      users: [{ name: 'aegis', token: target.token }],
      contexts: [{ name: 'aegis', cluster: 'aegis', user: 'aegis' }],
      currentContext: 'aegis',
    });
  }
  const authn = kc.makeApiClient(k8s.AuthenticationV1Api);
  const authz = kc.makeApiClient(k8s.AuthorizationV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  const call = <T>(
    what: string,
    signal: AbortSignal,
    fn: (o: k8s.ConfigurationOptions) => Promise<T>,
  ): Promise<T> => callWithin(what, requestTimeoutMs, signal, fn);
  const access: ConsoleAccess = {
    loginHint:
      'Paste a Kubernetes bearer token: `kubectl create token <service-account>`, or your own (e.g. the id-token of your OIDC login).',
    async authenticate(token, signal) {
      const review = await call('create tokenreview', signal, (o) =>
        authn.createTokenReview(
          {
            body: Object.assign(new k8s.V1TokenReview(), {
              apiVersion: 'authentication.k8s.io/v1',
              kind: 'TokenReview',
              spec: Object.assign(new k8s.V1TokenReviewSpec(), { token }),
            }),
          },
          o,
        ),
      );
      const s = review.status;
      const user = s?.user;
      if (s?.authenticated !== true || user?.username === undefined || user.username === '')
        return null;
      const caller: Caller = {
        username: user.username,
        groups: user.groups ?? [],
        ...(user.uid === undefined ? {} : { uid: user.uid }),
        ...(user.extra === undefined ? {} : { extra: user.extra }),
      };
      return caller;
    },
    async allowed(caller, check, signal) {
      const review = await call('create subjectaccessreview', signal, (o) =>
        authz.createSubjectAccessReview(
          {
            body: Object.assign(new k8s.V1SubjectAccessReview(), {
              apiVersion: 'authorization.k8s.io/v1',
              kind: 'SubjectAccessReview',
              spec: Object.assign(new k8s.V1SubjectAccessReviewSpec(), {
                user: caller.username,
                groups: [...caller.groups],
                ...(caller.uid === undefined ? {} : { uid: caller.uid }),
                ...(caller.extra === undefined
                  ? {}
                  : {
                      extra: Object.fromEntries(
                        Object.entries(caller.extra).map(([k, v]) => [k, [...v]]),
                      ),
                    }),
                resourceAttributes: {
                  group: CONSOLE_GROUP,
                  resource: check.resource,
                  verb: check.verb,
                  ...(check.name === undefined ? {} : { name: check.name }),
                },
              }),
            }),
          },
          o,
        ),
      );
      return review.status?.allowed === true && review.status.denied !== true;
    },
  };
  return {
    access,
    async readControl(signal) {
      const cm = await orNull(
        call(`get configmap ${namespace}/${CONTROL_CONFIGMAP}`, signal, (o) =>
          core.readNamespacedConfigMap({ name: CONTROL_CONFIGMAP, namespace }, o),
        ),
      );
      if (cm === null) return null;
      return { data: { ...cm.data }, resourceVersion: cm.metadata?.resourceVersion ?? '' };
    },
    async writeControl(data, resourceVersion, signal) {
      if (resourceVersion === undefined) {
        throw new HealError(
          ErrorCode.K8sNotFound,
          `ConfigMap ${namespace}/${CONTROL_CONFIGMAP} does not exist: apply deploy/aegis, which ships it`,
        );
      }
      const body = Object.assign(new k8s.V1ConfigMap(), {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: Object.assign(new k8s.V1ObjectMeta(), {
          name: CONTROL_CONFIGMAP,
          namespace,
          labels: { 'app.kubernetes.io/part-of': 'aegis' },
          resourceVersion,
        }),
        data: { ...data },
      });
      await call(`update configmap ${namespace}/${CONTROL_CONFIGMAP}`, signal, (o) =>
        core.replaceNamespacedConfigMap(
          { name: CONTROL_CONFIGMAP, namespace, body, fieldManager: 'aegis-console' },
          o,
        ),
      );
    },
    async readLease(name, signal) {
      const lease = await orNull(
        call(`get lease ${namespace}/${name}`, signal, (o) =>
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
