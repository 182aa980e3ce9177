/**
 * Validation of every value that reaches a Job template (and from there the ops entrypoint's argv
 * on a privileged, host-PID pod). Each JobKind has an allow-list of params with strict patterns;
 * anything else is rejected with INVALID_INPUT naming the param. deploy/ops/entrypoint.sh checks
 * the same patterns again, so neither side trusts the other.
 */
import { ErrorCode, HealError } from '../core/errors.js';
import { isValidNodeName } from '../core/types.js';
import { JOB_NAMESPACE, type JobKind, type JobRequest } from '../k8s/cluster.js';
import { toLabelValue } from './job-name.js';

/** Remedy actions the ops entrypoint implements (`entrypoint.sh remedy <Action>`). */
export const RemedyAction = {
  DropCache: 'DropCache',
  RestartKubelet: 'RestartKubelet',
  RestartFabricmanager: 'RestartFabricmanager',
  EnableGpuPersistence: 'EnableGpuPersistence',
  ConfigPeerMem: 'ConfigPeerMem',
  BreakDeadlock: 'BreakDeadlock',
} as const;
export type RemedyAction = (typeof RemedyAction)[keyof typeof RemedyAction];

/**
 * Device or instance id (GPU index, PCI BDF, IB device, Xid code). The first character must be
 * alphanumeric so that a value can never be read as a command-line option.
 */
export const PARAM_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_./:-]{0,63}$/;
/** Diagnose type: a condition name such as `GpuRowRemappingFailure` or `Xid79`. */
export const DIAGNOSE_TYPE_PATTERN = /^[A-Za-z][A-Za-z0-9]{0,63}$/;
/** DNS-1123 label: Job names (they also become pod label values, hence 63). */
export const JOB_NAME_PATTERN = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Container image reference (registry/repo:tag or @digest); no spaces or shell syntax. */
export const IMAGE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$/;
/** Validation: DCGM diagnostic level, 0 (not run) to 4. */
export const VALIDATE_DCGM_LEVEL_PATTERN = /^[0-4]$/;
/** Validation: GPUs of the all-reduce, `0` (not run), `all` (every GPU of the node) or 1-64. */
export const VALIDATE_NCCL_GPUS_PATTERN = /^(0|all|[1-9]|[1-5][0-9]|6[0-4])$/;
/** Validation: the IB loopback's HCA, `none` (not run), `auto` (the first active port) or a name. */
export const VALIDATE_IB_DEVICE_PATTERN = /^(none|auto|[A-Za-z][A-Za-z0-9_]{0,31})$/;
/** Longest activeDeadlineSeconds accepted (one day). */
export const MAX_DEADLINE_SECONDS = 86_400;

interface ParamSpec {
  readonly required: boolean;
  readonly pattern: RegExp;
}

const REMEDY_ACTION_PATTERN = new RegExp(`^(${Object.values(RemedyAction).join('|')})$`);

/** The allow-list: which params each template takes. */
const PARAM_SPECS: Readonly<Record<JobKind, Readonly<Record<string, ParamSpec>>>> = {
  restart_node: {},
  shutdown_node: {},
  healthcheck_node: {},
  repair_node: {},
  remedy_node: { ACTION: { required: true, pattern: REMEDY_ACTION_PATTERN } },
  diagnose_node: {
    TYPE: { required: true, pattern: DIAGNOSE_TYPE_PATTERN },
    ID: { required: false, pattern: PARAM_ID_PATTERN },
  },
  validate_node: {
    DCGM_LEVEL: { required: true, pattern: VALIDATE_DCGM_LEVEL_PATTERN },
    NCCL_GPUS: { required: true, pattern: VALIDATE_NCCL_GPUS_PATTERN },
    IB_DEVICE: { required: true, pattern: VALIDATE_IB_DEVICE_PATTERN },
  },
};

/** Names of the params a kind accepts (for docs and error messages). */
export function allowedParams(kind: JobKind): readonly string[] {
  return Object.keys(PARAM_SPECS[kind]);
}

/**
 * Checks `params` against the kind's allow-list and returns them with every optional param
 * present ('' when absent), so templates can reference them unconditionally.
 */
export function validateJobParams(
  kind: JobKind,
  params: Readonly<Record<string, string>>,
): Readonly<Record<string, string>> {
  const specs = PARAM_SPECS[kind];
  for (const name of Object.keys(params)) {
    if (!Object.hasOwn(specs, name)) {
      throw invalid(`param ${name} is not accepted by ${kind} (allowed: ${listOf(kind)})`);
    }
  }
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const value = Object.hasOwn(params, name) ? params[name] : undefined;
    if (value === undefined || value === '') {
      if (spec.required) throw invalid(`param ${name} is required by ${kind}`);
      out[name] = '';
      continue;
    }
    if (!spec.pattern.test(value)) {
      throw invalid(`param ${name} of ${kind} is invalid: ${JSON.stringify(value)}`);
    }
    out[name] = value;
  }
  return out;
}

/** Throws INVALID_INPUT unless `node` is a valid Kubernetes node name. */
export function assertNodeName(node: string): void {
  if (!isValidNodeName(node)) throw invalid(`node name is invalid: ${JSON.stringify(node)}`);
}

/** Options of `toTemplateVars` beyond the request itself. */
export interface TemplateVarsOptions {
  /** Image of the ops container (the `{{IMAGE}}` placeholder). */
  readonly image: string;
}

/**
 * Every placeholder value of one Job: built-ins (NODE, NODE_LABEL, NAME, NAMESPACE, DEADLINE,
 * IMAGE) plus the kind's validated params. The only way values reach a template.
 */
export function toTemplateVars(
  request: JobRequest,
  options: TemplateVarsOptions,
): Readonly<Record<string, string | number>> {
  assertNodeName(request.node);
  if (!JOB_NAME_PATTERN.test(request.name)) {
    throw invalid(`job name is not a DNS-1123 label: ${JSON.stringify(request.name)}`);
  }
  const deadline = request.activeDeadlineSeconds;
  if (!Number.isInteger(deadline) || deadline < 1 || deadline > MAX_DEADLINE_SECONDS) {
    throw invalid(`activeDeadlineSeconds must be an integer in 1..${MAX_DEADLINE_SECONDS}`);
  }
  if (!IMAGE_PATTERN.test(options.image)) {
    throw invalid(`ops image is invalid: ${JSON.stringify(options.image)}`);
  }
  return {
    ...validateJobParams(request.kind, request.params),
    NODE: request.node,
    NODE_LABEL: toLabelValue(request.node),
    NAME: request.name,
    NAMESPACE: JOB_NAMESPACE,
    DEADLINE: deadline,
    IMAGE: options.image,
  };
}

function listOf(kind: JobKind): string {
  const names = allowedParams(kind);
  return names.length === 0 ? 'none' : names.join(', ');
}

function invalid(message: string): HealError {
  return new HealError(ErrorCode.InvalidInput, message);
}
