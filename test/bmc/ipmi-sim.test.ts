/**
 * IPMI with real parts: OpenIPMI's ipmi_sim as a LAN BMC on loopback (a user and a password,
 * RMCP+), its chassis power wired to a simulated host, driven through the real client — ipmitool
 * run by src/bmc/ipmi.ts: power status, power cycle, a whole PowerCycle step (off confirmed, pods
 * fenced only then, on confirmed, new boot id), the BMC's errors (wrong password, wrong user,
 * unreachable, timeout) classified and free of the password, and BMC health (SEL + sensors)
 * through the same path read as catalogue conditions. One ipmi_sim for the whole file.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BmcHealthPoller } from '../../src/bmc/health.js';
import { DEFAULT_IPMI_OPTIONS, ipmiClient, type IpmiOptions } from '../../src/bmc/ipmi.js';
import { createOutOfBand, type OutOfBand } from '../../src/bmc/out-of-band.js';
import { powerCycleNode } from '../../src/bmc/power-cycle.js';
import type { BmcTarget } from '../../src/bmc/types.js';
import { systemClock } from '../../src/core/clock.js';
import { ErrorCode } from '../../src/core/errors.js';
import type { NodeInfo } from '../../src/core/types.js';
import type { PodInfo } from '../../src/k8s/cluster.js';
import { POWER_CYCLE_EXIT } from '../../src/sop/sop.js';
import { mergeAnnotations } from './annotations.js';
import { startIpmiSim, type IpmiSim } from './ipmi-sim-harness.js';
import { rejection } from './rejection.js';

let sim: IpmiSim;
before(async () => {
  sim = await startIpmiSim();
});
after(() => {
  sim.stop();
});

const NODE = 'gpu-ipmi-1';
const target = (port = sim.port): BmcTarget => ({
  node: NODE,
  protocol: 'ipmi',
  host: '127.0.0.1',
  port,
  credentials: '',
  source: 'test',
});
const options = (o: Partial<IpmiOptions> = {}): IpmiOptions => ({
  ...DEFAULT_IPMI_OPTIONS,
  cipherSuite: sim.cipherSuite,
  timeoutMs: 15_000,
  ...o,
});
const signal = (): AbortSignal => AbortSignal.timeout(60_000);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The out-of-band port over the real ipmitool client, credentials as a Secret would give them. */
function outOfBand(password = sim.password, username = sim.username): OutOfBand {
  return createOutOfBand({
    selection: {
      enabled: true,
      defaultProtocol: 'ipmi',
      credentials: '',
      nodes: { [NODE]: `ipmi://127.0.0.1:${sim.port}` },
      allowedAddresses: [],
    },
    credentialsSecret: 'aegis-bmc',
    readSecret: () => Promise.resolve({ username, password }),
    connectors: {
      ipmi: (t, c) => ipmiClient(t, c, options()),
      redfish: () => {
        throw new Error('not here');
      },
    },
    timing: {
      powerOffTimeoutMs: 20_000,
      powerOnTimeoutMs: 20_000,
      bootTimeoutMs: 20_000,
      pollMs: 200,
    },
    notReadyAfterMs: 1,
  });
}

