import { encode } from '../../shared/codec';
import { createEvent } from '../../shared/events';
import { EventType, type AnySpineEvent } from '../../shared/events/types';
import { ArchiveReader } from '../../shared/history/archive-reader';
import { ArchiveCorruptError, ArchiveUnreadableError } from '../../shared/history/errors';
import { archiveNameRange, archiveObjectName, batchStartOf, formatArchiveDatetime } from '../../shared/history/layout';
import { formatStamp } from '../../shared/hlc';
import { defineTopology } from '../../shared/topology';
import { useStorageEmulator } from '../helpers/gcs';

const BUCKET = 'archive-reader-test';
const layout = defineTopology({ projectId: 'p', bucket: BUCKET }).archive;
const gcs = useStorageEmulator(BUCKET);
const SOURCE = '//superspine/writers/test';

const stampAt = (at: string, writerId: string) => formatStamp({ wallTime: Date.parse(at), logical: 0, writerId });

function contactWrite(at: string, writerId: string, seq: number, contactId: string, content: unknown, id?: string) {
  return createEvent(
    EventType.ContactWritten,
    { networkId: 'n1', groupId: 'g1', contactId, content, writerId, seq, stamp: stampAt(at, writerId) },
    { source: SOURCE, time: new Date(at), ...(id ? { id } : {}) },
  ) as AnySpineEvent;
}

/** Writes an object as the Cloud Storage subscription does: each message's data, newline-delimited. */
async function writeObject(batchStart: string, events: AnySpineEvent[] | string): Promise<string> {
  const name = archiveObjectName(layout, new Date(batchStart));
  const body = typeof events === 'string' ? events : events.map((event) => encode(event) + '\n').join('');
  await gcs.client.bucket(BUCKET).file(name).save(body, { resumable: false });
  return name;
}

describe('archive layout', () => {
  test('names follow <prefix><YYYY-MM-DD/hh/mm-ss>_<uuid><suffix> in UTC and sort by batch time', () => {
    const name = archiveObjectName(
      layout,
      new Date('2026-12-07T10:42:05.900Z'),
      '0b9f0f8e-3d4c-4b8f-9a53-3c1e2d4f5a6b',
    );
    expect(name).toBe('archive/contact-writes/2026-12-07/10/42-05_0b9f0f8e-3d4c-4b8f-9a53-3c1e2d4f5a6b.jsonl');
    expect(batchStartOf(layout, name)).toEqual(new Date('2026-12-07T10:42:05Z'));
    expect(batchStartOf(layout, 'archive/contact-writes/notes.txt')).toBeUndefined();
    const times = ['2026-01-02T03:04:05Z', '2026-01-02T03:04:06Z', '2026-01-02T13:00:00Z', '2026-10-01T00:00:00Z'];
    const names = times.map((t) => archiveObjectName(layout, new Date(t)));
    expect([...names].sort()).toEqual(names);
    expect(formatArchiveDatetime(new Date('2026-03-09T01:02:03Z'))).toBe('2026-03-09/01/02-03');
  });

  test('a time range is a range of names: from inclusive, to inclusive to the second', () => {
    const range = archiveNameRange(layout, new Date('2026-12-07T10:00:00.500Z'), new Date('2026-12-07T10:59:59.100Z'));
    expect(range).toEqual({
      startOffset: 'archive/contact-writes/2026-12-07/10/00-00',
      endOffset: 'archive/contact-writes/2026-12-07/11/00-00',
    });
  });
});

