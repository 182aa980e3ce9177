import type { Clock } from '../core/clock.js';
import type { ConditionInstance, NodeInfo, NodeStatus } from '../core/types.js';
import type { Ticket } from '../ticket/ticket.js';
import type { ValidationPolicy } from '../jobs/validation.js';
import type { QuarantinePolicy } from './quarantine.js';

/** `<domain>.<action>`, e.g. `gpu.reboot`. Appears in tickets, metrics and config. */
export type SopId = `${string}.${string}`;

/** What an SOP step does. Names are the ticket's workflow `action` values. */
export const Action = {
  Cordon: 'Cordon',
  Uncordon: 'Uncordon',
  Drain: 'Drain',
  Diagnose: 'Diagnose',
  Remedy: 'Remedy',
  RestartPod: 'RestartPod',
  Repair: 'Repair',
  Reboot: 'Reboot',
  Shutdown: 'Shutdown',
  /**
   * Out-of-band power cycle through the node's BMC (IPMI or Redfish): off, confirmed Off (only then
   * are the node's pods treated as gone), on, confirmed On, then a new boot id. Needs no kubelet.
   */
  PowerCycle: 'PowerCycle',
  Healthcheck: 'Healthcheck',
  /**
   * Validation before return to service (config `validation`): the `validate_node` Job — DCGM
   * diagnostics, an NCCL all-reduce, an IB loopback — judged by src/jobs/validation.ts; a pass
   * certifies the node (`aegis.io/certified-until`).
   */
  Validate: 'Validate',
  /**
   * Take one GPU out of scheduling (a DRA DeviceTaintRule, or the node taint) instead of the
   * node: `params.device` is the GPU index. Released by the controller once the GPU is healthy.
   */
  Quarantine: 'Quarantine',
  ForceDeletePods: 'ForceDeletePods',
  HandToHuman: 'HandToHuman',
} as const;
export type Action = (typeof Action)[keyof typeof Action];

/** Actions that interrupt workloads: gated by per-action concurrency and failure-domain caps. */
export const DISRUPTIVE_ACTIONS: ReadonlySet<Action> = new Set<Action>([
  Action.Drain,
  Action.Reboot,
  Action.Shutdown,
  Action.PowerCycle,
]);

/** Ticket transition applied when a step succeeds. */
export type Then = 'resolve' | 'close' | 'assign';

/** One step of a ladder, decided by `evaluate`. */
export interface Step {
  readonly action: Action;
  /** Why this step, in words (goes to the ticket). */
  readonly reason: string;
  /** Remedy action, diagnose type, pod selector… (validated before reaching a Job). */
  readonly params?: Readonly<Record<string, string>>;
  /**
   * Sequence number of the step in the ticket. Set by evaluate when resuming a step a crashed
   * daemon left `Running` (so the same Job is followed), otherwise assigned by the runner.
   */
  readonly seq?: number;
  /** When resuming: when the interrupted step began (ms), so a vanished Job is not relaunched late. */
  readonly resumeSinceMs?: number;
  /** When resuming a disruptive step: the node's boot id when it began (a changed one proves the reboot). */
  readonly resumeBootId?: string;
  readonly then?: Then;
}

/** Result of `evaluate`: act on a step, skip (nothing to do now), or nothing applies. */
export type Verdict =
  | { readonly kind: 'act'; readonly step: Step }
  | { readonly kind: 'skip'; readonly reason: string };

/** Result of `execute`. Expected failures are values, not exceptions. */
export interface Outcome {
  readonly status: 'Succeeded' | 'Failed' | 'Canceled';
  readonly message?: string;
  readonly exitCode?: number;
  readonly diagnosis?: readonly { hint: string; cmd: string; result: string }[];
  /**
   * The Job's log tail, for an SOP that reads its own Job's output (the validation judge). Never
   * written to the ticket (only `message` and `diagnosis` are).
   */
  readonly logs?: readonly string[];
}

