/**
 * What PostgresStorage promises beyond the conformance suite, against a real PostgreSQL server:
 * atomic blend semantics between separate instances (as separate processes would be), safe
 * migrations, schema isolation, SQL queries on the GIN index, cascading deletes, snapshots in
 * the database or in Cloud Storage, state that outlives an instance.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { compareStamps, HybridLogicalClock } from '../../shared/hlc';
import {
  growArray,
  growSet,
  InvalidArgumentError,
  InvalidIdError,
  MemoryStorage,
  type GroupQuery,
  type GrowArray,
  type GrowSet,
  type GroupState,
  type NetworkState,
  type NetworkStorage,
} from 'super-spine';
import { loadSettings } from '../../shared/settings';
import {
  advisoryKey,
  cloudSqlIamUser,
  PostgresStorage,
  queryFilter,
  type PostgresStorageOptions,
} from '../../shared/backends/postgres';
import { createMemoryLogger } from '../helpers/emulators';
import { useStorageEmulator } from '../helpers/gcs';
import { freshSchema, usePostgres } from '../helpers/postgres';
import { describeSharedTombstones } from '../helpers/shared-tombstones';

jest.setTimeout(60_000);

const opened: PostgresStorage[] = [];
let sql: Client;

// Registered before the server's hooks, so it runs first (jest runs afterAll hooks in the order
// they were registered) and closes the connections before the server stops.
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close().catch(() => undefined)));
  await sql?.end();
});

const postgres = usePostgres();
const gcs = useStorageEmulator('pg-storage-test');

beforeAll(async () => {
  sql = new Client({ connectionString: postgres.url });
  await sql.connect();
});

function open(options: Partial<PostgresStorageOptions> = {}): PostgresStorage {
  const storage = new PostgresStorage({
    connectionString: postgres.url,
    poolSize: 2,
    logger: createMemoryLogger(),
    ...options,
  });
  opened.push(storage);
  return storage;
}

const net = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

function group(id: string, attributes?: Record<string, unknown>, contents: Record<string, unknown> = {}): GroupState {
  const contacts = Object.entries(contents).map(([cid, content]) => ({
    id: cid,
    groupId: id,
    content,
    blendMode: 'accept-last' as const,
  }));
  return {
    group: {
      id,
      name: id,
      contactIds: contacts.map((c) => c.id),
      wireIds: [],
      subgroupIds: [],
      boundaryContactIds: [],
      ...(attributes ? { attributes } : {}),
    },
    contacts: new Map(contacts.map((c) => [c.id, c])),
    wires: new Map(),
  };
}

describe('concurrent writers in separate instances', () => {
  it('50 writers, each with its own pool, lose no update of one merge contact (grow set and grow array)', async () => {
    const n = net('merge50');
    const writers = Array.from({ length: 50 }, (_, i) => open({ writerId: `writer-${i}`, poolSize: 1 }));
    await Promise.all(writers.map((w) => w.initialize()));
    const perWriter = 4;
    await Promise.all(
      writers.map(async (writer, i) => {
        for (let k = 0; k < perWriter; k++) {
          await writer.saveContactContent(n, 'hot', 'set', growSet([`w${i}-${k}`]), { blendMode: 'merge' });
          await writer.saveContactContent(n, 'hot', 'log', growArray([`w${i}-${k}`]), { blendMode: 'merge' });
        }
      }),
    );
    const reader = open();
    const set = ((await reader.loadContactContent(n, 'hot', 'set')) as GrowSet<string>).values;
    const log = ((await reader.loadContactContent(n, 'hot', 'log')) as GrowArray<string>).items;
    const expected = writers.flatMap((_, i) => Array.from({ length: perWriter }, (_, k) => `w${i}-${k}`)).sort();
    expect([...set].sort()).toEqual(expected);
    // A grow array appends: a lost or doubled update would show in its length.
    expect(log).toHaveLength(expected.length);
    expect([...log].sort()).toEqual(expected);
  });

  it('50 writers converge an accept-last contact on the newest stamp, whatever the arrival order', async () => {
    const n = net('last50');
    const base = Date.now();
    // Clocks that collide on wall time: the tie is broken by writer id, never by arrival.
    const writes = Array.from({ length: 50 }, (_, i) => {
      const clock = new HybridLogicalClock(`clock-${i}`, () => base + (i % 7));
      return { stamp: clock.tick(), writerId: `clock-${i}`, seq: 1, content: { from: i } };
    });
    const newest = [...writes].sort((a, b) => compareStamps(b.stamp, a.stamp))[0]!;
    const writers = writes.map((_, i) => open({ writerId: `applier-${i}`, poolSize: 1 }));
    // Delivered twice each, in a shuffled order, by different instances.
    const deliveries = [...writes, ...writes]
      .map((write, i) => ({ write, by: writers[(i * 17) % writers.length]! }))
      .sort(() => Math.random() - 0.5);
    await Promise.all(deliveries.map(({ write, by }) => by.applyContactWrite(n, 'g', 'c', write)));
    expect(await open().loadContactContent(n, 'g', 'c')).toEqual(newest.content);
  });

  it('keeps a group deleted by one instance deleted when another delivers an older write later', async () => {
    const n = net('tomb');
    const [a, b] = [open({ writerId: 'a' }), open({ writerId: 'b' })];
    const old = new HybridLogicalClock('late', () => Date.now() - 60_000).tick();
    await a.saveContactContent(n, 'g', 'c', 1);
    await a.deleteGroup(n, 'g');
    await b.applyContactWrite(n, 'g', 'c', { stamp: old, writerId: 'late', seq: 1, content: 2 });
    expect(await b.loadGroupState(n, 'g')).toBeNull();
  });
});

describe('migrations', () => {
  it('are applied once: a second initialize and two concurrent ones on a new schema find nothing left to do', async () => {
    const schema = freshSchema('migrate');
    const [first, second] = [open({ schema }), open({ schema })];
    await Promise.all([first.initialize(), second.initialize()]);
    const applied = [first.postgres.appliedMigrations, second.postgres.appliedMigrations].sort(
      (x, y) => y.length - x.length,
    );
    expect(applied).toEqual([[1], []]);
    const third = open({ schema });
    await third.initialize();
    expect(third.postgres.appliedMigrations).toEqual([]);
    const { rows } = await sql.query(`SELECT version FROM ${schema}.schema_migrations`);
    expect(rows).toEqual([{ version: 1 }]);
  });

  it('start without DDL once up to date, so a user that may only read and write rows can initialize', async () => {
    const schema = freshSchema('rights');
    const owner = open({ schema });
    await owner.saveContactContent('n', 'g', 'c', 'by owner');
    const role = `writer_${schema}`;
    await sql.query(`CREATE ROLE ${role} LOGIN`);
    await sql.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
    await sql.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
    const url = new URL(postgres.url);
    url.username = role;
    const limited = open({ schema, connectionString: url.toString() });
    await limited.initialize();
    expect(await limited.loadContactContent('n', 'g', 'c')).toBe('by owner');
    await limited.saveContactContent('n', 'g', 'c', 'by writer');
    expect(await owner.loadContactContent('n', 'g', 'c')).toBe('by writer');
  });

  it("grant read and write on their rows to the roles in grantTo (other functions' IAM users), also to roles added later", async () => {
    const schema = freshSchema('grants');
    const [persist, health] = [`spine-persist@${schema}.iam`, `spine-health@${schema}.iam`];
    for (const role of [persist, health]) await sql.query(`CREATE ROLE ${sql.escapeIdentifier(role)} LOGIN`);
    const as = (role: string) => {
      const url = new URL(postgres.url);
      url.username = role;
      return open({ schema, connectionString: url.toString() });
    };
    const owner = open({ schema, grantTo: [persist] });
    await owner.saveContactContent('n', 'g', 'c', 'by owner');
    const granted = as(persist);
    await granted.initialize();
    expect(await granted.loadContactContent('n', 'g', 'c')).toBe('by owner');
    await granted.saveContactContent('n', 'g', 'c', 'by persist');
    expect(await owner.loadContactContent('n', 'g', 'c')).toBe('by persist');
    // Not named: no rights, until the owner's next start names it too.
    const ungranted = as(health);
    await expect(ungranted.initialize().then(() => ungranted.loadContactContent('n', 'g', 'c'))).rejects.toThrow(
      /permission denied/,
    );
    await open({ schema, grantTo: [persist, health] }).initialize();
    const later = as(health);
    await later.initialize();
    expect(await later.loadContactContent('n', 'g', 'c')).toBe('by persist');
    await later.saveContactContent('n', 'g2', 'c', 'by health');
    expect(await owner.loadContactContent('n', 'g2', 'c')).toBe('by health');
    expect(() => open({ schema, grantTo: ['x'.repeat(64)] })).toThrow(/grantTo role/);
  });

  it('refuses a schema name that is not a plain identifier, before touching the database', async () => {
    for (const schema of ['Spine', 'x"; DROP SCHEMA spine; --', '1abc', '', 'a'.repeat(64)]) {
      expect(() => open({ schema })).toThrow(InvalidArgumentError);
    }
    expect(() => new PostgresStorage({ connectionString: 'mysql://x' })).toThrow(/postgresql:\/\//);
    expect(() => new PostgresStorage({ connectionString: postgres.url, poolSize: 0 })).toThrow(/poolSize/);
    expect(() => new PostgresStorage({ connectionString: postgres.url, snapshots: 'disk' as never })).toThrow(
      /snapshots/,
    );
  });
});

describe('schemas', () => {
  it('isolate deployments sharing a database', async () => {
    const n = net('iso');
    const [left, right] = [open({ schema: freshSchema('left') }), open({ schema: freshSchema('right') })];
    await left.saveContactContent(n, 'g', 'c', 'left only');
    expect(await left.loadContactContent(n, 'g', 'c')).toBe('left only');
    expect(await right.exists(n)).toBe(false);
    expect(await right.listNetworks()).not.toContain(n);
  });
});

describe('queryGroups', () => {
  it('answers from SQL on the GIN index of attributes, as groupMatches would', async () => {
    const schema = freshSchema('query');
    const storage = open({ schema });
    await storage.initialize();
    const n = net('query');
    // Many groups, written by SQL so the planner has a table worth an index.
    await sql.query(`SELECT ${schema}.ensure_network($1)`, [n]);
    await sql.query(
      `INSERT INTO ${schema}.groups (network_ref, group_id, record, attributes)
       SELECT (SELECT id FROM ${schema}.networks WHERE network_id = $1), 'bulk-' || i,
         json_build_object('group', json_build_object('id', 'bulk-' || i, 'name', 'bulk', 'contactIds', '[]'::json, 'wireIds', '[]'::json, 'subgroupIds', '[]'::json,
           'boundaryContactIds', '[]'::json, 'attributes', json_build_object('bassline.tags', json_build_array('bulk'), 'n', i)),
           'wires', json_build_object('$type', 'Map', 'entries', '[]'::json)),
         jsonb_build_object('bassline.tags', jsonb_build_array('bulk'), 'n', i)
       FROM generate_series(1, 5000) AS i`,
      [n],
    );
    await sql.query(`ANALYZE ${schema}.groups`);
    // And groups with attributes of every kind, through the API, mirrored into MemoryStorage.
    const memory = new MemoryStorage();
    const special: Array<[string, Record<string, unknown>]> = [
      ['tags-array', { 'bassline.tags': ['red', 'blue'], 'bassline.author': 'ada' }],
      ['tags-set', { 'bassline.tags': new Set(['red', 'green']), 'bassline.type': 'sensor' }],
      ['nul', { label: 'a\u0000b', 'bassline.tags': ['red'] }],
      ['escaped-key', { $type: 'odd', nested: { $type: 'Map' } }],
      [
        'map-value',
        {
          where: new Map<unknown, unknown>([
            ['x', 1],
            ['y', new Date(0)],
          ]),
          'bassline.author': 'bob',
        },
      ],
      ['lone-surrogate', { label: '\ud800', 'bassline.tags': ['blue'] }],
      ['none', {}],
    ];
    for (const [id, attributes] of special) {
      await storage.saveGroupState(n, id, group(id, attributes, { c: id }));
      await memory.saveGroupState(n, id, group(id, attributes, { c: id }));
    }
    const queries: GroupQuery[] = [
      { tags: ['red'] },
      { tags: ['red', 'green'] },
      { author: 'ada' },
      { type: 'sensor', tags: ['green'] },
      { attributes: { label: 'a\u0000b' } },
      { attributes: { $type: 'odd' } },
      { attributes: { nested: { $type: 'Map' } } },
      {
        attributes: {
          where: new Map<unknown, unknown>([
            ['y', new Date(0)],
            ['x', 1],
          ]),
        },
      },
      { attributes: { label: '\ud800' } },
      { attributes: { n: 4321 } },
    ];
    const ids = (groups: GroupState[]) => groups.map((g) => g.group.id).sort();
    for (const query of queries) {
      const expected = query.attributes?.n === 4321 ? ['bulk-4321'] : ids(await memory.queryGroups(n, query));
      expect({ query, found: ids(await storage.queryGroups(n, query)) }).toEqual({ query, found: expected });
    }
    expect(
      (await storage.queryGroups(n, { tags: ['red'] })).find((g) => g.group.id === 'nul')?.contacts.get('c')?.content,
    ).toBe('nul');

    const indexes = await sql.query(
      `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'groups_attributes_gin'`,
      [schema],
    );
    expect(indexes.rows[0]?.indexdef).toMatch(/USING gin \(attributes jsonb_path_ops\)/);
    // The statement queryGroups runs, as the planner would run it: on the GIN index.
    const statement = storage.postgres.groupsStatement(n, queryFilter({ tags: ['bulk'], attributes: { n: 77 } }));
    const plan = await sql.query(`EXPLAIN (FORMAT JSON) ${statement.text}`, statement.values);
    expect(JSON.stringify(plan.rows[0])).toContain('"Index Name":"groups_attributes_gin"');
    expect(ids(await storage.queryGroups(n, { tags: ['bulk'], attributes: { n: 77 } }))).toEqual(['bulk-77']);
  });
});

/** A network of `groups` groups with `contacts` contacts each, tags and attributes on every group. */
function scaleNetwork(groups: number, contacts: number, revision = 0): NetworkState {
  const states = Array.from({ length: groups }, (_, i) => {
    const contents = Object.fromEntries(Array.from({ length: contacts }, (_, k) => [`c${k}`, { i, k, revision }]));
    return group(`g${i}`, { 'bassline.tags': ['scale', `t${i % 10}`], serial: i }, contents);
  });
  return { groups: new Map(states.map((s) => [s.group.id, s] as const)), rootGroupId: 'g0', currentGroupId: 'g0' };
}

