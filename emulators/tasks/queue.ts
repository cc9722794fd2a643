import { randomBytes } from 'node:crypto';
import type { Logger } from '../../shared/log';
import { Dispatcher, type DispatchHost } from './dispatcher';
import { aborted, alreadyExists, failedPrecondition, invalidArgument, notFound, serviceMessages } from './errors';
import { type AttemptOutcome, type TargetClient, statusForOutcome } from './http-target';
import { type QueueName, type TaskName, generateTaskId, parseTaskName, taskNameIn } from './names';
import { type QueueConfig, queueConfigToMessage } from './queue-config';
import { retriesExhausted, retryDelayMs } from './retry-policy';
import { type AttemptRecord, type TaskRecord, dispatchDeadlineFrom, endAttempt, httpTargetFrom } from './task';
import type { IamPolicyMessage, QueueMessage, TaskMessage } from './wire';
import { toMillis, toTimestamp } from './wire';

/** Counters for one queue, for tests and benchmarks (`TasksEmulator.stats()`). */
export interface QueueStats {
  state: 'RUNNING' | 'PAUSED';
  /** Tasks held: scheduled, waiting for a retry or in flight. */
  tasks: number;
  inFlight: number;
  /** The most attempts ever in flight at once. */
  peakInFlight: number;
  created: number;
  /** Attempts started (first attempts, retries and RunTask). */
  dispatched: number;
  /** Attempts the target acknowledged with 2xx. */
  succeeded: number;
  /** Attempts that failed: non-2xx, deadline exceeded or target unreachable. */
  failedAttempts: number;
  /** Retries scheduled after a failed attempt. */
  retried: number;
  /** Tasks deleted after exhausting maxAttempts / maxRetryDuration. */
  dropped: number;
  /** Tasks removed by DeleteTask. */
  deleted: number;
  /** Tasks removed by PurgeQueue. */
  purged: number;
  /** Names of the most recently dropped tasks, oldest first (at most 100). */
  droppedTasks: string[];
}

export interface QueueOptions {
  /** How long a task name stays taken after the task completed or was deleted. */
  taskNameReuseMs: number;
  targets: TargetClient;
  logger: Logger;
}

const maxScheduleAheadMs = 30 * 24 * 3600_000;
const droppedTasksKept = 100;

/**
 * One queue: its settings and state, the tasks it holds, and what happens to a task after
 * each attempt (done, retried with backoff, or dropped). Timing lives in `Dispatcher`.
 */
export class EmulatedQueue implements DispatchHost {
  private state: 'RUNNING' | 'PAUSED' = 'RUNNING';
  private purgeTimeMs: number | undefined;
  private iamPolicy: IamPolicyMessage = { version: 0, bindings: [], etag: Buffer.from('ACAB', 'base64') };
  private readonly tasks = new Map<string, TaskRecord>();
  /** Task ids that completed or were deleted, with the time they may be used again (in that order). */
  private readonly recentlyGone = new Map<string, number>();
  private readonly dispatcher: Dispatcher;
  private readonly counters = {
    created: 0,
    succeeded: 0,
    failedAttempts: 0,
    retried: 0,
    dropped: 0,
    deleted: 0,
    purged: 0,
  };
  private readonly droppedTasks: string[] = [];
  private readonly logger: Logger;

  constructor(
    readonly name: QueueName,
    private config: QueueConfig,
    private readonly options: QueueOptions,
  ) {
    this.logger = options.logger.child({ queue: name.path });
    this.dispatcher = new Dispatcher(this, options.targets);
  }

  get queueId(): string {
    return this.name.queueId;
  }

  rateLimits(): QueueConfig['rateLimits'] {
    return this.config.rateLimits;
  }

  isDispatching(): boolean {
    return this.state === 'RUNNING';
  }

  isScheduled(task: TaskRecord, stamp: number): boolean {
    return !task.running && task.scheduleStamp === stamp && this.holds(task);
  }

  toMessage(): QueueMessage {
    return {
      name: this.name.path,
      ...queueConfigToMessage(this.config),
      state: this.state,
      ...(this.purgeTimeMs !== undefined && { purgeTime: toTimestamp(this.purgeTimeMs) }),
    };
  }

  toConfig(): QueueConfig {
    return this.config;
  }

  reconfigure(config: QueueConfig): void {
    this.config = config;
    this.dispatcher.rateLimitsChanged();
  }

  pause(): void {
    this.state = 'PAUSED';
  }

  resume(): void {
    this.state = 'RUNNING';
    this.dispatcher.wake();
  }

  /** Deletes every task; attempts in flight finish, but their results are ignored. */
  purge(now = Date.now()): void {
    this.counters.purged += this.tasks.size;
    for (const task of [...this.tasks.values()]) this.forget(task, now);
    this.purgeTimeMs = now;
  }

  createTask(message: TaskMessage, now = Date.now()): TaskRecord {
    const name = message.name ? this.taskNameFrom(message.name) : taskNameIn(this.name, generateTaskId());
    const target = httpTargetFrom(message);
    const dispatchDeadlineMs = dispatchDeadlineFrom(message);
    const requestedTime = toMillis(message.scheduleTime);
    if (requestedTime !== undefined && requestedTime > now + maxScheduleAheadMs) {
      throw invalidArgument('Task.scheduleTime must be at most 30 days in the future');
    }
    if (this.tasks.has(name.taskId) || this.isRecentlyGone(name.taskId, now)) throw alreadyExists();
    const task: TaskRecord = {
      name,
      target,
      dispatchDeadlineMs,
      // The service truncates createTime to the second; a past or missing scheduleTime means now.
      createTimeMs: Math.floor(now / 1000) * 1000,
      scheduleTimeMs: Math.max(now, requestedTime ?? now),
      dispatchCount: 0,
      responseCount: 0,
      executionCount: 0,
      running: false,
      scheduleStamp: 0,
    };
    this.tasks.set(name.taskId, task);
    this.counters.created += 1;
    this.dispatcher.schedule(task);
    return task;
  }

