import type { Storage } from '@google-cloud/storage';
import type { GoogleAuth } from 'google-auth-library';
import type { BlendOutcome, ContactWrite } from '../../blend';
import { InvalidArgumentError, StorageClosedError } from '../../errors';
import type { WriteOrigin } from '../../events/types';
import { changePath, validateGroupId, validateNetworkId } from '../../ids';
import type { GroupQuery, GroupState, NetworkState } from '../../model';
import { AUTHOR_ATTRIBUTE, groupMatches, TAGS_ATTRIBUTE, TYPE_ATTRIBUTE } from '../../query';
import { validateQuery } from '../../state-validation';
import { KeyedMutex, KeyedReadWriteLock } from '../../util/locks';
import { assembleGroupState, DocumentStorage, type DocumentStorageOptions } from '../document-storage';
import { GcsStateStore } from '../gcs-store';
import type { SaveSnapshotOptions } from '../snapshot-stream';
import type { SnapshotWrite } from '../state-store';
import { cloudSqlIamAuth } from './iam';
import { advisoryKey, validateRoleName, validateSchemaName } from './schema';
import { PostgresStateStore, type GroupFilter, type GroupRow, type TransactionOptions } from './store';

/** Snapshots as objects in a Cloud Storage bucket, laid out as GcsStorage lays them out. */
export interface GcsSnapshotOptions {
  bucket: string;
  /** Object name prefix (default none). */
  prefix?: string;
  /** Client to use; give it `retryOptions: { autoRetry: false }` (the store retries itself). */
  storage?: Storage;
}

export interface PostgresStorageOptions extends DocumentStorageOptions {
  /** `postgresql://user:password@host:port/database?sslmode=…`; never logged. */
  connectionString: string;
  /** Schema of the tables, created by `initialize()` (default `spine`); a plain lowercase identifier. */
  schema?: string;
  /** Connections in this instance's pool (default 10). */
  poolSize?: number;
  /** `database` (default): tables of the schema; or a Cloud Storage bucket. */
  snapshots?: 'database' | GcsSnapshotOptions;
  /**
   * Cloud SQL IAM database authentication: each connection's password is a fresh Google access
   * token, and the user, when the connection string names none, is the service account's.
   */
  iamAuth?: boolean;
  /** Credentials for `iamAuth`; Application Default Credentials by default. */
  googleAuth?: GoogleAuth;
  /**
   * Roles that may read and write the tables besides their owner (the user that ran the
   * migrations), e.g. the other functions' Cloud SQL IAM users. Granted by the owner's `initialize()`.
   */
  grantTo?: string[];
}

const MAX_POOL_SIZE = 1000;

/**
 * `NetworkStorage` in PostgreSQL, the production backend of Bassline's storage design: the
 * shared DocumentStorage core (blend semantics, tombstones, packed contacts) over tables, with
 * every write one transaction. Writes are serialized between processes by transaction-scoped
 * advisory locks: a contact write holds its network's lock shared and its group's exclusively
 * (and the contact's row with `FOR UPDATE`), a write of a whole group or network or a delete
 * holds the network's exclusively. So any number of instances (function processes) sharing the
 * database apply the blend semantics as one would. Snapshots read one consistent state of the
 * database (REPEATABLE READ) without stopping writers. Loads and `queryGroups` are single SQL
 * statements; `queryGroups` narrows by the GIN-indexed `jsonb` attributes.
 */
export class PostgresStorage extends DocumentStorage {
  readonly schema: string;
  /** The tables underneath; for tests and tools. */
  readonly postgres: PostgresStateStore;
  /** Waiters in this process queue here rather than each holding a pooled connection while blocked on a database lock. */
  private readonly networkTurns = new KeyedReadWriteLock();
  private readonly groupTurns = new KeyedMutex();
  private isClosed = false;

