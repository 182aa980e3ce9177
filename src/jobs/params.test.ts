import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, isHealError } from '../core/errors.js';
import { ALL_JOB_KINDS, JobKind, type JobRequest } from '../k8s/cluster.js';
import { RemedyAction, toTemplateVars, validateJobParams } from './params.js';

/** Characters a shell, a YAML document or a command line could give meaning to. */
const SHELL_METACHARACTERS = /[\s'"`$;&|<>(){}[\]\\*?!#~%^=,]/;

const INJECTIONS: readonly string[] = [
  'DropCache; reboot',
  'DropCache && reboot',
  '$(reboot)',
  '`reboot`',
  'DropCache\nreboot',
  "DropCache' ; reboot ; '",
  'DropCache|sh',
  '../../../etc/passwd',
  '-rf',
  '--help',
  ' DropCache',
  'DropCache ',
  '${IFS}reboot',
  'a b',
  '',
];

const rejectsAs = (fn: () => unknown, param: string): void => {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isHealError(err, ErrorCode.InvalidInput), String(err));
    assert.match(err.message, new RegExp(param));
    return true;
  });
};

describe('validateJobParams', () => {
  it('accepts every remedy action', () => {
    for (const action of Object.values(RemedyAction)) {
      assert.deepEqual(validateJobParams(JobKind.Remedy, { ACTION: action }), { ACTION: action });
    }
  });

  it('fills optional params with empty strings', () => {
    assert.deepEqual(validateJobParams(JobKind.Diagnose, { TYPE: 'GpuDown' }), {
      TYPE: 'GpuDown',
      ID: '',
    });
  });

  it('accepts PCI addresses and device names as ids', () => {
    for (const id of ['0000:07:00.0', 'mlx5_0', '79', 'gpu/3', 'GPU-1a2b']) {
      assert.equal(validateJobParams(JobKind.Diagnose, { TYPE: 'X', ID: id }).ID, id);
    }
  });

  it('rejects params a kind does not take, naming them', () => {
    rejectsAs(() => validateJobParams(JobKind.Restart, { ACTION: 'DropCache' }), 'ACTION');
    rejectsAs(() => validateJobParams(JobKind.Remedy, { ACTION: 'DropCache', X: '1' }), 'X');
  });

  it('rejects a missing required param, naming it', () => {
    rejectsAs(() => validateJobParams(JobKind.Remedy, {}), 'ACTION');
    rejectsAs(() => validateJobParams(JobKind.Diagnose, { ID: '1' }), 'TYPE');
  });

  for (const attempt of INJECTIONS) {
    it(`rejects ${JSON.stringify(attempt)} in every param`, () => {
      if (attempt !== '')
        rejectsAs(() => validateJobParams(JobKind.Remedy, { ACTION: attempt }), 'ACTION');
      if (attempt !== '')
        rejectsAs(() => validateJobParams(JobKind.Diagnose, { TYPE: attempt }), 'TYPE');
      if (attempt !== '') {
        rejectsAs(() => validateJobParams(JobKind.Diagnose, { TYPE: 'X', ID: attempt }), 'ID');
      }
    });
  }

  it('never accepts a value containing a shell metacharacter (fuzz)', () => {
    const kindsAndParams: readonly [JobKind, string][] = [
      [JobKind.Remedy, 'ACTION'],
      [JobKind.Diagnose, 'TYPE'],
      [JobKind.Diagnose, 'ID'],
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...kindsAndParams),
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 80 }),
          fc.string({
            unit: fc.constantFrom(...Array.from('aZ09_./:-;$`\'" \n|&()')),
            maxLength: 70,
          }),
        ),
        ([kind, param], value) => {
          const params = param === 'ID' ? { TYPE: 'X', ID: value } : { [param]: value };
          let accepted: Readonly<Record<string, string>>;
          try {
            accepted = validateJobParams(kind, params);
          } catch (err) {
            assert.ok(isHealError(err, ErrorCode.InvalidInput));
            return;
          }
          for (const v of Object.values(accepted)) {
            assert.doesNotMatch(v, SHELL_METACHARACTERS);
            assert.ok(v === '' || /^[A-Za-z0-9]/.test(v), 'no value starts like an option');
            assert.ok(v.length <= 64);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('rejects any value with an injected metacharacter (fuzz)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9]{1,20}$/),
        fc.constantFrom(...Array.from(';$`\'"\n|&<>(){} ')),
        fc.stringMatching(/^[A-Za-z0-9]{0,20}$/),
        (head, meta, tail) => {
          const value = `${head}${meta}${tail}`;
          assert.throws(() => validateJobParams(JobKind.Diagnose, { TYPE: 'X', ID: value }));
          assert.throws(() => validateJobParams(JobKind.Diagnose, { TYPE: value }));
          assert.throws(() => validateJobParams(JobKind.Remedy, { ACTION: value }));
        },
      ),
    );
  });
});

