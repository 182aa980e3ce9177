/** Coded errors. Every code has a row in docs/errors.md (a test checks it). */
export const ErrorCode = {
  ConfigInvalid: 'CONFIG_INVALID',
  PriorityInvalid: 'PRIORITY_INVALID',
  CatalogueInvalid: 'CATALOGUE_INVALID',
  UnknownCondition: 'UNKNOWN_CONDITION',
  ScenarioInvalid: 'SCENARIO_INVALID',
  TicketCorrupt: 'TICKET_CORRUPT',
  TicketTooLarge: 'TICKET_TOO_LARGE',
  SopDuplicateId: 'SOP_DUPLICATE_ID',
  SopInvalid: 'SOP_INVALID',
  SopTimeout: 'SOP_TIMEOUT',
  PluginLoadFailed: 'PLUGIN_LOAD_FAILED',
  PromUnavailable: 'PROM_UNAVAILABLE',
  PromBadResponse: 'PROM_BAD_RESPONSE',
  PromResponseTooLarge: 'PROM_RESPONSE_TOO_LARGE',
  PromQLUnsupported: 'PROMQL_UNSUPPORTED',
  K8sConflict: 'K8S_CONFLICT',
  K8sNotFound: 'K8S_NOT_FOUND',
  K8sUnavailable: 'K8S_UNAVAILABLE',
  K8sForbidden: 'K8S_FORBIDDEN',
  DrainBlocked: 'DRAIN_BLOCKED',
  JobFailed: 'JOB_FAILED',
  InvalidInput: 'INVALID_INPUT',
  NotLeader: 'NOT_LEADER',
  /** An operator action (`kubectl aegis`) that does not apply to the node or ticket as it is. */
  OperatorRefused: 'OPERATOR_REFUSED',
  /** A node's BMC could not be reached (connection refused, no route, no answer). */
  BmcUnreachable: 'BMC_UNREACHABLE',
  /** The BMC refused the credentials of the Secret (wrong user or password, not enough privilege). */
  BmcAuthFailed: 'BMC_AUTH_FAILED',
  /** A BMC request, or the power state it should lead to, did not come in time. */
  BmcTimeout: 'BMC_TIMEOUT',
  /** The BMC answered but refused or did not understand the request. */
  BmcError: 'BMC_ERROR',
  /** No usable BMC for the node: none configured, its address not allowed, or its credentials missing. */
  BmcNotConfigured: 'BMC_NOT_CONFIGURED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The one error class of Aegis: a code, a message naming what and where, and a cause. */
export class HealError extends Error {
  override readonly name = 'HealError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** True when `err` is a HealError, optionally of the given code. */
export function isHealError(err: unknown, code?: ErrorCode): err is HealError {
  return err instanceof HealError && (code === undefined || err.code === code);
}

/** Message of any thrown value, for logs and tickets. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
