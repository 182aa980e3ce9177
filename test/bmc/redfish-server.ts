/**
 * A small Redfish service for the tests, built on the DMTF's public `public-rackmount1` mockup
 * (test/fixtures/redfish): it serves the service root, the Systems collection and the one
 * ComputerSystem over HTTPS (a self-signed certificate made with openssl for the run), requires
 * HTTP Basic authentication, and — unlike the DMTF's mockup server — honours
 * `POST …/Actions/ComputerSystem.Reset`: the ResetType must be one the mockup allows
 * (`ResetType@Redfish.AllowableValues`), and it drives a simulated host whose `PowerState` passes
 * through `PoweringOff` / `PoweringOn` for `transitionMs` and whose boot id changes at each boot.
 *
 * Every other resource of the mockup copied under test/fixtures/redfish is served as published
 * (the chassis's Thermal, Power, ThermalSubsystem, PowerSubsystem and Sensors, the system's
 * Memory, Processors and LogServices): a test changes a live copy with `resource(path)` (a fan's
 * `Status.Health`, a reading) and `restore()` puts the mockup back. The system log's entries are
 * served in pages of two, as the mockup's `@odata.nextLink` (`?$skiptoken=2`) implies, with the
 * entries a test adds (`addLogEntry`) after the mockup's two.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MOCKUP = join(import.meta.dirname, '..', 'fixtures', 'redfish', 'public-rackmount1');
const SYSTEM = '/redfish/v1/Systems/437XR1138R2';
/** The system log's entries (LogEntryCollection), paged. */
export const LOG_ENTRIES = `${SYSTEM}/LogServices/Log1/Entries`;
const LOG_PAGE = 2;

/** A running Redfish service. */
export interface RedfishServer {
  readonly port: number;
  /** PEM of its certificate (the CA the client trusts). */
  readonly ca: string;
  readonly username: string;
  readonly password: string;
  /** The host: power and boot id. */
  host(): { power: 'On' | 'Off' | 'PoweringOn' | 'PoweringOff'; bootId: string };
  /** ResetTypes posted and accepted, in order. */
  readonly resets: string[];
  /** Requests seen (`METHOD path status`). */
  readonly requests: string[];
  /** Makes the service stop answering (sockets stay open): a BMC that hangs. */
  hang(on: boolean): void;
  /** The live copy of a mockup resource (`/redfish/v1/...`), served as changed. */
  resource(path: string): Record<string, unknown>;
  /** Appends a LogEntry to the system log (served after the mockup's entries). */
  addLogEntry(entry: Record<string, unknown>): void;
  /** Every resource back as the mockup publishes it, added log entries gone. */
  restore(): void;
  close(): Promise<void>;
}

function readJson(...parts: string[]): Record<string, unknown> {
  return JSON.parse(readFileSync(join(MOCKUP, ...parts, 'index.json'), 'utf8')) as Record<
    string,
    unknown
  >;
}

