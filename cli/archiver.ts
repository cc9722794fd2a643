import type { PubSub, v1 } from '@google-cloud/pubsub';
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
  /** Pub/Sub's generated subscriber client (synchronous pull, explicit leases). */
  subscriber: InstanceType<typeof v1.SubscriberClient>;
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
/** Messages pulled at once. */
const PULL_BATCH = 1_000;
/** Wait before pulling again when the subscription was empty. */
const IDLE_PULL_MS = 50;
/**
 * Wait before pulling again after a pull that was not full: messages gather meanwhile, so a busy
 * topic costs a few pulls a second instead of one per arriving message (each pull and its lease
 * are calls on the emulator and, under the journal, through the pass-through). Well within a batch window.
 */
const GATHER_PULL_MS = 200;
/** How long the archiver's hold on a message lasts before it is renewed (or, if it died, redelivered). */
const LEASE_SECONDS = 10;
const MAX_WRITE_RETRY_MS = 10_000;

interface Batch {
  startedAt: Date;
  ackIds: string[];
  /** Each message's data followed by a newline. */
  lines: Buffer[];
  bytes: number;
  timer?: NodeJS.Timeout;
}

export class Archiver {
  private readonly maxBatchMs: number;
  private readonly maxBytes: number;
  private batch?: Batch;
  /** Batches are written one after the other, in the order they closed. */
  private writing: Promise<void> = Promise.resolve();
  /** Ack ids received and not yet acknowledged: their lease is kept short and renewed. */
  private readonly held = new Set<string>();
  private pulling?: Promise<void>;
  private leaseTimer?: NodeJS.Timeout;
  private lastMessageAt = 0;
  private stopping = false;
  private readonly counts = { archived: 0, objects: 0, inHand: 0, writeFailures: 0 };

  constructor(private readonly options: ArchiverOptions) {
    this.maxBatchMs = options.maxBatchMs ?? LOCAL_ARCHIVE_MAX_BATCH_MS;
    this.maxBytes = options.maxBytes ?? 10 * 1024 * 1024;
  }

  start(): void {
    this.pulling = this.pullLoop();
    // What this archiver holds is leased for LEASE_SECONDS at a time: if it dies, Pub/Sub hands
    // the messages to the next one that soon, not after the subscription's longer deadline.
    this.leaseTimer = setInterval(() => void this.renewLeases(), (LEASE_SECONDS * 1000) / 3);
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
   * `timeoutMs`), then writes the open batch and acknowledges it.
   */
  async stop({ quietMs = 300, timeoutMs = 10_000 } = {}): Promise<ArchiverStats> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && Date.now() - this.lastMessageAt < quietMs)
      await new Promise((resolve) => setTimeout(resolve, 50));
    this.stopping = true;
    await this.pulling;
    this.closeBatch();
    await this.writing;
    clearInterval(this.leaseTimer);
    this.options.logger.info('archiver stopped', { ...this.counts });
    return this.stats();
  }

  private async pullLoop(): Promise<void> {
    const { subscriber, subscriptionPath: subscription } = this.options;
    while (!this.stopping) {
      let received;
      try {
        [{ receivedMessages: received }] = await subscriber.pull(
          { subscription, maxMessages: PULL_BATCH, returnImmediately: true },
          { timeout: 10_000 },
        );
      } catch (error) {
        this.options.logger.warn('pulling the archive subscription failed; trying again', { error });
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      if (!received || received.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, IDLE_PULL_MS));
        continue;
      }
      this.lastMessageAt = Date.now();
      const ackIds = received.flatMap((item) => (item.ackId ? [item.ackId] : []));
      for (const ackId of ackIds) this.held.add(ackId);
      await this.lease(ackIds).catch(() => undefined);
      for (const item of received) {
        if (!item.ackId) continue;
        this.take(item.ackId, Buffer.from(item.message?.data ?? new Uint8Array()));
      }
      if (received.length < PULL_BATCH && !this.stopping)
        await new Promise((resolve) => setTimeout(resolve, Math.min(GATHER_PULL_MS, this.maxBatchMs / 2)));
    }
  }

  private take(ackId: string, data: Buffer): void {
    this.counts.inHand++;
    let batch = this.batch;
    if (!batch) {
      batch = this.batch = { startedAt: new Date(), ackIds: [], lines: [], bytes: 0 };
      batch.timer = setTimeout(() => this.closeBatch(), this.maxBatchMs);
    }
    batch.ackIds.push(ackId);
    // Empty data has nothing to archive (a text-format subscription writes nothing for it).
    if (data.length > 0) {
      batch.lines.push(data, NEWLINE);
      batch.bytes += data.length + 1;
    }
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
    let delayMs = WRITE_RETRY_MS;
    while (batch.lines.length > 0) {
      try {
        await this.options.storage
          .bucket(this.options.bucket)
          .file(name)
          .save(Buffer.concat(batch.lines), {
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
          messages: batch.ackIds.length,
          delayMs,
          error,
        });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        delayMs = Math.min(delayMs * 2, MAX_WRITE_RETRY_MS);
      }
    }
    await this.acknowledge(batch.ackIds);
    if (batch.lines.length > 0) this.counts.objects++;
    this.counts.archived += batch.ackIds.length;
    this.counts.inHand -= batch.ackIds.length;
  }

  /** Acknowledges, retrying: an acknowledgement lost only means the batch is archived again (readers de-duplicate). */
  private async acknowledge(ackIds: string[]): Promise<void> {
    for (let i = 0; i < ackIds.length; i += PULL_BATCH) {
      const slice = ackIds.slice(i, i + PULL_BATCH);
      for (let attempt = 0; ; attempt++) {
        try {
          await this.options.subscriber.acknowledge({ subscription: this.options.subscriptionPath, ackIds: slice });
          break;
        } catch (error) {
          if (attempt >= 5) {
            this.options.logger.warn('acknowledging archived messages failed; they will be archived again', { error });
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 200 * (attempt + 1)));
        }
      }
      for (const ackId of slice) this.held.delete(ackId);
    }
  }

  private async lease(ackIds: string[]): Promise<void> {
    for (let i = 0; i < ackIds.length; i += PULL_BATCH)
      await this.options.subscriber.modifyAckDeadline({
        subscription: this.options.subscriptionPath,
        ackIds: ackIds.slice(i, i + PULL_BATCH),
        ackDeadlineSeconds: LEASE_SECONDS,
      });
  }

  private async renewLeases(): Promise<void> {
    if (this.held.size === 0) return;
    await this.lease([...this.held]).catch((error: unknown) =>
      this.options.logger.warn('renewing the lease of held messages failed', { error }),
    );
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