/** Statements sent to PostgreSQL by every client of this process while `work` runs (nothing else may run meanwhile). */
async function statementsDuring<T>(work: () => Promise<T>): Promise<{ result: T; statements: number }> {
  const spy = jest.spyOn(Client.prototype, 'query');
  try {
    const result = await work();
    return { result, statements: spy.mock.calls.length };
  } finally {
    spy.mockRestore();
  }
}

/**
 * Statements sent to PostgreSQL by every client of this process while `work` runs (nothing else
 * may run meanwhile), and the round trips they took: a statement sent while an earlier one of
 * its connection still awaits its answer rides along (pipelined); any other waited for one.
 */
async function roundTripsDuring<T>(
  work: () => Promise<T>,
): Promise<{ result: T; statements: number; roundTrips: number }> {
  const query = Client.prototype.query;
  const unanswered = new Map<Client, number>();
  let statements = 0;
  let roundTrips = 0;
  const spy = jest.spyOn(Client.prototype, 'query').mockImplementation(function (this: Client, ...args: unknown[]) {
    statements++;
    const waiting = unanswered.get(this) ?? 0;
    if (waiting === 0 || !this.pipeline) roundTrips++;
    unanswered.set(this, waiting + 1);
    const answered = () => unanswered.set(this, unanswered.get(this)! - 1);
    // The pool passes a callback; everyone else takes the promise.
    const callback = args.findIndex((arg) => typeof arg === 'function');
    if (callback >= 0) {
      const original = args[callback] as (...results: unknown[]) => void;
      args[callback] = (...results: unknown[]) => {
        answered();
        original(...results);
      };
    }
    const result = (query as (...a: unknown[]) => unknown).apply(this, args);
    if (callback < 0) void (result as Promise<unknown>).then(answered, answered);
    return result as never;
  });
  try {
    const result = await work();
    return { result, statements, roundTrips };
  } finally {
    spy.mockRestore();
  }
}

describe('at network scale', () => {
  it('saves, loads, queries and snapshots a whole network in a few statements, whatever the number of groups', async () => {
    const storage = open({ schema: freshSchema('scale') });
    const memory = new MemoryStorage();
    const n = net('scale');
    await storage.initialize();
    for (const revision of [0, 1]) {
      // The first save creates every row, the second replaces them (contacts rebased on the new stamp).
      const saved = await statementsDuring(() => storage.saveNetworkState(n, scaleNetwork(300, 4, revision)));
      await memory.saveNetworkState(n, scaleNetwork(300, 4, revision));
      expect(saved.statements).toBeLessThanOrEqual(10);
    }
    // A save that leaves groups out removes them, as on every backend.
    const smaller = scaleNetwork(300, 4, 1);
    smaller.groups.delete('g7');
    await storage.saveNetworkState(n, smaller);
    await memory.saveNetworkState(n, smaller);

    const loaded = await statementsDuring(() => storage.loadNetworkState(n));
    expect(loaded.statements).toBe(1);
    expect(loaded.result).toEqual(await memory.loadNetworkState(n));
    expect(loaded.result?.groups.size).toBe(299);

    const queried = await statementsDuring(() => storage.queryGroups(n, { tags: ['t3'] }));
    expect(queried.statements).toBe(1);
    // Backends agree on the groups found, not on their order.
    const byId = (groups: GroupState[]) => [...groups].sort((a, b) => (a.group.id < b.group.id ? -1 : 1));
    expect(byId(queried.result)).toEqual(byId(await memory.queryGroups(n, { tags: ['t3'] })));
    expect(queried.result).toHaveLength(30);

    const snapshot = await statementsDuring(() => storage.saveSnapshot(n, 'at scale'));
    expect(snapshot.statements).toBeLessThanOrEqual(12);
    expect(await storage.loadSnapshot(n, snapshot.result)).toEqual(await memory.loadNetworkState(n));
  });

  it('saves a group in 2 round trips of 4 statements, whatever its size; a network in 3; a contact write in 3', async () => {
    const storage = open({ schema: freshSchema('trips') });
    const memory = new MemoryStorage();
    const n = net('trips');
    await storage.initialize();
    // A new network's row is created on the way; a save over it: BEGIN with the row locked, its
    // update with the groups read, their write with COMMIT.
    const created = await roundTripsDuring(() => storage.saveNetworkState(n, scaleNetwork(40, 3)));
    expect(created.roundTrips).toBeLessThanOrEqual(5);
    const replaced = await roundTripsDuring(() => storage.saveNetworkState(n, scaleNetwork(40, 3, 1)));
    expect(replaced.roundTrips).toBeLessThanOrEqual(3);
    await memory.saveNetworkState(n, scaleNetwork(40, 3, 1));
    // BEGIN with the locks and the group read whole; the upsert and COMMIT: the record the
    // admission needs comes with the contacts the save rebases, in the first trip.
    for (const [id, contacts] of [
      ['g1', 1],
      ['g2', 60],
      ['new', 5],
    ] as const) {
      const contents = Object.fromEntries(Array.from({ length: contacts }, (_, k) => [`c${k}`, { k, saved: id }]));
      const saved = await roundTripsDuring(() => storage.saveGroupState(n, id, group(id, { serial: 1 }, contents)));
      await memory.saveGroupState(n, id, group(id, { serial: 1 }, contents));
      expect({ group: id, statements: saved.statements, roundTrips: saved.roundTrips }).toEqual({
        group: id,
        statements: 4,
        roundTrips: 2,
      });
    }
    // Side by side, each save still takes its 2 trips on its own connection.
    const side = await roundTripsDuring(() =>
      Promise.all(['g3', 'g4', 'g5'].map((id) => storage.saveGroupState(n, id, group(id, {}, { c0: 'side' })))),
    );
    expect({ statements: side.statements, roundTrips: side.roundTrips }).toEqual({ statements: 12, roundTrips: 6 });
    await Promise.all(['g3', 'g4', 'g5'].map((id) => memory.saveGroupState(n, id, group(id, {}, { c0: 'side' }))));
    // A lone contact write: BEGIN with the records; the contact's row locked; its update with COMMIT.
    const written = await roundTripsDuring(() => storage.saveContactContent(n, 'g2', 'c7', 'written'));
    expect(written.roundTrips).toBe(3);
    await memory.saveContactContent(n, 'g2', 'c7', 'written');
    expect(await storage.loadNetworkState(n)).toEqual(await memory.loadNetworkState(n));
  });

  it('answers a query on the GIN index, reading the contacts of the matching groups only', async () => {
    const schema = freshSchema('scale_query');
    const storage = open({ schema });
    const n = net('scale-query');
    await storage.saveNetworkState(n, scaleNetwork(2000, 2));
    await sql.query(`ANALYZE ${schema}.groups, ${schema}.contacts`);
    type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };
    const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];
    const planOf = async (query: GroupQuery) => {
      const statement = storage.postgres.groupsStatement(n, queryFilter(query));
      const { rows } = await sql.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${statement.text}`, statement.values);
      return nodes(rows[0]['QUERY PLAN'][0].Plan as PlanNode);
    };
    // The contacts are read once per group returned: the subquery runs once per matching group.
    const contactLoops = (plan: PlanNode[]) =>
      plan.filter((node) => node['Parent Relationship'] === 'SubPlan').map((node) => node['Actual Loops']);

    const byAttribute = await planOf({ attributes: { serial: 42 } });
    expect(byAttribute.map((node) => node['Index Name'])).toContain('groups_attributes_gin');
    expect(contactLoops(byAttribute)).toEqual([1]);
    const byTag = await planOf({ tags: ['t3'] });
    expect(contactLoops(byTag)).toEqual([200]);
    expect((await storage.queryGroups(n, { tags: ['t3'] })).map((g) => g.contacts.size)).toEqual(
      new Array(200).fill(2),
    );
  });

  it('saves groups side by side: a group save waits only for writers of its own group', async () => {
    const schema = freshSchema('side_by_side');
    const storage = open({ schema, poolSize: 4 });
    const n = net('side');
    await storage.saveNetworkState(n, scaleNetwork(3, 1));
    // Another instance in the middle of a contact write to g1: the network's lock shared, g1's exclusive.
    const writer = new Client({ connectionString: postgres.url });
    await writer.connect();
    try {
      await writer.query('SELECT pg_advisory_lock_shared($1::bigint), pg_advisory_lock($2::bigint)', [
        advisoryKey(schema, 'network', n),
        advisoryKey(schema, 'group', n, 'g1'),
      ]);
      // Other groups are saved meanwhile, many at once.
      await Promise.all(
        ['g0', 'g2', 'g3'].map((id) => storage.saveGroupState(n, id, group(id, { serial: 1 }, { c0: 'new' }))),
      );
      // g1's save waits for the writer, in PostgreSQL.
      let g1Saved = false;
      const g1 = storage.saveGroupState(n, 'g1', group('g1', {}, { c0: 'new' })).then(() => (g1Saved = true));
      const waiting = async () =>
        Number(
          (await sql.query(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`)).rows[0].count,
        );
      for (const deadline = Date.now() + 20_000; (await waiting()) === 0;) {
        if (Date.now() > deadline) throw new Error('the save of g1 never waited for the lock of g1');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(g1Saved).toBe(false);
      await writer.query('SELECT pg_advisory_unlock_all()');
      await g1;
    } finally {
      await writer.end();
    }
    const state = await storage.loadNetworkState(n);
    expect([...state!.groups.keys()]).toEqual(['g0', 'g1', 'g2', 'g3']);
    expect([...state!.groups.values()].map((g) => g.contacts.get('c0')?.content)).toEqual(['new', 'new', 'new', 'new']);
  });
});

