/**
 * The scenario file format: zod schemas for what a YAML scenario may say (strict: an unknown key
 * is an error), and the resolved types the runner executes. Semantic checks that need the
 * catalogue or the fleet (condition names, node references, devices, times) are in resolve.ts;
 * every check runs before anything is simulated.
 */
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { parseDurationMs } from '../core/duration.js';
import type { JobKind } from '../k8s/cluster.js';
import type { Persistence } from '../sim/persistence.js';

/** A strict object whose unknown-key error names the key and lists the allowed ones. */
function strict<T extends z.ZodRawShape>(shape: T): z.ZodObject<T, z.core.$strict> {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === 'unrecognized_keys'
        ? `unknown field ${iss.keys.map((k) => `"${k}"`).join(', ')} (allowed: ${allowed})`
        : undefined,
  });
}

/** A duration: `30s`, `10m`, `2h30m`, `1d`, or the number 0. */
export const DurationSchema = z.union([z.string(), z.number()]).transform((v, ctx) => {
  if (v === 0) return 0;
  if (typeof v === 'number') {
    ctx.addIssue({ code: 'custom', message: `bad time ${v}: give a unit, e.g. ${v}s or ${v}m` });
    return z.NEVER;
  }
  try {
    return parseDurationMs(v);
  } catch {
    ctx.addIssue({ code: 'custom', message: `bad time "${v}": use forms like 30s, 10m, 2h30m` });
    return z.NEVER;
  }
});

/** An event time: a duration from the start (`10m`), or `+5m` after the previous event. */
export const AtSchema = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const relative = typeof v === 'string' && v.trim().startsWith('+');
  const text = relative ? v.trim().slice(1) : v;
  const parsed = DurationSchema.safeParse(text);
  if (!parsed.success) {
    for (const issue of parsed.error.issues)
      ctx.addIssue({ code: 'custom', message: issue.message });
    return z.NEVER;
  }
  return { relative, ms: parsed.data };
});

/** A node: its 1-based number (`3` is gpu-node-0003) or its name. */
const NodeRef = z.union([z.int(), z.string().min(1)]);
/** Several nodes: a list, a range `"1-20"`, or a share of the workers `"30%"`. */
const NodesRef = z.union([z.array(NodeRef).min(1), z.string().min(1)]);

const common = {
  at: AtSchema,
  event: z.string(),
  /** Shown in the live output when the event happens. */
  note: z.string().optional(),
};
const targets = { node: NodeRef.optional(), nodes: NodesRef.optional() };
const DeviceRef = z.union([z.string().min(1), z.int().nonnegative()]).transform(String);

/** Lifetimes a scenario may give a fault (see src/sim/persistence.ts). */
export const PERSISTENCES = [
  'transient',
  'until-reboot',
  'survives-reboot',
  'until-repair',
  'until-remedy',
] as const satisfies readonly Persistence[];

/** Job template kinds (src/k8s/cluster.ts). */
export const JOB_KINDS = [
  'restart_node',
  'shutdown_node',
  'healthcheck_node',
  'repair_node',
  'remedy_node',
  'diagnose_node',
  'validate_node',
] as const satisfies readonly JobKind[];

/** One schema per timeline `event:` value. */
export const EVENT_SCHEMAS = {
  fault: strict({
    ...common,
    ...targets,
    condition: z.string().min(1),
    device: DeviceRef.optional(),
    persistence: z.enum(PERSISTENCES).optional(),
    for: DurationSchema.optional(),
  }),
  recover: strict({
    ...common,
    ...targets,
    condition: z.string().min(1).optional(),
    device: DeviceRef.optional(),
  }),
  cordon: strict({ ...common, ...targets }),
  uncordon: strict({ ...common, ...targets }),
  'power-on': strict({ ...common, ...targets }),
  takeover: strict({ ...common, ...targets, supervisor: z.string().min(1).default('alice') }),
  'close-ticket': strict({
    ...common,
    ...targets,
    status: z.enum(['resolved', 'closed']).default('resolved'),
    by: z.string().min(1).default('alice'),
    conclusion: z.string().min(1).optional(),
  }),
  label: strict({
    ...common,
    ...targets,
    key: z.string().min(1).default('aegis.io/disable'),
    value: z.string().default('true'),
  }),
  unlabel: strict({ ...common, ...targets, key: z.string().min(1).default('aegis.io/disable') }),
  annotate: strict({
    ...common,
    ...targets,
    key: z.string().min(1).default('aegis.io/pause'),
    value: z.string().default('true'),
  }),
  unannotate: strict({ ...common, ...targets, key: z.string().min(1).default('aegis.io/pause') }),
  'metrics-outage': strict({ ...common, for: DurationSchema }),
  'metrics-slow': strict({ ...common, latency: DurationSchema, for: DurationSchema }),
  'metrics-garbage': strict({ ...common, count: z.int().positive().default(1) }),
  'metrics-partial': strict({ ...common, count: z.int().positive().default(1) }),
  'exporter-down': strict({
    ...common,
    ...targets,
    signal: z.string().min(1),
    for: DurationSchema.optional(),
  }),
  'exporter-up': strict({ ...common, ...targets, signal: z.string().min(1) }),
  'api-outage': strict({ ...common, for: DurationSchema }),
  'api-errors': strict({
    ...common,
    rate: z.number().gt(0).max(1),
    for: DurationSchema,
    methods: z.array(z.string().min(1)).min(1).optional(),
  }),
  'api-fail-next': strict({
    ...common,
    method: z.string().min(1),
    count: z.int().positive().default(1),
  }),
  'ib-flap': strict({
    ...common,
    ...targets,
    device: DeviceRef.optional(),
    count: z.int().positive().max(10_000).default(5),
    period: DurationSchema.default(60_000),
    down: DurationSchema.default(10_000),
    persistence: z.enum(PERSISTENCES).optional(),
  }),
  restart: strict({ ...common }),
  'leader-overlap': strict({ ...common, for: DurationSchema }),
  jobs: strict({
    ...common,
    ...targets,
    kind: z.enum(JOB_KINDS),
    outcome: z.enum(['Succeeded', 'Failed']).optional(),
    exitCode: z.int().min(0).max(255).optional(),
    duration: DurationSchema.optional(),
    pending: DurationSchema.optional(),
    reset: z.boolean().optional(),
  }),
} as const;

