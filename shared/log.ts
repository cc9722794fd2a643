/**
 * Structured JSON logs in the shape Cloud Logging reads: one line per entry with
 * `severity`, `message` and fields. Set SPINE_LOG_LEVEL to DEBUG|INFO|WARNING|ERROR|SILENT.
 */
export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';

const severityRank: Record<Severity | 'SILENT', number> = {
  DEBUG: 10,
  INFO: 20,
  WARNING: 30,
  ERROR: 40,
  SILENT: 100,
};

function threshold(): number {
  const level = (process.env.SPINE_LOG_LEVEL ?? 'INFO').toUpperCase();
  return severityRank[level as Severity] ?? severityRank.INFO;
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/** Where a logger's lines go; by default stdout, and stderr for warnings and errors. */
export type LogSink = (line: string, severity: Severity) => void;

const standardStreams: LogSink = (line, severity) =>
  (severity === 'ERROR' || severity === 'WARNING' ? process.stderr : process.stdout).write(line + '\n');

export function createLogger(
  component: string,
  base: Record<string, unknown> = {},
  sink: LogSink = standardStreams,
): Logger {
  const write = (severity: Severity, message: string, fields?: Record<string, unknown>) => {
    if (severityRank[severity] < threshold()) return;
    const entry = { severity, message, component, ...base, ...fields, time: new Date().toISOString() };
    const line = JSON.stringify(entry, (_key, value) =>
      value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value,
    );
    sink(line, severity);
  };
  return {
    debug: (m, f) => write('DEBUG', m, f),
    info: (m, f) => write('INFO', m, f),
    warn: (m, f) => write('WARNING', m, f),
    error: (m, f) => write('ERROR', m, f),
    child: (fields) => createLogger(component, { ...base, ...fields }, sink),
  };
}

/** Drops everything: for parts whose output is taken elsewhere. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLogger };
