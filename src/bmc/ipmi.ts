/**
 * IPMI over LAN through `ipmitool -I lanplus` (RMCP+, IPMI 2.0), the tool sites already trust.
 *
 * The password never appears on a command line (where `ps` and /proc/<pid>/cmdline show it to
 * every user of the host) nor in a log: ipmitool reads it from the environment variable
 * IPMI_PASSWORD (`-E`), set only in the child's own environment, and any text of ipmitool's that
 * reaches a message is scrubbed of it. No shell is involved: arguments are passed as an array.
 *
 * Errors are classified from ipmitool's own words (with `-v` it says why a session failed):
 * "RAKP 2 HMAC is invalid" (wrong password), "unauthorized name" (unknown user), "Insufficient
 * privilege level" → BMC_AUTH_FAILED; "Get Auth Capabilities error" / no answer → BMC_UNREACHABLE;
 * our own deadline → BMC_TIMEOUT; anything else → BMC_ERROR with ipmitool's last lines.
 */
import { spawn } from 'node:child_process';
import { ErrorCode } from '../core/errors.js';
import {
  bmcError,
  redact,
  type BmcClient,
  type BmcCredentials,
  type BmcTarget,
  type PowerState,
} from './types.js';

/** How ipmitool is run. */
export interface IpmiOptions {
  /** The ipmitool binary (default `ipmitool`, from PATH). */
  readonly command: string;
  /**
   * RMCP+ cipher suite (`-C`); undefined lets ipmitool choose (it asks the BMC which it supports;
   * some BMCs, and OpenIPMI's ipmi_sim, do not answer that and need it set, e.g. 3 or 17).
   */
  readonly cipherSuite?: number;
  /** Session privilege (`-L`): OPERATOR is enough for chassis power and reading the SEL/SDR. */
  readonly privilege: 'OPERATOR' | 'ADMINISTRATOR' | 'USER';
  /** Deadline of one ipmitool run, ms (the process is killed past it). */
  readonly timeoutMs: number;
  /** ipmitool's own per-try timeout (`-N`, seconds) and retries (`-R`). */
  readonly sessionTimeoutSeconds: number;
  readonly retries: number;
}

export const DEFAULT_IPMI_OPTIONS: IpmiOptions = {
  command: 'ipmitool',
  privilege: 'OPERATOR',
  timeoutMs: 30_000,
  sessionTimeoutSeconds: 2,
  retries: 2,
};

/** Longest ipmitool output read (SEL listings of a busy BMC run to a few hundred KB). */
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

/** An IPMI BMC driven through ipmitool. */
export function ipmiClient(
  target: BmcTarget,
  credentials: BmcCredentials,
  options: IpmiOptions = DEFAULT_IPMI_OPTIONS,
): BmcClient {
  const port = target.port ?? 623;
  const describe = `ipmi://${target.host.includes(':') ? `[${target.host}]` : target.host}:${port}`;
  const run = (args: readonly string[], signal: AbortSignal): Promise<string> =>
    runIpmitool(target, credentials, options, describe, args, signal);
  return {
    describe,
    async powerState(signal) {
      const out = await run(['chassis', 'power', 'status'], signal);
      return parsePowerStatus(out, describe);
    },
    async powerOff(signal) {
      await run(['chassis', 'power', 'off'], signal);
    },
    async powerOn(signal) {
      await run(['chassis', 'power', 'on'], signal);
    },
    async powerCycle(signal) {
      await run(['chassis', 'power', 'cycle'], signal);
    },
    selElist: (signal) => run(['sel', 'elist'], signal),
    sdrElist: (signal) => run(['sdr', 'elist'], signal),
  };
}

/** The ipmitool arguments of one command (no password: it goes through IPMI_PASSWORD). */
export function ipmitoolArgs(
  target: BmcTarget,
  username: string,
  options: IpmiOptions,
  command: readonly string[],
): string[] {
  return [
    '-I',
    'lanplus',
    '-H',
    target.host,
    '-p',
    String(target.port ?? 623),
    '-U',
    username,
    '-E',
    '-L',
    options.privilege,
    ...(options.cipherSuite === undefined ? [] : ['-C', String(options.cipherSuite)]),
    '-N',
    String(options.sessionTimeoutSeconds),
    '-R',
    String(options.retries),
    // -v makes ipmitool say why a session failed (its listings change with it: not for those).
    ...(command[0] === 'chassis' ? ['-v'] : []),
    ...command,
  ];
}

