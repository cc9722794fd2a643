/**
 * Structured JSON logs in the shape Cloud Logging reads: one line per entry with
 * `severity`, `message` and fields. Set SPINE_LOG_LEVEL to DEBUG|INFO|WARNING|ERROR|SILENT.
 */
import { parseSetting } from './settings/parse';

export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';

const severityRank: Record<Severity | 'SILENT', number> = {
  DEBUG: 10,
  INFO: 20,
  WARNING: 30,
  ERROR: 40,
  SILENT: 100,
};

// The level is read at each entry (programs lower it after loggers exist) but parsed once per value.
let lastLevel: { raw: string | undefined; rank: number } | undefined;

/** The least rank logged, from SPINE_LOG_LEVEL; a bad value is a SettingError naming it. */
export function logThreshold(env: Readonly<Record<string, string | undefined>> = process.env): number {
  const raw = env.SPINE_LOG_LEVEL;
  if (lastLevel === undefined || lastLevel.raw !== raw)
    lastLevel = { raw, rank: severityRank[parseSetting('logLevel', { env })] };
  return lastLevel.rank;
}

function threshold(): number {
  return logThreshold();
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
  threshold(); // a bad SPINE_LOG_LEVEL stops the program where its logger is made, not at its first entry
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
