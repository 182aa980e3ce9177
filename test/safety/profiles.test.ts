/**
 * Node-group behaviour profiles (issue 16 item 4, docs/profiles.md) on the simulated fleet with
 * the real engine: the same GPU fault (XID 79, a reboot ladder) on four nodes of four node groups.
 * The observe-only node never gets a write of any kind (not its ticket, not a cordon, no Job, no
 * Event); the cordon-only node is cordoned and handed to a human; the approval-required node holds
 * its reboot for an operator; the full node reboots. Each step records the profile it ran under.
 * The pure parts (selection, verdicts, config) are tested at the end.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigSchema, type Config } from '../../src/config/schema.js';
import {
  needsApproval,
  profileOf,
  profileVerdict,
  profilesConfigured,
  type ProfilesConfig,
} from '../../src/engine/profiles.js';
import { Action } from '../../src/sop/sop.js';
import type { Ticket } from '../../src/ticket/ticket.js';
import {
  HOUR,
  LADDER_CONDITIONS,
  catalogueOf,
  createSafetyWorld,
  metricSum,
  runFor,
  safetyConfig,
  settleSteps,
  startEngine,
} from '../fixtures/safety/safety-world.js';
import { TicketLedger } from '../fixtures/safety/ticket-ledger.js';

const CATALOGUE = catalogueOf(LADDER_CONDITIONS);
const GROUP = 'aegis.io/node-group';

const PROFILES: ProfilesConfig = {
  default: 'full',
  groups: [
    { name: 'shadow', selector: { [GROUP]: 'pool-d' }, profile: 'observe-only' },
    { name: 'wave-3', selector: { [GROUP]: 'pool-c' }, profile: 'cordon-only' },
    { name: 'wave-2', selector: { [GROUP]: 'pool-b' }, profile: 'approval-required' },
  ],
};

function profileConfig(profiles: ProfilesConfig): Config {
  const base = safetyConfig({
    safety: { maxCordonedFraction: 0.5, stormMinNewFaultyNodes: 10, nodeCooldownMs: 0 },
  });
  return { ...base, profiles: { default: profiles.default, groups: [...profiles.groups] } };
}

async function fourGroups(profiles: ProfilesConfig) {
  const sw = await createSafetyWorld({ nodes: 8, seed: 41 });
  const [full, approval, cordon, observe] = [0, 1, 2, 3].map((i) => sw.names[i] ?? '');
  const pools = ['pool-a', 'pool-b', 'pool-c', 'pool-d'];
  for (const [i, node] of [full, approval, cordon, observe].entries())
    sw.world.cluster.setLabel(node ?? '', GROUP, pools[i] ?? '');
  const ledger = new TicketLedger(sw.world.cluster);
  const life = startEngine(sw, { config: profileConfig(profiles), catalogue: CATALOGUE });
  for (const node of [full, approval, cordon, observe])
    sw.world.faults.injectFault({
      condition: 'Xid79GPULost',
      device: '2',
      node: node ?? '',
      atMs: sw.clock.now(),
      persistence: 'until-reboot',
    });
  await runFor(sw, life, { durationMs: 2 * HOUR, intervalMs: 20_000 });
  await settleSteps(sw, life);
  ledger.scan();
  return {
    sw,
    life,
    ledger,
    full: full ?? '',
    approval: approval ?? '',
    cordon: cordon ?? '',
    observe: observe ?? '',
  };
}

describe('node-group behaviour profiles on the simulator', () => {
  it('observe-only: no write at all; cordon-only: cordon and hand-off; approval-required: holds; full: reboots', async () => {
    const { sw, life, ledger, full, approval, cordon, observe } = await fourGroups(PROFILES);
    const cluster = sw.world.cluster;

    // observe-only: not one write by the engine touching the node, its Jobs or its Events.
    const writesTo = (node: string) =>
      cluster.writes().filter((w) => w.by === 'client' && w.target.includes(node));
    assert.deepEqual(writesTo(observe), [], 'no write to the observe-only node');
    assert.deepEqual(cluster.events(observe), [], 'no Event about it');
    assert.equal(await sw.ticket(observe), null, 'no ticket');
    assert.equal((await sw.node(observe)).unschedulable, false, 'not cordoned');
    const plans = life.steps.filter((s) => s.node === observe && s.status === 'DryRun');
    assert.ok(
      plans.some((s) => s.action === 'Cordon' && /profile observe-only/.test(s.message ?? '')),
      'what it would have done is in the step log',
    );
    const text = await life.metricsText();
    assert.ok(metricSum(text, 'aegis_profile_withheld_steps_total', 'profile="observe-only"') >= 1);
    assert.equal(metricSum(text, 'aegis_profile_nodes', 'profile="observe-only"'), 1);
    assert.equal(metricSum(text, 'aegis_profile_nodes', 'profile="full"'), 5);

    // cordon-only: cordoned, then handed to a human; no diagnosis, no reboot.
    const c = (await sw.ticket(cordon)) as Ticket;
    assert.equal((await sw.node(cordon)).unschedulable, true);
    assert.deepEqual(
      c.workflows.filter((w) => w.status !== 'Held').map((w) => `${w.action} ${w.status}`),
      ['Cordon Succeeded', 'HandToHuman Succeeded'],
    );
    assert.equal(c.status, 'assigned');
    assert.match(c.whySRE ?? '', /profile cordon-only \(group wave-3\): Aegis only cordons/);
    assert.ok(c.workflows.every((w) => w.profile === 'cordon-only (group wave-3)'));
    assert.equal(ledger.jobsCreated('restart_node', cordon), 0);
    assert.ok(metricSum(text, 'aegis_profile_withheld_steps_total', 'profile="cordon-only"') >= 1);

    // approval-required: the reboot waits for an operator, through the approval gate.
    const a = (await sw.ticket(approval)) as Ticket;
    assert.equal(a.approval?.state, 'pending');
    assert.equal(a.approval.action, 'Reboot');
    assert.equal(ledger.jobsCreated('restart_node', approval), 0);
    const held = a.workflows.find((w) => w.status === 'Held');
    assert.equal(held?.message, 'approval: awaiting approval');
    assert.equal(held.profile, 'approval-required (group wave-2)');

    // full: the whole ladder, each step recording its profile.
    assert.equal(ledger.jobsCreated('restart_node', full), 1);
    const f = (await sw.ticket(full)) as Ticket;
    assert.ok(f.workflows.length > 0 && f.workflows.every((w) => w.profile === 'full'));
    assert.deepEqual(ledger.problems, []);
  });

  it('without profiles nothing changes: the four nodes reboot and no entry names a profile', async () => {
    const { sw, life, ledger, full, approval, cordon, observe } = await fourGroups({
      default: 'full',
      groups: [],
    });
    for (const node of [full, approval, cordon, observe]) {
      assert.equal(ledger.jobsCreated('restart_node', node), 1, node);
      const t = (await sw.ticket(node)) as Ticket;
      assert.ok(t.workflows.every((w) => w.profile === undefined));
    }
    assert.equal(
      metricSum(await life.metricsText(), 'aegis_profile_withheld_steps_total'),
      0,
      'nothing withheld',
    );
  });
});

describe('profiles: selection, verdicts and config', () => {
  const step = (action: Action, seq?: number) => ({
    action,
    reason: 'because',
    ...(seq === undefined ? {} : { seq }),
  });

  it('the first matching group wins; other nodes get the default', () => {
    assert.deepEqual(profileOf({ [GROUP]: 'pool-c' }, PROFILES), {
      profile: 'cordon-only',
      group: 'wave-3',
    });
    assert.deepEqual(profileOf({ [GROUP]: 'pool-z' }, PROFILES), { profile: 'full' });
    assert.deepEqual(profileOf({}, { ...PROFILES, default: 'observe-only' }), {
      profile: 'observe-only',
    });
    const unnamed: ProfilesConfig = {
      default: 'full',
      groups: [{ selector: { a: '1', b: '2' }, profile: 'cordon-only' }],
    };
    assert.deepEqual(profileOf({ a: '1' }, unnamed), { profile: 'full' }, 'every label must match');
    assert.deepEqual(profileOf({ a: '1', b: '2' }, unnamed), {
      profile: 'cordon-only',
      group: 'groups[0]',
    });
  });

  it('verdicts: observe-only observes everything; cordon-only hands off past the cordon; resumed steps resume', () => {
    const observe = { profile: 'observe-only' as const };
    const cordon = { profile: 'cordon-only' as const, group: 'g' };
    assert.equal(profileVerdict(observe, step(Action.Cordon)).kind, 'observe');
    assert.equal(profileVerdict(observe, step(Action.Reboot, 3)).kind, 'observe');
    assert.equal(profileVerdict(cordon, step(Action.Cordon)).kind, 'run');
    assert.equal(profileVerdict(cordon, step(Action.HandToHuman)).kind, 'run');
    assert.equal(
      profileVerdict(cordon, step(Action.Reboot, 4)).kind,
      'run',
      'a begun step resumes',
    );
    const v = profileVerdict(cordon, step(Action.Diagnose));
    assert.ok(v.kind === 'replace');
    assert.equal(v.step.action, Action.HandToHuman);
    assert.equal(v.step.then, 'assign');
    assert.equal(profileVerdict({ profile: 'full' }, step(Action.Reboot)).kind, 'run');
    const approval = { profile: 'approval-required' as const };
    assert.equal(needsApproval(approval, step(Action.Reboot)), true);
    assert.equal(needsApproval(approval, step(Action.Drain)), true);
    assert.equal(needsApproval(approval, step(Action.Cordon)), false);
    assert.equal(needsApproval(approval, step(Action.Diagnose)), false);
    assert.equal(needsApproval(approval, step(Action.Reboot, 2)), false, 'a begun step resumes');
    assert.equal(needsApproval({ profile: 'full' }, step(Action.Reboot)), false);
  });

  it('config: defaults change nothing; bad groups are refused naming where', () => {
    const d = ConfigSchema.parse({});
    assert.deepEqual(d.profiles, { default: 'full', groups: [] });
    assert.equal(profilesConfigured(d.profiles), false);
    const ok = ConfigSchema.parse({
      profiles: {
        groups: [{ name: 'wave-1', selector: { [GROUP]: 'pool-a' }, profile: 'full' }],
        default: 'observe-only',
      },
    });
    assert.equal(profilesConfigured(ok.profiles), true);
    const bad = ConfigSchema.safeParse({
      profiles: { groups: [{ selector: {}, profile: 'reboot-everything' }] },
    });
    assert.ok(!bad.success);
    const paths = bad.error.issues.map((i) => i.path.join('.'));
    assert.ok(paths.includes('profiles.groups.0.profile'), paths.join(','));
    assert.ok(paths.includes('profiles.groups.0.selector'), paths.join(','));
  });
});
