import * as functions from '@google-cloud/functions-framework';
import type { PubSubPushData } from '../pubsub-push';
import { persistModeFor } from '../../shared/settings';
import { runtime } from '../runtime';
import { createMaterializeHandler } from './handler';

let handler: ReturnType<typeof createMaterializeHandler> | undefined;

functions.cloudEvent<PubSubPushData>('materialize', (cloudEvent: functions.CloudEvent<PubSubPushData>) => {
  const current = runtime();
  handler ??= createMaterializeHandler({
    ...current,
    maxAttempts: current.topology.functions.materialize.maxAttempts ?? 5,
    persistModeFor: (networkId) => persistModeFor(current.settings, networkId),
    logger: current.logger.child({ function: 'materialize' }),
  });
  return handler(cloudEvent);
});
