/**
 * Issue 12 item 11, the plug-ins: the loader runs only code that root or the daemon's own uid
 * controls (directory, files and every directory above them, not group/world-writable; a
 * read-only mount such as a ConfigMap volume counts as not writable); a plug-in replaces a
 * built-in SOP only when `sop.pluginOverrides` lists it; reloading imports a file by content, so
 * an unchanged file never costs a new module instance and a changed one costs exactly one,
 * bounded by `sop.pluginMaxVersions`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CATALOGUE } from '../../src/catalogue/index.js';
import { builtInSops } from '../../src/sop/index.js';
import { loadPlugins, pluginModuleVersions } from '../../src/sop/plugins.js';
import { createSimHarness } from '../helpers/sim-harness.js';

const root = mkdtempSync(join(tmpdir(), 'aegis-plugins-safety-'));
after(() => {
  rmSync(root, { recursive: true, force: true });
});
const IS_ROOT = process.getuid?.() === 0;
let seq = 0;

const SKIP =
  "({ evaluate: () => ({ kind: 'skip', reason: 'x' }), execute: async () => ({ status: 'Succeeded' }) })";
/** A valid plug-in module: SOP `id` handling `handles`. */
const pluginSource = (id: string, handles: readonly string[] = []): string =>
  `export const sop = { id: '${id}', description: 'test', handles: ${JSON.stringify(handles)}, createInstance: () => ${SKIP} };\n`;

/** A fresh plug-in directory (0755) under `parent` with `files` (0644). */
function pluginDir(files: Record<string, string>, parent = root): string {
  const dir = join(parent, `p${++seq}`);
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(dir, name), text);
    chmodSync(join(dir, name), 0o644);
  }
  return dir;
}

