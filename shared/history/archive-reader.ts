import type { Storage } from '@google-cloud/storage';
import { SpineError } from '../errors';
import { fromPubSubMessage } from '../events/pubsub';
import { EventType, type AnySpineEvent, type ContactsWrittenData } from '../events/types';
import { mapWithConcurrency } from '../util/concurrency';
import { ArchiveCorruptError, ArchiveUnreadableError } from './errors';
import { archiveNameRange, batchStartOf, type ArchiveLayout } from './layout';

/** One object of the archive, as listed. */
export interface ArchiveObject {
  name: string;
  /** When its batch began (from its name). */
  batchStart: Date;
  size: number;
}

export interface ArchiveRange {
  /** Events whose time is at or after this (inclusive); from the archive's beginning when absent. */
  from?: Date;
  /** Events whose time is at or before this (inclusive); up to the newest when absent. */
  to?: Date;
  /** Only events of this network. */
  networkId?: string;
  /**
   * Contact writes only to this group (and `contactId`, when given); other events of the network
   * (group and network saves and deletes) are kept. Lines left out this way are parsed as JSON
   * but not validated as events, which keeps reading one contact's writes among many cheap.
   */
  groupId?: string;
  contactId?: string;
}

export interface ArchiveReaderOptions {
  /** Longest a batch stays open (the subscription's `max_duration`): an event may sit in a batch begun this long before it. */
  maxBatchMs: number;
  /** How long after its time an event may still be archived (a backlog, a redelivery): batches this late are read too. */
  latenessMs?: number;
  /** Objects downloaded at once. */
  concurrency?: number;
}

/** Default lateness allowed to an event between its time and its batch: an hour of backlog. */
export const DEFAULT_ARCHIVE_LATENESS_MS = 60 * 60 * 1000;

/**
 * Reads the event archive: lists its objects for a time range (the names sort by batch time, so
 * one listing with offsets covers a range), parses each line as a contact-writes event, and
 * returns the events once each, in time order. Redeliveries are archived again: an event whose id
 * was seen, and a contact write whose `(writerId, seq)` for its contact was seen, are dropped (a
 * bundle keeps its unseen writes). A line that is not an event throws `ArchiveCorruptError`, an
 * object that cannot be read `ArchiveUnreadableError`, both naming the object; nothing is
 * returned then.
 */
export class ArchiveReader {
  private readonly latenessMs: number;
  private readonly concurrency: number;

  constructor(
    private readonly storage: Storage,
    readonly bucket: string,
    readonly layout: ArchiveLayout,
    private readonly options: ArchiveReaderOptions,
  ) {
    this.latenessMs = options.latenessMs ?? DEFAULT_ARCHIVE_LATENESS_MS;
    this.concurrency = options.concurrency ?? 8;
  }

