import { randomUUID } from 'node:crypto';
import type { Storage } from '@google-cloud/storage';
import type { Topic } from '@google-cloud/pubsub';
import { SpineError } from '../errors';

/** Why a message could not be applied, and everything needed to apply it later. */
export interface DeadLetter {
  id: string;
  reason: string;
  /** `materialize`: refused as unapplicable; `delivery-attempts`: Pub/Sub gave up after retries. */
  source: 'materialize' | 'delivery-attempts';
  /** Subscription the message failed on, when known. */
  subscription?: string;
  deliveryAttempts?: number;
  /** The original message's attributes (without Pub/Sub's dead-letter bookkeeping). */
  attributes: Record<string, string>;
  /** The original message's data, base64. */
  data: string;
  orderingKey?: string;
  recordedAt: string;
  replayedAt?: string;
}

export class DeadLetterNotFoundError extends SpineError {
  constructor(readonly deadLetterId: string) {
    super('NOT_FOUND', `dead letter ${JSON.stringify(deadLetterId)} does not exist`);
  }
}

const PUBSUB_DEAD_LETTER_ATTRIBUTES = /^CloudPubSubDeadLetter/;
const SAFE_ID = /^[A-Za-z0-9_-]{1,200}$/;

/**
 * Dead letters kept in Cloud Storage, one object each: `dead-letters/pending/{id}.json` until
 * replayed, then `dead-letters/replayed/{id}.json`. Recording is idempotent per id, so a
 * redelivered dead letter is stored once.
 */
export class DeadLetterStore {
  constructor(
    private readonly storage: Storage,
    readonly bucket: string,
    private readonly prefix = 'dead-letters/',
  ) {}

  async record(letter: Omit<DeadLetter, 'id' | 'recordedAt'> & { id?: string }): Promise<DeadLetter> {
    const id = letter.id && SAFE_ID.test(letter.id) ? letter.id : randomUUID();
    const attributes = Object.fromEntries(
      Object.entries(letter.attributes).filter(([key]) => !PUBSUB_DEAD_LETTER_ATTRIBUTES.test(key)),
    );
    const stored: DeadLetter = { ...letter, id, attributes, recordedAt: new Date().toISOString() };
    try {
      await this.file('pending', id).save(JSON.stringify(stored), {
        resumable: false,
        contentType: 'application/json',
        preconditionOpts: { ifGenerationMatch: 0 },
      });
    } catch (error) {
      if ((error as { code?: number }).code !== 412) throw error;
    }
    return stored;
  }

  /** Dead letters not yet replayed, oldest first; with `replayed`, the replayed ones instead. */
  async list(options: { replayed?: boolean } = {}): Promise<DeadLetter[]> {
    const [files] = await this.storage
      .bucket(this.bucket)
      .getFiles({ prefix: `${this.prefix}${options.replayed ? 'replayed' : 'pending'}/` });
    const letters = await Promise.all(
      files.map(async (file) => JSON.parse((await file.download())[0].toString('utf8')) as DeadLetter),
    );
    return letters.sort((a, b) => a.recordedAt.localeCompare(b.recordedAt) || a.id.localeCompare(b.id));
  }

  /**
   * Counts one more failed attempt at applying a message and returns the total so far. Kept in
   * the bucket, so every function instance (and a restarted one) sees the same count.
   */
  async countFailure(messageId: string): Promise<number> {
    const file = this.storage.bucket(this.bucket).file(`${this.prefix}attempts/${encodeURIComponent(messageId)}.json`);
    for (;;) {
      let attempts = 0;
      let generation = 0;
      try {
        const [bytes] = await file.download();
        const [metadata] = await file.getMetadata();
        attempts = (JSON.parse(bytes.toString('utf8')) as { attempts: number }).attempts;
        generation = Number(metadata.generation);
      } catch (error) {
        if ((error as { code?: number }).code !== 404) throw error;
      }
      try {
        await file.save(JSON.stringify({ attempts: attempts + 1 }), {
          resumable: false,
          contentType: 'application/json',
          preconditionOpts: { ifGenerationMatch: generation },
        });
        return attempts + 1;
      } catch (error) {
        // Another instance counted at the same time: count again on top of it.
        if ((error as { code?: number }).code !== 412) throw error;
      }
    }
  }

  async count(): Promise<number> {
    return (await this.pendingIds()).length;
  }

  /** Ids of the dead letters not yet replayed, from one listing (no object is read). */
  async pendingIds(): Promise<string[]> {
    const prefix = `${this.prefix}pending/`;
    const [files] = await this.storage.bucket(this.bucket).getFiles({ prefix });
    return files.map((file) => file.name.slice(prefix.length, -'.json'.length));
  }

  async get(id: string): Promise<DeadLetter> {
    if (!SAFE_ID.test(id)) throw new DeadLetterNotFoundError(id);
    try {
      const [bytes] = await this.file('pending', id).download();
      return JSON.parse(bytes.toString('utf8')) as DeadLetter;
    } catch (error) {
      if ((error as { code?: number }).code === 404) throw new DeadLetterNotFoundError(id);
      throw error;
    }
  }

  /** Publishes the original message again to `topic`, then files the letter as replayed. */
  async replay(id: string, topic: Topic): Promise<DeadLetter> {
    const letter = await this.get(id);
    await topic.publishMessage({
      data: Buffer.from(letter.data, 'base64'),
      attributes: letter.attributes,
      ...(letter.orderingKey ? { orderingKey: letter.orderingKey } : {}),
    });
    const replayed: DeadLetter = { ...letter, replayedAt: new Date().toISOString() };
    await this.file('replayed', id).save(JSON.stringify(replayed), {
      resumable: false,
      contentType: 'application/json',
    });
    await this.file('pending', id).delete({ ignoreNotFound: true });
    return replayed;
  }

  private file(state: 'pending' | 'replayed', id: string) {
    return this.storage.bucket(this.bucket).file(`${this.prefix}${state}/${id}.json`);
  }
}
