import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { copyValue, decode, encode } from '../codec';
import { setTimeout as sleep } from 'node:timers/promises';
import { CorruptDataError, SpineError, StorageConflictError, StorageUnavailableError } from '../errors';
import { idToKey } from '../ids';
import { KeyedMutex } from '../util/locks';
import type { GroupState, SnapshotInfo, StoredContact as Contact } from '../model';
import { mapWithConcurrency } from '../util/concurrency';
import { listDir, readFileIfExists, removeTree, sweepLeftovers, writeFileAtomic } from './atomic-file';
import { FileRecordCache } from './filesystem-record-cache';
import { assembleGroupState } from './group-records';
import { digestOf, measured, SnapshotDigest } from './snapshot-stream';
import type {
  AtomicUnit,
  ContactUpdate,
  GroupRecord,
  GroupUpdate,
  NetworkRecord,
  NetworkUpdate,
  RecordReadOptions,
  SnapshotWrite,
  StateStore,
} from './state-store';

export interface FileSystemStoreOptions {
  basePath: string;
  /** fsync every write before it becomes visible (default true). */
  fsync?: boolean;
}

/**
 * Bassline's on-disk layout, with ids encoded by `idToKey` so no id can reach outside `basePath`:
 *
 *     networks/{network}/metadata.json
 *     networks/{network}/groups/{group}/group.json
 *     networks/{network}/groups/{group}/contacts/{contact}.json
 *     networks/{network}/snapshots/{snapshot}.json       the network state
 *     networks/{network}/snapshots/{snapshot}.info.json  its SnapshotInfo, for cheap listing
 */
export class FileSystemStateStore implements StateStore {
  private readonly root: string;
  private readonly fsync: boolean;
  private readonly fileTurns = new KeyedMutex();
  private readonly cache = new FileRecordCache();

  constructor(options: FileSystemStoreOptions) {
    this.root = path.resolve(options.basePath);
    this.fsync = options.fsync ?? true;
    // A failing file system reaches callers as the typed error every backend uses for a store it cannot use.
    for (const name of STORE_METHODS) {
      const method = this[name] as (...args: unknown[]) => Promise<unknown>;
      (this as Record<string, unknown>)[name] = async (...args: unknown[]) => {
        try {
          return await method.apply(this, args);
        } catch (error) {
          throw this.typed(name, error);
        }
      };
    }
  }

  /** An operating-system error (errno code) as StorageUnavailableError keeping the code; typed errors pass through. */
  private typed(operation: string, error: unknown): unknown {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (error instanceof SpineError || typeof code !== 'string') return error;
    const where = (error as NodeJS.ErrnoException).path;
    const key = typeof where === 'string' ? where : this.root;
    return new StorageUnavailableError(`${operation} failed at ${key}: ${code} (${(error as Error).message})`, {
      key,
      status: code,
      attempts: 1,
      cause: error,
    });
  }

  async init(): Promise<void> {
    const networks = path.join(this.root, 'networks');
    await fs.mkdir(networks, { recursive: true });
    // An interrupted write or removal leaves hidden temp files or trash at any level.
    await sweepLeftovers(networks);
    for (const network of await listDir(networks)) {
      const networkDir = path.join(networks, network);
      await sweepLeftovers(networkDir);
      await sweepLeftovers(path.join(networkDir, 'snapshots'));
      await sweepLeftovers(path.join(networkDir, 'groups'));
      for (const group of await listDir(path.join(networkDir, 'groups'))) {
        await sweepLeftovers(path.join(networkDir, 'groups', group));
        await sweepLeftovers(path.join(networkDir, 'groups', group, 'contacts'));
      }
    }
  }

  async close(): Promise<void> {}

  /** Runs `work` as it is: each file write is atomic on its own (temp file, then rename). */
  atomically<T>(_unit: AtomicUnit, work: () => Promise<T>): Promise<T> {
    return work();
  }

