/**
 * Real exporter output (test/fixtures/prometheus/, public captures) served to a real Prometheus
 * (Debian 2.42, scraping every second), read by the daemon's Inspector over HTTP from a backend
 * (that Prometheus, or the store it remote-writes to): the cases of issue 13 where real sites
 * tripped the rules. Shared by test/prometheus/ and test/victoriametrics/.
 *
 * Two nodes, as kube-state-metrics' capture names them: A runs 8 H100s shared by time-slicing
 * (nvidia.com/gpu capacity 32 = 8 × 4 replicas), B runs 8 A800s with GPU 0 in MIG mode (mixed
 * strategy: nvidia.com/gpu 7, nvidia.com/mig-2g.20gb 3). Both serve node_exporter's end-to-end
 * output (InfiniBand mlx4_0 ports 1 and 2). Each exporter is its own scrape target per node with a
 * `node` target label, as the relabel in docs/prometheus.md sets it; kube-state-metrics is one
 * target for the cluster. The edits each case makes to the captures are named below.
 *
 * The lookback is 10 s instead of 5 minutes so that samples a failing scrape leaves behind vanish
 * within the test; that a stale exporter is seen within a scrape interval, not a lookback, is what
 * the unparsable-page case measures.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  applyDetectionConfig,
  CATALOGUE,
  SIGNAL_PRESENCE,
  type CatalogueEntry,
} from '../../src/catalogue/index.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { systemClock } from '../../src/core/clock.js';
import type { NodeInfo } from '../../src/core/types.js';
import { ConditionTracker, type ConditionEdge } from '../../src/engine/condition-tracker.js';
import { Inspector, type Inspection } from '../../src/engine/inspector.js';
import { createPromClient } from '../../src/prom/prom-client.js';
import { aNode } from './builders.js';
import type { DetectionBackend, RunningBackend } from './detection-cases.js';
import { targetStatus, waitFor, type PrometheusServer } from './prometheus-harness.js';

const SCRAPE_MS = 1000;
const LOOKBACK_MS = 10_000;
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'prometheus');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const signal = new AbortController().signal;

/** The two nodes of the kube-state-metrics capture. */
const A = 'ip-192-168-87-144.ec2.internal';
const B = 'ip-192-168-97-44.ec2.internal';
const NODES: NodeInfo[] = [A, B].map((name) => aNode({ name }));

// ---------------------------------------------------------------- the captures and their edits

const H100 = fixture('dcgm-exporter-h100.prom');
const A800 = fixture('dcgm-exporter-a800-mig.prom');
const NODE_E2E = fixture('node-exporter-e2e.prom');
const KSM = fixture('kube-state-metrics-nodes.prom');

/** Lines of a page without those matching `re`. */
function without(page: string, re: RegExp): string {
  return page
    .split('\n')
    .filter((l) => !re.test(l))
    .join('\n');
}

