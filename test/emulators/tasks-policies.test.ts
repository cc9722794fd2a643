import { status } from '@grpc/grpc-js';
import { TasksEmulatorError } from '../../emulators/tasks/errors';
import { parseMainOptions } from '../../emulators/tasks/main';
import { parseQueueName, parseTaskName } from '../../emulators/tasks/names';
import { paginate } from '../../emulators/tasks/paging';
import { burstSizeFor, resolveQueueConfig } from '../../emulators/tasks/queue-config';
import { retriesExhausted, retryDelayMs } from '../../emulators/tasks/retry-policy';
import { TokenBucket } from '../../emulators/tasks/token-bucket';

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof TasksEmulatorError) return error.code;
    throw error;
  }
  return undefined;
}

describe('retry policy', () => {
  const config = {
    maxAttempts: 100,
    minBackoffMs: 10_000,
    maxBackoffMs: 300_000,
    maxDoublings: 3,
    maxRetryDurationMs: 0,
  };

  test('backoff doubles maxDoublings times, then grows linearly, capped at maxBackoff (the documented example)', () => {
    const delays = Array.from({ length: 9 }, (_, i) => retryDelayMs(config, i + 1) / 1000);
    expect(delays).toEqual([10, 20, 40, 80, 160, 240, 300, 300, 300]);
  });

  test('with the defaults the delay starts at 0.1 s and reaches the one-hour cap', () => {
    const defaults = {
      maxAttempts: 100,
      minBackoffMs: 100,
      maxBackoffMs: 3_600_000,
      maxDoublings: 16,
      maxRetryDurationMs: 0,
    };
    expect(retryDelayMs(defaults, 1)).toBe(100);
    expect(retryDelayMs(defaults, 2)).toBe(200);
    expect(retryDelayMs(defaults, 16)).toBe(100 * 2 ** 15);
    expect(retryDelayMs(defaults, 17)).toBe(3_600_000);
  });

  test('a task stops only once both maxAttempts and maxRetryDuration are reached; unlimited counts as reached', () => {
    const attemptsOnly = { ...config, maxAttempts: 3 };
    expect(retriesExhausted(attemptsOnly, 2, 0, 10)).toBe(false);
    expect(retriesExhausted(attemptsOnly, 3, 0, 10)).toBe(true);

    const both = { ...config, maxAttempts: 3, maxRetryDurationMs: 60_000 };
    expect(retriesExhausted(both, 5, 0, 30_000)).toBe(false);
    expect(retriesExhausted(both, 2, 0, 90_000)).toBe(false);
    expect(retriesExhausted(both, 3, 0, 60_000)).toBe(true);

    const durationOnly = { ...config, maxAttempts: -1, maxRetryDurationMs: 60_000 };
    expect(retriesExhausted(durationOnly, 1000, 0, 59_999)).toBe(false);
    expect(retriesExhausted(durationOnly, 2, 0, 60_000)).toBe(true);

    const forever = { ...config, maxAttempts: -1, maxRetryDurationMs: 0 };
    expect(retriesExhausted(forever, 10_000, 0, 1e12)).toBe(false);
  });
});

describe('token bucket', () => {
  test('starts full, then hands out tokens at the rate', () => {
    const bucket = new TokenBucket(10, 2, 0);
    expect(bucket.take(0)).toBe(0);
    expect(bucket.take(0)).toBe(0);
    expect(bucket.take(0)).toBe(100);
    expect(bucket.take(60)).toBe(40);
    expect(bucket.take(100)).toBe(0);
    // Idle time never stores more than the capacity.
    expect([bucket.take(10_000), bucket.take(10_000), bucket.take(10_000)]).toEqual([0, 0, 100]);
  });

  test('reconfiguring keeps earned tokens up to the new capacity', () => {
    const bucket = new TokenBucket(10, 5, 0);
    bucket.reconfigure(1, 1, 0);
    expect(bucket.take(0)).toBe(0);
    expect(bucket.take(0)).toBe(1000);
  });
});

