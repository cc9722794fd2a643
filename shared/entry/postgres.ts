/** `super-spine/postgres`: state in PostgreSQL; loads `pg`. */
export * from './contract';
export {
  PostgresStorage,
  PostgresStateStore,
  cloudSqlIamAuth,
  type PostgresStorageOptions,
  type GcsSnapshotOptions,
} from '../backends/postgres';
