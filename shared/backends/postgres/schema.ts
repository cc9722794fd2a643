import { createHash } from 'node:crypto';
import { escapeIdentifier, type PoolClient } from 'pg';
import { InvalidArgumentError } from '../../errors';

/** Schema names are written into SQL (they cannot be parameters), so only plain lowercase identifiers pass. */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export function validateSchemaName(schema: unknown, option = 'schema'): string {
  if (typeof schema !== 'string' || !IDENTIFIER.test(schema)) {
    throw new InvalidArgumentError(
      `${option} must be a lowercase SQL identifier (letters, digits and underscores, at most 63, not starting with a digit), not ${JSON.stringify(schema)}`,
    );
  }
  return schema;
}

/**
 * A 64-bit advisory lock key for `parts`, as a decimal string: the first 8 bytes of their
 * SHA-256. Keys are per database, so the schema is one of the parts.
 */
export function advisoryKey(...parts: string[]): string {
  const digest = createHash('sha256').update(parts.join('\u0000'), 'utf8').digest();
  return digest.readBigInt64BE(0).toString();
}

/**
 * The migrations, oldest first; `initialize()` applies the ones a database lacks, each once,
 * in one transaction under an advisory lock, so concurrent starts are safe. Never edit one
 * that has shipped: add another.
 *
 * Rows have surrogate keys so that no index entry holds more than one id (ids are up to 1024
 * bytes and a B-tree entry at most about 2700). Records are `json`, not `jsonb`: `json` keeps
 * the codec's text exactly (key order, `\u0000`, lone surrogates), and only group attributes,
 * the part queries read, are `jsonb` with a GIN index. A network, group or contact may exist
 * as a placeholder row without a record (its contacts or groups arrived first).
 */
export function migrations(schema: string): Array<{ version: number; description: string; sql: string }> {
  const s = `"${validateSchemaName(schema)}"`;
  return [
    {
      version: 1,
      description: 'networks, groups, contacts, snapshots',
      sql: `
CREATE TABLE ${s}.networks (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  network_id text NOT NULL UNIQUE,
  record json,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE ${s}.groups (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  network_ref bigint NOT NULL REFERENCES ${s}.networks (id) ON DELETE CASCADE,
  group_id text NOT NULL,
  record json,
  attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  UNIQUE (network_ref, group_id)
);
CREATE INDEX groups_attributes_gin ON ${s}.groups USING gin (attributes jsonb_path_ops);
CREATE TABLE ${s}.contacts (
  group_ref bigint NOT NULL REFERENCES ${s}.groups (id) ON DELETE CASCADE,
  contact_id text NOT NULL,
  record json NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (group_ref, contact_id)
);
CREATE TABLE ${s}.snapshots (
  network_ref bigint NOT NULL REFERENCES ${s}.networks (id) ON DELETE CASCADE,
  snapshot_id text NOT NULL,
  info json NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (network_ref, snapshot_id)
);
CREATE TABLE ${s}.snapshot_parts (
  network_ref bigint NOT NULL,
  snapshot_id text NOT NULL,
  part integer NOT NULL,
  body text NOT NULL,
  PRIMARY KEY (network_ref, snapshot_id, part),
  FOREIGN KEY (network_ref, snapshot_id) REFERENCES ${s}.snapshots (network_ref, snapshot_id) ON DELETE CASCADE
);
-- The row of a network or group, created as a placeholder when missing; one round trip for writers.
CREATE FUNCTION ${s}.ensure_network(p_network text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE ref bigint;
BEGIN
  SELECT id INTO ref FROM ${s}.networks WHERE network_id = p_network;
  IF ref IS NULL THEN
    INSERT INTO ${s}.networks (network_id) VALUES (p_network) ON CONFLICT (network_id) DO NOTHING RETURNING id INTO ref;
    IF ref IS NULL THEN SELECT id INTO ref FROM ${s}.networks WHERE network_id = p_network; END IF;
  END IF;
  RETURN ref;
END $$;
CREATE FUNCTION ${s}.ensure_group(p_network text, p_group text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n_ref bigint; ref bigint;
BEGIN
  n_ref := ${s}.ensure_network(p_network);
  SELECT id INTO ref FROM ${s}.groups WHERE network_ref = n_ref AND group_id = p_group;
  IF ref IS NULL THEN
    INSERT INTO ${s}.groups (network_ref, group_id) VALUES (n_ref, p_group) ON CONFLICT (network_ref, group_id) DO NOTHING RETURNING id INTO ref;
    IF ref IS NULL THEN SELECT id INTO ref FROM ${s}.groups WHERE network_ref = n_ref AND group_id = p_group; END IF;
  END IF;
  RETURN ref;
END $$;
`,
    },
  ];
}

