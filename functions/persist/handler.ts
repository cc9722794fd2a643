import { randomUUID } from 'node:crypto';
import type { Request, Response } from '@google-cloud/functions-framework';
import type { Materializer } from '../../shared/backends/materialized-state';
import { decode } from '../../shared/codec';
import { InvalidArgumentError, isPermanent, SpineError } from '../../shared/errors';
import {
  attributeValue,
  contactWritesOf,
  fromPubSubMessage,
  isContactWriteEvent,
  type EventContactWrite,
} from '../../shared/events';
import { EventType } from '../../shared/events/types';
import { changePath, validateNetworkId } from '../../shared/ids';
import type { Logger } from '../../shared/log';
import type { ChangePublisher } from '../../shared/mesh/change-publisher';
import type { ContentStore } from '../../shared/mesh/content-store';
import type { DeadLetterStore } from '../../shared/mesh/dead-letters';
import type { BatchScheduler } from '../batch-scheduler';
import type { PersistOn } from '../../shared/settings';
import { mapWithConcurrency } from '../../shared/util/concurrency';
import { WINDOW_ATTRIBUTE, type PendingMessage, type PendingWrites } from '../pending-writes';

/** Groups a flush writes at once: each is a few round trips to the state store, so a window of many groups wants them overlapped. */
const PERSIST_CONCURRENCY = 16;

/** Retries of a window's flush that wait for a crashed attempt's lease (60 s) to run out, at the queue's backoff. */
const LEASE_WAIT_RETRIES = 10;

export interface PersistDependencies {
  /** The persist queue, for sweeps asked for by the scheduler. */
  batches?: BatchScheduler;
  /** Length of a batch window, to tell an overdue window from an open one. */
  batchWindowMs: number;
  persistModeFor(networkId: string): PersistOn;
  state: Materializer;
  pending: PendingWrites;
  changes: ChangePublisher;
  deadLetters: DeadLetterStore;
  content: ContentStore;
  logger: Logger;
}

interface GroupBatch {
  networkId: string;
  groupId: string;
  messages: PendingMessage[];
  writes: EventContactWrite[];
}

/** What a flush covers: a batch window (from its task), or everything pending, optionally of one network. */
export interface FlushRequest {
  window?: number;
  networkId?: string;
  /** From the scheduled job: book the sweep as a task in the persist queue instead of running it here. */
  enqueue?: boolean;
  /**
   * Every pending write, whatever its window or its network's mode: the last flush before the
   * buffer goes away (a local mesh stopping; its Pub/Sub emulator keeps nothing).
   */
  everything?: boolean;
}

/** The network of a pending message, read from its event (attributes may be shortened). */
function networkOf(message: PendingMessage): string {
  try {
    return fromPubSubMessage({ data: message.data, attributes: message.attributes }).data.networkId;
  } catch {
    return message.attributes.networkId ?? '';
  }
}

export function parseFlushRequest(body: unknown): FlushRequest {
  const raw = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const request: FlushRequest = {};
  if (raw.window !== undefined) {
    if (!Number.isSafeInteger(raw.window)) throw new InvalidArgumentError('flush window must be a whole number');
    request.window = raw.window as number;
  }
  // Checked whenever given: a bad id is refused, not read as a sweep of every network. Without
  // `all` it only says whose window this is (the window decides the scope).
  if (raw.networkId !== undefined) {
    const networkId = validateNetworkId(raw.networkId);
    if (raw.all === true) request.networkId = networkId;
  }
  if (raw.enqueue !== undefined) {
    if (typeof raw.enqueue !== 'boolean') throw new InvalidArgumentError('enqueue must be true or false');
    request.enqueue = raw.enqueue;
  }
  if (raw.everything !== undefined) {
    if (typeof raw.everything !== 'boolean') throw new InvalidArgumentError('everything must be true or false');
    if (
      raw.everything &&
      (raw.window !== undefined || raw.networkId !== undefined || raw.all !== undefined || raw.enqueue !== undefined)
    ) {
      throw new InvalidArgumentError(
        'everything flushes every pending write: it takes no window, networkId, all or enqueue',
      );
    }
    if (raw.everything) request.everything = true;
  }
  return request;
}

