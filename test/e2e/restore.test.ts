/**
 * Point-in-time restore on the local mesh with its archiver (one mesh for the file): a property
 * test over random writes (both blend modes, bundles, redeliveries, stamps out of arrival order),
 * group saves and deletes with snapshots taken between, restored at random instants and compared
 * with a model of the same events; a corrupt and a missing archive object; instants in the future
 * and before the archive; `as` into an existing network; the CLI.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { File, GetFilesOptions, Storage } from '@google-cloud/storage';
import fc from 'fast-check';
import { eventually } from 'super-spine/testing';
import { createEvent, encodePubSubMessage } from '../../shared/events';
import { EventType, type AnySpineEvent } from '../../shared/events/types';
import {
  ArchiveCorruptError,
  ArchiveUnreadableError,
  NothingToRestoreError,
  PointInTimeRestoreStillApplyingError,
  RestorePointBeforeArchiveError,
  RestorePointInFutureError,
  RestoreTargetExistsError,
} from '../../shared/history/errors';
import { archiveObjectName } from '../../shared/history/layout';
import { formatStamp } from '../../shared/hlc';
import { growArray, isMergeable, type GrowArray } from '../../shared/mergeable';
import type { BlendMode, Contact, GroupState, NetworkState } from '../../shared/model';
import type { SpineStorage } from '../../shared/mesh/spine-storage';
import { archiveOf, publishEvent } from '../helpers/archive';
import { useLocalMesh } from '../helpers/mesh';
import { cliEnv, runSpine, writeMeshEnv, type CliResult } from '../helpers/spine-cli';

jest.setTimeout(180_000);

const mesh = useLocalMesh({ archiver: { maxBatchMs: 200 } });
const run = randomUUID().slice(0, 8);

const archive = () => archiveOf(mesh);

const publish = (event: AnySpineEvent) => publishEvent(mesh, event);

// ---- the model: what the events mean, written independently of the materializer

/**
 * `a*` contacts are accept-last with numbers; `m*` merge sets of strings (union, idempotent); `r*`
 * merge grow arrays (appends: a write applied twice would show twice).
 */
const GROUPS = ['g0', 'g1', 'g2'] as const;
const CONTACTS = ['a0', 'a1', 'a2', 'm0', 'm1', 'r0'] as const;
const modeOf = (contact: string): BlendMode => (contact.startsWith('a') ? 'accept-last' : 'merge');
const contentOf = (contact: string, value: number): unknown =>
  contact.startsWith('m') ? new Set([`v${value}`]) : contact.startsWith('r') ? growArray([`v${value}`]) : value;

/** Merges the model knows: set union and array append. */
function merged(before: unknown, content: unknown): unknown {
  if (before instanceof Set) return new Set([...before, ...(content as Set<string>)]);
  if (isMergeable(before) && before._tag === 'GrowArray')
    return growArray([...before.items, ...(content as GrowArray).items]);
  return content;
}

interface Written {
  contact: string;
  value: number;
}

type Operation =
  | { kind: 'write'; group: string; writes: [Written]; redeliver: boolean; skew: number }
  | { kind: 'bundle'; group: string; writes: Written[]; redeliver: boolean; skew: number }
  | { kind: 'save'; group: string; writes: Written[]; redeliver: boolean; skew: number }
  | { kind: 'delete'; group: string; redeliver: boolean; skew: number };

/** One write as the model keeps it: what it did, its stamp and its event's time. */
type ModelRecord =
  | { kind: 'write'; group: string; contact: string; value: number; stamp: string; time: number }
  | { kind: 'save'; group: string; writes: Written[]; stamp: string; time: number }
  | { kind: 'delete'; group: string; stamp: string; time: number };

type Comparable = Record<string, Record<string, [BlendMode, unknown]>>;

/** Sets and grow arrays as sorted lists: the order of appends is not what is compared, their count is. */
const normalize = (content: unknown): unknown =>
  content instanceof Set
    ? [...content].sort()
    : isMergeable(content) && content._tag === 'GrowArray'
      ? { growArray: [...(content.items as string[])].sort() }
      : content;

/**
 * The network at `at` from the model's records: per group, its newest whole-group operation by
 * stamp (save or delete), then the contact writes stamped after it, in stamp order: accept-last
 * keeps the newest, merge unions. A group deleted with nothing written after it is gone.
 */