/** Site policy an SOP reads (from config), so evaluate stays pure. */
export interface SopPolicy {
  /** 0: record, cheap remedies and hand-off only; 1+: drain, reboot and shutdown allowed. */
  readonly level: number;
  /** Wait after a remedy/reboot/repair before the next rung, so signals can refresh. */
  readonly settleMs: number;
  /** Label keys marking nodes that must never be shut down by automation. */
  readonly criticalLabels: readonly string[];
  /** Supervisor written to a ticket handed to humans. */
  readonly humanSupervisor: string;
  /** Whether the recovery loop may uncordon nodes a human cordoned. */
  readonly uncordonManualCordons: boolean;
  /** Ticket age after which automation hands off (the original's 48 h). */
  readonly maxTicketAgeMs: number;
  /**
   * Pod selectors (`key=value`) of the RestartPod rungs, by target (config `sop.podSelectors`);
   * a target left out uses DEFAULT_POD_SELECTORS.
   */
  readonly podSelectors?: Readonly<Partial<Record<PodTarget, string>>>;
  /**
   * Disruptive steps whose drain is blocked (a PodDisruptionBudget, pods that will not go): after
   * `maxAttempts` cancelled attempts, or `maxMs` after the first, the ladder hands off; attempts
   * are at least `retryMs` apart. Default DEFAULT_BLOCKED_DRAIN (config `sop.blockedDrain`).
   */
  readonly blockedDrain?: Readonly<BlockedDrainPolicy>;
  /** Validation before return to service (config `validation`); absent or off: a health check. */
  readonly validation?: ValidationPolicy;
  /** GPU-level quarantine (config `quarantine`); absent or disabled: faults cordon the node. */
  readonly quarantine?: QuarantinePolicy;
}

/** What a RestartPod rung restarts: one of the node's agent pods, by a configurable selector. */
export type PodTarget =
  'gpuDevicePlugin' | 'rdmaDevicePlugin' | 'sriovDevicePlugin' | 'dcgmExporter';

/**
 * Default pod selectors. The GPU device plugin's is the label the NVIDIA GPU Operator gives the
 * pods of its `nvidia-device-plugin-daemonset` (NVIDIA/gpu-operator,
 * assets/state-device-plugin/0500_daemonset.yaml: `app: nvidia-device-plugin-daemonset`); the
 * plain k8s-device-plugin manifest uses `name=nvidia-device-plugin-ds` (the original's default).
 * RDMA and SR-IOV are the original's defaults; the exporter is dcgm-exporter's chart label.
 */
export const DEFAULT_POD_SELECTORS: Readonly<Record<PodTarget, string>> = {
  gpuDevicePlugin: 'app=nvidia-device-plugin-daemonset',
  rdmaDevicePlugin: 'name=rdma-shared-dp-ds',
  sriovDevicePlugin: 'app=sriovdp',
  dcgmExporter: 'app.kubernetes.io/name=dcgm-exporter',
};

/** Bounds on retrying a disruptive step whose drain is blocked. */
export interface BlockedDrainPolicy {
  readonly maxAttempts: number;
  readonly retryMs: number;
  readonly maxMs: number;
}

/** Three tries at least 10 minutes apart, and never past an hour after the first. */
export const DEFAULT_BLOCKED_DRAIN: BlockedDrainPolicy = {
  maxAttempts: 3,
  retryMs: 10 * 60_000,
  maxMs: 60 * 60_000,
};

/** Everything `evaluate` may look at: the node, its ticket and the time. Read-only. */
export interface NodeView {
  readonly info: NodeInfo;
  readonly ticket: Ticket | null;
  readonly nowMs: number;
  readonly policy: SopPolicy;
}

/** The condition an SOP is asked to serve, with the node's whole status. */
export interface SopStatus {
  readonly condition: ConditionInstance;
  readonly node: NodeStatus;
}

/** Narrow, audited actions an SOP may take. It never sees the raw clients or the ticket store. */
export interface ApiBridge {
  readonly clock: Clock;
  cordon(node: string, signal: AbortSignal): Promise<Outcome>;
  uncordon(node: string, signal: AbortSignal): Promise<Outcome>;
  /**
   * Evicts pods through the Eviction API (PDBs honoured, DaemonSet and mirror pods left), after
   * asking the pods the site's `drain` config names to checkpoint. `seq` (the ticket step) names
   * the request, so a resumed step waits for its own request instead of asking again.
   */
  drain(
    node: string,
    signal: AbortSignal,
    request?: { readonly seq?: number | undefined },
  ): Promise<Outcome>;
  /**
   * Runs a Job from a template and waits for it. `seq` makes the Job name deterministic, so a
   * resumed step follows the Job it launched before a crash instead of launching another.
   */
  runJob(
    request: {
      kind: JobKindName;
      node: string;
      params: Readonly<Record<string, string>>;
      seq: number;
      /** Set when resuming a step: a Job missing long after this time is not relaunched. */
      resumeSinceMs?: number;
      /** Set when resuming a disruptive step: the boot id when it began. */
      resumeBootId?: string;
    },
    signal: AbortSignal,
  ): Promise<Outcome>;
  /** Deletes the node's pods matching `selector` (`k=v`) so their controller restarts them. */
  restartPods(node: string, selector: string, signal: AbortSignal): Promise<Outcome>;
  /** Force-deletes pods stuck terminating on the node. */
  forceDeleteTerminatingPods(node: string, signal: AbortSignal): Promise<Outcome>;
  /** Reads the node's readiness and boot id (a changed boot id proves a reboot). */
  nodeState(
    node: string,
    signal: AbortSignal,
  ): Promise<{ readonly ready: boolean | 'Unknown'; readonly bootId?: string }>;
  /** Out-of-band power through the nodes' BMCs; absent when `bmc.enabled` is false. */
  readonly outOfBand?: OutOfBandBridge;
  /**
   * Writes (a time) or removes (null) the node's `aegis.io/certified-until` annotation, and
   * nothing else: what a passed (or failed) validation certifies.
   */
  certify?(node: string, untilMs: number | null, signal: AbortSignal): Promise<void>;
  /** GPU-level quarantine; absent when `quarantine.enabled` is false. */
  readonly quarantine?: QuarantineBridge;
}

