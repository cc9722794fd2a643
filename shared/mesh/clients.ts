import { PubSub } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import type { SpineSettings } from '../settings';

/**
 * Official clients configured for the settings: against the emulators when their hosts are
 * set (no credentials needed), against Google Cloud otherwise. The Storage client does not
 * retry by itself: GcsStorage retries with its own backoff, and functions fail so Pub/Sub redelivers.
 */
export function createPubSubClient(settings: Pick<SpineSettings, 'projectId' | 'pubsubEmulatorHost'>): PubSub {
  if (settings.pubsubEmulatorHost) {
    return new PubSub({ projectId: settings.projectId, apiEndpoint: settings.pubsubEmulatorHost, emulatorMode: true });
  }
  return new PubSub({ projectId: settings.projectId });
}

export function createStorageClient(settings: Pick<SpineSettings, 'projectId' | 'storageEmulatorHost'>): Storage {
  if (settings.storageEmulatorHost) {
    return new Storage({ projectId: settings.projectId, apiEndpoint: settings.storageEmulatorHost, retryOptions: { autoRetry: false } });
  }
  return new Storage({ projectId: settings.projectId, retryOptions: { autoRetry: false } });
}