export interface PersistSummary {
  groups: number;
  /** Pending messages taken: a bundle counts once. */
  events: number;
  /** Contact writes in them. */
  writes: number;
  deadLetters: number;
  failed: Array<{ path: string; error: string }>;
}

/** Whether a flush takes this pending write: its window's and earlier ones, its network's, or the sweep's. */
function inFlushScope(deps: PersistDependencies, request: FlushRequest, message: PendingMessage, now: number): boolean {
  if (request.everything) return true;
  const window = message.attributes[WINDOW_ATTRIBUTE];
  if (request.window !== undefined) return window !== undefined && Number(window) <= request.window;
  if (request.networkId !== undefined) return message.attributes.networkId === attributeValue(request.networkId);
  // The periodic sweep: writes of `interval` networks, and batch writes whose window's own
  // flush is long overdue (a crashed flush held them until their lease ran out). Writes of
  // `manual` networks wait for an explicit flush.
  if (window === undefined) return deps.persistModeFor(networkOf(message)) === 'interval';
  return (Number(window) + 2) * deps.batchWindowMs < now;
}

/**
 * The pending writes sorted into one batch per group. A write that can never apply is filed as a
 * dead letter and acknowledged; one that may apply later (referenced content not there yet) is
 * handed back for the next flush.
 */
async function batchByGroup(
  deps: PersistDependencies,
  messages: PendingMessage[],
): Promise<{ groups: Map<string, GroupBatch>; dead: number; failed: PersistSummary['failed'] }> {
  const { pending, deadLetters, content } = deps;
  const groups = new Map<string, GroupBatch>();
  let dead = 0;
  const failed: PersistSummary['failed'] = [];
  for (const message of messages) {
    try {
      const event = fromPubSubMessage({ data: message.data, attributes: message.attributes });
      if (!isContactWriteEvent(event)) throw new SpineError('INVALID_EVENT', `${event.type} is not a batched write`);
      const d = event.data;
      const writes = await contactWritesOf(event, async (reference) => decode(await content.get(reference)));
      const path = changePath(d.networkId, d.groupId);
      let batch = groups.get(path);
      if (!batch) groups.set(path, (batch = { networkId: d.networkId, groupId: d.groupId, messages: [], writes: [] }));
      batch.messages.push(message);
      batch.writes.push(...writes);
    } catch (error) {
      if (!isPermanent(error)) {
        await pending.release([message.ackId]).catch(() => undefined);
        continue;
      }
      try {
        await deadLetters.record({
          id: message.messageId,
          reason: error.message,
          source: 'materialize',
          attributes: message.attributes,
          data: message.data.toString('base64'),
          orderingKey: message.attributes.path,
        });
        await pending.ack([message.ackId]);
        dead += 1;
      } catch (recordError) {
        // Not filed: keep it pending, and fail the flush so it is tried again.
        failed.push({
          path: message.attributes.path ?? message.messageId,
          error: `dead letter not recorded: ${(recordError as Error).message}`,
        });
        await pending.release([message.ackId]).catch(() => undefined);
      }
    }
  }
  return { groups, dead, failed };
}

/** One group's writes in one state write, announced, then acknowledged; on failure they stay pending. */
async function persistGroup(
  deps: PersistDependencies,
  request: FlushRequest,
  path: string,
  batch: GroupBatch,
  summary: PersistSummary,
): Promise<void> {
  const { state, changes, pending, logger } = deps;
  try {
    await state.applyContactWriteBatch(batch.networkId, batch.groupId, batch.writes);
    await changes.publish([
      {
        type: EventType.GroupChanged,
        data: {
          networkId: batch.networkId,
          groupId: batch.groupId,
          kind: 'updated',
          causeId: `batch-${randomUUID()}`,
          causes: batch.writes.map((w) => ({ eventId: w.eventId, writerId: w.write.writerId })),
        },
      },
    ]);
    await pending.ack(batch.messages.map((m) => m.ackId));
    logger.info('persisted group', {
      path,
      events: batch.writes.length,
      ...(request.window !== undefined ? { window: request.window } : {}),
    });
  } catch (error) {
    summary.failed.push({ path, error: (error as Error).message });
    logger.warn('persisting group failed; its writes stay pending', { path, error });
    await pending.release(batch.messages.map((m) => m.ackId)).catch(() => undefined);
  }
}

