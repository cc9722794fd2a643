/**
 * The local mesh's journal of accepted messages: every message the Pub/Sub pass-through
 * acknowledges on a journaled topic is first appended here and fsync'd, so a crash of any part
 * (the emulator keeps messages in its heap only) loses nothing a client was told is accepted.
 * Entries are marked done once the mesh knows the state holds them; what is not done is
 * published again at the next start. One JSON line per record.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../shared/log';

export interface JournaledMessage {
  /** Unique across runs: `<run>/<emulator message id>`. */
  id: string;
  /** Full topic path. */
  topic: string;
  /** Base64. */
  data: string;
  attributes: Record<string, string>;
  orderingKey?: string;
}

type Record_ = { publish: JournaledMessage } | { done: string[] };

export const JOURNAL_FILE = 'accepted.jsonl';
/** Rewritten without its done entries once it holds this many bytes and mostly done entries. */
const COMPACT_AT_BYTES = 8 * 1024 * 1024;
/** Done marks need no fsync (a lost one replays a message, which materialize de-duplicates): written this often, which also bounds the fsyncs that derived messages need before them. */
const DONE_FLUSH_MS = 1_000;

export interface JournalStats {
  pending: number;
  bytes: number;
  appends: number;
  fsyncs: number;
  compactions: number;
}

export class AcceptedJournal {
  /** Not yet known to be done, in acceptance order. */
  private readonly pending = new Map<string, JournaledMessage>();
  /** Done before their publish record was written (the relay can be faster than the fsync). */
  private readonly doneEarly = new Set<string>();
  /** Per entry, the copies that hold it not done (see `hold`). */
  private readonly holders = new Map<string, Set<string>>();
  /** Per copy, the entry it holds. */
  private readonly heldBy = new Map<string, string>();
  /** Entries marked done while still held: done once their last copy is released. */
  private readonly doneWhenReleased = new Set<string>();
  private doneQueue: string[] = [];
  private queue: Array<{ lines: string; sync: boolean; resolve: () => void; reject: (error: unknown) => void }> = [];
  /** Appends written but not yet fsync'd (derived messages): synced before any done mark is written. */
  private unsynced = false;
  private writing: Promise<void> | undefined;
  private doneTimer: NodeJS.Timeout | undefined;
  private bytes = 0;
  private closed = false;
  private readonly counters = { appends: 0, fsyncs: 0, compactions: 0 };
  /** Ids of this run: the emulator numbers its messages afresh at each start. */
  readonly run = randomUUID().slice(0, 8);

  private constructor(
    private readonly file: string,
    private handle: FileHandle,
    /** What earlier runs accepted and did not finish: to be published again. */
    readonly unfinished: readonly JournaledMessage[],
    private readonly logger: Logger,
  ) {
    for (const message of unfinished) this.pending.set(message.id, message);
  }