describe('pipelined transactions', () => {
  it('fail as a whole on a write nobody waited for, reporting its error (not the aborts it caused), and keep nothing', async () => {
    const storage = open({ schema: freshSchema('pipelined') });
    await storage.initialize();
    const store = storage.postgres;
    const n = net('pipelined');
    const now = new Date();
    const record = { id: n, rootGroupId: 'g', currentGroupId: 'g', createdAt: now, updatedAt: now };
    const write = { record: { group: group('g').group, wires: new Map() }, putContacts: [], deleteContactIds: [] };
    let readAfter: unknown;
    const failed = store
      .transaction({}, async () => {
        await store.putNetwork(record);
        // The same group twice: PostgreSQL refuses the statement (21000), after it was sent unwaited.
        await store.writeGroups(n, [write, write]);
        // Sent behind it, so aborted by it (25P02); the transaction reports the cause.
        readAfter = await store.getNetwork(n).catch((error: { code?: string }) => error.code);
        return 'committed';
      })
      .catch((error: { code?: string }) => ({ code: error.code }));
    expect(await failed).toEqual({ code: '21000' });
    expect(readAfter).toBe('25P02');
    expect(await store.getNetwork(n)).toBeNull();
    // The connection went back to the pool usable.
    await storage.saveContactContent(n, 'g', 'c', 'after');
    expect(await storage.loadContactContent(n, 'g', 'c')).toBe('after');
  });
});