  getTask(name: TaskName, now = Date.now()): TaskRecord {
    const task = this.tasks.get(name.taskId);
    if (task) return task;
    throw this.isRecentlyGone(name.taskId, now) ? notFound(serviceMessages.taskRecentlyGone) : notFound();
  }

  /** The tasks held, by task id (the service promises no order; this one keeps paging stable). */
  listTasks(): TaskRecord[] {
    return [...this.tasks.values()].sort((a, b) =>
      a.name.taskId < b.name.taskId ? -1 : a.name.taskId > b.name.taskId ? 1 : 0,
    );
  }

  deleteTask(name: TaskName, now = Date.now()): void {
    const task = this.getTask(name, now);
    this.forget(task, now);
    this.counters.deleted += 1;
  }

  /**
   * RunTask: dispatches now whatever the queue state and limits; returns the task as
   * dispatched, before the target answers. An attempt already in flight is refused, since
   * the emulator runs one attempt of a task at a time.
   */
  runTask(name: TaskName, now = Date.now()): TaskRecord {
    const task = this.getTask(name, now);
    if (task.running)
      throw failedPrecondition(
        'The task cannot be run now: an attempt of it is still waiting for the response of its target.',
      );
    task.scheduleStamp += 1;
    this.dispatcher.dispatchNow(task);
    return task;
  }

  attemptFinished(task: TaskRecord, attempt: AttemptRecord, outcome: AttemptOutcome): void {
    if (outcome.kind === 'cancelled') {
      task.running = false;
      return;
    }
    const httpStatus = outcome.kind === 'response' ? outcome.httpStatus : undefined;
    const acknowledged = endAttempt(task, attempt, outcome.at, httpStatus, statusForOutcome(outcome));
    const log = { task: task.name.taskId, attempt: task.dispatchCount, outcome };
    if (acknowledged) this.counters.succeeded += 1;
    else this.counters.failedAttempts += 1;
    // A task deleted or purged while in flight is gone whatever the answer.
    if (!this.holds(task)) return;
    if (acknowledged) {
      this.logger.debug('task acknowledged', log);
      return this.forget(task, outcome.at);
    }
    const { retryConfig } = this.config;
    if (retriesExhausted(retryConfig, task.dispatchCount, task.firstAttemptDispatchMs ?? outcome.at, outcome.at)) {
      this.logger.info('task dropped: retries exhausted', log);
      this.counters.dropped += 1;
      this.droppedTasks.push(task.name.path);
      if (this.droppedTasks.length > droppedTasksKept) this.droppedTasks.shift();
      return this.forget(task, outcome.at);
    }
    const delayMs = retryDelayMs(retryConfig, task.dispatchCount);
    this.logger.debug('task attempt failed; retrying', { ...log, delayMs });
    task.scheduleTimeMs = outcome.at + delayMs;
    task.scheduleStamp += 1;
    this.counters.retried += 1;
    this.dispatcher.schedule(task);
  }

  internalError(error: unknown, task: TaskRecord): void {
    this.logger.error('internal error while finishing an attempt', { task: task.name.taskId, error });
  }

  getIamPolicy(): IamPolicyMessage {
    return this.iamPolicy;
  }

  /** Replaces the policy; a policy carrying a stale etag is refused, as the service does. */
  setIamPolicy(policy: IamPolicyMessage): IamPolicyMessage {
    if (policy.etag && policy.etag.length > 0 && this.iamPolicy.etag && !policy.etag.equals(this.iamPolicy.etag)) {
      throw aborted(
        'There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.',
      );
    }
    this.iamPolicy = {
      version: policy.version ?? 0,
      bindings: policy.bindings ?? [],
      auditConfigs: policy.auditConfigs ?? [],
      etag: randomBytes(8),
    };
    return this.iamPolicy;
  }

  stats(): QueueStats {
    return {
      state: this.state,
      tasks: this.tasks.size,
      inFlight: this.dispatcher.inFlight,
      peakInFlight: this.dispatcher.peakInFlight,
      dispatched: this.dispatcher.dispatched,
      ...this.counters,
      droppedTasks: [...this.droppedTasks],
    };
  }

  /** Stops dispatching and cancels attempts in flight. */
  close(): Promise<void> {
    return this.dispatcher.close();
  }

  private taskNameFrom(path: string): TaskName {
    const name = parseTaskName(path, 'task.name');
    if (name.queue.path !== this.name.path) {
      throw invalidArgument(`task.name "${path}" must name a task in the queue given by parent (${this.name.path})`);
    }
    return name;
  }

  private holds(task: TaskRecord): boolean {
    return this.tasks.get(task.name.taskId) === task;
  }

  /** Removes the task and keeps its name taken for a while, as the service de-duplicates names. */
  private forget(task: TaskRecord, now: number): void {
    this.tasks.delete(task.name.taskId);
    task.scheduleStamp += 1;
    this.recentlyGone.delete(task.name.taskId);
    this.recentlyGone.set(task.name.taskId, now + this.options.taskNameReuseMs);
  }

  private isRecentlyGone(taskId: string, now: number): boolean {
    // Entries were added in expiry order, so expired ones sit at the front.
    for (const [id, until] of this.recentlyGone) {
      if (until > now) break;
      this.recentlyGone.delete(id);
    }
    return this.recentlyGone.has(taskId);
  }
}
