import { z } from 'zod';
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
      namespace: z.string().default('monitoring'),
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
  priorityFile: z.string().optional(),
  metricsPort: z.int().min(0).max(65535).default(9400),
  leaderElection: z
    .strictObject({
      enabled: z.boolean().default(true),
      leaseName: z.string().default('aegis-controller'),
      leaseDurationSeconds: z.int().positive().default(15),
      renewIntervalMs: positiveMs.prefault('5s'),
    })
    .prefault({}),
});

/** The effective configuration. */
export type Config = z.infer<typeof ConfigSchema>;

/** The defaults, as a full config. */
export function defaultConfig(): Config {
  return ConfigSchema.parse({});
}
