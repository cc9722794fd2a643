/**
 * Whole-group operations against contact writes under reorder: random operations (contact writes
 * of both blend modes, group saves and deletes, network saves and deletes, a snapshot restore),
 * each stamped by its writer's clock, delivered in a random order with duplicates, must leave a
 * backend equal to the stamp-ordered model: every operation applied once, in stamp order, to an
 * empty network. Registered for each backend (test/unit, test/emulators, test/postgres, test/e2e).
 */
import fc from 'fast-check';
import { canonicalize } from '../../shared/codec';
import { compareStamps, HybridLogicalClock } from '../../shared/hlc';
import {
  growArray,
  growSet,
  mergeValues,
  type BlendMode,
  type Contact,
  type DocumentStorage,
  type GroupState,
  type NetworkState,
  type WriteOrigin,
} from 'super-spine';
import { type ContactWrite } from '../../shared/blend';

export const GROUPS = ['g0', 'g1', 'g2'] as const;

/** One contact per kind of content, its blend mode fixed by its id. */
export const CONTACTS: Record<string, { blendMode: BlendMode; content: (token: string, value: number) => unknown }> = {
  last: { blendMode: 'accept-last', content: (token) => token },
  set: { blendMode: 'merge', content: (token) => growSet([token]) },
  list: { blendMode: 'merge', content: (token) => growArray([token]) },
  // Plain scalars in merge mode: equal ones merge, different ones contradict (the older stays).
  scalar: { blendMode: 'merge', content: (_token, value) => value % 2 },
};
const CONTACT_IDS = Object.keys(CONTACTS);

export type Operation =
  | { kind: 'write'; groupId: string; contactId: string; write: ContactWrite }
  | { kind: 'groupSave'; groupId: string; state: GroupState; origin: WriteOrigin }
  | { kind: 'groupDelete'; groupId: string; origin: WriteOrigin }
  | { kind: 'networkSave'; state: NetworkState; origin: WriteOrigin }
  | { kind: 'networkDelete'; origin: WriteOrigin }
  /** Restores the scenario's snapshot: a network save of its state, stamped like any other. */
  | { kind: 'restore'; origin: WriteOrigin };

/** A delivery: one operation, or several contact writes to one group delivered as one bundle. */
export type Delivery =
  Operation | { kind: 'bundle'; groupId: string; writes: Array<Extract<Operation, { kind: 'write' }>> };

export function stampOf(op: Operation): string {
  return op.kind === 'write' ? op.write.stamp : op.origin.stamp;
}

// ---- the model

export type ModelContact = { blendMode: BlendMode; content: unknown };
export type ModelState = Map<string, { name: string; contacts: Map<string, ModelContact> }>;

function groupFromState(state: GroupState): { name: string; contacts: Map<string, ModelContact> } {
  return {
    name: state.group.name,
    contacts: new Map(
      [...state.contacts].map(([id, c]) => [id, { blendMode: c.blendMode, content: c.content }] as const),
    ),
  };
}

export function modelFromNetworkState(state: NetworkState | null): ModelState {
  return new Map([...(state?.groups ?? [])].map(([id, group]) => [id, groupFromState(group)] as const));
}

/** Every operation once, in stamp order, from an empty network; `snapshot` is what a restore puts back. */
export function stampOrderedModel(operations: readonly Operation[], snapshot: NetworkState | null): ModelState {
  let model: ModelState = new Map();
  for (const op of [...operations].sort((a, b) => compareStamps(stampOf(a), stampOf(b)))) {
    switch (op.kind) {
      case 'write': {
        const group = model.get(op.groupId) ?? { name: op.groupId, contacts: new Map() };
        model.set(op.groupId, group);
        const contact = group.contacts.get(op.contactId) ?? {
          blendMode: op.write.blendMode ?? 'accept-last',
          content: undefined,
        };
        if (contact.blendMode === 'accept-last') contact.content = op.write.content;
        else {
          const merged = mergeValues(contact.content, op.write.content);
          if (merged.ok) contact.content = merged.value;
        }
        group.contacts.set(op.contactId, contact);
        break;
      }
      case 'groupSave':
        model.set(op.groupId, groupFromState(op.state));
        break;
      case 'groupDelete':
        model.delete(op.groupId);
        break;
      case 'networkSave':
        model = modelFromNetworkState(op.state);
        break;
      case 'networkDelete':
        model = new Map();
        break;
      case 'restore':
        if (!snapshot) throw new Error('a restore without a snapshot');
        model = modelFromNetworkState(snapshot);
        break;
    }
  }
  return model;
}

