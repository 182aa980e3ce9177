/** Structured logger: a constant message, variable data in fields. */
export interface Logger {
  info(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  error(msg: string, fields?: Readonly<Record<string, unknown>>): void;
}

/** JSON lines on stderr (stdout stays free for command output). */
export function createJsonLogger(
  opts: { level?: 'info' | 'warn' | 'error'; write?: (line: string) => void } = {},
): Logger {
  const order = { info: 0, warn: 1, error: 2 } as const;
  const min = order[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const emit = (
    level: keyof typeof order,
    msg: string,
    fields?: Readonly<Record<string, unknown>>,
  ): void => {
    if (order[level] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }));
  };
  return {
    info: (m, f) => {
      emit('info', m, f);
    },
    warn: (m, f) => {
      emit('warn', m, f);
    },
    error: (m, f) => {
      emit('error', m, f);
    },
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** A logger that keeps lines in memory (tests). */
export function createMemoryLogger(): Logger & {
  lines: { level: string; msg: string; fields?: Readonly<Record<string, unknown>> }[];
} {
  const lines: { level: string; msg: string; fields?: Readonly<Record<string, unknown>> }[] = [];
  const push = (level: string) => (msg: string, fields?: Readonly<Record<string, unknown>>) => {
    lines.push(fields === undefined ? { level, msg } : { level, msg, fields });
  };
  return { lines, info: push('info'), warn: push('warn'), error: push('error') };
}
