import type { Request, Response } from '@google-cloud/functions-framework';
import type { PubSub, Topic } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import {
  loadHealthSettings,
  persistQueueBatches,
  publishHealthReport,
  runHealthChecks,
  storeHealthReport,
  validateHealthSettings,
  type CanaryClient,
  type HealthCheckDependencies,
  type HealthReport,
} from '../../shared/health';
import type { NetworkStorage } from '../../shared/model';
import type { Logger } from '../../shared/log';
import { createTasksClient } from '../../shared/mesh/clients';
import type { DeadLetterStore } from '../../shared/mesh/dead-letters';
import { SpineStorage } from '../../shared/mesh/spine-storage';
import type { SpineSettings } from '../../shared/settings';
import type { Topology } from '../../shared/topology';

export interface HealthHandlerDependencies extends HealthCheckDependencies {
  /** Where reports are stored: `health/latest.json` and `health/{checkedAt}.json` in `bucket`. */
  storage: Storage;
  bucket: string;
  /** The health topic; each report is published on it. */
  healthTopic: Pick<Topic, 'publishMessage'>;
  logger: Logger;
}

/**
 * The health function: `GET` or `POST` (Cloud Scheduler's, body ignored) runs every check,
 * stores the report and publishes it, then answers with the report: 200 when healthy, 503
 * when not (`failing` names the checks). A report that could not be stored or published
 * answers 500 with the report under `report`, so the scheduler tries again.
 */
export function createHealthHandler(deps: HealthHandlerDependencies) {
  validateHealthSettings(deps.settings);
  const { logger } = deps;

  return async function health(req: Request, res: Response): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'POST') {
      res
        .status(405)
        .set('Allow', 'GET, POST')
        .json(errorBody('INVALID_ARGUMENT', `the health function takes GET or POST, not ${req.method}`));
      return;
    }
    let report: HealthReport;
    try {
      report = await runHealthChecks(deps);
    } catch (error) {
      logger.error('health checks failed to run', { error });
      res.status(500).json(errorBody('INTERNAL', describe(error)));
      return;
    }
    const [stored, published] = await Promise.allSettled([
      storeHealthReport(deps.storage, deps.bucket, report),
      publishHealthReport(deps.healthTopic, report),
    ]);
    const undelivered = [
      ...(stored.status === 'rejected'
        ? [`could not be stored in bucket ${deps.bucket}: ${describe(stored.reason)}`]
        : []),
      ...(published.status === 'rejected' ? [`could not be published: ${describe(published.reason)}`] : []),
    ];
    const fields = {
      status: report.status,
      failing: report.failing,
      warnings: report.warnings,
      problems: report.problems,
      canaryMaterializedMs: report.checks.canary.materializedMs,
      canaryAnnouncedMs: report.checks.canary.announcedMs,
      deadLetters: report.checks.deadLetters.count,
      pendingBatches: report.checks.pendingBatches.count,
      durationMs: report.durationMs,
    };
    if (undelivered.length > 0) {
      logger.error('health report not delivered', { ...fields, errors: undelivered });
      res.status(500).json({ ...errorBody('INTERNAL', `the health report ${undelivered.join('; ')}`), report });
      return;
    }
    if (report.status === 'healthy')
      logger.info(report.warnings.length > 0 ? 'mesh healthy, with warnings' : 'mesh healthy', fields);
    else logger.error('mesh unhealthy', fields);
    res.status(report.status === 'healthy' ? 200 : 503).json(report);
  };
}

/** What `createHealthDependencies` takes: the process-wide runtime of the functions (`runtime()`). */
export interface HealthRuntime {
  settings: SpineSettings;
  topology: Topology;
  pubsub: PubSub;
  /** For the canary's writes (see `FunctionRuntime.journaledPubSub`). */
  journaledPubSub: PubSub;
  storage: Storage;
  /** The materialized state (the functions' own store). */
  state: NetworkStorage;
  deadLetters: DeadLetterStore;
  logger: Logger;
}

/**
 * The health handler's dependencies from the functions' runtime and the environment
 * (`SPINE_HEALTH_*`, see `loadHealthSettings`): a `SpineStorage` for the canary over the
 * runtime's clients and state, and a Cloud Tasks client for the persist queue. `close()`
 * removes the canary client's subscriptions and closes what was made here.
 */
export function createHealthDependencies(
  runtime: HealthRuntime,
  env: Record<string, string | undefined> = process.env,
): HealthHandlerDependencies & { close(): Promise<void> } {
  const settings = loadHealthSettings(env);
  const logger = runtime.logger.child({ function: 'health' });
  const canary = renewingCanary(
    () =>
      new SpineStorage({
        projectId: runtime.settings.projectId,
        topicPrefix: runtime.settings.topicPrefix,
        state: runtime.state,
        writerId: 'health',
        persistOn: runtime.settings.persistOn,
        persistOverrides: runtime.settings.persistOverrides,
        // Its writes take the path every client's do (locally: through the journal).
        pubsub: runtime.journaledPubSub,
        storage: runtime.storage,
        bucket: runtime.settings.bucket,
        logger: logger.child({ part: 'canary' }),
      }),
  );
  const tasks = createTasksClient(runtime.settings);
  const queuePath = tasks.queuePath(
    runtime.settings.projectId,
    runtime.settings.tasksLocation,
    runtime.topology.queues.persist.name,
  );
  return {
    settings,
    canary,
    state: runtime.state,
    deadLetters: runtime.deadLetters,
    pendingBatches: persistQueueBatches(tasks, queuePath),
    storage: runtime.storage,
    bucket: runtime.settings.bucket,
    healthTopic: runtime.pubsub.topic(runtime.topology.topics.health.name),
    logger,
    async close() {
      await canary.close();
      await tasks.close();
    },
  };
}

/**
 * A canary client made again after its set-up failed: `SpineStorage` keeps a failed set-up
 * (e.g. Pub/Sub was down when its acknowledgement subscription was made), and the health job
 * has to recover when the mesh does.
 */
function renewingCanary(make: () => SpineStorage): CanaryClient & { close(): Promise<void> } {
  let current: SpineStorage | undefined;
  return {
    async initialize() {
      current ??= make();
      try {
        await current.initialize();
      } catch (error) {
        const broken = current;
        current = undefined;
        await broken.close().catch(() => undefined);
        throw error;
      }
    },
    saveContactContent: (...args) => (current ??= make()).saveContactContent(...args),
    subscribe: (...args) => (current ??= make()).subscribe(...args),
    async close() {
      await current?.close();
      current = undefined;
    },
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}
