import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import {
  InvalidArgumentError,
  InvalidIdError,
  NetworkNotFoundError,
  SnapshotNotFoundError,
  UnserializableContentError,
} from '../errors';
import { growArray, growMap, growSet, shrinkSet } from '../mergeable';
import type { Contact, GroupChange, GroupState, NetworkState, NetworkStorage } from '../model';
import { assertEqual, assertExcludes, assertIncludes, assertIncludesAll, assertMatches } from './assertions';
import { eventually } from './eventually';

export interface ConformanceFixture {
  storage: NetworkStorage;
  teardown?: () => Promise<void>;
  /** For eventually consistent backends: resolves once every write made so far can be read. */
  settle?: () => Promise<void>;
}

export type ConformanceSetup = () => Promise<ConformanceFixture>;

/**
 * The four functions of a test runner the suite registers its tests with. jest, vitest
 * (`import { describe, it, beforeEach, afterEach } from 'vitest'`) and `node:test` all fit.
 * Hooks registered in a `describe` must run around every test nested in it, and the tests of
 * one `describe` one after another (the default of all three).
 */
export interface ConformanceRunner {
  describe(name: string, body: () => void): unknown;
  it(name: string, test: () => Promise<void>): unknown;
  beforeEach(hook: () => Promise<void>): unknown;
  afterEach(hook: () => Promise<void>): unknown;
}

const RUNNER_FUNCTIONS = ['describe', 'it', 'beforeEach', 'afterEach'] as const;

/** Functions not given are taken from the globals (jest, vitest with `globals: true`, mocha). */
export function resolveRunner(
  given: Partial<ConformanceRunner>,
  suite = 'runNetworkStorageConformance',
  example = 'runNetworkStorageConformance(name, setup, { describe, it, beforeEach, afterEach })',
): ConformanceRunner {
  const globals = globalThis as unknown as Partial<ConformanceRunner>;
  const runner: Partial<ConformanceRunner> = {};
  const missing: string[] = [];
  for (const key of RUNNER_FUNCTIONS) {
    const fn = given[key] ?? globals[key];
    if (typeof fn === 'function') (runner as Record<string, unknown>)[key] = fn;
    else missing.push(key);
  }
  if (missing.length > 0) {
    throw new TypeError(
      `${suite}: no ${missing.join(', ')} given and none is global; pass the test runner's functions, ` +
        `e.g. ${example} with them imported from 'node:test'`,
    );
  }
  return runner as ConformanceRunner;
}

/** Options the suite passes through to writes; a backend that needs none ignores them. */
const MERGE = { blendMode: 'merge' as const };

function contact(groupId: string, id: string, content: unknown, extra: Partial<Contact> = {}): Contact {
  return { id, groupId, content, blendMode: 'accept-last', ...extra };
}

function groupState(
  groupId: string,
  contacts: Contact[] = [],
  attributes?: Record<string, unknown>,
  extra: Partial<GroupState['group']> = {},
): GroupState {
  return {
    group: {
      id: groupId,
      name: `group ${groupId}`,
      contactIds: contacts.map((c) => c.id),
      wireIds: [],
      subgroupIds: [],
      boundaryContactIds: [],
      ...(attributes ? { attributes } : {}),
      ...extra,
    },
    contacts: new Map(contacts.map((c) => [c.id, c])),
    wires: new Map(),
  };
}

/**
 * The acceptance suite every `NetworkStorage` must pass. Call it at the top of a test file:
 * `runNetworkStorageConformance('memory', async () => ({ storage: new MemoryStorage() }))` under
 * jest; under `node:test` or vitest pass the runner's functions as the third argument.
 * Assertions use `node:assert`, so a failure is an `AssertionError` every runner reports.
 * Each test uses fresh network ids, so backends that share state across tests also pass.
 */