describe('ipmitool against ipmi_sim (RMCP+, user and password)', () => {
  it('power status: On', async () => {
    const bmc = ipmiClient(target(), { username: sim.username, password: sim.password }, options());
    assert.equal(await bmc.powerState(signal()), 'On');
    assert.equal(bmc.describe, `ipmi://127.0.0.1:${sim.port}`);
  });

  it('power cycle: the host goes off then on (ipmi_sim: on again 1 s later) with a new boot id', async () => {
    const bmc = ipmiClient(target(), { username: sim.username, password: sim.password }, options());
    const before = sim.host().bootId;
    const log0 = sim.powerLog().length;
    await bmc.powerCycle(signal());
    let state = await bmc.powerState(signal());
    for (let i = 0; i < 50 && (state !== 'On' || sim.host().bootId === before); i++) {
      await sleep(100);
      state = await bmc.powerState(signal());
    }
    assert.equal(state, 'On', 'the BMC reports the host on again');
    assert.deepEqual(sim.powerLog().slice(log0), ['0', '1'], 'off, then on');
    assert.notEqual(sim.host().bootId, before, 'a new boot id');
  });

  it('wrong password: BMC_AUTH_FAILED in ipmitool words, neither password in the message', async () => {
    const bmc = ipmiClient(target(), { username: sim.username, password: 'Wr0ng-pw' }, options());
    const e = await rejection(bmc.powerState(signal()));
    assert.equal(e.code, ErrorCode.BmcAuthFailed);
    assert.match(
      e.message,
      /the BMC refused the credentials for "chassis power status" \(.*RAKP 2 HMAC is invalid/,
    );
    assert.ok(!e.message.includes('Wr0ng-pw') && !e.message.includes(sim.password));
  });

  it('unknown user: BMC_AUTH_FAILED (unauthorized name)', async () => {
    const bmc = ipmiClient(target(), { username: 'nobody', password: sim.password }, options());
    const e = await rejection(bmc.powerState(signal()));
    assert.equal(e.code, ErrorCode.BmcAuthFailed);
    assert.match(e.message, /unauthorized name/);
  });

  it('nothing listening: BMC_UNREACHABLE', async () => {
    const bmc = ipmiClient(
      target(1),
      { username: sim.username, password: sim.password },
      options({ sessionTimeoutSeconds: 1, retries: 1 }),
    );
    const e = await rejection(bmc.powerState(signal()));
    assert.equal(e.code, ErrorCode.BmcUnreachable);
    assert.match(e.message, /ipmi:\/\/127\.0\.0\.1:1: no IPMI session for "chassis power status"/);
  });

  it('no answer in time: BMC_TIMEOUT (the process is killed at the deadline)', async () => {
    const bmc = ipmiClient(
      target(1),
      { username: sim.username, password: sim.password },
      options({ sessionTimeoutSeconds: 5, retries: 3, timeoutMs: 300 }),
    );
    const e = await rejection(bmc.powerState(signal()));
    assert.equal(e.code, ErrorCode.BmcTimeout);
    assert.match(e.message, /got no answer within 0 s|got no answer within/);
  });

  it("the password is never on ipmitool's command line, only in its own environment", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aegis-fake-ipmitool-'));
    try {
      const fake = join(dir, 'ipmitool');
      writeFileSync(
        fake,
        `#!/bin/sh\nprintf '%s\\n' "$@" > '${dir}/argv'\nprintf '%s' "$IPMI_PASSWORD" > '${dir}/env'\necho 'Chassis Power is on'\n`,
      );
      chmodSync(fake, 0o755);
      const bmc = ipmiClient(
        target(),
        { username: 'u', password: 'Secr3t-On-Env' },
        options({ command: fake }),
      );
      assert.equal(await bmc.powerState(signal()), 'On');
      const argv = readFileSync(join(dir, 'argv'), 'utf8');
      assert.ok(!argv.includes('Secr3t-On-Env'), argv);
      assert.match(argv, /^-E$/m, 'ipmitool reads IPMI_PASSWORD (-E)');
      assert.equal(readFileSync(join(dir, 'env'), 'utf8'), 'Secr3t-On-Env');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a PowerCycle step through ipmi_sim', () => {
  /** A node whose readiness and boot id are the simulated host's; its pods; what happened when. */
  function world(): {
    deps: Parameters<typeof powerCycleNode>[0];
    events: string[];
    node: () => NodeInfo;
  } {
    const events: string[] = [];
    let pods: PodInfo[] = [
      {
        namespace: 'team-a',
        name: 'train-0',
        node: NODE,
        phase: 'Running',
        daemonSet: false,
        mirror: false,
        labels: {},
      },
    ];
    let annotations: Record<string, string> = {};
    let rv = 1;
    const node = (): NodeInfo => {
      const h = sim.host();
      return {
        name: NODE,
        resourceVersion: String(rv),
        ready: h.on ? true : 'Unknown',
        unschedulable: true,
        labels: {},
        annotations,
        taints: [],
        bootId: h.bootId,
      };
    };
    return {
      events,
      node,
      deps: {
        clock: systemClock,
        outOfBand: outOfBand(),
        drain: () => Promise.resolve({ status: 'Succeeded' }),
        cluster: {
          getNode: () => Promise.resolve(node()),
          patchNodeAnnotations: (_n, a) => {
            annotations = mergeAnnotations(annotations, a);
            rv++;
            return Promise.resolve(node());
          },
          listPodsOnNode: () => Promise.resolve(pods),
          evictPod: (_ns, name) => {
            events.push(`evict ${name} while host ${sim.host().on ? 'on' : 'off'}`);
            pods = pods.map((p) => (p.name === name ? { ...p, deletionTimestampMs: 1 } : p));
            return Promise.resolve('evicted');
          },
          deletePod: (_ns, name) => {
            events.push(`delete ${name} while host ${sim.host().on ? 'on' : 'off'}`);
            pods = pods.filter((p) => p.name !== name);
            return Promise.resolve();
          },
        },
      },
    };
  }

  it('off (confirmed), pods fenced while the host is off, on (confirmed), new boot id: Succeeded', async () => {
    const w = world();
    const before = sim.host().bootId;
    const log0 = sim.powerLog().length;
    const o = await powerCycleNode(w.deps, { node: NODE, seq: 7 }, signal());
    assert.equal(o.status, 'Succeeded', o.message);
    assert.match(
      o.message ?? '',
      /power-cycled through ipmi:\/\/127\.0\.0\.1:\d+: off confirmed, 1 pod force-deleted, on confirmed/,
    );
    assert.deepEqual(sim.powerLog().slice(log0), ['0', '1'], 'one power-off, one power-on');
    assert.notEqual(sim.host().bootId, before);
    assert.deepEqual(w.events, ['evict train-0 while host off', 'delete train-0 while host off']);
    assert.equal(w.node().annotations['aegis.io/power-cycle'], undefined);
  });

  it('wrong password: Failed (exit 72) naming the refusal, no power command, pods untouched', async () => {
    const w = world();
    const log0 = sim.powerLog().length;
    const o = await powerCycleNode(
      { ...w.deps, outOfBand: outOfBand('Not-The-Pw') },
      { node: NODE, seq: 8 },
      signal(),
    );
    assert.equal(o.status, 'Failed');
    assert.equal(o.exitCode, POWER_CYCLE_EXIT.AuthFailed);
    assert.match(
      o.message ?? '',
      /refused the credentials .*RAKP 2 HMAC is invalid.*\(no power command sent\)/,
    );
    assert.ok(!(o.message ?? '').includes('Not-The-Pw'));
    assert.deepEqual(sim.powerLog().slice(log0), []);
    assert.deepEqual(w.events, []);
  });
});

describe('BMC health through the same IPMI path', () => {
  it('SEL and sensors of ipmi_sim read as conditions: fan, PSU, temperature, DIMM; cleared ones go', async () => {
    const node: NodeInfo = {
      name: NODE,
      resourceVersion: '1',
      ready: true,
      unschedulable: false,
      labels: {},
      annotations: {},
      taints: [],
    };
    const poller = new BmcHealthPoller({
      outOfBand: outOfBand(),
      clock: systemClock,
      wanted: () => true,
      staleAfterMs: 60_000,
      selWindowMs: 86_400_000,
      concurrency: 2,
    });
    const summary = (): string[] =>
      poller
        .reading(Date.now())
        .observations.map((o) => `${o.condition}${o.id === '' ? '' : `/${o.id}`}`)
        .sort();
    await poller.poll([node], signal());
    assert.deepEqual(summary(), [], 'healthy at start');
    assert.deepEqual([...(poller.reading(Date.now()).fresh.get(NODE) ?? [])].sort(), [
      'BaseBoardCriticalIssue',
      'BaseBoardSensorWarning',
      'CpuUnhealthy',
      'MemoryUnhealthy',
    ]);
    // The BMC's SEL clock (ipmi_sim starts without one: its entries read Pre-Init), then the
    // faults, as ipmi_sim's sensors raise them (and log them in the SEL).
    sim.ipmitool(['sel', 'time', 'set', 'now']);
    await sim.console([
      'sensor_set_value 0x20 0 2 3 1',
      'sensor_set_bit 0x20 0 3 1 1 1',
      'sensor_set_value 0x20 0 1 92 1',
      'sensor_set_bit 0x20 0 5 1 1 1',
    ]);
    await poller.poll([node], signal());
    assert.deepEqual(summary(), [
      'BaseBoardCriticalIssue/fan',
      'BaseBoardCriticalIssue/power',
      'BaseBoardCriticalIssue/temperature',
      // CPU1 Temp's "Upper Non-critical going high", from the SEL.
      'BaseBoardSensorWarning',
      'MemoryUnhealthy/DIMM A1 Memory',
    ]);
    const msgs = poller
      .reading(Date.now())
      .observations.map((o) => o.msg)
      .join('\n');
    assert.match(
      msgs,
      /SEL Fan1: Lower Non-critical going low at .*Reading 300 < Threshold 800 RPM/,
    );
    assert.match(msgs, /PSU1 Status: Failure detected/);
    await sim.console(['sensor_set_value 0x20 0 2 60 1', 'sensor_set_value 0x20 0 1 45 1']);
    await poller.poll([node], signal());
    assert.deepEqual(summary(), ['BaseBoardCriticalIssue/power', 'MemoryUnhealthy/DIMM A1 Memory']);
    assert.equal(
      poller.reading(Date.now() + 120_000).observations.length,
      0,
      'stale readings vouch for nothing',
    );
  });
});
