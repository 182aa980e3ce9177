/**
 * Scenario generator: faults drawn at the rate Meta published for the Llama 3 405B training run
 * (The Llama 3 Herd of Models, arXiv:2407.21783, Table 5: 419 unexpected interruptions in 54 days
 * on 16,384 H100 GPUs), as a Poisson process over the fleet's GPU-hours, each fault's cause drawn
 * from the published breakdown and mapped to catalogue conditions with a sensible lifetime.
 * The output is a scenario file (YAML) that loads like any other.
 */
import { stringify } from 'yaml';
import { formatDurationMs } from '../core/duration.js';
import type { Persistence } from '../sim/persistence.js';

/** The published numbers the rate comes from. */
export const LLAMA3 = {
  unexpectedInterruptions: 419,
  days: 54,
  gpus: 16_384,
  source: 'Meta, The Llama 3 Herd of Models (arXiv:2407.21783), Table 5',
} as const;

/** Unexpected interruptions per GPU-hour: 419 / (54 d × 24 h × 16,384 GPUs) ≈ 1.97e-5. */
export const FAULTS_PER_GPU_HOUR =
  LLAMA3.unexpectedInterruptions / (LLAMA3.days * 24 * LLAMA3.gpus);

type Device = 'gpu' | 'gpu-mask' | 'hca';
interface Lifetime {
  readonly persistence: Persistence;
  readonly weight: number;
  /** For transient faults: how long they last, drawn uniformly in [min, max] minutes. */
  readonly minutes?: readonly [number, number];
}
interface Draw {
  readonly condition: string;
  readonly weight: number;
  readonly device?: Device;
  readonly lifetimes: readonly Lifetime[];
}
/** One cause of the Llama 3 table with its count and how it shows on a node. */
export interface Cause {
  readonly cause: string;
  readonly count: number;
  readonly draws: readonly Draw[];
}

const reboot = (w = 1): Lifetime => ({ persistence: 'until-reboot', weight: w });
const hard = (w = 1): Lifetime => ({ persistence: 'survives-reboot', weight: w });
const passing = (min: number, max: number, w = 1): Lifetime => ({
  persistence: 'transient',
  weight: w,
  minutes: [min, max],
});

