/**
 * The Pub/Sub endpoint the local mesh gives its clients: a gRPC pass-through in front of the
 * official emulator. Every method of the Publisher, Subscriber and SchemaService is forwarded as
 * bytes; a Publish to a journaled topic is acknowledged only once the journal holds it (fsync'd),
 * and the acknowledgements `persist` gives on the pending subscription mark its messages done.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from '../shared/log';
import { readingOf, type AcceptedJournal, type JournaledMessage } from './accepted-journal';

const SERVICES = ['google.pubsub.v1.Publisher', 'google.pubsub.v1.Subscriber', 'google.pubsub.v1.SchemaService'];
const identity = (value: Buffer) => value;

let definitions: protoLoader.PackageDefinition | undefined;
function pubsubDefinitions(): protoLoader.PackageDefinition {
  const protos = path.join(path.dirname(require.resolve('@google-cloud/pubsub')), '..', 'protos');
  const common = path.join(path.dirname(require.resolve('google-gax')), '..', 'protos');
  definitions ??= protoLoader.loadSync(['google/pubsub/v1/pubsub.proto', 'google/pubsub/v1/schema.proto'], {
    includeDirs: [protos, common],
    longs: String,
    defaults: false,
  });
  return definitions;
}

function method(service: string, name: string): protoLoader.MethodDefinition<object, object> {
  return (pubsubDefinitions()[service] as protoLoader.ServiceDefinition)[name]!;
}

interface PublishRequest {
  topic: string;
  messages?: Array<{ data?: Buffer; attributes?: Record<string, string>; orderingKey?: string }>;
}

export interface PubSubProxyOptions {
  /** The emulator, `host:port`. */
  upstream: string;
  /** 0: a free port. */
  port: number;
  journal: AcceptedJournal;
  /** Full topic paths whose publishes are journaled. */
  journaledTopics: ReadonlySet<string>;
  /**
   * Of those, topics whose messages are derived from a journaled message that is marked done only
   * after they are written (pending copies, dead letters): acknowledged once written, without
   * waiting for their own fsync (see `AcceptedJournal.append`).
   */
  derivedTopics: ReadonlySet<string>;
  /** Full subscription paths whose acknowledgements mark their messages done. */
  ackedSubscriptions: ReadonlySet<string>;
  /**
   * Of the derived topics, those whose messages name their source in this attribute: such a
   * message is not journaled; it holds its source not done until it is acknowledged (see
   * `AcceptedJournal.hold`). A message without the attribute is journaled as derived.
   */
  sourceAttributes?: ReadonlyMap<string, string>;
  /**
   * Per journaled topic, a subscription of the mesh's own that must also read every message (the
   * archiver's): an entry is done only once it acknowledged it too, so a crash before the archive
   * holds a message replays it. Its pulls and acknowledgements must come through this pass-through.
   */
  secondReaders?: ReadonlyMap<string, string>;
  logger: Logger;
}

export interface PubSubProxy {
  /** `127.0.0.1:port`, for PUBSUB_EMULATOR_HOST. */
  readonly host: string;
  /** Calls wait until this is called (the journal's replay comes first). */
  open(): void;
  /** From now on publishes to these topics are refused (UNAVAILABLE: not accepted, the client may retry). */
  refusePublishesTo(topics: ReadonlySet<string>): void;
  stop(): Promise<void>;
}

