/**
 * A real Alertmanager (Debian `prometheus-alertmanager`, /usr/bin) on a free loopback port, its
 * config, data and log in a fresh temp dir, with HA clustering off; and a webhook receiver served by
 * the test that records every notification. `stop()` kills only the PID started here and removes
 * the dir; a reaper shell kills it if the test process dies first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { stringify } from 'yaml';
import { freePorts } from '../helpers/k8s-harness.js';

/** The binary: AEGIS_ALERTMANAGER_BIN, else Debian's name, else upstream's. */
export const ALERTMANAGER_BIN =
  process.env.AEGIS_ALERTMANAGER_BIN ??
  (existsSync('/usr/bin/prometheus-alertmanager')
    ? '/usr/bin/prometheus-alertmanager'
    : '/usr/bin/alertmanager');

const READY_TIMEOUT_MS = 30_000;

/** One alert of a webhook notification (Alertmanager's webhook payload, version 4). */
export interface WebhookAlert {
  readonly status: 'firing' | 'resolved';
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly startsAt: string;
  readonly endsAt: string;
  readonly fingerprint: string;
}

/** One webhook notification. */
export interface WebhookNotification {
  readonly status: 'firing' | 'resolved';
  readonly receiver: string;
  readonly groupLabels: Record<string, string>;
  readonly alerts: WebhookAlert[];
}

/** A webhook receiver on loopback that keeps every notification. */
export async function startWebhook(): Promise<{
  url: string;
  notifications: WebhookNotification[];
  close: () => Promise<void>;
}> {
  const notifications: WebhookNotification[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      notifications.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookNotification);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${String(port)}/hook`,
    notifications,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** Route settings of the test's Alertmanager. */
export interface RouteOptions {
  readonly webhookUrl: string;
  readonly groupBy: readonly string[];
  readonly groupWait: string;
  readonly groupInterval: string;
  readonly repeatInterval: string;
}

/** A running Alertmanager. */
export interface AlertmanagerServer {
  readonly url: string;
  stop(): Promise<void>;
  logTail(): string;
}

/** Starts Alertmanager routing every alert to the webhook; waits for /-/ready. */
export async function startAlertmanager(route: RouteOptions): Promise<AlertmanagerServer> {
  if (!existsSync(ALERTMANAGER_BIN)) {
    throw new Error(
      `alertmanager-harness: ${ALERTMANAGER_BIN} not found; run \`npm test\` (scripts/test-all.sh ` +
        "installs the Debian 'prometheus-alertmanager' package) or apt-get install prometheus-alertmanager",
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'aegis-am-'));
  await mkdir(join(dir, 'data'));
  writeFileSync(join(dir, 'alertmanager.yml'), configYaml(route));
  const [port = 0] = await freePorts(1);
  const url = `http://127.0.0.1:${String(port)}`;
  const logPath = join(dir, 'alertmanager.log');
  const fd = openSync(logPath, 'a');
  const child = spawn(
    ALERTMANAGER_BIN,
    [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${String(port)}`,
      '--cluster.listen-address=',
      '--log.level=debug',
    ],
    { stdio: ['ignore', fd, fd], cwd: dir },
  );
  closeSync(fd);
  writeFileSync(join(dir, 'pids'), `${String(child.pid ?? '')}\n`);
  const reaper = spawn('/bin/sh', ['-c', REAPER, 'reaper', String(process.pid), dir], {
    stdio: 'ignore',
    detached: false,
  });
  const logTail = (): string =>
    `--- alertmanager log (${logPath}) ---\n${(existsSync(logPath) ? readFileSync(logPath, 'utf8') : '').trimEnd().split('\n').slice(-30).join('\n')}`;
  const stop = async (): Promise<void> => {
    await stopChild(child);
    await stopChild(reaper);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(url, child, logTail);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, stop, logTail };
}

function configYaml(r: RouteOptions): string {
  return stringify({
    route: {
      receiver: 'aegis-test',
      group_by: [...r.groupBy],
      group_wait: r.groupWait,
      group_interval: r.groupInterval,
      repeat_interval: r.repeatInterval,
    },
    receivers: [
      { name: 'aegis-test', webhook_configs: [{ url: r.webhookUrl, send_resolved: true }] },
    ],
  });
}

async function waitReady(url: string, child: ChildProcess, tail: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`alertmanager-harness: exited before ready\n${tail()}`);
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) return;
      last = `HTTP ${String(res.status)}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await delay(100);
  }
  throw new Error(`alertmanager-harness: not ready (${last})\n${tail()}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    child.kill('SIGKILL');
  }, 5000);
  await exited;
  clearTimeout(timer);
}

/** Kills the PID in `<dir>/pids` and removes the dir once the test process is gone. */
const REAPER =
  'while kill -0 "$1" 2>/dev/null; do sleep 1; done; ' +
  '[ -f "$2/pids" ] && kill -9 $(cat "$2/pids") 2>/dev/null; rm -rf "$2"';
