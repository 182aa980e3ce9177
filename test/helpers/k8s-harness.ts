/**
 * Starts a real Kubernetes control plane on loopback for integration tests: etcd, kube-apiserver
 * (RBAC on, static tokens), and optionally kube-controller-manager and kwok (the fake kubelet).
 *
 * The binaries are built once by `scripts/build-k8s-bins.sh` into `~/.cache/aegis/k8s/v1.37.2/`
 * (or `AEGIS_K8S_BIN_DIR`). Everything else lives in a fresh temp dir: the SA key pair, the
 * token file, kubeconfigs, etcd data and one log file per process. `stop()` kills only the PIDs
 * this stack started and removes the temp dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Kubernetes version the harness expects in the default cache dir: `AEGIS_K8S_VERSION` (as
 * scripts/build-k8s-bins.sh reads it, without the `v`), else the version the tier is tested on.
 */
export const K8S_VERSION = `v${process.env.AEGIS_K8S_VERSION ?? '1.37.2'}`;
/** Label that makes kwok manage a node (keep it Ready, run its pods). */
export const KWOK_NODE_LABEL = 'kwok.x-k8s.io/node';
/** Pod annotation the harness's kwok stage reads to fail a Job pod with that exit code. */
export const KWOK_EXIT_CODE_ANNOTATION = 'test.aegis.io/exit-code';
/** ServiceAccount the controller token is mapped to (the shipped RBAC binds it). */
export const CONTROLLER_USER = 'system:serviceaccount:monitoring:aegis-controller';

const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 3_000;
const LOG_TAIL_LINES = 30;

/** Options of `startKubeStack`. */
export interface KubeStackOptions {
  /** Also run kwok, managing nodes labelled `kwok.x-k8s.io/node=fake`. */
  readonly kwok?: boolean;
  /** Also run kube-controller-manager (job, disruption, GC, TTL, namespace controllers). */
  readonly kcm?: boolean;
  /**
   * How often kwok renews each node's status (default 20 s, plus up to 5 s of jitter). A real
   * kubelet reports every 10 s to 5 min; benchmarks with thousands of nodes slow it down.
   */
  readonly nodeHeartbeatMs?: number;
}

/** A running stack. Tokens are static; `caData` is base64 PEM as KubeConfig expects. */
export interface KubeStack {
  readonly server: string;
  readonly adminToken: string;
  readonly controllerToken: string;
  readonly caData: string;
  /** Temp dir with logs and kubeconfigs (removed by stop()). */
  readonly dir: string;
  /** Milliseconds from start to a ready apiserver (and started kcm/kwok). */
  readonly startupMs: number;
  /** File kwok serves as every container's log (tests write the lines they want read back). */
  readonly podLogFile: string;
  stop(): Promise<void>;
}

interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logPath: string;
}

/** Directory holding the binaries; throws a clear error when one is missing. */
export function k8sBinDir(required: readonly string[]): string {
  const dir =
    process.env.AEGIS_K8S_BIN_DIR ?? join(homedir(), '.cache', 'aegis', 'k8s', K8S_VERSION);
  const missing = required.filter((b) => !existsSync(join(dir, b)));
  if (missing.length > 0) {
    throw new Error(
      `k8s-harness: missing ${missing.join(', ')} in ${dir}; run scripts/build-k8s-bins.sh ` +
        '(or set AEGIS_K8S_BIN_DIR to a directory holding them)',
    );
  }
  return dir;
}

function binsFor(options: KubeStackOptions): string[] {
  return [
    'etcd',
    'kube-apiserver',
    ...(options.kcm === true ? ['kube-controller-manager'] : []),
    ...(options.kwok === true ? ['kwok'] : []),
  ];
}

