import { DocumentStorage, type DocumentStorageOptions } from './document-storage';
import { MemoryStateStore } from './memory-store';

/** Keeps everything in this process; for tests, embedding and caches. */
export class MemoryStorage extends DocumentStorage {
  constructor(options: DocumentStorageOptions = {}) {
    super(new MemoryStateStore(), options);
  }
}