describe('the plug-in directory must be owned by root or the daemon and not writable by others', () => {
  it('a safe directory loads', async () => {
    const dir = pluginDir({ 'a.mjs': pluginSource('site.a') });
    const { plugins, problems } = await loadPlugins(dir);
    assert.deepEqual(problems, []);
    assert.deepEqual(
      plugins.map((p) => (p.sop as { id: string }).id),
      ['site.a'],
    );
  });

  for (const mode of [0o777, 0o775, 0o757, 0o1777, 0o2775]) {
    const shown = `0${mode.toString(8).padStart(3, '0')}`;
    it(`a directory with mode ${shown} is refused whole, naming it and its mode`, async () => {
      const dir = pluginDir({ 'a.mjs': pluginSource('site.a'), 'b.mjs': pluginSource('site.b') });
      chmodSync(dir, mode);
      const { plugins, problems } = await loadPlugins(dir);
      assert.deepEqual(plugins, []);
      assert.equal(problems.length, 1);
      assert.ok(
        problems[0]?.startsWith(`${dir}: plug-in directory refused: ${dir} has mode ${shown}`),
        problems[0],
      );
      assert.match(problems[0] ?? '', /group or others may write it/);
    });
  }

  it('a group- or world-writable file is refused, naming it and its mode; the others load', async () => {
    const dir = pluginDir({
      'a.mjs': pluginSource('site.a'),
      'b.mjs': pluginSource('site.b'),
      'c.mjs': pluginSource('site.c'),
    });
    chmodSync(join(dir, 'b.mjs'), 0o666);
    chmodSync(join(dir, 'c.mjs'), 0o664);
    const { plugins, problems } = await loadPlugins(dir);
    assert.deepEqual(
      plugins.map((p) => (p.sop as { id: string }).id),
      ['site.a'],
    );
    assert.deepEqual(problems, [
      `${join(dir, 'b.mjs')}: plug-in refused: ${join(dir, 'b.mjs')} has mode 0666: group or others may write it (chmod go-w ${join(dir, 'b.mjs')})`,
      `${join(dir, 'c.mjs')}: plug-in refused: ${join(dir, 'c.mjs')} has mode 0664: group or others may write it (chmod go-w ${join(dir, 'c.mjs')})`,
    ]);
  });

  it('a directory above that others may write (not sticky) is refused: the plug-ins could be swapped', async () => {
    const open = join(root, `open${++seq}`);
    mkdirSync(open);
    chmodSync(open, 0o777);
    const dir = pluginDir({ 'a.mjs': pluginSource('site.a') }, open);
    const { plugins, problems } = await loadPlugins(dir);
    assert.deepEqual(plugins, []);
    assert.match(problems[0] ?? '', new RegExp(`refused: ${open} has mode 0777`));
    // Sticky (like /tmp, where every directory of this test lives): others cannot rename it.
    chmodSync(open, 0o1777);
    assert.deepEqual((await loadPlugins(dir)).problems, []);
  });

  it('a symlink is judged by its target: a file in a world-writable directory is refused', async () => {
    const open = join(root, `open${++seq}`);
    mkdirSync(open);
    chmodSync(open, 0o777);
    writeFileSync(join(open, 'x.mjs'), pluginSource('site.x'));
    chmodSync(join(open, 'x.mjs'), 0o644);
    const dir = pluginDir({});
    symlinkSync(join(open, 'x.mjs'), join(dir, 'x.mjs'));
    const { plugins, problems } = await loadPlugins(dir);
    assert.deepEqual(plugins, []);
    assert.match(problems[0] ?? '', new RegExp(`${open} has mode 0777`));
  });

  it(
    'a directory or file owned by another user is refused, naming the owner',
    { skip: !IS_ROOT && 'needs root to chown' },
    async () => {
      const dir = pluginDir({ 'a.mjs': pluginSource('site.a'), 'b.mjs': pluginSource('site.b') });
      chownSync(join(dir, 'b.mjs'), 4242, 4242);
      const one = await loadPlugins(dir);
      assert.deepEqual(
        one.plugins.map((p) => (p.sop as { id: string }).id),
        ['site.a'],
      );
      assert.match(one.problems[0] ?? '', /b\.mjs is owned by uid 4242 \(mode 0644\)/);
      chownSync(dir, 4242, 4242);
      const all = await loadPlugins(dir);
      assert.deepEqual(all.plugins, []);
      assert.match(
        all.problems[0] ?? '',
        new RegExp(`plug-in directory refused: ${dir} is owned by uid 4242`),
      );
      // A uid the daemon trusts explicitly (its own, when it runs as 4242) is accepted.
      assert.equal((await loadPlugins(dir, { trustedUids: [0, 4242] })).plugins.length, 2);
    },
  );

  it(
    'a ConfigMap volume (a 0777 directory of symlinks, mounted read-only) loads',
    { skip: !IS_ROOT && 'needs root to mount' },
    async (t) => {
      const mnt = join(root, `cm${++seq}`);
      mkdirSync(mnt);
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'ignore' });
      } catch {
        t.skip('mount not permitted here');
        return;
      }
      try {
        // The kubelet's layout (atomic_writer.go): a timestamped directory holds the files, `..data`
        // points at it, each key is a symlink through `..data`; the volume's directory is 0777.
        const ts = '..2026_01_01_00_00_00.000000001';
        mkdirSync(join(mnt, ts), { mode: 0o755 });
        writeFileSync(join(mnt, ts, 'site.mjs'), pluginSource('site.cm'), { mode: 0o644 });
        symlinkSync(ts, join(mnt, '..data'));
        symlinkSync('..data/site.mjs', join(mnt, 'site.mjs'));
        chmodSync(mnt, 0o777);
        const writable = await loadPlugins(mnt);
        assert.match(writable.problems[0] ?? '', /has mode 0777/, 'writable, it is refused');
        execFileSync('mount', ['-o', 'remount,ro', mnt]);
        const { plugins, problems } = await loadPlugins(mnt);
        assert.deepEqual(problems, []);
        assert.deepEqual(
          plugins.map((p) => (p.sop as { id: string }).id),
          ['site.cm'],
        );
      } finally {
        execFileSync('umount', [mnt]);
      }
    },
  );
});

