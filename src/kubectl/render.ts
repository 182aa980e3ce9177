/**
 * The text forms of `kubectl aegis` read commands: `status`, `tickets`, `ticket NODE` and
 * `explain NODE`. JSON and YAML print the data of src/kubectl/model.ts as is.
 */
import { formatDurationMs } from '../core/duration.js';
import { findCondition } from '../catalogue/index.js';
import { bucketOf, type PriorityTable } from '../priority/priority-table.js';
import { isOpen, type Ticket, type Workflow } from '../ticket/ticket.js';
import { age, ageOf, paintStatus, shortTime, someNames, table, type Paint } from './format.js';
import {
  NODE_STATES,
  NODE_STATE_TEXT,
  parseHold,
  describeIncidentDomain,
  type Explanation,
  type FleetSummary,
  type IncidentView,
  type NodeView,
  type StepRef,
} from './model.js';

/** `Label:  value` lines, labels padded like kubectl describe. */
function fields(rows: readonly (readonly [string, string])[], indent = ''): string {
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${indent}${`${k}:`.padEnd(width)}${v}`.trimEnd()).join('\n') + '\n';
}

function stepRef(s: StepRef, nowMs: number): string {
  return `${s.node} ${s.action}${s.since === undefined ? '' : ` (${ageOf(s.since, nowMs)})`}`;
}

/** `status`. */
export function renderStatus(s: FleetSummary, nowMs: number, paint: Paint): string {
  const leader = s.controller;
  const controller =
    leader.unknown !== undefined
      ? `unknown (${leader.unknown})`
      : leader.holder === undefined || leader.holder === ''
        ? paint('no leader', 'red')
        : `${leader.holder}, lease renewed ${leader.renewedAgoMs === undefined ? '?' : age(nowMs - leader.renewedAgoMs, nowMs)} ago${leader.expired === true ? ` ${paint('(EXPIRED: no replica is renewing it)', 'red')}` : ''}`;
  const a = s.automation;
  const automation = a.paused
    ? paint(
        a.pausedByConfig && a.pausedBy === undefined
          ? 'PAUSED by the config (safety.paused)'
          : `PAUSED by ${a.pausedBy ?? 'an operator'}${a.pausedAt === undefined ? '' : ` since ${shortTime(a.pausedAt)}`}`,
        'yellow',
      )
    : 'running';
  const b = s.breaker;
  const breaker =
    b.holding.length > 0
      ? paint(
          `TRIPPED: holding ${b.holding.length} node(s): ${someNames(b.holding.map((h) => h.node))}`,
          'red',
        )
      : 'no ticket shows a step held by it';
  const breakerReset =
    b.resetAt === undefined ? '' : `; last reset by ${b.resetBy ?? '?'} at ${shortTime(b.resetAt)}`;
  const c = s.cordonBudget;
  const budget = `${c.used} of ${c.budget} used by Aegis (${Math.round(c.fraction * 100)}% of ${c.eligible} eligible nodes)${c.holding.length > 0 ? paint(`; holding ${c.holding.length} cordon(s): ${someNames(c.holding.map((h) => h.node))}`, 'yellow') : ''}`;
  let out = fields([
    ['Context', `${s.context} (${s.server})`],
    ['Controller', controller],
    ['Mode', s.dryRun.value ? paint('dry-run (plans only, acts on nothing)', 'yellow') : 'acting'],
    ['Automation', automation],
    [
      'Storm breaker',
      `${breaker} (trips above ${b.limit} new faulty nodes in ${formatDurationMs(b.windowMs)})${breakerReset}`,
    ],
    ['Cordon budget', budget],
    ['Config', s.configSource],
  ]);
  out += `\nNODES (${s.nodes.total}, ${s.nodes.notReady.length} NotReady${s.nodes.notReady.length > 0 ? `: ${someNames(s.nodes.notReady)}` : ''})\n`;
  out += table([
    ['STATE', 'COUNT', 'NODES'],
    ...NODE_STATES.filter((st) => s.nodes.byState[st].length > 0 || st === 'Healthy').map((st) => {
      const names = s.nodes.byState[st];
      return [
        paintStatus(paint, st),
        String(names.length),
        st === 'Healthy' ? '' : someNames(names),
      ];
    }),
  ]);
  const t = s.tickets;
  out += `\nOPEN TICKETS (${t.open}${
    Object.keys(t.byStatus).length > 0
      ? `: ${Object.entries(t.byStatus)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ')}`
      : ''
  })\n`;
  if (t.byCondition.length > 0) {
    out += table([
      ['BUCKET', 'PRIORITY', 'CONDITION', 'COUNT'],
      ...t.byCondition.map((r) => [
        r.bucket ?? '?',
        r.priority === undefined ? '?' : String(r.priority),
        r.condition,
        String(r.count),
      ]),
    ]);
  }
  const st = s.steps;
  out += `\nSTEPS\n`;
  out += fields([
    [
      'Running',
      st.running.length === 0
        ? '0'
        : `${st.running.length}: ${st.running.map((r) => stepRef(r, nowMs)).join(', ')}`,
    ],
    [
      'Held',
      st.held.length === 0
        ? '0'
        : `${st.held.length}: ${st.held.map((h) => `${h.node} ${h.action} by ${h.gate ?? '?'}`).join(', ')}`,
    ],
    [
      'Awaiting approval',
      st.approvalsPending.length === 0
        ? '0'
        : paint(
            `${st.approvalsPending.length}: ${st.approvalsPending.map((r) => stepRef(r, nowMs)).join(', ')}`,
            'yellow',
          ),
    ],
  ]);
  return out;
}

/** LAST STEP of a ticket row. */
function lastStep(w: Workflow | undefined, paint: Paint): string {
  if (w === undefined) return '-';
  const hold = parseHold(w);
  return `${w.action} ${paintStatus(paint, w.status)}${hold === undefined ? '' : ` (${hold.gate})`}`;
}

/** `tickets`. */
export function renderTickets(
  views: readonly NodeView[],
  wide: boolean,
  table_: PriorityTable,
  nowMs: number,
  paint: Paint,
): string {
  const head = ['NODE', 'STATUS', 'SUPERVISOR', 'CONDITION', 'LAST STEP', 'AGE'];
  if (wide) head.push('PRIORITY', 'CONDITIONS', 'APPROVAL', 'EXTERNAL', 'UPDATED');
  const rows = views.map((v) => {
    const t = v.ticket;
    if (t === null) {
      const row = [v.node.name, paintStatus(paint, 'corrupt'), '-', '-', '-', '-'];
      if (wide) row.push('-', '-', '-', '-', '-');
      return row;
    }
    const row = [
      v.node.name,
      paintStatus(paint, t.status),
      t.supervisor,
      t.condition,
      lastStep(t.workflows.at(-1), paint),
      ageOf(t.creationTime, nowMs),
    ];
    if (wide) {
      const entry = findCondition(t.condition);
      const p =
        entry === undefined ? undefined : (table_.get(entry.name)?.priority ?? entry.priority);
      row.push(
        p === undefined ? '?' : `${p} (${bucketOf(p)})`,
        t.conditions.length === 0 ? '-' : someNames(t.conditions, 3),
        t.approval === undefined
          ? '-'
          : `${t.approval.action} ${paintStatus(paint, t.approval.state)}${t.approval.by === undefined ? '' : ` by ${t.approval.by}`}`,
        (t.external ?? []).map((e) => `${e.system}:${e.id}`).join(',') || '-',
        ageOf(t.updateTime ?? t.creationTime, nowMs),
      );
    }
    return row;
  });
  return table([head, ...rows]);
}

/** `ticket NODE`: the whole timeline. */
export function renderTicket(node: string, t: Ticket, nowMs: number, paint: Paint): string {
  const rows: [string, string][] = [
    ['Node', node],
    [
      'Status',
      `${paintStatus(paint, t.status)}${isOpen(t) ? '' : ' (closed tickets stay on the node until the next one)'}`,
    ],
    ['Supervisor', t.supervisor],
    ['Condition', t.condition],
    ['Reason', t.reason === '' ? '-' : t.reason],
    ['Created', `${shortTime(t.creationTime)} (${ageOf(t.creationTime, nowMs)} ago)`],
    ['Updated', shortTime(t.updateTime)],
  ];
  if (t.resolvedTime !== undefined) rows.push(['Resolved', shortTime(t.resolvedTime)]);
  if (t.conclusion !== undefined) rows.push(['Conclusion', t.conclusion]);
  if (t.whySRE !== undefined) rows.push(['Why a human', t.whySRE]);
  rows.push(['Cordoned by Aegis', t.cordonedByAegis ? 'yes' : 'no']);
  rows.push(['Active conditions', t.conditions.length === 0 ? '-' : t.conditions.join(', ')]);
  rows.push([
    'History',
    `${t.history.join(' -> ') || '-'}${t.omitted?.history === undefined ? '' : ` (${t.omitted.history} more omitted)`}`,
  ]);
  if (t.approval !== undefined) {
    const a = t.approval;
    rows.push([
      'Approval',
      `${a.action} ${paintStatus(paint, a.state)}, requested ${shortTime(a.requestedAt)}${a.reason === undefined ? '' : ` (${a.reason})`}${a.by === undefined ? '' : `, ${a.state} by ${a.by}`}${a.at === undefined ? '' : ` at ${shortTime(a.at)}`}`,
    ]);
  }
  for (const e of t.external ?? []) {
    rows.push(['External', `${e.system} ${e.id}${e.url === undefined ? '' : ` ${e.url}`}`]);
  }
  if (t.leaderEpoch !== undefined) rows.push(['Leader epoch', String(t.leaderEpoch)]);
  let out = fields(rows);
  out += '\nSteps:\n';
  if (t.workflows.length === 0) out += '  (none)\n';
  else {
    out += table(
      [
        ['SEQ', 'ACTION', 'STATUS', 'STARTED', 'ENDED', 'EXIT', 'CONDITION', 'MESSAGE'],
        ...t.workflows.map((w) => [
          w.seq === undefined ? '-' : String(w.seq),
          w.action,
          paintStatus(paint, w.status),
          shortTime(w.time),
          shortTime(w.end),
          w.exitCode === undefined ? '-' : String(w.exitCode),
          w.condition ?? '-',
          w.message ?? '',
        ]),
      ],
      '  ',
    );
  }
  const folded = Object.entries(t.counters).filter(([k]) => k.includes('/'));
  if (folded.length > 0) {
    out += `  Older steps (folded to fit the annotation): ${folded.map(([k, v]) => `${k} x${v}`).join(', ')}\n`;
  }
  if (t.diagnosis !== undefined && t.diagnosis.length > 0) {
    out += '\nDiagnosis:\n';
    for (const d of t.diagnosis) {
      out += `  ${d.hint}: ${d.cmd}${d.job === undefined ? '' : ` (kubectl logs job/${d.job})`}${d.lines === undefined ? '' : `, ${d.lines} lines`}\n`;
      out += d.result
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n')
        .concat('\n');
    }
  }
  if (t.remediations.length > 0) {
    out += `\nRecent remediations: ${t.remediations.map(shortTime).join(', ')}\n`;
  }
  out += '\nOperator log:\n';
  if (t.operatorLog === undefined || t.operatorLog.length === 0) out += '  (none)\n';
  else {
    out += table(
      [
        ['AT', 'ACTION', 'BY', 'NOTE'],
        ...t.operatorLog.map((l) => [shortTime(l.at), l.action, l.by, l.note ?? '']),
      ],
      '  ',
    );
  }
  return out;
}

/** `explain NODE`. */
export function renderExplain(e: Explanation, nowMs: number, paint: Paint): string {
  const rows: [string, string][] = [
    ['Node', e.node],
    ['State', `${paintStatus(paint, e.state)}: ${e.stateText}`],
    ['Ready', e.ready === true ? 'True' : e.ready === false ? 'False' : 'Unknown'],
    [
      'Schedulable',
      e.unschedulable
        ? `no (${e.ticket?.cordonedByAegis === true ? 'cordoned by Aegis' : 'cordoned, not by Aegis'})`
        : 'yes',
    ],
    [
      'Paused',
      e.paused
        ? paint('yes (aegis.io/pause=true)', 'yellow')
        : e.fleetPaused
          ? paint('fleet-wide', 'yellow')
          : 'no',
    ],
  ];
  if (e.supervisor !== undefined) rows.push(['Supervisor', e.supervisor]);
  if (e.ticket !== undefined) {
    rows.push([
      'Ticket',
      `${paintStatus(paint, e.ticket.status)}, opened ${ageOf(e.ticket.creationTime, nowMs)} ago for ${e.ticket.condition}${e.ticket.reason === '' ? '' : ` (${e.ticket.reason})`}`,
    ]);
  }
  if (e.sop !== undefined)
    rows.push([
      'SOP',
      `${e.sop.id}${e.sop.description === undefined ? '' : `: ${e.sop.description}`}`,
    ]);
  if (e.lastStep !== undefined) {
    const w = e.lastStep;
    rows.push([
      'Last step',
      `${w.action} ${paintStatus(paint, w.status)} ${shortTime(w.time)}${w.message === undefined ? '' : `: ${w.message}`}`,
    ]);
  }
  if (e.approval !== undefined) {
    const a = e.approval;
    rows.push([
      'Approval',
      `${a.action} ${paintStatus(paint, a.state)} (requested ${shortTime(a.requestedAt)}${a.by === undefined ? '' : `, ${a.state} by ${a.by}`})`,
    ]);
  }
  if (e.incident !== undefined) {
    const i = e.incident;
    rows.push([
      'Incident',
      `${i.name}: ${describeIncidentDomain(i.domain)}, rule ${i.rule}, since ${shortTime(i.since)}${i.released === undefined ? paint(' (open: steps held)', 'yellow') : `, released ${shortTime(i.released)}`}`,
    ]);
  }
  if (e.profile !== undefined) rows.push(['Profile', e.profile]);
  let out = fields(rows);
  if (e.conditions.length > 0) {
    out += `\nActive conditions (priorities from ${e.prioritySource}):\n`;
    out += table(
      [
        ['', 'PRIORITY', 'BUCKET', 'CONDITION', 'DOMAIN', 'SOP'],
        ...e.conditions.map((c) => [
          c.served ? '*' : '',
          c.priority === undefined ? '?' : String(c.priority),
          c.bucket ?? '?',
          c.recorded,
          c.domain ?? '?',
          c.sop === undefined ? '?' : (c.sop ?? 'record only'),
        ]),
      ],
      '  ',
    );
    out += '  (* the condition the ticket serves)\n';
  }
  if (e.nodeConditions.length > 0) {
    out += '\nNode conditions set by detectors:\n';
    out += table(
      [
        ['TYPE', 'REASON', 'MESSAGE'],
        ...e.nodeConditions.map((c) => [c.type, c.reason, c.message ?? '']),
      ],
      '  ',
    );
  }
  out += '\nWhy:\n';
  out += e.why.map((w) => `  - ${w}`).join('\n') + '\n';
  return out;
}

/** `incidents`: one line per domain incident the tickets point at. */
export function renderIncidents(
  list: readonly IncidentView[],
  wide: boolean,
  nowMs: number,
  paint: Paint,
): string {
  const head = ['NAME', 'DOMAIN', 'RULE', 'STATUS', 'MEMBERS', 'HELD', 'AGE'];
  if (wide) head.push('RELEASED', 'NODES', 'SUMMARY');
  const rows = list.map((i) => {
    const row = [
      i.name,
      describeIncidentDomain(i.domain),
      i.rule,
      paintStatus(paint, i.status),
      String(i.members.length),
      String(i.held.length),
      ageOf(i.since, nowMs),
    ];
    if (wide)
      row.push(
        i.released === undefined ? '-' : shortTime(i.released),
        someNames(i.members, 4),
        i.summary ?? '-',
      );
    return row;
  });
  return table([head, ...rows]);
}

/** NODE_STATE_TEXT, for `status --help`. */
export function stateLegend(): string {
  return NODE_STATES.map((s) => `  ${s.padEnd(16)} ${NODE_STATE_TEXT[s]}`).join('\n');
}