describe('deletes', () => {
  it('cascade from a network to its groups, contacts and snapshots, and from a group to its contacts', async () => {
    const schema = freshSchema('cascade');
    const storage = open({ schema });
    const n = net('cascade');
    await storage.saveNetworkState(n, {
      groups: new Map([
        ['a', group('a', {}, { x: 1, y: 2 })],
        ['b', group('b', {}, { z: 3 })],
      ]),
      rootGroupId: 'a',
      currentGroupId: 'a',
    });
    await storage.saveSnapshot(n, 'before delete');
    const count = async (table: string, ref: string) =>
      Number((await sql.query(`SELECT count(*) FROM ${schema}.${table} WHERE ${ref}`)).rows[0].count);
    const { rows } = await sql.query(`SELECT id FROM ${schema}.networks WHERE network_id = $1`, [n]);
    const networkRef = rows[0].id as string;
    const contactsOf = `group_ref IN (SELECT id FROM ${schema}.groups WHERE network_ref = ${networkRef})`;
    expect(await count('contacts', contactsOf)).toBe(3);

    await storage.deleteGroup(n, 'b');
    expect(await count('contacts', contactsOf)).toBe(2);

    await storage.deleteNetwork(n);
    expect(await count('groups', `network_ref = ${networkRef}`)).toBe(0);
    expect(await count('contacts', `group_ref NOT IN (SELECT id FROM ${schema}.groups)`)).toBe(0);
    expect(await count('snapshots', `network_ref = ${networkRef}`)).toBe(0);
    expect(await count('snapshot_parts', `network_ref = ${networkRef}`)).toBe(0);
    expect(await storage.exists(n)).toBe(false);
  });
});