  /** With `cached`, answered from the copy read last while the file is unchanged (one stat instead of a read). */
  async getNetwork(networkId: string, options?: RecordReadOptions): Promise<NetworkRecord | null> {
    const file = path.join(this.networkDir(networkId), 'metadata.json');
    if (!options?.cached) return this.readJson<NetworkRecord>(file);
    return this.cache.getChecked(file, () => this.readJsonSized<NetworkRecord>(file));
  }

  async putNetwork(record: NetworkRecord): Promise<void> {
    const file = path.join(this.networkDir(record.id), 'metadata.json');
    this.cache.forget(file);
    await this.writeJson(file, record);
  }

  /**
   * Under a lock file beside the record (created exclusively, removed after), so processes
   * sharing the folder take turns; a lock left by a crashed holder is broken once it is stale.
   */
  async updateNetwork(networkId: string, update: NetworkUpdate): Promise<void> {
    const file = path.join(this.networkDir(networkId), 'metadata.json');
    await this.withLock(path.join(this.networkDir(networkId), 'metadata.lock'), async () => {
      const next = update(await this.readJson<NetworkRecord>(file));
      if (!next) return;
      this.cache.forget(file);
      await this.writeJson(file, next);
    });
  }

  private async withLock<T>(lock: string, work: () => Promise<T>): Promise<T> {
    await fs.mkdir(path.dirname(lock), { recursive: true });
    for (let attempt = 1; ; attempt++) {
      try {
        await (await fs.open(lock, 'wx')).close();
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const heldSince = await fileTime(lock);
        if (heldSince !== null && Date.now() - heldSince.getTime() > STALE_LOCK_MS) {
          await fs.rm(lock, { force: true });
          continue;
        }
        if (attempt >= LOCK_ATTEMPTS) {
          throw new StorageConflictError(
            `could not lock ${path.relative(this.root, lock)} in ${attempt} attempts: other writers kept it`,
            { key: lock, status: 'EEXIST', attempts: attempt },
          );
        }
        await sleep(Math.random() * Math.min(100, 2 ** attempt));
      }
    }
    try {
      return await work();
    } finally {
      await fs.rm(lock, { force: true });
    }
  }

  async listNetworkIds(): Promise<string[]> {
    const keys = await listDir(path.join(this.root, 'networks'));
    // Only networks whose metadata exists count; the id is read from it since long keys are hashed.
    const records = await Promise.all(
      keys.map((key) => this.readJson<NetworkRecord>(path.join(this.root, 'networks', key, 'metadata.json'))),
    );
    return records.filter((r): r is NetworkRecord => r !== null).map((r) => r.id);
  }

  async deleteNetwork(networkId: string): Promise<void> {
    this.cache.forgetUnder(this.networkDir(networkId));
    await removeTree(this.networkDir(networkId));
  }

  /** With `cached`, answered from the copy this process wrote or read last (it is the only writer of group files). */
  async getGroup(networkId: string, groupId: string, options?: RecordReadOptions): Promise<GroupRecord | null> {
    const file = path.join(this.groupDir(networkId, groupId), 'group.json');
    return options?.cached ? this.readCached<GroupRecord>(file) : this.readJson<GroupRecord>(file);
  }

  async putGroup(networkId: string, record: GroupRecord): Promise<void> {
    await this.writeJson(path.join(this.groupDir(networkId, record.group.id), 'group.json'), record, { cache: true });
  }

  async listGroupIds(networkId: string): Promise<string[]> {
    const groupsDir = path.join(this.networkDir(networkId), 'groups');
    const keys = await listDir(groupsDir);
    const ids = await Promise.all(
      keys.map(async (key) => {
        // A folder without group.json holds contacts of a group whose record was never written.
        const record = await this.readJson<GroupRecord>(path.join(groupsDir, key, 'group.json'));
        return record?.group.id;
      }),
    );
    return ids.filter((id): id is string => id !== undefined);
  }

  async deleteGroup(networkId: string, groupId: string): Promise<void> {
    this.cache.forgetUnder(this.groupDir(networkId, groupId));
    await removeTree(this.groupDir(networkId, groupId));
  }

