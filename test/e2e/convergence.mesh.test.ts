/**
 * Whole-group operations against contact writes under reorder through the whole local mesh
 * (the official Pub/Sub emulator pushing to the functions, state in the Storage emulator): the
 * stamped events of a random scenario are published in a random order with duplicates, and the
 * materialized state must equal the stamp-ordered model (see test/helpers/convergence.ts). And a
 * snapshot restore under a backlog of older merges: none of them survive it, and a restore that
 * outlives its wait says it is still being applied, then completes.
 */
import { randomUUID } from 'node:crypto';
import type { Topic } from '@google-cloud/pubsub';
import fc from 'fast-check';
import { canonicalize } from '../../shared/codec';
import {
  createEvent,
  EventType,
  growSet,
  RestoreStillApplyingError,
  type AnySpineEvent,
  type NetworkState,
} from 'super-spine';
import { HybridLogicalClock } from '../../shared/hlc';
import { toPubSubMessage } from '../../shared/events';
import { eventually } from 'super-spine/testing';
import {
  describeModel,
  expectConverged,
  modelFromNetworkState,
  runScenario,
  scenarios,
  type ConvergenceTarget,
  type Delivery,
  type Operation,
} from '../helpers/convergence';
import { useLocalMesh } from '../helpers/mesh';

jest.setTimeout(600_000);

const mesh = useLocalMesh();
const SOURCE = '//test/convergence';

function writesTopic(): Topic {
  return mesh.pubsub.topic(mesh.mesh.topology.topics.contactWrites.name, { messageOrdering: true });
}

async function publish(topic: Topic, event: AnySpineEvent): Promise<void> {
  const message = toPubSubMessage(event);
  await topic.publishMessage({
    data: message.data,
    attributes: { ...message.attributes },
    orderingKey: message.orderingKey,
  });
}

