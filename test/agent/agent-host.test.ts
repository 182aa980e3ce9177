/**
 * The agent end to end against fake host roots built from real host output
 * (test/fixtures/host/agent, SOURCE.md): stub tools, sysfs trees, a FIFO as /dev/kmsg. The test
 * scrapes /metrics over HTTP and reads the Node conditions from an in-memory Kubernetes port.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { startAgent, type RunningAgent } from '../../src/agent/agent.js';
import { DEFAULT_AGENT_OPTIONS, type AgentOptions } from '../../src/agent/options.js';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { FakeHost, fixture, h100Host, kernelLines } from './fake-host.js';
import { FakeNodePort } from './fake-node-port.js';
import { matching, scrape, value, type Sample } from './scrape.js';

/** Wall time of the scenario: just after the expel in sichek's real mmfs.log. */
const T0 = Date.parse('2024-11-23T03:30:00+08:00');
const BOOT = T0 - 600_000;
const HOUR = 3_600_000;
const running: { agent: RunningAgent; host: FakeHost }[] = [];
after(async () => {
  for (const r of running) {
    await r.agent.close();
    await r.host.close();
  }
});

function clockAt(t0: number): Clock {
  const offset = Date.now() - t0;
  return { now: () => Date.now() - offset, sleep: (ms, signal) => systemClock.sleep(ms, signal) };
}

function options(host: FakeHost, over: Partial<AgentOptions> = {}): AgentOptions {
  return {
    ...DEFAULT_AGENT_OPTIONS,
    nodeName: 'gpu-001',
    hostRoot: host.root,
    toolMode: 'direct',
    listenHost: '127.0.0.1',
    port: 0,
    ...over,
  };
}

async function start(host: FakeHost, over: Partial<AgentOptions> = {}, port = new FakeNodePort()) {
  const agent = await startAgent(options(host, over), {
    clock: clockAt(T0),
    bootTimeMs: BOOT,
    nodePort: port,
    resolve: () => Promise.resolve(['10.96.0.1']),
    log: () => undefined,
  });
  running.push({ agent, host });
  return { agent, port };
}