describe('queue config', () => {
  test('unset and zero settings take the service defaults; the burst follows the rate', () => {
    const config = resolveQueueConfig({ rateLimits: { maxDispatchesPerSecond: 0 }, retryConfig: { maxAttempts: 0 } });
    expect(config.rateLimits).toEqual({
      maxDispatchesPerSecond: 500,
      maxBurstSize: 100,
      maxConcurrentDispatches: 1000,
    });
    expect(config.retryConfig).toEqual({
      maxAttempts: 100,
      minBackoffMs: 100,
      maxBackoffMs: 3_600_000,
      maxDoublings: 16,
      maxRetryDurationMs: 0,
    });
    expect([burstSizeFor(1), burstSizeFor(0.5), burstSizeFor(100), burstSizeFor(500)]).toEqual([1, 1, 20, 100]);
  });

  test('a mask changes only the fields it names, in snake_case or camelCase, ignoring output-only fields', () => {
    const base = resolveQueueConfig({ retryConfig: { maxAttempts: 7, minBackoff: { seconds: 2 } } });
    const next = resolveQueueConfig(
      { rateLimits: { maxDispatchesPerSecond: 5 }, retryConfig: { maxAttempts: 9 } },
      base,
      ['rateLimits.maxDispatchesPerSecond', 'rate_limits.max_burst_size', 'state'],
    );
    expect(next.rateLimits).toEqual({ maxDispatchesPerSecond: 5, maxBurstSize: 1, maxConcurrentDispatches: 1000 });
    expect(next.retryConfig).toMatchObject({ maxAttempts: 7, minBackoffMs: 2000 });
    const regrouped = resolveQueueConfig({ retryConfig: { maxAttempts: 4 } }, base, ['retry_config']);
    expect(regrouped.retryConfig).toMatchObject({ maxAttempts: 4, minBackoffMs: 100 });
  });

  test('bad values and unknown mask paths are INVALID_ARGUMENT with the field named', () => {
    expect(() => resolveQueueConfig({ rateLimits: { maxConcurrentDispatches: 5001 } })).toThrow(
      /maxConcurrentDispatches/,
    );
    expect(() =>
      resolveQueueConfig({ retryConfig: { minBackoff: { seconds: 5 }, maxBackoff: { seconds: 1 } } }),
    ).toThrow(/maxBackoff \(1s\) cannot be less than retryConfig.minBackoff \(5s\)/);
    expect(codeOf(() => resolveQueueConfig({ retryConfig: { maxDoublings: -1 } }))).toBe(status.INVALID_ARGUMENT);
    expect(codeOf(() => resolveQueueConfig({ stackdriverLoggingConfig: { samplingRatio: 2 } }))).toBe(
      status.INVALID_ARGUMENT,
    );
    expect(codeOf(() => resolveQueueConfig({}, undefined, ['retry_config.bogus']))).toBe(status.INVALID_ARGUMENT);
  });
});

describe('names', () => {
  test('parse queue and task names into their parts', () => {
    expect(parseQueueName('projects/my-proj/locations/us-central1/queues/q-1')).toMatchObject({
      project: 'my-proj',
      location: 'us-central1',
      queueId: 'q-1',
    });
    expect(parseTaskName('projects/example.com:p/locations/l/queues/q/tasks/a_b-1')).toMatchObject({ taskId: 'a_b-1' });
  });

  test.each([
    'projects/p/locations/l/queues/',
    'projects/p/locations/l/queues/q_1',
    'projects/p/locations/l/queue/q',
    `projects/p/locations/l/queues/${'q'.repeat(101)}`,
    'projects/p/locations/l/queues/q/extra',
  ])('refuses the queue name %s', (name) => {
    expect(codeOf(() => parseQueueName(name))).toBe(status.INVALID_ARGUMENT);
  });
});

describe('paging', () => {
  const items = ['a', 'b', 'c', 'd', 'e'];
  test('pages follow one another through the token and end with an empty token', () => {
    const first = paginate(items, (x) => x, { pageSize: 2 }, 10);
    const second = paginate(items, (x) => x, { pageSize: 2, pageToken: first.nextPageToken }, 10);
    const third = paginate(items, (x) => x, { pageSize: 2, pageToken: second.nextPageToken }, 10);
    expect([first.items, second.items, third.items]).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(third.nextPageToken).toBe('');
  });

  test('a missing page size means the maximum; garbage tokens are INVALID_ARGUMENT', () => {
    expect(paginate(items, (x) => x, {}, 3).items).toHaveLength(3);
    expect(codeOf(() => paginate(items, (x) => x, { pageToken: 'garbage' }, 3))).toBe(status.INVALID_ARGUMENT);
  });
});

describe('main options', () => {
  test('flags win over the environment, which wins over the defaults', () => {
    expect(parseMainOptions([], {})).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseMainOptions([], { CLOUD_TASKS_EMULATOR_PORT: '8123' })).toEqual({ host: '127.0.0.1', port: 8123 });
    expect(parseMainOptions(['--port', '9000', '--host=0.0.0.0'], { CLOUD_TASKS_EMULATOR_PORT: '8123' })).toEqual({
      host: '0.0.0.0',
      port: 9000,
    });
  });

  test('bad settings fail naming the setting', () => {
    expect(() => parseMainOptions(['--port', 'abc'])).toThrow(/--port/);
    expect(() => parseMainOptions(['--port', '70000'])).toThrow(/--port/);
    expect(() => parseMainOptions(['--port'])).toThrow(/--port needs a value/);
    expect(() => parseMainOptions(['--verbose'])).toThrow(/unknown argument/);
  });
});
