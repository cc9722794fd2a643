import { DueHeap } from './due-heap';
import { type AttemptOutcome, type TargetClient, requestHeaders } from './http-target';
import type { QueueConfig } from './queue-config';
import { type AttemptRecord, type TaskRecord, beginAttempt } from './task';
import { TokenBucket } from './token-bucket';

const maxTimerMs = 3600_000;

/** What a dispatcher needs from the queue it serves. */
export interface DispatchHost {
  readonly queueId: string;
  rateLimits(): QueueConfig['rateLimits'];
  /** False while the queue is paused (or disabled): nothing is dispatched but forced runs. */
  isDispatching(): boolean;
  /** Whether a scheduled entry still stands: the task is held, idle and was not rescheduled since. */
  isScheduled(task: TaskRecord, stamp: number): boolean;
  /** Called once per attempt with how it ended; the host records it and decides what comes next. */
  attemptFinished(task: TaskRecord, attempt: AttemptRecord, outcome: AttemptOutcome): void;
  /** A bug in the emulator surfaced while finishing an attempt; reported, never thrown. */
  internalError(error: unknown, task: TaskRecord): void;
}

/**
 * Decides when each of a queue's tasks is sent: in schedule-time order, once due, while the
 * queue runs, with at most maxConcurrentDispatches in flight and at most
 * maxDispatchesPerSecond on average (token bucket). One timer wakes it for the next due task
 * or token; finished attempts, new tasks, resume and config changes wake it too.
 */
export class Dispatcher {
  private readonly due: DueHeap<TaskRecord>;
  private readonly bucket: TokenBucket;
  private readonly inFlightAttempts = new Set<Promise<void>>();
  private readonly shutdown = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private inFlightCount = 0;
  private peak = 0;
  private attempts = 0;

  constructor(
    private readonly host: DispatchHost,
    private readonly targets: TargetClient,
  ) {
    this.due = new DueHeap((task, stamp) => host.isScheduled(task, stamp));
    const { maxDispatchesPerSecond, maxBurstSize } = host.rateLimits();
    this.bucket = new TokenBucket(maxDispatchesPerSecond, maxBurstSize);
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  get peakInFlight(): number {
    return this.peak;
  }

  /** Attempts started, forced ones included. */
  get dispatched(): number {
    return this.attempts;
  }

  /** Queues the task for its scheduleTime; any earlier entry for it must already be stale. */
  schedule(task: TaskRecord): void {
    this.due.push(task, task.scheduleTimeMs, task.scheduleStamp);
    this.wake();
  }

  /** RunTask: dispatch at once, whatever the queue state, rate and concurrency limits say. */
  dispatchNow(task: TaskRecord): void {
    this.start(task);
  }

  rateLimitsChanged(): void {
    const { maxDispatchesPerSecond, maxBurstSize } = this.host.rateLimits();
    this.bucket.reconfigure(maxDispatchesPerSecond, maxBurstSize);
    this.wake();
  }

  /** Dispatches whatever may go now, then arms the timer for the next thing worth waiting for. */
  wake(): void {
    if (this.shutdown.signal.aborted) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const { maxConcurrentDispatches } = this.host.rateLimits();
    while (this.host.isDispatching() && this.inFlightCount < maxConcurrentDispatches) {
      const next = this.due.peek();
      if (!next) return;
      const now = Date.now();
      if (next.dueAt > now) return this.wakeIn(next.dueAt - now);
      const tokenWait = this.bucket.take(now);
      if (tokenWait > 0) return this.wakeIn(tokenWait);
      this.due.pop();
      this.start(next.item);
    }
  }

  /** Stops dispatching and cancels the requests in flight; resolves once they have settled. */
  async close(): Promise<void> {
    this.shutdown.abort();
    clearTimeout(this.timer);
    this.due.clear();
    await Promise.allSettled([...this.inFlightAttempts]);
  }

  private wakeIn(ms: number): void {
    // Tasks may be scheduled 30 days ahead, past what setTimeout can wait; waking early just re-arms.
    this.timer = setTimeout(() => this.wake(), Math.min(maxTimerMs, Math.max(1, Math.ceil(ms))));
  }

  private start(task: TaskRecord): void {
    const now = Date.now();
    const info = {
      queueId: this.host.queueId,
      taskId: task.name.taskId,
      retryCount: task.dispatchCount,
      executionCount: task.executionCount,
      scheduleTimeMs: task.scheduleTimeMs,
      ...(task.previousResponseCode !== undefined && { previousResponseCode: task.previousResponseCode }),
    };
    const headers = requestHeaders(task.target, info, now);
    const attempt = beginAttempt(task, now);
    this.attempts += 1;
    this.inFlightCount += 1;
    this.peak = Math.max(this.peak, this.inFlightCount);
    const done = this.targets
      .send(task.target, headers, task.dispatchDeadlineMs, this.shutdown.signal)
      .then((outcome) => {
        this.inFlightCount -= 1;
        this.host.attemptFinished(task, attempt, outcome);
      })
      .catch((error: unknown) => this.host.internalError(error, task))
      .finally(() => {
        this.inFlightAttempts.delete(done);
        this.wake();
      });
    this.inFlightAttempts.add(done);
  }
}