export function runNetworkStorageConformance(
  name: string,
  setup: ConformanceSetup,
  runner: Partial<ConformanceRunner> = {},
): void {
  const { describe, it, beforeEach, afterEach } = resolveRunner(runner);
  describe(`NetworkStorage conformance: ${name}`, () => {
    let fixture: ConformanceFixture;
    let storage: NetworkStorage;
    const settle = () => fixture.settle?.() ?? Promise.resolve();
    const net = (label = 'net') => `${label}-${randomUUID().slice(0, 8)}`;

    beforeEach(async () => {
      fixture = await setup();
      storage = fixture.storage;
      await storage.initialize();
    });

    afterEach(async () => {
      await storage.close();
      await fixture.teardown?.();
    });

    describe('contacts', () => {
      it('round-trips nested content with Maps, Sets, Dates and mergeable collections', async () => {
        const n = net();
        const content = {
          title: 'nested',
          list: [1, 'two', { three: [3] }, null],
          map: new Map<unknown, unknown>([
            ['a', 1],
            [2, new Set(['x', 'y'])],
          ]),
          when: new Date('2026-01-02T03:04:05.678Z'),
          tags: growSet(['p', 'q']),
          log: growArray([{ at: 1 }]),
          deep: { a: { b: { c: { d: [new Map([['k', new Date(0)]])] } } } },
        };
        await storage.saveContactContent(n, 'root', 'c1', content);
        await settle();
        assertEqual(await storage.loadContactContent(n, 'root', 'c1'), content);
      });

      it('overwrites an accept-last contact with the newer write', async () => {
        const n = net();
        await storage.saveContactContent(n, 'root', 'c1', 'first');
        await storage.saveContactContent(n, 'root', 'c1', { second: true });
        await settle();
        assertEqual(await storage.loadContactContent(n, 'root', 'c1'), { second: true });
      });

      it('answers null for a missing contact, group and network', async () => {
        const n = net();
        assert.equal(await storage.loadContactContent(n, 'root', 'nope'), null);
        assert.equal(await storage.loadGroupState(n, 'root'), null);
        assert.equal(await storage.loadNetworkState(n), null);
        assert.equal(await storage.exists(n), false);
        await storage.saveContactContent(n, 'root', 'c1', 1);
        await settle();
        assert.equal(await storage.loadContactContent(n, 'root', 'other'), null);
        assert.equal(await storage.loadGroupState(n, 'elsewhere'), null);
      });

      for (const [label, content] of [
        ['double quotes', 'say "hi"'],
        ['single quotes', "it's"],
        ['emoji', '🧪🚀 ok 👩🏽‍💻'],
        ['newline and tab', 'a\nb\tc\r\n'],
        ['backslashes', 'C:\\path\\to\\file \\u0041'],
        ['an SQL injection', "'; DROP TABLE contacts; --"],
        ['the empty string', ''],
        ['a nested mix', { 'key "quoted"': ['\\', '\u2028', '</script>', '\u0000'] }],
      ] as const) {
        it(`stores content with ${label} exactly`, async () => {
          const n = net();
          await storage.saveContactContent(n, 'root', 'c', content);
          await settle();
          assertEqual(await storage.loadContactContent(n, 'root', 'c'), content);
        });
      }

      it('stores null content and reads it back as null', async () => {
        const n = net();
        await storage.saveContactContent(n, 'root', 'c', 'x');
        await storage.saveContactContent(n, 'root', 'c', null);
        await settle();
        assert.equal(await storage.loadContactContent(n, 'root', 'c'), null);
      });

      it('creates the network and group of a contact write', async () => {
        const n = net();
        await storage.saveContactContent(n, 'users/@alice', 'mood', 'happy');
        await settle();
        assert.equal(await storage.exists(n), true);
        assertIncludes(await storage.listNetworks(), n);
        const group = await storage.loadGroupState(n, 'users/@alice');
        assert.equal(group?.group.id, 'users/@alice');
        assertIncludes(group?.group.contactIds, 'mood');
        assert.equal(group?.contacts.get('mood')?.content, 'happy');
      });

      it('accepts 1000-character ids and names', async () => {
        const n = 'n'.repeat(1000);
        const g = `${'g'.repeat(500)}/${'é'.repeat(250)}`;
        const c = '🙂'.repeat(250);
        const longName = 'name '.repeat(200);
        await storage.saveGroupState(
          n,
          g,
          groupState(g, [contact(g, c, 'long ids work', { name: longName })], undefined, { name: longName }),
        );
        await settle();
        const loaded = await storage.loadGroupState(n, g);
        assert.equal(loaded?.group.name, longName);
        assert.equal(loaded?.contacts.get(c)?.name, longName);
        assert.equal(await storage.loadContactContent(n, g, c), 'long ids work');
        assertIncludes(await storage.listNetworks(), n);
        await storage.deleteNetwork(n);
      });

      for (const [label, badId] of [
        ['empty', ''],
        ['a ".." segment', '../escape'],
        ['a control character', 'bad\u0007id'],
        ['a leading slash', '/root'],
        ['an empty segment', 'a//b'],
        ['over 1024 bytes', 'x'.repeat(1025)],
      ] as const) {
        it(`refuses a group id that is ${label} with InvalidIdError and stores nothing`, async () => {
          const n = net();
          await assert.rejects(storage.saveContactContent(n, badId, 'c', 1), InvalidIdError);
          await assert.rejects(storage.saveGroupState(n, badId, groupState(badId)), InvalidIdError);
          await settle();
          assert.equal(await storage.exists(n), false);
        });
      }

      for (const badId of ['..', 'a/b', '', 'tab\there']) {
        it(`refuses network and contact id ${JSON.stringify(badId)}`, async () => {
          await assert.rejects(storage.saveContactContent(badId, 'root', 'c', 1), InvalidIdError);
          await assert.rejects(storage.saveContactContent(net(), 'root', badId, 1), InvalidIdError);
          await assert.rejects(storage.loadNetworkState(badId), InvalidIdError);
        });
      }

      it('refuses content it cannot store and keeps the old content', async () => {
        const n = net();
        await storage.saveContactContent(n, 'root', 'c', 'kept');
        const cyclic: Record<string, unknown> = {};
        cyclic.self = cyclic;
        for (const bad of [() => 1, Symbol('s'), 10n, cyclic, { nested: [new (class Foo {})()] }]) {
          await assert.rejects(storage.saveContactContent(n, 'root', 'c', bad), UnserializableContentError);
        }
        await settle();
        assert.equal(await storage.loadContactContent(n, 'root', 'c'), 'kept');
      });

      it('refuses a throwing getter, a Proxy and content nested 60,000 deep with UnserializableContentError, undefined with InvalidArgumentError, and keeps the old content', async () => {
        const n = net();
        await storage.saveContactContent(n, 'root', 'c', 'kept');
        const throwing = {
          get boom(): never {
            throw new Error('getter exploded');
          },
        };
        const trap = new Proxy(
          { a: 1 },
          {
            ownKeys() {
              throw new Error('trap exploded');
            },
          },
        );
        const quiet = new Proxy({ a: 1 }, {});
        let deep: unknown = 'bottom';
        for (let i = 0; i < 60_000; i++) deep = [deep];
        for (const bad of [throwing, { nested: [throwing] }, trap, quiet, new Map([['k', trap]]), deep]) {
          await assert.rejects(storage.saveContactContent(n, 'root', 'c', bad), UnserializableContentError);
        }
        await assert.rejects(storage.saveContactContent(n, 'root', 'c', undefined), InvalidArgumentError);
        await assert.rejects(storage.saveContactContent(n, 'root', 'fresh', undefined), InvalidArgumentError);
        await settle();
        assert.equal(await storage.loadContactContent(n, 'root', 'c'), 'kept');
        assert.equal(await storage.loadContactContent(n, 'root', 'fresh'), null);
        assert.equal((await storage.loadGroupState(n, 'root'))?.contacts.has('fresh'), false);
      });

      it('keeps every one of 20 concurrent updates to different contacts', async () => {
        const n = net();
        await Promise.all(Array.from({ length: 20 }, (_, i) => storage.saveContactContent(n, 'root', `c${i}`, { i })));
        await settle();
        const group = await storage.loadGroupState(n, 'root');
        assert.equal(group?.contacts.size, 20);
        for (let i = 0; i < 20; i++) assertEqual(group?.contacts.get(`c${i}`)?.content, { i });
      });

      it('ends 20 concurrent updates of one contact on one of the written values', async () => {
        const n = net();
        await Promise.all(Array.from({ length: 20 }, (_, i) => storage.saveContactContent(n, 'root', 'hot', i)));
        await settle();
        const value = await storage.loadContactContent(n, 'root', 'hot');
        assert.ok(
          typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < 20,
          `${String(value)} is not one of the written values`,
        );
      });
    });

    describe('blend semantics through saveContactContent', () => {
      it('merges grow sets of 20 concurrent writers into their union', async () => {
        const n = net();
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            storage.saveContactContent(n, 'root', 'set', growSet([`v${i}`, 'shared']), MERGE),
          ),
        );
        await settle();
        const merged = (await storage.loadContactContent(n, 'root', 'set')) as { _tag: string; values: Set<string> };
        assert.equal(merged._tag, 'GrowSet');
        assertEqual(new Set(merged.values), new Set([...Array.from({ length: 20 }, (_, i) => `v${i}`), 'shared']));
      });

      it('merges into a contact declared as merge by its group state', async () => {
        const n = net();
        await storage.saveGroupState(
          n,
          'g',
          groupState('g', [contact('g', 'm', new Set([1]), { blendMode: 'merge' })]),
        );
        await storage.saveContactContent(n, 'g', 'm', new Set([2]));
        await storage.saveContactContent(n, 'g', 'm', new Set([2, 3]));
        await settle();
        assertEqual(await storage.loadContactContent(n, 'g', 'm'), new Set([1, 2, 3]));
      });

      it('intersects shrink sets, appends grow arrays and unions grow maps', async () => {
        const n = net();
        await storage.saveContactContent(n, 'g', 'shrink', shrinkSet(['a', 'b', 'c']), MERGE);
        await storage.saveContactContent(n, 'g', 'shrink', shrinkSet(['b', 'c', 'd']), MERGE);
        await storage.saveContactContent(n, 'g', 'log', growArray([1]), MERGE);
        await storage.saveContactContent(n, 'g', 'log', growArray([2, 3]), MERGE);
        await storage.saveContactContent(n, 'g', 'map', growMap([['x', growSet([1])]]), MERGE);
        await storage.saveContactContent(
          n,
          'g',
          'map',
          growMap<string, unknown>([
            ['x', growSet([2])],
            ['y', 'new'],
          ]),
          MERGE,
        );
        await settle();
        assertEqual(await storage.loadContactContent(n, 'g', 'shrink'), shrinkSet(['b', 'c']));
        assertEqual(await storage.loadContactContent(n, 'g', 'log'), growArray([1, 2, 3]));
        assertEqual(
          await storage.loadContactContent(n, 'g', 'map'),
          growMap<string, unknown>([
            ['x', growSet([1, 2])],
            ['y', 'new'],
          ]),
        );
      });

      it('records a contradiction and keeps the old content', async () => {
        const n = net();
        await storage.saveContactContent(n, 'g', 'scalar', 42, MERGE);
        await storage.saveContactContent(n, 'g', 'scalar', 42, MERGE);
        await storage.saveContactContent(n, 'g', 'scalar', 43, MERGE);
        await storage.saveContactContent(n, 'g', 'shrink', shrinkSet(['a']), MERGE);
        await storage.saveContactContent(n, 'g', 'shrink', shrinkSet(['b']), MERGE);
        await settle();
        const group = await storage.loadGroupState(n, 'g');
        const scalar = group?.contacts.get('scalar');
        assert.equal(scalar?.content, 42);
        assertEqual(scalar?.lastContradiction?.values, [42, 43]);
        assert.equal(typeof scalar?.lastContradiction?.message, 'string');
        assert.equal(typeof scalar?.lastContradiction?.timestamp, 'number');
        const shrink = group?.contacts.get('shrink');
        assertEqual(shrink?.content, shrinkSet(['a']));
        assert.match(String(shrink?.lastContradiction?.message), /empty/);
      });
    });

    describe('groups', () => {
      it('saves and loads a group with contacts, wires and attributes', async () => {
        const n = net();
        const state = groupState(
          'g',
          [contact('g', 'a', 1), contact('g', 'b', { x: [1] }, { blendMode: 'merge', name: 'B' })],
          { 'bassline.type': 'adder' },
        );
        state.wires.set('w1', { id: 'w1', groupId: 'g', fromId: 'a', toId: 'b', type: 'directed' });
        state.group.wireIds = ['w1'];
        await storage.saveGroupState(n, 'g', state);
        await settle();
        const loaded = await storage.loadGroupState(n, 'g');
        assertEqual(loaded?.group, state.group);
        assertEqual(loaded?.wires, state.wires);
        assertEqual([...(loaded?.contacts.keys() ?? [])].sort(), ['a', 'b']);
        assertMatches(loaded?.contacts.get('b'), {
          id: 'b',
          groupId: 'g',
          blendMode: 'merge',
          name: 'B',
          content: { x: [1] },
        });
      });

      it('loads a saved group deep-equal (isDeepStrictEqual) to what was saved: no field the caller did not write', async () => {
        const n = net();
        const state = groupState(
          'g',
          [
            contact('g', 'a', new Map([['k', new Set([1])]])),
            contact('g', 'b', growSet(['x']), { blendMode: 'merge', name: 'B', attributes: { unit: 'm' } }),
          ],
          { 'bassline.tags': ['t'] },
        );
        state.wires.set('w1', { id: 'w1', groupId: 'g', fromId: 'a', toId: 'b', type: 'directed' });
        state.group.wireIds = ['w1'];
        await storage.saveGroupState(n, 'g', state);
        await settle();
        const loaded = await storage.loadGroupState(n, 'g');
        assert.ok(
          isDeepStrictEqual(loaded, state),
          `loaded group differs from the saved one: ${String([...(loaded?.contacts.values() ?? [])].map((c) => Object.keys(c).join(',')))}`,
        );
        // Contacts written one by one come back with the contract's fields only.
        await storage.saveContactContent(n, 'g', 'c', 7);
        await settle();
        const written = (await storage.loadGroupState(n, 'g'))?.contacts.get('c');
        assert.ok(
          isDeepStrictEqual(written, { id: 'c', groupId: 'g', blendMode: 'accept-last', content: 7 }),
          `contact came back as ${JSON.stringify(written)}`,
        );
        const network = await storage.loadNetworkState(n);
        assert.ok(isDeepStrictEqual(network?.groups.get('g')?.contacts.get('a'), state.contacts.get('a')));
      });

      it('takes no bookkeeping from a saved group: a contact carrying a foreign applied log still takes later writes', async () => {
        const n = net();
        // A log claiming this storage's own writer has applied everything (where the writer's id can be seen).
        const own = storage as { sessionWriterId?: string; writerId?: string };
        const writer = own.sessionWriterId ?? own.writerId ?? 'some-writer';
        const forged = {
          ...contact('g', 'a', 1),
          version: {
            stamp: '1700000000000:0:forger',
            applied: { [writer]: { upTo: Number.MAX_SAFE_INTEGER, beyond: [] } },
          },
        };
        await storage.saveGroupState(n, 'g', groupState('g', [forged as Contact]));
        await settle();
        await storage.saveContactContent(n, 'g', 'a', 2);
        await settle();
        assert.equal(await storage.loadContactContent(n, 'g', 'a'), 2);
        const loaded = (await storage.loadGroupState(n, 'g'))?.contacts.get('a');
        assert.ok(loaded && !('version' in loaded), 'a loaded contact carries no bookkeeping');
      });

      it('stores an empty group and an empty network', async () => {
        const n = net();
        await storage.saveGroupState(n, 'empty', groupState('empty'));
        const m = net();
        await storage.saveNetworkState(m, { groups: new Map(), rootGroupId: 'root', currentGroupId: 'root' });
        await settle();
        const group = await storage.loadGroupState(n, 'empty');
        assert.equal(group?.contacts.size, 0);
        assertEqual(group?.group.contactIds, []);
        const network = await storage.loadNetworkState(m);
        assert.equal(network?.groups.size, 0);
        assert.equal(network?.rootGroupId, 'root');
        assert.equal(await storage.exists(m), true);
      });

      it('replaces a group: contacts left out of a save are removed', async () => {
        const n = net();
        await storage.saveGroupState(n, 'g', groupState('g', [contact('g', 'a', 1), contact('g', 'b', 2)]));
        await storage.saveGroupState(n, 'g', groupState('g', [contact('g', 'b', 3)]));
        await settle();
        const loaded = await storage.loadGroupState(n, 'g');
        assertEqual([...(loaded?.contacts.keys() ?? [])], ['b']);
        assert.equal(await storage.loadContactContent(n, 'g', 'a'), null);
      });

      it('survives 10 concurrent saves: distinct groups all stored, one group ends as exactly one save', async () => {
        const n = net();
        await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            storage.saveGroupState(n, `g${i}`, groupState(`g${i}`, [contact(`g${i}`, 'c', i)])),
          ),
        );
        const saves = Array.from({ length: 10 }, (_, i) =>
          groupState(
            'same',
            Array.from({ length: 3 }, (_, j) => contact('same', `s${i}-${j}`, i)),
          ),
        );
        await Promise.all(saves.map((s) => storage.saveGroupState(n, 'same', s)));
        await settle();
        for (let i = 0; i < 10; i++) assert.equal(await storage.loadContactContent(n, `g${i}`, 'c'), i);
        const same = await storage.loadGroupState(n, 'same');
        const ids = [...(same?.contacts.keys() ?? [])].sort();
        assert.equal(ids.length, 3);
        const winner = ids[0]!.split('-')[0];
        assertEqual(
          ids,
          [0, 1, 2].map((j) => `${winner}-${j}`),
        );
      });

      it('refuses a group state whose group id does not match and stores nothing', async () => {
        const n = net();
        await assert.rejects(storage.saveGroupState(n, 'g', groupState('other')), /does not match/);
        await settle();
        assert.equal(await storage.exists(n), false);
      });

      it('deletes a group with its contacts and its subgroups, leaving others', async () => {
        const n = net();
        await storage.saveGroupState(
          n,
          'parent',
          groupState('parent', [contact('parent', 'p', 1)], undefined, { subgroupIds: ['child'] }),
        );
        await storage.saveGroupState(
          n,
          'child',
          groupState('child', [contact('child', 'c', 2)], undefined, { parentId: 'parent' }),
        );
        await storage.saveGroupState(n, 'grandchild', groupState('grandchild', [], undefined, { parentId: 'child' }));
        await storage.saveGroupState(n, 'other', groupState('other', [contact('other', 'o', 3)]));
        await storage.deleteGroup(n, 'parent');
        await settle();
        assert.equal(await storage.loadGroupState(n, 'parent'), null);
        assert.equal(await storage.loadGroupState(n, 'child'), null);
        assert.equal(await storage.loadGroupState(n, 'grandchild'), null);
        assert.equal(await storage.loadContactContent(n, 'child', 'c'), null);
        assert.equal(await storage.loadContactContent(n, 'other', 'o'), 3);
        await storage.deleteGroup(n, 'never-existed');
      });
    });

    describe('networks', () => {
      it('saves every group of a network state and loads it back', async () => {
        const n = net();
        const state: NetworkState = {
          groups: new Map([
            ['root', groupState('root', [contact('root', 'x', 'rx')], undefined, { subgroupIds: ['root/sub'] })],
            [
              'root/sub',
              groupState('root/sub', [contact('root/sub', 'y', new Set([1]), { blendMode: 'merge' })], undefined, {
                parentId: 'root',
              }),
            ],
          ]),
          rootGroupId: 'root',
          currentGroupId: 'root/sub',
        };
        await storage.saveNetworkState(n, state);
        await settle();
        const loaded = await storage.loadNetworkState(n);
        assert.equal(loaded?.rootGroupId, 'root');
        assert.equal(loaded?.currentGroupId, 'root/sub');
        assertEqual([...(loaded?.groups.keys() ?? [])].sort(), ['root', 'root/sub']);
        assertEqual(loaded?.groups.get('root/sub')?.contacts.get('y')?.content, new Set([1]));
        assert.equal(await storage.loadContactContent(n, 'root', 'x'), 'rx');
        assert.ok(isDeepStrictEqual(loaded, state), 'loaded network differs from the saved one');
      });

      it('replaces a network: groups left out of a save are removed', async () => {
        const n = net();
        await storage.saveGroupState(n, 'old', groupState('old', [contact('old', 'c', 1)]));
        await storage.saveNetworkState(n, {
          groups: new Map([['new', groupState('new')]]),
          rootGroupId: 'new',
          currentGroupId: 'new',
        });
        await settle();
        assert.equal(await storage.loadGroupState(n, 'old'), null);
        assertEqual([...((await storage.loadNetworkState(n))?.groups.keys() ?? [])], ['new']);
      });

      it('lists networks and deletes one with its groups, contacts and snapshots', async () => {
        const a = net('a');
        const b = net('b');
        await storage.saveContactContent(a, 'g1', 'c', 1);
        await storage.saveContactContent(a, 'g2', 'c', 2);
        await storage.saveContactContent(b, 'g1', 'c', 3);
        await settle();
        const snapshotId = await storage.saveSnapshot(a, 'before delete');
        assertIncludesAll(await storage.listNetworks(), [a, b]);
        await storage.deleteNetwork(a);
        await settle();
        assertExcludes(await storage.listNetworks(), a);
        assert.equal(await storage.exists(a), false);
        assert.equal(await storage.loadGroupState(a, 'g1'), null);
        assert.equal(await storage.loadContactContent(a, 'g2', 'c'), null);
        assertEqual(await storage.listSnapshots(a), []);
        await assert.rejects(storage.loadSnapshot(a, snapshotId), SnapshotNotFoundError);
        assert.equal(await storage.loadContactContent(b, 'g1', 'c'), 3);
        await storage.deleteNetwork(a);
      });
    });

    describe('queries', () => {
      it('finds groups by tag among 100 groups of 10 contacts', async () => {
        const n = net();
        const batch: Promise<void>[] = [];
        for (let g = 0; g < 100; g++) {
          const tags = ['all', g % 2 === 0 ? 'even' : 'odd', ...(g % 10 === 0 ? ['tenth'] : [])];
          const contacts = Array.from({ length: 10 }, (_, c) => contact(`g${g}`, `c${c}`, g * 10 + c));
          batch.push(storage.saveGroupState(n, `g${g}`, groupState(`g${g}`, contacts, { 'bassline.tags': tags })));
        }
        await Promise.all(batch);
        await settle();
        assert.equal((await storage.queryGroups(n, { tags: ['all'] })).length, 100);
        const tenthEven = await storage.queryGroups(n, { tags: ['even', 'tenth'] });
        assertEqual(
          tenthEven.map((s) => s.group.id).sort(),
          ['g0', 'g10', 'g20', 'g30', 'g40', 'g50', 'g60', 'g70', 'g80', 'g90'].sort(),
        );
        assert.ok(tenthEven.every((s) => s.contacts.size === 10));
        assert.equal((await storage.queryGroups(n, { tags: ['odd', 'tenth'] })).length, 0);
        assert.equal((await storage.loadNetworkState(n))?.groups.size, 100);
      });

      it('matches author, type and attributes, all criteria together', async () => {
        const n = net();
        await storage.saveGroupState(
          n,
          'a',
          groupState('a', [], { 'bassline.author': 'alice', 'bassline.type': 'gadget', color: 'red', size: { w: 1 } }),
        );
        await storage.saveGroupState(
          n,
          'b',
          groupState('b', [], { 'bassline.author': 'bob', 'bassline.type': 'gadget', color: 'red' }),
        );
        await storage.saveGroupState(
          n,
          'c',
          groupState('c', [], { 'bassline.author': 'alice', 'bassline.type': 'network', color: 'blue' }),
        );
        await storage.saveGroupState(n, 'd', groupState('d'));
        await settle();
        const ids = async (query: Parameters<NetworkStorage['queryGroups']>[1]) =>
          (await storage.queryGroups(n, query)).map((s) => s.group.id).sort();
        assertEqual(await ids({ author: 'alice' }), ['a', 'c']);
        assertEqual(await ids({ type: 'gadget' }), ['a', 'b']);
        assertEqual(await ids({ author: 'alice', type: 'gadget' }), ['a']);
        assertEqual(await ids({ attributes: { color: 'red' } }), ['a', 'b']);
        assertEqual(await ids({ attributes: { size: { w: 1 } } }), ['a']);
        assertEqual(await ids({ attributes: { color: 'red' }, author: 'bob' }), ['b']);
        assertEqual(await ids({ author: 'carol' }), []);
        assertEqual(await ids({}), ['a', 'b', 'c', 'd']);
        assertEqual(await storage.queryGroups(net('unknown'), { author: 'alice' }), []);
      });
    });

    describe('snapshots', () => {
      it('saves, lists newest first with size, loads and deletes snapshots', async () => {
        const n = net();
        await storage.saveContactContent(n, 'root', 'v', 1);
        await settle();
        const first = await storage.saveSnapshot(n, 'one');
        await storage.saveContactContent(n, 'root', 'v', 2);
        await settle();
        const second = await storage.saveSnapshot(n);
        const list = await storage.listSnapshots(n);
        assertEqual(
          list.map((s) => s.id),
          [second, first],
        );
        assertMatches(list[1], { id: first, networkId: n, label: 'one' });
        assert.ok(list[0]?.createdAt instanceof Date);
        assert.ok(list[0]!.createdAt.getTime() >= list[1]!.createdAt.getTime());
        assert.ok((list[0]?.size ?? 0) > 0, 'the newest snapshot has a size');
        const old = await storage.loadSnapshot(n, first);
        assert.equal(old.groups.get('root')?.contacts.get('v')?.content, 1);
        assert.equal((await storage.loadSnapshot(n, second)).groups.get('root')?.contacts.get('v')?.content, 2);
        assert.equal(await storage.loadContactContent(n, 'root', 'v'), 2);
        await storage.deleteSnapshot(n, first);
        assertEqual(
          (await storage.listSnapshots(n)).map((s) => s.id),
          [second],
        );
        await assert.rejects(storage.loadSnapshot(n, first), SnapshotNotFoundError);
        await assert.rejects(storage.deleteSnapshot(n, first), SnapshotNotFoundError);
      });

      it('gives ten snapshots taken at once ten different ids', async () => {
        const n = net();
        await storage.saveContactContent(n, 'root', 'v', 1);
        await settle();
        const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => storage.saveSnapshot(n, `s${i}`)));
        assert.equal(new Set(ids).size, 10);
        assertEqual((await storage.listSnapshots(n)).map((s) => s.id).sort(), [...ids].sort());
      });

      it('refuses a snapshot of an unknown network and an unknown snapshot id with typed errors', async () => {
        const n = net();
        await assert.rejects(storage.saveSnapshot(n), NetworkNotFoundError);
        await assert.rejects(storage.loadSnapshot(n, 'missing'), SnapshotNotFoundError);
        assertEqual(await storage.listSnapshots(n), []);
        await assert.rejects(storage.loadSnapshot(n, '../x'), InvalidIdError);
      });
    });

    describe('federation', () => {
      it('delivers changes under the subscribed path, and nothing else', async () => {
        const a = net('a');
        const b = net('b');
        const seen: Array<{ path: string; state: GroupState | null; change: GroupChange }> = [];
        const unsubscribe = await storage.subscribe(`${a}/users`, (state, change) => {
          seen.push({ path: change.path, state, change });
        });
        await storage.saveContactContent(a, 'users', 'count', 1);
        await storage.saveContactContent(a, 'users/@alice', 'mood', 'happy');
        await storage.saveContactContent(a, 'usersX', 'no', 1);
        await storage.saveContactContent(a, 'admin', 'no', 1);
        await storage.saveContactContent(b, 'users', 'no', 1);
        await eventually(() => {
          assertIncludesAll(
            seen.map((s) => s.path),
            [`${a}/users`, `${a}/users/@alice`],
          );
        });
        const alice = seen.find((s) => s.path === `${a}/users/@alice`);
        assert.equal(alice?.state?.contacts.get('mood')?.content, 'happy');
        assertMatches(alice?.change, { networkId: a, groupId: 'users/@alice', kind: 'updated' });
        // A last write under the prefix, so anything wrongly delivered before it has arrived too.
        await storage.saveContactContent(a, 'users', 'count', 2);
        await eventually(() => assert.ok(seen.some((s) => s.state?.contacts.get('count')?.content === 2)));
        assert.ok(
          seen.every((s) => s.path === `${a}/users` || s.path.startsWith(`${a}/users/`)),
          'only changes under the subscribed path arrive',
        );
        await unsubscribe();
        const before = seen.length;
        await storage.saveContactContent(a, 'users', 'count', 3);
        await settle();
        await storage.saveContactContent(a, 'users', 'count', 4);
        await settle();
        assert.equal(seen.length, before);
      });

      it('copies every network of another storage with sync', async () => {
        const { MemoryStorage } = await import('../backends/memory');
        const remote = new MemoryStorage();
        const n = net('remote');
        await remote.saveContactContent(n, 'g', 'c', { from: 'remote' });
        await remote.saveGroupState(n, 'h', groupState('h', [contact('h', 'd', new Map([[1, 2]]))]));
        const result = await storage.sync(remote);
        await settle();
        assert.ok(result.networks >= 1);
        assertEqual(await storage.loadContactContent(n, 'g', 'c'), { from: 'remote' });
        assertEqual(await storage.loadContactContent(n, 'h', 'd'), new Map([[1, 2]]));
        await remote.close();
      });
    });
  });
}
