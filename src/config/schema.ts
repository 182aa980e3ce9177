import { z } from 'zod';
import { DEFAULT_SYSTEM_NAMESPACES, isNamespacePattern } from '../catalogue/namespaces.js';
import { DEFAULT_NPD_MAPPING } from '../catalogue/npd.js';
import { DEFAULT_READ_ONLY_MOUNTS, parseIbPort, promRegexProblem } from '../catalogue/detection.js';
import { parseDurationMs } from '../core/duration.js';

/** A duration: `"30s"`-style string or milliseconds; finite and not negative. */
const durationMs = z.union([z.string(), z.number()]).transform((v, ctx) => {
  let ms: number;
  try {
    ms = typeof v === 'number' ? v : parseDurationMs(v);
  } catch {
    ctx.addIssue({
      code: 'custom',
      message: `"${String(v)}" is not a duration (e.g. 30s, 5m, 1h)`,
    });
    return z.NEVER;
  }
  if (!Number.isFinite(ms) || ms < 0) {
    ctx.addIssue({
      code: 'custom',
      message: `${String(v)} is not a finite, non-negative duration`,
    });
    return z.NEVER;
  }
  return ms;
});
/** A duration that must be positive (intervals, timeouts). */
const positiveMs = durationMs.refine((ms) => ms > 0, 'must be greater than zero');
/** A node-problem-detector condition type or reason (`KernelDeadlock`, `DockerHung`). */
const npdName = z
  .string()
  .regex(
    /^[A-Za-z0-9][-A-Za-z0-9_.:/]{0,127}$/,
    'must be a node-problem-detector condition type or reason, e.g. KernelDeadlock',
  );
