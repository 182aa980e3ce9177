/**
 * The remediation Jobs of the simulated cluster (the deploy/jobs templates): each goes Pending →
 * Running → Succeeded/Failed after configured durations, and does to the node what the real
 * template does — reboot it, power it off, run the health check against its active faults, apply a
 * remedy, repair GPFS, print a diagnosis in the `hint:/cmd:/result:` protocol, or validate the node
 * before return to service (`aegis-validate:` sections, judged by src/jobs/validation.ts: it fails
 * while the node has an active fault, or when the behaviour's `outcome` is `Failed`).
 */
import { Domain } from '../core/types.js';
import { JobKind, type JobRequest, type JobState } from '../k8s/cluster.js';
import type { Fault, FaultInjector } from './faults.js';
import type { SimScheduler } from './sim-scheduler.js';

/** How Jobs of a kind behave; unset fields keep the defaults. */
export interface JobBehaviour {
  /** Pending → Running. */
  readonly pendingMs?: number;
  /** Running → finished. */
  readonly durationMs?: number;
  /** Forces the outcome (a failed reboot Job reboots nothing). */
  readonly outcome?: 'Succeeded' | 'Failed';
  /** Forces the exit code (and, with no outcome, the outcome: 0 succeeds). */
  readonly exitCode?: number;
  readonly logs?: readonly string[];
}

/** What the Jobs need from the cluster. */
export interface JobHost {
  readonly scheduler: SimScheduler;
  readonly faults: FaultInjector;
  /** True when a pod can start on the node (Ready). */
  isReady(node: string): boolean;
  /** Reboots the node from `atMs`; returns when it is back up. */
  reboot(node: string, atMs: number): number;
  /** Powers the node off from `atMs` until a human powers it on. */
  powerOff(node: string, atMs: number): void;
}

const DEFAULTS: Readonly<
  Record<JobKind, Required<Pick<JobBehaviour, 'pendingMs' | 'durationMs'>>>
> = {
  restart_node: { pendingMs: 5_000, durationMs: 175_000 },
  shutdown_node: { pendingMs: 5_000, durationMs: 11_000 },
  healthcheck_node: { pendingMs: 5_000, durationMs: 115_000 },
  remedy_node: { pendingMs: 5_000, durationMs: 55_000 },
  repair_node: { pendingMs: 5_000, durationMs: 595_000 },
  diagnose_node: { pendingMs: 5_000, durationMs: 55_000 },
  validate_node: { pendingMs: 5_000, durationMs: 895_000 },
};
/** A reboot or shutdown Job acts this long after its pod starts. */
const ACT_AFTER_MS = 10_000;
const NOT_READY_RECHECK_MS = 10_000;

type ResolvedBehaviour = JobBehaviour & Required<Pick<JobBehaviour, 'pendingMs' | 'durationMs'>>;

interface JobRecord {
  readonly request: JobRequest;
  state: JobState;
  cancelled: boolean;
}

/** Job store and life cycle. */
export class SimJobs {
  readonly #host: JobHost;
  readonly #jobs = new Map<string, JobRecord>();
  readonly #behaviour = new Map<string, JobBehaviour>();

  constructor(host: JobHost, behaviour: Partial<Record<JobKind, JobBehaviour>> = {}) {
    this.#host = host;
    for (const [kind, b] of Object.entries(behaviour)) this.#behaviour.set(kind, b);
  }

  /** Sets how later Jobs of `kind` behave (on one node, or everywhere); undefined resets. */
  setBehaviour(kind: JobKind, behaviour: JobBehaviour | undefined, node?: string): void {
    const key = node === undefined ? kind : `${kind}@${node}`;
    if (behaviour === undefined) this.#behaviour.delete(key);
    else this.#behaviour.set(key, behaviour);
  }

