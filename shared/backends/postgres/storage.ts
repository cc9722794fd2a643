import type { Storage } from '@google-cloud/storage';
import type { GoogleAuth } from 'google-auth-library';
import { InvalidArgumentError } from '../../errors';
import type { WriteOrigin } from '../../events/types';
import type { GroupState } from '../../model';
import { DocumentStorage, type DocumentStorageOptions } from '../document-storage';
import { GcsStateStore } from '../gcs-store';
import { cloudSqlIamAuth } from './iam';
import { PostgresStateReader } from './reader';
import { validateRoleName, validateSchemaName } from './schema';
import { PostgresStateStore } from './store';

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
 * `NetworkStorage` in PostgreSQL, the production backend of Bassline's storage design: a
 * `DocumentStorage` (blend semantics, tombstones, packed contacts) over a `PostgresStateStore`,
 * whose atomic capability makes every write one transaction. Writes are serialized between
 * processes by transaction-scoped advisory locks: a contact write or a save of a whole group holds
 * its network's lock shared and its group's exclusively (and the contact's row with `FOR UPDATE`),
 * so writes of different groups run side by side; a save of a whole network or a delete holds the
 * network's exclusively. So any number of instances (function processes) sharing the database
 * apply the blend semantics as one would. Whole networks and groups are read and written a set at a
 * time (`BulkGroupStore`: one statement reads every group with its contacts, one more writes them
 * with `unnest`); a transaction's statements are pipelined, so a group save takes 2 round trips
 * (the BEGIN with the group read whole, the write with the COMMIT). Snapshots read one consistent
 * state of the database (REPEATABLE READ) without stopping writers. Loads and `queryGroups` are single SQL statements (`PostgresStateReader`);
 * `queryGroups` narrows by the GIN-indexed `jsonb` attributes and reads contacts of matches only.
 */
export class PostgresStorage extends DocumentStorage {
  readonly schema: string;
  /** The tables underneath; for tests and tools. */
  readonly postgres: PostgresStateStore;

  constructor(options: PostgresStorageOptions) {
    const store = postgresStateStore(options);
    super(store, options, { reader: new PostgresStateReader(store) });
    this.postgres = store;
    this.schema = store.schema;
  }

  /** A save reads the whole group (to rebase its contacts): with its records, as the unit begins. */
  override applyGroupSave(
    networkId: string,
    groupId: string,
    state: GroupState,
    origin: WriteOrigin,
  ): Promise<boolean> {
    return this.postgres.readingWholeGroups(() => super.applyGroupSave(networkId, groupId, state, origin));
  }
}

/** The store `PostgresStorage` options describe, every option checked first. */
function postgresStateStore(options: PostgresStorageOptions): PostgresStateStore {
  if (!options || typeof options !== 'object')
    throw new InvalidArgumentError('PostgresStorage needs options with { connectionString }');
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
    throw new InvalidArgumentError(
      `poolSize must be a whole number of connections from 1 to ${MAX_POOL_SIZE}, not ${JSON.stringify(poolSize)}`,
    );
  }
  const snapshots = options.snapshots ?? 'database';
  if (
    snapshots !== 'database' &&
    (typeof snapshots !== 'object' || snapshots === null || typeof snapshots.bucket !== 'string')
  ) {
    throw new InvalidArgumentError(
      `snapshots must be 'database' or { bucket, prefix?, storage? }, not ${JSON.stringify(snapshots)}`,
    );
  }
  if (options.iamAuth !== undefined && typeof options.iamAuth !== 'boolean')
    throw new InvalidArgumentError(`iamAuth must be true or false, not ${JSON.stringify(options.iamAuth)}`);
  if (options.grantTo !== undefined && !Array.isArray(options.grantTo))
    throw new InvalidArgumentError(`grantTo must be an array of role names, not ${JSON.stringify(options.grantTo)}`);
  const grantTo = (options.grantTo ?? []).map((role) => validateRoleName(role));
  const iam = options.iamAuth ? cloudSqlIamAuth(options.googleAuth) : undefined;
  return new PostgresStateStore({
    connectionString: options.connectionString,
    schema,
    poolSize,
    grantTo,
    ...(iam ? { password: iam.password, user: iam.user } : {}),
    ...(snapshots !== 'database'
      ? {
          snapshots: new GcsStateStore({
            bucket: snapshots.bucket,
            prefix: snapshots.prefix,
            storage: snapshots.storage,
            logger: options.logger,
          }),
        }
      : {}),
    logger: options.logger,
  });
}