  constructor(options: PostgresStorageOptions) {
    if (!options || typeof options !== 'object') throw new InvalidArgumentError('PostgresStorage needs options with { connectionString }');
    if (typeof options.connectionString !== 'string' || options.connectionString.trim() === '') {
      throw new InvalidArgumentError('PostgresStorage needs { connectionString }: postgresql://user@host:port/database');
    }
    if (!/^postgres(ql)?:\/\//.test(options.connectionString)) {
      // Not echoed: it may hold a password.
      throw new InvalidArgumentError('connectionString must start with postgresql:// or postgres://');
    }
    const schema = validateSchemaName(options.schema ?? 'spine');
    const poolSize = options.poolSize ?? 10;
    if (!Number.isSafeInteger(poolSize) || poolSize < 1 || poolSize > MAX_POOL_SIZE) {
      throw new InvalidArgumentError(`poolSize must be a whole number of connections from 1 to ${MAX_POOL_SIZE}, not ${JSON.stringify(poolSize)}`);
    }
    const snapshots = options.snapshots ?? 'database';
    if (snapshots !== 'database' && (typeof snapshots !== 'object' || snapshots === null || typeof snapshots.bucket !== 'string')) {
      throw new InvalidArgumentError(`snapshots must be 'database' or { bucket, prefix?, storage? }, not ${JSON.stringify(snapshots)}`);
    }
    if (options.iamAuth !== undefined && typeof options.iamAuth !== 'boolean') throw new InvalidArgumentError(`iamAuth must be true or false, not ${JSON.stringify(options.iamAuth)}`);
    if (options.grantTo !== undefined && !Array.isArray(options.grantTo)) throw new InvalidArgumentError(`grantTo must be an array of role names, not ${JSON.stringify(options.grantTo)}`);
    const grantTo = (options.grantTo ?? []).map((role) => validateRoleName(role));
    const iam = options.iamAuth ? cloudSqlIamAuth(options.googleAuth) : undefined;
    const store = new PostgresStateStore({
      connectionString: options.connectionString,
      schema,
      poolSize,
      grantTo,
      ...(iam ? { password: iam.password, user: iam.user } : {}),
      ...(snapshots !== 'database'
        ? { snapshots: new GcsStateStore({ bucket: snapshots.bucket, prefix: snapshots.prefix, storage: snapshots.storage, logger: options.logger }) }
        : {}),
      logger: options.logger,
    });
    super(store, options);
    this.postgres = store;
    this.schema = schema;
  }

  override async close(): Promise<void> {
    this.isClosed = true;
    await super.close();
  }

  // ---- writes: one transaction each, under the locks described above

  override applyContactWrite(networkId: string, groupId: string, contactId: string, write: ContactWrite): Promise<BlendOutcome> {
    return this.inGroupTransaction('applyContactWrite', networkId, groupId, () => super.applyContactWrite(networkId, groupId, contactId, write));
  }

  override applyContactWriteBatch(networkId: string, groupId: string, writes: Array<{ contactId: string; write: ContactWrite }>): Promise<BlendOutcome[]> {
    return this.inGroupTransaction('applyContactWriteBatch', networkId, groupId, () => super.applyContactWriteBatch(networkId, groupId, writes));
  }

  // A group save may cascade a delete of its ancestors' descendants, so it holds the network.
  override applyGroupSave(networkId: string, groupId: string, state: GroupState, origin: WriteOrigin): Promise<boolean> {
    return this.inNetworkTransaction('saveGroupState', networkId, () => super.applyGroupSave(networkId, groupId, state, origin), groupId);
  }

  override applyGroupDelete(networkId: string, groupId: string, origin: WriteOrigin): Promise<string[]> {
    return this.inNetworkTransaction('deleteGroup', networkId, () => super.applyGroupDelete(networkId, groupId, origin), groupId);
  }

  override applyNetworkSave(networkId: string, state: NetworkState, origin: WriteOrigin): Promise<{ written: string[]; removed: string[] } | null> {
    return this.inNetworkTransaction('saveNetworkState', networkId, () => super.applyNetworkSave(networkId, state, origin));
  }

  override applyNetworkDelete(networkId: string, origin: WriteOrigin): Promise<string[] | null> {
    return this.inNetworkTransaction('deleteNetwork', networkId, () => super.applyNetworkDelete(networkId, origin));
  }

  /** One consistent state of the network (REPEATABLE READ), while writers go on. */
  override async writeSnapshot(networkId: string, label?: string, options: SaveSnapshotOptions = {}): Promise<SnapshotWrite> {
    validateNetworkId(networkId);
    await this.opened('saveSnapshot');
    return this.postgres.transaction({ isolation: 'repeatable read' }, () => super.writeSnapshot(networkId, label, options));
  }

  // ---- reads: single statements