/**
 * Creates the schema and applies missing migrations, all in one transaction that holds an
 * advisory lock on the schema: a second caller waits, then finds nothing left to do. Returns
 * the versions applied by this call.
 */
export async function migrate(client: PoolClient, schema: string, grantTo: readonly string[] = []): Promise<number[]> {
  const s = `"${validateSchemaName(schema)}"`;
  const wanted = migrations(schema).map((m) => m.version);
  // Up to date: nothing to lock or create, so a user without CREATE rights (a reader) can start.
  const { rows: found } = await client.query<{ table: string | null }>('SELECT to_regclass($1)::text AS table', [
    `${s}.schema_migrations`,
  ]);
  if (found[0]?.table) {
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${s}.schema_migrations`);
    const applied = new Set(rows.map((r) => r.version));
    if (wanted.every((version) => applied.has(version))) {
      // Roles added since the tables were made get their rights from the owner's next start.
      if (grantTo.length > 0 && (await ownsSchema(client, schema))) await grantAccess(client, schema, grantTo);
      return [];
    }
  }
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [advisoryKey('migrations', schema)]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${s}.schema_migrations`);
    const applied = new Set(rows.map((r) => r.version));
    const done: number[] = [];
    for (const migration of migrations(schema)) {
      if (applied.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query(`INSERT INTO ${s}.schema_migrations (version, description) VALUES ($1, $2)`, [
        migration.version,
        migration.description,
      ]);
      done.push(migration.version);
    }
    // In the same transaction: roles waiting on the lock find the tables usable once it commits.
    await grantAccess(client, schema, grantTo);
    await client.query('COMMIT');
    return done;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * A role other users of the store connect as (Cloud SQL IAM users are named after their
 * account: `spine-persist@my-project.iam`). PostgreSQL cuts names at 63 bytes, so longer ones
 * would silently name another role.
 */
export function validateRoleName(role: unknown): string {
  if (typeof role !== 'string' || role === '' || Buffer.byteLength(role) > 63 || /[\u0000-\u001f\u007f]/.test(role)) {
    throw new InvalidArgumentError(
      `grantTo role ${JSON.stringify(role)} is invalid: expected a role name of 1 to 63 bytes without control characters`,
    );
  }
  return role;
}

async function ownsSchema(client: PoolClient, schema: string): Promise<boolean> {
  const { rows } = await client.query<{ owns: boolean }>(
    'SELECT pg_get_userbyid(nspowner) = current_user AS owns FROM pg_namespace WHERE nspname = $1',
    [schema],
  );
  return rows[0]?.owns === true;
}

/**
 * Lets each role read and write the store's rows: the tables belong to whichever user ran the
 * migrations, and other users (other functions' IAM users) start without rights on them.
 * Idempotent; the default privileges cover tables later migrations create.
 */
export async function grantAccess(client: PoolClient, schema: string, roles: readonly string[]): Promise<void> {
  if (roles.length === 0) return;
  const s = escapeIdentifier(validateSchemaName(schema));
  const to = roles.map((role) => escapeIdentifier(validateRoleName(role))).join(', ');
  await client.query(`GRANT USAGE ON SCHEMA ${s} TO ${to}`);
  await client.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${to}`);
  await client.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${s} TO ${to}`);
  await client.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${s} TO ${to}`);
  await client.query(`ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${to}`);
  await client.query(`ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT USAGE, SELECT ON SEQUENCES TO ${to}`);
  await client.query(`ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT EXECUTE ON FUNCTIONS TO ${to}`);
}
