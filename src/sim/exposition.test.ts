import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../core/clock.js';
import { startExporterServer } from './exporter-server.js';
import { expositionText, formatValue } from './exposition.js';
import { createFleet } from './fleet.js';
import { SeriesStore } from './series-store.js';
import { hold } from './track.js';

const T0 = Date.UTC(2026, 0, 2);
const SAMPLE_LINE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (NaN|[+-]Inf|-?[0-9.e+-]+)$/;

/** Checks every line of a text exposition: HELP/TYPE before samples, samples grouped by family. */
function parseExposition(text: string): Map<string, { type: string; samples: string[] }> {
  const families = new Map<string, { type: string; samples: string[] }>();
  let current: string | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name = '', rest = ''] = meta;
      if (kind === 'TYPE') {
        assert.ok(['gauge', 'counter', 'histogram'].includes(rest), line);
        assert.ok(!families.has(name), `family ${name} declared twice`);
        families.set(name, { type: rest, samples: [] });
      }
      current = name;
      continue;
    }
    const sample = SAMPLE_LINE.exec(line);
    assert.ok(sample !== null, `bad sample line: ${line}`);
    const name = sample[1] ?? '';
    const family = families.get(current ?? '');
    assert.ok(
      family !== undefined && (name === current || name.startsWith(`${current ?? ''}_`)),
      `${name} outside its family`,
    );
    family.samples.push(line);
  }
  return families;
}

describe('exposition', () => {
  const store = new SeriesStore(createFleet({ nodes: 3, seed: 5 }));

  it('writes dcgm-exporter series with the capture labels plus node/job/instance', () => {
    const families = parseExposition(expositionText(store, 'dcgm', T0));
    const temp = families.get('DCGM_FI_DEV_GPU_TEMP');
    assert.equal(temp?.type, 'gauge');
    assert.equal(temp.samples.length, 24);
    assert.match(
      temp.samples[0] ?? '',
      /^DCGM_FI_DEV_GPU_TEMP\{gpu="0",UUID="GPU-[0-9a-f-]{36}",pci_bus_id="00000000:53:00\.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-node-0001",DCGM_FI_DRIVER_VERSION="[0-9.]+",node="gpu-node-0001",job="dcgm-exporter",instance="[0-9.]+:9400"\} \d+$/,
    );
    assert.equal(families.get('DCGM_FI_DEV_PCIE_REPLAY_COUNTER')?.type, 'counter');
  });

  it('serves each exporter only its own prefix, and histograms under one TYPE', () => {
    for (const [exporter, prefix] of [
      ['node', /^node_/],
      ['ksm', /^kube_/],
      ['ipmi', /^ipmi_/],
      ['gpfs', /^gpfs_/],
      ['nodecheck', /^(sichek_|aegis_nodecheck_|problem_)/],
    ] as const) {
      const families = parseExposition(expositionText(store, exporter, T0));
      assert.ok(families.size > 0, exporter);
      for (const name of families.keys()) assert.match(name, prefix);
    }
    const gpfs = parseExposition(expositionText(store, 'gpfs', T0));
    assert.equal(gpfs.get('gpfs_waiter_seconds')?.type, 'histogram');
    assert.equal(gpfs.get('gpfs_waiter_seconds')?.samples.length, 27);
  });

  it('leaves out removed series and escapes label values', () => {
    const s = new SeriesStore(createFleet({ nodes: 1, seed: 5 }));
    for (const t of s.match('DCGM_FI_DEV_GPU_TEMP', 'gpu-node-0001', { gpu: '1' }))
      hold(t, 'x', null, T0);
    const track = s.create(
      'aegis_nodecheck_problem',
      'gpu-node-0001',
      { check: 'a"b\\c\nd' },
      false,
    );
    hold(track, 'y', 1, T0);
    const dcgm = parseExposition(expositionText(s, 'dcgm', T0 + 1));
    assert.equal(dcgm.get('DCGM_FI_DEV_GPU_TEMP')?.samples.length, 7);
    const text = expositionText(s, 'nodecheck', T0 + 1);
    assert.ok(text.includes('check="a\\"b\\\\c\\nd"'));
    parseExposition(text);
    assert.deepEqual([NaN, Infinity, -Infinity, 0.5].map(formatValue), [
      'NaN',
      '+Inf',
      '-Inf',
      '0.5',
    ]);
  });

  it('is served over loopback HTTP, per exporter and per node', async () => {
    const clock = new ManualClock(T0);
    const server = await startExporterServer({ fleet: { store, clock }, port: 0 });
    try {
      const res = await fetch(`${server.url}/metrics/dcgm`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/plain; version=0\.0\.4/);
      const all = parseExposition(await res.text());
      assert.equal(all.get('DCGM_FI_DEV_XID_ERRORS')?.samples.length, 24);
      const one = parseExposition(
        await (await fetch(`${server.url}/metrics/ipmi?node=gpu-node-0002`)).text(),
      );
      assert.ok(
        [...one.values()].every((f) => f.samples.every((l) => l.includes('node="gpu-node-0002"'))),
      );
      assert.equal((await fetch(`${server.url}/metrics/nope`)).status, 404);
      assert.equal((await fetch(`${server.url}/metrics/node?node=nope`)).status, 404);
    } finally {
      await server.close();
    }
  });

  it('splits the fleet over shards: every node in exactly one, every n-th from the i-th', async () => {
    const clock = new ManualClock(T0);
    const server = await startExporterServer({ fleet: { store, clock }, port: 0 });
    try {
      const nodesOf = async (query: string): Promise<string[]> => {
        const doc = parseExposition(
          await (await fetch(`${server.url}/metrics/dcgm?${query}`)).text(),
        );
        const names = (doc.get('DCGM_FI_DEV_XID_ERRORS')?.samples ?? []).map(
          (l) => /node="([^"]+)"/.exec(l)?.[1] ?? '',
        );
        return [...new Set(names)];
      };
      const fleet = store.fleet.nodes.map((n) => n.name);
      const shards = await Promise.all([0, 1].map((i) => nodesOf(`shard=${i}&shards=2`)));
      assert.deepEqual(
        shards[0],
        fleet.filter((_, i) => i % 2 === 0),
      );
      assert.deepEqual(
        shards[1],
        fleet.filter((_, i) => i % 2 === 1),
      );
      for (const bad of ['shard=2&shards=2', 'shard=-1&shards=2', 'shard=0', 'shard=x&shards=3']) {
        const res = await fetch(`${server.url}/metrics/dcgm?${bad}`);
        assert.equal(res.status, 400, bad);
        assert.match(await res.text(), /want whole numbers 0 <= shard < shards/);
      }
    } finally {
      await server.close();
    }
  });
});