  /** Creates the Job unless one of that name exists (idempotent by name). */
  create(request: JobRequest, nowMs: number): boolean {
    if (this.#jobs.has(request.name)) return false;
    const record: JobRecord = {
      request,
      state: { name: request.name, phase: 'Pending' },
      cancelled: false,
    };
    this.#jobs.set(request.name, record);
    const b = this.#resolve(request);
    this.#host.scheduler.at(nowMs + b.pendingMs, (t) => {
      this.#start(record, b, t, nowMs);
    });
    this.#host.scheduler.at(nowMs + request.activeDeadlineSeconds * 1000, (t) => {
      this.#finish(record, t, 'Failed', undefined, [
        'DeadlineExceeded: Job was active longer than specified deadline',
      ]);
    });
    return true;
  }

  /** Observed state, or null. */
  get(name: string): JobState | null {
    return this.#jobs.get(name)?.state ?? null;
  }

  /** Deletes the Job; effects not yet started are cancelled. */
  delete(name: string): boolean {
    const record = this.#jobs.get(name);
    if (record === undefined) return false;
    record.cancelled = true;
    this.#jobs.delete(name);
    return true;
  }

  /** Every Job request made so far that still exists. */
  list(): readonly JobRequest[] {
    return [...this.#jobs.values()].map((r) => r.request);
  }

  #resolve(request: JobRequest): ResolvedBehaviour {
    return {
      ...DEFAULTS[request.kind],
      ...this.#behaviour.get(request.kind),
      ...this.#behaviour.get(`${request.kind}@${request.node}`),
    };
  }

  #start(record: JobRecord, b: ResolvedBehaviour, t: number, createdMs: number): void {
    if (record.cancelled || record.state.phase !== 'Pending') return;
    if (!this.#host.isReady(record.request.node)) {
      this.#host.scheduler.at(t + NOT_READY_RECHECK_MS, (t2) => {
        this.#start(record, b, t2, createdMs);
      });
      return;
    }
    record.state = { name: record.request.name, phase: 'Running' };
    // A validation Job that "fails" still runs to its end: its tests fail (see #complete).
    const forcedFail =
      record.request.kind !== JobKind.Validate &&
      (b.outcome === 'Failed' ||
        (b.exitCode !== undefined && b.exitCode !== 0 && b.outcome === undefined));
    const end = t + b.durationMs;
    if (forcedFail) {
      this.#host.scheduler.at(end, (te) => {
        this.#finish(record, te, 'Failed', b.exitCode ?? 1, b.logs ?? ['forced failure']);
      });
      return;
    }
    const { node } = record.request;
    switch (record.request.kind) {
      case JobKind.Restart:
        this.#host.scheduler.at(t + ACT_AFTER_MS, (tr) => {
          if (record.cancelled) return;
          const up = this.#host.reboot(node, tr);
          this.#host.scheduler.at(Math.max(end, up + 5_000), (te) => {
            this.#finish(
              record,
              te,
              'Succeeded',
              0,
              b.logs ?? [
                'reboot.lock created',
                `rebooting ${node}`,
                'reboot.lock removed: node is back',
              ],
            );
          });
        });
        return;
      case JobKind.Shutdown:
        this.#host.scheduler.at(t + ACT_AFTER_MS, (ts) => {
          if (record.cancelled) return;
          this.#host.powerOff(node, ts);
          this.#finish(record, ts, 'Succeeded', 0, b.logs ?? [`shutdown -h now on ${node}`]);
        });
        return;
      case JobKind.Healthcheck:
      case JobKind.Remedy:
      case JobKind.Repair:
      case JobKind.Diagnose:
      case JobKind.Validate:
        this.#host.scheduler.at(end, (te) => {
          this.#complete(record, b, te);
        });
        return;
    }
  }

  #complete(record: JobRecord, b: JobBehaviour, t: number): void {
    if (record.cancelled) return;
    const { node, kind, params } = record.request;
    const faults = this.#host.faults;
    switch (kind) {
      case JobKind.Healthcheck: {
        const result = healthcheck(faults.active(node));
        const exitCode = b.exitCode ?? result.exitCode;
        this.#finish(
          record,
          t,
          exitCode === 0 ? 'Succeeded' : 'Failed',
          exitCode,
          b.logs ?? result.logs,
        );
        return;
      }
      case JobKind.Remedy: {
        const action = params['ACTION'] ?? params['action'] ?? '';
        const cleared = faults.onRemedy(node, action, t);
        this.#finish(
          record,
          t,
          'Succeeded',
          0,
          b.logs ?? [`remedy ${action} on ${node}`, ...cleared.map((f) => `fixed ${f.entry.name}`)],
        );
        return;
      }
      case JobKind.Repair: {
        const cleared = faults.onRepair(node, t);
        this.#finish(
          record,
          t,
          'Succeeded',
          0,
          b.logs ?? [`repair on ${node}`, ...cleared.map((f) => `fixed ${f.entry.name}`)],
        );
        return;
      }
      case JobKind.Diagnose:
        this.#finish(record, t, 'Succeeded', 0, b.logs ?? diagnose(faults.active(node)));
        return;
      case JobKind.Validate: {
        const failing = b.outcome === 'Failed' || healthcheck(faults.active(node)).exitCode !== 0;
        this.#finish(
          record,
          t,
          'Succeeded',
          b.exitCode ?? 0,
          b.logs ?? validationLogs(params, failing, faults.active(node)),
        );
        return;
      }
      case JobKind.Restart:
      case JobKind.Shutdown:
        return;
    }
  }

  #finish(
    record: JobRecord,
    _t: number,
    phase: 'Succeeded' | 'Failed',
    exitCode: number | undefined,
    logs: readonly string[],
  ): void {
    if (record.state.phase === 'Succeeded' || record.state.phase === 'Failed') return;
    record.state =
      exitCode === undefined
        ? { name: record.request.name, phase, logs }
        : { name: record.request.name, phase, exitCode, logs };
  }
}

/** Healthcheck exit codes of the original contract (§8.3): 21/22/23/24 GPU, 1 otherwise. */
const GPU_EXIT_CODES: Readonly<Record<string, number>> = {
  GpuRowRemappingFailure: 21,
  GpuAggSramUncorrectable: 22,
  GpuNvlinkError: 24,
};

