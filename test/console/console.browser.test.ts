/// <reference lib="dom" />
/**
 * The operator console in headless Chromium (Debian's `chromium`, puppeteer-core), over a
 * simulated fleet run by the real engine, with the demo's token scheme standing in for TokenReview
 * and SubjectAccessReview (test/k8s/console-auth.test.ts checks the real ones):
 *
 * - the fleet view draws every node of the simulated fleet;
 * - a fault injected in the simulator turns its cell red within one cycle (the canvas pixel);
 * - the node view shows the ticket's timeline;
 * - approve and take over work for an operator token and are refused for a read-only one;
 * - screenshots of each view (set AEGIS_UPDATE_CONSOLE_SCREENSHOTS=1 to write docs/console/*.png).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'puppeteer-core';
import { launchBrowser } from './browser.js';
import { startConsoleSim, type ConsoleSim } from './harness.js';

const REPO = join(import.meta.dirname, '..', '..');
const SHOTS =
  process.env['AEGIS_UPDATE_CONSOLE_SCREENSHOTS'] === '1'
    ? join(REPO, 'docs', 'console')
    : mkdtempSync(join(tmpdir(), 'aegis-console-'));
const WAIT = { timeout: 15_000 };

let sim: ConsoleSim;
let browser: Browser;
let base: string;
/** The node whose reboot waits for approval. */
let held: string;

interface ConsoleApi {
  nodes(): number;
  stateOf(name: string): string | undefined;
  cellCenter(name: string): [number, number] | undefined;
}

async function open(token: string, hash = '#/fleet'): Promise<Page> {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  page.on('pageerror', (err) => {
    throw err;
  });
  await page.goto(`${base}/#token=${token}`);
  await page.waitForFunction(
    () => (window as unknown as { aegisConsole?: ConsoleApi }).aegisConsole?.nodes() !== 0,
    WAIT,
  );
  if (hash !== '#/fleet') await page.goto(`${base}/${hash}`);
  return page;
}

function stateOf(page: Page, node: string): Promise<string | undefined> {
  return page.evaluate(
    (n) => (window as unknown as { aegisConsole: ConsoleApi }).aegisConsole.stateOf(n),
    node,
  );
}

/** The colour of a node's cell on the canvas, as [r, g, b]. */
async function cellColour(page: Page, node: string): Promise<[number, number, number]> {
  return page.evaluate((n) => {
    const api = (window as unknown as { aegisConsole: ConsoleApi }).aegisConsole;
    const c = api.cellCenter(n);
    const canvas = document.getElementById('fleet-canvas') as HTMLCanvasElement;
    const ctx = canvas.getContext('2d');
    if (c === undefined || ctx === null) throw new Error(`no cell for ${n}`);
    const dpr = window.devicePixelRatio || 1;
    // A corner of the cell, away from its letter.
    const d = ctx.getImageData(Math.floor((c[0] - 4) * dpr), Math.floor((c[1] - 4) * dpr), 1, 1);
    return [d.data[0] ?? 0, d.data[1] ?? 0, d.data[2] ?? 0] as [number, number, number];
  }, node);
}

before(async () => {
  sim = await startConsoleSim({
    nodes: 64,
    racksOf: 8,
    config: { approval: { rules: [{ actions: ['Reboot', 'Shutdown'] }] } },
  });
  base = sim.console.url;
  held = sim.names[10] ?? '';
  sim.world.faults.injectFault({
    condition: 'Xid79GPULost',
    device: '4',
    node: held,
    atMs: sim.clock.now(),
    persistence: 'until-reboot',
  });
  for (let i = 0; i < 80 && (await sim.ticket(held))?.approval?.state !== 'pending'; i++)
    await sim.cycle();
  assert.equal((await sim.ticket(held))?.approval?.state, 'pending', 'a reboot awaits approval');
  browser = await launchBrowser();
});

after(async () => {
  await browser.close();
  await sim.close();
  if (process.env['AEGIS_UPDATE_CONSOLE_SCREENSHOTS'] !== '1')
    rmSync(SHOTS, { recursive: true, force: true });
});

