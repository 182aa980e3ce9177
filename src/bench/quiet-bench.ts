/**
 * `aegis bench --quiet`: the engine on a quiet fleet, in a process that holds no simulator
 * garbage. A 100,000-node fleet is quiet almost all the time, and a pass of the simulator's PromQL
 * at that size takes ~1.5 minutes of CPU and ~2.5 GB of heap, which would be most of the process's
 * RSS. So one child (`bench --answers-for N --out FILE`) evaluates every query of the inspector
 * on the simulated world once (every-cycle and slow rules, presence) and writes the answers to a
 * file; this process builds the same world (same seed: same nodes, same cluster), reads the
 * answers, and runs `controller.cycle()` on them for N cycles of virtual time. Nothing is faulty,
 * so every cycle is the fleet's own cost: the node list, the presence folding and stale scan, the
 * condition tracker, the decisions (none). Measured: the main thread's CPU per cycle
 * (`/proc/thread-self/schedstat`), the queries per cycle, the V8 heap after a full GC before the
 * engine is built and at the end (the difference is the engine's live state), and the process's
 * peak RSS (world + answers + engine).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { CATALOGUE } from '../catalogue/index.js';
import { SIGNAL_PRESENCE } from '../catalogue/signals.js';
import { defaultConfig, type Config } from '../config/schema.js';
import { ManualClock } from '../core/clock.js';
import { createEngine } from '../daemon.js';
import { inspectorOptions } from '../engine/controller.js';
import { Inspector } from '../engine/inspector.js';
import { silentLogger } from '../engine/logger.js';
import { createMetrics } from '../metrics/metrics.js';
import type { InstantSample, MetricsSource } from '../prom/metrics-source.js';
import { defaultPriorityTable } from '../priority/priority-table.js';
import { createSimWorld } from '../sim/sim-world.js';
import { nodeFlags } from './bench-suite.js';
import { peakRssMb, rssMb, settleCpu, summarize, threadCpuNs, type Summary } from './stats.js';

/** Seed of the simulated world (the same as the storm benchmark's). */
const SEED = 7;
/** First cycles left out of the figures (the first asks every slow rule; JIT warm-up). */
export const QUIET_WARMUP = 3;

/** What one quiet run reports. */
export interface QuietResult {
  readonly nodes: number;
  readonly cycles: number;
  /** Main-thread CPU per cycle after the warm-up (ms). */
  readonly engineCpuMs: Summary;
  /** Wall time per cycle (includes waiting for a core on a loaded machine). */
  readonly engineWallMs: Summary;
  readonly queriesPerCycle: { readonly min: number; readonly max: number; readonly mean: number };
  /** Queries the answers file could not answer (0: every query the engine asked was evaluated). */
  readonly misses: number;
  /** Those queries (answered with no sample). */
  readonly missed: readonly string[];
  readonly memory: {
    /** RSS with the world built and the answers read, before the engine. */
    readonly beforeEngineRssMb: number;
    /** V8 heap after a full GC: before the engine is built, and after the last cycle (its answers released). */
    readonly heapBeforeEngineMb: number;
    readonly heapAfterMb: number;
    /** heapAfterMb − heapBeforeEngineMb: the engine's live state (nothing in the world changed). */
    readonly engineHeapMb: number;
    /**
     * Heap of the last cycle's answers beyond what the engine keeps (the inspector keeps the last
     * presence answers for the next cycle and the fast path: those are in engineHeapMb).
     */
    readonly answersHeapMb: number;
    /** Peak RSS of this process: world, answers and engine. */
    readonly peakRssMb: number;
  };
  /** The answering child: its CPU for the simulator's pass, and its wall time. */
  readonly answers: { readonly queries: number; readonly samples: number; readonly wallS: number };
  /** 1-minute load average at the start and at the end. */
  readonly load: readonly [number, number];
  readonly wallSeconds: number;
}

/** The benchmark's configuration: product defaults, dry-run off, inspection in the cycle. */
function quietConfig(): Config {
  const base = defaultConfig();
  return {
    ...base,
    safety: { ...base.safety, dryRun: false },
    inspect: {
      ...base.inspect,
      intervalMs: 1000,
      backgroundSlowRules: false,
      backgroundPresence: false,
    },
  };
}

