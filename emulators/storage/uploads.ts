import { randomUUID } from 'node:crypto';
import { isBlobId, type BlobStore, type StagedUpload } from './blob-store';
import { StorageApiError, invalid, uploadCancelled, uploadNotFound } from './errors';
import { ContentHasher, verifyProvidedHashes, type ContentHashes, type ProvidedHashes } from './hashes';
import type { StateJournal } from './journal';
import type { ObjectVersion, WritableObjectFields } from './model';
import type { Preconditions } from './preconditions';
import type { UploadRange } from './ranges';

/** The service keeps whole multiples of 256 KiB of a chunk that does not finish the upload. */
export const UPLOAD_QUANTUM = 256 * 1024;

/** What a session remembers between requests (and, with a data directory, across restarts). */
export interface UploadSessionRecord {
  id: string;
  bucket: string;
  name: string;
  fields: WritableObjectFields;
  preconditions: Preconditions;
  /** From X-Upload-Content-Length, when the client declared it. */
  declaredSize?: number;
  /** Hashes sent in the initiating metadata; checked when the upload completes. */
  providedHashes: ProvidedHashes;
  received: number;
  createdAt: string;
}

export type ChunkOutcome = { status: 'incomplete'; received: number } | { status: 'complete'; object: ObjectVersion };

/** Commits a finished upload as an object, exactly like a one-shot insert; supplied by the service. */
export interface UploadCommitter {
  /** Throws what the commit would throw (412, 404, 429...) without changing anything. */
  precheck(record: UploadSessionRecord): void;
  commit(record: UploadSessionRecord, blobId: string, hashes: ContentHashes): Promise<ObjectVersion>;
}

type SessionState =
  | { kind: 'active' }
  | { kind: 'complete'; object: ObjectVersion }
  | { kind: 'failed'; error: StorageApiError }
  | { kind: 'cancelled' };

class UploadSession {
  state: SessionState = { kind: 'active' };
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly record: UploadSessionRecord,
    readonly staged: StagedUpload,
    readonly hasher: ContentHasher,
  ) {}

  /** Requests to one session run one at a time (a client retry may overlap the original). */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** Finished sessions kept so a repeated final PUT gets the same answer. */
const FINISHED_SESSIONS_KEPT = 1000;

/** Resumable uploads: sessions, their staged bytes and the Content-Range protocol. */
export class UploadSessions {
  private readonly sessions = new Map<string, UploadSession>();
  private readonly finished: string[] = [];

  constructor(
    private readonly blobs: BlobStore,
    private readonly journal: StateJournal,
    private readonly committer: UploadCommitter,
  ) {}

  async start(init: Omit<UploadSessionRecord, 'id' | 'received' | 'createdAt'>): Promise<string> {
    const record: UploadSessionRecord = { ...init, id: randomUUID(), received: 0, createdAt: new Date().toISOString() };
    const staged = await this.blobs.staging(record.id);
    this.sessions.set(record.id, new UploadSession(record, staged, new ContentHasher()));
    await this.journal.saveUpload(record.id, record);
    return record.id;
  }

  /** Reopens sessions saved by an earlier run; their hashes are rebuilt from the staged bytes. */
  async restore(records: unknown[]): Promise<void> {
    for (const value of records) {
      const record = value as UploadSessionRecord;
      if (!isBlobId(record?.id) || typeof record.received !== 'number') continue;
      const staged = await this.blobs.staging(record.id, { size: record.received });
      const hasher = new ContentHasher();
      for await (const chunk of staged.chunks()) hasher.update(chunk);
      this.sessions.set(record.id, new UploadSession({ ...record, received: staged.size }, staged, hasher));
    }
  }

