/**
 * A running agent scraped by a real Prometheus (Debian prometheus, test/helpers/prometheus-harness),
 * and every catalogue rule of signal `aegis-nodecheck` evaluated there with its own PromQL: on a
 * fake host built from real outputs (test/fixtures/host/agent), the conditions that fire are
 * exactly the faults that host has, on the right node and device, and none of the others.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { startAgent, type RunningAgent } from '../../src/agent/agent.js';
import { stripLogPrefix } from '../../src/agent/kernel-rules.js';
import { DEFAULT_AGENT_OPTIONS } from '../../src/agent/options.js';
import { CATALOGUE, SIGNAL_PRESENCE } from '../../src/catalogue/index.js';
import { systemClock } from '../../src/core/clock.js';
import { startPrometheus, type PrometheusServer } from '../helpers/prometheus-harness.js';
import { FakeHost, h100Host, kernelLines } from './fake-host.js';

const NODE = 'gpu-001';
/** Just after the expel in sichek's real mmfs.log, so that it is within the hour. */
const T0 = Date.parse('2024-11-23T03:30:00+08:00');
const BOOT = T0 - 600_000;
let host: FakeHost;
let agent: RunningAgent;
let prom: PrometheusServer;

async function query(
  expr: string,
): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as {
    status: string;
    error?: string;
    data: { result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  assert.equal(body.status, 'success', `${expr}: ${body.error ?? ''}`);
  return body.data.result;
}

before(async () => {
  host = h100Host({
    nvidiaSmi: 'nvidia-smi/v100s-pcie-8gpu-v11.xml',
    pstoreMtimeMs: BOOT - 3_600_000,
  });
  const offset = Date.now() - T0;
  agent = await startAgent(
    {
      ...DEFAULT_AGENT_OPTIONS,
      nodeName: NODE,
      hostRoot: host.root,
      toolMode: 'direct',
      listenHost: '127.0.0.1',
      port: 0,
      conditions: false,
    },
    {
      clock: { now: () => Date.now() - offset, sleep: (ms, s) => systemClock.sleep(ms, s) },
      bootTimeMs: BOOT,
      resolve: () => Promise.resolve(['10.96.0.1']),
      log: () => undefined,
    },
  );
  await agent.ready;
  const lines = kernelLines().filter((l) =>
    ['hung_task', 'mce', 'ice_tx_timeout', 'soft_lockup'].includes(l.rule),
  );
  await host.kmsg(
    lines.map((l) => stripLogPrefix(l.line)),
    (T0 - BOOT) * 1000,
  );
  prom = await startPrometheus({
    scrapeTargets: [
      { job: 'aegis-agent', urls: [agent.url], labels: { [agent.url]: { node: NODE } } },
    ],
  });
  for (
    let i = 0;
    (await query('aegis_nodecheck_log_matches{rule="hung_task"}'))[0]?.value[1] !== '2';
    i++
  ) {
    assert.ok(i < 150, 'Prometheus never scraped the agent');
    await delay(200);
  }
});

after(async () => {
  await prom.stop();
  await agent.close();
  await host.close();
});

describe('a running agent scraped by a real Prometheus, read by the catalogue', () => {
  it("the agent is present for its node (the catalogue's presence query)", async () => {
    const presence = SIGNAL_PRESENCE['aegis-nodecheck'] ?? '';
    assert.deepEqual(
      (await query(presence)).map((r) => r.metric.node),
      [NODE],
    );
  });

  it('exactly the faults of this host fire, on its node and devices', async () => {
    const fired: string[] = [];
    for (const entry of CATALOGUE.filter((e) => e.signal === 'aegis-nodecheck')) {
      for (const r of await query(entry.expr)) {
        assert.equal(r.metric.node, NODE, entry.name);
        const device = entry.deviceLabel === '' ? '' : `{${r.metric[entry.deviceLabel] ?? '?'}}`;
        fired.push(`${entry.name}${device}=${r.value[1]}`);
      }
    }
    assert.deepEqual(
      fired.sort(),
      [
        'CpuMachineCheckError=1', // mce line (lwa-issues #117)
        'DiskSmartFailing{sdc}=1', // smartctl: Hitachi drive failing
        'GpfsExpelledFromCluster=2', // two expel lines of mmfs.log within the hour
        'IBModuleLost=6', // ib_uverbs, ib_umad, ib_cm, rdma_cm, rdma_ucm, ib_ipoib not loaded
        'IBPCIeMRRNotAlign{mlx5_0}=512', // ConnectX-5 Ex config space: MaxReadReq 512
        'IBPCIeMRRNotAlign{mlx5_1}=512', // ConnectX-3 Pro config space: MaxReadReq 512
        'IBPCIeSpeedAbnormal{mlx5_4}=8', // 8 GT/s of 16, no slower upstream port (mlx5_1 has one)
        'IBPCIeWidthAbnormal{mlx5_5}=4', // x4 of x8
        'ICETxTimeout{eth0}=1', // NETDEV WATCHDOG, old format
        'ICETxTimeout{eth4}=1', // NETDEV WATCHDOG, kernel 6.x format
        'KernelDeadlock=2', // two hung tasks
        'KernelPanic=1', // the pstore Panic record of the previous boot
        'KernelSoftLockup=3', // soft, hard and soft lockup lines
        'PeerMemModuleNotReady=1', // NVIDIA GPU + Mellanox, no nvidia_peermem
      ].sort(),
    );
  });
});