/** A comparable form: groups and contacts sorted, contents canonical. */
export function describeModel(model: ModelState): Record<string, { name: string; contacts: Record<string, string> }> {
  const out: Record<string, { name: string; contacts: Record<string, string> }> = {};
  for (const id of [...model.keys()].sort()) {
    const group = model.get(id)!;
    const contacts: Record<string, string> = {};
    for (const contactId of [...group.contacts.keys()].sort()) {
      const contact = group.contacts.get(contactId)!;
      contacts[contactId] = `${contact.blendMode} ${canonicalize(contact.content)}`;
    }
    out[id] = { name: group.name, contacts };
  }
  return out;
}

/** The write tokens a state holds (grow sets and grow arrays), counted: to tell lost writes from writes applied twice. */
export function tokenCounts(model: ModelState): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [groupId, group] of model) {
    for (const [contactId, contact] of group.contacts) {
      const content = contact.content as { _tag?: string; values?: unknown[]; items?: unknown[] } | undefined;
      const tokens =
        content?._tag === 'GrowSet' ? content.values : content?._tag === 'GrowArray' ? content.items : undefined;
      for (const token of tokens ?? []) {
        const key = `${groupId}/${contactId}/${String(token)}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
  }
  return counts;
}

/**
 * Asserts `actual` equals `expected`, first naming acknowledged writes that were lost and writes
 * applied more than once, so a failure says which.
 */
export function expectConverged(actual: ModelState, expected: ModelState): void {
  const want = tokenCounts(expected);
  const have = tokenCounts(actual);
  const lost = [...want.keys()].filter((key) => !have.has(key));
  const twice = [...have]
    .filter(([key, count]) => count > (want.get(key) ?? 0))
    .map(([key, count]) => `${key} x${count}`);
  expect({ lost, appliedTwiceOrResurrected: twice }).toEqual({ lost: [], appliedTwiceOrResurrected: [] });
  expect(describeModel(actual)).toEqual(describeModel(expected));
}

// ---- scenarios

export interface Scenario {
  /** Applied first, in stamp order, then snapshotted: the snapshot a `restore` puts back. */
  prefix: Operation[];
  operations: Operation[];
  deliveries: Delivery[];
}

type Plan =
  | { kind: 'write'; writer: number; advance: number; group: number; contact: number; value: number }
  | { kind: 'groupSave'; writer: number; advance: number; group: number; contacts: number[]; value: number }
  | { kind: 'groupDelete'; writer: number; advance: number; group: number }
  | { kind: 'networkSave'; writer: number; advance: number; groups: number[]; contacts: number[]; value: number }
  | { kind: 'networkDelete'; writer: number; advance: number }
  | { kind: 'restore'; writer: number; advance: number };

const common = { writer: fc.nat(2), advance: fc.nat(2) };
const indexes = (n: number) => fc.subarray([...Array(n).keys()]);
const planArbitrary: fc.Arbitrary<Plan> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      ...common,
      group: fc.nat(GROUPS.length - 1),
      contact: fc.nat(CONTACT_IDS.length - 1),
      value: fc.nat(5),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('groupSave' as const),
      ...common,
      group: fc.nat(GROUPS.length - 1),
      contacts: indexes(CONTACT_IDS.length),
      value: fc.nat(5),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('groupDelete' as const), ...common, group: fc.nat(GROUPS.length - 1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('networkSave' as const),
      ...common,
      groups: indexes(GROUPS.length),
      contacts: indexes(CONTACT_IDS.length),
      value: fc.nat(5),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('networkDelete' as const), ...common }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restore' as const), ...common }) },
);

function savedGroup(groupId: string, contactIndexes: number[], token: string, value: number): GroupState {
  const contacts = contactIndexes.map((i): Contact => {
    const id = CONTACT_IDS[i]!;
    return {
      id,
      groupId,
      blendMode: CONTACTS[id]!.blendMode,
      content: CONTACTS[id]!.content(`${token}@${groupId}`, value),
    };
  });
  return {
    group: {
      id: groupId,
      name: `saved ${token}`,
      contactIds: contacts.map((c) => c.id),
      wireIds: [],
      subgroupIds: [],
      boundaryContactIds: [],
    },
    contacts: new Map(contacts.map((c) => [c.id, c] as const)),
    wires: new Map(),
  };
}

/** Writers' clocks reading a shared fake time near now (inside the reorder window), moving by each plan's `advance`. */
function stampPlans(plans: Plan[], startTime: number): Operation[] {
  let time = startTime;
  const writers = ['writer-a', 'writer-b', 'writer-c'];
  const clocks = writers.map((id) => new HybridLogicalClock(id, () => time));
  const sequences = writers.map(() => 0);
  return plans.map((plan): Operation => {
    time += plan.advance;
    const writerId = writers[plan.writer]!;
    const origin: WriteOrigin = { stamp: clocks[plan.writer]!.tick(), writerId, seq: ++sequences[plan.writer]! };
    const token = `${writerId}#${origin.seq}`;
    switch (plan.kind) {
      case 'write': {
        const contactId = CONTACT_IDS[plan.contact]!;
        const { blendMode, content } = CONTACTS[contactId]!;
        return {
          kind: 'write',
          groupId: GROUPS[plan.group]!,
          contactId,
          write: { ...origin, content: content(token, plan.value), blendMode },
        };
      }
      case 'groupSave':
        return {
          kind: 'groupSave',
          groupId: GROUPS[plan.group]!,
          state: savedGroup(GROUPS[plan.group]!, plan.contacts, token, plan.value),
          origin,
        };
      case 'groupDelete':
        return { kind: 'groupDelete', groupId: GROUPS[plan.group]!, origin };
      case 'networkSave': {
        const groups = new Map(
          plan.groups.map((g) => [GROUPS[g]!, savedGroup(GROUPS[g]!, plan.contacts, token, plan.value)] as const),
        );
        return {
          kind: 'networkSave',
          state: { groups, rootGroupId: GROUPS[plan.groups[0] ?? 0]!, currentGroupId: GROUPS[plan.groups[0] ?? 0]! },
          origin,
        };
      }
      case 'networkDelete':
        return { kind: 'networkDelete', origin };
      case 'restore':
        return { kind: 'restore', origin };
    }
  });
}

