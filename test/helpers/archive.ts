/** The event archive of a test mesh started with its archiver, and publishing on its contact-writes topic as a writer would. */
import { encodePubSubMessage } from '../../shared/events';
import type { AnySpineEvent } from '../../shared/events/types';
import { ArchiveReader } from '../../shared/history/archive-reader';
import type { MeshHandle } from './mesh';

/** A reader of the mesh's archive, with the layout and batch window its topology gives. */
export function archiveOf(mesh: MeshHandle): ArchiveReader {
  const { topology, settings } = mesh.mesh;
  return new ArchiveReader(mesh.storage, settings.bucket, topology.archive, {
    maxBatchMs: topology.archive.maxDurationSeconds * 1000,
  });
}

/** Publishes an event to the contact-writes topic as a writer would (the same message twice is a redelivery). */
export async function publishEvent(mesh: MeshHandle, event: AnySpineEvent): Promise<void> {
  const message = encodePubSubMessage(event);
  await mesh.pubsub
    .topic(mesh.mesh.topology.topics.contactWrites.name, { messageOrdering: true })
    .publishMessage({ data: message.data, attributes: { ...message.attributes }, orderingKey: message.orderingKey });
}
