/**
 * The key cross-check between the catalogue and the simulator, over every CATALOGUE entry:
 * a healthy fleet fires nothing; the entry's own fault recipe, injected on one node, makes its
 * expression return exactly that node (and device); clearing the fault makes it quiet again.
 * Entries whose expression needs history (NEEDS_HISTORY) have their own tests that build it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CATALOGUE } from '../catalogue/index.js';
import type { CatalogueEntry } from '../catalogue/types.js';
import { ManualClock } from '../core/clock.js';
import type { InstantSample } from '../prom/metrics-source.js';
import { createSimWorld, type SimWorld } from './sim-world.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const START = Date.UTC(2026, 0, 1);
/** A day after the start, so 24 h windows see healthy history before the fault. */
const INJECT_AT = START + 25 * HOUR;
const NODE = 'gpu-node-0002';
/** Times after injection at which the expression is evaluated (windows, offsets, `changes`). */
const PROBES_MS = [0, MIN, 5 * MIN, 11 * MIN, HOUR, 3 * HOUR + 5 * MIN];
/** Long enough after clearing for every range window of the catalogue (24 h, 1 d) to pass. */
const QUIET_AFTER_MS = 25 * HOUR;
const signal = new AbortController().signal;

/**
 * Entries whose expression needs a history one injection cannot make (name → why). They are not
 * in the one-injection table; each has its own test below that builds the history it needs.
 */
const NEEDS_HISTORY: Readonly<Record<string, string>> = {
  NodeInhibitAll:
    'the recipe removes kube_node_labels{label_aegis_io_disable="true"}, a series a healthy node never ' +
    'has, so `offset 10m` finds nothing: the signal needs the label set before and removed now (an ' +
    'operator action: SimCluster.setLabel, see the scenario test below), not one series change',
  NodeFrequentDown:
    'the expression needs 4 Ready changes in 2 h; one recipe application is one outage (1 change, 2 ' +
    'with its clearing), so it only fires when a scenario flaps the node twice (scenario test below)',
};

function exprOf(entry: CatalogueEntry): string {
  return entry.expr !== '' ? entry.expr : (entry.ksmExpr ?? '');
}

function world(): SimWorld & { clock: ManualClock } {
  const clock = new ManualClock(START);
  return { ...createSimWorld({ nodes: 4, seed: 11, catalogue: CATALOGUE, clock }), clock };
}

async function evaluate(
  w: SimWorld,
  entry: CatalogueEntry,
  atMs: number,
): Promise<readonly InstantSample[]> {
  return w.metrics.query(exprOf(entry), atMs, signal);
}

function describeResult(result: readonly InstantSample[]): string {
  return JSON.stringify(result.map((s) => ({ ...s.labels, value: s.value })));
}

/** Injects the entry's fault on NODE and reports what its expression returned over the probes. */
async function injectAndProbe(entry: CatalogueEntry): Promise<{
  fired: boolean;
  problems: string[];
  w: SimWorld & { clock: ManualClock };
  id: string;
}> {
  const w = world();
  await w.clock.advanceTo(INJECT_AT);
  const id = w.faults.injectFault({
    condition: entry.name,
    node: NODE,
    atMs: INJECT_AT,
    persistence: 'survives-reboot',
  });
  const device = w.faults.get(id)?.device ?? '';
  const problems: string[] = [];
  let fired = false;
  for (const probe of PROBES_MS) {
    await w.clock.advanceTo(INJECT_AT + probe);
    const result = await evaluate(w, entry, w.clock.now());
    for (const s of result) {
      if (s.labels.node !== NODE)
        problems.push(
          `+${probe / MIN}m: fired for node ${s.labels.node ?? '(none)'}: ${describeResult([s])}`,
        );
      else if (entry.deviceLabel !== '' && s.labels[entry.deviceLabel] !== device) {
        problems.push(
          `+${probe / MIN}m: ${entry.deviceLabel}="${s.labels[entry.deviceLabel] ?? ''}", want "${device}"`,
        );
      } else fired = true;
    }
  }
  return { fired, problems, w, id };
}

describe('catalogue × simulator: a healthy fleet fires nothing', () => {
  const w = world();
  for (const entry of CATALOGUE) {
    it(entry.name, async () => {
      await w.clock.advanceTo(INJECT_AT);
      const result = await evaluate(w, entry, INJECT_AT);
      assert.equal(result.length, 0, `${exprOf(entry)}\n  returned ${describeResult(result)}`);
    });
  }
});

describe('catalogue × simulator: the recipe fires the expression for exactly that node and device', () => {
  it('only the entries with their own history tests are left out of this table', () => {
    assert.deepEqual(Object.keys(NEEDS_HISTORY).sort(), ['NodeFrequentDown', 'NodeInhibitAll']);
  });
  for (const entry of CATALOGUE.filter((e) => NEEDS_HISTORY[e.name] === undefined)) {
    it(entry.name, async () => {
      const { fired, problems, w, id } = await injectAndProbe(entry);
      assert.deepEqual(problems, [], `${entry.name}: ${exprOf(entry)}`);
      assert.ok(fired, `${entry.name}: never fired after its recipe: ${exprOf(entry)}`);
      if (entry.fault.node?.ready !== undefined) {
        assert.equal((await w.cluster.getNode(NODE, signal)).ready, entry.fault.node.ready);
      }
      if (entry.fault.node?.unschedulable !== undefined) {
        assert.equal(
          (await w.cluster.getNode(NODE, signal)).unschedulable,
          entry.fault.node.unschedulable,
        );
      }
      // Clearing: gauges return to baseline; counters keep their count, so only their windows end.
      w.faults.clearFault(id, w.clock.now());
      await w.clock.advance(QUIET_AFTER_MS);
      const after = await evaluate(w, entry, w.clock.now());
      const counterOnly = entry.fault.series.some((c) => c.add !== undefined);
      if (!counterOnly)
        assert.equal(after.length, 0, `still firing after clear: ${describeResult(after)}`);
    });
  }
});

describe('catalogue × simulator: conditions that need a scenario, not one recipe', () => {
  const entry = (name: string): CatalogueEntry => {
    const found = CATALOGUE.find((e) => e.name === name);
    assert.ok(found !== undefined, name);
    return found;
  };

  it('NodeInhibitAll fires after an operator removes aegis.io/disable', async () => {
    const w = world();
    await w.clock.advanceTo(INJECT_AT);
    w.cluster.setLabel(NODE, 'aegis.io/disable', 'true');
    await w.clock.advance(30 * MIN);
    w.cluster.setLabel(NODE, 'aegis.io/disable', null);
    await w.clock.advance(MIN);
    const result = await evaluate(w, entry('NodeInhibitAll'), w.clock.now());
    assert.deepEqual(
      result.map((s) => s.labels.node),
      [NODE],
    );
    await w.clock.advance(10 * MIN);
    assert.equal((await evaluate(w, entry('NodeInhibitAll'), w.clock.now())).length, 0);
  });

  it('NodeFrequentDown fires after two outages within 2 hours', async () => {
    const w = world();
    await w.clock.advanceTo(INJECT_AT);
    for (let i = 0; i < 2; i++) {
      const id = w.faults.injectFault({
        condition: 'NodeFrequentDown',
        node: NODE,
        atMs: w.clock.now(),
      });
      await w.clock.advance(5 * MIN);
      w.faults.clearFault(id, w.clock.now());
      await w.clock.advance(10 * MIN);
    }
    const result = await evaluate(w, entry('NodeFrequentDown'), w.clock.now());
    assert.deepEqual(
      result.map((s) => s.labels.node),
      [NODE],
    );
  });
});
