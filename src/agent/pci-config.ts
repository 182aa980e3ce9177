/**
 * The PCI configuration space of a function (sysfs `/sys/bus/pci/devices/<bdf>/config`), for what
 * sysfs has no attribute for: the Max Read Request Size, bits 14:12 of the Device Control register
 * of the PCI Express capability. The capability is found by walking the capability list from the
 * pointer at 0x34, as lspci does. Unprivileged readers get only the first 64 bytes (the standard
 * header): the capability list lies beyond, so the answer is "cannot read", never a value.
 */

/** Offsets and ids of the PCI Local Bus and PCI Express Base specifications. */
const STATUS = 0x06;
const STATUS_CAP_LIST = 0x10;
const HEADER_TYPE = 0x0e;
const CAPABILITY_LIST = 0x34;
const CAP_ID_EXP = 0x10;
const EXP_DEVCTL = 0x08;
/** Bytes an unprivileged reader of the sysfs `config` file gets. */
const STANDARD_HEADER = 64;
/** The standard capability list lives in the first 256 bytes; 48 capabilities at most fit. */
const LEGACY_SPACE = 256;
const MAX_CAPS = 48;

/** Max Read Request Size, or why it cannot be read from this dump. */
export type MaxReadRequest =
  | { readonly ok: true; readonly bytes: number; readonly capOffset: number }
  | { readonly ok: false; readonly reason: string };

/** Max Read Request Size in bytes from a configuration space dump (the sysfs `config` bytes). */
export function maxReadRequest(config: Uint8Array): MaxReadRequest {
  if (config.length <= STANDARD_HEADER) {
    return {
      ok: false,
      reason:
        `${String(config.length)} bytes of configuration space: the PCI Express capability lies ` +
        'beyond the 64-byte header an unprivileged reader gets (run the agent as root)',
    };
  }
  const word = (at: number): number => (config[at] ?? 0) | ((config[at + 1] ?? 0) << 8);
  if (word(0) === 0xffff) return { ok: false, reason: 'vendor id 0xffff: the function is gone' };
  if ((word(STATUS) & STATUS_CAP_LIST) === 0) {
    return { ok: false, reason: 'no capability list (Status bit 4 clear)' };
  }
  const headerType = (config[HEADER_TYPE] ?? 0) & 0x7f;
  if (headerType > 1) {
    return {
      ok: false,
      reason: `header type ${String(headerType)} has no capability pointer at 0x34`,
    };
  }
  const end = Math.min(config.length, LEGACY_SPACE);
  let at = (config[CAPABILITY_LIST] ?? 0) & 0xfc;
  for (let seen = 0; at !== 0; seen++) {
    if (seen >= MAX_CAPS) return { ok: false, reason: 'capability list loops' };
    if (at < STANDARD_HEADER || at + 2 > end) {
      return { ok: false, reason: `capability pointer 0x${hex(at)} outside 0x40..0x${hex(end)}` };
    }
    if (config[at] === CAP_ID_EXP) {
      if (at + EXP_DEVCTL + 2 > end) {
        return { ok: false, reason: `PCI Express capability at 0x${hex(at)} is cut short` };
      }
      const code = (word(at + EXP_DEVCTL) >> 12) & 0x7;
      // 110b and 111b are reserved.
      if (code > 5)
        return { ok: false, reason: `reserved Max_Read_Request_Size code ${String(code)}` };
      return { ok: true, bytes: 128 << code, capOffset: at };
    }
    at = (config[at + 1] ?? 0) & 0xfc;
  }
  return { ok: false, reason: 'no PCI Express capability (a conventional PCI function)' };
}

function hex(n: number): string {
  return n.toString(16);
}

/**
 * Bytes of an `lspci -x`/`-xxx`/`-xxxx` hex dump (`00: b3 15 ...` lines of one function), for
 * tests and for configuration spaces captured with lspci.
 */
export function parseLspciHex(text: string): Uint8Array {
  const bytes: number[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(?:>\s*)*([0-9a-f]{2,3}):((?: [0-9a-f]{2}){16})\s*$/i.exec(line);
    if (!m) continue;
    const offset = Number.parseInt(m[1] ?? '', 16);
    if (offset !== bytes.length) {
      throw new Error(
        `lspci hex dump: line at 0x${hex(offset)} follows 0x${hex(bytes.length)} bytes`,
      );
    }
    for (const b of (m[2] ?? '').trim().split(' ')) bytes.push(Number.parseInt(b, 16));
  }
  return Uint8Array.from(bytes);
}
