/**
 * /dev/kmsg records (Documentation/ABI/testing/dev-kmsg): one per line,
 * `<facility/priority>,<sequence>,<microseconds since boot>,<flags>[,...];<message>`, non-printable
 * bytes of the message escaped as `\xNN` (a multi-line message becomes one record with `\x0a`),
 * followed by optional continuation lines starting with a space (`KEY=value` device info).
 */

/** One kernel log record. */
export interface KmsgRecord {
  readonly priority: number;
  readonly seq: number;
  /** Microseconds since boot. */
  readonly usec: number;
  readonly message: string;
}

/** Parses one record line; undefined for continuation lines and anything malformed. */
export function parseKmsgRecord(line: string): KmsgRecord | undefined {
  if (line.startsWith(' ')) return undefined;
  const semi = line.indexOf(';');
  if (semi < 0) return undefined;
  const [pri, seq, usec] = line.slice(0, semi).split(',');
  const priority = Number(pri);
  const seqNo = Number(seq);
  const micros = Number(usec);
  if (![priority, seqNo, micros].every(Number.isFinite)) return undefined;
  return {
    priority: priority & 7,
    seq: seqNo,
    usec: micros,
    message: unescapeKmsg(line.slice(semi + 1)),
  };
}

/** Undoes the kernel's `\xNN` escaping. */
export function unescapeKmsg(text: string): string {
  return text.includes('\\x')
    ? text.replace(/\\x([0-9a-fA-F]{2})/g, (_, hex: string) =>
        String.fromCharCode(parseInt(hex, 16)),
      )
    : text;
}