/** Operations as the events a SpineStorage client would publish for them; a duplicate delivery is the same event again. */
function meshTarget(topic: Topic): ConvergenceTarget {
  const state = mesh.client().state;
  const eventIds = new Map<Operation, string>();
  const snapshots = new Map<string, NetworkState>();
  const idOf = (op: Operation) => eventIds.get(op) ?? (eventIds.set(op, randomUUID()), eventIds.get(op)!);
  const eventsOf = (networkId: string, delivery: Delivery, snapshotId: string): AnySpineEvent[] => {
    switch (delivery.kind) {
      case 'write': {
        const { write } = delivery;
        const data = {
          networkId,
          groupId: delivery.groupId,
          contactId: delivery.contactId,
          content: write.content,
          blendMode: write.blendMode,
          stamp: write.stamp,
          writerId: write.writerId,
          seq: write.seq,
        };
        return [createEvent(EventType.ContactWritten, data, { source: SOURCE, id: idOf(delivery) })];
      }
      case 'bundle': {
        // A bundle carries one writer's writes.
        const byWriter = new Map<string, typeof delivery.writes>();
        for (const w of delivery.writes) byWriter.set(w.write.writerId, [...(byWriter.get(w.write.writerId) ?? []), w]);
        return [...byWriter].flatMap(([writerId, writes]) =>
          writes.length === 1
            ? eventsOf(networkId, writes[0]!, snapshotId)
            : [
                createEvent(
                  EventType.ContactsWritten,
                  {
                    networkId,
                    groupId: delivery.groupId,
                    writerId,
                    writes: writes.map((w) => ({
                      id: idOf(w),
                      contactId: w.contactId,
                      content: w.write.content,
                      blendMode: w.write.blendMode,
                      seq: w.write.seq,
                      stamp: w.write.stamp,
                    })),
                  },
                  { source: SOURCE },
                ),
              ],
        );
      }
      case 'groupSave':
        return [
          createEvent(
            EventType.GroupSaved,
            { networkId, groupId: delivery.groupId, state: delivery.state, ...delivery.origin },
            { source: SOURCE, id: idOf(delivery) },
          ),
        ];
      case 'groupDelete':
        return [
          createEvent(
            EventType.GroupDeleted,
            { networkId, groupId: delivery.groupId, ...delivery.origin },
            { source: SOURCE, id: idOf(delivery) },
          ),
        ];
      case 'networkSave':
        return [
          createEvent(
            EventType.NetworkSaved,
            { networkId, state: delivery.state, ...delivery.origin },
            { source: SOURCE, id: idOf(delivery) },
          ),
        ];
      case 'networkDelete':
        return [
          createEvent(
            EventType.NetworkDeleted,
            { networkId, ...delivery.origin },
            { source: SOURCE, id: idOf(delivery) },
          ),
        ];
      case 'restore':
        // What SpineStorage.restoreSnapshot publishes: the snapshot's state as a stamped network save.
        return [
          createEvent(
            EventType.NetworkSaved,
            { networkId, state: snapshots.get(snapshotId)!, ...delivery.origin },
            { source: SOURCE, id: idOf(delivery) },
          ),
        ];
    }
  };
  return {
    async deliver(networkId, delivery, snapshotId) {
      for (const event of eventsOf(networkId, delivery, snapshotId)) await publish(topic, event);
    },
    async read(networkId, expected) {
      return eventually(
        async () => {
          const actual = modelFromNetworkState(await state.loadNetworkState(networkId));
          expectConverged(actual, expected);
          return actual;
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
    },
    saveSnapshot: (networkId) => mesh.client().saveSnapshot(networkId),
    async loadSnapshot(networkId, snapshotId) {
      const snapshot = await state.loadSnapshot(networkId, snapshotId);
      snapshots.set(snapshotId, snapshot);
      return snapshot;
    },
  };
}

describe('whole-group operations converge under reorder (mesh)', () => {
  it('random writes, saves, deletes and restores published in any order with duplicates materialize as the stamp-ordered model', async () => {
    const topic = writesTopic();
    await fc.assert(
      fc.asyncProperty(scenarios({ minOperations: 20, maxOperations: 40 }), async (scenario) => {
        await runScenario(meshTarget(topic), `converge-${randomUUID().slice(0, 8)}`, scenario);
      }),
      { numRuns: 3, endOnFailure: true },
    );
  });

  it('a restore under a backlog of older merges: none survives it, and a restore that outlives its wait reports it is still being applied, then completes', async () => {
    const network = `restore-backlog-${randomUUID().slice(0, 8)}`;
    const spine = mesh.client();
    await spine.saveContactContent(network, 'g', 'c', growSet(['snapshotted']), {
      blendMode: 'merge',
      wait: 'materialized',
    });
    const snapshotId = await spine.saveSnapshot(network);
    const snapshot = await spine.loadSnapshot(network, snapshotId);

    // Merges stamped before the restore, half published before it and half after.
    const topic = writesTopic();
    const late = new HybridLogicalClock('backlog-writer', () => Date.now() - 5_000);
    const backlog = Array.from({ length: 400 }, (_, i) =>
      createEvent(
        EventType.ContactWritten,
        {
          networkId: network,
          groupId: 'g',
          contactId: 'c',
          content: growSet([`older-${i}`]),
          blendMode: 'merge' as const,
          stamp: late.tick(),
          writerId: 'backlog-writer',
          seq: i + 1,
        },
        { source: SOURCE },
      ),
    );
    for (const event of backlog.slice(0, 200)) await publish(topic, event);
    const restoring = spine.restoreSnapshot(network, snapshotId, { timeoutMs: 1 });
    for (const event of backlog.slice(200)) await publish(topic, event);

    const error = await restoring.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RestoreStillApplyingError);
    expect(error).toMatchObject({ code: 'STILL_APPLYING', networkId: network, snapshotId });
    expect((error as Error).message).toContain('still being applied');
    await (error as RestoreStillApplyingError).applied;

    // Published after the backlog on the same ordering key, so materialized after it.
    const after = new HybridLogicalClock('after-writer');
    await publish(
      topic,
      createEvent(
        EventType.ContactWritten,
        {
          networkId: network,
          groupId: 'g',
          contactId: 'c',
          content: growSet(['after the restore']),
          blendMode: 'merge' as const,
          stamp: after.tick(),
          writerId: 'after-writer',
          seq: 1,
        },
        { source: SOURCE },
      ),
    );
    const expected = canonicalize(growSet(['snapshotted', 'after the restore']));
    await eventually(
      async () => expect(canonicalize(await spine.loadContactContent(network, 'g', 'c'))).toBe(expected),
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    const state = modelFromNetworkState(await spine.loadNetworkState(network));
    expect(describeModel(state)).toEqual(
      describeModel(
        new Map([
          [
            'g',
            {
              name: snapshot.groups.get('g')!.group.name,
              contacts: new Map([
                ['c', { blendMode: 'merge', content: growSet(['snapshotted', 'after the restore']) }],
              ]),
            },
          ],
        ]),
      ),
    );
  });
});
