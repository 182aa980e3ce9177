/**
 * A NotReady node power-cycled through its BMC by the real engine on the simulated fleet, with the
 * daemon killed at every step of the power cycle (the safety suite's kill switch, extended to the
 * BMC's calls): exactly one power cycle, recorded once, and the node back in service. And the
 * BMC's failures (wrong password, unreachable, no answer) ending in holds and hand-offs that name
 * the error, with the password in no ticket, Event or log line.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createEngine } from '../../src/daemon.js';
import { SIGNAL_PRESENCE } from '../../src/catalogue/signals.js';
import { CATALOGUE } from '../../src/catalogue/index.js';
import { createOutOfBand } from '../../src/bmc/out-of-band.js';
import { POWER_CYCLE_ANNOTATION } from '../../src/bmc/power-cycle.js';
import type { BmcClient, BmcConnector } from '../../src/bmc/types.js';
import { createMemoryLogger } from '../../src/engine/logger.js';
import type { StepEvent } from '../../src/engine/runner.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { SimBmcs, type SimBmcFailure } from '../../src/sim/sim-bmc.js';
import { countSteps } from '../../src/ticket/ticket.js';
import { TICKET_ANNOTATION } from '../../src/core/types.js';
import { KillSwitchCluster, type ApiCall, type CallHook } from '../fixtures/safety/kill-switch.js';
import {
  catalogueOf,
  createSafetyWorld,
  HOUR,
  LADDER_CONDITIONS,
  MIN,
  runFor,
  safetyConfig,
  settleSteps,
  type EngineLife,
  type SafetyWorld,
} from '../fixtures/safety/safety-world.js';

const PASSWORD = 'sim-BMC-pa55word';
const CREDENTIALS = { username: 'aegis', password: PASSWORD };
const CONFIG = safetyConfig();
const CAT = catalogueOf(LADDER_CONDITIONS);

/** One BMC call as a kill hook sees it. */
interface BmcCall {
  readonly op: string;
  readonly phase: 'before' | 'after';
}

/** A fresh engine over the world, its BMC calls going through the incarnation's kill switch. */
function startEngine(
  sw: SafetyWorld,
  bmcs: SimBmcs,
  o: {
    hook?: CallHook;
    bmcHook?: (c: BmcCall, ks: KillSwitchCluster) => void;
    password?: string;
    log?: ReturnType<typeof createMemoryLogger>;
  } = {},
): EngineLife {
  const cluster = new KillSwitchCluster(sw.world.cluster, o.hook);
  const inner = bmcs.connector();
  const connector: BmcConnector = (target, creds): BmcClient => {
    const c = inner(target, creds);
    const through =
      <T>(op: string, run: (s: AbortSignal) => Promise<T>) =>
      async (signal: AbortSignal): Promise<T> => {
        const check = (): void => {
          if (cluster.dead) throw new Error('daemon killed');
        };
        check();
        o.bmcHook?.({ op, phase: 'before' }, cluster);
        check();
        const out = await run(signal);
        o.bmcHook?.({ op, phase: 'after' }, cluster);
        check();
        return out;
      };
    return {
      describe: c.describe,
      powerState: through('power-status', (s) => c.powerState(s)),
      powerOff: through('power-off', (s) => c.powerOff(s)),
      powerOn: through('power-on', (s) => c.powerOn(s)),
      powerCycle: through('power-cycle', (s) => c.powerCycle(s)),
    };
  };
  const metrics = createMetrics();
  const steps: StepEvent[] = [];
  const prio = new Map(CATALOGUE.map((e) => [e.name, e.priority]));
  const engine = createEngine({
    cluster,
    metricsSource: sw.world.metrics,
    clock: sw.clock,
    config: CONFIG,
    catalogue: CAT,
    presence: SIGNAL_PRESENCE,
    priorityOf: () => (name) => prio.get(name) ?? 999,
    metrics,
    log: o.log ?? createMemoryLogger(),
    onStep: (e) => steps.push(e),
    outOfBand: createOutOfBand({
      selection: {
        enabled: true,
        defaultProtocol: 'ipmi',
        credentials: '',
        nodes: {},
        addressTemplate: 'ipmi://{node}-bmc.mgmt',
        allowedAddresses: [],
      },
      credentialsSecret: 'aegis-bmc',
      readSecret: (name, signal) => cluster.sim.readSecret(name, signal),
      connectors: { ipmi: connector, redfish: connector },
      timing: {
        powerOffTimeoutMs: 2 * MIN,
        powerOnTimeoutMs: 2 * MIN,
        bootTimeoutMs: 20 * MIN,
        pollMs: 5_000,
      },
      notReadyAfterMs: 10 * MIN,
      metrics,
    }),
  });
  return {
    engine,
    metrics,
    steps,
    cluster,
    async cycle() {
      if (cluster.dead) return undefined;
      return engine.controller.cycle(cluster.signal);
    },
    metricsText: () => metrics.registry.metrics(),
  };
}