function model(records: ModelRecord[], at: number): Comparable {
  const result: Comparable = {};
  const inTime = records.filter((r) => r.time <= at);
  for (const group of GROUPS) {
    const operations = inTime
      .filter((r) => r.group === group && r.kind !== 'write')
      .sort((a, b) => (a.stamp < b.stamp ? -1 : 1));
    const last = operations[operations.length - 1];
    const writes = inTime
      .filter(
        (r): r is Extract<ModelRecord, { kind: 'write' }> =>
          r.kind === 'write' && r.group === group && (!last || r.stamp > last.stamp),
      )
      .sort((a, b) => (a.stamp < b.stamp ? -1 : 1));
    if (writes.length === 0 && (!last || last.kind === 'delete')) continue;
    const contacts = new Map<string, unknown>();
    if (last?.kind === 'save') for (const w of last.writes) contacts.set(w.contact, contentOf(w.contact, w.value));
    for (const w of writes) {
      const content = contentOf(w.contact, w.value);
      contacts.set(w.contact, modeOf(w.contact) === 'merge' ? merged(contacts.get(w.contact), content) : content);
    }
    result[group] = Object.fromEntries(
      [...contacts].map(([id, content]) => [id, [modeOf(id), normalize(content)] as [BlendMode, unknown]]),
    );
  }
  return result;
}

function comparable(state: NetworkState | null): Comparable {
  const result: Comparable = {};
  for (const [groupId, group] of state?.groups ?? []) {
    result[groupId] = Object.fromEntries(
      [...group.contacts].map(([id, contact]) => {
        expect(contact.lastContradiction).toBeUndefined();
        return [id, [contact.blendMode, normalize(contact.content)] as [BlendMode, unknown]];
      }),
    );
  }
  return result;
}

function savedState(group: string, writes: Written[]): GroupState {
  const contacts = new Map<string, Contact>();
  for (const w of writes)
    contacts.set(w.contact, {
      id: w.contact,
      groupId: group,
      content: contentOf(w.contact, w.value),
      blendMode: modeOf(w.contact),
    });
  return {
    group: {
      id: group,
      name: group,
      contactIds: [...contacts.keys()],
      wireIds: [],
      subgroupIds: [],
      boundaryContactIds: [],
    },
    contacts,
    wires: new Map(),
  };
}

// ---- generating and publishing the events

const written = fc.record({ contact: fc.constantFrom(...CONTACTS), value: fc.integer({ min: 0, max: 99 }) });
const distinctWrites = (min: number, max: number) =>
  fc.uniqueArray(written, { minLength: min, maxLength: max, selector: (w) => w.contact });
const common = { redeliver: fc.boolean(), skew: fc.integer({ min: 0, max: 40 }) };
const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      group: fc.constantFrom(...GROUPS),
      writes: fc.tuple(written),
      ...common,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('bundle' as const),
      group: fc.constantFrom(...GROUPS),
      writes: distinctWrites(2, 4),
      ...common,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('save' as const),
      group: fc.constantFrom(...GROUPS),
      writes: distinctWrites(0, 3),
      ...common,
    }),
  },
  // g0 is never deleted, so the network always has a group to restore.
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('delete' as const), group: fc.constantFrom('g1', 'g2'), ...common }),
  },
);
const phases = fc.array(fc.array(operation, { minLength: 6, maxLength: 12 }), { minLength: 3, maxLength: 3 });

/** Publishes a phase's operations as events of two writers, stamps skewed so they disagree with arrival order, redeliveries last. */
class Publisher {
  private logical = 0;
  private readonly seqs = new Map<string, number>();
  readonly records: ModelRecord[] = [];
  readonly times: number[] = [];

  constructor(readonly network: string) {}

  private seq(key: string): number {
    const next = (this.seqs.get(key) ?? 0) + 1;
    this.seqs.set(key, next);
    return next;
  }