/** `Chassis Power is on|off` → the power state. */
export function parsePowerStatus(out: string, where: string): PowerState {
  const m = /Chassis Power is (on|off)/i.exec(out);
  if (m === null)
    throw bmcError(
      ErrorCode.BmcError,
      `${where}: unexpected answer to "chassis power status": ${JSON.stringify(out.trim().slice(0, 120))}`,
    );
  return m[1]?.toLowerCase() === 'on' ? 'On' : 'Off';
}

/**
 * The BMC error for a failed ipmitool run, from what it printed on stderr (already redacted).
 * Pure, for tests.
 */
export function classifyIpmitoolFailure(
  stderr: string,
  exitCode: number | null,
  where: string,
  command: string,
): { code: ErrorCode; message: string } {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(
      (l) =>
        l !== '' &&
        !/^Loading IANA PEN Registry|^Running Get VSO|^Discovered IPMB|^Get HPM\.x Capabilities|^Invalid completion code received: Invalid command$/.test(
          l,
        ),
    );
  const said = lines.slice(-2).join('; ').slice(0, 160);
  const text = lines.join('\n');
  if (
    /RAKP \d+ HMAC is invalid|RAKP \d+ message (indicates an error|has invalid integrity)|unauthorized name|Invalid user name|Insufficient privilege level|privilege level exceeds|invalid role/i.test(
      text,
    )
  )
    return {
      code: ErrorCode.BmcAuthFailed,
      message: `${where}: the BMC refused the credentials for "${command}" (${said})`,
    };
  if (
    /Get Auth Capabilities error|Get Channel Authentication Capabilities|No response from remote controller|Connection refused|Address lookup for .* failed|Unable to establish IPMI v2/i.test(
      text,
    )
  )
    return {
      code: ErrorCode.BmcUnreachable,
      message: `${where}: no IPMI session for "${command}" (${said === '' ? 'no answer' : said})`,
    };
  return {
    code: ErrorCode.BmcError,
    message: `${where}: "${command}" failed${exitCode === null ? '' : ` (exit ${exitCode})`}: ${said === '' ? 'no message' : said}`,
  };
}

function runIpmitool(
  target: BmcTarget,
  credentials: BmcCredentials,
  options: IpmiOptions,
  where: string,
  command: readonly string[],
  signal: AbortSignal,
): Promise<string> {
  signal.throwIfAborted();
  const what = command.join(' ');
  const args = ipmitoolArgs(target, credentials.username, options, command);
  return new Promise<string>((resolve, reject) => {
    const child = spawn(options.command, args, {
      // Only what ipmitool needs: the password in its own environment, a C locale for its words.
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        LANG: 'C',
        IPMI_PASSWORD: credentials.password,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let timedOut = false;
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      fn();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    const onAbort = (): void => {
      child.kill('SIGKILL');
      finish(() => {
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      });
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const take = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_OUTPUT_BYTES) {
        child.kill('SIGKILL');
        return;
      }
      into.push(chunk);
    };
    child.stdout.on('data', take(out));
    child.stderr.on('data', take(err));
    child.on('error', (e) => {
      finish(() => {
        reject(
          bmcError(
            ErrorCode.BmcError,
            `${where}: cannot run ${options.command} for "${what}": ${redact(e.message, credentials.password)}`,
          ),
        );
      });
    });
    child.on('close', (code) => {
      finish(() => {
        const stdout = redact(Buffer.concat(out).toString('utf8'), credentials.password);
        const stderr = redact(Buffer.concat(err).toString('utf8'), credentials.password);
        if (timedOut) {
          reject(
            bmcError(
              ErrorCode.BmcTimeout,
              `${where}: "${what}" got no answer within ${Math.round(options.timeoutMs / 1000)} s`,
            ),
          );
          return;
        }
        if (size > MAX_OUTPUT_BYTES) {
          reject(bmcError(ErrorCode.BmcError, `${where}: "${what}" printed more than 4 MB`));
          return;
        }
        if (code !== 0) {
          const c = classifyIpmitoolFailure(stderr, code, where, what);
          reject(bmcError(c.code, c.message));
          return;
        }
        resolve(stdout);
      });
    });
  });
}
