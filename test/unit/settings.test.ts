import { defineTopology } from '../../shared/topology';
import { InvalidArgumentError } from 'super-spine';
import { loadSettings, persistModeFor } from '../../shared/settings';

describe('loadSettings', () => {
  it('has defaults for every setting', () => {
    const settings = loadSettings({});
    expect(settings).toMatchObject({
      projectId: 'spine-local',
      topicPrefix: 'spine-',
      bucket: 'spine-local-spine-state',
      statePrefix: '',
      stateStore: 'gcs',
      persistOn: 'immediate',
      persistOverrides: {},
      batchWindowMs: 1_000,
      intervalMs: 60_000,
      maxSnapshots: 24,
      tasksLocation: 'us-central1',
    });
    expect(settings.pubsubEmulatorHost).toBeUndefined();
  });

  it('reads the environment', () => {
    const settings = loadSettings({
      GOOGLE_CLOUD_PROJECT: 'my-project',
      SPINE_TOPIC_PREFIX: 'prod-',
      SPINE_BUCKET: 'my-bucket',
      SPINE_PERSIST_ON: 'batch',
      SPINE_PERSIST_OVERRIDES: '{"hot":"immediate","cold":"manual"}',
      SPINE_BATCH_WINDOW_MS: '2500',
      SPINE_INTERVAL_MS: '300000',
      PUBSUB_EMULATOR_HOST: '127.0.0.1:8085',
      STORAGE_EMULATOR_HOST: 'http://127.0.0.1:9023/',
      SPINE_FUNCTION_URLS: '{"persist":"http://127.0.0.1:9000"}',
    });
    expect(settings).toMatchObject({
      projectId: 'my-project',
      topicPrefix: 'prod-',
      bucket: 'my-bucket',
      persistOn: 'batch',
      batchWindowMs: 2500,
      intervalMs: 300_000,
    });
    expect(settings.storageEmulatorHost).toBe('http://127.0.0.1:9023');
    expect(settings.functionUrls.persist).toBe('http://127.0.0.1:9000');
    expect(persistModeFor(settings, 'hot')).toBe('immediate');
    expect(persistModeFor(settings, 'cold')).toBe('manual');
    expect(persistModeFor(settings, 'other')).toBe('batch');
  });

  it.each([
    ['SPINE_TOPIC_PREFIX', { SPINE_TOPIC_PREFIX: 'Bad Prefix' }],
    ['SPINE_BUCKET', { SPINE_BUCKET: 'UPPER' }],
    ['SPINE_PERSIST_ON', { SPINE_PERSIST_ON: 'sometimes' }],
    ['SPINE_PERSIST_OVERRIDES', { SPINE_PERSIST_OVERRIDES: '{"net":"never"}' }],
    ['SPINE_PERSIST_OVERRIDES', { SPINE_PERSIST_OVERRIDES: 'not json' }],
    ['SPINE_BATCH_WINDOW_MS', { SPINE_BATCH_WINDOW_MS: '-5' }],
    ['SPINE_INTERVAL_MS', { SPINE_INTERVAL_MS: '90000' }],
    ['SPINE_INTERVAL_MS', { SPINE_INTERVAL_MS: '420000' }],
    ['SPINE_STATE_PATH', { SPINE_STATE_STORE: 'filesystem' }],
    ['SPINE_STATE_STORE', { SPINE_STATE_STORE: 'floppy' }],
    ['PUBSUB_EMULATOR_HOST', { PUBSUB_EMULATOR_HOST: 'localhost' }],
    ['GOOGLE_CLOUD_PROJECT', { GOOGLE_CLOUD_PROJECT: 'x' }],
  ])('refuses a bad %s with an error naming it', (variable, env) => {
    expect(() => loadSettings(env)).toThrow(InvalidArgumentError);
    expect(() => loadSettings(env)).toThrow(new RegExp(`setting ${variable}=`));
  });
});

describe('the interval flush job follows SPINE_INTERVAL_MS', () => {
  it.each([
    [60_000, '* * * * *'],
    [300_000, '*/5 * * * *'],
    [7_200_000, '0 */2 * * *'],
  ])('%i ms runs on %s', (intervalMs, schedule) => {
    const topology = defineTopology({ projectId: 'p-123456', bucket: 'b', persistIntervalMs: intervalMs });
    expect(topology.jobs.find((job) => job.name === 'spine-persist-interval')?.schedule).toBe(schedule);
  });
});
