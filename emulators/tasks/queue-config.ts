import { invalidArgument } from './errors';
import type { AppEngineRoutingMessage, QueueMessage } from './wire';
import { toDuration, toMillis } from './wire';

/** A queue's dispatch settings, resolved (defaults filled in) and validated. Durations in milliseconds. */
export interface QueueConfig {
  rateLimits: {
    maxDispatchesPerSecond: number;
    /** Output only: picked from the rate, like the service does (see `burstSizeFor`). */
    maxBurstSize: number;
    maxConcurrentDispatches: number;
  };
  retryConfig: {
    /** -1 means unlimited. */
    maxAttempts: number;
    minBackoffMs: number;
    maxBackoffMs: number;
    maxDoublings: number;
    /** 0 means unlimited. */
    maxRetryDurationMs: number;
  };
  appEngineRoutingOverride?: AppEngineRoutingMessage;
  stackdriverLoggingConfig?: { samplingRatio: number };
}

/** What the service picks when a setting is unset (proto3 cannot tell unset from zero, so zero means unset too). */
export const serviceDefaults = {
  maxDispatchesPerSecond: 500,
  maxConcurrentDispatches: 1000,
  maxAttempts: 100,
  minBackoffMs: 100,
  maxBackoffMs: 3_600_000,
  maxDoublings: 16,
  maxRetryDurationMs: 0,
} as const;

const serviceLimits = { maxDispatchesPerSecond: 500, maxConcurrentDispatches: 5000, maxBurstSize: 500 } as const;

/**
 * The service picks `maxBurstSize` from the rate without documenting how; 500/s gives 100
 * there. The emulator uses rate / 5 (at least 1), so a slow queue shows its rate from the
 * first tasks instead of hiding it behind a large burst.
 */
export function burstSizeFor(maxDispatchesPerSecond: number): number {
  return Math.min(serviceLimits.maxBurstSize, Math.max(1, Math.ceil(maxDispatchesPerSecond / 5)));
}

const orDefault = (value: number | undefined, fallback: number) =>
  value === undefined || value === 0 ? fallback : value;

type Leaf = (config: QueueConfig, queue: QueueMessage) => void;

/** Every settable field by its update-mask path; a group path (`retry_config`) sets each leaf below it. */
const leaves: Record<string, Leaf> = {
  'rate_limits.max_dispatches_per_second': (c, q) => {
    c.rateLimits.maxDispatchesPerSecond = orDefault(
      q.rateLimits?.maxDispatchesPerSecond,
      serviceDefaults.maxDispatchesPerSecond,
    );
  },
  'rate_limits.max_concurrent_dispatches': (c, q) => {
    c.rateLimits.maxConcurrentDispatches = orDefault(
      q.rateLimits?.maxConcurrentDispatches,
      serviceDefaults.maxConcurrentDispatches,
    );
  },
  'retry_config.max_attempts': (c, q) => {
    c.retryConfig.maxAttempts = orDefault(q.retryConfig?.maxAttempts, serviceDefaults.maxAttempts);
  },
  'retry_config.min_backoff': (c, q) => {
    c.retryConfig.minBackoffMs = orDefault(toMillis(q.retryConfig?.minBackoff), serviceDefaults.minBackoffMs);
  },
  'retry_config.max_backoff': (c, q) => {
    c.retryConfig.maxBackoffMs = orDefault(toMillis(q.retryConfig?.maxBackoff), serviceDefaults.maxBackoffMs);
  },
  'retry_config.max_doublings': (c, q) => {
    c.retryConfig.maxDoublings = orDefault(q.retryConfig?.maxDoublings, serviceDefaults.maxDoublings);
  },
  'retry_config.max_retry_duration': (c, q) => {
    c.retryConfig.maxRetryDurationMs = orDefault(
      toMillis(q.retryConfig?.maxRetryDuration),
      serviceDefaults.maxRetryDurationMs,
    );
  },
  app_engine_routing_override: (c, q) => {
    c.appEngineRoutingOverride = q.appEngineRoutingOverride;
  },
  'stackdriver_logging_config.sampling_ratio': (c, q) => {
    c.stackdriverLoggingConfig = q.stackdriverLoggingConfig && {
      samplingRatio: q.stackdriverLoggingConfig.samplingRatio ?? 0,
    };
  },
};

/** Output-only or immutable fields: UpdateQueue ignores values sent for them, as the service does. */
const ignoredPaths = new Set(['name', 'state', 'purge_time', 'rate_limits.max_burst_size']);

const snakeCase = (path: string) => path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function leavesFor(path: string): Leaf[] {
  const normalized = snakeCase(path.trim());
  if (ignoredPaths.has(normalized)) return [];
  const matching = Object.keys(leaves).filter((leaf) => leaf === normalized || leaf.startsWith(`${normalized}.`));
  if (matching.length === 0)
    throw invalidArgument(`update_mask path "${path}" is not a field of Queue that can be updated`);
  return matching.map((leaf) => leaves[leaf]!);
}