/** Every query the inspector can ask (every-cycle, slow rules, presence, collector health). */
function inspectorQueries(world: ReturnType<typeof createSimWorld>, config: Config): string[] {
  const inspector = new Inspector({
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    metrics: world.metrics,
    clock: world.clock,
    options: inspectorOptions(config),
  });
  return inspector.queries;
}

/**
 * The answering child's work (`bench --answers-for N --out FILE`): evaluates every query of the
 * inspector at the world's first instant and writes `[[expr, samples], …]` as JSON.
 */
export function writeAnswers(nodes: number, file: string): void {
  const clock = new ManualClock();
  const world = createSimWorld({ nodes, seed: SEED, catalogue: CATALOGUE, clock });
  const exprs = [...new Set(inspectorQueries(world, quietConfig()))];
  const answers = exprs.map((e) => [e, world.metrics.evaluateNow(e, clock.now())] as const);
  writeFileSync(file, JSON.stringify(answers));
}

/** Runs the quiet benchmark of one size: the answering child, then the cycles in another child. */
export async function runQuietBench(options: {
  readonly nodes: number;
  readonly cycles: number;
  /** How to start the children: Node flags and the CLI entry. */
  readonly execArgv: readonly string[];
  readonly entry: string;
  /** Answers written earlier by `bench --answers-for N --out FILE` (repeat runs, A/B); else a child writes them. */
  readonly answersFile?: string;
  readonly onProgress?: (line: string) => void;
}): Promise<QuietResult> {
  const started = performance.now();
  const load0 = loadavg()[0] ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'aegis-quiet-'));
  const file = options.answersFile ?? join(dir, 'answers.json');
  try {
    const childStart = performance.now();
    if (options.answersFile === undefined) {
      await runChild(options, ['--answers-for', String(options.nodes), '--out', file]);
    }
    const wallS = Number(((performance.now() - childStart) / 1000).toFixed(1));
    options.onProgress?.(`[${options.nodes} nodes, quiet] answers ready in ${wallS} s`);
    const out = await runChild(options, [
      '--one',
      String(options.nodes),
      '--quiet',
      '--cycles',
      String(options.cycles),
      '--answers-file',
      file,
    ]);
    const cycles = JSON.parse(out) as QuietCycles;
    return {
      ...cycles,
      load: [load0, loadavg()[0] ?? 0],
      wallSeconds: Number(((performance.now() - started) / 1000).toFixed(1)),
      answers: { ...cycles.answers, wallS },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the cycles child prints. */
export type QuietCycles = Omit<QuietResult, 'load' | 'wallSeconds'>;

/**
 * The cycles child (`bench --one N --quiet --answers-file FILE`): builds the world, reads the
 * answers, runs the engine's cycles on them.
 */
export async function runQuietCycles(options: {
  readonly nodes: number;
  readonly cycles: number;
  readonly answersFile: string;
  readonly onProgress?: (line: string) => void;
}): Promise<QuietCycles> {
  const parsed = JSON.parse(readFileSync(options.answersFile, 'utf8')) as [
    string,
    InstantSample[],
  ][];
  const answers = new Map(parsed);
  const result = await quietCycles(options, answers);
  return {
    ...result,
    answers: {
      queries: parsed.length,
      samples: parsed.reduce((n, [, s]) => n + s.length, 0),
      wallS: Number.NaN,
    },
  };
}

async function quietCycles(
  options: {
    readonly nodes: number;
    readonly cycles: number;
    readonly onProgress?: (line: string) => void;
  },
  answers: ReadonlyMap<string, readonly InstantSample[]>,
): Promise<Omit<QuietCycles, 'answers'>> {
  const clock = new ManualClock();
  const world = createSimWorld({ nodes: options.nodes, seed: SEED, catalogue: CATALOGUE, clock });
  const config = quietConfig();
  let misses = 0;
  const missed = new Set<string>();
  // Fresh sample objects every cycle, as a client parsing Prometheus's JSON hands over new ones,
  // copied before the cycle's measurement starts.
  let current = new Map<string, readonly InstantSample[]>();
  const fresh = (): Map<string, readonly InstantSample[]> =>
    new Map(
      [...answers].map(([e, samples]) => [
        e,
        samples.map((s) => ({ labels: { ...s.labels }, value: s.value })),
      ]),
    );
  const source: MetricsSource = {
    query: (expr) => {
      const answer = current.get(expr);
      if (answer === undefined) {
        misses++;
        missed.add(expr);
      }
      return Promise.resolve(answer ?? []);
    },
  };
  const table = defaultPriorityTable(CATALOGUE);
  const priorityOf = (c: string): number => table.get(c)?.priority ?? 999;
  const beforeEngineRssMb = rssMb();
  const heapBeforeEngineMb = heapAfterGcMb();
  const engine = createEngine({
    cluster: world.cluster,
    metricsSource: source,
    clock,
    config,
    catalogue: CATALOGUE,
    presence: SIGNAL_PRESENCE,
    priorityOf: () => priorityOf,
    metrics: createMetrics(),
    log: silentLogger,
  });
  const ac = new AbortController();
  const cpu: number[] = [];
  const wall: number[] = [];
  const queries: number[] = [];
  for (let i = 0; i < options.cycles; i++) {
    current = new Map();
    current = fresh();
    heapAfterGcMb();
    await settleCpu();
    const t0 = threadCpuNs();
    const w0 = performance.now();
    const report = await engine.controller.cycle(ac.signal);
    const w = performance.now() - w0;
    const t1 = threadCpuNs();
    const ms = t0 === undefined || t1 === undefined ? Number.NaN : (t1 - t0) / 1e6;
    if (report.started > 0) throw new Error(`a quiet fleet started ${report.started} steps`);
    options.onProgress?.(
      `[${options.nodes} nodes, quiet] cycle ${i + 1}/${options.cycles}: engine ${ms.toFixed(1)} ms CPU, ${w.toFixed(0)} ms wall, ${report.queries} queries`,
    );
    if (i >= QUIET_WARMUP) {
      cpu.push(ms);
      wall.push(w);
      queries.push(report.queries);
    }
    await clock.advance(1000);
  }
  // With the last cycle's answers (as a client holds them through a cycle), then without.
  const heapWithAnswersMb = heapAfterGcMb();
  current = new Map();
  const heapAfterMb = heapAfterGcMb();
  ac.abort(new Error('benchmark over'));
  return {
    nodes: options.nodes,
    cycles: options.cycles,
    engineCpuMs: summarize(cpu),
    engineWallMs: summarize(wall),
    queriesPerCycle: {
      min: Math.min(...queries),
      max: Math.max(...queries),
      mean: Number((queries.reduce((a, b) => a + b, 0) / queries.length).toFixed(1)),
    },
    misses,
    missed: [...missed],
    memory: {
      beforeEngineRssMb,
      heapBeforeEngineMb,
      heapAfterMb,
      engineHeapMb: Number((heapAfterMb - heapBeforeEngineMb).toFixed(1)),
      answersHeapMb: Number((heapWithAnswersMb - heapAfterMb).toFixed(1)),
      peakRssMb: peakRssMb(),
    },
  };
}

/** V8 heap in use after two full collections (MB); NaN without --expose-gc. */
function heapAfterGcMb(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') return Number.NaN;
  gc();
  gc();
  return Number((getHeapStatistics().used_heap_size / 2 ** 20).toFixed(1));
}

/** Runs `bench ARGS` in a child with the size's Node flags; resolves with its stdout. */
function runChild(
  options: {
    readonly nodes: number;
    readonly execArgv: readonly string[];
    readonly entry: string;
    readonly onProgress?: (line: string) => void;
  },
  args: readonly string[],
): Promise<string> {
  const argv = [...options.execArgv, ...nodeFlags(options.nodes), options.entry, 'bench', ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      err += c;
      for (const line of c.split('\n')) if (line.trim() !== '') options.onProgress?.(line);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else {
        reject(
          new Error(
            `bench child (${options.nodes} nodes, ${args.join(' ')}) exited ${String(code)}: ${err.slice(-2000)}`,
          ),
        );
      }
    });
  });
}
