/**
 * The node agent's resource use (`node --import tsx bench/agent.ts --seconds 300`): the compiled
 * agent (tsc of src/agent/main.ts into .tmp/, then `node --max-old-space-size=32
 * dist/agent/main.js`, as the DaemonSet runs it) against a fake host root built from the real
 * host fixtures of test/fixtures/host/agent (an H100 node: IB sysfs, lspci, /proc/modules, GPFS,
 * SMART, mmfs.log, nvidia-smi XML of 8 GPUs), with the production check intervals, a kernel log
 * FIFO receiving one real kernel line per second, a local fake API server taking the Node
 * condition writes, and /metrics scraped every 15 s as Prometheus would.
 *
 * Prints RSS (from /proc/<pid>/status, sampled every second) and CPU (utime+stime of the agent
 * from /proc/<pid>/stat over the run; its children — the stub tools — separately), as a table and
 * one JSON document. A benchmark, not a test.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { stripLogPrefix } from '../src/agent/kernel-rules.js';
import { FakeHost, fixture, h100Host, kernelLines } from '../test/agent/fake-host.js';
import { freePorts } from '../test/helpers/k8s-harness.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '120' },
    'fault-every': { type: 'string', default: '60' },
    'agent-arg': { type: 'string', multiple: true, default: [] },
  },
});
const FAULT_EVERY = Number(values['fault-every']);
const SECONDS = Number(values.seconds);
const REPO = join(import.meta.dirname, '..');
const DIST = join(REPO, '.tmp/agent-bench-dist');
const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

function buildHost(): FakeHost {
  return h100Host({ nvidiaSmi: 'nvidia-smi/v100s-pcie-8gpu-v11.xml' });
}

/** A fake API server: GET node, PATCH node status (counted). */
/** A fake API server: GET node, PATCH node status (bodies kept with their arrival time). */
async function fakeApiServer(): Promise<{
  url: string;
  patches: { at: number; body: string }[];
  close: () => void;
}> {
  const patches: { at: number; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.method === 'PATCH') patches.push({ at: performance.now(), body });
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ metadata: { labels: {} }, status: { conditions: [] } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    patches,
    close: () => server.close(),
  };
}

/**
 * The agent's share of the fast path: a fatal Xid line written to the kernel log → the PATCH of
 * aegis.io/GpuXid naming that GPU reaches the API server. One sample per distinct GPU of the real
 * Xid lines (a GPU already listed changes nothing, so nothing is written).
 */
async function xidToPatchMs(
  host: FakeHost,
  api: { patches: { at: number; body: string }[] },
): Promise<number[]> {
  const fatal = kernelLines().filter(
    (l) => l.rule === 'xid' && /\): (48|74|79|94|119),/.test(l.line),
  );
  const out: number[] = [];
  for (const { line, device } of fatal) {
    const from = api.patches.length;
    const t0 = performance.now();
    await host.kmsg([stripLogPrefix(line)], 1e6);
    for (let i = 0; i < 400; i++) {
      const hit = api.patches.slice(from).find((p) => p.body.includes(`GPU ${device}`));
      if (hit) {
        out.push(hit.at - t0);
        break;
      }
      await delay(5);
    }
  }
  return out;
}

function cpuTicks(pid: number): { self: number; children: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const n = (i: number): number => Number(fields[i - 3]); // fields after "pid (comm)" start at 3
  return { self: n(14) + n(15), children: n(16) + n(17) };
}

/** The agent's `cat` of the kernel log (a child that lives as long as the agent). */
function catPid(pid: number): number | undefined {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ');
  return children.map(Number).find((c) => readFileSync(`/proc/${c}/comm`, 'utf8').trim() === 'cat');
}

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

