/** `spine dlq list|replay`: messages the mesh could not apply, kept in the bucket. */
import type { Topic } from '@google-cloud/pubsub';
import { DeadLetterStore, type DeadLetter } from '../../shared/mesh/dead-letters';
import { defineTopology, type Topology } from '../../shared/topology';
import { emulatorEndpoints, probeEndpoints, resolveConnection, storageClient } from '../connection';
import { UsageError } from '../errors';
import { printJson, printTable, truncate } from '../output';
import { parseCommand } from '../options';

export const DLQ_USAGE = `usage: spine dlq list [--replayed] | spine dlq replay <id> [--topic NAME]

  dlq list             dead letters waiting, oldest first (--replayed: the ones replayed)
  dlq replay <id>      publish the original message again to the topic it came from (the
                       contact-writes topic unless its subscription says otherwise, or --topic),
                       then file the letter as replayed`;

export async function dlq(argv: string[]): Promise<void> {
  const { positionals, values, common, help } = parseCommand(argv, {
    usage: DLQ_USAGE,
    positionals: ['action', 'id?'],
    options: { replayed: { type: 'boolean' }, topic: { type: 'string' } },
  });
  if (help) return void console.log(DLQ_USAGE);
  const [action, id] = positionals as [string, string?];
  if (action === 'list') {
    if (id !== undefined) throw new UsageError(`dlq list takes no id (${DLQ_USAGE.split('\n')[0]})`);
    if (values.topic !== undefined) throw new UsageError('--topic is for dlq replay');
  } else if (action === 'replay') {
    if (id === undefined) throw new UsageError('dlq replay needs the id of a dead letter (spine dlq list shows them)');
    if (values.replayed) throw new UsageError('--replayed is for dlq list');
  } else {
    throw new UsageError(`unknown dlq action ${JSON.stringify(action)}: expected list or replay`);
  }

  const connection = await resolveConnection(common);
  const { settings } = connection;
  await probeEndpoints(
    emulatorEndpoints(settings).filter((e) => action === 'replay' || e.part === 'storage'),
    connection.origin,
  );
  const store = new DeadLetterStore(storageClient(settings), settings.bucket);
  if (action === 'list') {
    const letters = await store.list({ replayed: values.replayed === true });
    if (common.json) return printJson(letters);
    if (letters.length === 0) return void console.log(values.replayed ? 'no replayed dead letters' : 'no dead letters');
    printTable(
      ['ID', 'RECORDED', 'SOURCE', 'PATH', 'REASON'],
      letters.map((l) => [
        l.id,
        values.replayed ? `${l.recordedAt} (replayed ${l.replayedAt ?? '?'})` : l.recordedAt,
        l.source,
        l.attributes.path ?? l.orderingKey ?? '',
        truncate(l.reason, 100),
      ]),
    );
    return;
  }
  const letter = await store.get(id!);
  const topology = defineTopology({
    projectId: settings.projectId,
    prefix: settings.topicPrefix,
    bucket: settings.bucket,
  });
  const topicName = values.topic ?? originalTopic(topology, letter);
  // Only a replay publishes, so only a replay loads the Pub/Sub client.
  const { createPubSubClient } = require('../../shared/mesh/clients') as typeof import('../../shared/mesh/clients');
  const pubsub = createPubSubClient(settings);
  try {
    // Ordered like the mesh's own publishes, since letters keep their ordering key.
    const topic: Topic = pubsub.topic(topicName, { messageOrdering: true });
    const replayed = await store.replay(letter.id, topic);
    if (common.json) printJson({ id: replayed.id, topic: topicName, replayedAt: replayed.replayedAt });
    else console.log(`replayed ${replayed.id} to ${topicName}`);
  } finally {
    await pubsub.close();
  }
}

/** The topic of the subscription the letter failed on; contact writes when it is not known. */
export function originalTopic(topology: Topology, letter: DeadLetter): string {
  const subscription = letter.subscription?.split('/').pop();
  const spec = subscription ? Object.values(topology.subscriptions).find((s) => s.name === subscription) : undefined;
  return spec?.topic ?? topology.topics.contactWrites.name;
}
