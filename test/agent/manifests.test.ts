/**
 * deploy/agent parsed and checked: the DaemonSet mounts only the host paths the agent reads, all
 * read-only, shares no host namespace, runs the agent's own entry point with its node name from
 * the downward API, tolerates every taint, and stays in budget; the RBAC grants exactly
 * nodes:get and nodes/status:patch to the agent's ServiceAccount; the admission policy binds the
 * writes to the agent's own node and conditions.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_AGENT_OPTIONS } from '../../src/agent/options.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '../../deploy/agent');
/** The parts of the manifests the checks read (parsed YAML, shape checked by the assertions). */
interface Doc {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: DocSpec;
  rules?: unknown[];
  subjects?: unknown[];
  resources?: string[];
}
interface DocSpec {
  template: { spec: PodSpec };
  matchConstraints: { resourceRules: { resources: string[] }[] };
  matchConditions: { expression: string }[];
  validations: { expression: string }[];
  policyName: string;
}
interface PodSpec {
  hostPID: boolean;
  hostNetwork: boolean;
  hostIPC: boolean;
  serviceAccountName: string;
  tolerations: unknown[];
  volumes: { name: string; hostPath?: { path: string } }[];
  containers: Container[];
}
interface Container {
  image: string;
  command: string[];
  args: string[];
  env: { name: string; valueFrom: { fieldRef: { fieldPath: string } } }[];
  ports: { containerPort: number }[];
  resources: { requests: { memory: string } };
  securityContext: { readOnlyRootFilesystem: boolean };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}

function load(file: string): Doc[] {
  return parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => d.toJS() as Doc);
}

const kustomization = load('kustomization.yaml')[0] as Doc;
const docs = (kustomization.resources ?? []).flatMap(load);
const kind = (k: string): Doc[] => docs.filter((d) => d.kind === k);
const ds = kind('DaemonSet')[0] as Doc;
const pod = ds.spec.template.spec;
const container = pod.containers[0] as Container;

/** Host path → why the agent needs it (docs in daemonset.yaml). */
const ALLOWED_HOST_PATHS: Record<string, string> = {
  '/dev/kmsg': 'kernel log',
  '/proc': 'modules, boot time, routes, host mount namespace',
  '/sys': 'infiniband, pci, pstore',
  '/run/nvidia/driver': 'GPU Operator driver root',
  '/etc/modules-load.d': 'modules configured at boot',
  '/usr/lib/modules-load.d': 'modules configured at boot',
  '/var/lib/systemd/pstore': 'archived pstore records',
  '/var/adm/ras': 'GPFS log',
};

describe('deploy/agent manifests', () => {
  it('every resource of the kustomization exists and names its namespace', () => {
    for (const r of kustomization.resources ?? []) assert.ok(existsSync(join(DIR, r)), r);
    for (const d of docs.filter(
      (x) =>
        !['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(x.kind) &&
        !x.kind.startsWith('ValidatingAdmission'),
    )) {
      assert.equal(d.metadata.namespace, 'aegis-agent', `${d.kind} ${d.metadata.name}`);
    }
  });

  it('hostPaths: only the ones the agent reads, each mounted read-only under /host', () => {
    const hostVolumes = pod.volumes.flatMap((v) =>
      v.hostPath === undefined ? [] : [{ name: v.name, path: v.hostPath.path }],
    );
    assert.deepEqual(hostVolumes.map((v) => v.path).sort(), Object.keys(ALLOWED_HOST_PATHS).sort());
    for (const v of hostVolumes) {
      const mount = container.volumeMounts.find((m) => m.name === v.name);
      assert.equal(mount?.readOnly, true, `${v.path} must be read-only`);
      assert.equal(mount.mountPath, `${DEFAULT_AGENT_OPTIONS.hostRoot}${v.path}`);
    }
    assert.ok(!hostVolumes.some((v) => v.path === '/'), 'never the whole host root');
  });

  it('no host namespaces, read-only root filesystem', () => {
    assert.equal(pod.hostPID, false);
    assert.equal(pod.hostNetwork, false);
    assert.equal(pod.hostIPC, false);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
  });

  it('runs the agent entry point on its own node, on every node, within budget', () => {
    assert.deepEqual(container.command.slice(-1), ['dist/agent/main.js']);
    assert.ok(container.args.includes('--host-root'));
    const env = container.env.find((e) => e.name === 'NODE_NAME');
    assert.equal(env?.valueFrom.fieldRef.fieldPath, 'spec.nodeName');
    assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
    assert.equal(container.resources.requests.memory, '64Mi');
    assert.equal(container.ports[0]?.containerPort, DEFAULT_AGENT_OPTIONS.port);
    assert.match(container.image, /@sha256:[0-9a-f]{64}$/);
  });

  it('RBAC: exactly nodes get and nodes/status patch, bound to the agent ServiceAccount', () => {
    const role = kind('ClusterRole')[0] as Doc;
    assert.deepEqual(role.rules, [
      { apiGroups: [''], resources: ['nodes'], verbs: ['get'] },
      { apiGroups: [''], resources: ['nodes/status'], verbs: ['patch'] },
    ]);
    assert.equal(kind('Role').length, 0);
    const binding = kind('ClusterRoleBinding')[0] as Doc;
    assert.deepEqual(binding.subjects, [
      { kind: 'ServiceAccount', name: 'aegis-agent', namespace: 'aegis-agent' },
    ]);
    assert.equal(pod.serviceAccountName, 'aegis-agent');
  });

  it('the admission policy binds the agent to its own node and its aegis.io/ conditions', () => {
    const policy = kind('ValidatingAdmissionPolicy')[0] as Doc;
    assert.deepEqual(policy.spec.matchConstraints.resourceRules[0]?.resources, ['nodes/status']);
    assert.match(
      policy.spec.matchConditions[0]?.expression ?? '',
      /system:serviceaccount:aegis-agent:aegis-agent/,
    );
    const rules = policy.spec.validations.map((v) => v.expression).join('\n');
    assert.match(rules, /authentication\.kubernetes\.io\/node-name/);
    assert.match(rules, /variables\.others == variables\.oldOthers/);
    assert.equal(
      kind('ValidatingAdmissionPolicyBinding')[0]?.spec.policyName,
      policy.metadata.name,
    );
  });
});
