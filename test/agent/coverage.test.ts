/**
 * The agent against the catalogue: every condition whose signal is `aegis-nodecheck` has a
 * producer in the agent (or is on the explicit list of conditions the agent cannot produce from
 * the host), every log rule and kernel module the catalogue's PromQL reads is one the agent emits,
 * and the agent's aegis_nodecheck_* series use the catalogue's metric names and labels.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KERNEL_LOG_CHECKS } from '../../src/agent/agent-state.js';
import { buildChecks } from '../../src/agent/checks.js';
import { KERNEL_RULES } from '../../src/agent/kernel-rules.js';
import { LogWindow } from '../../src/agent/log-window.js';
import { IB_MODULES, NVIDIA_MODULES } from '../../src/agent/modules-check.js';
import { DEFAULT_AGENT_OPTIONS } from '../../src/agent/options.js';
import { NOT_PRODUCED } from '../../src/agent/roce-site-check.js';
import { CATALOGUE, METRICS } from '../../src/catalogue/index.js';
import { systemClock } from '../../src/core/clock.js';
import { createAgentMetrics } from '../../src/agent/agent-metrics.js';
import { MISSING, fakeRunner } from './fake-runner.js';
import { parseExposition } from './scrape.js';

const nodecheck = CATALOGUE.filter((e) => e.signal === 'aegis-nodecheck');
const checks = buildChecks({
  options: { ...DEFAULT_AGENT_OPTIONS, nodeName: 'n' },
  runner: fakeRunner(() => MISSING),
  clock: systemClock,
  mmfs: new LogWindow(1),
  nodePort: undefined,
  resolve: () => Promise.resolve([]),
});
const produced = new Set([
  ...checks.flatMap((c) => c.covers),
  ...Object.keys(KERNEL_LOG_CHECKS),
  'KernelPanic',
]);

describe('agent ↔ catalogue', () => {
  it('every aegis-nodecheck condition is produced by the agent, or listed as not producible', () => {
    // NodeCheckDown reads aegis_nodecheck_up itself: the agent's presence is what it watches.
    const wanted = nodecheck.map((e) => e.name).filter((n) => n !== 'NodeCheckDown');
    assert.ok(wanted.length >= 38, `${wanted.length} conditions`);
    assert.deepEqual(
      wanted.filter((n) => !produced.has(n)),
      [],
    );
    const notProduced: readonly string[] = NOT_PRODUCED;
    assert.deepEqual(
      [...produced].filter((n) => !wanted.includes(n)),
      [],
      'the agent reports availability only for catalogue conditions',
    );
    assert.ok(notProduced.every((n) => wanted.includes(n)));
  });

  it('every log rule the catalogue reads is a rule the agent counts', () => {
    const rules = nodecheck.flatMap((e) =>
      [...e.expr.matchAll(/aegis_nodecheck_log_matches\{source="(\w+)",rule="(\w+)"\}/g)].map(
        (m) => `${m[1] ?? ''}/${m[2] ?? ''}`,
      ),
    );
    const agent = [
      ...KERNEL_RULES.map((r) => `kernel/${r}`),
      'mmfs/expelled',
      'mmfs/quorum_connection_down',
    ];
    assert.deepEqual(
      rules.filter((r) => !agent.includes(r)),
      [],
    );
    assert.ok(rules.length >= 7);
  });

  it('every kernel module the catalogue reads is one the agent reports', () => {
    const modules = nodecheck.flatMap((e) =>
      [...e.expr.matchAll(/module=~?"([^"]+)"/g)].flatMap((m) => (m[1] ?? '').split('|')),
    );
    const agent = [...IB_MODULES, ...NVIDIA_MODULES, 'nvidia_peermem'];
    assert.deepEqual(
      modules.filter((m) => !agent.includes(m)),
      [],
    );
  });

  it('the agent exports the catalogue metric names with the catalogue labels', async () => {
    const spec: Record<string, string[]> = Object.fromEntries(
      METRICS.filter((m) => m.signal === 'aegis-nodecheck').map((m) => [
        m.name,
        [...m.labels].sort(),
      ]),
    );
    const allowed = new Map(Object.entries(spec));
    assert.deepEqual(spec, {
      aegis_nodecheck_up: [],
      aegis_nodecheck_problem: ['check', 'device'],
      aegis_nodecheck_log_matches: ['device', 'rule', 'source'],
      aegis_nodecheck_kernel_module_loaded: ['module'],
      aegis_nodecheck_kernel_module_configured: ['module'],
      aegis_nodecheck_hca_pcie_link_speed_gts: ['device', 'pci_bdf'],
      aegis_nodecheck_hca_pcie_link_max_speed_gts: ['device', 'pci_bdf'],
      aegis_nodecheck_hca_pcie_link_width: ['device', 'pci_bdf'],
      aegis_nodecheck_hca_pcie_link_max_width: ['device', 'pci_bdf'],
      aegis_nodecheck_hca_pcie_max_read_request_bytes: ['device', 'pci_bdf'],
    });
    const metrics = createAgentMetrics(
      () => ({
        problems: [
          { check: 'GpuHung', value: 0 },
          { check: 'DiskSmartFailing', device: 'sdc', value: 1 },
        ],
        available: { GpuHung: true },
        logs: [
          { key: { source: 'kernel', rule: 'mce' }, count: 0 },
          { key: { source: 'kernel', rule: 'ice_tx_timeout', device: 'eth0' }, count: 1 },
        ],
        modulesLoaded: { mlx5_core: 1 },
        modulesConfigured: { nvidia_peermem: 0 },
        hcaPcie: [
          {
            device: 'mlx5_0',
            pciBdf: '0000:1a:00.0',
            speedGts: 16,
            maxSpeedGts: 32,
            width: 16,
            maxWidth: 16,
            maxReadRequestBytes: 512,
            missing: {},
          },
        ],
        durations: {},
      }),
      false,
    );
    const samples = parseExposition(await metrics.render()).filter((x) => allowed.has(x.name));
    assert.deepEqual([...new Set(samples.map((x) => x.name))].sort(), [...allowed.keys()].sort());
    for (const x of samples) {
      for (const label of Object.keys(x.labels))
        assert.ok(allowed.get(x.name)?.includes(label), `${x.name}{${label}}`);
    }
  });
});
