/**
 * `aegis replay --prometheus URL --from T1 --to T2 [--config FILE] [--step 30s] [--json]
 * [--compare OTHER_CONFIG]`: runs the real engine over a past window of Prometheus history in
 * virtual time and prints what it would have done (see src/replay/ and docs/replay.md). Writes
 * nothing to any cluster. With --compare, replays the same window under a second policy and
 * prints the differences.
 */
import type { Command } from '@commander-js/extra-typings';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { parseDurationMs } from '../../core/duration.js';
import { ErrorCode, HealError } from '../../core/errors.js';
import { compareReplays } from '../../replay/compare.js';
import { createReplayPrinter, writeReplaySummary, writeComparison } from '../../replay/format.js';
import { DEFAULT_JOB_ASSUMPTION, type JobAssumption } from '../../replay/history-cluster.js';
import { createHistoryReader } from '../../replay/range-client.js';
import { checkWindow, replayConfig, runReplay, type ReplayReport } from '../../replay/replay.js';
import { stdoutOf } from './sim.js';

/**
 * A time on the command line: RFC 3339 (`2026-03-01T00:00:00Z`, or a date alone, UTC), Unix
 * seconds, `now`, or `now-7d` (any duration). Throws INVALID_INPUT naming the flag.
 */
export function parseTime(text: string, flag: string, nowMs = Date.now()): number {
  const t = text.trim();
  const rel = /^now(?:-(.+))?$/.exec(t);
  if (rel !== null) return rel[1] === undefined ? nowMs : nowMs - parseDurationMs(rel[1], flag);
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  if (/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(t)) {
    const ms = Date.parse(t.length === 10 ? `${t}T00:00:00Z` : t);
    if (Number.isFinite(ms)) return ms;
  }
  throw new HealError(
    ErrorCode.InvalidInput,
    `${flag}: "${text}" is not a time (use RFC 3339 like 2026-03-01T00:00:00Z, Unix seconds, now or now-7d)`,
  );
}

interface ReplayFlags {
  prometheus: string;
  from: string;
  to: string;
  config?: string;
  step: string;
  json?: boolean;
  quiet?: boolean;
  compare?: string;
  jobs: string;
  bootTime: string;
  keepDryRun?: boolean;
}

/** Runs the command; returns the report(s) (tests call it directly). */
export async function runReplayCommand(
  flags: ReplayFlags,
  write: (text: string) => void,
  nowMs = Date.now(),
): Promise<ReplayReport[]> {
  const fromMs = parseTime(flags.from, '--from', nowMs);
  const toMs = parseTime(flags.to, '--to', nowMs);
  const stepMs = parseDurationMs(flags.step, '--step');
  checkWindow(fromMs, toMs, stepMs);
  if (flags.jobs !== 'succeed' && flags.jobs !== 'fail')
    throw new HealError(ErrorCode.InvalidInput, `--jobs: "${flags.jobs}" must be succeed or fail`);
  const jobs: JobAssumption = {
    ...DEFAULT_JOB_ASSUMPTION,
    outcome: flags.jobs,
    bootTimeMs: parseDurationMs(flags.bootTime, '--boot-time'),
  };
  const load = (file: string | undefined): Config =>
    replayConfig(loadConfig(file === undefined ? {} : { file }), stepMs, flags.keepDryRun === true);
  const config = load(flags.config);
  const other = flags.compare === undefined ? undefined : load(flags.compare);
  const url = flags.prometheus;
  const p = config.prometheus;
  const reader = createHistoryReader({
    url,
    ...(p.bearerTokenFile === undefined ? {} : { bearerTokenFile: p.bearerTokenFile }),
    ...(p.caFile === undefined ? {} : { caFile: p.caFile }),
    insecureSkipVerify: p.insecureSkipVerify,
    allowInsecureBearerToken: p.allowInsecureBearerToken,
  });
  const ac = new AbortController();
  const onSigint = (): void => {
    ac.abort(new Error('interrupted'));
  };
  process.once('SIGINT', onSigint);
  const json = flags.json === true;
  const run = (cfg: Config, name: string, label?: string): Promise<ReplayReport> =>
    runReplay({
      reader,
      source: url,
      fromMs,
      toMs,
      stepMs,
      config: cfg,
      configName: name,
      jobs,
      signal: ac.signal,
      ...(json
        ? {}
        : {
            onEvent: createReplayPrinter(write, {
              quiet: flags.quiet === true,
              ...(label === undefined ? {} : { label }),
            }),
          }),
    });
  try {
    const nameA = flags.config ?? 'the default config';
    const a = await run(config, nameA, other === undefined ? undefined : 'A');
    if (other === undefined || flags.compare === undefined) {
      if (json) write(`${JSON.stringify(a, null, 2)}\n`);
      else writeReplaySummary(a, write);
      return [a];
    }
    const b = await run(other, flags.compare, 'B');
    const diff = compareReplays(a, b);
    if (json) {
      write(`${JSON.stringify({ a, b, differences: diff }, null, 2)}\n`);
    } else {
      writeReplaySummary(a, write, `A: ${nameA}`);
      writeReplaySummary(b, write, `B: ${flags.compare}`);
      writeComparison(diff, write);
    }
    return [a, b];
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** Registers `aegis replay`. */
export function registerReplayCommand(program: Command): void {
  program
    .command('replay')
    .description(
      'Run the engine over a past window of Prometheus history in virtual time; writes nothing (see docs/replay.md)',
    )
    .requiredOption(
      '--prometheus <url>',
      'Prometheus (or compatible) holding the history; auth and TLS from --config',
    )
    .requiredOption('--from <time>', 'start: RFC 3339, Unix seconds, now-7d')
    .requiredOption('--to <time>', 'end: RFC 3339, Unix seconds, now')
    .option('--config <file>', 'the policy (an aegis config file; default: the defaults)')
    .option('--step <duration>', 'inspection interval in virtual time', '30s')
    .option('--json', 'print one JSON report instead of live lines and a summary')
    .option('--quiet', 'no live lines, only the summary')
    .option(
      '--compare <file>',
      'replay the window again under this config and print the differences',
    )
    .option('--jobs <outcome>', 'what the Jobs the engine launches do: succeed or fail', 'succeed')
    .option('--boot-time <duration>', 'how long a node rebooted by the replay stays down', '150s')
    .option(
      '--keep-dry-run',
      "keep the config's safety.dryRun (default: replay as if it were false)",
    )
    .action(async (options, cmd) => {
      await runReplayCommand(options, stdoutOf(cmd));
    });
}
