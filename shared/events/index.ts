export * from './types';
export { createEvent, validateEvent, subjectOf, type CreateEventOptions } from './schema';
export { toPubSubMessage, fromPubSubMessage, MAX_MESSAGE_BYTES, type SpineMessage, type SpineMessageAttributes } from './pubsub';