export function defaultQueueConfig(): QueueConfig {
  const maxDispatchesPerSecond = serviceDefaults.maxDispatchesPerSecond;
  return {
    rateLimits: {
      maxDispatchesPerSecond,
      maxBurstSize: burstSizeFor(maxDispatchesPerSecond),
      maxConcurrentDispatches: serviceDefaults.maxConcurrentDispatches,
    },
    retryConfig: {
      maxAttempts: serviceDefaults.maxAttempts,
      minBackoffMs: serviceDefaults.minBackoffMs,
      maxBackoffMs: serviceDefaults.maxBackoffMs,
      maxDoublings: serviceDefaults.maxDoublings,
      maxRetryDurationMs: serviceDefaults.maxRetryDurationMs,
    },
  };
}

/**
 * The config that results from applying `queue` to `base` (CreateQueue: no base). With no
 * mask every settable field is taken from `queue`, unset ones reverting to the defaults;
 * with a mask only the fields it names change. Throws INVALID_ARGUMENT on a bad value.
 */
export function resolveQueueConfig(queue: QueueMessage, base?: QueueConfig, maskPaths: string[] = []): QueueConfig {
  const config = base ? structuredClone(base) : defaultQueueConfig();
  const apply = maskPaths.length > 0 ? maskPaths.flatMap(leavesFor) : Object.values(leaves);
  for (const leaf of apply) leaf(config, queue);
  config.rateLimits.maxBurstSize = burstSizeFor(config.rateLimits.maxDispatchesPerSecond);
  validate(config);
  return config;
}

function validate({ rateLimits, retryConfig, stackdriverLoggingConfig }: QueueConfig): void {
  const rate = rateLimits.maxDispatchesPerSecond;
  if (!(rate > 0 && rate <= serviceLimits.maxDispatchesPerSecond)) {
    throw invalidArgument(
      `rateLimits.maxDispatchesPerSecond must be in (0, ${serviceLimits.maxDispatchesPerSecond}] (got ${rate})`,
    );
  }
  const concurrency = rateLimits.maxConcurrentDispatches;
  if (!(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= serviceLimits.maxConcurrentDispatches)) {
    throw invalidArgument(
      `rateLimits.maxConcurrentDispatches must be in [1, ${serviceLimits.maxConcurrentDispatches}] (got ${concurrency})`,
    );
  }
  if (retryConfig.maxAttempts < -1)
    throw invalidArgument(`retryConfig.maxAttempts must be >= -1 (got ${retryConfig.maxAttempts})`);
  if (retryConfig.maxDoublings < 0)
    throw invalidArgument(`retryConfig.maxDoublings must be >= 0 (got ${retryConfig.maxDoublings})`);
  for (const [field, value] of [
    ['minBackoff', retryConfig.minBackoffMs],
    ['maxBackoff', retryConfig.maxBackoffMs],
    ['maxRetryDuration', retryConfig.maxRetryDurationMs],
  ] as const) {
    if (value < 0) throw invalidArgument(`retryConfig.${field} cannot be negative (got ${value / 1000}s)`);
  }
  if (retryConfig.maxBackoffMs < retryConfig.minBackoffMs) {
    throw invalidArgument(
      `retryConfig.maxBackoff (${retryConfig.maxBackoffMs / 1000}s) cannot be less than retryConfig.minBackoff (${retryConfig.minBackoffMs / 1000}s)`,
    );
  }
  const ratio = stackdriverLoggingConfig?.samplingRatio;
  if (ratio !== undefined && !(ratio >= 0 && ratio <= 1)) {
    throw invalidArgument(`stackdriverLoggingConfig.samplingRatio must be in [0, 1] (got ${ratio})`);
  }
}

/** The config as the Queue message reports it. */
export function queueConfigToMessage(
  config: QueueConfig,
): Pick<QueueMessage, 'rateLimits' | 'retryConfig' | 'appEngineRoutingOverride' | 'stackdriverLoggingConfig'> {
  const { rateLimits, retryConfig } = config;
  return {
    rateLimits: { ...rateLimits },
    retryConfig: {
      maxAttempts: retryConfig.maxAttempts,
      minBackoff: toDuration(retryConfig.minBackoffMs),
      maxBackoff: toDuration(retryConfig.maxBackoffMs),
      maxDoublings: retryConfig.maxDoublings,
      ...(retryConfig.maxRetryDurationMs > 0 && { maxRetryDuration: toDuration(retryConfig.maxRetryDurationMs) }),
    },
    ...(config.appEngineRoutingOverride && { appEngineRoutingOverride: config.appEngineRoutingOverride }),
    ...(config.stackdriverLoggingConfig && { stackdriverLoggingConfig: config.stackdriverLoggingConfig }),
  };
}
