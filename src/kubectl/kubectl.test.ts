/**
 * The pure parts of `kubectl aegis` (the commands themselves run on a real API server in
 * test/k8s/kubectl-aegis.test.ts): the plans of the writes, node states, the fleet summary's
 * budgets, and kubectl's output conventions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigSchema } from '../config/schema.js';
import { ErrorCode, isHealError } from '../core/errors.js';
import { PAUSE_ANNOTATION, TICKET_ANNOTATION, type NodeInfo } from '../core/types.js';
import { defaultPriorityTable } from '../priority/priority-table.js';
import { newTicket, parseTicket, serializeTicket, type Ticket } from '../ticket/ticket.js';
import {
  OPERATOR_LOG_MAX,
  checkOwner,
  isNoChange,
  planFleetAction,
  planNodeAction,
} from './actions.js';
import { age, table, wantColour } from './format.js';
import {
  explain,
  incidentsOf,
  summarise,
  toControls,
  viewNode,
  type SiteContext,
} from './model.js';
import { renderExplain, renderIncidents } from './render.js';
import { addOperatorCommands } from './commands.js';
import type { OperatorCluster } from './kube-client.js';
import { Command } from '@commander-js/extra-typings';
import { HealError } from '../core/errors.js';

const NOW = Date.parse('2025-06-01T12:00:00Z');

function node(name: string, fields: Partial<NodeInfo> = {}, ticket?: Ticket): NodeInfo {
  return {
    name,
    resourceVersion: '7',
    ready: true,
    unschedulable: false,
    labels: {},
    taints: [],
    ...fields,
    annotations: {
      ...fields.annotations,
      ...(ticket === undefined ? {} : { [TICKET_ANNOTATION]: serializeTicket(ticket) }),
    },
  };
}

function open(change: Partial<Ticket> = {}): Ticket {
  return { ...newTicket({ condition: 'GpuHung', reason: 'hung', nowMs: NOW - 60_000 }), ...change };
}

function written(plan: ReturnType<typeof planNodeAction>, name = 'n1'): Ticket {
  assert.ok(!isNoChange(plan));
  const text = plan.annotations[TICKET_ANNOTATION];
  assert.ok(typeof text === 'string');
  return parseTicket(text, name);
}

describe('planNodeAction', () => {
  it('keeps the operatorLog at its bound, newest last', () => {
    let t = open({
      approval: { action: 'Reboot', state: 'pending', requestedAt: new Date(NOW).toISOString() },
    });
    for (let i = 0; i < OPERATOR_LOG_MAX + 5; i++) {
      t = written(
        planNodeAction('takeover', viewNode(node('n1', {}, t)), 'alice', NOW + i, `owner-${i % 2}`),
      );
    }
    assert.equal(t.operatorLog?.length, OPERATOR_LOG_MAX);
    assert.equal(t.operatorLog.at(-1)?.note, `supervisor owner-1 -> owner-0`);
  });

  it('clips a long caller name to the schema bound instead of writing a corrupt ticket', () => {
    const who = `oidc:${'x'.repeat(300)}@example.com`;
    const t = written(planNodeAction('ack', viewNode(node('n1', {}, open())), who, NOW));
    assert.equal(t.operatorLog?.[0]?.by.length, 120);
    assert.equal(t.status, 'closed');
  });

  it('refuses what does not apply, with OPERATOR_REFUSED', () => {
    const refused = (fn: () => unknown, re: RegExp): void => {
      assert.throws(
        fn,
        (e: unknown) => isHealError(e, ErrorCode.OperatorRefused) && re.test(e.message),
      );
    };
    refused(
      () => planNodeAction('approve', viewNode(node('n1', {}, open())), 'a', NOW),
      /no step is waiting/,
    );
    refused(() => planNodeAction('release', viewNode(node('n1')), 'a', NOW), /has no ticket/);
    refused(
      () => planNodeAction('ack', viewNode(node('n1', {}, open({ status: 'resolved' }))), 'a', NOW),
      /already resolved/,
    );
    const corrupt = node('n1', { annotations: { [TICKET_ANNOTATION]: 'status: [' } });
    refused(() => planNodeAction('takeover', viewNode(corrupt), 'a', NOW), /never overwritten/);
    // Pausing a node with a corrupt ticket still works: the annotation only.
    const p = planNodeAction('pause', viewNode(corrupt), 'a', NOW);
    assert.ok(!isNoChange(p));
    assert.deepEqual(Object.keys(p.annotations), [PAUSE_ANNOTATION]);
    assert.match(p.warning ?? '', /not recorded/);
  });

  it('checks the takeover owner', () => {
    assert.equal(checkOwner(' bob '), 'bob');
    for (const bad of ['', 'aegis', 'a\nb', 'x'.repeat(121)]) {
      assert.throws(
        () => checkOwner(bad),
        (e: unknown) => isHealError(e, ErrorCode.InvalidInput),
      );
    }
  });
});

describe('planFleetAction', () => {
  it('pause, resume and breaker reset keep the other keys', () => {
    const data = { breakerResetAt: '2025-01-01T00:00:00Z', breakerResetBy: 'bob' };
    const paused = planFleetAction('pause', data, toControls(data), 'alice', NOW);
    assert.ok(!isNoChange(paused));
    assert.deepEqual(paused.data, {
      ...data,
      paused: 'true',
      pausedBy: 'alice',
      pausedAt: new Date(NOW).toISOString(),
    });
    const resumed = planFleetAction('resume', paused.data, toControls(paused.data), 'carol', NOW);
    assert.ok(!isNoChange(resumed));
    assert.deepEqual(resumed.data, { ...data, paused: 'false' });
    assert.ok(
      isNoChange(planFleetAction('resume', resumed.data, toControls(resumed.data), 'c', NOW)),
    );
    const reset = planFleetAction('breaker-reset', null, toControls(null), 'dan', NOW);
    assert.ok(!isNoChange(reset));
    assert.deepEqual(reset.data, {
      breakerResetAt: new Date(NOW).toISOString(),
      breakerResetBy: 'dan',
    });
  });
});

describe('node states and the fleet summary', () => {
  const site: SiteContext = {
    namespace: 'monitoring',
    config: { value: ConfigSchema.parse({}), source: 'defaults', fromCluster: false },
    priority: { value: defaultPriorityTable(), source: 'catalogue', fromCluster: false },
    controls: {
      value: toControls({ breakerResetAt: new Date(NOW - 30_000).toISOString() }),
      source: 'x',
      fromCluster: true,
    },
    leader: { holder: 'a' },
    nowMs: NOW,
  };
  const held = (min: number): Ticket =>
    open({
      workflows: [
        {
          action: 'Cordon',
          status: 'Held',
          time: new Date(NOW - min * 60_000).toISOString(),
          message: 'storm-breaker: too many nodes failed at once',
        },
      ],
    });

  it('one state per node, in the documented order; breaker holds after its last reset only', () => {
    const views = [
      node(
        'paused-human',
        { annotations: { [PAUSE_ANNOTATION]: 'true' } },
        open({ supervisor: 'sre' }),
      ),
      node('human', {}, open({ supervisor: 'sre' })),
      node('ours', { unschedulable: true }, open({ cordonedByAegis: true })),
      node('hand', { unschedulable: true }),
      node('out', { labels: { 'aegis.io/disable': 'true' }, unschedulable: true }),
      node('before-reset', {}, held(5)),
      node('after-reset', {}, { ...held(0), workflows: held(0).workflows }),
      node('closed', { unschedulable: true }, open({ status: 'closed', cordonedByAegis: true })),
    ].map(viewNode);
    assert.deepEqual(
      views.map((v) => `${v.node.name}:${v.state}`),
      [
        'paused-human:Paused',
        'human:Human',
        'ours:CordonedByAegis',
        'hand:CordonedByHand',
        'out:OptedOut',
        'before-reset:Faulty',
        'after-reset:Faulty',
        'closed:LeftCordoned',
      ],
    );
    const s = summarise(views, site, { context: 'c', server: 's' });
    assert.deepEqual(
      s.breaker.holding.map((h) => h.node),
      ['after-reset'],
    );
    // The cordon budget as the daemon counts it: opted-out nodes excluded, Aegis's open cordons.
    assert.deepEqual(
      [s.cordonBudget.eligible, s.cordonBudget.used, s.cordonBudget.budget],
      [7, 1, 1],
    );
  });
});

describe('kubectl output conventions', () => {
  it('ages as kubectl prints them', () => {
    const cases: [number, string][] = [
      [5_000, '5s'],
      [119_000, '119s'],
      [150_000, '2m30s'],
      [30 * 60_000, '30m'],
      [4 * 3_600_000 + 5 * 60_000, '4h5m'],
      [30 * 3_600_000, '30h'],
      [3 * 86_400_000, '3d'],
      [3 * 86_400_000 + 4 * 3_600_000, '3d4h'],
      [40 * 86_400_000, '40d'],
      [(2 * 365 + 3) * 86_400_000, '2y3d'],
    ];
    for (const [ms, want] of cases) assert.equal(age(NOW - ms, NOW), want, String(ms));
    assert.equal(age(undefined, NOW), '<unknown>');
  });

  it('tables padded by three spaces, the last column not padded', () => {
    assert.equal(
      table([
        ['NAME', 'AGE'],
        ['a-long-name', '5s'],
      ]),
      'NAME          AGE\na-long-name   5s\n',
    );
  });

  it('colour only on a terminal without NO_COLOR', () => {
    assert.equal(wantColour(true, {}), true);
    assert.equal(wantColour(false, {}), false);
    assert.equal(wantColour(undefined, {}), false);
    assert.equal(wantColour(true, { NO_COLOR: '1' }), false);
    assert.equal(wantColour(true, { TERM: 'dumb' }), false);
  });
});

describe('domain incidents in kubectl aegis', () => {
  const site: SiteContext = {
    namespace: 'monitoring',
    config: { value: ConfigSchema.parse({}), source: 'defaults', fromCluster: false },
    priority: { value: defaultPriorityTable(), source: 'catalogue', fromCluster: false },
    controls: { value: toControls(null), source: 'x', fromCluster: true },
    leader: { holder: 'a' },
    nowMs: NOW,
  };
  const since = new Date(NOW - 600_000).toISOString();
  const leaf = {
    name: 'aegis-incident-leaf-leaf-002-5c1e09ab',
    domain: 'leaf/leaf-002',
    rule: 'leaf-ib',
    since,
  };
  const rack = {
    name: 'aegis-incident-rack-rack-1-0a0b0c0d',
    domain: 'rack/rack-1',
    rule: 'rack-notready',
    since: new Date(NOW - 7_200_000).toISOString(),
    released: new Date(NOW - 3_600_000).toISOString(),
  };
  const nodes = [
    node('n3', {}, open({ incident: leaf })),
    node('n1', { unschedulable: true }, open({ incident: leaf, cordonedByAegis: true })),
    // A member whose own condition cleared and whose ticket closed: still a member, not held.
    node('n2', {}, open({ incident: leaf, status: 'resolved' })),
    node('r1', {}, open({ incident: rack, status: 'resolved' })),
    node('quiet'),
  ];

  it('incidentsOf: one per incident from the members pointers, open first', () => {
    const list = incidentsOf(nodes.map(viewNode));
    assert.deepEqual(
      list.map((i) => [i.name, i.status, i.members.join(','), i.held.join(',')]),
      [
        [leaf.name, 'open', 'n1,n2,n3', 'n1,n3'],
        [rack.name, 'released', 'r1', ''],
      ],
    );
    assert.equal(list[1]?.released, rack.released);
    const text = renderIncidents(list, false, NOW, (t) => t);
    assert.match(text, /^NAME +DOMAIN +RULE +STATUS +MEMBERS +HELD +AGE$/m);
    assert.match(
      text,
      /aegis-incident-leaf-leaf-002-5c1e09ab +leaf switch leaf-002 +leaf-ib +open +3 +2 +10m/,
    );
  });

  it('explain NODE names the incident that holds the node and what it means', () => {
    const held = open({
      incident: leaf,
      workflows: [
        {
          action: 'Diagnose',
          status: 'Held',
          time: since,
          message: `domain-incident: member of domain incident ${leaf.name} (leaf switch leaf-002); held until the domain recovers`,
          profile: 'full',
        },
      ],
    });
    const e = explain(viewNode(node('n1', {}, held)), site);
    assert.deepEqual(e.incident, leaf);
    assert.equal(e.profile, 'full');
    assert.ok(
      e.why.some((w) =>
        w.startsWith(
          `The node is a member of domain incident ${leaf.name} (leaf switch leaf-002, rule leaf-ib)`,
        ),
      ),
      e.why.join('\n'),
    );
    assert.ok(
      e.why.some(
        (w) => w.includes('held by domain-incident') && w.includes('kubectl aegis incidents'),
      ),
    );
    const text = renderExplain(e, NOW, (t) => t);
    assert.match(
      text,
      /^Incident: +aegis-incident-leaf-leaf-002-5c1e09ab: leaf switch leaf-002, rule leaf-ib, since .* \(open: steps held\)$/m,
    );
    assert.match(text, /^Profile: +full$/m);
    const released = explain(viewNode(node('n1', {}, open({ incident: rack }))), site);
    assert.ok(released.why.some((w) => /was a member of domain incident .* released at/.test(w)));
    assert.equal(explain(viewNode(node('quiet')), site).incident, undefined);
  });

  it('the incidents command: open ones, --all, -o json, and the summary when the record is readable', async () => {
    const run = async (
      args: string[],
      readable: boolean,
    ): Promise<{ out: string; err: string }> => {
      let out = '';
      let err = '';
      const cluster = {
        context: 'c',
        server: 's',
        listNodes: () => Promise.resolve(nodes),
        readConfigMap: (_ns: string, name: string) =>
          readable
            ? Promise.resolve(
                name === leaf.name
                  ? {
                      data: {
                        summary: 'leaf switch leaf-002: 3 of 16 nodes lost InfiniBand links',
                      },
                      resourceVersion: '1',
                    }
                  : null,
              )
            : Promise.reject(new HealError(ErrorCode.K8sForbidden, 'forbidden')),
      } as unknown as OperatorCluster;
      const program = new Command()
        .exitOverride()
        .configureOutput({ writeOut: (t) => (out += t), writeErr: (t) => (err += t) });
      addOperatorCommands(program, {
        connect: () => Promise.resolve(cluster),
        now: () => NOW,
        env: {},
        isTTY: false,
      });
      await program.parseAsync(['node', 'kubectl-aegis', ...args]);
      return { out, err };
    };
    const plain = await run(['incidents'], false);
    assert.match(plain.out, /aegis-incident-leaf-leaf-002-5c1e09ab/);
    assert.doesNotMatch(plain.out, /rack-1/, 'released ones only with --all');
    assert.match((await run(['incidents', '-A'], false)).out, /rack-1 +rack-notready +released/);
    const json = JSON.parse((await run(['incidents', '-o', 'json'], true)).out) as {
      kind: string;
      items: { name: string; summary?: string }[];
    };
    assert.equal(json.kind, 'IncidentList');
    assert.equal(
      json.items[0]?.summary,
      'leaf switch leaf-002: 3 of 16 nodes lost InfiniBand links',
    );
    const wide = await run(['incidents', '-o', 'wide'], false);
    assert.match(wide.out, /RELEASED +NODES +SUMMARY/);
  });
});