/** A 6-node fleet whose third node hangs (NotReady until a reboot), and its BMCs. */
async function hungNode(
  password = PASSWORD,
): Promise<{ sw: SafetyWorld; bmcs: SimBmcs; node: string }> {
  const sw = await createSafetyWorld({ nodes: 6, seed: 17 });
  sw.world.cluster.setSecret('aegis-bmc', { username: 'aegis', password });
  const bmcs = new SimBmcs(sw.world.cluster, CREDENTIALS);
  const node = sw.names[2] ?? '';
  sw.world.faults.injectFault({ condition: 'NodeNotReady', node, atMs: sw.clock.now() });
  return { sw, bmcs, node };
}

/** Everything the cluster holds about the node, as text: its ticket, annotations, Events. */
function everything(sw: SafetyWorld, node: string): string {
  return JSON.stringify({
    writes: sw.world.cluster.writes(),
    events: sw.world.cluster.events(node),
  });
}

const isMark = (c: ApiCall, phase: 'off' | 'on'): boolean =>
  c.method === 'patchNodeAnnotations' &&
  (c.args[1] as Record<string, string | null>)[POWER_CYCLE_ANNOTATION]?.includes(
    `"phase":"${phase}"`,
  ) === true;
const ticketWrite = (c: ApiCall, re: RegExp): boolean =>
  c.method === 'patchNodeAnnotations' &&
  re.test((c.args[1] as Record<string, string | null>)[TICKET_ANNOTATION] ?? '');

/** Kill points: a cluster call or a BMC call, before or after it reached its target. */
type KillPoint =
  | { readonly name: string; readonly api: (c: ApiCall, ks: KillSwitchCluster) => boolean }
  | { readonly name: string; readonly bmc: (c: BmcCall) => boolean };

const KILL_POINTS: readonly KillPoint[] = [
  {
    name: 'after "PowerCycle Running" was recorded, before the BMC was asked anything',
    api: (c) => c.phase === 'after' && ticketWrite(c, /action: PowerCycle\n\s+status: Running/),
  },
  {
    name: 'after the first power status, before the power-off was recorded',
    bmc: (c) => c.op === 'power-status' && c.phase === 'after',
  },
  {
    name: 'after the power-off was recorded on the node, before it was sent',
    api: (c) => c.phase === 'after' && isMark(c, 'off'),
  },
  {
    name: 'after the BMC powered the node off, before the daemon saw the answer',
    bmc: (c) => c.op === 'power-off' && c.phase === 'after',
  },
  {
    name: 'while fencing the pods (after Off was confirmed)',
    api: (c) => c.phase === 'before' && c.method === 'listPodsOnNode',
  },
  {
    name: 'after the power-on was recorded, before it was sent',
    api: (c) => c.phase === 'after' && isMark(c, 'on'),
  },
  {
    name: 'after the BMC powered the node on, before the daemon saw the answer',
    bmc: (c) => c.op === 'power-on' && c.phase === 'after',
  },
  {
    name: 'while waiting for the new boot id',
    api: (c, ks) =>
      c.phase === 'after' &&
      c.method === 'getNode' &&
      ks.sim.powerState(String(c.args[0])) === 'booting',
  },
  {
    name: 'after the node came back, before "PowerCycle Succeeded" was recorded',
    api: (c) => c.phase === 'before' && ticketWrite(c, /action: PowerCycle\n\s+status: Succeeded/),
  },
];