  /**
   * The network's groups as `loadGroupState` reads each, `READ_CONCURRENCY` groups at a time, in
   * the order of the folder listing; each group file is read once, and with `matches` the
   * contacts only of the groups it accepts. Folders without a group record are left out.
   */
  async readGroupStates(networkId: string, matches?: (record: GroupRecord) => boolean): Promise<GroupState[]> {
    const groupsDir = path.join(this.networkDir(networkId), 'groups');
    const states = await mapWithConcurrency(await listDir(groupsDir), READ_CONCURRENCY, async (key) => {
      const record = await this.readJson<GroupRecord>(path.join(groupsDir, key, 'group.json'));
      if (!record || (matches && !matches(record))) return null;
      return assembleGroupState(record, await this.readContactsIn(path.join(groupsDir, key, 'contacts')));
    });
    return states.filter((s): s is GroupState => s !== null);
  }

  async getContact(networkId: string, groupId: string, contactId: string): Promise<Contact | null> {
    return this.readJson<Contact>(this.contactFile(networkId, groupId, contactId));
  }

  async listContacts(networkId: string, groupId: string): Promise<Contact[]> {
    return this.readContactsIn(path.join(this.groupDir(networkId, groupId), 'contacts'));
  }

  private async readContactsIn(dir: string): Promise<Contact[]> {
    const names = (await listDir(dir)).filter((name) => name.endsWith('.json'));
    const contacts = await Promise.all(names.map((name) => this.readJson<Contact>(path.join(dir, name))));
    return contacts.filter((c): c is Contact => c !== null);
  }

  /** Reads only the files asked for; with `cached`, those this process wrote or read last come from its copies. */
  async getContacts(
    networkId: string,
    groupId: string,
    contactIds: readonly string[],
    options?: RecordReadOptions,
  ): Promise<Contact[]> {
    const contacts = await Promise.all(
      [...new Set(contactIds)].map((id) => {
        const file = this.contactFile(networkId, groupId, id);
        return options?.cached ? this.readCached<Contact>(file) : this.readJson<Contact>(file);
      }),
    );
    return contacts.filter((c): c is Contact => c !== null);
  }

  /**
   * A read, then a write, one at a time per file among this store's callers: group and contact
   * files have one writing process (network records take a lock file, see `updateNetwork`), so
   * the read is of the copy this process wrote or read last, when it has one.
   */
  async updateGroup(networkId: string, groupId: string, update: GroupUpdate): Promise<void> {
    const file = path.join(this.groupDir(networkId, groupId), 'group.json');
    await this.fileTurns.run(file, async () => {
      const next = update(await this.readCached<GroupRecord>(file));
      if (next) await this.putGroup(networkId, next);
    });
  }

  /** A read, then a write, like `updateGroup`. */
  async updateContact(networkId: string, groupId: string, contactId: string, update: ContactUpdate): Promise<void> {
    const file = this.contactFile(networkId, groupId, contactId);
    await this.fileTurns.run(file, async () => {
      const next = update(await this.readCached<Contact>(file));
      if (next) await this.putContact(networkId, groupId, next);
    });
  }

  async putContact(networkId: string, groupId: string, contact: Contact): Promise<void> {
    await this.writeJson(this.contactFile(networkId, groupId, contact.id), contact, { cache: true });
  }

  async deleteContact(networkId: string, groupId: string, contactId: string): Promise<void> {
    const file = this.contactFile(networkId, groupId, contactId);
    this.cache.forget(file);
    await fs.rm(file, { force: true });
    this.cache.keep(file, null, 1);
  }

  async putSnapshot(networkId: string, info: SnapshotInfo, payload: string): Promise<void> {
    const base = path.join(this.networkDir(networkId), 'snapshots', idToKey(info.id));
    // The state first: an info file is only ever written for a complete snapshot.
    await writeFileAtomic(`${base}.json`, payload, { fsync: this.fsync });
    await this.writeJson(`${base}.info.json`, info);
  }

