import type { ConditionInstance, NodeInfo, NodeStatus } from '../../src/core/types.js';
import type { NodeView, SopPolicy, SopStatus } from '../../src/sop/sop.js';
import { newTicket, type Ticket, type Workflow } from '../../src/ticket/ticket.js';

/** Fixed start of test time. */
export const T0 = Date.UTC(2026, 0, 1);

/** A node with sensible defaults. */
export function aNode(overrides: Partial<NodeInfo> = {}): NodeInfo {
  return {
    name: 'gpu-node-0001',
    resourceVersion: '1',
    ready: true,
    unschedulable: false,
    labels: {},
    annotations: {},
    taints: [],
    ...overrides,
  };
}

/** A condition instance. */
export function aCondition(overrides: Partial<ConditionInstance> = {}): ConditionInstance {
  return {
    node: 'gpu-node-0001',
    domain: 'GPU',
    condition: 'GpuHung',
    id: '',
    pciBdf: '',
    msg: '',
    value: 1,
    sinceMs: T0,
    ...overrides,
  };
}

/** The default SOP policy of tests (aggressive level 1, 5 min settle). */
export const POLICY: SopPolicy = {
  level: 1,
  settleMs: 300_000,
  criticalLabels: ['aegis.io/critical'],
  humanSupervisor: 'sre',
  uncordonManualCordons: false,
  maxTicketAgeMs: 48 * 3_600_000,
};

/** A ticket with the given workflow entries. */
export function aTicket(
  workflows: Partial<Workflow>[] = [],
  overrides: Partial<Ticket> = {},
): Ticket {
  const t = newTicket({ condition: 'GpuHung', reason: 'test', nowMs: T0 });
  return {
    ...t,
    workflows: workflows.map((w, i) => ({
      action: 'Cordon',
      status: 'Succeeded',
      time: new Date(T0).toISOString(),
      end: new Date(T0).toISOString(),
      seq: i,
      ...w,
    })),
    nextSeq: workflows.length,
    ...overrides,
  };
}

/** A NodeView. */
export function aView(
  opts: {
    node?: Partial<NodeInfo>;
    ticket?: Ticket | null;
    nowMs?: number;
    policy?: Partial<SopPolicy>;
  } = {},
): NodeView {
  return {
    info: aNode(opts.node),
    ticket: opts.ticket ?? null,
    nowMs: opts.nowMs ?? T0 + 3_600_000,
    policy: { ...POLICY, ...opts.policy },
  };
}

/** An SopStatus for one condition. */
export function aStatus(
  cond: Partial<ConditionInstance> = {},
  others: ConditionInstance[] = [],
): SopStatus {
  const condition = aCondition(cond);
  const node: NodeStatus = {
    node: condition.node,
    conditions: [condition, ...others],
    staleSignals: [],
  };
  return { condition, node };
}
