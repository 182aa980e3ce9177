/**
 * `aegis agent`: the node-side checks as one process per node. Composition only: builds the
 * checks from the options, follows the kernel log, reads the previous boot, runs every check on
 * its interval, serves /metrics and publishes the Node conditions. Everything external comes in
 * through `deps` (clock, tool runner, Kubernetes port, DNS), so tests run it against a fake host.
 */
import { setMaxListeners } from 'node:events';
import { backgroundClock, systemClock, type Clock } from '../core/clock.js';
import { createAgentMetrics } from './agent-metrics.js';
import { startAgentHttp } from './agent-http.js';
import { AgentState } from './agent-state.js';
import { bootTimeMs as readBootTimeMs } from './boot-time.js';
import type { Check, CheckReport } from './check.js';
import { runCheckLoop } from './check-loop.js';
import { buildChecks } from './checks.js';
import { ConditionPublisher } from './condition-publisher.js';
import { createResolve, type Resolve } from './dns-check.js';
import { hostPath } from './host-fs.js';
import { KernelLogState } from './kernel-log-state.js';
import { followKmsg } from './kmsg-follower.js';
import { parseKmsgRecord } from './kmsg-record.js';
import { LogWindow } from './log-window.js';
import type { NodePort } from './node-port.js';
import type { AgentOptions } from './options.js';
import { readPreviousBoot } from './previous-boot.js';
import { createToolRunner, type ToolRunner } from './tool-runner.js';

/** How often window-based conditions (lockups, panic) are re-evaluated. */
const CONDITION_TICK_MS = 15_000;
/** How long close() waits for running checks. */
const CLOSE_GRACE_MS = 2_000;

/** External dependencies; each has a production default. */
export interface AgentDeps {
  readonly clock?: Clock;
  readonly runner?: ToolRunner;
  /** Undefined: Node conditions are not written. */
  readonly nodePort?: NodePort;
  readonly resolve?: Resolve;
  readonly bootTimeMs?: number;
  readonly log?: (line: string) => void;
}

/** A running agent. */
export interface RunningAgent {
  readonly url: string;
  readonly state: AgentState;
  /** Resolves once every check has reported at least once. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/** Starts the agent; resolves when /metrics listens. */
export async function startAgent(
  options: AgentOptions,
  deps: AgentDeps = {},
): Promise<RunningAgent> {
  const clock = deps.clock ?? systemClock;
  const log = deps.log ?? ((line: string) => process.stderr.write(`aegis-agent: ${line}\n`));
  const runner = deps.runner ?? createToolRunner(options.toolMode, options.hostRoot);
  const bootTimeMs = deps.bootTimeMs ?? (await readBootTimeMs(options.hostRoot, clock));
  const abort = new AbortController();
  const signal = abort.signal;
  // Every loop waits on this one signal (one listener per pending sleep).
  setMaxListeners(64, signal);
  const state = new AgentState(
    new KernelLogState(options.logWindowMs, bootTimeMs),
    new LogWindow(options.logWindowMs),
  );
  const publisher =
    deps.nodePort === undefined || !options.conditions
      ? undefined
      : new ConditionPublisher({
          port: deps.nodePort,
          nodeName: options.nodeName,
          clock,
          bootTimeMs,
          resyncMs: options.intervals.conditionsResyncMs,
          signal,
          log,
          onWrite: (ok) => (state.conditionWriteOk = ok ? 1 : 0),
        });
  const publish = (): void => publisher?.update(state.conditionInputs(clock.now()));
  const checks = buildChecks({
    options,
    runner,
    clock,
    mmfs: state.mmfs,
    nodePort: deps.nodePort,
    resolve: deps.resolve ?? createResolve(options.dnsServers, options.dnsTimeoutMs),
  });
  const metrics = createAgentMetrics(() => state.snapshot(clock.now()), publisher !== undefined);
  const http = await startAgentHttp(metrics, options.listenHost, options.port);
  const tasks: Promise<void>[] = [];
  const firstRuns = new Set([...checks.map((c) => c.name), 'previous-boot']);
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const done = (name: string): void => {
    if (firstRuns.delete(name) && firstRuns.size === 0) markReady();
  };
  const onReport = (check: Check, report: CheckReport, seconds: number): void => {
    state.setReport(check.name, report, seconds);
    done(check.name);
    publish();
  };
  tasks.push(
    followKmsg({
      path: hostPath(options.hostRoot, options.kmsgPath),
      pollMs: options.kmsgPollMs,
      clock,
      signal,
      onAvailable: (ok, detail) => {
        state.kernel.kmsgAvailable = ok;
        state.kmsgDetail = detail ?? 'open';
        publish();
      },
      onLine: (line) => {
        const record = parseKmsgRecord(line);
        const match = record === undefined ? undefined : state.kernel.onRecord(record);
        if (match?.rule === 'xid' || match?.rule === 'soft_lockup') publish();
      },
    }),
    previousBootLoop(options, {
      runner,
      clock,
      signal,
      bootTimeMs,
      state,
      publish,
      onDone: () => {
        done('previous-boot');
      },
    }),
    ...checks.map((c) => runCheckLoop(c, { clock, signal, onReport, log })),
    tickLoop(clock, signal, publish),
  );
  return {
    url: http.url,
    state,
    ready,
    async close() {
      abort.abort();
      await http.close();
      // A check in the middle of a tool run or a DNS query ends with it: wait a little, not more.
      await Promise.race([Promise.allSettled(tasks), backgroundClock.sleep(CLOSE_GRACE_MS)]);
    },
  };
}

async function previousBootLoop(
  options: AgentOptions,
  c: {
    runner: ToolRunner;
    clock: Clock;
    signal: AbortSignal;
    bootTimeMs: number;
    state: AgentState;
    publish: () => void;
    onDone: () => void;
  },
): Promise<void> {
  while (!c.signal.aborted) {
    const result = await readPreviousBoot({
      hostRoot: options.hostRoot,
      bootTimeMs: c.bootTimeMs,
      runner: c.runner,
      timeoutMs: options.toolTimeoutMs,
    });
    c.state.kernel.setPreviousBoot(result);
    c.onDone();
    c.publish();
    if (result.available) return; // the previous boot does not change while this one runs
    await c.clock.sleep(options.intervals.previousBootMs, c.signal).catch(() => undefined);
  }
}

async function tickLoop(clock: Clock, signal: AbortSignal, publish: () => void): Promise<void> {
  while (!signal.aborted) {
    await clock.sleep(CONDITION_TICK_MS, signal).catch(() => undefined);
    publish();
  }
}
