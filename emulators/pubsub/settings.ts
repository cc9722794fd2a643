import { InvalidEmulatorSettingError } from './errors';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PROJECT_ID = 'spine-local';
/** Uncapped, the emulator's JVM grew past 1 GB here; 256 MB is plenty for local runs. */
export const DEFAULT_JAVA_HEAP = '256m';
export const DEFAULT_START_TIMEOUT_MS = 30_000;
export const DEFAULT_STOP_GRACE_MS = 5_000;

export interface PubSubSettingsInput {
  host?: string;
  port?: number;
  javaHeap?: string;
  projectId?: string;
  startTimeoutMs?: number;
  stopGraceMs?: number;
}

export type PubSubSettings = Required<PubSubSettingsInput>;

/** Validates the options once, as they enter; each error names the option. */
export function resolvePubSubSettings(input: PubSubSettingsInput): PubSubSettings {
  const settings = {
    host: input.host ?? DEFAULT_HOST,
    port: input.port ?? 0,
    javaHeap: input.javaHeap ?? DEFAULT_JAVA_HEAP,
    projectId: input.projectId ?? DEFAULT_PROJECT_ID,
    startTimeoutMs: input.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    stopGraceMs: input.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
  };
  if (!settings.host.trim()) throw new InvalidEmulatorSettingError('host', settings.host, 'must not be empty');
  if (!Number.isInteger(settings.port) || settings.port < 0 || settings.port > 65_535) {
    throw new InvalidEmulatorSettingError('port', settings.port, 'must be an integer from 0 (any free port) to 65535');
  }
  if (!/^\d+[kKmMgG]?$/.test(settings.javaHeap)) {
    throw new InvalidEmulatorSettingError('javaHeap', settings.javaHeap, 'must be a JVM size such as 256m or 1g');
  }
  if (!/^[a-z][a-z0-9-]*$/.test(settings.projectId)) {
    throw new InvalidEmulatorSettingError(
      'projectId',
      settings.projectId,
      'must be lower-case letters, digits and hyphens',
    );
  }
  for (const key of ['startTimeoutMs', 'stopGraceMs'] as const) {
    if (!(settings[key] > 0)) throw new InvalidEmulatorSettingError(key, settings[key], 'must be a positive number');
  }
  return settings;
}

/** host:port as a gRPC client expects it (IPv6 literals in brackets). */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