/** Starts etcd → kube-apiserver → (kcm) → (kwok) and waits for /readyz. */
export async function startKubeStack(options: KubeStackOptions = {}): Promise<KubeStack> {
  const started = Date.now();
  const bin = k8sBinDir(binsFor(options));
  const dir = await mkdtemp(join(tmpdir(), 'aegis-k8s-'));
  const procs: Proc[] = [];
  const reaper = startReaper(dir);
  const stop = async (): Promise<void> => {
    // Reverse start order: clients first, etcd last (an apiserver without etcd shuts down slowly).
    for (const p of [...procs].reverse()) await stopProc(p);
    await stopProc(reaper);
    await rm(dir, { recursive: true, force: true });
  };
  const podLogFile = join(dir, 'pod.log');
  try {
    const [etcdClient, etcdPeer, apiPort, kwokPort] = (await freePorts(4)) as [
      number,
      number,
      number,
      number,
    ];
    const adminToken = randomBytes(16).toString('hex');
    const controllerToken = randomBytes(16).toString('hex');
    await writeCredentials(dir, adminToken, controllerToken);
    procs.push(track(dir, startEtcd(bin, dir, etcdClient, etcdPeer)));
    procs.push(track(dir, startApiserver(bin, dir, etcdClient, apiPort)));
    const server = `https://127.0.0.1:${apiPort}`;
    await waitReady(server, adminToken, procs);
    const caPem = await readFile(join(dir, 'pki', 'apiserver.crt'), 'utf8');
    const caData = Buffer.from(caPem).toString('base64');
    const kubeconfig = join(dir, 'admin.kubeconfig');
    await writeFile(kubeconfig, kubeconfigYaml(server, caData, adminToken));
    if (options.kcm === true) procs.push(track(dir, startKcm(bin, dir, kubeconfig)));
    if (options.kwok === true) {
      await writeFile(podLogFile, '');
      // kwok's jitterDurationMilliseconds is the delay's upper bound, not an addition to it (a
      // bound below the duration replaces it): 5 s of jitter above the heartbeat.
      const heartbeatMs = options.nodeHeartbeatMs ?? 20_000;
      const stages = KWOK_STAGES.replace(
        'delay: {durationMilliseconds: HEARTBEAT_MS, jitterDurationMilliseconds: HEARTBEAT_MAX_MS}',
        `delay: {durationMilliseconds: ${heartbeatMs}, jitterDurationMilliseconds: ${heartbeatMs + 5_000}}`,
      );
      await writeFile(join(dir, 'kwok.yaml'), stages + kwokLogs(podLogFile));
      procs.push(track(dir, startKwok(bin, dir, kubeconfig, kwokPort)));
    }
    await delay(300);
    assertAlive(procs);
    const startupMs = Date.now() - started;
    return { server, adminToken, controllerToken, caData, dir, startupMs, podLogFile, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function writeCredentials(dir: string, admin: string, controller: string): Promise<void> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  await writeFile(join(dir, 'sa.pub'), publicKey);
  await writeFile(join(dir, 'sa.key'), privateKey, { mode: 0o600 });
  const tokens = [
    `${admin},admin,uid-admin,"system:masters"`,
    `${controller},${CONTROLLER_USER},uid-aegis-controller,"system:serviceaccounts,system:serviceaccounts:monitoring"`,
  ];
  await writeFile(join(dir, 'tokens.csv'), tokens.join('\n') + '\n', { mode: 0o600 });
}

function startEtcd(bin: string, dir: string, client: number, peer: number): Proc {
  const clientUrl = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  return launch(dir, 'etcd', join(bin, 'etcd'), [
    '--name=aegis',
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=aegis=${peerUrl}`,
    '--unsafe-no-fsync=true',
    '--log-level=warn',
  ]);
}

function startApiserver(bin: string, dir: string, etcdClient: number, port: number): Proc {
  return launch(dir, 'kube-apiserver', join(bin, 'kube-apiserver'), [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    // 1.37 refuses a loopback advertise address with an endpoint reconciler (instance.go: "cannot
    // use public IP 127.0.0.1 with endpoint reconciler"); the `kubernetes` Service's endpoints are
    // not needed here (kube-apiserver's own test server does the same).
    '--endpoint-reconciler-type=none',
    `--secure-port=${port}`,
    `--cert-dir=${join(dir, 'pki')}`,
    `--token-auth-file=${join(dir, 'tokens.csv')}`,
    '--anonymous-auth=false',
    '--authorization-mode=RBAC',
    `--service-account-issuer=https://127.0.0.1:${port}`,
    `--service-account-key-file=${join(dir, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--allow-privileged=true',
    '--disable-admission-plugins=ServiceAccount',
    '--profiling=false',
    '--kubelet-timeout=3s',
  ]);
}

function startKcm(bin: string, dir: string, kubeconfig: string): Proc {
  return launch(dir, 'kube-controller-manager', join(bin, 'kube-controller-manager'), [
    `--kubeconfig=${kubeconfig}`,
    '--leader-elect=false',
    '--controllers=job-controller,disruption-controller,garbage-collector-controller,' +
      'ttl-after-finished-controller,namespace-controller',
    '--secure-port=0',
    `--root-ca-file=${join(dir, 'pki', 'apiserver.crt')}`,
    '--concurrent-job-syncs=5',
  ]);
}

/**
 * kwok also serves the kubelet API (HTTPS with the apiserver's self-signed pair; the apiserver
 * does not verify kubelet certificates without --kubelet-certificate-authority), so pod logs
 * read through the apiserver come from `podLogFile`.
 */
function startKwok(bin: string, dir: string, kubeconfig: string, port: number): Proc {
  return launch(dir, 'kwok', join(bin, 'kwok'), [
    `--kubeconfig=${kubeconfig}`,
    `--config=${join(dir, 'kwok.yaml')}`,
    '--manage-all-nodes=false',
    `--manage-nodes-with-label-selector=${KWOK_NODE_LABEL}=fake`,
    '--node-ip=127.0.0.1',
    `--node-port=${port}`,
    `--server-address=127.0.0.1:${port}`,
    `--tls-cert-file=${join(dir, 'pki', 'apiserver.crt')}`,
    `--tls-private-key-file=${join(dir, 'pki', 'apiserver.key')}`,
    '--cidr=10.244.0.0/16',
  ]);
}

function kwokLogs(file: string): string {
  return `---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata: {name: aegis-pod-logs}
spec:
  logs:
  - logsFile: ${JSON.stringify(file)}
`;
}

/**
 * A shell that outlives this process: when the Node process dies without calling stop() (a
 * killed test runner), it SIGKILLs the PIDs listed in `<dir>/pids` and removes the temp dir.
 */
function startReaper(dir: string): Proc {
  const script =
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done; ' +
    '[ -f "$2/pids" ] && kill -9 $(cat "$2/pids") 2>/dev/null; rm -rf "$2"';
  return launch(dir, 'reaper', '/bin/sh', ['-c', script, 'reaper', String(process.pid), dir]);
}

/** Records a child's PID for the reaper. */
function track(dir: string, p: Proc): Proc {
  if (p.child.pid !== undefined) appendFileSync(join(dir, 'pids'), `${p.child.pid}\n`);
  return p;
}

function launch(dir: string, name: string, file: string, args: readonly string[]): Proc {
  const logPath = join(dir, `${name}.log`);
  const fd = openSync(logPath, 'a');
  const child = spawn(file, args, { stdio: ['ignore', fd, fd], cwd: dir });
  closeSync(fd);
  return { name, child, logPath };
}

async function stopProc(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) =>
    p.child.once('exit', () => {
      resolve();
    }),
  );
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

function assertAlive(procs: readonly Proc[]): void {
  for (const p of procs) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) {
      throw new Error(
        `k8s-harness: ${p.name} exited (${String(p.child.exitCode ?? p.child.signalCode)})\n` +
          logTail(p),
      );
    }
  }
}

/** Last lines of a process log, for error messages. */
function logTail(p: Proc): string {
  const text = existsSync(p.logPath) ? readFileSync(p.logPath, 'utf8') : '';
  const lines = text.trimEnd().split('\n').slice(-LOG_TAIL_LINES);
  return `--- ${p.name} log (${p.logPath}) ---\n${lines.join('\n')}`;
}

async function waitReady(server: string, token: string, procs: readonly Proc[]): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    assertAlive(procs);
    last = await probe(`${server}/readyz`, token);
    if (last === 'ok') return;
    await delay(200);
  }
  throw new Error(
    `k8s-harness: apiserver not ready after ${READY_TIMEOUT_MS} ms (last: ${last})\n` +
      procs.map(logTail).join('\n'),
  );
}

/** GET with the self-signed cert accepted (loopback only, before the CA file is read). */
function probe(url: string, token: string): Promise<string> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { headers: { Authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 2_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          resolve(res.statusCode === 200 ? body.trim() : `${res.statusCode ?? 0}`);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => {
      resolve(err.message);
    });
    req.end();
  });
}

/** Sets the log every kwok-run container returns (CRI log format, one stdout entry per line). */
export async function writePodLog(stack: KubeStack, lines: readonly string[]): Promise<void> {
  const at = new Date().toISOString();
  await writeFile(stack.podLogFile, lines.map((l) => `${at} stdout F ${l}\n`).join(''));
}

/** Free loopback TCP ports (bound then released; a race with other processes is unlikely). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const srv = createServer();
          srv.once('error', reject);
          srv.listen(0, '127.0.0.1', () => {
            resolve(srv);
          });
        }),
    ),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === 'string') throw new Error('k8s-harness: no port');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function kubeconfigYaml(server: string, caData: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${caData}`,
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: test',
    '  context: {cluster: test, user: admin}',
    'current-context: test',
    '',
  ].join('\n');
}

/**
 * kwok stages (kwok has no built-in defaults when run as a bare controller): nodes become Ready and
 * keep heart-beating; pods go Running; Job pods succeed with exit 0, or fail with the exit code in
 * the `test.aegis.io/exit-code` annotation; deleted pods are removed at once.
 */
const KWOK_STAGES = `
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: node-initialize}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ['True']
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
      addresses:
      - {address: {{ NodeIP | Quote }}, type: InternalIP}
      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint: {Port: {{ . }}}
      {{ end }}
      allocatable: {cpu: 1k, memory: 1Ti, pods: 1M}
      capacity: {cpu: 1k, memory: 1Ti, pods: 1M}
      nodeInfo:
        architecture: amd64
        kubeletVersion: fake
        operatingSystem: linux
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: node-heartbeat}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: In
      values: [Running]
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: In
      values: ['True']
  delay: {durationMilliseconds: HEARTBEAT_MS, jitterDurationMilliseconds: HEARTBEAT_MAX_MS}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
  immediateNextStage: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: pod-ready}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: [Pending]
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - {lastTransitionTime: {{ $now | Quote }}, status: "True", type: Initialized}
      - {lastTransitionTime: {{ $now | Quote }}, status: "True", type: Ready}
      - {lastTransitionTime: {{ $now | Quote }}, status: "True", type: ContainersReady}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        state:
          running: {startedAt: {{ $now | Quote }}}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: pod-complete}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: [Running]
    - key: '.metadata.ownerReferences.[].kind'
      operator: In
      values: [Job]
    - key: '.metadata.annotations["${KWOK_EXIT_CODE_ANNOTATION}"]'
      operator: DoesNotExist
  delay: {durationMilliseconds: 500}
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - {lastTransitionTime: {{ $now | Quote }}, status: "False", type: Ready, reason: PodCompleted}
      - {lastTransitionTime: {{ $now | Quote }}, status: "False", type: ContainersReady, reason: PodCompleted}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}
      {{ end }}
      phase: Succeeded
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: pod-fail}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: [Running]
    - key: '.metadata.ownerReferences.[].kind'
      operator: In
      values: [Job]
    - key: '.metadata.annotations["${KWOK_EXIT_CODE_ANNOTATION}"]'
      operator: Exists
  delay: {durationMilliseconds: 500}
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $code := index .metadata.annotations "${KWOK_EXIT_CODE_ANNOTATION}" }}
      conditions:
      - {lastTransitionTime: {{ $now | Quote }}, status: "False", type: Ready, reason: PodFailed}
      - {lastTransitionTime: {{ $now | Quote }}, status: "False", type: ContainersReady, reason: PodFailed}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated: {exitCode: {{ $code }}, reason: Error, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}
      {{ end }}
      phase: Failed
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: pod-delete}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: Exists
  next:
    finalizers: {empty: true}
    delete: true
`;