/** One `key=value` label selector term (a label key with an optional DNS prefix, a label value). */
const labelSelector = z
  .string()
  .regex(
    /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?=[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
    'must be one key=value label selector, e.g. app=nvidia-device-plugin-daemonset',
  );

/** Ticket events an adapter is told about (src/notify/adapters/events.ts). */
const ticketEvents = z
  .array(z.enum(['opened', 'step', 'handoff', 'closed']))
  .min(1)
  .default(['opened', 'step', 'handoff', 'closed']);
const httpUrl = z.string().refine((u) => {
  try {
    const p = new URL(u).protocol;
    return p === 'https:' || p === 'http:';
  } catch {
    return false;
  }
}, 'must be an http:// or https:// URL');
/** A secret is only ever named by the file holding it (a mounted Secret), never written inline. */
const secretFile = z.string().min(1, 'must name a file holding the secret (a mounted Secret)');
/** An http:// URL would carry the credentials in clear: refused unless allowInsecureHttp. */
function refuseCleartext(urlKey: string) {
  return (v: Record<string, unknown>, ctx: z.RefinementCtx): void => {
    const url = v[urlKey];
    if (typeof url === 'string' && url.startsWith('http://') && v.allowInsecureHttp !== true)
      ctx.addIssue({
        code: 'custom',
        path: [urlKey],
        message:
          'is http://: the credentials would cross the network in clear; use https:// (or set allowInsecureHttp: true for a loopback proxy or a lab)',
      });
  };
}
/**
 * Ticket adapters (docs/ticket-adapters.md): a generic webhook, Jira Cloud and ServiceNow, each
 * off until its block is present (and `enabled` not false). Events are queued (`queueSize`, the
 * oldest step updates go first when full), delivered by `concurrency` workers, one node at a time
 * in order, each request retried `maxAttempts` times with exponential backoff.
 */
const ticketAdapters = z.strictObject({
  queueSize: z.int().positive().default(1000),
  concurrency: z.int().positive().max(64).default(4),
  timeoutMs: positiveMs.prefault('10s'),
  maxAttempts: z.int().positive().max(20).default(8),
  initialBackoffMs: positiveMs.prefault('1s'),
  maxBackoffMs: positiveMs.prefault('5m'),
  /** POSTs every event as JSON, signed with HMAC-SHA256 (key from `hmacKeyFile`). */
  webhook: z
    .strictObject({
      enabled: z.boolean().default(true),
      url: httpUrl,
      hmacKeyFile: secretFile,
      events: ticketEvents,
    })
    .optional(),
  /** Jira Cloud REST API v3: an issue per ticket, a comment per update, a transition to close. */
  jira: z
    .strictObject({
      enabled: z.boolean().default(true),
      baseUrl: httpUrl,
      email: z.string().min(1),
      apiTokenFile: secretFile,
      projectKey: z
        .string()
        .regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'must be a Jira project key, e.g. OPS'),
      issueType: z.string().min(1).default('Task'),
      /** Transition id that closes an issue (GET /rest/api/3/issue/{key}/transitions lists them). */
      closeTransitionId: z.string().regex(/^\d+$/, 'must be a transition id (digits)').optional(),
      labels: z.array(z.string().regex(/^\S{1,255}$/, 'a Jira label has no spaces')).default([]),
      events: ticketEvents,
      allowInsecureHttp: z.boolean().default(false),
    })
    .superRefine(refuseCleartext('baseUrl'))
    .optional(),
  /** ServiceNow Table API: an incident per ticket, work notes per update, resolved at the end. */
  servicenow: z
    .strictObject({
      enabled: z.boolean().default(true),
      instanceUrl: httpUrl,
      table: z
        .string()
        .regex(/^[a-z][a-z0-9_]{0,79}$/, 'must be a table name, e.g. incident')
        .default('incident'),
      /** Basic auth (`username` + `passwordFile`) or an OAuth bearer token (`tokenFile`). */
      username: z.string().min(1).optional(),
      passwordFile: secretFile.optional(),
      tokenFile: secretFile.optional(),
      /** Sets `cmdb_ci` to the node name (needs `inputDisplayValue`). */
      cmdbCi: z.boolean().default(true),
      /** Creates with `sysparm_input_display_value=true`: reference fields take names. */
      inputDisplayValue: z.boolean().default(true),
      /** Extra fields of every new record (assignment_group, caller_id, category, …). */
      fields: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), z.string()).default({}),
      resolveState: z.string().min(1).default('6'),
      closeCode: z.string().min(1).default('Solution provided'),
      events: ticketEvents,
      allowInsecureHttp: z.boolean().default(false),
    })
    .superRefine(refuseCleartext('instanceUrl'))
    .superRefine((v, ctx) => {
      const basic = v.username !== undefined || v.passwordFile !== undefined;
      if (basic === (v.tokenFile !== undefined))
        ctx.addIssue({
          code: 'custom',
          message:
            'needs exactly one of username + passwordFile (basic auth) or tokenFile (OAuth bearer)',
        });
      else if (basic && (v.username === undefined || v.passwordFile === undefined))
        ctx.addIssue({
          code: 'custom',
          message: 'basic auth needs both username and passwordFile',
        });
    })
    .optional(),
});

/**
 * The configuration, as one zod schema: type, defaults and validation. Unknown keys are
 * rejected (typos are errors). Safe by default: dry-run on, one disruptive action at a time.
 */
