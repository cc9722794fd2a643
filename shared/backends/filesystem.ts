import type { BlendOutcome, ContactWrite } from '../blend';
import { InvalidArgumentError } from '../errors';
import { DocumentStorage, type DocumentStorageOptions } from './document-storage';
import { FileSystemStateStore } from './filesystem-store';
import { GroupCommitter } from './group-commit';
import { checkIds, checkOrigin } from './materializer';

export interface FileSystemStorageOptions extends DocumentStorageOptions {
  /** Folder that holds `networks/`; created when missing. */
  basePath: string;
  /** fsync each file before it replaces the old one (default true); off trades power-loss safety for speed. */
  fsync?: boolean;
}

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
    super(new FileSystemStateStore({ basePath: options.basePath, fsync: options.fsync }), options);
    this.basePath = options.basePath;
    this.groupCommits = new GroupCommitter(this.materializer);
  }

  /** Through the group commit; a bad write is refused here, before it could fail the others it would be written with. */
  override async applyContactWrite(
    networkId: string,
    groupId: string,
    contactId: string,
    write: ContactWrite,
  ): Promise<BlendOutcome> {
    checkIds(networkId, groupId, contactId);
    checkOrigin(write);
    return this.groupCommits.submit(networkId, groupId, contactId, write);
  }
}