  /** Opens (or creates) the journal in `dir`; a torn last line (a crash mid-write) is ignored. */
  static async open(dir: string, logger: Logger): Promise<AcceptedJournal> {
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, JOURNAL_FILE);
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const accepted = new Map<string, JournaledMessage>();
    const done = new Set<string>();
    let torn = 0;
    for (const line of text.split('\n')) {
      if (!line) continue;
      let record: Record_;
      try {
        record = JSON.parse(line) as Record_;
      } catch {
        torn++;
        continue;
      }
      if ('publish' in record) accepted.set(record.publish.id, record.publish);
      else for (const id of record.done) done.add(id);
    }
    const unfinished = [...accepted.values()].filter((message) => !done.has(message.id));
    if (torn)
      logger.warn('journal lines that could not be read were skipped (a write torn by a crash)', { file, lines: torn });
    const handle = await open(file, 'a');
    const journal = new AcceptedJournal(file, handle, unfinished, logger);
    journal.bytes = Buffer.byteLength(text);
    return journal;
  }

  /** The journal id of a message the emulator numbered `messageId` in this run. */
  idOf(messageId: string): string {
    return `${this.run}/${messageId}`;
  }

  /**
   * Durable once resolved: written and fsync'd, together with whatever else is waiting (group
   * commit). With `sync: false` (a message derived from a journaled one, such as a batched write's
   * pending copy, whose source is marked done only after this resolves) it resolves once written:
   * that survives a crash of the process, and the journal fsyncs it before it writes any done mark,
   * so after a power loss either it is on disk or its source is still not done and is replayed.
   */
  append(messages: JournaledMessage[], { sync = true }: { sync?: boolean } = {}): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the journal is closed'));
    const fresh = messages.filter((message) => !this.doneEarly.delete(message.id));
    if (fresh.length === 0) return Promise.resolve();
    for (const message of fresh) this.pending.set(message.id, message);
    const lines = fresh.map((publish) => JSON.stringify({ publish }) + '\n').join('');
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ lines, sync, resolve, reject });
      this.kick();
    });
  }

  /**
   * Keeps entry `id` not done until `copy` is marked done: for a message derived from it that is not
   * journaled itself (a batched write's pending copy, kept in the emulator's memory only), or for a
   * second reader of the entry's own message (the archiver: `copy` then names its reading). A crash
   * before the copy is done replays the entry, which makes the copy again. Cheaper than journaling
   * the copy: nothing is written and nothing waits.
   */
  hold(id: string, copy: string): void {
    if (this.closed) return;
    // Marked done before it was held (the relay can be faster than the pass-through): done once released.
    if (this.doneEarly.delete(id)) this.doneWhenReleased.add(id);
    let copies = this.holders.get(id);
    if (!copies) this.holders.set(id, (copies = new Set()));
    copies.add(copy);
    this.heldBy.set(copy, id);
  }

  /** The state holds these messages (or they are filed as dead letters): not published again. */
  markDone(ids: Iterable<string>): void {
    for (const id of ids) {
      const held = this.heldBy.get(id);
      if (held !== undefined) {
        this.heldBy.delete(id);
        const copies = this.holders.get(held)!;
        copies.delete(id);
        if (copies.size) continue;
        this.holders.delete(held);
        if (this.doneWhenReleased.delete(held)) this.finish(held);
        continue;
      }
      if (this.holders.has(id)) this.doneWhenReleased.add(id);
      else this.finish(id);
    }
    if (this.doneQueue.length && !this.doneTimer && !this.closed) {
      this.doneTimer = setTimeout(() => {
        this.doneTimer = undefined;
        this.kick();
      }, DONE_FLUSH_MS);
      this.doneTimer.unref();
    }
  }

  private finish(id: string): void {
    if (this.pending.delete(id)) this.doneQueue.push(id);
    else this.doneEarly.add(id);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  stats(): JournalStats {
    return { pending: this.pending.size, bytes: this.bytes, ...this.counters };
  }

  private kick(): void {
    if (this.writing) return;
    this.writing = this.writeLoop().finally(() => {
      this.writing = undefined;
      if (this.queue.length) this.kick();
    });
  }

  private async writeLoop(): Promise<void> {
    while (this.queue.length || this.doneQueue.length) {
      const batch = this.queue;
      this.queue = [];
      const done = this.doneQueue;
      this.doneQueue = [];
      const lines = batch.map((entry) => entry.lines).join('');
      try {
        if (lines) await this.handle.write(lines);
        this.bytes += Buffer.byteLength(lines);
        if (batch.some((entry) => !entry.sync)) this.unsynced = true;
        // A done mark may only reach the disk after the derived messages that replace its message.
        if (batch.some((entry) => entry.sync) || (done.length && this.unsynced)) {
          await this.handle.datasync();
          this.counters.fsyncs++;
          this.unsynced = false;
        }
        this.counters.appends += batch.length;
        for (const entry of batch) entry.resolve();
        if (done.length) {
          const marks = JSON.stringify({ done }) + '\n';
          await this.handle.write(marks);
          this.bytes += Buffer.byteLength(marks);
        }
      } catch (error) {
        this.logger.error('the journal could not be written; the publishes waiting for it fail', {
          file: this.file,
          error,
        });
        for (const entry of batch) entry.reject(error);
      }
      if (this.bytes > COMPACT_AT_BYTES && this.pending.size * 4 < this.counters.appends)
        await this.rewrite().catch((error: unknown) =>
          this.logger.warn('journal compaction failed; it is tried again later', { error }),
        );
    }
  }

  /** Writes the pending entries alone to a new file and puts it in place of the old one. */
  private async rewrite(): Promise<void> {
    const temporary = `${this.file}.compacting`;
    const text = [...this.pending.values()].map((publish) => JSON.stringify({ publish }) + '\n').join('');
    const handle = await open(temporary, 'w');
    try {
      await handle.write(text);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.file);
    const directory = await open(path.dirname(this.file), 'r');
    await directory.sync().finally(() => directory.close());
    await this.handle.close();
    this.handle = await open(this.file, 'a');
    this.bytes = Buffer.byteLength(text);
    this.counters.appends = this.pending.size;
    this.counters.compactions++;
    this.logger.info('journal compacted', { pending: this.pending.size, bytes: this.bytes });
  }

  /** Writes what is queued and compacts: a clean stop leaves only what is not done. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.doneTimer);
    this.doneTimer = undefined;
    this.kick();
    while (this.writing) await this.writing;
    this.closed = true;
    await this.rewrite().catch((error: unknown) => this.logger.warn('journal compaction at stop failed', { error }));
    await this.handle.close();
    await rm(`${this.file}.compacting`, { force: true });
  }
}

/** The hold a second reader (the archiver's subscription) keeps on a journal entry until it acknowledges it. */
export function readingOf(subscription: string, id: string): string {
  return `${subscription}#${id}`;
}