/** Each operation once in a random order, some again somewhere after their first delivery; runs of writes to one group maybe bundled. */
function deliveriesOf(operations: Operation[]): fc.Arbitrary<Delivery[]> {
  const order = fc.shuffledSubarray(operations, { minLength: operations.length, maxLength: operations.length });
  const duplicates = fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 5 });
  return fc.tuple(order, duplicates, fc.boolean()).map(([shuffled, dups, bundle]) => {
    const out = [...shuffled];
    for (const [index, where] of dups) {
      if (out.length === 0) break;
      const op = out[index % out.length]!;
      const first = out.indexOf(op);
      out.splice(first + 1 + (where % (out.length - first)), 0, op);
    }
    if (!bundle) return out;
    const bundled: Delivery[] = [];
    for (const op of out) {
      const last = bundled[bundled.length - 1];
      if (op.kind === 'write' && last?.kind === 'bundle' && last.groupId === op.groupId && !last.writes.includes(op))
        last.writes.push(op);
      else if (op.kind === 'write') bundled.push({ kind: 'bundle', groupId: op.groupId, writes: [op] });
      else bundled.push(op);
    }
    return bundled.map((d) => (d.kind === 'bundle' && d.writes.length === 1 ? d.writes[0]! : d));
  });
}

/** The fixed start of every scenario: a saved network and a few writes, snapshotted before the rest. */
function prefixPlans(): Plan[] {
  return [
    { kind: 'networkSave', writer: 0, advance: 0, groups: [0, 1], contacts: [0, 1, 2, 3], value: 1 },
    { kind: 'write', writer: 1, advance: 1, group: 0, contact: 1, value: 0 },
    { kind: 'write', writer: 2, advance: 1, group: 2, contact: 2, value: 0 },
  ];
}

export function scenarios(options: { minOperations: number; maxOperations: number }): fc.Arbitrary<Scenario> {
  return fc
    .array(planArbitrary, { minLength: options.minOperations, maxLength: options.maxOperations })
    .chain((plans) => {
      const all = stampPlans([...prefixPlans(), ...plans], Date.now() - 60_000);
      const prefix = all.slice(0, prefixPlans().length);
      const operations = all.slice(prefix.length);
      return deliveriesOf(operations).map((deliveries) => ({ prefix, operations, deliveries }));
    });
}

// ---- running a scenario

/** How a backend receives operations and shows its state. */
export interface ConvergenceTarget {
  deliver(networkId: string, delivery: Delivery, snapshotId: string): Promise<void>;
  /** Settles what was delivered (the mesh: waits until `expected` is materialized) and returns the state. */
  read(networkId: string, expected: ModelState): Promise<ModelState>;
  saveSnapshot(networkId: string): Promise<string>;
  loadSnapshot(networkId: string, snapshotId: string): Promise<NetworkState>;
}

