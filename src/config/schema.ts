import { z } from 'zod';
import { DEFAULT_SYSTEM_NAMESPACES, isNamespacePattern } from '../catalogue/namespaces.js';
import { DEFAULT_NPD_MAPPING } from '../catalogue/npd.js';
import { DEFAULT_READ_ONLY_MOUNTS, parseIbPort, promRegexProblem } from '../catalogue/detection.js';
import { parseDurationMs } from '../core/duration.js';
import { CREDENTIALS_PREFIX, parseBmcAddress } from '../bmc/select.js';
import { findCondition } from '../catalogue/index.js';
import { ALLOWABLE_ACTIONS, DEFAULT_CORRELATION_RULES } from '../engine/domains.js';
import { DEFAULT_TOPOLOGY_LABELS, DOMAIN_KINDS } from '../engine/topology.js';
import { isHttpUrl } from '../engine/drain-checkpoint.js';
import { PROFILE_NAMES } from '../engine/profiles.js';

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

/** A label key (`topology.kubernetes.io/zone`): an optional DNS prefix and a name. */
const labelKey = z
  .string()
  .regex(
    /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
    'must be a label key, e.g. topology.kubernetes.io/zone',
  );
/** A catalogue condition name or alias, read as the condition's name. */
const conditionName = z.string().transform((v, ctx) => {
  const entry = findCondition(v);
  if (entry !== undefined) return entry.name;
  ctx.addIssue({ code: 'custom', message: `unknown condition "${v}" (see aegis conditions)` });
  return z.NEVER;
});

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
      /**
       * The store behind the Prometheus API (docs/prometheus.md, Backends): `victoriametrics`
       * asks vmselect for the newest data (latency_offset=1ms) and the Prometheus forms of
       * changes/increase/delta/rate, `thanos` refuses partial answers
       * (partial_response=false). Any partial answer is stale data, whatever the flavor.
       */
      flavor: z.enum(['prometheus', 'victoriametrics', 'thanos', 'mimir']).default('prometheus'),
      /** Tenant sent in `tenantHeader` with every query (Mimir, Cortex, a Thanos tenant proxy). */
      tenant: z.string().min(1).optional(),
      /** Header carrying `tenant` (an HTTP header name). */
      tenantHeader: z
        .string()
        .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name')
        .default('X-Scope-OrgID'),
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
      /**
       * `direct`: one query per rule for the fleet. `recorded` (for large fleets, docs/prometheus.md):
       * the store evaluates the rules `aegis rules --tiered` writes and a cycle reads their output
       * and heartbeats (two queries); a rule without a current heartbeat is stale.
       */
      ruleSource: z.enum(['direct', 'recorded']).default('direct'),
      /**
       * Background presence asked at most this often (0: every cycle): presence reads every
       * series of each exporter, the costliest queries at scale; staleness and clears wait up to it.
       */
      presenceIntervalMs: durationMs.prefault('0s'),
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
  /**
   * Failure domains (docs/failure-domains.md): the node labels naming each node's zone, rack, leaf
   * switch, NVLink clique (`nvidia.com/gpu.clique`), PDU and node group; and the correlation rules
   * (data: which conditions, on how many nodes of one domain, within what window) that make one
   * domain incident out of faults on many nodes: its members' steps other than `allow` are held,
   * it is recorded in a ConfigMap `aegis-incident-…` and handed to a human once, and its members go
   * back to their own ladders when it ends. `rules` replaces the default list.
   */
  domains: z
    .strictObject({
      enabled: z.boolean().default(true),
      labels: z
        .strictObject(
          Object.fromEntries(
            DOMAIN_KINDS.map((k) => [k, labelKey.default(DEFAULT_TOPOLOGY_LABELS[k])]),
          ) as Record<(typeof DOMAIN_KINDS)[number], z.ZodDefault<typeof labelKey>>,
        )
        .prefault({}),
      rules: z
        .array(
          z
            .strictObject({
              name: z
                .string()
                .regex(/^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$/, 'must be a DNS label of at most 40'),
              domain: z.enum(DOMAIN_KINDS),
              description: z.string().max(120).optional(),
              conditions: z.array(conditionName).min(1),
              minNodes: z.int().min(2).optional(),
              minFraction: z.number().gt(0).max(1).optional(),
              windowMs: positiveMs.prefault('10m'),
              clearForMs: durationMs.prefault('2m'),
              allow: z.array(z.enum(ALLOWABLE_ACTIONS)).default(['Cordon']),
            })
            .refine(
              (r) => r.minNodes !== undefined || r.minFraction !== undefined,
              'needs minNodes or minFraction',
            ),
        )
        .prefault(() =>
          DEFAULT_CORRELATION_RULES.map((r) => ({
            ...r,
            conditions: [...r.conditions],
            allow: r.allow as (typeof ALLOWABLE_ACTIONS)[number][],
          })),
        )
        .superRefine((rules, ctx) => {
          const seen = new Set<string>();
          for (const [i, r] of rules.entries()) {
            if (seen.has(r.name))
              ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${r.name}" twice` });
            seen.add(r.name);
          }
        }),
    })
    .prefault({}),
  approval: z
    .strictObject({
      rules: z
        .array(
          z.strictObject({
            actions: z
              .array(
                z.enum([
                  'Drain',
                  'Reboot',
                  'Shutdown',
                  'PowerCycle',
                  'Repair',
                  'Remedy',
                  'RestartPod',
                ]),
              )
              .min(1)
              .default(['Drain', 'Reboot', 'Shutdown', 'PowerCycle', 'Repair']),
            conditions: z.array(z.string().min(1)).optional(),
            sops: z.array(z.string().min(1)).optional(),
            nodeSelector: z.record(z.string(), z.string()).optional(),
          }),
        )
        .default([]),
    })
    .prefault({}),
  /**
   * Node-group behaviour profiles (docs/profiles.md): what automation may do on a node, by node
   * group. `groups` are tried in order, the first whose `selector` (matchLabels: every label with
   * its value) matches a node gives its profile; other nodes get `default`. Profiles: `full` (the
   * whole ladder), `observe-only` (nothing written for the node: the plan is logged and counted),
   * `cordon-only` (cordon, then a hand-off to a human), `approval-required` (every step past a
   * cordon waits for an operator's approval). Default: `full` for every node, no groups.
   */
  profiles: z
    .strictObject({
      default: z.enum(PROFILE_NAMES).default('full'),
      groups: z
        .array(
          z.strictObject({
            name: z
              .string()
              .regex(/^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$/, 'must be a DNS label of at most 40')
              .optional(),
            selector: z
              .record(labelKey, z.string().max(63))
              .refine((s) => Object.keys(s).length > 0, 'needs at least one label'),
            profile: z.enum(PROFILE_NAMES),
          }),
        )
        .default([]),
    })
    .prefault({}),
  /**
   * Reliability metrics (docs/metrics.md, `aegis_reliability_*`): computed from the tickets every
   * cycle. GPU-hours lost while cordoned count the node's GPUs from `gpuCountLabel` (set by GPU
   * feature discovery), else `gpusPerNode`; a lemon node had at least `lemonTickets` tickets
   * opened within `lemonWindowMs`.
   */
  reliability: z
    .strictObject({
      gpuCountLabel: labelKey.default('nvidia.com/gpu.count'),
      gpusPerNode: z.int().nonnegative().default(8),
      lemonTickets: z.int().min(2).default(3),
      lemonWindowMs: positiveMs.prefault('30d'),
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
      /**
       * Level limits (docs/failure-domains.md): per domain of a kind (each rack, each node group…),
       * the most nodes out of service at once (cordoned by anyone, or not Ready), as a count, a
       * fraction of the domain's nodes (at least 1), or the lower of both. A new cordon of a node
       * in a domain at its limit is held (gate `level-limit`). Default: half of each node group.
       */
      levelLimits: z
        .array(
          z
            .strictObject({
              domain: z.enum(DOMAIN_KINDS),
              maxUnhealthy: z.int().nonnegative().optional(),
              maxUnhealthyFraction: z.number().min(0).max(1).optional(),
            })
            .refine(
              (l) => l.maxUnhealthy !== undefined || l.maxUnhealthyFraction !== undefined,
              'needs maxUnhealthy or maxUnhealthyFraction',
            ),
        )
        .default([{ domain: 'nodeGroup', maxUnhealthyFraction: 0.5 }]),
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
  /**
   * Out-of-band power and health through each node's BMC (docs/remediation.md). Off by default.
   * `PowerCycle` power-cycles a node NotReady for `notReadyAfterMs`, or one a reboot Job did not
   * reboot: power off, confirmed by the BMC (only then are its pods treated as gone), power on,
   * confirmed, then a new boot id. The BMC of a node: `nodes` (name → address), else the node's
   * `addressAnnotation` / `addressLabel` (only hosts matching `allowedAddresses`), else
   * `addressTemplate` (`{node}` replaced). Addresses: `ipmi://host[:port]`, `redfish://host[:port]
   * [/redfish/v1/Systems/<id>]` (https), `https://…`, `http://…` (needs redfish.allowInsecureHttp),
   * or a bare host (`defaultProtocol`). Credentials: the Secret `credentialsSecret` in the
   * controller's namespace, read by name, keys `username`/`password` (or `<prefix>.username`/
   * `<prefix>.password` for a node mapped with `credentials: <prefix>`).
   */
  bmc: z
    .strictObject({
      enabled: z.boolean().default(false),
      credentialsSecret: z
        .string()
        .regex(
          /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/,
          'must be a Secret name (DNS-1123 subdomain)',
        )
        .default('aegis-bmc'),
      credentials: z
        .string()
        .regex(CREDENTIALS_PREFIX, 'must be a key prefix of the credentials Secret, e.g. rack7')
        .optional(),
      defaultProtocol: z.enum(['ipmi', 'redfish']).default('ipmi'),
      nodes: z
        .record(
          z.string().min(1),
          z.union([
            z.string(),
            z.strictObject({
              address: z.string(),
              credentials: z
                .string()
                .regex(CREDENTIALS_PREFIX, 'must be a key prefix of the credentials Secret')
                .optional(),
            }),
          ]),
        )
        .default({}),
      addressAnnotation: z.string().min(1).optional(),
      addressLabel: z.string().min(1).optional(),
      /** Anchored regexes over the BMC host; required for addresses read from the node object. */
      allowedAddresses: z
        .array(
          z.string().refine((r) => {
            try {
              new RegExp(r);
              return true;
            } catch {
              return false;
            }
          }, 'must be a regular expression'),
        )
        .default([]),
      addressTemplate: z
        .string()
        .refine((t) => t.includes('{node}'), 'must contain {node}')
        .optional(),
      /** A node NotReady this long is power-cycled (when its BMC is known). */
      notReadyAfterMs: positiveMs.prefault('10m'),
      /** The BMC must confirm Off (then On) within these; the node must boot within bootTimeoutMs. */
      powerOffTimeoutMs: positiveMs.prefault('2m'),
      powerOnTimeoutMs: positiveMs.prefault('2m'),
      bootTimeoutMs: positiveMs.prefault('20m'),
      pollMs: positiveMs.prefault('5s'),
      ipmi: z
        .strictObject({
          command: z.string().min(1).default('ipmitool'),
          /** RMCP+ cipher suite (`-C`); unset lets ipmitool ask the BMC. */
          cipherSuite: z.int().min(0).max(17).optional(),
          privilege: z.enum(['OPERATOR', 'ADMINISTRATOR']).default('OPERATOR'),
          timeoutMs: positiveMs.prefault('30s'),
          sessionTimeoutSeconds: z.int().positive().max(60).default(2),
          retries: z.int().nonnegative().max(10).default(2),
        })
        .prefault({}),
      redfish: z
        .strictObject({
          timeoutMs: positiveMs.prefault('30s'),
          caFile: z.string().optional(),
          insecureSkipVerify: z.boolean().default(false),
          allowInsecureHttp: z.boolean().default(false),
        })
        .prefault({}),
      /**
       * BMC health as conditions for nodes whose ipmi-exporter is not deployed: the SEL and the
       * sensors read through the node's BMC every `intervalMs` (IPMI: `sel elist`, `sdr elist`;
       * Redfish: Thermal/Power or their subsystems, Memory, Processors, SEL log entries), read as
       * BaseBoardCriticalIssue / BaseBoardSensorWarning / MemoryUnhealthy / CpuUnhealthy
       * observations; a reading older than `staleAfterMs` vouches for nothing.
       */
      health: z
        .strictObject({
          /** Unset: on whenever `bmc.enabled` is (the BMC path is configured). */
          enabled: z.boolean().optional(),
          intervalMs: positiveMs.prefault('5m'),
          staleAfterMs: positiveMs.prefault('20m'),
          /** SEL events asserted longer ago than this (by the BMC's clock) are history. */
          selWindowMs: positiveMs.prefault('24h'),
          concurrency: z.int().positive().max(64).default(4),
        })
        .prefault({}),
    })
    .superRefine((b, ctx) => {
      for (const [node, entry] of Object.entries(b.nodes)) {
        const address = typeof entry === 'string' ? entry : entry.address;
        const parsed = parseBmcAddress(address, b.defaultProtocol);
        if (typeof parsed === 'string')
          ctx.addIssue({ code: 'custom', path: ['nodes', node], message: parsed });
      }
      if (
        (b.addressAnnotation !== undefined || b.addressLabel !== undefined) &&
        b.allowedAddresses.length === 0
      )
        ctx.addIssue({
          code: 'custom',
          path: ['allowedAddresses'],
          message:
            'is empty: an address read from a node annotation or label is used only when its host matches one of these',
        });
    })
    .prefault({}),
  /**
   * GPU-level quarantine (docs/remediation.md, "GPU-level quarantine"): a fault on one GPU takes
   * that device out of scheduling instead of cordoning the node. `mechanism`: `auto` uses a DRA
   * DeviceTaintRule (resource.k8s.io/v1, Kubernetes 1.37) where the apiserver serves it, else a
   * node taint `nodeTaintKey=<device>` (the device plugin's own health check takes an Xid-faulty
   * GPU out of the node's allocatable). `dra.deviceName`: the DRA device of GPU index `{index}`
   * (the NVIDIA DRA driver names GPUs `gpu-<minor>`); the pool is the node's name.
   * `maxDevices`: more faulty GPUs on a node than this is a node-wide fault. `conditions`: the
   * conditions that may isolate one GPU (default: QUARANTINE_CONDITIONS in src/sop/quarantine.ts).
   * `nodeWide: taint` adds the NoSchedule taint `aegis.io/quarantine` to every Aegis cordon (and
   * removes it with the uncordon), for schedulers that react to taints (Kueue's topology-aware
   * node replacement). `repairAfterMs`: a GPU still faulty this long after its quarantine gets the
   * ladder's node-wide rungs (cordon, drain, reboot); unset, the node goes to a human at once.
   */
  quarantine: z
    .strictObject({
      enabled: z.boolean().default(false),
      mechanism: z.enum(['auto', 'deviceTaintRule', 'nodeTaint']).default('auto'),
      effect: z.enum(['NoSchedule', 'NoExecute']).default('NoSchedule'),
      nodeTaintKey: z
        .string()
        .regex(
          /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/,
          'must be a taint key (a label key, e.g. aegis.io/gpu-quarantine)',
        )
        .default('aegis.io/gpu-quarantine'),
      nodeTaintEffect: z.enum(['NoSchedule', 'PreferNoSchedule']).default('NoSchedule'),
      maxDevices: z.int().min(1).max(16).default(1),
      conditions: z.array(z.string().min(1)).optional(),
      dra: z
        .strictObject({
          driver: z.string().min(1).default('gpu.nvidia.com'),
          deviceName: z
            .string()
            .regex(/\{index\}/, 'must contain {index}')
            .default('gpu-{index}'),
        })
        .prefault({}),
      nodeWide: z.enum(['cordon', 'taint']).default('cordon'),
      repairAfterMs: positiveMs.optional(),
    })
    .prefault({}),
  /**
   * Drains that respect training jobs (docs/remediation.md): before eviction, ask the pods to
   * checkpoint — `checkpoint.mode` `annotation` (write `aegis.io/drain-requested: <deadline>` on
   * the pod, wait for `aegis.io/checkpoint-done`), `hook` (the same annotation, then a POST to
   * `hook.url` or the pod's `aegis.io/checkpoint-hook` when it matches `hook.allowedUrls`; a 2xx
   * answer acknowledges), or `grace` (evict with `gracePeriodSeconds` for the pod's preStop) — for
   * the pods annotated `aegis.io/checkpoint: "true"` (`pods: annotated`) or all; a pod that does
   * not answer is evicted `timeoutMs` after the request. A pod annotated
   * `aegis.io/drain: wait-for-completion` is left to finish for up to `waitForCompletionMaxMs`.
   * Default: off, 0 (the plain drain).
   */
  drain: z
    .strictObject({
      checkpoint: z
        .strictObject({
          mode: z.enum(['off', 'annotation', 'grace', 'hook']).default('off'),
          pods: z.enum(['annotated', 'all']).default('annotated'),
          timeoutMs: positiveMs.prefault('10m'),
          gracePeriodSeconds: z.int().positive().max(86_400).default(600),
          hook: z
            .strictObject({
              url: z.string().refine(isHttpUrl, 'must be an http:// or https:// URL').optional(),
              /** Anchored regexes over a pod's own hook URL; none: pods' URLs are not used. */
              allowedUrls: z
                .array(
                  z.string().refine((r) => {
                    try {
                      new RegExp(r);
                      return true;
                    } catch {
                      return false;
                    }
                  }, 'must be a regular expression'),
                )
                .default([]),
              timeoutMs: positiveMs.prefault('10s'),
              /** A file holding a bearer token sent to the hook (read at each call, never logged). */
              bearerTokenFile: z.string().min(1).optional(),
            })
            .prefault({}),
        })
        .superRefine((c, ctx) => {
          if (c.mode === 'hook' && c.hook.url === undefined && c.hook.allowedUrls.length === 0)
            ctx.addIssue({
              code: 'custom',
              path: ['hook', 'url'],
              message:
                'is required for mode hook (or hook.allowedUrls, for pods naming their own hook)',
            });
        })
        .prefault({}),
      waitForCompletionMaxMs: durationMs.prefault('0s'),
    })
    .prefault({}),
  /**
   * Validation before return to service (docs/remediation.md). Off by default. When on, a node
   * repaired by a reboot-class step (Reboot, PowerCycle, Repair) is uncordoned only after a
   * `validate_node` Job passes: DCGM diagnostics at `dcgm.level` (0: not run), an NCCL all-reduce
   * on `nccl.gpus` GPUs (`all`, a count, or 0: not run) whose bus bandwidth at the largest size
   * must reach `nccl.minBusBandwidthGBps` (unset: no floor, data errors still fail), and an IB
   * loopback on `ib.device` (`auto`: the first active HCA; `none`: not run) whose average must
   * reach `ib.minBandwidthGbps`. A pass writes `aegis.io/certified-until` (now + `certifyForMs`,
   * RFC 3339) on the node; a failure goes to the next rung (another reboot, then a human). The
   * tools are the hosts' own (dcgmi, nccl-tests' all_reduce_perf, perftest's ib_write_bw).
   */
  validation: z
    .strictObject({
      enabled: z.boolean().default(false),
      dcgm: z.strictObject({ level: z.int().min(0).max(4).default(3) }).prefault({}),
      nccl: z
        .strictObject({
          gpus: z.union([z.literal('all'), z.int().min(0).max(64)]).default('all'),
          minBusBandwidthGBps: z.number().positive().optional(),
        })
        .prefault({}),
      ib: z
        .strictObject({
          device: z
            .string()
            .regex(
              /^(none|auto|[A-Za-z][A-Za-z0-9_]{0,31})$/,
              'must be none, auto or an HCA name (e.g. mlx5_0)',
            )
            .default('auto'),
          minBandwidthGbps: z.number().positive().optional(),
        })
        .prefault({}),
      certifyForMs: positiveMs.prefault('7d'),
    })
    .prefault({}),
  priorityFile: z.string().optional(),
  metricsPort: z.int().min(0).max(65535).default(9400),
  /**
   * The operator console in the browser (docs/console.md): off unless `port` is set. Every request
   * carries the caller's Kubernetes bearer token (TokenReview) and each action is authorised by
   * SubjectAccessReview on group aegis.io. `allowedOrigins`: origins besides the console's own
   * that may send writes (an Ingress host). `grafana`: base URL and dashboards linked from the
   * node view (`{node}` in `path` is the node's name).
   */
  console: z
    .strictObject({
      port: z.int().min(0).max(65535).optional(),
      host: z.string().min(1).default('0.0.0.0'),
      allowedOrigins: z.array(z.url()).default([]),
      /** A login (session) lasts at most this long; the token is re-reviewed every minute. */
      sessionTtlMs: positiveMs.prefault('8h'),
      grafana: z
        .strictObject({
          url: z.url().optional(),
          dashboards: z
            .array(z.strictObject({ title: z.string().min(1), path: z.string().min(1) }))
            .default([
              { title: 'Fleet conditions', path: '/d/aegis-fleet/aegis-fleet?var-node={node}' },
              { title: 'Aegis overview', path: '/d/aegis-overview/aegis-overview' },
            ]),
        })
        .prefault({}),
    })
    .prefault({}),
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
