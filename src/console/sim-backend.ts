/**
 * The console over the simulated fleet (`aegis demo`, the browser tests, the benchmark): nodes as
 * the engine last saw them (reading them never calls into the simulated API server, so a
 * scenario's injected API failures and their order are not disturbed), operator writes through
 * the simulated API server like any client's, and the aegis-control ConfigMap kept here and handed
 * to the simulator.
 */
import type { Config } from '../config/schema.js';
import { ErrorCode, HealError } from '../core/errors.js';
import type { NodeInfo } from '../core/types.js';
import type { NodeClient } from '../k8s/cluster.js';
import type { Leader, Sourced } from '../kubectl/model.js';
import { defaultPriorityTable, type PriorityTable } from '../priority/priority-table.js';
import type { ConsoleBackend } from './server.js';

/** What the simulated backend needs. */
export interface SimBackendOptions {
  /** The nodes now, without a request (the engine's last view, or the simulator's own). */
  readonly nodes: () => readonly NodeInfo[] | Promise<readonly NodeInfo[]>;
  /** Where operator writes go. */
  readonly writer: Pick<NodeClient, 'patchNodeAnnotations'>;
  /** The simulator's aegis-control (SimCluster.setControl). */
  readonly setControl: (data: Readonly<Record<string, string>> | null) => void;
  readonly config: Config;
  /** The lease holder, if any. */
  readonly leaseHolder?: () => string | undefined;
  readonly priority?: PriorityTable;
  readonly where?: { context: string; server: string };
}

/** A console backend over a simulation. */
export function simBackend(o: SimBackendOptions): ConsoleBackend {
  let control: { data: Record<string, string>; rv: number } = { data: {}, rv: 1 };
  const priority: Sourced<PriorityTable> = {
    value: o.priority ?? defaultPriorityTable(),
    source: 'the catalogue (simulation)',
    fromCluster: true,
  };
  const find = async (name: string): Promise<NodeInfo> => {
    const n = (await o.nodes()).find((x) => x.name === name);
    if (n === undefined) throw new HealError(ErrorCode.K8sNotFound, `node ${name} not found`);
    return n;
  };
  return {
    namespace: o.config.kubernetes.namespace,
    where: o.where ?? { context: 'simulation', server: 'simulated API server' },
    listNodes: async () =>
      [...(await o.nodes())].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    getNode: find,
    patchNodeAnnotations: (name, rv, annotations, signal) =>
      o.writer.patchNodeAnnotations(name, annotations, rv, signal),
    readControl: () =>
      Promise.resolve({ data: { ...control.data }, resourceVersion: String(control.rv) }),
    writeControl(data, rv) {
      if (rv !== String(control.rv))
        return Promise.reject(
          new HealError(ErrorCode.K8sConflict, 'ConfigMap aegis-control changed since it was read'),
        );
      control = { data: { ...data }, rv: control.rv + 1 };
      o.setControl(control.data);
      return Promise.resolve();
    },
    leader(): Promise<Leader> {
      const holder = o.leaseHolder?.();
      return Promise.resolve(
        holder === undefined
          ? { unknown: 'the simulation runs one controller (no lease)' }
          : { holder, renewedAgoMs: 0, expired: false },
      );
    },
    config: () => o.config,
    priority: () => priority,
  };
}