/** Every timeline `event:` value. */
export type EventName = keyof typeof EVENT_SCHEMAS;
/** The `event:` values, in documentation order. */
export const EVENT_NAMES = Object.keys(EVENT_SCHEMAS) as EventName[];

/** `3` (exactly 3) or `{min, max}`. */
const CountSchema = z.union([
  z.int().nonnegative(),
  strict({ min: z.number().optional(), max: z.number().optional() }),
]);
const StepStatusSchema = z.enum(['Succeeded', 'Failed', 'Canceled', 'Held', 'DryRun', 'started']);
const window = { after: DurationSchema.optional(), by: DurationSchema.optional() };
const described = { description: z.string().optional() };

/** One schema per expectation kind; the kind is the first key of this list found in the item. */
export const EXPECT_SCHEMAS = {
  did: strict({
    ...described,
    ...window,
    did: z.string().min(1),
    node: NodeRef.optional(),
    condition: z.string().min(1).optional(),
    status: StepStatusSchema.optional(),
    count: CountSchema.optional(),
  }),
  never: strict({
    ...described,
    ...window,
    never: z.string().min(1),
    node: NodeRef.optional(),
    condition: z.string().min(1).optional(),
    status: StepStatusSchema.optional(),
  }),
  sequence: strict({
    ...described,
    sequence: z.array(z.string().min(1)),
    node: NodeRef,
    status: StepStatusSchema.optional(),
  }),
  metric: strict({
    ...described,
    metric: z.string().min(1),
    labels: z.record(z.string(), z.string()).optional(),
    value: CountSchema.optional(),
  }),
  touched: strict({
    ...described,
    touched: CountSchema,
    action: z.string().min(1).optional(),
  }),
  healthyUntouched: strict({ ...described, healthyUntouched: z.literal(true) }),
  peak: strict({
    ...described,
    peak: z.enum(['faulty', 'cordoned', 'cordonedByAegis', 'openTickets', 'inflight']),
    max: z.int().nonnegative(),
  }),
  breaker: strict({ ...described, breaker: z.enum(['tripped', 'never-tripped']) }),
  jobs: strict({
    ...described,
    ...window,
    jobs: z.union([z.enum(JOB_KINDS), z.literal('any')]),
    node: NodeRef.optional(),
    count: CountSchema.optional(),
  }),
  events: strict({
    ...described,
    ...window,
    events: z.string().min(1),
    node: NodeRef.optional(),
    type: z.enum(['Normal', 'Warning']).optional(),
    message: z.string().min(1).optional(),
    count: CountSchema.optional(),
  }),
  evictions: strict({
    ...described,
    ...window,
    evictions: CountSchema,
    node: NodeRef.optional(),
    result: z.enum(['evicted', 'blocked', 'gone']).optional(),
    namespace: z.string().min(1).optional(),
  }),
  noForceDelete: strict({
    ...described,
    ...window,
    noForceDelete: z.literal(true),
    node: NodeRef.optional(),
    namespace: z.string().min(1).optional(),
  }),
  node: strict({
    ...described,
    node: NodeRef,
    schedulable: z.boolean().optional(),
    ticket: z
      .union([
        z.literal('none'),
        z.null(),
        strict({
          status: z
            .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
            .transform((v) => (typeof v === 'string' ? [v] : v))
            .optional(),
          supervisor: z.string().min(1).optional(),
          condition: z.string().min(1).optional(),
        }),
      ])
      .optional(),
    power: z.enum(['on', 'off', 'booting']).optional(),
    reboots: CountSchema.optional(),
    annotations: z.record(z.string().min(1), z.union([z.string(), z.null()])).optional(),
  }),
} as const;