  /**
   * The body streams into a temp file, is fsynced and then hard-linked to its name, which fails
   * when the name exists (a rename would replace it); the info follows the same way.
   */
  async putSnapshotStream(
    networkId: string,
    info: SnapshotInfo,
    chunks: AsyncIterable<string>,
  ): Promise<SnapshotWrite> {
    const existing = await this.getSnapshotInfo(networkId, info.id);
    if (existing) return { created: false, info: existing };
    const base = path.join(this.networkDir(networkId), 'snapshots', idToKey(info.id));
    const body = `${base}.json`;
    const digest = new SnapshotDigest();
    const created =
      (await fileTime(body)) === null && (await writeStreamCreateOnly(body, measured(chunks, digest), this.fsync));
    let stored: SnapshotInfo;
    if (created) {
      stored = { ...info, size: digest.size, sha256: digest.sha256() };
    } else {
      // A body without its info: a racing writer's or a crashed one's, complete since it was
      // linked only after its fsync. Adopted as it is, dated by its file.
      const bodyTime = await fileTime(body);
      stored = { ...info, ...(await digestOf(createReadStream(body))), ...(bodyTime && { createdAt: bodyTime }) };
    }
    if (!(await writeCreateOnly(`${base}.info.json`, encode(stored), this.fsync))) {
      return { created: false, info: (await this.getSnapshotInfo(networkId, info.id)) ?? stored };
    }
    return { created, info: stored };
  }

  async getSnapshotInfo(networkId: string, snapshotId: string): Promise<SnapshotInfo | null> {
    return this.readJson<SnapshotInfo>(
      path.join(this.networkDir(networkId), 'snapshots', `${idToKey(snapshotId)}.info.json`),
    );
  }

  async getSnapshot(networkId: string, snapshotId: string): Promise<string | null> {
    const base = path.join(this.networkDir(networkId), 'snapshots', idToKey(snapshotId));
    if ((await readFileIfExists(`${base}.info.json`)) === null) return null;
    return readFileIfExists(`${base}.json`);
  }

  async listSnapshots(networkId: string): Promise<SnapshotInfo[]> {
    const dir = path.join(this.networkDir(networkId), 'snapshots');
    const names = (await listDir(dir)).filter((name) => name.endsWith('.info.json'));
    const infos = await Promise.all(names.map((name) => this.readJson<SnapshotInfo>(path.join(dir, name))));
    return infos.filter((info): info is SnapshotInfo => info !== null);
  }

  async deleteSnapshot(networkId: string, snapshotId: string): Promise<boolean> {
    const base = path.join(this.networkDir(networkId), 'snapshots', idToKey(snapshotId));
    const existed = (await readFileIfExists(`${base}.info.json`)) !== null;
    // The info first, so a crash in between leaves no listed snapshot without its state.
    await fs.rm(`${base}.info.json`, { force: true });
    await fs.rm(`${base}.json`, { force: true });
    return existed;
  }

  /**
   * From modification times, without reading a file: every write is a temp file renamed into
   * its folder and every delete removes an entry, and either changes the folder's mtime. So the
   * network record's own mtime, the groups folder's, and each group's folder and contacts
   * folder cover every state write; the snapshots folder is left out.
   */
  async lastChanged(networkId: string): Promise<Date | null> {
    const dir = this.networkDir(networkId);
    const groups = path.join(dir, 'groups');
    const paths = [path.join(dir, 'metadata.json'), groups];
    for (const key of await listDir(groups)) paths.push(path.join(groups, key), path.join(groups, key, 'contacts'));
    const times = await Promise.all(paths.map(fileTime));
    const newest = Math.max(...times.map((t) => t?.getTime() ?? -Infinity));
    return Number.isFinite(newest) ? new Date(newest) : null;
  }

  private networkDir(networkId: string): string {
    return path.join(this.root, 'networks', idToKey(networkId));
  }

  private groupDir(networkId: string, groupId: string): string {
    return path.join(this.networkDir(networkId), 'groups', idToKey(groupId));
  }