/** The A800 page as it parses: without the vGPU field dcgm-exporter prints as `ERROR - …`. */
const A800_PARSABLE = without(A800, /^(# (HELP|TYPE) )?DCGM_FI_DEV_VGPU_PER_PROCESS_UTILIZATION\b/);

/** A GPU fell off the bus: dcgm-exporter no longer reports any series of it. */
const gpuLost = (page: string, gpu: number): string => without(page, new RegExp(`gpu="${gpu}"`));

/**
 * Edit: what kube-state-metrics adds for GPU nodes (capacity and allocatable of the device plugin's
 * resources; GPU Feature Discovery's labels, allow-listed). A: 8 GPUs × 4 time-slicing replicas.
 * B: MIG mixed strategy, GPU 0 split in three 2g.20gb instances, GPUs 1-7 whole.
 */
function ksmPage(opts: { gfdLabels: boolean }): string {
  const res = (node: string, resource: string, v: number): string[] =>
    ['capacity', 'allocatable'].map(
      (k) =>
        `kube_node_status_${k}{node="${node}",resource="${resource}",unit="integer"} ${String(v)}`,
    );
  const labels = opts.gfdLabels
    ? [
        '# HELP kube_node_labels [STABLE] Kubernetes labels converted to Prometheus labels.',
        '# TYPE kube_node_labels gauge',
        `kube_node_labels{node="${A}",label_nvidia_com_gpu_count="8",label_nvidia_com_gpu_product="NVIDIA-H100-80GB-HBM3-SHARED",label_nvidia_com_gpu_replicas="4",label_nvidia_com_gpu_sharing_strategy="time-slicing"} 1`,
        `kube_node_labels{node="${B}",label_nvidia_com_gpu_count="8",label_nvidia_com_gpu_product="NVIDIA-A800-SXM4-80GB",label_nvidia_com_gpu_replicas="1",label_nvidia_com_mig_strategy="mixed"} 1`,
      ]
    : [];
  const gpu = [
    ...res(A, 'nvidia_com_gpu', 32),
    ...res(B, 'nvidia_com_gpu', 7),
    ...res(B, 'nvidia_com_mig_2g_20gb', 3),
  ];
  // The capture's own families, with the GPU resources after its samples of the same family.
  let page = KSM;
  for (const k of ['capacity', 'allocatable']) {
    const family = `kube_node_status_${k}`;
    const mine = gpu.filter((l) => l.startsWith(`${family}{`));
    const lines = page.split('\n');
    const last = lines.findLastIndex((l) => l.startsWith(`${family}{`));
    lines.splice(last + 1, 0, ...mine);
    page = lines.join('\n');
  }
  // The capture has kube_node_labels' HELP/TYPE and no samples (no label allow-listed).
  page = without(page, /^# (HELP|TYPE) kube_node_labels /);
  return `${page.trimEnd()}\n${labels.join('\n')}\n`;
}

/** Edit: an IB port's state (node_exporter infiniband collector). */
function ibPort(page: string, device: string, port: string, state: number, phys: number): string {
  return page
    .replace(
      new RegExp(`^node_infiniband_state_id\\{device="${device}",port="${port}"\\} \\d+$`, 'm'),
      `node_infiniband_state_id{device="${device}",port="${port}"} ${String(state)}`,
    )
    .replace(
      new RegExp(
        `^node_infiniband_physical_state_id\\{device="${device}",port="${port}"\\} \\d+$`,
        'm',
      ),
      `node_infiniband_physical_state_id{device="${device}",port="${port}"} ${String(phys)}`,
    );
}

/** The infiniband collector failed: node_exporter serves none of its families and says so. */
function ibCollectorFailed(page: string): string {
  return without(page, /^(# (HELP|TYPE) )?node_infiniband_/).replace(
    'node_scrape_collector_success{collector="infiniband"} 1',
    'node_scrape_collector_success{collector="infiniband"} 0',
  );
}

/**
 * Edit: the filesystem collector's series of a Kubernetes GPU node (the e2e capture runs without
 * that collector): `/` and `/var` (ext4, read-write unless `rootReadOnly`), `/usr` read-only (an
 * immutable OS image), and a pod's ReadOnlyMany PVC bind-mounted by the kubelet, read-only and 99 %
 * full. Format as node_exporter prints it.
 */
function withFilesystems(page: string, opts: { rootReadOnly: boolean }): string {
  const pvc =
    '/var/lib/kubelet/pods/8ca83d2e-1d59-462a-a9be-8bff5208b211/volumes/kubernetes.io~csi/pvc-2c6e5f0a-6a4b-4c1e-9d1f-0c2b9e8f7a31/mount';
  const mounts = [
    { device: '/dev/nvme0n1p2', fstype: 'ext4', mountpoint: '/', ro: opts.rootReadOnly ? 1 : 0 },
    { device: '/dev/nvme0n1p3', fstype: 'ext4', mountpoint: '/usr', ro: 1 },
    { device: '/dev/nvme1n1', fstype: 'ext4', mountpoint: '/var', ro: 0 },
    { device: '/dev/rbd0', fstype: 'ext4', mountpoint: pvc, ro: 1 },
  ];
  const family = (name: string, help: string, value: (m: (typeof mounts)[number]) => number) => [
    `# HELP ${name} ${help}`,
    `# TYPE ${name} gauge`,
    ...mounts.map(
      (m) =>
        `${name}{device="${m.device}",fstype="${m.fstype}",mountpoint="${m.mountpoint}"} ${String(value(m))}`,
    ),
  ];
  const lines = [
    ...family(
      'node_filesystem_avail_bytes',
      'Filesystem space available to non-root users in bytes.',
      (m) => (m.mountpoint === pvc ? 1e9 : 4e11),
    ),
    ...family('node_filesystem_readonly', 'Filesystem read-only status.', (m) => m.ro),
    ...family('node_filesystem_size_bytes', 'Filesystem size in bytes.', (m) =>
      m.mountpoint === pvc ? 1e11 : 9e11,
    ),
  ];
  return (
    page
      .replace(
        'node_scrape_collector_success{collector="filefd"} 1',
        `node_scrape_collector_success{collector="filefd"} 1\nnode_scrape_collector_success{collector="filesystem"} 1`,
      )
      .trimEnd() + `\n${lines.join('\n')}\n`
  );
}

// ---------------------------------------------------------------- serving

/** One scrape target: a server answering the page it is given (or an HTTP error). */
interface Target {
  readonly url: string;
  page: string;
  status: number;
  readonly server: Server;
}

async function serve(page: string): Promise<Target> {
  const server = createServer();
  const target = { url: '', page, status: 200, server };
  server.on('request', (_req, res) => {
    res.statusCode = target.status;
    res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
    res.end(target.status === 200 ? target.page : 'internal error\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(target, { url: `http://127.0.0.1:${String(port)}` });
}

// ---------------------------------------------------------------- the test

/** The exporters served here (the others are absent: their rules stay stale, as they should). */
const SERVED = new Set(['dcgm-exporter', 'node-exporter', 'kube-state-metrics']);

/** `<node> <signal>` of the served exporters stale in `insp`. */
function staleServed(insp: Inspection): string[] {
  return [...insp.staleByNode].flatMap(([node, set]) =>
    [...set].filter((s) => SERVED.has(s)).map((s) => `${node} ${s}`),
  );
}

/** `<condition> <node> <device>` of every observation of the conditions named. */
function seen(insp: Inspection, names?: ReadonlySet<string>): string[] {
  return insp.observations
    .filter((o) => names === undefined || names.has(o.condition))
    .map((o) => `${o.condition} ${o.node}${o.id === '' ? '' : ` ${o.id}`}`)
    .sort();
}

/** The captures-with-edits cases of issue 13 through `backend`. */
export function captureCases(backend: DetectionBackend): void {
  describe(`real exporter output on ${backend.name}`, () => {
    let prom: PrometheusServer;
    let store: RunningBackend;
    const dcgm: Record<string, Target> = {};
    const nodeExp: Record<string, Target> = {};
    let ksm: Target;
    /** The catalogue as shipped, and as a site configures it (config `detection`). */
    let plain: Inspector;
    let site: Inspector;
    let siteCatalogue: CatalogueEntry[];

    const healthyPages = (): void => {
      dcgm[A]!.page = H100;
      dcgm[B]!.page = A800_PARSABLE;
      // mlx4_0 port 2 is not cabled by design: DOWN, physical state Polling.
      const e2e = ibPort(NODE_E2E, 'mlx4_0', '2', 1, 2);
      nodeExp[A]!.page = withFilesystems(e2e, { rootReadOnly: false });
      nodeExp[B]!.page = withFilesystems(e2e, { rootReadOnly: false });
      ksm.page = ksmPage({ gfdLabels: true });
      ksm.status = 200;
    };

    /** Resolves once every target was scraped after `sinceMs` and the store serves it. */
    const scrapedAfter = async (sinceMs: number): Promise<void> => {
      await waitFor(
        async () => (await targetStatus(prom.url)).every((t) => t.lastScrapeMs > sinceMs),
        10_000,
        { what: 'a scrape of every target after the change' },
      );
      await store.caughtUp(sinceMs);
      await delay(200);
    };
    const change = async (edit: () => void): Promise<void> => {
      const at = Date.now();
      edit();
      await scrapedAfter(at);
    };
    const inspect = (inspector: Inspector): Promise<Inspection> => inspector.inspect(NODES, signal);

    before(async () => {
      for (const node of [A, B]) {
        dcgm[node] = await serve('');
        nodeExp[node] = await serve('');
      }
      ksm = await serve('');
      healthyPages();
      const labelsOf = (targets: Record<string, Target>) =>
        Object.fromEntries(Object.entries(targets).map(([node, t]) => [t.url, { node }]));
      store = await backend.start({
        scrapeIntervalMs: SCRAPE_MS,
        lookbackDeltaMs: LOOKBACK_MS,
        scrapeTargets: [
          { job: 'dcgm-exporter', urls: [A, B].map((n) => dcgm[n]!.url), labels: labelsOf(dcgm) },
          {
            job: 'node-exporter',
            urls: [A, B].map((n) => nodeExp[n]!.url),
            labels: labelsOf(nodeExp),
          },
          { job: 'kube-state-metrics', urls: [ksm.url] },
        ],
      });
      prom = store.prom;
      const metrics = createPromClient({ url: store.queryUrl, flavor: backend.flavor });
      const options = {
        concurrency: 8,
        queryTimeoutMs: 10_000,
        compatibility: false,
        shareSelections: true,
        intervalMs: SCRAPE_MS,
      };
      const config = ConfigSchema.parse({ detection: { ignoreIbPorts: ['mlx4_0/2'] } });
      siteCatalogue = applyDetectionConfig(CATALOGUE, config.detection);
      plain = new Inspector({
        catalogue: CATALOGUE,
        presence: SIGNAL_PRESENCE,
        metrics,
        clock: systemClock,
        options,
      });
      site = new Inspector({
        catalogue: siteCatalogue,
        presence: SIGNAL_PRESENCE,
        metrics,
        clock: systemClock,
        options,
      });
      await waitFor(
        async () => {
          const t = await targetStatus(prom.url);
          return t.length === 5 && t.every((x) => x.health === 'up');
        },
        30_000,
        { what: 'targets up' },
      );
      await waitFor(
        async () => staleServed(await inspect(site)).length === 0,
        15_000 + backend.ingestLagMs,
        { what: 'every exporter present for both nodes' },
      );
    });

    after(async () => {
      await store.stop();
      for (const t of [...Object.values(dcgm), ...Object.values(nodeExp), ksm])
        await new Promise((resolve) => t.server.close(resolve));
    });

    it('healthy stays healthy: time-slicing, MIG mixed, a read-only /usr and PVC, an uncabled IB port', async () => {
      const insp = await inspect(site);
      assert.equal(insp.failures, 0, insp.errors.join('\n'));
      assert.deepEqual(staleServed(insp), []);
      assert.deepEqual([...insp.failedCollectorsByNode], []);
      assert.deepEqual(seen(insp), [], 'the site catalogue sees nothing on healthy nodes');
      // Without the allow-list the uncabled port is reported, with its port in the device id.
      const shipped = await inspect(plain);
      assert.deepEqual(seen(shipped), [
        `IBLinkAbnormal ${A} mlx4_0/2`,
        `IBLinkAbnormal ${B} mlx4_0/2`,
        `IBPhysicalPortDown ${A} mlx4_0/2`,
        `IBPhysicalPortDown ${B} mlx4_0/2`,
        `IBPortDown ${A} mlx4_0/2`,
        `IBPortDown ${B} mlx4_0/2`,
      ]);
    });

    it('without GPU Feature Discovery labels, time-slicing still reads as healthy and a lost GPU is seen', async () => {
      await change(() => {
        ksm.page = ksmPage({ gfdLabels: false });
      });
      assert.deepEqual(seen(await inspect(site), new Set(['GpuDown'])), []);
      await change(() => {
        dcgm[A]!.page = gpuLost(H100, 3);
      });
      const lost = await inspect(site);
      assert.deepEqual(seen(lost, new Set(['GpuDown'])), [`GpuDown ${A}`]);
      await change(healthyPages);
    });

    const tracker = new ConditionTracker(() => ({ forMs: 0, clearForMs: 0 }));
    const edges: string[] = [];
    /** One cycle of the site inspector through a tracker that clears at the first quiet cycle. */
    const cycle = async (): Promise<Inspection> => {
      const insp = await inspect(site);
      const stale = (node: string, c: string): boolean => site.isStale(insp, node, c);
      const fold = (e: ConditionEdge): string =>
        `${e.kind} ${e.instance.condition} ${e.instance.node}${e.instance.id === '' ? '' : ` ${e.instance.id}`}`;
      edges.push(
        ...tracker.update(insp.observations, Date.now(), stale, insp.presenceAtMs).map(fold),
      );
      return insp;
    };
    const active = (): string[] =>
      [A, B]
        .flatMap((n) => tracker.active(n))
        .map((c) => `${c.condition} ${c.node}${c.id === '' ? '' : ` ${c.id}`}`)
        .sort();

    it('each fault is seen on its node and device', async () => {
      await change(() => {
        dcgm[A]!.page = gpuLost(H100, 3); // time-slicing node loses GPU 3
        dcgm[B]!.page = gpuLost(A800_PARSABLE, 5); // MIG node loses a whole GPU
        nodeExp[A]!.page = ibPort(nodeExp[A]!.page, 'mlx4_0', '1', 1, 5); // cabled port goes DOWN
        nodeExp[B]!.page = withFilesystems(ibPort(NODE_E2E, 'mlx4_0', '2', 1, 2), {
          rootReadOnly: true,
        });
      });
      const insp = await cycle();
      assert.deepEqual(seen(insp), [
        `DiskReadOnly ${B} /`,
        `GpuDown ${A}`,
        `GpuDown ${B}`,
        `IBLinkAbnormal ${A} mlx4_0/1`,
        `IBPortDown ${A} mlx4_0/1`,
      ]);
      const value = (c: string, n: string): number | undefined =>
        insp.observations.find((o) => o.condition === c && o.node === n)?.value;
      assert.equal(value('GpuDown', A), 1, 'one GPU missing of 8, not 32 - 7');
      assert.equal(value('GpuDown', B), 1);
      assert.deepEqual(active(), [
        `DiskReadOnly ${B} /`,
        `GpuDown ${A}`,
        `GpuDown ${B}`,
        `IBLinkAbnormal ${A} mlx4_0/1`,
        `IBPortDown ${A} mlx4_0/1`,
      ]);
    });

    it('kube-state-metrics failing makes GpuDown stale on both nodes and clears nothing', async () => {
      const before = active();
      await change(() => {
        ksm.status = 500;
      });
      const insp = await cycle();
      for (const n of [A, B]) assert.ok(insp.staleByNode.get(n)?.has('kube-state-metrics'), n);
      assert.deepEqual(seen(insp, new Set(['GpuDown'])), [], 'its GPU count is gone');
      assert.equal(site.isStale(insp, A, 'GpuDown'), true);
      assert.equal(site.isStale(insp, A, 'IBLinkAbnormal'), false, 'node-exporter rules are fresh');
      await cycle();
      assert.deepEqual(active(), before, 'nothing cleared');
      await change(() => {
        ksm.status = 200;
      });
      await cycle();
      assert.deepEqual(active(), before);
    });

    it('a failing node_exporter collector makes only its rules stale, on its node, and clears nothing', async () => {
      const before = active();
      const healthyA = nodeExp[A]!.page;
      await change(() => {
        nodeExp[A]!.page = ibCollectorFailed(healthyA);
      });
      const insp = await cycle();
      assert.deepEqual(
        [...(insp.failedCollectorsByNode.get(A) ?? [])],
        ['node-exporter/infiniband'],
      );
      assert.equal(insp.failedCollectorsByNode.has(B), false);
      assert.deepEqual(seen(insp, new Set(['IBLinkAbnormal', 'IBPortDown'])), []);
      assert.equal(site.isStale(insp, A, 'IBLinkAbnormal'), true);
      assert.equal(site.isStale(insp, B, 'IBLinkAbnormal'), false);
      assert.equal(site.isStale(insp, A, 'HighLoad'), false, 'loadavg still collects');
      const served = (i: { input: string }): boolean => SERVED.has(i.input.split('/')[0] ?? '');
      assert.deepEqual(site.staleInputs(insp, A).filter(served), [
        { input: 'node-exporter/infiniband', reason: 'the collector failed its last collection' },
      ]);
      await cycle();
      assert.deepEqual(active(), before, 'nothing cleared');
      await change(() => {
        nodeExp[A]!.page = healthyA;
      });
      await cycle();
      assert.deepEqual(active(), before);
    });

    it('dcgm-exporter turning unparsable is stale within a scrape, clears nothing, and restarts nothing', async (t) => {
      const before = active();
      // The page as published: the vGPU field reads `ERROR - FAILED TO CONVERT TO STRING`.
      const turnedAt = Date.now();
      dcgm[B]!.page = gpuLost(A800, 5);
      const staleAt = await waitFor(
        async () => {
          const insp = await cycle();
          return insp.staleByNode.get(B)?.has('dcgm-exporter') === true ? Date.now() : undefined;
        },
        LOOKBACK_MS + backend.ingestLagMs,
        { what: 'dcgm-exporter stale for the node', intervalMs: 100 },
      );
      t.diagnostic(`dcgm-exporter stale ${String(staleAt - turnedAt)} ms after its page turned`);
      assert.ok(
        staleAt - turnedAt <= 3 * SCRAPE_MS + backend.ingestLagMs,
        `${String(staleAt - turnedAt)} ms`,
      );
      const status = (await targetStatus(prom.url)).find((x) => x.health !== 'up');
      assert.match(status?.lastError ?? '', /ERROR|parse|invalid/i, 'Prometheus cannot parse it');
      // Until the lookback passes, the last samples are still visible; then they vanish.
      const gone = Date.now() + LOOKBACK_MS + 3 * SCRAPE_MS + backend.ingestLagMs;
      const seenMeanwhile = new Set<string>();
      let last: Inspection | undefined;
      while (Date.now() < gone) {
        last = await cycle();
        for (const s of seen(last)) seenMeanwhile.add(s);
        await delay(500);
      }
      assert.ok(last !== undefined);
      assert.deepEqual(seen(last, new Set(['GpuDown'])), [`GpuDown ${A}`], "B's GPU count is gone");
      assert.equal(site.isStale(last, B, 'GpuDown'), true);
      assert.equal(site.isStale(last, A, 'GpuDown'), false, 'the other node is fresh');
      assert.deepEqual(active(), [...before, `ExporterUnparsable ${B} dcgm-exporter`].sort());
      assert.ok(seenMeanwhile.has(`ExporterUnparsable ${B} dcgm-exporter`));
      assert.equal(
        [...seenMeanwhile].some((s) => s.startsWith('GpuMetricsHang')),
        false,
        'a restart of the exporter cannot fix a parse error: GpuMetricsHang is not raised',
      );
      assert.equal(edges.filter((e) => e.startsWith('cleared')).length, 0, edges.join('\n'));
    });
  });
}