  /** Handles one PUT to a session: stores its bytes, answers progress, or completes the object. */
  receive(id: string, range: UploadRange, body: Buffer, headerHashes: ProvidedHashes): Promise<ChunkOutcome> {
    const session = this.session(id);
    return session.exclusive(async () => {
      switch (session.state.kind) {
        case 'complete':
          return { status: 'complete', object: session.state.object };
        case 'failed':
          throw session.state.error;
        case 'cancelled':
          throw uploadCancelled();
      }
      const received = session.staged.size;
      if (range.kind === 'status') {
        if (range.total !== undefined && range.total === received) return this.complete(session, headerHashes);
        if (range.total !== undefined && range.total < received) {
          throw invalid(`The upload has ${received} bytes, more than the total of ${range.total} given.`);
        }
        return { status: 'incomplete', received };
      }

      const { first, last, total } = range;
      if (first > received) {
        throw invalid(
          `Invalid request. According to the Content-Range header, the upload offset is ${first} byte(s), ` +
            `which exceeds already uploaded size of ${received} byte(s).`,
        );
      }
      if (last !== undefined && last - first + 1 !== body.length) {
        throw invalid(`Content-Range bytes ${first}-${last} do not match the ${body.length} bytes sent.`);
      }
      const end = first + body.length;
      if (total !== undefined && end > total)
        throw invalid(`Content-Range total ${total} is smaller than the data sent.`);
      const declared = session.record.declaredSize;
      if (declared !== undefined && end > declared) {
        throw invalid(`The upload exceeds the declared X-Upload-Content-Length of ${declared} bytes.`);
      }

      // Bytes before `received` were stored by an earlier request; only the rest is new.
      const fresh = body.subarray(Math.min(body.length, received - first));
      const isFinal = total !== undefined ? end === total : last === undefined;
      if (!isFinal) {
        const keep = Math.floor(end / UPLOAD_QUANTUM) * UPLOAD_QUANTUM - received;
        if (keep > 0) await this.append(session, fresh.subarray(0, keep));
        return { status: 'incomplete', received: session.staged.size };
      }
      await this.append(session, fresh);
      return this.complete(session, headerHashes);
    });
  }

  /** DELETE on a session URI: the service answers 499 and forgets the bytes. */
  async cancel(id: string): Promise<void> {
    const session = this.session(id);
    await session.exclusive(async () => {
      if (session.state.kind !== 'active') return;
      session.state = { kind: 'cancelled' };
      await session.staged.discard();
      await this.journal.removeUpload(id);
      this.retire(id);
    });
  }

  /** Drops every session and its staged bytes (emulator reset). */
  async clear(): Promise<void> {
    const sessions = [...this.sessions.entries()];
    this.sessions.clear();
    this.finished.length = 0;
    await Promise.all(
      sessions.map(async ([id, session]) => {
        if (session.state.kind === 'active') await session.staged.discard();
        await this.journal.removeUpload(id);
      }),
    );
  }

  activeCount(): number {
    return [...this.sessions.values()].filter((session) => session.state.kind === 'active').length;
  }

  private session(id: string): UploadSession {
    const session = this.sessions.get(id);
    if (!session) throw uploadNotFound();
    return session;
  }

  private async append(session: UploadSession, data: Buffer): Promise<void> {
    if (data.length === 0) return;
    await session.staged.append(data);
    session.hasher.update(data);
    session.record.received = session.staged.size;
    await this.journal.saveUpload(session.record.id, session.record);
  }

  private async complete(session: UploadSession, headerHashes: ProvidedHashes): Promise<ChunkOutcome> {
    const { record } = session;
    const declared = record.declaredSize;
    if (declared !== undefined && session.staged.size !== declared) {
      throw invalid(`The upload has ${session.staged.size} bytes but X-Upload-Content-Length declared ${declared}.`);
    }
    const hashes = session.hasher.digest();
    try {
      verifyProvidedHashes({ ...record.providedHashes, ...headerHashes }, hashes);
      // A 429 here leaves the session open so the client can retry; other refusals end it.
      this.committer.precheck(record);
    } catch (error) {
      if (error instanceof StorageApiError && error.code !== 429) await this.fail(session, error);
      throw error;
    }
    const blobId = await session.staged.commit();
    try {
      const object = await this.committer.commit(record, blobId, hashes);
      session.state = { kind: 'complete', object };
      await this.journal.removeUpload(record.id);
      this.retire(record.id);
      return { status: 'complete', object };
    } catch (error) {
      if (error instanceof StorageApiError) await this.fail(session, error, { stagedGone: true });
      throw error;
    }
  }

  private async fail(session: UploadSession, error: StorageApiError, { stagedGone = false } = {}): Promise<void> {
    session.state = { kind: 'failed', error };
    if (!stagedGone) await session.staged.discard();
    await this.journal.removeUpload(session.record.id);
    this.retire(session.record.id);
  }

  /** Keeps a bounded number of finished sessions for idempotent replies. */
  private retire(id: string): void {
    this.finished.push(id);
    while (this.finished.length > FINISHED_SESSIONS_KEPT) {
      const oldest = this.finished.shift();
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
  }
}
