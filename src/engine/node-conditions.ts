/**
 * Observations from Node status conditions set by node-side detectors: node-problem-detector
 * (KernelDeadlock, ReadonlyFilesystem, FrequentKubeletRestart, …) and the Aegis agent
 * (`aegis.io/GpuXid`, `aegis.io/GpuHung`, …). The controller already watches the nodes, so these
 * reach the condition tracker in the next cycle, without waiting for a scrape (the fast path).
 *
 * Pure: nodes + mapping + time in, observations out; no I/O and no clock reads.
 *
 * How the controller uses it, each cycle, beside the inspection:
 *
 *   const reading = readNodeConditions(nodes, sources, findCondition, now);
 *   tracker.update([...inspection.observations, ...reading.observations], now,
 *     (node, condition) => !isFresh(reading, node, condition) && inspectorStale(node, condition));
 *
 * with `sources = nodeConditionSources(config.nodeProblemDetector)` built once at start-up.
 */
import { AGENT_NODE_CONDITIONS } from '../agent/node-conditions.js';
import type { CatalogueEntry, Signal } from '../catalogue/types.js';
import type { NodeConditionInfo, NodeInfo } from '../core/types.js';
import type { Observation } from './condition-tracker.js';

/** One Node condition type (and optionally reason) → the catalogue condition it stands for. */
export interface NodeConditionMapping {
  readonly type: string;
  /** Only while True with this reason; absent: any reason. */
  readonly reason?: string | undefined;
  readonly condition: string;
}

/** One producer of Node conditions and how to read them. */
export interface NodeConditionSource {
  /** For messages: `node-problem-detector`, `aegis agent`. */
  readonly name: string;
  /**
   * The catalogue signal of the same producer. Where a fresh Node condition of this source is
   * present, the conditions of this signal it maps to are not stale on that node, True or False:
   * the producer vouches for them even when its metrics are not scraped.
   */
  readonly signal: Signal;
  readonly mappings: readonly NodeConditionMapping[];
  /**
   * A condition whose heartbeat is older than this is not trusted (the producer stopped writing):
   * it gives no observation and vouches for nothing. 0: heartbeats are not checked.
   */
  readonly staleAfterMs: number;
}

/** What the Node conditions say this cycle. */
export interface NodeConditionReading {
  /** One per (node, catalogue condition) a True Node condition maps to, in the tracker's shape. */
  readonly observations: Observation[];
  /** Per node, the conditions a fresh Node condition reports on (not stale there). */
  readonly fresh: ReadonlyMap<string, ReadonlySet<string>>;
}

/** The agent writes its conditions every 10 minutes at least (`conditionsResyncMs`): 3 missed. */
export const AGENT_STALE_AFTER_MS = 30 * 60_000;

/** The Aegis agent's conditions (src/agent/node-conditions.ts) as a source. */
export const AGENT_SOURCE: NodeConditionSource = {
  name: 'aegis agent',
  signal: 'aegis-nodecheck',
  mappings: AGENT_NODE_CONDITIONS,
  staleAfterMs: AGENT_STALE_AFTER_MS,
};

/** The sources of a config: node-problem-detector's mapping (config `nodeProblemDetector`), the agent's. */
export function nodeConditionSources(npd: {
  readonly problems: readonly NodeConditionMapping[];
  readonly staleAfterMs: number;
}): NodeConditionSource[] {
  return [
    {
      name: 'node-problem-detector',
      signal: 'node-problem-detector',
      mappings: npd.problems,
      staleAfterMs: npd.staleAfterMs,
    },
    AGENT_SOURCE,
  ];
}

/** Longest message kept in an observation. */
const MAX_MESSAGE = 200;

/**
 * Reads the detectors' conditions of `nodes` at `nowMs`. A condition whose target the catalogue
 * does not know (`find` returns undefined) is skipped: the mapping is checked at start-up.
 */
export function readNodeConditions(
  nodes: readonly NodeInfo[],
  sources: readonly NodeConditionSource[],
  find: (condition: string) => CatalogueEntry | undefined,
  nowMs: number,
): NodeConditionReading {
  const byType = new Map<string, { source: NodeConditionSource; row: NodeConditionMapping }[]>();
  for (const source of sources) {
    for (const row of source.mappings) {
      let list = byType.get(row.type);
      if (list === undefined) byType.set(row.type, (list = []));
      list.push({ source, row });
    }
  }
  const observations: Observation[] = [];
  const fresh = new Map<string, Set<string>>();
  for (const node of nodes) {
    if (node.conditions === undefined) continue;
    let seen: Set<string> | undefined;
    for (const c of node.conditions) {
      const rows = byType.get(c.type);
      if (rows === undefined || c.status === 'Unknown') continue;
      for (const { source, row } of rows) {
        if (isStale(c, source, nowMs)) continue;
        const entry = find(row.condition);
        if (entry === undefined) continue;
        if (entry.signal === source.signal) {
          let set = fresh.get(node.name);
          if (set === undefined) fresh.set(node.name, (set = new Set()));
          set.add(entry.name);
        }
        if (c.status !== 'True' || (row.reason !== undefined && row.reason !== c.reason)) continue;
        seen ??= new Set();
        if (seen.has(entry.name)) continue;
        seen.add(entry.name);
        observations.push({
          node: node.name,
          domain: entry.domain,
          condition: entry.name,
          id: '',
          pciBdf: '',
          msg: messageOf(c, source),
          value: 1,
        });
      }
    }
  }
  return { observations, fresh };
}

/** True when a fresh Node condition reports on `condition` for `node` (see NodeConditionReading). */
export function isFresh(reading: NodeConditionReading, node: string, condition: string): boolean {
  return reading.fresh.get(node)?.has(condition) === true;
}

function isStale(c: NodeConditionInfo, source: NodeConditionSource, nowMs: number): boolean {
  return (
    source.staleAfterMs > 0 &&
    c.heartbeatMs !== undefined &&
    nowMs - c.heartbeatMs > source.staleAfterMs
  );
}

function messageOf(c: NodeConditionInfo, source: NodeConditionSource): string {
  const head = `${c.type}=True reason=${c.reason === '' ? '-' : c.reason} (${source.name})`;
  const text = c.message === undefined || c.message === '' ? head : `${head}: ${c.message}`;
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE - 1)}…` : text;
}