/** The Llama 3 breakdown (counts sum to 419), each cause mapped to catalogue conditions. */
export const LLAMA3_CAUSES: readonly Cause[] = [
  {
    cause: 'Faulty GPU (incl. NVLink)',
    count: 148,
    draws: [
      { condition: 'Xid79GPULost', weight: 4, device: 'gpu', lifetimes: [reboot(7), hard(3)] },
      { condition: 'Xid74NVLinkError', weight: 2, device: 'gpu', lifetimes: [reboot(7), hard(3)] },
      { condition: 'GpuHung', weight: 2, lifetimes: [reboot(8), hard(2)] },
      { condition: 'GpuNvlinkInactive', weight: 1, device: 'gpu', lifetimes: [reboot(6), hard(4)] },
      { condition: 'GpuDown', weight: 1, device: 'gpu', lifetimes: [reboot(7), hard(3)] },
    ],
  },
  {
    cause: 'GPU HBM3 memory',
    count: 72,
    draws: [
      { condition: 'Xid48GPUMemoryDBE', weight: 3, device: 'gpu', lifetimes: [reboot(8), hard(2)] },
      { condition: 'Xid63ECCRowremapperPending', weight: 3, device: 'gpu', lifetimes: [reboot()] },
      {
        condition: 'Xid95UncontainedECCError',
        weight: 2,
        device: 'gpu',
        lifetimes: [reboot(8), hard(2)],
      },
      { condition: 'GpuRowRemappingFailure', weight: 1, device: 'gpu', lifetimes: [hard()] },
    ],
  },
  {
    cause: 'Software bug',
    count: 54,
    draws: [
      { condition: 'XIDApplicationErr', weight: 2, device: 'gpu', lifetimes: [passing(5, 30)] },
      {
        condition: 'KubeletFailedCreatePodContainer',
        weight: 1,
        lifetimes: [{ persistence: 'until-remedy', weight: 1 }],
      },
      { condition: 'HighDProcessesCount', weight: 1, lifetimes: [reboot()] },
    ],
  },
  {
    cause: 'Network switch or cable',
    count: 35,
    draws: [
      {
        condition: 'IBLinkAbnormal',
        weight: 3,
        device: 'hca',
        lifetimes: [passing(10, 60), hard()],
      },
      { condition: 'IBLinkFrequentDown', weight: 1, device: 'hca', lifetimes: [passing(20, 60)] },
      { condition: 'IBPortSpeedAbnormal', weight: 1, device: 'hca', lifetimes: [reboot(), hard()] },
    ],
  },
  {
    cause: 'Host maintenance',
    count: 32,
    draws: [{ condition: 'NodeNotReady', weight: 1, lifetimes: [passing(10, 40)] }],
  },
  {
    cause: 'GPU SRAM',
    count: 19,
    draws: [
      { condition: 'GpuVolSramUncorrectable', weight: 2, device: 'gpu', lifetimes: [reboot()] },
      { condition: 'GpuAggSramUncorrectable', weight: 1, device: 'gpu', lifetimes: [hard()] },
    ],
  },
  {
    cause: 'GPU system processor',
    count: 17,
    draws: [
      { condition: 'Xid119GspRpcTimeout', weight: 1, device: 'gpu', lifetimes: [reboot()] },
      { condition: 'Xid120GspError', weight: 1, device: 'gpu', lifetimes: [reboot(8), hard(2)] },
    ],
  },
  {
    cause: 'NIC',
    count: 7,
    draws: [
      { condition: 'IBLost', weight: 1, lifetimes: [reboot(), hard()] },
      { condition: 'IBNetDriverFailedLoad', weight: 1, device: 'hca', lifetimes: [reboot()] },
    ],
  },
  {
    cause: 'NCCL watchdog timeout',
    count: 7,
    draws: [{ condition: 'GpuHung', weight: 1, lifetimes: [reboot()] }],
  },
  {
    cause: 'Silent data corruption',
    count: 6,
    draws: [{ condition: 'GpuCheckFailed', weight: 1, device: 'gpu-mask', lifetimes: [hard()] }],
  },
  {
    cause: 'GPU thermal interface and sensor',
    count: 6,
    draws: [
      { condition: 'HighGpuTemp', weight: 1, device: 'gpu', lifetimes: [hard(), passing(30, 120)] },
    ],
  },
  {
    cause: 'SSD',
    count: 3,
    draws: [{ condition: 'DiskSmartFailing', weight: 1, lifetimes: [hard()] }],
  },
  {
    cause: 'Power supply',
    count: 3,
    draws: [{ condition: 'BaseBoardCriticalIssue', weight: 1, lifetimes: [hard()] }],
  },
  {
    cause: 'Server chassis',
    count: 2,
    draws: [{ condition: 'BaseBoardCriticalIssue', weight: 1, lifetimes: [hard()] }],
  },
  {
    cause: 'IO expansion board',
    count: 2,
    draws: [
      { condition: 'GpuPcieLinkDegraded', weight: 1, device: 'gpu', lifetimes: [reboot(), hard()] },
    ],
  },
  {
    cause: 'Dependency',
    count: 2,
    draws: [
      {
        condition: 'GpfsMountLost',
        weight: 1,
        lifetimes: [{ persistence: 'until-repair', weight: 1 }],
      },
    ],
  },
  {
    cause: 'CPU',
    count: 2,
    draws: [{ condition: 'CpuUnhealthy', weight: 1, lifetimes: [hard()] }],
  },
  {
    cause: 'System memory',
    count: 2,
    draws: [{ condition: 'MemoryUncorrectableErrors', weight: 1, lifetimes: [hard()] }],
  },
];

/** Options of the generator. */
export interface GenerateOptions {
  readonly nodes: number;
  readonly days: number;
  readonly seed: number;
  readonly gpusPerNode?: number;
  /** Inspection interval of the scenario (default 30s). */
  readonly interval?: string;
  readonly name?: string;
}

/** Faults expected over the run: the rate times the fleet's GPU-hours. */
export function expectedFaults(nodes: number, days: number, gpusPerNode = 8): number {
  return FAULTS_PER_GPU_HOUR * nodes * gpusPerNode * days * 24;
}