/** The mockup's resource at a Redfish path, or undefined (no file, or not a plain path). */
function mockupResource(path: string): Record<string, unknown> | undefined {
  if (!/^\/redfish\/v1(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/.test(path)) return undefined;
  const file = join(MOCKUP, ...path.split('/').slice(3), 'index.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

/** A Redfish error body (DSP0266 §9.6). */
function redfishError(id: string, message: string): string {
  return JSON.stringify({
    error: {
      code: `Base.1.8.${id}`,
      message,
      '@Message.ExtendedInfo': [{ MessageId: `Base.1.8.${id}`, Message: message }],
    },
  });
}

/** Starts the service on a free loopback port. */
export async function startRedfishServer(
  o: { transitionMs?: number } = {},
): Promise<RedfishServer> {
  const dir = mkdtempSync(join(tmpdir(), 'aegis-redfish-'));
  const gen = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { encoding: 'utf8' },
  );
  if (gen.status !== 0) throw new Error(`openssl could not make a certificate: ${gen.stderr}`);
  const key = readFileSync(join(dir, 'key.pem'), 'utf8');
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  rmSync(dir, { recursive: true, force: true });

  const root = readJson();
  const systems = readJson('Systems');
  const system = readJson('Systems', '437XR1138R2');
  const actions = system['Actions'] as Record<
    string,
    { target: string; 'ResetType@Redfish.AllowableValues': string[] }
  >;
  const reset = actions['#ComputerSystem.Reset'];
  if (reset === undefined) throw new Error('the mockup has no ComputerSystem.Reset');
  const allowed = reset['ResetType@Redfish.AllowableValues'];
  const transitionMs = o.transitionMs ?? 200;
  const username = 'aegis';
  const password = `rf-${Math.random().toString(36).slice(2)}`;
  let power: 'On' | 'Off' | 'PoweringOn' | 'PoweringOff' =
    system['PowerState'] === 'On' ? 'On' : 'Off';
  let boots = 0;
  let bootId = 'boot-0';
  let hanging = false;
  const resets: string[] = [];
  const requests: string[] = [];
  const live = new Map<string, Record<string, unknown>>();
  const resource = (path: string): Record<string, unknown> | undefined => {
    let doc = live.get(path);
    if (doc === undefined) {
      doc = mockupResource(path);
      if (doc !== undefined) live.set(path, doc);
    }
    return doc;
  };
  const added: Record<string, unknown>[] = [];
  /** A page of the system log's entries: the mockup's, then those added. */
  const logPage = (query: string): Record<string, unknown> | undefined => {
    const base = resource(LOG_ENTRIES);
    if (base === undefined) return undefined;
    const all = [...(base['Members'] as Record<string, unknown>[]), ...added];
    const token = /(?:^|&)\$skiptoken=(\d+)(?:&|$)/.exec(query)?.[1];
    const skip = token === undefined ? 0 : Number(token);
    const next = skip + LOG_PAGE < all.length ? skip + LOG_PAGE : undefined;
    const page: Record<string, unknown> = {
      ...base,
      'Members@odata.count': all.length,
      Members: all.slice(skip, skip + LOG_PAGE),
    };
    if (next === undefined) delete page['@odata.nextLink'];
    else page['@odata.nextLink'] = `${LOG_ENTRIES}?$skiptoken=${next}`;
    return page;
  };
  const timers = new Set<NodeJS.Timeout>();
  const later = (fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, transitionMs);
    timers.add(t);
  };
  const powerOff = (): void => {
    if (power === 'Off' || power === 'PoweringOff') return;
    power = 'PoweringOff';
    later(() => (power = 'Off'));
  };
  const powerOn = (): void => {
    if (power === 'On' || power === 'PoweringOn') return;
    power = 'PoweringOn';
    later(() => {
      power = 'On';
      bootId = `boot-${++boots}`;
    });
  };
  const restart = (): void => {
    power = 'PoweringOn';
    later(() => {
      power = 'On';
      bootId = `boot-${++boots}`;
    });
  };

  const send = (res: ServerResponse, status: number, body?: string): void => {
    res.writeHead(status, body === undefined ? {} : { 'Content-Type': 'application/json' });
    res.end(body);
  };
  const handle = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const [rawPath = '', query = ''] = (req.url ?? '').split('?');
    const path = rawPath.replace(/\/$/, '');
    const log = (status: number): void => {
      requests.push(`${req.method ?? ''} ${path} ${status}`);
    };
    const auth = req.headers.authorization ?? '';
    const expected = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    if (auth !== expected) {
      log(401);
      send(
        res,
        401,
        redfishError(
          'InsufficientPrivilege',
          'There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.',
        ),
      );
      return;
    }
    if (req.method === 'GET') {
      const doc =
        path === '/redfish/v1'
          ? root
          : path === '/redfish/v1/Systems'
            ? systems
            : path === SYSTEM
              ? { ...system, PowerState: power }
              : path === LOG_ENTRIES
                ? logPage(query)
                : resource(path);
      log(doc === undefined ? 404 : 200);
      if (doc === undefined)
        send(
          res,
          404,
          redfishError('ResourceMissingAtURI', `The resource at the URI ${path} was not found.`),
        );
      else send(res, 200, JSON.stringify(doc));
      return;
    }
    if (req.method === 'POST' && path === reset.target) {
      let type: unknown;
      try {
        type = (JSON.parse(body) as { ResetType?: unknown }).ResetType;
      } catch {
        type = undefined;
      }
      if (typeof type !== 'string' || !allowed.includes(type)) {
        log(400);
        send(
          res,
          400,
          redfishError(
            'ActionParameterNotSupported',
            `The parameter ${String(type)} for the action ComputerSystem.Reset is not supported on the target resource.`,
          ),
        );
        return;
      }
      resets.push(type);
      if (type === 'ForceOff' || type === 'GracefulShutdown') powerOff();
      else if (type === 'On' || type === 'ForceOn') powerOn();
      else if (type === 'ForceRestart' || type === 'GracefulRestart') restart();
      else if (type === 'PushPowerButton') {
        if (power === 'On') powerOff();
        else powerOn();
      }
      log(204);
      send(res, 204);
      return;
    }
    log(405);
    send(
      res,
      405,
      redfishError('OperationNotAllowed', 'The HTTP method is not allowed on this resource.'),
    );
  };

  const server: Server = createServer({ key, cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (hanging) return;
      handle(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    ca: cert,
    username,
    password,
    host: () => ({ power, bootId }),
    resets,
    requests,
    hang(on) {
      hanging = on;
    },
    resource(path) {
      const doc = resource(path);
      if (doc === undefined) throw new Error(`the mockup has no resource ${path}`);
      return doc;
    },
    addLogEntry(entry) {
      added.push(entry);
    },
    restore() {
      live.clear();
      added.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
