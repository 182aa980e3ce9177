/**
 * Metrics-source outages (down, slow beyond the query deadline, garbage, partial answers, one
 * exporter stale on one node) while faults exist and tickets are open. Each scenario runs twice,
 * with and without the outage, on the same seed: any remediation the outage run makes that the
 * baseline does not is a false remediation (acting on missing data). No ticket may close while
 * the source is down, and `aegis_metrics_source_up` must read 0 throughout.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOGUE as FULL_CATALOGUE } from '../../src/catalogue/index.js';
import type { CatalogueEntry, Signal } from '../../src/catalogue/types.js';
import type { StepEvent } from '../../src/engine/runner.js';
import {
  catalogueOf,
  createSafetyWorld,
  LADDER_CONDITIONS,
  metricValue,
  MIN,
  runFor,
  safetyConfig,
  settleSteps,
  startEngine,
  type SafetyWorld,
} from '../fixtures/safety/safety-world.js';
import { useSafetyFigures } from './figures.js';

const figures = useSafetyFigures({ outage: 8 });
const CONFIG = safetyConfig({ safety: { maxCordonedFraction: 0.5 } });
/** Steps that change a node (read-only Jobs and hand-offs are not remediations). */
const REMEDIATIONS = new Set([
  'Cordon',
  'Uncordon',
  'Drain',
  'Reboot',
  'Shutdown',
  'Remedy',
  'Repair',
  'RestartPod',
  'ForceDeletePods',
]);
/** Conditions about the monitoring itself: restarting a hung exporter is the right answer to it. */
const MONITORING_SOPS = new Set(['gpu.exporter-restart']);
const OUTAGE_FROM = 2 * MIN;
const OUTAGE_FOR = 30 * MIN;

/** One run of a scenario: its fleet, and what the engine did. */
interface Run {
  readonly sw: SafetyWorld;
  /** When the scenario began (the outage starts OUTAGE_FROM later). */
  readonly t0: number;
  readonly started: readonly StepEvent[];
  /** Tickets that went from open to resolved/closed inside the outage window. */
  readonly closedDuring: readonly string[];
  /** Lowest and highest aegis_metrics_source_up seen inside the window. */
  readonly up: readonly [number, number];
}

/** An outage: starts and stops a failure of the metrics side. */
interface Outage {
  readonly name: string;
  start(sw: SafetyWorld): void;
  stop(sw: SafetyWorld): void;
}

/** Faults of the "tickets open" fleet: mid-reboot, mid-ladder, and a NotReady that just cleared. */
function openTickets(sw: SafetyWorld): void {
  const t0 = sw.clock.now();
  const [, a = '', b = '', c = '', d = ''] = sw.names;
  sw.world.faults.injectFault({ condition: 'Xid48GPUMemoryDBE', device: '4', node: a, atMs: t0 });
  sw.world.faults.injectFault({
    condition: 'Xid79GPULost',
    device: '1',
    node: b,
    atMs: t0 + 50_000,
  });
  sw.world.faults.injectFault({ condition: 'NodeNotReady', node: c, atMs: t0, durationMs: 60_000 });
  // Appears during the outage: nothing may act on it before the data is back.
  sw.world.faults.injectFault({ condition: 'GpuHung', node: d, atMs: t0 + OUTAGE_FROM + MIN });
}

async function runScenario(o: {
  setup: (sw: SafetyWorld) => void;
  outage?: Outage;
  catalogue: readonly CatalogueEntry[];
  intervalMs: number;
  config?: typeof CONFIG;
}): Promise<Run> {
  const sw = await createSafetyWorld({ nodes: 8, seed: 17 });
  const life = startEngine(sw, { config: o.config ?? CONFIG, catalogue: o.catalogue });
  const t0 = sw.clock.now();
  o.setup(sw);
  const closedDuring: string[] = [];
  let up: [number, number] = [Infinity, -Infinity];
  let openAtStart = new Set<string>();
  let phase: 'before' | 'during' | 'after' = 'before';
  await runFor(sw, life, {
    durationMs: 100 * MIN,
    intervalMs: o.intervalMs,
    each: async () => {
      const t = sw.clock.now() - t0;
      if (phase === 'before' && t >= OUTAGE_FROM) {
        phase = 'during';
        o.outage?.start(sw);
        openAtStart = await openTicketNodes(sw);
        return;
      }
      if (phase !== 'during') return;
      const v = metricValue(await life.metricsText(), 'aegis_metrics_source_up') ?? NaN;
      up = [Math.min(up[0], v), Math.max(up[1], v)];
      const open = await openTicketNodes(sw);
      for (const n of openAtStart)
        if (!open.has(n) && !closedDuring.includes(n)) closedDuring.push(n);
      if (t >= OUTAGE_FROM + OUTAGE_FOR) {
        phase = 'after';
        o.outage?.stop(sw);
      }
    },
  });
  await settleSteps(sw, life);
  return { sw, t0, started: life.steps.filter((s) => s.status === 'Running'), closedDuring, up };
}

