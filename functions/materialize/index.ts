import * as functions from '@google-cloud/functions-framework';
import type { PubSubPushData } from '../pubsub-push';
import { persistModeFor } from '../../shared/settings';
import { runtime } from '../runtime';
import { createMaterializeHandler } from './handler';

// Built at load, so a misconfiguration fails the instance's start instead of every request.
const current = runtime();
const handler = createMaterializeHandler({
  ...current,
  maxAttempts: current.topology.functions.materialize.maxAttempts ?? 5,
  persistModeFor: (networkId) => persistModeFor(current.settings, networkId),
  logger: current.logger.child({ function: 'materialize' }),
});

functions.cloudEvent<PubSubPushData>('materialize', (cloudEvent: functions.CloudEvent<PubSubPushData>) =>
  handler(cloudEvent),
);