describe('snapshots', () => {
  it('live in the database by default: the body as rows, found by its id once', async () => {
    const schema = freshSchema('snapdb');
    const storage = open({ schema });
    const n = net('snapdb');
    await storage.saveNetworkState(n, {
      groups: new Map([['a', group('a', {}, { x: 'é🙂' })]]),
      rootGroupId: 'a',
      currentGroupId: 'a',
    });
    const first = await storage.writeSnapshot(n, 'hourly', { snapshotId: 'slot-1' });
    const again = await storage.writeSnapshot(n, 'hourly', { snapshotId: 'slot-1' });
    expect([first.created, again.created]).toEqual([true, false]);
    expect(again.info.sha256).toBe(first.info.sha256);
    const parts = await sql.query(`SELECT count(*) FROM ${schema}.snapshot_parts WHERE snapshot_id = 'slot-1'`);
    expect(Number(parts.rows[0].count)).toBeGreaterThan(0);
    expect((await storage.loadSnapshot(n, 'slot-1')).groups.get('a')?.contacts.get('x')?.content).toBe('é🙂');
  });

  it('are taken by the scheduled job only when the network changed since the last one', async () => {
    const storage = open({ schema: freshSchema('changed') });
    const n = net('changed');
    await storage.saveContactContent(n, 'g', 'c', 1);
    const changed = await storage.lastChanged(n);
    expect(changed).toBeInstanceOf(Date);
    expect((await storage.snapshotIfChanged(n, 'job', { changeToleranceMs: 0 }))?.created).toBe(true);
    expect(await storage.snapshotIfChanged(n, 'job', { changeToleranceMs: 0 })).toBeNull();
    expect(await storage.lastChanged(net('unknown'))).toBeNull();
  });

  it('live in Cloud Storage when asked, and nothing of them in the database', async () => {
    const schema = freshSchema('snapgcs');
    const storage = open({
      schema,
      snapshots: { bucket: 'pg-storage-test', prefix: `${schema}/`, storage: gcs.client },
    });
    const n = net('snapgcs');
    await storage.saveContactContent(n, 'g', 'c', 42);
    const id = await storage.saveSnapshot(n, 'to gcs');
    const [files] = await gcs.client.bucket('pg-storage-test').getFiles({ prefix: `${schema}/` });
    expect(files.map((f) => f.name).some((name) => name.endsWith('.info.json'))).toBe(true);
    expect(Number((await sql.query(`SELECT count(*) FROM ${schema}.snapshots`)).rows[0].count)).toBe(0);
    expect((await storage.loadSnapshot(n, id)).groups.get('g')?.contacts.get('c')?.content).toBe(42);
    await storage.deleteNetwork(n);
    const [left] = await gcs.client.bucket('pg-storage-test').getFiles({ prefix: `${schema}/` });
    expect(left).toHaveLength(0);
  });
});