/** One line per operation, for failure messages: `stamp kind group/contact content`. */
export function describeOperation(op: Delivery): string {
  const short = (stamp: string) => stamp.replace(/^0+/, '');
  switch (op.kind) {
    case 'bundle':
      return `bundle [${op.writes.map(describeOperation).join('; ')}]`;
    case 'write':
      return `${short(op.write.stamp)} write ${op.groupId}/${op.contactId} ${canonicalize(op.write.content)}`;
    case 'groupSave':
      return `${short(op.origin.stamp)} groupSave ${op.groupId} {${[...op.state.contacts.values()].map((c) => `${c.id}: ${canonicalize(c.content)}`).join(', ')}}`;
    case 'networkSave':
      return `${short(op.origin.stamp)} networkSave [${[...op.state.groups.keys()].join(', ')}] {${[...([...op.state.groups.values()][0]?.contacts.keys() ?? [])].join(', ')}}`;
    case 'groupDelete':
      return `${short(op.origin.stamp)} groupDelete ${op.groupId}`;
    default:
      return `${short(op.origin.stamp)} ${op.kind}`;
  }
}

/** Runs `scenario` on a fresh network of `target` and asserts it equals the stamp-ordered model. */
export async function runScenario(target: ConvergenceTarget, networkId: string, scenario: Scenario): Promise<void> {
  try {
    await runScenarioUnexplained(target, networkId, scenario);
  } catch (error) {
    const explained = error as Error;
    explained.message = `delivered in this order after the prefix:\n  ${scenario.deliveries.map(describeOperation).join('\n  ')}\n${explained.message}`;
    throw explained;
  }
}

async function runScenarioUnexplained(target: ConvergenceTarget, networkId: string, scenario: Scenario): Promise<void> {
  for (const op of scenario.prefix) await target.deliver(networkId, op, '');
  const prefixModel = stampOrderedModel(scenario.prefix, null);
  expectConverged(await target.read(networkId, prefixModel), prefixModel);
  const snapshotId = await target.saveSnapshot(networkId);
  const snapshot = await target.loadSnapshot(networkId, snapshotId);
  expect(describeModel(modelFromNetworkState(snapshot))).toEqual(describeModel(prefixModel));
  for (const delivery of scenario.deliveries) await target.deliver(networkId, delivery, snapshotId);
  const expected = stampOrderedModel([...scenario.prefix, ...scenario.operations], snapshot);
  expectConverged(await target.read(networkId, expected), expected);
}

/** A `DocumentStorage` receiving operations as the mesh's materialize function hands them over. */
export function documentTarget(storage: DocumentStorage): ConvergenceTarget {
  const snapshots = new Map<string, NetworkState>();
  return {
    async deliver(networkId, delivery, snapshotId) {
      switch (delivery.kind) {
        case 'write':
          await storage.applyContactWrites(networkId, delivery.groupId, [
            { contactId: delivery.contactId, write: delivery.write },
          ]);
          return;
        case 'bundle':
          await storage.applyContactWriteBatch(
            networkId,
            delivery.groupId,
            delivery.writes.map((w) => ({ contactId: w.contactId, write: w.write })),
          );
          return;
        case 'groupSave':
          await storage.applyGroupSave(networkId, delivery.groupId, delivery.state, delivery.origin);
          return;
        case 'groupDelete':
          await storage.applyGroupDelete(networkId, delivery.groupId, delivery.origin);
          return;
        case 'networkSave':
          await storage.applyNetworkSave(networkId, delivery.state, delivery.origin);
          return;
        case 'networkDelete':
          await storage.applyNetworkDelete(networkId, delivery.origin);
          return;
        case 'restore':
          // Loaded when it was taken: a network delete delivered earlier removes the stored snapshot.
          await storage.applyNetworkSave(networkId, snapshots.get(snapshotId)!, delivery.origin);
          return;
      }
    },
    async read(networkId) {
      return modelFromNetworkState(await storage.loadNetworkState(networkId));
    },
    saveSnapshot: (networkId) => storage.saveSnapshot(networkId),
    async loadSnapshot(networkId, snapshotId) {
      const state = await storage.loadSnapshot(networkId, snapshotId);
      snapshots.set(snapshotId, state);
      return state;
    },
  };
}

/**
 * Registers the property and the two cases of issue 17 for one backend. `storage()` gives an
 * initialized storage and a function that closes it.
 */
