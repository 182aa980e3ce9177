/**
 * Kernel log patterns: which rule a kernel message matches and the device it names. The rule names
 * are the `rule` label of aegis_nodecheck_log_matches{source="kernel"} the catalogue reads (mce,
 * panic, hung_task, soft_lockup, ice_tx_timeout) plus `xid` (NVRM Xid lines, the node-condition
 * fast path) and `mlx5_error` (ConnectX driver failures). Patterns were written against real lines
 * (test/fixtures/host/agent/kernel/lines.tsv, sources in SOURCE.md).
 */

/** Rules the agent counts. */
export const KERNEL_RULES = [
  'xid',
  'panic',
  'soft_lockup',
  'hung_task',
  'mce',
  'ice_tx_timeout',
  'mlx5_error',
] as const;
/** One kernel rule. */
export type KernelRule = (typeof KERNEL_RULES)[number];

/** A message that matched a rule. */
export interface KernelMatch {
  readonly rule: KernelRule;
  /** GPU PCI address (xid), interface (ice_tx_timeout), HCA PCI address (mlx5_error). */
  readonly device?: string;
  readonly xid?: number;
}

const PCI = '([0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\\.[0-9a-fA-F])?)';
const XID = new RegExp(`NVRM: Xid \\((?:PCI:)?${PCI}\\): (\\d+),`);
const FALLEN_OFF = new RegExp(`NVRM: The NVIDIA GPU ${PCI}[\\s\\S]*fallen off the bus`);
const TX_TIMEOUT_OLD = /NETDEV WATCHDOG: (\S+) \([^)]*\): transmit queue \d+ timed out/;
const TX_TIMEOUT_NEW = /(?:^|\s)([^\s:]+): NETDEV WATCHDOG: CPU: \d+: transmit queue \d+ timed out/;
const MLX5 = new RegExp(`^mlx5_core(?: ${PCI})?:? (.*)$`);
const MLX5_FAILURE = /\b(failed|error|fatal|compromised|syndrome)\b/i;
const MLX5_PROBE = new RegExp(`probe of ${PCI} failed`);

/** The rule a kernel message matches, or undefined. */
export function classifyKernelMessage(message: string): KernelMatch | undefined {
  const xid = XID.exec(message);
  if (xid) return { rule: 'xid', device: pciId(xid[1] ?? ''), xid: Number(xid[2]) };
  const fallen = FALLEN_OFF.exec(message);
  if (fallen) return { rule: 'xid', device: pciId(fallen[1] ?? ''), xid: 79 };
  if (message.includes('Kernel panic - not syncing')) return { rule: 'panic' };
  if (/BUG: soft lockup - CPU#\d+ stuck for/.test(message)) return { rule: 'soft_lockup' };
  if (/Watchdog detected hard LOCKUP on cpu/.test(message)) return { rule: 'soft_lockup' };
  if (/\btask \S.* blocked for more than \d+ seconds/.test(message)) return { rule: 'hung_task' };
  if (
    /\bmce: \[Hardware Error\]/i.test(message) ||
    message.includes('Machine check events logged')
  ) {
    return { rule: 'mce' };
  }
  const tx = TX_TIMEOUT_OLD.exec(message) ?? TX_TIMEOUT_NEW.exec(message);
  if (tx) return { rule: 'ice_tx_timeout', device: tx[1] ?? '' };
  return classifyMlx5(message);
}

function classifyMlx5(message: string): KernelMatch | undefined {
  const m = MLX5.exec(message);
  if (!m || !MLX5_FAILURE.test(m[2] ?? '')) return undefined;
  const pci = m[1] ?? MLX5_PROBE.exec(message)?.[1];
  return pci === undefined ? { rule: 'mlx5_error' } : { rule: 'mlx5_error', device: pciId(pci) };
}

/** PCI address in the kernel's lower-case form, e.g. 0000:3b:00 or 0000:3b:00.0. */
export function pciId(text: string): string {
  return text.toLowerCase();
}

const PREFIXES = [
  /^<\d+>/, // pstore / printk level
  /^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ kernel: /, // journalctl -o short, syslog
  /^kernel: /,
  /^\[[^\]]*\d\]\s?/, // [ 123.456789] or [Tue Feb 23 16:24:18 2025]
  /^\[\s*[TC]\d+\]\s?/, // [ T1946] caller id
];

/** Strips the dmesg / syslog / pstore decorations in front of a kernel message. */
export function stripLogPrefix(line: string): string {
  let text = line;
  for (;;) {
    const before = text;
    for (const p of PREFIXES) text = text.replace(p, '');
    if (text === before) return text;
  }
}
