/**
 * The agent's checks: the one visible list. Together with the kernel log (agent-state.ts) they
 * cover every condition of the catalogue whose signal is `aegis-nodecheck` (a test asserts it).
 */
import type { Clock } from '../core/clock.js';
import type { Check } from './check.js';
import { createDnsCheck, type Resolve } from './dns-check.js';
import { resolveNvidiaSmi } from './driver-root.js';
import { createGpfsCheck } from './gpfs-check.js';
import { createGpuCheck } from './gpu-check.js';
import { createHcaPcieCheck } from './hca-pcie.js';
import { hostPath } from './host-fs.js';
import { linkLayerOf, readRdmaDevices } from './ib-sysfs.js';
import type { LogWindow } from './log-window.js';
import { createMmfsLogCheck } from './mmfs-log.js';
import { createModulesCheck } from './modules-check.js';
import type { NodePort } from './node-port.js';
import type { AgentOptions } from './options.js';
import { createRdmaCheck } from './rdma-check.js';
import { createRoceSiteCheck } from './roce-site-check.js';
import { createSmartCheck } from './smart-check.js';
import type { ToolRunner } from './tool-runner.js';

/** What the checks are built from. */
export interface CheckDeps {
  readonly options: AgentOptions;
  readonly runner: ToolRunner;
  readonly clock: Clock;
  readonly mmfs: LogWindow;
  readonly nodePort: NodePort | undefined;
  readonly resolve: Resolve;
}

/** Every check, configured. */
export function buildChecks(d: CheckDeps): Check[] {
  const o = d.options;
  const timeoutMs = o.toolTimeoutMs;
  return [
    createGpuCheck({
      runner: d.runner,
      tool: () => resolveNvidiaSmi(o.hostRoot, o.driverRoot),
      timeoutMs,
      intervalMs: o.intervals.gpuMs,
    }),
    createRdmaCheck({
      hostRoot: o.hostRoot,
      intervalMs: o.intervals.sysfsMs,
      ignorePorts: o.ignorePorts,
      expectLinkLayer: o.expectLinkLayer,
      ...(o.roce.expectedVfs === undefined ? {} : { expectedVfs: o.roce.expectedVfs }),
    }),
    createHcaPcieCheck({ hostRoot: o.hostRoot, intervalMs: o.intervals.sysfsMs }),
    createRoceSiteCheck({
      hostRoot: o.hostRoot,
      nodeName: o.nodeName,
      roce: o.roce,
      node: d.nodePort,
      roceUp: () => roceNetdevsUp(o.hostRoot),
      intervalMs: o.intervals.sysfsMs,
    }),
    createModulesCheck({ hostRoot: o.hostRoot, intervalMs: o.intervals.modulesMs }),
    createGpfsCheck({
      runner: d.runner,
      binDir: o.gpfsBinDir,
      required: o.gpfsRequired,
      timeoutMs,
      intervalMs: o.intervals.gpfsMs,
    }),
    createMmfsLogCheck({
      path: hostPath(o.hostRoot, o.mmfsLogPath),
      window: d.mmfs,
      clock: d.clock,
      intervalMs: o.intervals.mmfsLogMs,
    }),
    createSmartCheck({ runner: d.runner, timeoutMs, intervalMs: o.intervals.smartMs }),
    createDnsCheck({ names: o.dnsNames, intervalMs: o.intervals.dnsMs, resolve: d.resolve }),
  ];
}

async function roceNetdevsUp(hostRoot: string): Promise<number> {
  const devices = (await readRdmaDevices(hostRoot)) ?? [];
  return devices
    .filter((d) => linkLayerOf(d) === 'Ethernet')
    .reduce((n, d) => n + (d.netdevs ?? []).filter((x) => x.operstate === 'up').length, 0);
}
