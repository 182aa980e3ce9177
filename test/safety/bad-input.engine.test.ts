/**
 * Bad input where it meets the running engine: broken plug-ins in a plug-in directory, device ids
 * and labels carrying shell/template/YAML injection from the metrics into Job parameters and
 * tickets, and ticket annotations edited by hand into garbage. Each gets a clear error, changes
 * nothing it should not, and no cycle ever throws.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ErrorCode, isHealError } from '../../src/core/errors.js';
import { RACK_LABEL, TICKET_ANNOTATION } from '../../src/core/types.js';
import { createApiBridge } from '../../src/engine/bridge.js';
import type { JobRequest } from '../../src/k8s/cluster.js';
import { loadPlugins } from '../../src/sop/plugins.js';
import type { CallHook } from '../fixtures/safety/kill-switch.js';
import { INJECTIONS } from '../fixtures/safety/malformed.js';
import {
  catalogueOf,
  createSafetyWorld,
  HOUR,
  LADDER_CONDITIONS,
  metricSum,
  runFor,
  safetyConfig,
  startEngine,
  type SafetyWorld,
} from '../fixtures/safety/safety-world.js';
import { useSafetyFigures } from './figures.js';

const figures = useSafetyFigures({ input: 20 });
const CATALOGUE = catalogueOf(LADDER_CONDITIONS);
const CONFIG = safetyConfig({
  safety: { maxCordonedFraction: 1, maxPerRack: 8, maxPerLeaf: 8, maxConcurrent: { reboot: 8 } },
});
const SAFE_VALUE = /^$|^[A-Za-z0-9][A-Za-z0-9_./:-]*$/;
const dir = mkdtempSync(join(tmpdir(), 'aegis-plugins-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the engine over `sw` with a cycle counter that catches what a cycle should never throw. */
async function run(
  sw: SafetyWorld,
  o: {
    hook?: CallHook;
    plugins?: { sop: unknown; origin: string }[];
    hours: number;
    config?: typeof CONFIG;
  },
) {
  const life = startEngine(sw, { config: CONFIG, catalogue: CATALOGUE, ...o });
  let thrown = 0;
  const guarded = (): ReturnType<typeof life.cycle> =>
    life.cycle().catch(() => {
      thrown++;
      return undefined;
    });
  await runFor(sw, { ...life, cycle: guarded }, { durationMs: o.hours * HOUR, intervalMs: 20_000 });
  figures.bad('input', thrown, `${thrown} cycles threw`);
  assert.equal(thrown, 0, 'no cycle threw');
  return life;
}

const SKIP =
  "({ evaluate: () => ({ kind: 'skip', reason: 'x' }), execute: async () => ({ status: 'Succeeded' }) })";
const PLUGINS: Readonly<Record<string, string>> = {
  '01-syntax.mjs': 'export const sop = { id: "a.b", ',
  '02-throws-at-import.mjs': "throw new Error('boom at import');\nexport const sop = {};",
  '03-exports-nothing.mjs': 'export const other = 1;',
  '04-wrong-shape.mjs': "export const sop = { id: 'Not An Id', description: 1 };",
  '05-duplicate-id.mjs': `export const sop = { id: 'gpu.reboot', description: 'dup', createInstance: () => ${SKIP} };`,
  '06-unknown-condition.mjs': `export const sop = { id: 'gpu.ghost', description: 'x', handles: ['NoSuchCondition'], createInstance: () => ${SKIP} };`,
  '07-create-throws.mjs':
    "export const sop = { id: 'gpu.fragile', description: 'x', createInstance: () => { throw new Error('no bridge for me'); } };",
  '08-evaluate-throws.mjs':
    "export const sop = { id: 'gpu.evil', description: 'x', handles: ['Xid79GPULost'], createInstance: () => ({ evaluate: () => { throw new Error('kaboom'); }, execute: async () => { throw new Error('never'); } }) };",
};

