import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CATALOGUE } from '../catalogue/index.js';
import type { CatalogueEntry } from '../catalogue/types.js';
import { compilePromQL, createMemorySeriesSource, type Series } from '../promql/index.js';
import { answerGroup, planSharedSelections, soleMetric } from './shared-selection.js';

const XID = 'DCGM_FI_DEV_XID_ERRORS';
const AT = 1_000_000;
const rule = (name: string, expr: string): CatalogueEntry => ({
  ...(CATALOGUE.find((e) => e.name === 'Xid79GPULost') as CatalogueEntry),
  name,
  expr,
});
const canonical = (samples: readonly { labels: object; value: number }[]): string[] =>
  samples.map((s) => JSON.stringify([Object.entries(s.labels).sort(), String(s.value)])).sort();

describe('shared selections', () => {
  it('the catalogue shares one query among exactly the rules that read only the XID metric', () => {
    const groups = planSharedSelections(CATALOGUE.filter((e) => e.expr !== ''));
    assert.equal(groups.length, 1);
    const g = groups[0];
    assert.ok(g !== undefined);
    assert.equal(g.query, `${XID} != 0`);
    const readers = CATALOGUE.filter(
      (e) => e.expr !== '' && soleMetric(compilePromQL(e.expr).expr) === XID,
    ).map((e) => e.name);
    assert.deepEqual(
      g.rules.map((r) => r.entry.name),
      readers,
    );
    assert.ok(readers.length >= 12, readers.join(', '));
    assert.ok(readers.includes('XIDUnclassifiedErr') && readers.includes('XIDApplicationErr'));
  });

  it('keeps its own query for a rule the filter could change, or that reads more than the metric', () => {
    const candidates = [
      rule('Zero', `max by (node) (${XID} == bool 0) > 0`),
      rule('Below', `max by (node, gpu) (${XID}) < 5`),
      rule('Range', `max by (node) (increase(${XID}[5m])) > 0`),
      rule('Offset', `max by (node) (${XID} offset 5m == 79)`),
      rule('Call', `absent(${XID})`),
      rule('Other', `max by (node) (${XID} == 79) and on(node) kube_node_info`),
      rule('Topk', `topk(1, ${XID} == 79)`),
      rule('Ok1', `max by (node, gpu) (${XID} == 79)`),
      rule('Ok2', `max by (node, gpu) (${XID} > 100)`),
    ];
    const groups = planSharedSelections(candidates);
    assert.deepEqual(
      groups[0]?.rules.map((r) => r.entry.name),
      ['Ok1', 'Ok2'],
    );
    assert.deepEqual(planSharedSelections(candidates.slice(0, 7)), [], 'nothing to share');
  });

  it('answers every shared rule exactly as the rule over the whole vector (random fleets)', () => {
    const [group] = planSharedSelections(CATALOGUE.filter((e) => e.expr !== ''));
    assert.ok(group !== undefined);
    const codes = [0, 0, 0, 13, 31, 43, 45, 48, 63, 64, 74, 79, 92, 94, 95, 119, 120, 1, 7, 1e6];
    const value = fc.oneof(fc.constantFrom(...codes), fc.integer({ min: -5, max: 200 }));
    const series = fc.array(
      fc.record({
        node: fc.constantFrom('n1', 'n2', 'n3'),
        gpu: fc.constantFrom('0', '1', '7'),
        instance: fc.constantFrom('a', 'b'),
        value,
      }),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(series, (list) => {
        const full: Series[] = list.map((s) => ({
          labels: {
            __name__: XID,
            node: s.node,
            Hostname: s.node,
            gpu: s.gpu,
            pci_bus_id: `0000:${s.gpu}`,
            instance: s.instance,
          },
          samples: [{ t: AT, v: s.value }],
        }));
        const source = createMemorySeriesSource(full);
        const fetched = compilePromQL(group.query).evaluate(source, AT);
        const shared = answerGroup(group, fetched, AT);
        for (const m of group.rules) {
          const direct = m.rule.evaluate(source, AT);
          assert.deepEqual(
            canonical(shared.get(m.entry.name) ?? []),
            canonical(direct),
            m.entry.name,
          );
        }
      }),
      { numRuns: 300 },
    );
  });
});