describe('a plug-in replaces a built-in SOP only when sop.pluginOverrides lists it', () => {
  const builtin = (condition: string): string => {
    const e = CATALOGUE.find((c) => c.name === condition);
    const id = e?.sop ?? builtInSops.find((s) => s.handles?.includes(condition))?.id;
    assert.ok(id !== undefined, condition);
    return id;
  };
  const XID_SOP = builtin('Xid79GPULost');
  const handled = new Set(builtInSops.flatMap((s) => s.handles ?? []));
  const FREE = CATALOGUE.find((e) => e.sop === null && !handled.has(e.name))?.name;

  it('claiming a condition a built-in serves is refused by default, naming both and the setting', async () => {
    const h = await createSimHarness({
      plugins: [{ sop: evalSop('site.xid79', ['Xid79GPULost']), origin: '/p/site.mjs' }],
    });
    const reg = h.engine.registry();
    assert.equal(reg.forCondition('Xid79GPULost')?.origin, 'builtin');
    assert.equal(reg.get('site.xid79'), undefined);
    assert.deepEqual(reg.problems, [
      `/p/site.mjs: site.xid79 handles Xid79GPULost, which the built-in SOP "${XID_SOP}" serves; a plug-in takes a condition over from a built-in only when its id is listed in sop.pluginOverrides`,
    ]);
  });

  it('listed in sop.pluginOverrides, it takes that condition over (and only that one)', async () => {
    const h = await createSimHarness({
      config: { sop: { pluginOverrides: ['site.xid79'] } },
      plugins: [{ sop: evalSop('site.xid79', ['Xid79GPULost']), origin: '/p/site.mjs' }],
    });
    const reg = h.engine.registry();
    assert.deepEqual(reg.problems, []);
    assert.equal(reg.forCondition('Xid79GPULost')?.sop.id, 'site.xid79');
    const sibling = CATALOGUE.find((e) => e.sop === XID_SOP && e.name !== 'Xid79GPULost');
    if (sibling !== undefined) assert.equal(reg.forCondition(sibling.name)?.origin, 'builtin');
  });

  it("reusing a built-in's id is refused by default; listed, the plug-in takes its place", async () => {
    const plugin = { sop: evalSop(XID_SOP, []), origin: '/p/replace.mjs' };
    const refused = (await createSimHarness({ plugins: [plugin] })).engine.registry();
    assert.equal(refused.get(XID_SOP)?.origin, 'builtin');
    assert.match(
      refused.problems[0] ?? '',
      /already registered as a built-in; .*sop\.pluginOverrides/,
    );
    const replaced = (
      await createSimHarness({ config: { sop: { pluginOverrides: [XID_SOP] } }, plugins: [plugin] })
    ).engine.registry();
    assert.deepEqual(replaced.problems, []);
    assert.equal(replaced.get(XID_SOP)?.origin, '/p/replace.mjs');
    assert.equal(replaced.forCondition('Xid79GPULost')?.origin, '/p/replace.mjs');
  });

  it('a condition no built-in serves is open to a plug-in, first come; a second claim is refused', async (t) => {
    if (FREE === undefined) {
      t.skip('every condition has a built-in SOP');
      return;
    }
    const reg = (
      await createSimHarness({
        plugins: [
          { sop: evalSop('site.one', [FREE]), origin: '/p/1.mjs' },
          { sop: evalSop('site.two', [FREE]), origin: '/p/2.mjs' },
        ],
      })
    ).engine.registry();
    assert.equal(reg.forCondition(FREE)?.sop.id, 'site.one');
    assert.deepEqual(reg.problems, [
      `/p/2.mjs: site.two handles ${FREE}, already claimed by site.one (/p/1.mjs)`,
    ]);
  });

  it('an override naming no loaded plug-in is reported', async () => {
    const reg = (
      await createSimHarness({ config: { sop: { pluginOverrides: ['site.gone'] } } })
    ).engine.registry();
    assert.deepEqual(reg.problems, [
      'sop.pluginOverrides names "site.gone", which no loaded plug-in provides',
    ]);
  });
});

/** An SOP object (as a plug-in module exports it). */
function evalSop(id: string, handles: readonly string[]): unknown {
  return {
    id,
    description: 'test',
    handles,
    createInstance: () => ({
      evaluate: () => ({ kind: 'skip', reason: 'x' }),
      execute: () => Promise.resolve({ status: 'Succeeded' }),
    }),
  };
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMb = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
};

/**
 * A plug-in that counts its evaluations (module instances) in a global and holds 1 MB at module
 * scope that its SOP's closures reach (as a real plug-in's state is), so a leaked instance shows
 * in the heap.
 */
const counting = (key: string, version: number): string =>
  `const g = globalThis; g.__aegisEvals ??= {}; g.__aegisEvals['${key}'] = (g.__aegisEvals['${key}'] ?? 0) + 1;\n` +
  `const ballast = Array.from({ length: 131072 }, (_, i) => i);\n` +
  `export const sop = { id: 'site.${key}', description: 'v${version}', createInstance: () => ({ evaluate: () => ({ kind: 'skip', reason: String(ballast.length) }), execute: async () => ({ status: 'Succeeded' }) }) };\n`;
