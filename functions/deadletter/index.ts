import * as functions from '@google-cloud/functions-framework';
import type { PubSubPushData } from '../pubsub-push';
import { runtime } from '../runtime';
import { createDeadLetterHandler } from './handler';

let handler: ReturnType<typeof createDeadLetterHandler> | undefined;

functions.cloudEvent<PubSubPushData>('deadletter', (cloudEvent: functions.CloudEvent<PubSubPushData>) => {
  const current = runtime();
  handler ??= createDeadLetterHandler({ deadLetters: current.deadLetters, logger: current.logger.child({ function: 'deadletter' }) });
  return handler(cloudEvent);
});
