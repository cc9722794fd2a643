import type { CloudEvent } from '@google-cloud/functions-framework';
import type { Materializer } from '../../shared/backends/materialized-state';
import { decode } from '../../shared/codec';
import { isPermanent, SpineError } from '../../shared/errors';
import { contactWritesOf, fromPubSubMessage } from '../../shared/events';
import { EventType, type AnySpineEvent, type GroupChangedData } from '../../shared/events/types';
import type { Logger } from '../../shared/log';
import type { Change, ChangePublisher } from '../../shared/mesh/change-publisher';
import type { ContentStore } from '../../shared/mesh/content-store';
import type { ContentReference } from '../../shared/events/types';
import type { DeadLetterStore } from '../../shared/mesh/dead-letters';
import type { GroupChangeKind, GroupState, NetworkState } from '../../shared/model';
import { createHash } from 'node:crypto';
import type { BatchScheduler } from '../batch-scheduler';
import type { FunctionTasks } from '../function-tasks';
import type { PendingWrites } from '../pending-writes';
import type { PersistOn } from '../../shared/settings';
import { pushedMessage, type PubSubPushData } from '../pubsub-push';

export interface MaterializeDependencies {
  /** Persistence mode of a network: `immediate` writes now; the others keep the write pending. */
  persistModeFor(networkId: string): PersistOn;
  pending: PendingWrites;
  batches?: BatchScheduler;
  /** Where snapshot requests go: tasks for the snapshot function. */
  snapshots?: FunctionTasks;
  /** Failed attempts at one message before it is filed as a dead letter and acknowledged. */
  maxAttempts: number;
  state: Materializer;
  changes: ChangePublisher;
  deadLetters: DeadLetterStore;
  content: ContentStore;
  logger: Logger;
}

/** Errors that no retry can fix (one rule for every function): the event is recorded as a dead letter and acknowledged. */
export { isPermanent };

export class UnapplicableEventError extends SpineError {
  constructor(type: string) {
    super('INVALID_EVENT', `event type ${type} is not applied by materialize`);
  }
}

function schedulerOf({ batches }: MaterializeDependencies): BatchScheduler {
  if (!batches) throw new Error('batched persistence needs the persist function URL (SPINE_FUNCTION_URLS)');
  return batches;
}

/**
 * Events this call hands on instead of applying: flush and snapshot requests become their tasks,
 * a batched network's writes go to the pending buffer (one publish and, once per window, one
 * task; the state write waits for the flush). True when the event was handed on.
 */
async function handOff(
  deps: MaterializeDependencies,
  event: AnySpineEvent,
  message: { data: string; attributes: Record<string, string>; id?: string },
): Promise<boolean> {
  const { snapshots, pending, persistModeFor } = deps;
  if (event.type === EventType.FlushRequested) {
    await schedulerOf(deps).flushNow(event.data.networkId);
    return true;
  }
  if (event.type === EventType.SnapshotRequested) {
    if (!snapshots) throw new Error('snapshot requests need the snapshot function URL (SPINE_FUNCTION_URLS)');
    const d = event.data;
    // Named for the request, so a redelivered request makes no second snapshot task.
    const name = `snapshot-${createHash('sha256').update(`${d.networkId}/${d.snapshotId}`).digest('hex').slice(0, 40)}`;
    await snapshots.enqueue(
      {
        networkId: d.networkId,
        snapshotId: d.snapshotId,
        ...(d.label !== undefined ? { label: d.label } : {}),
        causeId: event.id,
        writerId: d.requestedBy,
      },
      { name },
    );
    return true;
  }
  if (event.type !== EventType.ContactWritten && event.type !== EventType.ContactsWritten) return false;
  const mode = persistModeFor(event.data.networkId);
  if (mode === 'immediate') return false;
  if (mode !== 'batch') {
    await pending.add(message);
    return true;
  }
  // The window of arrival: its flush runs after it closes, so a write is never left behind.
  const window = schedulerOf(deps).windowOf(Date.now());
  await pending.add(message, window);
  await schedulerOf(deps).book(event.data.networkId, event.data.groupId, window);
  return true;
}

async function readReferenced<T>(content: ContentStore, reference: ContentReference): Promise<T> {
  return decode<T>(await content.get(reference));
}

/** Which event caused an announcement, and its writer (so a writer can wait for its own writes). */
interface Cause {
  causeId: string;
  writerId: string;
}

/** One group's announcement; `unchanged` when the event changed nothing there (a redelivery, or lost to a newer write). */
function groupChanged(
  cause: Cause,
  networkId: string,
  groupId: string,
  kind: GroupChangeKind,
  { unchanged = false, causes }: { unchanged?: boolean; causes?: GroupChangedData['causes'] } = {},
): Change {
  return {
    type: EventType.GroupChanged,
    data: {
      networkId,
      groupId,
      kind,
      ...cause,
      ...(causes ? { causes } : {}),
      ...(unchanged ? { unchanged } : {}),
    },
  };
}

/** The network's own announcement, after those of its groups. */
function networkChanged(cause: Cause, networkId: string, kind: GroupChangeKind, unchanged: boolean): Change {
  return {
    type: EventType.NetworkChanged,
    data: { networkId, kind, ...cause, ...(unchanged ? { unchanged } : {}) },
  };
}