/** The health check's verdict on a node's active faults (record-only and node-object faults pass). */
export function healthcheck(active: readonly Fault[]): { exitCode: number; logs: string[] } {
  const found = active.filter((f) => f.entry.sop !== null && f.entry.fault.series.length > 0);
  if (found.length === 0) {
    return {
      exitCode: 0,
      logs: ['nvidia-smi: ok', 'gpu_global_check: ok', 'nccl_perf: ok', 'healthcheck passed'],
    };
  }
  const gpu = found.find((f) => f.entry.domain === Domain.GPU);
  const exitCode = gpu === undefined ? 1 : (GPU_EXIT_CODES[gpu.entry.name] ?? 23);
  const logs = found.map(
    (f) => `check failed: ${f.entry.name}${f.device === '' ? '' : ` on ${f.device}`}`,
  );
  return { exitCode, logs: [...logs, `healthcheck failed with exit code ${exitCode}`] };
}

const DIAGNOSE_CMD: Readonly<Partial<Record<Domain, string>>> = {
  GPU: 'nvidia-smi -q',
  IB: 'ibstatus',
  RoCE: 'ibdev2netdev -v',
  GPFS: 'mmhealth node show',
  Network: 'cat /proc/net/bonding/bond0',
  CPU: 'ipmimonitoring --output-sensor-state -b | grep Processor',
  Memory: 'ipmimonitoring --output-sensor-state -b | grep Memory',
  Baseboard: 'ipmimonitoring --output-sensor-state -b | grep -v Nominal',
  Disk: 'ipmimonitoring --output-sensor-state -b | grep Drive',
};

/** Diagnose Job output in the `hint:` / `cmd:` / `result:` protocol (§8.4). */
export function diagnose(active: readonly Fault[]): string[] {
  if (active.length === 0)
    return ['hint: no anomaly found', 'cmd: dmesg -T | tail -n 50', 'result: ok'];
  return active.flatMap((f) => [
    `hint: ${f.entry.name}${f.device === '' ? '' : ` on ${f.device}`}`,
    `cmd: ${DIAGNOSE_CMD[f.entry.domain] ?? 'dmesg -T | tail -n 50'}`,
    `result: ${f.entry.description}`,
  ]);
}

/**
 * What the simulated node's validation Job prints: the `aegis-validate:` sections of the tests
 * its params ask for (src/jobs/validation.ts), each in its tool's format. A failing node fails
 * every test asked: a DCGM result FAIL on the faulty GPU, all-reduce values out of bounds, an IB
 * loopback with no bandwidth. Simulated numbers, not a device's.
 */
export function validationLogs(
  params: Readonly<Record<string, string>>,
  failing: boolean,
  active: readonly Fault[],
): string[] {
  const out: string[] = [];
  const level = params['DCGM_LEVEL'] ?? '0';
  const gpus = params['NCCL_GPUS'] ?? '0';
  const ib = params['IB_DEVICE'] ?? 'none';
  const n = gpus === 'all' ? 8 : Number(gpus);
  if (level === '0') out.push('aegis-validate: skip dcgm (not asked)');
  else {
    const bad = active.find((f) => f.entry.domain === Domain.GPU)?.device ?? '0';
    const results = Array.from({ length: 8 }, (_, i) => ({
      gpu_id: String(i),
      status: failing && String(i) === bad ? 'Fail' : 'Pass',
    }));
    out.push(
      `aegis-validate: begin dcgm level=${level}`,
      JSON.stringify({
        'DCGM GPU Diagnostic': {
          test_categories: [{ category: 'Hardware', tests: [{ name: 'Diagnostic', results }] }],
          version: 'simulated',
        },
      }),
      'aegis-validate: end dcgm rc=0',
    );
  }
  if (n === 0) out.push('aegis-validate: skip nccl (not asked)');
  else {
    const row = (bytes: number, busbw: string, wrong: number): string =>
      `${String(bytes).padStart(12)} ${String(bytes / 4).padStart(13)}     float     sum      -1    1000.0  ${busbw}  ${busbw}  ${String(wrong).padStart(5)}    1000.0  ${busbw}  ${busbw}  ${String(wrong).padStart(5)}`;
    out.push(
      `aegis-validate: begin nccl gpus=${n}`,
      '#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong',
      row(536870912, '180.00', failing ? 1 : 0),
      row(4294967296, '185.00', 0),
      `# Out of bounds values : ${failing ? '1 FAILED' : '0 OK'}`,
      '# Avg bus bandwidth    : 182.5',
      'aegis-validate: end nccl rc=0',
    );
  }
  if (ib === 'none') out.push('aegis-validate: skip ib (not asked)');
  else {
    const dev = ib === 'auto' ? 'mlx5_0' : ib;
    out.push(
      `aegis-validate: begin ib device=${dev}`,
      ` Dual-port       : OFF\t\tDevice         : ${dev}`,
      ' #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]   MsgRate[Mpps]',
      ` 1048576    5000             0.00               ${failing ? '0.00' : '97.50'}   \t\t   0.011621`,
      'aegis-validate: end ib rc=0',
    );
  }
  return out;
}
