import { randomUUID } from 'node:crypto';
import { Storage } from '@google-cloud/storage';
import type { Contact, GroupState } from '../../shared/model';
import type { StorageEmulator } from '../../emulators/storage';
import { createMemoryLogger } from './emulators';

/** An official client of `emulator`, without the client's own retries: GcsStorage retries itself, and the two would stack. */
export function emulatorClient(emulator: StorageEmulator): Storage {
  return new Storage({ apiEndpoint: emulator.url, projectId: 'test-project', retryOptions: { autoRetry: false } });
}

export interface StorageEmulatorHandle {
  /** The running emulator; only inside tests (after beforeAll). */
  readonly emulator: StorageEmulator;
  /** A client of it, see `emulatorClient`; only inside tests (after beforeAll). */
  readonly client: Storage;
  /** Committed writes per object name (relative to `prefix`) in the bucket since `before` (a `writesByObject`). */
  writesSince(before: Record<string, number>, prefix: string): Record<string, number>;
}

/**
 * Starts a Storage emulator with `bucket` created in it in `beforeAll` of the calling suite, and
 * stops it in `afterAll`. Reading the handle before `beforeAll` has run throws.
 */
export function useStorageEmulator(bucket: string): StorageEmulatorHandle {
  let running: { emulator: StorageEmulator; client: Storage } | undefined;

  beforeAll(async () => {
    // Loaded here, so suites that only build group states do not load the emulator.
    const { startStorageEmulator } = await import('../../emulators/storage');
    const emulator = await startStorageEmulator({ logger: createMemoryLogger() });
    running = { emulator, client: emulatorClient(emulator) };
    await running.client.createBucket(bucket);
  });

  afterAll(async () => {
    await running?.emulator.stop();
    running = undefined;
  });

  const current = () => {
    if (!running) throw new Error('useStorageEmulator: the emulator is only available inside tests (after beforeAll)');
    return running;
  };
  return {
    get emulator() {
      return current().emulator;
    },
    get client() {
      return current().client;
    },
    writesSince(before, prefix) {
      const out: Record<string, number> = {};
      for (const [key, count] of Object.entries(current().emulator.stats().writesByObject)) {
        const delta = count - (before[key] ?? 0);
        if (delta > 0 && key.startsWith(`${bucket}/${prefix}`))
          out[key.slice(bucket.length + 1 + prefix.length)] = delta;
      }
      return out;
    },
  };
}

/** A prefix no other test uses, so each test sees only its own objects. */
export const freshPrefix = (label: string) => `${label}-${randomUUID().slice(0, 8)}/`;

/** A group `groupId` holding one accept-last contact per entry of `contents`, no wires; `extra` adds to the group record. */
export function groupState(
  groupId: string,
  contents: Record<string, unknown>,
  extra: Partial<GroupState['group']> = {},
): GroupState {
  const contacts = Object.entries(contents).map(([id, content]): Contact => ({
    id,
    groupId,
    content,
    blendMode: 'accept-last',
  }));
  return {
    group: {
      id: groupId,
      name: groupId,
      contactIds: contacts.map((c) => c.id),
      wireIds: [],
      subgroupIds: [],
      boundaryContactIds: [],
      ...extra,
    },
    contacts: new Map(contacts.map((c) => [c.id, c])),
    wires: new Map(),
  };
}