describe('a NotReady node power-cycled through its BMC, the daemon killed at every step', () => {
  for (const [point, downMs] of KILL_POINTS.flatMap((p) => [
    [p, 20_000] as const,
    [p, 5 * MIN] as const,
  ])) {
    it(`killed ${point.name}, back ${downMs / 1000} s later: exactly one power cycle, recorded once, node back in service`, async () => {
      const { sw, bmcs, node } = await hungNode();
      let armed = true;
      const kill = (ks: KillSwitchCluster, what: string): void => {
        if (!armed) return;
        armed = false;
        ks.kill(`killed ${what}`);
      };
      const first = startEngine(sw, bmcs, {
        ...('api' in point
          ? {
              hook: (c, ks) => {
                if (point.api(c, ks)) kill(ks, `${c.phase} ${c.method}`);
              },
            }
          : {
              bmcHook: (c, ks) => {
                if (point.bmc(c)) kill(ks, `${c.phase} ${c.op}`);
              },
            }),
      });
      await runFor(sw, first, { durationMs: HOUR, intervalMs: 10_000 });
      assert.ok(first.cluster.dead, `the kill point was reached: ${point.name}`);
      await first.engine.controller.idle();
      await sw.clock.advance(downMs);
      const second = startEngine(sw, bmcs);
      await runFor(sw, second, { durationMs: 2 * HOUR, intervalMs: 10_000 });
      await settleSteps(sw, second);

      const c = sw.world.cluster;
      assert.equal(c.bmcPowerOffs(node), 1, 'exactly one power-off through the BMC');
      assert.equal(c.rebootCount(node), 1, 'exactly one boot');
      assert.equal(
        bmcs.calls(node).filter((x) => x.op === 'power-off').length,
        1,
        'one power-off request reached the BMC',
      );
      const t = await sw.ticket(node);
      assert.ok(t !== null);
      assert.equal(countSteps(t, 'PowerCycle', 'Succeeded'), 1, 'recorded Succeeded once');
      assert.equal(countSteps(t, 'PowerCycle'), 1, 'one PowerCycle entry');
      assert.equal(
        t.status,
        'resolved',
        t.workflows.map((w) => `${w.action}:${w.status}`).join(' '),
      );
      assert.equal((await sw.node(node)).unschedulable, false, 'uncordoned after the health check');
      assert.equal((await sw.node(node)).annotations[POWER_CYCLE_ANNOTATION], undefined);
      for (const n of sw.names) if (n !== node) assert.equal(c.bmcPowerOffs(n), 0);
    });
  }
});

describe('BMC failures: holds and hand-offs naming the error, never a duplicate power cycle', () => {
  async function failing(failure: SimBmcFailure | 'wrong-password'): Promise<{
    sw: SafetyWorld;
    node: string;
    log: ReturnType<typeof createMemoryLogger>;
    bmcs: SimBmcs;
  }> {
    const { sw, bmcs, node } = await hungNode(
      failure === 'wrong-password' ? 'not-the-password' : PASSWORD,
    );
    if (failure !== 'wrong-password') bmcs.fail(node, failure);
    const log = createMemoryLogger();
    const life = startEngine(sw, bmcs, { log });
    await runFor(sw, life, { durationMs: 2 * HOUR, intervalMs: 10_000 });
    await settleSteps(sw, life);
    return { sw, node, log, bmcs };
  }

  it('wrong password: handed to a human at once, naming the refusal; the password nowhere', async () => {
    const { sw, node, log } = await failing('wrong-password');
    const t = await sw.ticket(node);
    assert.equal(t?.status, 'assigned');
    assert.equal(countSteps(t, 'PowerCycle'), 1, 'tried once');
    assert.match(
      t.whySRE ?? '',
      /power cycle through ipmi:\/\/.*-bmc\.mgmt:623 failed: .*refused the credentials/,
    );
    assert.equal(sw.world.cluster.bmcPowerOffs(node), 0);
    const text = `${everything(sw, node)}\n${JSON.stringify(log.lines)}`;
    assert.ok(
      !text.includes('not-the-password'),
      'the wrong password is in no ticket, Event or log',
    );
    assert.ok(!text.includes(PASSWORD));
  });

  for (const failure of ['unreachable', 'timeout'] as const) {
    it(`BMC ${failure}: a hold naming it, one more try, then a human naming it; nothing sent`, async () => {
      const { sw, node, bmcs } = await failing(failure);
      const t = await sw.ticket(node);
      assert.equal(t?.status, 'assigned');
      assert.equal(countSteps(t, 'PowerCycle', 'Failed'), 2, 'two attempts, 5 minutes apart');
      const said =
        failure === 'unreachable'
          ? /no answer \(connection refused\)/
          : /got no answer within 30 s/;
      assert.match(t.whySRE ?? '', said);
      assert.ok(!bmcs.calls(node).some((x) => x.op === 'power-off' || x.op === 'power-on'));
    });
  }

  it('the BMC never confirms Off: a human, the pods left alone, no second power-off', async () => {
    const { sw, node, bmcs } = await failing('stuck-on');
    const t = await sw.ticket(node);
    assert.equal(t?.status, 'assigned');
    assert.match(
      t.whySRE ?? '',
      /did not report the node off within 2 min; its pods were left alone/,
    );
    assert.equal(bmcs.calls(node).filter((x) => x.op === 'power-off').length, 1);
    assert.ok(!bmcs.calls(node).some((x) => x.op === 'power-on'));
  });
});