describe('broken plug-ins in the plug-in directory', () => {
  it('each is reported with its file and reason and skipped; a run-time throw is counted; the rest works', async () => {
    for (const [file, body] of Object.entries(PLUGINS)) writeFileSync(join(dir, file), body);
    const { plugins, problems } = await loadPlugins(dir);
    figures.tried('input', Object.keys(PLUGINS).length);
    assert.equal(problems.length, 3, problems.join('\n'));
    for (const [i, file] of ['01-syntax', '02-throws-at-import', '03-exports-nothing'].entries())
      assert.match(problems[i] ?? '', new RegExp(file));
    const sw = await createSafetyWorld({ nodes: 6, seed: 41, racksOf: 1 });
    const [evilTarget = '', healthy = ''] = sw.names;
    sw.world.faults.injectFault({
      condition: 'Xid79GPULost',
      device: '1',
      node: evilTarget,
      atMs: sw.clock.now(),
    });
    sw.world.faults.injectFault({
      condition: 'Xid48GPUMemoryDBE',
      device: '2',
      node: healthy,
      atMs: sw.clock.now(),
    });
    // gpu.evil takes Xid79GPULost over from its built-in ladder, which must be allowed.
    const config = { ...CONFIG, sop: { ...CONFIG.sop, pluginOverrides: ['gpu.evil'] } };
    const life = await run(sw, { plugins, hours: 1, config });
    const reg = life.engine.registry();
    assert.equal(reg.problems.length, 4, reg.problems.join('\n'));
    for (const [p, want] of reg.problems.map(
      (p, i) =>
        [p, [/Not An Id/, /already registered/, /NoSuchCondition/, /no bridge for me/][i]] as const,
    ))
      assert.match(p, want ?? /./);
    assert.equal(
      reg.get('gpu.reboot')?.origin,
      'builtin',
      'a plug-in cannot replace a built-in by id',
    );
    const text = await life.metricsText();
    assert.ok(
      metricSum(text, 'aegis_plugin_errors_total', 'plugin="gpu.evil"') > 0,
      'run-time throws counted against the plug-in',
    );
    assert.ok(metricSum(text, 'aegis_plugin_errors_total', 'plugin="load"') >= 4);
    assert.deepEqual(
      life.steps.filter((s) => s.node === evilTarget && s.status === 'Running'),
      [],
      'nothing done on the word of a throwing plug-in',
    );
    assert.ok(
      life.steps.some(
        (s) => s.node === healthy && s.action === 'Reboot' && s.status === 'Succeeded',
      ),
      'built-ins kept working',
    );
    assert.match(
      life.engine.reloadPlugins([{ sop: 42, origin: 'x.mjs' }])[0] ?? '',
      /x\.mjs/,
      'a reload reports too',
    );
  });
});

