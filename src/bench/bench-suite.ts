/**
 * `aegis bench`: one child process per size (so each size has its own peak RSS), plus a child
 * with the engine disabled (the simulator alone) whose memory is subtracted to estimate the
 * engine's share. Children print one SizeResult as JSON on stdout and progress on stderr.
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import type { SizeResult } from './size-result.js';

/** Cycles per size unless `--cycles` is given. */
export const DEFAULT_CYCLES = 40;
/** Simulator node-cycles a default run affords per size (50,000 nodes: 10 cycles). */
const NODE_CYCLE_BUDGET = 500_000;
/** Cycles of the engine-less memory baseline (the simulator's peak is its per-cycle working set). */
export const BASELINE_CYCLES = 10;

/** How to run the suite. */
export interface SuiteOptions {
  readonly sizes: readonly number[];
  /** Cycles of every size; default DEFAULT_CYCLES, reduced for large sizes (and reported). */
  readonly cycles?: number;
  /** Also run the engine-less baseline per size (default true). */
  readonly baseline?: boolean;
  /** How to start a child: the Node flags and the CLI entry (process.execArgv, process.argv[1]). */
  readonly execArgv: readonly string[];
  readonly entry: string;
  /** Progress lines of the children. */
  readonly onProgress?: (line: string) => void;
}

/** Figures of one size. */
export interface SizeReport {
  readonly nodes: number;
  /** Why this size ran fewer cycles than asked, when it did. */
  readonly cyclesNote?: string;
  /** Node flags the children ran with. */
  readonly nodeFlags: readonly string[];
  readonly engine: SizeResult;
  readonly baseline?: SizeResult;
  /** Peak RSS with the engine minus the simulator alone (an estimate: GC timing moves both). */
  readonly engineShareRssMb?: number;
  /** Heap live after a full GC at the end, with the engine minus without (the engine's state). */
  readonly engineShareHeapMb?: number;
  /** 1-minute load average before and after the size ran (other work on the machine). */
  readonly load: readonly [number, number];
}

/** The whole report. */
export interface BenchReport {
  readonly machine: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly memoryGb: number;
    readonly node: string;
  };
  readonly sizes: readonly SizeReport[];
}

/** Cycles for a size: `requested` when given, else the default within the node-cycle budget. */
export function cyclesFor(nodes: number, requested?: number): { cycles: number; note?: string } {
  if (requested !== undefined) return { cycles: requested };
  const affordable = Math.max(8, Math.floor(NODE_CYCLE_BUDGET / nodes));
  if (affordable >= DEFAULT_CYCLES) return { cycles: DEFAULT_CYCLES };
  return {
    cycles: affordable,
    note:
      `${affordable} cycles instead of ${DEFAULT_CYCLES}: the simulator's PromQL evaluation of ` +
      `${nodes} nodes takes minutes per cycle`,
  };
}

/** Runs every size in its own child process, one after the other. */
export async function runBenchSuite(options: SuiteOptions): Promise<BenchReport> {
  const sizes: SizeReport[] = [];
  for (const nodes of options.sizes) {
    const { cycles, note } = cyclesFor(nodes, options.cycles);
    const before = loadavg()[0] ?? 0;
    const engine = await runChild(options, nodes, cycles, true);
    const baseline =
      options.baseline === false
        ? undefined
        : await runChild(options, nodes, Math.min(cycles, BASELINE_CYCLES), false);
    const mb = (v: number): number => Number(v.toFixed(1));
    sizes.push({
      nodes,
      ...(note === undefined ? {} : { cyclesNote: note }),
      nodeFlags: nodeFlags(nodes),
      engine,
      ...(baseline === undefined
        ? {}
        : {
            baseline,
            engineShareRssMb: mb(engine.memory.peakRssMb - baseline.memory.peakRssMb),
            ...(engine.memory.heapAfterGcMb === undefined ||
            baseline.memory.heapAfterGcMb === undefined
              ? {}
              : {
                  engineShareHeapMb: mb(
                    engine.memory.heapAfterGcMb - baseline.memory.heapAfterGcMb,
                  ),
                }),
          }),
      load: [before, loadavg()[0] ?? 0],
    });
  }
  const cpu = cpus();
  return {
    machine: {
      cpus: cpu.length,
      cpuModel: cpu[0]?.model ?? 'unknown',
      memoryGb: Number((totalmem() / 2 ** 30).toFixed(1)),
      node: process.version,
    },
    sizes,
  };
}

/**
 * Node flags of a child: --expose-gc (the simulator's garbage is collected before each measured
 * cycle); above 20,000 nodes a larger V8 heap, since the simulator's working set nears the default
 * 4 GB limit (it changes when V8 collects, so the smaller sizes keep the default).
 */
export function nodeFlags(nodes: number): string[] {
  return ['--expose-gc', ...(nodes > 20_000 ? ['--max-old-space-size=16384'] : [])];
}

function runChild(
  options: SuiteOptions,
  nodes: number,
  cycles: number,
  engine: boolean,
): Promise<SizeResult> {
  const args = [
    ...options.execArgv,
    ...nodeFlags(nodes),
    options.entry,
    'bench',
    '--one',
    String(nodes),
    '--cycles',
    String(cycles),
    ...(engine ? [] : ['--no-engine']),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      err += c;
      for (const line of c.split('\n')) if (line.trim() !== '') options.onProgress?.(line);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(
          new Error(`bench child (${nodes} nodes) exited ${String(code)}: ${err.slice(-2000)}`),
        );
        return;
      }
      try {
        resolve(JSON.parse(out) as SizeResult);
      } catch (cause) {
        reject(new Error(`bench child (${nodes} nodes) printed no JSON`, { cause }));
      }
    });
  });
}