describe('ArchiveReader against the Storage emulator', () => {
  const reader = () => new ArchiveReader(gcs.client, BUCKET, layout, { maxBatchMs: 60_000, latenessMs: 60_000 });

  test('reads every event once, oldest first: a redelivery (same id) and a replay (same writer and seq) are dropped', async () => {
    const a = contactWrite('2026-12-07T10:00:01Z', 'w1', 1, 'c1', 1);
    const b = contactWrite('2026-12-07T10:00:02Z', 'w1', 2, 'c1', 2);
    const c = contactWrite('2026-12-07T10:00:03Z', 'w2', 1, 'c1', 3);
    // The same write published again under a new event id (the journal's replay after a crash).
    const replayOfB = contactWrite('2026-12-07T10:00:02Z', 'w1', 2, 'c1', 2);
    // Same writer and seq on another contact: a different write (sequences are per contact).
    const otherContact = contactWrite('2026-12-07T10:00:04Z', 'w1', 1, 'c2', 4);
    const bundle = createEvent(
      EventType.ContactsWritten,
      {
        networkId: 'n1',
        groupId: 'g1',
        writerId: 'w2',
        writes: [
          { id: 'bw1', contactId: 'c1', content: 3, seq: 1, stamp: stampAt('2026-12-07T10:00:03Z', 'w2') },
          { id: 'bw2', contactId: 'c3', content: 5, seq: 1, stamp: stampAt('2026-12-07T10:00:05Z', 'w2') },
        ],
      },
      { source: SOURCE, time: new Date('2026-12-07T10:00:05Z') },
    ) as AnySpineEvent;
    await writeObject('2026-12-07T10:00:00Z', [b, a]);
    await writeObject('2026-12-07T10:01:00Z', [c, a, replayOfB]);
    await writeObject('2026-12-07T10:02:00Z', [otherContact, bundle, bundle]);

    const events = await reader().read({ from: new Date('2026-12-07T09:00:00Z') });
    expect(events.map((event) => event.id)).toEqual([a.id, b.id, c.id, otherContact.id, bundle.id]);
    // The bundle keeps only its write not seen before (c1 by w2 seq 1 was archived alone).
    const kept = events[4]!;
    expect(kept.type === EventType.ContactsWritten && kept.data.writes.map((write) => write.id)).toEqual(['bw2']);
  });

  test('a range returns the events of its times only, network filter included', async () => {
    const events = await reader().read({
      from: new Date('2026-12-07T10:00:02Z'),
      to: new Date('2026-12-07T10:00:03Z'),
      networkId: 'n1',
    });
    expect(events.map((event) => event.time)).toEqual(['2026-12-07T10:00:02.000Z', '2026-12-07T10:00:03.000Z']);
    expect(await reader().read({ from: new Date('2026-12-07T10:00:00Z'), networkId: 'other' })).toEqual([]);
    // One contact's writes: the bundle that holds one of them, and nothing else.
    const c3 = await reader().read({ networkId: 'n1', groupId: 'g1', contactId: 'c3' });
    expect(c3.map((event) => event.type)).toEqual([EventType.ContactsWritten]);
    const c2 = await reader().read({ networkId: 'n1', groupId: 'g1', contactId: 'c2' });
    expect(c2.map((event) => event.type === EventType.ContactWritten && event.data.content)).toEqual([4]);
    expect(await reader().begins()).toEqual(new Date('2026-12-07T10:00:00Z'));
  });

  test('a corrupt line fails the read with an error naming the object and the line', async () => {
    const good = contactWrite('2026-12-08T09:00:01Z', 'w9', 1, 'c1', 1);
    const name = await writeObject('2026-12-08T09:00:00Z', `${encode(good)}\n{"not":"an event"}\n`);
    const error = await reader()
      .read({ from: new Date('2026-12-08T08:00:00Z') })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArchiveCorruptError);
    expect(error).toMatchObject({ code: 'CORRUPT_DATA', object: name, line: 2 });
    expect((error as Error).message).toContain(name);
    await gcs.client.bucket(BUCKET).file(name).delete();
  });

  test('an object that cannot be read fails with an error naming it', async () => {
    const missing = archiveObjectName(layout, new Date('2026-12-09T00:00:00Z'));
    const error = await reader()
      .readObject(missing)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArchiveUnreadableError);
    expect(error).toMatchObject({ code: 'NOT_FOUND', object: missing });
    expect((error as Error).message).toContain(missing);
  });
});