async function openTicketNodes(sw: SafetyWorld): Promise<Set<string>> {
  const out = new Set<string>();
  for (const n of sw.names) {
    const t = await sw.ticket(n);
    if (t !== null && t.status !== 'resolved' && t.status !== 'closed') out.add(n);
  }
  return out;
}

/** Remediations the outage run made beyond the baseline's, per node and action, in words. */
function extraRemediations(base: Run, run: Run, catalogue: readonly CatalogueEntry[]): string[] {
  const sopOf = new Map(catalogue.map((e) => [e.name, e.sop]));
  const count = (steps: readonly StepEvent[]): Map<string, number> => {
    const m = new Map<string, number>();
    for (const s of steps) {
      if (!REMEDIATIONS.has(s.action) || MONITORING_SOPS.has(sopOf.get(s.condition) ?? ''))
        continue;
      const key = `${s.node} ${s.action} (${s.condition})`;
      m.set(key, (m.get(key) ?? 0) + 1);
    }
    return m;
  };
  const b = count(base.started);
  const out: string[] = [];
  for (const [key, n] of count(run.started)) {
    const extra = n - (b.get(key) ?? 0);
    if (extra > 0) out.push(`${extra}x ${key}`);
  }
  return out;
}

const OUTAGES: readonly Outage[] = [
  {
    name: 'Prometheus down',
    start: (sw) => {
      sw.world.metrics.outage(sw.clock.now() + 2 * OUTAGE_FOR);
    },
    stop: (sw) => {
      sw.world.metrics.outage(sw.clock.now());
    },
  },
  {
    name: 'Prometheus slower than the query deadline',
    start: (sw) => {
      sw.world.metrics.slow(15_000);
    },
    stop: (sw) => {
      sw.world.metrics.slow(0);
    },
  },
  // garbage/partial take a count of answers; adding it back negative ends the failure.
  {
    name: 'garbage answers',
    start: (sw) => {
      sw.world.metrics.garbage(100_000);
    },
    stop: (sw) => {
      sw.world.metrics.garbage(-100_000);
    },
  },
  {
    name: 'partial answers',
    start: (sw) => {
      sw.world.metrics.partial(100_000);
    },
    stop: (sw) => {
      sw.world.metrics.partial(-100_000);
    },
  },
];

describe('metrics source outages while faults exist and tickets are open', () => {
  const catalogue = catalogueOf(LADDER_CONDITIONS);
  let baseline: Run | undefined;
  const base = async (): Promise<Run> =>
    (baseline ??= await runScenario({ setup: openTickets, catalogue, intervalMs: 20_000 }));

  for (const outage of OUTAGES) {
    it(`${outage.name}: no remediation on missing data, no ticket closes, source reported down`, async () => {
      const run = await runScenario({ setup: openTickets, outage, catalogue, intervalMs: 20_000 });
      const extra = extraRemediations(await base(), run, catalogue);
      figures.tried('outage');
      figures.bad(
        'outage',
        extra.length + run.closedDuring.length,
        `${outage.name}: ${[...extra, ...run.closedDuring.map((n) => `${n} ticket closed during the outage`)].join('; ')}`,
      );
      assert.deepEqual(extra, [], 'nothing beyond what the data justified');
      assert.deepEqual(run.closedDuring, [], 'no ticket closed while the source was down');
      assert.deepEqual(run.up, [0, 0], 'aegis_metrics_source_up read 0 throughout the outage');
      const late = run.sw.names[4] ?? '';
      const end = run.t0 + OUTAGE_FROM + OUTAGE_FOR;
      assert.ok(
        !run.started.some((s) => s.node === late && s.atMs < end),
        'a fault that appeared during the outage waited for data',
      );
      assert.ok(
        run.started.some((s) => s.node === late && s.action === 'Cordon'),
        'and was acted on once data was back',
      );
    });
  }
});