export async function startPubSubProxy(options: PubSubProxyOptions): Promise<PubSubProxy> {
  const { journal, logger } = options;
  const client = new grpc.Client(options.upstream, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
  });
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let refused: ReadonlySet<string> = new Set();
  // Which message (or second reading of one) an ack id stands for, on the subscriptions whose acks mark messages done.
  const ackIds = new Map<string, string>();
  const readerSubscriptions = {
    has(subscription: string): boolean {
      for (const reader of options.secondReaders?.values() ?? []) if (reader === subscription) return true;
      return false;
    },
  };

  const publishRequest = method('google.pubsub.v1.Publisher', 'Publish');
  const pullMethod = method('google.pubsub.v1.Subscriber', 'Pull');
  const ackMethod = method('google.pubsub.v1.Subscriber', 'Acknowledge');

  const forwardUnary = (methodPath: string, request: Buffer, deadline: grpc.Deadline | undefined): Promise<Buffer> =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest(
        methodPath,
        identity,
        identity,
        request,
        new grpc.Metadata(),
        deadline ? { deadline } : {},
        (error, response) => (error ? reject(error) : resolve(response!)),
      ),
    );

  /** Publish: journaled topics are forwarded, then written to the journal, then acknowledged. */
  async function publish(request: Buffer, deadline: grpc.Deadline | undefined): Promise<Buffer> {
    const decoded = publishRequest.requestDeserialize(request) as PublishRequest;
    if (refused.has(decoded.topic))
      throw { code: grpc.status.UNAVAILABLE, details: 'the local mesh is stopping: publish again once it runs' };
    const response = await forwardUnary(publishRequest.path, request, deadline);
    if (!options.journaledTopics.has(decoded.topic)) return response;
    const { messageIds = [] } = publishRequest.responseDeserialize(response) as { messageIds?: string[] };
    const sourceAttribute = options.sourceAttributes?.get(decoded.topic);
    const messages = (decoded.messages ?? []).map((message, index) => ({ message, index }));
    const copies = sourceAttribute ? messages.filter(({ message }) => message.attributes?.[sourceAttribute]) : [];
    for (const { message, index } of copies)
      journal.hold(journal.idOf(message.attributes![sourceAttribute!]!), journal.idOf(messageIds[index] ?? ''));
    const journaled = copies.length
      ? messages.filter(({ message }) => !message.attributes?.[sourceAttribute!])
      : messages;
    if (!journaled.length) return response;
    const entries: JournaledMessage[] = journaled.map(({ message, index }) => ({
      id: journal.idOf(messageIds[index] ?? ''),
      topic: decoded.topic,
      data: Buffer.from(message.data ?? Buffer.alloc(0)).toString('base64'),
      attributes: message.attributes ?? {},
      ...(message.orderingKey ? { orderingKey: message.orderingKey } : {}),
    }));
    // Before anything awaits: the reader may acknowledge as soon as the emulator has the message.
    const reader = options.secondReaders?.get(decoded.topic);
    if (reader) for (const entry of entries) journal.hold(entry.id, readingOf(reader, entry.id));
    await journal.append(entries, { sync: !options.derivedTopics.has(decoded.topic) });
    return response;
  }

  async function pull(request: Buffer, deadline: grpc.Deadline | undefined): Promise<Buffer> {
    const { subscription } = pullMethod.requestDeserialize(request) as { subscription: string };
    const response = await forwardUnary(pullMethod.path, request, deadline);
    const reads = readerSubscriptions.has(subscription);
    if (reads || options.ackedSubscriptions.has(subscription)) {
      const { receivedMessages = [] } = pullMethod.responseDeserialize(response) as {
        receivedMessages?: Array<{ ackId: string; message?: { messageId?: string } }>;
      };
      for (const { ackId, message } of receivedMessages) {
        if (!message?.messageId) continue;
        const id = journal.idOf(message.messageId);
        ackIds.set(ackId, reads ? readingOf(subscription, id) : id);
      }
    }
    return response;
  }

  async function acknowledge(request: Buffer, deadline: grpc.Deadline | undefined): Promise<Buffer> {
    const response = await forwardUnary(ackMethod.path, request, deadline);
    const { subscription, ackIds: acked = [] } = ackMethod.requestDeserialize(request) as {
      subscription: string;
      ackIds?: string[];
    };
    if (options.ackedSubscriptions.has(subscription) || readerSubscriptions.has(subscription)) {
      const done: string[] = [];
      for (const ackId of acked) {
        const id = ackIds.get(ackId);
        if (id) done.push(id);
        ackIds.delete(ackId);
      }
      journal.markDone(done);
    }
    return response;
  }

  const special: Record<string, (request: Buffer, deadline: grpc.Deadline | undefined) => Promise<Buffer>> = {
    [publishRequest.path]: publish,
    [pullMethod.path]: pull,
    [ackMethod.path]: acknowledge,
  };

  const server = new grpc.Server({ 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
  for (const serviceName of SERVICES) {
    const service = pubsubDefinitions()[serviceName] as protoLoader.ServiceDefinition;
    const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const [name, spec] of Object.entries(service)) {
      definition[name] = {
        ...spec,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      } as grpc.MethodDefinition<Buffer, Buffer>;
      if (!spec.requestStream && !spec.responseStream) {
        const forward =
          special[spec.path] ??
          ((request: Buffer, deadline: grpc.Deadline | undefined) => forwardUnary(spec.path, request, deadline));
        handlers[name] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          const deadline = call.getDeadline();
          opened
            .then(() => forward(call.request, Number.isFinite(Number(deadline)) ? deadline : undefined))
            .then(
              (response) => callback(null, response),
              (error: Partial<grpc.ServiceError>) =>
                callback({
                  code: error.code ?? grpc.status.INTERNAL,
                  details: error.details ?? (error as Error).message ?? 'upstream failed',
                }),
            );
        };
      } else if (spec.requestStream && spec.responseStream) {
        handlers[name] = (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
          void opened.then(() => {
            const upstream = client.makeBidiStreamRequest(spec.path, identity, identity, new grpc.Metadata());
            call.on('data', (chunk: Buffer) => upstream.write(chunk));
            call.on('end', () => upstream.end());
            call.on('cancelled', () => upstream.cancel());
            call.on('error', () => upstream.cancel());
            upstream.on('data', (chunk: Buffer) => call.write(chunk));
            upstream.on('error', () => undefined);
            upstream.on('status', (status: grpc.StatusObject) => {
              if (status.code === grpc.status.OK) call.end();
              else call.emit('error', { code: status.code, details: status.details });
            });
          });
        };
      } else {
        throw new Error(`${spec.path}: a streaming shape the pass-through does not forward`);
      }
    }
    server.addService(definition as grpc.ServiceDefinition, handlers);
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${options.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  logger.info('Pub/Sub pass-through listening', { host: `127.0.0.1:${port}`, upstream: options.upstream });
  return {
    host: `127.0.0.1:${port}`,
    open: () => open(),
    refusePublishesTo(topics) {
      refused = topics;
    },
    async stop() {
      open();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      client.close();
    },
  };
}