export const ConfigSchema = z.strictObject({
  clusterName: z.string().default('default'),
  prometheus: z
    .strictObject({
      url: z.string().default('http://127.0.0.1:9090'),
      bearerTokenFile: z.string().optional(),
      caFile: z.string().optional(),
      insecureSkipVerify: z.boolean().default(false),
      timeoutMs: positiveMs.prefault('10s'),
      /**
       * An http:// url with a bearer token is refused at start-up (the token would cross the
       * network in clear) unless this is true (a loopback proxy, a lab).
       */
      allowInsecureBearerToken: z.boolean().default(false),
      /** Largest answer read from Prometheus; a larger one is an error (stale), never parsed. */
      maxResponseBytes: z
        .int()
        .positive()
        .default(16 * 1024 * 1024),
    })
    .prefault({}),
  inspect: z
    .strictObject({
      intervalMs: positiveMs.prefault('5s'),
      concurrency: z.int().positive().default(8),
      compatibility: z.boolean().default(false),
      /**
       * Rules with a long `for:` or range window are asked every for/10 (or window/120), at most
       * this far apart, instead of every interval; 0 asks every rule every interval.
       */
      slowRuleMaxPeriodMs: durationMs.prefault('30s'),
      /** Slow rules' queries run beside the cycles instead of inside them. */
      backgroundSlowRules: z.boolean().default(true),
      /** Rules reading one metric alone (the XIDs) share one filtered query of it. */
      shareSelections: z.boolean().default(true),
      /**
       * The presence queries run beside the cycles (the next cycle uses their answer) instead of
       * inside them; a fault's absence then counts only once a later presence answer confirms it.
       */
      backgroundPresence: z.boolean().default(true),
    })
    .prefault({}),
  sop: z
    .strictObject({
      level: z.int().min(0).max(2).default(1),
      settleMs: durationMs.prefault('5m'),
      maxTicketAgeMs: durationMs.prefault('48h'),
      criticalLabels: z.array(z.string()).default([]),
      humanSupervisor: z.string().min(1).default('sre'),
      uncordonManualCordons: z.boolean().default(false),
      disabled: z.array(z.string()).default([]),
      pluginDir: z.string().optional(),
      /**
       * Pods the RestartPod rungs delete (`key=value` label selectors). The GPU device plugin's
       * default is the label of the NVIDIA GPU Operator's `nvidia-device-plugin-daemonset`; a
       * plain k8s-device-plugin install uses `name=nvidia-device-plugin-ds`.
       */
      podSelectors: z
        .strictObject({
          gpuDevicePlugin: labelSelector.default('app=nvidia-device-plugin-daemonset'),
          rdmaDevicePlugin: labelSelector.default('name=rdma-shared-dp-ds'),
          sriovDevicePlugin: labelSelector.default('app=sriovdp'),
          dcgmExporter: labelSelector.default('app.kubernetes.io/name=dcgm-exporter'),
        })
        .prefault({}),
      /**
       * A reboot or shutdown whose drain is blocked (a PodDisruptionBudget refuses evictions) is
       * retried at most `maxAttempts` times, `retryMs` apart, and never past `maxMs` after the
       * first attempt; then the ticket goes to a human saying which pods blocked it.
       */
      blockedDrain: z
        .strictObject({
          maxAttempts: z.int().positive().default(3),
          retryMs: durationMs.prefault('10m'),
          maxMs: positiveMs.prefault('1h'),
        })
        .prefault({}),
      /**
       * Plug-in SOP ids allowed to replace a built-in: reuse a built-in's id, or take over a
       * condition a built-in serves. Any other plug-in doing so is refused.
       */
      pluginOverrides: z.array(z.string()).default([]),
      /**
       * Most plug-in module versions imported over the process's life (each changed plug-in
       * costs one module instance that Node never frees); past it a change waits for a restart.
       */
      pluginMaxVersions: z.int().positive().default(64),
    })
    .prefault({}),
  /**
   * Approval mode: a step matching a rule is held ("awaiting approval", gate `approval`) until an
   * operator approves it (`kubectl aegis approve NODE`); dismissed, the node goes to a human. A
   * rule matches by action and, when given, condition, SOP id and node labels. Default: none.
   */
  approval: z
    .strictObject({
      rules: z
        .array(
          z.strictObject({
            actions: z
              .array(z.enum(['Drain', 'Reboot', 'Shutdown', 'Repair', 'Remedy', 'RestartPod']))
              .min(1)
              .default(['Drain', 'Reboot', 'Shutdown', 'Repair']),
            conditions: z.array(z.string().min(1)).optional(),
            sops: z.array(z.string().min(1)).optional(),
            nodeSelector: z.record(z.string(), z.string()).optional(),
          }),
        )
        .default([]),
    })
    .prefault({}),
  safety: z
    .strictObject({
      dryRun: z.boolean().default(true),
      paused: z.boolean().default(false),
      /** Largest fraction of eligible nodes that may be cordoned at once (the original's 10 %). */
      maxCordonedFraction: z.number().min(0).max(1).default(0.1),
      /** Storm breaker: new faulty nodes within `stormWindowMs` that pause remediation. */
      stormMaxNewFaultyNodes: z.int().positive().default(20),
      stormMaxNewFaultyFraction: z.number().min(0).max(1).default(0.05),
      /** The breaker never trips for this many new faulty nodes or fewer (a small fleet's floor). */
      stormMinNewFaultyNodes: z.int().nonnegative().default(3),
      stormWindowMs: positiveMs.prefault('10m'),
      stormCooldownMs: positiveMs.prefault('30m'),
      maxConcurrent: z
        .strictObject({
          reboot: z.int().nonnegative().default(2),
          shutdown: z.int().nonnegative().default(1),
          drain: z.int().nonnegative().default(4),
          total: z.int().positive().default(64),
        })
        .prefault({}),
      /** Disruptive steps in flight per rack / per leaf switch. */
      maxPerRack: z.int().positive().default(1),
      maxPerLeaf: z.int().positive().default(2),
      nodeCooldownMs: durationMs.prefault('10m'),
      repeatOffenderMax: z.int().positive().default(3),
      repeatOffenderWindowMs: positiveMs.prefault('24h'),
    })
    .prefault({}),
  kubernetes: z
    .strictObject({
      /** Use the pod's ServiceAccount; otherwise `server` + `tokenFile` (+ `caFile`). */
      inCluster: z.boolean().default(true),
      server: z.string().optional(),
      tokenFile: z.string().optional(),
      caFile: z.string().optional(),
      insecureSkipVerify: z.boolean().default(false),
      /** An http:// `server` with a `tokenFile` is refused at start-up unless this is true. */
      allowInsecureBearerToken: z.boolean().default(false),
      namespace: z.string().default('monitoring'),
      /**
       * Namespace of the ops Jobs (privileged, host-PID pods). The shipped manifests use a
       * namespace of their own, `aegis-ops` (deploy/README.md); the default is the original's.
       */
      jobNamespace: z
        .string()
        .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a namespace name (DNS-1123 label)')
        .default('monitoring'),
      jobTemplatesDir: z.string().default('/etc/aegis/jobs'),
      opsImage: z.string().optional(),
    })
    .prefault({}),
  /** Per-condition overrides of the catalogue's timing, keyed by condition name (checked at start-up). */
  conditions: z
    .record(
      z.string(),
      z.strictObject({
        forMs: durationMs.optional(),
        clearForMs: durationMs.optional(),
        disabled: z.boolean().optional(),
      }),
    )
    .default({}),
  /**
   * Namespaces of the node-level system pods (operators, CNI, exporters): pod-derived conditions
   * (KubeletFailedCreatePodContainer, NodeHasTerminatingPod) read only these, and only their pods
   * are ever force-deleted. A name, or a prefix ending in `*`. Defaults and why:
   * src/catalogue/namespaces.ts.
   */
  systemNamespaces: z
    .array(
      z
        .string()
        .refine(
          isNamespacePattern,
          'must be a namespace name or a prefix ending in * (e.g. kube-system, calico-*)',
        ),
    )
    .min(1, 'needs at least one namespace')
    .default([...DEFAULT_SYSTEM_NAMESPACES]),
  /**
   * What a site's hardware means to detection (src/catalogue/detection.ts, docs/prometheus.md).
   * `ignoreIbPorts`: InfiniBand ports meant to be down (not cabled by design), left out of the
   * per-port IB rules: `<HCA>/<port>` (`mlx5_4/1`), `<HCA>` for all its ports, each part an anchored
   * regex, or `{ port: 'mlx5_4/1', nodes: '<regex>' }` for some nodes only. `readOnlyMounts`: mount
   * points meant to be read-only, left out of DiskReadOnly (anchored regexes; replaces the default
   * list, so keep the defaults you still want). Pods' volumes under /var/lib/kubelet are always left out.
   */
  detection: z
    .strictObject({
      ignoreIbPorts: z
        .array(
          z.union([z.string(), z.strictObject({ port: z.string(), nodes: z.string().optional() })]),
        )
        .default([])
        .transform((entries, ctx) =>
          entries.flatMap((e, i) => {
            const parsed = typeof e === 'string' ? parseIbPort(e) : parseIbPort(e.port, e.nodes);
            if (typeof parsed !== 'string') return [parsed];
            ctx.addIssue({ code: 'custom', message: parsed, path: [i] });
            return [];
          }),
        ),
      readOnlyMounts: z
        .array(
          z.string().superRefine((regex, ctx) => {
            const problem = promRegexProblem(regex);
            if (problem !== undefined)
              ctx.addIssue({ code: 'custom', message: `"${regex}" ${problem}` });
          }),
        )
        .default([...DEFAULT_READ_ONLY_MOUNTS]),
    })
    .prefault({}),
  /**
   * node-problem-detector as an input (src/catalogue/npd.ts, docs/inspect.md): which catalogue
   * condition each NPD problem type (Node condition and `problem_gauge{type,reason}`; `reason`
   * optional) and each event reason (`problem_counter{reason}`, counted over the last hour) stands
   * for. `staleAfterMs`: an NPD Node condition whose heartbeat is older is not trusted (NPD
   * re-posts its conditions every 5 minutes by default).
   */
  nodeProblemDetector: z
    .strictObject({
      problems: z
        .array(
          z.strictObject({
            type: npdName,
            reason: npdName.optional(),
            condition: z.string().min(1),
          }),
        )
        .default(DEFAULT_NPD_MAPPING.problems.map((p) => ({ ...p }))),
      events: z
        .array(z.strictObject({ reason: npdName, condition: z.string().min(1) }))
        .default(DEFAULT_NPD_MAPPING.events.map((e) => ({ ...e }))),
      staleAfterMs: positiveMs.prefault('15m'),
    })
    .prefault({}),
  /** Notifications (docs/notifications.md). Every receiver is off by default. */
  notify: z
    .strictObject({
      /**
       * Alerts posted to Alertmanager's API v2 (`POST <url>/api/v2/alerts`), each URL on its own
       * timer: hand-off to a human, budget exhausted, storm breaker open, approval pending, ticket
       * corrupt, signal stale on many nodes. Firing alerts are re-posted every `refreshMs` with
       * `endsAt` = now + 3 × refreshMs; an ended one is posted once with `endsAt` = now. A failed
       * post is retried after `backoffMs`, doubling up to `maxBackoffMs`. No `urls`: off.
       */
      alertmanager: z
        .strictObject({
          urls: z
            .array(
              z
                .string()
                .refine(
                  (u) => /^https?:\/\/[^/\s]+/.test(u),
                  'must be an http:// or https:// URL of Alertmanager, e.g. http://alertmanager:9093',
                ),
            )
            .default([]),
          refreshMs: positiveMs.prefault('1m'),
          timeoutMs: positiveMs.prefault('10s'),
          backoffMs: positiveMs.prefault('1s'),
          maxBackoffMs: positiveMs.prefault('5m'),
          bearerTokenFile: z.string().optional(),
          caFile: z.string().optional(),
          insecureSkipVerify: z.boolean().default(false),
          /** An http:// URL with a `bearerTokenFile` is refused at start-up unless this is true. */
          allowInsecureBearerToken: z.boolean().default(false),
          /** AegisSignalStale fires for a signal stale on at least this many nodes… */
          staleSignalMinNodes: z.int().positive().default(5),
          /** …and on at least this fraction of the fleet. */
          staleSignalMinFraction: z.number().min(0).max(1).default(0.05),
        })
        .prefault({}),
      /** Ticket adapters: webhook, Jira, ServiceNow (docs/ticket-adapters.md). Off by default. */
      adapters: ticketAdapters.prefault({}),
    })
    .prefault({}),
  priorityFile: z.string().optional(),
  metricsPort: z.int().min(0).max(65535).default(9400),
  leaderElection: z
    .strictObject({
      enabled: z.boolean().default(true),
      leaseName: z.string().default('aegis-controller'),
      leaseDurationSeconds: z.int().positive().default(15),
      renewIntervalMs: positiveMs.prefault('5s'),
      /**
       * A replica stops writing this long before its lease could pass to another replica (clock
       * drift, a write on the wire). Must be shorter than the lease.
       */
      fenceMarginMs: positiveMs.prefault('3s'),
    })
    .refine((le) => le.fenceMarginMs < le.leaseDurationSeconds * 1000, {
      error: 'fenceMarginMs must be shorter than leaseDurationSeconds',
      path: ['fenceMarginMs'],
    })
    .refine((le) => le.renewIntervalMs + le.fenceMarginMs < le.leaseDurationSeconds * 1000, {
      error:
        'renewIntervalMs + fenceMarginMs must be shorter than leaseDurationSeconds (or the fence lapses between renewals)',
      path: ['renewIntervalMs'],
    })
    .prefault({}),
});

/** The effective configuration. */
export type Config = z.infer<typeof ConfigSchema>;

/** The defaults, as a full config. */
export function defaultConfig(): Config {
  return ConfigSchema.parse({});
}