/** Every expectation kind, in the order the kind key is looked for. */
export type ExpectKind = keyof typeof EXPECT_SCHEMAS;
/** The expectation kinds, in the order their key is looked for (`node` last). */
export const EXPECT_KINDS = Object.keys(EXPECT_SCHEMAS) as ExpectKind[];

/** The top level of a scenario file. Timeline and expectation items are checked one by one. */
export const ScenarioFileSchema = strict({
  name: z.string().min(1).optional(),
  description: z.string().optional(),
  seed: z.int().nonnegative().default(1),
  fleet: strict({
    nodes: z.int().min(1).max(100_000),
    gpusPerNode: z.int().min(1).max(16).optional(),
    racksOf: z.int().positive().optional(),
    leavesOf: z.int().positive().optional(),
    controlPlaneNodes: z.int().min(0).max(9).optional(),
    bootTime: DurationSchema.optional(),
  }),
  duration: DurationSchema,
  interval: DurationSchema.optional(),
  fastForward: z.union([z.boolean(), strict({ quietFor: DurationSchema })]).optional(),
  config: strict({
    safety: z.record(z.string(), z.unknown()).optional(),
    sop: z.record(z.string(), z.unknown()).optional(),
    inspect: z.record(z.string(), z.unknown()).optional(),
    profiles: z.record(z.string(), z.unknown()).optional(),
    quarantine: z.record(z.string(), z.unknown()).optional(),
  }).optional(),
  /** Training workloads (one pod per node, guarded by a PodDisruptionBudget) drains must evict. */
  workloads: z
    .array(
      strict({
        name: z
          .string()
          .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a workload name is a DNS label (a-z, 0-9, -)'),
        namespace: z.string().min(1).optional(),
        nodes: NodesRef,
        minAvailable: z.int().nonnegative().optional(),
      }),
    )
    .default([]),
  timeline: z.array(z.record(z.string(), z.unknown())).default([]),
  expect: z.array(z.record(z.string(), z.unknown())).default([]),
});

/** A training workload: one pod per node, and its PodDisruptionBudget. */
export interface WorkloadSpec {
  readonly name: string;
  readonly namespace?: string;
  readonly nodes: readonly string[];
  /** Pods that must stay available (default: all but one). */
  readonly minAvailable?: number;
}

/** A fleet-wide count bound. */
export interface CountBound {
  readonly min?: number;
  readonly max?: number;
}

/** What a timeline event does, with node references resolved to names. */
export type TimelineAction =
  | {
      readonly kind: 'fault';
      readonly nodes: readonly string[];
      readonly condition: string;
      readonly device?: string;
      readonly persistence?: Persistence;
      readonly forMs?: number;
    }
  | {
      readonly kind: 'recover';
      readonly nodes: readonly string[];
      readonly condition?: string;
      readonly device?: string;
    }
  | { readonly kind: 'cordon' | 'uncordon' | 'power-on'; readonly nodes: readonly string[] }
  | { readonly kind: 'takeover'; readonly nodes: readonly string[]; readonly supervisor: string }
  | {
      readonly kind: 'close-ticket';
      readonly nodes: readonly string[];
      readonly status: 'resolved' | 'closed';
      /** The human who closes it (becomes the ticket's supervisor). */
      readonly by: string;
      readonly conclusion?: string;
    }
  | {
      readonly kind: 'ib-flap';
      readonly nodes: readonly string[];
      /** The HCA. */
      readonly device: string;
      readonly port: string;
      readonly count: number;
      readonly periodMs: number;
      readonly downMs: number;
      readonly persistence?: Persistence;
    }
  | { readonly kind: 'restart' }
  | { readonly kind: 'leader-overlap'; readonly forMs: number }
  | {
      readonly kind: 'label' | 'annotate';
      readonly nodes: readonly string[];
      readonly key: string;
      readonly value: string | null;
    }
  | { readonly kind: 'metrics-outage' | 'api-outage'; readonly forMs: number }
  | { readonly kind: 'metrics-slow'; readonly latencyMs: number; readonly forMs: number }
  | { readonly kind: 'metrics-garbage' | 'metrics-partial'; readonly count: number }
  | {
      readonly kind: 'exporter-down';
      readonly nodes: readonly string[];
      readonly signal: string;
      readonly forMs?: number;
    }
  | { readonly kind: 'exporter-up'; readonly nodes: readonly string[]; readonly signal: string }
  | {
      readonly kind: 'api-errors';
      readonly rate: number;
      readonly forMs: number;
      readonly methods?: readonly string[];
    }
  | { readonly kind: 'api-fail-next'; readonly method: string; readonly count: number }
  | {
      readonly kind: 'jobs';
      readonly job: JobKind;
      readonly nodes?: readonly string[];
      readonly behaviour?: {
        readonly outcome?: 'Succeeded' | 'Failed';
        readonly exitCode?: number;
        readonly durationMs?: number;
        readonly pendingMs?: number;
      };
    };

