/**
 * OpenIPMI's `ipmi_sim` (Debian package `openipmi`) as a LAN BMC on loopback, for the tests: one
 * user with a password, RMCP+ (lanplus), the sensors of ipmi-sim/bmc.sdrs + bmc.emu, and its
 * chassis power control wired to a simulated host — a state file holding the host's power (0/1)
 * and boot id, which a power-on from off replaces (a new boot). Every power change is appended to
 * `power.log`. Emulation commands (sensor values, events) go through ipmi_sim's console port.
 *
 * Everything lives in a temporary directory; `stop()` kills the simulator and removes it.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HERE = join(import.meta.dirname, 'ipmi-sim');
const NAME = 'aegistest';

/** A running ipmi_sim. */
export interface IpmiSim {
  readonly port: number;
  readonly username: string;
  readonly password: string;
  /** Cipher suite ipmi_sim speaks (it does not answer Get Channel Cipher Suites). */
  readonly cipherSuite: number;
  /** The simulated host: power (true = on) and boot id. */
  host(): { on: boolean; bootId: string };
  /** Power changes the chassis control saw, in order (`0` off, `1` on). */
  powerLog(): string[];
  /** Runs ipmitool against it as its user (for set-up, e.g. `sel time set now`); stdout. */
  ipmitool(args: readonly string[]): string;
  /** Runs emulation commands on the console (e.g. `sensor_set_value 0x20 0 2 3 1`). */
  console(commands: readonly string[]): Promise<void>;
  stop(): void;
}

/** Why the IPMI tier cannot run here, or undefined. */
export function ipmiSimMissing(): string | undefined {
  for (const tool of ['ipmi_sim', 'ipmitool', 'sdrcomp']) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
    if (r.status !== 0)
      return `${tool} not found: install Debian packages openipmi and ipmitool (scripts/test-all.sh does)`;
  }
  return undefined;
}

/** A free UDP port on loopback. */
function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.on('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => {
        resolve(port);
      });
    });
  });
}

/** A free TCP port on loopback. */
function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => {
        resolve(port);
      });
    });
  });
}

/** Starts ipmi_sim and waits until it answers `chassis power status`. */
export async function startIpmiSim(): Promise<IpmiSim> {
  const missing = ipmiSimMissing();
  if (missing !== undefined) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'aegis-ipmi-sim-'));
  const port = await freeUdpPort();
  const consolePort = await freeTcpPort();
  const username = 'aegis';
  const password = `pw-${randomBytes(6).toString('hex')}`;
  const hostFile = join(dir, 'host');
  const powerLog = join(dir, 'power.log');
  writeFileSync(hostFile, '1\nboot-initial\n');
  writeFileSync(powerLog, '');
  const control = join(dir, 'chassis-control.sh');
  writeFileSync(
    control,
    `#!/bin/sh
# ipmi_sim chassis control: <device> get <parm>... | set <parm> <value>...
state='${hostFile}'
shift
op=$1
shift
case "$op" in
get)
  for p in "$@"; do
    case "$p" in
      power) echo "power:$(sed -n 1p "$state")" ;;
      boot) echo "boot:default" ;;
      *) echo "Invalid parameter: $p"; exit 1 ;;
    esac
  done ;;
set)
  while [ $# -ge 2 ]; do
    p=$1; v=$2; shift 2
    case "$p" in
      power)
        cur=$(sed -n 1p "$state"); boot=$(sed -n 2p "$state")
        if [ "$v" = 1 ] && [ "$cur" != 1 ]; then boot=$(cat /proc/sys/kernel/random/uuid); fi
        printf '%s\\n%s\\n' "$v" "$boot" > "$state.tmp" && mv "$state.tmp" "$state"
        echo "$v" >> '${powerLog}' ;;
      *) ;;
    esac
  done ;;
*) exit 1 ;;
esac
`,
  );
  chmodSync(control, 0o755);
  writeFileSync(
    join(dir, 'lan.conf'),
    `name "${NAME}"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ${port}
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "${control} 0x20"
  user 2 true "${username}" "${password}" admin 10 md5
  console 127.0.0.1 ${consolePort}
`,
  );
  const stateDir = join(dir, 'state');
  mkdirSync(join(stateDir, 'ipmi_sim', NAME), { recursive: true });
  const sdr = spawnSync(
    'sdrcomp',
    ['-o', join(stateDir, 'ipmi_sim', NAME, 'sdr.20.main'), join(HERE, 'bmc.sdrs')],
    { encoding: 'utf8' },
  );
  if (sdr.status !== 0) throw new Error(`sdrcomp failed: ${sdr.stderr}`);
  const child: ChildProcess = spawn(
    'ipmi_sim',
    ['-c', join(dir, 'lan.conf'), '-f', join(HERE, 'bmc.emu'), '-s', stateDir, '-n'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const run = (args: readonly string[]): SpawnSyncReturns<string> =>
    spawnSync(
      'ipmitool',
      [
        '-I',
        'lanplus',
        '-C',
        '3',
        '-H',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        username,
        '-E',
        '-N',
        '1',
        '-R',
        '1',
        ...args,
      ],
      { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', IPMI_PASSWORD: password } },
    );
  const sim: IpmiSim = {
    ipmitool(args) {
      const r = run(args);
      if (r.status !== 0) throw new Error(`ipmitool ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    },
    port,
    username,
    password,
    cipherSuite: 3,
    host() {
      const [power = '0', bootId = ''] = readFileSync(hostFile, 'utf8').split('\n');
      return { on: power === '1', bootId };
    },
    powerLog: () =>
      readFileSync(powerLog, 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
    console: (commands) =>
      new Promise((resolve, reject) => {
        const s = connect(consolePort, '127.0.0.1');
        let seen = '';
        s.on('error', reject);
        s.on('data', (d: Buffer) => {
          seen += d.toString('latin1');
          // One prompt per command answered, plus the first.
          if ((seen.match(/> /g) ?? []).length > commands.length) {
            s.end();
            resolve();
          }
        });
        s.on('connect', () => {
          s.write(commands.map((c) => `${c}\n`).join(''));
        });
        setTimeout(() => {
          s.destroy();
          reject(new Error(`ipmi_sim console did not answer: ${seen}`));
        }, 5_000).unref();
      }),
    stop() {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // Ready when it answers a session.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = run(['chassis', 'power', 'status']);
    if (r.status === 0) return sim;
    if (Date.now() > deadline || child.exitCode !== null) {
      sim.stop();
      throw new Error(`ipmi_sim did not start: ${output}${r.stderr}`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
}
