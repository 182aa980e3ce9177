/**
 * Parsers of GPFS (IBM Storage Scale) command output in the `-Y` format: colon-separated rows,
 * `<command>:<section>:HEADER:...` naming the fields of the rows that follow; field values have
 * ':' and other characters %-encoded (mmclidecode).
 */

/** Rows of one section of a -Y document, as field → value maps. */
export function parseColonRows(text: string, section?: string): Record<string, string>[] {
  const headers = new Map<string, string[]>();
  const rows: Record<string, string>[] = [];
  for (const line of text.split('\n')) {
    const cols = line.trim().split(':');
    if (cols.length < 4 || (section !== undefined && cols[1] !== section)) continue;
    const key = `${cols[0] ?? ''}:${cols[1] ?? ''}`;
    if (cols[2] === 'HEADER') {
      headers.set(key, cols);
      continue;
    }
    const header = headers.get(key);
    if (header === undefined) continue;
    rows.push(Object.fromEntries(header.map((h, i) => [h, decodeField(cols[i] ?? '')])));
  }
  return rows;
}

function decodeField(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The GPFS daemon state of this node from `mmgetstate -Y` (active, arbitrating, down, ...). */
export function parseMmgetstate(text: string): string | undefined {
  const rows = parseColonRows(text);
  return rows[0]?.state;
}

/** One component state of `mmhealth node show -Y`. */
export interface HealthState {
  readonly component: string;
  readonly entity: string;
  readonly status: string;
}

/** The State rows of `mmhealth node show -Y`. */
export function parseMmhealth(text: string): HealthState[] {
  return parseColonRows(text, 'State').map((r) => ({
    component: r.component ?? '',
    entity: r.entityname ?? '',
    status: r.status ?? '',
  }));
}
