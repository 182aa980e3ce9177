/**
 * `aegis inspect` over the simulator's metrics (the real-Prometheus run is
 * test/prometheus/inspect.test.ts): healthy nodes stay healthy, a fault is seen on its node and
 * device with its value and since, a silent exporter makes its signal stale on that node only, a
 * failed query is stale everywhere with its error, and an unreachable Prometheus exits 1.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { CATALOGUE } from '../../catalogue/index.js';
import { defaultConfig } from '../../config/schema.js';
import { ManualClock } from '../../core/clock.js';
import { ErrorCode, HealError } from '../../core/errors.js';
import type { MetricsSource } from '../../prom/metrics-source.js';
import { createSimWorld, type SimWorld } from '../../sim/sim-world.js';
import { runCliCaptured, type CliRun } from '../main.js';
import { formatReport, inspectPrometheus, toJson, type NodeReport } from './inspect.js';

const HOUR = 3_600_000;
const START = Date.UTC(2026, 0, 1);
/** A day in, so the 24 h windows have healthy history. */
const T0 = START + 25 * HOUR;

async function world(): Promise<SimWorld & { clock: ManualClock }> {
  const clock = new ManualClock(START);
  const w = createSimWorld({ nodes: 4, seed: 11, catalogue: CATALOGUE, clock });
  await clock.advanceTo(T0);
  return { ...w, clock };
}

function inject(w: SimWorld, condition: string, node: string): string {
  return w.faults.injectFault({
    condition,
    node,
    atMs: w.clock.now(),
    persistence: 'survives-reboot',
  });
}

async function inspect(
  w: SimWorld & { clock: ManualClock },
  extra: { metrics?: MetricsSource; node?: string } = {},
): Promise<Map<string, NodeReport>> {
  const report = await inspectPrometheus({
    metrics: extra.metrics ?? w.metrics,
    config: defaultConfig(),
    clock: w.clock,
    ...(extra.node === undefined ? {} : { node: extra.node }),
  });
  return new Map(report.nodes.map((n) => [n.node, n]));
}