const evaluations = (key: string): number =>
  (globalThis as { __aegisEvals?: Record<string, number> }).__aegisEvals?.[key] ?? 0;
const descriptionOf = (r: Awaited<ReturnType<typeof loadPlugins>>): string =>
  (r.plugins[0]?.sop as { description?: string } | undefined)?.description ?? '';

describe('reloading never leaks module instances', () => {
  const RELOADS = 40;

  it(`${RELOADS} reloads of a touched, unchanged plug-in evaluate it once and keep the heap flat`, async () => {
    const dir = pluginDir({ 'touched.mjs': counting('touched', 1) });
    await loadPlugins(dir);
    const before = heapMb();
    const versions = pluginModuleVersions();
    for (let i = 1; i <= RELOADS; i++) {
      const when = new Date(Date.now() + i * 1000);
      utimesSync(join(dir, 'touched.mjs'), when, when);
      const { plugins, problems } = await loadPlugins(dir);
      assert.deepEqual(problems, []);
      assert.equal(plugins.length, 1);
    }
    const growth = heapMb() - before;
    console.log(
      `PLUGIN FIGURES: reloads=${RELOADS} evaluations=${evaluations('touched')} heap growth=${growth.toFixed(1)} MB`,
    );
    assert.equal(evaluations('touched'), 1, 'one module instance');
    assert.equal(pluginModuleVersions(), versions);
    assert.ok(growth < 10, `heap grew ${growth.toFixed(1)} MB over ${RELOADS} reloads`);
  });

  it('a ConfigMap update that re-publishes the same file (new directory, new mtime) reuses its module', async () => {
    const dir = pluginDir({});
    const publish = (n: number): void => {
      const ts = `..2026_01_01_00_00_0${n}.000000001`;
      mkdirSync(join(dir, ts), { mode: 0o755 });
      writeFileSync(join(dir, ts, 'cm.mjs'), counting('cm', 1), { mode: 0o644 });
      symlinkSync(ts, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    };
    publish(0);
    symlinkSync('..data/cm.mjs', join(dir, 'cm.mjs'));
    for (let n = 0; n < 5; n++) {
      if (n > 0) publish(n);
      assert.equal((await loadPlugins(dir)).plugins.length, 1);
    }
    assert.equal(evaluations('cm'), 1);
  });

  it('a changed plug-in costs exactly one module instance per new content', async () => {
    const dir = pluginDir({ 'changed.mjs': counting('changed', 1) });
    await loadPlugins(dir);
    const versions = pluginModuleVersions();
    for (let v = 2; v <= 4; v++) {
      writeFileSync(join(dir, 'changed.mjs'), counting('changed', v));
      assert.match(descriptionOf(await loadPlugins(dir)), new RegExp(`^v${v}$`));
      await loadPlugins(dir);
    }
    assert.equal(evaluations('changed'), 4);
    assert.equal(pluginModuleVersions(), versions + 3);
  });

  it('past sop.pluginMaxVersions a change waits for a restart: the previous version stays, and says so', async () => {
    const dir = pluginDir({ 'bounded.mjs': counting('bounded', 1) });
    const max = pluginModuleVersions() + 3;
    await loadPlugins(dir, { maxModuleVersions: max });
    for (let v = 2; v <= 5; v++) {
      writeFileSync(join(dir, 'bounded.mjs'), counting('bounded', v));
      const r = await loadPlugins(dir, { maxModuleVersions: max });
      if (v <= 3) {
        assert.deepEqual(r.problems, []);
        assert.match(descriptionOf(r), new RegExp(`^v${v}$`));
      } else {
        assert.match(descriptionOf(r), /^v3$/, 'the last version loaded stays in force');
        assert.deepEqual(r.problems, [
          `${join(dir, 'bounded.mjs')}: changed, but ${max} plug-in module versions are already loaded in this process (sop.pluginMaxVersions: ${max}; a module cannot be unloaded); its previous version stays in force until the daemon restarts`,
        ]);
      }
    }
    assert.equal(evaluations('bounded'), 3);
    assert.equal(pluginModuleVersions(), max);
    // Going back to a version already loaded costs nothing and is allowed.
    writeFileSync(join(dir, 'bounded.mjs'), counting('bounded', 2));
    const back = await loadPlugins(dir, { maxModuleVersions: max });
    assert.deepEqual(back.problems, []);
    assert.match(descriptionOf(back), /^v2$/);
  });
});