describe('one exporter stale on one node (the full catalogue)', () => {
  const STALE: readonly Signal[] = [
    'dcgm-exporter',
    'node-exporter',
    'kube-state-metrics',
    'ipmi-exporter',
    'gpfs-exporter',
    'sichek',
    'aegis-nodecheck',
  ];
  const outage: Outage = {
    name: 'stale exporters',
    start: (sw) => {
      STALE.forEach((s, i) => {
        sw.world.metrics.staleExporter(sw.names[i + 1] ?? '', s);
      });
    },
    stop: (sw) => {
      STALE.forEach((s, i) => {
        sw.world.metrics.freshExporter(sw.names[i + 1] ?? '', s);
      });
    },
  };
  const setup = (sw: SafetyWorld): void => {
    sw.world.faults.injectFault({
      condition: 'Xid48GPUMemoryDBE',
      device: '4',
      node: sw.names[0] ?? '',
      atMs: sw.clock.now(),
    });
  };

  it('no node is remediated because one of its exporters went silent', async () => {
    const base = await runScenario({ setup, catalogue: FULL_CATALOGUE, intervalMs: 60_000 });
    const run = await runScenario({ setup, outage, catalogue: FULL_CATALOGUE, intervalMs: 60_000 });
    const extra = extraRemediations(base, run, FULL_CATALOGUE);
    figures.tried('outage', STALE.length);
    figures.bad('outage', extra.length, `stale exporters: ${extra.join('; ')}`);
    assert.deepEqual(extra, []);
    assert.ok(
      run.started.some((s) => s.node === run.sw.names[0] && s.action === 'Reboot'),
      'the real fault was still remediated',
    );
  });
});

describe('stale data never starts a new remediation', () => {
  it('a fault that cleared during an outage is not rebooted when a hold lifts during the outage', async () => {
    const catalogue = catalogueOf(LADDER_CONDITIONS);
    const setup = (sw: SafetyWorld): void => {
      const t0 = sw.clock.now();
      const [, busy = '', held = ''] = sw.names;
      // A slow reboot elsewhere holds the only reboot slot for 20 minutes...
      sw.world.cluster.setJobBehaviour('restart_node', { durationMs: 15 * MIN }, busy);
      sw.world.faults.injectFault({ condition: 'Xid79GPULost', device: '4', node: busy, atMs: t0 });
      // ...while this node's fault, waiting for the slot, goes away after 3 minutes.
      sw.world.faults.injectFault({
        condition: 'Xid48GPUMemoryDBE',
        device: '6',
        node: held,
        atMs: t0 + MIN,
        durationMs: 3 * MIN,
      });
    };
    const config = safetyConfig({
      safety: { maxCordonedFraction: 0.5, maxConcurrent: { reboot: 1 } },
    });
    const run = (outage?: Outage): Promise<Run> =>
      runScenario({
        setup,
        catalogue,
        config,
        intervalMs: 20_000,
        ...(outage === undefined ? {} : { outage }),
      });
    const base = await run();
    const outageRun = await run(OUTAGES[0]);
    const extra = extraRemediations(base, outageRun, catalogue);
    const held = base.sw.names[2] ?? '';
    figures.tried('outage');
    figures.bad(
      'outage',
      extra.length,
      `cleared fault, hold lifted during the outage: ${extra.join('; ')}`,
    );
    const heldActions = (r: Run): string[] =>
      r.started.filter((x) => x.node === held).map((x) => x.action);
    assert.ok(
      !heldActions(base).includes('Reboot'),
      `baseline: the fault cleared while it waited, no reboot (${heldActions(base).join(', ')})`,
    );
    assert.ok(
      outageRun.started.some((x) => x.node === (base.sw.names[1] ?? '') && x.action === 'Reboot'),
      'the slot was really taken',
    );
    assert.deepEqual(extra, [], 'the outage run does not reboot a node on 20-minute-old evidence');
  });
});
