import type { PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { startLocalMesh, type LocalMesh, type LocalMeshOptions } from '../../cli/local-mesh';
import { stateStoreFromSettings } from '../../shared/backends/from-settings';
import { createPubSubClient, createStorageClient } from '../../shared/mesh/clients';
import { SpineStorage, type SpineStorageOptions } from '../../shared/mesh/spine-storage';
import { createMemoryLogger } from './emulators';

export interface MeshHandle {
  readonly mesh: LocalMesh;
  readonly pubsub: PubSub;
  readonly storage: Storage;
  /** A SpineStorage client of the mesh, reading the state its functions write; closed after the suite. */
  client(options?: Partial<SpineStorageOptions>): SpineStorage;
  /** Lines the functions process logged (JSON), newest last. */
  readonly functionLogs: string[];
}

/**
 * Starts the whole local mesh (emulators, functions process, topology) in `beforeAll` and stops
 * it in `afterAll`. Reading the handle before `beforeAll` ran throws.
 */
export function useLocalMesh(options: LocalMeshOptions = {}): MeshHandle {
  let mesh: LocalMesh | undefined;
  let pubsub: PubSub | undefined;
  let storage: Storage | undefined;
  const clients: SpineStorage[] = [];
  const functionLogs: string[] = [];

  beforeAll(async () => {
    mesh = await startLocalMesh({
      logger: createMemoryLogger(),
      onFunctionsLog: (line) => functionLogs.push(line),
      ...options,
    });
    pubsub = createPubSubClient(mesh.settings);
    storage = createStorageClient(mesh.settings);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await pubsub?.close();
    // Nothing here needs what is in flight at the end; npm start's drain has its own tests (test/dev, drain.test.ts).
    await mesh?.stop({ drain: false });
  }, 60_000);

  const started = () => {
    if (!mesh || !pubsub || !storage)
      throw new Error('the local mesh is not running yet: use it inside tests or hooks');
    return { mesh, pubsub, storage };
  };
  return {
    get mesh() {
      return started().mesh;
    },
    get pubsub() {
      return started().pubsub;
    },
    get storage() {
      return started().storage;
    },
    functionLogs,
    client(overrides = {}) {
      const { mesh: running, pubsub: client, storage: gcs } = started();
      const spine = new SpineStorage({
        projectId: running.settings.projectId,
        topicPrefix: running.settings.topicPrefix,
        state: stateStoreFromSettings(running.settings, { storage: gcs }),
        pubsub: client,
        storage: gcs,
        bucket: running.settings.bucket,
        logger: createMemoryLogger(),
        ...overrides,
      });
      clients.push(spine);
      return spine;
    },
  };
}