/** Draws a scenario and returns it as YAML text, with the rate and its source in a header. */
export function generateScenario(opts: GenerateOptions): string {
  const gpus = opts.gpusPerNode ?? 8;
  const rand = mulberry32(opts.seed);
  const durationMs = Math.round((opts.days * 86_400_000) / 1000) * 1000;
  const perMs = (FAULTS_PER_GPU_HOUR * opts.nodes * gpus) / 3_600_000;
  const timeline: Record<string, unknown>[] = [];
  const byCause = new Map<string, number>();
  for (let t = -Math.log(1 - rand()) / perMs; t < durationMs; t += -Math.log(1 - rand()) / perMs) {
    const cause = pick(LLAMA3_CAUSES, (c) => c.count, rand);
    const draw = pick(cause.draws, (d) => d.weight, rand);
    const life = pick(draw.lifetimes, (l) => l.weight, rand);
    const node = 1 + Math.floor(rand() * opts.nodes);
    const at = Math.max(1000, Math.round(t / 1000) * 1000);
    const event: Record<string, unknown> = {
      at: formatDurationMs(at),
      event: 'fault',
      node,
      condition: draw.condition,
    };
    const device = deviceOf(draw.device, gpus, rand);
    if (device !== undefined) event['device'] = device;
    event['persistence'] = life.persistence;
    if (life.minutes !== undefined) {
      const [lo, hi] = life.minutes;
      event['for'] = formatDurationMs(Math.round(lo + rand() * (hi - lo)) * 60_000);
    }
    event['note'] = `${cause.cause} (Llama 3 cause)`;
    timeline.push(event);
    byCause.set(cause.cause, (byCause.get(cause.cause) ?? 0) + 1);
  }
  const budget = Math.max(1, Math.floor(0.1 * opts.nodes));
  const doc = {
    name: opts.name ?? `llama3-rates-${opts.nodes}n-${opts.days}d-s${opts.seed}`,
    description:
      `Faults drawn at the Llama 3 rate (${LLAMA3.unexpectedInterruptions} unexpected interruptions in ${LLAMA3.days} days on ` +
      `${LLAMA3.gpus.toLocaleString('en-US')} GPUs) on ${opts.nodes} nodes for ${formatDurationMs(durationMs)}: ` +
      `${timeline.length} drawn, ${expectedFaults(opts.nodes, opts.days, gpus).toFixed(2)} expected.`,
    seed: opts.seed,
    fleet: { nodes: opts.nodes, gpusPerNode: gpus },
    duration: formatDurationMs(durationMs),
    interval: opts.interval ?? '30s',
    timeline,
    expect: [
      { healthyUntouched: true },
      {
        peak: 'cordonedByAegis',
        max: budget,
        description: `Aegis never holds more than its cordon budget (${budget} nodes) cordoned`,
      },
      {
        breaker: 'never-tripped',
        description: 'faults at the published rate never look like a storm',
      },
    ],
  };
  const header = [
    `Generated by: aegis sim generate --nodes ${opts.nodes} --days ${opts.days} --seed ${opts.seed}` +
      `${gpus === 8 ? '' : ` --gpus-per-node ${gpus}`}${opts.name === undefined ? '' : ` --name ${opts.name}`}`,
    `Rate: ${LLAMA3.source}: ${LLAMA3.unexpectedInterruptions} unexpected interruptions / (${LLAMA3.days} d x 24 h x ${LLAMA3.gpus} GPUs)`,
    `      = ${FAULTS_PER_GPU_HOUR.toExponential(3)} faults per GPU-hour; this fleet: ${opts.nodes * gpus} GPUs x ${(durationMs / 3_600_000).toFixed(1)} h = ${expectedFaults(opts.nodes, opts.days, gpus).toFixed(2)} expected`,
    `Drawn by cause: ${[...byCause].map(([c, n]) => `${c} ${n}`).join(', ') || 'none'}`,
  ];
  return `${header.map((l) => `# ${l}`).join('\n')}\n${stringify(doc, { lineWidth: 0 })}`;
}

function deviceOf(
  kind: Device | undefined,
  gpus: number,
  rand: () => number,
): string | number | undefined {
  switch (kind) {
    case undefined:
      return undefined;
    case 'gpu':
      return Math.floor(rand() * gpus);
    case 'gpu-mask': {
      const i = Math.floor(rand() * gpus);
      return Array.from({ length: gpus }, (_, k) => (k === i ? '1' : '0')).join('');
    }
    case 'hca':
      return `mlx5_${Math.floor(rand() * 8)}`;
  }
}

function pick<T>(items: readonly T[], weight: (t: T) => number, rand: () => number): T {
  const total = items.reduce((a, t) => a + weight(t), 0);
  let x = rand() * total;
  for (const t of items) {
    x -= weight(t);
    if (x < 0) return t;
  }
  return items[items.length - 1] as T;
}

/** A small seeded PRNG (mulberry32): the same seed draws the same scenario. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
