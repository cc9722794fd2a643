import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { parseIntoClientConfig } from 'pg-connection-string';
import { Pool, type PoolConfig, type QueryConfig, type QueryResult, type QueryResultRow } from 'pg';
import { decode, encode } from '../../codec';
import { CorruptDataError, StorageConflictError } from '../../errors';
import { createLogger, type Logger } from '../../log';
import type { SnapshotInfo, StoredContact as Contact } from '../../model';
import { measured, SnapshotDigest } from '../snapshot-stream';
import { changePath } from '../../ids';
import { KeyedMutex, KeyedReadWriteLock } from '../../util/locks';
import type {
  AtomicUnit,
  BulkGroupStore,
  ContactUpdate,
  GroupRecord,
  GroupUpdate,
  NetworkRecord,
  NetworkUpdate,
  SnapshotWrite,
  StateStore,
  StoredGroup,
  GroupWrite,
} from '../state-store';
import { PipelinedTransaction } from './pipelined-transaction';
import { advisoryKey, migrate, validateSchemaName } from './schema';

/** The snapshot half of a `StateStore`, for keeping snapshots elsewhere (Cloud Storage). */
export type SnapshotStore = Pick<
  StateStore,
  | 'init'
  | 'close'
  | 'putSnapshot'
  | 'putSnapshotStream'
  | 'getSnapshot'
  | 'getSnapshotInfo'
  | 'listSnapshots'
  | 'deleteSnapshot'
  | 'deleteNetwork'
>;

export interface PostgresStateStoreOptions {
  connectionString: string;
  /** Schema of the tables (default `spine`); created by `init()`. */
  schema?: string;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** Called for each new connection (e.g. a fresh Cloud SQL IAM token); overrides a password in the connection string. */
  password?: () => Promise<string>;
  /** Database user, when the connection string has none (resolved at `init()`). */
  user?: () => Promise<string>;
  /** Where snapshots live; in the database's own tables when absent. */
  snapshots?: SnapshotStore;
  /** Roles given read and write rights on the tables (see `grantAccess`). */
  grantTo?: readonly string[];
  /** Tries of a transaction that PostgreSQL aborted for a deadlock or a serialization failure (default 5). */
  maxAttempts?: number;
  logger?: Logger;
}

export type LockMode = 'shared' | 'exclusive';

export interface TransactionOptions {
  /** Advisory locks (keys from `advisoryKey`), taken in this order and held until the transaction ends. */
  locks?: Array<{ key: string; mode: LockMode }>;
  /** Default `read committed`; `repeatable read` reads one consistent state of the whole database. */
  isolation?: 'read committed' | 'repeatable read';
  readOnly?: boolean;
}

/** One group's row as a bulk read returns it: the record and its contacts stored one by one. */
export interface GroupRow {
  record: GroupRecord;
  contacts: Contact[];
}

/** Conditions of a bulk group read: all groups, one group, or groups whose attributes contain every given JSON value. */
export interface GroupFilter {
  groupId?: string;
  /** Each entry is a list of alternatives: the attributes must contain at least one of them. */
  contains?: Array<Array<Record<string, unknown>>>;
}

/** A transaction of this store and what its unit read as it began (see `UnitReads`). */
interface Scope {
  transaction: PipelinedTransaction;
  /** Forgotten at the unit's first write. */
  reads?: UnitReads;
}

/**
 * The records a unit reads first, read in the round trip of its BEGIN: a group unit's network and
 * group records (and, for a whole-group save, the group's contacts), a network unit's network
 * record, locked (`FOR UPDATE`). The unit holds the advisory locks every writer of these rows
 * takes, so until the unit writes, reading them again would read the same.
 */
interface UnitReads {
  networkId: string;
  groupId?: string;
  /** The network's row is locked by this transaction (read `FOR UPDATE`). */
  networkLocked: boolean;
  withContacts: boolean;
  row: Promise<UnitReadRow | undefined>;
}

interface UnitReadRow {
  network_row: boolean;
  network: string | null;
  group_row: boolean;
  group: string | null;
  contacts: string | null;
}

/** Characters of a snapshot body per row of snapshot_parts. */
const SNAPSHOT_PART_CHARS = 1 << 20;

/** PostgreSQL error codes worth running the whole transaction again for. */
const RETRYABLE = new Set(['40001', '40P01']);

/**
 * A `StateStore` in PostgreSQL (tables in schema.ts). Every method is one statement or one
 * transaction; inside `transaction()` they all run on that transaction's connection, so a
 * caller can make a whole read-modify-write one atomic unit. `updateContact` and `updateGroup`
 * lock the row (`SELECT … FOR UPDATE`), which makes them atomic between processes on their own.
 */
export class PostgresStateStore implements StateStore {
  readonly schema: string;
  private readonly options: PostgresStateStoreOptions;
  private readonly s: string;
  private readonly statementPrefix: string;
  private readonly scope = new AsyncLocalStorage<Scope>();
  private readonly wholeGroups = new AsyncLocalStorage<boolean>();
  private readonly snapshots?: SnapshotStore;
  private readonly maxAttempts: number;
  private readonly log: Logger;
  private poolHandle: Pool | undefined;
  /** Waiters in this process queue here rather than each holding a pooled connection while blocked on a database lock. */
  private readonly networkTurns = new KeyedReadWriteLock();
  private readonly groupTurns = new KeyedMutex();
  /** Versions of migrations the last `init()` applied, for tests and logs. */
  appliedMigrations: number[] = [];
  readonly bulk: BulkGroupStore = {
    readGroups: (networkId, groupIds) => this.readStoredGroups(networkId, groupIds),
    writeGroups: (networkId, writes) => this.writeGroups(networkId, writes),
  };

