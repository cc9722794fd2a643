import { Storage } from '@google-cloud/storage';
import type { SpineSettings } from '../settings';

/**
 * The Cloud Storage client for the settings: the emulator when its host is set, Google Cloud
 * otherwise. It does not retry by itself: GcsStorage retries with its own backoff, and functions
 * fail so Pub/Sub redelivers. Apart from the other clients so readers load only this one.
 */
export function createStorageClient(settings: Pick<SpineSettings, 'projectId' | 'storageEmulatorHost'>): Storage {
  if (settings.storageEmulatorHost) {
    return new Storage({
      projectId: settings.projectId,
      apiEndpoint: settings.storageEmulatorHost,
      retryOptions: { autoRetry: false },
    });
  }
  return new Storage({ projectId: settings.projectId, retryOptions: { autoRetry: false } });
}
