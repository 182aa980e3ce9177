/**
 * Node-group behaviour profiles (docs/profiles.md): what automation may do on a node, chosen per
 * node group by label selectors in the config (`profiles`), evaluated at every step before
 * anything is written. Pure: labels and a step in, a verdict out.
 *
 * - `full`: the whole ladder (the default for every node: no profile configured, no change).
 * - `observe-only`: nothing is written for the node — no ticket, no cordon, no Job, no Event on it.
 *   What the ladder would have done shows in the step log (`DryRun`, "profile observe-only"), the
 *   log and `aegis_profile_withheld_steps_total`.
 * - `cordon-only`: Aegis cordons (a ticket records it); every further step is replaced by a
 *   hand-off to a human (`sop.humanSupervisor`), who takes it from there.
 * - `approval-required`: every step that changes the node beyond a cordon (drain, reboot, power
 *   cycle, shutdown, repair, remedy, pod restart, forced pod deletion) waits for an operator's
 *   approval (the approval gate: `kubectl aegis approve NODE`, or dismiss to hand it to a human).
 */
import { Action, type Step } from '../sop/sop.js';

/** The profiles, by name. */
export const PROFILE_NAMES = ['full', 'observe-only', 'cordon-only', 'approval-required'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

/** The config's `profiles` section (src/config/schema.ts). */
export interface ProfilesConfig {
  /** The profile of a node no group selects. */
  readonly default: ProfileName;
  /** Node groups in order; the first whose selector matches a node's labels gives its profile. */
  readonly groups: readonly {
    readonly name?: string | undefined;
    /** Every label must be on the node with this value (a Kubernetes matchLabels). */
    readonly selector: Readonly<Record<string, string>>;
    readonly profile: ProfileName;
  }[];
}

/** No group, every node `full`: the behaviour without profiles. */
export const NO_PROFILES: ProfilesConfig = { default: 'full', groups: [] };

/** The profile of one node and the group that chose it (absent: the default applied). */
export interface NodeProfile {
  readonly profile: ProfileName;
  readonly group?: string;
}

/** True when the config sets any profile other than `full` (steps then record their profile). */
export function profilesConfigured(cfg: ProfilesConfig): boolean {
  return cfg.default !== 'full' || cfg.groups.length > 0;
}

/** The profile of a node with these labels: the first matching group's, else the default. */
export function profileOf(
  labels: Readonly<Record<string, string>>,
  cfg: ProfilesConfig,
): NodeProfile {
  for (const [i, g] of cfg.groups.entries()) {
    if (Object.entries(g.selector).every(([k, v]) => labels[k] === v))
      return { profile: g.profile, group: g.name ?? `groups[${String(i)}]` };
  }
  return { profile: cfg.default };
}

/** `cordon-only (group wave-2)`: how a profile reads in holds, hand-offs and logs. */
export function describeProfile(p: NodeProfile): string {
  return p.group === undefined ? p.profile : `${p.profile} (group ${p.group})`;
}

/** Steps `approval-required` holds for an operator: every change to the node beyond a cordon. */
export const APPROVAL_REQUIRED_ACTIONS: ReadonlySet<string> = new Set<string>([
  Action.Drain,
  Action.Reboot,
  Action.Shutdown,
  Action.PowerCycle,
  Action.Repair,
  Action.Remedy,
  Action.RestartPod,
  Action.ForceDeletePods,
]);

/** What `cordon-only` still lets automation do. */
const CORDON_ONLY_ACTIONS: ReadonlySet<string> = new Set<string>([
  Action.Cordon,
  Action.HandToHuman,
]);

/** What a profile makes of a step. */
export type ProfileVerdict =
  /** Runs as decided (it may still need approval: see `needsApproval`). */
  | { readonly kind: 'run' }
  /** Observe only: nothing is written; the step is what would have run. */
  | { readonly kind: 'observe' }
  /** Replaced by this step (cordon-only: a hand-off instead of anything past the cordon). */
  | { readonly kind: 'replace'; readonly step: Step };

/**
 * What the node's profile makes of `step`. A step already begun (`seq` set: its ticket entry is
 * Running, its Job may be running) is resumed under every profile but observe-only, so a profile
 * changed mid-step never leaves a Job unfollowed; observe-only writes nothing, not even that.
 */
export function profileVerdict(p: NodeProfile, step: Step): ProfileVerdict {
  switch (p.profile) {
    case 'observe-only':
      return { kind: 'observe' };
    case 'cordon-only':
      if (step.seq !== undefined || CORDON_ONLY_ACTIONS.has(step.action)) return { kind: 'run' };
      return {
        kind: 'replace',
        step: {
          action: Action.HandToHuman,
          reason: `profile ${describeProfile(p)}: Aegis only cordons; ${step.action} (${step.reason}) is left to a human`,
          then: 'assign',
        },
      };
    case 'full':
    case 'approval-required':
      return { kind: 'run' };
  }
}

/** True when the profile holds this (new) step for an operator's approval. */
export function needsApproval(p: NodeProfile, step: Step): boolean {
  return (
    p.profile === 'approval-required' &&
    step.seq === undefined &&
    APPROVAL_REQUIRED_ACTIONS.has(step.action)
  );
}
