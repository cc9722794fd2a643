import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { InvalidIdError, NetworkNotFoundError, SnapshotNotFoundError, UnserializableContentError } from '../errors';
import { growArray, growMap, growSet, shrinkSet } from '../mergeable';
import type { Contact, GroupChange, GroupState, NetworkState, NetworkStorage } from '../model';
import { eventually } from './eventually';

export interface ConformanceFixture {
  storage: NetworkStorage;
  teardown?: () => Promise<void>;
  /** For eventually consistent backends: resolves once every write made so far can be read. */
  settle?: () => Promise<void>;
}

export type ConformanceSetup = () => Promise<ConformanceFixture>;

/** Options the suite passes through to writes; a backend that needs none ignores them. */
const MERGE = { blendMode: 'merge' as const };

function contact(groupId: string, id: string, content: unknown, extra: Partial<Contact> = {}): Contact {
  return { id, groupId, content, blendMode: 'accept-last', ...extra };
}

function groupState(groupId: string, contacts: Contact[] = [], attributes?: Record<string, unknown>, extra: Partial<GroupState['group']> = {}): GroupState {
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
 * The acceptance suite every `NetworkStorage` must pass. Call it inside a jest test file:
 * `runNetworkStorageConformance('memory', async () => ({ storage: new MemoryStorage() }))`.
 * Each test uses fresh network ids, so backends that share state across tests also pass.
 */
export function runNetworkStorageConformance(name: string, setup: ConformanceSetup): void {
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
        expect(await storage.loadContactContent(n, 'root', 'c1')).toEqual(content);
      });

      it('overwrites an accept-last contact with the newer write', async () => {
        const n = net();
        await storage.saveContactContent(n, 'root', 'c1', 'first');
        await storage.saveContactContent(n, 'root', 'c1', { second: true });
        await settle();
        expect(await storage.loadContactContent(n, 'root', 'c1')).toEqual({ second: true });
      });

      it('answers null for a missing contact, group and network', async () => {
        const n = net();
        expect(await storage.loadContactContent(n, 'root', 'nope')).toBeNull();
        expect(await storage.loadGroupState(n, 'root')).toBeNull();
        expect(await storage.loadNetworkState(n)).toBeNull();
        expect(await storage.exists(n)).toBe(false);
        await storage.saveContactContent(n, 'root', 'c1', 1);
        await settle();
        expect(await storage.loadContactContent(n, 'root', 'other')).toBeNull();
        expect(await storage.loadGroupState(n, 'elsewhere')).toBeNull();
      });

      it.each([
        ['double quotes', 'say "hi"'],
        ['single quotes', "it's"],
        ['emoji', '🧪🚀 ok 👩🏽‍💻'],
        ['newline and tab', 'a\nb\tc\r\n'],
        ['backslashes', 'C:\\path\\to\\file \\u0041'],
        ['an SQL injection', "'; DROP TABLE contacts; --"],
        ['the empty string', ''],
        ['a nested mix', { 'key "quoted"': ['\\', '\u2028', '</script>', '\u0000'] }],
      ])('stores content with %s exactly', async (_label, content) => {
        const n = net();
        await storage.saveContactContent(n, 'root', 'c', content);
        await settle();
        expect(await storage.loadContactContent(n, 'root', 'c')).toEqual(content);
      });

      it('stores null content and reads it back as null', async () => {
        const n = net();
        await storage.saveContactContent(n, 'root', 'c', 'x');
        await storage.saveContactContent(n, 'root', 'c', null);
        await settle();
        expect(await storage.loadContactContent(n, 'root', 'c')).toBeNull();
      });

      it('creates the network and group of a contact write', async () => {
        const n = net();
        await storage.saveContactContent(n, 'users/@alice', 'mood', 'happy');
        await settle();
        expect(await storage.exists(n)).toBe(true);
        expect(await storage.listNetworks()).toContain(n);
        const group = await storage.loadGroupState(n, 'users/@alice');
        expect(group?.group.id).toBe('users/@alice');
        expect(group?.group.contactIds).toContain('mood');
        expect(group?.contacts.get('mood')?.content).toBe('happy');
      });

      it('accepts 1000-character ids and names', async () => {
        const n = 'n'.repeat(1000);
        const g = `${'g'.repeat(500)}/${'é'.repeat(250)}`;
        const c = '🙂'.repeat(250);
        const longName = 'name '.repeat(200);
        await storage.saveGroupState(n, g, groupState(g, [contact(g, c, 'long ids work', { name: longName })], undefined, { name: longName }));
        await settle();
        const loaded = await storage.loadGroupState(n, g);
        expect(loaded?.group.name).toBe(longName);
        expect(loaded?.contacts.get(c)?.name).toBe(longName);
        expect(await storage.loadContactContent(n, g, c)).toBe('long ids work');
        expect(await storage.listNetworks()).toContain(n);
        await storage.deleteNetwork(n);
      });

      it.each([
        ['empty', ''],
        ['a ".." segment', '../escape'],
        ['a control character', 'bad\u0007id'],
        ['a leading slash', '/root'],
        ['an empty segment', 'a//b'],
        ['over 1024 bytes', 'x'.repeat(1025)],
      ])('refuses a group id that is %s with InvalidIdError and stores nothing', async (_label, badId) => {
        const n = net();
        await expect(storage.saveContactContent(n, badId, 'c', 1)).rejects.toBeInstanceOf(InvalidIdError);
        await expect(storage.saveGroupState(n, badId, groupState(badId))).rejects.toBeInstanceOf(InvalidIdError);
        await settle();
        expect(await storage.exists(n)).toBe(false);
      });

      it.each([['..'], ['a/b'], [''], ['tab\there']])('refuses network and contact id %j', async (badId) => {
        await expect(storage.saveContactContent(badId, 'root', 'c', 1)).rejects.toBeInstanceOf(InvalidIdError);
        await expect(storage.saveContactContent(net(), 'root', badId, 1)).rejects.toBeInstanceOf(InvalidIdError);
        await expect(storage.loadNetworkState(badId)).rejects.toBeInstanceOf(InvalidIdError);
      });

      it('refuses content it cannot store and keeps the old content', async () => {
        const n = net();
        await storage.saveContactContent(n, 'root', 'c', 'kept');
        const cyclic: Record<string, unknown> = {};
        cyclic.self = cyclic;
        for (const bad of [() => 1, Symbol('s'), 10n, cyclic, { nested: [new (class Foo {})()] }]) {
          await expect(storage.saveContactContent(n, 'root', 'c', bad)).rejects.toBeInstanceOf(UnserializableContentError);
        }
        await settle();
        expect(await storage.loadContactContent(n, 'root', 'c')).toBe('kept');
      });

      it('keeps every one of 20 concurrent updates to different contacts', async () => {
        const n = net();
        await Promise.all(Array.from({ length: 20 }, (_, i) => storage.saveContactContent(n, 'root', `c${i}`, { i })));
        await settle();
        const group = await storage.loadGroupState(n, 'root');
        expect(group?.contacts.size).toBe(20);
        for (let i = 0; i < 20; i++) expect(group?.contacts.get(`c${i}`)?.content).toEqual({ i });
      });

      it('ends 20 concurrent updates of one contact on one of the written values', async () => {
        const n = net();
        await Promise.all(Array.from({ length: 20 }, (_, i) => storage.saveContactContent(n, 'root', 'hot', i)));
        await settle();
        const value = await storage.loadContactContent(n, 'root', 'hot');
        expect(typeof value).toBe('number');
        expect(value).toBeGreaterThanOrEqual(0);
        expect(value).toBeLessThan(20);
      });
    });

    describe('blend semantics through saveContactContent', () => {
      it('merges grow sets of 20 concurrent writers into their union', async () => {
        const n = net();
        await Promise.all(Array.from({ length: 20 }, (_, i) => storage.saveContactContent(n, 'root', 'set', growSet([`v${i}`, 'shared']), MERGE)));
        await settle();
        const merged = (await storage.loadContactContent(n, 'root', 'set')) as { _tag: string; values: Set<string> };
        expect(merged._tag).toBe('GrowSet');
        expect(new Set(merged.values)).toEqual(new Set([...Array.from({ length: 20 }, (_, i) => `v${i}`), 'shared']));
      });

      it('merges into a contact declared as merge by its group state', async () => {
        const n = net();
        await storage.saveGroupState(n, 'g', groupState('g', [contact('g', 'm', new Set([1]), { blendMode: 'merge' })]));
        await storage.saveContactContent(n, 'g', 'm', new Set([2]));
        await storage.saveContactContent(n, 'g', 'm', new Set([2, 3]));
        await settle();
        expect(await storage.loadContactContent(n, 'g', 'm')).toEqual(new Set([1, 2, 3]));
      });

      it('intersects shrink sets, appends grow arrays and unions grow maps', async () => {
        const n = net();
        await storage.saveContactContent(n, 'g', 'shrink', shrinkSet(['a', 'b', 'c']), MERGE);
        await storage.saveContactContent(n, 'g', 'shrink', shrinkSet(['b', 'c', 'd']), MERGE);
        await storage.saveContactContent(n, 'g', 'log', growArray([1]), MERGE);
        await storage.saveContactContent(n, 'g', 'log', growArray([2, 3]), MERGE);
        await storage.saveContactContent(n, 'g', 'map', growMap([['x', growSet([1])]]), MERGE);
        await storage.saveContactContent(n, 'g', 'map', growMap<string, unknown>([['x', growSet([2])], ['y', 'new']]), MERGE);
        await settle();
        expect(await storage.loadContactContent(n, 'g', 'shrink')).toEqual(shrinkSet(['b', 'c']));
        expect(await storage.loadContactContent(n, 'g', 'log')).toEqual(growArray([1, 2, 3]));
        expect(await storage.loadContactContent(n, 'g', 'map')).toEqual(growMap<string, unknown>([['x', growSet([1, 2])], ['y', 'new']]));
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
        expect(scalar?.content).toBe(42);
        expect(scalar?.lastContradiction?.values).toEqual([42, 43]);
        expect(typeof scalar?.lastContradiction?.message).toBe('string');
        expect(typeof scalar?.lastContradiction?.timestamp).toBe('number');
        const shrink = group?.contacts.get('shrink');
        expect(shrink?.content).toEqual(shrinkSet(['a']));
        expect(shrink?.lastContradiction?.message).toMatch(/empty/);
      });
    });

    describe('groups', () => {
      it('saves and loads a group with contacts, wires and attributes', async () => {
        const n = net();
        const state = groupState('g', [contact('g', 'a', 1), contact('g', 'b', { x: [1] }, { blendMode: 'merge', name: 'B' })], { 'bassline.type': 'adder' });
        state.wires.set('w1', { id: 'w1', groupId: 'g', fromId: 'a', toId: 'b', type: 'directed' });
        state.group.wireIds = ['w1'];
        await storage.saveGroupState(n, 'g', state);
        await settle();
        const loaded = await storage.loadGroupState(n, 'g');
        expect(loaded?.group).toEqual(state.group);
        expect(loaded?.wires).toEqual(state.wires);
        expect([...(loaded?.contacts.keys() ?? [])].sort()).toEqual(['a', 'b']);
        expect(loaded?.contacts.get('b')).toMatchObject({ id: 'b', groupId: 'g', blendMode: 'merge', name: 'B', content: { x: [1] } });
      });

      it('stores an empty group and an empty network', async () => {
        const n = net();
        await storage.saveGroupState(n, 'empty', groupState('empty'));
        const m = net();
        await storage.saveNetworkState(m, { groups: new Map(), rootGroupId: 'root', currentGroupId: 'root' });
        await settle();
        const group = await storage.loadGroupState(n, 'empty');
        expect(group?.contacts.size).toBe(0);
        expect(group?.group.contactIds).toEqual([]);
        const network = await storage.loadNetworkState(m);
        expect(network?.groups.size).toBe(0);
        expect(network?.rootGroupId).toBe('root');
        expect(await storage.exists(m)).toBe(true);
      });

      it('replaces a group: contacts left out of a save are removed', async () => {
        const n = net();
        await storage.saveGroupState(n, 'g', groupState('g', [contact('g', 'a', 1), contact('g', 'b', 2)]));
        await storage.saveGroupState(n, 'g', groupState('g', [contact('g', 'b', 3)]));
        await settle();
        const loaded = await storage.loadGroupState(n, 'g');
        expect([...(loaded?.contacts.keys() ?? [])]).toEqual(['b']);
        expect(await storage.loadContactContent(n, 'g', 'a')).toBeNull();
      });

      it('survives 10 concurrent saves: distinct groups all stored, one group ends as exactly one save', async () => {
        const n = net();
        await Promise.all(Array.from({ length: 10 }, (_, i) => storage.saveGroupState(n, `g${i}`, groupState(`g${i}`, [contact(`g${i}`, 'c', i)]))));
        const saves = Array.from({ length: 10 }, (_, i) => groupState('same', Array.from({ length: 3 }, (_, j) => contact('same', `s${i}-${j}`, i))));
        await Promise.all(saves.map((s) => storage.saveGroupState(n, 'same', s)));
        await settle();
        for (let i = 0; i < 10; i++) expect(await storage.loadContactContent(n, `g${i}`, 'c')).toBe(i);
        const same = await storage.loadGroupState(n, 'same');
        const ids = [...(same?.contacts.keys() ?? [])].sort();
        expect(ids).toHaveLength(3);
        const winner = ids[0]!.split('-')[0];
        expect(ids).toEqual([0, 1, 2].map((j) => `${winner}-${j}`));
      });

      it('refuses a group state whose group id does not match and stores nothing', async () => {
        const n = net();
        await expect(storage.saveGroupState(n, 'g', groupState('other'))).rejects.toThrow(/does not match/);
        await settle();
        expect(await storage.exists(n)).toBe(false);
      });

      it('deletes a group with its contacts and its subgroups, leaving others', async () => {
        const n = net();
        await storage.saveGroupState(n, 'parent', groupState('parent', [contact('parent', 'p', 1)], undefined, { subgroupIds: ['child'] }));
        await storage.saveGroupState(n, 'child', groupState('child', [contact('child', 'c', 2)], undefined, { parentId: 'parent' }));
        await storage.saveGroupState(n, 'grandchild', groupState('grandchild', [], undefined, { parentId: 'child' }));
        await storage.saveGroupState(n, 'other', groupState('other', [contact('other', 'o', 3)]));
        await storage.deleteGroup(n, 'parent');
        await settle();
        expect(await storage.loadGroupState(n, 'parent')).toBeNull();
        expect(await storage.loadGroupState(n, 'child')).toBeNull();
        expect(await storage.loadGroupState(n, 'grandchild')).toBeNull();
        expect(await storage.loadContactContent(n, 'child', 'c')).toBeNull();
        expect(await storage.loadContactContent(n, 'other', 'o')).toBe(3);
        await storage.deleteGroup(n, 'never-existed');
      });
    });

    describe('networks', () => {
      it('saves every group of a network state and loads it back', async () => {
        const n = net();
        const state: NetworkState = {
          groups: new Map([
            ['root', groupState('root', [contact('root', 'x', 'rx')], undefined, { subgroupIds: ['root/sub'] })],
            ['root/sub', groupState('root/sub', [contact('root/sub', 'y', new Set([1]), { blendMode: 'merge' })], undefined, { parentId: 'root' })],
          ]),
          rootGroupId: 'root',
          currentGroupId: 'root/sub',
        };
        await storage.saveNetworkState(n, state);
        await settle();
        const loaded = await storage.loadNetworkState(n);
        expect(loaded?.rootGroupId).toBe('root');
        expect(loaded?.currentGroupId).toBe('root/sub');
        expect([...(loaded?.groups.keys() ?? [])].sort()).toEqual(['root', 'root/sub']);
        expect(loaded?.groups.get('root/sub')?.contacts.get('y')?.content).toEqual(new Set([1]));
        expect(await storage.loadContactContent(n, 'root', 'x')).toBe('rx');
      });

      it('replaces a network: groups left out of a save are removed', async () => {
        const n = net();
        await storage.saveGroupState(n, 'old', groupState('old', [contact('old', 'c', 1)]));
        await storage.saveNetworkState(n, { groups: new Map([['new', groupState('new')]]), rootGroupId: 'new', currentGroupId: 'new' });
        await settle();
        expect(await storage.loadGroupState(n, 'old')).toBeNull();
        expect([...((await storage.loadNetworkState(n))?.groups.keys() ?? [])]).toEqual(['new']);
      });

      it('lists networks and deletes one with its groups, contacts and snapshots', async () => {
        const a = net('a');
        const b = net('b');
        await storage.saveContactContent(a, 'g1', 'c', 1);
        await storage.saveContactContent(a, 'g2', 'c', 2);
        await storage.saveContactContent(b, 'g1', 'c', 3);
        await settle();
        const snapshotId = await storage.saveSnapshot(a, 'before delete');
        expect(await storage.listNetworks()).toEqual(expect.arrayContaining([a, b]));
        await storage.deleteNetwork(a);
        await settle();
        expect(await storage.listNetworks()).not.toContain(a);
        expect(await storage.exists(a)).toBe(false);
        expect(await storage.loadGroupState(a, 'g1')).toBeNull();
        expect(await storage.loadContactContent(a, 'g2', 'c')).toBeNull();
        expect(await storage.listSnapshots(a)).toEqual([]);
        await expect(storage.loadSnapshot(a, snapshotId)).rejects.toBeInstanceOf(SnapshotNotFoundError);
        expect(await storage.loadContactContent(b, 'g1', 'c')).toBe(3);
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
        expect(await storage.queryGroups(n, { tags: ['all'] })).toHaveLength(100);
        const tenthEven = await storage.queryGroups(n, { tags: ['even', 'tenth'] });
        expect(tenthEven.map((s) => s.group.id).sort()).toEqual(['g0', 'g10', 'g20', 'g30', 'g40', 'g50', 'g60', 'g70', 'g80', 'g90'].sort());
        expect(tenthEven.every((s) => s.contacts.size === 10)).toBe(true);
        expect(await storage.queryGroups(n, { tags: ['odd', 'tenth'] })).toHaveLength(0);
        expect((await storage.loadNetworkState(n))?.groups.size).toBe(100);
      });

      it('matches author, type and attributes, all criteria together', async () => {
        const n = net();
        await storage.saveGroupState(n, 'a', groupState('a', [], { 'bassline.author': 'alice', 'bassline.type': 'gadget', color: 'red', size: { w: 1 } }));
        await storage.saveGroupState(n, 'b', groupState('b', [], { 'bassline.author': 'bob', 'bassline.type': 'gadget', color: 'red' }));
        await storage.saveGroupState(n, 'c', groupState('c', [], { 'bassline.author': 'alice', 'bassline.type': 'network', color: 'blue' }));
        await storage.saveGroupState(n, 'd', groupState('d'));
        await settle();
        const ids = async (query: Parameters<NetworkStorage['queryGroups']>[1]) => (await storage.queryGroups(n, query)).map((s) => s.group.id).sort();
        expect(await ids({ author: 'alice' })).toEqual(['a', 'c']);
        expect(await ids({ type: 'gadget' })).toEqual(['a', 'b']);
        expect(await ids({ author: 'alice', type: 'gadget' })).toEqual(['a']);
        expect(await ids({ attributes: { color: 'red' } })).toEqual(['a', 'b']);
        expect(await ids({ attributes: { size: { w: 1 } } })).toEqual(['a']);
        expect(await ids({ attributes: { color: 'red' }, author: 'bob' })).toEqual(['b']);
        expect(await ids({ author: 'carol' })).toEqual([]);
        expect(await ids({})).toEqual(['a', 'b', 'c', 'd']);
        expect(await storage.queryGroups(net('unknown'), { author: 'alice' })).toEqual([]);
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
        expect(list.map((s) => s.id)).toEqual([second, first]);
        expect(list[1]).toMatchObject({ id: first, networkId: n, label: 'one' });
        expect(list[0]?.createdAt).toBeInstanceOf(Date);
        expect(list[0]!.createdAt.getTime()).toBeGreaterThanOrEqual(list[1]!.createdAt.getTime());
        expect(list[0]?.size).toBeGreaterThan(0);
        const old = await storage.loadSnapshot(n, first);
        expect(old.groups.get('root')?.contacts.get('v')?.content).toBe(1);
        expect((await storage.loadSnapshot(n, second)).groups.get('root')?.contacts.get('v')?.content).toBe(2);
        expect(await storage.loadContactContent(n, 'root', 'v')).toBe(2);
        await storage.deleteSnapshot(n, first);
        expect((await storage.listSnapshots(n)).map((s) => s.id)).toEqual([second]);
        await expect(storage.loadSnapshot(n, first)).rejects.toBeInstanceOf(SnapshotNotFoundError);
        await expect(storage.deleteSnapshot(n, first)).rejects.toBeInstanceOf(SnapshotNotFoundError);
      });

      it('gives ten snapshots taken at once ten different ids', async () => {
        const n = net();
        await storage.saveContactContent(n, 'root', 'v', 1);
        await settle();
        const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => storage.saveSnapshot(n, `s${i}`)));
        expect(new Set(ids).size).toBe(10);
        expect((await storage.listSnapshots(n)).map((s) => s.id).sort()).toEqual([...ids].sort());
      });

      it('refuses a snapshot of an unknown network and an unknown snapshot id with typed errors', async () => {
        const n = net();
        await expect(storage.saveSnapshot(n)).rejects.toBeInstanceOf(NetworkNotFoundError);
        await expect(storage.loadSnapshot(n, 'missing')).rejects.toBeInstanceOf(SnapshotNotFoundError);
        expect(await storage.listSnapshots(n)).toEqual([]);
        await expect(storage.loadSnapshot(n, '../x')).rejects.toBeInstanceOf(InvalidIdError);
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
          expect(seen.map((s) => s.path)).toEqual(expect.arrayContaining([`${a}/users`, `${a}/users/@alice`]));
        });
        const alice = seen.find((s) => s.path === `${a}/users/@alice`);
        expect(alice?.state?.contacts.get('mood')?.content).toBe('happy');
        expect(alice?.change).toMatchObject({ networkId: a, groupId: 'users/@alice', kind: 'updated' });
        // A last write under the prefix, so anything wrongly delivered before it has arrived too.
        await storage.saveContactContent(a, 'users', 'count', 2);
        await eventually(() => expect(seen.some((s) => s.state?.contacts.get('count')?.content === 2)).toBe(true));
        expect(seen.every((s) => s.path === `${a}/users` || s.path.startsWith(`${a}/users/`))).toBe(true);
        await unsubscribe();
        const before = seen.length;
        await storage.saveContactContent(a, 'users', 'count', 3);
        await settle();
        await storage.saveContactContent(a, 'users', 'count', 4);
        await settle();
        expect(seen.length).toBe(before);
      });

      it('copies every network of another storage with sync', async () => {
        const { MemoryStorage } = await import('../backends/memory');
        const remote = new MemoryStorage();
        const n = net('remote');
        await remote.saveContactContent(n, 'g', 'c', { from: 'remote' });
        await remote.saveGroupState(n, 'h', groupState('h', [contact('h', 'd', new Map([[1, 2]]))]));
        const result = await storage.sync(remote);
        await settle();
        expect(result.networks).toBeGreaterThanOrEqual(1);
        expect(await storage.loadContactContent(n, 'g', 'c')).toEqual({ from: 'remote' });
        expect(await storage.loadContactContent(n, 'h', 'd')).toEqual(new Map([[1, 2]]));
        await remote.close();
      });
    });
  });
}