/** Drains the pending buffer for one flush request: what is in scope is applied, the rest left pending. */
async function drainPending(deps: PersistDependencies, request: FlushRequest): Promise<PersistSummary> {
  const { pending, logger } = deps;
  const pulled = await pending.pull();
  const now = Date.now();
  const messages = pulled.filter((m) => inFlushScope(deps, request, m, now));
  const deferred = pulled.filter((m) => !inFlushScope(deps, request, m, now));
  // Left pending for their own flush, visible to it at once and without spending delivery attempts (see `defer`).
  if (deferred.length) {
    await pending.defer(deferred).catch((error: unknown) =>
      logger.warn('could not leave writes of later flushes pending; some return when their lease ends', {
        count: deferred.length,
        error,
      }),
    );
  }
  const { groups, dead, failed } = await batchByGroup(deps, messages);
  const writes = [...groups.values()].reduce((sum, batch) => sum + batch.writes.length, 0);
  const summary: PersistSummary = { groups: groups.size, events: messages.length, writes, deadLetters: dead, failed };
  // Groups are independent: several at once, so a flush of many groups is not one round trip after another.
  await mapWithConcurrency([...groups], PERSIST_CONCURRENCY, ([path, batch]) =>
    persistGroup(deps, request, path, batch, summary),
  );
  return summary;
}

/**
 * The target of the batch tasks (and of the interval job): drains every pending batched write,
 * applies each group's writes in clock order with one state write, announces the change, then
 * acknowledges that group's messages. A crash before the acknowledgement leaves the messages
 * pending, and the repeat applies nothing twice (writes are de-duplicated by writer and sequence).
 */
export function createPersistHandler(deps: PersistDependencies) {
  const { logger } = deps;

  // One flush at a time in this instance. Each drains the whole buffer, leasing what it pulls: a
  // flush running beside another (the scheduled sweep calls directly, not through the queue that
  // dispatches one task at a time) would find the other's writes leased, and split a window
  // between two flushes (two writes of a group) or leave it behind for the overdue sweep.
  let previous: Promise<unknown> = Promise.resolve();
  function oneAtATime<T>(work: () => Promise<T>): Promise<T> {
    const result = previous.then(work, work);
    previous = result.catch(() => undefined);
    return result;
  }

  const persistPending = (request: FlushRequest) => drainPending(deps, request);

  return async function persist(req: Request, res: Response): Promise<void> {
    const started = Date.now();
    let request: FlushRequest;
    try {
      request = parseFlushRequest(req.body);
    } catch (error) {
      res.status(400).json({ error: (error as Error).message });
      return;
    }
    if (request.enqueue) {
      // Flushes run one at a time from the queue: a sweep running beside a window's flush (on
      // another instance) would hold that window's writes while the window's flush found nothing.
      if (!deps.batches) {
        res.status(500).json({ error: 'the persist queue is not configured (SPINE_FUNCTION_URLS)' });
        return;
      }
      const slot = req.get('x-cloudscheduler-scheduletime');
      const parsedSlot = slot ? new Date(slot) : undefined;
      const booked = await deps.batches.sweep(
        parsedSlot && !Number.isNaN(parsedSlot.getTime()) ? parsedSlot : undefined,
      );
      res.status(200).json({ enqueued: booked });
      return;
    }
    const summary = await oneAtATime(() => persistPending(request));
    logger.info('persist finished', {
      ...summary,
      failed: summary.failed.length,
      ms: Date.now() - started,
      body: req.body,
    });
    // A retry of a window's flush that finds nothing may be looking while a crashed attempt still
    // holds the window's writes (until their lease runs out): ask Cloud Tasks to come back later.
    const retry = Number(req.get('x-cloudtasks-taskretrycount') ?? 0);
    if (request.window !== undefined && summary.events === 0 && retry > 0 && retry <= LEASE_WAIT_RETRIES) {
      res.status(503).json({ ...summary, retryLater: 'a previous attempt may still hold this window' });
      return;
    }
    // A failure answers 500 so Cloud Tasks retries the flush.
    res.status(summary.failed.length ? 500 : 200).json(summary);
  };
}