  constructor(options: PostgresStateStoreOptions) {
    this.options = options;
    this.schema = validateSchemaName(options.schema ?? 'spine');
    this.s = `"${this.schema}"`;
    // Prepared statements are per connection and named; the schema is part of their text.
    this.statementPrefix = `spine_${createHash('sha256').update(this.schema).digest('hex').slice(0, 8)}_`;
    this.snapshots = options.snapshots;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.log = options.logger ?? createLogger('postgres-store');
  }

  async init(): Promise<void> {
    if (!this.poolHandle) {
      // Pipelined: a transaction's statements are sent without waiting for the answers before them.
      let config: PoolConfig = {
        connectionString: this.options.connectionString,
        max: this.options.poolSize ?? 10,
        pipeline: true,
      };
      if (this.options.password || this.options.user) {
        // Parsed here (with pg's own parser): values from a connectionString would override these.
        const parsed = parseIntoClientConfig(this.options.connectionString);
        config = { ...parsed, max: config.max, pipeline: true };
        if (this.options.password) config.password = this.options.password;
        if (this.options.user && !parsed.user) config.user = await this.options.user();
      }
      const pool = new Pool(config);
      // An idle connection the server dropped must not crash the process; the next query reconnects.
      pool.on('error', (error) => this.log.warn('idle PostgreSQL connection failed', { error: error.message }));
      this.poolHandle = pool;
    }
    const client = await this.pool.connect();
    try {
      this.appliedMigrations = await migrate(client, this.schema, this.options.grantTo);
      if (this.appliedMigrations.length)
        this.log.info('applied migrations', { schema: this.schema, versions: this.appliedMigrations });
    } finally {
      client.release();
    }
    await this.snapshots?.init();
  }

  async close(): Promise<void> {
    await this.poolHandle?.end();
    await this.snapshots?.close();
  }

  /** The pool; for tests and tools that look into the database. */
  get pool(): Pool {
    if (!this.poolHandle) throw new Error('PostgresStateStore: init() must finish before the store is used');
    return this.poolHandle;
  }

  /**
   * One transaction per unit, serialized between processes by transaction-scoped advisory locks:
   * a group unit holds its network's lock shared and its group's exclusively, a network unit its
   * network's exclusively (row locks of `update*` come on top); a consistent read runs in
   * REPEATABLE READ, one state of the database, without stopping writers. Inside a unit already,
   * `work` joins it.
   */
  atomically<T>(unit: AtomicUnit, work: () => Promise<T>): Promise<T> {
    if (this.inTransaction()) return work();
    const network = { key: advisoryKey(this.schema, 'network', unit.networkId) };
    switch (unit.kind) {
      case 'group': {
        const locks: TransactionOptions['locks'] = [
          { ...network, mode: 'shared' },
          { key: advisoryKey(this.schema, 'group', unit.networkId, unit.groupId), mode: 'exclusive' },
        ];
        const reads = { networkId: unit.networkId, groupId: unit.groupId, withContacts: this.wholeGroups.getStore() };
        return this.networkTurns.read(unit.networkId, () =>
          this.groupTurns.run(changePath(unit.networkId, unit.groupId), () =>
            this.runTransaction({ locks }, work, reads),
          ),
        );
      }
      case 'network':
        return this.networkTurns.write(unit.networkId, () =>
          this.runTransaction({ locks: [{ ...network, mode: 'exclusive' }] }, work, { networkId: unit.networkId }),
        );
      case 'consistent-read':
        return this.transaction({ isolation: 'repeatable read' }, work);
    }
  }

  /**
   * Group units started inside `work` read the group's contacts with its records as they begin,
   * in the round trip of their BEGIN: for work that reads the whole group (a group save), where
   * a contact write would read more than it needs.
   */
  readingWholeGroups<T>(work: () => Promise<T>): Promise<T> {
    return this.wholeGroups.run(true, work);
  }

  /**
   * Runs `work` in one transaction on one connection: every query of this store made inside it
   * (in its async context) joins the transaction. Nested calls join the outer transaction.
   * A transaction aborted for a deadlock or serialization failure is run again from the start.
   */
  transaction<T>(options: TransactionOptions, work: () => Promise<T>): Promise<T> {
    return this.runTransaction(options, work);
  }

