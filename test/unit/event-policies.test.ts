import {
  ContentTooLargeError,
  CorruptDataError,
  createEvent,
  EventType,
  InvalidArgumentError,
  InvalidEventError,
  InvalidIdError,
  isPermanent,
  NetworkNotFoundError,
  PERMANENT_ERROR_CODES,
  SpineError,
  StorageConflictError,
  StorageUnavailableError,
  UnserializableContentError,
  type ContentReference,
} from 'super-spine';
import { contactWritesOf, isContactWriteEvent } from '../../shared/events';
import { HybridLogicalClock } from '../../shared/hlc';

const SOURCE = '//test/event-policies';
const clock = new HybridLogicalClock('writer-a');
const reference: ContentReference = { object: 'content/abc', sha256: 'a'.repeat(64), size: 3 };

describe('contactWritesOf: the one conversion from an event to contact writes', () => {
  it('turns a lone contact write into one write named by the event id', async () => {
    const stamp = clock.tick();
    const event = createEvent(
      EventType.ContactWritten,
      {
        networkId: 'n',
        groupId: 'g',
        contactId: 'c',
        writerId: 'writer-a',
        seq: 4,
        stamp,
        content: { v: 1 },
        blendMode: 'merge',
      },
      { source: SOURCE, id: 'event-1' },
    );
    expect(isContactWriteEvent(event)).toBe(true);
    expect(await contactWritesOf(event, () => Promise.reject(new Error('no reference here')))).toEqual([
      {
        contactId: 'c',
        eventId: 'event-1',
        write: { content: { v: 1 }, stamp, writerId: 'writer-a', seq: 4, blendMode: 'merge' },
      },
    ]);
  });

  it('turns a bundle into its writes in order, each named by its own id, content by reference read through the loader', async () => {
    const [first, second] = [clock.tick(), clock.tick()];
    const event = createEvent(
      EventType.ContactsWritten,
      {
        networkId: 'n',
        groupId: 'g',
        writerId: 'writer-a',
        writes: [
          { id: 'w1', contactId: 'c1', seq: 1, stamp: first, content: 'inline' },
          { id: 'w2', contactId: 'c2', seq: 1, stamp: second, contentRef: reference },
        ],
      },
      { source: SOURCE },
    );
    const asked: ContentReference[] = [];
    const writes = await contactWritesOf(event, async (ref) => (asked.push(ref), new Set(['loaded'])));
    expect(asked).toEqual([reference]);
    expect(writes).toEqual([
      { contactId: 'c1', eventId: 'w1', write: { content: 'inline', stamp: first, writerId: 'writer-a', seq: 1 } },
      {
        contactId: 'c2',
        eventId: 'w2',
        write: { content: new Set(['loaded']), stamp: second, writerId: 'writer-a', seq: 1 },
      },
    ]);
  });

  it("passes the loader's failure through and is no contact-write event for other types", async () => {
    const event = createEvent(
      EventType.ContactWritten,
      {
        networkId: 'n',
        groupId: 'g',
        contactId: 'c',
        writerId: 'writer-a',
        seq: 1,
        stamp: clock.tick(),
        contentRef: reference,
      },
      { source: SOURCE },
    );
    const missing = new SpineError('NOT_FOUND', 'content not stored yet');
    await expect(contactWritesOf(event, () => Promise.reject(missing))).rejects.toBe(missing);
    const deleted = createEvent(
      EventType.GroupDeleted,
      { networkId: 'n', groupId: 'g', writerId: 'writer-a', seq: 1, stamp: clock.tick() },
      { source: SOURCE },
    );
    expect(isContactWriteEvent(deleted)).toBe(false);
  });
});

describe('isPermanent: the one rule for errors no retry can fix', () => {
  it('holds for bad input and corrupt data', () => {
    const permanent = [
      new InvalidIdError('contact', '', 'is empty'),
      new InvalidArgumentError('bad'),
      new UnserializableContentError('$.x', 'a function'),
      new ContentTooLargeError(11, 10),
      new CorruptDataError('unreadable'),
      new InvalidEventError('no type'),
    ];
    for (const error of permanent) expect(isPermanent(error)).toBe(true);
    expect(new Set(permanent.map((e) => e.code))).toEqual(PERMANENT_ERROR_CODES);
  });

  it('does not hold for what a retry may fix, nor for untyped errors', () => {
    const transient = [
      new SpineError('NOT_FOUND', 'referenced content not there yet'),
      new StorageUnavailableError('429', { key: 'k', status: 429, attempts: 3 }),
      new StorageConflictError('412', { key: 'k', status: 412, attempts: 5 }),
      new NetworkNotFoundError('n'),
      new Error('socket hang up'),
      'a string',
      undefined,
    ];
    for (const error of transient) expect(isPermanent(error)).toBe(false);
  });
});