export function describeConvergence(
  backend: string,
  storage: () => Promise<{ storage: DocumentStorage; close(): Promise<void> }>,
  options: { numRuns: number; timeoutMs: number },
): void {
  describe(`whole-group operations converge under reorder (${backend})`, () => {
    let opened: { storage: DocumentStorage; close(): Promise<void> };
    beforeAll(async () => {
      opened = await storage();
    });
    afterAll(async () => {
      await opened?.close();
    });
    let networks = 0;
    const network = (label: string) => `${label}-${Date.now().toString(36)}-${++networks}`;
    const at = (time: number, writerId: string, seq = 1): WriteOrigin => ({
      stamp: new HybridLogicalClock(writerId, () => time).tick(),
      writerId,
      seq,
    });

    it('an older group delete delivered after a newer merge write keeps that write', async () => {
      const s = opened.storage;
      const net = network('older-delete');
      const now = Date.now();
      await s.applyContactWrite(net, 'g', 'c', { ...at(now - 3, 'w1'), content: growSet(['old']), blendMode: 'merge' });
      await s.applyContactWrite(net, 'g', 'c', {
        ...at(now - 1, 'w2'),
        content: growSet(['newer']),
        blendMode: 'merge',
      });
      await s.applyGroupDelete(net, 'g', at(now - 2, 'w3'));
      expect(await s.loadContactContent(net, 'g', 'c')).toEqual(growSet(['newer']));
    });

    it('an older group save delivered after a newer merge write puts the write on top of what it saved', async () => {
      const s = opened.storage;
      const net = network('older-save');
      const now = Date.now();
      await s.applyContactWrite(net, 'g', 'c', { ...at(now - 3, 'w1'), content: growSet(['old']), blendMode: 'merge' });
      await s.applyContactWrite(net, 'g', 'c', {
        ...at(now - 1, 'w2'),
        content: growSet(['newer']),
        blendMode: 'merge',
      });
      const saved: GroupState = {
        group: { id: 'g', name: 'g', contactIds: ['c'], wireIds: [], subgroupIds: [], boundaryContactIds: [] },
        contacts: new Map([['c', { id: 'c', groupId: 'g', blendMode: 'merge', content: growSet(['saved']) }]]),
        wires: new Map(),
      };
      await s.applyGroupSave(net, 'g', saved, at(now - 2, 'w3'));
      expect(canonicalize(await s.loadContactContent(net, 'g', 'c'))).toBe(canonicalize(growSet(['newer', 'saved'])));
    });

    it('a restored snapshot is a stamped network save: older writes delivered after it do not survive, newer ones apply on top', async () => {
      const s = opened.storage;
      const net = network('restore');
      const now = Date.now();
      await s.applyContactWrite(net, 'g', 'c', {
        ...at(now - 10, 'w1'),
        content: growSet(['snapshotted']),
        blendMode: 'merge',
      });
      const snapshotId = await s.saveSnapshot(net);
      await s.applyContactWrite(net, 'g', 'c', {
        ...at(now - 9, 'w1', 2),
        content: growSet(['after the snapshot']),
        blendMode: 'merge',
      });
      await s.applyContactWrite(net, 'g2', 'c', { ...at(now - 8, 'w1', 3), content: 'a group the snapshot lacks' });
      expect(await s.restoreSnapshot(net, snapshotId, at(now - 5, 'restorer'))).toEqual({
        written: ['g'],
        removed: ['g2'],
      });
      // Older than the restore, delivered after it.
      const late = await s.applyContactWrites(net, 'g', [
        {
          contactId: 'c',
          write: { ...at(now - 6, 'w2'), content: growSet(['older than the restore']), blendMode: 'merge' },
        },
      ]);
      expect(late[0]!.superseded).toBe(true);
      await s.applyContactWrite(net, 'g', 'c', {
        ...at(now - 4, 'w3'),
        content: growSet(['newer than the restore']),
        blendMode: 'merge',
      });
      expect(canonicalize(await s.loadContactContent(net, 'g', 'c'))).toBe(
        canonicalize(growSet(['snapshotted', 'newer than the restore'])),
      );
      expect(await s.loadGroupState(net, 'g2')).toBeNull();
    });

    it(
      'random writes, saves, deletes and restores in any arrival order with duplicates equal the stamp-ordered model',
      async () => {
        await fc.assert(
          fc.asyncProperty(scenarios({ minOperations: 4, maxOperations: 24 }), async (scenario) => {
            await runScenario(documentTarget(opened.storage), network('property'), scenario);
          }),
          { numRuns: options.numRuns },
        );
      },
      options.timeoutMs,
    );
  });
}
