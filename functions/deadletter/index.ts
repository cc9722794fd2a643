import * as functions from '@google-cloud/functions-framework';
import type { PubSubPushData } from '../pubsub-push';
import { runtime } from '../runtime';
import { createDeadLetterHandler } from './handler';

// Built at load, so a misconfiguration fails the instance's start instead of every request.
const current = runtime();
const handler = createDeadLetterHandler({
  deadLetters: current.deadLetters,
  logger: current.logger.child({ function: 'deadletter' }),
});

functions.cloudEvent<PubSubPushData>('deadletter', (cloudEvent: functions.CloudEvent<PubSubPushData>) =>
  handler(cloudEvent),
);
