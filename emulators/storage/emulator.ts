import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DiskBlobStore, MemoryBlobStore } from './blob-store';
import { acquireDataDirLock } from './data-dir-lock';
import { GenerationClock } from './generations';
import { createApp } from './http/app';
import { DataDirJournal, memoryJournal } from './journal';
import {
  resolveStorageEmulatorOptions,
  type ResolvedStorageEmulatorOptions,
  type StorageEmulatorOptions,
} from './options';
import { ObjectRateLimiter } from './rate-limit';
import { StorageService } from './service';
import { StorageState } from './state';
import { StatsRecorder, type StorageEmulatorStats } from './stats';

export interface StorageEmulatorStatsSnapshot extends StorageEmulatorStats {
  /** Resumable upload sessions started and not yet finished. */
  activeUploads: number;
}

export interface StorageEmulator {
  /** The interface it listens on. */
  readonly host: string;
  readonly port: number;
  /** Base URL for clients: `apiEndpoint` or STORAGE_EMULATOR_HOST, e.g. http://127.0.0.1:4443. */
  readonly url: string;
  readonly dataDir: string | undefined;
  /** Counters since the start or the last `resetStats()`; also at GET /_emulator/stats. */
  stats(): StorageEmulatorStatsSnapshot;
  resetStats(): void;
  /** Deletes every bucket, object and upload session, and zeroes the counters. */
  reset(): Promise<void>;
  /** Stops listening and waits for pending writes; safe to call twice. */
  stop(): Promise<void>;
}

/** Connections still busy this long after stop() are cut. */
const STOP_GRACE_MS = 2_000;

/**
 * Starts a Cloud Storage emulator the official `@google-cloud/storage` client works against
 * with only `apiEndpoint: emulator.url` (or STORAGE_EMULATOR_HOST) set.
 */
export async function startStorageEmulator(options: StorageEmulatorOptions = {}): Promise<StorageEmulator> {
  const settings = resolveStorageEmulatorOptions(options);
  const { logger } = settings;
  const { service, stats, close: closeStorage } = await openEmulatedStorage(settings);

  const server = http.createServer(createApp(service, stats, logger));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(settings.port, settings.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await closeStorage();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  const url = `http://${connectableHost(settings.host)}:${port}`;
  logger.info('storage emulator listening', { url, dataDir: settings.dataDir ?? null });

  let stopping: Promise<void> | undefined;
  return {
    host: settings.host,
    port,
    url,
    dataDir: settings.dataDir,
    stats: () => service.statsSnapshot(),
    resetStats: () => service.resetStats(),
    reset: () => service.reset(),
    stop: () =>
      (stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const cut = setTimeout(() => server.closeAllConnections(), STOP_GRACE_MS);
        await closed;
        clearTimeout(cut);
        await closeStorage();
        logger.info('storage emulator stopped', { url });
      })()),
  };
}

/** A wildcard bind address is reached through loopback; IPv6 literals need brackets in URLs. */
function connectableHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** @internal The Storage emulator's state without its server; exported for its tests. */
export interface OpenedEmulatedStorage {
  service: StorageService;
  stats: StatsRecorder;
  /** Waits for pending writes and releases the data directory. */
  close(): Promise<void>;
}

/**
 * The emulator's storage without its HTTP server: state, blobs and journal in memory or in the
 * data directory (loaded, with unfinished uploads reopened and orphan blobs swept).
 * @internal The Storage emulator's state without its server; exported for its tests.
 */
export async function openEmulatedStorage(settings: ResolvedStorageEmulatorOptions): Promise<OpenedEmulatedStorage> {
  const stats = new StatsRecorder();
  const rateLimiter = settings.objectRateLimit ? new ObjectRateLimiter(settings.objectRateLimit) : undefined;
  const state = new StorageState(new GenerationClock(), '0', rateLimiter, {
    onObjectWrite: (kind, bucket, name) => stats.objectWrite(kind, bucket, name),
  });
  const logger = settings.logger;

  const common = { state, stats, logger, ...(rateLimiter && { rateLimiter }) };
  if (!settings.dataDir) {
    const service = new StorageService({ ...common, blobs: new MemoryBlobStore(), journal: memoryJournal });
    return { service, stats, close: async () => undefined };
  }

  const releaseLock = await acquireDataDirLock(settings.dataDir);
  try {
    const blobs = new DiskBlobStore(settings.dataDir);
    const journal = new DataDirJournal(settings.dataDir, state);
    await Promise.all([blobs.init(), journal.init()]);
    const savedUploads = await journal.load();
    const service = new StorageService({ ...common, blobs, journal });
    await service.uploads.restore(savedUploads);
    const swept = await service.sweepOrphanBlobs();
    if (swept > 0) logger.info('removed unreferenced blobs left by an earlier run', { count: swept });
    return {
      service,
      stats,
      close: async () => {
        await journal.idle();
        await releaseLock();
      },
    };
  } catch (error) {
    await releaseLock();
    throw error;
  }
}