async function eventually(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await probe()) return;
    await delay(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

const problem = (s: Sample[], check: string, device?: string) =>
  value(s, 'aegis_nodecheck_problem', device === undefined ? { check } : { check, device });
const kernel = (s: Sample[], rule: string, device?: string) =>
  value(
    s,
    'aegis_nodecheck_log_matches',
    device === undefined ? { source: 'kernel', rule } : { source: 'kernel', rule, device },
  );

describe('agent on a real H100 node (fake host root from real outputs)', () => {
  const host = h100Host({
    nvidiaSmi: 'nvidia-smi/a100-sxm4-v12.xml',
    pstoreMtimeMs: BOOT - HOUR,
  });
  let agent: RunningAgent;
  let port: FakeNodePort;

  it('starts, serves /metrics and reports every check', async () => {
    ({ agent, port } = await start(host));
    await agent.ready;
    const s = await scrape(agent.url);
    assert.equal(value(s, 'aegis_nodecheck_up'), 1);
    assert.deepEqual(
      [
        'GpuHung',
        'GpuCheckFailed',
        'GpuErrResetRequired',
        'IBNetDriverFailedLoad',
        'RoceHostOffline',
        'GpfsNotStarted',
        'GpfsTestFailed',
        'DnsTestFailed',
      ].map((c) => problem(s, c)),
      [0, 0, 0, 0, 0, 0, 0, 0],
    );
    assert.equal(problem(s, 'DiskSmartFailing', 'sdc'), 1);
  });

  it('exports each HCA PCIe link and Max Read Request Size with its PCI address', async () => {
    const s = await scrape(agent.url);
    const of = (metric: string) =>
      matching(s, `aegis_nodecheck_hca_pcie_${metric}`, {})
        .map((x) => `${x.labels.device ?? ''}@${x.labels.pci_bdf ?? ''}=${String(x.value)}`)
        .sort();
    assert.deepEqual(of('max_read_request_bytes'), [
      'mlx5_0@0000:1a:00.0=512',
      'mlx5_1@0000:3c:00.0=512',
    ]);
    assert.deepEqual(of('link_speed_gts'), [
      'mlx5_0@0000:1a:00.0=16',
      'mlx5_1@0000:3c:00.0=8',
      'mlx5_4@0000:4d:00.0=8',
      'mlx5_5@0000:5e:00.0=8',
    ]);
    assert.deepEqual(of('link_max_speed_gts'), [
      'mlx5_0@0000:1a:00.0=16',
      'mlx5_1@0000:3c:00.0=8',
      'mlx5_4@0000:4d:00.0=16',
      'mlx5_5@0000:5e:00.0=8',
    ]);
    assert.deepEqual(of('link_width'), [
      'mlx5_0@0000:1a:00.0=8',
      'mlx5_1@0000:3c:00.0=4',
      'mlx5_4@0000:4d:00.0=4',
      'mlx5_5@0000:5e:00.0=4',
    ]);
    assert.deepEqual(of('link_max_width'), [
      'mlx5_0@0000:1a:00.0=8',
      'mlx5_1@0000:3c:00.0=4',
      'mlx5_4@0000:4d:00.0=4',
      'mlx5_5@0000:5e:00.0=8',
    ]);
    const available = (check: string) => value(s, 'aegis_nodecheck_check_available', { check });
    assert.deepEqual(
      ['IBPCIeSpeedAbnormal', 'IBPCIeWidthAbnormal', 'IBPCIeMRRNotAlign'].map(available),
      [1, 1, 0],
    );
  });

  it('kernel modules follow the hardware of the lspci: half the RDMA stack and nvidia_peermem missing', async () => {
    const s = await scrape(agent.url);
    const mod = (m: string) => value(s, 'aegis_nodecheck_kernel_module_loaded', { module: m });
    assert.deepEqual(
      ['mlx5_core', 'ib_uverbs', 'rdma_cm', 'nvidia', 'nvidia_peermem'].map(mod),
      [1, 0, 0, 1, 0],
    );
  });

  it('the previous boot panicked (pstore record): log count and aegis.io/KernelPanic', async () => {
    const s = await scrape(agent.url);
    assert.equal(kernel(s, 'panic'), 1);
    assert.equal(value(s, 'aegis_nodecheck_check_available', { check: 'KernelPanic' }), 1);
    await eventually('KernelPanic condition', () =>
      Promise.resolve(port.condition('aegis.io/KernelPanic')?.status === 'True'),
    );
    assert.equal(port.condition('aegis.io/KernelPanic')?.reason, 'PanicOnPreviousBoot');
  });

  it('the mmfs.log expels within the hour count, the older quorum loss does not', async () => {
    const s = await scrape(agent.url);
    assert.equal(value(s, 'aegis_nodecheck_log_matches', { source: 'mmfs', rule: 'expelled' }), 2);
    assert.equal(
      value(s, 'aegis_nodecheck_log_matches', { source: 'mmfs', rule: 'quorum_connection_down' }),
      0,
    );
  });

  it('kernel log lines written to /dev/kmsg are counted live and raise the fast-path conditions', async () => {
    await host.kmsgRaw(fixture('kernel/kmsg-gpud-1.log')); // a real node's healthy history first
    const faults = kernelLines().filter(
      (l) => l.rule !== '-' && l.rule !== 'panic' && !l.line.includes('[ T1946]'),
    );
    const { stripLogPrefix } = await import('../../src/agent/kernel-rules.js');
    await host.kmsg(
      faults.map((l) => stripLogPrefix(l.line)),
      (T0 - BOOT) * 1000,
    );
    await eventually(
      'kernel counts',
      async () => kernel(await scrape(agent.url), 'hung_task') === 2,
    );
    const s = await scrape(agent.url);
    assert.equal(kernel(s, 'soft_lockup'), 3);
    assert.equal(kernel(s, 'mce'), 1);
    assert.equal(kernel(s, 'ice_tx_timeout', 'eth0'), 1);
    assert.equal(kernel(s, 'ice_tx_timeout', 'eth4'), 1);
    assert.equal(kernel(s, 'xid', '0000:06:00'), 1);
    assert.equal(kernel(s, 'mlx5_error', '0000:01:00.0'), 3);
    assert.equal(matching(s, 'aegis_nodecheck_log_matches', { rule: 'xid' }).length, 8);
    await eventually('GpuXid condition', () =>
      Promise.resolve(port.condition('aegis.io/GpuXid')?.status === 'True'),
    );
    assert.equal(port.condition('aegis.io/GpuXid')?.reason, 'Xid79');
    assert.match(port.condition('aegis.io/GpuXid')?.message ?? '', /Xid 48 on GPU 0000:07:00/);
    assert.equal(port.condition('aegis.io/SoftLockup')?.status, 'True');
    assert.equal(port.condition('aegis.io/GpuHung')?.status, 'False');
  });
});

describe('agent: a GPU is lost, then nvidia-smi hangs', () => {
  const host = new FakeHost()
    .kmsgFifo()
    .stub('/usr/bin/nvidia-smi', [
      { mode: 'lost', stderr: 'nvidia-smi/gpu-lost-EDITED-00-0e.txt', exit: 15 },
      { mode: 'hang', hangS: 30 },
      { stdout: 'nvidia-smi/v100s-pcie-8gpu-v11.xml' },
    ]);
  const intervals = { ...DEFAULT_AGENT_OPTIONS.intervals, gpuMs: 100 };

  it('GpuCheckFailed names GPU 1, GpuHung is raised and cleared, with the Node condition', async () => {
    const { agent, port } = await start(host, { intervals, toolTimeoutMs: 400 });
    await agent.ready;
    assert.equal(problem(await scrape(agent.url), 'GpuCheckFailed'), 0);
    host.mode('/usr/bin/nvidia-smi', 'lost');
    await eventually(
      'lost GPU',
      async () => problem(await scrape(agent.url), 'GpuCheckFailed', '01000000') === 1,
    );
    host.mode('/usr/bin/nvidia-smi', 'hang');
    await eventually('GpuHung', async () => problem(await scrape(agent.url), 'GpuHung') === 1);
    await eventually('GpuHung condition', () =>
      Promise.resolve(port.condition('aegis.io/GpuHung')?.status === 'True'),
    );
    host.mode('/usr/bin/nvidia-smi', '');
    await eventually(
      'GpuHung cleared',
      async () => problem(await scrape(agent.url), 'GpuHung') === 0,
    );
    await eventually('condition cleared', () =>
      Promise.resolve(port.condition('aegis.io/GpuHung')?.status === 'False'),
    );
  });
});

describe('agent on a host where nothing can be read', () => {
  it('reports "cannot check" for every condition, never a fault, and writes no condition', async () => {
    const host = new FakeHost();
    const { agent, port } = await start(host, { dnsNames: [] });
    await agent.ready;
    const s = await scrape(agent.url);
    assert.equal(value(s, 'aegis_nodecheck_up'), 1);
    assert.deepEqual(matching(s, 'aegis_nodecheck_problem'), []);
    assert.deepEqual(matching(s, 'aegis_nodecheck_log_matches'), []);
    const available = matching(s, 'aegis_nodecheck_check_available');
    assert.ok(available.length >= 38);
    assert.deepEqual(
      available.filter((x) => x.value !== 0),
      [],
    );
    assert.equal(port.patches.length, 0);
  });
});