describe('injection through metric labels, node labels and Job requests', () => {
  const evil = INJECTIONS.filter((s) => s !== '' && !s.includes('\u0000')).slice(0, 8);

  it('device ids carrying injection never reach a Job; the step fails with INVALID_INPUT; tickets stay intact', async () => {
    const sw = await createSafetyWorld({ nodes: evil.length + 1, seed: 43, racksOf: 1 });
    const requests: JobRequest[] = [];
    const hook: CallHook = (c) => {
      if (c.method === 'createJob' && c.phase === 'before') requests.push(c.args[0] as JobRequest);
    };
    evil.forEach((device, i) => {
      sw.world.faults.injectFault({
        condition: 'Xid79GPULost',
        device,
        node: sw.names[i] ?? '',
        atMs: sw.clock.now(),
      });
    });
    const labelled = sw.names[evil.length] ?? '';
    sw.world.cluster.setLabel(labelled, RACK_LABEL, 'r1\nsupervisor: mallory {{NODE}}');
    sw.world.faults.injectFault({
      condition: 'Xid48GPUMemoryDBE',
      device: '1',
      node: labelled,
      atMs: sw.clock.now(),
    });
    await run(sw, { hook, hours: 1 });
    figures.tried('input', evil.length + 1);
    const unsafe = requests.filter(
      (r) => !Object.values(r.params).every((v) => SAFE_VALUE.test(v)) || r.node !== r.node.trim(),
    );
    if (unsafe.length > 0)
      figures.violation(`Jobs created with unsafe params: ${JSON.stringify(unsafe)}`);
    assert.deepEqual(unsafe, []);
    for (const [i, device] of evil.entries()) {
      const node = sw.names[i] ?? '';
      const t = await sw.ticket(node);
      assert.ok(t !== null, `${node} has a ticket`);
      assert.equal(
        t.supervisor,
        'aegis',
        `YAML in ${JSON.stringify(device)} did not rewrite the ticket`,
      );
      const diag = t.workflows.find((w) => w.action === 'Diagnose');
      assert.equal(diag?.status, 'Failed', `diagnose refused for ${JSON.stringify(device)}`);
      assert.match(diag.message ?? '', /param ID of diagnose_node is invalid/);
    }
    assert.equal((await sw.ticket(labelled))?.supervisor, 'aegis');
    assert.equal(
      sw.world.cluster.rebootCount(labelled),
      1,
      'the node with a hostile label was still remediated',
    );
  });

  it('the bridge refuses a hostile node name or param before any Job exists', async () => {
    const sw = await createSafetyWorld({ nodes: 2, seed: 44 });
    const bridge = createApiBridge({ cluster: sw.world.cluster, clock: sw.clock });
    const signal = new AbortController().signal;
    for (const bad of evil) {
      await assert.rejects(
        bridge.runJob({ kind: 'restart_node', node: bad, params: {}, seq: 0 }, signal),
        (e) => isHealError(e, ErrorCode.InvalidInput),
      );
      await assert.rejects(
        bridge.runJob(
          { kind: 'remedy_node', node: sw.names[0] ?? '', params: { action: bad }, seq: 1 },
          signal,
        ),
        (e) => isHealError(e, ErrorCode.InvalidInput) && /ACTION/.test(e.message),
      );
      figures.tried('input', 2);
    }
    assert.deepEqual(
      sw.world.cluster.writes().filter((w) => w.method === 'createJob'),
      [],
      'no Job created',
    );
  });
});

describe('ticket annotations edited by hand into garbage', () => {
  const alias = [
    'a: &a [x, x, x, x, x, x, x, x, x, x]',
    'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
    'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
    'condition: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
  ].join('\n');
  const GARBAGE: readonly [string, string][] = [
    ['corrupt YAML', 'condition: [broken\nstatus: {'],
    ['wrong types', 'condition: 42\nstatus: open-ish\ncreationTime: yesterday\nworkflows: lots'],
    [
      'unknown field',
      'condition: GpuHung\nstatus: created\ncreationTime: 2026-01-01T00:00:00Z\nowner: bob',
    ],
    ['enormous', `condition: GpuHung\nreason: |\n  ${'garbage '.repeat(30_000)}\nstatus: [`],
    ['alias bomb', alias],
    ['not a mapping', '- just\n- a\n- list'],
  ];

  it('each is reported (TICKET_CORRUPT), never overwritten, its node left alone; the other nodes are healed', async () => {
    const sw = await createSafetyWorld({ nodes: GARBAGE.length + 1, seed: 45, racksOf: 1 });
    GARBAGE.forEach(([, raw], i) => {
      const node = sw.names[i] ?? '';
      sw.world.cluster.setAnnotation(node, TICKET_ANNOTATION, raw);
      sw.world.faults.injectFault({
        condition: 'Xid79GPULost',
        device: '2',
        node,
        atMs: sw.clock.now(),
      });
    });
    const clean = sw.names[GARBAGE.length] ?? '';
    sw.world.faults.injectFault({
      condition: 'Xid79GPULost',
      device: '2',
      node: clean,
      atMs: sw.clock.now(),
    });
    const life = await run(sw, { hours: 1 });
    figures.tried('input', GARBAGE.length);
    for (const [i, [what, raw]] of GARBAGE.entries()) {
      const node = await sw.node(sw.names[i] ?? '');
      const kept = node.annotations[TICKET_ANNOTATION] === raw;
      if (!kept) figures.violation(`${what} ticket overwritten`);
      assert.ok(kept, `${what}: annotation byte-identical`);
      assert.equal(node.unschedulable, false, `${what}: node not touched`);
    }
    assert.ok(metricSum(await life.metricsText(), 'aegis_ticket_corrupt_total') >= GARBAGE.length);
    assert.equal((await sw.ticket(clean))?.status, 'resolved', 'the clean node was healed');
  });
});