  override async loadGroupState(networkId: string, groupId: string): Promise<GroupState | null> {
    validateNetworkId(networkId);
    validateGroupId(groupId);
    await this.opened('loadGroupState');
    const [row] = await this.postgres.readGroups(networkId, { groupId });
    return row ? assembleGroupState(row.record, row.contacts) : null;
  }

  override async loadNetworkState(networkId: string): Promise<NetworkState | null> {
    validateNetworkId(networkId);
    await this.opened('loadNetworkState');
    return this.postgres.transaction({ isolation: 'repeatable read', readOnly: true }, async () => {
      const record = await this.postgres.getNetwork(networkId);
      if (!record || record.deleted) return null;
      const rows = sortById(await this.postgres.readGroups(networkId));
      const groups = new Map(rows.map((row) => [row.record.group.id, assembleGroupState(row.record, row.contacts)] as const));
      return { groups, rootGroupId: record.rootGroupId, currentGroupId: record.currentGroupId };
    });
  }

  override async listNetworks(): Promise<string[]> {
    await this.opened('listNetworks');
    return (await this.postgres.listLiveNetworkIds()).sort();
  }

  /**
   * In SQL: the criteria become `jsonb` containment (`@>`) on the GIN-indexed attributes, which
   * can only admit too much (tags stored as a Set, values equal by the codec's deep equality but
   * written differently), never too little; each candidate is then checked with `groupMatches`,
   * so results equal every other backend's. Sorted by group id.
   */
  override async queryGroups(networkId: string, query: GroupQuery): Promise<GroupState[]> {
    validateNetworkId(networkId);
    validateQuery(query);
    await this.opened('queryGroups');
    const rows = await this.postgres.readGroups(networkId, queryFilter(query));
    return sortById(rows.filter((row) => groupMatches(row.record.group, query))).map((row) => assembleGroupState(row.record, row.contacts));
  }

  // ---- internals

  private async opened(operation: string): Promise<void> {
    if (this.isClosed) throw new StorageClosedError(operation);
    await this.initialize();
  }

  private async inGroupTransaction<T>(operation: string, networkId: string, groupId: string, work: () => Promise<T>): Promise<T> {
    // Bad ids fail here with their typed error, before a connection is taken.
    validateNetworkId(networkId);
    validateGroupId(groupId);
    await this.opened(operation);
    const locks: TransactionOptions['locks'] = [
      { key: advisoryKey(this.schema, 'network', networkId), mode: 'shared' },
      { key: advisoryKey(this.schema, 'group', networkId, groupId), mode: 'exclusive' },
    ];
    return this.networkTurns.read(networkId, () => this.groupTurns.run(changePath(networkId, groupId), () => this.postgres.transaction({ locks }, work)));
  }

  private async inNetworkTransaction<T>(operation: string, networkId: string, work: () => Promise<T>, groupId?: string): Promise<T> {
    validateNetworkId(networkId);
    if (groupId !== undefined) validateGroupId(groupId);
    await this.opened(operation);
    const locks: TransactionOptions['locks'] = [{ key: advisoryKey(this.schema, 'network', networkId), mode: 'exclusive' }];
    return this.networkTurns.write(networkId, () => this.postgres.transaction({ locks }, work));
  }
}

/** The query as `jsonb` containments, each a list of alternatives (tags may be stored as an array or a Set). */
export function queryFilter(query: GroupQuery): GroupFilter {
  return { contains: containmentOf(query) };
}

function containmentOf(query: GroupQuery): Array<Array<Record<string, unknown>>> {
  const out: Array<Array<Record<string, unknown>>> = [];
  if (query.author !== undefined) out.push([{ [AUTHOR_ATTRIBUTE]: query.author }]);
  if (query.type !== undefined) out.push([{ [TYPE_ATTRIBUTE]: query.type }]);
  if (query.tags !== undefined && query.tags.length > 0) out.push([{ [TAGS_ATTRIBUTE]: [...query.tags] }, { [TAGS_ATTRIBUTE]: new Set(query.tags) }]);
  for (const [key, value] of Object.entries(query.attributes ?? {})) out.push([{ [key]: value }]);
  return out;
}

function sortById(rows: GroupRow[]): GroupRow[] {
  return rows.sort((a, b) => (a.record.group.id < b.record.group.id ? -1 : a.record.group.id > b.record.group.id ? 1 : 0));
}
