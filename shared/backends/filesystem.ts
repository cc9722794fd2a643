import { InvalidArgumentError } from '../errors';
import { DocumentStorage, type DocumentStorageOptions } from './document-storage';
import { FileSystemStateStore } from './filesystem-store';

export interface FileSystemStorageOptions extends DocumentStorageOptions {
  /** Folder that holds `networks/`; created when missing. */
  basePath: string;
  /** fsync each file before it replaces the old one (default true); off trades power-loss safety for speed. */
  fsync?: boolean;
}

/** Bassline's filesystem layout; every write is atomic (temp file, then rename). */
export class FileSystemStorage extends DocumentStorage {
  readonly basePath: string;

  constructor(options: FileSystemStorageOptions) {
    if (!options || typeof options.basePath !== 'string' || options.basePath.length === 0) {
      throw new InvalidArgumentError('FileSystemStorage needs { basePath }: the folder that holds networks/');
    }
    super(new FileSystemStateStore({ basePath: options.basePath, fsync: options.fsync }), options);
    this.basePath = options.basePath;
  }
}