/** The device side of the bridge (docs/remediation.md, GPU-level quarantine). */
export interface QuarantineBridge {
  /**
   * Takes GPU `device` (its index) of the node out of scheduling: a DRA DeviceTaintRule where the
   * cluster serves them, else the node taint; recorded on the node (QUARANTINE_ANNOTATION) so
   * the release removes exactly that. Idempotent: a device already quarantined is not touched.
   */
  isolate(
    request: { node: string; device: string; condition: string },
    signal: AbortSignal,
  ): Promise<Outcome>;
}

/**
 * Exit codes of a PowerCycle step (recorded in the ticket's `exitCode`): what went wrong, plus
 * `AfterCommand` (10) when a power command had already been sent. The ladders try a failed power
 * cycle once more only when nothing was sent and the BMC may answer later (unreachable, timeout,
 * refused); wrong credentials, a missing BMC, a node found powered off or any failure after a
 * power command go to a human: a second power cycle is never sent for the same fault.
 */
export const POWER_CYCLE_EXIT = {
  NotConfigured: 70,
  Unreachable: 71,
  AuthFailed: 72,
  Timeout: 73,
  BmcError: 74,
  /** The BMC reports the node already off: someone shut it down; it is not powered on. */
  FoundOff: 75,
  /** Powered on, but no new boot id / not Ready in time. */
  NotBack: 76,
  AfterCommand: 10,
} as const;

/** The BMC side of the bridge (docs/remediation.md). */
export interface OutOfBandBridge {
  /**
   * The node's BMC (`describe`, e.g. `ipmi://10.0.0.5:623`) or why it has none. Pure (the config
   * and the node object): `evaluate` may call it.
   */
  bmcOf(node: NodeInfo): { readonly describe: string } | { readonly reason: string };
  /** A node NotReady this long is power-cycled (config `bmc.notReadyAfterMs`). */
  readonly notReadyAfterMs: number;
  /**
   * Power-cycles the node through its BMC, exactly once per step however often the daemon is
   * killed: progress is recorded on the node before each power command, and a resumed step
   * (`resumeSinceMs`, `resumeBootId` set) never powers off again once the power-on was recorded.
   * A Ready node is drained first. The outcome's exitCode says what went wrong (POWER_CYCLE_EXIT).
   */
  powerCycle(
    request: {
      node: string;
      seq: number;
      resumeSinceMs?: number;
      resumeBootId?: string;
    },
    signal: AbortSignal,
  ): Promise<Outcome>;
}

/** Job template names (mirrors src/k8s/cluster.ts JobKind, kept here so plug-ins import one file). */
export type JobKindName =
  | 'restart_node'
  | 'shutdown_node'
  | 'healthcheck_node'
  | 'repair_node'
  | 'remedy_node'
  | 'diagnose_node'
  | 'validate_node';

/** A live SOP, created once per daemon by `createInstance`. */
export interface SopInstance {
  /** Pure and synchronous: no I/O, no clock reads (use `node.nowMs`). Called before every step. */
  evaluate(node: NodeView, status: SopStatus): Verdict;
  /** Performs one step. Idempotent per ticket step; lets an abort propagate. */
  execute(node: NodeView, status: SopStatus, step: Step, signal: AbortSignal): Promise<Outcome>;
}

/** An SOP plug-in: the three-stage contract createInstance -> evaluate -> execute. */
export interface Sop {
  readonly id: SopId;
  readonly description: string;
  /** Extra condition names this SOP serves, besides catalogue entries naming it. */
  readonly handles?: readonly string[];
  createInstance(bridge: ApiBridge): SopInstance;
}

/**
 * Identity helper giving plug-in authors inference and checks without a base class.
 * @example
 * export const sop = defineSop({
 *   id: 'gpu.my-fix', description: 'restart my agent',
 *   createInstance: (bridge) => ({ evaluate: () => ({ kind: 'skip', reason: 'x' }), execute: … }),
 * });
 */
export const defineSop = <const T extends Sop>(sop: T): T => sop;
