import { Duration, type Message, type PubSub, type Subscription } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { archiveObjectName, type ArchiveLayout } from '../shared/history/layout';
import type { Logger } from '../shared/log';
import { subscriptionMetadata } from '../shared/provision';
import type { Topology } from '../shared/topology';

/**
 * The local stand-in for the archive's Cloud Storage subscription (the emulator has none): pulls
 * its own subscription on the contact-writes topic and writes each batch as one object in the
 * same layout and text format (each message's data, one per line), to the state bucket. A
 * message is acknowledged only once the object holding it is written; a batch closes after
 * `maxBatchMs` or `maxBytes`, whichever comes first. Redeliveries are archived again (readers
 * de-duplicate).
 */
export interface ArchiverOptions {
  pubsub: PubSub;
  storage: Storage;
  bucket: string;
  layout: ArchiveLayout;
  /** Full path of the archive subscription. */
  subscriptionPath: string;
  /** Longest a batch stays open (the subscription's `max_duration`); 1 s by default, so history is fresh. */
  maxBatchMs?: number;
  maxBytes?: number;
  logger: Logger;
}

export interface ArchiverStats {
  /** Messages written and acknowledged. */
  archived: number;
  objects: number;
  /** Messages received and not yet acknowledged. */
  inHand: number;
  /** Failed object writes (retried). */
  writeFailures: number;
}

/** Default batch window of the local archiver. */
export const LOCAL_ARCHIVE_MAX_BATCH_MS = 1_000;
const WRITE_RETRY_MS = 500;
const MAX_WRITE_RETRY_MS = 10_000;

interface Batch {
  startedAt: Date;
  messages: Message[];
  bytes: number;
  timer?: NodeJS.Timeout;
}

export class Archiver {
  private readonly maxBatchMs: number;
  private readonly maxBytes: number;
  private subscription?: Subscription;
  private batch?: Batch;
  /** Batches are written one after the other, in the order they closed. */
  private writing: Promise<void> = Promise.resolve();
  private lastMessageAt = 0;
  private stopping = false;
  private readonly counts = { archived: 0, objects: 0, inHand: 0, writeFailures: 0 };

  constructor(private readonly options: ArchiverOptions) {
    this.maxBatchMs = options.maxBatchMs ?? LOCAL_ARCHIVE_MAX_BATCH_MS;
    this.maxBytes = options.maxBytes ?? 10 * 1024 * 1024;
  }

  start(): void {
    const subscription = this.options.pubsub.subscription(this.options.subscriptionPath, {
      flowControl: { maxMessages: 5_000, allowExcessMessages: false },
      // Held while a write is retried (a Storage outage of any length): the lease is kept extended.
      maxExtensionTime: Duration.from({ hours: 24 }),
      batching: { maxMilliseconds: 20 },
    });
    subscription.on('message', (message: Message) => this.take(message));
    subscription.on('error', (error: Error) => this.options.logger.error('archive subscription error', { error }));
    this.subscription = subscription;
    this.options.logger.info('archiver started', {
      subscription: this.options.subscriptionPath,
      bucket: this.options.bucket,
      prefix: this.options.layout.objectPrefix,
      maxBatchMs: this.maxBatchMs,
    });
  }

  stats(): ArchiverStats {
    return { ...this.counts };
  }

  /**
   * A clean stop: takes what keeps arriving until `quietMs` pass without a message (at most
   * `timeoutMs`), then writes the open batch and acknowledges it before closing the subscription.
   */
  async stop({ quietMs = 300, timeoutMs = 10_000 } = {}): Promise<ArchiverStats> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && Date.now() - this.lastMessageAt < quietMs)
      await new Promise((resolve) => setTimeout(resolve, 50));
    this.stopping = true;
    this.closeBatch();
    await this.writing;
    // Closing flushes the acknowledgements queued by the writes.
    await this.subscription?.close();
    this.options.logger.info('archiver stopped', { ...this.counts });
    return this.stats();
  }

  private take(message: Message): void {
    this.lastMessageAt = Date.now();
    // Taken by the next run (or this one's successor) once the stop has begun.
    if (this.stopping) {
      message.nack();
      return;
    }
    // Empty data has nothing to archive (a text-format subscription writes nothing for it).
    if (message.data.length === 0) {
      message.ack();
      return;
    }
    this.counts.inHand++;
    let batch = this.batch;
    if (!batch) {
      batch = this.batch = { startedAt: new Date(), messages: [], bytes: 0 };
      batch.timer = setTimeout(() => this.closeBatch(), this.maxBatchMs);
    }
    batch.messages.push(message);
    batch.bytes += message.data.length + 1;
    if (batch.bytes >= this.maxBytes) this.closeBatch();
  }

  private closeBatch(): void {
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    clearTimeout(batch.timer);
    this.writing = this.writing.then(() => this.write(batch));
  }

  /** Writes one batch, retrying until it is stored; acknowledges its messages only then. */
  private async write(batch: Batch): Promise<void> {
    const name = archiveObjectName(this.options.layout, batch.startedAt);
    const body = Buffer.concat(batch.messages.flatMap((message) => [message.data, NEWLINE]));
    let delayMs = WRITE_RETRY_MS;
    for (;;) {
      try {
        await this.options.storage
          .bucket(this.options.bucket)
          .file(name)
          .save(body, {
            resumable: false,
            contentType: 'text/plain',
            // A retry after a write that did land must not fail, nor write a second copy.
            preconditionOpts: { ifGenerationMatch: 0 },
          });
        break;
      } catch (error) {
        if ((error as { code?: number }).code === 412) break;
        this.counts.writeFailures++;
        this.options.logger.warn('archive object could not be written; retrying', {
          object: name,
          messages: batch.messages.length,
          delayMs,
          error,
        });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        delayMs = Math.min(delayMs * 2, MAX_WRITE_RETRY_MS);
      }
    }
    for (const message of batch.messages) message.ack();
    this.counts.archived += batch.messages.length;
    this.counts.inHand -= batch.messages.length;
    this.counts.objects++;
  }
}

const NEWLINE = Buffer.from('\n');

/** Creates the archive's pull subscription when missing (locally; in the cloud it is Terraform's Cloud Storage subscription). */
export async function ensureArchiveSubscription(topology: Topology, pubsub: PubSub): Promise<string> {
  const spec = topology.archive.subscription;
  const path = `projects/${topology.projectId}/subscriptions/${spec.name}`;
  const subscription = pubsub.subscription(path);
  const [exists] = await subscription.exists();
  if (!exists) {
    const metadata = subscriptionMetadata(topology, spec, {}, { localDelivery: true });
    try {
      await pubsub
        .topic(`projects/${topology.projectId}/topics/${spec.topic}`)
        .createSubscription(path, metadata as Parameters<ReturnType<PubSub['topic']>['createSubscription']>[1]);
    } catch (error) {
      // Created meanwhile by another start: fine.
      if ((error as { code?: number }).code !== 6) throw error;
    }
  }
  return path;
}