/** A timeline event at its offset from the start of the run. */
export interface TimelineEvent {
  readonly atMs: number;
  readonly line: number;
  readonly note?: string;
  readonly action: TimelineAction;
}

/** A step status filter: a StepEvent status, or `started` (the step began, whatever its end). */
export type StatusFilter = 'Succeeded' | 'Failed' | 'Canceled' | 'Held' | 'DryRun' | 'started';

/** A resolved expectation. */
export type ExpectationSpec =
  | {
      readonly kind: 'did' | 'never';
      readonly action: string;
      readonly node?: string;
      /** Only steps taken for this condition (ticket changes: tickets of this condition). */
      readonly condition?: string;
      readonly status: StatusFilter;
      readonly count: CountBound;
      readonly afterMs?: number;
      readonly byMs?: number;
    }
  | {
      readonly kind: 'sequence';
      readonly node: string;
      readonly status: StatusFilter;
      readonly actions: readonly string[];
    }
  | {
      readonly kind: 'metric';
      readonly name: string;
      readonly labels: Readonly<Record<string, string>>;
      readonly value: CountBound;
    }
  | { readonly kind: 'touched'; readonly count: CountBound; readonly action?: string }
  | { readonly kind: 'healthyUntouched' }
  | { readonly kind: 'peak'; readonly series: PeakSeries; readonly max: number }
  | { readonly kind: 'breaker'; readonly tripped: boolean }
  | {
      readonly kind: 'jobs';
      readonly job: JobKind | 'any';
      readonly node?: string;
      readonly count: CountBound;
      readonly afterMs?: number;
      readonly byMs?: number;
    }
  | {
      readonly kind: 'events';
      /** An Event reason (`AegisRebootSucceeded`, `AegisDiagnosis` …) or `any`. */
      readonly reason: string;
      readonly node?: string;
      readonly type?: 'Normal' | 'Warning';
      /** A substring the message must contain. */
      readonly message?: string;
      readonly count: CountBound;
      readonly afterMs?: number;
      readonly byMs?: number;
    }
  | {
      readonly kind: 'evictions';
      readonly count: CountBound;
      readonly node?: string;
      readonly result?: 'evicted' | 'blocked' | 'gone';
      readonly namespace?: string;
      readonly afterMs?: number;
      readonly byMs?: number;
    }
  | {
      readonly kind: 'noForceDelete';
      readonly node?: string;
      readonly namespace?: string;
      readonly afterMs?: number;
      readonly byMs?: number;
    }
  | {
      readonly kind: 'node';
      readonly node: string;
      readonly schedulable?: boolean;
      readonly ticket?: null | {
        readonly status?: readonly string[];
        readonly supervisor?: string;
        readonly condition?: string;
      };
      readonly power?: 'on' | 'off' | 'booting';
      readonly reboots?: CountBound;
      /** Raw final annotations: the exact value, or null for absent. */
      readonly annotations?: Readonly<Record<string, string | null>>;
    };

/** Fleet series whose peak over the run an expectation can bound. */
export type PeakSeries = 'faulty' | 'cordoned' | 'cordonedByAegis' | 'openTickets' | 'inflight';

/** An expectation with the words that describe it in reports. */
export interface Expectation {
  readonly description: string;
  readonly line: number;
  readonly spec: ExpectationSpec;
}

/** The shape of the simulated fleet. */
export interface FleetSpec {
  readonly nodes: number;
  readonly gpusPerNode: number;
  readonly racksOf?: number;
  readonly leavesOf?: number;
  readonly controlPlaneNodes: number;
  readonly bootTimeMs?: number;
}

/** A validated scenario, ready to run. */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Where it came from, for messages. */
  readonly source: string;
  readonly seed: number;
  readonly fleet: FleetSpec;
  readonly durationMs: number;
  readonly intervalMs: number;
  /** Skip quiet stretches (see docs/scenarios.md); null runs every cycle. */
  readonly fastForward: { readonly quietForMs: number } | null;
  readonly config: Config;
  readonly workloads: readonly WorkloadSpec[];
  readonly timeline: readonly TimelineEvent[];
  readonly expect: readonly Expectation[];
}