describe('console in the browser', () => {
  it('the fleet view renders the simulated fleet, every node a cell with a state', async () => {
    const page = await open(sim.tokens.operator);
    assert.equal(
      await page.evaluate(() =>
        (window as unknown as { aegisConsole: ConsoleApi }).aegisConsole.nodes(),
      ),
      64,
    );
    assert.equal(await stateOf(page, sim.names[0] ?? ''), 'healthy');
    assert.equal(await stateOf(page, held), 'held');
    const [r, g] = await cellColour(page, sim.names[0] ?? '');
    assert.ok(g > 100 && r < 80, `a healthy cell is green (rgb ${r},${g})`);
    // Text labels besides colour: the legend names each state with its count.
    const legend = await page.$eval('.legend', (e) => e.textContent);
    assert.match(legend, /Healthy 63/);
    assert.match(legend, /Held 1/);
    const label = await page.$eval('#fleet-canvas', (e) => e.getAttribute('aria-label') ?? '');
    assert.match(label, /64 nodes/);
    await page.screenshot({ path: join(SHOTS, 'fleet.png') });
    await page.browserContext().close();
  });

  it('a fault injected in the simulator turns its cell red within a cycle', async () => {
    const page = await open(sim.tokens.viewer);
    const node = sim.names[37] ?? '';
    assert.equal(await stateOf(page, node), 'healthy');
    sim.world.faults.injectFault({
      condition: 'Xid79GPULost',
      device: '1',
      node,
      atMs: sim.clock.now(),
      persistence: 'until-reboot',
    });
    await sim.cycle();
    await page.waitForFunction(
      (n) =>
        ['faulty', 'cordoned-aegis'].includes(
          (window as unknown as { aegisConsole: ConsoleApi }).aegisConsole.stateOf(n) ?? '',
        ),
      WAIT,
      node,
    );
    const [r, g, b] = await cellColour(page, node);
    assert.ok(r > 100 && g < 60 && b < 60, `the cell is red (rgb ${r},${g},${b})`);
    await page.browserContext().close();
  });

  it('keyboard: Tab reaches the map, arrows move, Enter opens the node', async () => {
    const page = await open(sim.tokens.viewer);
    await page.focus('#fleet-canvas');
    await page.keyboard.press('ArrowRight');
    const said = await page.$eval('#cell-focus', (e) => e.textContent);
    assert.match(said, new RegExp(`^${sim.names[1] ?? ''}: Healthy`));
    await page.keyboard.press('Enter');
    await page.waitForSelector('#why', WAIT);
    assert.match(page.url(), new RegExp(`#/node/${sim.names[1] ?? ''}$`));
    await page.browserContext().close();
  });

  it('the node view shows the ticket timeline and what holds the next step', async () => {
    const page = await open(sim.tokens.viewer, `#/node/${held}`);
    await page.waitForSelector('#timeline tbody tr', WAIT);
    const rows = await page.$$eval('#timeline tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    assert.equal(rows[0]?.[1], 'ticket opened');
    assert.ok(
      rows.some((r) => r[2] === 'Held' && /approval/.test(r[6] ?? '')),
      JSON.stringify(rows),
    );
    const why = await page.$eval('#why', (e) => e.textContent);
    assert.match(why, /waits for approval/);
    // Read only: the action buttons are there, disabled.
    assert.equal(
      await page.$eval('#action-approve', (b) => (b as HTMLButtonElement).disabled),
      true,
    );
    await page.screenshot({ path: join(SHOTS, 'node.png'), fullPage: true });
    await page.browserContext().close();
  });

  it('a read-only token may not approve or take over (refused by the server too)', async () => {
    const page = await open(sim.tokens.viewer, `#/node/${held}`);
    await page.waitForSelector('#action-approve', WAIT);
    assert.equal(
      await page.$eval('#action-takeover', (b) => (b as HTMLButtonElement).disabled),
      true,
    );
    const before = await sim.ticket(held);
    // (No named functions inside evaluate: tsx's helpers do not exist in the page.)
    const statuses = await page.evaluate(async (n) => {
      const s = (await (await fetch('/api/session')).json()) as { csrf: string };
      return Promise.all(
        ['approve', 'takeover'].map(async (action) =>
          fetch(`/api/nodes/${n}/${action}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-aegis-csrf': s.csrf },
            body: JSON.stringify({ confirm: true }),
          }).then((r) => r.status),
        ),
      );
    }, held);
    assert.deepEqual(statuses, [403, 403]);
    assert.deepEqual(await sim.ticket(held), before, 'the ticket is unchanged');
    await page.browserContext().close();
  });

  it('an operator approves, then takes over, each confirmed and recorded with their name', async () => {
    const page = await open(sim.tokens.operator, `#/node/${held}`);
    await page.waitForSelector('#action-approve:not([disabled])', WAIT);
    await page.click('#action-approve');
    await page.waitForSelector('dialog#confirm[open]', WAIT);
    const question = await page.$eval('#confirm-text', (e) => e.textContent);
    assert.match(question, /recorded in the ticket as demo-operator/);
    await page.click('#confirm-ok');
    await page.waitForFunction(
      () => /approved by demo-operator/.test(document.getElementById('toast')?.textContent ?? ''),
      WAIT,
    );
    let t = await sim.ticket(held);
    assert.equal(t?.approval?.state, 'approved');
    assert.equal(t.approval.by, 'demo-operator');

    await page.waitForSelector('#action-takeover:not([disabled])', WAIT);
    await page.click('#action-takeover');
    await page.waitForSelector('dialog#confirm[open]', WAIT);
    await page.click('#confirm-ok');
    await page.waitForFunction(
      () => /taken over by demo-operator/.test(document.getElementById('toast')?.textContent ?? ''),
      WAIT,
    );
    t = await sim.ticket(held);
    assert.equal(t?.supervisor, 'demo-operator');
    assert.deepEqual(
      t.operatorLog?.map((l) => [l.action, l.by]),
      [
        ['approve', 'demo-operator'],
        ['takeover', 'demo-operator'],
      ],
    );
    // The timeline shows who acted.
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('#timeline tbody tr')].some((tr) =>
          /takeover.*demo-operator/.test(tr.textContent),
        ),
      WAIT,
    );
    await page.browserContext().close();
  });

  it('the queue view shows what runs, what waits and why, breaker and budgets', async () => {
    await sim.cycle();
    const page = await open(sim.tokens.operator, '#/queue');
    await page.waitForSelector('.cards', WAIT);
    const text = await page.$eval('main', (e) => e.textContent);
    assert.match(text, /Storm breaker/);
    assert.match(text, /Cordon budget/);
    assert.match(text, /Waiting \(\d+\)/);
    await page.screenshot({ path: join(SHOTS, 'queue.png'), fullPage: true });
    await page.browserContext().close();
  });

  it('screenshots of each view are committed under docs/console/', () => {
    for (const view of ['fleet', 'node', 'queue']) {
      const file = join(REPO, 'docs', 'console', `${view}.png`);
      assert.ok(existsSync(file), `${file} (AEGIS_UPDATE_CONSOLE_SCREENSHOTS=1 writes it)`);
      assert.deepEqual([...readFileSync(file).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    }
  });
});
