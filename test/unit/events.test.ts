import {
  ContentTooLargeError,
  createEvent,
  encode,
  EventType,
  growSet,
  InvalidEventError,
  validateEvent,
  type AnySpineEvent,
  type EventDataByType,
  type EventTypeName,
  type GroupState,
  type SpineEvent,
  type NetworkState,
} from 'super-spine';
import { formatStamp } from '../../shared/hlc';
import { fromPubSubMessage, subjectOf, toPubSubMessage } from '../../shared/events';

const NET = 'netA';
const GROUP = 'users/@alice';
const SOURCE = '//superspine/writers/agent-7';
const stamp = formatStamp({ wallTime: 1_700_000_000_000, logical: 3, writerId: 'agent-7' });
const origin = { writerId: 'agent-7', seq: 4, stamp };

function groupState(groupId = GROUP): GroupState {
  return {
    group: { id: groupId, name: 'alice', contactIds: ['inbox'], wireIds: [], subgroupIds: [], boundaryContactIds: [] },
    contacts: new Map([['inbox', { id: 'inbox', groupId, blendMode: 'merge' as const, content: growSet(['hello']) }]]),
    wires: new Map(),
  };
}

function networkState(): NetworkState {
  return { groups: new Map([[GROUP, groupState()]]), rootGroupId: GROUP, currentGroupId: GROUP };
}

/** Valid data for every event type; the keys must cover EventType exactly. */
const sampleData: { [K in EventTypeName]: () => EventDataByType[K] } = {
  [EventType.ContactWritten]: () => ({
    networkId: NET,
    groupId: GROUP,
    contactId: 'inbox',
    content: new Map([['k', new Set([1, 2])]]),
    blendMode: 'merge',
    ...origin,
  }),
  [EventType.ContactsWritten]: () => ({
    networkId: NET,
    groupId: GROUP,
    writerId: origin.writerId,
    writes: [
      { id: 'w-4', contactId: 'inbox', content: growSet(['a']), blendMode: 'merge', seq: 4, stamp },
      { id: 'w-5', contactId: 'outbox', content: new Map([['k', 1]]), seq: 5, stamp },
    ],
  }),
  [EventType.GroupSaved]: () => ({ networkId: NET, groupId: GROUP, state: groupState(), ...origin }),
  [EventType.GroupDeleted]: () => ({ networkId: NET, groupId: GROUP, ...origin }),
  [EventType.NetworkSaved]: () => ({ networkId: NET, state: networkState(), ...origin }),
  [EventType.NetworkDeleted]: () => ({ networkId: NET, ...origin }),
  [EventType.SnapshotRequested]: () => ({
    networkId: NET,
    label: 'nightly',
    snapshotId: 'snap-1',
    requestedBy: 'scheduler',
  }),
  [EventType.GroupChanged]: () => ({
    networkId: NET,
    groupId: GROUP,
    kind: 'updated',
    causeId: 'event-1',
    state: groupState(),
  }),
  [EventType.NetworkChanged]: () => ({ networkId: NET, kind: 'updated', causeId: 'event-2', writerId: 'agent-7' }),
  [EventType.FlushRequested]: () => ({ networkId: NET, requestedBy: 'agent-7' }),
};

const networkLevel = new Set<EventTypeName>([
  EventType.NetworkSaved,
  EventType.NetworkDeleted,
  EventType.SnapshotRequested,
  EventType.NetworkChanged,
  EventType.FlushRequested,
]);
const allTypes = Object.values(EventType);

function sample<T extends EventTypeName>(type: T): SpineEvent<T> {
  return createEvent(type, sampleData[type]() as EventDataByType[T], { source: SOURCE });
}

function contactWritten(): Record<string, unknown> & { data: Record<string, unknown> } {
  return sample(EventType.ContactWritten) as unknown as Record<string, unknown> & { data: Record<string, unknown> };
}

