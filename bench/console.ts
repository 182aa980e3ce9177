/// <reference lib="dom" />
/**
 * The operator console's fleet view at scale (`node --import tsx bench/console.ts --nodes 10000
 * --runs 5 --updates 20`), in headless Chromium (Debian's `chromium`, puppeteer-core):
 *
 * - a simulated fleet of N nodes (createSimWorld, seed 7, 8 GPUs per node) served by the console
 *   (the demo's token scheme), no engine: every node healthy at first;
 * - first render: a fresh page logs in and draws the fleet; measured in the page from the start
 *   of the fleet view (the /api/fleet request included) to the canvas drawn (`firstRenderMs`),
 *   and from navigation start (`sinceNavigationMs`: the page, its script, login, fleet);
 * - update: K times, 1 % of the nodes change (cordoned by hand, or back), the console re-reads the
 *   fleet and pushes the diff (server-sent events); measured in the page from the message's
 *   arrival to the changed cells repainted (`updateMs`), and end to end from the server's refresh
 *   to the page having applied it (`endToEndMs`: the server's diff, the stream, the page).
 *
 * Prints a table and one JSON document. A benchmark, not a test.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { CATALOGUE } from '../src/catalogue/index.js';
import { defaultConfig } from '../src/config/schema.js';
import { demoAccess } from '../src/console/access.js';
import { startConsole } from '../src/console/server.js';
import { simBackend } from '../src/console/sim-backend.js';
import { percentile } from '../src/bench/stats.js';
import { createSimWorld } from '../src/sim/sim-world.js';
import { launchBrowser } from '../test/console/browser.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '5' },
    updates: { type: 'string', default: '20' },
  },
});
const nodes = Number(values.nodes);
const runs = Number(values.runs);
const updates = Number(values.updates);

interface PagePerf {
  firstRenderMs: number;
  lastUpdateMs: number;
  updates: number;
  fleetRendered: number;
}

const load0 = loadavg()[0] ?? 0;
const world = createSimWorld({ nodes, seed: 7, catalogue: CATALOGUE });
const signal = new AbortController().signal;
const config = defaultConfig();
const { access, tokens } = demoAccess();
const console_ = await startConsole({
  backend: simBackend({
    nodes: () => world.cluster.listNodes(signal),
    writer: world.cluster,
    setControl: (d) => {
      world.cluster.setControl(d);
    },
    config,
  }),
  access,
  port: 0,
  host: '127.0.0.1',
  refreshEveryMs: 0,
});
await console_.refresh();
const names = (await world.cluster.listNodes(signal)).map((n) => n.name);
const browser = await launchBrowser();
const first: number[] = [];
const sinceNav: number[] = [];
const update: number[] = [];
const endToEnd: number[] = [];
try {
  for (let run = 0; run < runs; run++) {
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();
    await page.goto(`${console_.url}/#token=${tokens.operator}`);
    await page.waitForFunction(
      () =>
        ((window as unknown as { aegisConsole?: { perf: PagePerf } }).aegisConsole?.perf
          .firstRenderMs ?? -1) >= 0,
      { timeout: 60_000 },
    );
    const r = await page.evaluate(() => ({
      first: (window as unknown as { aegisConsole: { perf: PagePerf } }).aegisConsole.perf
        .firstRenderMs,
      now: performance.now(),
    }));
    first.push(r.first);
    sinceNav.push(r.now);
    if (run === 0) {
      // Updates: 1 % of the fleet changes state each time.
      const step = Math.max(1, Math.floor(nodes / 100));
      for (let u = 0; u < updates; u++) {
        const cordon = u % 2 === 0;
        // Pairs: update 2k cordons a set of nodes, update 2k+1 uncordons the same set.
        for (let i = Math.floor(u / 2) % step; i < nodes; i += step) {
          const n = names[i] ?? '';
          if (cordon) world.cluster.cordonByHand(n);
          else await world.cluster.setUnschedulable(n, false, signal);
        }
        const before = await page.evaluate(
          () =>
            (window as unknown as { aegisConsole: { perf: PagePerf } }).aegisConsole.perf.updates,
        );
        const t0 = performance.now();
        await console_.refresh();
        await page.waitForFunction(
          (b) =>
            (window as unknown as { aegisConsole: { perf: PagePerf } }).aegisConsole.perf.updates >
            b,
          { timeout: 30_000 },
          before,
        );
        endToEnd.push(performance.now() - t0);
        update.push(
          await page.evaluate(
            () =>
              (window as unknown as { aegisConsole: { perf: PagePerf } }).aegisConsole.perf
                .lastUpdateMs,
          ),
        );
      }
    }
    await ctx.close();
  }
} finally {
  await browser.close();
  await console_.close();
}
const p = (xs: number[], q: number): number => Math.round(percentile(xs, q) * 10) / 10;
const result = {
  nodes,
  runs,
  updates,
  changedPerUpdate: Math.ceil(nodes / Math.max(1, Math.floor(nodes / 100))),
  firstRenderMs: { p50: p(first, 50), max: p(first, 100) },
  sinceNavigationMs: { p50: p(sinceNav, 50), max: p(sinceNav, 100) },
  updateMs: { p50: p(update, 50), p99: p(update, 99), max: p(update, 100) },
  endToEndMs: { p50: p(endToEnd, 50), p99: p(endToEnd, 99), max: p(endToEnd, 100) },
  loadAverage: { before: load0, after: loadavg()[0] ?? 0 },
};
process.stdout.write(
  [
    `console fleet view, ${nodes} nodes, headless Chromium (${runs} page loads, ${updates} updates of ~1 % of the nodes)`,
    `  first render (fleet view start → canvas drawn): p50 ${result.firstRenderMs.p50} ms, max ${result.firstRenderMs.max} ms  (target < 1000 ms)`,
    `  navigation start → fleet drawn:                 p50 ${result.sinceNavigationMs.p50} ms, max ${result.sinceNavigationMs.max} ms`,
    `  update (event received → cells repainted):       p50 ${result.updateMs.p50} ms, p99 ${result.updateMs.p99} ms  (target < 100 ms)`,
    `  update end to end (server refresh → applied):    p50 ${result.endToEndMs.p50} ms, p99 ${result.endToEndMs.p99} ms`,
    `  load average ${result.loadAverage.before.toFixed(1)} → ${result.loadAverage.after.toFixed(1)}`,
    JSON.stringify(result),
    '',
  ].join('\n'),
);