/** What one event changes in the state, applied, as the announcements to publish. */
async function applyEvent(deps: MaterializeDependencies, event: AnySpineEvent): Promise<Change[]> {
  const { state, content } = deps;
  const loadReferenced = <T>(reference: ContentReference) => readReferenced<T>(content, reference);
  switch (event.type) {
    case EventType.ContactWritten: {
      const d = event.data;
      const cause = { causeId: event.id, writerId: d.writerId };
      const [outcome] = await state.applyContactWrites(
        d.networkId,
        d.groupId,
        await contactWritesOf(event, loadReferenced),
      );
      const unchanged = !(outcome!.contentChanged || outcome!.contradiction);
      return [groupChanged(cause, d.networkId, d.groupId, 'updated', { unchanged })];
    }
    case EventType.ContactsWritten: {
      // The bundle is one group write; each write in it is still applied at most once by its own (writerId, seq).
      const d = event.data;
      const cause = { causeId: event.id, writerId: d.writerId };
      const outcomes = await state.applyContactWriteBatch(
        d.networkId,
        d.groupId,
        await contactWritesOf(event, loadReferenced),
      );
      const unchanged = !outcomes.some((o) => o.contentChanged || o.contradiction);
      const causes = d.writes.map((w) => ({ eventId: w.id, writerId: d.writerId }));
      return [groupChanged(cause, d.networkId, d.groupId, 'updated', { unchanged, causes })];
    }
    case EventType.GroupSaved: {
      const d = event.data;
      const cause = { causeId: event.id, writerId: d.writerId };
      const groupState = d.stateRef ? await loadReferenced<GroupState>(d.stateRef) : d.state!;
      const applied = await state.applyGroupSave(d.networkId, d.groupId, groupState, d);
      return [groupChanged(cause, d.networkId, d.groupId, 'updated', { unchanged: !applied })];
    }
    case EventType.GroupDeleted: {
      const d = event.data;
      const cause = { causeId: event.id, writerId: d.writerId };
      const removed = await state.applyGroupDelete(d.networkId, d.groupId, d);
      const ids = removed.length ? removed : [d.groupId];
      return ids.map((groupId) =>
        groupChanged(cause, d.networkId, groupId, 'deleted', { unchanged: removed.length === 0 }),
      );
    }
    case EventType.NetworkSaved: {
      const d = event.data;
      const cause = { causeId: event.id, writerId: d.writerId };
      const networkState = d.stateRef ? await loadReferenced<NetworkState>(d.stateRef) : d.state!;
      const outcome = await state.applyNetworkSave(d.networkId, networkState, d);
      return [
        ...(outcome?.written ?? []).map((groupId) => groupChanged(cause, d.networkId, groupId, 'updated')),
        ...(outcome?.removed ?? []).map((groupId) => groupChanged(cause, d.networkId, groupId, 'deleted')),
        networkChanged(cause, d.networkId, 'updated', !outcome),
      ];
    }
    case EventType.NetworkDeleted: {
      const d = event.data;
      const cause = { causeId: event.id, writerId: d.writerId };
      const groups = await state.applyNetworkDelete(d.networkId, d);
      return [
        ...(groups ?? []).map((groupId) => groupChanged(cause, d.networkId, groupId, 'deleted')),
        networkChanged(cause, d.networkId, 'deleted', !groups),
      ];
    }
    default:
      throw new UnapplicableEventError(event.type);
  }
}

/**
 * Applies one contact-write event to the state store with the blend semantics, then announces
 * what changed. Idempotent under redelivery (writes are de-duplicated by writer and sequence)
 * and convergent under reordering (clock stamps decide). Throws only for transient failures,
 * so Pub/Sub redelivers; unapplicable events become dead letters.
 */
export function createMaterializeHandler(deps: MaterializeDependencies) {
  const { changes, deadLetters, logger, maxAttempts } = deps;
  return async function materialize(cloudEvent: CloudEvent<PubSubPushData>): Promise<void> {
    const message = pushedMessage(cloudEvent);
    const log = logger.child({ messageId: message.id, path: message.attributes.path });
    try {
      const event = fromPubSubMessage({ data: message.data, attributes: message.attributes });
      if (await handOff(deps, event, message)) return;
      const announced = await applyEvent(deps, event);
      await changes.publish(announced);
      log.debug('materialized', { type: event.type, eventId: event.id });
    } catch (error) {
      const reason = (error as Error).message;
      if (isPermanent(error)) {
        await deadLetters.record({
          id: message.id,
          reason,
          source: 'materialize',
          attributes: message.attributes,
          data: message.data,
          orderingKey: message.attributes.path,
        });
        log.warn('event refused and recorded as a dead letter', { reason });
        return;
      }
      // Counted here rather than left to the subscription's dead-letter policy alone: the
      // emulator's dead-letter forwarding crashes its push loop, so the local mesh provisions no
      // policy (its relay counts attempts as a backstop), and the count must hold there too.
      const attempts = await deadLetters.countFailure(message.id);
      if (attempts < maxAttempts) {
        log.warn('materialize failed; Pub/Sub will redeliver', { error, attempts });
        throw error;
      }
      await deadLetters.record({
        id: message.id,
        reason: `not applied after ${attempts} delivery attempts: ${reason}`,
        source: 'delivery-attempts',
        deliveryAttempts: attempts,
        attributes: message.attributes,
        data: message.data,
        orderingKey: message.attributes.path,
      });
      log.error('event dead-lettered after repeated failures', { reason, attempts });
    }
  };
}