  private contactFile(networkId: string, groupId: string, contactId: string): string {
    return path.join(this.groupDir(networkId, groupId), 'contacts', `${idToKey(contactId)}.json`);
  }

  private async readJson<T>(file: string): Promise<T | null> {
    return (await this.readJsonSized<T>(file)).value;
  }

  /** The decoded file and the length of its text (0 when missing). */
  private async readJsonSized<T>(file: string): Promise<{ value: T | null; bytes: number }> {
    const text = await readFileIfExists(file);
    if (text === null) return { value: null, bytes: 0 };
    try {
      return { value: decode<T>(text), bytes: text.length };
    } catch (error) {
      throw new CorruptDataError(`cannot read ${path.relative(this.root, file)}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** A group or contact file as this process wrote or read it last; read (and kept) when it has no copy. */
  private readCached<T>(file: string): Promise<T | null> {
    return this.cache.get(file, () => this.readJsonSized<T>(file));
  }

  /** With `cache`, the value written is kept as the file's (group and contact files, which only this process writes). */
  private async writeJson(file: string, value: unknown, options: { cache?: boolean } = {}): Promise<void> {
    const text = encode(value);
    if (!options.cache) {
      await writeFileAtomic(file, text, { fsync: this.fsync });
      return;
    }
    // Copied now: the caller may change `value` once it is encoded. A write that fails leaves
    // what is on disk unknown, so the file is forgotten.
    const copy = copyValue(value);
    try {
      await writeFileAtomic(file, text, { fsync: this.fsync });
    } catch (error) {
      this.cache.forget(file);
      throw error;
    }
    this.cache.keep(file, copy, text.length);
  }
}

/** A lock file this old was left by a holder that crashed: no record update takes that long. */
const STALE_LOCK_MS = 30_000;
/** Groups read at once by a whole-network read: enough to keep the thread pool busy, few enough to bound memory. */
const READ_CONCURRENCY = 32;
const LOCK_ATTEMPTS = 400;

const STORE_METHODS = [
  'init',
  'getNetwork',
  'putNetwork',
  'updateNetwork',
  'listNetworkIds',
  'deleteNetwork',
  'getGroup',
  'putGroup',
  'listGroupIds',
  'deleteGroup',
  'readGroupStates',
  'getContact',
  'listContacts',
  'getContacts',
  'putContact',
  'updateContact',
  'updateGroup',
  'deleteContact',
  'putSnapshot',
  'putSnapshotStream',
  'getSnapshot',
  'getSnapshotInfo',
  'listSnapshots',
  'deleteSnapshot',
  'lastChanged',
] as const satisfies ReadonlyArray<keyof FileSystemStateStore>;

/** Modification time of a file or folder, `null` when it does not exist. */
async function fileTime(file: string): Promise<Date | null> {
  try {
    // From the number: a Date made by fs may belong to another realm (a vm context) than the codec's.
    return new Date((await fs.stat(file)).mtimeMs);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR')
      return null;
    throw error;
  }
}

/** Streams `source` into `file` unless it exists (temp file, fsync, hard link); false when it existed. */
async function writeStreamCreateOnly(file: string, source: AsyncIterable<Buffer>, fsync: boolean): Promise<boolean> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const handle = await fs.open(temp, 'wx');
  try {
    try {
      for await (const bytes of source) {
        for (let offset = 0; offset < bytes.length;) offset += (await handle.write(bytes, offset)).bytesWritten;
      }
      if (fsync) await handle.datasync();
    } finally {
      await handle.close();
    }
    return await linkCreateOnly(temp, file);
  } finally {
    await fs.rm(temp, { force: true });
  }
}

async function writeCreateOnly(file: string, text: string, fsync: boolean): Promise<boolean> {
  return writeStreamCreateOnly(
    file,
    (async function* () {
      yield Buffer.from(text, 'utf8');
    })(),
    fsync,
  );
}

/** A second name for `temp` at `file`, atomically refused when `file` exists. */
async function linkCreateOnly(temp: string, file: string): Promise<boolean> {
  try {
    await fs.link(temp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}