function invalid(candidate: unknown): InvalidEventError {
  try {
    validateEvent(candidate);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidEventError);
    expect((error as InvalidEventError).code).toBe('INVALID_EVENT');
    return error as InvalidEventError;
  }
  throw new Error('expected validateEvent to refuse the event');
}

/** The issue about `field`, which must exist. */
function issueAbout(error: InvalidEventError, field: string): string {
  const issue = error.issues.find((i) => i.startsWith(`${field}:`));
  if (!issue) throw new Error(`no issue names ${field}; issues: ${JSON.stringify(error.issues)}`);
  return issue;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

describe('createEvent', () => {
  it('covers every event type in the samples', () => {
    expect(Object.keys(sampleData).sort()).toEqual([...allTypes].sort());
  });

  it.each(allTypes)('makes a valid CloudEvents 1.0 envelope for %s', (type) => {
    const before = Date.now();
    const event = sample(type) as AnySpineEvent;
    expect(event.specversion).toBe('1.0');
    expect(typeof event.id).toBe('string');
    expect(event.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(event.source).toBe(SOURCE);
    expect(event.type).toBe(type);
    expect(event.datacontenttype).toBe('application/json');
    expect(event.time).toMatch(RFC3339);
    expect(Date.parse(event.time)).toBeGreaterThanOrEqual(before - 1);
    expect(event.subject).toBe(networkLevel.has(type) ? NET : `${NET}/${GROUP}`);
    expect(event.subject).toBe(subjectOf(type, event.data as { networkId: string; groupId?: string }));
    expect(Object.keys(event).sort()).toEqual([
      'data',
      'datacontenttype',
      'id',
      'source',
      'specversion',
      'subject',
      'time',
      'type',
    ]);
    expect(validateEvent(event)).toBe(event);
    // The data is the caller's, Maps included, not a copy that lost them.
    if (event.type === EventType.ContactWritten) expect(event.data.content).toBeInstanceOf(Map);
    if (event.type === EventType.GroupSaved) expect(event.data.state?.contacts).toBeInstanceOf(Map);
  });

  it('gives every event its own id, and takes id and time when given', () => {
    expect(sample(EventType.GroupDeleted).id).not.toBe(sample(EventType.GroupDeleted).id);
    const event = createEvent(EventType.GroupDeleted, sampleData[EventType.GroupDeleted](), {
      source: SOURCE,
      id: 'fixed-id',
      time: new Date('2024-05-06T07:08:09.010Z'),
    });
    expect(event.id).toBe('fixed-id');
    expect(event.time).toBe('2024-05-06T07:08:09.010Z');
  });

  it('refuses bad data', () => {
    expect(() =>
      createEvent(EventType.GroupDeleted, { networkId: NET, groupId: '../etc', ...origin }, { source: SOURCE }),
    ).toThrow(InvalidEventError);
    expect(() =>
      createEvent(EventType.GroupDeleted, { networkId: NET, groupId: GROUP, ...origin }, { source: '' }),
    ).toThrow(InvalidEventError);
  });
});

describe('validateEvent', () => {
  it('refuses things that are not events', () => {
    for (const candidate of [null, undefined, 'event', 42, [], {}]) invalid(candidate);
  });

  it('refuses a missing or wrong specversion', () => {
    const { specversion: _, ...missing } = contactWritten();
    issueAbout(invalid(missing), 'specversion');
    issueAbout(invalid({ ...contactWritten(), specversion: '0.3' }), 'specversion');
    issueAbout(invalid({ ...contactWritten(), specversion: 1 }), 'specversion');
  });

  it('refuses a missing or empty id', () => {
    const { id: _, ...missing } = contactWritten();
    issueAbout(invalid(missing), 'id');
    issueAbout(invalid({ ...contactWritten(), id: '' }), 'id');
    issueAbout(invalid({ ...contactWritten(), id: 7 }), 'id');
  });

  it('refuses an unknown or missing type', () => {
    issueAbout(invalid({ ...contactWritten(), type: 'dev.superspine.contact.written.v2' }), 'type');
    const { type: _, ...missing } = contactWritten();
    issueAbout(invalid(missing), 'type');
  });

  it.each([
    undefined,
    '',
    'yesterday',
    '2024',
    'March 7, 2024',
    '2024-02-30T00:00:00Z',
    '2024-01-01 00:00:00Z',
    1_700_000_000_000,
  ])('refuses the time %p', (time) => {
    issueAbout(invalid({ ...contactWritten(), time }), 'time');
  });

  it('accepts RFC 3339 times with offsets and fractions', () => {
    for (const time of ['2024-01-01T00:00:00Z', '2024-01-01T00:00:00.123456Z', '2024-01-01T01:00:00+01:00']) {
      expect(validateEvent({ ...contactWritten(), time })).toBeDefined();
    }
  });

  it('refuses a subject that does not match the data', () => {
    const error = invalid({ ...contactWritten(), subject: `${NET}/someone-else` });
    expect(issueAbout(error, 'subject')).toContain(`${NET}/${GROUP}`);
    issueAbout(invalid({ ...sample(EventType.NetworkDeleted), subject: `${NET}/${GROUP}` }), 'subject');
    issueAbout(invalid({ ...sample(EventType.GroupDeleted), subject: NET }), 'subject');
  });

  it('refuses bad ids inside the data, naming the field', () => {
    const base = contactWritten();
    issueAbout(invalid({ ...base, subject: `${NET}/a/../b`, data: { ...base.data, groupId: 'a/../b' } }), 'groupId');
    issueAbout(invalid({ ...base, subject: `../${GROUP}`, data: { ...base.data, networkId: '..' } }), 'networkId');
    issueAbout(invalid({ ...base, data: { ...base.data, contactId: 'a/b' } }), 'contactId');
    issueAbout(invalid({ ...base, data: { ...base.data, writerId: '' } }), 'writerId');
    const snapshot = sample(EventType.SnapshotRequested);
    issueAbout(invalid({ ...snapshot, data: { ...snapshot.data, snapshotId: '..' } }), 'snapshotId');
  });

  it.each([0, -1, 1.5, Number.MAX_SAFE_INTEGER + 2, '3', undefined])('refuses the seq %p', (seq) => {
    const base = contactWritten();
    issueAbout(invalid({ ...base, data: { ...base.data, seq } }), 'seq');
  });

  it.each(['', 'now', '1:2:w', stamp.replace(/:agent-7$/, ''), undefined])('refuses the stamp %p', (bad) => {
    const base = contactWritten();
    issueAbout(invalid({ ...base, data: { ...base.data, stamp: bad } }), 'stamp');
  });

  it('refuses content and contentRef together, and accepts either alone', () => {
    const base = contactWritten();
    const contentRef = { object: 'content/ab', sha256: 'a'.repeat(64), size: 10 };
    const error = invalid({ ...base, data: { ...base.data, contentRef } });
    expect(error.issues.join(' ')).toContain('content and contentRef are exclusive');
    const { content: _, ...withoutContent } = base.data;
    expect(validateEvent({ ...base, data: { ...withoutContent, contentRef } })).toBeDefined();
    issueAbout(
      invalid({ ...base, data: { ...withoutContent, contentRef: { ...contentRef, sha256: 'xyz' } } }),
      'contentRef.sha256',
    );
  });

  it('refuses malformed group state in group.saved, naming the problem', () => {
    const base = sample(EventType.GroupSaved);
    const state = base.data.state!;
    const notAMap = invalid({
      ...base,
      data: { ...base.data, state: { ...state, contacts: { inbox: state.contacts.get('inbox') } } },
    });
    expect(issueAbout(notAMap, 'state')).toContain('contacts must be a Map');

    const mismatch = invalid({
      ...base,
      data: {
        ...base.data,
        state: { ...state, contacts: new Map([['inbox', { id: 'outbox', groupId: GROUP, blendMode: 'merge' }]]) },
      },
    });
    expect(issueAbout(mismatch, 'state')).toContain('"outbox"');

    const otherGroup = invalid({ ...base, data: { ...base.data, state: groupState('someone-else') } });
    expect(issueAbout(otherGroup, 'state')).toContain('does not match');

    issueAbout(invalid({ ...base, data: { ...base.data, state: 'state' } }), 'state');
  });

  it('takes exactly one of state and stateRef in group.saved and network.saved', () => {
    const stateRef = { object: 'state/ab', sha256: 'b'.repeat(64), size: 100 };
    for (const type of [EventType.GroupSaved, EventType.NetworkSaved] as const) {
      const base = sample(type);
      const { state: _, ...withoutState } = base.data;
      expect(validateEvent({ ...base, data: { ...withoutState, stateRef } })).toBeDefined();
      expect(invalid({ ...base, data: { ...base.data, stateRef } }).issues.join(' ')).toContain(
        'exactly one of state and stateRef',
      );
      expect(invalid({ ...base, data: withoutState }).issues.join(' ')).toContain('exactly one of state and stateRef');
    }
  });

  it('refuses malformed state in group.changed and network.saved', () => {
    const changed = sample(EventType.GroupChanged);
    issueAbout(invalid({ ...changed, data: { ...changed.data, state: { ...groupState(), wires: [] } } }), 'state');
    const saved = sample(EventType.NetworkSaved);
    issueAbout(invalid({ ...saved, data: { ...saved.data, state: { ...networkState(), groups: {} } } }), 'state');
  });

  it('refuses content that the codec cannot store, in carried state', () => {
    const base = sample(EventType.GroupSaved);
    const state = groupState();
    state.contacts.get('inbox')!.content = () => 'not data';
    issueAbout(invalid({ ...base, data: { ...base.data, state } }), 'state');
  });
});

describe('Pub/Sub messages', () => {
  it('round-trip a contact write with Maps and Sets in its content', () => {
    const event = sample(EventType.ContactWritten);
    const message = toPubSubMessage(event);
    expect(Buffer.isBuffer(message.data)).toBe(true);
    const back = fromPubSubMessage(message);
    expect(back).toEqual(event);
    expect(back.type).toBe(EventType.ContactWritten);
    const content = (back.data as { content: Map<string, Set<number>> }).content;
    expect(content).toBeInstanceOf(Map);
    expect(content.get('k')).toBeInstanceOf(Set);
    expect([...content.get('k')!]).toEqual([1, 2]);
  });

  it.each(allTypes)('round-trips %s with attributes for routing and an ordering key', (type) => {
    const event = sample(type) as AnySpineEvent;
    const message = toPubSubMessage(event);
    const expectedPath = networkLevel.has(type) ? NET : `${NET}/${GROUP}`;
    expect(message.attributes.type).toBe(type);
    expect(message.attributes.networkId).toBe(NET);
    expect(message.attributes.path).toBe(expectedPath);
    expect(message.attributes['ce-id']).toBe(event.id);
    expect(message.attributes['ce-specversion']).toBe('1.0');
    expect(message.orderingKey).toBe(expectedPath);
    if (networkLevel.has(type)) expect(message.attributes).not.toHaveProperty('groupId');
    else expect(message.attributes.groupId).toBe(GROUP);
    for (const value of Object.values(message.attributes)) expect(typeof value).toBe('string');
    expect(fromPubSubMessage({ data: message.data, attributes: { ...message.attributes } })).toEqual(event);
  });

  it('keeps group state Maps through a message', () => {
    const back = fromPubSubMessage(toPubSubMessage(sample(EventType.NetworkSaved))) as ReturnType<typeof sample> & {
      data: { state: NetworkState };
    };
    expect(back.data.state.groups).toBeInstanceOf(Map);
    expect(back.data.state.groups.get(GROUP)!.contacts).toBeInstanceOf(Map);
  });

  it('accepts data as base64 text, as a push request carries it, and as a Uint8Array', () => {
    const event = sample(EventType.GroupDeleted);
    const message = toPubSubMessage(event);
    expect(
      fromPubSubMessage({
        data: message.data.toString('base64'),
        attributes: message.attributes as unknown as Record<string, string>,
      }),
    ).toEqual(event);
    expect(fromPubSubMessage({ data: new Uint8Array(message.data) })).toEqual(event);
    expect(fromPubSubMessage({ data: message.data, attributes: null })).toEqual(event);
  });

  it.each([
    ['an empty buffer', Buffer.alloc(0)],
    ['an empty string', ''],
    ['null', null],
    ['undefined', undefined],
  ])('refuses a message with %s as data', (_name, data) => {
    expect(() => fromPubSubMessage({ data })).toThrow(InvalidEventError);
    expect(() => fromPubSubMessage({ data })).toThrow(/no data/);
  });

  it('refuses data that is not an encoded event', () => {
    const notCodec = [
      Buffer.from('hello'),
      Buffer.from([0xff, 0x00, 0x12]),
      Buffer.from('{"$type":"Bogus"}'),
      Buffer.from(Buffer.from('x').toString('base64')),
    ];
    for (const data of notCodec) {
      const error = (() => {
        try {
          fromPubSubMessage({ data });
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(InvalidEventError);
    }
    // Valid codec text that is not an event.
    expect(() => fromPubSubMessage({ data: Buffer.from(encode(new Map([[1, 2]]))) })).toThrow(InvalidEventError);
    expect(() => fromPubSubMessage({ data: Buffer.from(encode({ ...contactWritten(), specversion: '2.0' })) })).toThrow(
      /specversion/,
    );
    // JSON text sent where base64 was expected decodes to garbage.
    expect(() => fromPubSubMessage({ data: encode(sample(EventType.GroupDeleted)) })).toThrow(InvalidEventError);
  });

  it.each([
    ['type', EventType.GroupSaved],
    ['networkId', 'netB'],
    ['path', `${NET}/users`],
    ['groupId', 'users'],
    ['ce-id', 'another-event'],
  ])('refuses a %s attribute that disagrees with the event', (attribute, value) => {
    const message = toPubSubMessage(sample(EventType.ContactWritten));
    const attributes = { ...message.attributes, [attribute]: value } as Record<string, string>;
    let error: unknown;
    try {
      fromPubSubMessage({ data: message.data, attributes });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidEventError);
    expect((error as InvalidEventError).issues.join(' ')).toContain(`${attribute} attribute`);
  });

  it('gives a network-level event no groupId attribute, even when its data names a group', () => {
    const data = {
      ...sampleData[EventType.NetworkDeleted](),
      groupId: GROUP,
    } as EventDataByType[typeof EventType.NetworkDeleted];
    const message = toPubSubMessage(createEvent(EventType.NetworkDeleted, data, { source: SOURCE }));
    expect(message.attributes.path).toBe(NET);
    expect(message.orderingKey).toBe(NET);
    expect(message.attributes).not.toHaveProperty('groupId');
  });

  it('refuses a groupId attribute on a network-level event', () => {
    const message = toPubSubMessage(sample(EventType.NetworkDeleted));
    expect(() =>
      fromPubSubMessage({
        data: message.data,
        attributes: { ...message.attributes, groupId: GROUP } as Record<string, string>,
      }),
    ).toThrow(InvalidEventError);
  });

  it('refuses to build a message over the size limit', () => {
    const event = createEvent(
      EventType.ContactWritten,
      { ...sampleData[EventType.ContactWritten](), content: 'x'.repeat(2_000) },
      { source: SOURCE },
    );
    expect(() => toPubSubMessage(event, 1_000)).toThrow(ContentTooLargeError);
    expect(toPubSubMessage(event, 10_000).data.length).toBeLessThan(10_000);
  });

  it('refuses to build a message from an invalid event', () => {
    const event = { ...sample(EventType.GroupDeleted), subject: 'elsewhere' } as AnySpineEvent;
    expect(() => toPubSubMessage(event)).toThrow(InvalidEventError);
  });
});
