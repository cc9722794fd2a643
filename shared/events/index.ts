export * from './types';
export { createEvent, validateEvent, subjectOf, type CreateEventOptions } from './schema';
export {
  toPubSubMessage,
  encodePubSubMessage,
  fromPubSubMessage,
  attributeValue,
  orderingKeyFor,
  MAX_MESSAGE_BYTES,
  MAX_ATTRIBUTE_BYTES,
  type SpineMessage,
  type SpineMessageAttributes,
} from './pubsub';
export { contactWritesOf, isContactWriteEvent, type ContactWriteEvent, type EventContactWrite } from './contact-writes';
