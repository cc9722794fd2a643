import type { BlendOutcome, ContactWrite } from '../blend';
import { InvalidArgumentError } from '../errors';
import type { GroupQuery, GroupState, NetworkState } from '../model';
import { groupMatches } from '../query';
import { DocumentStorage, type DocumentStorageOptions } from './document-storage';
import { FileSystemStateStore } from './filesystem-store';
import { GroupCommitter } from './group-commit';
import { StoreStateReader } from './state-reader';

export interface FileSystemStorageOptions extends DocumentStorageOptions {
  /** Folder that holds `networks/`; created when missing. */
  basePath: string;
  /** fsync each file before it replaces the old one (default true); off trades power-loss safety for speed. */
  fsync?: boolean;
}

/** Files a network save writes at once (each fsynced): overlapping fsyncs share the disk's flushes. */
const WRITE_CONCURRENCY = 16;

/**
 * Bassline's filesystem layout; every write is atomic (temp file, fsync, then rename). Contact
 * writes to one group are group-committed: those arriving while the group has a write in flight
 * are applied together and written once, into the group's record (see `GroupCommitter`).
 */
export class FileSystemStorage extends DocumentStorage {
  readonly basePath: string;
  private readonly groupCommits: GroupCommitter;

  constructor(options: FileSystemStorageOptions) {
    if (!options || typeof options.basePath !== 'string' || options.basePath.length === 0) {
      throw new InvalidArgumentError('FileSystemStorage needs { basePath }: the folder that holds networks/');
    }
    const store = new FileSystemStateStore({ basePath: options.basePath, fsync: options.fsync });
    super(store, options, {
      reader: new FileSystemStateReader(store),
      groupConcurrency: WRITE_CONCURRENCY,
      admitFromCache: true,
    });
    this.basePath = options.basePath;
    const materializer = this.storeMaterializer;
    this.groupCommits = new GroupCommitter({
      applyContactWrite: (...args) => materializer.applyCheckedContactWrite(...args),
      applyContactWriteBatch: (...args) => materializer.applyCheckedContactWriteBatch(...args),
    });
  }

  /** Through the group commit; ids and origin were validated by the caller, so no write can fail the others it is written with. */
  protected override commitContactWrite(
    networkId: string,
    groupId: string,
    contactId: string,
    write: ContactWrite,
  ): Promise<BlendOutcome> {
    return this.groupCommits.submit(networkId, groupId, contactId, write);
  }
}

/** Whole-network reads and queries that read the group files concurrently, each once, and contacts only of the groups returned. */
class FileSystemStateReader extends StoreStateReader {
  constructor(private readonly files: FileSystemStateStore) {
    super(files);
  }

  override async readNetwork(networkId: string): Promise<NetworkState | null> {
    const record = await this.files.getNetwork(networkId);
    if (!record || record.deleted) return null;
    const states = (await this.files.readGroupStates(networkId)).sort((a, b) =>
      a.group.id < b.group.id ? -1 : a.group.id > b.group.id ? 1 : 0,
    );
    return {
      groups: new Map(states.map((state) => [state.group.id, state] as const)),
      rootGroupId: record.rootGroupId,
      currentGroupId: record.currentGroupId,
    };
  }

  override queryGroups(networkId: string, query: GroupQuery): Promise<GroupState[]> {
    return this.files.readGroupStates(networkId, (record) => groupMatches(record.group, query));
  }
}