describe('restart', () => {
  it('a new instance (a new pool) sees everything an earlier one wrote', async () => {
    const schema = freshSchema('restart');
    const n = net('restart');
    const before = open({ schema });
    await before.saveContactContent(n, 'g', 'tags', growSet(['a']), { blendMode: 'merge' });
    await before.saveGroupState(n, 'h', group('h', { 'bassline.author': 'ada' }, { c: 1 }));
    await before.close();
    const after: NetworkStorage = open({ schema });
    await after.saveContactContent(n, 'g', 'tags', growSet(['b']), { blendMode: 'merge' });
    expect(await after.loadContactContent(n, 'g', 'tags')).toEqual(growSet(['a', 'b']));
    expect((await after.queryGroups(n, { author: 'ada' })).map((g) => g.group.id)).toEqual(['h']);
    await expect(before.loadContactContent(n, 'g', 'tags')).rejects.toThrow(/after close/);
  });
});

describe('bad input', () => {
  it('gets the typed errors of every backend and changes nothing', async () => {
    const storage = open();
    const n = net('bad');
    await expect(storage.saveContactContent(n, 'g\u0000', 'c', 1)).rejects.toBeInstanceOf(InvalidIdError);
    await expect(storage.queryGroups(n, { tags: 'red' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await storage.exists(n)).toBe(false);
  });
});

describe('settings', () => {
  it('need SPINE_POSTGRES_URL for the postgres store and check the other SPINE_POSTGRES_ settings', () => {
    expect(() => loadSettings({ SPINE_STATE_STORE: 'postgres' })).toThrow(/SPINE_POSTGRES_URL/);
    const settings = loadSettings({
      SPINE_STATE_STORE: 'postgres',
      SPINE_POSTGRES_URL: 'postgresql://u:secret@db/spine',
    });
    expect(settings).toMatchObject({
      stateStore: 'postgres',
      postgresSchema: 'spine',
      postgresPoolSize: 10,
      postgresSnapshots: 'database',
      postgresIamAuth: false,
    });
    for (const [variable, value] of [
      ['SPINE_POSTGRES_SCHEMA', 'Bad-Name'],
      ['SPINE_POSTGRES_POOL_SIZE', '0'],
      ['SPINE_POSTGRES_SNAPSHOTS', 'disk'],
      ['SPINE_POSTGRES_IAM_AUTH', 'yes'],
    ] as const) {
      expect(() =>
        loadSettings({ SPINE_STATE_STORE: 'postgres', SPINE_POSTGRES_URL: 'postgresql://db/spine', [variable]: value }),
      ).toThrow(variable);
    }
    expect(
      loadSettings({
        SPINE_STATE_STORE: 'postgres',
        SPINE_POSTGRES_URL: 'postgresql://db/spine',
        SPINE_POSTGRES_GRANT_TO: 'a@p.iam, b@p.iam,',
      }).postgresGrantTo,
    ).toEqual(['a@p.iam', 'b@p.iam']);
    expect(() =>
      loadSettings({
        SPINE_STATE_STORE: 'postgres',
        SPINE_POSTGRES_URL: 'postgresql://db/spine',
        SPINE_POSTGRES_GRANT_TO: 'r'.repeat(64),
      }),
    ).toThrow('SPINE_POSTGRES_GRANT_TO');
    // The connection string may hold a password: never in an error message.
    expect(() => loadSettings({ SPINE_POSTGRES_URL: 'mysql://u:secret@db' })).toThrow(
      /^(?!.*secret).*SPINE_POSTGRES_URL/,
    );
  });
});

describe('Cloud SQL IAM login', () => {
  it("logs in as the credentials' service account when the connection string names no user", async () => {
    const email = `spine-fn-${randomUUID().slice(0, 6)}@example-project.iam.gserviceaccount.com`;
    const user = cloudSqlIamUser(email);
    expect(user).toBe(email.replace('.gserviceaccount.com', ''));
    await sql.query(`CREATE ROLE ${sql.escapeIdentifier(user)} LOGIN SUPERUSER`);
    // Credentials of our own: no Google account is reachable here, and this server trusts local
    // logins, so the token is offered but not checked (Cloud SQL checks it).
    const tokens: string[] = [];
    const googleAuth = {
      getCredentials: async () => ({ client_email: email }),
      getAccessToken: async () => {
        tokens.push(`token-${tokens.length}`);
        return tokens[tokens.length - 1];
      },
    };
    const url = new URL(postgres.url);
    url.username = '';
    const storage = open({
      connectionString: url.toString(),
      iamAuth: true,
      googleAuth: googleAuth as never,
      schema: freshSchema('iam'),
    });
    await storage.initialize();
    const { rows } = await storage.postgres.pool.query('SELECT current_user AS who');
    expect(rows[0].who).toBe(user);
  });
});

describe('PostgresStorage shared between instances', () => {
  describeSharedTombstones('postgres, row lock', async () => {
    const schema = freshSchema('tomb');
    const [first, second] = [open({ schema }), open({ schema })];
    return { first, second, close: async () => undefined };
  });
});
