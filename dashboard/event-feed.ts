import type { Message, PubSub } from '@google-cloud/pubsub';
import type { Logger } from '../shared/log';
import type { DeadLetterStore } from '../shared/mesh/dead-letters';
import type { Topology } from '../shared/topology';
import {
  EVENT_KINDS,
  summarizeDeadLetterMessage,
  summarizeMessage,
  summarizeStoredDeadLetter,
  type DashboardEvent,
  type EventKind,
} from './event-summary';
import { openTopicTap, type TopicTap } from './topic-tap';

/** What the page receives, at most every `flushIntervalMs`: the newest events and how many of each kind arrived. */
export interface EventBatch {
  events: DashboardEvent[];
  /** Every event received since the last batch, by kind, including those not sent. */
  counts: Record<EventKind, number>;
  /** When the server sent the batch (ISO). */
  sentAt: string;
}

export interface EventFeedOptions {
  pubsub: PubSub;
  topology: Topology;
  deadLetters: DeadLetterStore;
  /** Unique part of the subscription names: `<prefix>dashboard-<runId>-<topic>`. */
  runId: string;
  logger: Logger;
  onBatch(batch: EventBatch): void;
  /** How often events are sent on (default 100 ms): one frame per interval, however busy the mesh. */
  flushIntervalMs?: number;
  /** How often the dead-letter store is looked at (default 2 s). */
  deadLetterPollMs?: number;
  /** Events kept for a page that connects later, and the most sent in one batch (default 200). */
  maxEvents?: number;
}

const emptyCounts = (): Record<EventKind, number> =>
  Object.fromEntries(EVENT_KINDS.map((kind) => [kind, 0])) as Record<EventKind, number>;

/**
 * The live event stream: the dashboard's own subscriptions on the contact-writes, group-changes
 * and dead-letter topics, plus the dead-letter store (materialize files events it can never
 * apply there without publishing them), summarized and sent on in batches.
 */
export class EventFeed {
  private readonly taps: TopicTap[] = [];
  private readonly recentEvents: DashboardEvent[] = [];
  private pending: DashboardEvent[] = [];
  private counts = emptyCounts();
  private readonly seenDeadLetters = new Set<string>();
  private flushTimer?: NodeJS.Timeout;
  private pollTimer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private readonly maxEvents: number;
  private closed = false;

  constructor(private readonly options: EventFeedOptions) {
    this.maxEvents = options.maxEvents ?? 200;
  }

  /** Names of the subscriptions this feed created (and removes on close). */
  get subscriptionNames(): string[] {
    return this.taps.map((tap) => tap.name);
  }

  /** The newest events, oldest first, for a page that just connected. */
  recent(): DashboardEvent[] {
    return [...this.recentEvents];
  }

  async start(): Promise<void> {
    const { topology, pubsub, runId, logger } = this.options;
    const name = (topic: string) => `${topology.prefix}dashboard-${runId}-${topic.slice(topology.prefix.length)}`;
    const sources: Array<{ topic: string; summarize(message: Message): DashboardEvent }> = [
      { topic: topology.topics.contactWrites.name, summarize: (m) => summarizeMessage('contact-write', m) },
      { topic: topology.topics.groupChanges.name, summarize: (m) => summarizeMessage('group-change', m) },
      { topic: topology.topics.deadLetters.name, summarize: (m) => summarizeDeadLetterMessage(m) },
    ];
    try {
      for (const source of sources) {
        this.taps.push(
          await openTopicTap(pubsub, topology, {
            topic: source.topic,
            name: name(source.topic),
            logger,
            onMessage: (m) => this.add(source.summarize(m)),
          }),
        );
      }
      // Letters already waiting are not news; only ones recorded from now on join the stream.
      await this.pollDeadLetters(false);
    } catch (error) {
      await this.close();
      throw error;
    }
    this.flushTimer = setInterval(() => this.flush(), this.options.flushIntervalMs ?? 100);
    this.pollTimer = setInterval(() => {
      this.polling ??= this.pollDeadLetters(true)
        .catch((error: unknown) => logger.warn('dashboard could not read the dead-letter store', { error }))
        .finally(() => (this.polling = undefined));
    }, this.options.deadLetterPollMs ?? 2_000);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.flushTimer);
    clearInterval(this.pollTimer);
    await this.polling;
    await Promise.all(this.taps.map((tap) => tap.close()));
  }

  private add(event: DashboardEvent): void {
    if (this.closed) return;
    if (event.kind === 'dead-letter') {
      if (this.seenDeadLetters.has(event.id)) return;
      this.seenDeadLetters.add(event.id);
    }
    this.counts[event.kind] += 1;
    this.pending.push(event);
    // Under a flood only the newest are worth showing; the counts keep the rates right.
    if (this.pending.length > this.maxEvents * 2) this.pending = this.pending.slice(-this.maxEvents);
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const events = this.pending.slice(-this.maxEvents);
    const batch: EventBatch = { events, counts: this.counts, sentAt: new Date().toISOString() };
    this.pending = [];
    this.counts = emptyCounts();
    this.recentEvents.push(...events);
    if (this.recentEvents.length > this.maxEvents)
      this.recentEvents.splice(0, this.recentEvents.length - this.maxEvents);
    this.options.onBatch(batch);
  }

  /** Lists the store's ids each poll and reads only the letters not seen before. */
  private async pollDeadLetters(announce: boolean): Promise<void> {
    const { deadLetters } = this.options;
    const fresh = (await deadLetters.pendingIds()).filter((id) => !this.seenDeadLetters.has(id));
    for (const id of fresh) {
      if (!announce) {
        this.seenDeadLetters.add(id);
        continue;
      }
      // Replayed between the listing and this read: nothing to show.
      const letter = await deadLetters.get(id).catch(() => undefined);
      if (letter) this.add(summarizeStoredDeadLetter(letter));
    }
  }
}
