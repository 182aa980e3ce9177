/**
 * Where the NVIDIA tools live on the host. The GPU Operator's driver container exposes its root
 * filesystem at /run/nvidia/driver (tools run chrooted into it, as the operator's validator does);
 * a driver installed on the host puts nvidia-smi in the host's PATH.
 */
import { exists, hostPath } from './host-fs.js';
import type { ToolSpec } from './tool-runner.js';

/** Driver root of the GPU Operator. */
export const OPERATOR_DRIVER_ROOT = '/run/nvidia/driver';

/** nvidia-smi's ToolSpec for the configured driver root ("auto" probes the operator's root). */
export async function resolveNvidiaSmi(hostRoot: string, driverRoot: string): Promise<ToolSpec> {
  if (driverRoot !== 'auto') return { command: 'nvidia-smi', root: driverRoot };
  const operator = await exists(hostPath(hostRoot, `${OPERATOR_DRIVER_ROOT}/usr/bin/nvidia-smi`));
  return { command: 'nvidia-smi', root: operator ? OPERATOR_DRIVER_ROOT : '/' };
}