async function main(): Promise<void> {
  process.stderr.write('building the agent (tsc, src/agent/main.ts and what it imports)...\n');
  // Only the agent's import graph: the compiled files are what the image's dist/agent holds.
  const tsc = [
    'tsc',
    join(REPO, 'src/agent/main.ts'),
    '--outDir',
    DIST,
    '--rootDir',
    join(REPO, 'src'),
  ];
  const flags = [
    '--ignoreConfig',
    '--target',
    'ES2022',
    '--module',
    'nodenext',
    '--moduleResolution',
    'nodenext',
    '--strict',
    '--exactOptionalPropertyTypes',
    '--noUncheckedIndexedAccess',
    '--lib',
    'ES2023',
    '--skipLibCheck',
    '--types',
    'node',
  ];
  execFileSync('npx', [...tsc, ...flags], { cwd: REPO, stdio: 'inherit' });
  const host = buildHost();
  const api = await fakeApiServer();
  const [port = 0] = await freePorts(1);
  writeFileSync(join(host.root, 'token'), 'bench');
  const args = [
    '--max-old-space-size=32',
    join(DIST, 'agent/main.js'),
    '--node-name',
    'gpu-001',
    '--host-root',
    host.root,
    '--tool-mode',
    'direct',
    '--listen-host',
    '127.0.0.1',
    '--port',
    String(port),
    '--dns-name',
    'localhost',
    '--kube-server',
    api.url,
    '--kube-token-file',
    join(host.root, 'token'),
    ...values['agent-arg'],
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const pid = child.pid ?? 0;
  process.on('exit', () => child.kill('SIGKILL')); // never leave the agent behind
  await delay(3_000); // start-up (module load, first round of checks) is excluded from the CPU figure
  const latencyMs = await xidToPatchMs(host, api);
  const faults = kernelLines()
    .filter((l) => l.rule !== '-')
    .map((l) => stripLogPrefix(l.line));
  const quiet = fixture('kernel/kmsg-gpud-1.log')
    .trim()
    .split('\n')
    .map((l) => l.slice(l.indexOf(';') + 1));
  const cat = catPid(pid) ?? 0;
  const start = { t: Date.now(), cpu: cpuTicks(pid), cat: cpuTicks(cat) };
  const rss: number[] = [];
  let scrapes = 0;
  for (let s = 0; s < SECONDS; s++) {
    const line =
      s % FAULT_EVERY === 0 ? faults[(s / FAULT_EVERY) % faults.length] : quiet[s % quiet.length];
    await host.kmsg([line ?? ''], s * 1e6);
    rss.push(rssMb(pid));
    if (s % 15 === 0) {
      await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
      scrapes++;
    }
    await delay(1_000);
  }
  const end = { t: Date.now(), cpu: cpuTicks(pid), cat: cpuTicks(cat) };
  const catRssMb = rssMb(cat);
  const stopping = Date.now();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const stopMs = Date.now() - stopping;
  const wallS = (end.t - start.t) / 1000;
  const cpu = (ticks: number): number => (100 * ticks) / TICKS / wallS;
  const result = {
    seconds: Math.round(wallS),
    rssMb: {
      max: Math.max(...rss),
      mean: rss.reduce((a, b) => a + b, 0) / rss.length,
      last: rss.at(-1) ?? 0,
    },
    cpuPercentOfOneCore: {
      agent: cpu(end.cpu.self - start.cpu.self),
      toolStubs: cpu(end.cpu.children - start.cpu.children),
      kmsgCat: cpu(end.cat.self - start.cat.self),
    },
    kmsgCatRssMb: catRssMb,
    kernelLines: SECONDS,
    faultLineEveryS: FAULT_EVERY,
    scrapes,
    conditionWrites: api.patches.length,
    xidLineToPatchMs: latencyMs.map((x) => Math.round(x * 10) / 10),
    sigtermToExitMs: stopMs,
  };
  api.close();
  await host.close();
  process.stdout.write(
    `agent, ${result.seconds} s, production intervals, 1 kernel line/s (a fault line every ${FAULT_EVERY} s), scrape every 15 s\n` +
      `  RSS MB        max ${result.rssMb.max.toFixed(1)}  mean ${result.rssMb.mean.toFixed(1)}  last ${result.rssMb.last.toFixed(1)}\n` +
      `  CPU % of 1 core  agent ${result.cpuPercentOfOneCore.agent.toFixed(2)}  (tool stubs ${result.cpuPercentOfOneCore.toolStubs.toFixed(2)}, kmsg cat ${result.cpuPercentOfOneCore.kmsgCat.toFixed(2)} with ${catRssMb.toFixed(1)} MB RSS)\n` +
      `  SIGTERM to exit ${stopMs} ms\n` +
      `  Xid line → Node condition PATCH (ms): ${result.xidLineToPatchMs.join(', ')}\n` +
      `${JSON.stringify(result)}\n`,
  );
}

await main();
