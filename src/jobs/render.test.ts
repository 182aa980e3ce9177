import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCode, isHealError } from '../core/errors.js';
import { ALL_JOB_KINDS, JOB_NAMESPACE, JobKind } from '../k8s/cluster.js';
import { jobName } from './job-name.js';
import { toTemplateVars } from './params.js';
import { renderJobTemplate, renderTemplate } from './render.js';

const JOBS_DIR = join(import.meta.dirname, '..', '..', 'deploy', 'jobs');

describe('renderTemplate', () => {
  it('keeps the type of a whole-scalar placeholder and interpolates inside strings', () => {
    const out = renderTemplate(
      'a: "{{N}}"\nb: "x-{{N}}-{{S}}"\nc: ["{{S}}"]\n',
      { N: 5, S: 's' },
      't',
    );
    assert.deepEqual(out, { a: 5, b: 'x-5-s', c: ['s'] });
  });

  it('renders one template text many times with different values, each its own tree', () => {
    const text = 'metadata: {name: "{{N}}"}\nspec: {args: ["x-{{N}}"]}\n';
    const a = renderTemplate(text, { N: 'a' }, 't') as { spec: { args: string[] } };
    const b = renderTemplate(text, { N: 'b' }, 't');
    assert.deepEqual(a, { metadata: { name: 'a' }, spec: { args: ['x-a'] } });
    assert.deepEqual(b, { metadata: { name: 'b' }, spec: { args: ['x-b'] } });
    a.spec.args.push('changed');
    assert.deepEqual(renderTemplate(text, { N: 'c' }, 't'), {
      metadata: { name: 'c' },
      spec: { args: ['x-c'] },
    });
  });

  it('cannot add structure: a value stays inside its scalar', () => {
    const out = renderTemplate('args: ["{{V}}"]\n', { V: 'a"]\nevil: [1' }, 't');
    assert.deepEqual(out, { args: ['a"]\nevil: [1'] });
  });

  it('rejects an unknown placeholder, naming it', () => {
    assert.throws(
      () => renderTemplate('a: "{{NOPE}}"\n', {}, 'x.yaml'),
      (err: unknown) => isHealError(err, ErrorCode.ConfigInvalid) && /NOPE/.test(err.message),
    );
  });

  it('rejects invalid YAML and duplicate keys as CONFIG_INVALID', () => {
    for (const text of ['a: [1\n', 'a: 1\na: 2\n']) {
      assert.throws(
        () => renderTemplate(text, {}, 'x.yaml'),
        (err: unknown) => isHealError(err, ErrorCode.ConfigInvalid),
      );
    }
  });

  it('renderJobTemplate rejects a non-Job document', () => {
    assert.throws(() => renderJobTemplate('apiVersion: v1\nkind: Pod\nmetadata: {}\n', {}, 'p'));
  });
});

interface JobShape {
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: {
    backoffLimit: number;
    activeDeadlineSeconds: number;
    ttlSecondsAfterFinished: number;
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        nodeName: string;
        hostPID?: boolean;
        tolerations: { key?: string; effect?: string }[];
        containers: { args: string[]; image: string }[];
      };
    };
  };
}

describe('deploy/jobs templates', () => {
  const params: Record<JobKind, Record<string, string>> = {
    restart_node: {},
    shutdown_node: {},
    healthcheck_node: {},
    repair_node: {},
    remedy_node: { ACTION: 'DropCache' },
    diagnose_node: { TYPE: 'GpuDown', ID: '3' },
    validate_node: { DCGM_LEVEL: '3', NCCL_GPUS: 'all', IB_DEVICE: 'mlx5_0' },
  };
  const expectedArgs: Record<JobKind, string[]> = {
    restart_node: ['reboot'],
    shutdown_node: ['shutdown'],
    healthcheck_node: ['healthcheck'],
    repair_node: ['repair'],
    remedy_node: ['remedy', 'DropCache'],
    diagnose_node: ['diagnose', 'GpuDown', '3'],
    validate_node: ['validate', '3', 'all', 'mlx5_0'],
  };

  for (const kind of ALL_JOB_KINDS) {
    it(`${kind}.yaml renders to a pinned, labelled, bounded Job`, () => {
      const text = readFileSync(join(JOBS_DIR, `${kind}.yaml`), 'utf8');
      const name = jobName(kind, 'gpu-7', 1);
      const vars = toTemplateVars(
        { kind, name, node: 'gpu-7', params: params[kind], activeDeadlineSeconds: 900 },
        { image: 'ops:1' },
      );
      const job = renderJobTemplate(text, vars, kind) as unknown as JobShape;
      assert.equal(job.metadata.name, name);
      assert.equal(job.metadata.namespace, JOB_NAMESPACE);
      const labels = {
        'app.kubernetes.io/part-of': 'aegis',
        'aegis.io/node': 'gpu-7',
        'aegis.io/job-kind': kind,
      };
      for (const l of [job.metadata.labels, job.spec.template.metadata.labels]) {
        for (const [k, v] of Object.entries(labels)) assert.equal(l[k], v, k);
      }
      assert.equal(job.spec.activeDeadlineSeconds, 900);
      assert.equal(job.spec.backoffLimit, kind === JobKind.Restart ? 2 : 0);
      assert.ok(job.spec.ttlSecondsAfterFinished > 0);
      const pod = job.spec.template.spec;
      assert.equal(pod.nodeName, 'gpu-7');
      assert.ok(pod.tolerations.some((t) => t.key === 'node.kubernetes.io/unschedulable'));
      const container = pod.containers[0];
      assert.ok(container !== undefined);
      assert.deepEqual(container.args, expectedArgs[kind]);
      assert.equal(container.image, 'ops:1');
    });
  }

  it('long node names get a valid label value and keep the full name in nodeName', () => {
    const node = `${'n'.repeat(60)}.rack-12.example.internal`;
    const text = readFileSync(join(JOBS_DIR, 'healthcheck_node.yaml'), 'utf8');
    const name = jobName(JobKind.Healthcheck, node, 1);
    const vars = toTemplateVars(
      { kind: JobKind.Healthcheck, name, node, params: {}, activeDeadlineSeconds: 60 },
      { image: 'ops:1' },
    );
    const job = renderJobTemplate(text, vars, 'h') as unknown as JobShape;
    assert.ok((job.metadata.labels['aegis.io/node'] ?? '').length <= 63);
    assert.equal(job.spec.template.spec.nodeName, node);
  });
});