  async phase(operations: Operation[]): Promise<void> {
    const start = Date.now();
    const again: AnySpineEvent[] = [];
    for (const [index, op] of operations.entries()) {
      const writerId = `w${index % 2}-${this.network}`;
      const stamp = () => formatStamp({ wallTime: start + op.skew, logical: ++this.logical, writerId });
      const time = new Date();
      const base = { networkId: this.network, groupId: op.group };
      let event: AnySpineEvent;
      if (op.kind === 'write' || op.kind === 'bundle') {
        const writes = op.writes.map((w) => ({
          id: randomUUID(),
          contactId: w.contact,
          content: contentOf(w.contact, w.value),
          blendMode: modeOf(w.contact),
          seq: this.seq(`${writerId}/${op.group}/${w.contact}`),
          stamp: stamp(),
        }));
        event = (
          op.kind === 'write'
            ? createEvent(
                EventType.ContactWritten,
                {
                  ...base,
                  writerId,
                  contactId: writes[0]!.contactId,
                  content: writes[0]!.content,
                  blendMode: writes[0]!.blendMode,
                  seq: writes[0]!.seq,
                  stamp: writes[0]!.stamp,
                },
                { source: '//restore-test', time, id: writes[0]!.id },
              )
            : createEvent(EventType.ContactsWritten, { ...base, writerId, writes }, { source: '//restore-test', time })
        ) as AnySpineEvent;
        op.writes.forEach((w, i) =>
          this.records.push({ kind: 'write', group: op.group, ...w, stamp: writes[i]!.stamp, time: time.getTime() }),
        );
      } else {
        const origin = { writerId, seq: this.seq(writerId), stamp: stamp() };
        event = (
          op.kind === 'save'
            ? createEvent(
                EventType.GroupSaved,
                { ...base, ...origin, state: savedState(op.group, op.writes) },
                { source: '//restore-test', time },
              )
            : createEvent(EventType.GroupDeleted, { ...base, ...origin }, { source: '//restore-test', time })
        ) as AnySpineEvent;
        this.records.push(
          op.kind === 'save'
            ? { kind: 'save', group: op.group, writes: op.writes, stamp: origin.stamp, time: time.getTime() }
            : { kind: 'delete', group: op.group, stamp: origin.stamp, time: time.getTime() },
        );
      }
      this.times.push(time.getTime());
      await publish(event);
      if (op.redeliver) again.push(event);
    }
    for (const event of again) await publish(event);
  }
}

async function untilArchived(network: string, events: number): Promise<void> {
  const reader = archive();
  await eventually(
    async () => expect((await reader.read({ networkId: network })).length).toBeGreaterThanOrEqual(events),
    {
      timeoutMs: 60_000,
      intervalMs: 250,
    },
  );
}

describe('restoreNetwork', () => {
  test('property: restored at random instants (into new networks, then in place), the network equals the model of the events up to then', async () => {
    let iteration = 0;
    await fc.assert(
      fc.asyncProperty(phases, fc.array(fc.nat(), { minLength: 4, maxLength: 4 }), async (plan, picks) => {
        const network = `prop-${run}-${iteration++}`;
        const client = mesh.client();
        const publisher = new Publisher(network);
        const snapshotTimes: number[] = [];
        for (const [index, operations] of plan.entries()) {
          await publisher.phase(operations);
          // The live mesh agrees with the model: the snapshot sees every event of the phase.
          await eventually(
            async () =>
              expect(comparable(await client.loadNetworkState(network))).toEqual(model(publisher.records, Infinity)),
            { timeoutMs: 60_000, intervalMs: 200 },
          );
          if (index < plan.length - 1) {
            await client.saveSnapshot(network);
            snapshotTimes.push((await client.listSnapshots(network))[0]!.createdAt.getTime());
          }
        }
        await untilArchived(network, publisher.times.length);
        const instants = [...publisher.times, ...snapshotTimes];
        const chosen = picks.map((pick) => instants[pick % instants.length]!);
        for (const [index, at] of chosen.slice(0, -1).entries()) {
          const as = `${network}-at${index}`;
          const summary = await client.restoreNetwork(network, { at: new Date(at), as });
          expect(summary).toMatchObject({ sourceNetworkId: network, networkId: as });
          expect(summary.snapshot?.createdAt.getTime() ?? -Infinity).toBeLessThanOrEqual(at);
          expect(comparable(await client.loadNetworkState(as))).toEqual(model(publisher.records, at));
        }
        // `as` left the live network alone; in place, the live network becomes the restored state.
        expect(comparable(await client.loadNetworkState(network))).toEqual(model(publisher.records, Infinity));
        const last = chosen[chosen.length - 1]!;
        await client.restoreNetwork(network, { at: new Date(last).toISOString() });
        expect(comparable(await client.loadNetworkState(network))).toEqual(model(publisher.records, last));
      }),
      { numRuns: 2, seed: 2126, endOnFailure: true },
    );
  });
});

