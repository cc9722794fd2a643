import * as grpc from '@grpc/grpc-js';
import { PubSub, v1 } from '@google-cloud/pubsub';
import { CloudTasksClient } from '@google-cloud/tasks';
import { splitHostPort, type SpineSettings } from '../settings';

export { createStorageClient } from './storage-client';

/**
 * Official clients configured for the settings: against the emulators when their hosts are
 * set (no credentials needed), against Google Cloud otherwise.
 */
export function createPubSubClient(settings: Pick<SpineSettings, 'projectId' | 'pubsubEmulatorHost'>): PubSub {
  if (settings.pubsubEmulatorHost) {
    return new PubSub({ projectId: settings.projectId, apiEndpoint: settings.pubsubEmulatorHost, emulatorMode: true });
  }
  return new PubSub({ projectId: settings.projectId });
}

/** Cloud Tasks client; against the emulator without credentials when CLOUD_TASKS_EMULATOR_HOST is set. */
export function createTasksClient(settings: Pick<SpineSettings, 'tasksEmulatorHost'>): CloudTasksClient {
  if (settings.tasksEmulatorHost) {
    const { host, port } = splitHostPort(settings.tasksEmulatorHost);
    // universeDomain stops the client from looking for Google credentials it does not need here.
    return new CloudTasksClient({
      servicePath: host,
      port,
      sslCreds: grpc.credentials.createInsecure(),
      universeDomain: 'googleapis.com',
    });
  }
  return new CloudTasksClient();
}

/** Pub/Sub's generated subscriber client, for synchronous pull (the high-level client only streams). */
export function createSubscriberClient(
  settings: Pick<SpineSettings, 'projectId' | 'pubsubEmulatorHost'>,
): InstanceType<typeof v1.SubscriberClient> {
  if (settings.pubsubEmulatorHost) {
    const { host, port } = splitHostPort(settings.pubsubEmulatorHost);
    return new v1.SubscriberClient({
      servicePath: host,
      port,
      sslCreds: grpc.credentials.createInsecure(),
      projectId: settings.projectId,
      universeDomain: 'googleapis.com',
    });
  }
  return new v1.SubscriberClient({ projectId: settings.projectId });
}