  private async runTransaction<T>(
    options: TransactionOptions,
    work: () => Promise<T>,
    unitReads?: { networkId: string; groupId?: string; withContacts?: boolean },
  ): Promise<T> {
    if (this.inTransaction()) return work();
    const begin = [
      `BEGIN ISOLATION LEVEL ${options.isolation === 'repeatable read' ? 'REPEATABLE READ' : 'READ COMMITTED'}${options.readOnly ? ' READ ONLY' : ''}`,
      // Keys are decimal integers made by advisoryKey, so they can be written into the text.
      ...(options.locks ?? []).map(({ key, mode }) => {
        if (!/^-?\d{1,20}$/.test(key))
          throw new Error(`advisory lock key ${JSON.stringify(key)} is not a 64-bit integer`);
        return `SELECT pg_advisory_xact_lock${mode === 'shared' ? '_shared' : ''}(${key})`;
      }),
    ].join('; ');
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      const transaction = new PipelinedTransaction(client);
      const scope: Scope = { transaction };
      let broken = false;
      try {
        // Not waited for: the unit's first statements follow it in the same round trip.
        transaction.send(begin);
        if (unitReads) scope.reads = this.readUnit(transaction, unitReads);
        const result = await this.scope.run(scope, work);
        await transaction.commit();
        return result;
      } catch (thrown) {
        transaction.open = false;
        // The first statement that failed made the others fail: it is the cause.
        const error = transaction.failure ?? thrown;
        await client.query('ROLLBACK').catch(() => (broken = true));
        const code = (error as { code?: unknown }).code;
        if (typeof code === 'string' && RETRYABLE.has(code)) {
          if (attempt < this.maxAttempts) {
            this.log.debug('retrying transaction', { code, attempt });
            continue;
          }
          throw new StorageConflictError(
            `PostgreSQL aborted the transaction ${attempt} times (${code}: ${(error as Error).message})`,
            { key: this.schema, status: code, attempts: attempt, cause: error },
          );
        }
        throw error;
      } finally {
        client.release(broken);
      }
    }
  }

  /** Sends the reads a unit begins with (see `UnitReads`); a network unit's network row is locked for its update. */
  private readUnit(
    transaction: PipelinedTransaction,
    unit: { networkId: string; groupId?: string; withContacts?: boolean },
  ): UnitReads {
    const withContacts = unit.groupId !== undefined && unit.withContacts === true;
    const answer =
      unit.groupId === undefined
        ? transaction.query<UnitReadRow>({
            name: this.statementPrefix + 'unit_network',
            text: `SELECT true AS network_row, record::text AS network, false AS group_row, NULL::text AS "group", NULL::text AS contacts
               FROM ${this.s}.networks WHERE network_id = $1 FOR UPDATE`,
            values: [unit.networkId],
          })
        : transaction.query<UnitReadRow>({
            name: this.statementPrefix + (withContacts ? 'unit_whole_group' : 'unit_group'),
            text: `SELECT n.id IS NOT NULL AS network_row, n.record::text AS network, g.id IS NOT NULL AS group_row, g.record::text AS "group",
                 ${withContacts ? this.contactsColumn() : 'NULL::text AS contacts'}
               FROM (SELECT $1::text AS network_id, $2::text AS group_id) k
               LEFT JOIN ${this.s}.networks n ON n.network_id = k.network_id
               LEFT JOIN ${this.s}.groups g ON g.network_ref = n.id AND g.group_id = k.group_id`,
            values: [unit.networkId, unit.groupId],
          });
    const reads = answer.then(({ rows }) => rows[0]);
    // Whoever reads it gets the failure; unread, the transaction reports it at commit.
    reads.catch(() => undefined);
    return {
      networkId: unit.networkId,
      groupId: unit.groupId,
      networkLocked: unit.groupId === undefined,
      withContacts,
      row: reads,
    };
  }

  /** What the unit read as it began about `networkId` (and `groupId`), unless it has written since. */
  private unitReads(networkId: string, groupId?: string): UnitReads | undefined {
    const reads = this.scope.getStore()?.reads;
    if (!reads || !this.inTransaction() || reads.networkId !== networkId) return undefined;
    if (groupId !== undefined && reads.groupId !== groupId) return undefined;
    return reads;
  }

  /** A write in the current unit: what it read as it began may no longer be so. */
  private wrote(): void {
    const scope = this.scope.getStore();
    if (scope) scope.reads = undefined;
  }

  private inTransaction(): boolean {
    return this.scope.getStore()?.transaction.open === true;
  }

  // ---- networks

  async getNetwork(networkId: string): Promise<NetworkRecord | null> {
    const reads = this.unitReads(networkId);
    if (reads) {
      const row = await reads.row;
      return row?.network ? this.decode<NetworkRecord>(row.network, `network ${networkId}`) : null;
    }
    const { rows } = await this.sql<{ record: string }>(
      'get_network',
      `SELECT record::text AS record FROM ${this.s}.networks WHERE network_id = $1 AND record IS NOT NULL`,
      [networkId],
    );
    return rows[0] ? this.decode<NetworkRecord>(rows[0].record, `network ${networkId}`) : null;
  }

  async putNetwork(record: NetworkRecord): Promise<void> {
    await this.write(
      'put_network',
      `INSERT INTO ${this.s}.networks (network_id, record) VALUES ($1, $2::json)
       ON CONFLICT (network_id) DO UPDATE SET record = excluded.record, updated_at = clock_timestamp()`,
      [record.id, encode(record)],
    );
  }

  /**
   * The network's row locked (FOR UPDATE) for the read and the write, in one transaction; a
   * network unit locked and read it as it began already.
   */
  async updateNetwork(networkId: string, update: NetworkUpdate): Promise<void> {
    await this.transaction({}, async () => {
      const reads = this.unitReads(networkId);
      const locked = reads?.networkLocked ? await reads.row : undefined;
      for (let first = true; ; first = false) {
        const row: { record: string | null } | undefined =
          first && locked?.network_row
            ? { record: locked.network }
            : (
                await this.sql<{ record: string | null }>(
                  'lock_network',
                  `SELECT record::text AS record FROM ${this.s}.networks WHERE network_id = $1 FOR UPDATE`,
                  [networkId],
                )
              ).rows[0];
        const next = update(row?.record ? this.decode<NetworkRecord>(row.record, `network ${networkId}`) : null);
        if (next === null) return;
        if (row) {
          await this.write(
            'update_network',
            `UPDATE ${this.s}.networks SET record = $2::json, updated_at = clock_timestamp() WHERE network_id = $1`,
            [networkId, encode(next)],
          );
          return;
        }
        this.wrote();
        const inserted = await this.sql(
          'insert_network',
          `INSERT INTO ${this.s}.networks (network_id, record) VALUES ($1, $2::json) ON CONFLICT (network_id) DO NOTHING`,
          [networkId, encode(next)],
        );
        // Created meanwhile by another writer: lock that row and update it instead.
        if (inserted.rowCount === 1) return;
      }
    });
  }

  async listNetworkIds(): Promise<string[]> {
    const { rows } = await this.sql<{ network_id: string }>(
      'list_networks',
      `SELECT network_id FROM ${this.s}.networks WHERE record IS NOT NULL`,
      [],
    );
    return rows.map((r) => r.network_id);
  }

  /** Ids of the networks that exist and are not deleted (their record is no tombstone), in one statement. */
  async listLiveNetworkIds(): Promise<string[]> {
    const { rows } = await this.sql<{ network_id: string }>(
      'list_live_networks',
      `SELECT network_id FROM ${this.s}.networks WHERE record IS NOT NULL AND (record ->> 'deleted') IS DISTINCT FROM 'true'`,
      [],
    );
    return rows.map((r) => r.network_id);
  }

  async deleteNetwork(networkId: string): Promise<void> {
    this.wrote();
    // Groups, contacts and snapshots go with it (ON DELETE CASCADE).
    await this.sql('delete_network', `DELETE FROM ${this.s}.networks WHERE network_id = $1`, [networkId]);
    await this.snapshots?.deleteNetwork(networkId);
  }

  // ---- groups

  async getGroup(networkId: string, groupId: string): Promise<GroupRecord | null> {
    const reads = this.unitReads(networkId, groupId);
    if (reads) {
      const row = await reads.row;
      return row?.group ? this.decode<GroupRecord>(row.group, `group ${groupId} of network ${networkId}`) : null;
    }
    const { rows } = await this.sql<{ record: string }>(
      'get_group',
      `SELECT g.record::text AS record FROM ${this.s}.groups g JOIN ${this.s}.networks n ON n.id = g.network_ref
       WHERE n.network_id = $1 AND g.group_id = $2 AND g.record IS NOT NULL`,
      [networkId, groupId],
    );
    return rows[0] ? this.decode<GroupRecord>(rows[0].record, `group ${groupId} of network ${networkId}`) : null;
  }

  async putGroup(networkId: string, record: GroupRecord): Promise<void> {
    await this.write(
      'put_group',
      `INSERT INTO ${this.s}.groups (network_ref, group_id, record, attributes) VALUES (${this.s}.ensure_network($1), $2, $3::json, $4::jsonb)
       ON CONFLICT (network_ref, group_id) DO UPDATE SET record = excluded.record, attributes = excluded.attributes, updated_at = clock_timestamp()`,
      [networkId, record.group.id, encode(record), searchableJson(record.group.attributes ?? {})],
    );
  }

  async listGroupIds(networkId: string): Promise<string[]> {
    const { rows } = await this.sql<{ group_id: string }>(
      'list_groups',
      `SELECT g.group_id FROM ${this.s}.groups g JOIN ${this.s}.networks n ON n.id = g.network_ref WHERE n.network_id = $1 AND g.record IS NOT NULL`,
      [networkId],
    );
    return rows.map((r) => r.group_id);
  }

  async deleteGroup(networkId: string, groupId: string): Promise<void> {
    await this.write(
      'delete_group',
      `DELETE FROM ${this.s}.groups g USING ${this.s}.networks n WHERE n.id = g.network_ref AND n.network_id = $1 AND g.group_id = $2`,
      [networkId, groupId],
    );
  }

  async updateGroup(networkId: string, groupId: string, update: GroupUpdate): Promise<void> {
    await this.transaction({}, async () => {
      for (;;) {
        const { rows } = await this.sql<{ id: string; record: string | null }>(
          'lock_group',
          `SELECT g.id, g.record::text AS record FROM ${this.s}.groups g JOIN ${this.s}.networks n ON n.id = g.network_ref
           WHERE n.network_id = $1 AND g.group_id = $2 FOR UPDATE OF g`,
          [networkId, groupId],
        );
        const row = rows[0];
        const next = update(
          row?.record ? this.decode<GroupRecord>(row.record, `group ${groupId} of network ${networkId}`) : null,
        );
        if (next === null) return;
        const attributes = searchableJson(next.group.attributes ?? {});
        if (row) {
          await this.write(
            'update_group',
            `UPDATE ${this.s}.groups SET record = $2::json, attributes = $3::jsonb, updated_at = clock_timestamp() WHERE id = $1`,
            [row.id, encode(next), attributes],
          );
          return;
        }
        this.wrote();
        const inserted = await this.sql(
          'insert_group',
          `INSERT INTO ${this.s}.groups (network_ref, group_id, record, attributes) VALUES (${this.s}.ensure_network($1), $2, $3::json, $4::jsonb)
           ON CONFLICT (network_ref, group_id) DO NOTHING`,
          [networkId, groupId, encode(next), attributes],
        );
        // Created meanwhile by another writer: lock that row and update it instead.
        if (inserted.rowCount === 1) return;
      }
    });
  }

  // ---- contacts

  async getContact(networkId: string, groupId: string, contactId: string): Promise<Contact | null> {
    const { rows } = await this.sql<{ record: string }>(
      'get_contact',
      `SELECT c.record::text AS record FROM ${this.s}.contacts c JOIN ${this.s}.groups g ON g.id = c.group_ref JOIN ${this.s}.networks n ON n.id = g.network_ref
       WHERE n.network_id = $1 AND g.group_id = $2 AND c.contact_id = $3`,
      [networkId, groupId, contactId],
    );
    return rows[0] ? this.decode<Contact>(rows[0].record, `contact ${contactId}`) : null;
  }

  async listContacts(networkId: string, groupId: string): Promise<Contact[]> {
    const { rows } = await this.sql<{ record: string }>(
      'list_contacts',
      `SELECT c.record::text AS record FROM ${this.s}.contacts c JOIN ${this.s}.groups g ON g.id = c.group_ref JOIN ${this.s}.networks n ON n.id = g.network_ref
       WHERE n.network_id = $1 AND g.group_id = $2`,
      [networkId, groupId],
    );
    return rows.map((r) => this.decode<Contact>(r.record, `a contact of group ${groupId}`));
  }

  async getContacts(networkId: string, groupId: string, contactIds: readonly string[]): Promise<Contact[]> {
    if (contactIds.length === 0) return [];
    const { rows } = await this.sql<{ record: string }>(
      'get_contacts',
      `SELECT c.record::text AS record FROM ${this.s}.contacts c JOIN ${this.s}.groups g ON g.id = c.group_ref JOIN ${this.s}.networks n ON n.id = g.network_ref
       WHERE n.network_id = $1 AND g.group_id = $2 AND c.contact_id = ANY($3::text[])`,
      [networkId, groupId, [...new Set(contactIds)]],
    );
    return rows.map((r) => this.decode<Contact>(r.record, `a contact of group ${groupId}`));
  }

  async putContact(networkId: string, groupId: string, contact: Contact): Promise<void> {
    await this.write(
      'put_contact',
      `INSERT INTO ${this.s}.contacts (group_ref, contact_id, record) VALUES (${this.s}.ensure_group($1, $2), $3, $4::json)
       ON CONFLICT (group_ref, contact_id) DO UPDATE SET record = excluded.record, updated_at = clock_timestamp()`,
      [networkId, groupId, contact.id, encode(contact)],
    );
  }

  /** Read-modify-write under a row lock (`FOR UPDATE`): concurrent writers of one contact, in any process, take turns. */
  async updateContact(networkId: string, groupId: string, contactId: string, update: ContactUpdate): Promise<void> {
    await this.transaction({}, async () => {
      for (;;) {
        const { rows } = await this.sql<{ group_ref: string; record: string }>(
          'lock_contact',
          `SELECT c.group_ref, c.record::text AS record FROM ${this.s}.contacts c JOIN ${this.s}.groups g ON g.id = c.group_ref JOIN ${this.s}.networks n ON n.id = g.network_ref
           WHERE n.network_id = $1 AND g.group_id = $2 AND c.contact_id = $3 FOR UPDATE OF c`,
          [networkId, groupId, contactId],
        );
        const row = rows[0];
        const next = update(row ? this.decode<Contact>(row.record, `contact ${contactId}`) : null);
        if (next === null) return;
        if (row) {
          await this.write(
            'update_contact',
            `UPDATE ${this.s}.contacts SET record = $3::json, updated_at = clock_timestamp() WHERE group_ref = $1 AND contact_id = $2`,
            [row.group_ref, contactId, encode(next)],
          );
          return;
        }
        this.wrote();
        const inserted = await this.sql(
          'insert_contact',
          `INSERT INTO ${this.s}.contacts (group_ref, contact_id, record) VALUES (${this.s}.ensure_group($1, $2), $3, $4::json) ON CONFLICT (group_ref, contact_id) DO NOTHING`,
          [networkId, groupId, contactId, encode(next)],
        );
        // Another writer created it first: lock theirs and apply the update to it.
        if (inserted.rowCount === 1) return;
      }
    });
  }

  async deleteContact(networkId: string, groupId: string, contactId: string): Promise<void> {
    await this.write(
      'delete_contact',
      `DELETE FROM ${this.s}.contacts c USING ${this.s}.groups g, ${this.s}.networks n
       WHERE g.id = c.group_ref AND n.id = g.network_ref AND n.network_id = $1 AND g.group_id = $2 AND c.contact_id = $3`,
      [networkId, groupId, contactId],
    );
  }

  // ---- many groups at once (BulkGroupStore)

  /** One statement: the groups (placeholders included) with their contacts, each group's contacts as one array. */
  async readStoredGroups(networkId: string, groupIds?: readonly string[]): Promise<Map<string, StoredGroup>> {
    const reads = groupIds?.length === 1 ? this.unitReads(networkId, groupIds[0]) : undefined;
    if (reads?.withContacts) {
      const row = await reads.row;
      const groupId = reads.groupId!;
      if (!row?.group_row) return new Map();
      const record = row.group ? this.decode<GroupRecord>(row.group, `group ${groupId} of network ${networkId}`) : null;
      return new Map([[groupId, { record, contacts: this.decodeContacts(row.contacts, groupId) }]]);
    }
    type Row = { group_id: string; record: string | null; contacts: string | null };
    const select = `SELECT g.group_id, g.record::text AS record, ${this.contactsColumn()}
      FROM ${this.s}.groups g JOIN ${this.s}.networks n ON n.id = g.network_ref WHERE n.network_id = $1`;
    const { rows } =
      groupIds === undefined
        ? await this.sql<Row>('read_stored_groups', select, [networkId])
        : await this.sql<Row>('read_stored_groups_of', `${select} AND g.group_id = ANY($2::text[])`, [
            networkId,
            [...new Set(groupIds)],
          ]);
    const out = new Map<string, StoredGroup>();
    for (const row of rows) {
      out.set(row.group_id, {
        record:
          row.record === null
            ? null
            : this.decode<GroupRecord>(row.record, `group ${row.group_id} of network ${networkId}`),
        contacts: this.decodeContacts(row.contacts, row.group_id),
      });
    }
    return out;
  }

  /**
   * One statement whatever the number of groups: the records upserted from arrays (`unnest`),
   * then the contacts put and removed, joined to the group rows the upsert returns. One statement
   * is atomic on its own, so a failure leaves nothing half-written. Records travel as one JSON
   * array each (`json_array_elements` keeps every element's text exactly), not as `text[]`, whose
   * every quote the client would escape.
   */
  async writeGroups(networkId: string, writes: readonly GroupWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const groupIds: string[] = [];
    const records: string[] = [];
    const attributes: string[] = [];
    const put: { groupIds: string[]; contactIds: string[]; records: string[] } = {
      groupIds: [],
      contactIds: [],
      records: [],
    };
    const removed: { groupIds: string[]; contactIds: string[] } = { groupIds: [], contactIds: [] };
    for (const write of writes) {
      const groupId = write.record.group.id;
      groupIds.push(groupId);
      records.push(encode(write.record));
      attributes.push(searchableJson(write.record.group.attributes ?? {}));
      for (const contact of write.putContacts) {
        put.groupIds.push(groupId);
        put.contactIds.push(contact.id);
        put.records.push(encode(contact));
      }
      for (const contactId of write.deleteContactIds) {
        removed.groupIds.push(groupId);
        removed.contactIds.push(contactId);
      }
    }
    await this.write(
      'write_groups',
      `WITH network AS (SELECT ${this.s}.ensure_network($1) AS ref),
       written AS (
         INSERT INTO ${this.s}.groups (network_ref, group_id, record, attributes)
         SELECT network.ref, u.group_id, u.record, u.attributes::jsonb
         FROM network, ROWS FROM (unnest($2::text[]), json_array_elements($3::json), json_array_elements($4::json)) AS u (group_id, record, attributes)
         ON CONFLICT (network_ref, group_id) DO UPDATE SET record = excluded.record, attributes = excluded.attributes, updated_at = clock_timestamp()
         RETURNING id, group_id),
       put AS (
         INSERT INTO ${this.s}.contacts (group_ref, contact_id, record)
         SELECT written.id, u.contact_id, u.record
         FROM ROWS FROM (unnest($5::text[]), unnest($6::text[]), json_array_elements($7::json)) AS u (group_id, contact_id, record) JOIN written USING (group_id)
         ON CONFLICT (group_ref, contact_id) DO UPDATE SET record = excluded.record, updated_at = clock_timestamp()),
       removed AS (
         DELETE FROM ${this.s}.contacts c USING written, unnest($8::text[], $9::text[]) AS u (group_id, contact_id)
         WHERE written.group_id = u.group_id AND c.group_ref = written.id AND c.contact_id = u.contact_id)
       SELECT count(*) FROM written`,
      [
        networkId,
        groupIds,
        jsonArray(records),
        jsonArray(attributes),
        put.groupIds,
        put.contactIds,
        jsonArray(put.records),
        removed.groupIds,
        removed.contactIds,
      ],
    );
  }

  // ---- bulk reads (one statement, so one consistent state)

  /** Groups of a network with their contacts, in one statement; `filter.contains` uses the GIN index on attributes. */
  async readGroups(networkId: string, filter: GroupFilter = {}): Promise<GroupRow[]> {
    const { text, values } = this.groupsStatement(networkId, filter);
    type Row = { group_id: string; record: string; contacts: string | null };
    // One group by id is the hot path of loadGroupState: prepared once per connection.
    const { rows } =
      filter.groupId !== undefined && !filter.contains?.length
        ? await this.sql<Row>('read_group', text, values)
        : await this.query<Row>({ text, values });
    return rows.map((row) => ({
      record: this.decode<GroupRecord>(row.record, `group ${row.group_id} of network ${networkId}`),
      contacts: this.decodeContacts(row.contacts, row.group_id),
    }));
  }

  /**
   * The network's record and all its groups with their contacts, in one statement (one state of
   * the database, without a transaction); `record` is `null` for a missing network.
   */
  async readNetwork(networkId: string): Promise<{ record: NetworkRecord | null; groups: GroupRow[] }> {
    const groups = this.groupsStatement(networkId);
    // The network's row first, told apart by its null group id (groups always have one).
    const { rows } = await this.sql<{ group_id: string | null; record: string; contacts: string | null }>(
      'read_network',
      `SELECT NULL::text AS group_id, n.record::text AS record, NULL::text AS contacts FROM ${this.s}.networks n
         WHERE n.network_id = $1 AND n.record IS NOT NULL
       UNION ALL ${groups.text}`,
      groups.values,
    );
    let record: NetworkRecord | null = null;
    const out: GroupRow[] = [];
    for (const row of rows) {
      if (row.group_id === null) {
        record = this.decode<NetworkRecord>(row.record, `network ${networkId}`);
        continue;
      }
      out.push({
        record: this.decode<GroupRecord>(row.record, `group ${row.group_id} of network ${networkId}`),
        contacts: this.decodeContacts(row.contacts, row.group_id),
      });
    }
    return { record, groups: out };
  }

  /** The statement `readGroups` runs (values are parameters, never text); exposed so its plan can be examined. */
  groupsStatement(networkId: string, filter: GroupFilter = {}): { text: string; values: unknown[] } {
    const values: unknown[] = [networkId];
    const conditions = ['n.network_id = $1', 'g.record IS NOT NULL'];
    if (filter.groupId !== undefined) {
      values.push(filter.groupId);
      conditions.push(`g.group_id = $${values.length}`);
    }
    for (const alternatives of filter.contains ?? []) {
      const any = alternatives.map((json) => {
        values.push(searchableJson(json));
        return `g.attributes @> $${values.length}::jsonb`;
      });
      conditions.push(any.length === 1 ? any[0]! : `(${any.join(' OR ')})`);
    }
    const text = `SELECT g.group_id, g.record::text AS record, ${this.contactsColumn()}
      FROM ${this.s}.groups g JOIN ${this.s}.networks n ON n.id = g.network_ref WHERE ${conditions.join(' AND ')}`;
    return { text, values };
  }

  /** When the network's records or contacts were last written, by the database's clock. */
  async lastChanged(networkId: string): Promise<Date | null> {
    const { rows } = await this.sql<{ changed: Date | null }>(
      'last_changed',
      `SELECT greatest(n.updated_at,
         (SELECT max(g.updated_at) FROM ${this.s}.groups g WHERE g.network_ref = n.id),
         (SELECT max(c.updated_at) FROM ${this.s}.contacts c JOIN ${this.s}.groups g ON g.id = c.group_ref WHERE g.network_ref = n.id)) AS changed
       FROM ${this.s}.networks n WHERE n.network_id = $1`,
      [networkId],
    );
    return rows[0]?.changed ?? null;
  }

  // ---- snapshots: in the database's tables, or in the snapshot store given

  async putSnapshot(networkId: string, info: SnapshotInfo, payload: string): Promise<void> {
    if (this.snapshots) return this.snapshots.putSnapshot(networkId, info, payload);
    await this.transaction({}, async () => {
      const created = await this.insertSnapshot(networkId, info);
      if (created && payload.length > 0) await this.insertSnapshotPart(networkId, info.id, 0, payload);
    });
  }

  /**
   * Create-only, in one transaction: the row is inserted first (a second writer of the id waits
   * for this one, then finds it), then the body piece by piece as rows, then the info with size
   * and digest. Nothing of a snapshot is visible until all of it is written.
   */
  async putSnapshotStream(
    networkId: string,
    info: SnapshotInfo,
    chunks: AsyncIterable<string>,
  ): Promise<SnapshotWrite> {
    if (this.snapshots) return this.snapshots.putSnapshotStream(networkId, info, chunks);
    return this.transaction({}, async () => {
      if (!(await this.insertSnapshot(networkId, info))) {
        const existing = await this.getSnapshotInfo(networkId, info.id);
        if (!existing) throw new Error(`snapshot ${info.id} of network ${networkId} vanished while being written`);
        return { created: false, info: existing };
      }
      const digest = new SnapshotDigest();
      let part = 0;
      // Pieces are gathered into parts of about SNAPSHOT_PART_CHARS: a row per part, not per piece.
      let pending: string[] = [];
      let pendingChars = 0;
      for await (const bytes of measured(chunks, digest)) {
        const piece = bytes.toString('utf8');
        pending.push(piece);
        pendingChars += piece.length;
        if (pendingChars < SNAPSHOT_PART_CHARS) continue;
        await this.insertSnapshotPart(networkId, info.id, part++, pending.join(''));
        pending = [];
        pendingChars = 0;
      }
      if (pending.length > 0) await this.insertSnapshotPart(networkId, info.id, part, pending.join(''));
      const stored: SnapshotInfo = { ...info, size: digest.size, sha256: digest.sha256() };
      await this.sql(
        'update_snapshot_info',
        `UPDATE ${this.s}.snapshots s SET info = $3::json FROM ${this.s}.networks n WHERE n.id = s.network_ref AND n.network_id = $1 AND s.snapshot_id = $2`,
        [networkId, info.id, encode(stored)],
      );
      return { created: true, info: stored };
    });
  }

  async getSnapshot(networkId: string, snapshotId: string): Promise<string | null> {
    if (this.snapshots) return this.snapshots.getSnapshot(networkId, snapshotId);
    const { rows } = await this.sql<{ body: string | null }>(
      'get_snapshot',
      `SELECT p.body FROM ${this.s}.snapshots s JOIN ${this.s}.networks n ON n.id = s.network_ref
       LEFT JOIN ${this.s}.snapshot_parts p ON p.network_ref = s.network_ref AND p.snapshot_id = s.snapshot_id
       WHERE n.network_id = $1 AND s.snapshot_id = $2 ORDER BY p.part`,
      [networkId, snapshotId],
    );
    return rows.length === 0 ? null : rows.map((r) => r.body ?? '').join('');
  }

  async getSnapshotInfo(networkId: string, snapshotId: string): Promise<SnapshotInfo | null> {
    if (this.snapshots) return this.snapshots.getSnapshotInfo(networkId, snapshotId);
    const { rows } = await this.sql<{ info: string }>(
      'get_snapshot_info',
      `SELECT s.info::text AS info FROM ${this.s}.snapshots s JOIN ${this.s}.networks n ON n.id = s.network_ref WHERE n.network_id = $1 AND s.snapshot_id = $2`,
      [networkId, snapshotId],
    );
    return rows[0] ? this.decode<SnapshotInfo>(rows[0].info, `info of snapshot ${snapshotId}`) : null;
  }

  async listSnapshots(networkId: string): Promise<SnapshotInfo[]> {
    if (this.snapshots) return this.snapshots.listSnapshots(networkId);
    const { rows } = await this.sql<{ info: string }>(
      'list_snapshots',
      `SELECT s.info::text AS info FROM ${this.s}.snapshots s JOIN ${this.s}.networks n ON n.id = s.network_ref WHERE n.network_id = $1 ORDER BY s.created_at DESC`,
      [networkId],
    );
    return rows.map((r) => this.decode<SnapshotInfo>(r.info, `a snapshot info of network ${networkId}`));
  }

  async deleteSnapshot(networkId: string, snapshotId: string): Promise<boolean> {
    if (this.snapshots) return this.snapshots.deleteSnapshot(networkId, snapshotId);
    const result = await this.sql(
      'delete_snapshot',
      `DELETE FROM ${this.s}.snapshots s USING ${this.s}.networks n WHERE n.id = s.network_ref AND n.network_id = $1 AND s.snapshot_id = $2`,
      [networkId, snapshotId],
    );
    return result.rowCount === 1;
  }

  /** False when a snapshot of that id exists already. */
  private async insertSnapshot(networkId: string, info: SnapshotInfo): Promise<boolean> {
    const result = await this.sql(
      'insert_snapshot',
      `INSERT INTO ${this.s}.snapshots (network_ref, snapshot_id, info, created_at) VALUES (${this.s}.ensure_network($1), $2, $3::json, $4)
       ON CONFLICT (network_ref, snapshot_id) DO NOTHING`,
      [networkId, info.id, encode(info), info.createdAt],
    );
    return result.rowCount === 1;
  }

  private async insertSnapshotPart(networkId: string, snapshotId: string, part: number, body: string): Promise<void> {
    await this.sql(
      'insert_snapshot_part',
      `INSERT INTO ${this.s}.snapshot_parts (network_ref, snapshot_id, part, body) SELECT n.id, $2, $3, $4 FROM ${this.s}.networks n WHERE n.network_id = $1`,
      [networkId, snapshotId, part, body],
    );
  }

  // ---- plumbing

  /** On the current transaction's connection, or the pool. */
  private query<R extends QueryResultRow = QueryResultRow>(config: QueryConfig): Promise<QueryResult<R>> {
    const scope = this.scope.getStore();
    return scope?.transaction.open ? scope.transaction.query<R>(config) : this.pool.query<R>(config);
  }

  private sql<R extends QueryResultRow = QueryResultRow>(
    name: string,
    text: string,
    values: unknown[],
  ): Promise<QueryResult<R>> {
    return this.query<R>({ name: this.statementPrefix + name, text, values });
  }

  /**
   * A write whose result is not read: in a transaction it is sent without waiting for its answer
   * (the statements after it, the COMMIT at the end, follow it in the same round trip) and its
   * failure fails the commit; outside one it is waited for. Either way the unit's first reads are
   * forgotten.
   */
  private async write(name: string, text: string, values: unknown[]): Promise<void> {
    this.wrote();
    const scope = this.scope.getStore();
    if (scope?.transaction.open) scope.transaction.send({ name: this.statementPrefix + name, text, values });
    else await this.pool.query({ name: this.statementPrefix + name, text, values });
  }

  /**
   * A group's contacts as one JSON array of their stored texts (`json` keeps each text as written,
   * so the array is their codec encoding): one value per group for the client to parse, where an
   * array of texts would be parsed element by element (slow at thousands of rows).
   */
  private contactsColumn(): string {
    return `(SELECT json_agg(c.record)::text FROM ${this.s}.contacts c WHERE c.group_ref = g.id) AS contacts`;
  }

  private decodeContacts(text: string | null, groupId: string): Contact[] {
    return text === null ? [] : this.decode<Contact[]>(text, `the contacts of group ${groupId}`);
  }

  private decode<T>(text: string, what: string): T {
    try {
      return decode<T>(text);
    } catch (error) {
      throw new CorruptDataError(
        `cannot read ${what} from PostgreSQL schema ${this.schema}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
}

/** JSON texts as one JSON array text. */
function jsonArray(texts: readonly string[]): string {
  return `[${texts.join(',')}]`;
}

/** JSON escapes `jsonb` refuses: `\u0000`, and lone surrogates (the only ones JSON.stringify escapes); `\\` is matched to keep the scan aligned. */
const UNSEARCHABLE_ESCAPE = /\\(?:\\|u0000|ud[89a-f][0-9a-f]{2})/g;

/**
 * Attributes as the `jsonb` the GIN index holds: each value in the codec's JSON under its plain
 * key (so a key named `$type` is not escaped at the top), in a form `jsonb` accepts. Lossy only
 * for the escapes above, and the same way for stored attributes and query values, so equal
 * values stay equal; queries confirm every match on the decoded group anyway.
 */
export function searchableJson(attributes: Record<string, unknown>): string {
  const text = `{${Object.entries(attributes)
    .map(([key, value]) => `${JSON.stringify(key)}:${encode(value)}`)
    .join(',')}}`;
  return text.replace(UNSEARCHABLE_ESCAPE, (escape) =>
    escape === '\\\\' ? escape : escape === '\\u0000' ? '\\\\u0000' : '\\ufffd',
  );
}
