/** PostgreSQL (Cloud SQL) backend: see postgres/storage.ts. */
export { PostgresStorage, type PostgresStorageOptions, type GcsSnapshotOptions } from './postgres/storage';
export { PostgresStateReader, queryFilter } from './postgres/reader';
export {
  PostgresStateStore,
  searchableJson,
  type PostgresStateStoreOptions,
  type SnapshotStore,
  type TransactionOptions,
  type GroupRow,
  type GroupFilter,
} from './postgres/store';
export { migrations, migrate, validateSchemaName, advisoryKey } from './postgres/schema';
export { cloudSqlIamAuth, cloudSqlIamUser, CLOUD_SQL_LOGIN_SCOPE } from './postgres/iam';
export { postgresStorageFromSettings } from './postgres/settings';