  /** Objects whose batch began in `[from, to]` (both optional), oldest first. */
  async listObjects(range: { from?: Date; to?: Date } = {}): Promise<ArchiveObject[]> {
    const offsets = archiveNameRange(this.layout, range.from, range.to);
    let files;
    try {
      [files] = await this.storage
        .bucket(this.bucket)
        .getFiles({ prefix: this.layout.objectPrefix, autoPaginate: true, ...offsets });
    } catch (error) {
      throw new ArchiveUnreadableError(`${this.bucket}/${this.layout.objectPrefix}`, statusOf(error), { cause: error });
    }
    const objects: ArchiveObject[] = [];
    for (const file of files) {
      const batchStart = batchStartOf(this.layout, file.name);
      if (batchStart) objects.push({ name: file.name, batchStart, size: Number(file.metadata.size ?? 0) });
    }
    return objects.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** When the archive begins: the batch time of its oldest object; undefined when it is empty. */
  async begins(): Promise<Date | undefined> {
    const [files] = await this.storage
      .bucket(this.bucket)
      .getFiles({ prefix: this.layout.objectPrefix, maxResults: 10, autoPaginate: false })
      .catch((error: unknown) => {
        throw new ArchiveUnreadableError(`${this.bucket}/${this.layout.objectPrefix}`, statusOf(error), {
          cause: error,
        });
      });
    for (const file of files) {
      const start = batchStartOf(this.layout, file.name);
      if (start) return start;
    }
    return undefined;
  }

  /** Every event of one object (that `wanted` keeps, when given), in its order, as written (no de-duplication). */
  async readObject(name: string, wanted?: (raw: RawEvent) => boolean): Promise<AnySpineEvent[]> {
    let bytes: Buffer;
    try {
      [bytes] = await this.storage.bucket(this.bucket).file(name).download();
    } catch (error) {
      throw new ArchiveUnreadableError(name, statusOf(error), { cause: error });
    }
    return parseArchiveObject(name, bytes, wanted);
  }

  /** The events in `range`, each once, oldest first (by event time, then id). */
  async read(range: ArchiveRange = {}): Promise<AnySpineEvent[]> {
    const objects = await this.listObjects({
      ...(range.from ? { from: new Date(range.from.getTime() - this.options.maxBatchMs) } : {}),
      ...(range.to ? { to: new Date(range.to.getTime() + this.latenessMs) } : {}),
    });
    const from = range.from?.getTime() ?? -Infinity;
    const to = range.to?.getTime() ?? Infinity;
    const wanted = (raw: RawEvent) => {
      const time = Date.parse(raw.time ?? '');
      const data = raw.data;
      // Not the shape of an event: kept, so validating it reports the line.
      if (typeof raw.type !== 'string' || Number.isNaN(time) || data === null || typeof data !== 'object') return true;
      if (time < from || time > to) return false;
      if (range.networkId !== undefined && data.networkId !== range.networkId) return false;
      if (range.groupId === undefined) return true;
      if (raw.type !== EventType.ContactWritten && raw.type !== EventType.ContactsWritten) return true;
      if (data.groupId !== range.groupId) return false;
      if (range.contactId === undefined) return true;
      return raw.type === EventType.ContactWritten
        ? data.contactId === range.contactId
        : (data.writes ?? []).some((write) => write?.contactId === range.contactId);
    };
    const perObject = await mapWithConcurrency(objects, this.concurrency, (object) =>
      this.readObject(object.name, wanted),
    );
    const dedup = new ArchiveDeduplicator();
    const events: AnySpineEvent[] = [];
    for (const list of perObject) {
      for (const event of list) {
        const kept = dedup.admit(event);
        if (kept) events.push(kept);
      }
    }
    return events.sort(compareEvents);
  }
}

/** Order of events in time, ties broken by id so every reader sees the same order. */
export function compareEvents(a: AnySpineEvent, b: AnySpineEvent): number {
  const byTime = Date.parse(a.time) - Date.parse(b.time);
  if (byTime !== 0) return byTime;
  // Events of one writer made in the same millisecond in the order they were written (as the
  // materializer got them), not by their random ids, which would make a later write an earlier one's loser.
  const sa = stampOf(a);
  const sb = stampOf(b);
  if (sa !== sb) return sa < sb ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The clock stamp of an event's (first) write; '' for events that carry none. */
function stampOf(event: AnySpineEvent): string {
  if (event.type === EventType.ContactsWritten) return event.data.writes[0]?.stamp ?? '';
  const stamp = (event.data as { stamp?: unknown }).stamp;
  return typeof stamp === 'string' ? stamp : '';
}

/** The fields of an archived line a reader filters on before validating it as an event. */
export interface RawEvent {
  type?: string;
  time?: string;
  data?: {
    networkId?: string;
    groupId?: string;
    contactId?: string;
    writes?: Array<{ contactId?: string } | null>;
  };
}

/**
 * The events of one archive object's bytes: one event's message data per line. With `wanted`,
 * each line is parsed as JSON first and only the lines it keeps are validated as events; a line
 * that is not JSON is corrupt either way.
 */
export function parseArchiveObject(name: string, bytes: Buffer, wanted?: (raw: RawEvent) => boolean): AnySpineEvent[] {
  const events: AnySpineEvent[] = [];
  const lines = bytes.toString('utf8').split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    // The text format ends every message with a newline: the last piece is empty.
    if (line === '' && index === lines.length - 1) continue;
    try {
      if (wanted) {
        let raw: unknown;
        try {
          raw = JSON.parse(line);
        } catch (error) {
          throw new ArchiveCorruptError(name, index + 1, `not JSON: ${(error as Error).message}`);
        }
        if (raw === null || typeof raw !== 'object') throw new ArchiveCorruptError(name, index + 1, 'not an event');
        if (!wanted(raw as RawEvent)) continue;
      }
      events.push(fromPubSubMessage({ data: Buffer.from(line, 'utf8') }));
    } catch (error) {
      if (error instanceof ArchiveCorruptError) throw error;
      if (error instanceof SpineError) throw new ArchiveCorruptError(name, index + 1, error.message);
      throw error;
    }
  }
  return events;
}

/**
 * Admits each event once: by event id, and each contact write once per `(contact, writerId, seq)`
 * (other writes once per `(writerId, seq)`, their writer's own numbering).
 */
export class ArchiveDeduplicator {
  private readonly ids = new Set<string>();
  private readonly origins = new Set<string>();

  /** The event to keep (a bundle without the writes seen before), or undefined for a duplicate. */
  admit(event: AnySpineEvent): AnySpineEvent | undefined {
    if (this.ids.has(event.id)) return undefined;
    this.ids.add(event.id);
    if (event.type === EventType.ContactsWritten) {
      const data = event.data;
      const writes = data.writes.filter((write) =>
        this.first(`c\u0000${data.networkId}\u0000${data.groupId}\u0000${write.contactId}`, data.writerId, write.seq),
      );
      if (writes.length === 0) return undefined;
      return writes.length === data.writes.length
        ? event
        : { ...event, data: { ...data, writes } satisfies ContactsWrittenData };
    }
    if (event.type === EventType.ContactWritten) {
      const data = event.data;
      return this.first(`c\u0000${data.networkId}\u0000${data.groupId}\u0000${data.contactId}`, data.writerId, data.seq)
        ? event
        : undefined;
    }
    const origin = event.data as { writerId?: string; seq?: number };
    if (origin.writerId === undefined || origin.seq === undefined) return event;
    return this.first('w', origin.writerId, origin.seq) ? event : undefined;
  }

  private first(scope: string, writerId: string, seq: number): boolean {
    const key = `${scope}\u0000${writerId}\u0000${seq}`;
    if (this.origins.has(key)) return false;
    this.origins.add(key);
    return true;
  }
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}