describe('toTemplateVars', () => {
  const request: JobRequest = {
    kind: JobKind.Remedy,
    name: 'remedy-gpu-1-1',
    node: 'gpu-1',
    params: { ACTION: 'DropCache' },
    activeDeadlineSeconds: 600,
  };
  const image = 'registry.local/aegis/ops:1.0';

  it('merges built-ins and params', () => {
    assert.deepEqual(toTemplateVars(request, { image }), {
      ACTION: 'DropCache',
      NODE: 'gpu-1',
      NODE_LABEL: 'gpu-1',
      NAME: 'remedy-gpu-1-1',
      NAMESPACE: 'monitoring',
      DEADLINE: 600,
      IMAGE: image,
    });
  });

  const bad: readonly [string, Partial<JobRequest>, string][] = [
    ['node name', { node: 'gpu-1; reboot' }, 'node'],
    ['upper-case node name', { node: 'GPU-1' }, 'node'],
    ['job name', { name: 'Remedy_1' }, 'job name'],
    ['job name over 63 chars', { name: 'a'.repeat(64) }, 'job name'],
    ['deadline', { activeDeadlineSeconds: 0 }, 'activeDeadlineSeconds'],
    ['fractional deadline', { activeDeadlineSeconds: 1.5 }, 'activeDeadlineSeconds'],
  ];
  for (const [what, patch, param] of bad) {
    it(`rejects an invalid ${what}`, () => {
      rejectsAs(() => toTemplateVars({ ...request, ...patch }, { image }), param);
    });
  }

  it('rejects an image with shell syntax', () => {
    rejectsAs(() => toTemplateVars(request, { image: 'ops:1 $(id)' }), 'image');
  });

  it('validate_node: levels 0-4, GPUs 0/all/1-64, IB none/auto/an HCA name; nothing else', () => {
    const ok = { DCGM_LEVEL: '3', NCCL_GPUS: '8', IB_DEVICE: 'mlx5_0' };
    assert.deepEqual(validateJobParams(JobKind.Validate, ok), ok);
    for (const [name, bad] of [
      ['DCGM_LEVEL', '5'],
      ['DCGM_LEVEL', '-r'],
      ['NCCL_GPUS', '65'],
      ['NCCL_GPUS', '08'],
      ['IB_DEVICE', '-d'],
      ['IB_DEVICE', 'mlx5_0;id'],
      ['IB_DEVICE', '../sys'],
    ] as const)
      rejectsAs(() => validateJobParams(JobKind.Validate, { ...ok, [name]: bad }), name);
    rejectsAs(() => validateJobParams(JobKind.Validate, { DCGM_LEVEL: '3' }), 'NCCL_GPUS');
  });

  it('covers every kind', () => {
    for (const kind of ALL_JOB_KINDS) {
      const params =
        kind === JobKind.Remedy
          ? { ACTION: 'DropCache' }
          : kind === JobKind.Diagnose
            ? { TYPE: 'GpuDown' }
            : kind === JobKind.Validate
              ? { DCGM_LEVEL: '3', NCCL_GPUS: 'all', IB_DEVICE: 'auto' }
              : {};
      assert.equal(toTemplateVars({ ...request, kind, params }, { image }).NODE, 'gpu-1');
    }
  });
});