describe('aegis inspect (simulated fleet)', () => {
  it('finds every node, each healthy with nothing stale', async () => {
    const w = await world();
    const nodes = await inspect(w);
    assert.deepEqual(
      [...nodes.keys()],
      ['gpu-node-0001', 'gpu-node-0002', 'gpu-node-0003', 'gpu-node-0004'],
    );
    for (const n of nodes.values()) assert.deepEqual([n.conditions, n.stale], [[], []], n.node);
  });

  it('sees a fault on its node and device, with its value and since', async () => {
    const w = await world();
    inject(w, 'Xid79GPULost', 'gpu-node-0002');
    // 10 minutes: a probe instant, so `since` is exact (between two probes it is the later one).
    await w.clock.advance(10 * 60_000);
    const nodes = await inspect(w);
    assert.deepEqual(nodes.get('gpu-node-0002')?.conditions, [
      {
        name: 'Xid79GPULost',
        device: '0',
        value: 79,
        since: new Date(T0).toISOString(),
        pending: false,
      },
    ]);
    for (const n of ['gpu-node-0001', 'gpu-node-0003', 'gpu-node-0004'])
      assert.deepEqual(nodes.get(n)?.conditions, [], n);
  });

  it('marks a condition that has not held for its `for:` yet as pending', async () => {
    const w = await world();
    inject(w, 'DiskReadOnly', 'gpu-node-0001');
    await w.clock.advance(30_000);
    const seen = (await inspect(w)).get('gpu-node-0001')?.conditions ?? [];
    assert.deepEqual(
      seen.map((c) => [c.name, c.pending]),
      [['DiskReadOnly', true]],
    );
  });

  it('makes a silent exporter stale on its node only, and reads no fault from the silence', async () => {
    const w = await world();
    w.metrics.staleExporter('gpu-node-0003', 'dcgm-exporter');
    await w.clock.advance(10 * 60_000);
    const nodes = await inspect(w);
    const n3 = nodes.get('gpu-node-0003');
    assert.ok(n3);
    assert.deepEqual(
      n3.stale.map((s) => s.signal),
      ['dcgm-exporter'],
    );
    assert.match(n3.stale.at(0)?.reason ?? '', /exporter silent on the node/);
    // Only the rule made to see an exporter vanish fires; no GPU fault is read from the silence.
    assert.deepEqual(
      n3.conditions.map((c) => c.name),
      ['GpuMetricsHang'],
    );
    for (const n of ['gpu-node-0001', 'gpu-node-0002', 'gpu-node-0004'])
      assert.deepEqual(nodes.get(n)?.stale, [], n);
  });

  it('reports a failed rule query as stale on every node, with the error', async () => {
    const w = await world();
    const failing: MetricsSource = {
      query: (expr, atMs, signal) =>
        expr.includes('node_filesystem_readonly')
          ? Promise.reject(
              new HealError(
                ErrorCode.PromBadResponse,
                'HTTP 422: query timed out in expression evaluation',
              ),
            )
          : w.metrics.query(expr, atMs, signal),
    };
    const nodes = await inspect(w, { metrics: failing });
    for (const n of nodes.values()) {
      assert.deepEqual(n.stale, [
        {
          signal: 'node-exporter',
          reason:
            'query for DiskReadOnly failed: HTTP 422: query timed out in expression evaluation',
        },
      ]);
    }
  });

  it('sees node-problem-detector problems (problem_gauge) as their catalogue conditions', async () => {
    const w = await world();
    inject(w, 'NpdKernelDeadlock', 'gpu-node-0004');
    await w.clock.advance(60_000);
    const nodes = await inspect(w);
    assert.deepEqual(
      nodes.get('gpu-node-0004')?.conditions.map((c) => [c.name, c.value]),
      [['NpdKernelDeadlock', 1]],
    );
  });

  it('inspects one node with --node; a node Prometheus does not know is all stale', async () => {
    const w = await world();
    const one = await inspect(w, { node: 'gpu-node-0002' });
    assert.deepEqual([...one.keys()], ['gpu-node-0002']);
    const ghost = (await inspect(w, { node: 'no-such-node' })).get('no-such-node');
    assert.ok(ghost);
    assert.deepEqual(ghost.conditions, []);
    assert.equal(ghost.stale.at(0)?.signal, 'kubernetes');
    assert.ok(ghost.stale.length > 5, JSON.stringify(ghost.stale));
  });

  it('prints the JSON the issue names, and a readable text', async () => {
    const w = await world();
    inject(w, 'Xid79GPULost', 'gpu-node-0002');
    await w.clock.advance(60_000);
    const report = await inspectPrometheus({
      metrics: w.metrics,
      config: defaultConfig(),
      clock: w.clock,
    });
    const json = JSON.parse(toJson(report)) as Record<string, unknown>[];
    assert.ok(Array.isArray(json));
    assert.deepEqual(Object.keys(json[0] ?? {}), ['node', 'conditions', 'stale']);
    const text = formatReport(report, 'Prometheus sim');
    assert.match(text, /^gpu-node-0002\n {2}Xid79GPULost {2}device=0 {2}value=79 {2}since /m);
    assert.match(text, /^gpu-node-0001\n {2}healthy$/m);
  });
});

describe('aegis inspect (command line)', () => {
  const run = (...args: string[]): Promise<CliRun> => runCliCaptured(['inspect', ...args]);

  it('exits 1 with a clear message when Prometheus is unreachable', async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const a = srv.address();
        srv.close(() => {
          resolve(typeof a === 'object' && a !== null ? a.port : 0);
        });
      });
    });
    const url = `http://127.0.0.1:${String(port)}`;
    const r = await run('--prometheus', url, '--json');
    assert.equal(r.code, 1, r.err);
    assert.equal(r.out, '');
    assert.match(r.err, new RegExp(`^aegis: cannot inspect Prometheus ${url}: `));
  });

  it('exits 2 on a config whose nodeProblemDetector mapping names an unknown condition', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aegis-inspect-'));
    const file = join(dir, 'aegis.yaml');
    writeFileSync(
      file,
      'nodeProblemDetector:\n  events:\n    - { reason: OOMKilling, condition: OomKiled }\n',
    );
    try {
      const r = await run('--prometheus', 'http://127.0.0.1:9', '--config', file);
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, /nodeProblemDetector\.events\[0\]\.condition: "OomKiled"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 on a URL that is not http(s)', async () => {
    const r = await run('--prometheus', 'ftp://127.0.0.1:9090');
    assert.equal(r.code, 2, r.err);
  });
});