describe('a restore that cannot be done writes nothing', () => {
  const network = `refuse-${run}`;
  let client: SpineStorage;
  let before: NetworkState | null;
  /** When content 2 was written: after the snapshot, before content 3. */
  let secondWrite: Date;

  beforeAll(async () => {
    client = mesh.client({ bundling: false });
    await client.saveContactContent(network, 'g', 'c', 1);
    await client.flush();
    await client.saveSnapshot(network);
    for (const value of [2, 3]) await client.saveContactContent(network, 'g', 'c', value);
    await client.flush();
    const reader = archive();
    const events = await eventually(
      async () => {
        const found = (await reader.read({ networkId: network })).filter(
          (event) => event.type === EventType.ContactWritten,
        );
        expect(found).toHaveLength(3);
        return found;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    secondWrite = new Date(
      events.find((event) => event.type === EventType.ContactWritten && event.data.content === 2)!.time,
    );
    before = await client.loadNetworkState(network);
  });

  /** The live network is as it was, and no network save of it was ever published (a marker write published after is archived, the save not). */
  async function expectNothingWritten(): Promise<void> {
    expect(await client.loadNetworkState(network)).toEqual(before);
    const marker = `marker-${randomUUID()}`;
    await client.saveContactContent(`${network}-marker`, 'g', 'c', marker);
    await client.flush();
    const reader = archive();
    await eventually(
      async () =>
        expect(
          (await reader.read({ networkId: `${network}-marker` })).some(
            (event) => event.type === EventType.ContactWritten && event.data.content === marker,
          ),
        ).toBe(true),
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const saves = (await reader.read({ networkId: network })).filter((event) => event.type === EventType.NetworkSaved);
    expect(saves).toEqual([]);
  }

  test('an instant in the future, or not a time, is refused', async () => {
    const future = new Date(Date.now() + 60_000);
    const error = await client.restoreNetwork(network, { at: future }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RestorePointInFutureError);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', at: future });
    expect((error as Error).message).toMatch(/is in the future/);
    await expect(client.restoreNetwork(network, { at: 'yesterday' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(client.restoreNetwork(network, {} as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(client.restoreNetwork(network, { at: secondWrite, timeoutMs: -1 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  test('an instant before the archive begins, with no snapshot then, is refused', async () => {
    const at = new Date('2020-01-01T00:00:00Z');
    const error = await client.restoreNetwork(network, { at }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RestorePointBeforeArchiveError);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', networkId: network });
    expect((error as RestorePointBeforeArchiveError).archiveBegins!.getTime()).toBeGreaterThan(at.getTime());
    expect((error as Error).message).toMatch(/the event archive begins at .* and no snapshot/);
  });

  test('as an existing network, or as the network itself, is refused', async () => {
    await client.saveContactContent(`${network}-taken`, 'g', 'c', 'mine');
    await client.flush();
    const error = await client
      .restoreNetwork(network, { at: secondWrite, as: `${network}-taken` })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RestoreTargetExistsError);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', networkId: `${network}-taken` });
    expect(await client.loadContactContent(`${network}-taken`, 'g', 'c')).toBe('mine');
    await expect(client.restoreNetwork(network, { at: secondWrite, as: network })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  test('a network that had no state then is refused', async () => {
    const ghost = `ghost-${run}`;
    const error = await client.restoreNetwork(ghost, { at: new Date() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NothingToRestoreError);
    expect(error).toMatchObject({ code: 'NETWORK_NOT_FOUND', networkId: ghost });
    expect(await client.exists(ghost)).toBe(false);
  });

  test('a wait that ends while the restore is being applied says so; the restore completes on its own', async () => {
    const as = `${network}-slow`;
    const error = await client.restoreNetwork(network, { at: secondWrite, as, timeoutMs: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PointInTimeRestoreStillApplyingError);
    expect(error).toMatchObject({ code: 'STILL_APPLYING', networkId: as, at: secondWrite });
    expect((error as Error).message).toMatch(/as of .* is still being applied after 1 ms/);
    await (error as PointInTimeRestoreStillApplyingError).applied;
    expect(await client.loadContactContent(as, 'g', 'c')).toBe(2);
  });

  test('a corrupt archive object: the error names it and line, and nothing is written (in place or as)', async () => {
    const { topology, settings } = mesh.mesh;
    const name = archiveObjectName(topology.archive, new Date());
    const file = mesh.storage.bucket(settings.bucket).file(name);
    await file.save('{"specversion":"1.0"}\nnot json\n');
    try {
      const error = await client.restoreNetwork(network, { at: new Date() }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ArchiveCorruptError);
      expect(error).toMatchObject({ code: 'CORRUPT_DATA', object: name, line: 1 });
      expect((error as Error).message).toContain(name);
      await expect(client.restoreNetwork(network, { at: new Date(), as: `${network}-corrupt` })).rejects.toBeInstanceOf(
        ArchiveCorruptError,
      );
      expect(await client.exists(`${network}-corrupt`)).toBe(false);
    } finally {
      await file.delete();
    }
    await expectNothingWritten();
  });

  test('an archive object that is gone when it is read: the error names it, and nothing is written', async () => {
    const { topology, settings } = mesh.mesh;
    // A redelivered copy of an archived event, in its own object, that disappears between listing and reading (as retention would delete it).
    const copy = createEvent(
      EventType.ContactWritten,
      {
        networkId: network,
        groupId: 'g',
        contactId: 'c',
        content: 2,
        writerId: 'copier',
        seq: 1,
        stamp: formatStamp({ wallTime: secondWrite.getTime(), logical: 0, writerId: 'copier' }),
      },
      { source: '//restore-test', time: secondWrite },
    ) as AnySpineEvent;
    const name = archiveObjectName(topology.archive, new Date());
    await mesh.storage
      .bucket(settings.bucket)
      .file(name)
      .save(encodePubSubMessage(copy).data.toString('utf8') + '\n');
    const vanishing = objectVanishingAfterListing(mesh.storage, name);
    const restorer = mesh.client({ storage: vanishing });
    const error = await restorer.restoreNetwork(network, { at: new Date() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArchiveUnreadableError);
    expect(error).toMatchObject({ code: 'NOT_FOUND', object: name, status: 404 });
    expect((error as Error).message).toContain(name);
    await expectNothingWritten();
  });

  describe('spine restore', () => {
    let dataDir: string;
    beforeAll(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'spine-restore-'));
      await writeMeshEnv(dataDir, mesh.mesh.env);
    });
    afterAll(async () => {
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });
    const spine = (args: string[]): Promise<CliResult> => runSpine(args, { env: cliEnv(dataDir) });

    test('restores into a new network (--json the summary, else a line); bad input exits 4, a missing --at 2', async () => {
      const json = await spine([
        'restore',
        network,
        '--at',
        secondWrite.toISOString(),
        '--as',
        `${network}-cli`,
        '--json',
      ]);
      expect(json).toMatchObject({ code: 0, stderr: '' });
      const summary = JSON.parse(json.stdout) as Record<string, unknown>;
      expect(summary).toMatchObject({
        network,
        restoredInto: `${network}-cli`,
        at: secondWrite.toISOString(),
        eventsApplied: 1,
        groups: 1,
      });
      expect(summary.snapshot).toMatchObject({ id: (await client.listSnapshots(network))[0]!.id });
      expect(await client.loadContactContent(`${network}-cli`, 'g', 'c')).toBe(2);
      expect(await client.loadContactContent(network, 'g', 'c')).toBe(3);

      const table = await spine(['restore', network, '--at', secondWrite.toISOString(), '--as', `${network}-cli2`]);
      expect(table).toMatchObject({ code: 0, stderr: '' });
      expect(table.stdout).toMatch(
        new RegExp(
          `^restored ${network} as of ${secondWrite.toISOString()} into ${network}-cli2: snapshot \\S+ \\(.+\\) plus 1 archived event, 1 group\\n$`,
        ),
      );

      const bad = await spine(['restore', network, '--at', 'yesterday']);
      expect(bad.code).toBe(4);
      expect(bad.stderr).toMatch(/--at must be an ISO 8601 time/);
      const future = await spine(['restore', network, '--at', '2099-01-01T00:00:00Z']);
      expect(future.code).toBe(4);
      expect(future.stderr).toMatch(/is in the future/);
      const taken = await spine(['restore', network, '--at', secondWrite.toISOString(), '--as', `${network}-cli`]);
      expect(taken.code).toBe(4);
      expect(taken.stderr).toMatch(/it exists/);
      const missing = await spine(['restore', network]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/restore needs --at/);
      expect(await client.loadContactContent(network, 'g', 'c')).toBe(3);
    });
  });
});

/**
 * The mesh's Storage client, except that the listing which first includes `name` deletes it (for
 * real, in the Storage emulator) before answering, as if retention removed it in between.
 */
function objectVanishingAfterListing(storage: Storage, name: string): Storage {
  let gone = false;
  return new Proxy(storage, {
    get(target, property, receiver) {
      if (property !== 'bucket') return Reflect.get(target, property, receiver) as unknown;
      return (bucketName: string) => {
        const bucket = target.bucket(bucketName);
        return new Proxy(bucket, {
          get(inner, key) {
            if (key === 'getFiles')
              return async (options?: GetFilesOptions): Promise<[File[], ...unknown[]]> => {
                const listed = await inner.getFiles(options);
                if (!gone && listed[0].some((file) => file.name === name)) {
                  gone = true;
                  await inner.file(name).delete();
                }
                return listed;
              };
            const value = Reflect.get(inner, key) as unknown;
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(inner) : value;
          },
        });
      };
    },
  });
}
