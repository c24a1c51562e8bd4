/**
 * The CLI's messages on stderr: plain lines on a terminal, JSON lines for machines, and sd-daemon
 * priority prefixes under systemd so journald keeps each line's level.
 */
export type LogFormat = 'human' | 'json';
export const logFormats: readonly LogFormat[] = ['human', 'json'];
export type LogLevel = 'error' | 'warning' | 'info' | 'debug';

/** sd-daemon(3) priorities: what journald reads from a `<N>` line prefix. */
const priorities: Record<LogLevel, number> = { error: 3, warning: 4, info: 6, debug: 7 };

export interface LogRecord {
  readonly level: LogLevel;
  readonly message: string;
  readonly domain?: string;
}

export interface LogOptions {
  readonly format: LogFormat;
  /** Under systemd (stderr connected to the journal): human lines get priority prefixes. */
  readonly journal: boolean;
}

export interface Logger {
  error(message: string, domain?: string): void;
  warn(message: string, domain?: string): void;
  info(message: string, domain?: string): void;
  debug(message: string, domain?: string): void;
}

/** systemd sets $JOURNAL_STREAM when stderr goes to the journal, $INVOCATION_ID for every unit. */
export function underSystemd(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.JOURNAL_STREAM) || Boolean(env.INVOCATION_ID);
}

/** The line (without newline) one record becomes. A multi-line message keeps its level on each line. */
export function formatRecord(record: LogRecord, options: LogOptions, time: Date): string {
  if (options.format === 'json')
    return JSON.stringify({
      time: time.toISOString(),
      level: record.level,
      ...(record.domain === undefined ? {} : { domain: record.domain }),
      message: record.message,
    });
  const warning = record.level === 'warning' ? 'warning: ' : '';
  const text =
    record.domain !== undefined
      ? `${record.domain}: ${warning}${record.message}`
      : record.level === 'error' || record.level === 'warning'
        ? `unifi-backup: ${warning}${record.message}`
        : record.message;
  if (!options.journal) return text;
  const prefix = `<${priorities[record.level]}>`;
  return text
    .split('\n')
    .map((line) => prefix + line)
    .join('\n');
}

export function createLogger(
  options: LogOptions,
  write: (text: string) => void = (text) => process.stderr.write(text),
  now: () => Date = () => new Date(),
): Logger {
  const emit = (level: LogLevel) => (message: string, domain?: string) => {
    const record = domain === undefined ? { level, message } : { level, message, domain };
    write(`${formatRecord(record, options, now())}\n`);
  };
  return { error: emit('error'), warn: emit('warning'), info: emit('info'), debug: emit('debug') };
}

export function logOptions(format: LogFormat | undefined, env: NodeJS.ProcessEnv = process.env): LogOptions {
  return { format: format ?? 'human', journal: underSystemd(env) };
}

let current: Logger = createLogger(logOptions(undefined));

/** Set once the command line is parsed (`--log-format`). */
export function configureLog(format: LogFormat | undefined, env: NodeJS.ProcessEnv = process.env): void {
  current = createLogger(logOptions(format, env));
}

/** The process-wide logger, as configured by the command line. */
export const log: Logger = {
  error: (message, domain) => {
    current.error(message, domain);
  },
  warn: (message, domain) => {
    current.warn(message, domain);
  },
  info: (message, domain) => {
    current.info(message, domain);
  },
  debug: (message, domain) => {
    current.debug(message, domain);
  },
};
