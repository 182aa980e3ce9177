/**
 * Checks a scenario's expectations against what the run produced: the step log, the ticket
 * changes, the final nodes, the metrics and the peaks of the fleet series. Pure.
 */
import { formatDurationMs } from '../core/duration.js';
import type { JobKind } from '../k8s/cluster.js';
import type { PodOperation } from '../sim/sim-cluster.js';
import type { Ticket } from '../ticket/ticket.js';
import type { Touch } from './apply.js';
import type { TicketChange } from './observe.js';
import { describeCount, TICKET_EVENTS } from './resolve.js';
import type {
  CountBound,
  Expectation,
  ExpectationSpec,
  PeakSeries,
  StatusFilter,
} from './schema.js';
import { clockOf, type ActionRecord } from './summary.js';

/** The result of one expectation. */
export interface ExpectationResult {
  readonly description: string;
  readonly line: number;
  readonly passed: boolean;
  readonly detail: string;
}

/** A metric series as the report carries it. */
export interface MetricSeries {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The final state of one node. */
export interface FinalNode {
  readonly name: string;
  readonly schedulable: boolean;
  readonly ticket: Ticket | null;
  /** Every annotation, verbatim. */
  readonly annotations: Readonly<Record<string, string>>;
  readonly power: 'on' | 'off' | 'booting';
  readonly reboots: number;
}

/** A Kubernetes Event about a node (offset time). */
export interface OutcomeEvent {
  readonly atMs: number;
  readonly node: string;
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

/** A Job the cluster created (offset time). */
export interface OutcomeJob {
  readonly atMs: number;
  readonly node: string;
  readonly kind: JobKind;
  readonly name: string;
}

/** A pod eviction (its answer) or deletion (its grace period; 0 forces) the API accepted. */
export type OutcomePodOp = PodOperation;

/** What expectations are checked against. */
export interface Outcome {
  readonly actions: readonly ActionRecord[];
  readonly tickets: readonly TicketChange[];
  readonly touches: readonly Touch[];
  readonly nodes: ReadonlyMap<string, FinalNode>;
  /** Every sample of every aegis_* metric, histograms as `_count` and `_sum`. */
  readonly series: readonly MetricSeries[];
  readonly peaks: Readonly<Record<PeakSeries, number>>;
  readonly breakerTrips: number;
  readonly events: readonly OutcomeEvent[];
  readonly jobs: readonly OutcomeJob[];
  readonly podOps: readonly OutcomePodOp[];
}

/** Checks every expectation. */
export function evaluateExpectations(
  expect: readonly Expectation[],
  out: Outcome,
): ExpectationResult[] {
  return expect.map((e) => {
    const r = check(e.spec, out);
    return { description: e.description, line: e.line, passed: r.passed, detail: r.detail };
  });
}

function within(c: CountBound, n: number): boolean {
  return (c.min === undefined || n >= c.min) && (c.max === undefined || n <= c.max);
}

function statusMatches(filter: StatusFilter, status: string): boolean {
  return filter === 'started' ? status === 'Running' : status === filter;
}

/** `N found: a at t, b at t, …` and whether N is within the bound. */
function counted(
  found: readonly { atMs: number; node: string; what?: string }[],
  bound: CountBound,
): { passed: boolean; detail: string } {
  const seen = found
    .slice(0, 3)
    .map((t) => `${t.what === undefined ? '' : `${t.what} `}${t.node} at ${clockOf(t.atMs)}`);
  return {
    passed: within(bound, found.length),
    detail: `found ${found.length}${seen.length === 0 ? '' : `: ${seen.join(', ')}${found.length > 3 ? ', …' : ''}`} (expected ${describeCount(bound)})`,
  };
}

function check(s: ExpectationSpec, out: Outcome): { passed: boolean; detail: string } {
  const windowed = (x: { afterMs?: number; byMs?: number }, at: number): boolean =>
    (x.afterMs === undefined || at >= x.afterMs) && (x.byMs === undefined || at <= x.byMs);
  const nodeMatches = (x: { node?: string }, n: string): boolean =>
    x.node === undefined || n === x.node;
  switch (s.kind) {
    case 'jobs':
      return counted(
        out.jobs
          .filter(
            (j) =>
              nodeMatches(s, j.node) &&
              windowed(s, j.atMs) &&
              (s.job === 'any' || j.kind === s.job),
          )
          .map((j) => ({ ...j, what: j.kind })),
        s.count,
      );
    case 'events':
      return counted(
        out.events
          .filter(
            (e) =>
              nodeMatches(s, e.node) &&
              windowed(s, e.atMs) &&
              (s.reason === 'any' || e.reason === s.reason) &&
              (s.type === undefined || e.type === s.type) &&
              (s.message === undefined || e.message.includes(s.message)),
          )
          .map((e) => ({ ...e, what: e.reason })),
        s.count,
      );
    case 'evictions':
      return counted(
        out.podOps
          .filter(
            (o) =>
              o.kind === 'evict' &&
              nodeMatches(s, o.node) &&
              windowed(s, o.atMs) &&
              (s.result === undefined || o.result === s.result) &&
              (s.namespace === undefined || o.namespace === s.namespace),
          )
          .map((o) => ({ ...o, what: `${o.namespace}/${o.name}` })),
        s.count,
      );
    case 'noForceDelete':
      return counted(
        out.podOps
          .filter(
            (o) =>
              o.kind === 'delete' &&
              o.gracePeriodSeconds === 0 &&
              nodeMatches(s, o.node) &&
              windowed(s, o.atMs) &&
              (s.namespace === undefined || o.namespace === s.namespace),
          )
          .map((o) => ({ ...o, what: `${o.namespace}/${o.name}` })),
        { max: 0 },
      );
    case 'did':
    case 'never': {
      const inWindow = (at: number): boolean =>
        (s.afterMs === undefined || at >= s.afterMs) && (s.byMs === undefined || at <= s.byMs);
      const onNode = (n: string): boolean => s.node === undefined || n === s.node;
      let times: { atMs: number; node: string }[];
      if ((TICKET_EVENTS as readonly string[]).includes(s.action)) {
        const status = s.action.slice('Ticket'.length).toLowerCase();
        times = out.tickets.filter(
          (t) =>
            onNode(t.node) &&
            inWindow(t.atMs) &&
            (s.condition === undefined || t.condition === s.condition) &&
            (status === 'opened' ? t.opened : t.status === status && !t.opened),
        );
      } else {
        times = out.actions.filter(
          (a) =>
            onNode(a.node) &&
            inWindow(a.atMs) &&
            (s.action === 'any' || a.action === s.action) &&
            (s.condition === undefined || a.condition === s.condition) &&
            statusMatches(s.status, a.status),
        );
      }
      const seen = times.slice(0, 3).map((t) => `${t.node} at ${clockOf(t.atMs)}`);
      const detail = `found ${times.length}${seen.length === 0 ? '' : `: ${seen.join(', ')}${times.length > 3 ? ', …' : ''}`}`;
      return {
        passed: within(s.count, times.length),
        detail: s.kind === 'did' ? `${detail} (expected ${describeCount(s.count)})` : detail,
      };
    }
    case 'sequence': {
      const got = out.actions
        .filter((a) => a.node === s.node && statusMatches(s.status, a.status))
        .map((a) => a.action);
      const passed = got.length === s.actions.length && got.every((a, i) => a === s.actions[i]);
      return { passed, detail: `got ${got.length === 0 ? '(none)' : got.join(' → ')}` };
    }
    case 'metric': {
      const matching = out.series.filter(
        (m) => m.name === s.name && Object.entries(s.labels).every(([k, v]) => m.labels[k] === v),
      );
      const value = matching.reduce((a, m) => a + m.value, 0);
      return {
        passed: matching.length > 0 && within(s.value, value),
        detail:
          matching.length === 0
            ? 'no such series'
            : `value ${value} (expected ${describeCount(s.value)})`,
      };
    }
    case 'touched': {
      const nodes = new Set(
        out.actions
          .filter(
            (a) => a.status === 'Running' && (s.action === undefined || a.action === s.action),
          )
          .map((a) => a.node),
      );
      return {
        passed: within(s.count, nodes.size),
        detail: `${nodes.size} nodes touched (expected ${describeCount(s.count)})`,
      };
    }
    case 'healthyUntouched': {
      const prompted = new Set(out.touches.map((t) => t.node));
      const stray = [
        ...new Set(
          out.actions
            .filter((a) => a.status === 'Running' && !prompted.has(a.node))
            .map((a) => a.node),
        ),
      ];
      return {
        passed: stray.length === 0,
        detail: stray.length === 0 ? 'none' : `steps on ${stray.slice(0, 5).join(', ')}`,
      };
    }
    case 'peak': {
      const v = out.peaks[s.series];
      return { passed: v <= s.max, detail: `peak ${v}` };
    }
    case 'breaker':
      return {
        passed: out.breakerTrips > 0 === s.tripped,
        detail: `tripped ${out.breakerTrips} time(s)`,
      };
    case 'node':
      return checkNode(s, out.nodes.get(s.node));
  }
}

function checkNode(
  s: ExpectationSpec & { kind: 'node' },
  n: FinalNode | undefined,
): { passed: boolean; detail: string } {
  if (n === undefined) return { passed: false, detail: 'node not found at the end' };
  const bad: string[] = [];
  if (s.schedulable !== undefined && s.schedulable !== n.schedulable)
    bad.push(n.schedulable ? 'schedulable' : 'cordoned');
  if (s.ticket === null && n.ticket !== null) bad.push(`has a ticket (${n.ticket.status})`);
  if (s.ticket !== undefined && s.ticket !== null) {
    const t = n.ticket;
    if (t === null) bad.push('no ticket');
    else {
      if (s.ticket.status !== undefined && !s.ticket.status.includes(t.status))
        bad.push(`ticket ${t.status}`);
      if (s.ticket.supervisor !== undefined && s.ticket.supervisor !== t.supervisor)
        bad.push(`supervisor ${t.supervisor}`);
      if (
        s.ticket.condition !== undefined &&
        s.ticket.condition !== t.condition &&
        !t.history.includes(s.ticket.condition)
      ) {
        bad.push(`ticket for ${t.condition}`);
      }
    }
  }
  if (s.power !== undefined && s.power !== n.power) bad.push(`power ${n.power}`);
  if (s.reboots !== undefined && !within(s.reboots, n.reboots)) bad.push(`${n.reboots} reboots`);
  for (const [k, want] of Object.entries(s.annotations ?? {})) {
    const got = n.annotations[k];
    if (want === null && got !== undefined) bad.push(`annotation ${k} is set`);
    if (want !== null && got !== want)
      bad.push(got === undefined ? `no annotation ${k}` : `annotation ${k}=${truncate(got, 80)}`);
  }
  const state = `${n.schedulable ? 'schedulable' : 'cordoned'}, ${n.ticket === null ? 'no ticket' : `ticket ${n.ticket.status} (${n.ticket.supervisor}, ${n.ticket.condition})`}, ${n.reboots} reboots`;
  return {
    passed: bad.length === 0,
    detail: bad.length === 0 ? state : `${bad.join(', ')} — ${state}`,
  };
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** `5m` or `-` for a missing duration. */
export function formatMaybe(ms: number | null): string {
  return ms === null ? '-' : formatDurationMs(Math.round(ms / 1000) * 1000);
}
